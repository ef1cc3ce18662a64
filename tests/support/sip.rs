//! Raw SIP peers for the scenarios: a text parser/printer for SIP messages and UDP/TCP
//! endpoints that play a UAS (receives the gateway's MESSAGEs) or a UAC (sends to it).
//! Written from RFC 3261 directly, sharing no code with the gateway's SIP stack.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;

/// A parsed SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMsg {
    /// Request-Line or Status-Line.
    pub start: String,
    /// Headers in order, names as received.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        _ => return n,
    }
    .to_string()
}

impl SipMsg {
    /// Parse one complete message (datagram or framed stream chunk).
    pub fn parse(bytes: &[u8]) -> Result<SipMsg, String> {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no blank line after headers")?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|e| e.to_string())?;
        let body = bytes[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let start = lines.next().ok_or("empty")?.to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().ok_or("continuation before any header")?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let msg = SipMsg {
            start,
            headers,
            body,
        };
        if let Some(cl) = msg.header("content-length") {
            let cl: usize = cl.parse().map_err(|_| format!("bad Content-Length {cl}"))?;
            if cl != msg.body.len() {
                return Err(format!(
                    "Content-Length {cl} but body has {} bytes",
                    msg.body.len()
                ));
            }
        }
        Ok(msg)
    }

    /// Take one message off the front of a stream buffer, if complete (RFC 3261 §18.3).
    pub fn take_from_stream(buf: &mut Vec<u8>) -> Option<Result<SipMsg, String>> {
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let cl = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| canonical(n) == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let total = split + 4 + cl;
        if buf.len() < total {
            return None;
        }
        let bytes: Vec<u8> = buf.drain(..total).collect();
        Some(SipMsg::parse(&bytes))
    }

    /// First value of a header (compact forms understood), case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        let want = canonical(name);
        self.headers
            .iter()
            .find(|(n, _)| canonical(n) == want)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated values split.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let want = canonical(name);
        self.headers
            .iter()
            .filter(|(n, _)| canonical(n) == want)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .collect()
    }

    /// Raw header lines (name, value) of a header, in order.
    pub fn header_lines(&self, name: &str) -> Vec<&str> {
        let want = canonical(name);
        self.headers
            .iter()
            .filter(|(n, _)| canonical(n) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Status code of a response.
    pub fn code(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// Method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// Request-URI of a request.
    pub fn uri(&self) -> Option<&str> {
        self.method()?;
        self.start.split(' ').nth(1)
    }

    /// `branch` of the top Via.
    pub fn branch(&self) -> Option<String> {
        param(self.header("via")?, "branch")
    }

    /// Body as UTF-8 text.
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    /// Print as wire bytes (Content-Length added when absent).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.start);
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        if self.header("content-length").is_none() {
            s.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        s.push_str("\r\n");
        let mut b = s.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }

    /// A response to this request: Via/From/To/Call-ID/CSeq copied, a To tag added.
    pub fn response(&self, code: u16, reason: &str, extra: &[(&str, &str)]) -> SipMsg {
        let mut headers = Vec::new();
        for v in self.header_lines("via") {
            headers.push(("Via".to_string(), v.to_string()));
        }
        headers.push(("From".into(), self.header("from").unwrap_or("").into()));
        let mut to = self.header("to").unwrap_or("").to_string();
        if param(&to, "tag").is_none() {
            to.push_str(";tag=uas-tag-1");
        }
        headers.push(("To".into(), to));
        headers.push((
            "Call-ID".into(),
            self.header("call-id").unwrap_or("").into(),
        ));
        headers.push(("CSeq".into(), self.header("cseq").unwrap_or("").into()));
        for (n, v) in extra {
            headers.push((n.to_string(), v.to_string()));
        }
        SipMsg {
            start: format!("SIP/2.0 {code} {reason}"),
            headers,
            body: Vec::new(),
        }
    }
}

/// A `;name=value` parameter of a header value (outside `<...>`), or inside a URI when
/// `header` is a bare URI.
pub fn param(header: &str, name: &str) -> Option<String> {
    let tail = match header.rfind('>') {
        Some(i) => &header[i + 1..],
        None => header,
    };
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The URI inside `<...>` of a name-addr (or the value up to the first `;`).
pub fn uri_of(header: &str) -> String {
    match (header.find('<'), header.find('>')) {
        (Some(a), Some(b)) if a < b => header[a + 1..b].to_string(),
        _ => header.split(';').next().unwrap_or("").trim().to_string(),
    }
}

static SEQ: AtomicU64 = AtomicU64::new(1);

/// A fresh token for branches, tags and Call-IDs.
pub fn token() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A UDP SIP endpoint (either role).
pub struct UdpPeer {
    /// The socket.
    pub sock: UdpSocket,
    /// Its address.
    pub addr: SocketAddr,
}

impl UdpPeer {
    /// Bind a fresh loopback port.
    pub async fn bind() -> UdpPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = sock.local_addr().unwrap();
        UdpPeer { sock, addr }
    }

    /// Wrap an already bound socket.
    pub fn from_std(s: std::net::UdpSocket) -> UdpPeer {
        s.set_nonblocking(true).unwrap();
        let sock = UdpSocket::from_std(s).unwrap();
        let addr = sock.local_addr().unwrap();
        UdpPeer { sock, addr }
    }

    /// Send a message.
    pub async fn send(&self, msg: &SipMsg, to: SocketAddr) {
        self.sock
            .send_to(&msg.to_bytes(), to)
            .await
            .expect("udp send");
    }

    /// Next datagram as a message, or `None` after `timeout`.
    pub async fn recv(&self, timeout: Duration) -> Option<(SipMsg, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(timeout, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .expect("udp recv");
        let msg = SipMsg::parse(&buf[..n]).unwrap_or_else(|e| {
            panic!(
                "unparsable SIP from {from}: {e}\n{}",
                String::from_utf8_lossy(&buf[..n])
            )
        });
        Some((msg, from))
    }

    /// The next request (responses are skipped), or panic after `timeout`.
    pub async fn request(&self, timeout: Duration) -> (SipMsg, SocketAddr) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some((m, from)) if m.method().is_some() => return (m, from),
                Some(_) => continue,
                None => panic!("no SIP request within {timeout:?} at {}", self.addr),
            }
        }
    }

    /// Send a request built by [`request`] with our Via on top; returns it.
    pub async fn send_request(&self, mut msg: SipMsg, to: SocketAddr) -> SipMsg {
        let via = format!("SIP/2.0/UDP {};branch=z9hG4bK{};rport", self.addr, token());
        msg.headers.insert(0, ("Via".into(), via));
        self.send(&msg, to).await;
        msg
    }

    /// The final response to `req` (matched by branch), provisional ones skipped.
    pub async fn final_response(&self, req: &SipMsg, timeout: Duration) -> SipMsg {
        let branch = req.branch().expect("request has a branch");
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some((m, _))
                    if m.code().is_some_and(|c| c >= 200)
                        && m.branch().as_deref() == Some(&branch) =>
                {
                    return m
                }
                Some(_) => continue,
                None => panic!(
                    "no final response within {timeout:?} to:\n{}",
                    String::from_utf8_lossy(&req.to_bytes())
                ),
            }
        }
    }

    /// Send `req` and return its final response (ACKing a non-2xx INVITE response).
    pub async fn transact(&self, req: SipMsg, to: SocketAddr, timeout: Duration) -> SipMsg {
        let sent = self.send_request(req, to).await;
        let resp = self.final_response(&sent, timeout).await;
        if sent.method() == Some("INVITE") {
            self.send(&ack_for(&sent, &resp), to).await;
        }
        resp
    }
}

/// RFC 3261 §17.1.1.3: the ACK of a non-2xx final response to an INVITE.
pub fn ack_for(invite: &SipMsg, resp: &SipMsg) -> SipMsg {
    let cseq_num = invite
        .header("cseq")
        .unwrap_or("1")
        .split(' ')
        .next()
        .unwrap_or("1");
    SipMsg {
        start: format!("ACK {} SIP/2.0", invite.uri().unwrap_or("")),
        headers: vec![
            ("Via".into(), invite.header("via").unwrap_or("").into()),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), invite.header("from").unwrap_or("").into()),
            ("To".into(), resp.header("to").unwrap_or("").into()),
            (
                "Call-ID".into(),
                invite.header("call-id").unwrap_or("").into(),
            ),
            ("CSeq".into(), format!("{cseq_num} ACK")),
        ],
        body: Vec::new(),
    }
}

/// A request without Via (the peer adds its own), with the usual mandatory headers.
/// `extra` may override nothing; it is appended.
pub fn request(
    method: &str,
    ruri: &str,
    from: &str,
    to: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> SipMsg {
    let mut headers: Vec<(String, String)> = vec![
        ("Max-Forwards".into(), "70".into()),
        ("From".into(), from.into()),
        ("To".into(), to.into()),
        ("Call-ID".into(), format!("{}@test.example.net", token())),
        ("CSeq".into(), format!("1 {method}")),
    ];
    for (n, v) in extra {
        if ["max-forwards", "call-id", "cseq"]
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h))
        {
            let key = canonical(n);
            headers.retain(|(h, _)| canonical(h) != key);
        }
        headers.push((n.to_string(), v.to_string()));
    }
    SipMsg {
        start: format!("{method} {ruri} SIP/2.0"),
        headers,
        body: body.to_vec(),
    }
}

/// A TCP SIP endpoint accepting connections (a UAS reachable over TCP).
pub struct TcpUas {
    listener: TcpListener,
}

impl TcpUas {
    /// Wrap a bound listener.
    pub fn from_std(l: std::net::TcpListener) -> TcpUas {
        l.set_nonblocking(true).unwrap();
        TcpUas {
            listener: TcpListener::from_std(l).unwrap(),
        }
    }

    /// Accept one connection and read one request from it; returns the stream to answer on.
    pub async fn request(&self, timeout: Duration) -> (SipMsg, TcpStream) {
        tokio::time::timeout(timeout, async {
            let (mut s, _) = self.listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                if let Some(m) = SipMsg::take_from_stream(&mut buf) {
                    return (m.expect("parsable SIP over TCP"), s);
                }
                let n = s.read(&mut chunk).await.expect("tcp read");
                assert!(n > 0, "TCP peer closed before a full request");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no SIP request over TCP within {timeout:?}"))
    }
}

/// Send one request over a fresh TCP connection and return its final response.
pub async fn tcp_transact(to: SocketAddr, mut req: SipMsg, timeout: Duration) -> SipMsg {
    let mut s = TcpStream::connect(to).await.expect("tcp connect");
    let local = s.local_addr().unwrap();
    let via = format!("SIP/2.0/TCP {local};branch=z9hG4bK{}", token());
    req.headers.insert(0, ("Via".into(), via));
    s.write_all(&req.to_bytes()).await.unwrap();
    tokio::time::timeout(timeout, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            while let Some(m) = SipMsg::take_from_stream(&mut buf) {
                let m = m.expect("parsable SIP over TCP");
                if m.code().is_some_and(|c| c >= 200) {
                    return m;
                }
            }
            let n = s.read(&mut chunk).await.expect("tcp read");
            assert!(
                n > 0,
                "gateway closed the TCP connection without a final response"
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no final response over TCP within {timeout:?}"))
}

/// Answer a request on a TCP stream.
pub async fn tcp_respond(s: &mut TcpStream, resp: &SipMsg) {
    s.write_all(&resp.to_bytes()).await.unwrap();
}
