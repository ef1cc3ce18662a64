//! `[media]`: whether stox anchors call media (issue 7, draft-ietf-stox-media §4: a gateway
//! may stay out of the media path or relay it).

use serde::Deserialize;
use std::net::IpAddr;

/// How call media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// The two parties send RTP to each other; stox only translates the signalling.
    #[default]
    Direct,
    /// stox anchors the media of the calls it can relay: each side is given an address of
    /// stox's own and RTP/RTCP are forwarded between them, so a phone behind NAT or a
    /// firewall that only lets the gateway through still has audio, and a plain-RTP phone
    /// can talk to a client that insists on ICE + DTLS-SRTP. That is a call whose SIP side
    /// uses plain RTP or SDES-SRTP (re-encrypted toward a DTLS client; end to end when both
    /// sides use SDES); a call with ICE or DTLS on the SIP side goes direct.
    Relay,
    /// Relay only the calls whose two sides cannot reach each other directly: a SIP caller's
    /// plain-RTP offer is relayed (ICE + DTLS-SRTP toward the client); an XMPP caller's offer
    /// goes to the phone as it is, and only when the phone refuses it (488, 606) is the
    /// INVITE sent again through the relay.
    Auto,
}

/// What a relayed SIP caller's plain offer becomes toward the XMPP party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum XmppTransport {
    /// ICE-UDP + DTLS-SRTP + rtcp-mux, terminated by the relay: what Conversations, Dino,
    /// Movim and other WebRTC-based clients require.
    #[default]
    IceUdp,
    /// Raw-UDP (XEP-0177) with plain RTP, for clients that take it.
    RawUdp,
}

/// What the relay offers a phone when an ICE + DTLS-SRTP client calls it through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SipSrtp {
    /// Plain RTP/AVP.
    #[default]
    Off,
    /// RTP/SAVP with an SDES key of the relay's (RFC 4568, AES_CM_128_HMAC_SHA1_80), for
    /// phones and trunks that require SRTP. The relay decrypts and re-encrypts between the
    /// two SRTP contexts.
    Sdes,
}

/// `[media]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// `direct` (default), `relay` or `auto`.
    #[serde(default)]
    pub mode: MediaMode,
    /// The address the relay binds and writes into SDP and Jingle. Default: the SIP contact
    /// host when it is an IP address. It must be reachable by both parties.
    #[serde(default)]
    pub relay_address: Option<IpAddr>,
    /// The address written into SDP and Jingle instead, when the parties reach the relay at
    /// another address than the one it binds: stox behind a 1:1 NAT, as on a cloud VM whose
    /// public IP is mapped to its private one (the port range must be forwarded unchanged).
    #[serde(default)]
    pub public_address: Option<IpAddr>,
    /// A STUN server (`host[:port]`, port 3478 by default) that tells stox its public address
    /// instead, asked at start and every five minutes: the same 1:1 NAT, with a public IP
    /// that may change. Until it answers, calls announce the relay's own address.
    #[serde(default)]
    pub stun_server: Option<String>,
    /// First UDP port of the relay's range (even; RTP on even ports, RTCP on the next).
    #[serde(default = "default_port_min")]
    pub port_min: u16,
    /// Last UDP port of the relay's range.
    #[serde(default = "default_port_max")]
    pub port_max: u16,
    /// A relayed call that carries no RTP or RTCP on either leg for this long is hung up
    /// (0: never). Calls on hold are exempt.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// What a SIP caller's plain offer becomes toward the XMPP party when relayed.
    #[serde(default)]
    pub xmpp_transport: XmppTransport,
    /// What an XMPP caller's ICE + DTLS-SRTP offer becomes toward the phone when relayed:
    /// plain RTP (`off`) or SDES-SRTP (`sdes`); a 488 or 606 sends the other once. A phone's
    /// own SDES offer is answered with SDES either way.
    #[serde(default)]
    pub sip_srtp: SipSrtp,
}

fn default_port_min() -> u16 {
    30000
}

fn default_port_max() -> u16 {
    39999
}

fn default_timeout() -> u64 {
    60
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            mode: MediaMode::default(),
            relay_address: None,
            public_address: None,
            stun_server: None,
            port_min: default_port_min(),
            port_max: default_port_max(),
            timeout_secs: default_timeout(),
            xmpp_transport: XmppTransport::default(),
            sip_srtp: SipSrtp::default(),
        }
    }
}

impl MediaConfig {
    /// Problems in this section.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.port_min < 1024 || !self.port_min.is_multiple_of(2) {
            problems.push(format!(
                "media.port_min = {}: expected an even port of at least 1024",
                self.port_min
            ));
        }
        // Four ports per relayed call (RTP and RTCP on each side).
        if self.port_max < self.port_min.saturating_add(3) {
            problems.push(format!(
                "media.port_max = {}: expected at least port_min + 3 (one call takes 4 ports)",
                self.port_max
            ));
        }
        if self.timeout_secs > 86_400 {
            problems.push(format!(
                "media.timeout_secs = {}: expected at most 86400",
                self.timeout_secs
            ));
        }
        if self.relay_address.is_some_and(|a| a.is_unspecified()) {
            problems
                .push("media.relay_address: expected a concrete address, not 0.0.0.0 or ::".into());
        }
        if let Some(s) = &self.stun_server {
            if let Err(e) = crate::media::relay::stun::target(s) {
                problems.push(format!("media.stun_server = {e}"));
            }
            if self.public_address.is_some() {
                problems.push(
                    "media.stun_server and media.public_address: set one (the address is \
                     either known or asked for)"
                        .into(),
                );
            }
        }
        if self.public_address.is_some_and(|a| a.is_unspecified()) {
            problems.push(
                "media.public_address: expected a concrete address, not 0.0.0.0 or ::".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c: MediaConfig = toml::from_str("").unwrap();
        assert_eq!(c.mode, MediaMode::Direct);
        assert_eq!((c.port_min, c.port_max, c.timeout_secs), (30000, 39999, 60));
        let mut problems = Vec::new();
        c.validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let relay: MediaConfig =
            toml::from_str("mode = \"relay\"\nrelay_address = \"192.0.2.7\"").unwrap();
        assert_eq!(relay.mode, MediaMode::Relay);
        assert_eq!(relay.xmpp_transport, XmppTransport::IceUdp);
        let raw: MediaConfig = toml::from_str("xmpp_transport = \"raw-udp\"").unwrap();
        assert_eq!(raw.xmpp_transport, XmppTransport::RawUdp);
        assert_eq!(raw.sip_srtp, SipSrtp::Off);
        let sdes: MediaConfig = toml::from_str("sip_srtp = \"sdes\"").unwrap();
        assert_eq!(sdes.sip_srtp, SipSrtp::Sdes);
        assert!(toml::from_str::<MediaConfig>("sip_srtp = \"dtls\"").is_err());
        let bad: MediaConfig = toml::from_str(
            "port_min = 30001\nport_max = 30002\ntimeout_secs = 100000\nrelay_address = \"0.0.0.0\"\npublic_address = \"::\"",
        )
        .unwrap();
        bad.validate(&mut problems);
        assert_eq!(problems.len(), 5, "{problems:?}");
        let natted: MediaConfig =
            toml::from_str("relay_address = \"10.0.0.5\"\npublic_address = \"198.51.100.7\"")
                .unwrap();
        assert_eq!(natted.public_address, Some("198.51.100.7".parse().unwrap()));
        let stun: MediaConfig = toml::from_str("stun_server = \"stun.example.org\"").unwrap();
        let mut p = Vec::new();
        stun.validate(&mut p);
        assert!(p.is_empty(), "{p:?}");
        let both: MediaConfig = toml::from_str(
            "stun_server = \"stun.example.org:x\"\npublic_address = \"198.51.100.7\"",
        )
        .unwrap();
        both.validate(&mut p);
        assert_eq!(p.len(), 2, "a bad port and both set: {p:?}");
        let auto: MediaConfig = toml::from_str("mode = \"auto\"").unwrap();
        assert_eq!(auto.mode, MediaMode::Auto);
        assert!(toml::from_str::<MediaConfig>("mode = \"always\"").is_err());
        assert!(toml::from_str::<MediaConfig>("ports = 5").is_err());
    }
}
