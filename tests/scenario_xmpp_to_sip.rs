//! Scenarios of XMPP -> SIP delivery (section 3.1): a `<message/>` from the fake XMPP server
//! becomes a SIP MESSAGE at the raw SIP UAS, over UDP or TCP, in order and exactly once.
//! Failures (Table E2, refusals) are in scenario_errors.rs.
//! Test names cite the requirement IDs of shared/spec/CHECKLIST.md; the harness and its
//! timing rules are described in tests/support/mod.rs.

mod support;

use std::collections::HashSet;
use support::check::*;
use support::sip::{param, request, tcp_respond, uri_of};
use support::{opts, Harness, Opts, Route, COMPONENT, SOON};

// ---------------------------------------------------------------------------------------
// 3.1 XMPP -> SIP (IM-1, IM-2, IM-4, GEN-2, ADDR-7, ADDR-8, ADDR-11)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn im_1_im_2_xmpp_message_becomes_sip_message_with_every_field() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(M42);
    let req = h.uas_answer(200, "OK", &[]).await;
    let hdr = |n: &str| req.header(n).unwrap_or("<missing>").to_string();
    let contact = uri_of(&hdr("contact"));
    let max_fwd = hdr("max-forwards").parse::<u8>().unwrap_or(0);
    let checks: Vec<(&str, bool)> = vec![
        ("IM-1 method MESSAGE", req.method() == Some("MESSAGE")),
        (
            "IM-2 to -> Request-URI sip:romeo@example.net",
            req.uri() == Some("sip:romeo@example.net"),
        ),
        (
            "ADDR-7 From is the bare JID sip:juliet@example.com",
            uri_of(&hdr("from")) == "sip:juliet@example.com",
        ),
        (
            "From tag",
            param(&hdr("from"), "tag").is_some_and(|t| !t.is_empty()),
        ),
        (
            "To sip:romeo@example.net",
            uri_of(&hdr("to")) == "sip:romeo@example.net",
        ),
        ("Contact user juliet", contact.starts_with("sip:juliet@")),
        (
            "ADDR-7 resource as gr=balcony in Contact",
            contact.split(';').any(|p| p == "gr=balcony"),
        ),
        ("IM-2 thread -> Call-ID t-77", hdr("call-id") == "t-77"),
        ("IM-2 subject -> Subject S", hdr("subject") == "S"),
        (
            "IM-2/IM-11 xml:lang -> Content-Language it",
            hdr("content-language") == "it",
        ),
        (
            "Content-Type text/plain;charset=UTF-8",
            norm(&hdr("content-type")) == "text/plain;charset=utf-8",
        ),
        (
            "IM-11 UTF-8 body intact",
            req.body == "Art thou not Romeo? 😀".as_bytes(),
        ),
        ("CSeq n MESSAGE", hdr("cseq").ends_with(" MESSAGE")),
        (
            "Via branch z9hG4bK",
            req.branch().is_some_and(|b| b.starts_with("z9hG4bK")),
        ),
        ("Max-Forwards > 0", max_fwd > 0),
    ];
    let failed: Vec<_> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    assert!(
        failed.is_empty(),
        "{failed:#?}\n{}",
        String::from_utf8_lossy(&req.to_bytes())
    );

    // A second message of the same conversation fails: its error arrives, and none for m42
    // came before it (m42's 200 was on the wire before m43 was even sent).
    h.xmpp.send(&juliet_msg("m43", ROMEO, "second"));
    let (req2, src2) = loop {
        let (r, a) = h.uas.request(SOON).await;
        if r.branch() != req.branch() {
            break (r, a);
        }
    };
    assert_eq!(req2.body_str(), "second");
    h.uas
        .send(&req2.response(404, "Not Found", &[]), src2)
        .await;
    h.xmpp.stanza_with_id("m43", SOON).await;
    h.xmpp.barrier().await;
    let for_m42: Vec<_> = h
        .xmpp
        .seen
        .iter()
        .filter(|e| e.attr("id") == Some("m42"))
        .map(s)
        .collect();
    assert!(
        for_m42.is_empty(),
        "IM-3: a 200 produces no XMPP stanza, got {for_m42:?}"
    );
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn im_1_addr_8_full_jid_target_becomes_gruu_request_uri() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(&juliet_msg(
        "f1",
        "romeo@sip.example.com/phone",
        "to one device",
    ));
    let req = h.uas_answer(200, "OK", &[]).await;
    assert_eq!(
        req.uri(),
        Some("sip:romeo@example.net;gr=phone"),
        "IM-1/ADDR-8"
    );
    assert_eq!(
        uri_of(req.header("to").unwrap()),
        "sip:romeo@example.net",
        "To is the AOR"
    );
    h.stop().await;
}

#[tokio::test]
async fn im_2_fifty_messages_arrive_in_order_exactly_once() {
    let mut h = Harness::start(opts()).await;
    let burst: String = (0..50)
        .map(|i| juliet_msg(&format!("b{i}"), ROMEO, &format!("burst {i}")))
        .collect();
    h.xmpp.send(&burst);
    let mut branches = HashSet::new();
    let mut bodies = Vec::new();
    while bodies.len() < 50 {
        let req = h.uas_answer(200, "OK", &[]).await;
        if branches.insert(req.branch().unwrap()) {
            bodies.push(req.body_str().to_string());
        }
    }
    let want: Vec<String> = (0..50).map(|i| format!("burst {i}")).collect();
    assert_eq!(bodies, want, "conversation order");
    // Exactly once: the next new transaction is the next message, not a duplicate.
    h.xmpp.send(&juliet_msg("after", ROMEO, "after the burst"));
    loop {
        let req = h.uas_answer(200, "OK", &[]).await;
        if branches.insert(req.branch().unwrap()) {
            assert_eq!(
                req.body_str(),
                "after the burst",
                "a message was sent twice"
            );
            break;
        }
    }
    let errors: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(
        errors.is_empty(),
        "no XMPP errors for delivered messages: {errors:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn im_2_illegal_thread_maps_to_a_stable_legal_call_id() {
    let mut h = Harness::start(opts()).await;
    let mut call_ids = Vec::new();
    for id in ["t1", "t2"] {
        let thread = "<thread>a thread with spaces</thread>";
        h.xmpp.send(&format!(
            "<message from='{JULIET}' to='{ROMEO}' id='{id}'>{thread}<body>x</body></message>"
        ));
        let req = h.uas_answer(200, "OK", &[]).await;
        let call_id = req.header("call-id").unwrap().to_string();
        assert!(
            !call_id.is_empty() && !call_id.contains(' '),
            "legal Call-ID: {call_id:?}"
        );
        call_ids.push(call_id);
    }
    // IM-2 (IMPL): derived deterministically, so one XMPP thread stays one SIP Call-ID.
    assert_eq!(call_ids[0], call_ids[1], "same thread, different Call-IDs");
    h.stop().await;
}

#[tokio::test]
async fn gen_2_im_4_message_over_the_udp_limit_goes_over_tcp() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(&juliet_msg("big", ROMEO, &"x".repeat(2000)));
    let (req, mut conn) = h.uas_tcp.request(SOON).await;
    let via = req.header("via").unwrap().to_ascii_uppercase();
    assert!(via.starts_with("SIP/2.0/TCP"), "RFC 3261 §18.1.1: {via}");
    assert_eq!(req.body.len(), 2000);
    tcp_respond(&mut conn, &req.response(200, "OK", &[])).await;
    let after: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(after.is_empty(), "{after:?}");
    h.stop().await;
}

#[tokio::test]
async fn gen_2_tcp_route_carries_messages_and_failures() {
    let mut h = Harness::start(Opts {
        route: Route::UasTcp,
        ..opts()
    })
    .await;
    h.xmpp.send(M42);
    let (req, mut conn) = h.uas_tcp.request(SOON).await;
    assert_eq!(req.header("call-id"), Some("t-77"));
    tcp_respond(&mut conn, &req.response(404, "Not Found", &[])).await;
    let e = h.xmpp.stanza_with_id("m42", SOON).await;
    assert_romeo_error(&e, "m42", "cancel", "item-not-found");
    h.stop().await;
}

#[tokio::test]
async fn addr_11_escaped_foreign_aor_both_directions() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(&juliet_msg(
        "x1",
        "bob\\40other.org@sip.example.com",
        "to a foreign SIP domain",
    ));
    let req = h.uas_answer(200, "OK", &[]).await;
    assert_eq!(req.uri(), Some("sip:bob@other.org"));
    assert_eq!(uri_of(req.header("to").unwrap()), "sip:bob@other.org");

    let from_bob = "<sip:bob@other.org>;tag=b1";
    let m = request(
        "MESSAGE",
        "sip:juliet@example.com",
        from_bob,
        "<sip:juliet@example.com>",
        &[],
        b"hi",
    );
    assert_eq!(h.sip_transact(m).await.code(), Some(200));
    let st = h.next_message().await;
    assert_eq!(
        st.attr("from"),
        Some("bob\\40other.org@sip.example.com"),
        "{}",
        s(&st)
    );
    h.stop().await;
}
