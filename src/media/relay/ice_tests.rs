//! Two ICE legs wired to each other in memory: ICE and DTLS come up from the values a Jingle
//! transport carries, and plain RTP put into one comes out of the other with its fields.

use super::*;

fn pcmu() -> Vec<PayloadType> {
    vec![PayloadType::pcmu()]
}

fn local(n: u8) -> LocalIce {
    LocalIce {
        ufrag: format!("ufr{n}"),
        pwd: format!("password-of-leg-{n}-0123456789"),
        fingerprint: identity().expect("a DTLS identity").fingerprint.clone(),
    }
}

fn remote_of(me: &LocalIce, at: SocketAddr, dtls_client: bool, controlling: bool) -> RemoteIce {
    RemoteIce {
        ufrag: me.ufrag.clone(),
        pwd: me.pwd.clone(),
        fingerprint: me.fingerprint.clone(),
        candidates: vec![at],
        dtls_client,
        controlling,
    }
}

/// Deliver every transmit to the leg it is addressed to until nothing moves; the plain RTP
/// that came out of each leg is returned.
fn pump(
    a: &mut IceLeg,
    b: &mut IceLeg,
    mut from_a: Vec<Out>,
    mut from_b: Vec<Out>,
    now: &mut Instant,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut rtp_a, mut rtp_b) = (Vec::new(), Vec::new());
    for _ in 0..400 {
        let mut next_a = Vec::new();
        let mut next_b = Vec::new();
        for o in from_a.drain(..) {
            match o {
                Out::Transmit(dst, bytes) if dst == b.local => {
                    b.receive(*now, a.local, &bytes, &mut next_b)
                }
                Out::Transmit(..) => {}
                Out::Rtp(p) => rtp_a.push(p),
            }
        }
        for o in from_b.drain(..) {
            match o {
                Out::Transmit(dst, bytes) if dst == a.local => {
                    a.receive(*now, b.local, &bytes, &mut next_a)
                }
                Out::Transmit(..) => {}
                Out::Rtp(p) => rtp_b.push(p),
            }
        }
        *now += std::time::Duration::from_millis(5);
        a.timeout(*now, &mut next_a);
        b.timeout(*now, &mut next_b);
        from_a = next_a;
        from_b = next_b;
        if a.connected() && b.connected() && from_a.is_empty() && from_b.is_empty() {
            break;
        }
    }
    for o in from_b {
        if let Out::Rtp(p) = o {
            rtp_b.push(p);
        }
    }
    (rtp_a, rtp_b)
}

#[test]
fn ice_and_dtls_come_up_and_rtp_crosses_with_its_fields() {
    let mut now = Instant::now();
    let (la, lb): (SocketAddr, SocketAddr) = (
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:40002".parse().unwrap(),
    );
    let (ma, mb) = (local(1), local(2));
    // A is the relay answering a client's actpass offer: controlled, DTLS client.
    let mut a = IceLeg::new(now, la, &ma, &remote_of(&mb, lb, true, false), &pcmu()).unwrap();
    let mut b = IceLeg::new(now, lb, &mb, &remote_of(&ma, la, false, true), &pcmu()).unwrap();
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    a.timeout(now, &mut oa);
    b.timeout(now, &mut ob);
    pump(&mut a, &mut b, oa, ob, &mut now);
    assert!(a.connected() && b.connected(), "ICE + DTLS did not come up");

    // A phone's packet (with a CSRC, which the relay drops) goes into A and out of B.
    let mut phone = build_rtp(true, 0, 65535, 160_000, 0xdead_beef, &[0x55; 160]);
    phone[0] |= 1;
    phone.splice(12..12, [0, 0, 0, 7]);
    let mut oa = Vec::new();
    assert!(a.send_rtp(now, &phone, &mut oa));
    let next = build_rtp(false, 0, 0, 160_160, 0xdead_beef, &[0x66; 160]);
    assert!(a.send_rtp(now, &next, &mut oa), "the sequence number wraps");
    assert!(
        !a.send_rtp(now, &build_rtp(false, 8, 1, 0, 1, &[0; 160]), &mut oa),
        "PT 8 was not negotiated"
    );
    let (_, got) = pump(&mut a, &mut b, oa, Vec::new(), &mut now);
    assert_eq!(got.len(), 2, "both packets came out of the far leg");
    let f = parse_rtp(&got[0]).unwrap();
    assert_eq!(
        (f.marker, f.pt, f.seq, f.timestamp),
        (true, 0, 65535, 160_000)
    );
    assert_eq!(&got[0][f.offset..], &[0x55; 160][..]);
    let g = parse_rtp(&got[1]).unwrap();
    assert_eq!((g.seq, g.timestamp), (0, 160_160));
    assert_eq!(f.ssrc, g.ssrc, "one SSRC toward the client");
}

#[test]
fn rtp_headers_are_read_and_rtcp_is_not_rtp() {
    let p = build_rtp(true, 96, 7, 9, 11, b"abc");
    assert_eq!(
        parse_rtp(&p),
        Some(RtpFields {
            marker: true,
            pt: 96,
            seq: 7,
            timestamp: 9,
            ssrc: 11,
            offset: 12
        })
    );
    // A header extension of one word.
    let mut x = build_rtp(false, 0, 1, 2, 3, &[0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9]);
    x[0] |= 0x10;
    assert_eq!(parse_rtp(&x).unwrap().offset, 20);
    assert_eq!(
        parse_rtp(&[0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]),
        None,
        "RTCP SR"
    );
    assert_eq!(
        parse_rtp(&[0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        None,
        "version 1"
    );
    let mut short = build_rtp(false, 0, 1, 2, 3, &[]);
    short[0] |= 0x0f;
    assert_eq!(parse_rtp(&short), None, "15 CSRCs announced, none there");
}
