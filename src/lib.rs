//! stox: a SIP <-> XMPP gateway, run as an XMPP server component (XEP-0114), implementing
//! the IETF STOX mappings.
//!
//! Module map (data flows left to right and back):
//!
//! ```text
//!  XMPP server --- xmpp::link ---+                        +--- sip::inbound --- SIP network
//!                                |--> core::Router <------|
//!  (component stream, raw        |    (one inbox, bounce  |    (ezk endpoint, our Layer,
//!   elements, reconnect)         |     window, one task   +--- sip::outbound   routing)
//!                                |     per conversation)
//!           pure translators:  addr (RFC 7247 §6)  errmap (RFC 7247 §7)
//!                              im (RFC 7572)  xmpp::service (disco, XEP-0100, ping, version)
//! ```
//!
//! See ARCHITECTURE.md for the message walk-through.
#![warn(missing_docs)]

pub mod access;
pub mod addr;
pub mod app;
pub mod chat;
pub mod config;
pub mod core;
pub mod doctor;
pub mod errmap;
pub mod im;
pub mod media;
pub mod muc;
pub mod ops;
pub mod presence;
pub mod sip;
pub mod store;
pub mod xmpp;
