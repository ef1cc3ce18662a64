//! The XEP-0114 component link: connect, handshake, keepalive, reconnect (COMP-1, COMP-2,
//! COMP-3, COMP-6).
//!
//! tokio-xmpp's `Component` ends its stream on the first stanza it cannot parse, which would
//! let any XMPP user knock the gateway offline with one odd stanza. So the link reads raw
//! `minidom::Element`s through tokio-xmpp's `xmlstream` layer and leaves parsing to the
//! router, which can answer a malformed stanza with an error instead.

use super::xml::BuilderExt;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use std::borrow::Cow;
use std::time::Duration;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};
use tracing::{debug, info, trace, warn};
use xmpp_parsers::component::Handshake;

const NS_COMPONENT: &str = "jabber:component:accept";
const NS_STREAM: &str = "http://etherx.jabber.org/streams";

/// What the link needs to know.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Component domain.
    pub jid: String,
    /// `host:port` of the server's component listener.
    pub server: String,
    /// Shared secret.
    pub secret: crate::config::Secret,
    /// Keepalive period.
    pub ping_interval: Duration,
    /// Where keepalive pings go (a domain the server hosts, so it answers itself).
    pub ping_to: String,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Reconnect delay cap.
    pub backoff_max: Duration,
}

/// Events from the link to the router.
#[derive(Debug)]
pub enum LinkEvent {
    /// Handshake done: stanzas flow.
    Up,
    /// The stream ended; reconnecting.
    Down,
    /// A stanza from the server (unparsed).
    Stanza(Element),
}

/// Error: the link is down, nothing was sent.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("XMPP link is down")]
pub struct LinkDown;

/// Handle to send stanzas over the link.
#[derive(Clone, Debug)]
pub struct XmppHandle {
    tx: mpsc::Sender<Element>,
    up: watch::Receiver<bool>,
}

impl XmppHandle {
    /// Is the component link established?
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Queue a stanza for the server. Fails when the link is down (the caller answers its
    /// peer with an error instead of letting the stanza vanish).
    pub async fn send(&self, stanza: Element) -> Result<(), LinkDown> {
        if !self.is_up() {
            return Err(LinkDown);
        }
        self.tx.send(stanza).await.map_err(|_| LinkDown)
    }

    /// A handle for tests: stanzas go to the returned receiver; `up` controls is_up().
    pub fn detached(up: bool) -> (XmppHandle, mpsc::Receiver<Element>, watch::Sender<bool>) {
        let (tx, rx) = mpsc::channel(1024);
        let (up_tx, up_rx) = watch::channel(up);
        (XmppHandle { tx, up: up_rx }, rx, up_tx)
    }
}

/// Start the link task. It reconnects forever until `shutdown` turns true, then closes the
/// stream cleanly.
pub fn spawn(
    cfg: LinkConfig,
    events: mpsc::Sender<LinkEvent>,
    shutdown: watch::Receiver<bool>,
) -> (XmppHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let (up_tx, up_rx) = watch::channel(false);
    let task = tokio::spawn(run(cfg, events, rx, up_tx, shutdown));
    (XmppHandle { tx, up: up_rx }, task)
}

type Stream = XmlStream<BufStream<TcpStream>, Element>;

/// Stanzas written before one flush, at most (bounds the latency of the first one).
const MAX_BATCH: usize = 64;

async fn run(
    cfg: LinkConfig,
    events: mpsc::Sender<LinkEvent>,
    mut out: mpsc::Receiver<Element>,
    up: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = cfg.backoff_min;
    let mut attempt: u64 = 0;
    let mut was_up = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        attempt += 1;
        let connected = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(10), connect(&cfg)) => r,
            _ = shutdown.changed() => return,
        };
        let result = match connected {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout),
        };
        let mut stream = match result {
            Ok(s) => s,
            Err(e) => {
                // Full jitter keeps a fleet of gateways from reconnecting in lockstep.
                let delay = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
                warn!(attempt, error = %e, retry_in_ms = delay.as_millis() as u64, server = %cfg.server, "component connect failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(cfg.backoff_max);
                continue;
            }
        };
        info!(jid = %cfg.jid, server = %cfg.server, attempt, "component online");
        crate::ops::metrics::get().link(true, !was_up);
        was_up = true;
        backoff = cfg.backoff_min;
        attempt = 0;
        // Stanzas queued while down were refused by XmppHandle::send; anything left from a
        // previous connection is stale.
        while out.try_recv().is_ok() {}
        let _ = up.send(true);
        let _ = events.send(LinkEvent::Up).await;
        let closing = serve(&cfg, &mut stream, &events, &mut out, &mut shutdown).await;
        let _ = up.send(false);
        crate::ops::metrics::get().link(false, false);
        let _ = events.send(LinkEvent::Down).await;
        if closing {
            // Graceful shutdown: say goodbye so the server does not wait for a timeout.
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                SinkExt::<&Element>::close(&mut stream),
            )
            .await;
            info!("component link closed");
            return;
        }
        warn!(server = %cfg.server, "component link lost, reconnecting");
    }
}

/// Drive one established stream. Returns true when it ended because of shutdown.
async fn serve(
    cfg: &LinkConfig,
    stream: &mut Stream,
    events: &mpsc::Sender<LinkEvent>,
    out: &mut mpsc::Receiver<Element>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut ping = tokio::time::interval(cfg.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut ping_seq: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return true; }
            }
            Some(el) = out.recv() => {
                // Stanzas already queued go out in the same write: under load one syscall
                // carries many stanzas; an idle link still writes each one at once.
                let mut next = Some(el);
                let mut batch = 0;
                while let Some(mut el) = next.take() {
                    if el.attr("from").is_none() {
                        // COMP-3: servers drop or kill components that omit `from`.
                        super::xml::set_attr(&mut el, "from", cfg.jid.as_str());
                    }
                    trace!(target: "wire::xmpp", "-> {}", String::from(&el));
                    crate::ops::metrics::get().stanza(crate::ops::metrics::Dir::Out, el.name());
                    if let Err(e) = SinkExt::<&Element>::feed(stream, &el).await {
                        warn!(error = %e, "component write failed");
                        return false;
                    }
                    batch += 1;
                    if batch < MAX_BATCH {
                        next = out.try_recv().ok();
                    }
                }
                if let Err(e) = SinkExt::<&Element>::flush(stream).await {
                    warn!(error = %e, "component write failed");
                    return false;
                }
            }
            _ = ping.tick() => {
                ping_seq += 1;
                if stream.send(&ping_iq(cfg, ping_seq)).await.is_err() {
                    return false;
                }
            }
            item = stream.next() => match item {
                Some(Ok(el)) => {
                    trace!(target: "wire::xmpp", "<- {}", String::from(&el));
                    crate::ops::metrics::get().stanza(crate::ops::metrics::Dir::In, el.name());
                    if el.is("error", NS_STREAM) {
                        warn!(error = %String::from(&el), "stream error from server");
                        return false;
                    }
                    if events.send(LinkEvent::Stanza(el)).await.is_err() {
                        return true;
                    }
                }
                Some(Err(ReadError::SoftTimeout)) => {
                    // Silence: provoke traffic; a dead server then trips the hard timeout.
                    ping_seq += 1;
                    if stream.send(&ping_iq(cfg, ping_seq)).await.is_err() {
                        return false;
                    }
                }
                Some(Err(ReadError::ParseError(e))) => {
                    debug!(error = %e, "unparsable element from server ignored");
                }
                Some(Err(ReadError::StreamFooterReceived)) | None => return false,
                Some(Err(ReadError::HardError(e))) => {
                    warn!(error = %e, "component read failed");
                    return false;
                }
            }
        }
    }
}

fn ping_iq(cfg: &LinkConfig, seq: u64) -> Element {
    Element::builder("iq", NS_COMPONENT)
        .a("type", "get")
        .a("id", format!("stox-keepalive-{seq}"))
        .a("from", cfg.jid.as_str())
        .a("to", cfg.ping_to.as_str())
        .append(Element::builder("ping", "urn:xmpp:ping").build())
        .build()
}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP or stream setup failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed or refused the handshake (wrong secret or unknown component).
    #[error("handshake refused: {0}")]
    Refused(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

async fn connect(cfg: &LinkConfig) -> Result<Stream, ConnectError> {
    let tcp = TcpStream::connect(&cfg.server).await?;
    tcp.set_nodelay(true)?;
    let timeouts = Timeouts {
        read_timeout: cfg.ping_interval + Duration::from_secs(5),
        response_timeout: Duration::from_secs(20),
    };
    let mut pending = initiate_stream(
        BufStream::new(tcp),
        NS_COMPONENT,
        StreamHeader {
            to: Some(Cow::Owned(cfg.jid.clone())),
            from: None,
            id: None,
        },
        timeouts,
    )
    .await?;
    let header = pending.take_header();
    let id = header
        .id
        .ok_or_else(|| ConnectError::Refused("server sent no stream id".into()))?
        .into_owned();
    let mut stream: Stream = pending.skip_features();
    let handshake = Handshake::from_stream_id_and_password(id, cfg.secret.expose());
    stream.send(&handshake).await?;
    loop {
        match stream.next().await {
            Some(Ok(el)) if el.name() == "handshake" => return Ok(stream),
            Some(Ok(el)) => return Err(ConnectError::Refused(String::from(&el))),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(ReadError::HardError(e))) => return Err(e.into()),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(ConnectError::Refused(e.to_string()))
            }
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(ConnectError::Refused("stream closed".into()))
            }
        }
    }
}
