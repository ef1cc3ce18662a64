//! MSRP over TCP and TLS (RFC 4975 §6, §8, §14) and relays (RFC 4976): the listeners,
//! connections shared by sessions, and the AUTH'd connection to a configured relay.
//!
//! TLS only changes the byte stream under a connection: `msrps:` URIs name the TLS listener,
//! and a connection to an `msrps:` first hop verifies the peer's certificate for the URI's
//! host (RFC 4975 §14.2) with the SIP TLS trust (system roots plus `sip.tls.ca_file`). A
//! session with an `msrps:` URI takes frames from TLS connections only: its session-id sent
//! over plain TCP gets 481, so knowing the id is not enough to step around TLS.
//!
//! A connection is a reader and a writer task. The reader decodes frames and routes each to
//! the session named by the session-id of the last To-Path URI, so several sessions can
//! share one connection (connection reuse, RFC 4975 §6). A request for no known session
//! gets 481 (§7.3). Connections we open are reused for the same authority and close once
//! no session holds them; accepted ones stay until the peer closes them or they idle out.

use super::msrp::{Decoder, Frame, MsrpUri, StartLine};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, trace, warn};

/// Transport settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// Host (name or IP) put in our MSRP URIs and SDP.
    pub host: String,
    /// `host:port` of an MSRP relay to use for every session (RFC 4976).
    pub relay: Option<String>,
    /// Largest chunk body a connection keeps (bigger ones are skipped for a 413).
    pub max_chunk: usize,
    /// MSRP over TLS.
    pub tls: TlsSetup,
}

/// MSRP over TLS: where the `msrps:` listener binds, and the rustls halves (shared with SIP
/// over TLS, so a reload's new certificate and roots apply here too).
#[derive(Clone, Default)]
pub struct TlsSetup {
    /// Where the TLS listener binds; none: no TLS sessions of ours.
    pub listen: Option<SocketAddr>,
    /// Serves the listener's certificate.
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// Connects to `msrps:` first hops, verifying their certificate.
    pub connector: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("listen", &self.listen)
            .field("acceptor", &self.acceptor.is_some())
            .field("connector", &self.connector.is_some())
            .finish()
    }
}

/// A frame with the connection it came on (responses go back on it, §7.2).
#[derive(Debug)]
pub struct Inbound {
    /// The frame.
    pub frame: Frame,
    /// Its connection.
    pub conn: Conn,
}

/// The frames already routed to a session, taken without waiting: for a session that has
/// just seen its connection close. The reader routes every frame of a connection before it
/// reports the connection's end, but a `select!` that finds both ready may take the end
/// first; a 200 for our last SEND, or the peer's last SEND, that came just before the close
/// must still count (or the message would be offered again in a new session, or dropped).
pub fn already_received(
    frames: &mut mpsc::Receiver<Box<Inbound>>,
) -> impl Iterator<Item = Frame> + '_ {
    std::iter::from_fn(move || frames.try_recv().ok().map(|i| i.frame))
}

/// A handle to write on a connection.
#[derive(Debug, Clone)]
pub struct Conn {
    tx: mpsc::Sender<Bytes>,
    closed: watch::Receiver<bool>,
    /// The remote address.
    pub peer: SocketAddr,
}

impl Conn {
    /// Queue bytes; `false` when the connection is gone.
    pub async fn write(&self, b: Bytes) -> bool {
        self.tx.send(b).await.is_ok()
    }

    /// Resolves when the connection has closed.
    pub async fn closed(&mut self) {
        while !*self.closed.borrow() {
            if self.closed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Already closed?
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow() || self.tx.is_closed()
    }
}

/// Session-id -> the session's frame queue (boxed frames: every session has a queue, whose
/// blocks are sized by the element type) and whether it is a TLS session.
type Routes = Arc<Mutex<HashMap<String, (mpsc::Sender<Box<Inbound>>, bool)>>>;
/// Open connections we made, by authority: the writer (weak: unused ones close), the
/// closed flag and the peer address.
type Pool = Arc<Mutex<HashMap<String, PoolEntry>>>;
type PoolEntry = (mpsc::WeakSender<Bytes>, watch::Receiver<bool>, SocketAddr);
/// The relay connection and its Use-Path.
type RelayState = Arc<tokio::sync::Mutex<Option<(Conn, Vec<MsrpUri>)>>>;

/// The MSRP transport, shared by every session.
#[derive(Clone)]
pub struct Transport {
    cfg: Arc<Config>,
    port: u16,
    tls_port: Option<u16>,
    routes: Routes,
    pool: Pool,
    relay: RelayState,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transport({}:{})", self.cfg.host, self.port)
    }
}

/// Frames queued toward one session before the reader waits.
const SESSION_QUEUE: usize = 64;
/// A TLS handshake (accepted or ours) must finish this soon.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// An accepted connection must carry a frame for a session this soon.
const FIRST_FRAME: Duration = Duration::from_secs(30);
/// An accepted connection with no traffic this long is closed.
const IDLE: Duration = Duration::from_secs(3600);

impl Transport {
    /// Bind the listener and start accepting.
    pub async fn bind(cfg: Config) -> std::io::Result<Transport> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let port = listener.local_addr()?.port();
        let tls_listener =
            match (cfg.tls.listen, &cfg.tls.acceptor) {
                (Some(a), Some(_)) => Some(TcpListener::bind(a).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("msrps listener {a}: {e}"))
                })?),
                _ => None,
            };
        let tls_port = match &tls_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let t = Transport {
            cfg: Arc::new(cfg),
            port,
            tls_port,
            routes: Arc::new(Mutex::new(HashMap::new())),
            pool: Arc::new(Mutex::new(HashMap::new())),
            relay: Arc::new(tokio::sync::Mutex::new(None)),
        };
        let acceptor = t.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        debug!(%peer, "MSRP connection accepted");
                        let _ = stream.set_nodelay(true);
                        acceptor.start_conn(stream, peer, true, false);
                    }
                    Err(e) => {
                        warn!(error = %e, "MSRP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        info!(port, host = %t.cfg.host, "MSRP listening");
        if let (Some(l), Some(acceptor)) = (tls_listener, t.cfg.tls.acceptor.clone()) {
            t.accept_tls(l, acceptor);
            info!(port = tls_port, "MSRP over TLS listening");
        }
        Ok(t)
    }

    /// Accept `msrps:` connections. Each handshake runs in its own task under a deadline, so
    /// a client that connects and says nothing holds one task, not the accept loop.
    fn accept_tls(&self, listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
        let t = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "MSRP TLS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (t, acceptor) = (t.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            debug!(%peer, "MSRP TLS connection accepted");
                            t.start_conn(tls, peer, true, true);
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "MSRP TLS handshake failed"),
                        Err(_) => debug!(%peer, "MSRP TLS handshake timed out"),
                    }
                });
            }
        });
    }

    /// Can sessions run over TLS (is the `msrps:` listener up)?
    pub fn tls(&self) -> bool {
        self.tls_port.is_some()
    }

    /// The port of the `msrps:` listener.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The port the listener got.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Host of our URIs.
    pub fn host(&self) -> &str {
        &self.cfg.host
    }

    /// Is a relay configured?
    pub fn uses_relay(&self) -> bool {
        self.cfg.relay.is_some()
    }

    /// A fresh URI for a new session, registered for its frames; `secure` asks for an
    /// `msrps:` URI on the TLS listener (the caller checks [`Transport::tls`] first; without
    /// the listener the URI stays `msrp:`).
    pub fn open_session(&self, secure: bool) -> (MsrpUri, mpsc::Receiver<Box<Inbound>>) {
        let mut uri = MsrpUri::local(&self.cfg.host, self.port);
        if let (true, Some(p)) = (secure, self.tls_port) {
            uri.secure = true;
            uri.port = Some(p);
        }
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let id = uri.session_id.clone().unwrap_or_default();
        lock(&self.routes).insert(id, (tx, uri.secure));
        (uri, rx)
    }

    /// Forget a session's route.
    pub fn close_session(&self, uri: &MsrpUri) {
        if let Some(id) = &uri.session_id {
            lock(&self.routes).remove(id);
        }
    }

    /// Sessions registered (for metrics and tests).
    pub fn sessions(&self) -> usize {
        lock(&self.routes).len()
    }

    /// A connection to the first hop `uri`, reusing an open one to the same authority.
    /// An `msrps:` hop is reached over TLS only, never plain TCP.
    pub async fn connect(&self, uri: &MsrpUri) -> Result<Conn, String> {
        let authority = uri.authority();
        // A TLS and a plain connection to the same authority are different connections.
        let key = if uri.secure {
            format!("msrps:{authority}")
        } else {
            authority.clone()
        };
        if let Some(c) = self.pooled(&key) {
            return Ok(c);
        }
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&authority))
            .await
            .map_err(|_| format!("{authority}: connect timed out"))?
            .map_err(|e| format!("{authority}: {e}"))?;
        let peer = stream.peer_addr().map_err(|e| e.to_string())?;
        let conn = if uri.secure {
            let connector = self
                .cfg
                .tls
                .connector
                .clone()
                .ok_or_else(|| format!("{authority}: msrps without a TLS connector"))?;
            // RFC 4975 §14.2: the certificate must match the host of the URI.
            let name = rustls_pki_types::ServerName::try_from(
                uri.host.trim_matches(['[', ']']).to_string(),
            )
            .map_err(|e| format!("{}: not a TLS server name: {e}", uri.host))?;
            let _ = stream.set_nodelay(true);
            let tls = tokio::time::timeout(HANDSHAKE, connector.connect(name, stream))
                .await
                .map_err(|_| format!("{authority}: TLS handshake timed out"))?
                .map_err(|e| format!("{authority}: TLS: {e}"))?;
            self.start_conn(tls, peer, false, true)
        } else {
            let _ = stream.set_nodelay(true);
            self.start_conn(stream, peer, false, false)
        };
        lock(&self.pool).insert(key, (conn.tx.downgrade(), conn.closed.clone(), peer));
        Ok(conn)
    }

    fn pooled(&self, authority: &str) -> Option<Conn> {
        let (weak, closed, peer) = lock(&self.pool).get(authority)?.clone();
        let c = Conn {
            tx: weak.upgrade()?,
            closed,
            peer,
        };
        (!c.is_closed()).then_some(c)
    }

    /// The relay connection and its Use-Path (RFC 4976 §5.1 AUTH), made on first use;
    /// `None` without a configured relay.
    pub async fn relay(&self) -> Result<Option<(Conn, Vec<MsrpUri>)>, String> {
        let Some(relay) = self.cfg.relay.clone() else {
            return Ok(None);
        };
        let mut guard = self.relay.lock().await;
        if let Some((c, p)) = guard.as_ref() {
            if !c.is_closed() {
                return Ok(Some((c.clone(), p.clone())));
            }
        }
        let relay_uri = MsrpUri::parse(&format!("msrp://{relay};tcp"))
            .ok_or_else(|| format!("bad relay address {relay}"))?;
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&relay))
            .await
            .map_err(|_| format!("relay {relay}: connect timed out"))?
            .map_err(|e| format!("relay {relay}: {e}"))?;
        let peer = stream.peer_addr().map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let conn = self.start_conn(stream, peer, true, false);
        let (me, mut rx) = self.open_session(false);
        let tid = super::msrp::uri::random_chars(12);
        let auth = Frame::request(tid.clone(), "AUTH")
            .with("To-Path", relay_uri.to_string())
            .with("From-Path", me.to_string());
        conn.write(Bytes::from(auth.to_bytes())).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(i) = rx.recv().await {
                if i.frame.tid == tid {
                    return Some(i.frame);
                }
            }
            None
        })
        .await;
        self.close_session(&me);
        let frame = answer
            .ok()
            .flatten()
            .ok_or_else(|| format!("relay {relay}: no answer to AUTH"))?;
        match frame.start {
            StartLine::Response(200, _) => {}
            StartLine::Response(401, _) => {
                return Err(format!(
                    "relay {relay} wants digest authentication, which stox does not do yet"
                ))
            }
            StartLine::Response(code, _) => return Err(format!("relay {relay}: AUTH got {code}")),
            StartLine::Request(_) => return Err(format!("relay {relay}: odd AUTH answer")),
        }
        let use_path = frame
            .header("Use-Path")
            .and_then(MsrpUri::parse_path)
            .ok_or_else(|| format!("relay {relay}: AUTH answer without a Use-Path"))?;
        info!(relay = %relay, use_path = %super::msrp::uri::path_string(&use_path), "MSRP relay ready");
        *guard = Some((conn.clone(), use_path.clone()));
        Ok(Some((conn, use_path)))
    }

    /// Start the reader and writer of a connection. `keep` holds the connection open while
    /// no session uses it (accepted connections, the relay).
    /// The stream is TCP or TLS over TCP (`tls`); above the routing, nothing knows which.
    fn start_conn<S>(&self, stream: S, peer: SocketAddr, keep: bool, tls: bool) -> Conn
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
        let (closed_tx, closed) = watch::channel(false);
        let closed_tx = Arc::new(closed_tx);
        let conn = Conn {
            tx: tx.clone(),
            closed,
            peer,
        };
        let wclosed = closed_tx.clone();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                trace!(target: "wire::msrp", %peer, bytes = b.len(), "->");
                if let Err(e) = wr.write_all(&b).await {
                    debug!(%peer, error = %e, "MSRP write failed");
                    break;
                }
            }
            let _ = wr.shutdown().await;
            let _ = wclosed.send(true);
        });
        let routes = self.routes.clone();
        let weak = tx.downgrade();
        let strong = keep.then_some(tx);
        let closed_rx = conn.closed.clone();
        let max_chunk = self.cfg.max_chunk;
        tokio::spawn(async move {
            let mut decoder = Decoder::new(max_chunk);
            let mut buf = vec![0u8; 16 * 1024];
            let mut routed_any = false;
            loop {
                let limit = if routed_any || !keep {
                    IDLE
                } else {
                    FIRST_FRAME
                };
                let n = match tokio::time::timeout(limit, rd.read(&mut buf)).await {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "MSRP read failed");
                        break;
                    }
                    Err(_) => {
                        debug!(%peer, "MSRP connection idle: closing");
                        break;
                    }
                };
                decoder.extend(&buf[..n]);
                loop {
                    let frame = match decoder.next_frame() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => {
                            // No frame length in MSRP: after a framing error the stream cannot
                            // be resynchronised, so the connection ends.
                            warn!(%peer, error = %e, "MSRP framing error: closing the connection");
                            let _ = closed_tx.send(true);
                            return;
                        }
                    };
                    trace!(target: "wire::msrp", %peer, tid = %frame.tid, start = ?frame.start, "<-");
                    let Some(tx) = weak.upgrade() else {
                        // Nobody holds this connection any more.
                        let _ = closed_tx.send(true);
                        return;
                    };
                    let conn = Conn {
                        tx,
                        closed: closed_rx.clone(),
                        peer,
                    };
                    let target = session_of(&frame)
                        .and_then(|id| lock(&routes).get(&id).cloned())
                        .filter(|(_, secure)| tls || !*secure)
                        .map(|(s, _)| s);
                    match target {
                        Some(s) => {
                            routed_any = true;
                            // Waiting here is the back-pressure toward a fast sender.
                            if s.send(Box::new(Inbound { frame, conn })).await.is_err() {
                                debug!(%peer, "MSRP frame for a session that just ended");
                            }
                        }
                        None => {
                            if let Some(resp) = no_such_session(&frame) {
                                let _ = conn.tx.send(Bytes::from(resp.to_bytes())).await;
                            }
                        }
                    }
                }
            }
            drop(strong);
            let _ = closed_tx.send(true);
        });
        conn
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps inconsistent (single inserts
    // and removes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The session-id of the last To-Path URI.
fn session_of(f: &Frame) -> Option<String> {
    let path = f.header("To-Path")?;
    let last = path.split_ascii_whitespace().last()?;
    MsrpUri::parse(last)?.session_id
}

/// 481 for a request naming no session of ours (RFC 4975 §7.3), if one is due.
fn no_such_session(f: &Frame) -> Option<Frame> {
    let method = f.method()?;
    if method == "REPORT"
        || f.header("Failure-Report")
            .is_some_and(|v| v.eq_ignore_ascii_case("no"))
    {
        return None;
    }
    let prev = f.header("From-Path")?.split_ascii_whitespace().next()?;
    let me = f.header("To-Path")?.split_ascii_whitespace().last()?;
    Some(
        Frame::response(f.tid.clone(), 481, Some("No Such Session"))
            .with("To-Path", prev.to_string())
            .with("From-Path", me.to_string()),
    )
}
