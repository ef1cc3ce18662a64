//! Rule tables, one per MEDIA requirement.

use super::*;
use crate::media::fmtp::{params_to_sdp, sdp_to_params};
use crate::media::ice::{apply_transport_info, candidate_id, FoundationMap, Generations};
use crate::media::reason::Reason;
use crate::media::sdp::{direction, senders};
use crate::media::{jingle, MediaError};

/// fmtp parameters as written in the tables.
type Params = &'static [(&'static str, &'static str)];

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// MEDIA-6: direction is written from the SDP author's side.
#[test]
fn senders_direction_table() {
    use Role::*;
    use Senders as S;
    let table = [
        (S::Both, Initiator, "sendrecv"),
        (S::Both, Responder, "sendrecv"),
        (S::None, Initiator, "inactive"),
        (S::None, Responder, "inactive"),
        (S::Initiator, Initiator, "sendonly"),
        (S::Initiator, Responder, "recvonly"),
        (S::Responder, Initiator, "recvonly"),
        (S::Responder, Responder, "sendonly"),
    ];
    for (s, author, dir) in table {
        assert_eq!(direction(s, author), dir, "{s:?} written by {author:?}");
        assert_eq!(senders(dir, author), Some(s), "{dir} written by {author:?}");
    }
    assert_eq!(senders("sendsome", Initiator), None);
}

/// MEDIA-19, 20, 21: fmtp <-> parameters.
#[test]
fn fmtp_table() {
    let sdp_in: &[(&str, Option<&str>, Params)] = &[
        // MEDIA-20: no fmtp means events 0-15, made explicit
        ("telephone-event", None, &[("events", "0-15")]),
        (
            "telephone-event",
            Some("0-15,66,70"),
            &[("events", "0-15,66,70")],
        ),
        // MEDIA-21
        ("red", Some("0/103"), &[("pt", "0,103")]),
        ("G729", Some("annexb=yes"), &[("annexb", "yes")]),
        // known format: split on ';' only (H.264 values hold commas)
        (
            "H264",
            Some("profile-level-id=42e01f;sprop-parameter-sets=Z0IACpZTBYmI,aMljiA=="),
            &[
                ("profile-level-id", "42e01f"),
                ("sprop-parameter-sets", "Z0IACpZTBYmI,aMljiA=="),
            ],
        ),
        (
            "opus",
            Some("minptime=10; useinbandfec=1"),
            &[("minptime", "10"), ("useinbandfec", "1")],
        ),
        // MEDIA-19 unknown formats: ';', '; ', ',', ', ' and tokens without '='
        ("x-foo", Some("a=1;b=2"), &[("a", "1"), ("b", "2")]),
        ("x-foo", Some("a=1, b=2"), &[("a", "1"), ("b", "2")]),
        (
            "x-foo",
            Some("mode=30,extra"),
            &[("mode", "30"), ("", "extra")],
        ),
        ("x-foo", Some("opaque"), &[("", "opaque")]),
        ("PCMU", None, &[]),
    ];
    for (enc, raw, want) in sdp_in {
        assert_eq!(
            sdp_to_params(enc, *raw).unwrap(),
            pairs(want),
            "{enc} {raw:?}"
        );
    }
    let jingle_in: &[(&str, Params, Option<&str>)] = &[
        (
            "telephone-event",
            &[("events", "0-15,66,70")],
            Some("0-15,66,70"),
        ),
        ("red", &[("pt", "0,103")], Some("0/103")),
        (
            "opus",
            &[("minptime", "10"), ("useinbandfec", "1")],
            Some("minptime=10;useinbandfec=1"),
        ),
        ("x-foo", &[("a", "1"), ("b", "2")], Some("a=1; b=2")),
        ("x-foo", &[("", "opaque")], Some("opaque")),
        ("PCMU", &[], None),
    ];
    for (enc, params, want) in jingle_in {
        assert_eq!(
            params_to_sdp(enc, &pairs(params)).unwrap().as_deref(),
            *want,
            "{enc}"
        );
    }
    // A value that would end the SDP line is refused both ways.
    assert!(params_to_sdp("opus", &pairs(&[("x", "1\r\na=evil")])).is_err());
    assert!(params_to_sdp("opus", &pairs(&[("x=y", "1")])).is_err());
    assert!(sdp_to_params("x-foo", Some("a=\u{1}")).is_err());
}

/// MEDIA-23: SIP final failures -> Jingle reasons, and back.
#[test]
fn reason_table() {
    let from_sip = [
        (486, Reason::Busy),
        (600, Reason::Busy),
        (603, Reason::Decline),
        (487, Reason::Cancel),
        (408, Reason::Timeout),
        (480, Reason::Timeout),
        (488, Reason::IncompatibleParameters),
        (606, Reason::IncompatibleParameters),
        (404, Reason::Gone),
        (410, Reason::Gone),
        (604, Reason::Gone),
        (500, Reason::GeneralError),
        (403, Reason::GeneralError),
    ];
    for (code, r) in from_sip {
        assert_eq!(Reason::from_sip(code), r, "{code}");
    }
    let to_sip = [
        (Reason::Busy, Some(486)),
        (Reason::Decline, Some(603)),
        (Reason::UnsupportedApplications, Some(488)),
        (Reason::IncompatibleParameters, Some(488)),
        (Reason::UnsupportedTransports, Some(488)),
        (Reason::Timeout, Some(408)),
        (Reason::Success, None),
    ];
    for (r, code) in to_sip {
        assert_eq!(r.to_sip(), code, "{r:?}");
    }
    let e = Reason::Busy.to_element(Some("on the phone"));
    assert_eq!(Reason::from_element(&e), Reason::Busy);
    assert_eq!(
        Reason::from_name(Reason::UnsupportedTransports.name()),
        Some(Reason::UnsupportedTransports)
    );
    let unknown = xml_text("<reason xmlns='urn:xmpp:jingle:1'><lunch-break/></reason>");
    assert_eq!(Reason::from_element(&unknown), Reason::GeneralError);
}

/// MEDIA-11: the foundation map is bijective and stable.
#[test]
fn foundation_map_is_bijective() {
    let mut m = FoundationMap::default();
    let a = m.to_numeric("Abc+/1");
    let b = m.to_numeric("xyz");
    assert_ne!(a, b);
    assert_eq!(m.to_numeric("Abc+/1"), a);
    assert_eq!(m.to_string_form(&a), "Abc+/1");
    assert_eq!(m.to_string_form(&b), "xyz");
    assert_eq!(m.to_string_form("77"), "77");
}

/// MEDIA-12, 13: new SIP ICE credentials move the generation on; ids are unique per
/// content, generation and position.
#[test]
fn generations_follow_credential_changes() {
    let mut g = Generations::default();
    let c1 = IceCredentials {
        ufrag: "aaaa".into(),
        pwd: "p".repeat(22),
    };
    let c2 = IceCredentials {
        ufrag: "bbbb".into(),
        pwd: "p".repeat(22),
    };
    assert_eq!(g.observe("audio", &c1), 0);
    assert_eq!(g.observe("audio", &c1), 0);
    assert_eq!(g.observe("audio", &c2), 1);
    assert_eq!(g.observe("video", &c2), 0);
    assert_eq!(g.observe("audio", &c1), 2);
    let ids: std::collections::HashSet<String> = (0..3)
        .flat_map(|c| (0..2).flat_map(move |g| (0..4).map(move |n| candidate_id(c, g, n))))
        .collect();
    assert_eq!(ids.len(), 24);
}

/// MEDIA-4: a transport-info with new credentials is an ICE restart (old candidates go);
/// a repeated candidate is not added twice; an unknown content is an error.
#[test]
fn transport_info_restart_and_dedup() {
    let mut desc = jingle::read_contents(&xml("webrtc-session-initiate.xml"), Kind::Offer).unwrap();
    let info = jingle::read_transport_info(&xml("webrtc-transport-info.xml")).unwrap();
    for _ in 0..2 {
        for (n, t) in info.clone() {
            apply_transport_info(&mut desc, &n, t).unwrap();
        }
    }
    assert_eq!(desc.contents[0].transport.candidates.len(), 2);
    let (n, mut t) = info[0].clone();
    t.ice = Some(IceCredentials {
        ufrag: "newf".into(),
        pwd: "q".repeat(22),
    });
    t.candidates.truncate(1);
    apply_transport_info(&mut desc, &n, t).unwrap();
    assert_eq!(desc.contents[0].transport.candidates.len(), 1);
    assert_eq!(
        desc.contents[0].transport.ice.as_ref().unwrap().ufrag,
        "newf"
    );
    let err = apply_transport_info(&mut desc, "nope", Transport::default()).unwrap_err();
    assert!(matches!(err, MediaError::Malformed(_)));
}

fn one_line_sdp(extra: &str) -> Vec<u8> {
    format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n{extra}").into_bytes()
}

/// MEDIA-24: DTLS roles. An offer without a=setup is actpass; an answer saying actpass (or
/// nothing) is read as active, both from SDP and from Jingle.
#[test]
fn dtls_setup_roles() {
    let fp = "a=fingerprint:sha-256 AB:CD\r\n";
    let setup = |sdp: &[u8], kind| {
        read_sdp(sdp, Role::Initiator, kind).description.contents[0]
            .transport
            .fingerprint
            .clone()
            .unwrap()
            .setup
    };
    assert_eq!(setup(&one_line_sdp(fp), Kind::Offer), Setup::Actpass);
    assert_eq!(setup(&one_line_sdp(fp), Kind::Answer), Setup::Active);
    assert_eq!(
        setup(
            &one_line_sdp(&format!("{fp}a=setup:actpass\r\n")),
            Kind::Answer
        ),
        Setup::Active
    );
    assert_eq!(
        setup(
            &one_line_sdp(&format!("{fp}a=setup:passive\r\n")),
            Kind::Answer
        ),
        Setup::Passive
    );
    let j = xml("webrtc-session-initiate.xml");
    let as_answer = jingle::read_contents(&j, Kind::Answer).unwrap();
    assert_eq!(
        as_answer.contents[0]
            .transport
            .fingerprint
            .as_ref()
            .unwrap()
            .setup,
        Setup::Active
    );
}

/// MEDIA-15, 16: hold. Jingle senders on a held call become sendonly/recvonly from the
/// writer's side; an old-style c=0.0.0.0 hold from SIP is senders='none'.
#[test]
fn hold_directions() {
    let mut desc =
        jingle::read_contents(&xml("draft-m1-session-initiate.xml"), Kind::Offer).unwrap();
    desc.contents[0].senders = Senders::Initiator;
    assert!(sdp_text(&desc, Role::Initiator, Kind::Offer, None).contains("a=sendonly"));
    assert!(sdp_text(&desc, Role::Responder, Kind::Answer, None).contains("a=recvonly"));
    let held = read_sdp(&one_line_sdp("").replace_c0(), Role::Initiator, Kind::Offer);
    assert_eq!(held.description.contents[0].senders, Senders::None);
    let inactive = read_sdp(
        &one_line_sdp("a=inactive\r\n"),
        Role::Initiator,
        Kind::Offer,
    );
    assert_eq!(inactive.description.contents[0].senders, Senders::None);
    let session_level = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\nm=audio 5000 RTP/AVP 0\r\n";
    assert_eq!(
        read_sdp(session_level, Role::Responder, Kind::Answer)
            .description
            .contents[0]
            .senders,
        Senders::Responder
    );
    let overridden = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendrecv\r\nm=audio 5000 RTP/AVP 0\r\na=recvonly\r\n";
    assert_eq!(
        read_sdp(overridden, Role::Initiator, Kind::Offer)
            .description
            .contents[0]
            .senders,
        Senders::Responder
    );
}

trait C0 {
    fn replace_c0(self) -> Vec<u8>;
}
impl C0 for Vec<u8> {
    fn replace_c0(self) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0")
            .into_bytes()
    }
}

/// RFC 3551 static payload types without a=rtpmap get their names (Jingle needs them).
#[test]
fn static_payload_types_get_names() {
    let read = read_sdp(&one_line_sdp(""), Role::Initiator, Kind::Offer);
    let p = &read.description.contents[0].payloads[0];
    assert_eq!((p.name.as_str(), p.clockrate), ("PCMU", 8000));
}

/// The errors carry their renderings: 488 on SIP; bad-request or a terminate reason on
/// Jingle.
#[test]
fn error_renderings() {
    use crate::media::reason::Reason;
    let m = MediaError::Malformed("x".into());
    assert_eq!(m.sip_status().code, 488);
    assert!(m.is_malformed());
    assert_eq!(m.xmpp_error().condition_name(), "bad-request");
    let u = MediaError::Unsupported("x".into());
    assert!(!u.is_malformed());
    assert_eq!(u.jingle_reason(), Reason::UnsupportedApplications);
    assert_eq!(
        MediaError::Transport("x".into()).jingle_reason(),
        Reason::UnsupportedTransports
    );
    assert_eq!(MediaError::TooLarge("x").sip_status().code, 488);
}
