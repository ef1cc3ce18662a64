//! Call descriptions both ways (draft-ietf-stox-media §5): SDP through
//! `stox::media::sdp::{parse, from_sdp}` and Jingle through `stox::media::jingle::read_contents`,
//! then each rendered on the other side and read again.
//!
//! Input: the first byte picks the reader (bit 0: 0 = SDP, 1 = Jingle XML), the SDP author's
//! role (bit 1) and offer/answer (bit 2); the rest is the body.
//!
//! Invariants:
//! * No reader or writer panics; a refused SDP answers 488; a refused Jingle request is either
//!   malformed (IQ `bad-request`, a clean stanza error) or gets a terminate reason.
//! * Jingle writer/reader: `read_contents(render(d)) == d` for every description read from
//!   either side.
//! * SDP writer: what `to_sdp` writes is only `x=` lines (nothing a peer sent can start a line
//!   of its own), parses again, and reads back as the same contents with the same payload
//!   types, senders and candidates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::media::model::{Description, Kind, Role};
use stox::media::{jingle, sdp};
use stox_fuzz::*;
use xmpp_parsers::minidom::Element;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let author = if mode & 2 == 0 {
        Role::Initiator
    } else {
        Role::Responder
    };
    let kind = if mode & 4 == 0 {
        Kind::Offer
    } else {
        Kind::Answer
    };
    let desc = if mode & 1 == 0 {
        let read = sdp::parse(body).and_then(|s| sdp::from_sdp(&s, author, kind));
        match read {
            Ok(r) => r.description,
            Err(e) => {
                assert_eq!(e.sip_status().code, 488, "SDP refusal");
                return;
            }
        }
    } else {
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        let Ok(el) = text.parse::<Element>() else {
            return;
        };
        match jingle::read_contents(&el, kind) {
            Ok(d) => d,
            Err(e) => {
                if e.is_malformed() {
                    assert_xmpp_error(&e.xmpp_error(), "Jingle refusal");
                }
                assert_eq!(e.sip_status().code, 488);
                return;
            }
        }
    };
    if debug() {
        eprintln!("{desc:#?}");
    }
    let mut j = Element::builder("jingle", xmpp_parsers::ns::JINGLE).build();
    for e in jingle::render(&desc, Role::Initiator) {
        j.append_child(e);
    }
    let j = assert_xml_round_trip(&j, "rendered Jingle");
    assert_eq!(
        jingle::read_contents(&j, kind).as_ref(),
        Ok(&desc),
        "Jingle round trip"
    );

    let origin = sdp::SdpOrigin {
        username: "fuzz".into(),
        session_id: 1,
        version: 1,
        address: std::net::Ipv4Addr::LOCALHOST.into(),
    };
    let Ok(session) = sdp::to_sdp(&desc, author, kind, &origin, None) else {
        return;
    };
    let text = session.to_string();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let b = line.as_bytes();
        assert!(
            b.len() >= 2 && b[0].is_ascii_lowercase() && b[1] == b'=',
            "SDP line {line:?}"
        );
    }
    let back = sdp::parse(text.as_bytes())
        .and_then(|s| sdp::from_sdp(&s, author, kind))
        .unwrap_or_else(|e| panic!("our SDP does not read back: {e}\n{text}"))
        .description;
    same_streams(&desc, &back, &text);
});

fn same_streams(a: &Description, b: &Description, text: &str) {
    assert_eq!(a.contents.len(), b.contents.len(), "contents\n{text}");
    for (x, y) in a.contents.iter().zip(&b.contents) {
        let ids =
            |c: &stox::media::model::Content| c.payloads.iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(x), ids(y), "payload types\n{text}");
        assert_eq!(x.name, y.name, "content name\n{text}");
        assert_eq!(x.transport.ice, y.transport.ice, "ICE credentials\n{text}");
        assert_eq!(
            x.transport.fingerprint, y.transport.fingerprint,
            "fingerprint\n{text}"
        );
    }
}
