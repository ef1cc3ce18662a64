//! Call state machine tests, S calls X (MEDIA-25 and the shared rules from that side).

use super::tests::*;
use super::*;
use crate::media::tests::{fixture, xml_text};

const RES: &str = "juliet@example.com/phone";

fn from_baresip() -> (Call, Vec<Output>) {
    Call::from_invite(
        settings(),
        "sid9",
        S,
        X_BARE,
        &fixture("baresip-1.0.0-offer.sdp"),
    )
}

fn jmi(name: &str, inner: &str) -> Element {
    xml_text(&format!(
        "<{name} xmlns='urn:xmpp:jingle-message:0' id='sid9'>{inner}</{name}>"
    ))
}

fn accept_raw() -> Element {
    xml_text(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='sid9'>\
         <content creator='initiator' name='audio'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='0' name='PCMU' clockrate='8000'/></description>\
         <transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate id='a' component='1' generation='0' ip='192.0.2.77' port='7000'/></transport>\
         </content></jingle>",
    )
}

fn proceeded() -> Call {
    let (mut call, _) = from_baresip();
    call.handle(Input::Jmi {
        from: RES.into(),
        el: jmi("proceed", ""),
    });
    call
}

/// MEDIA-25: INVITE -> 180 and a propose to the bare JID (type chat, store hint, one
/// description per stream); proceed from a resource -> session-initiate to it; a proceed
/// from anyone else is ignored; session-accept -> 200 with the answer; BYE -> terminate.
#[test]
fn s_calls_x() {
    let (mut call, out) = from_baresip();
    assert_eq!(kinds(&out), ["Ringing", "jmi-propose", "start-Ring"]);
    let Output::Xmpp(m) = &out[1] else {
        unreachable!()
    };
    assert_eq!(
        (m.attr("to"), m.attr("from"), m.attr("type")),
        (Some(X_BARE), Some(S), Some("chat"))
    );
    assert!(m.has_child("store", "urn:xmpp:hints"));
    let p = m
        .get_child("propose", xmpp_parsers::ns::JINGLE_MESSAGE)
        .unwrap();
    assert_eq!(p.attr("id"), Some("sid9"));
    assert_eq!(
        p.children()
            .filter(|d| d.attr("media") == Some("audio"))
            .count(),
        1
    );
    assert!(call
        .handle(Input::Jmi {
            from: "mallory@example.com/x".into(),
            el: jmi("proceed", "")
        })
        .is_empty());
    assert!(call
        .handle(Input::Jmi {
            from: X_BARE.into(),
            el: jmi("proceed", "")
        })
        .is_empty());
    let out = call.handle(Input::Jmi {
        from: RES.into(),
        el: jmi("proceed", ""),
    });
    assert_eq!(kinds(&out), ["session-initiate"]);
    let Output::Xmpp(iq) = &out[0] else {
        unreachable!()
    };
    assert_eq!(iq.attr("to"), Some(RES));
    let j = iq.children().next().unwrap();
    assert_eq!(j.attr("initiator"), Some(S));
    let offered = crate::media::jingle::read_contents(j, Kind::Offer).unwrap();
    assert_eq!(offered.contents[0].payloads.len(), 3);
    let out = call.handle(Input::Jingle {
        id: "a1".into(),
        from: RES.into(),
        jingle: accept_raw(),
    });
    assert_eq!(kinds(&out), ["iq-result", "Answer"]);
    let sdp = sdp_of(&out);
    assert!(
        sdp.contains("c=IN IP4 192.0.2.77") && sdp.contains("m=audio 7000 RTP/AVP 0"),
        "{sdp}"
    );
    assert!(sdp.contains("a=sendrecv"));
    let out = call.handle(Input::Sip(SipIn::Bye));
    assert_eq!(kinds(&out), ["session-terminate", "ended-success"]);
}

/// MEDIA-25, 23: reject -> 603, reject with busy -> 486; X's terminate before answering ->
/// the mapped refusal; after -> BYE.
#[test]
fn x_refuses() {
    let (mut call, _) = from_baresip();
    let out = call.handle(Input::Jmi {
        from: RES.into(),
        el: jmi("reject", ""),
    });
    assert_eq!(kinds(&out), ["Reject", "ended-decline"]);
    assert_eq!(out[0], Output::Sip(SipOut::Reject(603)));
    let (mut call, _) = from_baresip();
    let out = call.handle(Input::Jmi {
        from: RES.into(),
        el: jmi(
            "reject",
            "<reason xmlns='urn:xmpp:jingle:1'><busy/></reason>",
        ),
    });
    assert_eq!(out[0], Output::Sip(SipOut::Reject(486)));
    let mut call = proceeded();
    let term = xml_text("<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='sid9'><reason><busy/></reason></jingle>");
    let out = call.handle(Input::Jingle {
        id: "t".into(),
        from: RES.into(),
        jingle: term.clone(),
    });
    assert_eq!(out[1], Output::Sip(SipOut::Reject(486)));
    let mut call = proceeded();
    call.handle(Input::Jingle {
        id: "a1".into(),
        from: RES.into(),
        jingle: accept_raw(),
    });
    let out = call.handle(Input::Jingle {
        id: "t".into(),
        from: RES.into(),
        jingle: term,
    });
    assert_eq!(kinds(&out), ["iq-result", "Bye", "ended-busy"]);
}

/// MEDIA-25: CANCEL while ringing -> retract (cancel); after proceed -> session-terminate
/// (cancel); no answer in time -> retract (timeout) and 480.
#[test]
fn s_gives_up() {
    let (mut call, _) = from_baresip();
    let out = call.handle(Input::Sip(SipIn::Cancelled));
    assert_eq!(kinds(&out), ["jmi-retract", "ended-cancel"]);
    let mut call = proceeded();
    let out = call.handle(Input::Sip(SipIn::Cancelled));
    assert_eq!(kinds(&out), ["session-terminate", "ended-cancel"]);
    let (mut call, _) = from_baresip();
    let out = call.handle(Input::Timer(Timer::Ring));
    assert_eq!(kinds(&out), ["jmi-retract", "Reject", "ended-timeout"]);
    assert_eq!(out[1], Output::Sip(SipOut::Reject(480)));
    let mut call = proceeded();
    let iq = format!("{}-1", call.sid());
    let out = call.handle(Input::IqResponse { id: iq, ok: false });
    assert_eq!(kinds(&out), ["Reject", "ended-failed-application"]);
}

/// A malformed or unmappable offer is refused 488 before anything rings.
#[test]
fn bad_offer() {
    for f in [
        "malformed-rtpmap-without-rate.sdp",
        "unsupported-only-msrp.sdp",
    ] {
        let body = std::fs::read(crate::media::tests::fixture_path("tests/corpus/sdp", f)).unwrap();
        let (call, out) = Call::from_invite(settings(), "s", S, X_BARE, &body);
        assert_eq!(out[0], Output::Sip(SipOut::Reject(488)), "{f}");
        assert!(call.ended());
    }
}

/// MEDIA-3, 24: a WebRTC-style answer without candidates waits for them (or the timer);
/// the SDP answer then carries ICE, the fingerprint and an active/passive role.
#[test]
fn webrtc_answer_is_gathered() {
    let (mut call, _) =
        Call::from_invite(settings(), "sid9", S, X_BARE, &fixture("chrome-offer.sdp"));
    call.handle(Input::Jmi {
        from: RES.into(),
        el: jmi("proceed", ""),
    });
    let accept = String::from_utf8(fixture("webrtc-session-initiate.xml"))
        .unwrap()
        .replace("session-initiate", "session-accept")
        .replace("3mP7Lq0cVb", "sid9");
    let out = call.handle(Input::Jingle {
        id: "a".into(),
        from: RES.into(),
        jingle: xml_text(&accept),
    });
    assert_eq!(kinds(&out), ["iq-result", "start-Gather"]);
    let ti = String::from_utf8(fixture("webrtc-transport-info.xml"))
        .unwrap()
        .replace("3mP7Lq0cVb", "sid9");
    call.handle(Input::Jingle {
        id: "b".into(),
        from: RES.into(),
        jingle: xml_text(&ti),
    });
    let out = call.handle(Input::Timer(Timer::Gather));
    assert_eq!(kinds(&out), ["Answer"]);
    let sdp = sdp_of(&out);
    assert!(
        sdp.contains("a=ice-ufrag:8hhy") && sdp.contains("a=setup:active"),
        "{sdp}"
    );
    assert!(
        sdp.contains("m=video 0 ") && sdp.contains("m=application 0 "),
        "{sdp}"
    );
}

/// RFC 3264 §8: answering a re-INVITE that changes nothing (baresip sends one after ICE)
/// repeats the o= version; a change moves it on. RFC 5888/8843: an offer without a=mid
/// (baresip's) gets no a=group back even when X's Jingle bundles.
#[test]
fn unchanged_reinvite_keeps_the_version() {
    let mut call = proceeded();
    let mut accept = accept_raw();
    accept.append_child(xml_text(
        "<group xmlns='urn:xmpp:jingle:apps:grouping:0' semantics='BUNDLE'><content name='audio'/></group>",
    ));
    let out = call.handle(Input::Jingle {
        id: "a1".into(),
        from: RES.into(),
        jingle: accept,
    });
    let first = sdp_of(&out);
    assert!(!first.contains("a=group"), "{first}");
    let o_line = |s: &str| s.lines().find(|l| l.starts_with("o=")).unwrap().to_owned();
    let offer = fixture("baresip-1.0.0-offer.sdp");
    let out = call.handle(Input::Sip(SipIn::ReInvite { sdp: offer.clone() }));
    assert_eq!(o_line(&sdp_of(&out)), o_line(&first));
    let hold = String::from_utf8(offer)
        .unwrap()
        .replace("a=sendrecv", "a=sendonly");
    let out = call.handle(Input::Sip(SipIn::ReInvite {
        sdp: hold.into_bytes(),
    }));
    let changed = o_line(&sdp_of(&out));
    assert_ne!(changed, o_line(&first));
    assert!(changed.ends_with(" 2 IN IP4 192.0.2.1"), "{changed}");
}
