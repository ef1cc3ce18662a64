//! Anchored calls (`[media] mode = "relay"`): each side is told the relay's ports, the relay
//! is told where each side receives, and a call that cannot be anchored goes direct.

use super::tests::*;
use super::*;
use crate::media::model::Setup;
use crate::media::relay::srtp::{MasterKey, Suite};
use crate::media::relay::Peer;
use crate::media::tests::{fixture, xml_text};

const IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9));

fn anchor(offer_ice: bool) -> Anchor {
    Anchor {
        ip: IP,
        x_port: 30000,
        s_port: 30002,
        ice: Some(crate::media::relay::LocalIce {
            ufrag: "relayufr".into(),
            pwd: "relaypassword0123456789abcdef".into(),
            fingerprint: ("sha-256".into(), "AB:CD:EF".into()),
        }),
        offer_ice,
        auto: false,
        sdes: MasterKey([9; 30]),
        offer_sdes: false,
    }
}

fn relayed() -> Settings {
    Settings {
        anchor: Some(anchor(false)),
        ..settings()
    }
}

/// Relayed, with `media.sip_srtp = "sdes"` when `sdes`.
fn offering_sdes(sdes: bool) -> Settings {
    Settings {
        anchor: Some(Anchor {
            offer_sdes: sdes,
            ..anchor(false)
        }),
        ..settings()
    }
}

fn relayed_ice() -> Settings {
    Settings {
        anchor: Some(anchor(true)),
        ..settings()
    }
}

fn peers(out: &[Output]) -> Vec<Peer> {
    out.iter()
        .filter_map(|o| match o {
            Output::Media(MediaOut::Peer(p)) => Some(p.clone()),
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
    let x = peers(&out)[0].clone();
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
    assert_eq!((rtp.ip, rtp.port), (IP, 30000));
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
    assert_eq!((rtp.ip, rtp.port), (IP, 30000));
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

/// X (aiortc: ICE + DTLS, actpass) calls a plain SIP phone through the relay: S gets plain
/// RTP/AVP at the relay, X gets ICE-UDP with the relay's credentials and host candidate,
/// DTLS `active`, rtcp-mux; the relay learns X's ICE side with itself as DTLS client and
/// controlled agent.
#[test]
fn ice_client_calls_plain_phone_through_the_relay() {
    let offer = crate::media::tests::xml("aiortc-offer-by-jingle-peer.xml");
    let (mut call, _) = Call::from_jingle(relayed(), "i1", X, S, &offer);
    // Its candidates trickle: the INVITE goes when the gathering time is over (MEDIA-3).
    let out = call.handle(Input::Timer(Timer::Gather));
    let k = kinds(&out);
    assert_eq!(k.last().map(String::as_str), Some("Invite"), "{k:?}");
    let x = peers(&out).pop().expect("X's side told to the relay");
    let ice = x.ice.expect("ICE leg");
    assert!(ice.dtls_client && !ice.controlling, "{ice:?}");
    assert!(!ice.candidates.is_empty());
    assert_eq!(x.rtp, None);
    assert!(x
        .payloads
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("PCMU")));
    let sdp = sdp_of(&out);
    assert!(sdp.contains("m=audio 30002 RTP/AVP "), "{sdp}");
    for bad in [
        "ice-ufrag",
        "fingerprint",
        "a=candidate",
        "rtcp-mux",
        "a=ssrc",
        "SAVP",
    ] {
        assert!(!sdp.contains(bad), "{bad} in {sdp}");
    }
    let answer = String::from_utf8(fixture("baresip-1.0.0-offer.sdp"))
        .unwrap()
        .replace("m=audio 46114 RTP/AVP 0 8 101", "m=audio 46114 RTP/AVP 0");
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: answer.into_bytes(),
    }));
    assert_eq!(kinds(&out), ["media-S", "session-accept"]);
    let Output::Xmpp(iq) = &out[1] else {
        unreachable!()
    };
    let desc =
        crate::media::jingle::read_contents(iq.children().next().unwrap(), Kind::Answer).unwrap();
    let c = &desc.contents[0];
    assert!(c.rtcp_mux);
    assert_eq!(c.transport.ice.as_ref().unwrap().ufrag, "relayufr");
    let fp = c.transport.fingerprint.as_ref().unwrap();
    assert_eq!((fp.value.as_str(), fp.setup), ("AB:CD:EF", Setup::Active));
    let cand = &c.transport.candidates[0];
    assert_eq!((cand.ip, cand.port, cand.component), (IP, 30000, 1));
}

/// X's device proceeds (XEP-0353) on a SIP caller's call: the session-initiate's offer.
fn proceed(call: &mut Call) -> crate::media::model::Description {
    let out = call.handle(Input::Jmi {
        from: "juliet@example.com/phone".into(),
        el: xml_text("<proceed xmlns='urn:xmpp:jingle-message:0' id='sid9'/>"),
    });
    let Output::Xmpp(iq) = &out[0] else {
        panic!("{:?}", kinds(&out))
    };
    crate::media::jingle::read_contents(iq.children().next().unwrap(), Kind::Offer).unwrap()
}

/// The ICE + DTLS client (`active`, one host candidate at 192.0.2.77:7000, PCMU) accepts;
/// what the gathering time then sends.
fn client_accepts(call: &mut Call) -> Vec<Output> {
    let accept = xml_text(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='sid9'>\
         <content creator='initiator' name='audio'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='0' name='PCMU' clockrate='8000'/><rtcp-mux/></description>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='cli1' pwd='clientpassword0123456789'>\
         <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>01:02</fingerprint>\
         <candidate component='1' foundation='1' generation='0' id='c1' ip='192.0.2.77' port='7000' priority='2130706431' protocol='udp' type='host'/>\
         </transport></content></jingle>",
    );
    call.handle(Input::Jingle {
        id: "a1".into(),
        from: "juliet@example.com/phone".into(),
        jingle: accept,
    });
    call.handle(Input::Timer(Timer::Gather))
}

/// A plain SIP phone calls X with `xmpp_transport = ice-udp`: X is offered ICE-UDP + DTLS
/// `actpass` at the relay; X's `active` answer makes the relay the DTLS server and the
/// controlling agent, and S gets plain RTP at the relay.
#[test]
fn plain_phone_calls_ice_client_through_the_relay() {
    let (mut call, _) = Call::from_invite(
        relayed_ice(),
        "sid9",
        S,
        "juliet@example.com",
        &fixture("baresip-1.0.0-offer.sdp"),
    );
    let offer = proceed(&mut call);
    let t = &offer.contents[0].transport;
    assert_eq!(t.fingerprint.as_ref().unwrap().setup, Setup::Actpass);
    assert!(offer.contents[0].rtcp_mux && t.ice.is_some());
    let out = client_accepts(&mut call);
    let x = peers(&out)
        .into_iter()
        .find(|p| p.side == Side::X)
        .expect("X told");
    let ice = x.ice.expect("ICE leg");
    assert!(!ice.dtls_client && ice.controlling, "{ice:?}");
    assert_eq!(ice.candidates, vec!["192.0.2.77:7000".parse().unwrap()]);
    let sdp = sdp_of(&out);
    assert!(sdp.contains("m=audio 30002 RTP/AVP 0"), "{sdp}");
    assert!(
        !sdp.contains("fingerprint") && !sdp.contains("ice-ufrag"),
        "{sdp}"
    );
}

/// `auto`, X calls S: X's ICE + DTLS offer goes to S as it is; S's 488 sends a new INVITE
/// through the relay (plain RTP/AVP at the relay's port), whose answer reaches X as the
/// relay's ICE transport.
#[test]
fn auto_tries_direct_then_the_relay_after_488() {
    let mut a = anchor(true);
    a.auto = true;
    let auto = Settings {
        anchor: Some(a),
        ..settings()
    };
    let offer = crate::media::tests::xml("aiortc-offer-by-jingle-peer.xml");
    let (mut call, _) = Call::from_jingle(auto, "i1", X, S, &offer);
    let out = call.handle(Input::Timer(Timer::Gather));
    assert!(
        peers(&out).is_empty(),
        "nothing for the relay yet: {:?}",
        kinds(&out)
    );
    let direct = sdp_of(&out);
    assert!(
        direct.contains("a=ice-ufrag") && direct.contains("a=fingerprint"),
        "{direct}"
    );
    let out = call.handle(Input::Sip(SipIn::Failed { code: 488 }));
    let k = kinds(&out);
    assert_eq!(k.last().map(String::as_str), Some("Invite"), "{k:?}");
    assert!(peers(&out)
        .iter()
        .any(|p| p.side == Side::X && p.ice.is_some()));
    let relayed = sdp_of(&out);
    assert!(relayed.contains("m=audio 30002 RTP/AVP "), "{relayed}");
    assert!(!relayed.contains("ice-ufrag"), "{relayed}");
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: fixture("draft-m3-answer.sdp"),
    }));
    assert_eq!(kinds(&out), ["media-S", "session-accept"]);
    // A refusal of the relayed offer sends it once more with SDES-SRTP; a third refusal is
    // the end of the call.
    let (mut call, _) = Call::from_jingle(
        Settings {
            anchor: Some(Anchor {
                auto: true,
                ..anchor(true)
            }),
            ..settings()
        },
        "i1",
        X,
        S,
        &offer,
    );
    call.handle(Input::Timer(Timer::Gather));
    call.handle(Input::Sip(SipIn::Failed { code: 488 }));
    let out = call.handle(Input::Sip(SipIn::Failed { code: 488 }));
    assert!(sdp_of(&out).contains("RTP/SAVP"), "{:?}", kinds(&out));
    let out = call.handle(Input::Sip(SipIn::Failed { code: 488 }));
    assert!(
        kinds(&out).contains(&"session-terminate".to_string()),
        "{:?}",
        kinds(&out)
    );
}

/// `auto`, X calls S and S takes the offer as it is: the call is direct and the relay's
/// ports go back; another failure than 488/606 ends the call as before.
#[test]
fn auto_stays_direct_when_the_sip_side_answers() {
    let auto = || Settings {
        anchor: Some(Anchor {
            auto: true,
            ..anchor(true)
        }),
        ..settings()
    };
    let offer = crate::media::tests::xml("aiortc-offer-by-jingle-peer.xml");
    let (mut call, _) = Call::from_jingle(auto(), "i1", X, S, &offer);
    call.handle(Input::Timer(Timer::Gather));
    let answer = String::from_utf8(fixture("baresip-1.0.0-ice-dtls-offer.sdp")).unwrap();
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: answer.into_bytes(),
    }));
    assert_eq!(kinds(&out)[0], "media-direct");
    let (mut call, _) = Call::from_jingle(auto(), "i1", X, S, &offer);
    call.handle(Input::Timer(Timer::Gather));
    let out = call.handle(Input::Sip(SipIn::Failed { code: 486 }));
    assert!(
        kinds(&out).contains(&"ended-busy".to_string()),
        "{:?}",
        kinds(&out)
    );
}

/// baresip's offer as an SDES-SRTP phone makes it: RTP/SAVP with `lines` as its a=crypto.
fn sdes_offer(lines: &[&str]) -> String {
    let crypto: String = lines.iter().map(|l| format!("\r\na=crypto:{l}")).collect();
    String::from_utf8(fixture("baresip-1.0.0-offer.sdp"))
        .unwrap()
        .replace("RTP/AVP", "RTP/SAVP")
        .replace("a=sendrecv", &format!("a=sendrecv{crypto}"))
}

/// A 30-byte key in base64, not the relay's.
const PHONE_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

/// An SDES-SRTP phone calls an ICE + DTLS client: the relay takes the first suite it speaks
/// (tag 2 here, after a GCM line it does not), tells the forwarder the phone's key and its
/// own, offers X ICE + DTLS without the phone's key, and answers the phone RTP/SAVP with the
/// same tag and suite and the relay's own key.
#[test]
fn sdes_phone_calls_ice_client_through_the_relay() {
    let offer = sdes_offer(&[
        &format!("1 AEAD_AES_256_GCM inline:{PHONE_KEY}"),
        &format!("2 AES_CM_128_HMAC_SHA1_32 inline:{PHONE_KEY}"),
    ]);
    let (mut call, out) = Call::from_invite(
        relayed_ice(),
        "sid9",
        S,
        "juliet@example.com",
        offer.as_bytes(),
    );
    let s = peers(&out).pop().expect("S told to the relay");
    let srtp = s
        .srtp
        .expect("the phone's SDES is the relay's to terminate");
    assert_eq!((srtp.theirs.tag, srtp.theirs.suite), (2, Suite::Sha1_32));
    assert_eq!(srtp.ours, MasterKey([9; 30]));
    let to_x = proceed(&mut call);
    assert!(
        to_x.contents[0].crypto.is_empty(),
        "the phone's key went to X"
    );
    assert!(to_x.contents[0].transport.fingerprint.is_some());
    let out = client_accepts(&mut call);
    let sdp = sdp_of(&out);
    assert!(sdp.contains("m=audio 30002 RTP/SAVP 0"), "{sdp}");
    let ours = MasterKey([9; 30]).key_params();
    assert!(
        sdp.contains(&format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 {ours}")),
        "{sdp}"
    );
    assert!(!sdp.contains(PHONE_KEY), "{sdp}");
    assert_eq!(sdp.matches("a=crypto").count(), 1, "{sdp}");
}

/// With `sip_srtp = "sdes"` an ICE + DTLS caller reaches the phone as RTP/SAVP with the
/// relay's key (tag 1, AES_CM_128_HMAC_SHA1_80); the phone's SDES answer gives the
/// forwarder its key, and the answer to the phone's hold re-INVITE repeats the negotiated
/// line; a phone that answers plain RTP/AVP leaves the SIP leg unencrypted.
#[test]
fn ice_client_calls_sdes_phone_with_sip_srtp_sdes() {
    let offer = crate::media::tests::xml("aiortc-offer-by-jingle-peer.xml");
    let sdes = offering_sdes(true);
    let (mut call, _) = Call::from_jingle(sdes, "i1", X, S, &offer);
    let out = call.handle(Input::Timer(Timer::Gather));
    let sdp = sdp_of(&out);
    let ours = MasterKey([9; 30]).key_params();
    assert!(sdp.contains("m=audio 30002 RTP/SAVP "), "{sdp}");
    assert!(
        sdp.contains(&format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {ours}")),
        "{sdp}"
    );
    let answer = sdes_offer(&[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{PHONE_KEY}")])
        .replace("m=audio 46114 RTP/SAVP 0 8 101", "m=audio 46114 RTP/SAVP 0");
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: answer.clone().into_bytes(),
    }));
    assert_eq!(kinds(&out), ["media-S", "session-accept"]);
    let s = peers(&out).pop().unwrap();
    let srtp = s.srtp.expect("the phone's key");
    assert_eq!((srtp.theirs.tag, srtp.theirs.suite), (1, Suite::Sha1_80));
    // The phone holds: the answer repeats the negotiated line with the relay's key.
    let iq = format!("{}-1", call.sid());
    call.handle(Input::IqResponse { id: iq, ok: true });
    let held = answer
        .replace("a=sendrecv", "a=sendonly")
        .replace("1580642915 IN", "1580642916 IN")
        .into_bytes();
    let out = call.handle(Input::Sip(SipIn::ReInvite { sdp: held }));
    let again = sdp_of(&out);
    assert!(
        again.contains(&format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {ours}")),
        "{again}"
    );
    assert!(again.contains("a=recvonly"), "{again}");
    // A phone that answers plain RTP/AVP leaves the SIP leg unencrypted.
    let (mut call, _) = Call::from_jingle(offering_sdes(true), "i1", X, S, &offer);
    call.handle(Input::Timer(Timer::Gather));
    let plain = String::from_utf8(fixture("baresip-1.0.0-offer.sdp"))
        .unwrap()
        .replace("m=audio 46114 RTP/AVP 0 8 101", "m=audio 46114 RTP/AVP 0");
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: plain.into_bytes(),
    }));
    assert_eq!(peers(&out).pop().unwrap().srtp, None);
}

/// An SDES offer in suites the relay does not speak is not anchored toward an ICE + DTLS
/// client (its keys would have to be dropped): the ports go back and the offer goes on as it
/// is. With Raw-UDP toward XMPP the keys stay end to end through the plain relay.
#[test]
fn sdes_offer_in_unknown_suites_is_not_anchored_toward_dtls() {
    let sdes = sdes_offer(&[&format!("1 AEAD_AES_256_GCM inline:{PHONE_KEY}")]);
    let (_, out) = Call::from_invite(
        relayed_ice(),
        "sid9",
        S,
        "juliet@example.com",
        sdes.as_bytes(),
    );
    assert_eq!(kinds(&out)[0], "media-direct");
    let (_, out) = Call::from_invite(relayed(), "sid9", S, "juliet@example.com", sdes.as_bytes());
    assert_eq!(kinds(&out)[0], "media-S");
    assert_eq!(peers(&out)[0].srtp, None);
}

/// A relayed INVITE refused with 488 goes once more with the other SRTP choice (an SRTP-only
/// phone refuses RTP/AVP, a plain one RTP/SAVP), then as the client's own offer, direct; a
/// fourth refusal ends the call.
#[test]
fn a_refused_relayed_offer_is_tried_once_with_the_other_srtp_choice() {
    let offer = crate::media::tests::xml("aiortc-offer-by-jingle-peer.xml");
    for first_sdes in [false, true] {
        let settings = offering_sdes(first_sdes);
        let (mut call, _) = Call::from_jingle(settings, "i1", X, S, &offer);
        let first = sdp_of(&call.handle(Input::Timer(Timer::Gather)));
        assert_eq!(first.contains("RTP/SAVP"), first_sdes, "{first}");
        let out = call.handle(Input::Sip(SipIn::Failed { code: 488 }));
        let k = kinds(&out);
        assert_eq!(k.last().map(String::as_str), Some("Invite"), "{k:?}");
        let again = sdp_of(&out);
        assert_eq!(again.contains("RTP/SAVP"), !first_sdes, "{again}");
        assert_eq!(again.contains("a=crypto:1 "), !first_sdes, "{again}");
        // The third INVITE is the client's own offer (ICE + DTLS), direct, for a phone that
        // does ICE + DTLS-SRTP itself; its refusal is the end of the call.
        let out = call.handle(Input::Sip(SipIn::Failed { code: 488 }));
        assert_eq!(kinds(&out)[0], "media-direct", "{:?}", kinds(&out));
        let direct = sdp_of(&out);
        assert!(
            direct.contains("a=ice-ufrag") && direct.contains("a=fingerprint"),
            "{direct}"
        );
        let out = call.handle(Input::Sip(SipIn::Failed { code: 488 }));
        assert!(
            kinds(&out).contains(&"session-terminate".to_string()),
            "{:?}",
            kinds(&out)
        );
    }
    // Another failure than 488/606 ends the call at once.
    let (mut call, _) = Call::from_jingle(relayed(), "i1", X, S, &offer);
    call.handle(Input::Timer(Timer::Gather));
    let out = call.handle(Input::Sip(SipIn::Failed { code: 486 }));
    assert!(
        kinds(&out).contains(&"ended-busy".to_string()),
        "{:?}",
        kinds(&out)
    );
}

/// A phone that takes the relayed RTP/SAVP offer but answers with ICE + DTLS of its own
/// (baresip with dtls_srtp does) cannot be relayed: the dialog is ended (ACK, BYE) and the
/// client's own offer goes in a new INVITE, direct. In `auto` that was the first try: the
/// call then fails as incompatible.
#[test]
fn an_ice_dtls_answer_to_a_relayed_offer_sends_the_clients_offer_direct() {
    let offer = crate::media::tests::xml("aiortc-offer-by-jingle-peer.xml");
    let ice_answer = fixture("baresip-1.0.0-ice-dtls-offer.sdp");
    let (mut call, _) = Call::from_jingle(offering_sdes(true), "i1", X, S, &offer);
    call.handle(Input::Timer(Timer::Gather));
    let out = call.handle(Input::Sip(SipIn::Answered {
        sdp: ice_answer.clone(),
    }));
    let k = kinds(&out);
    assert_eq!(k.first().map(String::as_str), Some("media-direct"), "{k:?}");
    assert!(
        k.ends_with(&["Ack".into(), "Bye".into(), "Invite".into()]),
        "{k:?}"
    );
    let direct = sdp_of(&out);
    assert!(
        direct.contains("a=ice-ufrag") && !direct.contains("30002"),
        "{direct}"
    );
    // auto: direct first, then relayed; an ICE answer to the relayed offer ends the call.
    let auto = Settings {
        anchor: Some(Anchor {
            auto: true,
            ..anchor(true)
        }),
        ..settings()
    };
    let (mut call, _) = Call::from_jingle(auto, "i1", X, S, &offer);
    call.handle(Input::Timer(Timer::Gather));
    call.handle(Input::Sip(SipIn::Failed { code: 488 }));
    let out = call.handle(Input::Sip(SipIn::Answered { sdp: ice_answer }));
    let k = kinds(&out);
    assert!(k.contains(&"session-terminate".to_string()), "{k:?}");
    assert!(!k.contains(&"Invite".to_string()), "{k:?}");
}

/// A phone that offers rtcp-mux gets an answer without it (the relay's plain leg does not
/// mux), so its RTCP address is the next port, not its RTP port (RFC 5761 §5.1.1).
#[test]
fn a_phones_rtcp_mux_offer_is_not_taken_by_the_relay() {
    let muxed = String::from_utf8(fixture("baresip-1.0.0-offer.sdp"))
        .unwrap()
        .replace("a=sendrecv", "a=sendrecv\r\na=rtcp-mux");
    let (_, out) = Call::from_invite(
        relayed_ice(),
        "sid9",
        S,
        "juliet@example.com",
        muxed.as_bytes(),
    );
    let s = peers(&out).pop().expect("S told to the relay");
    let rtp = s.rtp.expect("an RTP address");
    assert_eq!(
        s.rtcp,
        Some(std::net::SocketAddr::new(rtp.ip(), rtp.port() + 1))
    );
}

/// Plain relay mode passes rtcp-mux on: a phone's mux offer answered by a Raw-UDP client
/// without mux leaves the phone's RTCP on its next port (the relay had taken the offer's mux
/// until the answer); answered with mux, RTCP stays on the RTP port.
#[test]
fn plain_relay_takes_rtcp_mux_back_when_the_answer_drops_it() {
    let muxed = String::from_utf8(fixture("baresip-1.0.0-offer.sdp"))
        .unwrap()
        .replace("a=sendrecv", "a=sendrecv\r\na=rtcp-mux");
    for (answer_mux, rtcp_port) in [(false, 46115), (true, 46114)] {
        let (mut call, out) =
            Call::from_invite(relayed(), "sid9", S, "juliet@example.com", muxed.as_bytes());
        let s = peers(&out).pop().expect("S told to the relay");
        assert_eq!(s.rtcp, s.rtp, "the offer's mux holds until the answer");
        call.handle(Input::Jmi {
            from: "juliet@example.com/phone".into(),
            el: xml_text("<proceed xmlns='urn:xmpp:jingle-message:0' id='sid9'/>"),
        });
        let accept = xml_text(&format!(
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='sid9'>\
             <content creator='initiator' name='audio'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <payload-type id='0' name='PCMU' clockrate='8000'/>{}</description>\
             <transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate id='a' component='1' generation='0' ip='192.0.2.77' port='7000'/></transport>\
             </content></jingle>",
            if answer_mux { "<rtcp-mux/>" } else { "" }
        ));
        let out = call.handle(Input::Jingle {
            id: "a1".into(),
            from: "juliet@example.com/phone".into(),
            jingle: accept,
        });
        let s = peers(&out).into_iter().rfind(|p| p.side == Side::S);
        match answer_mux {
            false => {
                let s = s.expect("S told again, without mux");
                assert_eq!(
                    s.rtcp,
                    Some(format!("192.0.2.2:{rtcp_port}").parse().unwrap())
                );
            }
            true => assert!(s.is_none(), "mux agreed: nothing to take back"),
        }
        let sdp = sdp_of(&out);
        assert_eq!(sdp.contains("a=rtcp-mux"), answer_mux, "{sdp}");
    }
}
