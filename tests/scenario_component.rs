//! Scenarios of the XEP-0114 component link: stream header and handshake, refused secrets
//! and back-off, link loss and reconnection, keepalive pings, stanzas split across TCP
//! segments, graceful stop; plus self-checks of the harness's SHA-1 and XML splitter.
//! Test names cite the requirement IDs of shared/spec/CHECKLIST.md; the harness and its
//! timing rules are described in tests/support/mod.rs.

mod support;

use std::time::Duration;
use support::check::*;
use support::xml::{raw_attr, NS_COMPONENT};
use support::xmpp::{is_keepalive, Ev};
use support::{opts, romeo_message, window, Harness, Opts, COMPONENT, SECRET, SOON};
use tokio::time::Instant;

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
