//! The relay's public address from a STUN server (RFC 8489 §6 Binding, §14.2 XOR-MAPPED-ADDRESS):
//! `[media] stun_server` makes stox ask where its relay address is seen from outside, and write
//! that address into SDP and Jingle instead of the one it binds. That is what
//! `media.public_address` says by hand, found out instead: a cloud VM behind a 1:1 NAT whose
//! public IP changes with a restart or a move.
//!
//! Pure: the request bytes and the reading of a response. The exchange (retransmissions per
//! §6.2.1, refresh) lives in `crate::core::stun_watch`.
//!
//! str0m has a STUN codec, but its parser refuses a Binding success without
//! MESSAGE-INTEGRITY (right for ICE's short-term credentials, wrong for a public STUN server,
//! which does not sign), so the dozen lines a Binding needs are written here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// RFC 8489 §5: the magic cookie, in network order.
const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const ERROR_CODE: u16 = 0x0009;

/// A Binding request with this transaction id and no attributes (§6.1: a client that wants
/// only its mapped address needs none).
pub fn binding_request(tid: &[u8; 12]) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    b[4..8].copy_from_slice(&MAGIC);
    b[8..].copy_from_slice(tid);
    b
}

/// `host[:port]` with the STUN default port.
pub fn target(server: &str) -> Result<(String, u16), String> {
    let s = server.trim();
    let (host, port) = match s.rsplit_once(':') {
        // An IPv6 literal without a port has colons but no brackets.
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{s:?}: the port is not a number from 1 to 65535"))?;
            (h, port)
        }
        _ => (s, 3478),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{s:?}: expected host[:port]"));
    }
    Ok((host.to_owned(), port))
}

/// What a datagram said about our Binding request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A success response: where the server saw the request come from.
    Mapped(SocketAddr),
    /// An error response (§14.8): code and reason phrase.
    Error(u16, String),
}

/// Read a datagram as the answer to the request with transaction id `tid`. `None` for
/// anything else: not STUN, another transaction, malformed, or a success without an address
/// (all of which the exchange ignores, as §6.3 says to discard what does not match).
pub fn parse_response(buf: &[u8], tid: &[u8; 12]) -> Option<Reply> {
    if buf.len() < 20 || buf[4..8] != MAGIC || buf[8..20] != tid[..] {
        return None;
    }
    let typ = u16::from_be_bytes([buf[0], buf[1]]);
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if len % 4 != 0 || buf.len() != 20 + len {
        return None;
    }
    let (mut xor, mut plain, mut error) = (None, None, None);
    let mut at = &buf[20..];
    while at.len() >= 4 {
        let kind = u16::from_be_bytes([at[0], at[1]]);
        let n = usize::from(u16::from_be_bytes([at[2], at[3]]));
        let value = at.get(4..4 + n)?;
        match kind {
            XOR_MAPPED_ADDRESS => xor = address(value, Some(tid)),
            MAPPED_ADDRESS => plain = address(value, None),
            ERROR_CODE if value.len() >= 4 => {
                let code = u16::from(value[2] & 0x07) * 100 + u16::from(value[3]);
                let reason = String::from_utf8_lossy(&value[4..]).into_owned();
                error = Some(Reply::Error(code, reason));
            }
            _ => {}
        }
        // Attributes are padded to four bytes (§14).
        let step = 4 + n.div_ceil(4) * 4;
        at = at.get(step..).unwrap_or_default();
    }
    match typ {
        // §14.1: MAPPED-ADDRESS is there for RFC 3489 servers; XOR-MAPPED wins when both are.
        BINDING_SUCCESS => xor.or(plain).map(Reply::Mapped),
        BINDING_ERROR => Some(error.unwrap_or(Reply::Error(0, String::new()))),
        _ => None,
    }
}

/// A (XOR-)MAPPED-ADDRESS value (§14.1, §14.2); `tid` given for the XOR form.
fn address(v: &[u8], tid: Option<&[u8; 12]>) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let mask = |i: usize| -> u8 {
        match tid {
            None => 0,
            Some(t) => MAGIC.get(i).copied().unwrap_or_else(|| t[i - 4]),
        }
    };
    let port = u16::from_be_bytes([v[2] ^ mask(0), v[3] ^ mask(1)]);
    let ip = match (v[1], v.len()) {
        (0x01, 8) => {
            let b: Vec<u8> = (0..4).map(|i| v[4 + i] ^ mask(i)).collect();
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        (0x02, 20) => {
            let mut b = [0u8; 16];
            for (i, x) in b.iter_mut().enumerate() {
                *x = v[4 + i] ^ mask(i);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.2 and §2.3: the transaction id of the sample responses.
    const TID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    /// RFC 5769 §2.2, "Sample IPv4 Response", byte for byte (SOFTWARE, XOR-MAPPED-ADDRESS,
    /// MESSAGE-INTEGRITY, FINGERPRINT).
    const IPV4_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    #[test]
    fn rfc5769_ipv4_response_gives_its_mapped_address() {
        assert_eq!(
            parse_response(&IPV4_RESPONSE, &TID),
            Some(Reply::Mapped("192.0.2.1:32853".parse().unwrap()))
        );
    }

    #[test]
    fn rfc5769_ipv6_xor_mapped_address() {
        // §2.3's header, SOFTWARE and XOR-MAPPED-ADDRESS (its integrity and fingerprint are
        // left off: this parser checks neither, a public STUN server sends no integrity).
        let mut r = vec![0x01, 0x01, 0x00, 0x28, 0x21, 0x12, 0xa4, 0x42];
        r.extend_from_slice(&TID);
        r.extend_from_slice(&[
            0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f,
            0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
            0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        ]);
        assert_eq!(
            parse_response(&r, &TID),
            Some(Reply::Mapped(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            ))
        );
    }

    #[test]
    fn another_transaction_or_a_broken_datagram_is_not_an_answer() {
        let mut other = TID;
        other[11] ^= 1;
        assert_eq!(parse_response(&IPV4_RESPONSE, &other), None);
        // Cut anywhere: the length no longer matches, or an attribute runs past the end.
        for n in 0..IPV4_RESPONSE.len() {
            assert_eq!(
                parse_response(&IPV4_RESPONSE[..n], &TID),
                None,
                "cut at {n}"
            );
        }
        let mut bad_cookie = IPV4_RESPONSE;
        bad_cookie[4] = 0;
        assert_eq!(parse_response(&bad_cookie, &TID), None);
        // A request (our own, reflected) is not a response.
        assert_eq!(parse_response(&binding_request(&TID), &TID), None);
        // An attribute length past the end of the message.
        let mut overrun = IPV4_RESPONSE;
        overrun[23] = 0xff;
        assert_eq!(parse_response(&overrun, &TID), None);
    }

    #[test]
    fn plain_mapped_address_of_an_old_server_and_an_error_response() {
        // An RFC 3489 server: MAPPED-ADDRESS only, not XORed.
        let mut r = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        r.extend_from_slice(&TID);
        r.extend_from_slice(&[
            0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x13, 0x88, 198, 51, 100, 7,
        ]);
        assert_eq!(
            parse_response(&r, &TID),
            Some(Reply::Mapped("198.51.100.7:5000".parse().unwrap()))
        );
        // 420 Unknown Attribute (class 4, number 20).
        let mut e = vec![0x01, 0x11, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42];
        e.extend_from_slice(&TID);
        e.extend_from_slice(&[0x00, 0x09, 0x00, 0x10, 0, 0, 4, 20]);
        e.extend_from_slice(b"Unknown Attr");
        assert_eq!(
            parse_response(&e, &TID),
            Some(Reply::Error(420, "Unknown Attr".into()))
        );
        // A success without any address tells us nothing.
        let mut empty = vec![0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        empty.extend_from_slice(&TID);
        assert_eq!(parse_response(&empty, &TID), None);
    }

    #[test]
    fn server_setting_forms() {
        assert_eq!(
            target("stun.example.org").unwrap(),
            ("stun.example.org".into(), 3478)
        );
        assert_eq!(
            target("stun.example.org:19302").unwrap(),
            ("stun.example.org".into(), 19302)
        );
        assert_eq!(
            target("192.0.2.1:3479").unwrap(),
            ("192.0.2.1".into(), 3479)
        );
        assert_eq!(
            target("[2001:db8::1]:3478").unwrap(),
            ("2001:db8::1".into(), 3478)
        );
        assert_eq!(target("2001:db8::1").unwrap(), ("2001:db8::1".into(), 3478));
        for bad in ["", "host:0", "host:x", "host:70000", ":3478", "a b:1"] {
            assert!(target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_is_a_bare_binding_with_the_cookie_and_id() {
        let r = binding_request(&TID);
        assert_eq!(&r[..8], &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&r[8..], &TID);
    }
}
