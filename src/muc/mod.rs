//! Groupchat between XMPP multi-user chat (XEP-0045) and SIP/MSRP chat rooms: RFC 7702, with
//! the conference event package of RFC 4575 (checklist part 5, MUC-1..MUC-32).
//!
//! This is the pure groundwork of the feature; the dialogs (INVITE, SUBSCRIBE/NOTIFY), MSRP
//! and the actor wiring come later and call these pieces.
//!
//! * [`confinfo`]: the RFC 4575 document model, a bounded parser for hostile NOTIFY bodies and
//!   the writer (full and partial documents).
//! * [`roster`] (§5, XMPP user in a SIP room): the sans-IO roster machine that applies full and
//!   partial NOTIFYs in version order (RFC 4575 §4.6, MUC-9) and reports joins, departures,
//!   nickname and role changes, the subject (MUC-10) and when to re-SUBSCRIBE for full state.
//! * [`occupant`]: those changes as XEP-0045 presences (RFC 7702 Tables 2 and 3, MUC-8, MUC-15)
//!   and the subject message.
//! * [`focus`] (§6, SIP user in an XMPP room): the room's occupant presences collected until
//!   the self-presence (MUC-21, MUC-22) and rendered as the first full NOTIFY, then as partial
//!   documents holding only the changed users.
//!
//! # SIP -> XMPP (RFC 7702 §5.4 Tables 2 and 3)
//!
//! | RFC 4575 | XMPP | rule |
//! |---|---|---|
//! | `<conference-info entity>` | room JID | given by the caller ([`occupant::RoomView`]) |
//! | `<subject>` | `<message type='groupchat'><subject/>` | after the initial roster, even empty (MUC-10) |
//! | `<user entity>` | occupant | key of the roster |
//! | XCON `nickname`, else `<display-text>`, else `gr`, else user part | occupant JID resourcepart | MUC-30; clashes get ` (2)`, ` (3)`… |
//! | `<associated-aors>` `xmpp:` URI | `<item jid>` | only when the room is shown non-anonymous |
//! | `<roles><entry>participant` | `role='participant'` | `moderator`/`chair`/`administrator` -> moderator, `visitor`/`observer`/`listener` -> visitor (IMPL) |
//! | — | `affiliation='none'` | always |
//! | endpoints all `disconnected`/pending…, user `deleted` | `type='unavailable'` | MUC-9 |
//!
//! # XMPP -> SIP (RFC 7702 §6.2)
//!
//! | XMPP | RFC 4575 |
//! |---|---|
//! | room | `<conference-info entity='sip:room@host'>` |
//! | occupant `room/Nick` | `<user entity='sip:room@host;gr=Nick'>`, `<display-text>Nick` |
//! | `role` | `<roles><entry>` with the role name |
//! | available | one `connected` endpoint with a `message` medium |
//! | unavailable | `<user state='deleted'/>` in a partial document |
//!
//! # Errata followed (checklist §8 and this module)
//!
//! * RFC 7702 Examples 9 and 32 print conference-info without its namespace; the parser
//!   requires `urn:ietf:params:xml:ns:conference-info` (RFC 4575 §4.2) and the fixtures add it.
//! * RFC 7702 Example 32 puts two `<uri>`s in one `<conf-uris><entry>` (the schema allows one)
//!   and leaves out the subscriber's own `<user>`; our documents list every occupant.
//! * RFC 7702 Example 11's subject message has no `type`; ours is `groupchat` (XEP-0045).
//! * RFC 4575 §7.2's partial example has a `<users>` without `state` (default `full`, which
//!   would drop 31 of 32 participants); inside a partial document it is read as partial.

pub mod bridge;
pub mod confinfo;
mod confinfo_read;
mod confinfo_write;
pub mod focus;
pub mod guest;
pub mod occupant;
pub mod roster;
mod xml_reader;

pub use confinfo::{parse, to_xml, ConfInfoError, ConferenceInfo};

#[cfg(test)]
mod confinfo_tests;
#[cfg(test)]
mod focus_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod roster_tests;
