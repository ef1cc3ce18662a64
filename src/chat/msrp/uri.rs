//! MSRP URIs, RFC 4975 §6: `msrp://host:port/session-id;tcp`, compared per §6.1.
//!
//! The gateway's own URIs always carry an explicit port and a session-id of 20 random
//! base-32 characters (100 bits, above the 80 bits §14.1 asks for, CHAT-9).

use std::fmt;

/// A parsed MSRP URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MsrpUri {
    /// `msrps` (TLS).
    pub secure: bool,
    /// Host name or IP literal (IPv6 with brackets).
    pub host: String,
    /// Port; the gateway never emits a URI without one.
    pub port: Option<u16>,
    /// Session identifier (case-sensitive).
    pub session_id: Option<String>,
    /// Transport (`tcp`).
    pub transport: String,
}

impl MsrpUri {
    /// A URI of ours: explicit port, fresh random session-id, `;tcp`.
    pub fn local(host: &str, port: u16) -> MsrpUri {
        MsrpUri {
            secure: false,
            host: host.to_string(),
            port: Some(port),
            session_id: Some(random_session_id()),
            transport: "tcp".into(),
        }
    }

    /// Parse one URI (RFC 4975 §9 `MSRP-URI`); `None` when it is not one.
    pub fn parse(s: &str) -> Option<MsrpUri> {
        let (secure, rest) = if let Some(r) = strip_prefix_ci(s, "msrps://") {
            (true, r)
        } else {
            (false, strip_prefix_ci(s, "msrp://")?)
        };
        let (main, params) = rest.split_once(';')?;
        let transport = params.split(';').next().unwrap_or("").to_ascii_lowercase();
        if transport.is_empty() || !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (authority, session_id) = match main.split_once('/') {
            Some((a, sid)) => (a, Some(sid)),
            None => (main, None),
        };
        if let Some(sid) = session_id {
            let ok = !sid.is_empty()
                && sid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+=/".contains(&b));
            if !ok {
                return None;
            }
        }
        // userinfo is allowed by RFC 3986 authority; it plays no part in matching.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, rest) = v6.split_once(']')?;
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None if rest.is_empty() => None,
                None => return None,
            };
            (format!("[{h}]"), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(parse_port(p)?)),
                None => (hostport.to_string(), None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
        if !host_ok {
            return None;
        }
        Some(MsrpUri {
            secure,
            host,
            port,
            session_id: session_id.map(str::to_string),
            transport,
        })
    }

    /// Parse a space-separated path (To-Path, From-Path, SDP `a=path`).
    pub fn parse_path(s: &str) -> Option<Vec<MsrpUri>> {
        let v: Option<Vec<_>> = s.split_ascii_whitespace().map(MsrpUri::parse).collect();
        v.filter(|v| !v.is_empty())
    }

    /// RFC 4975 §6.1 equality: scheme, host (case-insensitive), port, session-id
    /// (case-sensitive) and transport.
    pub fn same(&self, other: &MsrpUri) -> bool {
        self.secure == other.secure
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(&other.transport)
    }

    /// `host:port` to connect to (the default port is 2855, RFC 4975 §15.5 registers it).
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port.unwrap_or(2855))
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            if self.secure { "msrps" } else { "msrp" },
            self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(s) = &self.session_id {
            write!(f, "/{s}")?;
        }
        write!(f, ";{}", self.transport)
    }
}

/// Format a path.
pub fn path_string(path: &[MsrpUri]) -> String {
    path.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// 20 characters from a 32-symbol alphabet: 100 bits of randomness.
pub fn random_session_id() -> String {
    random_chars(20)
}

/// Random alphanumeric characters (transaction ids, Message-IDs).
pub fn random_chars(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..32)] as char)
        .collect()
}
