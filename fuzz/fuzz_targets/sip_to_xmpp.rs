//! `stox::im::sip_to_xmpp` on an inbound SIP MESSAGE built from the fuzz input (the text
//! format of `stox_fuzz::parse_sip_message`: request line, headers, blank line, body).
//!
//! Invariants:
//! * Ok: the stanza (via `stox::im::to_element`) serialises to XML that parses back, stably,
//!   and xmpp-parsers accepts it as a `<message/>`; `from` is a JID with a localpart in the
//!   component domain; `to` is a user JID outside the component domain; the id is the one
//!   passed in; the type is the configured inbound type; there is exactly one `<body/>`, not
//!   empty (an empty SIP body is refused with 400, so an emptied one must be too); all
//!   texts are XML-safe; `xml:lang` is a language tag; the sender JID maps back to a SIP
//!   address (the reverse mapping must accept what the forward mapping produced).
//! * Err: the SIP answer is a 400..=699 code with a one-line RFC 3261 reason phrase, and the
//!   XMPP rendering is a valid stanza error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::config::InboundType;
use stox_fuzz::*;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;

fuzz_target!(|data: &[u8]| {
    let (m, inbound) = parse_sip_message(data);
    let map = map();
    let result = stox::im::sip_to_xmpp(&m, &map, "id", inbound);
    if debug() {
        eprintln!("{m:#?}\n{inbound:?} -> {result:#?}");
    }
    match result {
        Ok(msg) => check_ok(msg, &map, inbound),
        Err(rej) => {
            assert_rejection_sip(&rej.sip, 400..=699, "sip_to_xmpp rejection");
            assert_xmpp_error(&rej.xmpp, "sip_to_xmpp rejection <error/>");
        }
    }
});

fn check_ok(msg: Message, map: &stox::addr::AddressMap, inbound: InboundType) {
    let from = msg.from.clone().expect("translated message has a from");
    let to = msg.to.clone().expect("translated message has a to");
    assert!(
        map.is_component_jid(&from),
        "from {from} is not inside the component domain"
    );
    assert!(from.node().is_some(), "from {from} has no localpart");
    assert!(
        !map.is_component_jid(&to),
        "to {to} is a SIP user's JID (would loop through the gateway)"
    );
    assert!(to.node().is_some(), "to {to} has no localpart");
    assert_eq!(msg.id.as_ref().map(|i| i.0.as_str()), Some("id"));
    let want_type = match inbound {
        InboundType::Chat => MessageType::Chat,
        InboundType::Normal => MessageType::Normal,
    };
    assert_eq!(
        msg.type_, want_type,
        "message type is not the configured one"
    );
    assert_eq!(msg.bodies.len(), 1, "exactly one <body/>");
    for (lang, body) in &msg.bodies {
        // F4: a body of characters XML cannot carry is emptied by xml_safe after the
        // empty-body check, and delivered (with 200 OK) as an empty message.
        if !(body.is_empty() && skip_known("F4")) {
            assert!(
                !body.is_empty(),
                "empty <body/> delivered (an empty MESSAGE is refused with 400)"
            );
        }
        assert_xml_chars(body, "body");
        assert_xml_chars(&lang.0, "body xml:lang");
    }
    for subject in msg.subjects.values() {
        assert!(!subject.is_empty(), "empty <subject/> emitted");
        assert_xml_chars(subject, "subject");
    }
    if let Some(thread) = &msg.thread {
        assert_xml_chars(&thread.id, "thread");
    }
    // The reverse mapping must take back the JID the forward mapping made: an XMPP reply to
    // this sender has to reach a SIP address.
    if let Err(e) = map.jid_to_sip(&from) {
        panic!("sender JID {from} does not map back to SIP: {e}");
    }

    let el = stox::im::to_element(msg);
    if let Some(lang) = el.attr_ns(&xmpp_parsers::minidom::rxml::Namespace::XML, "lang") {
        assert!(
            !lang.is_empty()
                && lang.len() <= 35
                && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "xml:lang {lang:?} is not a language tag"
        );
    }
    let back: Element = assert_xml_round_trip(&el, "translated <message/>");
    let reparsed = Message::try_from(back)
        .unwrap_or_else(|e| panic!("translated stanza is not a valid <message/>: {e}"));
    assert_eq!(reparsed.from, Some(from), "from changed over the wire");
    assert_eq!(reparsed.to, Some(to), "to changed over the wire");
}
