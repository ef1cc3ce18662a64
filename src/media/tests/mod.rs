//! Tests of the media translators: golden fixtures (draft examples, a real baresip offer,
//! WebRTC-style Jingle and SDP), rule tables citing MEDIA-N, hostile corpora and property
//! round trips.

mod golden;
mod hostile;
mod prop;
mod tables;

use super::model::*;
use super::sdp::{self, SdpOrigin};
use std::net::{IpAddr, Ipv4Addr};
use tokio_xmpp::minidom::Element;

pub(crate) fn fixture_path(dir: &str, name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name)
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let p = fixture_path("tests/fixtures/media", name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parse an XML fixture; a leading comment (which minidom does not take) is skipped.
pub(crate) fn xml_text(text: &str) -> Element {
    let text = match text.trim_start().strip_prefix("<!--") {
        Some(rest) => rest.split_once("-->").map(|(_, r)| r).unwrap_or(rest),
        None => text,
    };
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("fixture XML: {e}"))
}

pub(crate) fn xml(name: &str) -> Element {
    xml_text(&String::from_utf8(fixture(name)).unwrap())
}

pub(crate) fn origin(user: &str, id: u64) -> SdpOrigin {
    SdpOrigin {
        username: user.into(),
        session_id: id,
        version: id,
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    }
}

pub(crate) fn read_sdp(bytes: &[u8], author: Role, kind: Kind) -> sdp::ReadSdp {
    let s = sdp::parse(bytes).expect("SDP parses");
    sdp::from_sdp(&s, author, kind).expect("SDP maps")
}

pub(crate) fn sdp_text(
    desc: &Description,
    author: Role,
    kind: Kind,
    offer: Option<&[sdp::MLine]>,
) -> String {
    sdp::to_sdp(desc, author, kind, &origin("juliet", 2890844526), offer)
        .expect("renders")
        .to_string()
}

pub(crate) fn lines(text: &str) -> Vec<&str> {
    text.split("\r\n").filter(|l| !l.is_empty()).collect()
}
