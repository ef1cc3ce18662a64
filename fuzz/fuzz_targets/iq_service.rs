//! `stox::xmpp::service::answer_iq` on an arbitrary XML element named `iq` (inputs that are
//! not XML, or another element, are skipped), as `core::Router` hands it every `<iq/>`.
//!
//! Invariants: a `get`/`set` always gets exactly one reply, an `<iq/>` in the component
//! namespace with the same id, `type` `result` or `error`, addressed back to the sender and
//! coming from a valid JID (COMP-3: a bad `from` makes the server drop the link; known
//! finding F2 for results); an error
//! reply has exactly one `<error/>` that parses as a stanza error, a result at most one
//! payload; the reply serialises to XML that parses back. `result`/`error` IQs get no reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::addr::Jid;
use stox_fuzz::*;
use xmpp_parsers::minidom::Element;

const NS: &str = "jabber:component:accept";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(iq) = text.parse::<Element>() else {
        return;
    };
    // core::Router hands answer_iq only elements named `iq` (any namespace).
    if iq.name() != "iq" {
        return;
    }
    let map = map();
    let reply = stox::xmpp::service::answer_iq(&iq, &map);
    if debug() {
        eprintln!(
            "{} -> {:?}",
            String::from(&iq),
            reply.as_ref().map(String::from)
        );
    }
    let typ = iq.attr("type");
    match typ {
        Some("result") | Some("error") => {
            assert!(reply.is_none(), "a {typ:?} IQ was answered (ERR-13)");
            return;
        }
        Some("get") | Some("set") => {}
        _ => return,
    }
    let reply = reply.unwrap_or_else(|| panic!("a {typ:?} IQ got no reply (COMP-4)"));
    let back = assert_xml_round_trip(&reply, "IQ reply");
    assert_eq!(back.name(), "iq");
    assert_eq!(back.ns(), NS, "reply namespace");
    assert_eq!(
        back.attr("id").unwrap_or(""),
        iq.attr("id").unwrap_or(""),
        "reply id differs"
    );
    assert_eq!(
        back.attr("to"),
        iq.attr("from"),
        "reply not addressed to the sender"
    );
    let f2 = back.attr("type") == Some("result") && skip_known("F2");
    if let Some(from) = back.attr("from").filter(|_| !f2) {
        assert!(
            Jid::new(from).is_ok(),
            "reply from {from:?} is not a valid JID (COMP-3)"
        );
    }
    match back.attr("type") {
        Some("result") => {
            assert!(back.children().count() <= 1, "result with several payloads");
        }
        Some("error") => {
            let errors: Vec<&Element> = back.children().filter(|c| c.name() == "error").collect();
            assert_eq!(errors.len(), 1, "error reply needs exactly one <error/>");
            xmpp_parsers::stanza_error::StanzaError::try_from(errors[0].clone())
                .unwrap_or_else(|e| panic!("<error/> of the reply does not parse: {e}"));
        }
        other => panic!("reply type {other:?}"),
    }
});
