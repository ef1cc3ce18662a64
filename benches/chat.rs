//! MSRP chat benchmark (issue: messages/s through one session and across 1,000 concurrent
//! sessions, memory per idle session). Not a test: it prints figures to compare between
//! builds.
//!
//!     cargo bench --bench chat                         # 1 session x 20000, 1000 sessions x 20
//!     STOX_BENCH_MSGS=50000 STOX_BENCH_SESSIONS=2000 cargo bench --bench chat
//!
//! The release `stox` binary runs as its own process against a fake XEP-0114 server in this
//! process. A SIP user agent here opens sessions by INVITE (RFC 7573 §5, S->X), connects to
//! the gateway's `a=path` and sends SENDs of 100 octets; the gateway turns each into a
//! `<message/>` on the component stream. Reported: messages/s from the first SEND to the last
//! stanza, latency SEND -> stanza (p50/p90/p99/max), and the stox process's RSS growth per
//! idle session. All sessions share one TCP connection (RFC 4975 §6 connection reuse), as
//! sessions between two hosts do. At most WINDOW messages are in flight at once.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

mod common;
use common::{in_use, kib, rss_kib, Gw};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stox::chat::msrp::{Decoder, Flag, Frame, MsrpUri};
use support::sip::{request, token, SipMsg, UdpPeer};
use support::xmpp::{Ev, FakeServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "bench-secret";
const WINDOW: usize = 256;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_stox(xmpp: SocketAddr, sessions: usize) -> Gw {
    common::start_stox(
        env!("CARGO_BIN_EXE_stox"),
        xmpp,
        SECRET,
        &format!(
            "[chat]\nmode = \"session\"\nmsrp_listen = \"127.0.0.1:0\"\nmax_sessions = {}\n",
            sessions * 2 + 10
        ),
    )
}

/// One session opened by INVITE: our URI and the gateway's.
struct Sess {
    ours: MsrpUri,
    theirs: MsrpUri,
}

async fn invite(peer: &UdpPeer, gw: SocketAddr, i: usize, our_port: u16) -> Sess {
    let ours = MsrpUri::local("127.0.0.1", our_port);
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message {our_port} TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:{ours}\r\n"
    );
    let from = format!("<sip:romeo{i}@example.net>;tag={}", token());
    let inv = request(
        "INVITE",
        "sip:juliet@example.com",
        &from,
        "<sip:juliet@example.com>",
        &[
            ("Contact", &format!("<sip:romeo{i}@{}>", peer.addr)),
            ("Content-Type", "application/sdp"),
        ],
        sdp.as_bytes(),
    );
    let sent = peer.send_request(inv, gw).await;
    let resp = peer.final_response(&sent, Duration::from_secs(10)).await;
    assert_eq!(resp.code(), Some(200), "INVITE {i}: {}", resp.start);
    // RFC 3261 §13.2.2.4: the ACK of a 2xx is its own transaction (new branch).
    let ack = SipMsg {
        start: format!("ACK {} SIP/2.0", sent.uri().unwrap_or("")),
        headers: vec![
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), sent.header("from").unwrap_or("").into()),
            ("To".into(), resp.header("to").unwrap_or("").into()),
            (
                "Call-ID".into(),
                sent.header("call-id").unwrap_or("").into(),
            ),
            (
                "CSeq".into(),
                format!(
                    "{} ACK",
                    sent.header("cseq")
                        .unwrap_or("1")
                        .split(' ')
                        .next()
                        .unwrap_or("1")
                ),
            ),
        ],
        body: Vec::new(),
    };
    peer.send_request(ack, gw).await;
    let answer = stox::chat::sdp::parse(&resp.body).expect("MSRP answer");
    Sess {
        ours,
        theirs: answer.path.last().cloned().expect("path"),
    }
}

fn send_frame(s: &Sess, seq: usize, body: &[u8], bodiless: bool) -> Vec<u8> {
    let tid = format!("t{seq:09}");
    let mut f = Frame::request(tid, "SEND")
        .with("To-Path", s.theirs.to_string())
        .with("From-Path", s.ours.to_string())
        .with("Message-ID", format!("m{seq:09}"));
    if bodiless {
        f = f.with("Byte-Range", "1-0/0");
    } else {
        f = f
            .with("Byte-Range", format!("1-{}/{}", body.len(), body.len()))
            .with("Failure-Report", "no")
            .with("Content-Type", "text/plain");
        f.body = Some(bytes::Bytes::copy_from_slice(body));
    }
    f.flag = Flag::End;
    f.to_bytes()
}

/// Stanzas received by the fake server with body `seq:N`: the arrival time of each N.
async fn collect(
    xmpp: &mut FakeServer,
    n: usize,
    arrived: &mut [Option<Instant>],
    got: &mut usize,
) {
    while *got < n {
        let ev = xmpp
            .try_wait_for(Duration::from_secs(30), |e| matches!(e, Ev::Stanza { .. }))
            .await;
        let Some(Ev::Stanza { el, .. }) = ev else {
            panic!("only {got} of {n} messages reached XMPP");
        };
        if let Some(b) = el.get_child("body", "jabber:component:accept") {
            if let Some(i) = b
                .text()
                .strip_prefix("seq:")
                .and_then(|v| v.split(' ').next()?.parse::<usize>().ok())
            {
                if i < arrived.len() && arrived[i].is_none() {
                    arrived[i] = Some(Instant::now());
                    *got += 1;
                }
            }
        }
        xmpp.seen.clear();
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run(
    label: &str,
    xmpp: &mut FakeServer,
    conn: &mut tokio::net::tcp::OwnedWriteHalf,
    sessions: &[Sess],
    msgs: usize,
) {
    let body_pad = "x".repeat(80);
    let mut sent_at = vec![None; msgs];
    let mut arrived = vec![None; msgs];
    let mut got = 0;
    let t0 = Instant::now();
    let mut next = 0;
    while got < msgs {
        let mut batch = Vec::new();
        while next < msgs && next - got < WINDOW {
            let s = &sessions[next % sessions.len()];
            let body = format!("seq:{next} {body_pad}");
            batch.extend(send_frame(
                s,
                next,
                &body.as_bytes()[..100.min(body.len())],
                false,
            ));
            sent_at[next] = Some(Instant::now());
            next += 1;
        }
        if !batch.is_empty() {
            conn.write_all(&batch).await.unwrap();
        }
        let want = (got + 1).max(next.saturating_sub(WINDOW / 2)).min(msgs);
        collect(xmpp, want, &mut arrived, &mut got).await;
    }
    let total = t0.elapsed();
    let mut lat: Vec<Duration> = sent_at
        .iter()
        .zip(&arrived)
        .filter_map(|(s, a)| Some(a.as_ref()?.duration_since(*s.as_ref()?)))
        .collect();
    lat.sort_unstable();
    println!(
        "  {label}: {msgs} messages in {:.2} s = {:.0} msgs/s; SEND -> stanza p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        total.as_secs_f64(),
        msgs as f64 / total.as_secs_f64(),
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.9).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Read and drop what the gateway sends back (transaction responses to the bodiless SENDs).
fn drain(mut rd: tokio::net::tcp::OwnedReadHalf) {
    tokio::spawn(async move {
        let mut d = Decoder::new(1 << 20);
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            d.extend(&buf[..n]);
            while let Ok(Some(_)) = d.next_frame() {}
        }
    });
}

async fn bench(one_msgs: usize, sessions_n: usize, per_session: usize, settle: Duration) {
    let mut xmpp = FakeServer::start(SECRET).await;
    let gw = start_stox(xmpp.addr, sessions_n);
    xmpp.wait_online(Duration::from_secs(20)).await;
    let pid = gw.child.id();
    let peer = UdpPeer::bind().await;
    // A port for our side of the paths; nothing connects to it (we are active).
    let our_port = 40_000;

    println!("chat: stox process, MSRP SEND (100 octets) -> XMPP <message/> (loopback)");
    let one = vec![invite(&peer, gw.sip, 0, our_port).await];
    let connect_to = one[0].theirs.authority();
    let stream = TcpStream::connect(&connect_to)
        .await
        .expect("connect to stox MSRP");
    stream.set_nodelay(true).unwrap();
    let (rd, mut w) = stream.into_split();
    drain(rd);
    w.write_all(&send_frame(&one[0], 0, b"", true))
        .await
        .unwrap();
    run("1 session", &mut xmpp, &mut w, &one, one_msgs).await;

    let rss0 = rss_kib(Some(pid));
    let heap0 = in_use(pid, &gw.stderr);
    let t = Instant::now();
    let mut many = Vec::with_capacity(sessions_n);
    for i in 0..sessions_n {
        let s = invite(&peer, gw.sip, i + 1, our_port).await;
        w.write_all(&send_frame(&s, 0, b"", true)).await.unwrap();
        many.push(s);
    }
    let setup = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = rss_kib(Some(pid));
    println!(
        "  set-up: {sessions_n} sessions (INVITE/200/ACK + bodiless SEND) in {:.2} s = {:.0}/s",
        setup.as_secs_f64(),
        sessions_n as f64 / setup.as_secs_f64()
    );
    println!(
        "  memory: RSS {rss0} KiB -> {rss1} KiB with {sessions_n} idle sessions = {:.1} KiB per session (includes ezk's INVITE transactions, kept 32 s)",
        (rss1.saturating_sub(rss0)) as f64 / sessions_n as f64
    );
    run(
        &format!("{sessions_n} sessions"),
        &mut xmpp,
        &mut w,
        &many,
        sessions_n * per_session,
    )
    .await;
    let heap1 = in_use(pid, &gw.stderr);
    if settle == Duration::ZERO {
        return;
    }
    {
        // ezk keeps each INVITE server transaction 32 s (Timer H/I); after that only the
        // sessions themselves remain (glibc may keep freed pages, so this is an upper bound).
        tokio::time::sleep(settle).await;
        let rss2 = rss_kib(Some(pid));
        println!(
            "  memory after {} s (INVITE transactions gone): RSS {rss2} KiB = {:.1} KiB per session over the start",
            settle.as_secs(),
            (rss2.saturating_sub(rss0)) as f64 / sessions_n as f64
        );
        let heap2 = in_use(pid, &gw.stderr);
        let per = match (heap0, heap2) {
            (Some(a), Some(b)) => format!(
                "{:.1} KiB",
                b.saturating_sub(a) as f64 / 1024.0 / sessions_n as f64
            ),
            _ => "n/a (no gdb)".into(),
        };
        println!(
            "  live heap (glibc in-use bytes): before {}, with sessions and transactions {}, after {} s {} = {per} per idle session",
            kib(heap0),
            kib(heap1),
            settle.as_secs(),
            kib(heap2)
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` it is a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (one, sessions, per) = if full {
        (
            env("STOX_BENCH_MSGS", 20_000),
            env("STOX_BENCH_SESSIONS", 1000),
            20,
        )
    } else {
        (200, 10, 5)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let settle = if full {
        Duration::from_secs(env("STOX_BENCH_SETTLE_SECS", 35) as u64)
    } else {
        Duration::ZERO
    };
    rt.block_on(bench(one, sessions, per, settle));
}
