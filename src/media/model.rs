//! The media description both translators share: what one party says about its RTP streams
//! in one offer or answer, independent of whether it came as SDP (RFC 4566, RFC 3264) or as
//! Jingle contents (XEP-0166/0167/0176/0177/0320). SDP and Jingle are each parsed into this
//! model and rendered from it, so every mapping rule of draft-ietf-stox-media §5 lives in one
//! place per direction and the two directions can be tested as a round trip.
//!
//! Directions are kept in Jingle's terms (`senders` names initiator/responder) because SDP's
//! `a=sendonly`/`a=recvonly` depend on who wrote the SDP (MEDIA-6); the SDP side converts
//! with the author's [`Role`].

use std::net::IpAddr;

/// Which party of the Jingle session a description speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The party that sent `session-initiate` (the caller).
    Initiator,
    /// The party that answers with `session-accept` (the callee).
    Responder,
}

/// Whether a description is an offer or an answer (RFC 3264): DTLS roles and rejected
/// streams follow different rules in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `session-initiate`, `content-add`, an INVITE or re-INVITE body.
    Offer,
    /// `session-accept`, `content-accept`, the SDP of a 2xx or reliable 1xx.
    Answer,
}

/// Who sends media on a content (XEP-0166 `senders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Senders {
    /// Both parties (the default when the attribute is missing, MEDIA-6).
    #[default]
    Both,
    /// Only the initiator.
    Initiator,
    /// Only the responder.
    Responder,
    /// Nobody (mutual hold, MEDIA-16).
    None,
}

impl Senders {
    /// The XEP-0166 attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Senders::Both => "both",
            Senders::Initiator => "initiator",
            Senders::Responder => "responder",
            Senders::None => "none",
        }
    }

    /// Parse the XEP-0166 attribute value.
    pub fn parse(s: &str) -> Option<Senders> {
        Some(match s {
            "both" => Senders::Both,
            "initiator" => Senders::Initiator,
            "responder" => Senders::Responder,
            "none" => Senders::None,
            _ => return None,
        })
    }
}

/// A whole offer or answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Description {
    /// The media streams, in `m=` / `<content>` order.
    pub contents: Vec<Content>,
    /// `a=group:BUNDLE` / XEP-0338 `<group semantics='BUNDLE'>`: content names.
    pub bundle: Vec<String>,
    /// `a=group:LS` (lip sync) content names; kept so a round trip loses nothing.
    pub lip_sync: Vec<String>,
}

/// One media stream (`m=` line / `<content>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Jingle content name, SDP `a=mid` (MEDIA-5).
    pub name: String,
    /// Who sends.
    pub senders: Senders,
    /// `audio` or `video` (other media types are refused before they get here).
    pub media: String,
    /// Payload types in preference order (MEDIA-9).
    pub payloads: Vec<Payload>,
    /// `a=rtcp-fb:*` / description-level XEP-0293 feedback, for every payload.
    pub rtcp_fb_all: Vec<RtcpFb>,
    /// `a=rtcp-mux` / `<rtcp-mux/>`.
    pub rtcp_mux: bool,
    /// `a=extmap` / XEP-0294 `<rtp-hdrext>`.
    pub hdrexts: Vec<HdrExt>,
    /// `a=extmap-allow-mixed` / XEP-0294 `<extmap-allow-mixed/>`.
    pub extmap_allow_mixed: bool,
    /// `a=ssrc` / XEP-0339 `<source>`.
    pub sources: Vec<Source>,
    /// `a=ssrc-group` / XEP-0339 `<ssrc-group>`.
    pub source_groups: Vec<SourceGroup>,
    /// `a=crypto` / XEP-0167 `<encryption><crypto/>` (SDES-SRTP).
    pub crypto: Vec<Crypto>,
    /// `b=AS:` / `<bandwidth type='AS'>`; (type, kbit/s).
    pub bandwidth: Option<(String, u64)>,
    /// How media reaches this party.
    pub transport: Transport,
}

/// One RTP payload type (XEP-0167 `<payload-type>`, SDP `a=rtpmap`/`a=fmtp`).
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// Payload type number, 0..=127.
    pub id: u8,
    /// Encoding name; empty for a static payload type given without `a=rtpmap`.
    pub name: String,
    /// Clock rate in Hz; 0 when unknown (static type without `a=rtpmap`).
    pub clockrate: u32,
    /// Audio channels (1 when not given).
    pub channels: u8,
    /// `a=ptime` (session-wide in SDP; per payload in Jingle).
    pub ptime: Option<u32>,
    /// `a=maxptime`.
    pub maxptime: Option<u32>,
    /// `a=fmtp` parameters as name/value pairs (MEDIA-19..21); a name of `""` holds a token
    /// that is not `name=value`.
    pub params: Vec<(String, String)>,
    /// `a=rtcp-fb:<id>` / XEP-0293 inside the payload type.
    pub rtcp_fb: Vec<RtcpFb>,
}

/// An RTCP feedback capability (RFC 4585 / XEP-0293).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// `nack`, `ccm`, `goog-remb`, `transport-cc`, ...
    pub kind: String,
    /// `pli`, `fir`, ...
    pub subtype: Option<String>,
}

/// An RTP header extension (RFC 8285 / XEP-0294).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdrExt {
    /// Local identifier, 1..=255 (1..=14 one-byte, else two-byte).
    pub id: u16,
    /// Extension URI.
    pub uri: String,
    /// Direction restriction, in Jingle terms (`None` = both).
    pub senders: Option<Senders>,
}

/// A synchronization source and its attributes (RFC 5576 / XEP-0339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The SSRC.
    pub ssrc: u32,
    /// `(name, value)` attributes such as `cname`, `msid`.
    pub params: Vec<(String, Option<String>)>,
}

/// `a=ssrc-group` (RFC 5576) / XEP-0339 `<ssrc-group>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGroup {
    /// `FID`, `SIM`, `FEC`, ...
    pub semantics: String,
    /// The SSRCs in order.
    pub ssrcs: Vec<u32>,
}

/// An SDES key (RFC 4568 / XEP-0167 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Tag (decimal).
    pub tag: u32,
    /// Suite, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub suite: String,
    /// Key parameters, e.g. `inline:...`.
    pub key_params: String,
    /// Session parameters, if any.
    pub session_params: Option<String>,
}

/// The transport of one content.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transport {
    /// ICE-UDP (XEP-0176) when `ufrag` is set, else Raw-UDP (XEP-0177, MEDIA-10).
    pub ice: Option<IceCredentials>,
    /// Candidates; for Raw-UDP the addresses themselves.
    pub candidates: Vec<Candidate>,
    /// DTLS-SRTP fingerprint and role (XEP-0320, RFC 5763).
    pub fingerprint: Option<Fingerprint>,
    /// `a=end-of-candidates` / nothing more to trickle (MEDIA-3).
    pub end_of_candidates: bool,
}

/// ICE credentials (RFC 8445 §5.3, XEP-0176).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// Username fragment.
    pub ufrag: String,
    /// Password.
    pub pwd: String,
}

/// An ICE or Raw-UDP candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// 1 = RTP, 2 = RTCP.
    pub component: u8,
    /// ICE foundation (ice-chars, 1..=32); empty for Raw-UDP.
    pub foundation: String,
    /// Jingle generation (MEDIA-12); 0 in SDP.
    pub generation: u8,
    /// Jingle candidate id (MEDIA-13).
    pub id: String,
    /// Address.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
    /// ICE priority; 0 for Raw-UDP.
    pub priority: u32,
    /// `udp` (TCP candidates are dropped: SIP UAs and Jingle RTP use UDP).
    pub protocol: String,
    /// Candidate type.
    pub kind: CandidateKind,
    /// Related address (srflx, prflx, relay).
    pub rel_addr: Option<IpAddr>,
    /// Related port.
    pub rel_port: Option<u16>,
}

/// ICE candidate types (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// Host.
    Host,
    /// Server reflexive.
    Srflx,
    /// Peer reflexive.
    Prflx,
    /// Relayed (TURN).
    Relay,
}

impl CandidateKind {
    /// The wire token, same in SDP and Jingle.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::Srflx => "srflx",
            CandidateKind::Prflx => "prflx",
            CandidateKind::Relay => "relay",
        }
    }

    /// Parse the wire token.
    pub fn parse(s: &str) -> Option<CandidateKind> {
        Some(match s {
            "host" => CandidateKind::Host,
            "srflx" => CandidateKind::Srflx,
            "prflx" => CandidateKind::Prflx,
            "relay" => CandidateKind::Relay,
            _ => return None,
        })
    }
}

/// DTLS setup role (RFC 4145 `a=setup`, XEP-0320 `setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Opens the DTLS connection (client).
    Active,
    /// Waits for it (server).
    Passive,
    /// Either; offers only (RFC 5763 §5).
    Actpass,
}

impl Setup {
    /// The wire token, same in SDP and XEP-0320.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::Actpass => "actpass",
        }
    }
}

/// A DTLS certificate fingerprint (RFC 8122 / XEP-0320).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function, lower case (`sha-256`).
    pub hash: String,
    /// Upper-case hex bytes joined by `:`, as both SDP and XEP-0320 write them.
    pub value: String,
    /// Role.
    pub setup: Setup,
}
