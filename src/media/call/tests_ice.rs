//! Call state machine tests with a WebRTC-style X (content "0", trickled ICE, DTLS) and a
//! SIP peer doing ICE (baresip's SDP): re-offers without a=mid, ICE restarts both ways.

use super::tests::*;
use super::*;
use crate::media::tests::{fixture, xml, xml_text};

/// A WebRTC-style X calling a SIP peer doing ICE (baresip's answer), up to Active.
fn active_webrtc_to_ice() -> (Call, String) {
    let x = "romeo@example.net/phone";
    let (mut call, _) =
        Call::from_jingle(settings(), "i1", x, S, &xml("webrtc-session-initiate.xml"));
    call.handle(Input::Jingle {
        id: "t".into(),
        from: x.into(),
        jingle: xml("webrtc-transport-info.xml"),
    });
    call.handle(Input::Timer(Timer::Gather));
    let answer = String::from_utf8(fixture("baresip-1.0.0-ice-dtls-offer.sdp"))
        .unwrap()
        .replace("a=setup:actpass", "a=setup:active");
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: answer.clone().into_bytes(),
    }));
    call.handle(Input::IqResponse {
        id: iq_id(&out[0]),
        ok: true,
    });
    (call, answer)
}

/// MEDIA-4: X restarts ICE during the call (transport-info with new credentials): after
/// the gather time the SIP side gets a re-INVITE with the new credentials.
#[test]
fn ice_restart_from_jingle_becomes_reinvite() {
    let (mut call, _) = active_webrtc_to_ice();
    let restart = "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='3mP7Lq0cVb'>\
        <content creator='initiator' name='0'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='newU' pwd='newPasswordNewPassword1'>\
        <candidate component='1' foundation='9' generation='1' id='r1' ip='192.0.2.51' network='0' port='6000' priority='2122260223' protocol='udp' type='host'/>\
        </transport></content></jingle>";
    let out = call.handle(Input::Jingle {
        id: "r".into(),
        from: "romeo@example.net/phone".into(),
        jingle: xml_text(restart),
    });
    assert_eq!(kinds(&out), ["iq-result", "start-Gather"]);
    let out = call.handle(Input::Timer(Timer::Gather));
    assert_eq!(kinds(&out), ["ReInvite"]);
    let sdp = sdp_of(&out);
    assert!(
        sdp.contains("a=ice-ufrag:newU") && sdp.contains("192.0.2.51 6000"),
        "{sdp}"
    );
    assert!(
        !sdp.contains("192.0.2.50"),
        "old candidates are gone: {sdp}"
    );
}

/// MEDIA-4, 12: S restarts ICE (a re-INVITE with new ufrag/pwd): X gets a transport-info
/// with S's new credentials and candidates of the next generation.
#[test]
fn ice_restart_from_sip_becomes_transport_info() {
    let (mut call, answer) = active_webrtc_to_ice();
    let restart = answer.replace("HmYzKN6", "NeWuFrAg").replace(
        "ERjPWNIA0JVpcoEuaHfjDgKF3oaqVGg",
        "NewPasswordNewPasswordNewPass12",
    );
    let out = call.handle(Input::Sip(SipIn::ReInvite {
        sdp: restart.into_bytes(),
    }));
    assert_eq!(kinds(&out), ["transport-info", "AnswerReInvite"]);
    let Output::Xmpp(el) = &out[0] else {
        unreachable!()
    };
    let infos = crate::media::jingle::read_transport_info(el.children().next().unwrap()).unwrap();
    let t = &infos[0].1;
    assert_eq!(infos[0].0, "0");
    assert_eq!(t.ice.as_ref().unwrap().ufrag, "NeWuFrAg");
    assert!(!t.candidates.is_empty() && t.candidates.iter().all(|c| c.generation == 1));
}

/// MEDIA-16 with a WebRTC-style X (content "0") and a SIP peer that sends no a=mid: S's
/// re-INVITE is matched to X's content by position, so the hold reaches X as content-modify
/// on "0" and the answer keeps the stream (found with baresip: the answer had port 0).
#[test]
fn sip_reoffer_without_mid_matches_by_position() {
    let x = "romeo@example.net/phone";
    let (mut call, _) =
        Call::from_jingle(settings(), "i1", x, S, &xml("webrtc-session-initiate.xml"));
    let ti = xml("webrtc-transport-info.xml");
    call.handle(Input::Jingle {
        id: "t".into(),
        from: x.into(),
        jingle: ti,
    });
    call.handle(Input::Timer(Timer::Gather));
    let answer = fixture("baresip-1.0.0-ice-dtls-offer.sdp");
    let answer = String::from_utf8(answer)
        .unwrap()
        .replace("a=setup:actpass", "a=setup:active");
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: answer.clone().into_bytes(),
    }));
    assert_eq!(kinds(&out), ["session-accept"]);
    call.handle(Input::IqResponse {
        id: iq_id(&out[0]),
        ok: true,
    });
    let hold = answer.replace("a=sendrecv", "a=sendonly");
    let out = call.handle(Input::Sip(SipIn::ReInvite {
        sdp: hold.into_bytes(),
    }));
    assert_eq!(kinds(&out), ["content-modify", "AnswerReInvite"]);
    let Output::Xmpp(el) = &out[0] else {
        unreachable!()
    };
    let c = el
        .children()
        .next()
        .unwrap()
        .get_child("content", xmpp_parsers::ns::JINGLE)
        .unwrap();
    assert_eq!(
        (c.attr("name"), c.attr("senders")),
        (Some("0"), Some("responder"))
    );
    let sdp = sdp_of(&out);
    assert!(
        sdp.contains("m=audio 51334 ") && sdp.contains("a=recvonly"),
        "{sdp}"
    );
}
