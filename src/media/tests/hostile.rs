//! Hostile input: the corpora in tests/corpus/sdp and tests/corpus/jingle, and generated
//! oversized descriptions. Every one gets an error of the class its file name gives, never a
//! panic, and the error's renderings are the ones the peer must see.

use super::*;
use crate::media::{jingle, MediaError};

fn class(e: &MediaError) -> &'static str {
    match e {
        MediaError::Malformed(_) => "malformed",
        MediaError::Unsupported(_) => "unsupported",
        MediaError::Transport(_) => "transport",
        MediaError::TooLarge(_) => "toolarge",
    }
}

fn corpus(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let path = fixture_path("tests/corpus", dir);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "corpus {dir} is nearly empty");
    out
}

fn sdp_error(bytes: &[u8]) -> MediaError {
    let s = match sdp::parse(bytes) {
        Ok(s) => s,
        Err(e) => return e,
    };
    for kind in [Kind::Offer, Kind::Answer] {
        if let Err(e) = sdp::from_sdp(&s, Role::Initiator, kind) {
            return e;
        }
    }
    panic!("accepted")
}

#[test]
fn sdp_corpus_gets_the_named_error() {
    for (name, bytes) in corpus("sdp", "sdp") {
        let e = std::panic::catch_unwind(|| sdp_error(&bytes))
            .unwrap_or_else(|_| panic!("{name}: accepted or panicked"));
        assert!(name.starts_with(class(&e)), "{name}: got {e:?}");
        assert_eq!(e.sip_status().code, 488, "{name}");
    }
}

#[test]
fn jingle_corpus_gets_the_named_error() {
    for (name, bytes) in corpus("jingle", "xml") {
        let el = xml_text(std::str::from_utf8(&bytes).unwrap());
        let e = match jingle::read_contents(&el, Kind::Offer) {
            Err(e) => e,
            Ok(d) => panic!("{name}: accepted as {d:?}"),
        };
        assert!(name.starts_with(class(&e)), "{name}: got {e:?}");
        if name.starts_with("malformed-") {
            assert!(e.is_malformed(), "{name}");
            assert_eq!(e.xmpp_error().condition_name(), "bad-request");
        } else {
            assert!(!e.is_malformed(), "{name}");
        }
    }
}

/// [`crate::media::limits`]: too many of anything is refused before it costs memory.
#[test]
fn oversized_descriptions_are_refused() {
    let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
    let many_m = format!("{head}{}", "m=audio 5000 RTP/AVP 0\r\n".repeat(17));
    assert_eq!(
        sdp_error(many_m.as_bytes()),
        MediaError::TooLarge("m= lines")
    );
    let pts: Vec<String> = (0..65).map(|i| (i % 128).to_string()).collect();
    let many_pt = format!("{head}m=audio 5000 RTP/AVP {}\r\n", pts.join(" "));
    assert_eq!(
        sdp_error(many_pt.as_bytes()),
        MediaError::TooLarge("payload types")
    );
    let cands: String = (0..65)
        .map(|i| {
            format!(
                "a=candidate:{i} 1 udp 1 192.0.2.1 {} typ host\r\n",
                1000 + i
            )
        })
        .collect();
    let many_c = format!("{head}m=audio 5000 RTP/AVP 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n{cands}");
    assert_eq!(
        sdp_error(many_c.as_bytes()),
        MediaError::TooLarge("candidates")
    );
    let huge = format!(
        "{head}m=audio 5000 RTP/AVP 0\r\n{}",
        "a=x-pad:1234567890\r\n".repeat(4000)
    );
    assert_eq!(sdp_error(huge.as_bytes()), MediaError::TooLarge("bytes"));

    let content = "<content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='0' name='PCMU' clockrate='8000'/></description><transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'/></content>";
    let j = format!(
        "<jingle xmlns='urn:xmpp:jingle:1'>{}</jingle>",
        content.repeat(17)
    );
    assert_eq!(
        jingle::read_contents(&xml_text(&j), Kind::Offer),
        Err(MediaError::TooLarge("contents"))
    );
    let pts = "<payload-type id='0' name='PCMU' clockrate='8000'/>".repeat(65);
    let j = format!("<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>{pts}</description><transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'/></content></jingle>");
    assert_eq!(
        jingle::read_contents(&xml_text(&j), Kind::Offer),
        Err(MediaError::TooLarge("payload types"))
    );
}

/// F13 (fuzz target sdp_jingle): a dynamic payload type listed without a=rtpmap names no
/// codec; it is left out (Jingle cannot carry a nameless dynamic type), and a stream left
/// with none is unusable like a port-0 one.
#[test]
fn f13_dynamic_payload_type_without_rtpmap_is_left_out() {
    let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
    let mixed = format!("{head}m=audio 5000 RTP/AVP 102 0\r\n");
    let read = read_sdp(mixed.as_bytes(), Role::Initiator, Kind::Offer);
    let ids: Vec<u8> = read.description.contents[0]
        .payloads
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [0]);
    let only = format!("{head}m=audio 5000 RTP/AVP 102\r\nm=audio 6000 RTP/AVP 8\r\n");
    let read = read_sdp(only.as_bytes(), Role::Initiator, Kind::Offer);
    assert_eq!(read.description.contents.len(), 1);
    assert!(!read.lines[0].used && read.lines[1].used);
    let none = format!("{head}m=audio 5000 RTP/AVP 102\r\n");
    assert!(matches!(
        sdp_error(none.as_bytes()),
        MediaError::Unsupported(_)
    ));
}

/// F14 and F18 (fuzz target sdp_jingle): a control character in an SDP value (an extmap
/// URI, an a=group name) reached a Jingle attribute, and minidom's writer panics on it.
/// Every value read from SDP now refuses control characters.
#[test]
fn f14_control_characters_in_sdp_values_are_refused() {
    let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    for extra in [
        "a=extmap:1 urn:x\u{14}y\r\n",
        "a=mid:a\u{1}b\r\n",
        "a=rtcp-fb:0 nack\u{7}\r\n",
        "a=ssrc:1 cname:x\u{14}\r\n",
    ] {
        let text = format!("{head}{extra}");
        assert!(
            matches!(sdp_error(text.as_bytes()), MediaError::Malformed(_)),
            "{extra:?}"
        );
    }
}

/// F15 (sdp_jingle): a nameless static payload type with a clockrate reads back the same
/// after the Jingle writer.
#[test]
fn f15_nameless_static_payload_keeps_its_clockrate() {
    let j = "<jingle xmlns='urn:xmpp:jingle:1'><content creator='initiator' name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='82' clockrate='48000'/></description><transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'><candidate id='c' component='1' generation='0' ip='192.0.2.1' port='5000'/></transport></content></jingle>";
    let d = jingle::read_contents(&xml_text(j), Kind::Offer).unwrap();
    let mut again = Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in jingle::render(&d, Role::Initiator) {
        again.append_child(e);
    }
    assert_eq!(jingle::read_contents(&again, Kind::Offer).unwrap(), d);
    assert_eq!(d.contents[0].payloads[0].clockrate, 48000);
}

/// F16 (sdp_jingle): DTLS-SRTP without ICE (a fingerprint on a Raw-UDP stream) keeps its
/// fingerprint in Jingle.
#[test]
fn f16_dtls_without_ice_keeps_the_fingerprint() {
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 UDP/TLS/RTP/SAVP 0\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n";
    let d = read_sdp(sdp.as_bytes(), Role::Initiator, Kind::Offer).description;
    assert!(d.contents[0].transport.ice.is_none());
    let mut j = Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in jingle::render(&d, Role::Initiator) {
        j.append_child(e);
    }
    assert_eq!(jingle::read_contents(&j, Kind::Offer).unwrap(), d);
}

/// F17 (sdp_jingle): SDP tokens that become Jingle names must be tokens: an a=ssrc line
/// whose attribute name holds a space (or is empty) is skipped, a mid with a space is
/// refused, a b= type with a space is ignored.
#[test]
fn f17_sdp_names_that_are_not_tokens() {
    let head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    let text = format!("{head}a=ssrc:7 cname:x\r\na=ssrc:8 311 msid:s0\r\na=ssrc:9\r\n");
    let d = read_sdp(text.as_bytes(), Role::Initiator, Kind::Offer).description;
    assert_eq!(d.contents[0].sources.len(), 1);
    let text = format!("{head}a=ssrc-group:\r\na=ssrc-group:FID 1 2\r\n");
    let d = read_sdp(text.as_bytes(), Role::Initiator, Kind::Offer).description;
    assert_eq!(
        d.contents[0].source_groups.len(),
        1,
        "F19: an ssrc-group without semantics is skipped"
    );
    let text = format!("{head}a=mid:a b\r\n");
    assert!(matches!(
        sdp_error(text.as_bytes()),
        MediaError::Malformed(_)
    ));
    let text = head.replace(
        "m=audio 5000 RTP/AVP 0\r\n",
        "m=audio 5000 RTP/AVP 0\r\nb=A S:64\r\n",
    );
    let d = read_sdp(text.as_bytes(), Role::Initiator, Kind::Offer).description;
    assert_eq!(d.contents[0].bandwidth, None);
    let mut j = Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in jingle::render(&d, Role::Initiator) {
        j.append_child(e);
    }
    assert_eq!(jingle::read_contents(&j, Kind::Offer).unwrap(), d);
}
