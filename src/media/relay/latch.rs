//! Where one leg's packets may come from and where they go (symmetric RTP, RFC 4961; the
//! "latching" of RFC 7362 §4.2, restricted so the relay cannot be borrowed).
//!
//! A phone behind NAT writes its private address into SDP and its packets arrive from the
//! NAT's public address. The relay therefore sends to the address packets come *from*
//! (latching), but only when that address's IP came out of the call's own negotiation: the
//! IP of the description itself, or the IP the party's signalling arrived from. Anything
//! else is dropped and counted, and nothing is ever sent to an address outside that set
//! (RFC 7362 §5: latching to anyone who sends first would let a stranger take the call's
//! media, or use the relay to flood a third party).

use std::net::{IpAddr, SocketAddr};

/// The addresses of one leg (one socket of the relay: a side's RTP or RTCP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latch {
    /// Where the description says to send.
    negotiated: Option<SocketAddr>,
    /// The IP the party's signalling came from, if known.
    signalling: Option<IpAddr>,
    /// Where the last accepted packet came from.
    latched: Option<SocketAddr>,
}

impl Latch {
    /// A leg whose party signals from `signalling` (if known).
    pub fn new(signalling: Option<IpAddr>) -> Latch {
        Latch {
            signalling,
            ..Latch::default()
        }
    }

    /// The party's signalling comes from `ip` (learnt after the leg was made).
    pub fn set_signalling(&mut self, ip: IpAddr) {
        self.signalling = Some(ip);
    }

    /// A (new) description: send to `addr`. A latched source stays only while its IP is
    /// still allowed.
    pub fn negotiate(&mut self, addr: Option<SocketAddr>) {
        self.negotiated = addr;
        if self.latched.is_some_and(|l| !self.allowed(l.ip())) {
            self.latched = None;
        }
    }

    /// Whether packets from `ip` may be taken (without latching to them).
    pub fn allowed(&self, ip: IpAddr) -> bool {
        Some(ip) == self.signalling || Some(ip) == self.negotiated.map(|a| a.ip())
    }

    /// A packet arrived from `src`: whether to forward it. An accepted source becomes the
    /// leg's destination (the party moved port, e.g. its NAT binding changed).
    pub fn accept(&mut self, src: SocketAddr) -> bool {
        if !self.allowed(src.ip()) {
            return false;
        }
        self.latched = Some(src);
        true
    }

    /// Where to send this leg's packets: the latched source, else the negotiated address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.negotiated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sends_to_the_negotiated_address_until_a_packet_arrives() {
        let mut l = Latch::new(None);
        assert_eq!(l.destination(), None, "nothing negotiated: nowhere to send");
        l.negotiate(Some(a("192.0.2.10:4000")));
        assert_eq!(l.destination(), Some(a("192.0.2.10:4000")));
        // Symmetric RTP from another port of the same host: latched.
        assert!(l.accept(a("192.0.2.10:4444")));
        assert_eq!(l.destination(), Some(a("192.0.2.10:4444")));
    }

    #[test]
    fn nat_latching_only_to_the_signalling_source() {
        // The phone writes its private address; its SIP came from the NAT's public one.
        let mut l = Latch::new(Some("198.51.100.1".parse().unwrap()));
        l.negotiate(Some(a("10.0.0.5:4000")));
        assert!(l.accept(a("198.51.100.1:61000")));
        assert_eq!(l.destination(), Some(a("198.51.100.1:61000")));
    }

    #[test]
    fn strangers_are_dropped_and_never_become_destinations() {
        let mut l = Latch::new(Some("198.51.100.1".parse().unwrap()));
        l.negotiate(Some(a("192.0.2.10:4000")));
        assert!(!l.accept(a("203.0.113.66:4000")));
        assert_eq!(l.destination(), Some(a("192.0.2.10:4000")));
        // Not even before the party's own first packet.
        let mut fresh = Latch::new(None);
        fresh.negotiate(Some(a("192.0.2.10:4000")));
        assert!(!fresh.accept(a("203.0.113.66:5000")));
        assert_eq!(fresh.destination(), Some(a("192.0.2.10:4000")));
    }

    #[test]
    fn a_new_description_moves_the_leg_and_forgets_the_old_ip() {
        let mut l = Latch::new(None);
        l.negotiate(Some(a("192.0.2.10:4000")));
        assert!(l.accept(a("192.0.2.10:4000")));
        l.negotiate(Some(a("192.0.2.20:5000")));
        assert_eq!(l.destination(), Some(a("192.0.2.20:5000")));
        assert!(
            !l.accept(a("192.0.2.10:4000")),
            "the old address is no longer allowed"
        );
        assert!(l.accept(a("192.0.2.20:5002")));
    }

    #[test]
    fn hold_without_address_keeps_the_latched_source() {
        let mut l = Latch::new(Some("198.51.100.1".parse().unwrap()));
        l.negotiate(Some(a("198.51.100.1:4000")));
        assert!(l.accept(a("198.51.100.1:4000")));
        // RFC 2543 hold: c=0.0.0.0, read as no address.
        l.negotiate(None);
        assert_eq!(l.destination(), Some(a("198.51.100.1:4000")));
        assert!(l.accept(a("198.51.100.1:4000")));
    }
}
