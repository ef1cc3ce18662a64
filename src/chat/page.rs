//! Typing and receipts for page-mode chat (SIP MESSAGE, RFC 3428), where no MSRP session
//! carries them: chat states <-> isComposing documents as MESSAGE bodies (RFC 3994 §3.1,
//! CHAT-13 Tables C1/C2) and XEP-0184 receipts / XEP-0333 displayed markers <-> IMDN
//! (RFC 5438: CPIM-wrapped requests and `message/imdn+xml` notifications).
//!
//! IMDN requests are only sent to SIP users whose client showed it speaks IMDN (it asked us
//! for a notification): a client without CPIM support would show the CPIM wrapper as text.
//! A bare 200 to a MESSAGE is never turned into a receipt.

use super::iscomposing;
use crate::im::cpim::CpimContent;
use crate::im::translate::media_type;
use std::collections::{HashMap, HashSet, VecDeque};

/// The IMDN namespace (RFC 5438 §5).
pub const IMDN_NS: &str = "urn:ietf:params:imdn";
const IMDN_XML_NS: &str = "urn:ietf:params:xml:ns:imdn";
/// Content-Type of notifications.
pub const IMDN_CT: &str = "message/imdn+xml";

/// What an inbound MESSAGE body is, beyond plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Special {
    /// An isComposing document (never shown as text).
    Composing(iscomposing::IsComposing),
    /// An IMDN notification about one of our messages.
    Notification {
        /// The `<message-id>` it is about.
        message_id: String,
        /// Delivered (XEP-0184) or displayed (XEP-0333).
        kind: Disposition,
        /// Positive outcome?
        ok: bool,
    },
}

/// The two notifications the gateway maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// `positive-delivery` / `<delivered/>` <-> XEP-0184 `<received/>`.
    Delivered,
    /// `display` / `<displayed/>` <-> XEP-0333 `<displayed/>`.
    Displayed,
}

/// The IMDN request of an inbound CPIM message (RFC 5438 §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdnRequest {
    /// `imdn.Message-ID`.
    pub message_id: String,
    /// `positive-delivery` asked.
    pub delivery: bool,
    /// `display` asked.
    pub display: bool,
}

/// Classify an inbound MESSAGE body by content type; `None` = ordinary content.
pub fn classify(content_type: &str, body: &[u8]) -> Option<Special> {
    let media = media_type(content_type);
    if media == iscomposing::CONTENT_TYPE {
        return iscomposing::parse(body).map(Special::Composing);
    }
    if media == "message/cpim" {
        let inner = crate::im::cpim::unwrap(body)?;
        let inner_media = media_type(&inner.content_type);
        if inner_media == iscomposing::CONTENT_TYPE {
            return iscomposing::parse(inner.body).map(Special::Composing);
        }
        if inner_media == IMDN_CT {
            return parse_notification(inner.body);
        }
    }
    None
}

/// Whether the body says it is an isComposing document or an IMDN (directly or inside CPIM):
/// when [`classify`] still finds nothing, the body is malformed (400), not of an unsupported
/// type (415, which would tell the sender to stop sending isComposing at all).
pub fn claims_special(content_type: &str, body: &[u8]) -> bool {
    let media = media_type(content_type);
    if media == iscomposing::CONTENT_TYPE {
        return true;
    }
    media == "message/cpim"
        && crate::im::cpim::unwrap(body).is_some_and(|inner| {
            let m = media_type(&inner.content_type);
            m == iscomposing::CONTENT_TYPE || m == IMDN_CT
        })
}

/// The IMDN request of a CPIM body, if it has one.
pub fn imdn_request(content_type: &str, body: &[u8]) -> Option<ImdnRequest> {
    if media_type(content_type) != "message/cpim" {
        return None;
    }
    let inner = crate::im::cpim::unwrap(body)?;
    request_of(&inner)
}

fn request_of(c: &CpimContent<'_>) -> Option<ImdnRequest> {
    let id = c.ns_header(IMDN_NS, "Message-ID")?.trim().to_string();
    // The id goes back verbatim in our notification's XML (`<message-id>`); a control
    // character there would make it ill-formed (or, for CR, change it), so the sender could
    // not correlate it. RFC 5438 §10 makes the id a CPIM Token, which has none.
    if !id.chars().all(is_token_char) {
        return None;
    }
    let dn = c
        .ns_header(IMDN_NS, "Disposition-Notification")?
        .to_ascii_lowercase();
    let tokens: Vec<&str> = dn.split(',').map(str::trim).collect();
    let req = ImdnRequest {
        message_id: id,
        delivery: tokens.contains(&"positive-delivery"),
        display: tokens.contains(&"display"),
    };
    (!req.message_id.is_empty() && (req.delivery || req.display)).then_some(req)
}

/// RFC 3862 §3.6 `TOKENCHAR`: ASCII other than controls, space and separators, or any
/// non-ASCII character (here: that XML can carry).
fn is_token_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
    } else {
        !c.is_control() && !matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }
}

fn parse_notification(body: &[u8]) -> Option<Special> {
    let el = crate::presence::pidf::read_xml(body).ok()?;
    if el.name() != "imdn" || el.ns() != IMDN_XML_NS {
        return None;
    }
    let message_id = el
        .get_child("message-id", IMDN_XML_NS)?
        .text()
        .trim()
        .to_string();
    let (kind, node) = if let Some(d) = el.get_child("delivery-notification", IMDN_XML_NS) {
        (Disposition::Delivered, d)
    } else {
        (
            Disposition::Displayed,
            el.get_child("display-notification", IMDN_XML_NS)?,
        )
    };
    let status = node.get_child("status", IMDN_XML_NS)?;
    let ok =
        status.has_child("delivered", IMDN_XML_NS) || status.has_child("displayed", IMDN_XML_NS);
    Some(Special::Notification {
        message_id,
        kind,
        ok,
    })
}

/// `<sip:...>` for CPIM address headers.
fn angle(uri: &str) -> String {
    format!("<{uri}>")
}

/// RFC 3339 UTC time for `DateTime`.
pub fn datetime(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm): no calendar crate for one timestamp.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Wrap a text body as a CPIM message asking for notifications (RFC 5438 §6.2, §6.3).
pub fn wrap_request(
    from: &str,
    to: &str,
    imdn_id: &str,
    display: bool,
    unix: i64,
    text: &str,
) -> String {
    let dn = if display {
        "positive-delivery, display"
    } else {
        "positive-delivery"
    };
    format!(
        "From: {}\r\nTo: {}\r\nDateTime: {}\r\nNS: imdn <{IMDN_NS}>\r\nimdn.Message-ID: {imdn_id}\r\nimdn.Disposition-Notification: {dn}\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{text}",
        angle(from),
        angle(to),
        datetime(unix),
        text.len()
    )
}

/// A notification for `orig_id` (RFC 5438 §7.2.1.1 / §7.2.1.2), CPIM-wrapped.
pub fn notification(
    from: &str,
    to: &str,
    own_id: &str,
    orig_id: &str,
    kind: Disposition,
    unix: i64,
) -> String {
    let inner = match kind {
        Disposition::Delivered => {
            "<delivery-notification><status><delivered/></status></delivery-notification>"
        }
        Disposition::Displayed => {
            "<display-notification><status><displayed/></status></display-notification>"
        }
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<imdn xmlns=\"{IMDN_XML_NS}\"><message-id>{}</message-id><datetime>{}</datetime><recipient-uri>{}</recipient-uri>{inner}</imdn>",
        xml_escape(orig_id),
        datetime(unix),
        xml_escape(from)
    );
    format!(
        "From: {}\r\nTo: {}\r\nDateTime: {}\r\nNS: imdn <{IMDN_NS}>\r\nimdn.Message-ID: {own_id}\r\n\r\nContent-Type: {IMDN_CT}\r\nContent-Disposition: notification\r\nContent-Length: {}\r\n\r\n{xml}",
        angle(from),
        angle(to),
        datetime(unix),
        xml.len()
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a sent MESSAGE asked for, keyed by its `imdn.Message-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The XMPP stanza id to acknowledge.
    pub xmpp_id: String,
    /// The XMPP sender (full JID).
    pub xmpp_user: String,
    /// The SIP user's JID (`from` of the receipt).
    pub sip_user: String,
}

/// What a delivered SIP message asked for, keyed by the XMPP stanza id we gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The request.
    pub request: ImdnRequest,
    /// The SIP sender's URI (`To` of the notification).
    pub sip_from: String,
    /// Our user's SIP URI (`From` of the notification).
    pub sip_to: String,
    /// Notifications already sent (each at most once).
    pub done: HashSet<Disposition>,
}

/// Bounded bookkeeping for page-mode typing and receipts.
#[derive(Debug, Default)]
pub struct PageState {
    sent: HashMap<String, Sent>,
    sent_order: VecDeque<String>,
    delivered: HashMap<String, Delivered>,
    delivered_order: VecDeque<String>,
    imdn_peers: HashSet<String>,
    composing: HashSet<(String, String)>,
    /// SIP users composing toward XMPP users: (SIP JID, XMPP JID) -> (until, thread).
    peer_composing: HashMap<(String, String), (std::time::Instant, String)>,
}

/// Entries of each map (the oldest go first).
const KEEP: usize = 4096;

impl PageState {
    /// Remember a MESSAGE we sent with an IMDN request.
    pub fn sent(&mut self, imdn_id: String, s: Sent) {
        bounded_insert(&mut self.sent, &mut self.sent_order, imdn_id, s);
    }

    /// A notification for one of ours.
    pub fn take_sent(&mut self, imdn_id: &str, kind: Disposition) -> Option<Sent> {
        match kind {
            // Displayed comes after delivered: keep the entry for it.
            Disposition::Delivered => self.sent.get(imdn_id).cloned(),
            Disposition::Displayed => self.sent.remove(imdn_id),
        }
    }

    /// Remember a SIP message that asked for notifications, under the XMPP id we gave it;
    /// its sender's client speaks IMDN.
    pub fn delivered(&mut self, xmpp_id: String, aor: String, d: Delivered) {
        self.imdn_peers.insert(aor);
        if self.imdn_peers.len() > KEEP {
            self.imdn_peers.clear();
        }
        bounded_insert(&mut self.delivered, &mut self.delivered_order, xmpp_id, d);
    }

    /// The XMPP user's receipt or marker for `xmpp_id`: the notification to send, once.
    pub fn notify(&mut self, xmpp_id: &str, kind: Disposition) -> Option<Delivered> {
        let d = self.delivered.get_mut(xmpp_id)?;
        let wanted = match kind {
            Disposition::Delivered => d.request.delivery,
            Disposition::Displayed => d.request.display,
        };
        if !wanted || !d.done.insert(kind) {
            return None;
        }
        Some(d.clone())
    }

    /// Has this SIP user's client asked us for IMDN before?
    pub fn speaks_imdn(&self, aor: &str) -> bool {
        self.imdn_peers.contains(aor)
    }

    /// Track the composing state we told a SIP user; returns whether a document is due
    /// (only changes are sent, and "idle" only after "active").
    pub fn composing(&mut self, pair: (String, String), active: bool) -> bool {
        if active {
            self.composing.insert(pair)
        } else {
            self.composing.remove(&pair)
        }
    }

    /// A SIP user's isComposing: `Some(until)` while active (RFC 3994 §4: its refresh, or
    /// 120 s), `None` for idle.
    pub fn peer_composing(
        &mut self,
        pair: (String, String),
        until: Option<std::time::Instant>,
        thread: String,
    ) {
        match until {
            Some(t) => {
                if self.peer_composing.len() < KEEP {
                    self.peer_composing.insert(pair, (t, thread));
                }
            }
            None => {
                self.peer_composing.remove(&pair);
            }
        }
    }

    /// A SIP user's text message arrived: it ends the composing state (RFC 3994 §3.3).
    pub fn peer_message(&mut self, pair: &(String, String)) {
        self.peer_composing.remove(pair);
    }

    /// When the next lapsed composing state is due.
    pub fn next_deadline(&self) -> Option<std::time::Instant> {
        self.peer_composing.values().map(|(t, _)| *t).min()
    }

    /// Composing states whose refresh lapsed by `now` (CHAT-16: the XMPP user gets
    /// `<active/>`): (SIP JID, XMPP JID, thread).
    pub fn lapsed(&mut self, now: std::time::Instant) -> Vec<(String, String, String)> {
        let done: Vec<(String, String)> = self
            .peer_composing
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        done.into_iter()
            .filter_map(|k| {
                let (_, thread) = self.peer_composing.remove(&k)?;
                Some((k.0, k.1, thread))
            })
            .collect()
    }

    /// A text message went out: the receiver drops its composing state (RFC 3994 §3.3).
    pub fn message_sent(&mut self, pair: &(String, String)) {
        self.composing.remove(pair);
    }
}

fn bounded_insert<V>(
    map: &mut HashMap<String, V>,
    order: &mut VecDeque<String>,
    key: String,
    v: V,
) {
    if map.len() >= KEEP {
        while let Some(old) = order.pop_front() {
            if map.remove(&old).is_some() {
                break;
            }
        }
    }
    order.push_back(key.clone());
    map.insert(key, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5438 §6.3's request, with CRLF line ends.
    const RFC_REQUEST: &str = "From: Alice <im:alice@example.com>\r\nTo: Bob <im:bob@example.com>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: 34jk324j\r\nDateTime: 2006-04-04T12:16:49-05:00\r\nimdn.Disposition-Notification: positive-delivery, display\r\n\r\nContent-type: text/plain\r\nContent-length: 12\r\n\r\nHello World";

    #[test]
    fn rfc_5438_request_is_recognised() {
        let r = imdn_request("message/cpim", RFC_REQUEST.as_bytes()).unwrap();
        assert_eq!(r.message_id, "34jk324j");
        assert!(r.delivery && r.display);
        // Another prefix bound to the namespace works too (RFC 3862 §3.3.5).
        let other = RFC_REQUEST
            .replace("imdn.", "x.")
            .replace("NS: imdn", "NS: x");
        assert_eq!(
            imdn_request("message/cpim", other.as_bytes())
                .unwrap()
                .message_id,
            "34jk324j"
        );
        assert!(imdn_request("text/plain", b"hi").is_none());
        assert!(
            classify("message/cpim", RFC_REQUEST.as_bytes()).is_none(),
            "a request is text"
        );
    }

    #[test]
    fn rfc_5438_message_id_that_is_not_a_token_asks_for_nothing() {
        // fuzz/regressions/chat_body/imdn-message-id-control-char: the id would be copied
        // into our notification's XML, which a control character makes ill-formed.
        for bad in ["a\u{0}b", "a\rb", "a b", "a<b>", "x\u{FFFF}"] {
            let body = RFC_REQUEST.replace("34jk324j", bad);
            assert_eq!(
                imdn_request("message/cpim", body.as_bytes()),
                None,
                "{bad:?}"
            );
        }
        let body = RFC_REQUEST.replace("34jk324j", "a.b-c_d~é");
        let r = imdn_request("message/cpim", body.as_bytes()).unwrap();
        let n = notification(
            "sip:b@x",
            "sip:a@y",
            "n1",
            &r.message_id,
            Disposition::Delivered,
            0,
        );
        assert_eq!(
            classify("message/cpim", n.as_bytes()),
            Some(Special::Notification {
                message_id: "a.b-c_d~é".into(),
                kind: Disposition::Delivered,
                ok: true
            })
        );
    }

    #[test]
    fn notifications_round_trip() {
        for kind in [Disposition::Delivered, Disposition::Displayed] {
            let n = notification(
                "sip:bob@example.net",
                "sip:alice@example.com",
                "own1",
                "34jk<324j",
                kind,
                0,
            );
            assert!(n.contains("Content-Disposition: notification"));
            match classify("message/cpim", n.as_bytes()) {
                Some(Special::Notification {
                    message_id,
                    kind: k,
                    ok,
                }) => {
                    assert_eq!(message_id, "34jk<324j");
                    assert_eq!(k, kind);
                    assert!(ok);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn our_request_is_valid_cpim() {
        let w = wrap_request(
            "sip:alice@example.com",
            "sip:bob@example.net",
            "m1",
            true,
            1_700_000_000,
            "hé",
        );
        let c = crate::im::cpim::unwrap(w.as_bytes()).unwrap();
        assert_eq!(c.body, "hé".as_bytes());
        assert!(c.content_type.starts_with("text/plain"));
        let r = imdn_request("message/cpim", w.as_bytes()).unwrap();
        assert!(r.delivery && r.display);
        assert!(w.contains("DateTime: 2023-11-14T22:13:20Z"));
    }

    #[test]
    fn iscomposing_in_message_is_classified() {
        let doc = iscomposing::build(true, 90);
        assert!(matches!(
            classify(iscomposing::CONTENT_TYPE, doc.as_bytes()),
            Some(Special::Composing(c)) if c.active
        ));
        assert_eq!(classify(iscomposing::CONTENT_TYPE, b"junk"), None);
    }

    #[test]
    fn notify_once_and_only_when_asked() {
        let mut p = PageState::default();
        p.delivered(
            "x1".into(),
            "sip:bob@example.net".into(),
            Delivered {
                request: ImdnRequest {
                    message_id: "m".into(),
                    delivery: true,
                    display: false,
                },
                sip_from: "sip:bob@example.net".into(),
                sip_to: "sip:alice@example.com".into(),
                done: HashSet::new(),
            },
        );
        assert!(p.speaks_imdn("sip:bob@example.net"));
        assert!(
            p.notify("x1", Disposition::Displayed).is_none(),
            "display was not asked"
        );
        assert!(p.notify("x1", Disposition::Delivered).is_some());
        assert!(p.notify("x1", Disposition::Delivered).is_none(), "once");
        let pair = ("a".to_string(), "b".to_string());
        assert!(!p.composing(pair.clone(), false), "idle only after active");
        assert!(p.composing(pair.clone(), true));
        assert!(!p.composing(pair.clone(), true), "no repeat");
        assert!(p.composing(pair, false));
    }

    #[test]
    fn peer_composing_lapses_once() {
        let mut p = PageState::default();
        let t0 = std::time::Instant::now();
        let pair = ("romeo@sip.x".to_string(), "juliet@x".to_string());
        p.peer_composing(
            pair.clone(),
            Some(t0 + std::time::Duration::from_secs(90)),
            "c1".into(),
        );
        assert_eq!(
            p.next_deadline(),
            Some(t0 + std::time::Duration::from_secs(90))
        );
        assert!(p.lapsed(t0).is_empty());
        let l = p.lapsed(t0 + std::time::Duration::from_secs(90));
        assert_eq!(l, vec![(pair.0.clone(), pair.1.clone(), "c1".to_string())]);
        assert!(p
            .lapsed(t0 + std::time::Duration::from_secs(200))
            .is_empty());
        p.peer_composing(pair.clone(), Some(t0), "c1".into());
        p.peer_message(&pair);
        assert_eq!(p.next_deadline(), None, "a message ends composing");
    }

    #[test]
    fn datetime_is_rfc3339() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(datetime(951_782_400), "2000-02-29T00:00:00Z");
    }
}
