//! Anchored calls (`[media] mode = "relay"`): each side is told the relay's ports, the relay
//! is told where each side receives, and a call that cannot be anchored goes direct.

use super::tests::*;
use super::*;
use crate::media::relay::Peer;
use crate::media::tests::{fixture, xml_text};

const ANCHOR: Anchor = Anchor {
    ip: std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)),
    x_port: 30000,
    s_port: 30002,
};

fn relayed() -> Settings {
    Settings {
        anchor: Some(ANCHOR),
        ..settings()
    }
}

fn peers(out: &[Output]) -> Vec<Peer> {
    out.iter()
        .filter_map(|o| match o {
            Output::Media(MediaOut::Peer(p)) => Some(*p),
            _ => None,
        })
        .collect()
}

fn m1() -> Element {
    crate::media::tests::xml("draft-m1-session-initiate.xml")
}

/// X calls S: S is offered the relay's S port, the relay learns X's Raw-UDP address first;
/// S's answer reaches X as the relay's X port.
#[test]
fn x_calls_s_through_the_relay() {
    let (mut call, out) = Call::from_jingle(relayed(), "i1", X, S, &m1());
    assert_eq!(kinds(&out), ["media-X", "iq-result", "Invite"]);
    let x = peers(&out)[0];
    assert_eq!(x.rtp, Some("192.0.2.101:49172".parse().unwrap()));
    assert_eq!(x.rtcp, Some("192.0.2.101:49173".parse().unwrap()));
    let sdp = sdp_of(&out);
    assert!(sdp.contains("c=IN IP4 203.0.113.9\r\n"), "{sdp}");
    assert!(sdp.contains("m=audio 30002 RTP/AVP 96 18"), "{sdp}");
    assert!(
        !sdp.contains("192.0.2.101"),
        "X's address stays hidden: {sdp}"
    );
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    assert_eq!(kinds(&out), ["media-S", "session-accept"]);
    assert_eq!(
        peers(&out)[0].rtp,
        Some("192.0.2.201:3456".parse().unwrap())
    );
    let Output::Xmpp(iq) = &out[1] else {
        unreachable!()
    };
    let accept = iq.children().next().unwrap();
    let desc = crate::media::jingle::read_contents(accept, Kind::Answer).unwrap();
    let t = &desc.contents[0].transport;
    assert!(t.ice.is_none() && t.fingerprint.is_none());
    let rtp = t.candidates.iter().find(|c| c.component == 1).unwrap();
    assert_eq!((rtp.ip, rtp.port), (ANCHOR.ip, 30000));
}

/// S calls X: X is offered the relay's X port; X's answer goes to S as the relay's S port.
#[test]
fn s_calls_x_through_the_relay() {
    let (mut call, out) = Call::from_invite(
        relayed(),
        "sid9",
        S,
        "juliet@example.com",
        &fixture("baresip-1.0.0-offer.sdp"),
    );
    assert_eq!(kinds(&out)[0], "media-S");
    assert_eq!(peers(&out)[0].rtp, Some("192.0.2.2:46114".parse().unwrap()));
    let out = call.handle(Input::Jmi {
        from: "juliet@example.com/phone".into(),
        el: xml_text("<proceed xmlns='urn:xmpp:jingle-message:0' id='sid9'/>"),
    });
    let Output::Xmpp(iq) = &out[0] else {
        panic!("{:?}", kinds(&out))
    };
    let offer =
        crate::media::jingle::read_contents(iq.children().next().unwrap(), Kind::Offer).unwrap();
    let rtp = &offer.contents[0].transport.candidates[0];
    assert_eq!((rtp.ip, rtp.port), (ANCHOR.ip, 30000));
    let accept = xml_text(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='sid9'>\
         <content creator='initiator' name='audio'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='0' name='PCMU' clockrate='8000'/></description>\
         <transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate id='a' component='1' generation='0' ip='192.0.2.77' port='7000'/></transport>\
         </content></jingle>",
    );
    let out = call.handle(Input::Jingle {
        id: "a1".into(),
        from: "juliet@example.com/phone".into(),
        jingle: accept,
    });
    assert_eq!(kinds(&out), ["media-X", "iq-result", "Answer"]);
    assert_eq!(peers(&out)[0].rtp, Some("192.0.2.77:7000".parse().unwrap()));
    let sdp = sdp_of(&out);
    assert!(sdp.contains("m=audio 30002 RTP/AVP 0"), "{sdp}");
    assert!(sdp.contains("c=IN IP4 203.0.113.9"), "{sdp}");
}

/// An ICE + DTLS offer cannot be anchored yet: the ports are given back and the call is
/// signalled as without the relay.
#[test]
fn ice_dtls_goes_direct() {
    let (_, out) = Call::from_invite(
        relayed(),
        "sid9",
        S,
        "juliet@example.com",
        &fixture("baresip-1.0.0-ice-dtls-offer.sdp"),
    );
    assert_eq!(kinds(&out)[0], "media-direct");
    let (_, direct) = Call::from_invite(
        settings(),
        "sid9",
        S,
        "juliet@example.com",
        &fixture("baresip-1.0.0-ice-dtls-offer.sdp"),
    );
    assert_eq!(kinds(&out)[1..], kinds(&direct)[..]);
}

/// Media stopping on both legs hangs up both sides with connectivity-error.
#[test]
fn media_timeout_hangs_up_both_sides() {
    let (mut call, _) = Call::from_jingle(relayed(), "i1", X, S, &m1());
    call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    let iq = format!("{}-1", call.sid());
    call.handle(Input::IqResponse { id: iq, ok: true });
    let out = call.handle(Input::MediaTimeout);
    assert_eq!(
        kinds(&out),
        ["session-terminate", "Bye", "ended-connectivity-error"]
    );
    assert!(call.ended());
}

/// A hold from S reaches the relay as media one way (its no-media timer pauses).
#[test]
fn hold_is_told_to_the_relay() {
    let (mut call, _) = Call::from_jingle(relayed(), "i1", X, S, &m1());
    call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    let iq = format!("{}-1", call.sid());
    call.handle(Input::IqResponse { id: iq, ok: true });
    let held = String::from_utf8(fixture("draft-m3-answer.sdp"))
        .unwrap()
        .replace("a=sendrecv", "a=sendonly")
        .replace("2890844527 IN", "2890844528 IN");
    let out = call.handle(Input::Sip(SipIn::ReInvite {
        sdp: held.into_bytes(),
    }));
    let p = peers(&out);
    let s = p
        .iter()
        .find(|p| p.side == Side::S)
        .expect("S's new description");
    assert!(!s.both_ways);
    // X's answer (recvonly, written on its behalf) is told too.
    assert!(p.iter().any(|p| p.side == Side::X && !p.both_ways));
}
