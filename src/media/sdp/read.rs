//! SDP -> model.

use super::{is_rtp_profile, senders, static_payload, MLine, ReadSdp};
use crate::media::ice::{candidate_id, valid_foundation, valid_ice_credentials};
use crate::media::model::*;
use crate::media::{bounded, fmtp, limits, MediaError};
use sdp_types::{Attribute, Media, Session};
use std::net::IpAddr;

/// Largest SDP body we read; real offers are a few kilobytes.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Parse an SDP body.
pub fn parse(body: &[u8]) -> Result<Session, MediaError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(MediaError::TooLarge("bytes"));
    }
    Session::parse(body).map_err(|e| MediaError::Malformed(format!("SDP: {e}")))
}

fn malformed(what: &str, v: &str) -> MediaError {
    let v: String = v.chars().take(64).collect();
    MediaError::Malformed(format!("{what} {v:?}"))
}

/// Values of attribute `name` at media level, or else at session level.
fn attrs<'a>(m: &'a Media, s: &'a Session, name: &str) -> Vec<&'a str> {
    let pick = |a: &'a [Attribute]| -> Vec<&'a str> {
        a.iter()
            .filter(|a| a.attribute.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
            .collect()
    };
    let media = pick(&m.attributes);
    if media.is_empty() {
        pick(&s.attributes)
    } else {
        media
    }
}

fn media_attrs<'a>(m: &'a Media, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let name = name.to_owned();
    m.attributes
        .iter()
        .filter(move |a| a.attribute.eq_ignore_ascii_case(&name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

/// Read an offer or answer written by `author`.
pub fn from_sdp(s: &Session, author: Role, kind: Kind) -> Result<ReadSdp, MediaError> {
    if s.medias.len() > limits::CONTENTS {
        return Err(MediaError::TooLarge("m= lines"));
    }
    let mut desc = Description::default();
    let mut lines = Vec::new();
    for (i, m) in s.medias.iter().enumerate() {
        let mid = media_attrs(m, "mid").next().map(str::trim);
        let name = match mid {
            // RFC 5888 §4: identification-tag is a token (it becomes a Jingle content name).
            Some(mid) if mid.contains(char::is_whitespace) => return Err(malformed("mid", mid)),
            Some(mid) if !mid.is_empty() => bounded(mid, "mid")?,
            _ => unique_name(&m.media, &lines),
        };
        let usable =
            (m.media == "audio" || m.media == "video") && m.port != 0 && is_rtp_profile(&m.proto);
        lines.push(MLine {
            name: name.clone(),
            media: bounded(&m.media, "media")?,
            proto: bounded(&m.proto, "proto")?,
            first_fmt: bounded(m.fmt.split_whitespace().next().unwrap_or("0"), "fmt")?,
            had_mid: mid.is_some(),
            used: usable,
        });
        if usable {
            let content = read_content(s, m, i, name, author, kind)?;
            // No payload type left that names a codec: the stream is unusable, like port 0.
            match lines.last_mut() {
                Some(line) if content.payloads.is_empty() => line.used = false,
                _ => desc.contents.push(content),
            }
        }
    }
    if desc.contents.is_empty() {
        return Err(MediaError::Unsupported(
            "no RTP audio or video stream with a port".into(),
        ));
    }
    for g in s.attributes.iter().filter(|a| a.attribute == "group") {
        let v = g.value.as_deref().unwrap_or("");
        let mut it = v.split_whitespace();
        let sem = it.next().unwrap_or("");
        // The names become Jingle content names (XEP-0338): bounded and free of control
        // characters like every other value read here (F18).
        let names = it
            .take(limits::CONTENTS)
            .map(|n| bounded(n, "group"))
            .collect::<Result<Vec<_>, _>>()?;
        match sem {
            "BUNDLE" => desc.bundle = names,
            "LS" => desc.lip_sync = names,
            _ => {}
        }
    }
    let origin_user = match s.origin.username.as_deref() {
        None | Some("-") | Some("") => None,
        Some(u) => Some(bounded(u, "o= username")?),
    };
    Ok(ReadSdp {
        description: desc,
        lines,
        origin_user,
    })
}

fn unique_name(media: &str, lines: &[MLine]) -> String {
    let base: String = media.chars().take(32).collect();
    if !lines.iter().any(|l| l.name == base) {
        return base;
    }
    (1..)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !lines.iter().any(|l| &l.name == c))
        .unwrap_or(base)
}

fn read_content(
    s: &Session,
    m: &Media,
    index: usize,
    name: String,
    author: Role,
    kind: Kind,
) -> Result<Content, MediaError> {
    let pts: Vec<&str> = m.fmt.split_whitespace().collect();
    if pts.len() > limits::PAYLOADS {
        return Err(MediaError::TooLarge("payload types"));
    }
    let ptime = attrs(m, s, "ptime")
        .first()
        .and_then(|v| v.trim().parse().ok());
    let maxptime = attrs(m, s, "maxptime")
        .first()
        .and_then(|v| v.trim().parse().ok());
    let mut payloads = Vec::with_capacity(pts.len());
    for pt in pts {
        let id: u8 = pt
            .parse()
            .ok()
            .filter(|v| *v <= 127)
            .ok_or_else(|| malformed("payload type", pt))?;
        let rtpmap = media_attrs(m, "rtpmap").find(|v| v.split_whitespace().next() == Some(pt));
        let (name, clockrate, channels) = match rtpmap {
            Some(v) => parse_rtpmap(v)?,
            // A dynamic type without a=rtpmap (RFC 4566 §6 requires one) names no codec:
            // nobody can use it, and Jingle cannot carry it (F13), so it is left out.
            None if id >= 96 => continue,
            None => static_payload(id)
                .map(|(n, r, c)| (n.to_owned(), r, c))
                .unwrap_or((String::new(), 0, 1)),
        };
        let fmtp_raw = media_attrs(m, "fmtp").find_map(|v| {
            let (p, rest) = v.split_once(' ').unwrap_or((v, ""));
            (p == pt).then_some(rest)
        });
        let params = fmtp::sdp_to_params(&name, fmtp_raw)?;
        let rtcp_fb = rtcp_fbs(m, pt)?;
        payloads.push(Payload {
            id,
            name,
            clockrate,
            channels,
            ptime,
            maxptime,
            params,
            rtcp_fb,
        });
    }
    // A media-level direction overrides a session-level one (RFC 4566 §6).
    const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
    let find = |a: &[Attribute]| {
        a.iter().find_map(|a| {
            DIRECTIONS
                .into_iter()
                .find(|d| a.attribute.eq_ignore_ascii_case(d))
        })
    };
    let direction = find(&m.attributes)
        .or_else(|| find(&s.attributes))
        .unwrap_or("sendrecv");
    let mut senders = senders(direction, author).unwrap_or_default();
    let transport = read_transport(s, m, index, kind)?;
    // RFC 3264 §8.4's old hold: c=0.0.0.0 without ICE means "send me nothing".
    if transport.ice.is_none() && transport.candidates.iter().any(|c| c.ip.is_unspecified()) {
        senders = Senders::None;
    }
    let mut hdrexts = Vec::new();
    for v in media_attrs(m, "extmap").chain(
        s.attributes
            .iter()
            .filter(|a| a.attribute == "extmap")
            .map(|a| a.value.as_deref().unwrap_or("")),
    ) {
        if hdrexts.len() == limits::ITEMS {
            return Err(MediaError::TooLarge("header extensions"));
        }
        hdrexts.push(parse_extmap(v, author)?);
    }
    let mut sources: Vec<Source> = Vec::new();
    for v in media_attrs(m, "ssrc") {
        let (id, rest) = v.split_once(' ').unwrap_or((v, ""));
        let ssrc: u32 = id.parse().map_err(|_| malformed("ssrc", v))?;
        let (pn, pv) = match rest.trim().split_once(':') {
            Some((n, v)) => (n, Some(bounded(v, "ssrc value")?)),
            None => (rest.trim(), None),
        };
        // RFC 5576 §4.1: the attribute name is a token. A line without one says nothing
        // usable (and could not be written as a Jingle parameter name), so it is skipped.
        if pn.is_empty() || pn.contains(char::is_whitespace) {
            continue;
        }
        let param = (bounded(pn, "ssrc attribute")?, pv);
        match sources.iter().position(|s| s.ssrc == ssrc) {
            Some(i) if sources[i].params.len() < limits::ITEMS => sources[i].params.push(param),
            Some(_) => return Err(MediaError::TooLarge("ssrc attributes")),
            None if sources.len() < limits::ITEMS => sources.push(Source {
                ssrc,
                params: vec![param],
            }),
            None => return Err(MediaError::TooLarge("sources")),
        }
    }
    let mut source_groups = Vec::new();
    for v in media_attrs(m, "ssrc-group").take(limits::ITEMS) {
        let mut it = v.split_whitespace();
        // RFC 5576 §4.2: the semantics is a token; a line without one is skipped (F19).
        let Some(semantics) = it.next() else { continue };
        let semantics = bounded(semantics, "ssrc-group")?;
        let ssrcs = it
            .take(limits::ITEMS)
            .map(|x| x.parse().map_err(|_| malformed("ssrc-group", v)))
            .collect::<Result<_, _>>()?;
        source_groups.push(SourceGroup { semantics, ssrcs });
    }
    let mut crypto = Vec::new();
    for v in media_attrs(m, "crypto").take(limits::ITEMS) {
        crypto.push(parse_crypto(v)?);
    }
    // A bandwidth type that is not a token (RFC 4566 §5.8) is ignored: b= is advisory.
    let bandwidth = m
        .bandwidths
        .iter()
        .find(|b| !b.bwtype.is_empty() && !b.bwtype.contains(char::is_whitespace))
        .map(|b| Ok::<_, MediaError>((bounded(&b.bwtype, "bwtype")?, b.bandwidth)))
        .transpose()?;
    Ok(Content {
        name,
        senders,
        media: m.media.clone(),
        payloads,
        rtcp_fb_all: rtcp_fbs(m, "*")?,
        rtcp_mux: media_attrs(m, "rtcp-mux").next().is_some(),
        hdrexts,
        extmap_allow_mixed: !attrs(m, s, "extmap-allow-mixed").is_empty(),
        sources,
        source_groups,
        crypto,
        bandwidth,
        transport,
    })
}

fn parse_rtpmap(v: &str) -> Result<(String, u32, u8), MediaError> {
    let enc = v
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| malformed("rtpmap", v))?;
    let mut it = enc.split('/');
    let name = bounded(it.next().unwrap_or(""), "encoding name")?;
    let rate = it
        .next()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| malformed("rtpmap", v))?;
    let channels = match it.next() {
        Some(c) => c
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| malformed("rtpmap channels", v))?,
        None => 1,
    };
    if name.is_empty() || name.contains(|c: char| c.is_control()) {
        return Err(malformed("rtpmap", v));
    }
    Ok((name, rate, channels))
}

fn rtcp_fbs(m: &Media, pt: &str) -> Result<Vec<RtcpFb>, MediaError> {
    let mut out = Vec::new();
    for v in media_attrs(m, "rtcp-fb") {
        let mut it = v.split_whitespace();
        if it.next() != Some(pt) {
            continue;
        }
        if out.len() == limits::ITEMS {
            return Err(MediaError::TooLarge("rtcp-fb"));
        }
        let kind = bounded(it.next().ok_or_else(|| malformed("rtcp-fb", v))?, "rtcp-fb")?;
        let subtype = it.next().map(|s| bounded(s, "rtcp-fb")).transpose()?;
        out.push(RtcpFb { kind, subtype });
    }
    Ok(out)
}

fn parse_extmap(v: &str, author: Role) -> Result<HdrExt, MediaError> {
    let mut it = v.split_whitespace();
    let idd = it.next().unwrap_or("");
    let (id, dir) = idd
        .split_once('/')
        .map_or((idd, None), |(i, d)| (i, Some(d)));
    let id: u16 = id
        .parse()
        .ok()
        .filter(|i| (1..=255).contains(i))
        .ok_or_else(|| malformed("extmap", v))?;
    let senders = dir
        .map(|d| super::senders(d, author).ok_or_else(|| malformed("extmap direction", v)))
        .transpose()?
        .filter(|s| *s != Senders::Both);
    let uri = bounded(
        it.next().ok_or_else(|| malformed("extmap", v))?,
        "extmap uri",
    )?;
    Ok(HdrExt { id, uri, senders })
}

fn parse_crypto(v: &str) -> Result<Crypto, MediaError> {
    let mut it = v.split_whitespace();
    let tag = it
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| malformed("crypto", v))?;
    let suite = bounded(
        it.next().ok_or_else(|| malformed("crypto", v))?,
        "crypto suite",
    )?;
    let key_params = bounded(
        it.next().ok_or_else(|| malformed("crypto", v))?,
        "crypto key",
    )?;
    let rest: Vec<&str> = it.collect();
    let session_params = (!rest.is_empty()).then(|| rest.join(" "));
    Ok(Crypto {
        tag,
        suite,
        key_params,
        session_params: session_params
            .map(|p| bounded(&p, "crypto params"))
            .transpose()?,
    })
}

fn read_transport(
    s: &Session,
    m: &Media,
    index: usize,
    kind: Kind,
) -> Result<Transport, MediaError> {
    let ufrag = attrs(m, s, "ice-ufrag")
        .first()
        .map(|v| v.trim().to_owned());
    let pwd = attrs(m, s, "ice-pwd").first().map(|v| v.trim().to_owned());
    let ice = match (ufrag, pwd) {
        (Some(ufrag), Some(pwd)) => {
            let c = IceCredentials { ufrag, pwd };
            if !valid_ice_credentials(&c) {
                return Err(MediaError::Malformed("ice-ufrag/ice-pwd".into()));
            }
            Some(c)
        }
        (None, None) => None,
        _ => {
            return Err(MediaError::Malformed(
                "ice-ufrag without ice-pwd or back".into(),
            ))
        }
    };
    let mut t = Transport {
        ice,
        ..Transport::default()
    };
    if t.ice.is_some() {
        for v in media_attrs(m, "candidate") {
            if t.candidates.len() == limits::CANDIDATES {
                return Err(MediaError::TooLarge("candidates"));
            }
            if let Some(c) = parse_candidate(v, index, t.candidates.len())? {
                t.candidates.push(c);
            }
        }
        t.end_of_candidates = !attrs(m, s, "end-of-candidates").is_empty();
    } else {
        // Raw-UDP (MEDIA-10): the address is c= and the m= port; a=rtcp names component 2.
        let conn = m
            .connections
            .first()
            .or(s.connection.as_ref())
            .ok_or_else(|| MediaError::Malformed("no c= line".into()))?;
        let ip = conn_ip(&conn.connection_address)?;
        t.candidates.push(raw_candidate(1, ip, m.port, index, 0));
        // Without a=rtcp, RTCP is on the next port (RFC 3550 §11), which every RTP stack
        // assumes anyway, so no component 2 is written for it.
        if let (None, Some(v)) = (
            media_attrs(m, "rtcp-mux").next(),
            media_attrs(m, "rtcp").next(),
        ) {
            let mut it = v.split_whitespace();
            let port: u16 = it
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| malformed("rtcp", v))?;
            let addr = it.nth(2).map(conn_ip).transpose()?.unwrap_or(ip);
            t.candidates.push(raw_candidate(2, addr, port, index, 1));
        }
        t.end_of_candidates = true;
    }
    let fp = attrs(m, s, "fingerprint");
    if let Some(v) = fp.first() {
        let (hash, value) = v
            .trim()
            .split_once(' ')
            .ok_or_else(|| malformed("fingerprint", v))?;
        let value = value.trim().to_ascii_uppercase();
        let hex_ok = value
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        if !hex_ok || value.len() > 256 {
            return Err(malformed("fingerprint", v));
        }
        let setup = match attrs(m, s, "setup").first().map(|v| v.trim()) {
            Some("active") => Setup::Active,
            Some("passive") => Setup::Passive,
            Some("actpass") => Setup::Actpass,
            Some("holdconn") => return Err(MediaError::Unsupported("a=setup:holdconn".into())),
            Some(other) => return Err(malformed("setup", other)),
            // RFC 5763 §5: the offerer must say actpass; RFC 4145 §4 makes a missing
            // attribute "active".
            None if kind == Kind::Offer => Setup::Actpass,
            None => Setup::Active,
        };
        // An answer must pick a side (RFC 5763 §5). A peer that answers actpass would leave
        // both ends waiting; RFC 5763 says the answerer SHOULD be active, so read it so.
        let setup = if kind == Kind::Answer && setup == Setup::Actpass {
            Setup::Active
        } else {
            setup
        };
        t.fingerprint = Some(Fingerprint {
            hash: bounded(&hash.to_ascii_lowercase(), "hash")?,
            value,
            setup,
        });
    }
    Ok(t)
}

fn conn_ip(addr: &str) -> Result<IpAddr, MediaError> {
    // c= may carry a multicast TTL ("/127"); calls are unicast.
    addr.split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| malformed("connection address", addr))
}

fn raw_candidate(component: u8, ip: IpAddr, port: u16, index: usize, n: usize) -> Candidate {
    Candidate {
        component,
        foundation: String::new(),
        generation: 0,
        id: candidate_id(index, 0, n),
        ip,
        port,
        priority: 0,
        protocol: "udp".into(),
        kind: CandidateKind::Host,
        rel_addr: None,
        rel_port: None,
    }
}

/// `a=candidate` (RFC 8839 §5.1). TCP candidates and ones with a host name (mDNS `.local`
/// names from browsers) are dropped: Jingle RTP candidates are UDP with an IP address.
fn parse_candidate(v: &str, index: usize, n: usize) -> Result<Option<Candidate>, MediaError> {
    let f: Vec<&str> = v.split_whitespace().collect();
    if f.len() < 8 || f[6] != "typ" {
        return Err(malformed("candidate", v));
    }
    if !valid_foundation(f[0]) {
        return Err(malformed("candidate foundation", f[0]));
    }
    let component: u8 = f[1]
        .parse()
        .ok()
        .filter(|c| (1..=2).contains(c))
        .ok_or_else(|| malformed("candidate component", v))?;
    if !f[2].eq_ignore_ascii_case("udp") {
        return Ok(None);
    }
    let priority: u32 = f[3]
        .parse()
        .map_err(|_| malformed("candidate priority", v))?;
    let Ok(ip) = f[4].parse::<IpAddr>() else {
        return Ok(None);
    };
    let port: u16 = f[5].parse().map_err(|_| malformed("candidate port", v))?;
    let kind = CandidateKind::parse(f[7]).ok_or_else(|| malformed("candidate type", v))?;
    let mut c = Candidate {
        component,
        foundation: f[0].to_owned(),
        generation: 0,
        id: candidate_id(index, 0, n),
        ip,
        port,
        priority,
        protocol: "udp".into(),
        kind,
        rel_addr: None,
        rel_port: None,
    };
    let mut rest = f[8..].chunks(2);
    for pair in rest.by_ref() {
        match pair {
            ["raddr", a] => c.rel_addr = a.parse().ok(),
            ["rport", p] => c.rel_port = p.parse().ok(),
            _ => {}
        }
    }
    Ok(Some(c))
}
