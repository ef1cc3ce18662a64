//! Single (page-mode) instant messages: RFC 7572 (IM-1..IM-15), XMPP `<message/>` <-> SIP
//! MESSAGE (RFC 3428).
//!
//! [`translate`] holds the pure field mappings of RFC 7572 §4 and §5 (Tables 1 and 2);
//! [`cpim`] unwraps `message/cpim` bodies (RFC 3862, IM-10); [`bounce`] is the sans-IO
//! machine that holds a SIP MESSAGE's final response while the XMPP server may still bounce
//! the translated stanza (IM-14).

pub mod bounce;
pub mod cpim;
pub mod translate;

pub use translate::{
    sip_to_xmpp, to_element, xmpp_to_sip, Limits, SipMessageIn, SipMessageOut, XmppOutcome,
};
