//! Roster changes to XEP-0045 stanzas for an XMPP user in a SIP/MSRP room: RFC 7702 §5.4
//! Tables 2 and 3 (MUC-8), the nickname change pair of XEP-0045 §7.6 (MUC-9, MUC-15) and the
//! subject message of XEP-0045 §7.2.15 (MUC-10).
//!
//! | roster change | presences, each `from='room/nick'` `to=` the XMPP user |
//! |---|---|
//! | joined | available, `<item affiliation='none' role=…/>` (`jid` only when the room is shown as non-anonymous) |
//! | left | `type='unavailable'`, `<item affiliation='none' role='none'/>` |
//! | nick changed | unavailable from the old nick with `<item nick='new'/>` and status 303, then available from the new nick |
//! | role changed | available with the new role |
//!
//! Every presence about the user itself carries status 110; [`super::roster::Roster`] queues
//! the user's own join last in the initial roster, as MUC-8 requires. Affiliation is always
//! `none` (Table 3: RFC 4575 has nothing to map from).

use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::user::{Affiliation, Item, Role, Status};
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Type};

use super::roster::{Occupant, RosterChange};
use crate::addr::{BareJid, FullJid, Jid};
use crate::errmap::{DefinedCondition, Rejection, Target};
use crate::xmpp::xml::set_attr;

/// How the room is shown to one XMPP user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// The room's JID under the gateway (RFC 7702 Table 2: from `<conference-info entity>`).
    pub room: BareJid,
    /// The XMPP user's full JID (the `to` of every stanza).
    pub to: Jid,
    /// Whether real JIDs from `xmpp:` associated AORs go into `<item jid>`: only for a room
    /// shown as non-anonymous (XEP-0045 §4.2), since the JID is the occupant's identity.
    pub show_real_jids: bool,
}

/// The presences for one roster change, in sending order.
///
/// Errors: a nickname that is not a valid resourcepart (`<jid-malformed/>`; the roster only
/// produces valid ones, so this guards hand-built occupants).
pub fn presences(change: &RosterChange, view: &RoomView) -> Result<Vec<Presence>, Rejection> {
    Ok(match change {
        RosterChange::Joined(o) | RosterChange::RoleChanged(o) => {
            vec![available(o, view)?]
        }
        RosterChange::Left(o) => {
            let x = muc_user(
                Item::new(Affiliation::None, Role::None),
                o.is_self.then_some(Status::SelfPresence),
            );
            vec![Presence::new(Type::Unavailable)
                .with_from(occupant_jid(view, &o.nick)?)
                .with_to(view.to.clone())
                .with_payloads(vec![x])]
        }
        RosterChange::NickChanged { occupant, old_nick } => {
            let x = muc_user(
                item(occupant, view).with_nick(occupant.nick.clone()),
                [
                    Some(Status::NewNick),
                    occupant.is_self.then_some(Status::SelfPresence),
                ]
                .into_iter()
                .flatten(),
            );
            let leave = Presence::new(Type::Unavailable)
                .with_from(occupant_jid(view, old_nick)?)
                .with_to(view.to.clone())
                .with_payloads(vec![x]);
            vec![leave, available(occupant, view)?]
        }
    })
}

/// The subject message (MUC-10, XEP-0045 §7.2.15): `type='groupchat'` from the room, always
/// with a `<subject/>`, empty when the room has none. RFC 7702 Example 11 omits the type and
/// comes from `room/mayor`; the focus does not say who set the subject, so it comes from the
/// room itself (checklist §8). The caller sets the `id`.
pub fn subject_message(view: &RoomView, subject: &str) -> Message {
    let mut message = Message::new_with_type(MessageType::Groupchat, Some(view.to.clone()));
    message.from = Some(Jid::from(view.room.clone()));
    message
        .subjects
        .insert(Default::default(), subject.to_owned());
    message
}

fn available(o: &Occupant, view: &RoomView) -> Result<Presence, Rejection> {
    let x = muc_user(item(o, view), o.is_self.then_some(Status::SelfPresence));
    Ok(Presence::new(Type::None)
        .with_from(occupant_jid(view, &o.nick)?)
        .with_to(view.to.clone())
        .with_payloads(vec![x]))
}

/// `<x xmlns='…muc#user'>` with the item first and then the status codes, as in the XEP-0045
/// examples. Built by hand because xmpp-parsers 0.23 leaves out `affiliation='none'` and
/// `role='none'` when writing an `<item/>` (their default) while its own reader, like
/// XEP-0045, requires both: Table 3 wants `affiliation='none'` on the wire.
fn muc_user(item: Item, statuses: impl IntoIterator<Item = Status>) -> Element {
    let (affiliation, role) = (affiliation_name(&item.affiliation), role_name(&item.role));
    let mut item = Element::from(item);
    set_attr(&mut item, "affiliation", affiliation);
    set_attr(&mut item, "role", role);
    let mut x = Element::builder("x", ns::MUC_USER).append(item).build();
    for status in statuses {
        x.append_child(Element::from(status));
    }
    x
}

fn affiliation_name(a: &Affiliation) -> &'static str {
    match a {
        Affiliation::Owner => "owner",
        Affiliation::Admin => "admin",
        Affiliation::Member => "member",
        Affiliation::Outcast => "outcast",
        Affiliation::None => "none",
    }
}

fn role_name(r: &Role) -> &'static str {
    match r {
        Role::Moderator => "moderator",
        Role::Participant => "participant",
        Role::Visitor => "visitor",
        Role::None => "none",
    }
}

/// Table 3: `affiliation='none'`, the role from `<roles>`; Table 2: the real JID if available
/// and the room shows them.
fn item(o: &Occupant, view: &RoomView) -> Item {
    let item = Item::new(Affiliation::None, o.role.clone());
    match o.real_jid.as_deref().filter(|_| view.show_real_jids) {
        Some(jid) => match FullJid::new(jid) {
            Ok(jid) => item.with_jid(jid),
            Err(_) => item,
        },
        None => item,
    }
}

fn occupant_jid(view: &RoomView, nick: &str) -> Result<FullJid, Rejection> {
    view.room.with_resource_str(nick).map_err(|e| {
        Rejection::from_xmpp(
            DefinedCondition::JidMalformed,
            Target::Full,
            format!("nickname cannot be a resourcepart: {e}"),
        )
    })
}
