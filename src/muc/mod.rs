//! Groupchat between XMPP multi-user chat (XEP-0045) and SIP/MSRP chat rooms: RFC 7702, with
//! the conference event package of RFC 4575 (checklist part 5, MUC-1..MUC-32).
//!
//! This is the pure groundwork; dialogs, MSRP and the actor wiring come later.
//!
//! * [`confinfo`]: the RFC 4575 document model, a bounded parser for hostile NOTIFY bodies and
//!   the writer (full and partial documents).

pub mod confinfo;
mod confinfo_write;
mod xml_reader;

pub use confinfo::{parse, to_xml, ConfInfoError, ConferenceInfo};

#[cfg(test)]
mod confinfo_tests;
