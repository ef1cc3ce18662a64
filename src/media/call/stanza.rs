//! The XMPP stanzas a call sends: Jingle IQs (XEP-0166 §7), their results and errors
//! (XEP-0166 §8, MEDIA-8), and Jingle Message Initiation messages (XEP-0353, MEDIA-25).

use crate::errmap::XmppError;
use crate::media::reason::Reason;
use crate::xmpp::xml::BuilderExt;
use tokio_xmpp::minidom::Element;
use xmpp_parsers::ns;

/// `urn:xmpp:jingle:errors:1` (XEP-0166 §11).
pub const NS_JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
/// `urn:xmpp:jingle:apps:rtp:info:1` (XEP-0167 §7).
pub const NS_RTP_INFO: &str = "urn:xmpp:jingle:apps:rtp:info:1";
/// `urn:xmpp:hints` (XEP-0334): a propose must reach offline-capable devices too.
const NS_HINTS: &str = "urn:xmpp:hints";

/// `<iq type='set'>` around a Jingle element.
pub fn iq_set(from: &str, to: &str, id: &str, jingle: Element) -> Element {
    Element::builder("iq", ns::COMPONENT_ACCEPT)
        .a("type", "set")
        .a("from", from)
        .a("to", to)
        .a("id", id)
        .append(jingle)
        .build()
}

/// `<iq type='result'>` acknowledging a request (MEDIA-8).
pub fn iq_result(from: &str, to: &str, id: &str) -> Element {
    Element::builder("iq", ns::COMPONENT_ACCEPT)
        .a("type", "result")
        .a("from", from)
        .a("to", to)
        .a("id", id)
        .build()
}

/// `<iq type='error'>` with a stanza error and, when given, the Jingle-specific condition
/// (`unknown-session`, `out-of-order`, `unsupported-info`, ...).
pub fn iq_error(from: &str, to: &str, id: &str, err: XmppError, jingle: Option<&str>) -> Element {
    let mut se = err.to_stanza_error();
    se.other = jingle.map(|c| Element::builder(c, NS_JINGLE_ERRORS).build());
    Element::builder("iq", ns::COMPONENT_ACCEPT)
        .a("type", "error")
        .a("from", from)
        .a("to", to)
        .a("id", id)
        .append(Element::from(se))
        .build()
}

/// A `<jingle>` element.
pub fn jingle(
    action: &str,
    sid: &str,
    initiator: &str,
    responder: Option<&str>,
    children: Vec<Element>,
) -> Element {
    Element::builder("jingle", ns::JINGLE)
        .a("action", action)
        .a("sid", sid)
        .a("initiator", initiator)
        .a("responder", responder)
        .append_all(children)
        .build()
}

/// `session-info` with one XEP-0167 informational payload (`ringing`, `hold`, ...).
pub fn info_payload(name: &str) -> Element {
    Element::builder(name, NS_RTP_INFO).build()
}

/// A XEP-0353 message (`propose`, `retract`, `proceed`, `reject`, `finish`, `ringing`) with
/// the session id; type `chat` with a store hint so every device of the user sees it.
pub fn jmi(kind: &str, id: &str, from: &str, to: &str, children: Vec<Element>) -> Element {
    Element::builder("message", ns::COMPONENT_ACCEPT)
        .a("type", "chat")
        .a("from", from)
        .a("to", to)
        .a("id", format!("jm-{kind}-{id}"))
        .append(
            Element::builder(kind, ns::JINGLE_MESSAGE)
                .a("id", id)
                .append_all(children)
                .build(),
        )
        .append(Element::builder("store", NS_HINTS).build())
        .build()
}

/// A `<reason>` for JMI or Jingle.
pub fn reason(r: Reason) -> Element {
    r.to_element(None)
}
