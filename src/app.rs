//! Wiring: builds the SIP endpoint, the XMPP link and the router from a [`Config`], runs
//! them, and shuts them down in order (stop accepting, drain, close the stream).

use crate::config::{Config, Listen};
use crate::core::{Event, Router, RouterConfig};
use crate::im::Limits;
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
    /// Bound SIP sockets (useful when a port was 0).
    pub sip_addrs: Vec<SocketAddr>,
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

impl Gateway {
    /// Validate the config, bind the SIP sockets and start every task.
    pub async fn start(cfg: &Config) -> Result<Gateway, StartError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(StartError::Config(problems));
        }
        let secret = cfg.secret().map_err(|e| StartError::Config(vec![e]))?;
        let (event_tx, event_rx) = mpsc::channel::<Event>(4096);
        let (sip_tx, mut sip_rx) = mpsc::channel(4096);
        let closing = Arc::new(AtomicBool::new(false));

        let mut builder = Endpoint::builder();
        builder.user_agent(cfg.sip.user_agent.clone());
        builder.add_layer(StoxLayer::new(sip_tx, closing.clone()));
        let mut sip_addrs = Vec::new();
        let mut contact: Option<String> = None;
        // UDP first, so a TCP listener configured with port 0 can share the UDP port
        // (ezk does not report the port a TCP listener got).
        let mut listen = cfg.listen();
        listen.sort_by_key(|l| matches!(l, Listen::Tcp(_)));
        for l in listen {
            match l {
                Listen::Udp(a) => {
                    let tp = builder
                        .bind_udp(a)
                        .await
                        .map_err(|e| StartError::Listen(format!("udp:{a}"), e))?;
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
            }
        }
        let contact = contact.unwrap_or_else(|| {
            format!(
                "{};transport=tcp",
                sip_addrs.first().map(|a| a.to_string()).unwrap_or_default()
            )
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

        let router = Router::new(
            RouterConfig {
                map: cfg.address_map(),
                inbound_type: cfg.messages.inbound_type,
                bounce_window: cfg.bounce_window(),
                limits: Limits {
                    max_body_bytes: cfg.messages.max_body_bytes,
                },
            },
            xmpp_handle,
            client,
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let router = tokio::spawn(router.run(event_rx, shutdown_rx, Duration::from_secs(5)));
        info!(sip = ?sip_addrs, component = %cfg.component.jid, "stox started");
        Ok(Gateway {
            shutdown,
            link_shutdown,
            closing,
            router,
            link,
            sip_addrs,
        })
    }

    /// Graceful stop: refuse new MESSAGEs, let in-flight ones finish (bounded), then close
    /// the XMPP stream.
    pub async fn stop(self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(6), self.router).await;
        let _ = self.link_shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), self.link).await;
        info!("stox stopped");
    }
}
