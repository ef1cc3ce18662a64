//! SIP side: the ezk endpoint (listeners, transactions), our `Layer` that turns inbound
//! requests into router events ([`inbound`]), and outbound MESSAGE sending with the
//! configured routing ([`outbound`]): static routes, then the outbound proxy, then RFC 3263
//! (NAPTR/SRV/A, done by ezk) on the Request-URI (GEN-1, GEN-2).

pub mod budget;
pub mod call;
pub mod gate;
pub mod inbound;
pub mod invite;
pub mod outbound;
pub mod presence;
pub mod retrans;
pub mod sockbuf;
pub mod tls;

use ezk_sip_types::uri::SipUri;

pub use inbound::{Responder, SipEvent};
pub use outbound::{SendFailure, SipClient};

/// Methods the gateway handles; sent in `Allow` (RFC 3261 §20.5).
pub const ALLOW: &str = "MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY, INVITE, ACK, BYE";

/// Parse a SIP URI with ezk's parser (used by config validation and routing).
pub fn parse_uri(s: &str) -> Result<SipUri, String> {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s);
    if !(s.starts_with("sip:") || s.starts_with("sips:")) {
        return Err("not a sip: or sips: URI".into());
    }
    s.parse::<SipUri>()
        .map_err(|e| format!("invalid SIP URI: {e:?}"))
}
