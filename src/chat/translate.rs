//! RFC 7573 mappings between XMPP `type='chat'` stanzas and MSRP message bodies: text
//! (CHAT-1, 6, 7), chat states (CHAT-13..16 via [`super::iscomposing`]), receipts
//! (CHAT-17, 18) and the XMPP errors for MSRP failures (RFC 7247 §7 in spirit: MSRP codes
//! are SIP-like).

use super::iscomposing;
use super::msrp::Received;
use crate::errmap::{DefinedCondition, XmppError};
use crate::im::translate::{media_type, xml_safe};
use crate::xmpp::xml::BuilderExt;
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Message, MessageType, Thread};
use xmpp_parsers::receipts;

const RECEIPTS_NS: &str = "urn:xmpp:receipts";
const CHATSTATES_NS: &str = "http://jabber.org/protocol/chatstates";
/// XEP-0333 chat markers.
pub const MARKERS_NS: &str = "urn:xmpp:chat-markers:0";

/// What an XMPP chat stanza asks of a session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XmppChat {
    /// Stanza id.
    pub id: Option<String>,
    /// Body text (best language).
    pub body: Option<String>,
    /// XEP-0085 state.
    pub chat_state: Option<ChatState>,
    /// XEP-0184 `<request/>`.
    pub receipt_request: bool,
    /// XEP-0184 `<received id/>`: the XMPP user got one of the SIP user's messages.
    pub received: Option<String>,
    /// `<thread/>`.
    pub thread: Option<String>,
    /// XEP-0333 `<markable/>`.
    pub markable: bool,
    /// XEP-0333 `<displayed id/>`.
    pub displayed: Option<String>,
}

impl XmppChat {
    /// Nothing a session can carry (e.g. only a `<displayed/>` marker).
    pub fn is_empty(&self) -> bool {
        self.body.is_none()
            && self.chat_state.is_none()
            && self.received.is_none()
            && self.displayed.is_none()
    }
}

/// Read the parts of a chat stanza a session maps.
pub fn read_xmpp(msg: &Message) -> XmppChat {
    let mut out = XmppChat {
        id: msg.id.as_ref().map(|i| i.0.clone()),
        body: msg
            .get_best_body(vec![])
            .map(|(_, b)| b.clone())
            .filter(|b| !b.is_empty()),
        thread: msg.thread.as_ref().map(|t| t.id.clone()),
        ..XmppChat::default()
    };
    for p in &msg.payloads {
        if p.ns() == CHATSTATES_NS {
            if let Ok(s) = ChatState::try_from(p.clone()) {
                out.chat_state = Some(s);
            }
        } else if p.is("request", RECEIPTS_NS) {
            out.receipt_request = true;
        } else if p.is("received", RECEIPTS_NS) {
            out.received = p.attr("id").map(str::to_string);
        } else if p.is("markable", MARKERS_NS) {
            out.markable = true;
        } else if p.is("displayed", MARKERS_NS) {
            out.displayed = p.attr("id").map(str::to_string);
        }
    }
    out
}

/// What a received MSRP message becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum ToXmpp {
    /// A text message (with `<request/>` when the SIP sender asked for a report).
    Text(Message),
    /// A chat-state notification; `composing` with the refresh the sender promised.
    State {
        /// The stanza.
        message: Message,
        /// True for `<composing/>`.
        composing: bool,
        /// `<refresh>` seconds.
        refresh: Option<u32>,
    },
}

/// Is this body something we can deliver? Used by the session before it answers the last
/// chunk, so a bad body gets its MSRP error (415/400) instead of a 200 and a silent drop.
pub fn check_body(content_type: &str, body: &[u8]) -> Result<(), u16> {
    text_of(content_type, body).map(|_| ())
}

enum Content {
    Text(String),
    Composing(iscomposing::IsComposing),
}

fn text_of(content_type: &str, body: &[u8]) -> Result<Content, u16> {
    let media = media_type(content_type);
    if media == iscomposing::CONTENT_TYPE {
        return iscomposing::parse(body).map(Content::Composing).ok_or(400);
    }
    let (bytes, ct) = if media == "message/cpim" {
        let inner = crate::im::cpim::unwrap(body).ok_or(400u16)?;
        (inner.body.to_vec(), inner.content_type.to_string())
    } else {
        (body.to_vec(), content_type.to_string())
    };
    let media = media_type(&ct);
    if media == iscomposing::CONTENT_TYPE {
        return iscomposing::parse(&bytes)
            .map(Content::Composing)
            .ok_or(400);
    }
    if media != "text/plain" {
        return Err(415);
    }
    let text = String::from_utf8(bytes).map_err(|_| 415u16)?;
    let text = xml_safe(&text);
    if text.is_empty() {
        return Err(400);
    }
    Ok(Content::Text(text))
}

/// CHAT-7 (text, receipts request) and CHAT-13 Table C1 (isComposing).
pub fn to_xmpp(r: &Received, from: &Jid, to: &Jid, thread: &str) -> Result<ToXmpp, u16> {
    let mut m = Message::new_with_type(MessageType::Chat, Some(to.clone()));
    m.from = Some(from.clone());
    m.thread = Some(Thread {
        parent: None,
        id: xml_safe(thread),
    });
    match text_of(&r.content_type, &r.body)? {
        Content::Text(t) => {
            m.id = Some(Id(r.tid.clone()));
            m.bodies.insert(Default::default(), t);
            if r.success_report {
                m.payloads.push(receipts::Request.into());
            }
            Ok(ToXmpp::Text(m))
        }
        Content::Composing(c) => {
            m.payloads.push(iscomposing::to_chat_state(&c).into());
            Ok(ToXmpp::State {
                message: m,
                composing: c.active,
                refresh: c.refresh,
            })
        }
    }
}

/// A chat-state-only stanza (CHAT-11's `<gone/>`, CHAT-16's expired refresh).
pub fn chat_state(from: &Jid, to: &Jid, thread: &str, state: ChatState) -> Message {
    let mut m = Message::new_with_type(MessageType::Chat, Some(to.clone()));
    m.from = Some(from.clone());
    m.thread = Some(Thread {
        parent: None,
        id: xml_safe(thread),
    });
    m.payloads.push(state.into());
    m
}

/// XEP-0333 `<displayed/>` for the XMPP message `id` (an IMDN display notification).
pub fn displayed(from: &Jid, to: &Jid, id: &str) -> Message {
    let mut m = Message::new(Some(to.clone()));
    m.from = Some(from.clone());
    m.payloads.push(
        xmpp_parsers::minidom::Element::builder("displayed", MARKERS_NS)
            .a("id", id)
            .build(),
    );
    m
}

/// CHAT-17: the receipt for the XMPP message `id`, after the SIP side's success REPORT.
pub fn receipt(from: &Jid, to: &Jid, id: &str) -> Message {
    let mut m = Message::new(Some(to.clone()));
    m.from = Some(from.clone());
    m.payloads
        .push(receipts::Received { id: id.to_string() }.into());
    m
}

/// The XMPP error for an MSRP failure of a message the XMPP user sent (RFC 4975 §10 codes;
/// conditions chosen as RFC 7247 Table 3 does for the SIP code of the same number).
pub fn msrp_failure(code: u16) -> XmppError {
    let (cond, text) = match code {
        400 => (
            DefinedCondition::BadRequest,
            "the SIP user's client refused the message",
        ),
        403 => (
            DefinedCondition::Forbidden,
            "the SIP user's client refused the message",
        ),
        408 => (
            DefinedCondition::RemoteServerTimeout,
            "no answer from the SIP user's client",
        ),
        413 => (
            DefinedCondition::PolicyViolation,
            "message too large for the SIP user's client",
        ),
        415 => (
            DefinedCondition::NotAcceptable,
            "the SIP user's client does not accept this content",
        ),
        481 => (
            DefinedCondition::RecipientUnavailable,
            "the chat session with the SIP user has ended",
        ),
        _ => (
            DefinedCondition::UndefinedCondition,
            "the SIP user's client did not accept the message",
        ),
    };
    XmppError::new(cond).with_text(format!("{text} (MSRP {code})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    fn received(ct: &str, body: &[u8], report: bool) -> Received {
        Received {
            message_id: "6480C096".into(),
            tid: "di2fs53v".into(),
            content_type: ct.into(),
            body: body.to_vec(),
            success_report: report,
        }
    }

    /// C2: SEND -> chat message with id = tid and thread = Call-ID.
    #[test]
    fn c2_text_message() {
        let r = received("text/plain", b"Neither, fair saint...", false);
        let out = to_xmpp(
            &r,
            &jid("romeo@sip.example.com/dr4hcr0st3lup4c"),
            &jid("juliet@example.com/balcony"),
            "29377446-0CBB",
        )
        .unwrap();
        let ToXmpp::Text(m) = out else { panic!() };
        assert_eq!(m.id.unwrap().0, "di2fs53v");
        assert_eq!(m.type_, MessageType::Chat);
        assert_eq!(m.thread.unwrap().id, "29377446-0CBB");
        assert_eq!(m.bodies.values().next().unwrap(), "Neither, fair saint...");
        assert!(m.payloads.is_empty());
    }

    /// C3: isComposing active -> <composing/>, never a body (CHAT-16).
    #[test]
    fn c3_composing() {
        let r = received(
            "application/im-iscomposing+xml",
            b"<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'><state>active</state><contenttype>text/plain</contenttype><refresh>90</refresh></isComposing>",
            false,
        );
        let out = to_xmpp(
            &r,
            &jid("romeo@sip.example.com"),
            &jid("juliet@example.com"),
            "t",
        )
        .unwrap();
        let ToXmpp::State {
            message,
            composing,
            refresh,
        } = out
        else {
            panic!()
        };
        assert!(composing);
        assert_eq!(refresh, Some(90));
        assert!(message.bodies.is_empty());
        assert!(message.payloads[0].is("composing", CHATSTATES_NS));
    }

    /// CHAT-18: Success-Report: yes -> <request/>.
    #[test]
    fn success_report_becomes_receipt_request() {
        let r = received("text/plain;charset=UTF-8", "¿qué?".as_bytes(), true);
        let ToXmpp::Text(m) = to_xmpp(&r, &jid("a@sip.x"), &jid("b@x"), "t").unwrap() else {
            panic!()
        };
        assert!(m.payloads[0].is("request", RECEIPTS_NS));
    }

    #[test]
    fn cpim_wrapped_text_is_unwrapped() {
        let body = b"From: <sip:romeo@example.net>\r\nTo: <sip:juliet@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nhello";
        let r = received("message/cpim", body, false);
        let ToXmpp::Text(m) = to_xmpp(&r, &jid("a@sip.x"), &jid("b@x"), "t").unwrap() else {
            panic!()
        };
        assert_eq!(m.bodies.values().next().unwrap(), "hello");
    }

    #[test]
    fn bad_bodies_get_msrp_codes() {
        assert_eq!(check_body("text/plain", &[0xff, 0xfe]), Err(415));
        assert_eq!(check_body("text/html", b"<b>x</b>"), Err(415));
        assert_eq!(
            check_body("application/im-iscomposing+xml", b"junk"),
            Err(400)
        );
        assert_eq!(check_body("text/plain", b"\x01\x02"), Err(400));
        assert_eq!(check_body("message/cpim", b"no headers"), Err(400));
        assert_eq!(check_body("text/plain", b"ok"), Ok(()));
    }

    #[test]
    fn read_xmpp_parts() {
        let el: xmpp_parsers::minidom::Element = "<message xmlns='jabber:component:accept' from='juliet@example.com/balcony' to='romeo@sip.example.com' id='bf9m36d5' type='chat'><thread>T1</thread><body>What man art thou?</body><request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>".parse().unwrap();
        let m = Message::try_from(el).unwrap();
        let c = read_xmpp(&m);
        assert_eq!(c.id.as_deref(), Some("bf9m36d5"));
        assert_eq!(c.body.as_deref(), Some("What man art thou?"));
        assert!(c.receipt_request);
        assert_eq!(c.chat_state, Some(ChatState::Active));
        assert_eq!(c.thread.as_deref(), Some("T1"));
        let el: xmpp_parsers::minidom::Element = "<message xmlns='jabber:component:accept' from='juliet@example.com/balcony' to='romeo@sip.example.com'><received xmlns='urn:xmpp:receipts' id='di2fs53v'/></message>".parse().unwrap();
        let c = read_xmpp(&Message::try_from(el).unwrap());
        assert_eq!(c.received.as_deref(), Some("di2fs53v"));
        assert!(c.body.is_none());
    }

    #[test]
    fn failures_map_to_conditions() {
        assert_eq!(
            msrp_failure(413).condition,
            DefinedCondition::PolicyViolation
        );
        assert_eq!(
            msrp_failure(408).condition,
            DefinedCondition::RemoteServerTimeout
        );
        assert_eq!(
            msrp_failure(481).condition,
            DefinedCondition::RecipientUnavailable
        );
    }
}
