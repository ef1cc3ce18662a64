//! Scenarios of the SIP call adapter (src/sip/call, CHECKLIST MEDIA-7, 18, 22; RFC 3261 §9,
//! §13-15): stox's SIP side (ezk endpoint + our layers + SipClient) runs in-process, the
//! other party is a raw UDP SIP peer written here from RFC 3261.

mod support;

use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use stox::errmap::SipStatus;
use stox::sip::call::{CallEvent, IncomingCall, OutgoingCall};
use stox::sip::invite::InviteOut;
use stox::sip::{SipClient, SipEvent};
use support::sip::{param, request, token, uri_of, SipMsg, UdpPeer};
use support::SOON;
use tokio::sync::mpsc;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &str = "v=0\r\no=- 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n";
const HOLD: &str = "v=0\r\no=- 7 8 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n";

/// The gateway's SIP side: endpoint with ezk's dialog layer and ours, and a SipClient whose
/// route for example.net is the peer.
struct Gw {
    client: SipClient,
    invites: mpsc::Receiver<SipEvent>,
    addr: SocketAddr,
}

async fn gateway(peer: SocketAddr) -> Gw {
    let mut builder = ezk_sip_core::Endpoint::builder();
    builder.add_layer(ezk_sip_ua::dialog::DialogLayer::default());
    let (tx, invites) = mpsc::channel(16);
    let access: stox::config::AccessConfig = toml::from_str("").unwrap();
    let gate = stox::access::SipGate::new(&access, "sip.example.com", [7; 32]).unwrap();
    builder.add_layer(stox::sip::inbound::StoxLayer::new(
        tx,
        Arc::new(AtomicBool::new(false)),
        stox::sip::gate::cell(gate),
        stox::sip::budget::Budget::new(1 << 20),
    ));
    let tp = builder
        .bind_udp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = tp.bound();
    let endpoint = builder.build();
    let routes = BTreeMap::from([("example.net".to_string(), format!("sip:{peer}"))]);
    let client = SipClient::new(
        endpoint,
        routes,
        None,
        addr.to_string(),
        "sip.example.com".into(),
    );
    Gw {
        client,
        invites,
        addr,
    }
}

fn invite_out(gw: &Gw) -> InviteOut {
    InviteOut {
        request_uri: "sip:bob@example.net".into(),
        from: "sip:alice@sip.example.com".into(),
        contact: format!("sip:alice@{}", gw.addr),
        subject: None,
        sdp: OFFER.as_bytes().to_vec(),
    }
}

/// A response of the peer with To tag `tag`, a Contact and an optional SDP body.
fn reply(req: &SipMsg, code: u16, reason: &str, tag: &str, peer: &UdpPeer, sdp: &str) -> SipMsg {
    let contact = format!("<sip:bob@{}>", peer.addr);
    let mut extra = vec![("Contact", contact.as_str())];
    if !sdp.is_empty() {
        extra.push(("Content-Type", "application/sdp"));
    }
    let mut r = req.response(code, reason, &extra);
    if let Some(to) = r.headers.iter_mut().find(|(n, _)| n == "To") {
        if param(&to.1, "tag").is_none() {
            to.1 = format!("{};tag={tag}", to.1);
        } else {
            to.1 = to.1.replace(";tag=uas-tag-1", &format!(";tag={tag}"));
        }
    }
    r.body = sdp.as_bytes().to_vec();
    r
}

fn cseq_num(m: &SipMsg) -> u32 {
    m.header("cseq")
        .and_then(|c| c.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// The next request of `method` at the peer (others are skipped).
async fn expect(peer: &UdpPeer, method: &str) -> (SipMsg, SocketAddr) {
    loop {
        let (m, from) = peer.request(SOON).await;
        if m.method() == Some(method) {
            return (m, from);
        }
    }
}

/// No request of `method` reaches the peer within `d`.
async fn none_within(peer: &UdpPeer, method: &str, d: Duration) {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match peer.recv(left).await {
            None => return,
            Some((m, _)) => assert_ne!(m.method(), Some(method), "unexpected {}", m.start),
        }
    }
}

async fn next(call: &mut OutgoingCall) -> CallEvent {
    tokio::time::timeout(SOON, call.next())
        .await
        .expect("an event")
        .expect("the call goes on")
}

/// Place a call and answer it 200 with tag `a`; returns the INVITE and where the gateway is.
async fn answered(gw: &Gw, peer: &UdpPeer) -> (OutgoingCall, SipMsg, SocketAddr) {
    let mut call = gw.client.start_call(&invite_out(gw)).await.unwrap();
    let (inv, from) = expect(peer, "INVITE").await;
    peer.send(&reply(&inv, 200, "OK", "a", peer, ANSWER), from)
        .await;
    match next(&mut call).await {
        CallEvent::Answered { sdp } => assert_eq!(sdp, Bytes::from(ANSWER)),
        e => panic!("expected Answered, got {e:?}"),
    }
    call.ack().await.unwrap();
    let (ack, _) = expect(peer, "ACK").await;
    assert_eq!(
        param(ack.header("to").unwrap(), "tag").as_deref(),
        Some("a")
    );
    (call, inv, from)
}

/// An in-dialog request from the peer (UAS of our INVITE `inv`, To tag `a`).
fn peer_request(inv: &SipMsg, method: &str, cseq: u32, sdp: &str) -> SipMsg {
    let target = uri_of(inv.header("contact").unwrap());
    let from = format!("{};tag=a", inv.header("to").unwrap());
    let mut extra = vec![
        ("Call-ID", inv.header("call-id").unwrap().to_string()),
        ("CSeq", format!("{cseq} {method}")),
        ("Contact", "<sip:bob@127.0.0.1>".to_string()),
    ];
    if !sdp.is_empty() {
        extra.push(("Content-Type", "application/sdp".into()));
    }
    let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let to = inv.header("from").unwrap();
    request(method, &target, &from, to, &extra, sdp.as_bytes())
}

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

/// A final non-2xx is Failed with its code (MEDIA-23 maps it); the peer gets its ACK.
#[tokio::test]
async fn uac_486_is_failed_486() {
    let peer = UdpPeer::bind().await;
    let gw = gateway(peer.addr).await;
    let mut call = gw.client.start_call(&invite_out(&gw)).await.unwrap();
    let (inv, from) = expect(&peer, "INVITE").await;
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

/// Send an INVITE from the peer to the gateway; the gateway's IncomingCall for it.
async fn inbound(
    gw: &mut Gw,
    peer: &UdpPeer,
    extra: &[(&str, &str)],
) -> (SipMsg, Result<IncomingCall, SipStatus>) {
    let mut headers = vec![
        ("Contact", "<sip:bob@127.0.0.1>"),
        ("Content-Type", "application/sdp"),
    ];
    headers.extend_from_slice(extra);
    let from = format!("<sip:bob@example.net>;tag={}", token());
    let inv = request(
        "INVITE",
        "sip:alice@sip.example.com",
        &from,
        "<sip:alice@sip.example.com>",
        &headers,
        OFFER.as_bytes(),
    );
    let inv = peer.send_request(inv, gw.addr).await;
    let ev = tokio::time::timeout(SOON, gw.invites.recv())
        .await
        .unwrap()
        .unwrap();
    let SipEvent::Invite { pending, .. } = ev else {
        panic!("expected an INVITE event");
    };
    let contact = format!("sip:alice@{}", gw.addr);
    (inv, IncomingCall::new(pending, &contact).await)
}

/// The next response of the peer's transaction `req` with code `code` (others skipped).
async fn response(peer: &UdpPeer, req: &SipMsg, code: u16) -> SipMsg {
    loop {
        let (m, _) = peer.recv(SOON).await.expect("a response");
        if m.code() == Some(code) && m.branch() == req.branch() {
            return m;
        }
    }
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

/// reject(603) sends 603 to the INVITE.
#[tokio::test]
async fn uas_reject_603() {
    let peer = UdpPeer::bind().await;
    let mut gw = gateway(peer.addr).await;
    let (inv, call) = inbound(&mut gw, &peer, &[]).await;
    call.unwrap().reject(&SipStatus::new(603)).await;
    let r = response(&peer, &inv, 603).await;
    assert!(param(r.header("to").unwrap(), "tag").is_some());
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
