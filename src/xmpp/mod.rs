//! XMPP side: the XEP-0114 component link ([`link`]) and the component's own IQ services
//! ([`service`]: XEP-0030 disco, XEP-0100 gateway, XEP-0199 ping, XEP-0092 version).

pub mod adhoc;
pub mod link;
pub mod service;
pub mod xml;

pub use link::{LinkConfig, LinkDown, LinkEvent, XmppHandle};
