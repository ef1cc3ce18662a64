//! In-process scenarios: a real `stox::app::Gateway` between a fake XMPP server (the
//! XEP-0114 server side, tests/support/xmpp.rs) and raw SIP peers on loopback sockets.
//! Test names cite the requirement IDs of shared/spec/CHECKLIST.md.
//!
//! Timing: nothing sleeps to "let things happen"; every wait polls with a deadline. Where
//! the absence of a stanza must be shown, a ping round trip on the same link
//! (`FakeServer::barrier`) proves the gateway has handled everything sent before it.

mod support;

use std::collections::HashSet;
use std::time::Duration;
use support::check::*;
use support::sip::{param, request, tcp_respond, tcp_transact, uri_of, SipMsg};
use support::xml::{child, raw_attr, stanza_error, xml_lang, NS_COMPONENT};
use support::xmpp::{is_keepalive, Ev};
use support::{romeo_message, Harness, Opts, Route, COMPONENT, SECRET, SOON};
use tokio::time::Instant;

fn opts() -> Opts {
    Opts::default()
}

fn window(ms: u64) -> Opts {
    Opts {
        bounce_window_ms: ms,
        ..Opts::default()
    }
}

// ---------------------------------------------------------------------------------------
// Harness self-checks
// ---------------------------------------------------------------------------------------

#[test]
fn harness_sha1_matches_fips_180_vectors() {
    use support::sha1::sha1_hex;
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    let two_blocks = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(
        sha1_hex(two_blocks),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    // hex(sha1(stream id ++ secret)), checked against coreutils sha1sum.
    assert_eq!(
        sha1_hex(b"stox-fake-1s3cr3t"),
        "31d565b82c54b2cf113cf71d25c2696f8403f033"
    );
}

#[test]
fn harness_xml_splitter_survives_byte_by_byte_reads() {
    use support::xml::{parse_stanza, Splitter, Token};
    let wire = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' to='sip.example.com'>\
        <handshake>abc</handshake> <message to='a@b' id='x'><body a='1>2'>é😀 &lt;</body>\
        <x xmlns='urn:x'/></message>\n<iq type='get' id='y'/></stream:stream>";
    let mut sp = Splitter::new();
    let mut out = Vec::new();
    for b in wire.as_bytes() {
        sp.push(std::slice::from_ref(b));
        while let Some(t) = sp.next_token() {
            out.push(t);
        }
    }
    assert_eq!(out.len(), 5, "{out:#?}");
    assert!(matches!(&out[0], Token::Header(h) if h.contains("to='sip.example.com'")));
    let Token::Element(m) = &out[2] else {
        panic!("{out:#?}")
    };
    let el = parse_stanza(m).unwrap();
    assert_eq!(
        (el.ns().as_str(), body(&el).as_str()),
        (NS_COMPONENT, "é😀 <")
    );
    assert_eq!(out[4], Token::Footer);
}

// ---------------------------------------------------------------------------------------
// 7.1 XEP-0114 component connection (COMP-1, COMP-2, COMP-6)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn comp_1_2_stream_header_and_sha1_handshake() {
    let mut h = Harness::start_offline(opts()).await;
    let header = h
        .xmpp
        .wait_for("a stream header", SOON, |e| matches!(e, Ev::Header { .. }))
        .await;
    let Ev::Header { raw, .. } = header else {
        unreachable!()
    };
    assert_eq!(
        raw_attr(&raw, "xmlns").as_deref(),
        Some(NS_COMPONENT),
        "COMP-1: {raw}"
    );
    assert!(
        raw.contains("'http://etherx.jabber.org/streams'")
            || raw.contains("\"http://etherx.jabber.org/streams\""),
        "COMP-1: {raw}"
    );
    assert_eq!(
        raw_attr(&raw, "to").as_deref(),
        Some(COMPONENT),
        "COMP-1: {raw}"
    );
    let done = h
        .xmpp
        .wait_for("a handshake", SOON, |e| {
            matches!(e, Ev::HandshakeOk { .. } | Ev::HandshakeRejected { .. })
        })
        .await;
    let Ev::HandshakeOk { id, hex, .. } = done else {
        panic!("COMP-2: the handshake with the right secret was rejected: {done:?}")
    };
    let expected = support::sha1::sha1_hex(format!("{id}{SECRET}").as_bytes());
    assert_eq!(
        hex, expected,
        "COMP-2: lowercase hex of SHA-1(stream id ++ secret)"
    );
    h.xmpp.barrier().await; // stanzas flow after <handshake/>
    h.logs().wait_for("component online", 1, SOON).await;
    let at_info = h.logs().count_at("INFO", "component online");
    assert_eq!(at_info, 1, "`component online` is logged at info");
    assert_eq!(h.xmpp.connections(), 1);
    h.stop().await;
}

#[tokio::test]
async fn comp_2_6_wrong_secret_is_refused_and_the_gateway_keeps_retrying() {
    let o = Opts {
        server_secret: "not-the-gateways-secret".into(),
        ..opts()
    };
    let mut h = Harness::start_offline(o).await;
    let rejected =
        |n: usize| move |e: &Ev| matches!(e, Ev::HandshakeRejected { conn, .. } if *conn == n);
    h.xmpp
        .wait_for("a rejected handshake", SOON, rejected(1))
        .await;
    let t = Instant::now();
    let second = |e: &Ev| matches!(e, Ev::Connected { conn: 2 });
    h.xmpp
        .wait_for("a second attempt", Duration::from_secs(3), second)
        .await;
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "COMP-6: back-off, not a hot loop ({:?})",
        t.elapsed()
    );
    h.xmpp
        .wait_for("the second rejection", SOON, rejected(2))
        .await;
    assert_eq!(
        h.logs().count("component online"),
        0,
        "a refused handshake is not success"
    );
    // The operator fixes the server's secret: a later retry gets through.
    h.xmpp.set_secret(SECRET);
    h.xmpp.wait_online(Duration::from_secs(4)).await;
    h.logs().wait_for("component online", 1, SOON).await;
    assert!(h.xmpp.connections() >= 3);
    h.stop().await;
}

#[tokio::test]
async fn comp_6_link_loss_gives_503_with_retry_after_then_reconnects() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.stop().await;
    h.logs().wait_for("component link lost", 1, SOON).await;
    let resp = h.sip_transact(romeo_message(&[], b"anyone there?")).await;
    assert_eq!(resp.code(), Some(503), "{}", resp.start);
    let retry = resp.header("retry-after").expect("503 carries Retry-After");
    let secs = retry.split(|c: char| !c.is_ascii_digit()).next().unwrap();
    assert!(secs.parse::<u32>().is_ok(), "Retry-After: {retry}");

    let t = Instant::now();
    h.xmpp.restart().await;
    h.xmpp.wait_online(Duration::from_secs(4)).await;
    assert_eq!(
        h.xmpp.handshakes(),
        2,
        "a new handshake on the new connection"
    );
    h.logs().wait_for("component online", 2, SOON).await;
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "reconnected in {:?}",
        t.elapsed()
    );

    let sent = h.sip_send(romeo_message(&[], b"back again")).await;
    assert_eq!(body(&h.next_message().await), "back again");
    let resp = h.sip_final(&sent).await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    h.stop().await;
}

#[tokio::test]
async fn comp_6_link_loss_inside_the_bounce_window_answers_503() {
    let mut h = Harness::start(window(400)).await;
    let sent = h.sip_send(romeo_message(&[], b"lost in flight")).await;
    h.next_message().await;
    // The stanza's fate is unknown once the stream dies: the sender must not get 200.
    h.xmpp.stop().await;
    let resp = h.sip_final(&sent).await;
    assert_eq!(resp.code(), Some(503), "{}", resp.start);
    assert!(
        resp.header("retry-after").is_some(),
        "503 carries Retry-After"
    );
    h.stop().await;
}

#[tokio::test]
async fn comp_6_keepalive_pings_the_first_xmpp_domain() {
    let mut h = Harness::start(Opts {
        ping_interval_secs: 1,
        ..opts()
    })
    .await;
    let limit = Duration::from_millis(2500);
    let ping = h.xmpp.stanza("a keepalive ping", limit, is_keepalive).await;
    assert_eq!(ping.attr("to"), Some("example.com"), "{}", s(&ping));
    assert_eq!(ping.attr("from"), Some(COMPONENT), "{}", s(&ping));
    assert!(ping.get_child("ping", NS_PING).is_some(), "{}", s(&ping));
    // Answered pings keep the link up: the next one comes on the same connection.
    let first_id = ping.attr("id").unwrap().to_string();
    let next =
        |e: &tokio_xmpp::minidom::Element| is_keepalive(e) && e.attr("id") != Some(&first_id);
    h.xmpp.stanza("a second keepalive ping", limit, next).await;
    assert_eq!(h.xmpp.handshakes(), 1);
    h.stop().await;
}

#[tokio::test]
async fn comp_6_graceful_stop_closes_the_stream() {
    let mut h = Harness::start(opts()).await;
    let took = h.stop().await;
    assert!(took < Duration::from_secs(3), "stop() took {took:?}");
    let footer = |e: &Ev| matches!(e, Ev::Footer { conn: 1 });
    h.xmpp.wait_for("</stream:stream>", SOON, footer).await;
    h.xmpp
        .wait_for("the TCP close", SOON, |e| {
            matches!(e, Ev::Closed { conn: 1 })
        })
        .await;
    // A stopped gateway does not come back (waits past the first back-off of 250-500 ms).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(h.xmpp.connections(), 1);
}

#[tokio::test]
async fn comp_6_graceful_stop_answers_messages_in_their_bounce_window_first() {
    let mut h = Harness::start(window(400)).await;
    let sent = h.sip_send(romeo_message(&[], b"just before closing")).await;
    h.next_message().await;
    let gw = h.gw.take().unwrap();
    let t = Instant::now();
    let ((), resp) = tokio::join!(gw.stop(), h.sip_final(&sent));
    assert_eq!(
        resp.code(),
        Some(200),
        "the in-flight message finishes: {}",
        resp.start
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    let footer = |e: &Ev| matches!(e, Ev::Footer { conn: 1 });
    h.xmpp.wait_for("</stream:stream>", SOON, footer).await;
}

// ---------------------------------------------------------------------------------------
// 7.2 IQ services (COMP-4, COMP-7, COMP-8, COMP-10), COMP-3, ERR-13
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn comp_7_disco_info_on_the_component_is_a_gateway() {
    let mut h = Harness::start(opts()).await;
    let r = iq_result(
        &mut h,
        "get",
        "di1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
    )
    .await;
    let q = child(&r, "query", NS_DISCO_INFO);
    assert_eq!(
        child(q, "identity", NS_DISCO_INFO).attr("category"),
        Some("gateway"),
        "{}",
        s(&r)
    );
    let f = features(q);
    for want in [NS_DISCO_INFO, NS_GATEWAY] {
        assert!(
            f.iter().any(|x| x == want),
            "COMP-7 feature {want} missing: {f:?}"
        );
    }
    assert!(
        !f.iter().any(|x| x == "urn:ietf:rfc:3264"),
        "MEDIA-1: {f:?}"
    );
    let r = iq_result(
        &mut h,
        "get",
        "dit1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_ITEMS}'/>"),
    )
    .await;
    child(&r, "query", NS_DISCO_ITEMS);
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_8_disco_info_on_a_sip_user_is_a_client_phone() {
    let mut h = Harness::start(opts()).await;
    for (id, to) in [("du1", ROMEO), ("du2", "romeo@sip.example.com/phone")] {
        let r = iq_result(
            &mut h,
            "get",
            id,
            to,
            &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
        )
        .await;
        let q = child(&r, "query", NS_DISCO_INFO);
        let identity = child(q, "identity", NS_DISCO_INFO);
        let ct = (identity.attr("category"), identity.attr("type"));
        assert_eq!(ct, (Some("client"), Some("phone")), "{}", s(&r));
        assert!(
            !features(q).iter().any(|x| x == "urn:ietf:rfc:3264"),
            "MEDIA-1"
        );
    }
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_10_jabber_iq_gateway_prompt_and_translation() {
    let mut h = Harness::start(opts()).await;
    let r = iq_result(
        &mut h,
        "get",
        "g1",
        COMPONENT,
        &format!("<query xmlns='{NS_GATEWAY}'/>"),
    )
    .await;
    let q = child(&r, "query", NS_GATEWAY);
    child(q, "desc", NS_GATEWAY);
    assert!(
        !child(q, "prompt", NS_GATEWAY).text().is_empty(),
        "{}",
        s(&r)
    );
    for (id, prompt, jid) in [
        (
            "g2",
            "sip:bob@other.org",
            "bob\\40other.org@sip.example.com",
        ),
        ("g3", "sip:romeo@example.net", ROMEO),
    ] {
        let payload = format!("<query xmlns='{NS_GATEWAY}'><prompt>{prompt}</prompt></query>");
        let r = iq_result(&mut h, "set", id, COMPONENT, &payload).await;
        let got = child(child(&r, "query", NS_GATEWAY), "jid", NS_GATEWAY).text();
        assert_eq!(got, jid, "ADDR-11 {prompt}");
    }
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_4_ping_version_and_unknown_iq_are_answered() {
    let mut h = Harness::start(opts()).await;
    let ping = format!("<ping xmlns='{NS_PING}'/>");
    iq_result(&mut h, "get", "p1", COMPONENT, &ping).await;
    iq_result(&mut h, "get", "p2", ROMEO, &ping).await;
    let r = iq_result(
        &mut h,
        "get",
        "v1",
        COMPONENT,
        &format!("<query xmlns='{NS_VERSION}'/>"),
    )
    .await;
    let q = child(&r, "query", NS_VERSION);
    assert_eq!(child(q, "name", NS_VERSION).text(), "stox");
    assert!(!child(q, "version", NS_VERSION).text().is_empty());
    for (id, typ, to) in [("u1", "get", COMPONENT), ("u2", "set", ROMEO)] {
        let r = iq(&mut h, typ, id, to, "<query xmlns='urn:example:unknown'/>").await;
        assert_error(&r, ("iq", id, to, JULIET), "cancel", "service-unavailable");
    }
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn err_13_result_and_error_stanzas_are_never_answered() {
    let mut h = Harness::start(opts()).await;
    let su = "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>";
    h.xmpp
        .send("<iq type='result' id='r1' from='example.com' to='sip.example.com'/>");
    h.xmpp.send(&format!(
        "<iq type='result' id='r2' from='{JULIET}' to='{ROMEO}'><query xmlns='{NS_VERSION}'/></iq>"
    ));
    h.xmpp.send(&format!(
        "<iq type='error' id='e1' from='{JULIET}' to='{ROMEO}'>{su}</iq>"
    ));
    // An error message matching no pending SIP MESSAGE.
    h.xmpp.send(&format!(
        "<message type='error' id='nobody' from='juliet@example.com' to='{ROMEO}'>{su}</message>"
    ));
    let answered: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(
        answered.is_empty(),
        "ERR-13: result/error stanzas get no answer: {answered:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn comp_3_every_stanza_sent_is_from_the_component_domain() {
    let mut h = Harness::start(opts()).await;
    // IQ answers, error replies, a SIP->XMPP message and an XMPP->SIP failure (keepalive
    // pings are checked in comp_6_keepalive_pings_the_first_xmpp_domain).
    iq(
        &mut h,
        "get",
        "c1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
    )
    .await;
    iq(
        &mut h,
        "get",
        "c2",
        "romeo@sip.example.com/x",
        "<query xmlns='urn:example:unknown'/>",
    )
    .await;
    h.xmpp
        .send(&juliet_msg("c3", COMPONENT, "to the gateway itself"));
    h.xmpp.stanza_with_id("c3", SOON).await;
    assert_eq!(
        h.sip_transact(romeo_message(&[], b"hi")).await.code(),
        Some(200)
    );
    h.xmpp.send(&juliet_msg("c4", ROMEO, "fails"));
    h.uas_answer(480, "Temporarily Unavailable", &[]).await;
    h.xmpp.stanza_with_id("c4", SOON).await;
    h.xmpp.barrier().await;
    assert!(h.xmpp.seen.len() >= 6);
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_4_err_13_malformed_stanzas_get_errors_and_the_link_survives() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(&format!(
        "<message type='bogus' id='bad-type' from='{JULIET}' to='{ROMEO}'><body>x</body></message>"
    ));
    assert_romeo_error(
        &h.xmpp.stanza_with_id("bad-type", SOON).await,
        "bad-type",
        "modify",
        "bad-request",
    );

    let two = format!("<query xmlns='{NS_DISCO_INFO}'/><ping xmlns='{NS_PING}'/>");
    let r = iq(&mut h, "get", "two", COMPONENT, &two).await;
    assert_error(
        &r,
        ("iq", "two", COMPONENT, JULIET),
        "modify",
        "bad-request",
    );

    h.xmpp
        .send(&juliet_msg("to-gw", COMPONENT, "hello gateway"));
    let e = h.xmpp.stanza_with_id("to-gw", SOON).await;
    assert_error(
        &e,
        ("message", "to-gw", COMPONENT, JULIET),
        "cancel",
        "service-unavailable",
    );

    // An unknown top-level element and a presence: ignored, no disconnect.
    h.xmpp.send(&format!(
        "<foo xmlns='urn:example:foo'/><presence from='{JULIET}' to='{ROMEO}'/>"
    ));

    // The link stayed up and the gateway still works.
    h.xmpp.barrier().await;
    assert_eq!(
        (h.xmpp.connections(), h.xmpp.handshakes()),
        (1, 1),
        "no reconnect happened"
    );
    h.xmpp.send(M42);
    assert_eq!(
        h.uas_answer(200, "OK", &[]).await.header("call-id"),
        Some("t-77")
    );
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_6_stanza_split_across_tcp_segments_is_reassembled() {
    let mut h = Harness::start(opts()).await;
    // 5-byte writes (the fake server sets TCP_NODELAY): tags, attributes and the 4-byte emoji
    // are cut in the middle.
    for chunk in M42.as_bytes().chunks(5) {
        h.xmpp.send_bytes(chunk);
    }
    let req = h.uas_answer(200, "OK", &[]).await;
    assert_eq!(req.body, "Art thou not Romeo? 😀".as_bytes());
    assert_eq!(h.xmpp.handshakes(), 1);
    h.stop().await;
}

#[tokio::test]
async fn im_5_burst_of_sip_messages_is_delivered_once_each() {
    let mut h = Harness::start(opts()).await;
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(
            h.sip_send(romeo_message(&[], format!("s2x {i}").as_bytes()))
                .await,
        );
    }
    let mut bodies = Vec::new();
    while bodies.len() < 30 {
        bodies.push(body(&h.next_message().await));
    }
    for req in &sent {
        let resp = h.sip_final(req).await;
        assert_eq!(resp.code(), Some(200), "{}", resp.start);
    }
    let mut sorted = bodies.clone();
    sorted.sort_by_key(|b| b[4..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..30).map(|i| format!("s2x {i}")).collect();
    assert_eq!(sorted, want, "each exactly once");
    let extra: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(extra.is_empty(), "duplicates: {extra:?}");
    h.stop().await;
}

#[tokio::test]
async fn comp_3_err_13_malformed_to_jid_gets_jid_malformed_from_a_valid_jid() {
    let mut h = Harness::start(opts()).await;
    // Not a JID (nodeprep forbids '"' in a localpart) but inside the component domain, so a
    // lax server routes it here.
    let bad_to = "ro&quot;meo@sip.example.com";
    h.xmpp.send(&format!(
        "<message id='bad-jid' from='{JULIET}' to='{bad_to}'><body>x</body></message>"
    ));
    let e = h.xmpp.stanza_with_id("bad-jid", SOON).await;
    assert_eq!(
        (e.attr("type"), e.attr("to")),
        (Some("error"), Some(JULIET)),
        "{}",
        s(&e)
    );
    h.xmpp.barrier().await;
    assert_eq!(
        (h.xmpp.connections(), h.xmpp.handshakes()),
        (1, 1),
        "no reconnect happened"
    );
    let from = e.attr("from").unwrap_or("");
    let valid = xmpp_parsers::jid::Jid::new(from).is_ok_and(|j| j.domain().as_str() == COMPONENT);
    assert!(
        valid,
        "COMP-3: from must be a valid JID of {COMPONENT} or the server rejects the stanza: {}",
        s(&e)
    );
    let (t, c, _, _) = stanza_error(&e);
    assert_eq!(
        (t.as_str(), c.as_str()),
        ("modify", "jid-malformed"),
        "RFC 6120 §8.3.3.8: {}",
        s(&e)
    );
    h.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3.1 XMPP -> SIP (IM-1..IM-4, ERR-8, ERR-9, GEN-2, ADDR-7, ADDR-11)
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

/// Send M42, answer its MESSAGE with `code`, return the XMPP error.
async fn m42_answered_with(
    h: &mut Harness,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> tokio_xmpp::minidom::Element {
    h.xmpp.send(M42);
    h.uas_answer(code, reason, extra).await;
    h.xmpp.stanza_with_id("m42", SOON).await
}

#[tokio::test]
async fn im_3_sip_404_returns_item_not_found() {
    let mut h = Harness::start(opts()).await;
    let e = m42_answered_with(&mut h, 404, "Not Found", &[]).await;
    assert_romeo_error(&e, "m42", "cancel", "item-not-found");
    h.stop().await;
}

#[tokio::test]
async fn im_3_sip_486_returns_recipient_unavailable_wait() {
    let mut h = Harness::start(opts()).await;
    let e = m42_answered_with(&mut h, 486, "Busy Here", &[]).await;
    assert_romeo_error(&e, "m42", "wait", "recipient-unavailable");
    let (_, _, _, text) = stanza_error(&e);
    assert_eq!(
        text.as_deref(),
        Some("Busy Here"),
        "ERR-11 / example A3: {}",
        s(&e)
    );
    h.stop().await;
}

#[tokio::test]
async fn err_9_sip_301_returns_gone_with_the_new_address() {
    let mut h = Harness::start(opts()).await;
    let contact = [("Contact", "<sip:romeo@verona.example>")];
    let e = m42_answered_with(&mut h, 301, "Moved Permanently", &contact).await;
    assert_romeo_error(&e, "m42", "cancel", "gone");
    let (_, _, addr, _) = stanza_error(&e);
    let want = "xmpp:romeo%5C40verona.example@sip.example.com";
    assert_eq!(addr.trim(), want, "ERR-9 / example A4: {}", s(&e));
    h.stop().await;
}

#[tokio::test]
async fn err_8_err_9_final_responses_follow_table_e2() {
    let mut h = Harness::start(opts()).await;
    // (code, condition, RFC 6120 suggested type); unlisted codes take the class default.
    let table: &[(u16, &str, &str)] = &[
        (302, "redirect", "modify"),
        (380, "not-acceptable", "modify"),
        (400, "bad-request", "modify"),
        (401, "not-authorized", "auth"),
        (403, "forbidden", "auth"),
        (405, "feature-not-implemented", "cancel"),
        (407, "registration-required", "auth"),
        (408, "remote-server-timeout", "wait"),
        (410, "gone", "cancel"),
        (413, "policy-violation", "modify"),
        (415, "not-acceptable", "modify"),
        (480, "recipient-unavailable", "wait"),
        (481, "item-not-found", "cancel"),
        (483, "not-acceptable", "modify"),
        (491, "unexpected-request", "wait"),
        (499, "bad-request", "modify"),
        (500, "internal-server-error", "cancel"),
        (502, "remote-server-not-found", "cancel"),
        (503, "internal-server-error", "cancel"),
        (504, "remote-server-timeout", "wait"),
        (599, "internal-server-error", "cancel"),
        (600, "recipient-unavailable", "wait"),
        (603, "recipient-unavailable", "wait"),
        (604, "item-not-found", "cancel"),
        (606, "not-acceptable", "modify"),
        (699, "recipient-unavailable", "wait"),
    ];
    for (code, _, _) in table {
        h.xmpp.send(&juliet_msg(
            &format!("e{code}"),
            ROMEO,
            &format!("for {code}"),
        ));
    }
    let mut answered = HashSet::new();
    while answered.len() < table.len() {
        let (req, src) = h.uas.request(SOON).await;
        let code: u16 = req.body_str().trim_start_matches("for ").parse().unwrap();
        if answered.insert(code) {
            h.uas.send(&req.response(code, "Whatever", &[]), src).await;
        }
    }
    let mut wrong = Vec::new();
    for (code, cond, typ) in table {
        let e = h.xmpp.stanza_with_id(&format!("e{code}"), SOON).await;
        let (t, c, txt, _) = stanza_error(&e);
        if (t.as_str(), c.as_str()) != (*typ, *cond) {
            wrong.push(format!("{code}: expected {cond}/{typ}, got {c}/{t}"));
        }
        if *code == 410 && !txt.is_empty() {
            wrong.push(format!("410: <gone/> must be empty (ERR-9), got {txt:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "Table E2 mismatches:\n{}",
        wrong.join("\n")
    );
    h.stop().await;
}

#[tokio::test]
async fn err_6_unreachable_next_hop_returns_remote_server_not_found() {
    // A TCP route to a port nobody listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let route = Route::Uri(format!("sip:127.0.0.1:{closed};transport=tcp"));
    let mut h = Harness::start(Opts { route, ..opts() }).await;
    h.xmpp.send(M42);
    let e = h.xmpp.stanza_with_id("m42", Duration::from_secs(10)).await;
    assert_romeo_error(&e, "m42", "cancel", "remote-server-not-found");
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
async fn im_4_body_over_max_body_bytes_is_policy_violation_without_sip_traffic() {
    let mut h = Harness::start(Opts {
        max_body_bytes: 1000,
        ..opts()
    })
    .await;
    h.xmpp.send(&juliet_msg("big1", ROMEO, &"y".repeat(1001)));
    let e = h.xmpp.stanza_with_id("big1", SOON).await;
    assert_romeo_error(&e, "big1", "modify", "policy-violation");
    // No SIP traffic: the next message is the first request the UAS sees.
    h.xmpp.send(&juliet_msg("small", ROMEO, "fits"));
    assert_eq!(h.uas_answer(200, "OK", &[]).await.body_str(), "fits");
    h.stop().await;
}

#[tokio::test]
async fn im_12_im_14_refused_xmpp_messages_get_errors_and_no_sip() {
    let mut h = Harness::start(opts()).await;
    // IM-14: groupchat only inside a MUC mapping.
    h.xmpp.send(&format!(
        "<message type='groupchat' id='gc' from='{JULIET}' to='{ROMEO}'><body>all</body></message>"
    ));
    assert_romeo_error(
        &h.xmpp.stanza_with_id("gc", SOON).await,
        "gc",
        "modify",
        "bad-request",
    );
    // IM-12: OMEMO cannot cross.
    let omemo =
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><payload>AAAA</payload></encrypted>";
    h.xmpp.send(&format!(
        "<message id='omemo' from='{JULIET}' to='{ROMEO}'>{omemo}<body>fallback</body></message>"
    ));
    assert_romeo_error(
        &h.xmpp.stanza_with_id("omemo", SOON).await,
        "omemo",
        "cancel",
        "feature-not-implemented",
    );
    // A sender from a domain the gateway does not serve.
    h.xmpp.send("<message id='eve' from='eve@evil.example/x' to='romeo@sip.example.com'><body>hi</body></message>");
    let e = h.xmpp.stanza_with_id("eve", SOON).await;
    assert_error(
        &e,
        ("message", "eve", ROMEO, "eve@evil.example/x"),
        "cancel",
        "not-allowed",
    );
    // None of them reached SIP: the next message is the first request the UAS sees.
    h.xmpp.send(&juliet_msg("ok", ROMEO, "plain"));
    assert_eq!(h.uas_answer(200, "OK", &[]).await.body_str(), "plain");
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

// ---------------------------------------------------------------------------------------
// 3.2 SIP -> XMPP (IM-5..IM-14, GEN-4, GEN-5, ADDR-7)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn im_5_im_6_sip_message_becomes_xmpp_message_then_200() {
    let mut h = Harness::start(opts()).await;
    let headers = [
        ("Subject", "Tonight"),
        ("Content-Language", "it"),
        ("Content-Type", "text/plain;charset=UTF-8"),
    ];
    let req = romeo_message(&headers, "Ci vediamo al balcone. ❤ 😀".as_bytes());
    let call_id = req.header("call-id").unwrap().to_string();
    let t = Instant::now();
    let sent = h.sip_send(req).await;
    let st = h.next_message().await;
    assert_eq!(st.attr("from"), Some(ROMEO), "{}", s(&st));
    assert_eq!(st.attr("to"), Some("juliet@example.com"), "{}", s(&st));
    assert_eq!(
        st.attr("type"),
        Some("chat"),
        "inbound_type = chat: {}",
        s(&st)
    );
    assert!(
        st.attr("id").is_some_and(|i| !i.is_empty()),
        "IM-6 id: {}",
        s(&st)
    );
    assert_eq!(
        child(&st, "thread", NS_COMPONENT).text(),
        call_id,
        "IM-6 Call-ID -> thread"
    );
    assert_eq!(child(&st, "subject", NS_COMPONENT).text(), "Tonight");
    let b = child(&st, "body", NS_COMPONENT);
    assert_eq!(b.text(), "Ci vediamo al balcone. ❤ 😀", "IM-8/IM-11");
    let lang = xml_lang(b).or_else(|| xml_lang(&st));
    assert_eq!(
        lang.as_deref(),
        Some("it"),
        "IM-6 Content-Language -> xml:lang: {}",
        s(&st)
    );
    let resp = h.sip_final(&sent).await;
    assert_eq!(resp.code(), Some(200), "IM-5: {}", resp.start);
    assert!(
        t.elapsed() >= Duration::from_millis(90),
        "200 after the bounce window ({:?})",
        t.elapsed()
    );
    assert!(
        param(resp.header("to").unwrap(), "tag").is_some(),
        "To tag on the 200"
    );
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn im_7_inbound_type_normal_gives_normal_messages() {
    let mut h = Harness::start(Opts {
        inbound_type: "normal",
        ..opts()
    })
    .await;
    assert_eq!(
        h.sip_transact(romeo_message(&[], b"page mode"))
            .await
            .code(),
        Some(200)
    );
    let st = h.next_message().await;
    assert!(
        matches!(st.attr("type"), None | Some("normal")),
        "IM-7: {}",
        s(&st)
    );
    h.stop().await;
}

#[tokio::test]
async fn gen_2_im_5_message_over_tcp_is_delivered() {
    let mut h = Harness::start(opts()).await;
    let resp = tcp_transact(h.gw_sip, romeo_message(&[], b"over tcp"), SOON).await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    assert_eq!(body(&h.next_message().await), "over tcp");
    h.stop().await;
}

#[tokio::test]
async fn addr_7_gruu_in_contact_becomes_the_resource() {
    let mut h = Harness::start(opts()).await;
    let contact = format!("<sip:romeo@{};gr=phone>", h.uac.addr);
    let resp = h
        .sip_transact(romeo_message(&[("Contact", &contact)], b"from my phone"))
        .await;
    assert_eq!(resp.code(), Some(200));
    let st = h.next_message().await;
    assert_eq!(
        st.attr("from"),
        Some("romeo@sip.example.com/phone"),
        "{}",
        s(&st)
    );
    h.stop().await;
}

/// Send a MESSAGE, bounce its stanza with `condition`, return the SIP final response.
async fn bounced_with(h: &mut Harness, condition: &str) -> SipMsg {
    let sent = h.sip_send(romeo_message(&[], b"will bounce")).await;
    let st = h.next_message().await;
    let id = st.attr("id").expect("stanza id");
    h.xmpp.send(&format!(
        "<message type='error' id='{id}' from='juliet@example.com' to='{ROMEO}'><error type='cancel'>\
         <{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ));
    h.sip_final(&sent).await
}

#[tokio::test]
async fn im_14_err_7_bounced_service_unavailable_gives_403_never_503() {
    let mut h = Harness::start(window(400)).await;
    let resp = bounced_with(&mut h, "service-unavailable").await;
    assert_eq!(
        resp.code(),
        Some(403),
        "ERR-7 (405 also allowed, 503 never): {}",
        resp.start
    );
    let after: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(
        after.is_empty(),
        "ERR-13: the bounce is not answered: {after:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn im_14_err_4_bounced_item_not_found_to_bare_jid_gives_604() {
    let mut h = Harness::start(window(400)).await;
    let resp = bounced_with(&mut h, "item-not-found").await;
    assert_eq!(
        resp.code(),
        Some(604),
        "ERR-4 bare JID target: {}",
        resp.start
    );
    h.stop().await;
}

#[tokio::test]
async fn gen_4_sips_request_uri_is_refused_with_403() {
    let mut h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=s1";
    let req = request(
        "MESSAGE",
        "sips:juliet@example.com",
        from,
        "<sip:juliet@example.com>",
        &[],
        b"x",
    );
    h.refused_without_stanza(req, 403).await;
    h.stop().await;
}

#[tokio::test]
async fn gen_4_sips_to_header_is_refused_with_403() {
    let mut h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=s2";
    let req = request(
        "MESSAGE",
        "sip:juliet@example.com",
        from,
        "<sips:juliet@example.com>",
        &[],
        b"x",
    );
    h.refused_without_stanza(req, 403).await;
    h.stop().await;
}

#[tokio::test]
async fn im_10_unsupported_content_type_gets_415_with_accept() {
    let mut h = Harness::start(opts()).await;
    let req = romeo_message(&[("Content-Type", "application/json")], b"{\"a\":1}");
    let resp = h.refused_without_stanza(req, 415).await;
    let accept = resp.header_values("accept");
    assert!(
        accept.iter().any(|a| norm(a).starts_with("text/plain")),
        "Accept: {accept:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn im_10_cpim_wrapped_text_is_delivered_unwrapped() {
    let mut h = Harness::start(opts()).await;
    let cpim = "From: <sip:romeo@example.net>\r\nTo: <sip:juliet@example.com>\r\n\
                DateTime: 2024-01-01T00:00:00Z\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nwrapped é";
    let req = romeo_message(&[("Content-Type", "message/cpim")], cpim.as_bytes());
    assert_eq!(h.sip_transact(req).await.code(), Some(200));
    assert_eq!(body(&h.next_message().await), "wrapped é");
    h.stop().await;
}

#[tokio::test]
async fn im_8_im_11_non_utf8_and_foreign_charsets_are_refused() {
    let mut h = Harness::start(opts()).await;
    let latin1 = [("Content-Type", "text/plain;charset=ISO-8859-1")];
    h.refused_without_stanza(romeo_message(&latin1, b"caf\xe9"), 415)
        .await;
    let utf8 = [("Content-Type", "text/plain;charset=UTF-8")];
    h.refused_without_stanza(romeo_message(&utf8, b"caf\xe9"), 400)
        .await;
    h.stop().await;
}

#[tokio::test]
async fn gen_5_max_forwards_zero_gets_483() {
    let mut h = Harness::start(opts()).await;
    h.refused_without_stanza(romeo_message(&[("Max-Forwards", "0")], b"looping"), 483)
        .await;
    h.stop().await;
}

#[tokio::test]
async fn gen_5_from_claiming_an_xmpp_user_gets_403() {
    let mut h = Harness::start(opts()).await;
    let spoof = "<sip:juliet@example.com>;tag=spoof";
    let req = request(
        "MESSAGE",
        "sip:juliet@example.com",
        spoof,
        "<sip:juliet@example.com>",
        &[],
        b"me",
    );
    h.refused_without_stanza(req, 403).await;
    h.stop().await;
}

#[tokio::test]
async fn gen_5_request_for_a_sip_user_is_not_gatewayed_back() {
    let mut h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=l1";
    let req = request(
        "MESSAGE",
        "sip:bob@example.net",
        from,
        "<sip:bob@example.net>",
        &[],
        b"loop?",
    );
    h.refused_without_stanza(req, 404).await;
    h.stop().await;
}

#[tokio::test]
async fn rfc3261_options_gets_200_with_allow_message() {
    let h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=o1";
    let resp = h
        .sip_transact(request(
            "OPTIONS",
            "sip:example.com",
            from,
            "<sip:example.com>",
            &[],
            b"",
        ))
        .await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    let allow: Vec<String> = resp
        .header_values("allow")
        .iter()
        .map(|a| a.to_ascii_uppercase())
        .collect();
    assert!(allow.iter().any(|a| a == "MESSAGE"), "Allow: {allow:?}");
}

#[tokio::test]
async fn rfc3261_invite_gets_405_with_allow() {
    let h = Harness::start(opts()).await;
    let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let headers = [
        ("Contact", "<sip:romeo@127.0.0.1>"),
        ("Content-Type", "application/sdp"),
    ];
    let from = "<sip:romeo@example.net>;tag=i1";
    let invite = request(
        "INVITE",
        "sip:juliet@example.com",
        from,
        "<sip:juliet@example.com>",
        &headers,
        sdp,
    );
    let resp = h.sip_transact(invite).await;
    assert_eq!(resp.code(), Some(405), "{}", resp.start);
    let allow: Vec<String> = resp
        .header_values("allow")
        .iter()
        .map(|a| a.to_ascii_uppercase())
        .collect();
    assert!(allow.iter().any(|a| a == "MESSAGE"), "Allow: {allow:?}");
    assert!(
        !allow.iter().any(|a| a == "INVITE"),
        "Allow lists the refused method: {allow:?}"
    );
}

#[tokio::test]
async fn rfc3261_unknown_method_gets_501() {
    let h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=f1";
    let req = request(
        "FOO",
        "sip:juliet@example.com",
        from,
        "<sip:juliet@example.com>",
        &[],
        b"",
    );
    assert_eq!(h.sip_transact(req).await.code(), Some(501));
}

#[tokio::test]
async fn im_14_err_13_bounce_from_another_jid_is_not_correlated() {
    let mut h = Harness::start(window(400)).await;
    let sent = h.sip_send(romeo_message(&[], b"for juliet")).await;
    let st = h.next_message().await;
    let id = st.attr("id").expect("stanza id");
    // Another XMPP user echoes the id (the ids are sequential, so they are easy to guess).
    // Only the recipient (or its server) can bounce the message.
    h.xmpp.send(&format!(
        "<message type='error' id='{id}' from='mallory@example.com/x' to='{ROMEO}'>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         </error></message>"
    ));
    let resp = h.sip_final(&sent).await;
    assert_eq!(
        resp.code(),
        Some(200),
        "an error from a third party failed the MESSAGE: {}",
        resp.start
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
async fn gen_2_gateway_reports_the_bound_sip_sockets() {
    // `Gateway::sip_addrs` is documented as the bound sockets, "useful when a port was 0".
    let xmpp = support::xmpp::FakeServer::start(SECRET).await;
    let text = format!(
        "[component]\njid = \"{COMPONENT}\"\nserver = \"{}\"\nsecret = \"{SECRET}\"\n\
         [sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n\
         [addresses]\nxmpp_domains = [\"example.com\"]\nsip_domain = \"example.net\"\n",
        xmpp.addr
    );
    let cfg = stox::config::Config::parse(&text).unwrap();
    let gw = stox::app::Gateway::start(&cfg)
        .await
        .expect("gateway starts");
    let addrs = gw.sip_addrs.clone();
    gw.stop().await;
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(
        addrs.iter().all(|a| a.port() != 0),
        "a listener bound to port 0 reports port 0: {addrs:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The slow one: Timer F (64*T1 = 32 s of real time; tokio's test-util clock is not enabled
// for these tests). Last in the file; its name sorts it early so libtest (which starts
// tests in name order) overlaps it with the rest.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn err_8_im_3_unanswered_message_times_out_as_remote_server_timeout() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(M42);
    let (req, _) = h.uas.request(SOON).await;
    assert_eq!(req.method(), Some("MESSAGE"));
    // Never answered (retransmissions are ignored too).
    let e = h.xmpp.stanza_with_id("m42", Duration::from_secs(40)).await;
    assert_romeo_error(&e, "m42", "wait", "remote-server-timeout");
    h.stop().await;
}
