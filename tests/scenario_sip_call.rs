//! Scenarios of the SIP call adapter (src/sip/call, CHECKLIST MEDIA-7, 18, 22; RFC 3261 §9,
//! §13-15): stox's SIP side (ezk endpoint + our layers + SipClient) runs in-process, the
//! other party is a raw UDP SIP peer written here from RFC 3261.

mod support;

use bytes::Bytes;
use std::time::Duration;
use stox::errmap::SipStatus;
use stox::sip::call::CallEvent;
use support::call::*;
use support::sip::{param, request, token, uri_of, UdpPeer};
use support::SOON;

/// MEDIA-7: 180 reaches next() with its tag; the 200's SDP answer reaches next(); the ACK
/// is only sent after ack() (same CSeq number as the INVITE, To tag of the 200); our bye()
/// sends a BYE in that dialog with a higher CSeq.
#[tokio::test]
async fn uac_180_then_200_ack_only_after_ack_then_bye() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
    assert_eq!(inv.body_str(), OFFER);
    peer.send(&reply(&inv, 180, "Ringing", "a", &peer, ""), from)
        .await;
    assert_eq!(
        next(&mut call).await,
        CallEvent::Provisional {
            code: 180,
            to_tag: Some("a".into()),
            sdp: None,
            reliable: false
        }
    );
    peer.send(&reply(&inv, 200, "OK", "a", &peer, ANSWER), from)
        .await;
    assert_eq!(
        next(&mut call).await,
        CallEvent::Answered {
            sdp: Bytes::from(ANSWER)
        }
    );
    none_within(&peer, "ACK", Duration::from_millis(700)).await;
    call.ack().await.unwrap();
    let (ack, _) = expect(&peer, "ACK").await;
    assert_eq!(cseq_num(&ack), cseq_num(&inv));
    assert_eq!(
        param(ack.header("to").unwrap(), "tag").as_deref(),
        Some("a")
    );
    assert_eq!(ack.uri(), Some(format!("sip:bob@{}", peer.addr).as_str()));
    let bye = tokio::spawn(async move {
        call.bye().await;
        call
    });
    let (b, from) = expect(&peer, "BYE").await;
    assert!(cseq_num(&b) > cseq_num(&inv));
    assert_eq!(param(b.header("to").unwrap(), "tag").as_deref(), Some("a"));
    peer.send(&b.response(200, "OK", &[]), from).await;
    tokio::time::timeout(SOON, bye).await.unwrap().unwrap();
}

/// A final non-2xx after a 180 is Failed with its code (MEDIA-23 maps it); the peer gets
/// its ACK, and no CANCEL when the handle is dropped afterwards.
#[tokio::test]
async fn uac_486_is_failed_486() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
    peer.send(&reply(&inv, 180, "Ringing", "a", &peer, ""), from)
        .await;
    assert!(matches!(
        next(&mut call).await,
        CallEvent::Provisional { code: 180, .. }
    ));
    peer.send(&reply(&inv, 486, "Busy Here", "a", &peer, ""), from)
        .await;
    match next(&mut call).await {
        CallEvent::Failed { code, reason } => {
            assert_eq!(code, 486);
            assert_eq!(reason, "Busy Here");
        }
        e => panic!("expected Failed, got {e:?}"),
    }
    let (ack, _) = expect(&peer, "ACK").await;
    assert_eq!(ack.branch(), inv.branch());
    // Over: dropping the handle must not CANCEL a finished INVITE.
    drop(call);
    none_within(&peer, "CANCEL", Duration::from_millis(300)).await;
}

/// RFC 3261 §9.1: CANCEL after a 180 carries the INVITE's branch, Call-ID, tags-less To and
/// CSeq number; 200 + 487 from the peer end the call as Failed{487}.
#[tokio::test]
async fn uac_cancel_after_180_ends_in_487() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
    peer.send(&reply(&inv, 180, "Ringing", "a", &peer, ""), from)
        .await;
    assert!(matches!(
        next(&mut call).await,
        CallEvent::Provisional { code: 180, .. }
    ));
    call.cancel();
    let (c, _) = expect(&peer, "CANCEL").await;
    assert_eq!(c.branch(), inv.branch());
    assert_eq!(c.header("call-id"), inv.header("call-id"));
    assert_eq!(c.header("to"), inv.header("to"));
    assert_eq!(
        c.header("cseq"),
        Some(format!("{} CANCEL", cseq_num(&inv)).as_str())
    );
    peer.send(&c.response(200, "OK", &[]), from).await;
    peer.send(
        &reply(&inv, 487, "Request Terminated", "a", &peer, ""),
        from,
    )
    .await;
    assert!(matches!(
        next(&mut call).await,
        CallEvent::Failed { code: 487, .. }
    ));
    expect(&peer, "ACK").await;
}

/// MEDIA-22: a second 2xx from another fork (other To tag) is ACKed and BYE'd by the
/// adapter and never surfaces; the first fork's call goes on.
#[tokio::test]
async fn uac_second_fork_2xx_is_acked_and_byed() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
    peer.send(&reply(&inv, 200, "OK", "a", &peer, ANSWER), from)
        .await;
    assert!(matches!(next(&mut call).await, CallEvent::Answered { .. }));
    peer.send(&reply(&inv, 200, "OK", "b", &peer, HOLD), from)
        .await;
    let (ack, _) = expect(&peer, "ACK").await;
    assert_eq!(
        param(ack.header("to").unwrap(), "tag").as_deref(),
        Some("b")
    );
    let (bye, from2) = expect(&peer, "BYE").await;
    assert_eq!(
        param(bye.header("to").unwrap(), "tag").as_deref(),
        Some("b")
    );
    peer.send(&bye.response(200, "OK", &[]), from2).await;
    let more = tokio::time::timeout(Duration::from_millis(500), call.next()).await;
    assert!(more.is_err(), "nothing more surfaces: {more:?}");
    call.ack().await.unwrap();
    let (ack, _) = expect(&peer, "ACK").await;
    assert_eq!(
        param(ack.header("to").unwrap(), "tag").as_deref(),
        Some("a")
    );
}

/// The peer's BYE is answered 200 and reaches next() as Bye.
#[tokio::test]
async fn uac_peer_bye_reaches_next() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let (mut call, inv, from) = answered(&gw, &peer).await;
    let bye = peer
        .send_request(peer_request(&inv, "BYE", 5, ""), from)
        .await;
    let r = peer.final_response(&bye, SOON).await;
    assert_eq!(r.code(), Some(200));
    assert_eq!(next(&mut call).await, CallEvent::Bye);
}

/// A re-INVITE with a new offer (hold) reaches next(); the session's answer goes back in a
/// 200 and the peer's ACK completes it. A re-INVITE with the SDP already in force (an RFC
/// 4028 refresh) is answered 200 with our SDP without the session.
#[tokio::test]
async fn uac_peer_reinvite_reaches_next_and_refresh_is_answered_here() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let (mut call, inv, from) = answered(&gw, &peer).await;
    let re = peer
        .send_request(peer_request(&inv, "INVITE", 2, HOLD), from)
        .await;
    assert_eq!(
        next(&mut call).await,
        CallEvent::ReInvite {
            sdp: Bytes::from(HOLD)
        }
    );
    let recv_only = OFFER.replace("sendrecv", "recvonly");
    let answer = Bytes::from(recv_only.clone());
    let answering = tokio::spawn(async move {
        let r = call.answer_reinvite(Ok(answer)).await;
        (call, r)
    });
    let ok = peer.final_response(&re, SOON).await;
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.body_str(), recv_only);
    let ack = peer_request(&inv, "ACK", 2, "");
    peer.send_request(ack, from).await;
    let (mut call, r) = tokio::time::timeout(SOON, answering)
        .await
        .unwrap()
        .unwrap();
    r.expect("the ACK completes the answer");

    // RFC 4028 refresh: the same SDP again; answered 200 with ours, the session hears nothing.
    let refresh = peer
        .send_request(peer_request(&inv, "INVITE", 3, HOLD), from)
        .await;
    let ok = peer.final_response(&refresh, SOON).await;
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.body_str(), recv_only);
    peer.send_request(peer_request(&inv, "ACK", 3, ""), from)
        .await;
    let update = peer
        .send_request(peer_request(&inv, "UPDATE", 4, ""), from)
        .await;
    assert_eq!(peer.final_response(&update, SOON).await.code(), Some(200));
    let more = tokio::time::timeout(Duration::from_millis(300), call.next()).await;
    assert!(
        more.is_err(),
        "a refresh does not reach the session: {more:?}"
    );
}

/// Callee: 100 at once, 180 with our To tag, the 200 with the same tag and our SDP, resent
/// until the peer's ACK (Timer G), after which answer() returns; the peer's BYE is Bye.
#[tokio::test]
async fn uas_ringing_answer_retransmits_until_ack() {
    let peer = UdpPeer::bind().await;
    let mut gw = gateway(peer.addr).await;
    let (inv, call) = inbound(&mut gw, &peer, &[]).await;
    let call = call.unwrap();
    assert_eq!(call.offer(), OFFER.as_bytes());
    response(&peer, &inv, 100).await;
    call.ringing().await.unwrap();
    let ringing = response(&peer, &inv, 180).await;
    let tag = param(ringing.header("to").unwrap(), "tag").expect("a To tag");
    let answering = tokio::spawn(call.answer(Bytes::from(ANSWER)));
    let ok = response(&peer, &inv, 200).await;
    assert_eq!(param(ok.header("to").unwrap(), "tag"), Some(tag.clone()));
    assert_eq!(ok.body_str(), ANSWER);
    let again = response(&peer, &inv, 200).await;
    assert_eq!(again.body_str(), ANSWER);
    assert!(!answering.is_finished(), "answer() waits for the ACK");
    let target = uri_of(ok.header("contact").unwrap());
    let cseq = format!("{} ACK", cseq_num(&inv));
    let cid = inv.header("call-id").unwrap();
    let ack = request(
        "ACK",
        &target,
        inv.header("from").unwrap(),
        ok.header("to").unwrap(),
        &[("Call-ID", cid), ("CSeq", &cseq)],
        b"",
    );
    peer.send_request(ack, gw.addr).await;
    let mut est = tokio::time::timeout(SOON, answering)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let bye = request(
        "BYE",
        &target,
        inv.header("from").unwrap(),
        ok.header("to").unwrap(),
        &[
            ("Call-ID", cid),
            ("CSeq", &format!("{} BYE", cseq_num(&inv) + 1)),
        ],
        b"",
    );
    let r = peer.transact(bye, gw.addr, SOON).await;
    assert_eq!(r.code(), Some(200));
    let ev = tokio::time::timeout(SOON, est.next()).await.unwrap();
    assert_eq!(ev, Some(CallEvent::Bye));
}

/// RFC 3261 §9.2: a CANCEL while ringing gets 200, the INVITE 487 (with the 180's tag), and
/// the session sees Cancelled; answering afterwards fails.
#[tokio::test]
async fn uas_cancel_while_ringing_is_487_and_cancelled() {
    let peer = UdpPeer::bind().await;
    let mut gw = gateway(peer.addr).await;
    let (inv, call) = inbound(&mut gw, &peer, &[]).await;
    let mut call = call.unwrap();
    call.ringing().await.unwrap();
    let ringing = response(&peer, &inv, 180).await;
    let mut cancel = inv.clone();
    cancel.start = inv.start.replace("INVITE", "CANCEL");
    cancel.body.clear();
    cancel
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
    for h in cancel.headers.iter_mut() {
        if h.0 == "CSeq" {
            h.1 = format!("{} CANCEL", cseq_num(&inv));
        }
    }
    peer.send(&cancel, gw.addr).await;
    let mut got = (None, None);
    while got.0.is_none() || got.1.is_none() {
        let (m, _) = peer
            .recv(SOON)
            .await
            .expect("responses to CANCEL and INVITE");
        match (m.code(), m.header("cseq")) {
            (Some(200), Some(c)) if c.ends_with("CANCEL") => got.0 = Some(m),
            (Some(487), Some(c)) if c.ends_with("INVITE") => got.1 = Some(m),
            _ => {}
        }
    }
    let t487 = got.1.unwrap();
    assert_eq!(
        param(t487.header("to").unwrap(), "tag"),
        param(ringing.header("to").unwrap(), "tag")
    );
    let ev = tokio::time::timeout(SOON, call.next()).await.unwrap();
    assert_eq!(ev, Some(CallEvent::Cancelled));
    assert!(call.answer(Bytes::from(ANSWER)).await.is_err());
}

/// reject(603) sends 603 (To tagged) to the INVITE; reject with a non-failure code sends 500.
#[tokio::test]
async fn uas_reject_603() {
    let peer = UdpPeer::bind().await;
    let mut gw = gateway(peer.addr).await;
    let (inv, call) = inbound(&mut gw, &peer, &[]).await;
    call.unwrap().reject(&SipStatus::new(603)).await;
    let r = response(&peer, &inv, 603).await;
    assert!(param(r.header("to").unwrap(), "tag").is_some());
    // A code that is no failure (a session bug) must not reach ezk's assertion: 500.
    let (inv, call) = inbound(&mut gw, &peer, &[]).await;
    call.unwrap().reject(&SipStatus::new(180)).await;
    response(&peer, &inv, 500).await;
}

/// MEDIA-18: an INVITE that already went through the gateway's transport (its address in a
/// Via) is refused 482; one that requires an extension we lack gets 420 + Unsupported.
#[tokio::test]
async fn uas_loop_482_and_required_extension_420() {
    let peer = UdpPeer::bind().await;
    let mut gw = gateway(peer.addr).await;
    let via = format!("SIP/2.0/UDP {};branch=z9hG4bKloop{}", gw.addr, token());
    let (inv, call) = inbound(&mut gw, &peer, &[("Via", &via)]).await;
    assert_eq!(call.unwrap_err().code, 482);
    response(&peer, &inv, 482).await;
    let (inv, call) = inbound(&mut gw, &peer, &[("Require", "100rel")]).await;
    assert_eq!(call.unwrap_err().code, 420);
    let r = response(&peer, &inv, 420).await;
    assert_eq!(r.header("unsupported"), Some("100rel"));
}

/// RFC 4028: a 2xx with `Session-Expires: 2;refresher=uac` makes us refresh: a re-INVITE
/// in the dialog with the SDP in force (our offer, unchanged) about every second.
#[tokio::test]
async fn uac_refreshes_when_2xx_makes_us_refresher() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
    let mut ok = reply(&inv, 200, "OK", "a", &peer, ANSWER);
    ok.headers
        .push(("Session-Expires".into(), "2;refresher=uac".into()));
    peer.send(&ok, from).await;
    assert!(matches!(next(&mut call).await, CallEvent::Answered { .. }));
    call.ack().await.unwrap();
    expect(&peer, "ACK").await;
    let (re, from) = expect(&peer, "INVITE").await;
    assert_eq!(re.body_str(), OFFER);
    assert!(cseq_num(&re) > cseq_num(&inv));
    assert_eq!(param(re.header("to").unwrap(), "tag").as_deref(), Some("a"));
    peer.send(&reply(&re, 200, "OK", "a", &peer, ANSWER), from)
        .await;
    let (ack, _) = expect(&peer, "ACK").await;
    assert_eq!(cseq_num(&ack), cseq_num(&re));
}

/// Real peer: SIPp (integration/sipp/uas_call.xml) answers a call we place: 180, 200 with
/// SDP, our ACK after ack(), our BYE; SIPp exits 0 only if all of it came in order.
/// `cargo test --test scenario_sip_call -- --ignored` (needs `sipp` on PATH).
#[tokio::test]
#[ignore = "needs sipp (../shared/peers/install.sh sipp)"]
async fn sipp_uas_answers_our_call() {
    let port = support::free_udp_tcp_port();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/integration/sipp/uas_call.xml");
    let mut sipp = tokio::process::Command::new("sipp")
        .args(["-sf", scenario, "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp not found on PATH: install it with ../shared/peers/install.sh sipp");
    let gw = gateway(format!("127.0.0.1:{port}").parse().unwrap()).await;
    // SIPp needs a moment to bind; the INVITE is retransmitted meanwhile (Timer A).
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    assert!(matches!(
        next(&mut call).await,
        CallEvent::Provisional { code: 180, .. }
    ));
    let CallEvent::Answered { sdp } = next(&mut call).await else {
        panic!("expected Answered");
    };
    assert!(String::from_utf8_lossy(&sdp).contains("m=audio"));
    call.ack().await.unwrap();
    tokio::time::timeout(SOON, call.bye()).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), sipp.wait())
        .await
        .expect("sipp ends")
        .unwrap();
    assert!(status.success(), "sipp failed: {status:?}");
}

/// RFC 3262, MEDIA-17: our INVITE offers 100rel; a reliable 183 with the SDP answer is
/// PRACKed in its early dialog (RAck = RSeq + INVITE CSeq) and its retransmission is neither
/// PRACKed nor reported again; a 2xx without SDP is Answered with the 183's SDP; the call
/// goes on in the early dialog (its BYE's CSeq is above the PRACK's).
#[tokio::test]
async fn uac_reliable_183_is_pracked_and_its_sdp_answers() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
    assert!(inv.header_values("supported").iter().any(|v| v == "100rel"));
    let mut p = reply(&inv, 183, "Session Progress", "a", &peer, ANSWER);
    p.headers.push(("Require".into(), "100rel".into()));
    p.headers.push(("RSeq".into(), "1".into()));
    peer.send(&p, from).await;
    assert_eq!(
        next(&mut call).await,
        CallEvent::Provisional {
            code: 183,
            to_tag: Some("a".into()),
            sdp: Some(Bytes::from(ANSWER)),
            reliable: true
        }
    );
    let (prack, from2) = peer.request(SOON).await;
    assert_eq!(prack.method(), Some("PRACK"));
    let rack = format!("1 {} INVITE", cseq_num(&inv));
    assert_eq!(prack.header("rack"), Some(rack.as_str()));
    assert_eq!(
        param(prack.header("to").unwrap(), "tag").as_deref(),
        Some("a")
    );
    peer.send(&prack.response(200, "OK", &[]), from2).await;
    peer.send(&p, from).await;
    peer.send(&reply(&inv, 200, "OK", "a", &peer, ""), from)
        .await;
    assert_eq!(
        next(&mut call).await,
        CallEvent::Answered {
            sdp: Bytes::from(ANSWER)
        }
    );
    call.ack().await.unwrap();
    let (ack, _) = peer.request(SOON).await;
    assert_eq!(ack.method(), Some("ACK"), "no second PRACK: {}", ack.start);
    assert_eq!(cseq_num(&ack), cseq_num(&inv));
    let bye = tokio::spawn(async move { call.bye().await });
    let (b, from) = expect(&peer, "BYE").await;
    assert!(cseq_num(&b) > cseq_num(&prack));
    peer.send(&b.response(200, "OK", &[]), from).await;
    tokio::time::timeout(SOON, bye).await.unwrap().unwrap();
}

/// Our own re-INVITE (hold, MEDIA-15): the offer goes in the dialog with a higher CSeq, the
/// peer's 200 is ACKed and its SDP returned; a 491 (glare) comes back as Err(491). A callee
/// dropped unanswered tells the caller 480.
#[tokio::test]
async fn uac_our_reinvite_and_dropped_callee() {
    let peer = UdpPeer::bind().await;
    let mut gw = gateway(peer.addr).await;
    let (call, inv, _) = answered(&gw, &peer).await;
    let hold = OFFER.replace("sendrecv", "sendonly");
    let offer = Bytes::from(hold.clone());
    let re = tokio::spawn(async move {
        let r = call.reinvite(offer).await;
        (call, r)
    });
    let (ri, from) = expect(&peer, "INVITE").await;
    assert_eq!(ri.body_str(), hold);
    assert!(cseq_num(&ri) > cseq_num(&inv));
    assert_eq!(param(ri.header("to").unwrap(), "tag").as_deref(), Some("a"));
    peer.send(&reply(&ri, 200, "OK", "a", &peer, HOLD), from)
        .await;
    let (ack, _) = expect(&peer, "ACK").await;
    assert_eq!(cseq_num(&ack), cseq_num(&ri));
    let (call, r) = tokio::time::timeout(SOON, re).await.unwrap().unwrap();
    assert_eq!(r, Ok(Bytes::from(HOLD)));
    let re = tokio::spawn(async move { call.reinvite(Bytes::from(OFFER)).await });
    let (ri, from) = expect(&peer, "INVITE").await;
    peer.send(&reply(&ri, 491, "Request Pending", "a", &peer, ""), from)
        .await;
    assert_eq!(
        tokio::time::timeout(SOON, re).await.unwrap().unwrap(),
        Err(491)
    );

    let (inv, call) = inbound(&mut gw, &peer, &[]).await;
    drop(call.unwrap());
    response(&peer, &inv, 480).await;
}

/// Real peer: SIPp (integration/sipp/uac_call.xml) calls us; we ring and answer, its ACK
/// completes answer(), its BYE (to our Contact) is answered 200 and reaches next().
#[tokio::test]
#[ignore = "needs sipp (../shared/peers/install.sh sipp)"]
async fn sipp_uac_call_is_answered() {
    let mut gw = gateway("127.0.0.1:9".parse().unwrap()).await;
    let port = support::free_udp_tcp_port();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/integration/sipp/uac_call.xml");
    let mut sipp = tokio::process::Command::new("sipp")
        .arg(gw.addr.to_string())
        .args(["-sf", scenario, "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp not found on PATH: install it with ../shared/peers/install.sh sipp");
    let ev = tokio::time::timeout(SOON, gw.invites.recv()).await.unwrap();
    let Some(stox::sip::SipEvent::Invite { pending, .. }) = ev else {
        panic!("expected an INVITE");
    };
    let contact = format!("sip:alice@{}", gw.addr);
    let call = stox::sip::call::IncomingCall::new(pending, &contact)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(call.offer()).contains("m=audio"));
    call.ringing().await.unwrap();
    let mut est = tokio::time::timeout(SOON, call.answer(Bytes::from(ANSWER)))
        .await
        .unwrap()
        .unwrap();
    let ev = tokio::time::timeout(SOON, est.next()).await.unwrap();
    assert_eq!(ev, Some(CallEvent::Bye));
    let status = tokio::time::timeout(Duration::from_secs(20), sipp.wait())
        .await
        .expect("sipp ends")
        .unwrap();
    assert!(status.success(), "sipp failed: {status:?}");
}
