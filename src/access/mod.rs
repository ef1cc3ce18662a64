//! Who may use the gateway from the SIP side: trusted source networks, and a digest
//! challenge (RFC 3261 §22) or a refusal for every other source. Pure: facts of a request in,
//! a verdict out; `sip::inbound` renders it as 401/403 and the config reload swaps the gate.
//!
//! Why this exists: stox sits on the open SIP internet. RFC 7247 §8 and RFC 8048 §8 leave
//! "who may use the gateway" to the operator; the usual deployment trusts its own SIP proxy
//! (which authenticated the user already) and challenges or refuses everyone else.
//!
//! The XMPP side needs no gate here: only users of `addresses.xmpp_domains` (and the
//! operator's `access.federated_xmpp_domains`) map to SIP addresses at all, so a foreign
//! sender already gets `not-allowed` from the address plan.

pub mod digest;
#[cfg(test)]
mod tests;

use crate::config::{AccessConfig, Untrusted};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// `user:password` pairs for the digest challenge. Its `Debug` never shows a password.
#[derive(Clone, Default)]
pub struct Credentials(HashMap<String, String>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} users)", self.0.len())
    }
}

impl Credentials {
    /// Read a credentials file: one `user:password` per line, `#` comments, blank lines.
    pub fn load(path: &Path) -> Result<Credentials, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Credentials::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse the file's text. Errors name the line, never its password.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:password", n + 1));
            };
            let user = user.trim();
            if user.is_empty() || password.is_empty() {
                return Err(format!("line {}: empty user or password", n + 1));
            }
            if users
                .insert(user.to_string(), password.to_string())
                .is_some()
            {
                return Err(format!("line {}: user {user:?} listed twice", n + 1));
            }
        }
        Ok(Credentials(users))
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }
}

/// What the gate needs to know of a request.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// Where the request came from (the packet's source, not any header).
    pub source: IpAddr,
    /// The method, as the digest's HA2 uses it.
    pub method: &'a str,
    /// The user part of the From URI: the identity the request claims.
    pub from_user: Option<&'a str>,
    /// Every `Authorization` header value.
    pub authorization: Vec<&'a str>,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// From a trusted network, or `sip_untrusted = "allow"`.
    Pass,
    /// The digest answer proves the From user's password.
    Authenticated(String),
    /// 403 with this reason phrase.
    Refuse(&'static str),
    /// 401 with this `WWW-Authenticate` value.
    Challenge(String),
}

/// The SIP-side access policy, built from `[access]`.
#[derive(Debug, Clone)]
pub struct SipGate {
    trusted: Vec<ipnet::IpNet>,
    policy: Untrusted,
    realm: String,
    credentials: Credentials,
    nonces: digest::Nonces,
}

impl SipGate {
    /// Build the gate (reads the credentials file). `key` signs the nonces: keep it across
    /// reloads so challenges issued before a reload still count.
    pub fn new(cfg: &AccessConfig, component: &str, key: [u8; 32]) -> Result<SipGate, String> {
        let credentials = match &cfg.sip_credentials_file {
            Some(f) => Credentials::load(f)?,
            None => Credentials::default(),
        };
        Ok(SipGate {
            trusted: cfg.trusted_networks(),
            policy: cfg.sip_untrusted,
            realm: cfg
                .sip_realm
                .clone()
                .unwrap_or_else(|| component.to_string()),
            credentials,
            nonces: digest::Nonces::new(key, cfg.nonce_lifetime_secs),
        })
    }

    /// The gate for a reloaded `[access]`, keeping this gate's nonce key so challenges
    /// issued before the reload still count.
    pub fn reconfigured(&self, cfg: &AccessConfig, component: &str) -> Result<SipGate, String> {
        let mut g = SipGate::new(cfg, component, [0; 32])?;
        g.nonces = self.nonces.with_lifetime(cfg.nonce_lifetime_secs);
        Ok(g)
    }

    /// A gate that lets everything through (tests, and a gateway without `[access]`).
    pub fn open() -> SipGate {
        SipGate {
            trusted: Vec::new(),
            policy: Untrusted::Allow,
            realm: String::new(),
            credentials: Credentials::default(),
            nonces: digest::Nonces::new([0; 32], 1),
        }
    }

    /// Whether `ip` is in a trusted network. IPv4-mapped IPv6 sources (a dual-stack socket)
    /// count as their IPv4 address.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// Decide on a request at `now` (Unix seconds).
    pub fn check(&self, f: &Facts<'_>, now: u64) -> Verdict {
        if self.policy == Untrusted::Allow || self.is_trusted(f.source) {
            return Verdict::Pass;
        }
        if self.policy == Untrusted::Refuse {
            return Verdict::Refuse("Forbidden: source not trusted");
        }
        let challenge = |stale| {
            let nonce = self.nonces.issue(&self.realm, now);
            Verdict::Challenge(digest::challenge(
                &self.realm,
                &nonce,
                digest::Algorithm::Md5,
                stale,
            ))
        };
        // Several Authorization headers can travel (one per realm on the path): ours is the
        // one naming our realm.
        let Some(answer) = f
            .authorization
            .iter()
            .filter_map(|h| digest::parse(h))
            .find(|a| a.realm == self.realm)
        else {
            return challenge(false);
        };
        match self.nonces.check(&answer.nonce, &self.realm, now) {
            Ok(()) => {}
            Err(digest::Failure::Stale) => return challenge(true),
            Err(digest::Failure::Wrong) => return challenge(false),
        }
        let Some(password) = self.credentials.password(&answer.username) else {
            return challenge(false);
        };
        if digest::verify(&answer, f.method, password).is_err() {
            return challenge(false);
        }
        // A user may only speak as itself: the password of one account must not let it
        // send as another SIP user (the XMPP side would show the forged From).
        if f.from_user != Some(answer.username.as_str()) {
            return Verdict::Refuse("Forbidden: From does not match the authenticated user");
        }
        Verdict::Authenticated(answer.username)
    }
}
