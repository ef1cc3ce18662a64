//! The call scenarios' side of things (tests/scenario_sip_call.rs): stox's SIP side started
//! in-process (ezk endpoint, ezk's dialog layer, our layer, a SipClient routing example.net
//! to the peer) and helpers for a raw UDP peer playing the other party of a call.

use super::sip::{param, request, token, uri_of, SipMsg, UdpPeer};
use super::SOON;
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
use tokio::sync::mpsc;

pub const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
pub const ANSWER: &str = "v=0\r\no=- 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n";
pub const HOLD: &str = "v=0\r\no=- 7 8 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendonly\r\n";

/// The gateway's SIP side: endpoint with ezk's dialog layer and ours, and a SipClient whose
/// route for example.net is the peer.
pub struct Gw {
    /// Sends our requests.
    pub client: SipClient,
    /// Inbound INVITEs (and whatever else the layer hands the router).
    pub invites: mpsc::Receiver<SipEvent>,
    /// The gateway's UDP address.
    pub addr: SocketAddr,
}

pub async fn gateway(peer: SocketAddr) -> Gw {
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

pub fn invite_out(gw: &Gw) -> InviteOut {
    InviteOut {
        request_uri: "sip:bob@example.net".into(),
        from: "sip:alice@sip.example.com".into(),
        contact: format!("sip:alice@{}", gw.addr),
        subject: None,
        sdp: OFFER.as_bytes().to_vec(),
    }
}

/// A response of the peer with To tag `tag`, a Contact and an optional SDP body.
pub fn reply(
    req: &SipMsg,
    code: u16,
    reason: &str,
    tag: &str,
    peer: &UdpPeer,
    sdp: &str,
) -> SipMsg {
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

pub fn cseq_num(m: &SipMsg) -> u32 {
    m.header("cseq")
        .and_then(|c| c.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// The next request of `method` at the peer (others are skipped).
pub async fn expect(peer: &UdpPeer, method: &str) -> (SipMsg, SocketAddr) {
    loop {
        let (m, from) = peer.request(SOON).await;
        if m.method() == Some(method) {
            return (m, from);
        }
    }
}

/// No request of `method` reaches the peer within `d`.
pub async fn none_within(peer: &UdpPeer, method: &str, d: Duration) {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match peer.recv(left).await {
            None => return,
            Some((m, _)) => assert_ne!(m.method(), Some(method), "unexpected {}", m.start),
        }
    }
}

pub async fn next(call: &mut OutgoingCall) -> CallEvent {
    tokio::time::timeout(SOON, call.next())
        .await
        .expect("an event")
        .expect("the call goes on")
}

/// Place a call and answer it 200 with tag `a`; returns the INVITE and where the gateway is.
pub async fn answered(gw: &Gw, peer: &UdpPeer) -> (OutgoingCall, SipMsg, SocketAddr) {
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
pub fn peer_request(inv: &SipMsg, method: &str, cseq: u32, sdp: &str) -> SipMsg {
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

/// Send an INVITE from the peer to the gateway; the gateway's IncomingCall for it.
pub async fn inbound(
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
pub async fn response(peer: &UdpPeer, req: &SipMsg, code: u16) -> SipMsg {
    loop {
        let (m, _) = peer.recv(SOON).await.expect("a response");
        if m.code() == Some(code) && m.branch() == req.branch() {
            return m;
        }
    }
}
