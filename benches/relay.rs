//! Media relay benchmark (issue 7: "the number of concurrent relayed audio calls this 2-core
//! machine sustains with < 1 % loss and the added one-way latency, next to a plain UDP
//! forwarder"). Not a test: it prints figures to compare between builds.
//!
//!     cargo bench --bench relay -j 1                          # about 3 minutes after the build
//!     STOX_BENCH_CALLS=100,1000,2000 STOX_BENCH_STEP_SECS=10 cargo bench --bench relay
//!     STOX_BENCH_MODES=relay STOX_BENCH_DIRECT=0 cargo bench --bench relay
//!     STOX_BENCH_MODES=relay,relay-ice,relay-ice-sdes cargo bench --bench relay
//!
//! The forwarder under test runs in its own process: this binary started again with
//! `STOX_BENCH_ROLE=relay` (stox's `media::relay`: a `PortPool` on 127.0.0.1:40000-49999 and
//! one `Relay` per call, each told both parties' addresses, with a 30 s no-media timeout as a
//! call would have) or `STOX_BENCH_ROLE=plain` (the baseline: the same four ports per call
//! from the same pool, and per port a task doing `recv_from` -> `send_to` toward a fixed
//! address from the other side's port; no latching, no RTCP demux, no counters per call, no
//! timer). Both use a multi-thread tokio runtime with 2 workers. It prints each call's two RTP
//! ports on stdout and answers `stats` on stdin with its forwarded/dropped counters; a fresh
//! process serves each step.
//!
//! `STOX_BENCH_ROLE=relay-ice` is the relay anchoring calls in `Mode::IceX`, as it does for
//! a Conversations or Dino caller: each `Relay` gets the relay's ICE credentials and the
//! process's DTLS identity (`LocalIce`), the X party as a `RemoteIce` (the relay is the
//! controlled agent and the DTLS client, as when it answers a client's `actpass` offer), and
//! the S party as plain RTP. Every packet from X is SRTP that the relay's str0m leg decrypts
//! before it goes to S, every packet from S is encrypted toward X, and the leg sends its own
//! SRTCP. `relay-ice-sdes` has the S parties speak SDES-SRTP (AES-CM 128, HMAC-SHA1-80) too,
//! so the relay decrypts and encrypts every packet both ways: the worst case. ICE credentials
//! and SDES keys are derived from the call number in both processes; the two DTLS
//! fingerprints are exchanged at start (environment one way, stdout the other).
//!
//! This process is the load generator. For K calls, each party sends 50 RTP packets/s (ptime
//! 20 ms) of 172 bytes (12-byte RTP header, PCMU payload type, 160 bytes of payload carrying
//! the call number, a sequence number and the send time) to its port of the call; the K calls'
//! send times are spread evenly over the 20 ms, and the S parties are 10 ms out of phase with
//! the X parties. All X parties share one UDP socket and all S parties another (the forwarder
//! keeps a destination per call either way; one socket each keeps the generator's IO cheap:
//! one sending and one receiving thread per socket, blocking std sockets, 4 MiB receive
//! buffers). A receiver checks each packet came from the call's own port on the other side
//! and takes its one-way latency from the send time (one process, one monotonic clock).
//!
//! In the ICE modes each call's X party is an ICE + DTLS-SRTP agent of its own, stox's
//! `IceLeg` on the other side of the handshake (ICE controlling, DTLS server), still on the
//! one X socket: a datagram is handed to the leg of the relay port it came from. The X
//! sending thread encrypts through the legs, the X receiving thread feeds them STUN, DTLS,
//! SRTP and SRTCP and takes the decrypted packets; a lock per leg lets the two share it. The
//! step's media starts once every leg is connected (the time that took is printed); a leg
//! that did not come up within 60 s drops its packets, which shows as loss. Latency runs from
//! the send time written before encryption to the decrypted packet, so it includes the
//! generator's own crypto; in `relay-ice-sdes` the S parties encrypt and decrypt with an
//! SRTP context per call the same way. The generator does the same crypto work as the
//! relay, on the same two cores: in these modes the capacity found is a lower bound of the
//! relay's.
//!
//! Steps of K (STOX_BENCH_CALLS, default 50,100,200,300,400,500,600,800,1000,1200,1600,2000;
//! at most 2,500, the port range) for each forwarder in turn, each 0.5 s of
//! warm-up, then STOX_BENCH_STEP_SECS (default 5) measured, then 0.3 s for the last packets.
//! A packet arriving later than STOX_BENCH_LATE_MS (default 100) after it was sent counts as
//! lost: a jitter buffer would throw it away, and an overloaded forwarder queues rather than
//! drops (each of its sockets carries one call's 50 packets/s). Per step: packets/s offered
//! (K x 100 nominal, and what the generator managed), loss, one-way latency p50/p99/max
//! through the forwarder, the forwarder process's CPU (100 % = one core), that CPU per packet
//! sent (µs), its RSS, the generator's CPU, the whole machine's busy share, the forwarder's
//! own drop count. A mode stops after a step with 5 % loss or more, or one where the
//! generator could not send 99 % of the rate. The `direct` row (STOX_BENCH_DIRECT=0 to skip)
//! has the parties send to each other with no forwarder, at the first K: the latency floor of
//! the generator and loopback. STOX_BENCH_MODES (default plain,relay,relay-ice; also
//! relay-ice-sdes) chooses the forwarders.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it is a quick smoke run: 10 calls
//! for 1 s through each forwarder (5 through the ICE modes, whose handshakes a debug build
//! does), failing on a misrouted packet, an ICE leg that did not come up, or when over 1 % of
//! the packets never arrive (late ones count as arrived there: a debug build on busy cores).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stox::media::relay::forward::Relay;
use stox::media::relay::ice::{identity, IceLeg, Out};
use stox::media::relay::ports::{CallPorts, PortPool};
use stox::media::relay::srtp::{MasterKey, SdesKey, Srtp, Suite};
use stox::media::relay::{LocalIce, MediaOut, PayloadType, Peer, RemoteIce, Side, SipSrtp};

const IP: &str = "127.0.0.1";
const PORT_MIN: u16 = 40000;
const PORT_MAX: u16 = 49999;
/// Calls the port range holds (four ports each).
const MAX_CALLS: usize = ((PORT_MAX - PORT_MIN + 1) / 4) as usize;
/// RTP header + 20 ms of PCMU.
const PKT: usize = 172;
const PTIME_NS: u64 = 20_000_000;
const DEFAULT_CALLS: &str = "50,100,200,300,400,500,600,800,1000,1200,1600,2000";
const WARMUP: Duration = Duration::from_millis(500);
const GRACE: Duration = Duration::from_millis(300);
/// The relay's no-media timer, as a call would run it (it never fires here).
const NO_MEDIA: Duration = Duration::from_secs(30);
/// How long the ICE modes wait for every call's ICE + DTLS to come up.
const CONNECT_LIMIT: Duration = Duration::from_secs(60);
/// Calls of the ICE modes in the smoke run (a debug build does the DTLS handshakes).
const SMOKE_ICE_CALLS: usize = 5;

/// The one payload type of the ICE modes' description (what the relay tells str0m).
fn pcmu() -> Vec<PayloadType> {
    vec![PayloadType::pcmu()]
}

/// ICE ufrag and password of `call`, for the X party (`'x'`) or the relay's leg (`'r'`).
/// Both processes derive them from the call number, so nothing carries them between the
/// two. Letters and digits only (ice-char, RFC 8445 §5.3); the password has the 22
/// characters RFC 8445 asks for at least.
fn ice_creds(who: char, call: usize) -> (String, String) {
    (
        format!("{who}{call}"),
        format!("{who}{call:06}pw0123456789abcdefghij"),
    )
}

/// SDES master keys of `call` in `relay-ice-sdes`: the S party's (`'s'`, the relay
/// decrypts with it) or the relay's toward it (`'r'`). Fixed per call for the same reason
/// as [`ice_creds`]; a benchmark needs no secrecy.
fn sdes_key(who: char, call: usize) -> MasterKey {
    let mut k = [who as u8; 30];
    k[..8].copy_from_slice(&(call as u64).to_be_bytes());
    MasterKey(k)
}

/// A fingerprint as the processes pass it: `sha-256 AB:CD:..`.
fn parse_fp(v: &str) -> Option<(String, String)> {
    let (hash, value) = v.trim().split_once(' ')?;
    Some((hash.to_owned(), value.to_owned()))
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time of a process, seconds (Linux clock ticks of 1/100 s).
fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".into(), |p| format!("/proc/{p}/stat"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields 14 and 15 of stat; `after` starts at field 3
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Busy and total jiffies of the whole machine (all cores), from /proc/stat.
fn host_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|n| n.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// The forwarder process.

/// Forwarded X->S, S->X, dropped (the baseline's own counters).
type Counters = [AtomicU64; 3];

fn server(role: &str) {
    let k = env("STOX_BENCH_K", 1) as usize;
    let addr = |name: &str| -> SocketAddr {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not set"))
    };
    let (x, s) = (addr("STOX_BENCH_X"), addr("STOX_BENCH_S"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _in_rt = rt.enter();
    let pool = PortPool::new(IP.parse().unwrap(), PORT_MIN, PORT_MAX);
    let counters: Arc<Counters> = Arc::default();
    let mut relays = Vec::with_capacity(k);
    let mut out = std::io::stdout().lock();
    let ice_role = role.starts_with("relay-ice");
    // The two processes have a DTLS certificate each: the generator's fingerprint comes in
    // the environment, the relay's goes out first on stdout.
    let party_fp = ice_role.then(|| {
        std::env::var("STOX_BENCH_FP")
            .ok()
            .and_then(|v| parse_fp(&v))
            .expect("STOX_BENCH_FP not set")
    });
    if ice_role {
        let (hash, value) = &identity().expect("a DTLS identity").fingerprint;
        writeln!(out, "fp {hash} {value}").unwrap();
    }
    for call in 0..k {
        let ports = pool.allocate().expect("the port range is full");
        writeln!(out, "{} {}", ports.x_port(), ports.s_port()).unwrap();
        match role {
            // As a Conversations or Dino caller's call is anchored: the client offered
            // (actpass, ICE controlling), the relay answers as the DTLS client and the
            // controlled agent (`media::relay::remote_ice`).
            "relay-ice" | "relay-ice-sdes" => {
                let (ufrag, pwd) = ice_creds('r', call);
                let me = LocalIce {
                    ufrag,
                    pwd,
                    fingerprint: identity().expect("a DTLS identity").fingerprint.clone(),
                };
                let r = Relay::spawn(ports, None, None, Some(NO_MEDIA), Some(me)).expect("relay");
                let (ufrag, pwd) = ice_creds('x', call);
                r.update(MediaOut::Peer(Peer {
                    side: Side::X,
                    rtp: None,
                    rtcp: None,
                    both_ways: true,
                    ice: Some(RemoteIce {
                        ufrag,
                        pwd,
                        fingerprint: party_fp.clone().unwrap(),
                        candidates: vec![x],
                        dtls_client: true,
                        controlling: false,
                    }),
                    payloads: pcmu(),
                    srtp: None,
                }));
                let srtp = (role == "relay-ice-sdes").then(|| SipSrtp {
                    theirs: SdesKey {
                        tag: 1,
                        suite: Suite::Sha1_80,
                        key: sdes_key('s', call),
                        mki_len: 0,
                    },
                    ours: sdes_key('r', call),
                });
                r.update(MediaOut::Peer(Peer {
                    side: Side::S,
                    rtp: Some(s),
                    rtcp: Some(s),
                    both_ways: true,
                    ice: None,
                    payloads: pcmu(),
                    srtp,
                }));
                relays.push(r);
            }
            "relay" => {
                let r = Relay::spawn(ports, None, None, Some(NO_MEDIA), None).expect("relay");
                for (side, a) in [(Side::X, x), (Side::S, s)] {
                    r.update(MediaOut::Peer(Peer {
                        side,
                        rtp: Some(a),
                        rtcp: Some(a),
                        both_ways: true,
                        ice: None,
                        payloads: Vec::new(),
                        srtp: None,
                    }));
                }
                relays.push(r);
            }
            "plain" => plain(ports, x, s, &counters).expect("plain forwarder"),
            other => panic!("unknown STOX_BENCH_ROLE {other}"),
        }
    }
    // The relays take their updates before the first packet (tokio::select! picks at random
    // among ready branches, so a packet could otherwise be routed before the peers are known).
    std::thread::sleep(Duration::from_millis(200));
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        if line.map_or(true, |l| l.trim() != "stats") {
            break;
        }
        let (mut xs, mut sx, mut dropped) = (0, 0, 0);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for r in &relays {
            let st = r.stats();
            xs += get(&st.x_to_s);
            sx += get(&st.s_to_x);
            dropped += get(&st.dropped);
        }
        xs += get(&counters[0]);
        sx += get(&counters[1]);
        dropped += get(&counters[2]);
        writeln!(out, "stats {xs} {sx} {dropped}").unwrap();
        out.flush().unwrap();
    }
    // stdin closed: done.
    drop(relays);
    rt.shutdown_background();
}

/// The baseline: each of the four ports forwards what arrives to a fixed address, from the
/// other side's port of the same kind.
fn plain(
    ports: CallPorts,
    x: SocketAddr,
    s: SocketAddr,
    counters: &Arc<Counters>,
) -> std::io::Result<()> {
    let tokio = |s: UdpSocket| tokio::net::UdpSocket::from_std(s).map(Arc::new);
    let (x_rtp, x_rtcp) = (tokio(ports.x.0)?, tokio(ports.x.1)?);
    let (s_rtp, s_rtcp) = (tokio(ports.s.0)?, tokio(ports.s.1)?);
    for (from, to, dst, dir) in [
        (x_rtp.clone(), s_rtp.clone(), s, 0),
        (s_rtp, x_rtp, x, 1),
        (x_rtcp.clone(), s_rtcp.clone(), s, 0),
        (s_rtcp, x_rtcp, x, 1),
    ] {
        let c = counters.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                // Errors are ICMP port unreachable from an earlier send: carry on.
                let Ok((n, _)) = from.recv_from(&mut buf).await else {
                    continue;
                };
                let i = if to.send_to(&buf[..n], dst).await.is_ok() {
                    dir
                } else {
                    2
                };
                c[i].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The load generator.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// No forwarder: the parties send to each other.
    Direct,
    Plain,
    Relay,
    /// The relay with the X parties on ICE + DTLS-SRTP (`Mode::IceX`), S on plain RTP.
    RelayIce,
    /// The same with S on SDES-SRTP: the relay decrypts and encrypts on both legs.
    RelayIceSdes,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Plain => "plain",
            Mode::Relay => "relay",
            Mode::RelayIce => "relay-ice",
            Mode::RelayIceSdes => "relay-ice-sdes",
        }
    }

    fn ice(self) -> bool {
        matches!(self, Mode::RelayIce | Mode::RelayIceSdes)
    }
}

/// A forwarder process for one step.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

/// What a forwarder process tells the generator before the step: each call's (X, S) ports,
/// and in the ICE modes the relay's DTLS fingerprint.
type Started = (Server, Vec<(u16, u16)>, Option<(String, String)>);

impl Server {
    /// Start `mode`'s forwarder for `k` calls between the parties `x` and `s`.
    fn start(mode: Mode, k: usize, x: SocketAddr, s: SocketAddr) -> Started {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        if mode.ice() {
            let (hash, value) = &identity().expect("a DTLS identity").fingerprint;
            cmd.env("STOX_BENCH_FP", format!("{hash} {value}"));
        }
        let mut child = cmd
            .env("STOX_BENCH_ROLE", mode.name())
            .env("STOX_BENCH_K", k.to_string())
            .env("STOX_BENCH_X", x.to_string())
            .env("STOX_BENCH_S", s.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the forwarder process");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ports = Vec::with_capacity(k);
        let mut fp = None;
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("the forwarder process ended before it was ready");
            }
            let l = line.trim();
            if l == "ready" {
                break;
            }
            if let Some(v) = l.strip_prefix("fp ") {
                fp = parse_fp(v);
                continue;
            }
            let (a, b) = l.split_once(' ').expect("a port pair");
            ports.push((a.parse().unwrap(), b.parse().unwrap()));
        }
        assert_eq!(ports.len(), k);
        let server = Server {
            child,
            stdin,
            stdout,
        };
        (server, ports, fp)
    }

    /// Forwarded X->S, S->X and dropped, by the forwarder's own count.
    fn stats(&mut self) -> [u64; 3] {
        writeln!(self.stdin, "stats").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        [0, 1, 2].map(|i| v.get(i).copied().unwrap_or(0))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A party socket outside the relay's range, with a large receive buffer.
fn party_socket() -> UdpSocket {
    loop {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        let any: SocketAddr = (IP.parse::<IpAddr>().unwrap(), 0).into();
        s.bind(&any.into()).unwrap();
        let s: UdpSocket = s.into();
        let port = s.local_addr().unwrap().port();
        if !(PORT_MIN..=PORT_MAX).contains(&port) {
            return s;
        }
    }
}

/// Payload after the RTP header: call, sequence, send time (ns since the run's start),
/// whether it is in the measured window.
fn fill(pkt: &mut [u8; PKT], call: u32, seq: u32, sent_ns: u64, measured: bool) {
    pkt[0] = 0x80; // V=2
    pkt[1] = 0; // PT 0, PCMU: not RTCP to the relay's demux
    pkt[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    pkt[4..8].copy_from_slice(&seq.wrapping_mul(160).to_be_bytes());
    pkt[8..12].copy_from_slice(&call.to_be_bytes()); // SSRC
    pkt[12..16].copy_from_slice(&call.to_be_bytes());
    pkt[16..20].copy_from_slice(&seq.to_be_bytes());
    pkt[20..28].copy_from_slice(&sent_ns.to_be_bytes());
    pkt[28] = measured as u8;
}

/// Send K calls' packets, paced, call i's through `emit(i, packet)` (false: not sent);
/// measured packets sent.
fn send_loop(
    k: usize,
    base: Instant,
    start: Instant,
    measure: (Instant, Instant),
    stop: &AtomicBool,
    mut emit: impl FnMut(usize, &[u8]) -> bool,
) -> u64 {
    let k = k as u64;
    let mut pkt = [0u8; PKT];
    let mut slot = 0u64;
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_nanos(PTIME_NS * slot / k);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
            continue;
        }
        let (call, seq) = ((slot % k) as u32, (slot / k) as u32);
        slot += 1;
        let t = Instant::now();
        let measured = t >= measure.0 && t < measure.1;
        fill(&mut pkt, call, seq, (t - base).as_nanos() as u64, measured);
        if emit(call as usize, &pkt) && measured {
            sent += 1;
        }
    }
    sent
}

#[derive(Default)]
struct Received {
    /// In time.
    count: u64,
    /// Later than the deadline (in `latency_ns` too).
    late: u64,
    /// From another port than the call's own, or not one of ours.
    misrouted: u64,
    latency_ns: Vec<u64>,
}

impl Received {
    /// A plain RTP packet of ours, `now_ns` after the run's start; `from_ok(call)`: it came
    /// from where call `call`'s packets must come. One later than `late_ns` is counted late
    /// (lost to a jitter buffer).
    fn take(&mut self, pkt: &[u8], from_ok: impl FnOnce(usize) -> bool, now_ns: u64, late_ns: u64) {
        if pkt.len() != PKT {
            self.misrouted += 1;
            return;
        }
        let call = u32::from_be_bytes(pkt[12..16].try_into().unwrap()) as usize;
        let sent = u64::from_be_bytes(pkt[20..28].try_into().unwrap());
        if !from_ok(call) {
            self.misrouted += 1;
            return;
        }
        if pkt[28] == 1 {
            let l = now_ns.saturating_sub(sent);
            self.latency_ns.push(l);
            if l <= late_ns {
                self.count += 1;
            } else {
                self.late += 1;
            }
        }
    }
}

/// Receive on `sock` until `done`, handing each datagram and its source to `got`.
fn recv_each(sock: &UdpSocket, done: &AtomicBool, mut got: impl FnMut(SocketAddr, &[u8])) {
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while !done.load(Ordering::Relaxed) {
        // A timeout (or an ICMP error) only brings the loop back to the `done` check.
        let Ok((n, src)) = sock.recv_from(&mut buf) else {
            continue;
        };
        got(src, &buf[..n]);
    }
}

/// Receive plain RTP until `done`: a packet of call i must come from `from[i]`.
fn recv_loop(
    sock: &UdpSocket,
    from: &[SocketAddr],
    base: Instant,
    late_ns: u64,
    done: &AtomicBool,
) -> Received {
    let mut r = Received::default();
    recv_each(sock, done, |src, pkt| {
        let now = (Instant::now() - base).as_nanos() as u64;
        r.take(pkt, |call| from.get(call) == Some(&src), now, late_ns);
    });
    r
}

/// The call whose forwarder port is `port` (the forwarder's ports differ per call).
struct CallOf(Vec<u32>);

impl CallOf {
    fn new(ports: impl Iterator<Item = u16>) -> CallOf {
        let mut v = vec![u32::MAX; 65536];
        for (call, p) in ports.enumerate() {
            v[usize::from(p)] = call as u32;
        }
        CallOf(v)
    }

    fn get(&self, src: SocketAddr) -> Option<usize> {
        let c = self.0[usize::from(src.port())];
        (c != u32::MAX).then_some(c as usize)
    }
}

/// Receive SDES-SRTP until `done` (the S parties of `relay-ice-sdes`): a datagram is told
/// to be call i's by the relay port it came from, decrypted with that call's context, and
/// must then carry call i's payload.
fn recv_srtp_loop(
    sock: &UdpSocket,
    call_of: &CallOf,
    mut rx: Vec<Srtp>,
    base: Instant,
    late_ns: u64,
    done: &AtomicBool,
) -> Received {
    let mut r = Received::default();
    recv_each(sock, done, |src, pkt| {
        let Some(call) = call_of.get(src) else {
            r.misrouted += 1;
            return;
        };
        // Latency up to the plain payload, as a phone would have it.
        match rx[call].unprotect(pkt) {
            Ok(plain) => {
                let now = (Instant::now() - base).as_nanos() as u64;
                r.take(&plain, |c| c == call, now, late_ns);
            }
            Err(_) => r.misrouted += 1,
        }
    });
    r
}

/// The X parties of the ICE modes: one str0m agent per call ([`IceLeg`], the relay's own
/// leg type, here on the client's side of the handshake), all on the one X socket and told
/// apart by the relay port a datagram comes from. Each leg has its own lock: the sending
/// thread encrypts through it while the receiving thread decrypts and answers STUN.
struct IceParties {
    legs: Vec<Mutex<IceLeg>>,
    call_of: CallOf,
}

impl IceParties {
    /// Call i's leg on `local` toward the relay's port `relay[i]`, whose certificate has
    /// `relay_fp`. The party plays the Jingle initiator: ICE controlling, DTLS server.
    fn new(local: SocketAddr, relay: &[SocketAddr], relay_fp: &(String, String)) -> IceParties {
        let now = Instant::now();
        let fp = identity().expect("a DTLS identity").fingerprint.clone();
        let legs = relay
            .iter()
            .enumerate()
            .map(|(call, &at)| {
                let (ufrag, pwd) = ice_creds('x', call);
                let me = LocalIce {
                    ufrag,
                    pwd,
                    fingerprint: fp.clone(),
                };
                let (ufrag, pwd) = ice_creds('r', call);
                let them = RemoteIce {
                    ufrag,
                    pwd,
                    fingerprint: relay_fp.clone(),
                    candidates: vec![at],
                    dtls_client: false,
                    controlling: true,
                };
                Mutex::new(IceLeg::new(now, local, &me, &them, &pcmu()).expect("an ICE leg"))
            })
            .collect();
        IceParties {
            legs,
            call_of: CallOf::new(relay.iter().map(SocketAddr::port)),
        }
    }

    /// Drive every leg's timers until all are connected or `limit` has passed (the
    /// receiving thread answers the relay meanwhile); how long it took and how many are up.
    fn connect(&self, sock: &UdpSocket, limit: Duration) -> (Duration, usize) {
        let t0 = Instant::now();
        let mut outs = Vec::new();
        loop {
            let mut up = 0;
            for leg in &self.legs {
                let mut l = leg.lock().unwrap();
                let now = Instant::now();
                if l.next_timeout().is_none_or(|t| t <= now) {
                    l.timeout(now, &mut outs);
                }
                up += usize::from(l.connected());
                drop(l);
                transmit(sock, &mut outs);
            }
            if up == self.legs.len() || t0.elapsed() >= limit {
                return (t0.elapsed(), up);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Call `call`'s packet into its leg. A leg that is not up drops it: it counts as sent,
    /// so it shows as loss.
    fn send(&self, sock: &UdpSocket, call: usize, pkt: &[u8], outs: &mut Vec<Out>) -> bool {
        let mut l = self.legs[call].lock().unwrap();
        l.send_rtp(Instant::now(), pkt, outs);
        drop(l);
        transmit(sock, outs)
    }

    /// Receive until `done`: STUN, DTLS and SRTCP go into the leg of the relay port they
    /// came from, and the leg's decrypted RTP must be that call's.
    fn recv_loop(
        &self,
        sock: &UdpSocket,
        base: Instant,
        late_ns: u64,
        done: &AtomicBool,
    ) -> Received {
        let mut r = Received::default();
        let mut outs = Vec::new();
        recv_each(sock, done, |src, data| {
            let Some(call) = self.call_of.get(src) else {
                r.misrouted += 1;
                return;
            };
            let mut l = self.legs[call].lock().unwrap();
            l.receive(Instant::now(), src, data, &mut outs);
            drop(l);
            // Latency up to the decrypted payload, as the client would have it.
            let now = (Instant::now() - base).as_nanos() as u64;
            for o in &outs {
                if let Out::Rtp(p) = o {
                    r.take(p, |c| c == call, now, late_ns);
                }
            }
            transmit(sock, &mut outs);
        });
        r
    }
}

/// Send the legs' datagrams and drop the rest of `outs`; false if a send failed.
fn transmit(sock: &UdpSocket, outs: &mut Vec<Out>) -> bool {
    let mut ok = true;
    for o in outs.drain(..) {
        if let Out::Transmit(dst, bytes) = o {
            ok &= sock.send_to(&bytes, dst).is_ok();
        }
    }
    ok
}

struct StepResult {
    mode: Mode,
    k: usize,
    secs: f64,
    sent: u64,
    /// In time.
    received: u64,
    late: u64,
    misrouted: u64,
    /// Sorted, both directions.
    latency_ns: Vec<u64>,
    /// Forwarder CPU, % of one core, and RSS.
    cpu: Option<f64>,
    rss_kib: Option<u64>,
    /// The forwarder's counters: forwarded, dropped.
    forwarded: Option<(u64, u64)>,
    gen_cpu: f64,
    /// The whole machine's busy time, % of all its cores.
    host_busy: f64,
    /// ICE modes: how long ICE + DTLS took to come up for the step's calls, and for how many.
    connect: Option<(Duration, usize)>,
}

impl StepResult {
    /// The generator sent under 99 % of the nominal rate: the step measures the generator.
    fn generator_bound(&self) -> bool {
        (self.sent as f64 / self.secs) < 0.99 * (self.k * 100) as f64
    }

    /// Under 1 % loss (late included), nothing misrouted, the full rate offered.
    fn held(&self) -> bool {
        self.loss_pct() < 1.0 && self.misrouted == 0 && !self.generator_bound()
    }

    fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * self.sent.saturating_sub(self.received) as f64 / self.sent as f64
    }

    fn ms(&self, p: f64) -> f64 {
        let v = &self.latency_ns;
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1e6
    }
}

fn step(mode: Mode, k: usize, secs: f64, late: Duration) -> StepResult {
    let late_ns = late.as_nanos() as u64;
    let (xs, ss) = (party_socket(), party_socket());
    let (xa, sa) = (xs.local_addr().unwrap(), ss.local_addr().unwrap());
    let ip: IpAddr = IP.parse().unwrap();
    let (mut server, ports, relay_fp) = match mode {
        Mode::Direct => (None, vec![(sa.port(), xa.port()); k], None),
        _ => {
            let (srv, ports, fp) = Server::start(mode, k, xa, sa);
            (Some(srv), ports, fp)
        }
    };
    // Where each party sends for call i; a packet arriving at a party must come from the
    // address that party sends to (the forwarder's port on its side, or the other party).
    let to_x: Vec<SocketAddr> = ports.iter().map(|p| (ip, p.0).into()).collect();
    let to_s: Vec<SocketAddr> = ports.iter().map(|p| (ip, p.1).into()).collect();
    let ice = mode.ice().then(|| {
        let fp = relay_fp.as_ref().expect("the relay's fingerprint");
        IceParties::new(xa, &to_x, fp)
    });
    // relay-ice-sdes: each S party encrypts with its key and decrypts with the relay's.
    let sdes = mode == Mode::RelayIceSdes;
    let contexts = |who| -> Vec<Srtp> {
        (0..k)
            .map(|c| Srtp::new(&sdes_key(who, c), Suite::Sha1_80, 0))
            .collect()
    };
    let (s_tx, s_rx) = if sdes {
        (contexts('s'), contexts('r'))
    } else {
        (Vec::new(), Vec::new())
    };
    let s_call_of = CallOf::new(ports.iter().map(|p| p.1));
    let pid = server.as_ref().map(|s| s.child.id());
    let (xr, sr) = (xs.try_clone().unwrap(), ss.try_clone().unwrap());
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let base = Instant::now();
    let (sent, recv, cpu, gen_cpu, host_busy, connect) = std::thread::scope(|sc| {
        let at_s = sc.spawn(|| {
            if sdes {
                recv_srtp_loop(&sr, &s_call_of, s_rx, base, late_ns, &done)
            } else {
                recv_loop(&sr, &to_s, base, late_ns, &done)
            }
        });
        let at_x = sc.spawn(|| match &ice {
            Some(p) => p.recv_loop(&xr, base, late_ns, &done),
            None => recv_loop(&xr, &to_x, base, late_ns, &done),
        });
        // The ICE modes' media starts once every call's ICE + DTLS is up.
        let connect = ice.as_ref().map(|p| p.connect(&xs, CONNECT_LIMIT));
        let start = Instant::now() + Duration::from_millis(10);
        let measure = (
            start + WARMUP,
            start + WARMUP + Duration::from_secs_f64(secs),
        );
        // `start` and `measure` are this thread's; the rest is borrowed from the step.
        let (xs, ss, stop, ice, to_x, to_s) = (&xs, &ss, &stop, &ice, &to_x, &to_s);
        let x_send = sc.spawn(move || match ice {
            Some(p) => {
                let mut outs = Vec::new();
                send_loop(k, base, start, measure, stop, |call, pkt| {
                    p.send(xs, call, pkt, &mut outs)
                })
            }
            None => send_loop(k, base, start, measure, stop, |call, pkt| {
                xs.send_to(pkt, to_x[call]).is_ok()
            }),
        });
        let s_send = sc.spawn(move || {
            let half = start + Duration::from_nanos(PTIME_NS / 2);
            if sdes {
                let mut tx = s_tx;
                send_loop(k, base, half, measure, stop, |call, pkt| {
                    tx[call]
                        .protect(pkt)
                        .is_ok_and(|p| ss.send_to(&p, to_s[call]).is_ok())
                })
            } else {
                send_loop(k, base, half, measure, stop, |call, pkt| {
                    ss.send_to(pkt, to_s[call]).is_ok()
                })
            }
        });
        std::thread::sleep(measure.0.saturating_duration_since(Instant::now()));
        let (c0, g0, h0) = (
            pid.map(|p| cpu_secs(Some(p))),
            cpu_secs(None),
            host_jiffies(),
        );
        std::thread::sleep(measure.1.saturating_duration_since(Instant::now()));
        let (c1, g1, h1) = (
            pid.map(|p| cpu_secs(Some(p))),
            cpu_secs(None),
            host_jiffies(),
        );
        let host = 100.0 * (h1.0 - h0.0) as f64 / (h1.1 - h0.1).max(1) as f64;
        stop.store(true, Ordering::Relaxed);
        let sent = x_send.join().unwrap() + s_send.join().unwrap();
        std::thread::sleep(GRACE);
        done.store(true, Ordering::Relaxed);
        let (a, b) = (at_s.join().unwrap(), at_x.join().unwrap());
        let cpu = c0.zip(c1).map(|(a, b)| 100.0 * (b - a) / secs);
        (sent, [a, b], cpu, 100.0 * (g1 - g0) / secs, host, connect)
    });
    let forwarded = server.as_mut().map(|s| {
        let [xs, sx, dropped] = s.stats();
        (xs + sx, dropped)
    });
    let rss_kib = pid.map(rss_kib);
    drop(server);
    let [a, b] = recv;
    let mut latency_ns = a.latency_ns;
    latency_ns.extend(b.latency_ns);
    latency_ns.sort_unstable();
    StepResult {
        mode,
        k,
        secs,
        sent,
        received: a.count + b.count,
        late: a.late + b.late,
        misrouted: a.misrouted + b.misrouted,
        latency_ns,
        cpu,
        rss_kib,
        forwarded,
        gen_cpu,
        host_busy,
        connect,
    }
}

fn header() {
    println!(
        "{:<14} {:>6} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>8} {:>7} {:>5} {:>6}",
        "mode",
        "calls",
        "pkt/s",
        "sent/s",
        "loss %",
        "p50 ms",
        "p99 ms",
        "max ms",
        "fwd CPU",
        "µs/pkt",
        "fwd RSS",
        "gen CPU",
        "host",
        "drops"
    );
}

fn print(r: &StepResult) {
    let opt_pct = |v: Option<f64>| v.map_or("-".into(), |c| format!("{c:.0} %"));
    println!(
        "{:<14} {:>6} {:>8} {:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7} {:>6} {:>8} {:>7} {:>5} {:>6}",
        r.mode.name(),
        r.k,
        r.k * 100,
        r.sent as f64 / r.secs,
        r.loss_pct(),
        r.ms(0.5),
        r.ms(0.99),
        r.ms(1.0),
        opt_pct(r.cpu),
        r.cpu.map_or("-".into(), |c| format!(
            "{:.1}",
            c / 100.0 / (r.sent as f64 / r.secs) * 1e6
        )),
        r.rss_kib
            .map_or("-".into(), |k| format!("{} MiB", k / 1024)),
        format!("{:.0} %", r.gen_cpu),
        format!("{:.0}%", r.host_busy),
        r.forwarded.map_or("-".into(), |(_, d)| d.to_string()),
    );
    if let Some((t, up)) = r.connect {
        println!(
            "  ICE + DTLS up for {up} of {} calls in {:.2} s",
            r.k,
            t.as_secs_f64()
        );
    }
    if r.late > 0 {
        println!(
            "  {} packets later than the deadline (counted lost)",
            r.late
        );
    }
    if r.generator_bound() {
        println!("  !! the generator sent under 99 % of the rate: not a measure of the forwarder");
    }
    if r.misrouted > 0 {
        println!("  !! {} packets from the wrong port", r.misrouted);
    }
}

fn main() {
    if let Ok(role) = std::env::var("STOX_BENCH_ROLE") {
        return server(&role);
    }
    // `cargo bench` passes --bench; under `cargo test --all-targets` it is a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let late = Duration::from_millis(env("STOX_BENCH_LATE_MS", 100));
    let (ks, secs, direct) = if full {
        let ks = env_list("STOX_BENCH_CALLS", DEFAULT_CALLS);
        (
            ks,
            env("STOX_BENCH_STEP_SECS", 5) as f64,
            env("STOX_BENCH_DIRECT", 1) != 0,
        )
    } else {
        (vec!["10".to_string()], 1.0, false)
    };
    let ks: Vec<usize> = ks
        .iter()
        .filter_map(|k| k.parse().ok())
        .map(|k: usize| k.clamp(1, MAX_CALLS))
        .collect();
    let modes: Vec<Mode> = env_list("STOX_BENCH_MODES", "plain,relay,relay-ice")
        .iter()
        .filter_map(|m| match m.as_str() {
            "plain" => Some(Mode::Plain),
            "relay" => Some(Mode::Relay),
            "relay-ice" => Some(Mode::RelayIce),
            "relay-ice-sdes" => Some(Mode::RelayIceSdes),
            _ => None,
        })
        .collect();
    println!(
        "relay bench: steps of {secs} s, 50 packets/s of {PKT} bytes each way per call, \
         a packet later than {} ms is lost; load average {}",
        late.as_millis(),
        loadavg()
    );
    header();
    if let (true, Some(&k)) = (direct, ks.first()) {
        print(&step(Mode::Direct, k, secs, late));
    }
    let mut results: Vec<StepResult> = Vec::new();
    let mut stopped: Vec<Mode> = Vec::new();
    for &k in &ks {
        for &mode in &modes {
            if stopped.contains(&mode) {
                continue;
            }
            let k = if !full && mode.ice() {
                k.min(SMOKE_ICE_CALLS)
            } else {
                k
            };
            let r = step(mode, k, secs, late);
            print(&r);
            if r.loss_pct() >= 5.0 || r.generator_bound() {
                stopped.push(mode);
            }
            results.push(r);
        }
        if stopped.len() == modes.len() {
            break;
        }
    }
    println!("load average at the end {}", loadavg());
    for &mode in &modes {
        let best = results
            .iter()
            .filter(|r| r.mode == mode && r.held())
            .max_by_key(|r| r.k);
        match best {
            Some(r) => println!(
                "{}: highest step under 1 % loss: {} calls ({} packets/s), p50 {:.2} ms, \
                 p99 {:.2} ms",
                mode.name(),
                r.k,
                r.k * 100,
                r.ms(0.5),
                r.ms(0.99)
            ),
            None => println!("{}: no step under 1 % loss", mode.name()),
        }
    }
    if !full {
        for r in &results {
            assert_eq!(r.misrouted, 0, "{}: misrouted packets", r.mode.name());
            assert!(r.sent > 0, "{}: nothing sent", r.mode.name());
            if let Some((_, up)) = r.connect {
                assert_eq!(up, r.k, "{}: ICE + DTLS did not come up", r.mode.name());
            }
            // Late packets count here: a debug build on busy cores may be slow, not wrong.
            assert!(
                (r.received + r.late) * 100 >= r.sent * 99,
                "{}: {} of {} packets lost",
                r.mode.name(),
                r.sent - r.received - r.late,
                r.sent
            );
        }
    }
}
