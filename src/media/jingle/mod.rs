//! Jingle `<content>` elements (XEP-0166 §7.3, XEP-0167 §5, XEP-0176 §5, XEP-0177 §4,
//! XEP-0320 §3, XEP-0293, XEP-0294, XEP-0338, XEP-0339) <-> [`Description`].
//!
//! Read leniently (unknown children and attributes are skipped, as XEP-0166 §7 asks of a
//! receiver) but every value that could reach an SDP line is checked, and counts are
//! bounded by [`limits`].

use super::ice::{candidate_id, valid_foundation, valid_ice_credentials};
use super::model::*;
use super::{bounded, limits, MediaError};
use std::net::IpAddr;

mod render;
pub use render::{render, render_content, render_transport};
use tokio_xmpp::minidom::Element;
use xmpp_parsers::ns;

/// XEP-0167 §7 `<encryption>` (SDES) lives in the RTP namespace.
const NS_RTP: &str = ns::JINGLE_RTP;

fn malformed(what: &str) -> MediaError {
    MediaError::Malformed(format!("Jingle: {what}"))
}

fn attr<'a>(e: &'a Element, name: &'static str) -> Result<&'a str, MediaError> {
    e.attr(name)
        .ok_or_else(|| malformed(&format!("<{}> without {name}", e.name())))
}

fn num<T: std::str::FromStr>(e: &Element, name: &'static str) -> Result<T, MediaError> {
    attr(e, name)?
        .trim()
        .parse()
        .map_err(|_| malformed(&format!("<{}> {name} is not a number", e.name())))
}

fn opt_num<T: std::str::FromStr>(e: &Element, name: &'static str) -> Result<Option<T>, MediaError> {
    e.attr(name).map(|_| num(e, name)).transpose()
}

/// A token bound for SDP: no white space or control characters, bounded length.
fn token(s: &str, what: &'static str) -> Result<String, MediaError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed(&format!(
            "{what} {:?}",
            s.chars().take(64).collect::<String>()
        )));
    }
    bounded(s, what)
}

/// Free text bound for the rest of an SDP line: no control characters (CR/LF would end it).
fn line_text(s: &str, what: &'static str) -> Result<String, MediaError> {
    if s.chars().any(char::is_control) {
        return Err(malformed(&format!("{what} holds a control character")));
    }
    bounded(s, what)
}

/// Read the `<content>` children (and the XEP-0338 `<group>`) of a `<jingle>` element that
/// carries descriptions: session-initiate, session-accept, content-add, content-accept,
/// content-modify's new state.
pub fn read_contents(jingle: &Element, kind: Kind) -> Result<Description, MediaError> {
    let mut desc = Description::default();
    for (i, c) in jingle
        .children()
        .filter(|c| c.is("content", ns::JINGLE))
        .enumerate()
    {
        if i == limits::CONTENTS {
            return Err(MediaError::TooLarge("contents"));
        }
        desc.contents.push(read_content(c, i, kind)?);
    }
    if desc.contents.is_empty() {
        return Err(malformed("no <content>"));
    }
    for g in jingle
        .children()
        .filter(|c| c.is("group", ns::JINGLE_GROUPING))
    {
        let names = g
            .children()
            .filter(|c| c.is("content", ns::JINGLE_GROUPING))
            .take(limits::CONTENTS)
            .map(|c| token(attr(c, "name")?, "group content"))
            .collect::<Result<Vec<_>, _>>()?;
        match g.attr("semantics") {
            Some("BUNDLE") => desc.bundle = names,
            Some("LS") => desc.lip_sync = names,
            _ => {}
        }
    }
    Ok(desc)
}

/// Read the transports of a `transport-info` (trickled candidates, MEDIA-3) as
/// (content name, transport) pairs.
pub fn read_transport_info(jingle: &Element) -> Result<Vec<(String, Transport)>, MediaError> {
    let mut out = Vec::new();
    for (i, c) in jingle
        .children()
        .filter(|c| c.is("content", ns::JINGLE))
        .enumerate()
    {
        if i == limits::CONTENTS {
            return Err(MediaError::TooLarge("contents"));
        }
        let name = token(attr(c, "name")?, "content name")?;
        let t = c
            .children()
            .find(|t| t.name() == "transport")
            .ok_or_else(|| malformed("transport-info content without <transport>"))?;
        out.push((name, read_transport(t, i, Kind::Offer)?));
    }
    Ok(out)
}

fn read_content(c: &Element, index: usize, kind: Kind) -> Result<Content, MediaError> {
    let name = token(attr(c, "name")?, "content name")?;
    let senders = match c.attr("senders") {
        None => Senders::Both,
        Some(s) => Senders::parse(s).ok_or_else(|| malformed("senders"))?,
    };
    let d = c
        .children()
        .find(|d| d.name() == "description")
        .ok_or_else(|| malformed("content without <description>"))?;
    if d.ns() != ns::JINGLE_RTP {
        return Err(MediaError::Unsupported(format!("application {}", d.ns())));
    }
    let media = attr(d, "media")?;
    if media != "audio" && media != "video" {
        return Err(MediaError::Unsupported(format!("RTP media {media:?}")));
    }
    let t = c
        .children()
        .find(|t| t.name() == "transport")
        .ok_or_else(|| malformed("content without <transport>"))?;
    let mut content = Content {
        name,
        senders,
        media: media.to_owned(),
        payloads: Vec::new(),
        rtcp_fb_all: read_fbs(d)?,
        rtcp_mux: d.children().any(|x| x.is("rtcp-mux", ns::JINGLE_RTP)),
        hdrexts: Vec::new(),
        extmap_allow_mixed: d
            .children()
            .any(|x| x.is("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT)),
        sources: Vec::new(),
        source_groups: Vec::new(),
        crypto: Vec::new(),
        bandwidth: None,
        transport: read_transport(t, index, kind)?,
    };
    for x in d.children() {
        if x.is("payload-type", ns::JINGLE_RTP) {
            if content.payloads.len() == limits::PAYLOADS {
                return Err(MediaError::TooLarge("payload types"));
            }
            content.payloads.push(read_payload(x)?);
        } else if x.is("rtp-hdrext", ns::JINGLE_RTP_HDREXT) {
            if content.hdrexts.len() == limits::ITEMS {
                return Err(MediaError::TooLarge("header extensions"));
            }
            let senders = match x.attr("senders") {
                None | Some("both") => None,
                Some(s) => Some(Senders::parse(s).ok_or_else(|| malformed("rtp-hdrext senders"))?),
            };
            let id: u16 = num(x, "id")?;
            if !(1..=255).contains(&id) {
                return Err(malformed("rtp-hdrext id"));
            }
            content.hdrexts.push(HdrExt {
                id,
                uri: token(attr(x, "uri")?, "hdrext uri")?,
                senders,
            });
        } else if x.is("source", ns::JINGLE_SSMA) {
            if content.sources.len() == limits::ITEMS {
                return Err(MediaError::TooLarge("sources"));
            }
            let mut params = Vec::new();
            for p in x
                .children()
                .filter(|p| p.name() == "parameter")
                .take(limits::ITEMS)
            {
                // msid values hold a space ("stream track"), so only line breaks and other
                // control characters are refused here.
                let v = p
                    .attr("value")
                    .map(|v| line_text(v, "source parameter"))
                    .transpose()?;
                params.push((token(attr(p, "name")?, "source parameter")?, v));
            }
            content.sources.push(Source {
                ssrc: num(x, "ssrc")?,
                params,
            });
        } else if x.is("ssrc-group", ns::JINGLE_SSMA) {
            if content.source_groups.len() == limits::ITEMS {
                return Err(MediaError::TooLarge("ssrc groups"));
            }
            let ssrcs = x
                .children()
                .filter(|s| s.name() == "source")
                .take(limits::ITEMS)
                .map(|s| num(s, "ssrc"))
                .collect::<Result<_, _>>()?;
            content.source_groups.push(SourceGroup {
                semantics: token(attr(x, "semantics")?, "semantics")?,
                ssrcs,
            });
        } else if x.is("bandwidth", ns::JINGLE_RTP) {
            let v = x
                .text()
                .trim()
                .parse()
                .map_err(|_| malformed("bandwidth"))?;
            content.bandwidth = Some((token(attr(x, "type")?, "bandwidth type")?, v));
        } else if x.is("encryption", NS_RTP) {
            for cr in x
                .children()
                .filter(|c| c.is("crypto", NS_RTP))
                .take(limits::ITEMS)
            {
                content.crypto.push(Crypto {
                    tag: num(cr, "tag")?,
                    suite: token(attr(cr, "crypto-suite")?, "crypto-suite")?,
                    key_params: token(attr(cr, "key-params")?, "key-params")?,
                    session_params: cr
                        .attr("session-params")
                        .filter(|s| !s.is_empty())
                        .map(|s| line_text(s, "session-params"))
                        .transpose()?,
                });
            }
        }
    }
    if content.payloads.is_empty() {
        return Err(malformed("RTP description without <payload-type>"));
    }
    // XEP-0176 §5: an offer or answer carries the ICE credentials (only transport-info may
    // leave them out); without them the candidates could not be checked by anyone.
    if t.is("transport", ns::JINGLE_ICE_UDP) && content.transport.ice.is_none() {
        return Err(malformed("ICE-UDP transport without ufrag and pwd"));
    }
    Ok(content)
}

fn read_fbs(parent: &Element) -> Result<Vec<RtcpFb>, MediaError> {
    let mut out = Vec::new();
    for f in parent
        .children()
        .filter(|f| f.is("rtcp-fb", ns::JINGLE_RTCP_FB))
    {
        if out.len() == limits::ITEMS {
            return Err(MediaError::TooLarge("rtcp-fb"));
        }
        out.push(RtcpFb {
            kind: token(attr(f, "type")?, "rtcp-fb type")?,
            subtype: f
                .attr("subtype")
                .map(|s| token(s, "rtcp-fb subtype"))
                .transpose()?,
        });
    }
    Ok(out)
}

fn read_payload(p: &Element) -> Result<Payload, MediaError> {
    let id: u8 = num(p, "id")?;
    if id > 127 {
        return Err(malformed("payload-type id above 127"));
    }
    let name = match p.attr("name") {
        Some(n) => token(n, "payload-type name")?,
        None => String::new(),
    };
    if name.is_empty() && id >= 96 {
        return Err(malformed("dynamic payload-type without name"));
    }
    let channels: u8 = opt_num(p, "channels")?.unwrap_or(1);
    if channels == 0 {
        return Err(malformed("payload-type channels 0"));
    }
    let mut params = Vec::new();
    for x in p.children().filter(|x| x.is("parameter", ns::JINGLE_RTP)) {
        if params.len() == limits::ITEMS {
            return Err(MediaError::TooLarge("parameters"));
        }
        // Both end up inside one a=fmtp line: no white space, no line breaks.
        let field = |v: &str| {
            if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(malformed("parameter holds white space"))
            } else {
                bounded(v, "parameter")
            }
        };
        params.push((
            field(x.attr("name").unwrap_or(""))?,
            field(x.attr("value").unwrap_or(""))?,
        ));
    }
    Ok(Payload {
        id,
        name,
        clockrate: opt_num(p, "clockrate")?.unwrap_or(0),
        channels,
        ptime: opt_num(p, "ptime")?,
        maxptime: opt_num(p, "maxptime")?,
        params,
        rtcp_fb: read_fbs(p)?,
    })
}

fn read_transport(t: &Element, index: usize, kind: Kind) -> Result<Transport, MediaError> {
    let ice = t.is("transport", ns::JINGLE_ICE_UDP);
    if !ice && !t.is("transport", ns::JINGLE_RAW_UDP) {
        return Err(MediaError::Transport(format!("transport {}", t.ns())));
    }
    let mut out = Transport::default();
    if ice {
        if let (Some(ufrag), Some(pwd)) = (t.attr("ufrag"), t.attr("pwd")) {
            let c = IceCredentials {
                ufrag: ufrag.to_owned(),
                pwd: pwd.to_owned(),
            };
            if !valid_ice_credentials(&c) {
                return Err(malformed("ICE ufrag/pwd"));
            }
            out.ice = Some(c);
        } else {
            // A transport-info may omit them; a session-initiate must not, which the
            // caller checks by asking for candidates' credentials.
            out.ice = None;
        }
    }
    for c in t.children().filter(|c| c.name() == "candidate") {
        if out.candidates.len() == limits::CANDIDATES {
            return Err(MediaError::TooLarge("candidates"));
        }
        if let Some(c) = read_candidate(c, ice, index, out.candidates.len())? {
            out.candidates.push(c);
        }
    }
    // Raw-UDP lists every address at once (XEP-0177 §4).
    out.end_of_candidates = !ice;
    if let Some(f) = t.children().find(|f| f.is("fingerprint", ns::JINGLE_DTLS)) {
        let value = f.text().trim().to_ascii_uppercase();
        let hex_ok = value
            .split(':')
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        if !hex_ok || value.len() > 256 {
            return Err(malformed("DTLS fingerprint"));
        }
        let setup = match f.attr("setup") {
            Some("active") => Setup::Active,
            Some("passive") => Setup::Passive,
            Some("actpass") | None if kind == Kind::Offer => Setup::Actpass,
            // RFC 5763 §5: an answer picks a side; an answerer that says actpass is read as
            // active, the side RFC 5763 recommends, so both ends never wait for each other.
            Some("actpass") | None => Setup::Active,
            Some(_) => return Err(malformed("DTLS setup")),
        };
        out.fingerprint = Some(Fingerprint {
            hash: token(&attr(f, "hash")?.to_ascii_lowercase(), "hash")?,
            value,
            setup,
        });
    }
    Ok(out)
}

fn read_candidate(
    c: &Element,
    ice: bool,
    index: usize,
    n: usize,
) -> Result<Option<Candidate>, MediaError> {
    let component: u8 = num(c, "component")?;
    if !(1..=2).contains(&component) {
        return Err(malformed("candidate component"));
    }
    let ip: IpAddr = num(c, "ip")?;
    let generation: u8 = opt_num(c, "generation")?.unwrap_or(0);
    let id = match c.attr("id") {
        Some(id) => token(id, "candidate id")?,
        None => candidate_id(index, generation, n),
    };
    let mut cand = Candidate {
        component,
        foundation: String::new(),
        generation,
        id,
        ip,
        port: num(c, "port")?,
        priority: 0,
        protocol: "udp".into(),
        kind: CandidateKind::Host,
        rel_addr: None,
        rel_port: None,
    };
    if ice {
        if !attr(c, "protocol")?.eq_ignore_ascii_case("udp") {
            return Ok(None);
        }
        let foundation = attr(c, "foundation")?;
        if !valid_foundation(foundation) {
            return Err(malformed("candidate foundation"));
        }
        cand.foundation = foundation.to_owned();
        cand.priority = num(c, "priority")?;
        cand.kind =
            CandidateKind::parse(attr(c, "type")?).ok_or_else(|| malformed("candidate type"))?;
        cand.rel_addr = opt_num(c, "rel-addr")?;
        cand.rel_port = opt_num(c, "rel-port")?;
    }
    Ok(Some(cand))
}
