//! The gateway as conference focus towards a SIP user in an XMPP MUC room: RFC 7702 §6.2
//! (MUC-20, MUC-21, MUC-22), the conference-info documents built from the room's occupant
//! presences (XEP-0045 §7.2.3).
//!
//! * [`OccupantList`] collects the occupant presences the MUC sends (before the subscription
//!   exists too: MUC-21) and says when the initial roster is complete (the self-presence with
//!   status 110, last in the initial batch; MUC-22).
//! * [`Notifier`] renders the first NOTIFY as full state and every later one as a partial
//!   document holding only the changed users ([`diff`]), with the version starting at 0 and
//!   growing by one per document (RFC 4575 §5.2).
//!
//! Each occupant becomes (RFC 7702 Example 32):
//! `<user entity='sip:room@host;gr=Nick' state='full'>` with `<display-text>Nick</display-text>`,
//! `<roles><entry>participant</entry></roles>` and one connected `<endpoint>` with a `message`
//! medium; a departed occupant is `<user entity=… state='deleted'/>`. A nickname change is a
//! departure plus an arrival, because the nickname is part of the user's entity. Example 32
//! leaves out the subscriber's own entry; it is included here (as Example 9 includes JuliC's
//! own), since RFC 4575 lists every participant.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use xmpp_parsers::muc::user::{Affiliation, MucUser, Role, Status};
use xmpp_parsers::presence::{Presence, Type};

use super::confinfo::{
    ConferenceInfo, Description, Endpoint, EndpointStatus, Media, State, User, Users,
};
use crate::addr::{FullJid, SipAddr};

/// One occupant of the MUC room, from its presence.
#[derive(Debug, Clone, PartialEq)]
pub struct MucOccupant {
    /// The role from `<item role>`.
    pub role: Role,
    /// The affiliation from `<item affiliation>` (not mapped: RFC 4575 has no place for it).
    pub affiliation: Affiliation,
    /// The real JID, when the room shows it.
    pub jid: Option<FullJid>,
}

/// What an occupant presence did to the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceEffect {
    /// Not an occupant presence of this room, or nothing changed.
    Ignored,
    /// An occupant came, went or changed.
    Changed,
    /// The self-presence arrived for the first time: the initial roster is complete and the
    /// first (full) NOTIFY can go out (MUC-22).
    RosterComplete,
}

/// The room's occupants, keyed by nickname (the occupant JID's resourcepart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OccupantList {
    occupants: BTreeMap<String, MucOccupant>,
    complete: bool,
}

impl OccupantList {
    /// An empty list.
    pub fn new() -> OccupantList {
        OccupantList::default()
    }

    /// Applies one presence from the room (`from` = `room/nick`; the caller routes only this
    /// room's presences here). Available: the occupant is added or updated. Unavailable: it is
    /// removed; with status 303 the available presence from the new nickname follows and adds
    /// it back (XEP-0045 §7.6). Presences without a resource or of other types are ignored.
    pub fn apply_presence(&mut self, presence: &Presence) -> PresenceEffect {
        let Some(nick) = presence
            .from
            .as_ref()
            .and_then(|j| j.resource())
            .map(|r| r.as_str().to_owned())
        else {
            return PresenceEffect::Ignored;
        };
        let x = presence
            .payloads
            .iter()
            .find_map(|p| MucUser::try_from(p.clone()).ok());
        let item = x.as_ref().and_then(|x| x.items.first());
        let is_self = x
            .as_ref()
            .is_some_and(|x| x.status.contains(&Status::SelfPresence));
        match presence.type_ {
            Type::None => {
                let occupant = MucOccupant {
                    role: item.map_or(Role::Participant, |i| i.role.clone()),
                    affiliation: item.map_or(Affiliation::None, |i| i.affiliation.clone()),
                    jid: item.and_then(|i| i.jid.clone()),
                };
                let changed = self.occupants.get(&nick) != Some(&occupant);
                self.occupants.insert(nick, occupant);
                if is_self && !self.complete {
                    self.complete = true;
                    PresenceEffect::RosterComplete
                } else if changed {
                    PresenceEffect::Changed
                } else {
                    PresenceEffect::Ignored
                }
            }
            Type::Unavailable => match self.occupants.remove(&nick) {
                Some(_) => PresenceEffect::Changed,
                None => PresenceEffect::Ignored,
            },
            _ => PresenceEffect::Ignored,
        }
    }

    /// Adds or replaces an occupant directly (tests, restored state).
    pub fn insert(&mut self, nick: impl Into<String>, occupant: MucOccupant) {
        self.occupants.insert(nick.into(), occupant);
    }

    /// Removes an occupant directly.
    pub fn remove(&mut self, nick: &str) -> Option<MucOccupant> {
        self.occupants.remove(nick)
    }

    /// Whether the self-presence has arrived (MUC-22).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The occupants by nickname.
    pub fn occupants(&self) -> &BTreeMap<String, MucOccupant> {
        &self.occupants
    }

    /// Number of occupants.
    pub fn len(&self) -> usize {
        self.occupants.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }
}

/// The users that differ between two occupant maps, in nickname order: full `<user>`s for
/// occupants that are new or changed in `new`, deleted ones for those only in `old`. One merge
/// walk over the two sorted maps: O(n + m) string comparisons, whatever the number of changes.
pub fn diff(
    room: &SipAddr,
    old: &BTreeMap<String, MucOccupant>,
    new: &BTreeMap<String, MucOccupant>,
) -> Vec<User> {
    changes(old, new)
        .into_iter()
        .map(|(nick, now)| match now {
            Some(occupant) => occupant_user(room, nick, occupant),
            None => deleted_user(room, nick),
        })
        .collect()
}

/// The merge walk behind [`diff`]: each changed nickname with its new occupant, `None` when
/// it left.
fn changes<'a>(
    old: &'a BTreeMap<String, MucOccupant>,
    new: &'a BTreeMap<String, MucOccupant>,
) -> Vec<(&'a str, Option<&'a MucOccupant>)> {
    let mut out = Vec::new();
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            Ordering::Less => {
                if let Some((nick, _)) = a.next() {
                    out.push((nick.as_str(), None));
                }
            }
            Ordering::Greater => {
                if let Some((nick, occupant)) = b.next() {
                    out.push((nick.as_str(), Some(occupant)));
                }
            }
            Ordering::Equal => {
                if let (Some((_, was)), Some((nick, now))) = (a.next(), b.next()) {
                    if user_visible_change(was, now) {
                        out.push((nick.as_str(), Some(now)));
                    }
                }
            }
        }
    }
    out
}

/// Only what the document shows counts as a change: the role (affiliation and real JID are
/// not in the document).
fn user_visible_change(was: &MucOccupant, now: &MucOccupant) -> bool {
    was.role != now.role
}

/// The `<user>` of one occupant (RFC 7702 Example 32 layout, MUC-22).
pub fn occupant_user(room: &SipAddr, nick: &str, occupant: &MucOccupant) -> User {
    let entity = user_entity(room, nick);
    User {
        entity: entity.clone(),
        state: State::Full,
        nickname: None,
        display_text: Some(nick.to_owned()),
        associated_aors: Vec::new(),
        roles: vec![role_name(&occupant.role).to_owned()],
        endpoints: vec![Endpoint {
            entity,
            state: State::Full,
            status: Some(EndpointStatus::Connected),
            media: vec![Media {
                id: "1".to_owned(),
                media_type: Some("message".to_owned()),
            }],
            ..Endpoint::default()
        }],
    }
}

fn deleted_user(room: &SipAddr, nick: &str) -> User {
    User {
        entity: user_entity(room, nick),
        state: State::Deleted,
        ..User::default()
    }
}

/// `sip:room@host;gr=Nick` (RFC 7702 §6.2; the nickname percent-encoded as a URI parameter).
pub fn user_entity(room: &SipAddr, nick: &str) -> String {
    SipAddr {
        gr: Some(nick.to_owned()),
        ..room.clone()
    }
    .to_uri()
}

/// The XEP-0045 role as an RFC 4575 `<roles>` entry (Table 3 read backwards).
fn role_name(role: &Role) -> &'static str {
    match role {
        Role::Moderator => "moderator",
        Role::Participant => "participant",
        Role::Visitor => "visitor",
        Role::None => "none",
    }
}

/// The documents sent to one SIP subscriber (one subscription dialog).
#[derive(Debug, Clone)]
pub struct Notifier {
    room: SipAddr,
    /// The version of the next document.
    next_version: u32,
    /// What the subscriber was last told; `None` before the first (full) document.
    sent: Option<BTreeMap<String, MucOccupant>>,
    subject: Option<String>,
}

impl Notifier {
    /// A notifier for the room at `room` (its SIP URI, `entity` of every document).
    pub fn new(room: SipAddr) -> Notifier {
        Notifier {
            room,
            next_version: 0,
            sent: None,
            subject: None,
        }
    }

    /// A full-state document of the room as it is (the first NOTIFY, and the answer to every
    /// refresh, RFC 6665 §4.2.2).
    pub fn full(&mut self, occupants: &OccupantList, subject: Option<&str>) -> ConferenceInfo {
        let users = occupants
            .occupants
            .iter()
            .map(|(nick, o)| occupant_user(&self.room, nick, o))
            .collect();
        self.subject = subject.map(str::to_owned);
        self.sent = Some(occupants.occupants.clone());
        let doc = ConferenceInfo {
            entity: self.room.to_uri(),
            state: State::Full,
            version: self.next_version,
            description: Some(Description {
                display_text: None,
                subject: self.subject.clone(),
            }),
            users: Some(Users {
                state: State::Full,
                users,
            }),
        };
        self.bump();
        doc
    }

    /// A partial document with only what changed since the last one; `None` when nothing
    /// did. Before the first full document there is nothing to be partial to: the full one
    /// is returned.
    pub fn partial(
        &mut self,
        occupants: &OccupantList,
        subject: Option<&str>,
    ) -> Option<ConferenceInfo> {
        let Some(sent) = &mut self.sent else {
            return Some(self.full(occupants, subject));
        };
        let changed: Vec<(String, Option<MucOccupant>)> = changes(sent, &occupants.occupants)
            .into_iter()
            .map(|(nick, now)| (nick.to_owned(), now.cloned()))
            .collect();
        let subject_changed = subject.is_some() && subject != self.subject.as_deref();
        if changed.is_empty() && !subject_changed {
            return None;
        }
        // Bring `sent` up to date from the changes rather than cloning the whole room.
        let mut users = Vec::with_capacity(changed.len());
        for (nick, now) in changed {
            match now {
                Some(occupant) => {
                    users.push(occupant_user(&self.room, &nick, &occupant));
                    sent.insert(nick, occupant);
                }
                None => {
                    users.push(deleted_user(&self.room, &nick));
                    sent.remove(&nick);
                }
            }
        }
        if subject_changed {
            self.subject = subject.map(str::to_owned);
        }
        let doc = ConferenceInfo {
            entity: self.room.to_uri(),
            state: State::Partial,
            version: self.next_version,
            description: subject_changed.then(|| Description {
                display_text: None,
                subject: self.subject.clone(),
            }),
            users: (!users.is_empty()).then_some(Users {
                state: State::Partial,
                users,
            }),
        };
        self.bump();
        Some(doc)
    }

    /// The version the next document will carry.
    pub fn next_version(&self) -> u32 {
        self.next_version
    }

    /// RFC 4575 §5.2: +1 per document. A 32-bit version that would wrap stays at the maximum;
    /// a subscription would need four billion NOTIFYs to get there.
    fn bump(&mut self) {
        self.next_version = self.next_version.saturating_add(1);
    }
}
