//! Properties of the engine over arbitrary input: it never panics, every inbound request gets
//! exactly one response, and nothing it emits toward XMPP lacks a `from` in the component
//! domain or a `to` (COMP-3).

use super::test_support::{requests, responds, stanzas, T};
use super::wire::*;
use proptest::prelude::*;
use xmpp_parsers::presence::Type;

fn header_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("presence".to_string())),
        Just(Some("active;expires=60".to_string())),
        Just(Some("terminated;reason=rejected".to_string())),
        Just(Some("pending".to_string())),
        Just(Some("0".to_string())),
        Just(Some("3600".to_string())),
        "[ -~]{0,24}".prop_map(Some),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sip:juliet@example.com".to_string()),
        Just("sip:romeo@example.net".to_string()),
        Just("sip:nurse@example.com".to_string()),
        Just("sips:juliet@example.com".to_string()),
        "[ -~]{0,30}",
    ]
}

prop_compose! {
    fn request()(
        method in prop_oneof![Just("SUBSCRIBE".to_string()), Just("NOTIFY".to_string()), "[A-Z]{1,8}"],
        request_uri in uri(), from_uri in uri(), to_uri in uri(),
        from_tag in proptest::option::of("[a-z0-9]{1,6}"),
        to_tag in proptest::option::of("[a-z0-9]{1,6}"),
        call_id in "[a-z0-9]{1,4}",
        cseq in 0u32..5,
        contact in proptest::option::of(uri()),
        event in header_value(), expires in header_value(), accept in header_value(),
        subscription_state in header_value(),
        content_type in prop_oneof![Just(None), Just(Some("application/pidf+xml".to_string())), "[ -~]{0,20}".prop_map(Some)],
        body in prop_oneof![
            Just(Vec::new()),
            Just(super::test_support::PIDF_AWAY.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..200),
        ],
    ) -> SipRequestIn {
        SipRequestIn {
            method, request_uri, from_uri, from_tag, to_uri, to_tag, call_id, cseq, contact,
            record_route: vec![], event, expires, accept, subscription_state, content_type,
            content_language: None, body,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_request_gets_one_response_and_stanzas_are_addressed(
        reqs in proptest::collection::vec(request(), 1..12),
        subscribe_first in any::<bool>(),
        codes in proptest::collection::vec(prop_oneof![Just(200u16), Just(403), Just(423), Just(481), Just(408), 100u16..700], 0..6),
    ) {
        let mut t = T::new();
        if subscribe_first {
            let out = t.xmpp(Type::Subscribe, "juliet@example.com", "romeo@sip.example.com");
            for (r, code) in requests(&out).iter().zip(codes.iter()) {
                t.respond(r.id, SipResponseIn { code: *code, to_tag: Some("x".into()), ..Default::default() });
            }
        }
        for req in reqs {
            let (_, out) = t.sip(req);
            prop_assert_eq!(responds(&out).len(), 1);
            for p in stanzas(&out) {
                let from = p.from.as_ref().map(|j| j.domain().to_string());
                prop_assert_eq!(from.as_deref(), Some("sip.example.com"));
                prop_assert!(p.to.is_some());
            }
        }
        // Time passing never panics either.
        t.advance(4000);
        t.advance(90_000);
    }
}
