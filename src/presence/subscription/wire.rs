//! The SIP shapes the presence engine reads and writes: plain data, so the engine never sees
//! an ezk type or a socket. The SIP adapter (`sip::presence`) fills [`SipRequestIn`] and
//! [`SipResponseIn`] from the wire and renders [`OutRequest`] and [`Respond`].
//!
//! `Subscription-State` (RFC 6665 §8.2.3) and `Expires` parsing live here because they are
//! protocol rules, not adapter details.

use crate::errmap::SipStatus;

/// Identifies a request the engine sent, so its response finds its way back.
pub type ReqId = u64;
/// Identifies a server transaction the adapter holds until the engine answers it.
pub type TxId = u64;

/// An inbound SUBSCRIBE or NOTIFY, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipRequestIn {
    /// `SUBSCRIBE` or `NOTIFY` (anything else is refused with 405).
    pub method: String,
    /// Request-URI.
    pub request_uri: String,
    /// From URI (without tag).
    pub from_uri: String,
    /// From tag.
    pub from_tag: Option<String>,
    /// To URI (without tag).
    pub to_uri: String,
    /// To tag: present on in-dialog requests.
    pub to_tag: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// Contact URI (without angle brackets or header parameters).
    pub contact: Option<String>,
    /// Record-Route URIs in header order.
    pub record_route: Vec<String>,
    /// `Event` header value.
    pub event: Option<String>,
    /// `Expires` header value as sent (parsed by [`parse_expires`]).
    pub expires: Option<String>,
    /// `Accept` header values joined by commas.
    pub accept: Option<String>,
    /// `Subscription-State` header value.
    pub subscription_state: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The final response to a request the engine sent (or a synthesized 408 when none came).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipResponseIn {
    /// Status code; 408 stands for "no response" (Timer F) and 503 for "unreachable".
    pub code: u16,
    /// To tag.
    pub to_tag: Option<String>,
    /// Contact URI.
    pub contact: Option<String>,
    /// Record-Route URIs in header order.
    pub record_route: Vec<String>,
    /// `Expires` header value.
    pub expires: Option<String>,
    /// `Min-Expires` header value (423).
    pub min_expires: Option<String>,
    /// `Retry-After` seconds.
    pub retry_after: Option<String>,
}

/// Method of a request the engine sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutMethod {
    /// RFC 6665 §4.1.2.
    Subscribe,
    /// RFC 6665 §4.2.2.
    Notify,
}

impl OutMethod {
    /// The method name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutMethod::Subscribe => "SUBSCRIBE",
            OutMethod::Notify => "NOTIFY",
        }
    }
}

/// A request for the adapter to send; the response comes back as [`super::Input::Response`]
/// with the same [`ReqId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRequest {
    /// Matches the response.
    pub id: ReqId,
    /// SUBSCRIBE or NOTIFY.
    pub method: OutMethod,
    /// Request-URI: the remote target (RFC 3261 §12.2.1.1) or, for a new dialog, the AOR.
    pub request_uri: String,
    /// Route set, in request order; empty: send to the Request-URI (or the configured route).
    pub route_set: Vec<String>,
    /// `true` for the first request of a dialog (the adapter applies its static routes and
    /// outbound proxy); in-dialog requests follow the route set or the remote target.
    pub initial: bool,
    /// Our URI (From).
    pub local_uri: String,
    /// Our tag.
    pub local_tag: String,
    /// Peer URI (To).
    pub remote_uri: String,
    /// Peer tag, once known.
    pub remote_tag: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// User part for our Contact (`sip:USER@gateway`), decoded.
    pub contact_user: String,
    /// Extra headers in order (`Event`, `Expires`, `Accept`, `Subscription-State`,
    /// `Content-Type`, `Content-Language`).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A final response for the adapter to send on a held server transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Respond {
    /// Which transaction.
    pub tx: TxId,
    /// Status.
    pub status: SipStatus,
    /// Our To tag when the response creates a dialog.
    pub to_tag: Option<String>,
    /// User part for a Contact header (2xx to SUBSCRIBE).
    pub contact_user: Option<String>,
    /// Extra headers (`Expires`, `Min-Expires`, `Allow-Events`, `Accept`).
    pub headers: Vec<(&'static str, String)>,
}

impl Respond {
    /// A response with no extra headers.
    pub fn status(tx: TxId, status: SipStatus) -> Respond {
        Respond {
            tx,
            status,
            to_tag: None,
            contact_user: None,
            headers: Vec::new(),
        }
    }
}

/// `Subscription-State` values (RFC 6665 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// `active`, with the remaining seconds if given.
    Active {
        /// `expires` parameter.
        expires: Option<u32>,
    },
    /// `pending`.
    Pending {
        /// `expires` parameter.
        expires: Option<u32>,
    },
    /// `terminated`, with reason and retry-after.
    Terminated {
        /// `reason` parameter, lowercase (RFC 6665 §4.2.2: unknown reasons are treated as if
        /// absent).
        reason: Option<String>,
        /// `retry-after` parameter.
        retry_after: Option<u32>,
    },
}

impl SubState {
    /// Parses a header value; `None` if the state is missing or not one of the three. (RFC 6665
    /// §4.1.3 lets a subscriber treat an unknown state as an extension; presence defines none,
    /// so the NOTIFY is refused with 400 rather than guessed at.)
    pub fn parse(value: &str) -> Option<SubState> {
        let mut parts = value.split(';');
        let state = parts.next()?.trim().to_ascii_lowercase();
        let mut expires = None;
        let mut reason = None;
        let mut retry_after = None;
        for p in parts {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "expires" => expires = v.parse().ok(),
                "reason" => reason = Some(v.to_ascii_lowercase()),
                "retry-after" => retry_after = v.parse().ok(),
                _ => {}
            }
        }
        match state.as_str() {
            "active" => Some(SubState::Active { expires }),
            "pending" => Some(SubState::Pending { expires }),
            "terminated" => Some(SubState::Terminated {
                reason,
                retry_after,
            }),
            _ => None,
        }
    }

    /// The header value.
    pub fn render(&self) -> String {
        match self {
            SubState::Active { expires: Some(e) } => format!("active;expires={e}"),
            SubState::Active { expires: None } => "active".into(),
            SubState::Pending { expires: Some(e) } => format!("pending;expires={e}"),
            SubState::Pending { expires: None } => "pending".into(),
            SubState::Terminated {
                reason,
                retry_after,
            } => {
                let mut s = String::from("terminated");
                if let Some(r) = reason {
                    s.push_str(";reason=");
                    s.push_str(r);
                }
                if let Some(r) = retry_after {
                    s.push_str(&format!(";retry-after={r}"));
                }
                s
            }
        }
    }
}

/// `Expires` as a number of seconds; `None` for a value that is not a non-negative integer.
/// Values beyond `u32` are clamped (RFC 3261 §20.19 allows up to 2^32-1).
pub fn parse_expires(value: &str) -> Option<u32> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32),
    )
}

/// Does an `Event` header name the presence package (RFC 3856 §6.2)? Parameters such as
/// `;id=` are allowed; a list or any other package is not.
pub fn is_presence_event(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("presence"))
    })
}

/// Does an `Accept` header allow `application/pidf+xml` (absent = RFC 3856 default, yes)?
pub fn accepts_pidf(value: Option<&str>) -> bool {
    match value {
        None => true,
        Some(v) if v.trim().is_empty() => true,
        Some(v) => v.split(',').any(|t| {
            let t = t
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            t == "application/pidf+xml" || t == "application/*" || t == "*/*"
        }),
    }
}

/// Is a `Content-Type` PIDF?
pub fn is_pidf(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/pidf+xml"))
    })
}
