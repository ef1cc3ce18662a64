//! Percent-encoding for SIP-side addresses: RFC 3986 §2.1 (`%HH` triplets), with the character sets
//! of the RFC 3261 §25.1 `user` and `paramchar` productions and the RFC 7247 §6.5 step 5 rule for
//! `im:`/`pres:` local parts.
//!
//! Encoders always emit uppercase hex (RFC 3986 §2.1 says producers SHOULD) and work on UTF-8 bytes,
//! so every non-ASCII character becomes a run of `%HH` triplets (RFC 7247 §6.5 step 5).

use super::AddrError;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes every `%HH` triplet (hex digits in either case) into its octet.
///
/// Returns the raw octets: the caller decides whether they must be UTF-8 (for a SIP user part they
/// must, RFC 7247 §6.4 step 4). A `%` that is not followed by two hex digits is an error rather than
/// being passed through, because guessing would make two different URIs map to the same JID.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, AddrError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    return Err(AddrError::Malformed(format!(
                        "invalid percent-escape at byte {i} of `{s}`"
                    )))
                }
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes a raw (decoded) SIP user part for use in a `sip:`/`sips:` URI.
///
/// Keeps exactly the characters RFC 3261 allows unescaped in `user` (alphanumerics, the `mark`
/// characters `- _ . ! ~ * ' ( )` and the `user-unreserved` characters `& = + $ , ; ? /`) and encodes
/// every other byte, including `%`, `#`, `@`, `:`, space and all non-ASCII bytes. This is a superset
/// of RFC 7247 §6.5 step 5: the RFC's short list would leave characters such as `@` or `:` (which
/// XEP-0106 unescaping can produce) unescaped and the URI unparsable (ADDR-5 IMPL note).
pub fn percent_encode_user(s: &str) -> String {
    encode_keeping(s, |b| is_unreserved(b) || b"&=+$,;?/".contains(&b))
}

/// Percent-encodes a URI parameter value such as a GRUU `gr` value (RFC 5627, ADDR-8).
///
/// Keeps the RFC 3261 `paramchar` set (unreserved plus `param-unreserved` `[ ] / : & + $`) and
/// encodes everything else, so an arbitrary XMPP resourcepart becomes a valid ASCII parameter.
pub fn percent_encode_param(s: &str) -> String {
    encode_keeping(s, |b| is_unreserved(b) || b"[]/:&+$".contains(&b))
}

/// Percent-encodes a local part for an `im:`/`pres:` URI (RFC 7247 §6.5 step 5).
///
/// Keeps the RFC 5322 `atext` characters and `.`, encodes the rest (`( ) , ; [ \ ]`, `%`, `@`, `:`,
/// `"`, `<`, `>`, space, non-ASCII). The RFC lists `.` among the bytes to encode, but `.` is an RFC 3986
/// unreserved character whose encoded and unencoded forms are equivalent, and dot-atom local parts
/// (`john.doe`) are the norm, so it is left readable.
pub(crate) fn percent_encode_im_user(s: &str) -> String {
    encode_keeping(s, |b| {
        b.is_ascii_alphanumeric() || b"!#$&'*+-/=?^_`{|}~.".contains(&b)
    })
}

/// RFC 3261 `unreserved` = alphanum / mark.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn encode_keeping(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addr_3_decode_mixed_case_hex() {
        assert_eq!(percent_decode("f%C3%bc").unwrap(), "fü".as_bytes());
        assert_eq!(percent_decode("a%2fb%2Fc").unwrap(), b"a/b/c");
        assert_eq!(percent_decode("").unwrap(), b"");
        assert_eq!(percent_decode("plain").unwrap(), b"plain");
    }

    #[test]
    fn addr_3_decode_rejects_bad_escapes() {
        for bad in ["%", "%Z", "%ZZ", "a%4", "%G0", "%%41", "x%"] {
            assert!(
                matches!(percent_decode(bad), Err(AddrError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn addr_3_decode_may_yield_invalid_utf8() {
        // The decoder returns octets; rejecting invalid UTF-8 is the URI parser's job (ADDR-4 step 4).
        assert_eq!(percent_decode("%FF").unwrap(), vec![0xff]);
    }

    #[test]
    fn addr_5_user_encoding_keeps_sip_user_set() {
        let kept = "azAZ09-_.!~*'()&=+$,;?/";
        assert_eq!(percent_encode_user(kept), kept);
    }

    #[test]
    fn addr_5_user_encoding_escapes_rfc7247_list_and_impl_extras() {
        // RFC 7247 §6.5 step 5 list: # % [ \ ] ^ ` { | }
        assert_eq!(
            percent_encode_user("#%[\\]^`{|}"),
            "%23%25%5B%5C%5D%5E%60%7B%7C%7D"
        );
        // ADDR-5 IMPL extras: space " : < > @
        assert_eq!(percent_encode_user(" \":<>@"), "%20%22%3A%3C%3E%40");
        assert_eq!(percent_encode_user("tschüss"), "tsch%C3%BCss");
        assert_eq!(percent_encode_user("m&m"), "m&m");
        assert_eq!(percent_encode_user("o'malley"), "o'malley");
    }

    #[test]
    fn addr_8_param_encoding() {
        assert_eq!(percent_encode_param("Küche"), "K%C3%BCche");
        assert_eq!(percent_encode_param("qux"), "qux");
        assert_eq!(percent_encode_param("[a]/b:c&d+e$"), "[a]/b:c&d+e$");
        assert_eq!(
            percent_encode_param("a;b=c?d@e f,g%"),
            "a%3Bb%3Dc%3Fd%40e%20f%2Cg%25"
        );
    }

    #[test]
    fn addr_5_im_encoding() {
        assert_eq!(percent_encode_im_user("john.doe"), "john.doe");
        assert_eq!(
            percent_encode_im_user("(a),b;[c\\]"),
            "%28a%29%2Cb%3B%5Bc%5C%5D"
        );
        assert_eq!(percent_encode_im_user("ü@ %"), "%C3%BC%40%20%25");
    }

    proptest! {
        #[test]
        fn addr_3_prop_user_encode_decode_identity(s in any::<String>()) {
            let enc = percent_encode_user(&s);
            prop_assert!(enc.is_ascii());
            prop_assert_eq!(percent_decode(&enc).unwrap(), s.as_bytes());
        }

        #[test]
        fn addr_8_prop_param_encode_decode_identity(s in any::<String>()) {
            let enc = percent_encode_param(&s);
            prop_assert!(enc.is_ascii());
            prop_assert!(!enc.contains([';', '?', '@', '=', ' ']));
            prop_assert_eq!(percent_decode(&enc).unwrap(), s.as_bytes());
        }

        #[test]
        fn addr_5_prop_im_encode_decode_identity(s in any::<String>()) {
            prop_assert_eq!(percent_decode(&percent_encode_im_user(&s)).unwrap(), s.as_bytes());
        }

        #[test]
        fn addr_3_prop_decode_never_panics(s in any::<String>()) {
            let _ = percent_decode(&s);
        }
    }
}
