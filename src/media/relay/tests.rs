//! What can be anchored, and the rewritten descriptions.

use super::*;
use crate::media::model::Kind;
use crate::media::model::Role;
use crate::media::sdp;

fn read(s: &str) -> Description {
    let parsed = sdp::parse(s.replace('\n', "\r\n").as_bytes()).unwrap();
    sdp::from_sdp(&parsed, Role::Initiator, Kind::Offer)
        .unwrap()
        .description
}

const PLAIN: &str = "v=0
o=- 1 1 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 4000 RTP/SAVP 0 101
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=sendrecv
";

#[test]
fn a_plain_audio_call_is_relayable_and_its_peer_is_read() {
    let d = read(PLAIN);
    assert!(relayable(&d));
    let p = peer(&d, Side::S, true);
    assert_eq!(p.rtp, Some("192.0.2.10:4000".parse().unwrap()));
    assert_eq!(
        p.rtcp,
        Some("192.0.2.10:4001".parse().unwrap()),
        "RFC 3550 §11"
    );
    assert!(p.both_ways);
}

#[test]
fn ice_dtls_video_or_two_contents_are_not_relayable() {
    let ice = PLAIN.replace(
        "a=sendrecv",
        "a=sendrecv\na=ice-ufrag:abcd\na=ice-pwd:0123456789012345678901",
    );
    assert!(!relayable(&read(&ice)));
    let dtls = PLAIN.replace("a=sendrecv", "a=fingerprint:sha-256 AB:CD\na=setup:actpass");
    assert!(!relayable(&read(&dtls)));
    let video = PLAIN.replace(
        "m=audio 4000 RTP/SAVP 0 101",
        "m=video 4000 RTP/SAVP 96\na=rtpmap:96 VP8/90000",
    );
    assert!(!relayable(&read(&video)));
    let two = format!("{PLAIN}m=audio 4002 RTP/AVP 0\n");
    assert!(!relayable(&read(&two)));
}

#[test]
fn hold_and_rtcp_attributes_are_read() {
    let held = PLAIN
        .replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")
        .replace("a=sendrecv", "a=sendonly\na=rtcp:5005 IN IP4 192.0.2.11");
    let p = peer(&read(&held), Side::S, true);
    assert_eq!(p.rtp, None, "c=0.0.0.0 is no address (RFC 2543 hold)");
    assert_eq!(p.rtcp, Some("192.0.2.11:5005".parse().unwrap()));
    assert!(!p.both_ways);
    let mux = PLAIN.replace("a=sendrecv", "a=sendrecv\na=rtcp-mux");
    let p = peer(&read(&mux), Side::X, true);
    assert_eq!(p.rtcp, p.rtp);
    // Offered mux that the relay's answer did not take: RTCP on the next port (RFC 5761).
    let p = peer(&read(&mux), Side::X, false);
    assert_eq!(p.rtcp, Some("192.0.2.10:4001".parse().unwrap()));
}

#[test]
fn audio_clock_skips_dtmf_and_comfort_noise() {
    let pt = |name: &str, clockrate| PayloadType {
        pt: 0,
        name: name.into(),
        clockrate,
        channels: 1,
    };
    assert_eq!(
        audio_clockrate(&[
            pt("telephone-event", 8000),
            pt("CN", 8000),
            pt("opus", 48000)
        ]),
        48000
    );
    assert_eq!(audio_clockrate(&[pt("G722", 8000), pt("PCMU", 8000)]), 8000);
    assert_eq!(audio_clockrate(&[pt("TELEPHONE-EVENT", 16000)]), 8000);
    assert_eq!(audio_clockrate(&[]), 8000);
}

#[test]
fn anchored_keeps_codecs_and_keys_and_writes_the_relay_address() {
    let d = read(PLAIN);
    let a = anchored(&d, "203.0.113.5".parse().unwrap(), 30000);
    let c = &a.contents[0];
    assert_eq!(c.payloads, d.contents[0].payloads);
    assert_eq!(c.crypto, d.contents[0].crypto, "SDES keys stay end to end");
    assert_eq!(c.senders, d.contents[0].senders);
    let p = peer(&a, Side::X, true);
    assert_eq!(p.rtp, Some("203.0.113.5:30000".parse().unwrap()));
    assert_eq!(p.rtcp, Some("203.0.113.5:30001".parse().unwrap()));
    assert!(relayable(&a));
    // Rendered as SDP: c= and m= carry the relay, no a=rtcp is needed for port + 1.
    let origin = sdp::SdpOrigin {
        username: "-".into(),
        session_id: 1,
        version: 1,
        address: "203.0.113.5".parse().unwrap(),
    };
    let text = sdp::to_sdp(&a, Role::Initiator, Kind::Offer, &origin, None)
        .unwrap()
        .to_string();
    assert!(text.contains("c=IN IP4 203.0.113.5"), "{text}");
    assert!(text.contains("m=audio 30000 RTP/SAVP 0 101"), "{text}");
    assert!(!text.contains("192.0.2.10 "), "{text}");
    assert!(!text.contains("a=rtcp:"), "{text}");
}
