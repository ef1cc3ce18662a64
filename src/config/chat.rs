//! `[chat]`: one-to-one chat sessions over MSRP (RFC 7573) and the page/session policy.

use serde::Deserialize;
use std::collections::BTreeMap;

/// How XMPP chat reaches a SIP user (CHAT-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatMode {
    /// Every message is a SIP MESSAGE (RFC 7572).
    Page,
    /// Every message goes through an MSRP session; peers that refuse sessions get MESSAGE.
    Session,
    /// `type='chat'` tries a session, others use MESSAGE; a refusal is remembered per peer.
    Auto,
}

/// `[chat]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// Default policy.
    #[serde(default = "default_mode")]
    pub mode: ChatMode,
    /// Policy per SIP domain (overrides `mode`).
    #[serde(default)]
    pub domains: BTreeMap<String, ChatMode>,
    /// MSRP listener, `IP:PORT`.
    #[serde(default = "default_msrp_listen")]
    pub msrp_listen: String,
    /// Host or IP the SIP side reaches the MSRP listener at (put in `a=path`); default: the
    /// listen IP, or the SIP listen IP when that is a wildcard.
    #[serde(default)]
    pub msrp_host: Option<String>,
    /// MSRP relay `host:port` to use for every session (RFC 4976).
    #[serde(default)]
    pub relay: Option<String>,
    /// A session with no message or chat state this long ends with BYE (CHAT-12).
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Largest MSRP message accepted, advertised as `a=max-size` (CHAT-21); keep it under the
    /// XMPP server's stanza limit.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Bytes of partially received messages held across all sessions (CHAT-20).
    #[serde(default = "default_max_held")]
    pub max_held_bytes: usize,
    /// How long a peer's refusal of sessions is remembered in `auto` mode.
    #[serde(default = "default_memory")]
    pub peer_memory_secs: u64,
    /// Most sessions at once.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Most sessions one user (an XMPP user or a SIP address of record) takes part in at once;
    /// beyond it, XMPP messages go as MESSAGE and SIP INVITEs get 503.
    #[serde(default = "default_max_sessions_per_user")]
    pub max_sessions_per_user: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            mode: default_mode(),
            domains: BTreeMap::new(),
            msrp_listen: default_msrp_listen(),
            msrp_host: None,
            relay: None,
            idle_timeout_secs: default_idle(),
            max_message_bytes: default_max_message(),
            max_held_bytes: default_max_held(),
            peer_memory_secs: default_memory(),
            max_sessions: default_max_sessions(),
            max_sessions_per_user: default_max_sessions_per_user(),
        }
    }
}

impl ChatConfig {
    /// The policy toward a SIP domain.
    pub fn mode_for(&self, domain: &str) -> ChatMode {
        self.domains
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map_or(self.mode, |(_, m)| *m)
    }

    /// Problems in this section.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if self.msrp_listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "chat.msrp_listen {:?}: expected IP:PORT",
                self.msrp_listen
            ));
        }
        if let Some(r) = &self.relay {
            if r.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                problems.push(format!("chat.relay {r:?}: expected host:port"));
            }
        }
        if self.max_message_bytes < 1024 {
            problems.push("chat.max_message_bytes: at least 1024".into());
        }
        if self.max_held_bytes < self.max_message_bytes {
            problems.push("chat.max_held_bytes: must be at least chat.max_message_bytes".into());
        }
        if self.idle_timeout_secs == 0 {
            problems.push("chat.idle_timeout_secs: must be positive".into());
        }
    }
}

fn default_mode() -> ChatMode {
    ChatMode::Auto
}
fn default_msrp_listen() -> String {
    "0.0.0.0:2855".into()
}
fn default_idle() -> u64 {
    600
}
fn default_max_message() -> usize {
    60_000
}
fn default_max_held() -> usize {
    64 << 20
}
fn default_memory() -> u64 {
    3600
}
fn default_max_sessions() -> usize {
    10_000
}
fn default_max_sessions_per_user() -> usize {
    50
}
