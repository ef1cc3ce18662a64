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
    /// MSRP over TLS listener (`msrps:`, RFC 4975 §6, §14), `IP:PORT`; off when unset. It
    /// serves `[sip.tls]`'s certificate.
    #[serde(default)]
    pub msrps_listen: Option<String>,
    /// Offer MSRP over TLS (`TCP/TLS/MSRP`, an `msrps:` path) in the sessions stox starts. A
    /// peer without TLS refuses the offer and gets MESSAGEs instead, as for any refusal.
    #[serde(default)]
    pub offer_tls: bool,
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
            msrps_listen: None,
            offer_tls: false,
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

    /// Problems in this section; `tls_cert` says whether `[sip.tls]` has a certificate.
    pub fn validate(&self, tls_cert: bool, problems: &mut Vec<String>) {
        if let Some(l) = &self.msrps_listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                problems.push(format!("chat.msrps_listen {l:?}: expected IP:PORT"));
            }
            if !tls_cert {
                problems.push(
                    "chat.msrps_listen needs a certificate: set sip.tls.cert_file and key_file"
                        .into(),
                );
            }
            if self.relay.is_some() {
                // Our relay connection is plain TCP: a TLS session through it would be TLS in
                // name only on the first hop.
                problems.push(
                    "chat.msrps_listen: MSRP over TLS through chat.relay is not supported".into(),
                );
            }
        }
        if self.offer_tls && self.msrps_listen.is_none() {
            problems
                .push("chat.offer_tls needs chat.msrps_listen (the peer connects to it)".into());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &ChatConfig, cert: bool) -> Vec<String> {
        let mut p = Vec::new();
        c.validate(cert, &mut p);
        p
    }

    /// MSRP over TLS: off by default; the listener needs `[sip.tls]`'s certificate and a valid
    /// address, is refused with a (plain TCP) relay; offering TLS needs the listener.
    #[test]
    fn msrps_settings_are_checked() {
        let base = ChatConfig::default();
        assert!(base.msrps_listen.is_none() && !base.offer_tls);
        assert!(problems(&base, false).is_empty());
        let tls = |listen: Option<&str>, offer: bool, relay: Option<&str>| ChatConfig {
            msrps_listen: listen.map(str::to_string),
            offer_tls: offer,
            relay: relay.map(str::to_string),
            ..ChatConfig::default()
        };
        let table: &[(ChatConfig, bool, &[&str])] = &[
            (tls(Some("0.0.0.0:2856"), true, None), true, &[]),
            (tls(Some("0.0.0.0:2856"), false, None), true, &[]),
            (
                tls(Some("0.0.0.0:2856"), false, None),
                false,
                &["needs a certificate"],
            ),
            (
                tls(Some("nowhere"), false, None),
                true,
                &["expected IP:PORT"],
            ),
            (
                tls(Some("0.0.0.0:2856"), false, Some("r:2855")),
                true,
                &["through chat.relay"],
            ),
            (
                tls(None, true, None),
                true,
                &["chat.offer_tls needs chat.msrps_listen"],
            ),
        ];
        for (c, cert, want) in table {
            let got = problems(c, *cert);
            assert_eq!(got.len(), want.len(), "{c:?}: {got:?}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.contains(w), "{g} lacks {w}");
            }
        }
    }
}
