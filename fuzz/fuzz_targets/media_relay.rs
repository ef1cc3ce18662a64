//! The media relay on arbitrary bytes: what a phone, a client or a stranger can send to the
//! relay's ports, and the descriptions it rewrites.
//!
//! Input: the first byte picks the part; the rest is its input.
//!
//! * 0: `parse_rtp`. Invariants: no panic; an accepted header's payload offset is within the
//!   packet; the fields rebuilt with `build_rtp` read back the same, at offset 12.
//! * 1: datagrams (split at `0xFF 0xFE`) into a fresh ICE leg from three sources, then the
//!   same bytes as SIP-side RTP. Invariants: no panic; before ICE and DTLS are up nothing is
//!   sent toward the client but to the address a datagram came from or a signalled
//!   candidate, no plain RTP comes out, and SIP-side RTP is refused.
//! * 2: a sequence of latch operations (negotiate, accept). Invariant: the destination is
//!   always the negotiated address or an accepted source whose IP was the negotiated one or
//!   the signalling one: the relay never sends anywhere else (no open relay).
//! * 3: an SDP body: when it reads as a description the relay can anchor, the anchored,
//!   plain-for-SIP (with the relay's SDES line when the body had a usable one) and
//!   ICE-for-XMPP rewrites render as SDP and Jingle without error or panic.
//! * 4: datagrams (split at `0xFF`) into the SIP leg's SDES-SRTP context, as a phone or a
//!   stranger sends them. Invariants: no panic; none authenticates (the key is the relay's
//!   own secret); each one that `protect` takes comes back unchanged through a receiving
//!   context of the same key. The same for SRTCP (`Srtcp`, the phone's reports).
//! * 5: a datagram as the answer to the relay's STUN Binding request (`media.stun_server`),
//!   whose transaction id is the datagram's own bytes 8..20 or not. Invariants: no panic; an
//!   answer is only ever read from a datagram with the magic cookie and our id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use stox::media::model::{Kind, Role, Setup};
use stox::media::relay::ice::{build_rtp, identity, parse_rtp, IceLeg, Out};
use stox::media::relay::latch::Latch;
use stox::media::relay::srtp::{MasterKey, Srtcp, Srtp, SrtpError, Suite};
use stox::media::relay::{self, Anchor, LocalIce, PayloadType, RemoteIce, Side};
use stox::media::{jingle, sdp};

fn rtp(data: &[u8]) {
    let Some(f) = parse_rtp(data) else { return };
    assert!(f.offset <= data.len());
    let again = build_rtp(
        f.marker,
        f.pt,
        f.seq,
        f.timestamp,
        f.ssrc,
        &data[f.offset..],
    );
    let g = parse_rtp(&again).expect("a rebuilt header reads");
    assert_eq!(
        (g.marker, g.pt, g.seq, g.timestamp, g.ssrc, g.offset),
        (f.marker, f.pt, f.seq, f.timestamp, f.ssrc, 12)
    );
}

fn ice(data: &[u8]) {
    let Some(id) = identity() else { return };
    let me = LocalIce {
        ufrag: "fuzz".into(),
        pwd: "fuzzpasswordfuzzpassword".into(),
        fingerprint: id.fingerprint.clone(),
    };
    let cand: SocketAddr = "192.0.2.9:5000".parse().unwrap();
    let remote = RemoteIce {
        ufrag: "peer".into(),
        pwd: "peerpasswordpeerpassword".into(),
        fingerprint: id.fingerprint.clone(),
        candidates: vec![cand],
        dtls_client: data.first().is_some_and(|b| b & 1 == 1),
        controlling: data.first().is_some_and(|b| b & 2 == 2),
    };
    let pcmu = [PayloadType::pcmu()];
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let now = Instant::now();
    let Some(mut leg) = IceLeg::new(now, local, &me, &remote, &pcmu) else {
        return;
    };
    let sources: [SocketAddr; 3] = [
        cand,
        "198.51.100.7:6000".parse().unwrap(),
        "[2001:db8::1]:7000".parse().unwrap(),
    ];
    let mut out = Vec::new();
    for (i, d) in data.split(|b| *b == 0xFF).enumerate() {
        let src = sources[i % 3];
        leg.receive(now, src, d, &mut out);
        leg.timeout(now, &mut out);
        for o in out.drain(..) {
            match o {
                Out::Transmit(to, _) => {
                    assert!(
                        sources.contains(&to),
                        "sent to {to}, which nobody signalled or sent from"
                    )
                }
                Out::Rtp(_) => assert!(leg.connected(), "plain RTP out before DTLS is up"),
            }
        }
        if !leg.connected() {
            assert!(
                !leg.send_rtp(now, d, &mut out),
                "SIP-side RTP before DTLS is up"
            );
        }
    }
}

fn latch(data: &[u8]) {
    let sig: IpAddr = "198.51.100.1".parse().unwrap();
    let mut l = Latch::new(if data.first().is_some_and(|b| b & 1 == 1) {
        Some(sig)
    } else {
        None
    });
    let addr = |b: u8| -> SocketAddr {
        let ip: IpAddr = match b % 4 {
            0 => "192.0.2.10".parse().unwrap(),
            1 => "192.0.2.20".parse().unwrap(),
            2 => sig,
            _ => "203.0.113.66".parse().unwrap(),
        };
        SocketAddr::new(ip, 4000 + u16::from(b >> 2))
    };
    let mut negotiated: Option<SocketAddr> = None;
    let mut accepted: Vec<SocketAddr> = Vec::new();
    for pair in data.get(1..).unwrap_or(&[]).chunks(2) {
        let (op, b) = (pair[0], *pair.get(1).unwrap_or(&0));
        if op & 1 == 0 {
            let a = (op & 2 == 0).then(|| addr(b));
            l.negotiate(a);
            negotiated = a;
            // Sources that are no longer allowed are forgotten by the latch.
            accepted.retain(|s| Some(s.ip()) == negotiated.map(|n| n.ip()) || s.ip() == sig);
        } else if l.accept(addr(b)) {
            accepted.push(addr(b));
        }
        if let Some(d) = l.destination() {
            let ok = Some(d) == negotiated
                || (accepted.contains(&d)
                    && (Some(d.ip()) == negotiated.map(|n| n.ip()) || d.ip() == sig));
            assert!(
                ok,
                "destination {d} is outside the call's negotiation ({negotiated:?})"
            );
        }
    }
}

fn descriptions(data: &[u8]) {
    let Ok(parsed) = sdp::parse(data) else { return };
    let Ok(read) = sdp::from_sdp(&parsed, Role::Initiator, Kind::Offer) else {
        return;
    };
    let d = read.description;
    let me = LocalIce {
        ufrag: "fuzz".into(),
        pwd: "fuzzpasswordfuzzpassword".into(),
        fingerprint: ("sha-256".into(), "AB:CD".into()),
    };
    let anchor = Anchor {
        ip: "203.0.113.9".parse().unwrap(),
        x_port: 30000,
        s_port: 30002,
        ice: Some(me.clone()),
        offer_ice: true,
        auto: false,
        sdes: MasterKey([9; 30]),
        offer_sdes: true,
    };
    let _ = relay::mode(&d, Side::X, &anchor);
    let _ = relay::mode(&d, Side::S, &anchor);
    let _ = relay::remote_ice(&d, true);
    let origin = sdp::SdpOrigin {
        username: "-".into(),
        session_id: 1,
        version: 1,
        address: anchor.ip,
    };
    let outs = [
        relay::anchored(&d, anchor.ip, 30000),
        relay::plain_for_sip(
            &d,
            anchor.ip,
            30002,
            relay::sdes_choice(&d).map(|k| relay::sdes_line(k.tag, k.suite, &anchor.sdes)),
        ),
        relay::ice_for_xmpp(&d, anchor.ip, 30000, &me, Setup::Actpass),
    ];
    for o in &outs {
        // Rendering may refuse what the peer's SDP carried (e.g. a value SDP cannot hold),
        // but never panics; Jingle rendering always succeeds.
        let _ = sdp::to_sdp(o, Role::Initiator, Kind::Offer, &origin, None);
        let _ = jingle::render(o, Role::Initiator);
    }
}

fn srtp(data: &[u8]) {
    let suite = if data.first().is_some_and(|b| b & 1 == 1) {
        Suite::Sha1_32
    } else {
        Suite::Sha1_80
    };
    let key = MasterKey([7; 30]);
    let mki = usize::from(data.first().copied().unwrap_or(0) >> 6);
    let mut rx = Srtp::new(&key, suite, mki);
    let mut rtcp_rx = Srtcp::receiver(&key, mki);
    for d in data.get(1..).unwrap_or(&[]).split(|b| *b == 0xFF) {
        // A 4-byte tag can be guessed (1 in 2^32); an 80-bit one cannot.
        if let Ok(p) = rx.unprotect(d) {
            assert!(
                suite == Suite::Sha1_32,
                "a forged packet authenticated: {p:?}"
            );
        }
        let mut tx = Srtp::new(&key, suite, 0);
        let mut back = Srtp::new(&key, suite, 0);
        match tx.protect(d) {
            Ok(s) => assert_eq!(back.unprotect(&s).as_deref(), Ok(d)),
            Err(e) => assert_eq!(e, SrtpError::Malformed),
        }
        // The same bytes as the phone's SRTCP (an 80-bit tag either way), and round trip.
        if let Ok(p) = rtcp_rx.unprotect(d) {
            panic!("a forged SRTCP packet authenticated: {p:?}");
        }
        if let Ok(s) = Srtcp::new(&key).protect(d) {
            assert_eq!(Srtcp::receiver(&key, 0).unprotect(&s).as_deref(), Ok(d));
        }
    }
}

fn stun(data: &[u8]) {
    use stox::media::relay::stun::parse_response;
    let mut tid = [0u8; 12];
    if let Some(id) = data.get(8..20) {
        tid.copy_from_slice(id);
    }
    if parse_response(data, &tid).is_some() {
        assert_eq!(data.get(4..8), Some(&[0x21, 0x12, 0xa4, 0x42][..]));
    }
    let other = tid.map(|b| !b);
    assert_eq!(
        parse_response(data, &other),
        None,
        "an answer to another id"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => rtp(rest),
        1 => ice(rest),
        2 => latch(rest),
        3 => descriptions(rest),
        4 => srtp(rest),
        _ => stun(rest),
    }
});
