//! `[admin]`, `[metrics]`, `[log]` and `[limits]`: operating the gateway.

// `[calls]` lives in its own file; it is re-exported with the other small sections.
#[path = "calls.rs"]
mod calls;
pub use calls::CallsConfig;
#[path = "muc.rs"]
mod muc;
pub use muc::MucConfig;
#[path = "media.rs"]
mod media;
pub use media::{MediaConfig, MediaMode, SipSrtp, XmppTransport};

use serde::Deserialize;

/// `[admin]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bare JIDs allowed to run the admin ad-hoc commands (XEP-0050). Empty: nobody.
    #[serde(default)]
    pub jids: Vec<String>,
}

/// `[metrics]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `IP:PORT` of the OpenMetrics endpoint (`GET /metrics`). Unset: off.
    #[serde(default)]
    pub listen: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Level or filter directive (`info`, `debug`, `info,stox::core=debug`).
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_level(),
            format: LogFormat::Text,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// `[limits]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Messages one sender (an XMPP bare JID or a SIP AOR) may send through the gateway per
    /// minute, in bursts of up to this many. 0: no limit.
    #[serde(default)]
    pub messages_per_minute: u32,
    /// New presence subscriptions one user (an XMPP bare JID subscribing to SIP users, or a SIP
    /// AOR sending SUBSCRIBE) may start per minute, in bursts of up to this many. 0: no limit.
    #[serde(default)]
    pub subscriptions_per_minute: u32,
}

impl AdminConfig {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        for j in &self.jids {
            if xmpp_parsers::jid::BareJid::new(j).map_or(true, |b| b.node().is_none()) {
                problems.push(format!(
                    "admin.jids entry {j:?}: must be a bare JID like admin@example.com"
                ));
            }
        }
    }
}

impl MetricsConfig {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if let Some(l) = &self.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                problems.push(format!("metrics.listen {l:?}: expected IP:PORT"));
            }
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            problems.push(format!("log.level {:?}: {e}", self.level));
        }
    }
}
