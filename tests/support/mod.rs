//! Shared harness of the in-process scenario tests: a fake XMPP server (XEP-0114 server
//! side), raw SIP peers, log capture, and a [`Harness`] that wires them to a real
//! [`stox::app::Gateway`] on loopback ports.
//!
//! Every tests/scenario_*.rs file is its own test crate with its own copy of this module.
//!
//! Timing: nothing sleeps to "let things happen"; every wait polls with a deadline. Where
//! the absence of a stanza must be shown, a ping round trip on the same link
//! (`FakeServer::barrier`) proves the gateway has handled everything sent before it.

// Each test crate (tests/scenario_*.rs) uses a subset of these helpers; the rest would warn.
#![allow(dead_code)]

pub mod call;
pub mod check;
pub mod logs;
pub mod sha1;
pub mod sip;
pub mod xml;
pub mod xmpp;

use logs::{LogGuard, Logs};
use sip::{TcpUas, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;
use stox::app::Gateway;
use stox::config::Config;
use tokio::time::Instant;
use xmpp::FakeServer;

/// The component domain of every scenario.
pub const COMPONENT: &str = "sip.example.com";
/// The shared secret the gateway is configured with.
pub const SECRET: &str = "s3cr3t-scenario";
/// Generous upper bound for things that should happen "at once".
pub const SOON: Duration = Duration::from_secs(5);

/// A port free for both UDP and TCP on 127.0.0.1 (picked by the kernel, then released).
pub fn free_udp_tcp_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// A UDP socket and a TCP listener bound on the same loopback port, kept open.
pub fn bind_udp_tcp_pair() -> (std::net::UdpSocket, std::net::TcpListener) {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// Where `example.net` (the default SIP domain) is routed.
#[derive(Debug, Clone)]
pub enum Route {
    /// The harness UAS, over UDP.
    Uas,
    /// The harness UAS, over TCP (`;transport=tcp`).
    UasTcp,
    /// Any next hop URI.
    Uri(String),
}

/// Gateway settings of a scenario.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `messages.inbound_type`.
    pub inbound_type: &'static str,
    /// `messages.bounce_window_ms`.
    pub bounce_window_ms: u64,
    /// `component.ping_interval_secs`.
    pub ping_interval_secs: u64,
    /// `component.reconnect_max_secs`.
    pub reconnect_max_secs: u64,
    /// `messages.max_body_bytes`.
    pub max_body_bytes: usize,
    /// The gateway's secret.
    pub secret: String,
    /// The secret the fake server checks.
    pub server_secret: String,
    /// Route of `example.net`.
    pub route: Route,
    /// `presence.state_dir`; `None`: a fresh directory per harness.
    pub state_dir: Option<std::path::PathBuf>,
    /// `chat.mode` (`page` keeps MESSAGE-only scenarios free of INVITEs).
    pub chat_mode: &'static str,
    /// `chat.idle_timeout_secs`.
    pub chat_idle_secs: u64,
    /// Appended to the config (extra sections).
    pub extra_config: String,
    /// More `sip.listen` entries (e.g. `tls:127.0.0.1:0`) after the UDP and TCP ones.
    pub extra_listen: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            inbound_type: "chat",
            bounce_window_ms: 100,
            ping_interval_secs: 30,
            reconnect_max_secs: 1,
            max_body_bytes: 16384,
            secret: SECRET.into(),
            server_secret: SECRET.into(),
            route: Route::Uas,
            state_dir: None,
            chat_mode: "page",
            chat_idle_secs: 600,
            extra_config: String::new(),
            extra_listen: Vec::new(),
        }
    }
}

/// The default settings.
pub fn opts() -> Opts {
    Opts::default()
}

/// The default settings with `messages.bounce_window_ms = ms`.
pub fn window(ms: u64) -> Opts {
    Opts {
        bounce_window_ms: ms,
        ..Opts::default()
    }
}

/// A running gateway with its peers.
pub struct Harness {
    /// Log capture (printed on failure). Declared first so it is dropped last.
    pub log: LogGuard,
    /// The fake XMPP server the gateway's component link connects to.
    pub xmpp: FakeServer,
    /// The gateway (taken by [`Harness::stop`]).
    pub gw: Option<Gateway>,
    /// The gateway's SIP address (UDP and TCP).
    pub gw_sip: SocketAddr,
    /// The SIP UAS that `example.net` routes to (UDP).
    pub uas: UdpPeer,
    /// The same UAS port over TCP.
    pub uas_tcp: TcpUas,
    /// A SIP UAC for requests to the gateway.
    pub uac: UdpPeer,
    /// The configuration text the gateway runs with.
    pub config: String,
    /// Where `config` is written (reloads read it).
    pub config_path: std::path::PathBuf,
    /// A state directory the harness created (removed on drop; one passed in is kept).
    own_state_dir: Option<std::path::PathBuf>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(d) = &self.own_state_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Harness {
    /// Start everything and wait until the component link is up.
    pub async fn start(opts: Opts) -> Harness {
        let mut h = Harness::start_offline(opts).await;
        h.xmpp.wait_online(SOON).await;
        h
    }

    /// Start everything without waiting for the link.
    pub async fn start_offline(opts: Opts) -> Harness {
        let log = Logs::install();
        let xmpp = FakeServer::start(&opts.server_secret).await;
        let (uas_udp, uas_tcp) = bind_udp_tcp_pair();
        let uas = UdpPeer::from_std(uas_udp);
        let uas_tcp = TcpUas::from_std(uas_tcp);
        let uac = UdpPeer::bind().await;
        let sip_port = free_udp_tcp_port();
        let route = match &opts.route {
            Route::Uas => format!("sip:{}", uas.addr),
            Route::UasTcp => format!("sip:{};transport=tcp", uas.addr),
            Route::Uri(u) => u.clone(),
        };
        let own_state_dir = opts.state_dir.is_none().then(fresh_state_dir);
        let state_dir = opts
            .state_dir
            .clone()
            .or_else(|| own_state_dir.clone())
            .expect("one of them");
        let more_listen: String = opts
            .extra_listen
            .iter()
            .map(|l| format!(", {l:?}"))
            .collect();
        let config = format!(
            r#"
[component]
jid = "{COMPONENT}"
server = "{server}"
secret = "{secret}"
ping_interval_secs = {ping}
reconnect_max_secs = {rmax}

[sip]
listen = ["udp:127.0.0.1:{sip_port}", "tcp:127.0.0.1:{sip_port}"{more_listen}]

[sip.routes]
"example.net" = "{route}"
"other.org" = "{route}"

[addresses]
xmpp_domains = ["example.com"]
sip_domain = "example.net"

[messages]
inbound_type = "{inbound}"
bounce_window_ms = {window}
max_body_bytes = {max_body}

[presence]
state_dir = "{state_dir}"

[chat]
mode = "{chat_mode}"
msrp_listen = "127.0.0.1:0"
idle_timeout_secs = {chat_idle}
{extra}
"#,
            extra = opts.extra_config,
            chat_mode = opts.chat_mode,
            chat_idle = opts.chat_idle_secs,
            state_dir = state_dir.display(),
            server = xmpp.addr,
            secret = opts.secret,
            ping = opts.ping_interval_secs,
            rmax = opts.reconnect_max_secs,
            inbound = opts.inbound_type,
            window = opts.bounce_window_ms,
            max_body = opts.max_body_bytes,
        );
        let cfg = Config::parse(&config).expect("scenario config parses");
        // Written out so that reloads have a file to read again.
        let config_path = state_dir.join("stox.toml");
        std::fs::create_dir_all(&state_dir).expect("state dir");
        std::fs::write(&config_path, &config).expect("config file written");
        let gw = Gateway::start_from(&cfg, Some(config_path.clone()))
            .await
            .expect("gateway starts");
        Harness {
            log,
            xmpp,
            gw: Some(gw),
            gw_sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
            uas,
            uas_tcp,
            uac,
            config,
            own_state_dir,
            config_path,
        }
    }

    /// The captured logs.
    pub fn logs(&self) -> &Logs {
        &self.log.logs
    }

    /// Graceful stop; returns how long it took.
    pub async fn stop(&mut self) -> Duration {
        let t = Instant::now();
        if let Some(gw) = self.gw.take() {
            gw.stop().await;
        }
        t.elapsed()
    }

    /// Send a request over UDP from the UAC and return its final response.
    pub async fn sip_transact(&self, req: sip::SipMsg) -> sip::SipMsg {
        self.uac.transact(req, self.gw_sip, SOON).await
    }

    /// Send a request over UDP from the UAC without waiting; returns it as sent (with Via).
    pub async fn sip_send(&self, req: sip::SipMsg) -> sip::SipMsg {
        self.uac.send_request(req, self.gw_sip).await
    }

    /// The final response to a request sent with [`Harness::sip_send`].
    pub async fn sip_final(&self, sent: &sip::SipMsg) -> sip::SipMsg {
        self.uac.final_response(sent, SOON).await
    }

    /// The next new MESSAGE at the UAS (UDP), answered with `code`.
    pub async fn uas_answer(&self, code: u16, reason: &str, extra: &[(&str, &str)]) -> sip::SipMsg {
        let (req, src) = self.uas.request(SOON).await;
        self.uas.send(&req.response(code, reason, extra), src).await;
        req
    }

    /// The first `<message/>` stanza the gateway sends.
    pub async fn next_message(&mut self) -> tokio_xmpp::minidom::Element {
        self.xmpp
            .stanza("a <message/> from the gateway", SOON, |e| {
                e.name() == "message"
            })
            .await
    }

    /// Send `req`, expect the final response `code`, and prove (ping barrier) that no stanza
    /// reached the XMPP server.
    pub async fn refused_without_stanza(&mut self, req: sip::SipMsg, code: u16) -> sip::SipMsg {
        let resp = self.sip_transact(req).await;
        assert_eq!(resp.code(), Some(code), "{}", resp.start);
        let leaked: Vec<String> = self.xmpp.barrier().await.iter().map(String::from).collect();
        assert!(leaked.is_empty(), "nothing may reach XMPP: {leaked:?}");
        resp
    }
}

/// A SIP MESSAGE from `sip:romeo@example.net` to `sip:juliet@example.com`.
pub fn romeo_message(extra: &[(&str, &str)], body: &[u8]) -> sip::SipMsg {
    sip::request(
        "MESSAGE",
        "sip:juliet@example.com",
        &format!("<sip:romeo@example.net>;tag={}", sip::token()),
        "<sip:juliet@example.com>",
        extra,
        body,
    )
}

/// A new empty directory for one gateway's state database.
pub fn fresh_state_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stox-scenario-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("state dir");
    dir
}
