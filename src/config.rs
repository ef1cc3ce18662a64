//! Gateway configuration (TOML): the public contract documented in `component.toml.example`.
//!
//! Unknown keys are rejected (`deny_unknown_fields`) so a typo never silently falls back to a
//! default, and [`Config::validate`] reports every problem at once so an admin fixes a file in
//! one pass instead of one error per restart.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "config/access.rs"]
mod access;
pub use access::{parse_net, AccessConfig, Untrusted};
#[path = "config/chat.rs"]
mod chat;
#[path = "config/safety.rs"]
mod safety;
pub use chat::{ChatConfig, ChatMode};
#[path = "config/tls.rs"]
mod tls;
pub use tls::TlsConfig;
#[path = "config/ops.rs"]
mod ops;
pub use ops::{
    AdminConfig, CallsConfig, LimitsConfig, LogConfig, LogFormat, MediaConfig, MediaMode,
    MetricsConfig, MucConfig, SipSrtp, XmppTransport,
};

/// Environment variable that may carry the component secret instead of the file.
pub const SECRET_ENV: &str = "STOX_COMPONENT_SECRET";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[component]`: the XEP-0114 link.
    pub component: ComponentConfig,
    /// `[sip]`: the SIP user agent.
    #[serde(default)]
    pub sip: SipConfig,
    /// `[addresses]`: the address plan (RFC 7247 §6).
    pub addresses: AddressesConfig,
    /// `[messages]`: page-mode messaging policy (RFC 7572).
    #[serde(default)]
    pub messages: MessagesConfig,
    /// `[presence]`: RFC 8048 presence and its persistent state.
    #[serde(default)]
    pub presence: PresenceConfig,
    /// `[chat]`: MSRP chat sessions (RFC 7573).
    #[serde(default)]
    pub chat: ChatConfig,
    /// `[admin]`: who may run the admin commands.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[metrics]`: the OpenMetrics endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[log]`: level and format.
    #[serde(default)]
    pub log: LogConfig,
    /// `[limits]`: per-sender rates.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[access]`: who may use the gateway.
    #[serde(default)]
    pub access: AccessConfig,
    /// `[calls]`: Jingle <-> SIP call signalling.
    #[serde(default)]
    pub calls: CallsConfig,
    /// `[muc]`: SIP users in XMPP rooms.
    #[serde(default)]
    pub muc: MucConfig,
    /// `[media]`: relaying call media.
    #[serde(default)]
    pub media: MediaConfig,
}

/// `[component]` section.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Component domain, e.g. `sip.example.com`.
    pub jid: String,
    /// `host:port` of the XMPP server's component listener.
    #[serde(default = "default_server")]
    pub server: String,
    /// Shared secret (prefer `secret_file` or the environment).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// File whose first line is the shared secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Seconds between XEP-0199 keepalive pings to the server.
    #[serde(default = "default_ping_interval")]
    pub ping_interval_secs: u64,
    /// Upper bound of the reconnect backoff, in seconds.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_secs: u64,
}

impl fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("jid", &self.jid)
            .field("server", &self.server)
            .field("secret", &self.secret)
            .field("secret_file", &self.secret_file)
            .field("ping_interval_secs", &self.ping_interval_secs)
            .field("reconnect_max_secs", &self.reconnect_max_secs)
            .finish()
    }
}

/// A secret string that never prints its value.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is used on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `[sip]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Listening sockets, `udp:IP:PORT`, `tcp:IP:PORT` or `tls:IP:PORT`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Optional outbound proxy (a SIP URI) used for every domain without a static route.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Static next hop per SIP domain.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// User-Agent / Server header value.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Receive buffer asked for each UDP listener, bytes (0: the kernel default). The kernel
    /// caps it at net.core.rmem_max.
    #[serde(default = "default_udp_receive_buffer")]
    pub udp_receive_buffer_bytes: usize,
    /// Bytes of inbound requests held at once (queued for the router or waiting for their
    /// bounce window), each counted with ezk's 36 KiB per transaction; beyond it new requests
    /// get 503 (0: no limit).
    #[serde(default = "default_max_held")]
    pub max_held_bytes: usize,
    /// `[sip.tls]`: certificate and trust for SIP over TLS.
    #[serde(default)]
    pub tls: TlsConfig,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: default_listen(),
            outbound_proxy: None,
            routes: BTreeMap::new(),
            user_agent: default_user_agent(),
            udp_receive_buffer_bytes: default_udp_receive_buffer(),
            max_held_bytes: default_max_held(),
            tls: TlsConfig::default(),
        }
    }
}

/// `[addresses]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressesConfig {
    /// XMPP domains whose users the gateway serves on the SIP side.
    pub xmpp_domains: Vec<String>,
    /// Default SIP domain: `user@<component>` <-> `sip:user@<sip_domain>`.
    pub sip_domain: String,
}

/// The `type` given to messages that come from SIP (RFC 7572 §5 says normal; clients expect chat).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum InboundType {
    /// `type='chat'`: shown in the conversation window by every modern client (default).
    #[default]
    Chat,
    /// `type='normal'`: what RFC 7572 §5 (IM-7) prescribes.
    Normal,
}

/// `[messages]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// Type of SIP -> XMPP messages.
    #[serde(default)]
    pub inbound_type: InboundType,
    /// How long (ms) the final response to a SIP MESSAGE waits for an XMPP bounce.
    #[serde(default = "default_bounce_window")]
    pub bounce_window_ms: u64,
    /// Largest XMPP -> SIP message body (bytes) accepted; larger gets policy-violation.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            inbound_type: InboundType::Chat,
            bounce_window_ms: default_bounce_window(),
            max_body_bytes: default_max_body(),
        }
    }
}

/// `[presence]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    /// Directory of the state database (`stox.sqlite3`); created on first run.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Expires (s) asked for in SUBSCRIBEs and granted to SIP watchers.
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// Shortest SIP subscription accepted (s); shorter ones get 423.
    #[serde(default = "default_min_expires")]
    pub min_expires_secs: u32,
    /// Longest SIP subscription granted (s).
    #[serde(default = "default_max_expires")]
    pub max_expires_secs: u32,
    /// Presence authorizations one watcher (XMPP or SIP user) may hold.
    #[serde(default = "default_max_per_user")]
    pub max_subscriptions_per_user: usize,
    /// Presence authorizations in total.
    #[serde(default = "default_max_total")]
    pub max_subscriptions_total: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            state_dir: default_state_dir(),
            expires_secs: default_expires(),
            min_expires_secs: default_min_expires(),
            max_expires_secs: default_max_expires(),
            max_subscriptions_per_user: default_max_per_user(),
            max_subscriptions_total: default_max_total(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/stox")
}
fn default_expires() -> u32 {
    3600
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    86_400
}
fn default_max_per_user() -> usize {
    1000
}
fn default_max_total() -> usize {
    100_000
}

fn default_server() -> String {
    "127.0.0.1:5347".into()
}
fn default_ping_interval() -> u64 {
    30
}
fn default_reconnect_max() -> u64 {
    30
}
fn default_listen() -> Vec<String> {
    vec!["udp:127.0.0.1:5060".into(), "tcp:127.0.0.1:5060".into()]
}
/// 1 MiB, about 700 datagrams of SIP: the kernel default (about 200 KB, some 150 datagrams)
/// drops bursts while the runtime is busy for a few milliseconds; 1 MiB took the benchmark's
/// drops to zero at 12,000 MESSAGEs/s. Not more: under a flood every queued datagram is
/// latency for the legitimate request behind it (4 MiB of garbage kept a debug build from
/// answering OPTIONS for seconds after the integration suite's fuzzer).
fn default_max_held() -> usize {
    // About 3,500 small MESSAGEs: 11,000/s (the benchmark's ceiling) held for a 200 ms bounce
    // window is 2,200.
    128 << 20
}

fn default_udp_receive_buffer() -> usize {
    1 << 20
}

fn default_user_agent() -> String {
    format!("stox/{}", env!("CARGO_PKG_VERSION"))
}
fn default_bounce_window() -> u64 {
    200
}
fn default_max_body() -> usize {
    16 * 1024
}

/// A listening socket from `sip.listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// UDP socket.
    Udp(SocketAddr),
    /// TCP listener.
    Tcp(SocketAddr),
    /// TLS listener (TCP, certificate from `[sip.tls]`).
    Tls(SocketAddr),
}

impl Listen {
    /// Parse `udp:IP:PORT` / `tcp:IP:PORT` / `tls:IP:PORT`.
    pub fn parse(s: &str) -> Result<Listen, String> {
        let (proto, addr) = s.split_once(':').ok_or_else(|| {
            format!("sip.listen entry {s:?}: expected udp:IP:PORT, tcp:IP:PORT or tls:IP:PORT")
        })?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("sip.listen entry {s:?}: bad address: {e}"))?;
        match proto.to_ascii_lowercase().as_str() {
            "udp" => Ok(Listen::Udp(addr)),
            "tcp" => Ok(Listen::Tcp(addr)),
            "tls" => Ok(Listen::Tls(addr)),
            other => Err(format!(
                "sip.listen entry {s:?}: unknown transport {other:?} (udp, tcp or tls)"
            )),
        }
    }
}

impl Config {
    /// The presence engine's settings.
    pub fn presence_settings(&self) -> crate::presence::subscription::Settings {
        let p = &self.presence;
        crate::presence::subscription::Settings {
            expires: p.expires_secs,
            min_expires: p.min_expires_secs,
            max_expires: p.max_expires_secs,
            max_per_user: p.max_subscriptions_per_user,
            max_total: p.max_subscriptions_total,
            ..Default::default()
        }
    }

    /// Parse TOML text (syntax and unknown keys only; see [`Config::validate`]).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Read and parse a file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text)
    }

    /// Every semantic problem in the file, all at once (empty = valid).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let c = &self.component;
        if xmpp_parsers::jid::BareJid::new(&c.jid).map_or(true, |j| j.node().is_some()) {
            problems.push(format!(
                "component.jid {:?}: must be a bare domain like sip.example.com",
                c.jid
            ));
        }
        if c.server
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            problems.push(format!(
                "component.server {:?}: expected host:port",
                c.server
            ));
        }
        let sources = [c.secret.is_some(), c.secret_file.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if sources > 1 {
            problems.push("component: set only one of secret and secret_file".into());
        }
        if sources == 0 && std::env::var_os(SECRET_ENV).is_none() {
            problems.push(format!(
                "component: no secret (set secret, secret_file or ${SECRET_ENV})"
            ));
        }
        if let Some(f) = &c.secret_file {
            if let Err(e) = std::fs::metadata(f) {
                problems.push(format!("component.secret_file {}: {e}", f.display()));
            }
        }
        if c.ping_interval_secs == 0 {
            problems.push("component.ping_interval_secs must be at least 1".into());
        }
        if c.reconnect_max_secs == 0 {
            problems.push("component.reconnect_max_secs must be at least 1".into());
        }
        if self.sip.listen.is_empty() {
            problems.push("sip.listen: at least one socket is needed".into());
        }
        for l in &self.sip.listen {
            if let Err(e) = Listen::parse(l) {
                problems.push(e);
            }
        }
        let tls_listener = self.listen().iter().any(|l| matches!(l, Listen::Tls(_)));
        self.sip.tls.validate(tls_listener, &mut problems);
        // The same check as at send time: a URI, and no sips: over UDP.
        let hop_ok = |h: &str| crate::sip::tls::hop_with_transport(h, 0, usize::MAX).map(drop);
        if let Some(p) = &self.sip.outbound_proxy {
            if let Err(e) = hop_ok(p) {
                problems.push(format!("sip.outbound_proxy {p:?}: {e}"));
            }
        }
        for (domain, hop) in &self.sip.routes {
            if let Err(e) = hop_ok(hop) {
                problems.push(format!("sip.routes.{domain:?} = {hop:?}: {e}"));
            }
        }
        let p = &self.presence;
        if p.expires_secs < 60 {
            problems.push("presence.expires_secs must be at least 60".into());
        }
        if p.min_expires_secs == 0 || p.min_expires_secs > p.max_expires_secs {
            problems.push(
                "presence.min_expires_secs must be at least 1 and at most max_expires_secs".into(),
            );
        }
        if p.expires_secs > p.max_expires_secs {
            problems.push("presence.expires_secs must not exceed max_expires_secs".into());
        }
        if p.state_dir.as_os_str().is_empty() {
            problems.push("presence.state_dir must name a directory".into());
        }
        if self.addresses.xmpp_domains.is_empty() {
            problems.push("addresses.xmpp_domains: list at least one XMPP domain".into());
        }
        for d in &self.addresses.xmpp_domains {
            if xmpp_parsers::jid::BareJid::new(d).map_or(true, |j| j.node().is_some()) {
                problems.push(format!("addresses.xmpp_domains entry {d:?}: not a domain"));
            }
            if d.eq_ignore_ascii_case(&c.jid) {
                problems.push(format!(
                    "addresses.xmpp_domains entry {d:?}: must differ from component.jid"
                ));
            }
        }
        if self.addresses.sip_domain.trim().is_empty()
            || self.addresses.sip_domain.contains(['@', ' ', '/'])
        {
            problems.push(format!(
                "addresses.sip_domain {:?}: not a domain",
                self.addresses.sip_domain
            ));
        }
        if self.messages.bounce_window_ms >= 500 {
            problems.push(format!(
                "messages.bounce_window_ms = {}: must stay below the 500 ms SIP T1 retransmit timer",
                self.messages.bounce_window_ms
            ));
        }
        self.chat
            .validate(self.sip.tls.cert_file.is_some(), &mut problems);
        self.access
            .validate(&c.jid, &self.addresses.xmpp_domains, &mut problems);
        self.admin.validate(&mut problems);
        self.calls.validate(&mut problems);
        self.muc.validate(&self.component.jid, &mut problems);
        self.media.validate(&mut problems);
        self.metrics.validate(&mut problems);
        self.log.validate(&mut problems);
        problems
    }

    /// The component secret from the file, the environment, or the config, in that order of
    /// preference.
    pub fn secret(&self) -> Result<Secret, String> {
        if let Some(f) = &self.component.secret_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read secret_file {}: {e}", f.display()))?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                return Err(format!("secret_file {} is empty", f.display()));
            }
            return Ok(Secret(line));
        }
        if let Some(s) = &self.component.secret {
            return Ok(s.clone());
        }
        match std::env::var(SECRET_ENV) {
            Ok(s) if !s.is_empty() => Ok(Secret(s)),
            _ => Err(format!(
                "no component secret (secret, secret_file or ${SECRET_ENV})"
            )),
        }
    }

    /// Parsed `sip.listen`; call after [`Config::validate`].
    pub fn listen(&self) -> Vec<Listen> {
        self.sip
            .listen
            .iter()
            .filter_map(|l| Listen::parse(l).ok())
            .collect()
    }

    /// Keepalive period.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.component.ping_interval_secs.max(1))
    }

    /// Bounce window for SIP -> XMPP messages.
    pub fn bounce_window(&self) -> Duration {
        Duration::from_millis(self.messages.bounce_window_ms)
    }

    /// The address plan built from `[addresses]` and the component domain.
    ///
    /// `access.federated_xmpp_domains` map like served domains: their users may send and
    /// subscribe, and replies to them find their way back.
    pub fn address_map(&self) -> crate::addr::AddressMap {
        let mut domains = self.addresses.xmpp_domains.clone();
        domains.extend(self.access.federated_xmpp_domains.iter().cloned());
        crate::addr::AddressMap::new(&self.component.jid, &domains, &self.addresses.sip_domain)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
