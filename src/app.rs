//! Wiring: builds the SIP endpoint, the XMPP link and the router from a [`Config`], runs
//! them, and shuts them down in order (stop accepting, drain, close the stream).

use crate::config::{Config, Listen};
use crate::core::{Event, Router, RouterConfig};
use crate::im::Limits;
use crate::presence::subscription::Engine;
use crate::sip::inbound::StoxLayer;
use crate::sip::SipClient;
use crate::xmpp::{self, LinkConfig, LinkEvent};
use ezk_sip_core::Endpoint;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::info;

/// A running gateway.
pub struct Gateway {
    shutdown: watch::Sender<bool>,
    link_shutdown: watch::Sender<bool>,
    closing: Arc<AtomicBool>,
    router: tokio::task::JoinHandle<()>,
    link: tokio::task::JoinHandle<()>,
    store_writer: tokio::task::JoinHandle<()>,
    metrics: Option<tokio::task::JoinHandle<()>>,
    /// The router's inbox, for reloads.
    inbox: mpsc::Sender<Event>,
    /// Bound SIP sockets (useful when a port was 0).
    pub sip_addrs: Vec<SocketAddr>,
    /// The TLS listeners among them.
    pub tls_addrs: Vec<SocketAddr>,
}

/// Startup failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// A SIP socket could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    /// The state database could not be opened (missing rights, corrupt or locked file).
    #[error("state database: {0}")]
    Store(String),
}

/// A concrete address for a TCP listener configured with port 0: the port of a UDP socket on
/// the same IP when that port is free for TCP too, else one the OS picks.
fn free_tcp_port(a: SocketAddr, bound: &[SocketAddr]) -> std::io::Result<SocketAddr> {
    for b in bound.iter().filter(|b| b.ip() == a.ip()) {
        if std::net::TcpListener::bind(*b).is_ok() {
            return Ok(*b);
        }
    }
    std::net::TcpListener::bind(a)?.local_addr()
}

type Loaded = (
    Arc<dyn crate::store::Store>,
    Vec<crate::store::Authorization>,
    Vec<crate::store::Dialog>,
);

/// Open (creating on first run) the state database and read what it holds.
async fn open_store(dir: &std::path::Path) -> Result<Loaded, StartError> {
    use crate::store::{Filter, SqliteStore, Store};
    std::fs::create_dir_all(dir)
        .map_err(|e| StartError::Store(format!("cannot create {}: {e}", dir.display())))?;
    let store = SqliteStore::open(dir)
        .await
        .map_err(|e| StartError::Store(e.to_string()))?;
    let auths = store
        .list_authorizations(&Filter::all(), None)
        .await
        .map_err(|e| StartError::Store(e.to_string()))?;
    let dialogs = store
        .list_dialogs(&Filter::all())
        .await
        .map_err(|e| StartError::Store(e.to_string()))?;
    Ok((Arc::new(store), auths, dialogs))
}

fn clock_now() -> crate::presence::subscription::Clock {
    crate::presence::subscription::Clock {
        now: tokio::time::Instant::now().into_std(),
        unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    }
}

/// MSRP over TLS from SIP's TLS state: the same certificate resolver (a reload swaps both)
/// and the same trust roots.
fn msrp_tls(
    c: &crate::config::ChatConfig,
    sip_tls: &crate::sip::tls::Tls,
) -> Result<crate::chat::transport::TlsSetup, StartError> {
    let listen = match &c.msrps_listen {
        Some(l) => Some(
            l.parse::<std::net::SocketAddr>()
                .map_err(|e| StartError::Config(vec![format!("chat.msrps_listen: {e}")]))?,
        ),
        None => None,
    };
    Ok(crate::chat::transport::TlsSetup {
        listen,
        acceptor: Some(
            sip_tls
                .acceptor()
                .map_err(|e| StartError::Config(vec![e]))?,
        ),
        connector: Some(
            sip_tls
                .connector()
                .map_err(|e| StartError::Config(vec![e]))?,
        ),
    })
}

/// The MSRP transport and the chat session hub (RFC 7573).
async fn start_chat(
    cfg: &Config,
    sip: &SipClient,
    xmpp: &crate::xmpp::XmppHandle,
    router: &mpsc::Sender<Event>,
    sip_tls: &crate::sip::tls::Tls,
) -> Result<crate::core::chat_hub::Hub, StartError> {
    use crate::chat::msrp;
    let c = &cfg.chat;
    let listen: std::net::SocketAddr = c
        .msrp_listen
        .parse()
        .map_err(|e| StartError::Config(vec![format!("chat.msrp_listen: {e}")]))?;
    // Our MSRP URIs need an address the SIP peer can reach: the configured one, else the
    // listen IP, else the IP of the SIP Contact.
    let host = c.msrp_host.clone().unwrap_or_else(|| {
        if listen.ip().is_unspecified() {
            let sip_host = sip.contact_host().split(';').next().unwrap_or("");
            sip_host
                .parse::<std::net::SocketAddr>()
                .map(|a| a.ip())
                .ok()
                .filter(|ip| !ip.is_unspecified())
                .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string())
        } else {
            listen.ip().to_string()
        }
    });
    let transport = crate::chat::transport::Transport::bind(crate::chat::transport::Config {
        listen,
        host,
        relay: c.relay.clone(),
        max_chunk: c.max_message_bytes,
        tls: msrp_tls(c, sip_tls)?,
    })
    .await
    .map_err(|e| StartError::Listen(format!("msrp:{listen}"), e))?;
    let settings = crate::core::chat_session::ChatSettings {
        msrp: msrp::Settings {
            max_message: c.max_message_bytes,
            max_held: c.max_message_bytes * 2,
            validate: Some(crate::chat::translate::check_body),
            ..msrp::Settings::default()
        },
        idle: Duration::from_secs(c.idle_timeout_secs),
        connect_wait: Duration::from_secs(30),
        offer_tls: c.offer_tls,
    };
    let ctx = crate::core::chat_session::Ctx {
        sip: sip.clone(),
        xmpp: xmpp.clone(),
        transport,
        map: cfg.address_map(),
        settings,
        budget: msrp::chunk::Budget::new(c.max_held_bytes),
        router: router.clone(),
    };
    Ok(crate::core::chat_hub::Hub::new(ctx, c.clone()))
}

impl Gateway {
    /// Validate the config, bind the SIP sockets and start every task.
    pub async fn start(cfg: &Config) -> Result<Gateway, StartError> {
        Gateway::start_from(cfg, None).await
    }

    /// [`Gateway::start`] for a config read from `path`, which reloads read again.
    pub async fn start_from(
        cfg: &Config,
        path: Option<std::path::PathBuf>,
    ) -> Result<Gateway, StartError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(StartError::Config(problems));
        }
        let secret = cfg.secret().map_err(|e| StartError::Config(vec![e]))?;
        // Bound before anything else starts: a taken metrics port is a startup error, not a
        // silent gap in monitoring. Served once everything else is up.
        let metrics_listener = match &cfg.metrics.listen {
            Some(l) => {
                let a: SocketAddr = l
                    .parse()
                    .map_err(|e| StartError::Config(vec![format!("metrics.listen: {e}")]))?;
                let listener = crate::ops::http::bind(a)
                    .await
                    .map_err(|e| StartError::Listen(format!("metrics:{a}"), e))?;
                Some(listener)
            }
            None => None,
        };
        let (store, auths, dialogs) = open_store(&cfg.presence.state_dir).await?;
        let (event_tx, event_rx) = mpsc::channel::<Event>(4096);
        let (sip_tx, mut sip_rx) = mpsc::channel(4096);
        let closing = Arc::new(AtomicBool::new(false));
        // Nonces of digest challenges are signed with a key of this process (access::digest).
        let gate = crate::access::SipGate::new(&cfg.access, &cfg.component.jid, rand::random())
            .map_err(|e| StartError::Config(vec![format!("access: {e}")]))?;
        let gate = crate::sip::gate::cell(gate);

        let mut builder = Endpoint::builder();
        builder.user_agent(cfg.sip.user_agent.clone());
        // Outbound TLS is always possible (routes with ;transport=tls, sips: hops, _sips SRV
        // records); the listener's certificate only when configured.
        let tls = Arc::new(
            crate::sip::tls::Tls::new(&cfg.sip.tls).map_err(|e| StartError::Config(vec![e]))?,
        );
        builder.use_rustls_connector(tls.connector().map_err(|e| StartError::Config(vec![e]))?);
        // In-dialog requests of chat sessions (BYE, ACK) go through ezk's dialog layer to our
        // usage; everything else falls through to ours.
        builder.add_layer(ezk_sip_ua::dialog::DialogLayer::default());
        builder.add_layer(StoxLayer::new(
            sip_tx,
            closing.clone(),
            gate.clone(),
            crate::sip::budget::Budget::new(cfg.sip.max_held_bytes),
        ));
        let mut sip_addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let mut contact: Option<String> = None;
        // UDP first, so a TCP listener configured with port 0 can share the UDP port
        // (ezk does not report the port a TCP listener got).
        let mut listen = cfg.listen();
        listen.sort_by_key(|l| !matches!(l, Listen::Udp(_)));
        for l in listen {
            match l {
                Listen::Udp(a) => {
                    let tp = builder
                        .bind_udp(a)
                        .await
                        .map_err(|e| StartError::Listen(format!("udp:{a}"), e))?;
                    crate::sip::sockbuf::apply(tp.bound(), cfg.sip.udp_receive_buffer_bytes);
                    sip_addrs.push(tp.bound());
                    contact.get_or_insert_with(|| tp.bound().to_string());
                }
                Listen::Tcp(mut a) => {
                    if a.port() == 0 {
                        a = free_tcp_port(a, &sip_addrs)
                            .map_err(|e| StartError::Listen(format!("tcp:{a}"), e))?;
                    }
                    builder
                        .listen_tcp(a)
                        .await
                        .map_err(|e| StartError::Listen(format!("tcp:{a}"), e))?;
                    sip_addrs.push(a);
                }
                Listen::Tls(mut a) => {
                    if a.port() == 0 {
                        a = std::net::TcpListener::bind(a)
                            .and_then(|l| l.local_addr())
                            .map_err(|e| StartError::Listen(format!("tls:{a}"), e))?;
                    }
                    let acceptor = tls.acceptor().map_err(|e| StartError::Config(vec![e]))?;
                    builder
                        .listen_rustls(a, acceptor)
                        .await
                        .map_err(|e| StartError::Listen(format!("tls:{a}"), e))?;
                    sip_addrs.push(a);
                    tls_addrs.push(a);
                }
            }
        }
        let contact = contact.unwrap_or_else(|| {
            let first = sip_addrs.first().map(|a| a.to_string()).unwrap_or_default();
            match cfg.listen().iter().any(|l| matches!(l, Listen::Tcp(_))) {
                true => format!("{first};transport=tcp"),
                false => format!("{first};transport=tls"),
            }
        });
        let endpoint = builder.build();
        let client = SipClient::new(
            endpoint,
            cfg.sip.routes.clone(),
            cfg.sip.outbound_proxy.clone(),
            contact,
            cfg.component.jid.clone(),
        );

        let (link_shutdown, link_shutdown_rx) = watch::channel(false);
        let (link_tx, mut link_rx) = mpsc::channel::<LinkEvent>(4096);
        let (xmpp_handle, link) = xmpp::link::spawn(
            LinkConfig {
                jid: cfg.component.jid.clone(),
                server: cfg.component.server.clone(),
                secret,
                ping_interval: cfg.ping_interval(),
                ping_to: cfg
                    .addresses
                    .xmpp_domains
                    .first()
                    .cloned()
                    .unwrap_or_default(),
                backoff_min: Duration::from_millis(500),
                backoff_max: Duration::from_secs(cfg.component.reconnect_max_secs.max(1)),
            },
            link_tx,
            link_shutdown_rx,
        );
        // Both adapters feed the router's single inbox.
        let inbox = event_tx.clone();
        let reload_inbox = event_tx.clone();
        let tx = event_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = link_rx.recv().await {
                if tx.send(Event::Xmpp(e)).await.is_err() {
                    break;
                }
            }
        });
        let tx = event_tx;
        tokio::spawn(async move {
            while let Some(e) = sip_rx.recv().await {
                if tx.send(Event::Sip(Box::new(e))).await.is_err() {
                    break;
                }
            }
        });

        let mut engine = Engine::new(cfg.address_map(), cfg.presence_settings());
        let restored = (auths.len(), dialogs.len());
        engine.restore(clock_now(), auths, dialogs);
        info!(
            authorizations = restored.0,
            dialogs = restored.1,
            state_dir = %cfg.presence.state_dir.display(),
            "presence state loaded"
        );
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let store_writer = tokio::spawn(crate::core::store_writer::run(store, ops_rx));
        let chat = start_chat(cfg, &client, &xmpp_handle, &inbox, &tls).await?;
        let router = Router::new(
            RouterConfig {
                map: cfg.address_map(),
                inbound_type: cfg.messages.inbound_type,
                bounce_window: cfg.bounce_window(),
                limits: Limits {
                    max_body_bytes: cfg.messages.max_body_bytes,
                },
                presence: cfg.presence_settings(),
                ops: crate::core::admin::Ops::new(cfg, path, gate).with_tls(tls),
            },
            xmpp_handle,
            client,
            engine,
            ops_tx,
            inbox,
            chat,
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let router = tokio::spawn(router.run(event_rx, shutdown_rx, Duration::from_secs(5)));
        let metrics = metrics_listener.map(|l| tokio::spawn(crate::ops::http::serve(l)));
        info!(sip = ?sip_addrs, component = %cfg.component.jid, "stox started");
        Ok(Gateway {
            shutdown,
            link_shutdown,
            closing,
            router,
            link,
            store_writer,
            metrics,
            inbox: reload_inbox,
            sip_addrs,
            tls_addrs,
        })
    }

    /// Re-read the config file and apply what may change while running (see
    /// [`crate::ops::reload`]).
    pub async fn reload(&self) -> crate::core::admin::ReloadResult {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inbox
            .send(Event::Reload(tx))
            .await
            .map_err(|_| "the gateway is stopping".to_string())?;
        rx.await
            .map_err(|_| "the gateway is stopping".to_string())?
    }

    /// Graceful stop: refuse new MESSAGEs, let in-flight ones finish (bounded), then close
    /// the XMPP stream.
    pub async fn stop(self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(6), self.router).await;
        let _ = self.link_shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.link).await;
        // The router is gone, so is the writer's last sender: it finishes the queue and closes.
        if tokio::time::timeout(Duration::from_secs(10), self.store_writer)
            .await
            .is_err()
        {
            tracing::error!("state database writes still pending at exit");
        }
        if let Some(m) = self.metrics {
            m.abort();
        }
        info!("stox stopped");
    }
}
