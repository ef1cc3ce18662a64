//! `stox doctor`: checks a configuration against the environment it will run in, part of
//! operating stox (issue "Operating stox", the doctor part).
//!
//! Each check is a plain async function returning one or more [`Check`]s, so tests call them
//! directly and the CLI only prints them:
//!
//! - [`check_config`]: the file parses and validates (the same [`Config::load`] and
//!   [`Config::validate`] as `stox run`), and the component secret can be read;
//! - [`component::check_component`]: TCP connect and the XEP-0114 §3 handshake
//!   (stream header, `<handshake/>` = hex SHA-1 of stream id + secret) with the configured
//!   secret, telling accepted, `not-authorized`, `host-unknown`, `conflict` and timeouts
//!   apart; the stream is closed right after;
//! - [`sockets::check_listen`] / [`sockets::check_msrp`] / [`sockets::check_msrps`]: every SIP
//!   socket and the MSRP listeners can be bound (in use, permission, foreign address);
//! - [`dns::check_dns`]: `_sip._udp` / `_sip._tcp` SRV records of the served XMPP domains
//!   and the addresses of their targets (missing records are warnings);
//! - [`store::check_store`]: the state directory exists or can be created, is writable, and
//!   the database opens;
//! - [`check_tls`]: what SIP over TLS serves (the listener's certificate) or that there is no
//!   TLS listener; the component link is plain TCP either way;
//! - [`check_stun`]: with `media.stun_server` and the relay on, the address the STUN server
//!   sees the relay address as (what calls will announce), or that it does not answer.
//!
//! Doctor has no lasting side effects: probe files and directories it creates are removed,
//! a missing database is not created, an older one is not migrated, sockets are released.

pub mod component;
pub mod dns;
mod procfs;
pub mod sockets;
pub mod store;

use crate::config::{Config, Listen, SECRET_ENV};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// How bad a finding is. Only [`Level::Fail`] makes `stox doctor` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Works.
    Ok,
    /// Worth knowing, nothing to fix.
    Info,
    /// stox runs, but something around it is missing (e.g. DNS records).
    Warn,
    /// stox will not work like this.
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        })
    }
}

/// One finding: one output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Severity.
    pub level: Level,
    /// What was checked: `config`, `component`, `sip`, `msrp`, `dns`, `store`, `tls`.
    pub area: &'static str,
    /// What was found and, when it is not ok, what to do about it.
    pub message: String,
}

impl Check {
    /// A finding.
    pub fn new(level: Level, area: &'static str, message: impl Into<String>) -> Check {
        Check {
            level,
            area,
            message: message.into(),
        }
    }
}

impl fmt::Display for Check {
    /// `ok    component: ...`: the level padded so that the areas line up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {}: {}", self.level, self.area, self.message)
    }
}

/// Bounds of the network checks.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Each step of the component check (resolve, connect, stream header, handshake answer).
    pub component_timeout: Duration,
    /// Each DNS lookup.
    pub dns_timeout: Duration,
    /// How long the database check waits for a lock held elsewhere.
    pub store_busy: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            component_timeout: Duration::from_secs(5),
            dns_timeout: Duration::from_secs(2),
            store_busy: Duration::from_secs(1),
        }
    }
}

/// True when any check failed (the exit status of `stox doctor`).
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.level == Level::Fail)
}

/// Load and validate the file. Returns the config when it could be parsed (even with
/// validation problems, so the other checks still run on what is usable).
pub fn check_config(path: &Path) -> (Option<Config>, Vec<Check>) {
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return (None, vec![Check::new(Level::Fail, "config", e)]),
    };
    let problems = cfg.validate();
    let mut out: Vec<Check> = if problems.is_empty() {
        vec![Check::new(
            Level::Ok,
            "config",
            format!("{} is valid", path.display()),
        )]
    } else {
        problems
            .into_iter()
            .map(|p| Check::new(Level::Fail, "config", format!("{}: {p}", path.display())))
            .collect()
    };
    out.push(check_secret(&cfg));
    (Some(cfg), out)
}

/// Where the secret comes from, and whether it can be read (a `secret_file` the service user
/// cannot read is the classic first-start failure).
fn check_secret(cfg: &Config) -> Check {
    let source = if let Some(f) = &cfg.component.secret_file {
        format!("secret_file {}", f.display())
    } else if cfg.component.secret.is_some() {
        "the config file".to_string()
    } else {
        format!("${SECRET_ENV}")
    };
    match cfg.secret() {
        Ok(_) if cfg.component.secret.is_some() => Check::new(
            Level::Info,
            "config",
            "the component secret is in the config file itself: prefer secret_file or \
             $STOX_COMPONENT_SECRET so the config can be shared without it",
        ),
        Ok(_) => Check::new(
            Level::Ok,
            "config",
            format!("component secret read from {source}"),
        ),
        Err(e) => Check::new(
            Level::Fail,
            "config",
            format!("{e}: stox cannot log in to the XMPP server without it"),
        ),
    }
}

/// Item 6: the SIP TLS listener's certificate (check-config already proved it loads and
/// matches its key), or that there is none. The component link is plain TCP either way.
pub fn check_tls(cfg: &Config) -> Check {
    let listener = cfg
        .listen()
        .into_iter()
        .any(|l| matches!(l, Listen::Tls(_)));
    let loaded = match (&cfg.sip.tls.cert_file, &cfg.sip.tls.key_file) {
        (Some(c), Some(k)) => Some(crate::sip::tls::load_certified_key(c, k)),
        _ => None,
    };
    match loaded {
        Some(Ok(key)) if listener => Check::new(
            Level::Ok,
            "tls",
            format!(
                "SIP over TLS serves {} (sha256 {}); the component link is plain XEP-0114 \
                 TCP: keep it on loopback or a trusted network",
                cfg.sip
                    .tls
                    .cert_file
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display(),
                key.cert
                    .first()
                    .map(crate::sip::tls::fingerprint)
                    .unwrap_or_default()
            ),
        ),
        Some(Err(e)) => Check::new(Level::Fail, "tls", e),
        _ => Check::new(
            Level::Info,
            "tls",
            "no TLS is configured: no tls: entry in sip.listen (the component link is plain \
             XEP-0114 TCP, SIP listens on udp/tcp); keep the component port on loopback or a \
             trusted network",
        ),
    }
}

/// Every check, in output order, for the config file at `path`.
pub async fn run(path: &Path, opts: &Options) -> Vec<Check> {
    let (cfg, mut out) = check_config(path);
    let Some(cfg) = cfg else {
        out.push(Check::new(
            Level::Info,
            "doctor",
            "the other checks need a readable config",
        ));
        return out;
    };
    // The network checks wait on timeouts: run them side by side so an offline machine
    // costs one timeout, not the sum.
    let component = async {
        match cfg.secret() {
            Ok(secret) => {
                component::check_component(
                    &cfg.component.jid,
                    &cfg.component.server,
                    &secret,
                    opts.component_timeout,
                )
                .await
            }
            Err(_) => Check::new(
                Level::Info,
                "component",
                "handshake not tried: no secret (see above)",
            ),
        }
    };
    let dns = dns::check_dns(&cfg.addresses.xmpp_domains, opts.dns_timeout);
    let (component, dns, stun) = tokio::join!(component, dns, check_stun(&cfg));
    out.push(component);
    for l in cfg.listen() {
        out.push(sockets::check_listen(l));
    }
    if let Ok(addr) = cfg.chat.msrp_listen.parse() {
        out.push(sockets::check_msrp(addr));
    }
    if let Some(Ok(addr)) = cfg.chat.msrps_listen.as_deref().map(str::parse) {
        out.push(sockets::check_msrps(addr));
    }
    out.extend(store::check_store(&cfg.presence.state_dir, opts.store_busy).await);
    out.extend(dns);
    out.push(check_tls(&cfg));
    out.extend(stun);
    out
}

/// `media.stun_server`: one Binding from the relay address (or any local address when
/// `media.relay_address` is unset), as the running gateway sends it. `None` when there is no
/// STUN server to ask or media goes direct.
pub async fn check_stun(cfg: &Config) -> Option<Check> {
    use crate::config::MediaMode;
    let m = &cfg.media;
    let server = m
        .stun_server
        .as_deref()
        .filter(|_| m.mode != MediaMode::Direct)?;
    let bind = m
        .relay_address
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    Some(
        match crate::core::stun_watch::discover(server, bind).await {
            Ok(ip) => Check::new(
                Level::Ok,
                "media",
                format!("STUN server {server} sees the relay as {ip}: relayed calls announce {ip}"),
            ),
            Err(e) => Check::new(
                Level::Warn,
                "media",
                format!(
                    "media.stun_server: {e}; relayed calls would announce the relay's own \
                 address (allow UDP out to the server, or set media.public_address)"
                ),
            ),
        },
    )
}

/// The transport name used in messages (`udp 127.0.0.1:5060`).
pub(crate) fn describe(l: Listen) -> String {
    match l {
        Listen::Udp(a) => format!("udp {a}"),
        Listen::Tcp(a) => format!("tcp {a}"),
        Listen::Tls(a) => format!("tls {a}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_align_on_the_area() {
        let ok = Check::new(Level::Ok, "component", "fine").to_string();
        let fail = Check::new(Level::Fail, "component", "broken").to_string();
        assert_eq!(ok, "ok    component: fine");
        assert_eq!(fail, "FAIL  component: broken");
        assert_eq!(
            Check::new(Level::Warn, "dns", "x").to_string(),
            "warn  dns: x"
        );
    }

    /// The example config with the relay on and this STUN server.
    fn with_stun(mode: &str, server: &str) -> Config {
        let mut c = Config::parse(include_str!("../../component.toml.example")).unwrap();
        c.media.mode = toml::from_str::<crate::config::MediaConfig>(&format!("mode = \"{mode}\""))
            .unwrap()
            .mode;
        c.media.relay_address = Some("127.0.0.1".parse().unwrap());
        c.media.stun_server = Some(server.into());
        c
    }

    #[tokio::test]
    async fn stun_check_reports_the_address_the_server_sees() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let (_, from) = server.recv_from(&mut buf).unwrap();
            // A success with MAPPED-ADDRESS 198.51.100.7:5000 for the request's id.
            let mut r = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
            r.extend_from_slice(&buf[8..20]);
            r.extend_from_slice(&[0, 1, 0, 8, 0, 1, 0x13, 0x88, 198, 51, 100, 7]);
            server.send_to(&r, from).unwrap();
        });
        let c = check_stun(&with_stun("relay", &addr)).await.unwrap();
        t.join().unwrap();
        assert_eq!(c.level, Level::Ok, "{c}");
        assert!(c.message.contains("198.51.100.7"), "{c}");
        assert_eq!(check_stun(&with_stun("direct", &addr)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn stun_check_warns_when_the_server_is_silent() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let c = check_stun(&with_stun("auto", &addr)).await.unwrap();
        assert_eq!(c.level, Level::Warn, "{c}");
        assert!(c.message.contains("did not answer"), "{c}");
        drop(server);
    }

    #[test]
    fn only_fail_fails() {
        let warn = vec![
            Check::new(Level::Ok, "a", ""),
            Check::new(Level::Info, "a", ""),
            Check::new(Level::Warn, "a", ""),
        ];
        assert!(!any_failed(&warn));
        let mut fail = warn;
        fail.push(Check::new(Level::Fail, "a", ""));
        assert!(any_failed(&fail));
    }
}
