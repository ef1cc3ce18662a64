//! Single-message throughput, stox against the Kamailio xmpp module, side by side (RFC 7572
//! page mode). Not a test: it prints a table to compare.
//!
//!     cargo bench --bench im                         # both gateways, under 10 minutes
//!     STOX_BENCH_GATEWAYS=stox cargo bench --bench im
//!     STOX_BENCH_STEP_SECS=5 cargo bench --bench im   # longer steps (default 2), steadier figures
//!
//! Each gateway runs as its own process between the same two harness tools of this process:
//! a SIP generator/responder (`im/sip.rs`) and a counting/injecting XEP-0114 server
//! (`im/xmpp.rs`). Every message carries `run=R seq=S ts=T`; the receiving side counts it
//! once and measures its latency. A rate "holds" when, over one step, every message arrived
//! exactly once, every MESSAGE got a 2xx without a retransmission, no error stanza came back,
//! the last message arrived within 500 ms of the last one sent and the p99 latency stayed
//! under 50 ms (no backlog building up). The sustained
//! rate is found by doubling from 1,000/s until a step fails (each failure retried once), then
//! bisecting three times. The harness ceiling is measured the same way with the generator
//! wired straight into the receiver.

#[path = "im/gateways.rs"]
mod gateways;
#[path = "common/heap.rs"]
mod heap;
#[path = "im/procs.rs"]
mod procs;
#[path = "im/report.rs"]
mod report;
#[path = "im/sink.rs"]
mod sink;
#[path = "im/sip.rs"]
mod sip;
#[path = "im/xmpp.rs"]
mod xmpp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateways::Gateway;
use report::{Direction, Outcome, Step};
use sink::Sink;
use sip::Proto;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Harness state shared by every step: the two receivers and a run counter.
pub struct Harness {
    pub epoch: Instant,
    pub xsink: Arc<Sink>,
    pub ssink: Arc<Sink>,
    pub xmpp: xmpp::Server,
    pub responder: sip::Responder,
    run: u32,
    pub step_secs: u64,
}

impl Harness {
    fn new(step_secs: u64) -> Harness {
        let epoch = Instant::now();
        let xsink = Arc::new(Sink::new(epoch));
        let ssink = Arc::new(Sink::new(epoch));
        Harness {
            epoch,
            xmpp: xmpp::Server::start(xsink.clone()),
            responder: sip::Responder::start(ssink.clone()),
            xsink,
            ssink,
            run: 0,
            step_secs,
        }
    }

    fn next_run(&mut self, count: u64) -> u32 {
        self.run += 1;
        self.xsink.reset(self.run, count);
        self.ssink.reset(self.run, count);
        self.run
    }

    /// Wait until `sink` has all `count` messages or `grace` has passed.
    fn drain(sink: &Sink, count: u64, grace: Duration) {
        let deadline = Instant::now() + grace;
        while sink.tally().delivered < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One SIP -> XMPP step through `gw` (or straight into the harness responder).
    fn sip_step(&mut self, gw: Option<&Gateway>, proto: Proto, rate: u64, secs: u64) -> Step {
        let count = rate * secs;
        let run = self.next_run(count);
        let (target, shape, sink, pid) = match gw {
            Some(g) => (g.sip, g.shape.clone(), self.xsink.clone(), Some(g.pid)),
            None => (
                self.responder.addr,
                ceiling_shape(),
                self.ssink.clone(),
                None,
            ),
        };
        let peak = pid.map(procs::Peak::start);
        let cpu0 = pid.map(|p| procs::cpu_secs(&procs::family(p)));
        let start_ns = sink.now_ns();
        let gen = sip::generate(
            proto,
            target,
            &shape,
            rate,
            count,
            run,
            &sink,
            Duration::from_secs(8),
        );
        Self::drain(&sink, count, Duration::from_secs(4));
        let tally = sink.tally();
        let send_end_ns = start_ns + (gen.send_secs * 1e9) as u64;
        Outcome::new(rate, count, tally, start_ns, send_end_ns)
            .with_sip(gen)
            .finish(peak, cpu0, pid)
    }

    /// One XMPP -> SIP step through the connected gateway.
    fn xmpp_step(&mut self, gw: &Gateway, rate: u64, count: u64) -> Step {
        let run = self.next_run(count);
        let peak = procs::Peak::start(gw.pid);
        let cpu0 = procs::cpu_secs(&procs::family(gw.pid));
        let start_ns = self.ssink.now_ns();
        let secs = self.xmpp.inject(
            &gw.to_jid,
            gateways::XMPP_SENDER,
            rate,
            count,
            run,
            &self.ssink,
        );
        Self::drain(
            &self.ssink,
            count,
            Duration::from_secs(if rate == 0 { 60 } else { 8 }),
        );
        let mut tally = self.ssink.tally();
        tally.errors += self.xsink.tally().errors;
        let send_end_ns = start_ns + (secs * 1e9) as u64;
        Outcome::new(rate, count, tally, start_ns, send_end_ns).finish(
            Some(peak),
            Some(cpu0),
            Some(gw.pid),
        )
    }
}

fn ceiling_shape() -> sip::Shape {
    sip::Shape {
        ruri: "sip:bob@example.net".into(),
        from_domain: "example.net".into(),
        from_users: 64,
    }
}

/// Highest rate that holds: doubling from `start` up to `cap`, then three bisections.
fn search(
    label: &str,
    start: u64,
    cap: u64,
    mut step: impl FnMut(u64) -> Step,
) -> (u64, Vec<Step>) {
    let mut steps = Vec::new();
    let mut run = |rate: u64, steps: &mut Vec<Step>| {
        let s = step(rate);
        eprintln!("  {label}: {}", s.line());
        let ok = s.held;
        steps.push(s);
        std::thread::sleep(Duration::from_millis(700));
        ok
    };
    let (mut lo, mut hi) = (0, None);
    let mut rate = start;
    while rate <= cap {
        if run(rate, &mut steps) || run(rate, &mut steps) {
            lo = rate;
            rate *= 2;
        } else {
            hi = Some(rate);
            break;
        }
    }
    if let Some(mut hi) = hi {
        for _ in 0..3 {
            let mid = (lo + hi) / 2 / 100 * 100;
            if mid <= lo {
                break;
            }
            if run(mid, &mut steps) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    (lo, steps)
}

/// Sustained rate, latency at 25/50/90 % of it, and (XMPP -> SIP) the 20,000 burst.
fn measure(h: &mut Harness, gw: &Gateway, dir: Direction, cap: u64) -> report::Column {
    let secs = h.step_secs;
    let label = format!("{} {}", gw.name, dir.name());
    let mut warm = match dir {
        Direction::SipToXmpp => h.sip_step(Some(gw), Proto::Udp, 100, 1),
        Direction::XmppToSip => h.xmpp_step(gw, 100, 100),
    };
    if !warm.held {
        // The first messages also open the gateway's paths; give it one more chance.
        std::thread::sleep(Duration::from_secs(1));
        warm = match dir {
            Direction::SipToXmpp => h.sip_step(Some(gw), Proto::Udp, 100, 1),
            Direction::XmppToSip => h.xmpp_step(gw, 100, 100),
        };
    }
    assert!(
        warm.held,
        "{label}: warm-up of 100 messages failed: {}",
        warm.line()
    );
    let (best, steps) = search(&label, 1000, cap, |rate| match dir {
        Direction::SipToXmpp => h.sip_step(Some(gw), Proto::Udp, rate, secs),
        Direction::XmppToSip => h.xmpp_step(gw, rate, rate * secs),
    });
    let mut col = report::Column::new(best, steps);
    for pct in [25, 50, 90] {
        let rate = (best * pct / 100).max(100);
        let s = match dir {
            Direction::SipToXmpp => h.sip_step(Some(gw), Proto::Udp, rate, secs * 2),
            Direction::XmppToSip => h.xmpp_step(gw, rate, rate * secs * 2),
        };
        eprintln!("  {label} at {pct}%: {}", s.line());
        col.at.push((pct, s));
        std::thread::sleep(Duration::from_millis(700));
    }
    match dir {
        Direction::SipToXmpp => {
            let (tcp, _) = search(&format!("{label} TCP"), 1000, cap, |rate| {
                h.sip_step(Some(gw), Proto::Tcp, rate, secs)
            });
            col.tcp = Some(tcp);
        }
        Direction::XmppToSip => {
            let s = h.xmpp_step(gw, 0, 20_000);
            eprintln!("  {label} burst: {}", s.line());
            col.burst = Some(s);
        }
    }
    col
}

/// The harness alone: generator straight into receiver, per tool.
fn ceilings(h: &mut Harness, cap: u64) -> report::Ceilings {
    let secs = h.step_secs;
    let (sip_udp, _) = search("ceiling SIP gen->responder UDP", 16_000, cap, |rate| {
        h.sip_step(None, Proto::Udp, rate, secs)
    });
    // The XMPP tools over loopback: a stand-in component writes stanzas the server counts
    // (what a gateway's SIP -> XMPP output costs the harness) and the server injects into
    // the stand-in (the XMPP -> SIP input).
    let client_sink = Arc::new(Sink::new(h.epoch));
    let mut client = xmpp::loop_client(h.xmpp.addr, client_sink.clone());
    let (x_in, _) = search("ceiling XMPP stand-in->server", 16_000, cap, |rate| {
        let count = rate * secs;
        h.run += 1;
        h.xsink.reset(h.run, count);
        let start = h.xsink.now_ns();
        let sent = xmpp::inject_on(
            &mut client,
            "juliet@example.com",
            "u@sip.example.com",
            rate,
            count,
            h.run,
            &h.xsink,
        );
        Harness::drain(&h.xsink, count, Duration::from_secs(4));
        Outcome::new(
            rate,
            count,
            h.xsink.tally(),
            start,
            start + (sent * 1e9) as u64,
        )
        .finish(None, None, None)
    });
    let (x_out, _) = search("ceiling XMPP server->stand-in", 16_000, cap, |rate| {
        let count = rate * secs;
        h.run += 1;
        client_sink.reset(h.run, count);
        let start = client_sink.now_ns();
        let sent = h.xmpp.inject(
            "bob@sip.example.com",
            gateways::XMPP_SENDER,
            rate,
            count,
            h.run,
            &client_sink,
        );
        Harness::drain(&client_sink, count, Duration::from_secs(4));
        Outcome::new(
            rate,
            count,
            client_sink.tally(),
            start,
            start + (sent * 1e9) as u64,
        )
        .finish(None, None, None)
    });
    report::Ceilings {
        sip_udp,
        x_in,
        x_out,
    }
}

/// Cross-check one point with SIPp: the same MESSAGE load from SIPp into stox, counted at
/// the XMPP side, so the home-made generator is not trusted blindly.
fn sipp_check(h: &mut Harness, gw: &Gateway, rate: u64) -> Option<String> {
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("integration/sipp/uac_message_burst.xml");
    let count = rate * h.step_secs;
    let run = h.next_run(count);
    let start = Instant::now();
    let out = std::process::Command::new("sipp")
        .arg("-sf")
        .arg(&scenario)
        .arg(gw.sip.to_string())
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-m",
            &count.to_string(),
            "-r",
            &rate.to_string(),
        ])
        .args([
            "-key",
            "ruri_user",
            "juliet",
            "-key",
            "ruri_host",
            "example.com",
        ])
        .args([
            "-key",
            "from_user",
            "romeo",
            "-key",
            "body",
            &format!("stoxbench run={run} seq="),
        ])
        .args(["-nostdin", "-timeout", "60", "-trace_stat", "-stf"])
        .arg(std::env::temp_dir().join(format!("stox-bench-sipp-{}.csv", std::process::id())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let Ok(status) = out else {
        eprintln!("  SIPp not found: run ../shared/peers/install.sh sipp for the cross-check");
        return None;
    };
    let secs = start.elapsed().as_secs_f64();
    Harness::drain(&h.xsink, count, Duration::from_secs(4));
    let t = h.xsink.tally();
    let line = format!(
        "SIPp {count} MESSAGEs at {rate}/s into stox: SIPp {} ({:.1} s), {} delivered to XMPP, {} duplicates",
        if status.success() { "saw every call succeed" } else { "reported failed calls" },
        secs,
        t.delivered,
        t.duplicates
    );
    eprintln!("  {line}");
    Some(line)
}

fn run_gateway(h: &mut Harness, gw: Gateway, cap: u64) -> report::Gw {
    assert!(
        h.xmpp.wait_link(Duration::from_secs(15)),
        "{} did not connect to the harness XMPP server",
        gw.name
    );
    std::thread::sleep(Duration::from_millis(500));
    let idle = procs::rss_kib(&procs::family(gw.pid));
    let s2x = measure(h, &gw, Direction::SipToXmpp, cap);
    let x2s = measure(h, &gw, Direction::XmppToSip, cap);
    let sipp = if gw.name == "stox" {
        sipp_check(h, &gw, (s2x.best / 2).clamp(1000, 10_000))
    } else {
        None
    };
    report::Gw {
        name: gw.name,
        idle_rss: idle,
        s2x,
        x2s,
        sipp,
    }
}

/// `STOX_BENCH_PROFILE=s2x:RATE:SECS` (or `x2s:`): stox alone, one step at RATE for SECS,
/// its pid printed first so a profiler can attach, e.g.
/// `perf record -g --call-graph dwarf -p PID -- sleep 10`.
fn profile(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [dir, rate, secs] = parts[..] else {
        panic!("STOX_BENCH_PROFILE=s2x|x2s:RATE:SECS");
    };
    let (rate, secs): (u64, u64) = (rate.parse().unwrap(), secs.parse().unwrap());
    let mut h = Harness::new(secs);
    let gw = gateways::stox(env!("CARGO_BIN_EXE_stox"), h.xmpp.addr, h.responder.addr);
    assert!(
        h.xmpp.wait_link(Duration::from_secs(15)),
        "stox did not connect"
    );
    println!("stox pid {}", gw.pid);
    std::thread::sleep(Duration::from_secs(2));
    let s = match dir {
        "s2x" => h.sip_step(Some(&gw), Proto::Udp, rate, secs),
        "x2s" => h.xmpp_step(&gw, rate, rate * secs),
        other => panic!("unknown direction {other:?}: s2x or x2s"),
    };
    println!("{dir}: {}", s.line());
}

/// `STOX_BENCH_SOAK=S2X_RATE:X2S_RATE:SECS`: stox alone for SECS, alternating 10 s steps of
/// SIP -> XMPP and XMPP -> SIP at the given rates; RSS is printed after each pair and its
/// growth from the end of the first minute to the end is the figure to read.
fn soak(spec: &str) {
    let parts: Vec<u64> = spec.split(':').map(|p| p.parse().unwrap()).collect();
    let [s2x, x2s, secs] = parts[..] else {
        panic!("STOX_BENCH_SOAK=S2X_RATE:X2S_RATE:SECS");
    };
    let mut h = Harness::new(10);
    let gw = gateways::stox(env!("CARGO_BIN_EXE_stox"), h.xmpp.addr, h.responder.addr);
    assert!(
        h.xmpp.wait_link(Duration::from_secs(15)),
        "stox did not connect"
    );
    let start = Instant::now();
    let (mut after_first_minute, mut failed) = (None, 0);
    let mut last = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        let a = h.sip_step(Some(&gw), Proto::Udp, s2x, 10);
        let b = h.xmpp_step(&gw, x2s, x2s * 10);
        failed += u32::from(!a.held) + u32::from(!b.held);
        last = procs::rss_kib(&[gw.pid]);
        let t = start.elapsed().as_secs();
        if t >= 60 && after_first_minute.is_none() {
            after_first_minute = Some(last);
        }
        let live = heap::in_use(gw.pid, &gw.stderr_file())
            .map_or("n/a (no gdb)".into(), |b| format!("{} KiB", b / 1024));
        println!(
            "{t:>4} s  RSS {last} KiB  live heap {live}  S->X p99 {:.2} ms {}  X->S p99 {:.2} ms {}",
            a.p99,
            if a.held { "held" } else { "FAILED" },
            b.p99,
            if b.held { "held" } else { "FAILED" }
        );
    }
    let base = after_first_minute.unwrap_or(last).max(1);
    println!(
        "RSS after the first minute {base} KiB, at the end {last} KiB: {:+.1} %; {failed} steps failed",
        (last as f64 - base as f64) * 100.0 / base as f64
    );
}

/// Under `cargo test --all-targets` (no `--bench`): the harness against stox at a low rate,
/// every way the benchmark drives it, each step asserted to hold, in a few seconds. Kamailio
/// is left to the real run.
fn smoke() {
    let mut h = Harness::new(1);
    let gw = gateways::stox(env!("CARGO_BIN_EXE_stox"), h.xmpp.addr, h.responder.addr);
    assert!(
        h.xmpp.wait_link(Duration::from_secs(15)),
        "stox did not connect"
    );
    let steps = [
        ("ceiling", h.sip_step(None, Proto::Udp, 2000, 1)),
        ("SIP->XMPP UDP", h.sip_step(Some(&gw), Proto::Udp, 500, 1)),
        ("SIP->XMPP TCP", h.sip_step(Some(&gw), Proto::Tcp, 500, 1)),
        ("XMPP->SIP", h.xmpp_step(&gw, 500, 500)),
    ];
    for (name, s) in &steps {
        eprintln!("smoke {name}: {}", s.line());
        assert!(s.held, "{name} did not hold at a low rate: {}", s.line());
        assert!(!s.p50.is_nan(), "{name}: no latency measured");
    }
    let burst = h.xmpp_step(&gw, 0, 2000);
    assert_eq!(burst.tally.delivered, 2000, "burst: {}", burst.line());
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a smoke test instead.
    if !std::env::args().any(|a| a == "--bench") {
        return smoke();
    }
    if let Ok(spec) = std::env::var("STOX_BENCH_PROFILE") {
        return profile(&spec);
    }
    if let Ok(spec) = std::env::var("STOX_BENCH_SOAK") {
        return soak(&spec);
    }
    let step_secs = env_u64("STOX_BENCH_STEP_SECS", 2);
    let cap = env_u64("STOX_BENCH_MAX_RATE", 256_000);
    let which = std::env::var("STOX_BENCH_GATEWAYS").unwrap_or_else(|_| "stox,kamailio".into());
    let children = env_u64("STOX_BENCH_KAMAILIO_CHILDREN", 4) as u32;
    let started = Instant::now();
    let mut results = Vec::new();
    let mut h = Harness::new(step_secs);
    let ceil = ceilings(&mut h, cap);
    for name in which.split(',').map(str::trim) {
        // A fresh harness per gateway: the XMPP server serves one component link.
        let mut h2 = Harness::new(step_secs);
        h2.run = h.run + 1000 * (results.len() as u32 + 1);
        let (x, r): (SocketAddr, SocketAddr) = (h2.xmpp.addr, h2.responder.addr);
        let gw = match name {
            "stox" => gateways::stox(env!("CARGO_BIN_EXE_stox"), x, r),
            "kamailio" => gateways::kamailio(x, r, children),
            other => panic!("unknown gateway {other:?} in STOX_BENCH_GATEWAYS (stox, kamailio)"),
        };
        eprintln!("== {name}");
        results.push(run_gateway(&mut h2, gw, cap));
    }
    report::print(&ceil, &results, step_secs, started.elapsed());
}
