//! Parsing and printing of the SIP-side identities of RFC 7247 §6.1 (ADDR-1): `sip:`/`sips:`
//! (RFC 3261 §19.1, §25.1), `im:` (RFC 3860) and `pres:` (RFC 3859) URIs, including the GRUU `gr`
//! URI parameter (RFC 5627 §3.1, RFC 7247 §6.3).
//!
//! The parser is deliberately tolerant about what it throws away (display names, header
//! parameters after `>`, URI parameters other than `gr`, URI headers, a password) and strict about
//! what becomes part of an identity (user part escapes and encoding, host, port), because only the
//! latter can make two different SIP users map to one JID.

use std::fmt;
use std::net::Ipv6Addr;

use super::percent::{
    percent_decode, percent_encode_im_user, percent_encode_param, percent_encode_user,
};
use super::{AddrError, Scheme, SipAddr};

impl Scheme {
    /// The scheme name as written in a URI, without the colon (`"sip"`, `"sips"`, `"im"`, `"pres"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Im => "im",
            Scheme::Pres => "pres",
        }
    }

    /// Recognises a scheme name case-insensitively (RFC 3986 §3.1).
    pub(crate) fn from_name(name: &str) -> Option<Scheme> {
        [Scheme::Sip, Scheme::Sips, Scheme::Im, Scheme::Pres]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl SipAddr {
    /// Parses a `sip:`, `sips:`, `im:` or `pres:` URI (ADDR-1).
    ///
    /// Accepts a bare URI, `<uri>` and the name-addr form `"Bob" <sip:bob@x>;tag=1` (display name
    /// and header parameters are ignored). URI parameters other than `gr` and URI headers
    /// (`?subject=..`) are accepted and dropped; a `gr` without a value is ignored, and so is `gr`
    /// on `im:`/`pres:` URIs, which have no GRUUs (RFC 7247 §6.3). The user part is
    /// percent-decoded and must be UTF-8; the host is lowercased.
    ///
    /// Errors: [`AddrError::UnsupportedScheme`] for any other scheme (`tel:`, `http:`),
    /// [`AddrError::InvalidUtf8`] when the decoded user or `gr` is not UTF-8, and
    /// [`AddrError::Malformed`] for a missing scheme, bad `%`-escapes, an empty user before `@`, an
    /// empty or invalid host or a bad port.
    pub fn parse(s: &str) -> Result<SipAddr, AddrError> {
        let uri = extract_uri(s)?;
        let (scheme_name, rest) = uri
            .split_once(':')
            .ok_or_else(|| AddrError::Malformed(format!("`{uri}` has no URI scheme")))?;
        let scheme = match Scheme::from_name(scheme_name) {
            Some(scheme) => scheme,
            None if is_scheme_token(scheme_name) => {
                return Err(AddrError::UnsupportedScheme(
                    scheme_name.to_ascii_lowercase(),
                ))
            }
            None => return Err(AddrError::Malformed(format!("`{uri}` has no URI scheme"))),
        };

        // RFC 3261 allows `;` and `?` inside the user part but never an unescaped `@` in the
        // host, parameters or headers, so the first `@` is the userinfo delimiter (RFC 7247 §6.4
        // step 2).
        let (userinfo, after_user) = match rest.split_once('@') {
            Some((userinfo, after)) => (Some(userinfo), after),
            None => (None, rest),
        };
        let user = userinfo.map(decode_user).transpose()?;

        let (hostport, params) = match after_user.find([';', '?']) {
            Some(i) => (&after_user[..i], &after_user[i..]),
            None => (after_user, ""),
        };
        let (host, port) = parse_hostport(hostport)?;
        // RFC 7247 §6.3 and §6.5 step 8 define `gr` (RFC 5627) only for sip:/sips:, and
        // `to_uri` prints it only there; kept for im:/pres: it would turn into a resource that
        // maps back as a sip: GRUU (F1 in FUZZING.md).
        let gr = match scheme {
            Scheme::Sip | Scheme::Sips => find_gr(params)?,
            Scheme::Im | Scheme::Pres => None,
        };
        Ok(SipAddr {
            scheme,
            user,
            host,
            port,
            gr,
        })
    }

    /// The canonical URI text: `scheme:user@host[:port][;gr=..]`.
    ///
    /// The user part is percent-encoded with [`percent_encode_user`] (for `im:`/`pres:` with the
    /// RFC 7247 §6.5 step 5 `im` rule instead), the `gr` value with [`percent_encode_param`]; hex
    /// is uppercase. `gr` is only emitted for `sip:`/`sips:`, as RFC 7247 §6.5 step 8 defines it
    /// only for those schemes.
    pub fn to_uri(&self) -> String {
        let mut uri = self.aor();
        if let Some(port) = self.port {
            uri.push(':');
            uri.push_str(&port.to_string());
        }
        if let (Some(gr), Scheme::Sip | Scheme::Sips) = (&self.gr, self.scheme) {
            uri.push_str(";gr=");
            uri.push_str(&percent_encode_param(gr));
        }
        uri
    }

    /// The address-of-record: like [`SipAddr::to_uri`] but without port and `gr` parameter.
    pub fn aor(&self) -> String {
        let mut uri = String::from(self.scheme.as_str());
        uri.push(':');
        if let Some(user) = &self.user {
            match self.scheme {
                Scheme::Sip | Scheme::Sips => uri.push_str(&percent_encode_user(user)),
                Scheme::Im | Scheme::Pres => uri.push_str(&percent_encode_im_user(user)),
            }
            uri.push('@');
        }
        uri.push_str(&self.host.to_ascii_lowercase());
        uri
    }
}

impl fmt::Display for SipAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// Strips display name, angle brackets and header parameters, leaving the bare URI text.
fn extract_uri(s: &str) -> Result<&str, AddrError> {
    let s = s.trim();
    // A quoted display name may itself contain `<`, so skip it before looking for the bracket.
    let search_from = if s.starts_with('"') {
        closing_quote(s)
            .map(|i| i + 1)
            .ok_or_else(|| AddrError::Malformed("unterminated quoted display name".into()))?
    } else {
        0
    };
    let tail = &s[search_from..];
    let uri = match tail.find('<') {
        Some(open) => {
            let inner = &tail[open + 1..];
            let close = inner
                .find('>')
                .ok_or_else(|| AddrError::Malformed(format!("missing `>` in `{s}`")))?;
            &inner[..close]
        }
        None if search_from > 0 => {
            return Err(AddrError::Malformed(format!(
                "display name without `<uri>` in `{s}`"
            )))
        }
        None => tail,
    };
    let uri = uri.trim();
    if uri.is_empty() {
        return Err(AddrError::Malformed("empty address".into()));
    }
    Ok(uri)
}

/// Byte index of the `"` closing the quoted string that starts at byte 0 (RFC 3261 `quoted-pair`
/// aware).
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// RFC 3986 §3.1 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
pub(crate) fn is_scheme_token(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

fn decode_user(userinfo: &str) -> Result<String, AddrError> {
    // `user:password` (RFC 3261 §19.1.1): the password is not part of the identity.
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    if user.is_empty() {
        return Err(AddrError::Malformed("empty user part before `@`".into()));
    }
    if user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AddrError::Malformed(format!(
            "unescaped whitespace or control character in user part `{user}`"
        )));
    }
    String::from_utf8(percent_decode(user)?).map_err(|_| AddrError::InvalidUtf8)
}

/// Parses `host[:port]` as found in a SIP URI or in an escaped foreign AOR (ADDR-11).
///
/// Hosts are hostnames (ASCII letters, digits, `-`, `.`), IPv4 addresses or bracketed IPv6
/// references, returned lowercased. U-labels are refused because SIP URIs cannot carry them
/// (ADDR-10).
pub(crate) fn parse_hostport(s: &str) -> Result<(String, Option<u16>), AddrError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (inner, after) = v6
            .split_once(']')
            .ok_or_else(|| AddrError::Malformed(format!("unterminated IPv6 reference `{s}`")))?;
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(AddrError::Malformed(format!(
                "invalid IPv6 address `{inner}`"
            )));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                AddrError::Malformed(format!("unexpected text after IPv6 reference in `{s}`"))
            })?),
        };
        (&s[..inner.len() + 2], port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        if host.is_empty() {
            return Err(AddrError::Malformed("empty host".into()));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(AddrError::Malformed(format!("invalid host `{host}`")));
        }
        (host, port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(p: &str) -> Result<u16, AddrError> {
    // u16::from_str would accept a leading `+`, which is not a SIP port.
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::Malformed(format!("invalid port `{p}`")));
    }
    p.parse()
        .map_err(|_| AddrError::Malformed(format!("port `{p}` out of range")))
}

/// The decoded value of the first `gr` URI parameter in `;a=b;gr=x?headers`, if it has a value.
fn find_gr(params: &str) -> Result<Option<String>, AddrError> {
    let params = params.split('?').next().unwrap_or("");
    for param in params.split(';') {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (param, None),
        };
        if !name.trim().eq_ignore_ascii_case("gr") {
            continue;
        }
        // RFC 5627 allows a bare `;gr` (in Contact, asking for a GRUU); it names no instance.
        match value.map(str::trim) {
            None | Some("") => continue,
            Some(v) => {
                let bytes = percent_decode(v)?;
                return String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| AddrError::InvalidUtf8);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sip(user: Option<&str>, host: &str, port: Option<u16>, gr: Option<&str>) -> SipAddr {
        SipAddr {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            gr: gr.map(str::to_owned),
        }
    }

    #[test]
    fn addr_1_accepts_four_schemes() {
        for (text, scheme) in [
            ("sip:a@b.example", Scheme::Sip),
            ("sips:a@b.example", Scheme::Sips),
            ("im:a@b.example", Scheme::Im),
            ("pres:a@b.example", Scheme::Pres),
            ("SIP:a@b.example", Scheme::Sip),
        ] {
            assert_eq!(SipAddr::parse(text).unwrap().scheme, scheme, "{text}");
        }
    }

    #[test]
    fn addr_1_rejects_other_schemes() {
        assert_eq!(
            SipAddr::parse("tel:+123"),
            Err(AddrError::UnsupportedScheme("tel".into()))
        );
        assert_eq!(
            SipAddr::parse("http://x"),
            Err(AddrError::UnsupportedScheme("http".into()))
        );
        assert_eq!(
            SipAddr::parse("<xmpp:a@b>"),
            Err(AddrError::UnsupportedScheme("xmpp".into()))
        );
    }

    #[test]
    fn addr_1_name_addr_forms() {
        let want = sip(Some("bob"), "x.example", None, None);
        for text in [
            "sip:bob@x.example",
            "<sip:bob@x.example>",
            "  <sip:bob@X.Example>;tag=abc  ",
            "\"Bob\" <sip:bob@x.example>",
            "\"B<o>b \\\" q\" <sip:bob@x.example>;tag=1",
            "Bob <sip:bob@x.example;transport=tcp?subject=hi>",
            "sip:bob:secret@x.example",
        ] {
            assert_eq!(SipAddr::parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn addr_1_host_port_ipv6() {
        assert_eq!(
            SipAddr::parse("sip:bob@10.0.0.1:5080").unwrap(),
            sip(Some("bob"), "10.0.0.1", Some(5080), None)
        );
        assert_eq!(
            SipAddr::parse("sip:bob@[2001:DB8::1]:5061;transport=tls").unwrap(),
            sip(Some("bob"), "[2001:db8::1]", Some(5061), None)
        );
        assert_eq!(
            SipAddr::parse("sip:example.net").unwrap(),
            sip(None, "example.net", None, None)
        );
    }

    #[test]
    fn addr_8_gr_parameter() {
        let a = SipAddr::parse("sip:foo@sip.example;gr=bar").unwrap();
        assert_eq!(a.gr.as_deref(), Some("bar"));
        let a = SipAddr::parse("<sip:a@b.example;lr;GR=K%C3%BCche;transport=udp>").unwrap();
        assert_eq!(a.gr.as_deref(), Some("Küche"));
        for no_gr in [
            "sip:a@b.example;gr",
            "sip:a@b.example;gr=",
            "sip:a@b.example?gr=x",
        ] {
            assert_eq!(SipAddr::parse(no_gr).unwrap().gr, None, "{no_gr}");
        }
        assert_eq!(
            SipAddr::parse("sip:a@b.example;gr=%FF"),
            Err(AddrError::InvalidUtf8)
        );
        assert!(matches!(
            SipAddr::parse("sip:a@b.example;gr=%G1"),
            Err(AddrError::Malformed(_))
        ));
    }

    #[test]
    fn addr_4_user_is_percent_decoded() {
        assert_eq!(
            SipAddr::parse("sip:f%C3%BC@sip.example")
                .unwrap()
                .user
                .as_deref(),
            Some("fü")
        );
        assert_eq!(
            SipAddr::parse("sip:a%2fb@x.example")
                .unwrap()
                .user
                .as_deref(),
            Some("a/b")
        );
        assert_eq!(
            SipAddr::parse("sip:a;b?c@x.example")
                .unwrap()
                .user
                .as_deref(),
            Some("a;b?c")
        );
    }

    #[test]
    fn addr_4_error_cases() {
        assert!(matches!(
            SipAddr::parse("sip:%ZZ@x"),
            Err(AddrError::Malformed(_))
        ));
        assert_eq!(SipAddr::parse("sip:%FF@x"), Err(AddrError::InvalidUtf8));
        for bad in [
            "sip:@x",
            "sip:",
            "sip:a@",
            "garbage",
            "",
            "   ",
            "<>",
            "<sip:a@b",
            "\"unterminated <sip:a@b>",
            "\"Bob\" sip:a@b",
            "sip:a@b:",
            "sip:a@b:99999",
            "sip:a@b:+5",
            "sip:a@b:x",
            "sip:a@[::1",
            "sip:a@[zz]",
            "sip:a@[::1]x",
            "sip:a@ex ample",
            "sip:a@bü.example",
            "sip:a b@x",
            "sip:a@b%41",
            "sip://x",
        ] {
            assert!(
                matches!(SipAddr::parse(bad), Err(AddrError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn addr_5_to_uri_and_aor() {
        let a = sip(Some("tschüss"), "example.com", Some(5060), Some("Küche"));
        assert_eq!(
            a.to_uri(),
            "sip:tsch%C3%BCss@example.com:5060;gr=K%C3%BCche"
        );
        assert_eq!(a.to_string(), a.to_uri());
        assert_eq!(a.aor(), "sip:tsch%C3%BCss@example.com");
        assert_eq!(
            sip(None, "example.net", None, None).to_uri(),
            "sip:example.net"
        );
        assert_eq!(
            sip(Some("a@b: c#%"), "x.example", None, None).to_uri(),
            "sip:a%40b%3A%20c%23%25@x.example"
        );
        let im = SipAddr {
            scheme: Scheme::Im,
            ..sip(Some("john.doe(x)"), "x.example", None, Some("r"))
        };
        assert_eq!(im.to_uri(), "im:john.doe%28x%29@x.example");
    }

    fn any_addr() -> impl Strategy<Value = SipAddr> {
        let scheme =
            prop::sample::select(vec![Scheme::Sip, Scheme::Sips, Scheme::Im, Scheme::Pres]);
        let host = prop::sample::select(vec![
            "example.net",
            "10.0.0.1",
            "[2001:db8::1]",
            "a-b.example",
        ]);
        (
            scheme,
            prop::option::of(".{1,12}"),
            host,
            prop::option::of(any::<u16>()),
            prop::option::of(".{1,8}"),
        )
            .prop_map(|(scheme, user, host, port, gr)| SipAddr {
                gr: gr.filter(|_| matches!(scheme, Scheme::Sip | Scheme::Sips)),
                scheme,
                user,
                host: host.to_owned(),
                port,
            })
    }

    proptest! {
        #[test]
        fn addr_1_prop_print_parse_identity(a in any_addr()) {
            prop_assert_eq!(SipAddr::parse(&a.to_uri()).unwrap(), a);
        }

        #[test]
        fn addr_1_prop_parse_never_panics(s in any::<String>()) {
            let _ = SipAddr::parse(&s);
        }

        #[test]
        fn addr_1_prop_parse_never_panics_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = SipAddr::parse(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn addr_1_prop_parse_never_panics_structured(
            pre in prop::sample::select(vec!["sip:", "<sips:", "\"x\" <im:", "pres:", "SIP:"]),
            body in "[a-z0-9@:;?=%<>\\[\\]\"\\\\. -]{0,24}",
        ) {
            let _ = SipAddr::parse(&format!("{pre}{body}"));
        }
    }
}
