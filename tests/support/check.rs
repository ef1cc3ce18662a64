//! Stanzas and assertions shared by the scenarios.

use super::xml::{child, stanza_error, NS_COMPONENT};
use super::{Harness, SOON};
use tokio_xmpp::minidom::Element;

/// Disco#info namespace (XEP-0030).
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// Disco#items namespace (XEP-0030).
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0100 gateway interaction.
pub const NS_GATEWAY: &str = "jabber:iq:gateway";
/// XEP-0092 software version.
pub const NS_VERSION: &str = "jabber:iq:version";
/// XEP-0199 ping.
pub const NS_PING: &str = "urn:xmpp:ping";

/// The XMPP user of the examples.
pub const JULIET: &str = "juliet@example.com/balcony";
/// The SIP user of the examples, as a JID.
pub const ROMEO: &str = "romeo@sip.example.com";

/// Checklist example I2, with a subject, a language and a non-BMP character.
pub const M42: &str = "<message from='juliet@example.com/balcony' to='romeo@sip.example.com' id='m42' xml:lang='it'><thread>t-77</thread><subject>S</subject><body>Art thou not Romeo? 😀</body></message>";

/// A plain message from juliet's full JID.
pub fn juliet_msg(id: &str, to: &str, body: &str) -> String {
    format!("<message from='{JULIET}' to='{to}' id='{id}'><body>{body}</body></message>")
}

/// An element as text (for failure messages).
pub fn s(el: &Element) -> String {
    String::from(el)
}

/// Lowercase without whitespace, to compare header values loosely.
pub fn norm(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Disco#info feature vars of a `<query/>`.
pub fn features(query: &Element) -> Vec<String> {
    query
        .children()
        .filter(|c| c.is("feature", NS_DISCO_INFO))
        .filter_map(|c| c.attr("var").map(str::to_string))
        .collect()
}

/// The text of `<body/>`.
pub fn body(el: &Element) -> String {
    child(el, "body", NS_COMPONENT).text()
}

/// Assert an error stanza: name, id, addresses (`from`, `to` = the original swapped), error
/// type and defined condition.
pub fn assert_error(
    el: &Element,
    (name, id, from, to): (&str, &str, &str, &str),
    typ: &str,
    cond: &str,
) {
    assert_eq!(el.name(), name, "{}", s(el));
    assert_eq!(el.attr("type"), Some("error"), "{}", s(el));
    assert_eq!(el.attr("id"), Some(id), "ERR-13 echoes the id: {}", s(el));
    assert_eq!(
        el.attr("from"),
        Some(from),
        "ERR-13 swaps from/to: {}",
        s(el)
    );
    assert_eq!(el.attr("to"), Some(to), "ERR-13 swaps from/to: {}", s(el));
    let (t, c, _, _) = stanza_error(el);
    assert_eq!(
        (t.as_str(), c.as_str()),
        (typ, cond),
        "error type/condition: {}",
        s(el)
    );
}

/// Assert the error returned for a message `id` juliet sent to romeo.
pub fn assert_romeo_error(el: &Element, id: &str, typ: &str, cond: &str) {
    assert_error(el, ("message", id, ROMEO, JULIET), typ, cond);
}

/// Send an IQ from juliet and return the component's answer (matched by id), checking the
/// addressing of the answer (COMP-4).
pub async fn iq(h: &mut Harness, typ: &str, id: &str, to: &str, payload: &str) -> Element {
    h.xmpp.send(&format!(
        "<iq type='{typ}' id='{id}' from='{JULIET}' to='{to}'>{payload}</iq>"
    ));
    let r = h.xmpp.stanza_with_id(id, SOON).await;
    assert_eq!(r.name(), "iq", "{}", s(&r));
    assert_eq!(
        r.attr("from"),
        Some(to),
        "COMP-4 reply comes from the queried JID: {}",
        s(&r)
    );
    assert_eq!(r.attr("to"), Some(JULIET), "{}", s(&r));
    r
}

/// Like [`iq`], also asserting `type='result'`.
pub async fn iq_result(h: &mut Harness, typ: &str, id: &str, to: &str, payload: &str) -> Element {
    let r = iq(h, typ, id, to, payload).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", s(&r));
    r
}
