//! Failure scenarios in both directions: SIP final responses mapped to XMPP errors (Table E2),
//! unreachable and silent next hops, XMPP messages refused before SIP, bounced stanzas
//! answered in SIP, and SIP requests refused before XMPP.
//! Test names cite the requirement IDs of shared/spec/CHECKLIST.md; the harness and its
//! timing rules are described in tests/support/mod.rs.

mod support;

use std::collections::HashSet;
use std::time::Duration;
use support::check::*;
use support::sip::{request, SipMsg};
use support::xml::stanza_error;
use support::{opts, romeo_message, window, Harness, Opts, Route, SOON};

// ---------------------------------------------------------------------------------------
// XMPP -> SIP failures: Table E2 (IM-3, ERR-6, ERR-8, ERR-9, ERR-11)
// ---------------------------------------------------------------------------------------

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
    // A TCP route to a port nobody listens on: connection refused. The socket stays bound
    // without listening, so no parallel test's listener can take the port meanwhile: a
    // freed port taken that way would accept the connection, and the MESSAGE would wait
    // for an answer instead of failing (a CI run once timed out here).
    let holder = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    holder.bind(&any.into()).unwrap();
    let closed = holder.local_addr().unwrap().as_socket().unwrap().port();
    let route = Route::Uri(format!("sip:127.0.0.1:{closed};transport=tcp"));
    let mut h = Harness::start(Opts { route, ..opts() }).await;
    h.xmpp.send(M42);
    let e = h.xmpp.stanza_with_id("m42", Duration::from_secs(10)).await;
    assert_romeo_error(&e, "m42", "cancel", "remote-server-not-found");
    h.stop().await;
    drop(holder);
}

#[tokio::test]
async fn err_8_im_3_unanswered_message_times_out_as_remote_server_timeout() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(M42);
    let (req, _) = h.uas.request(SOON).await;
    assert_eq!(req.method(), Some("MESSAGE"));
    // Never answered (retransmissions are ignored too), and not given up on early.
    let early: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(early.is_empty(), "an error before Timer F: {early:?}");
    // Timer F is 64*T1 = 32 s after the MESSAGE went out. ezk-sip-core's ClientTsx waits
    // with `tokio::time::timeout_at` on a std `Instant`, and tokio's timer wheel measures any
    // deadline against its own clock, so moving that clock 33 s ahead fires Timer F without
    // waiting for it. The clock is resumed at once: paused, an idle runtime would jump to the
    // next timer while the error stanza is still on the loopback sockets.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(33)).await;
    tokio::time::resume();
    let e = h.xmpp.stanza_with_id("m42", SOON).await;
    assert_romeo_error(&e, "m42", "wait", "remote-server-timeout");
    h.stop().await;
}

// ---------------------------------------------------------------------------------------
// XMPP messages refused before SIP (IM-4, IM-12, IM-14)
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Bounced stanzas answered in SIP (IM-14, ERR-4, ERR-7, ERR-13)
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// SIP requests refused before XMPP (GEN-4, GEN-5, IM-8, IM-10, IM-11, RFC 3261)
// ---------------------------------------------------------------------------------------

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

/// An INVITE with no MSRP media (an audio call: media signalling is not bridged yet) gets
/// 488 Not Acceptable Here (RFC 3261 §21.4.26), not 405: INVITE itself is supported now
/// (RFC 7573 chat sessions), and Allow says so.
#[tokio::test]
async fn rfc3261_invite_without_msrp_or_rtp_gets_488() {
    let h = Harness::start(support::Opts {
        chat_mode: "auto",
        ..opts()
    })
    .await;
    // An audio or video offer is a call (media::call); a data channel is neither a call nor
    // an MSRP session.
    let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
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
    assert_eq!(resp.code(), Some(488), "{}", resp.start);
}

#[tokio::test]
async fn options_allow_lists_invite() {
    let h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=o1";
    let req = request(
        "OPTIONS",
        "sip:juliet@example.com",
        from,
        "<sip:juliet@example.com>",
        &[],
        b"",
    );
    let resp = h.sip_transact(req).await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    let allow: Vec<String> = resp
        .header_values("allow")
        .iter()
        .flat_map(|a| {
            a.split(',')
                .map(|m| m.trim().to_ascii_uppercase())
                .collect::<Vec<_>>()
        })
        .collect();
    for m in ["MESSAGE", "INVITE", "BYE", "ACK"] {
        assert!(allow.iter().any(|a| a == m), "Allow: {allow:?}");
    }
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

/// Hardening: the SIP peer takes the TCP connection and the request, then resets it (RST)
/// without answering. RFC 3261 §8.1.3.1: a transport error counts as a 503, which RFC 7247
/// §7.2 (note 9) renders as internal-server-error; the sender gets it at once, not
/// remote-server-timeout 32 s later.
#[tokio::test]
async fn tcp_reset_by_the_sip_peer_mid_transaction_returns_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let route = Route::Uri(format!("sip:127.0.0.1:{port};transport=tcp"));
    let mut h = Harness::start(Opts { route, ..opts() }).await;
    let peer = std::thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        // SO_LINGER 0: close() sends RST instead of FIN.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::from_secs(0)))
            .unwrap();
        drop(s);
        n
    });
    h.xmpp.send(M42);
    let e = h.xmpp.stanza_with_id("m42", SOON).await;
    assert!(
        peer.join().unwrap() > 0,
        "the peer got the MESSAGE before it reset"
    );
    let (_, cond, _, _) = support::xml::stanza_error(&e);
    assert_eq!(cond, "internal-server-error", "{}", s(&e));
    assert!(s(&e).contains("connection lost"), "{}", s(&e));
    h.stop().await;
}
