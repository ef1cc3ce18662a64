//! Media anchoring (issue 7; draft-ietf-stox-media §4 lets the gateway be in the media path).
//! In `[media] mode = "relay"` each side of a call is given an address of stox's own instead
//! of the other party's, and RTP/RTCP are forwarded between the two, never transcoded.
//!
//! - this module (pure): which descriptions can be anchored, what a side's description says
//!   about where it receives ([`Peer`]), and the description rewritten to the relay's address
//!   ([`anchored`]). The call machine (`media::call`) applies them at the two places where a
//!   description crosses from one side to the other;
//! - [`latch`] (pure): where a leg's packets may come from and go to: symmetric RTP latching
//!   for phones behind NAT, restricted to the addresses of the call's own negotiation, so the
//!   relay is never an open relay;
//! - [`ports`]: the configured UDP port range, four ports per call, released when the call's
//!   sockets are dropped;
//! - [`forward`]: the one task per call that moves the packets and notices media stopping;
//! - [`stun`] (pure): the Binding request that finds the relay's public address
//!   (`media.stun_server`).
//!
//! What can be anchored: a call with one audio content whose SIP side uses a plain transport
//! (SDP without ICE or DTLS), and whose XMPP side uses either a plain one too (Jingle Raw-UDP;
//! SDES keys, `a=crypto` / XEP-0167 `<crypto/>`, then stay end to end: SRTP is forwarded as it
//! is) or ICE-UDP + DTLS-SRTP + rtcp-mux, which [`ice`] terminates ([`Mode`]); a SIP side with
//! SDES-SRTP toward such a client is decrypted and re-encrypted by [`srtp`]. A call with ICE or
//! DTLS on the SIP side goes direct.

pub mod forward;
pub mod ice;
pub mod latch;
pub mod ports;
pub mod rtcp;
pub mod srtp;
pub mod stun;

use super::model::{
    Candidate, CandidateKind, Content, Crypto, Description, Fingerprint, IceCredentials, Kind,
    Senders, Setup, Transport,
};
use srtp::{MasterKey, SdesKey, Suite};
use std::net::{IpAddr, SocketAddr};

/// The relay's addresses for one call: each side is told its own port pair (RTP on the even
/// port, RTCP on the next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The address written into SDP and Jingle.
    pub ip: IpAddr,
    /// RTP port the XMPP party sends to.
    pub x_port: u16,
    /// RTP port the SIP party sends to.
    pub s_port: u16,
    /// The relay's ICE credentials and DTLS fingerprint toward the XMPP party, when it can
    /// terminate ICE + DTLS-SRTP.
    pub ice: Option<LocalIce>,
    /// What a SIP caller's plain offer becomes toward XMPP: ICE-UDP + DTLS-SRTP (true) or
    /// Raw-UDP (false).
    pub offer_ice: bool,
    /// `media.mode = "auto"`: an XMPP caller's offer is first tried directly.
    pub auto: bool,
    /// The relay's SDES key toward the SIP party, used when that side speaks SDES-SRTP in
    /// [`Mode::IceX`].
    pub sdes: MasterKey,
    /// `media.sip_srtp = "sdes"`: an XMPP caller's offer reaches the phone as SDES-SRTP.
    pub offer_sdes: bool,
}

/// The SIP party's SDES-SRTP in [`Mode::IceX`]: the key it encrypts with and the relay's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSrtp {
    /// The phone's line (its suite is the one both directions use).
    pub theirs: SdesKey,
    /// The key the relay encrypts with toward the phone.
    pub ours: MasterKey,
}

/// The relay's side of an ICE + DTLS-SRTP leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIce {
    /// ICE username fragment.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// DTLS certificate fingerprint: hash function and upper-case hex.
    pub fingerprint: (String, String),
}

/// The XMPP party's side of an ICE + DTLS-SRTP leg, and the relay's roles toward it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIce {
    /// ICE username fragment.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// DTLS certificate fingerprint: hash function and hex.
    pub fingerprint: (String, String),
    /// UDP candidates of component 1.
    pub candidates: Vec<SocketAddr>,
    /// The relay opens DTLS (it is `active`).
    pub dtls_client: bool,
    /// The relay is the controlling ICE agent (it initiated the Jingle session, XEP-0176).
    pub controlling: bool,
}

/// A negotiated payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// Number.
    pub pt: u8,
    /// Encoding name.
    pub name: String,
    /// Clock rate.
    pub clockrate: u32,
    /// Channels.
    pub channels: u8,
}

impl PayloadType {
    /// G.711 mu-law on its static number 0 (RFC 3551): what phones without anything else
    /// send, and the payload of the tests, benchmark and fuzz target.
    pub fn pcmu() -> PayloadType {
        PayloadType {
            pt: 0,
            name: "PCMU".into(),
            clockrate: 8000,
            channels: 1,
        }
    }
}

/// How a call is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain transports on both sides: packets forwarded as they are.
    Plain,
    /// ICE + DTLS-SRTP toward XMPP, plain RTP toward SIP.
    IceX,
}

/// A side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The XMPP party.
    X,
    /// The SIP party.
    S,
}

/// Where one side receives media, as its latest description says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Which side.
    pub side: Side,
    /// Its RTP address; `None` when it gave none or the unspecified address (RFC 2543 hold).
    pub rtp: Option<SocketAddr>,
    /// Its RTCP address (the RTP address itself with rtcp-mux).
    pub rtcp: Option<SocketAddr>,
    /// Whether media is meant to flow both ways (not on hold): the relay's no-media timer
    /// runs only then.
    pub both_ways: bool,
    /// The XMPP party's ICE + DTLS-SRTP leg ([`Mode::IceX`]); `rtp`/`rtcp` are then unused.
    pub ice: Option<RemoteIce>,
    /// The payload types of the description.
    pub payloads: Vec<PayloadType>,
    /// The SIP party's SDES-SRTP, which the relay terminates ([`Mode::IceX`] only; in
    /// [`Mode::Plain`] SRTP passes through untouched).
    pub srtp: Option<SipSrtp>,
}

/// What the call machine asks of the relay.
// One per description: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOut {
    /// A side's description arrived: send its media here.
    Peer(Peer),
    /// The call's media cannot be anchored; it goes direct and the ports can be released.
    Direct,
}

/// Whether `desc` can be anchored: one audio content on a plain transport (no ICE, no
/// DTLS) with an RTP address.
pub fn relayable(desc: &Description) -> bool {
    match desc.contents.as_slice() {
        [c] => c.media == "audio" && is_plain(c),
        _ => false,
    }
}

fn is_plain(c: &Content) -> bool {
    c.transport.ice.is_none()
        && c.transport.fingerprint.is_none()
        && c.transport.candidates.iter().any(|k| k.component == 1)
}

/// How the first description of a call, coming from `side`, lets it be anchored; `None`:
/// it goes direct.
pub fn mode(desc: &Description, side: Side, anchor: &Anchor) -> Option<Mode> {
    let [c] = desc.contents.as_slice() else {
        return None;
    };
    if c.media != "audio" {
        return None;
    }
    let ice_ok = anchor.ice.is_some();
    match side {
        // SDES toward a DTLS client: the relay re-encrypts between the two contexts, when it
        // speaks one of the offered suites; otherwise the call is not anchored rather than
        // stripped of its keys.
        Side::S if is_plain(c) && anchor.offer_ice && !c.crypto.is_empty() => {
            (ice_ok && sdes_choice(desc).is_some()).then_some(Mode::IceX)
        }
        Side::S if is_plain(c) && anchor.offer_ice && ice_ok => Some(Mode::IceX),
        Side::S if is_plain(c) => Some(Mode::Plain),
        Side::X if is_plain(c) => Some(Mode::Plain),
        Side::X if ice_ok && c.transport.ice.is_some() && c.transport.fingerprint.is_some() => {
            Some(Mode::IceX)
        }
        _ => None,
    }
}

/// The first `a=crypto` line of `desc`'s first content that the relay can use.
pub fn sdes_choice(desc: &Description) -> Option<SdesKey> {
    desc.contents
        .first()?
        .crypto
        .iter()
        .find_map(|k| srtp::sdes_key(k.tag, &k.suite, &k.key_params, k.session_params.as_deref()))
}

/// The relay's `a=crypto` line toward the SIP party: `tag` and `suite` as negotiated (an
/// answer repeats the offer's), the relay's key.
pub fn sdes_line(tag: u32, suite: Suite, ours: &MasterKey) -> Crypto {
    Crypto {
        tag,
        suite: suite.name().into(),
        key_params: ours.key_params(),
        session_params: None,
    }
}

/// The audio clock of a call's RTCP reports: the first payload type that is not DTMF or
/// comfort noise (8000 when there is none).
pub fn audio_clockrate(payloads: &[PayloadType]) -> u32 {
    payloads
        .iter()
        .find(|t| {
            !t.name.eq_ignore_ascii_case("telephone-event") && !t.name.eq_ignore_ascii_case("CN")
        })
        .map_or(8000, |t| t.clockrate)
}

/// Whether `desc`'s first content says rtcp-mux.
pub fn muxes(desc: &Description) -> bool {
    desc.contents.first().is_some_and(|c| c.rtcp_mux)
}

/// The payload types of `desc`'s first content.
pub fn payloads(desc: &Description) -> Vec<PayloadType> {
    desc.contents
        .first()
        .map(|c| {
            c.payloads
                .iter()
                .map(|p| PayloadType {
                    pt: p.id,
                    name: p.name.clone(),
                    clockrate: p.clockrate,
                    channels: p.channels,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The XMPP party's ICE leg as its description `desc` gives it; `controlling`: the relay is
/// the Jingle initiator's side.
pub fn remote_ice(desc: &Description, controlling: bool) -> Option<RemoteIce> {
    let t = &desc.contents.first()?.transport;
    let creds = t.ice.as_ref()?;
    let fp = t.fingerprint.as_ref()?;
    Some(RemoteIce {
        ufrag: creds.ufrag.clone(),
        pwd: creds.pwd.clone(),
        fingerprint: (fp.hash.clone(), fp.value.clone()),
        candidates: t
            .candidates
            .iter()
            .filter(|k| k.component == 1 && k.protocol.eq_ignore_ascii_case("udp"))
            .map(|k| SocketAddr::new(k.ip, k.port))
            .collect(),
        // RFC 5763 §5: the party that is not active is the server; an `actpass` peer lets
        // the relay choose, and it takes the client role (the answerer SHOULD be active).
        dtls_client: fp.setup != Setup::Active,
        controlling,
    })
}

/// `desc` (the XMPP party's, ICE + DTLS) as the SIP party is to see it: plain RTP at the
/// relay's `port`, without what only the ICE/DTLS leg understands (SSRCs, feedback, header
/// extensions, rtcp-mux, BUNDLE), since the relay re-sends the media under its own SSRC.
/// `crypto`: the relay's SDES line when the SIP side speaks SDES-SRTP (RTP/SAVP), else none.
pub fn plain_for_sip(
    desc: &Description,
    ip: IpAddr,
    port: u16,
    crypto: Option<Crypto>,
) -> Description {
    let mut d = desc.clone();
    d.bundle.clear();
    d.lip_sync.clear();
    for c in &mut d.contents {
        c.rtcp_mux = false;
        c.rtcp_fb_all.clear();
        c.hdrexts.clear();
        c.extmap_allow_mixed = false;
        c.sources.clear();
        c.source_groups.clear();
        c.crypto = crypto.iter().cloned().collect();
        for p in &mut c.payloads {
            p.rtcp_fb.clear();
        }
    }
    anchored(&d, ip, port)
}

/// `desc` (the SIP party's, plain) as the XMPP party is to see it: ICE-UDP with the relay's
/// credentials and one host candidate at `port`, DTLS-SRTP with its fingerprint and `setup`,
/// rtcp-mux; no SSRCs (the relay sends under its own).
pub fn ice_for_xmpp(
    desc: &Description,
    ip: IpAddr,
    port: u16,
    me: &LocalIce,
    setup: Setup,
) -> Description {
    let mut d = desc.clone();
    for c in &mut d.contents {
        c.rtcp_mux = true;
        c.sources.clear();
        c.source_groups.clear();
        c.crypto.clear();
        c.transport = Transport {
            ice: Some(IceCredentials {
                ufrag: me.ufrag.clone(),
                pwd: me.pwd.clone(),
            }),
            candidates: vec![Candidate {
                component: 1,
                foundation: "1".into(),
                generation: 0,
                id: "relay-1".into(),
                ip,
                port,
                // RFC 8445 §5.1.2.1 with type preference 126 (host), local preference 65535.
                priority: 2_130_706_431,
                protocol: "udp".into(),
                kind: CandidateKind::Host,
                rel_addr: None,
                rel_port: None,
            }],
            fingerprint: Some(Fingerprint {
                hash: me.fingerprint.0.clone(),
                value: me.fingerprint.1.clone(),
                setup,
            }),
            end_of_candidates: true,
        };
    }
    d
}

/// The DTLS `setup` the relay writes toward the XMPP party in a description of `kind`:
/// `actpass` in an offer; in an answer the opposite of the client's offer (RFC 5763 §5).
pub fn setup_toward_xmpp(kind: Kind, client_offer: Option<Setup>) -> Setup {
    match (kind, client_offer) {
        (Kind::Offer, _) => Setup::Actpass,
        (Kind::Answer, Some(Setup::Active)) => Setup::Passive,
        (Kind::Answer, _) => Setup::Active,
    }
}

/// Where `desc`'s (single) content receives media. `mux_agreed`: whether the relay's own
/// description toward that side says rtcp-mux too; RFC 5761 §5.1.1 muxes only when both
/// do, so a side that offered mux and was answered without it takes RTCP on its next port.
pub fn peer(desc: &Description, side: Side, mux_agreed: bool) -> Peer {
    let Some(c) = desc.contents.first() else {
        return Peer {
            side,
            rtp: None,
            rtcp: None,
            both_ways: false,
            ice: None,
            payloads: Vec::new(),
            srtp: None,
        };
    };
    let at = |component: u8| {
        c.transport
            .candidates
            .iter()
            .find(|k| k.component == component)
            .filter(|k| !k.ip.is_unspecified() && k.port != 0)
            .map(|k| SocketAddr::new(k.ip, k.port))
    };
    let rtp = at(1);
    let rtcp = if c.rtcp_mux && mux_agreed {
        rtp
    } else {
        // RFC 3550 §11: without a=rtcp, RTCP is on the next port.
        at(2).or_else(|| rtp.map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))))
    };
    Peer {
        side,
        rtp,
        rtcp,
        both_ways: c.senders == Senders::Both,
        ice: None,
        payloads: payloads(desc),
        srtp: None,
    }
}

/// `desc` with its transport replaced by the relay's port pair at `ip`: what the other side
/// is told. Codecs, directions and SDES keys are left as they are.
pub fn anchored(desc: &Description, ip: IpAddr, port: u16) -> Description {
    let mut d = desc.clone();
    for c in &mut d.contents {
        let mut candidates = vec![relay_candidate(1, ip, port)];
        if !c.rtcp_mux {
            candidates.push(relay_candidate(2, ip, port.wrapping_add(1)));
        }
        c.transport = Transport {
            ice: None,
            candidates,
            fingerprint: None,
            end_of_candidates: true,
        };
    }
    d
}

fn relay_candidate(component: u8, ip: IpAddr, port: u16) -> Candidate {
    Candidate {
        component,
        foundation: String::new(),
        generation: 0,
        id: format!("relay-{component}"),
        ip,
        port,
        priority: 0,
        protocol: "udp".into(),
        kind: CandidateKind::Host,
        rel_addr: None,
        rel_port: None,
    }
}

#[cfg(test)]
mod tests;
