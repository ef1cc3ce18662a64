//! The fake XMPP server: the server side of XEP-0114 (jabber:component:accept) on a real
//! TCP socket. It checks the handshake against its own SHA-1, reports every top-level element
//! the component sends (as parsed `minidom` elements plus raw text), answers the component's
//! keepalive pings like a real server, and lets a test inject raw stanzas.

use super::sha1::sha1_hex;
use super::xml::{parse_stanza, raw_attr, Splitter, Token, NS_COMPONENT};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_xmpp::minidom::Element;

/// What happened on the fake server. `conn` numbers connections from 1.
#[derive(Debug, Clone)]
pub enum Ev {
    /// A TCP connection was accepted.
    Connected { conn: usize },
    /// The component's stream header (raw tag text).
    Header { conn: usize, raw: String },
    /// The handshake matched sha1(stream id + secret): `<handshake/>` was sent.
    HandshakeOk {
        conn: usize,
        id: String,
        hex: String,
    },
    /// The handshake did not match: `<not-authorized/>` stream error sent, socket closed.
    HandshakeRejected {
        conn: usize,
        id: String,
        hex: String,
    },
    /// A top-level element after the handshake.
    Stanza {
        conn: usize,
        el: Element,
        raw: String,
    },
    /// The component closed its stream (`</stream:stream>`).
    Footer { conn: usize },
    /// The TCP connection ended (EOF or error).
    Closed { conn: usize },
    /// Something a server would treat as a stream error (unparsable XML, a second header).
    Unexpected { conn: usize, what: String },
}

enum Cmd {
    Send(Vec<u8>),
}

struct Shared {
    secret: Mutex<String>,
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    current: Mutex<Option<mpsc::UnboundedSender<Cmd>>>,
    conn_tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A fake XMPP server accepting component connections.
pub struct FakeServer {
    /// Listening address (`component.server` of the gateway).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    ev_tx: mpsc::UnboundedSender<Ev>,
    ev_rx: mpsc::UnboundedReceiver<Ev>,
    accept: Option<JoinHandle<()>>,
    backlog: VecDeque<Ev>,
    /// Every stanza the component sent that the test has read so far, in arrival order.
    pub seen: Vec<Element>,
    barrier_seq: usize,
}

impl FakeServer {
    /// Listen on a fresh loopback port.
    pub async fn start(secret: &str) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake server");
        Self::with_listener(listener, secret)
    }

    fn with_listener(listener: TcpListener, secret: &str) -> FakeServer {
        let addr = listener.local_addr().unwrap();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            secret: Mutex::new(secret.to_string()),
            connections: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            current: Mutex::new(None),
            conn_tasks: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), ev_tx.clone()));
        FakeServer {
            addr,
            shared,
            ev_tx,
            ev_rx,
            accept: Some(accept),
            backlog: VecDeque::new(),
            seen: Vec::new(),
            barrier_seq: 0,
        }
    }

    /// Change the secret future handshakes are checked against.
    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = secret.to_string();
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Successful handshakes so far.
    pub fn handshakes(&self) -> usize {
        self.shared.handshakes.load(Ordering::SeqCst)
    }

    /// Stop listening and drop every connection (the server "crashes").
    pub async fn stop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
            let _ = a.await;
        }
        let tasks: Vec<_> = self.shared.conn_tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        *self.shared.current.lock().unwrap() = None;
    }

    /// Listen again on the same port after [`FakeServer::stop`].
    pub async fn restart(&mut self) {
        assert!(self.accept.is_none(), "restart() needs stop() first");
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind fake server");
        self.accept = Some(tokio::spawn(accept_loop(
            listener,
            self.shared.clone(),
            self.ev_tx.clone(),
        )));
    }

    /// Write raw XML to the current connection.
    pub fn send(&self, xml: &str) {
        self.send_bytes(xml.as_bytes());
    }

    /// Write raw bytes (one write call) to the current connection.
    pub fn send_bytes(&self, bytes: &[u8]) {
        let cur = self.shared.current.lock().unwrap();
        let tx = cur.as_ref().expect("no component connected");
        tx.send(Cmd::Send(bytes.to_vec())).expect("connection gone");
    }

    fn record(&mut self, ev: &Ev) {
        if let Ev::Stanza { el, .. } = ev {
            self.seen.push(el.clone());
        }
    }

    /// The first event (oldest first, unconsumed ones included) matching `pred`, waiting up
    /// to `timeout`. Non-matching events stay queued for later calls.
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl FnMut(&Ev) -> bool,
    ) -> Ev {
        match self.try_wait_for(timeout, pred).await {
            Some(ev) => ev,
            None => panic!(
                "fake XMPP server: timed out after {timeout:?} waiting for {what}; unconsumed events: {:#?}",
                self.backlog
            ),
        }
    }

    /// Like [`FakeServer::wait_for`] but returns `None` on timeout.
    pub async fn try_wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Ev) -> bool,
    ) -> Option<Ev> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ev_rx.recv()).await {
                Ok(Some(ev)) => {
                    self.record(&ev);
                    if pred(&ev) {
                        return Some(ev);
                    }
                    self.backlog.push_back(ev);
                }
                _ => return None,
            }
        }
    }

    /// The first stanza matching `pred`.
    pub async fn stanza(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Element) -> bool,
    ) -> Element {
        match self
            .wait_for(
                what,
                timeout,
                |e| matches!(e, Ev::Stanza { el, .. } if pred(el)),
            )
            .await
        {
            Ev::Stanza { el, .. } => el,
            _ => unreachable!(),
        }
    }

    /// The stanza with this `id` attribute.
    pub async fn stanza_with_id(&mut self, id: &str, timeout: Duration) -> Element {
        self.stanza(&format!("a stanza with id {id:?}"), timeout, |el| {
            el.attr("id") == Some(id)
        })
        .await
    }

    /// Wait for a successful handshake, then prove the component is serving the stream by a
    /// ping round trip.
    pub async fn wait_online(&mut self, timeout: Duration) {
        self.wait_for("a successful handshake", timeout, |e| {
            matches!(e, Ev::HandshakeOk { .. })
        })
        .await;
        self.barrier().await;
    }

    /// Send a ping to the component and wait for its result. The gateway handles stanzas in
    /// order on one link, so every stanza it emitted for earlier input is queued before the
    /// pong. Returns the stanzas (keepalive pings excluded) that arrived before the pong and
    /// were not consumed yet.
    pub async fn barrier(&mut self) -> Vec<Element> {
        self.barrier_seq += 1;
        let id = format!("barrier-{}", self.barrier_seq);
        self.send(&format!(
            "<iq type='get' id='{id}' from='example.com' to='sip.example.com'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let pong = self.stanza_with_id(&id, Duration::from_secs(5)).await;
        assert_eq!(
            pong.attr("type"),
            Some("result"),
            "ping answer: {}",
            String::from(&pong)
        );
        let mut before = Vec::new();
        let mut keep = VecDeque::new();
        for ev in self.backlog.drain(..) {
            match ev {
                Ev::Stanza { el, .. } if !is_keepalive(&el) => before.push(el),
                Ev::Stanza { .. } => {}
                other => keep.push_back(other),
            }
        }
        self.backlog = keep;
        before
    }

    /// Move events that already arrived into the backlog (does not wait).
    fn pump(&mut self) {
        while let Ok(ev) = self.ev_rx.try_recv() {
            self.record(&ev);
            self.backlog.push_back(ev);
        }
    }

    /// COMP-3: every stanza seen so far has a `from` inside `domain` and a `to`, in the
    /// component namespace, and nothing unparsable was sent.
    pub fn assert_all_from_component(&mut self, domain: &str) {
        self.pump();
        let bad: Vec<_> = self
            .backlog
            .iter()
            .filter(|e| matches!(e, Ev::Unexpected { .. }))
            .collect();
        assert!(bad.is_empty(), "stream-level problems: {bad:?}");
        assert!(!self.seen.is_empty(), "no stanza seen");
        for el in &self.seen {
            let from = el
                .attr("from")
                .unwrap_or_else(|| panic!("COMP-3: no from on {}", String::from(el)));
            let jid = xmpp_parsers::jid::Jid::new(from).unwrap_or_else(|e| {
                panic!(
                    "COMP-3: invalid from {from:?} ({e}) on {}",
                    String::from(el)
                )
            });
            assert_eq!(
                jid.domain().as_str(),
                domain,
                "COMP-3: from outside the component domain: {}",
                String::from(el)
            );
            assert!(
                el.attr("to").is_some(),
                "COMP-3: no to on {}",
                String::from(el)
            );
            assert_eq!(
                el.ns(),
                NS_COMPONENT,
                "COMP-3 namespace: {}",
                String::from(el)
            );
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for t in self.shared.conn_tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// A keepalive ping from the component (XEP-0199).
pub fn is_keepalive(el: &Element) -> bool {
    el.name() == "iq"
        && el.attr("type") == Some("get")
        && el
            .attr("id")
            .is_some_and(|i| i.starts_with("stox-keepalive-"))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, ev: mpsc::UnboundedSender<Ev>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            return;
        };
        let _ = sock.set_nodelay(true);
        let conn = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = ev.send(Ev::Connected { conn });
        let (tx, rx) = mpsc::unbounded_channel();
        *shared.current.lock().unwrap() = Some(tx);
        let task = tokio::spawn(serve_conn(sock, conn, shared.clone(), ev.clone(), rx));
        shared.conn_tasks.lock().unwrap().push(task);
    }
}

async fn read_token(sock: &mut TcpStream, sp: &mut Splitter) -> Option<Token> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(t) = sp.next_token() {
            return Some(t);
        }
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => sp.push(&buf[..n]),
        }
    }
}

async fn serve_conn(
    mut sock: TcpStream,
    conn: usize,
    shared: Arc<Shared>,
    ev: mpsc::UnboundedSender<Ev>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) {
    let mut sp = Splitter::new();
    let header = loop {
        match read_token(&mut sock, &mut sp).await {
            Some(Token::Header(h)) => break h,
            Some(_) => continue,
            None => {
                let _ = ev.send(Ev::Closed { conn });
                return;
            }
        }
    };
    let _ = ev.send(Ev::Header {
        conn,
        raw: header.clone(),
    });
    let to = raw_attr(&header, "to").unwrap_or_default();
    let id = format!("fake-stream-{conn}-{}", std::process::id());
    let reply = format!(
        "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='{to}' id='{id}'>"
    );
    if sock.write_all(reply.as_bytes()).await.is_err() {
        return;
    }
    let hex = loop {
        match read_token(&mut sock, &mut sp).await {
            Some(Token::Element(e)) => match parse_stanza(&e) {
                Ok(el) if el.name() == "handshake" => break el.text(),
                _ => continue,
            },
            Some(_) => continue,
            None => {
                let _ = ev.send(Ev::Closed { conn });
                return;
            }
        }
    };
    let secret = shared.secret.lock().unwrap().clone();
    let expected = sha1_hex(format!("{id}{secret}").as_bytes());
    if hex != expected {
        let _ = sock
            .write_all(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
            .await;
        let _ = sock.shutdown().await;
        let _ = ev.send(Ev::HandshakeRejected { conn, id, hex });
        // Let the component see the close; then drop the socket.
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        let _ = ev.send(Ev::Closed { conn });
        return;
    }
    if sock.write_all(b"<handshake/>").await.is_err() {
        return;
    }
    shared.handshakes.fetch_add(1, Ordering::SeqCst);
    let _ = ev.send(Ev::HandshakeOk { conn, id, hex });
    let mut buf = [0u8; 4096];
    let mut cmds_open = true;
    loop {
        tokio::select! {
            cmd = cmds.recv(), if cmds_open => match cmd {
                Some(Cmd::Send(bytes)) => {
                    if sock.write_all(&bytes).await.is_err() {
                        let _ = ev.send(Ev::Closed { conn });
                        return;
                    }
                }
                // A newer connection replaced this one as "current": keep reading.
                None => cmds_open = false,
            },
            r = sock.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = ev.send(Ev::Closed { conn });
                    return;
                }
                Ok(n) => {
                    sp.push(&buf[..n]);
                    while let Some(tok) = sp.next_token() {
                        match tok {
                            Token::Element(raw) => {
                                let el = match parse_stanza(&raw) {
                                    Ok(el) => el,
                                    Err(e) => {
                                        let what = format!("unparsable XML: {e}");
                                        let _ = ev.send(Ev::Unexpected { conn, what });
                                        continue;
                                    }
                                };
                                if is_keepalive(&el) {
                                    // Answer like a real server (XEP-0199).
                                    let pong = format!(
                                        "<iq type='result' id='{}' from='{}' to='{}'/>",
                                        el.attr("id").unwrap_or(""),
                                        el.attr("to").unwrap_or(""),
                                        el.attr("from").unwrap_or("")
                                    );
                                    let _ = sock.write_all(pong.as_bytes()).await;
                                }
                                let _ = ev.send(Ev::Stanza { conn, el, raw });
                            }
                            Token::Footer => {
                                let _ = ev.send(Ev::Footer { conn });
                                let _ = sock.write_all(b"</stream:stream>").await;
                            }
                            Token::Header(h) => {
                                let what = format!("second stream header: {h}");
                                let _ = ev.send(Ev::Unexpected { conn, what });
                            }
                        }
                    }
                }
            }
        }
    }
}
