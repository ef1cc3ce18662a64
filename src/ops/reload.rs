//! What a configuration reload (SIGHUP or the admin `reload` command) may change in a running
//! gateway, and what needs a restart. Pure: two configs in, a plan out; the router applies
//! the plan.
//!
//! Reloadable are the settings read per request: routing, limits, allow lists, chat policy,
//! the log level. Sockets, the address plan, the component link and the state directory are
//! fixed at start (changing the address plan under live sessions and stored subscriptions
//! would orphan them), so a change there is reported, not half-applied.

use crate::config::Config;

/// The outcome of comparing the running config with the file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Settings that change now.
    pub applied: Vec<&'static str>,
    /// Settings that changed in the file but keep their running value until a restart.
    pub restart_needed: Vec<&'static str>,
}

impl Plan {
    /// One line for logs and the admin command.
    pub fn summary(&self) -> String {
        let list = |v: &[&str]| {
            if v.is_empty() {
                "nothing".to_string()
            } else {
                v.join(", ")
            }
        };
        format!(
            "applied: {}; needs a restart: {}",
            list(&self.applied),
            list(&self.restart_needed)
        )
    }
}

type Field = (&'static str, bool, fn(&Config) -> String);

/// Every setting, whether it is reloadable, and how to compare it. A new config key that is
/// missing here is caught by `every_key_is_classified` below.
const FIELDS: &[Field] = &[
    ("component.jid", false, |c| c.component.jid.clone()),
    ("component.server", false, |c| c.component.server.clone()),
    ("component.secret", false, |c| {
        c.secret()
            .map(|s| s.expose().to_string())
            .unwrap_or_default()
    }),
    ("component.ping_interval_secs", false, |c| {
        c.component.ping_interval_secs.to_string()
    }),
    ("component.reconnect_max_secs", false, |c| {
        c.component.reconnect_max_secs.to_string()
    }),
    ("sip.listen", false, |c| format!("{:?}", c.sip.listen)),
    ("sip.user_agent", false, |c| c.sip.user_agent.clone()),
    ("sip.udp_receive_buffer_bytes", false, |c| {
        c.sip.udp_receive_buffer_bytes.to_string()
    }),
    ("sip.max_held_bytes", false, |c| {
        c.sip.max_held_bytes.to_string()
    }),
    // Re-read on every reload; open TLS connections keep the certificate they started with.
    ("sip.tls.cert_file", true, |c| {
        format!("{:?}", c.sip.tls.cert_file)
    }),
    ("sip.tls.key_file", true, |c| {
        format!("{:?}", c.sip.tls.key_file)
    }),
    ("sip.tls.ca_file", true, |c| {
        format!("{:?}", c.sip.tls.ca_file)
    }),
    ("sip.outbound_proxy", true, |c| {
        format!("{:?}", c.sip.outbound_proxy)
    }),
    ("sip.routes", true, |c| format!("{:?}", c.sip.routes)),
    ("addresses", false, |c| format!("{:?}", c.addresses)),
    ("messages.inbound_type", true, |c| {
        format!("{:?}", c.messages.inbound_type)
    }),
    ("messages.bounce_window_ms", false, |c| {
        c.messages.bounce_window_ms.to_string()
    }),
    ("messages.max_body_bytes", true, |c| {
        c.messages.max_body_bytes.to_string()
    }),
    ("presence.state_dir", false, |c| {
        c.presence.state_dir.display().to_string()
    }),
    ("presence.expires_secs", true, |c| {
        c.presence.expires_secs.to_string()
    }),
    ("presence.min_expires_secs", true, |c| {
        c.presence.min_expires_secs.to_string()
    }),
    ("presence.max_expires_secs", true, |c| {
        c.presence.max_expires_secs.to_string()
    }),
    ("presence.max_subscriptions_per_user", true, |c| {
        c.presence.max_subscriptions_per_user.to_string()
    }),
    ("presence.max_subscriptions_total", true, |c| {
        c.presence.max_subscriptions_total.to_string()
    }),
    ("chat.mode", true, |c| format!("{:?}", c.chat.mode)),
    ("chat.domains", true, |c| format!("{:?}", c.chat.domains)),
    ("chat.peer_memory_secs", true, |c| {
        c.chat.peer_memory_secs.to_string()
    }),
    ("chat.max_sessions", true, |c| {
        c.chat.max_sessions.to_string()
    }),
    ("chat.max_sessions_per_user", true, |c| {
        c.chat.max_sessions_per_user.to_string()
    }),
    ("chat.msrp_listen", false, |c| c.chat.msrp_listen.clone()),
    ("chat.msrps_listen", false, |c| {
        format!("{:?}", c.chat.msrps_listen)
    }),
    ("chat.offer_tls", false, |c| c.chat.offer_tls.to_string()),
    ("chat.msrp_host", false, |c| {
        format!("{:?}", c.chat.msrp_host)
    }),
    ("chat.relay", false, |c| format!("{:?}", c.chat.relay)),
    ("chat.idle_timeout_secs", false, |c| {
        c.chat.idle_timeout_secs.to_string()
    }),
    ("chat.max_message_bytes", false, |c| {
        c.chat.max_message_bytes.to_string()
    }),
    ("chat.max_held_bytes", false, |c| {
        c.chat.max_held_bytes.to_string()
    }),
    ("admin.jids", true, |c| format!("{:?}", c.admin.jids)),
    ("metrics.listen", false, |c| {
        format!("{:?}", c.metrics.listen)
    }),
    ("log.level", true, |c| c.log.level.clone()),
    ("log.format", false, |c| format!("{:?}", c.log.format)),
    // Read when a call starts: a reload applies to new calls.
    ("calls.ring_timeout_secs", true, |c| {
        c.calls.ring_timeout_secs.to_string()
    }),
    ("calls.gather_ms", true, |c| c.calls.gather_ms.to_string()),
    ("calls.max_calls", true, |c| c.calls.max_calls.to_string()),
    // Read when a call starts: a reload applies to new calls; the port range is re-read too.
    ("media.mode", true, |c| format!("{:?}", c.media.mode)),
    ("media.relay_address", true, |c| {
        format!("{:?}", c.media.relay_address)
    }),
    ("media.public_address", true, |c| {
        format!("{:?}", c.media.public_address)
    }),
    ("media.stun_server", true, |c| {
        format!("{:?}", c.media.stun_server)
    }),
    ("media.port_min", true, |c| c.media.port_min.to_string()),
    ("media.port_max", true, |c| c.media.port_max.to_string()),
    ("media.timeout_secs", true, |c| {
        c.media.timeout_secs.to_string()
    }),
    ("media.xmpp_transport", true, |c| {
        format!("{:?}", c.media.xmpp_transport)
    }),
    ("media.sip_srtp", true, |c| {
        format!("{:?}", c.media.sip_srtp)
    }),
    // Read when a SIP user joins a room: a reload applies to new memberships.
    ("muc.services", true, |c| format!("{:?}", c.muc.services)),
    ("muc.sip_room_domains", true, |c| {
        format!("{:?}", c.muc.sip_room_domains)
    }),
    ("muc.max_members", true, |c| c.muc.max_members.to_string()),
    ("muc.join_timeout_secs", true, |c| {
        c.muc.join_timeout_secs.to_string()
    }),
    ("limits.messages_per_minute", true, |c| {
        c.limits.messages_per_minute.to_string()
    }),
    ("limits.subscriptions_per_minute", true, |c| {
        c.limits.subscriptions_per_minute.to_string()
    }),
    // Part of the address plan, like `addresses`.
    ("access.federated_xmpp_domains", false, |c| {
        format!("{:?}", c.access.federated_xmpp_domains)
    }),
    ("access.sip_trusted", true, |c| {
        format!("{:?}", c.access.sip_trusted)
    }),
    ("access.sip_untrusted", true, |c| {
        format!("{:?}", c.access.sip_untrusted)
    }),
    ("access.sip_realm", true, |c| {
        format!("{:?}", c.access.sip_realm)
    }),
    ("access.sip_credentials_file", true, |c| {
        format!("{:?}", c.access.sip_credentials_file)
    }),
    ("access.nonce_lifetime_secs", true, |c| {
        c.access.nonce_lifetime_secs.to_string()
    }),
];

/// Compare the running config with the new one.
pub fn plan(running: &Config, new: &Config) -> Plan {
    let mut p = Plan::default();
    for (name, reloadable, get) in FIELDS {
        if get(running) != get(new) {
            if *reloadable {
                p.applied.push(name);
            } else {
                p.restart_needed.push(name);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../component.toml.example");

    /// The example with one line replaced.
    fn with(from: &str, to: &str) -> Config {
        assert!(EXAMPLE.contains(from), "{from}");
        Config::parse(&EXAMPLE.replacen(from, to, 1)).unwrap()
    }

    #[test]
    fn nothing_changed_nothing_to_do() {
        let c = Config::parse(EXAMPLE).unwrap();
        assert_eq!(plan(&c, &c.clone()), Plan::default());
        assert_eq!(
            Plan::default().summary(),
            "applied: nothing; needs a restart: nothing"
        );
    }

    #[test]
    fn routes_and_limits_apply_sockets_need_a_restart() {
        let old = Config::parse(EXAMPLE).unwrap();
        let mut new = old.clone();
        new.sip
            .routes
            .insert("x.test".into(), "sip:127.0.0.1:5999".into());
        new.limits.messages_per_minute = 10;
        new.sip.listen = vec!["udp:127.0.0.1:5999".into()];
        new.component.secret = Some(crate::config::Secret::new("other"));
        let p = plan(&old, &new);
        assert_eq!(p.applied, vec!["sip.routes", "limits.messages_per_minute"]);
        assert_eq!(p.restart_needed, vec!["component.secret", "sip.listen"]);
        assert!(!p.summary().contains("other"), "the secret never shows");
    }

    /// Every key of the example file (which shows every key) changes something in the plan,
    /// so a new key cannot be forgotten here.
    #[test]
    fn every_key_is_classified() {
        let base = Config::parse(EXAMPLE).unwrap();
        let edits = [
            ("level = \"info\"", "level = \"debug\"", "log.level"),
            ("format = \"text\"", "format = \"json\"", "log.format"),
            ("jids = []", "jids = [\"a@b.c\"]", "admin.jids"),
            (
                "# listen = \"127.0.0.1:9477\"",
                "listen = \"127.0.0.1:1\"",
                "metrics.listen",
            ),
            (
                "messages_per_minute = 0",
                "messages_per_minute = 5",
                "limits.messages_per_minute",
            ),
        ];
        for (from, to, key) in edits {
            let p = plan(&base, &with(from, to));
            let all: Vec<_> = p.applied.iter().chain(&p.restart_needed).collect();
            assert_eq!(all, vec![&key], "{to}");
        }
        // Every key the example file shows (commented-out ones too) is named in FIELDS, or
        // its whole section is.
        let names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
        let mut section = String::new();
        for line in EXAMPLE.lines() {
            let line = line.trim_start_matches("# ").trim();
            if line.starts_with('[') && line.ends_with(']') {
                section = line.trim_matches(['[', ']']).to_string();
                continue;
            }
            let Some((key, _)) = line.split_once(" = ") else {
                continue;
            };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            let full = format!("{section}.{key}");
            let covered = names.iter().any(|n| {
                *n == full
                    || *n == section
                    || (full == "component.secret_file" && *n == "component.secret")
            });
            assert!(covered, "{full} is not classified in FIELDS");
        }
    }
}
