//! Golden fixtures: tests/fixtures/media/.

use super::*;
use crate::media::{ice, jingle, MediaError};

/// MEDIA-5, 9, 10 (worked example M1): a Raw-UDP session-initiate becomes exactly the
/// INVITE body of the example (o= username = initiator's localpart, c=/m= from the
/// candidate, rtpmap in preference order, a=sendrecv for a missing senders).
#[test]
fn m1_session_initiate_becomes_the_invite_sdp() {
    let desc = jingle::read_contents(&xml("draft-m1-session-initiate.xml"), Kind::Offer).unwrap();
    let text = sdp_text(&desc, Role::Initiator, Kind::Offer, None);
    assert_eq!(
        text,
        String::from_utf8(fixture("draft-m1-invite.sdp")).unwrap()
    );
}

/// MEDIA-10 with the §8 erratum fixed (worked example M3): the SIP answer's address is the
/// responder's candidate in session-accept.
#[test]
fn m3_sdp_answer_becomes_session_accept() {
    let read = read_sdp(
        &fixture("draft-m3-answer.sdp"),
        Role::Responder,
        Kind::Answer,
    );
    let want = jingle::read_contents(&xml("draft-m3-session-accept.xml"), Kind::Answer).unwrap();
    assert_eq!(read.description, want);
    let cand = &read.description.contents[0].transport.candidates[0];
    assert_eq!(
        (cand.ip.to_string().as_str(), cand.port),
        ("192.0.2.201", 3456)
    );
    assert_eq!(read.origin_user.as_deref(), Some("romeo"));
}

/// A real baresip 1.0.0 offer (captured from baresip on loopback): static payload types,
/// ptime carried onto each payload type (MEDIA-9), telephone-event with its event list
/// (MEDIA-20), the SSRC's cname (XEP-0339), Raw-UDP from c=/m= (MEDIA-10).
#[test]
fn baresip_offer_becomes_session_initiate_and_back() {
    let read = read_sdp(
        &fixture("baresip-1.0.0-offer.sdp"),
        Role::Initiator,
        Kind::Offer,
    );
    let want = jingle::read_contents(&xml("baresip-1.0.0-offer.xml"), Kind::Offer).unwrap();
    assert_eq!(read.description, want);
    // Rendered as Jingle and read again: nothing lost.
    let els = jingle::render(&read.description, Role::Initiator);
    let mut j = tokio_xmpp::minidom::Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in els {
        j.append_child(e);
    }
    assert_eq!(
        jingle::read_contents(&j, Kind::Offer).unwrap(),
        read.description
    );
    // And back to SDP for a SIP callee: same stream, same formats and events.
    let text = sdp_text(&read.description, Role::Initiator, Kind::Offer, None);
    let l = lines(&text);
    for want in [
        "c=IN IP4 192.0.2.2",
        "m=audio 46114 RTP/AVP 0 8 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
        "a=ssrc:120434008 cname:sip:cap@127.0.0.1",
    ] {
        assert!(l.contains(&want), "{want:?} missing from\n{text}");
    }
}

/// MEDIA-3, 9, 11, 24 and XEP-0293/0294/0338/0339: a WebRTC client's offer has no
/// candidates until transport-info; SDP is refused until then, and then carries everything
/// a SIP UA doing ICE + DTLS-SRTP needs. TCP candidates are dropped; the default address is
/// the server-reflexive candidate; unknown description children are skipped.
#[test]
fn webrtc_offer_waits_for_candidates_then_becomes_sdp() {
    let mut desc = jingle::read_contents(&xml("webrtc-session-initiate.xml"), Kind::Offer).unwrap();
    let err = sdp::to_sdp(
        &desc,
        Role::Initiator,
        Kind::Offer,
        &origin("romeo", 1),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::Transport(_)), "{err:?}");
    for (name, t) in jingle::read_transport_info(&xml("webrtc-transport-info.xml")).unwrap() {
        ice::apply_transport_info(&mut desc, &name, t).unwrap();
    }
    assert_eq!(
        desc.contents[0].transport.candidates.len(),
        2,
        "TCP candidate dropped"
    );
    let text = sdp_text(&desc, Role::Initiator, Kind::Offer, None);
    let l = lines(&text);
    for want in [
        "a=group:BUNDLE 0",
        "c=IN IP4 198.51.100.7",
        "m=audio 51334 UDP/TLS/RTP/SAVPF 111 63 9 0 8 126",
        "a=mid:0",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtcp-fb:111 transport-cc",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:126 telephone-event/8000",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=ice-ufrag:8hhy",
        "a=ice-pwd:asd88fgpdd777uzjYhagZg",
        "a=candidate:3427313755 1 udp 2122260223 192.0.2.50 51334 typ host",
        "a=candidate:1846339779 1 udp 1686052607 198.51.100.7 51334 typ srflx raddr 192.0.2.50 rport 51334",
        "a=fingerprint:sha-256 02:1A:CC:54:27:AB:EB:9C:53:3F:3E:4B:65:2E:7D:46:3F:54:42:CD:54:F1:7A:03:A2:7D:F9:B0:7F:46:19:B2",
        "a=setup:actpass",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap-allow-mixed",
        "a=ssrc:2948294873 cname:aQz9xL2wM4nB7vC1",
        "a=ssrc:2948294873 msid:my-stream my-audio-track",
    ] {
        assert!(l.contains(&want), "{want:?} missing from\n{text}");
    }
    assert!(!text.contains(" tcp "), "no TCP candidate in\n{text}");
}

/// A WebRTC SDP offer (Chrome's shape) from a SIP UA: two RTP streams become contents named
/// by their mid, the data channel is left out, candidates with mDNS names or TCP are
/// dropped, telephone-event gets its default events (MEDIA-20), red its pt list (MEDIA-21),
/// and the Jingle rendering reads back to the same description.
#[test]
fn chrome_offer_becomes_jingle() {
    let read = read_sdp(&fixture("chrome-offer.sdp"), Role::Initiator, Kind::Offer);
    let d = &read.description;
    assert_eq!(
        d.contents
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["0", "1"]
    );
    assert_eq!(d.bundle, ["0", "1"]);
    assert_eq!(read.lines.len(), 3);
    assert!(!read.lines[2].used);
    let audio = &d.contents[0];
    assert!(audio.extmap_allow_mixed && audio.rtcp_mux);
    assert_eq!(audio.transport.candidates.len(), 1);
    assert_eq!(
        audio.transport.fingerprint.as_ref().unwrap().setup,
        Setup::Actpass
    );
    let red = audio.payloads.iter().find(|p| p.name == "red").unwrap();
    assert_eq!(red.params, [("pt".to_owned(), "111,111".to_owned())]);
    for te in audio
        .payloads
        .iter()
        .filter(|p| p.name == "telephone-event")
    {
        assert_eq!(te.params, [("events".to_owned(), "0-15".to_owned())]);
    }
    let video = &d.contents[1];
    assert_eq!(video.payloads[0].rtcp_fb.len(), 4);
    assert_eq!(
        video.payloads[1].params,
        [("apt".to_owned(), "96".to_owned())]
    );
    assert_eq!(video.source_groups[0].ssrcs, [3351345127, 2106549023]);
    let mut j = tokio_xmpp::minidom::Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in jingle::render(d, Role::Initiator) {
        j.append_child(e);
    }
    assert_eq!(&jingle::read_contents(&j, Kind::Offer).unwrap(), d);
}

/// RFC 3264 §6 and MEDIA-24: the answer to the Chrome offer keeps all three m= lines in
/// order, refuses the unaccepted ones with port 0 and the offer's protocol, repeats the
/// mids, and never answers actpass.
#[test]
fn answer_follows_the_offer_layout() {
    let read = read_sdp(&fixture("chrome-offer.sdp"), Role::Initiator, Kind::Offer);
    let mut answer = read.description.clone();
    answer.contents.truncate(1);
    answer.bundle = vec!["0".into()];
    let t = &mut answer.contents[0].transport;
    t.candidates[0].ip = "192.0.2.99".parse().unwrap();
    t.candidates[0].port = 40000;
    let text = sdp_text(&answer, Role::Responder, Kind::Answer, Some(&read.lines));
    let l = lines(&text);
    let m: Vec<&&str> = l.iter().filter(|x| x.starts_with("m=")).collect();
    assert_eq!(
        m,
        [
            &"m=audio 40000 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110 126",
            &"m=video 0 UDP/TLS/RTP/SAVPF 96",
            &"m=application 0 UDP/DTLS/SCTP webrtc-datachannel"
        ]
    );
    assert!(l.contains(&"a=setup:active"), "{text}");
    assert!(!text.contains("actpass"));
    assert_eq!(l.iter().filter(|x| x.starts_with("a=mid:")).count(), 3);
}

/// Two independent translations of one real offer agree: aiortc 1.16.0's SDP offer (made by
/// `RTCPeerConnection.createOffer` with one audio track) read by our SDP reader, and the same
/// offer turned into Jingle by the integration suite's call peer (integration/jingle_sdp.py,
/// written separately) read by our Jingle reader. Candidate ids are the writer's choice and
/// SDP's a=end-of-candidates has no Jingle form, so those two are set aside.
#[test]
fn aiortc_offer_agrees_with_the_independent_translation() {
    let from_sdp = read_sdp(
        &fixture("aiortc-1.16.0-offer.sdp"),
        Role::Initiator,
        Kind::Offer,
    )
    .description;
    let c = &from_sdp.contents[0];
    assert_eq!(c.name, "0");
    assert!(c.transport.end_of_candidates);
    assert_eq!(
        c.transport.candidates.len(),
        2,
        "IPv4 and IPv6 host candidates"
    );
    assert_eq!(
        c.transport
            .fingerprint
            .as_ref()
            .map(|f| (f.hash.as_str(), f.setup)),
        Some(("sha-256", Setup::Actpass))
    );
    let from_jingle =
        jingle::read_contents(&xml("aiortc-offer-by-jingle-peer.xml"), Kind::Offer).unwrap();
    let strip = |mut d: Description| {
        for c in &mut d.contents {
            c.transport.end_of_candidates = false;
            c.transport.candidates.iter_mut().for_each(|k| k.id.clear());
        }
        d
    };
    assert_eq!(strip(from_sdp), strip(from_jingle));
}

/// A real baresip 1.0.0 offer with its ice and dtls_srtp modules (captured on loopback):
/// ICE credentials and the fingerprint at session level, `SHA-256` in capitals, upper-case
/// `UDP` candidates for RTP and RTCP over IPv4 and IPv6, no rtcp-mux. All of it reaches
/// Jingle and reads back unchanged.
#[test]
fn baresip_ice_dtls_offer_becomes_jingle() {
    let read = read_sdp(
        &fixture("baresip-1.0.0-ice-dtls-offer.sdp"),
        Role::Initiator,
        Kind::Offer,
    );
    let c = &read.description.contents[0];
    assert_eq!(
        c.transport.ice.as_ref().map(|i| i.ufrag.as_str()),
        Some("HmYzKN6")
    );
    let fp = c.transport.fingerprint.as_ref().unwrap();
    assert_eq!((fp.hash.as_str(), fp.setup), ("sha-256", Setup::Actpass));
    let comps: Vec<u8> = c.transport.candidates.iter().map(|k| k.component).collect();
    assert_eq!(comps, [1, 2, 1, 2]);
    assert!(!c.rtcp_mux);
    let opus = c.payloads.iter().find(|p| p.name == "opus").unwrap();
    assert_eq!(
        opus.params,
        [
            ("stereo".to_owned(), "1".to_owned()),
            ("sprop-stereo".to_owned(), "1".to_owned())
        ]
    );
    let mut j = tokio_xmpp::minidom::Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in jingle::render(&read.description, Role::Initiator) {
        j.append_child(e);
    }
    let mut back = jingle::read_contents(&j, Kind::Offer).unwrap();
    // SDP's a=end-of-candidates (implied here: baresip does not trickle) has no Jingle form.
    back.contents[0].transport.end_of_candidates = c.transport.end_of_candidates;
    assert_eq!(back, read.description);
}
