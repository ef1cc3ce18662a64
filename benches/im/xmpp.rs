//! XMPP side of the harness: a XEP-0114 server that accepts a gateway's component
//! connection (any handshake: the secret is not what is measured), counts the `<message/>`
//! bodies the gateway writes into a [`Sink`], counts error stanzas, and injects messages at a
//! controlled rate. The stream is scanned for `<body` tags rather than parsed into a tree:
//! the harness has to be several times faster than the gateways it measures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sink::{body, Sink};

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let at = i + hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Count the bodies (and error stanzas) of complete stanzas in `buf`; returns how many bytes
/// were consumed (a partial stanza at the end waits for the next read).
fn scan(buf: &[u8], sink: &Sink) -> usize {
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        let Some(open) = find(rest, b"<message") else {
            // Keep a tail that could be the start of a split "<message".
            return at + rest.len().saturating_sub(8);
        };
        let Some(close) = find(&rest[open..], b"</message>") else {
            return at + open;
        };
        let stanza = &rest[open..open + close];
        let head_end = stanza.iter().position(|&b| b == b'>').unwrap_or(0);
        let head = &stanza[..head_end];
        if find(head, b"type='error'").is_some() || find(head, b"type=\"error\"").is_some() {
            sink.error();
        } else if let Some(b) = find(stanza, b"<body") {
            let inner = &stanza[b..];
            if let (Some(gt), Some(end)) = (
                inner.iter().position(|&c| c == b'>'),
                find(inner, b"</body>"),
            ) {
                sink.record(&inner[gt + 1..end]);
            }
        }
        at += open + close + b"</message>".len();
    }
}

/// Read a component stream to its end, counting stanzas.
fn count_stream(mut conn: TcpStream, sink: &Sink, stop: &AtomicBool) {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 16];
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while !stop.load(Ordering::Acquire) {
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        }
        let used = scan(&buf, sink);
        buf.drain(..used);
    }
}

/// Read from `conn` until `needle` has been seen; false on EOF/error/timeout.
fn read_until(conn: &mut TcpStream, needle: &[u8]) -> bool {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match conn.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                seen.extend_from_slice(&chunk[..n]);
                if find(&seen, needle).is_some() {
                    return true;
                }
            }
            Err(_) => continue,
        }
    }
    false
}

/// The counting and injecting XEP-0114 server.
pub struct Server {
    pub addr: SocketAddr,
    link: Arc<Mutex<Option<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Server {
    pub fn start(sink: Arc<Sink>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let link = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st) = (link.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_nodelay(true).unwrap();
                conn.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                if !read_until(&mut conn, b">") {
                    continue;
                }
                let header = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
                     xmlns='jabber:component:accept' id='bench-stream' from='sip.example.com'>";
                if conn.write_all(header.as_bytes()).is_err()
                    || !read_until(&mut conn, b"handshake>")
                    || conn.write_all(b"<handshake/>").is_err()
                {
                    continue;
                }
                *l.lock().unwrap() = Some(conn.try_clone().unwrap());
                let (s, st2) = (sink.clone(), st.clone());
                std::thread::spawn(move || count_stream(conn, &s, &st2));
            }
        });
        Server { addr, link, stop }
    }

    /// Wait until a component has completed its handshake.
    pub fn wait_link(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.link.lock().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Write `count` messages to `to` at `rate` per second (0: all at once, in large
    /// writes), from `from` with `{n}` replaced by 0..64 in turn (many senders, as real
    /// traffic has). Returns the seconds spent writing.
    pub fn inject(
        &self,
        to: &str,
        from: &str,
        rate: u64,
        count: u64,
        run: u32,
        sink: &Sink,
    ) -> f64 {
        let mut conn = self
            .link
            .lock()
            .unwrap()
            .as_ref()
            .expect("no component connected")
            .try_clone()
            .unwrap();
        inject_on(&mut conn, to, from, rate, count, run, sink)
    }
}

/// The injection loop, shared with the harness-ceiling client.
pub fn inject_on(
    conn: &mut TcpStream,
    to: &str,
    from: &str,
    rate: u64,
    count: u64,
    run: u32,
    sink: &Sink,
) -> f64 {
    let start = Instant::now();
    let mut next = 0u64;
    let mut out = Vec::with_capacity(1 << 16);
    while next < count {
        let due = if rate == 0 {
            count
        } else {
            (((start.elapsed().as_secs_f64()) * rate as f64) as u64 + 1).min(count)
        };
        while next < due {
            let ts = sink.now_ns();
            let sender = from.replace("{n}", &(next % 64).to_string());
            out.extend_from_slice(
                format!(
                    "<message from='{sender}' to='{to}' id='sb{run}-{next}' type='normal'><body>{}</body></message>",
                    body(run, next, ts)
                )
                .as_bytes(),
            );
            next += 1;
            if out.len() >= 1 << 16 {
                conn.write_all(&out).expect("inject");
                out.clear();
            }
        }
        if !out.is_empty() {
            conn.write_all(&out).expect("inject");
            out.clear();
        }
        if next < count {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    start.elapsed().as_secs_f64()
}

/// A stand-in gateway for the harness ceiling: connects to `server` as a component and
/// counts what the server injects into `sink`. Its stream can be written to, too.
pub fn loop_client(server: SocketAddr, sink: Arc<Sink>) -> TcpStream {
    let mut conn = TcpStream::connect(server).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.write_all(
        b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='sip.example.com'>",
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(read_until(&mut conn, b"id="), "no stream header");
    conn.write_all(b"<handshake>0</handshake>").unwrap();
    assert!(read_until(&mut conn, b"<handshake/>"), "no handshake");
    let reader = conn.try_clone().unwrap();
    std::thread::spawn(move || count_stream(reader, &sink, &AtomicBool::new(false)));
    conn
}
