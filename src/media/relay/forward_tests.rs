//! The relay task on real loopback sockets.

use super::*;
use crate::media::relay::ports::PortPool;
use crate::media::relay::Peer;
use std::net::UdpSocket as StdSocket;

fn pool() -> PortPool {
    // The OS picks free ports for the "range": four single ports found free, in a pool whose
    // range covers them is not possible, so search a small range near a free port.
    loop {
        let s = StdSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port() & !1;
        drop(s);
        if p < 60000 && (p..p + 4).all(|q| StdSocket::bind(("127.0.0.1", q)).is_ok()) {
            return PortPool::new("127.0.0.1".parse().unwrap(), p, p + 3);
        }
    }
}

async fn phone() -> (UdpSocket, UdpSocket) {
    // An RTP/RTCP pair on consecutive ports, as a phone binds them.
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let p = rtp.local_addr().unwrap().port();
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", p.wrapping_add(1))).await {
            return (rtp, rtcp);
        }
    }
}

fn peer(side: Side, s: &(UdpSocket, UdpSocket)) -> MediaOut {
    MediaOut::Peer(Peer {
        side,
        rtp: Some(s.0.local_addr().unwrap()),
        rtcp: Some(s.1.local_addr().unwrap()),
        both_ways: true,
        ice: None,
        payloads: Vec::new(),
        srtp: None,
    })
}

async fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut b = [0u8; 256];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut b))
        .await
        .expect("a packet within 2 s")
        .unwrap();
    (b[..n].to_vec(), from)
}

async fn nothing(s: &UdpSocket) {
    let mut b = [0u8; 256];
    let r = tokio::time::timeout(Duration::from_millis(200), s.recv_from(&mut b)).await;
    assert!(r.is_err(), "no packet expected, got {r:?}");
}

#[tokio::test]
async fn rtp_and_rtcp_both_ways_from_the_relay_ports() {
    let ports = pool().allocate().unwrap();
    let (xp, sp) = (ports.x_port(), ports.s_port());
    let relay = Relay::spawn(ports, None, None, None, None).unwrap();
    let (x, s) = (phone().await, phone().await);
    relay.update(peer(Side::X, &x));
    relay.update(peer(Side::S, &s));
    let rtp = [0x80, 0, 0, 1, 9, 9];
    x.0.send_to(&rtp, ("127.0.0.1", xp)).await.unwrap();
    let (got, from) = recv(&s.0).await;
    assert_eq!(got, rtp);
    assert_eq!(
        from.port(),
        sp,
        "S hears the relay's port it was told (symmetric RTP)"
    );
    s.0.send_to(&[0x80, 8, 7], ("127.0.0.1", sp)).await.unwrap();
    let (got, from) = recv(&x.0).await;
    assert_eq!((got.as_slice(), from.port()), (&[0x80, 8, 7][..], xp));
    let rr = [0x81, 201, 0, 1];
    s.1.send_to(&rr, ("127.0.0.1", sp + 1)).await.unwrap();
    let (got, from) = recv(&x.1).await;
    assert_eq!((got.as_slice(), from.port()), (&rr[..], xp + 1));
    assert_eq!(relay.stats().x_to_s.load(Ordering::Relaxed), 1);
    assert_eq!(relay.stats().s_to_x.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn strangers_are_not_relayed_and_latching_follows_the_party() {
    let ports = pool().allocate().unwrap();
    let (xp, sp) = (ports.x_port(), ports.s_port());
    let relay = Relay::spawn(ports, None, None, None, None).unwrap();
    let (x, s) = (phone().await, phone().await);
    relay.update(peer(Side::X, &x));
    relay.update(peer(Side::S, &s));
    // A stranger on another IP is dropped.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger
        .send_to(&[0x80, 0, 1], ("127.0.0.1", xp))
        .await
        .unwrap();
    nothing(&s.0).await;
    assert_eq!(relay.stats().dropped.load(Ordering::Relaxed), 1);
    // The SIP party sends from another port of its own host (a NAT rebinding): its
    // media now goes back there.
    let moved = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    moved
        .send_to(&[0x80, 0, 2], ("127.0.0.1", sp))
        .await
        .unwrap();
    assert_eq!(recv(&x.0).await.0, [0x80, 0, 2]);
    x.0.send_to(&[0x80, 0, 3], ("127.0.0.1", xp)).await.unwrap();
    assert_eq!(recv(&moved).await.0, [0x80, 0, 3]);
    nothing(&s.0).await;
}

#[tokio::test]
async fn rtcp_on_a_muxed_port_goes_to_the_rtcp_destination() {
    let ports = pool().allocate().unwrap();
    let xp = ports.x_port();
    let relay = Relay::spawn(ports, None, None, None, None).unwrap();
    let (x, s) = (phone().await, phone().await);
    let xa = x.0.local_addr().unwrap();
    relay.update(MediaOut::Peer(Peer {
        side: Side::X,
        rtp: Some(xa),
        rtcp: Some(xa),
        both_ways: true,
        ice: None,
        payloads: Vec::new(),
        srtp: None,
    }));
    relay.update(peer(Side::S, &s));
    x.0.send_to(&[0x81, 200, 0, 6], ("127.0.0.1", xp))
        .await
        .unwrap();
    assert_eq!(recv(&s.1).await.0, [0x81, 200, 0, 6]);
    nothing(&s.0).await;
}

#[tokio::test]
async fn no_media_on_either_leg_times_out_but_not_on_hold() {
    let ports = pool().allocate().unwrap();
    let xp = ports.x_port();
    let mut relay =
        Relay::spawn(ports, None, None, Some(Duration::from_millis(300)), None).unwrap();
    let (x, s) = (phone().await, phone().await);
    relay.update(peer(Side::X, &x));
    let MediaOut::Peer(mut held) = peer(Side::S, &s) else {
        unreachable!()
    };
    held.both_ways = false;
    relay.update(MediaOut::Peer(held));
    let r = tokio::time::timeout(Duration::from_millis(900), relay.timed_out()).await;
    assert!(r.is_err(), "a call on hold does not time out");
    relay.update(peer(Side::S, &s));
    // Media keeps it alive...
    for _ in 0..4 {
        x.0.send_to(&[0x80, 0], ("127.0.0.1", xp)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(relay.stats().x_to_s.load(Ordering::Relaxed) >= 4);
    // ...and its end is noticed.
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), relay.timed_out())
        .await
        .expect("the relay reports the media stopped");
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn dropping_the_relay_releases_its_ports() {
    let pool = pool();
    let ports = pool.allocate().unwrap();
    let (xp, sp) = (ports.x_port(), ports.s_port());
    let relay = Relay::spawn(ports, None, None, None, None).unwrap();
    assert!(pool.allocate().is_none(), "all four ports are in use");
    drop(relay);
    // The abort takes effect at the task's next poll.
    for _ in 0..50 {
        if let Some(p) = pool.allocate() {
            let mut got = [p.x_port(), p.s_port()];
            got.sort();
            let mut want = [xp, sp];
            want.sort();
            assert_eq!(got, want);
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ports never came back");
}

/// A re-INVITE that repeats the phone's key keeps the SIP leg's SRTP contexts (their replay
/// windows and rollover counters); a new key or suite makes new ones; no SDES ends them.
#[test]
fn the_sip_legs_srtp_contexts_follow_the_keys() {
    use crate::media::relay::srtp::{MasterKey, SdesKey, Srtp, Suite};
    let keys = |k: u8, suite| SipSrtp {
        theirs: SdesKey {
            tag: 1,
            suite,
            key: MasterKey([k; 30]),
            mki_len: 0,
        },
        ours: MasterKey([9; 30]),
    };
    let mut phone = Srtp::new(&MasterKey([1; 30]), Suite::Sha1_80, 0);
    let pkt = phone
        .protect(&[0x80, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa])
        .unwrap();
    let leg = SrtpLeg::update(None, Some(&keys(1, Suite::Sha1_80)));
    let mut leg = leg.expect("a leg");
    assert!(leg.rx.unprotect(&pkt).is_ok());
    let mut leg = SrtpLeg::update(Some(leg), Some(&keys(1, Suite::Sha1_80))).unwrap();
    assert_eq!(
        leg.rx.unprotect(&pkt),
        Err(SrtpError::Replay),
        "context kept"
    );
    let mut leg = SrtpLeg::update(Some(leg), Some(&keys(2, Suite::Sha1_80))).unwrap();
    assert_eq!(
        leg.rx.unprotect(&pkt),
        Err(SrtpError::Auth),
        "new key, new context"
    );
    let mut leg = SrtpLeg::update(Some(leg), Some(&keys(2, Suite::Sha1_32))).unwrap();
    assert_eq!(
        leg.tx
            .protect(&[0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2])
            .unwrap()
            .len(),
        16
    );
    assert!(SrtpLeg::update(Some(leg), None).is_none());
}

/// With the phone's SDES key, a forged packet from the phone's IP neither latches nor counts
/// as media: the relay keeps sending to the phone's real address.
#[tokio::test]
async fn a_forged_srtp_packet_does_not_move_the_latch() {
    use crate::media::relay::srtp::{MasterKey, SdesKey, Suite};
    let mut st = State {
        x: (Latch::new(None), Latch::new(None)),
        s: (Latch::new(None), Latch::new(None)),
        both_ways: (true, true),
        last: Instant::now(),
        stats: Arc::default(),
        ice: None,
        local_ice: None,
        x_local: "127.0.0.1:1".parse().unwrap(),
        srtp: None,
        pending: Vec::new(),
        reports: None,
    };
    let phone: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    st.apply(Update::Media(MediaOut::Peer(Peer {
        side: Side::S,
        rtp: Some(phone),
        rtcp: Some("127.0.0.1:7001".parse().unwrap()),
        both_ways: true,
        ice: None,
        payloads: Vec::new(),
        srtp: Some(SipSrtp {
            theirs: SdesKey {
                tag: 1,
                suite: Suite::Sha1_80,
                key: MasterKey([1; 30]),
                mki_len: 0,
            },
            ours: MasterKey([2; 30]),
        }),
    })));
    // As if the last media were 10 s ago.
    st.last = Instant::now() - Duration::from_secs(10);
    let legs = Legs {
        x_rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        x_rtcp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        s_rtp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        s_rtcp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    };
    let forged = [
        0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let spoofed: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    assert!(st.through_ice(&legs, Port::SRtp, spoofed, &forged));
    assert_eq!(st.s.0.destination(), Some(phone), "the latch moved");
    assert!(
        st.last.elapsed() >= Duration::from_secs(9),
        "a forgery kept the call alive"
    );
    assert_eq!(st.stats.dropped.load(Ordering::Relaxed), 1);
    // The same for the phone's SRTCP: a forged report is dropped, an authentic one under the
    // phone's key latches the RTCP leg and keeps the call alive.
    let phone_rtcp: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    assert!(st.through_ice(&legs, Port::SRtcp, spoofed, &[0x80; 40]));
    assert_eq!(
        st.s.1.destination(),
        Some(phone_rtcp),
        "a forged report latched"
    );
    assert_eq!(st.stats.dropped.load(Ordering::Relaxed), 2);
    let sr = [
        0x80, 200, 0, 6, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    let real = crate::media::relay::srtp::Srtcp::new(&MasterKey([1; 30]))
        .protect(&sr)
        .unwrap();
    let moved: SocketAddr = "127.0.0.1:7003".parse().unwrap();
    assert!(st.through_ice(&legs, Port::SRtcp, moved, &real));
    assert_eq!(
        st.s.1.destination(),
        Some(moved),
        "an authentic report latches"
    );
    assert!(st.last.elapsed() < Duration::from_secs(1));
    assert_eq!(st.stats.dropped.load(Ordering::Relaxed), 2);
}

/// As the controlling agent the relay starts its connectivity checks as soon as it knows the
/// client's candidates, without waiting for a datagram from it (an ICE-lite client sends
/// none first).
#[tokio::test]
async fn the_ice_leg_checks_first_without_waiting_for_the_client() {
    use crate::media::relay::ice::identity;
    use crate::media::relay::{LocalIce, PayloadType, RemoteIce};
    let Some(id) = identity() else {
        panic!("no DTLS identity")
    };
    let me = LocalIce {
        ufrag: "relayufr".into(),
        pwd: "relaypassword0123456789abc".into(),
        fingerprint: id.fingerprint.clone(),
    };
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay = Relay::spawn(pool().allocate().unwrap(), None, None, None, Some(me)).unwrap();
    relay.update(MediaOut::Peer(Peer {
        side: Side::X,
        rtp: None,
        rtcp: None,
        both_ways: true,
        ice: Some(RemoteIce {
            ufrag: "cli1".into(),
            pwd: "clientpassword0123456789".into(),
            fingerprint: id.fingerprint.clone(),
            candidates: vec![client.local_addr().unwrap()],
            dtls_client: true,
            controlling: true,
        }),
        payloads: vec![PayloadType::pcmu()],
        srtp: None,
    }));
    let (pkt, _) = recv(&client).await;
    // A STUN Binding request (RFC 8489 §5: type 0x0001, the magic cookie).
    assert_eq!(&pkt[..2], &[0x00, 0x01], "{pkt:02x?}");
    assert_eq!(&pkt[4..8], &[0x21, 0x12, 0xa4, 0x42]);
}
