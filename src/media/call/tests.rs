//! Call state machine tests, each citing the MEDIA requirement it proves. Inputs are the
//! fixtures of `media::tests` (draft examples, a real baresip offer, WebRTC-style Jingle).

use super::*;
use crate::media::tests::{fixture, xml, xml_text};
use std::net::Ipv4Addr;

pub(super) const X: &str = "juliet@example.com/balcony";
pub(super) const X_BARE: &str = "juliet@example.com";
pub(super) const S: &str = "romeo@sip.example.com/dr4hcr0st3lup4c";

pub(super) fn settings() -> Settings {
    Settings {
        gather: Duration::from_millis(500),
        ring: Duration::from_secs(60),
        origin: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        anchor: None,
    }
}

fn m1() -> Element {
    xml("draft-m1-session-initiate.xml")
}

/// The Jingle action of an IQ set, or the JMI element name of a message, or the IQ type.
fn kind(o: &Output) -> String {
    match o {
        Output::Xmpp(el) if el.name() == "iq" && el.attr("type") == Some("set") => {
            let j = el.children().next().expect("jingle");
            j.attr("action").unwrap_or("?").to_owned()
        }
        Output::Xmpp(el) if el.name() == "iq" => format!("iq-{}", el.attr("type").unwrap_or("?")),
        Output::Xmpp(el) => format!(
            "jmi-{}",
            el.children().next().map(|c| c.name()).unwrap_or("?")
        ),
        Output::Sip(s) => format!("{s:?}").split('(').next().unwrap_or("").to_owned(),
        Output::Start(t, _) => format!("start-{t:?}"),
        Output::Media(MediaOut::Peer(p)) => format!("media-{:?}", p.side),
        Output::Media(MediaOut::Direct) => "media-direct".into(),
        Output::Ended(r) => format!("ended-{}", r.name()),
    }
}

pub(super) fn kinds(out: &[Output]) -> Vec<String> {
    out.iter().map(kind).collect()
}

pub(super) fn sdp_of(out: &[Output]) -> String {
    out.iter()
        .find_map(|o| match o {
            Output::Sip(SipOut::Invite(b) | SipOut::Answer(b) | SipOut::ReInvite(b)) => {
                Some(String::from_utf8_lossy(b).into_owned())
            }
            Output::Sip(SipOut::AnswerReInvite(Ok(b))) => {
                Some(String::from_utf8_lossy(b).into_owned())
            }
            _ => None,
        })
        .expect("an SDP body")
}

pub(super) fn iq_id(o: &Output) -> String {
    match o {
        Output::Xmpp(el) => el.attr("id").unwrap_or("").to_owned(),
        _ => panic!("not a stanza"),
    }
}

fn jingle_in(call: &mut Call, body: &str) -> Vec<Output> {
    let el = xml_text(body);
    call.handle(Input::Jingle {
        id: "q1".into(),
        from: X.into(),
        jingle: el,
    })
}

fn jingle_el(action: &str, sid: &str, inner: &str) -> String {
    format!("<jingle xmlns='urn:xmpp:jingle:1' action='{action}' sid='{sid}'>{inner}</jingle>")
}

/// A call X -> S up to Active (raw UDP, draft examples M1-M3).
fn active_x_to_s() -> Call {
    let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
    call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    let iq = format!("{}-1", call.sid());
    let out = call.handle(Input::IqResponse { id: iq, ok: true });
    assert_eq!(kinds(&out), ["Ack"]);
    call
}

/// MEDIA-7, 8, 22 (examples M1, M2, M3, M5): session-initiate is acknowledged and becomes
/// the INVITE; one ringing for several provisionals; the 2xx becomes session-accept with
/// the responder's address, ACKed only after its result; BYE ends with success.
#[test]
fn x_calls_s() {
    let (mut call, out) = Call::from_jingle(settings(), "i1", X, S, &m1());
    assert_eq!(kinds(&out), ["iq-result", "Invite"]);
    assert!(sdp_of(&out).contains("m=audio 49172 RTP/AVP 96 18"));
    assert!(
        sdp_of(&out).starts_with("v=0\r\no=juliet "),
        "MEDIA-5 o= username"
    );
    assert!(call
        .handle(Input::Sip(SipIn::Provisional {
            code: 100,
            sdp: None,
            reliable: false
        }))
        .is_empty());
    let out = call.handle(Input::Sip(SipIn::Provisional {
        code: 180,
        sdp: None,
        reliable: false,
    }));
    assert_eq!(kinds(&out), ["session-info"]);
    let Output::Xmpp(el) = &out[0] else {
        unreachable!()
    };
    assert_eq!((el.attr("from"), el.attr("to")), (Some(S), Some(X)));
    assert!(el
        .children()
        .next()
        .unwrap()
        .has_child("ringing", stanza::NS_RTP_INFO));
    assert!(call
        .handle(Input::Sip(SipIn::Provisional {
            code: 183,
            sdp: None,
            reliable: false
        }))
        .is_empty());
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    assert_eq!(
        kinds(&out),
        ["session-accept"],
        "no ACK before the IQ result"
    );
    let Output::Xmpp(el) = &out[0] else {
        unreachable!()
    };
    let j = el.children().next().unwrap();
    assert_eq!(j.attr("responder"), Some(S));
    let accepted = crate::media::jingle::read_contents(j, Kind::Answer).unwrap();
    let cand = &accepted.contents[0].transport.candidates[0];
    assert_eq!(
        (cand.ip.to_string(), cand.port),
        ("192.0.2.201".to_owned(), 3456)
    );
    assert_eq!(accepted.contents[0].name, "audio");
    let out = call.handle(Input::IqResponse {
        id: iq_id(&out[0]),
        ok: true,
    });
    assert_eq!(kinds(&out), ["Ack"]);
    let out = call.handle(Input::Sip(SipIn::Bye));
    assert_eq!(kinds(&out), ["session-terminate", "ended-success"]);
    assert!(call.ended());
}

/// MEDIA-3: trickled candidates are gathered before the INVITE, until the timer.
#[test]
fn x_calls_s_after_gathering() {
    let (mut call, out) = Call::from_jingle(
        settings(),
        "i1",
        "romeo@example.net/phone",
        S,
        &xml("webrtc-session-initiate.xml"),
    );
    assert_eq!(kinds(&out), ["iq-result", "start-Gather"]);
    let ti = xml("webrtc-transport-info.xml");
    let out = call.handle(Input::Jingle {
        id: "t1".into(),
        from: "romeo@example.net/phone".into(),
        jingle: ti,
    });
    assert_eq!(
        kinds(&out),
        ["iq-result"],
        "no INVITE before the candidates are complete"
    );
    let out = call.handle(Input::Timer(Timer::Gather));
    assert_eq!(kinds(&out), ["Invite"]);
    let sdp = sdp_of(&out);
    assert!(sdp.contains("a=candidate:1846339779 1 udp"), "{sdp}");
    assert!(sdp.contains("a=setup:actpass"));
}

/// MEDIA-3: with no candidate at all when the timer fires, the call fails on the Jingle
/// side (failed-transport... as unsupported-transports) and no INVITE goes out.
#[test]
fn no_candidates_no_invite() {
    let (mut call, _) = Call::from_jingle(
        settings(),
        "i1",
        "romeo@example.net/phone",
        S,
        &xml("webrtc-session-initiate.xml"),
    );
    let out = call.handle(Input::Timer(Timer::Gather));
    assert_eq!(
        kinds(&out),
        ["session-terminate", "ended-unsupported-transports"]
    );
}

/// MEDIA-7 / MEDIA-23: X hangs up before the answer -> CANCEL; after -> BYE.
#[test]
fn x_hangs_up() {
    let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
    let term = jingle_el(
        "session-terminate",
        "a73sjjvkla37jfea",
        "<reason><cancel/></reason>",
    );
    assert_eq!(
        kinds(&jingle_in(&mut call, &term)),
        ["iq-result", "Cancel", "ended-cancel"]
    );
    let mut call = active_x_to_s();
    let term = jingle_el(
        "session-terminate",
        "a73sjjvkla37jfea",
        "<reason><success/></reason>",
    );
    assert_eq!(
        kinds(&jingle_in(&mut call, &term)),
        ["iq-result", "Bye", "ended-success"]
    );
}

/// MEDIA-23: SIP final failures end the Jingle session with the mapped reason.
#[test]
fn sip_failures_map_to_reasons() {
    for (code, reason) in [
        (486, "busy"),
        (603, "decline"),
        (487, "cancel"),
        (408, "timeout"),
        (488, "incompatible-parameters"),
        (404, "gone"),
        (500, "general-error"),
    ] {
        let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
        let out = call.handle(Input::Sip(SipIn::Failed { code }));
        assert_eq!(
            kinds(&out),
            ["session-terminate".to_owned(), format!("ended-{reason}")],
            "{code}"
        );
        let Output::Xmpp(el) = &out[0] else {
            unreachable!()
        };
        let r = el
            .children()
            .next()
            .unwrap()
            .get_child("reason", xmpp_parsers::ns::JINGLE)
            .unwrap();
        assert!(r.has_child(reason, xmpp_parsers::ns::JINGLE), "{code}");
    }
}

/// MEDIA-17: the SDP of a reliable 183 is the answer when the 2xx has none; an unreliable
/// one is not.
#[test]
fn reliable_provisional_answer() {
    let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
    let sdp = Some(fixture("draft-m3-answer.sdp"));
    call.handle(Input::Sip(SipIn::Provisional {
        code: 183,
        sdp,
        reliable: true,
    }));
    let out = call.handle(Input::Sip(SipIn::Answered { sdp: vec![] }));
    assert_eq!(kinds(&out), ["session-accept"]);
    let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
    let sdp = Some(fixture("draft-m3-answer.sdp"));
    call.handle(Input::Sip(SipIn::Provisional {
        code: 183,
        sdp,
        reliable: false,
    }));
    let out = call.handle(Input::Sip(SipIn::Answered { sdp: vec![] }));
    assert_eq!(
        kinds(&out),
        [
            "Ack",
            "Bye",
            "session-terminate",
            "ended-incompatible-parameters"
        ]
    );
}

/// MEDIA-7: session-accept refused by X -> ACK then BYE.
#[test]
fn session_accept_refused() {
    let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    let out = call.handle(Input::IqResponse {
        id: iq_id(&out[0]),
        ok: false,
    });
    assert_eq!(kinds(&out), ["Ack", "Bye", "ended-failed-application"]);
}

/// MEDIA-15 (example M4): hold -> re-INVITE with every stream sendonly; an unhold while it
/// is out waits, then goes as sendrecv.
#[test]
fn hold_and_unhold_from_jingle() {
    let mut call = active_x_to_s();
    let hold = jingle_el(
        "session-info",
        "a73sjjvkla37jfea",
        "<hold xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
    );
    let out = jingle_in(&mut call, &hold);
    assert_eq!(kinds(&out), ["iq-result", "ReInvite"]);
    assert!(sdp_of(&out).contains("a=sendonly"));
    let unhold = jingle_el(
        "session-info",
        "a73sjjvkla37jfea",
        "<unhold xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
    );
    assert_eq!(kinds(&jingle_in(&mut call, &unhold)), ["iq-result"]);
    let out = call.handle(Input::Sip(SipIn::ReInviteAnswer(Ok(fixture(
        "draft-m3-answer.sdp",
    )))));
    assert_eq!(kinds(&out), ["ReInvite"]);
    let sdp = sdp_of(&out);
    assert!(sdp.contains("a=sendrecv"));
    assert!(
        sdp.lines()
            .nth(1)
            .is_some_and(|o| o.ends_with(" 3 IN IP4 192.0.2.1")),
        "o= version goes up: {sdp}"
    );
    let modify = jingle_el(
        "content-modify",
        "a73sjjvkla37jfea",
        "<content creator='initiator' name='audio' senders='initiator'/>",
    );
    call.handle(Input::Sip(SipIn::ReInviteAnswer(Ok(fixture(
        "draft-m3-answer.sdp",
    )))));
    let out = jingle_in(&mut call, &modify);
    assert_eq!(kinds(&out), ["iq-result", "ReInvite"]);
    assert!(sdp_of(&out).contains("a=sendonly"));
}

/// MEDIA-16: S's re-INVITE with sendonly (S holds) -> content-modify senders='responder' to X
/// and an answer written for X with recvonly.
#[test]
fn hold_from_sip() {
    let mut call = active_x_to_s();
    let offer = String::from_utf8(fixture("draft-m3-answer.sdp"))
        .unwrap()
        .replace("a=sendrecv", "a=sendonly");
    let out = call.handle(Input::Sip(SipIn::ReInvite {
        sdp: offer.into_bytes(),
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
        (Some("audio"), Some("responder"))
    );
    assert!(sdp_of(&out).contains("a=recvonly"));
    let out = call.handle(Input::Sip(SipIn::ReInvite {
        sdp: b"garbage".to_vec(),
    }));
    assert_eq!(out, [Output::Sip(SipOut::AnswerReInvite(Err(488)))]);
}

/// MEDIA-8: errors for requests that do not fit.
#[test]
fn jingle_errors() {
    let mut call = active_x_to_s();
    let info = jingle_el(
        "session-info",
        "a73sjjvkla37jfea",
        "<dance xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
    );
    let out = jingle_in(&mut call, &info);
    let Output::Xmpp(el) = &out[0] else {
        unreachable!()
    };
    let err = el
        .get_child("error", xmpp_parsers::ns::COMPONENT_ACCEPT)
        .or_else(|| el.children().find(|c| c.name() == "error"))
        .unwrap();
    assert!(err.has_child(
        "feature-not-implemented",
        "urn:ietf:params:xml:ns:xmpp-stanzas"
    ));
    assert!(err.has_child("unsupported-info", stanza::NS_JINGLE_ERRORS));
    let again = jingle_in(&mut call, &String::from(&m1()));
    assert_eq!(kinds(&again), ["iq-error"]);
    let other = call.handle(Input::Jingle {
        id: "z".into(),
        from: "mallory@example.com/x".into(),
        jingle: xml_text(&info),
    });
    let Output::Xmpp(el) = &other[0] else {
        unreachable!()
    };
    assert_eq!(el.attr("to"), Some("mallory@example.com/x"));
    assert!(el
        .children()
        .next()
        .unwrap()
        .has_child("unknown-session", stanza::NS_JINGLE_ERRORS));
    let wrong_sid = jingle_in(&mut call, &jingle_el("session-info", "other", ""));
    assert_eq!(kinds(&wrong_sid), ["iq-error"]);
    let ping = jingle_in(
        &mut call,
        &jingle_el("session-info", "a73sjjvkla37jfea", ""),
    );
    assert_eq!(kinds(&ping), ["iq-result"]);
    call.handle(Input::Sip(SipIn::Bye));
    assert_eq!(
        kinds(&jingle_in(&mut call, &info)),
        ["iq-error"],
        "unknown-session after the end"
    );
}

/// MEDIA-8 and the hostile corpus: a malformed session-initiate gets bad-request; one with
/// no RTP gets a result and session-terminate unsupported-applications.
#[test]
fn bad_session_initiate() {
    let bad = std::fs::read_to_string(crate::media::tests::fixture_path(
        "tests/corpus/jingle",
        "malformed-payload-name-with-line-break.xml",
    ))
    .unwrap();
    let (call, out) = Call::from_jingle(settings(), "i1", X, S, &xml_text(&bad));
    assert_eq!(kinds(&out), ["iq-error", "ended-failed-application"]);
    assert!(call.ended());
    let ft = std::fs::read_to_string(crate::media::tests::fixture_path(
        "tests/corpus/jingle",
        "unsupported-file-transfer.xml",
    ))
    .unwrap();
    let (_, out) = Call::from_jingle(settings(), "i1", X, S, &xml_text(&ft));
    assert_eq!(
        kinds(&out),
        [
            "iq-result",
            "session-terminate",
            "ended-unsupported-applications"
        ]
    );
}

/// The gateway stopping ends each call on both sides the way its state needs.
#[test]
fn shutdown_in_each_state() {
    let (mut call, _) = Call::from_jingle(settings(), "i1", X, S, &m1());
    assert_eq!(
        kinds(&call.handle(Input::Shutdown)),
        ["session-terminate", "Cancel", "ended-general-error"]
    );
    let mut call = active_x_to_s();
    assert_eq!(
        kinds(&call.handle(Input::Shutdown)),
        ["session-terminate", "Bye", "ended-general-error"]
    );
    let (mut call, _) = Call::from_invite(
        settings(),
        "s",
        S,
        X_BARE,
        &fixture("baresip-1.0.0-offer.sdp"),
    );
    assert_eq!(
        kinds(&call.handle(Input::Shutdown)),
        ["jmi-retract", "Reject", "ended-general-error"]
    );
    assert!(call.handle(Input::Shutdown).is_empty());
}
