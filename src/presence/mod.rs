//! Presence notifications between XMPP and SIP: RFC 8048 §6 (checklist PRES-15..PRES-20)
//! over PIDF (RFC 3863), with the XMPP `<show/>` extension of RFC 8048 §6.2 note 7 and RPID
//! activities (RFC 4480 §3.2, in an RFC 4479 `<person>`).
//!
//! * [`pidf`]: the document model, a parser for hostile bodies and (from the private
//!   `write` module) the writer.
//! * [`translate`]: the two field mappings, pure functions returning
//!   [`Rejection`](crate::errmap::Rejection)s on failure.
//!
//! Subscriptions, dialogs and refresh timers (PRES-1..PRES-14, PRES-21..PRES-25) are not here:
//! they belong in a sans-IO `subscription.rs` that calls these functions.
//!
//! # XMPP -> SIP (RFC 8048 §6.2 Table 1, [`translate::xmpp_to_pidf`])
//!
//! | XMPP | PIDF / SIP | rule |
//! |---|---|---|
//! | each available resource | one `<tuple>` | PRES-19: full state, one tuple per resource; none -> one closed tuple `offline` |
//! | resourcepart | `<tuple id>` | `ID-` + resource, bytes outside `[A-Za-z0-9.-]` as `_HH` (PRES-16 note 2) |
//! | no `type` | `<basic>open</basic>` | MUST |
//! | `type='unavailable'` | tuple removed | PRES-19; the caller drops the resource from its cache |
//! | `<show/>` | `<show xmlns='jabber:client'>` in `<status>` | RECOMMENDED (note 7) |
//! | `<status xml:lang>` | `<note xml:lang>` | a status without language inherits the stanza's |
//! | `xml:lang` | `Content-Language` | distinct note languages, comma-separated |
//! | `<priority/>` p | `<contact priority>` | p < 0: omitted (MUST NOT map); else `floor(1000 p / 127)` thousandths |
//! | full JID | `<contact>` | `sip:user@domain;gr=resource` (ADDR-8) |
//! | bare JID | `entity` | `pres:user@domain` |
//! | `id` | — | no mapping |
//!
//! Priority examples (PRES-17): 0 -> `0`, 1 -> `0.007`, 2 -> `0.015`, 5 -> `0.039`,
//! 64 -> `0.503`, 126 -> `0.992`, 127 -> `1`, -1 -> none. Reverse: `round(127 q)`, which
//! gives back the XMPP value exactly.
//!
//! # Show <-> RPID activity (PRES-18, optional, for RPID-only SIP clients)
//!
//! XMPP -> SIP: one `<rpid:activities>` in `<dm:person id='p1'>`, from the most available
//! resource (chat > available > away > xa > dnd, RFC 8048 §6.2 last paragraph):
//!
//! | `<show/>` | activity |
//! |---|---|
//! | absent, `chat` | none (no `<dm:person>`; `open` says it) |
//! | `away`, `xa` | `<rpid:away/>` |
//! | `dnd` | `<rpid:busy/>` |
//!
//! SIP -> XMPP (only when the tuple has no `<show xmlns='jabber:client'>`; several activities:
//! the least available wins, dnd > xa > away):
//!
//! | activity | `<show/>` |
//! |---|---|
//! | `on-the-phone`, `meeting`, `busy`, `performance`, `presentation`, `appointment` | `dnd` |
//! | `vacation`, `sleeping`, `holiday`, `permanent-absence` | `xa` |
//! | `away`, `steering`, `travel`, `in-transit`, `breakfast`, `lunch`, `dinner`, `meal`, `shopping` | `away` |
//! | `looking-for-work`, `playing`, `spectator`, `tv`, `working`, `worship`, `unknown`, `other` | none |
//!
//! # SIP -> XMPP (RFC 8048 §6.3 Table 2, [`translate::pidf_to_xmpp`])
//!
//! | PIDF / SIP | XMPP | rule |
//! |---|---|---|
//! | each tuple with `<basic>` | one `<presence/>` | PRES-20 IMPL; tuples without `<basic>` say nothing |
//! | `<basic>open</basic>` | no `type` | MUST |
//! | `<basic>closed</basic>` | `type='unavailable'` | MUST |
//! | `entity` | `from` (bare) | must map into the component domain, else 403 |
//! | contact `gr`, else tuple id | `from` resource | `ID-` stripped and `_HH` decoded (example P4) |
//! | `<show xmlns='jabber:client'>` | `<show/>` | note 3; else from RPID (table above) |
//! | `<contact priority>` q | `<priority/>` | `round(127 q)`; absent -> 0 (XMPP default) |
//! | `<note xml:lang>` | `<status xml:lang>` | tuple notes, else document notes, else person notes |
//! | `Content-Language` | `xml:lang` of statuses without one | first tag |
//! | watcher (`To`) | `to` | given by the caller |
//!
//! # Hostile bodies ([`pidf::parse`])
//!
//! | input | error | SIP |
//! |---|---|---|
//! | over 64 KiB | `TooLarge` | 413 |
//! | over 1024 elements / 64 attributes on one element / 64 tuples | `TooManyElements` / `TooManyAttributes` / `TooManyTuples` | 413 |
//! | nested deeper than 32 | `TooDeep` | 400 |
//! | not UTF-8, or another declared encoding | `NotUtf8` | 400 |
//! | truncated, DTD, entity, PI, duplicate attribute, name or attribute over 4 KiB | `Xml` | 400 |
//! | root not `{urn:ietf:params:xml:ns:pidf}presence` | `NotPidf` | 400 |
//! | no `entity`, tuple without `id`, duplicate tuple ids | `MissingEntity`, `MissingTupleId`, `DuplicateTupleId` | 400 |

pub mod pidf;
pub mod subscription;
pub mod translate;
mod write;

pub use pidf::{parse, to_xml, PidfError, PresenceDoc};
pub use translate::{pidf_to_xmpp, xmpp_to_pidf, NotifyContext, ResourcePresence, SipPresence};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod peer_corpus_tests;
#[cfg(test)]
mod pidf_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod translate_s2x_tests;
#[cfg(test)]
mod translate_tests;
#[cfg(test)]
mod write_tests;
