//! SDP for MSRP sessions (RFC 4975 §8, RFC 4976 §8, RFC 6135, RFC 7573 §4 / CHAT-3, 8,
//! 21), built and parsed with sdp-types (ezk's own SDP types reject `m=message`).
//!
//! MSRP over TLS (RFC 4975 §6, §8.1, §14) is `TCP/TLS/MSRP` with `msrps:` URIs; the `m=`
//! protocol and the scheme of the endpoint's own URI (the last of the path) must agree, so
//! a TLS offer can never be read as a plain one.

use super::msrp::MsrpUri;
use sdp_types::{Attribute, Connection, Media, Origin, Session, Time};

/// What the gateway puts in its offer or answer.
#[derive(Debug, Clone)]
pub struct Local {
    /// Address in `o=` and `c=` (the host of our MSRP URI).
    pub host: String,
    /// Port in `m=` (our MSRP listener, or the relay's port when we use one).
    pub port: u16,
    /// `a=path`: relays' Use-Path first, then our URI.
    pub path: Vec<MsrpUri>,
    /// `a=accept-types`.
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types` (inside message/cpim).
    pub accept_wrapped: Vec<String>,
    /// `a=max-size` (CHAT-21).
    pub max_size: usize,
    /// `a=setup` (RFC 6135), when one is due.
    pub setup: Option<&'static str>,
    /// MSRP over TLS: `TCP/TLS/MSRP` (our URI is then `msrps:`).
    pub tls: bool,
}

/// The MSRP media of the peer's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `a=path`, leftmost first.
    pub path: Vec<MsrpUri>,
    /// `a=accept-types`.
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types`.
    pub accept_wrapped: Vec<String>,
    /// `a=max-size`.
    pub max_size: Option<usize>,
    /// `a=setup` value.
    pub setup: Option<String>,
    /// The media is `TCP/TLS/MSRP` (RFC 4975 §8.1): the session must run over TLS.
    pub tls: bool,
}

impl Remote {
    /// Does the peer take this content type (top-level or `*`)?
    pub fn accepts(&self, ct: &str) -> bool {
        self.accept_types
            .iter()
            .chain(self.accept_wrapped.iter())
            .any(|a| a == "*" || a.eq_ignore_ascii_case(ct))
    }
}

/// Why an SDP body has no usable MSRP session (SIP 488 / 415 on our side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// Not parseable SDP.
    Syntax(String),
    /// No accepted `m=message ... TCP/MSRP` (or `TCP/TLS/MSRP`) line.
    NoMsrp,
    /// The MSRP media has no usable `a=path`.
    NoPath,
    /// `TCP/TLS/MSRP` with an `msrp:` URI, or `TCP/MSRP` with an `msrps:` one.
    SchemeMismatch,
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpError::Syntax(e) => write!(f, "SDP does not parse: {e}"),
            SdpError::NoMsrp => write!(f, "no MSRP media in the SDP"),
            SdpError::NoPath => write!(f, "MSRP media without a valid a=path"),
            SdpError::SchemeMismatch => {
                write!(f, "the m= protocol and the a=path scheme disagree on TLS")
            }
        }
    }
}

/// Write our offer or answer.
pub fn build(l: &Local, version: u64) -> Vec<u8> {
    let origin = Origin {
        username: None,
        sess_id: version.to_string(),
        sess_version: version,
        nettype: sdp_types::NetType::In,
        addrtype: addr_type(&l.host),
        unicast_address: l.host.trim_matches(['[', ']']).to_string(),
    };
    let mut s = Session::new(origin, "-");
    s.connection = Some(Connection::new(
        sdp_types::NetType::In,
        addr_type(&l.host),
        l.host.trim_matches(['[', ']']),
    ));
    s.times.push(Time::new(0, 0));
    let mut m = Media {
        media: "message".into(),
        port: l.port,
        num_ports: None,
        proto: if l.tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" }.into(),
        fmt: "*".into(),
        media_title: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    };
    m.attributes.push(Attribute::with_value(
        "accept-types",
        l.accept_types.join(" "),
    ));
    if !l.accept_wrapped.is_empty() {
        m.attributes.push(Attribute::with_value(
            "accept-wrapped-types",
            l.accept_wrapped.join(" "),
        ));
    }
    m.attributes.push(Attribute::with_value(
        "path",
        super::msrp::uri::path_string(&l.path),
    ));
    m.attributes
        .push(Attribute::with_value("max-size", l.max_size.to_string()));
    if let Some(setup) = l.setup {
        m.attributes.push(Attribute::with_value("setup", setup));
    }
    s.medias.push(m);
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = s.write(&mut out);
    out
}

fn addr_type(host: &str) -> sdp_types::AddrType {
    if host.contains(':') {
        sdp_types::AddrType::Ip6
    } else {
        sdp_types::AddrType::Ip4
    }
}

/// Find the MSRP media of a peer's SDP.
pub fn parse(body: &[u8]) -> Result<Remote, SdpError> {
    let s = Session::parse(body).map_err(|e| SdpError::Syntax(format!("{e:?}")))?;
    let m = s
        .medias
        .iter()
        .find(|m| {
            m.media.eq_ignore_ascii_case("message")
                && m.port != 0
                && (m.proto.eq_ignore_ascii_case("TCP/MSRP")
                    || m.proto.eq_ignore_ascii_case("TCP/TLS/MSRP"))
        })
        .ok_or(SdpError::NoMsrp)?;
    let attr = |name: &str| {
        m.attributes
            .iter()
            .find(|a| a.attribute.eq_ignore_ascii_case(name))
            .and_then(|a| a.value.clone())
    };
    let list = |name: &str| {
        attr(name)
            .map(|v| v.split_ascii_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let path = attr("path")
        .and_then(|p| MsrpUri::parse_path(&p))
        .ok_or(SdpError::NoPath)?;
    let tls = m.proto.eq_ignore_ascii_case("TCP/TLS/MSRP");
    // §8.1: the m= line describes the endpoint's own URI, the last of the path.
    if path.last().map(|u| u.secure) != Some(tls) {
        return Err(SdpError::SchemeMismatch);
    }
    Ok(Remote {
        tls,
        path,
        accept_types: list("accept-types"),
        accept_wrapped: list("accept-wrapped-types"),
        max_size: attr("max-size").and_then(|v| v.trim().parse().ok()),
        setup: attr("setup").map(|v| v.trim().to_ascii_lowercase()),
    })
}

/// Who opens the TCP connection (RFC 4975 §5.4: the offerer, unless RFC 6135 `a=setup`
/// says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connect.
    Active,
    /// We wait for the peer's connection.
    Passive,
}

/// Our role and the `a=setup` for our answer to an offer with `offer_setup`.
pub fn answer_role(offer_setup: Option<&str>) -> (Role, Option<&'static str>) {
    match offer_setup {
        // The offerer wants to be connected to: we are active.
        Some("passive") => (Role::Active, Some("active")),
        Some("actpass") => (Role::Passive, Some("passive")),
        Some(_) => (Role::Passive, Some("passive")),
        None => (Role::Passive, None),
    }
}

/// Our role as the offerer (no `a=setup` in our offer) given the answer's `a=setup`.
pub fn offer_role(answer_setup: Option<&str>) -> Role {
    match answer_setup {
        Some("active") => Role::Passive,
        _ => Role::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CHAT-3 / C1 shape.
    #[test]
    fn offer_has_the_msrp_line_and_path() {
        let path = vec![MsrpUri::parse("msrp://gw.example.com:7654/jshA7weztas;tcp").unwrap()];
        let sdp = build(
            &Local {
                host: "gw.example.com".into(),
                port: 7654,
                path,
                accept_types: vec!["text/plain".into(), "application/im-iscomposing+xml".into()],
                accept_wrapped: vec![],
                max_size: 65536,
                setup: None,
                tls: false,
            },
            1,
        );
        let text = String::from_utf8(sdp.clone()).unwrap();
        assert!(text.contains("m=message 7654 TCP/MSRP *\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 gw.example.com\r\n"), "{text}");
        assert!(text.contains("a=accept-types:text/plain application/im-iscomposing+xml\r\n"));
        assert!(text.contains("a=path:msrp://gw.example.com:7654/jshA7weztas;tcp\r\n"));
        assert!(text.contains("a=max-size:65536\r\n"));
        let back = parse(&sdp).unwrap();
        assert_eq!(back.max_size, Some(65536));
        assert!(back.accepts("text/plain"));
        assert!(!back.tls);
    }

    /// RFC 4975 §8.1, §14: an offer or answer over TLS says `TCP/TLS/MSRP` and `msrps:`.
    #[test]
    fn tls_offer_has_the_tls_protocol_and_msrps_path() {
        let path = vec![MsrpUri::parse("msrps://gw.example.com:7655/jshA7weztas;tcp").unwrap()];
        let sdp = build(
            &Local {
                host: "gw.example.com".into(),
                port: 7655,
                path,
                accept_types: vec!["text/plain".into()],
                accept_wrapped: vec![],
                max_size: 65536,
                setup: None,
                tls: true,
            },
            1,
        );
        let text = String::from_utf8(sdp.clone()).unwrap();
        assert!(text.contains("m=message 7655 TCP/TLS/MSRP *\r\n"), "{text}");
        assert!(text.contains("a=path:msrps://gw.example.com:7655/jshA7weztas;tcp\r\n"));
        let back = parse(&sdp).unwrap();
        assert!(back.tls);
        assert!(back.path[0].secure);
    }

    /// The m= protocol and the scheme of the peer's own URI decide together; a disagreement
    /// is refused rather than guessed (a TLS offer is never read as plain TCP).
    #[test]
    fn tls_and_scheme_are_read_together() {
        let head = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\n";
        let table: &[(&str, &str, Result<bool, SdpError>)] = &[
            ("TCP/MSRP", "msrp://h:9/a;tcp", Ok(false)),
            ("TCP/TLS/MSRP", "msrps://h:9/a;tcp", Ok(true)),
            ("tcp/tls/msrp", "MSRPS://h:9/a;tcp", Ok(true)),
            // RFC 4976: a relay's URI first, the endpoint's own URI last decides.
            (
                "TCP/TLS/MSRP",
                "msrps://r:9/r1;tcp msrps://h:9/a;tcp",
                Ok(true),
            ),
            (
                "TCP/TLS/MSRP",
                "msrp://h:9/a;tcp",
                Err(SdpError::SchemeMismatch),
            ),
            (
                "TCP/MSRP",
                "msrps://h:9/a;tcp",
                Err(SdpError::SchemeMismatch),
            ),
        ];
        for (proto, path, want) in table {
            let sdp =
                format!("{head}m=message 9 {proto} *\r\na=accept-types:*\r\na=path:{path}\r\n");
            let got = parse(sdp.as_bytes()).map(|r| r.tls);
            assert_eq!(&got, want, "{proto} {path}");
        }
    }

    #[test]
    fn parse_picks_the_msrp_media() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 ua.example.net\r\ns=-\r\nc=IN IP4 ua.example.net\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nm=message 12763 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://relay.example.net:2855/r1;tcp msrp://ua.example.net:12763/kjhd37s2s20w2a;tcp\r\na=setup:actpass\r\n";
        let r = parse(sdp).unwrap();
        assert_eq!(r.path.len(), 2);
        assert_eq!(r.setup.as_deref(), Some("actpass"));
        assert_eq!(
            answer_role(r.setup.as_deref()),
            (Role::Passive, Some("passive"))
        );
        assert_eq!(answer_role(Some("passive")).0, Role::Active);
        assert_eq!(answer_role(None), (Role::Passive, None));
        assert_eq!(offer_role(None), Role::Active);
    }

    #[test]
    fn unusable_offers_are_told_apart() {
        let audio =
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(parse(audio), Err(SdpError::NoMsrp));
        let no_path = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=accept-types:text/plain\r\n";
        assert_eq!(parse(no_path), Err(SdpError::NoPath));
        let rejected =
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=message 0 TCP/MSRP *\r\n";
        assert_eq!(parse(rejected), Err(SdpError::NoMsrp));
        assert!(matches!(parse(b"garbage"), Err(SdpError::Syntax(_))));
    }
}
