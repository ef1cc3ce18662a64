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
//! - [`forward`]: the one task per call that moves the packets and notices media stopping.
//!
//! What can be anchored today: a call with one audio content whose two sides use plain
//! transports (Jingle Raw-UDP / SDP without ICE), with or without SDES keys (`a=crypto`,
//! XEP-0167 `<crypto/>`): SRTP packets are forwarded as they are, so the keys stay end to end.
//! A call with ICE or DTLS-SRTP on either side goes direct until the relay has its own ICE and
//! DTLS leg (see ARCHITECTURE.md, "Media relay").

pub mod forward;
pub mod latch;
pub mod ports;

use super::model::{Candidate, CandidateKind, Description, Senders, Transport};
use std::net::{IpAddr, SocketAddr};

/// The relay's addresses for one call: each side is told its own port pair (RTP on the even
/// port, RTCP on the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The address written into SDP and Jingle.
    pub ip: IpAddr,
    /// RTP port the XMPP party sends to.
    pub x_port: u16,
    /// RTP port the SIP party sends to.
    pub s_port: u16,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// What the call machine asks of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        [c] => {
            c.media == "audio"
                && c.transport.ice.is_none()
                && c.transport.fingerprint.is_none()
                && c.transport.candidates.iter().any(|k| k.component == 1)
        }
        _ => false,
    }
}

/// Where `desc`'s (single) content receives media.
pub fn peer(desc: &Description, side: Side) -> Peer {
    let Some(c) = desc.contents.first() else {
        return Peer {
            side,
            rtp: None,
            rtcp: None,
            both_ways: false,
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
    let rtcp = if c.rtcp_mux {
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
