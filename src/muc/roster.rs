//! The room roster as an XMPP user in a SIP/MSRP room sees it, built from the conference
//! event package: RFC 4575 §4.6 (constructing coherent state) with the mapping of RFC 7702
//! §5.4 (MUC-8, MUC-9, MUC-10, MUC-30). Sans-IO: NOTIFY bodies go in, roster changes come
//! out; [`super::occupant`] turns those into XEP-0045 presences.
//!
//! Version handling (§4.6, MUC-9):
//!
//! | document | local state | result |
//! |---|---|---|
//! | any | none yet, document partial | ignored; one [`Output::Resubscribe`] to get full state |
//! | version <= local | synced | ignored (stale or duplicate NOTIFY) |
//! | full, version > local | any | replaces the roster; the differences become changes |
//! | partial, version = local + 1 | synced | applied user by user |
//! | partial, version > local + 1 | synced | a gap: [`Output::Resubscribe`] once, partials ignored until a full document |
//! | deleted root | any | every occupant leaves, [`Output::Ended`] (unsubscribe with `Expires: 0`) |
//! | malformed | any | `Err` (the NOTIFY's 400/413), and [`Output::Resubscribe`] once: an update was lost |
//!
//! The machine has `handle` and `poll_output` but no `poll_timeout`: it keeps no timers (the
//! subscription's refresh and expiry belong to the SUBSCRIBE dialog that feeds it), so it
//! takes no clock either.
//!
//! A user is an occupant while it has an endpoint in the room ([`EndpointStatus::in_room`],
//! an endpoint without `<status>` counting as connected) or no endpoint at all (a roster that
//! lists users only). An endpoint going `disconnected` therefore makes its user leave.

use std::collections::{BTreeMap, HashMap, VecDeque};

use xmpp_parsers::jid::ResourcePart;
use xmpp_parsers::muc::user::Role;

use super::confinfo::{self, ConfInfoError, ConferenceInfo, Endpoint, State, User, Users};
use crate::addr::SipAddr;

/// An occupant of the SIP room, as XMPP will show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupant {
    /// The `<user entity>` (RFC 7702 Table 2: the occupant).
    pub entity: String,
    /// The nickname: the occupant JID's resourcepart, resourceprep'd and unique in the room.
    pub nick: String,
    /// The XEP-0045 role (Table 3: `participant` unless the roles say otherwise).
    pub role: Role,
    /// The real JID from an `xmpp:` associated AOR (Table 2, "if available"), as written.
    pub real_jid: Option<String>,
    /// Whether this is the gateway's own user (gets status 110, MUC-8).
    pub is_self: bool,
}

/// A change of the roster (MUC-9), in the order the presences must go out.
#[derive(Debug, Clone, PartialEq)]
pub enum RosterChange {
    /// A new occupant (available presence).
    Joined(Occupant),
    /// An occupant left (unavailable presence).
    Left(Occupant),
    /// An occupant's nickname changed (XEP-0045 303 pair); `occupant` has the new one.
    NickChanged {
        /// The occupant after the change.
        occupant: Occupant,
        /// The nickname it had.
        old_nick: String,
    },
    /// An occupant's role changed (available presence with the new item).
    RoleChanged(Occupant),
}

/// What the roster machine is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The body of a NOTIFY with `Event: conference`.
    Notify(&'a [u8]),
    /// A new subscription dialog replaced the old one: versions start again (they are scoped
    /// to a subscription, §5.2), the next full document is diffed against the current roster.
    NewSubscription,
}

/// What the roster machine asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A roster change to send to the XMPP user as presence.
    Change(RosterChange),
    /// The room subject (MUC-10): after the initial roster always (even empty, it ends the
    /// join for XEP-0045 clients), later only when it changed.
    Subject(String),
    /// Refresh the subscription to get a full-state NOTIFY (§4.6 MUST on a version gap).
    Resubscribe,
    /// The conference is gone (§4.6): terminate the subscription; the user left the room.
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No full document applied yet; `asked`: a resubscribe is already out.
    AwaitingFull { asked: bool },
    /// Coherent at `version`.
    Synced { version: u32 },
    /// A gap or a malformed update after `version`; waiting for full state.
    Resyncing { version: u32 },
    /// The conference was deleted.
    Ended,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The user's merged state.
    user: User,
    /// The nickname the user's data asks for, before uniqueness suffixes.
    base_nick: Option<String>,
    /// Set while the user is an occupant.
    occupant: Option<Occupant>,
}

/// The roster state machine of one XMPP user in one SIP room.
#[derive(Debug)]
pub struct Roster {
    own_nick: String,
    phase: Phase,
    /// A full document was applied once: the initial roster (self last, subject) is out.
    joined: bool,
    subject: Option<String>,
    /// Users by entity (§4.5 key); a BTreeMap so that departures come out in a stable order.
    users: BTreeMap<String, Entry>,
    /// Nicknames in use -> entity, so uniqueness costs one lookup per change.
    nicks: HashMap<String, String>,
    /// The next ` (n)` suffix to try per clashing nickname, so a room where hundreds of users
    /// share one display text does not rescan the suffixes for each of them.
    next_suffix: HashMap<String, usize>,
    /// The entity of the user's own occupant, while there is one.
    own_entity: Option<String>,
    out: VecDeque<Output>,
}

impl Roster {
    /// A roster for the XMPP user who joined with `own_nick` (the nickname given to the focus
    /// with MSRP NICKNAME, MUC-5): the user whose XCON nickname or display text equals it is
    /// the self-presence.
    pub fn new(own_nick: &str) -> Roster {
        Roster {
            own_nick: prep_nick(own_nick).unwrap_or_else(|| own_nick.to_owned()),
            phase: Phase::AwaitingFull { asked: false },
            joined: false,
            subject: None,
            users: BTreeMap::new(),
            nicks: HashMap::new(),
            next_suffix: HashMap::new(),
            own_entity: None,
            out: VecDeque::new(),
        }
    }

    /// Feeds one input. `Err` is the answer to a NOTIFY whose body cannot be read (400/413,
    /// [`ConfInfoError::rejection`]); `Ok` means answer 200, even when the document was
    /// ignored as stale.
    pub fn handle(&mut self, input: Input<'_>) -> Result<(), ConfInfoError> {
        match input {
            Input::NewSubscription => {
                if self.phase != Phase::Ended {
                    self.phase = Phase::AwaitingFull { asked: true };
                }
                Ok(())
            }
            Input::Notify(body) => match confinfo::parse(body) {
                Ok(doc) => {
                    self.apply(doc);
                    Ok(())
                }
                Err(e) => {
                    self.lost_update();
                    Err(e)
                }
            },
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The user's nickname changed (MUC-15, after the switch's 200 to NICKNAME): in the next
    /// documents, a new user with this nickname is the user itself. A focus that keys users
    /// by nickname (RFC 7702 §6.2) shows the change as the old user deleted and a new one.
    pub fn set_own_nick(&mut self, nick: &str) {
        self.own_nick = prep_nick(nick).unwrap_or_else(|| nick.to_owned());
        self.own_entity = None;
    }

    /// The current occupants, sorted by entity.
    pub fn occupants(&self) -> impl Iterator<Item = &Occupant> {
        self.users.values().filter_map(|e| e.occupant.as_ref())
    }

    /// The version of the last applied document, once synced.
    pub fn version(&self) -> Option<u32> {
        match self.phase {
            Phase::Synced { version } | Phase::Resyncing { version } => Some(version),
            _ => None,
        }
    }

    /// The room subject, once known.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    fn lost_update(&mut self) {
        match self.phase {
            Phase::AwaitingFull { asked: false } => {
                self.phase = Phase::AwaitingFull { asked: true };
                self.out.push_back(Output::Resubscribe);
            }
            Phase::Synced { version } => {
                self.phase = Phase::Resyncing { version };
                self.out.push_back(Output::Resubscribe);
            }
            _ => {}
        }
    }

    fn apply(&mut self, doc: ConferenceInfo) {
        let initial = !self.joined;
        match (self.phase, doc.state) {
            (Phase::Ended, _) => {}
            (Phase::AwaitingFull { .. }, State::Partial) => self.lost_update(),
            (Phase::Synced { version } | Phase::Resyncing { version }, _)
                if doc.version <= version => {}
            (_, State::Deleted) => {
                self.flush_users();
                self.phase = Phase::Ended;
                self.out.push_back(Output::Ended);
            }
            (_, State::Full) => {
                self.joined = true;
                self.phase = Phase::Synced {
                    version: doc.version,
                };
                self.set_subject(&doc, initial);
                self.replace_users(doc.users.map(|u| u.users).unwrap_or_default(), initial);
                if initial {
                    // XEP-0045 §7.2.15: the subject ends the join, even when empty (MUC-10).
                    let subject = self.subject.clone().unwrap_or_default();
                    self.out.push_back(Output::Subject(subject));
                }
            }
            (Phase::Synced { version }, State::Partial)
                if version.checked_add(1) == Some(doc.version) =>
            {
                self.phase = Phase::Synced {
                    version: doc.version,
                };
                self.set_subject(&doc, false);
                if let Some(users) = doc.users {
                    self.apply_users(users);
                }
            }
            (Phase::Synced { .. }, State::Partial) => self.lost_update(),
            (_, State::Partial) => {}
        }
    }

    /// Records the subject; outside the initial sync a change is announced at once.
    fn set_subject(&mut self, doc: &ConferenceInfo, initial: bool) {
        let Some(subject) = doc.description.as_ref().and_then(|d| d.subject.clone()) else {
            return;
        };
        if self.subject.as_ref() != Some(&subject) {
            self.subject = Some(subject.clone());
            if !initial {
                self.out.push_back(Output::Subject(subject));
            }
        }
    }

    fn apply_users(&mut self, users: Users) {
        match users.state {
            State::Full => self.replace_users(users.users, false),
            State::Deleted => self.flush_users(),
            State::Partial => {
                // Departures first, so a nickname freed in this document is free for the rest.
                let (gone, rest): (Vec<User>, Vec<User>) = users
                    .users
                    .into_iter()
                    .partition(|u| u.state == State::Deleted);
                for user in gone {
                    self.remove(&user.entity);
                }
                for user in rest {
                    let merged = match (user.state, self.users.get(&user.entity)) {
                        (State::Partial, Some(entry)) => merge_user(entry.user.clone(), user),
                        _ => user,
                    };
                    self.upsert(merged, None);
                }
            }
        }
    }

    /// Full state for the users: everyone not listed leaves, the listed ones are replaced.
    fn replace_users(&mut self, users: Vec<User>, initial: bool) {
        let listed: std::collections::HashSet<&str> =
            users.iter().map(|u| u.entity.as_str()).collect();
        let gone: Vec<String> = self
            .users
            .keys()
            .filter(|k| !listed.contains(k.as_str()))
            .cloned()
            .collect();
        for entity in gone {
            self.remove(&entity);
        }
        // MUC-8: in the initial roster the user's own presence comes last.
        let mut own_join = None;
        for user in users {
            let held = initial.then_some(&mut own_join);
            self.upsert(user, held);
        }
        if let Some(change) = own_join {
            self.out.push_back(Output::Change(change));
        }
    }

    fn flush_users(&mut self) {
        let all: Vec<String> = self.users.keys().cloned().collect();
        for entity in all {
            self.remove(&entity);
        }
    }

    fn remove(&mut self, entity: &str) {
        if let Some(entry) = self.users.remove(entity) {
            if let Some(occupant) = entry.occupant {
                self.nicks.remove(&occupant.nick);
                if occupant.is_self && self.own_entity.as_deref() == Some(entity) {
                    self.own_entity = None;
                }
                self.out
                    .push_back(Output::Change(RosterChange::Left(occupant)));
            }
        }
    }

    /// Stores the user's new state and announces what changed for XMPP. With `hold_own`, the
    /// user's own join is parked there instead of queued.
    fn upsert(&mut self, user: User, hold_own: Option<&mut Option<RosterChange>>) {
        let entity = user.entity.clone();
        let in_room = in_room(&user);
        let before = self.users.remove(&entity);
        if before.is_none() && !self.make_room(in_room) {
            return;
        }
        let (old, old_base) = match before {
            Some(entry) => (entry.occupant, entry.base_nick),
            None => (None, None),
        };
        let base_nick = base_nick(&user);
        let occupant = match (&base_nick, in_room) {
            (Some(base), true) => {
                let nick = match &old {
                    // Same requested nickname: keep the one already shown, suffix included.
                    Some(o) if old_base.as_ref() == Some(base) => o.nick.clone(),
                    _ => {
                        if let Some(o) = &old {
                            self.nicks.remove(&o.nick);
                        }
                        self.unique_nick(base, &entity)
                    }
                };
                self.nicks.insert(nick.clone(), entity.clone());
                let is_self = match &old {
                    Some(o) => o.is_self,
                    None => *base == self.own_nick && self.own_entity.is_none(),
                };
                if is_self {
                    self.own_entity = Some(entity.clone());
                }
                Some(Occupant {
                    entity: entity.clone(),
                    nick,
                    role: role_of(&user.roles),
                    real_jid: real_jid(&user.associated_aors),
                    is_self,
                })
            }
            _ => {
                if let Some(o) = &old {
                    self.nicks.remove(&o.nick);
                    // After a nickname change the user's new entity may already be the
                    // own one (a document can list it before deleting the old).
                    if o.is_self && self.own_entity.as_deref() == Some(entity.as_str()) {
                        self.own_entity = None;
                    }
                }
                None
            }
        };
        let change = match (old, &occupant) {
            (None, Some(new)) => Some(RosterChange::Joined(new.clone())),
            (Some(old), None) => Some(RosterChange::Left(old)),
            (Some(old), Some(new)) if old.nick != new.nick => Some(RosterChange::NickChanged {
                occupant: new.clone(),
                old_nick: old.nick,
            }),
            (Some(old), Some(new)) if old.role != new.role => {
                Some(RosterChange::RoleChanged(new.clone()))
            }
            _ => None,
        };
        self.users.insert(
            entity,
            Entry {
                user,
                base_nick,
                occupant,
            },
        );
        match (change, hold_own) {
            (Some(RosterChange::Joined(o)), Some(slot)) if o.is_self => {
                *slot = Some(RosterChange::Joined(o));
            }
            (Some(change), _) => self.out.push_back(Output::Change(change)),
            (None, _) => {}
        }
    }

    /// Keeps the stored users within [`confinfo::MAX_USERS`] across partial documents (each
    /// document is bounded, their sum is not): with the table full, a new user is only stored
    /// if it is in the room and a user who is not (a disconnected one, which shows nothing in
    /// XMPP) can be forgotten for it. Otherwise the new user is not shown: the room is past
    /// the gateway's limit.
    fn make_room(&mut self, for_occupant: bool) -> bool {
        if self.users.len() < confinfo::MAX_USERS {
            return true;
        }
        if !for_occupant {
            return false;
        }
        let absent = self
            .users
            .iter()
            .find(|(_, e)| e.occupant.is_none())
            .map(|(k, _)| k.clone());
        match absent {
            Some(key) => self.users.remove(&key).is_some(),
            None => false,
        }
    }

    /// The number of users held (occupants and users listed but not in the room).
    pub fn stored_users(&self) -> usize {
        self.users.len()
    }

    /// `base`, or `base (2)`, `base (3)`, ... when another entity shows that nickname (RFC
    /// 7702 §7: the gateway adjusts clashing nicknames). Suffixes are not reused within a
    /// roster, so each clash costs about one try. Bounded: at most one more try than there
    /// are occupants.
    fn unique_nick(&mut self, base: &str, entity: &str) -> String {
        let taken = |nicks: &HashMap<String, String>, nick: &str| {
            nicks.get(nick).is_some_and(|owner| owner != entity)
        };
        if !taken(&self.nicks, base) {
            return base.to_owned();
        }
        let first = self.next_suffix.get(base).copied().unwrap_or(2);
        for n in first..=first + self.nicks.len() {
            if let Some(nick) = prep_nick(&format!("{base} ({n})")) {
                if !taken(&self.nicks, &nick) {
                    if self.next_suffix.len() >= confinfo::MAX_USERS {
                        // Only a hint; forgetting it costs a few more tries later.
                        self.next_suffix.clear();
                    }
                    self.next_suffix.insert(base.to_owned(), n + 1);
                    return nick;
                }
            }
        }
        // Unreachable in practice (there are fewer occupants than tries); the entity itself
        // is unique among users.
        format!("{base} ({entity})")
    }
}

mod merge;
use merge::*;
