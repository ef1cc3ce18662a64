//! SIP side of the harness: a rate-controlled MESSAGE generator (UDP with RFC 3261 Timer E
//! retransmissions, or one pipelined TCP connection) and a responder that answers every
//! request 200 and hands MESSAGE bodies to a [`Sink`]. Plain threads and blocking sockets,
//! no SIP stack: the tools must cost far less per message than the gateways they measure.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::sink::{body, Sink};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
        }
    }
}

/// A loopback UDP socket with 4 MB buffers (bounded by net.core.rmem_max/wmem_max).
fn udp_socket(bind: &str) -> UdpSocket {
    let sock = UdpSocket::bind(bind).expect("bind UDP");
    let s = socket2::SockRef::from(&sock);
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    sock
}

/// How the generated MESSAGEs are addressed (each gateway has its own address scheme).
#[derive(Clone, Debug)]
pub struct Shape {
    pub ruri: String,
    pub from_domain: String,
    /// Senders rotate over this many users, as traffic from many people would.
    pub from_users: u64,
}

/// What the generator saw of one run.
#[derive(Clone, Debug, Default)]
pub struct GenReport {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Requests with no final response by the end of the grace period.
    pub timeouts: u64,
    pub retransmissions: u64,
    /// Final responses codes other than 2xx, with counts.
    pub codes: BTreeMap<u16, u64>,
    /// Seconds from the first request to the last one written.
    pub send_secs: f64,
}

fn request(shape: &Shape, local: SocketAddr, proto: Proto, run: u32, seq: u64, ts: u64) -> Vec<u8> {
    let text = body(run, seq, ts);
    format!(
        "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/{p} {local};branch=z9hG4bK-sb{run}-{seq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:u{user}@{dom}>;tag=sb{run}\r\nTo: <{ruri}>\r\n\
         Call-ID: sb{run}.{seq}@bench\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {len}\r\n\r\n{text}",
        ruri = shape.ruri,
        p = proto.name(),
        user = seq % shape.from_users.max(1),
        dom = shape.from_domain,
        len = text.len(),
    )
    .into_bytes()
}

/// The header lines of a SIP message (head only), as (lower-case long name, value).
fn headers(head: &str) -> impl Iterator<Item = (String, &str)> {
    head.split("\r\n").skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = match name.trim().to_ascii_lowercase().as_str() {
            "i" => "call-id".to_string(),
            "v" => "via".to_string(),
            "f" => "from".to_string(),
            "t" => "to".to_string(),
            "l" => "content-length".to_string(),
            other => other.to_string(),
        };
        Some((name, value.trim()))
    })
}

/// Length of the first complete SIP message in `buf` (head + Content-Length body), if any.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let len: usize = headers(head)
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    (buf.len() >= end + len).then_some(end + len)
}

/// (status code, run, seq) of a response to one of our requests.
fn parse_response(msg: &[u8]) -> Option<(u16, u32, u64)> {
    let text = std::str::from_utf8(msg).ok()?;
    let code = text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
    let head = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    let (_, call_id) = headers(head).find(|(n, _)| n == "call-id")?;
    let (run, seq) = call_id
        .strip_prefix("sb")?
        .split_once('@')?
        .0
        .split_once('.')?;
    Some((code, run.parse().ok()?, seq.parse().ok()?))
}

struct Answers {
    run: u32,
    state: Vec<AtomicU8>,
    answered: AtomicU64,
    ok: AtomicU64,
    codes: Mutex<BTreeMap<u16, u64>>,
}

impl Answers {
    fn on_response(&self, msg: &[u8]) {
        let Some((code, run, seq)) = parse_response(msg) else {
            return;
        };
        if code < 200 || run != self.run {
            return;
        }
        let Some(slot) = self.state.get(seq as usize) else {
            return;
        };
        if slot.swap(1, Ordering::AcqRel) == 1 {
            return; // a retransmitted final response
        }
        self.answered.fetch_add(1, Ordering::AcqRel);
        if (200..300).contains(&code) {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            *self.codes.lock().unwrap().entry(code).or_default() += 1;
        }
    }
}

/// Send `count` MESSAGEs to `target` at `rate` per second, then wait up to `grace` for the
/// last final responses. Over UDP an unanswered request is retransmitted after 500 ms,
/// doubling up to 4 s (RFC 3261 Timer E); every retransmission is counted.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    proto: Proto,
    target: SocketAddr,
    shape: &Shape,
    rate: u64,
    count: u64,
    run: u32,
    sink: &Sink,
    grace: Duration,
) -> GenReport {
    let answers = Arc::new(Answers {
        run,
        state: (0..count).map(|_| AtomicU8::new(0)).collect(),
        answered: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        codes: Mutex::new(BTreeMap::new()),
    });
    let done = Arc::new(AtomicBool::new(false));
    let (mut writer, local, reader) = match proto {
        Proto::Udp => {
            let sock = udp_socket("127.0.0.1:0");
            sock.connect(target).expect("connect generator");
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let local = sock.local_addr().unwrap();
            let rx = sock.try_clone().unwrap();
            let (a, d) = (answers.clone(), done.clone());
            let reader = std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !d.load(Ordering::Acquire) {
                    if let Ok(n) = rx.recv(&mut buf) {
                        a.on_response(&buf[..n]);
                    }
                }
            });
            (Writer::Udp(sock), local, reader)
        }
        Proto::Tcp => {
            let stream = TcpStream::connect(target).expect("connect generator (TCP)");
            stream.set_nodelay(true).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let local = stream.local_addr().unwrap();
            let mut rx = stream.try_clone().unwrap();
            let (a, d) = (answers.clone(), done.clone());
            let reader = std::thread::spawn(move || {
                let mut buf = Vec::with_capacity(1 << 20);
                let mut chunk = vec![0u8; 65536];
                while !d.load(Ordering::Acquire) {
                    match rx.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(_) => continue,
                    }
                    let mut at = 0;
                    while let Some(len) = frame_len(&buf[at..]) {
                        a.on_response(&buf[at..at + len]);
                        at += len;
                    }
                    buf.drain(..at);
                }
            });
            (
                Writer::Tcp(stream, Vec::with_capacity(1 << 16)),
                local,
                reader,
            )
        }
    };

    let start = Instant::now();
    let mut report = GenReport::default();
    // (Reverse(due), seq, interval): the next retransmission of each unanswered UDP request.
    let mut retx: BinaryHeap<(std::cmp::Reverse<Instant>, u64, Duration)> = BinaryHeap::new();
    let mut next = 0u64;
    let mut send_end = None;
    loop {
        let now = Instant::now();
        let due = ((now - start).as_secs_f64() * rate as f64) as u64 + 1;
        while next < due.min(count) {
            let msg = request(shape, local, proto, run, next, sink.now_ns());
            writer.send(&msg);
            if proto == Proto::Udp {
                let t1 = Duration::from_millis(500);
                retx.push((std::cmp::Reverse(now + t1), next, t1));
            }
            next += 1;
        }
        writer.flush();
        while let Some((std::cmp::Reverse(at), seq, interval)) = retx.peek().copied() {
            if at > now {
                break;
            }
            retx.pop();
            if answers.state[seq as usize].load(Ordering::Acquire) == 1 {
                continue;
            }
            let msg = request(shape, local, proto, run, seq, sink.now_ns());
            writer.send(&msg);
            report.retransmissions += 1;
            let interval = (interval * 2).min(Duration::from_secs(4));
            retx.push((std::cmp::Reverse(now + interval), seq, interval));
        }
        writer.flush();
        if next == count {
            let end = *send_end.get_or_insert(now);
            if answers.answered.load(Ordering::Acquire) == count || now - end > grace {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    done.store(true, Ordering::Release);
    let _ = reader.join();
    report.sent = count;
    report.send_secs = (send_end.unwrap_or(start) - start).as_secs_f64();
    report.ok = answers.ok.load(Ordering::Acquire);
    let answered = answers.answered.load(Ordering::Acquire);
    report.failed = answered - report.ok;
    report.timeouts = count - answered;
    report.codes = answers.codes.lock().unwrap().clone();
    report
}

enum Writer {
    Udp(UdpSocket),
    /// Requests of one tick are written together: pipelining, one syscall per batch.
    Tcp(TcpStream, Vec<u8>),
}

impl Writer {
    fn send(&mut self, msg: &[u8]) {
        match self {
            Writer::Udp(s) => {
                // A full socket buffer drops the datagram here as it would on the wire;
                // Timer E recovers it and the retransmission is counted.
                let _ = s.send(msg);
            }
            Writer::Tcp(_, buf) => buf.extend_from_slice(msg),
        }
    }

    fn flush(&mut self) {
        if let Writer::Tcp(s, buf) = self {
            if !buf.is_empty() {
                s.write_all(buf).expect("TCP generator write");
                buf.clear();
            }
        }
    }
}

/// The 200 for `req`, or `None` if it is not a request.
fn answer(req: &[u8]) -> Option<(Vec<u8>, bool, &[u8])> {
    let end = req.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&req[..end]).ok()?;
    let first = head.split("\r\n").next()?;
    if first.starts_with("SIP/2.0") {
        return None;
    }
    let is_message = first.starts_with("MESSAGE ");
    let mut out = String::with_capacity(512);
    out.push_str("SIP/2.0 200 OK\r\n");
    for line in head.split("\r\n").skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                out.push_str(line);
                out.push_str("\r\n");
            }
            "to" | "t" => {
                out.push_str(line);
                if !line.contains(";tag=") {
                    out.push_str(";tag=bench");
                }
                out.push_str("\r\n");
            }
            _ => {}
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some((out.into_bytes(), is_message, &req[end + 4..]))
}

/// A SIP endpoint on one port, UDP and TCP, answering 200 to everything.
pub struct Responder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Responder {
    pub fn start(sink: Arc<Sink>) -> Responder {
        let (udp, tcp) = loop {
            let udp = udp_socket("127.0.0.1:0");
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (s, st) = (sink.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::Acquire) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((resp, is_message, body)) = answer(&buf[..n]) {
                    let _ = udp.send_to(&resp, from);
                    if is_message {
                        s.record(body);
                    }
                }
            }
        });
        tcp.set_nonblocking(true).unwrap();
        let st = stop.clone();
        std::thread::spawn(move || {
            while !st.load(Ordering::Acquire) {
                match tcp.accept() {
                    Ok((conn, _)) => {
                        let (s, st) = (sink.clone(), st.clone());
                        std::thread::spawn(move || serve_tcp(conn, &s, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Responder { addr, stop }
    }
}

fn serve_tcp(mut conn: TcpStream, sink: &Sink, stop: &AtomicBool) {
    conn.set_nonblocking(false).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 65536];
    let mut out = Vec::new();
    while !stop.load(Ordering::Acquire) {
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        let mut at = 0;
        while let Some(len) = frame_len(&buf[at..]) {
            if let Some((resp, is_message, body)) = answer(&buf[at..at + len]) {
                out.extend_from_slice(&resp);
                if is_message {
                    sink.record(body);
                }
            }
            at += len;
        }
        buf.drain(..at);
        if !out.is_empty() && conn.write_all(&out).is_err() {
            return;
        }
        out.clear();
    }
}
