//! The router's XMPP -> SIP path on an arbitrary XML element: minidom parse (inputs that are
//! not XML are skipped), `Message::try_from`, then `stox::im::xmpp_to_sip`; a stanza that
//! xmpp-parsers rejects gets `stox::xmpp::service::error_reply`, as in `core::Router`.
//!
//! Invariants:
//! * Send: every SIP URI (Request-URI, From, To, Contact) re-parses with `SipAddr::parse` to
//!   the same value; the Request-URI is `sip:` and not one of the gateway's own XMPP domains;
//!   From is the sender's bare address in a served XMPP domain and Contact the same plus the
//!   resource as `gr`; Subject is one non-empty line; Call-ID passes `is_call_id`;
//!   Content-Language is a language tag; the body respects the limit. The SIP addresses map
//!   back to the JIDs they came from (a SIP reply must reach the same XMPP conversation).
//! * Rejection: a 300..=699 SIP code with a clean reason phrase; the XMPP error and the
//!   error reply built from it serialise to XML that parses back, echo the id, and come from
//!   a valid JID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::addr::{AddressMap, Jid, Scheme, SipAddr};
use stox::im::{Limits, SipMessageOut, XmppOutcome};
use stox_fuzz::*;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;

const LIMITS: Limits = Limits {
    max_body_bytes: 512,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = text.parse::<Element>() else {
        return;
    };
    let map = map();
    let is_error = el.attr("type") == Some("error");
    let msg = match Message::try_from(el.clone()) {
        Ok(m) => m,
        Err(e) => {
            if debug() {
                eprintln!("not a <message/> for xmpp-parsers: {e}");
            }
            if !is_error {
                let err = stox::errmap::XmppError::new(stox::errmap::DefinedCondition::BadRequest)
                    .with_text("malformed message");
                check_error_reply(&el, err);
            }
            return;
        }
    };
    if msg.type_ == MessageType::Error {
        return;
    }
    let result = stox::im::xmpp_to_sip(&msg, &map, LIMITS);
    if debug() {
        eprintln!("{msg:#?}\n-> {result:#?}");
    }
    match result {
        Ok(XmppOutcome::Send(out)) => check_send(&msg, &out, &map),
        Ok(XmppOutcome::Ignore(_)) => {}
        Err(rej) => {
            assert_rejection_sip(&rej.sip, 300..=699, "xmpp_to_sip rejection");
            check_error_reply(&el, rej.xmpp);
        }
    }
});

fn check_error_reply(el: &Element, err: stox::errmap::XmppError) {
    assert_xmpp_error(&err, "xmpp_to_sip rejection <error/>");
    let reply = stox::xmpp::service::error_reply(el, err, COMPONENT);
    let back = assert_xml_round_trip(&reply, "error reply");
    assert_eq!(
        back.name(),
        el.name(),
        "error reply changed the stanza name"
    );
    assert_eq!(back.attr("type"), Some("error"));
    assert_eq!(back.attr("id"), el.attr("id"), "error reply lost the id");
    let from = back.attr("from").expect("error reply has a from");
    assert!(
        Jid::new(from).is_ok(),
        "error reply from {from:?} is not a JID"
    );
}

fn assert_reparses(a: &SipAddr, what: &str) {
    let uri = a.to_uri();
    assert_eq!(
        SipAddr::parse(&uri).as_ref(),
        Ok(a),
        "{what} {uri:?} does not re-parse to the same address"
    );
}

fn check_send(msg: &Message, out: &SipMessageOut, map: &AddressMap) {
    for (a, what) in [
        (&out.request_uri, "Request-URI"),
        (&out.from, "From"),
        (&out.to, "To"),
        (&out.contact, "Contact"),
    ] {
        assert_reparses(a, what);
        assert_eq!(a.scheme, Scheme::Sip, "{what} scheme");
        assert!(a.user.is_some(), "{what} has no user part");
    }
    let host = out.request_uri.host.as_str();
    assert!(
        host != COMPONENT && host != XMPP_DOMAIN,
        "Request-URI {} points back into the gateway (GEN-5)",
        out.request_uri
    );
    assert_eq!(out.from.host, XMPP_DOMAIN, "From is not in a served domain");
    assert_eq!(out.from.gr, None, "From carries a gr (ADDR-7: bare JID)");
    assert_eq!(out.from.port, None);
    assert_eq!(out.to.gr, None, "To carries a gr");
    assert_eq!(
        SipAddr {
            gr: None,
            ..out.contact.clone()
        },
        out.from,
        "Contact is not From plus gr"
    );
    if let Some(subject) = &out.subject {
        assert!(!subject.is_empty(), "empty Subject header");
        assert_header_safe(subject, "Subject");
    }
    if let Some(call_id) = &out.call_id {
        assert!(
            stox::im::translate::is_call_id(call_id),
            "Call-ID {call_id:?} is not an RFC 3261 callid"
        );
    }
    if let Some(lang) = &out.content_language {
        assert!(
            !lang.is_empty() && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "Content-Language {lang:?} is not a language tag"
        );
    }
    assert!(
        out.body.len() <= LIMITS.max_body_bytes,
        "body over the limit"
    );

    // Reversibility: the SIP peer's reply comes from the Request-URI (with the same gr); it
    // must reach the JID this message was sent to, and reach the sender through Contact.
    let to = msg.to.as_ref().expect("sent message has a to");
    let from = msg.from.as_ref().expect("sent message has a from");
    let back_to = map.sip_to_jid(&out.request_uri).unwrap_or_else(|e| {
        panic!(
            "Request-URI {} (from {to}) does not map back to a JID: {e}",
            out.request_uri
        )
    });
    // The `%` aliases (`bob%other.org`) are input spellings of another JID.
    let alias = to.node().is_some_and(|n| n.as_str().contains('%'));
    if !alias {
        assert_eq!(
            &back_to, to,
            "{to} -> {} -> {back_to}: the SIP side's reply would come from another JID",
            out.request_uri
        );
    }
    let back_from = map.sip_to_jid(&out.contact).unwrap_or_else(|e| {
        panic!(
            "Contact {} (from {from}) does not map back to a JID: {e}",
            out.contact
        )
    });
    assert_eq!(
        &back_from, from,
        "{from} -> Contact {} -> {back_from}: a SIP reply would go to another JID",
        out.contact
    );
}
