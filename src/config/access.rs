//! `[access]`: who may use the gateway from either side (hardening; RFC 7247 §8 and RFC 8048
//! §8 leave the policy to the gateway, RFC 3261 §22 gives the digest challenge).

use serde::Deserialize;
use std::path::PathBuf;

/// What a SIP request from outside `sip_trusted` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Untrusted {
    /// Served like a trusted one (an open SIP side, like open XMPP federation).
    Allow,
    /// 403 Forbidden.
    Refuse,
    /// 401 with a digest challenge; served once it answers with the credentials of its From
    /// user from `sip_credentials_file`.
    Challenge,
}

/// `[access]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// XMPP domains besides `addresses.xmpp_domains` whose users may send and subscribe
    /// through the gateway (federated users). Their addresses map the same way; stox does not
    /// claim to be authoritative for them (no DNS checks).
    #[serde(default)]
    pub federated_xmpp_domains: Vec<String>,
    /// Source networks (CIDR, or a bare address) whose SIP requests are served without
    /// question: the SIP proxies in front of stox.
    #[serde(default = "default_trusted")]
    pub sip_trusted: Vec<String>,
    /// Policy for every other source.
    #[serde(default = "default_untrusted")]
    pub sip_untrusted: Untrusted,
    /// Digest realm of the challenge; default: the component domain.
    #[serde(default)]
    pub sip_realm: Option<String>,
    /// `user:password` lines (`#` starts a comment) for `sip_untrusted = "challenge"`. Keep it
    /// readable by stox only.
    #[serde(default)]
    pub sip_credentials_file: Option<PathBuf>,
    /// How long a challenge's nonce stays good; an older one gets a fresh challenge with
    /// `stale=true`, so the client retries without asking its user.
    #[serde(default = "default_nonce_secs")]
    pub nonce_lifetime_secs: u64,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            federated_xmpp_domains: Vec::new(),
            sip_trusted: default_trusted(),
            sip_untrusted: default_untrusted(),
            sip_realm: None,
            sip_credentials_file: None,
            nonce_lifetime_secs: default_nonce_secs(),
        }
    }
}

fn default_trusted() -> Vec<String> {
    vec!["0.0.0.0/0".into(), "::/0".into()]
}

fn default_untrusted() -> Untrusted {
    Untrusted::Refuse
}

fn default_nonce_secs() -> u64 {
    300
}

impl AccessConfig {
    /// Parsed `sip_trusted`; entries that do not parse are reported by [`Self::validate`].
    pub fn trusted_networks(&self) -> Vec<ipnet::IpNet> {
        self.sip_trusted
            .iter()
            .filter_map(|s| parse_net(s).ok())
            .collect()
    }

    pub(crate) fn validate(&self, component: &str, served: &[String], problems: &mut Vec<String>) {
        for n in &self.sip_trusted {
            if let Err(e) = parse_net(n) {
                problems.push(format!("access.sip_trusted entry {n:?}: {e}"));
            }
        }
        for d in &self.federated_xmpp_domains {
            if xmpp_parsers::jid::BareJid::new(d).map_or(true, |j| j.node().is_some()) {
                problems.push(format!(
                    "access.federated_xmpp_domains entry {d:?}: not a domain"
                ));
            } else if d.eq_ignore_ascii_case(component) {
                problems.push(format!(
                    "access.federated_xmpp_domains entry {d:?}: must differ from component.jid"
                ));
            } else if served.iter().any(|s| s.eq_ignore_ascii_case(d)) {
                problems.push(format!(
                    "access.federated_xmpp_domains entry {d:?}: already in addresses.xmpp_domains"
                ));
            }
        }
        if self.sip_untrusted == Untrusted::Challenge && self.sip_credentials_file.is_none() {
            problems.push(
                "access.sip_untrusted = \"challenge\" needs access.sip_credentials_file".into(),
            );
        }
        if let Some(f) = &self.sip_credentials_file {
            if let Err(e) = crate::access::Credentials::load(f) {
                problems.push(format!("access.sip_credentials_file: {e}"));
            }
        }
        if self.nonce_lifetime_secs == 0 {
            problems.push("access.nonce_lifetime_secs must be at least 1".into());
        }
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<ipnet::IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| "not an address or CIDR network".to_string())
}
