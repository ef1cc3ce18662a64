//! Model -> SDP.

use super::{direction, MLine};
use crate::media::ice::default_candidate;
use crate::media::model::*;
use crate::media::{fmtp, limits, MediaError};
use sdp_types::{
    AddrType, Attribute, Bandwidth, Connection, Media, NetType, Origin, Session, Time,
};
use std::net::IpAddr;

/// The `o=` line of the SDP stox writes for one party (RFC 4566 §5.2): the username is the
/// localpart of the Jingle initiator (MEDIA-5), the session id stays for the call and the
/// version goes up with every new offer or answer (RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct SdpOrigin {
    /// `o=` username; a value with white space becomes `-`.
    pub username: String,
    /// `o=` sess-id.
    pub session_id: u64,
    /// `o=` sess-version.
    pub version: u64,
    /// `o=` unicast address (the gateway's).
    pub address: IpAddr,
}

/// A token the model got from a peer, checked once more before it becomes part of an SDP
/// line: white space or a control character would split the line or start a new one.
fn tok<'a>(s: &'a str, what: &str) -> Result<&'a str, MediaError> {
    if s.is_empty()
        || s.len() > limits::VALUE
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        let v: String = s.chars().take(64).collect();
        return Err(MediaError::Malformed(format!(
            "{what} {v:?} cannot go into SDP"
        )));
    }
    Ok(s)
}

fn connection(ip: IpAddr) -> Connection {
    let addrtype = if ip.is_ipv4() {
        AddrType::Ip4
    } else {
        AddrType::Ip6
    };
    Connection::new(NetType::In, addrtype, ip.to_string())
}

fn proto(c: &Content) -> &'static str {
    let feedback = !c.rtcp_fb_all.is_empty() || c.payloads.iter().any(|p| !p.rtcp_fb.is_empty());
    match (
        c.transport.fingerprint.is_some(),
        !c.crypto.is_empty(),
        feedback,
    ) {
        (true, _, true) => "UDP/TLS/RTP/SAVPF",
        (true, _, false) => "UDP/TLS/RTP/SAVP",
        (false, true, true) => "RTP/SAVPF",
        (false, true, false) => "RTP/SAVP",
        (false, false, true) => "RTP/AVPF",
        (false, false, false) => "RTP/AVP",
    }
}

/// Render an offer (`offer = None`) or an answer to the offer whose `m=` layout is given,
/// written on behalf of `author`. Every content needs an RTP candidate (MEDIA-3: trickled
/// candidates are gathered before this is called); the error says which one has none.
pub fn to_sdp(
    desc: &Description,
    author: Role,
    kind: Kind,
    origin: &SdpOrigin,
    offer: Option<&[MLine]>,
) -> Result<Session, MediaError> {
    if desc.contents.len() > limits::CONTENTS {
        return Err(MediaError::TooLarge("contents"));
    }
    let username = if origin.username.is_empty()
        || origin
            .username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        "-".to_owned()
    } else {
        origin.username.clone()
    };
    let mut o = Origin::with_ip_addr(origin.session_id, origin.version, origin.address);
    o.username = Some(username);
    let mut s = Session::new(o, "-");
    s.times.push(Time::new(0, 0));
    let mut medias = Vec::with_capacity(desc.contents.len());
    match offer {
        None => {
            for c in &desc.contents {
                medias.push(media(c, author, kind, true)?);
            }
        }
        Some(lines) => {
            for l in lines {
                match desc.contents.iter().find(|c| l.used && c.name == l.name) {
                    Some(c) => {
                        let mut m = media(c, author, kind, l.had_mid)?;
                        // RFC 3264 §6: the answer keeps the offer's protocol.
                        m.proto = l.proto.clone();
                        medias.push(m);
                    }
                    None => {
                        let mut m = Media::new(
                            sdp_types::MediaType::Audio,
                            0,
                            sdp_types::TransportProto::RtpAvp,
                            &l.first_fmt,
                        );
                        m.media = l.media.clone();
                        m.proto = l.proto.clone();
                        if l.had_mid {
                            m.attributes.push(Attribute::with_value("mid", &l.name));
                        }
                        medias.push(m);
                    }
                }
            }
        }
    }
    // Session-level c= is the first stream's address; streams elsewhere carry their own.
    let first = medias.iter().find_map(|m| m.connections.first().cloned());
    if let Some(conn) = first {
        for m in &mut medias {
            if m.connections.first() == Some(&conn) {
                m.connections.clear();
            }
        }
        s.connection = Some(conn);
    } else {
        s.connection = Some(connection(origin.address));
    }
    for (sem, names) in [("BUNDLE", &desc.bundle), ("LS", &desc.lip_sync)] {
        // An answer may only group streams the offer named with a=mid (RFC 5888 §9.2,
        // RFC 8843 §7.3): an offer without mids, as SIP phones send, gets no group back.
        let named = |n: &String| {
            offer.is_none_or(|lines| lines.iter().any(|l| l.used && l.had_mid && &l.name == n))
        };
        if !names.is_empty() && names.iter().all(named) {
            let names: Vec<&str> = names
                .iter()
                .map(|n| tok(n, "group"))
                .collect::<Result<_, _>>()?;
            s.attributes.push(Attribute::with_value(
                "group",
                format!("{sem} {}", names.join(" ")),
            ));
        }
    }
    s.medias = medias;
    Ok(s)
}

fn media(c: &Content, author: Role, kind: Kind, with_mid: bool) -> Result<Media, MediaError> {
    let rtp = default_candidate(&c.transport.candidates, 1).ok_or_else(|| {
        MediaError::Transport(format!("content {:?} has no RTP candidate yet", c.name))
    })?;
    if c.payloads.is_empty() {
        return Err(MediaError::Unsupported(format!(
            "content {:?} has no payload type",
            c.name
        )));
    }
    let fmt: Vec<String> = c.payloads.iter().map(|p| p.id.to_string()).collect();
    let mut m = Media::new(
        sdp_types::MediaType::Audio,
        rtp.port,
        sdp_types::TransportProto::RtpAvp,
        fmt.join(" "),
    );
    m.media = tok(&c.media, "media")?.to_owned();
    m.proto = proto(c).to_owned();
    m.connections.push(connection(rtp.ip));
    if let Some((t, v)) = &c.bandwidth {
        m.bandwidths.push(Bandwidth {
            bwtype: tok(t, "bandwidth")?.to_owned(),
            bandwidth: *v,
        });
    }
    let a = &mut m.attributes;
    if with_mid {
        a.push(Attribute::with_value("mid", tok(&c.name, "content name")?));
    }
    for p in &c.payloads {
        if !p.name.is_empty() {
            let mut enc = format!("{} {}/{}", p.id, tok(&p.name, "payload name")?, p.clockrate);
            if p.channels > 1 {
                enc.push_str(&format!("/{}", p.channels));
            }
            a.push(Attribute::with_value("rtpmap", enc));
        }
        if let Some(f) = fmtp::params_to_sdp(&p.name, &p.params)? {
            a.push(Attribute::with_value("fmtp", format!("{} {f}", p.id)));
        }
        for fb in &p.rtcp_fb {
            a.push(Attribute::with_value(
                "rtcp-fb",
                fb_value(&p.id.to_string(), fb)?,
            ));
        }
    }
    for fb in &c.rtcp_fb_all {
        a.push(Attribute::with_value("rtcp-fb", fb_value("*", fb)?));
    }
    // SDP has one ptime per stream; Jingle one per payload type: the first (preferred)
    // payload type's value is the stream's.
    if let Some(pt) = c.payloads.first().and_then(|p| p.ptime) {
        a.push(Attribute::with_value("ptime", pt));
    }
    if let Some(mp) = c.payloads.first().and_then(|p| p.maxptime) {
        a.push(Attribute::with_value("maxptime", mp));
    }
    a.push(Attribute::new(direction(c.senders, author)));
    if c.rtcp_mux {
        a.push(Attribute::new("rtcp-mux"));
    } else if let Some(rtcp) = default_candidate(&c.transport.candidates, 2)
        .filter(|r| (r.ip, r.port) != (rtp.ip, rtp.port.wrapping_add(1)))
    {
        let fam = if rtcp.ip.is_ipv4() { "IP4" } else { "IP6" };
        a.push(Attribute::with_value(
            "rtcp",
            format!("{} IN {fam} {}", rtcp.port, rtcp.ip),
        ));
    }
    if let Some(ice) = &c.transport.ice {
        a.push(Attribute::with_value(
            "ice-ufrag",
            tok(&ice.ufrag, "ufrag")?,
        ));
        a.push(Attribute::with_value("ice-pwd", tok(&ice.pwd, "pwd")?));
        // SDP has no generations: only the newest generation's candidates are current.
        let newest = c
            .transport
            .candidates
            .iter()
            .map(|c| c.generation)
            .max()
            .unwrap_or(0);
        for cand in c
            .transport
            .candidates
            .iter()
            .filter(|x| x.generation == newest)
        {
            a.push(Attribute::with_value("candidate", candidate_value(cand)?));
        }
        if c.transport.end_of_candidates {
            a.push(Attribute::new("end-of-candidates"));
        }
    }
    if let Some(fp) = &c.transport.fingerprint {
        a.push(Attribute::with_value(
            "fingerprint",
            format!(
                "{} {}",
                tok(&fp.hash, "hash")?,
                tok(&fp.value, "fingerprint")?
            ),
        ));
        // RFC 5763 §5: an answer is active or passive, never actpass.
        let setup = if kind == Kind::Answer && fp.setup == Setup::Actpass {
            Setup::Active
        } else {
            fp.setup
        };
        a.push(Attribute::with_value("setup", setup.as_str()));
    }
    for cr in &c.crypto {
        let mut v = format!(
            "{} {} {}",
            cr.tag,
            tok(&cr.suite, "crypto suite")?,
            tok(&cr.key_params, "crypto key")?
        );
        if let Some(sp) = &cr.session_params {
            if sp.chars().any(|c| c.is_control()) {
                return Err(MediaError::Malformed("crypto session parameters".into()));
            }
            v.push(' ');
            v.push_str(sp);
        }
        a.push(Attribute::with_value("crypto", v));
    }
    for h in &c.hdrexts {
        let dir = match h.senders {
            Some(s) => format!("/{}", direction(s, author)),
            None => String::new(),
        };
        a.push(Attribute::with_value(
            "extmap",
            format!("{}{dir} {}", h.id, tok(&h.uri, "extmap uri")?),
        ));
    }
    if c.extmap_allow_mixed {
        a.push(Attribute::new("extmap-allow-mixed"));
    }
    for g in &c.source_groups {
        let ids: Vec<String> = g.ssrcs.iter().map(u32::to_string).collect();
        a.push(Attribute::with_value(
            "ssrc-group",
            format!("{} {}", tok(&g.semantics, "ssrc-group")?, ids.join(" ")),
        ));
    }
    for src in &c.sources {
        for (n, v) in &src.params {
            let v = match v {
                Some(v) if !v.chars().any(char::is_control) => {
                    format!("{} {}:{v}", src.ssrc, tok(n, "ssrc attribute")?)
                }
                Some(_) => return Err(MediaError::Malformed("ssrc value".into())),
                None => format!("{} {}", src.ssrc, tok(n, "ssrc attribute")?),
            };
            a.push(Attribute::with_value("ssrc", v));
        }
    }
    Ok(m)
}

fn fb_value(pt: &str, fb: &RtcpFb) -> Result<String, MediaError> {
    Ok(match &fb.subtype {
        Some(s) => format!("{pt} {} {}", tok(&fb.kind, "rtcp-fb")?, tok(s, "rtcp-fb")?),
        None => format!("{pt} {}", tok(&fb.kind, "rtcp-fb")?),
    })
}

fn candidate_value(c: &Candidate) -> Result<String, MediaError> {
    let foundation = if c.foundation.is_empty() {
        "1"
    } else {
        tok(&c.foundation, "foundation")?
    };
    let mut v = format!(
        "{foundation} {} udp {} {} {} typ {}",
        c.component,
        c.priority,
        c.ip,
        c.port,
        c.kind.as_str()
    );
    if let (Some(a), Some(p)) = (c.rel_addr, c.rel_port) {
        v.push_str(&format!(" raddr {a} rport {p}"));
    }
    Ok(v)
}
