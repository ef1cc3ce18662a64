//! Call set-up benchmark (issue: call setups per second, signalling only, through stox, with
//! SIPp as the SIP side; memory per active call). Not a test: it prints figures to compare
//! between builds.
//!
//!     cargo bench --bench calls                                  # about 2-3 minutes after the build
//!     STOX_BENCH_RATES=100,400,1600 STOX_BENCH_STEP_SECS=3 cargo bench --bench calls
//!     STOX_BENCH_ACTIVE=100,1000 STOX_BENCH_SETTLE_SECS=0 cargo bench --bench calls
//!
//! SIP -> XMPP. SIPp (benches/calls/uac.xml) places calls to `sip:uN@example.com` through the
//! release `stox` binary, run as its own process; the XMPP side is the fake XEP-0114 server of
//! the test support code with a responder (benches/calls/responder.rs) that proceeds to every
//! `<propose>` and accepts every `session-initiate` with PCMU over Raw-UDP, so stox answers
//! 200. SIPp ACKs, holds the call (`-d`), sends BYE, which becomes `session-terminate`.
//!
//! 1. Set-up rate: steps of offered calls/s (hold 0), doubling; each step's calls set up per
//!    second (first 200 to last), INVITE -> 200 latency from SIPp (whole ms), failures,
//!    retransmissions, the gateway's CPU per call. A step holds when every call succeeded
//!    without a retransmission at 95 % of the offered rate or more, with no XMPP error and
//!    SIPp's INVITE -> 200 p99 at 50 ms or less; after the first failing step the search
//!    bisects twice between the highest step held and the lowest failed. The baseline runs the same steps with SIPp's own callee
//!    (benches/calls/uas.xml) in stox's place: what the tools sustain on this machine.
//! 2. Memory per active call: for each K, a fresh stox; K calls set up at 200/s and held;
//!    RSS and glibc's live heap (gdb `malloc_stats()`) idle, with K calls up, after 35 s
//!    (ezk's INVITE server transactions gone: RFC 6026 Timer L, 32 s), after hang-up, and
//!    35 s after hang-up (the last two read at the largest K only).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

mod common;
use common::{in_use, kib, rss_kib, Gw};

#[path = "calls/responder.rs"]
mod responder;
#[path = "calls/sipp.rs"]
mod sipp;

use responder::Stats;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::xmpp::FakeServer;

const SECRET: &str = "bench-secret";
/// Calls/s at which the memory part sets its calls up.
const RAMP: u64 = 200;
/// A step holds only if SIPp's INVITE -> 200 p99 stays at or under this (a standing queue
/// shows there before calls fail).
const MAX_P99_MS: u32 = 50;

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
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

fn pct<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A stox process with its fake XMPP server and the responder on `rt`.
struct Stox {
    gw: Gw,
    stats: Arc<Stats>,
}

fn start_stox(rt: &tokio::runtime::Runtime) -> Stox {
    let mut xmpp = rt.block_on(FakeServer::start(SECRET));
    let gw = common::start_stox(env!("CARGO_BIN_EXE_stox"), xmpp.addr, SECRET, "");
    rt.block_on(xmpp.wait_online(Duration::from_secs(20)));
    let stats = Arc::new(Stats::default());
    rt.spawn(responder::run(xmpp, stats.clone()));
    Stox { gw, stats }
}

struct Step {
    rate: u64,
    calls: u64,
    run: sipp::Run,
    cpu_per_call_ms: f64,
    responder_cpu_per_call_ms: f64,
    rss_kib: u64,
    xmpp_errors: u64,
    /// `<propose>` in -> `session-accept` result in, µs, sorted (stox only).
    xmpp_us: Vec<u32>,
    held: bool,
}

/// The rate steps against `target`; `gw_pid` is the process answering (stox or SIPp's callee).
fn steps(
    target: SocketAddr,
    gw_pid: u32,
    stats: Option<&Stats>,
    rates: &[u64],
    secs: u64,
    work: &Path,
) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut queue: std::collections::VecDeque<u64> = rates.iter().copied().collect();
    let mut bisections = 0;
    while let Some(rate) = queue.pop_front() {
        let calls = rate * secs;
        let errors0 = stats.map_or(0, |s| Stats::get(&s.errors));
        if let Some(s) = stats {
            s.latency_us.lock().unwrap().clear();
        }
        let (cpu0, me0) = (cpu_secs(Some(gw_pid)), cpu_secs(None));
        let run = sipp::Caller::start(target, calls, rate, 0, 4000, work).finish();
        let (cpu1, me1) = (cpu_secs(Some(gw_pid)), cpu_secs(None));
        let xmpp_errors = stats.map_or(0, |s| Stats::get(&s.errors)) - errors0;
        let mut xmpp_us = stats.map_or(Vec::new(), |s| s.latency_us.lock().unwrap().clone());
        xmpp_us.sort_unstable();
        let held = run.exit_ok
            && run.ok == calls
            && run.failed == 0
            && run.retrans == 0
            && xmpp_errors == 0
            && run.setup_rate >= 0.95 * rate as f64
            && pct(&run.setup_ms, 0.99) <= MAX_P99_MS;
        let step = Step {
            rate,
            calls,
            cpu_per_call_ms: (cpu1 - cpu0) * 1000.0 / calls as f64,
            responder_cpu_per_call_ms: (me1 - me0) * 1000.0 / calls as f64,
            rss_kib: rss_kib(Some(gw_pid)),
            xmpp_errors,
            xmpp_us,
            held,
            run,
        };
        println!(
            "  {rate:>5}/s offered: {} of {calls} calls ok, {} failed, {} retransmissions, {} XMPP errors; {:.0} setups/s; INVITE->200 p50 {} p90 {} p99 {} max {} ms; XMPP side p50 {} p99 {} us; CPU {:.3} ms/call; RSS {} KiB{}",
            step.run.ok,
            step.run.failed,
            step.run.retrans,
            step.xmpp_errors,
            step.run.setup_rate,
            pct(&step.run.setup_ms, 0.5),
            pct(&step.run.setup_ms, 0.9),
            pct(&step.run.setup_ms, 0.99),
            step.run.setup_ms.last().copied().unwrap_or(0),
            pct(&step.xmpp_us, 0.5),
            pct(&step.xmpp_us, 0.99),
            step.cpu_per_call_ms,
            step.rss_kib,
            if held { "" } else { "  (not held)" }
        );
        let failed = !step.held;
        out.push(step);
        if failed {
            // bisect twice between the highest step held and the lowest that failed
            queue.clear();
            let lo = out.iter().filter(|s| s.held).map(|s| s.rate).max();
            let hi = out.iter().filter(|s| !s.held).map(|s| s.rate).min();
            if let (Some(lo), Some(hi)) = (lo, hi) {
                if bisections < 2 && hi - lo > lo / 8 {
                    bisections += 1;
                    queue.push_back((lo + hi) / 2);
                }
            }
        } else if bisections > 0 {
            let lo = rate;
            let hi = out
                .iter()
                .filter(|s| !s.held)
                .map(|s| s.rate)
                .min()
                .unwrap_or(rate);
            if bisections < 2 && hi - lo > lo / 8 {
                bisections += 1;
                queue.push_back((lo + hi) / 2);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    out
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > timeout {
            println!("  (timed out waiting for {what})");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Mem {
    k: u64,
    set_up: u64,
    idle: (u64, Option<u64>),
    up: (u64, Option<u64>),
    settled: Option<(u64, Option<u64>)>,
    after: (u64, Option<u64>),
    after_settled: Option<(u64, Option<u64>)>,
    sipp_uas_rss: (u64, u64),
}

fn per_call(a: u64, b: u64, k: u64) -> String {
    format!("{:.0}", (b as f64 - a as f64) / k.max(1) as f64)
}

fn memory(rt: &tokio::runtime::Runtime, k: u64, settle: u64, spare: u64, work: &Path) -> Mem {
    let stox = start_stox(rt);
    let pid = stox.gw.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let read = || (rss_kib(Some(pid)), in_use(pid, &stox.gw.stderr));
    let idle = read();
    let ramp = k.div_ceil(RAMP);
    // hold: the ramp, the readings (gdb takes a second or two each), the settle time
    let hold_ms = (ramp + spare + settle) * 1000;
    let caller = sipp::Caller::start(stox.gw.sip, k, RAMP, hold_ms, k + 10, work);
    let t = Instant::now();
    wait_until(
        "the calls to be set up",
        Duration::from_secs(ramp + 20),
        || Stats::get(&stox.stats.accepted) >= k,
    );
    let set_up = Stats::get(&stox.stats.accepted);
    std::thread::sleep(Duration::from_millis(500));
    let up = read();
    let settled = (settle > 0).then(|| {
        let until = t + Duration::from_secs(ramp + settle);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        read()
    });
    let run = caller.finish();
    wait_until("the hang-ups", Duration::from_secs(10), || {
        Stats::get(&stox.stats.terminated) >= run.ok
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = read();
    let after_settled = (settle > 0).then(|| {
        std::thread::sleep(Duration::from_secs(settle));
        read()
    });
    // the baseline: SIPp's callee holding the same calls
    let uas = sipp::Callee::start(work);
    let uas_pid = uas.child.id();
    let idle_uas = rss_kib(Some(uas_pid));
    let caller = sipp::Caller::start(uas.addr, k, RAMP, (ramp + 2) * 1000, k + 10, work);
    std::thread::sleep(Duration::from_millis(ramp * 1000 + 1000));
    let up_uas = rss_kib(Some(uas_pid));
    caller.finish();
    Mem {
        k,
        set_up,
        idle,
        up,
        settled,
        after,
        after_settled,
        sipp_uas_rss: (idle_uas, up_uas),
    }
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` it is a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    if !sipp::available() {
        println!("calls: needs sipp on PATH (../shared/peers/install.sh sipp); skipped");
        return;
    }
    let (rates, secs, active, settle) = if full {
        (
            env_list("STOX_BENCH_RATES", "100,200,400,800,1600,3200"),
            env("STOX_BENCH_STEP_SECS", 5),
            env_list("STOX_BENCH_ACTIVE", "100,500,1000"),
            env("STOX_BENCH_SETTLE_SECS", 35),
        )
    } else {
        (vec![20], 1, vec![10], 0)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let work = support::fresh_state_dir();

    println!("calls: SIPp -> stox -> fake XMPP server + Jingle responder (Raw-UDP, PCMU); hold 0, steps of {secs} s");
    let stox = start_stox(&rt);
    let idle_rss = rss_kib(Some(stox.gw.child.id()));
    let via_stox = steps(
        stox.gw.sip,
        stox.gw.child.id(),
        Some(&stox.stats),
        &rates,
        secs,
        &work,
    );
    drop(stox);

    println!("baseline: SIPp -> SIPp callee (benches/calls/uas.xml), same steps");
    let uas = sipp::Callee::start(&work);
    let baseline = steps(uas.addr, uas.child.id(), None, &rates, secs, &work);
    drop(uas);

    println!("memory: K calls set up at {RAMP}/s and held; fresh stox for each K");
    let mut mems = Vec::new();
    for (i, &k) in active.iter().enumerate() {
        let settle = if i + 1 == active.len() { settle } else { 0 };
        let m = memory(&rt, k, settle, if full { 8 } else { 2 }, &work);
        println!(
            "  K={k}: {} set up; RSS {} -> {} KiB ({} B/call); live heap {} -> {}{}; after hang-up RSS {} KiB, heap {}{}; SIPp callee RSS {} -> {} KiB",
            m.set_up,
            m.idle.0,
            m.up.0,
            per_call(m.idle.0 * 1024, m.up.0 * 1024, k),
            kib(m.idle.1),
            kib(m.up.1),
            m.settled
                .map(|s| format!(", {} s later RSS {} KiB heap {}", settle, s.0, kib(s.1)))
                .unwrap_or_default(),
            m.after.0,
            kib(m.after.1),
            m.after_settled
                .map(|s| format!(", {} s later RSS {} KiB heap {}", settle, s.0, kib(s.1)))
                .unwrap_or_default(),
            m.sipp_uas_rss.0,
            m.sipp_uas_rss.1,
        );
        mems.push(m);
    }
    let _ = std::fs::remove_dir_all(&work);

    report(&via_stox, &baseline, &mems, idle_rss, settle);
    if !full {
        // the smoke run of `cargo test --all-targets`: the call path through stox works
        // Every call must succeed; latency is not judged here (a loaded CI machine may stall a
        // few ms: that is for the benchmark to report, not for a test to fail on).
        assert!(
            via_stox.iter().all(|s| s.run.exit_ok
                && s.run.ok == s.calls
                && s.run.failed == 0
                && s.xmpp_errors == 0),
            "calls through stox failed"
        );
        assert!(
            mems.iter().all(|m| m.set_up == m.k),
            "held calls not all set up"
        );
    }
}

fn knee(s: &[Step]) -> String {
    s.iter()
        .filter(|s| s.held)
        .map(|s| s.rate)
        .max()
        .map_or("none held".into(), |r| format!("{r}"))
}

fn report(stox: &[Step], base: &[Step], mems: &[Mem], idle_rss: u64, settle: u64) {
    println!();
    println!("| offered calls/s | stox: setups/s | stox: INVITE->200 p50 / p90 / p99 ms (SIPp) | XMPP side p50 / p99 ms | stox: calls not ok / retrans. / XMPP errors | stox CPU ms/call (responder) | stox RSS KiB | SIPp callee: setups/s | SIPp callee: p50 / p90 / p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in stox {
        let b = base.iter().find(|b| b.rate == s.rate);
        println!(
            "| {}{} | {:.0} | {} / {} / {} | {:.2} / {:.2} | {} / {} / {} | {:.3} ({:.3}) | {} | {} | {} |",
            s.rate,
            if s.held { "" } else { " (not held)" },
            s.run.setup_rate,
            pct(&s.run.setup_ms, 0.5),
            pct(&s.run.setup_ms, 0.9),
            pct(&s.run.setup_ms, 0.99),
            pct(&s.xmpp_us, 0.5) as f64 / 1000.0,
            pct(&s.xmpp_us, 0.99) as f64 / 1000.0,
            s.calls - s.run.ok.min(s.calls),
            s.run.retrans,
            s.xmpp_errors,
            s.cpu_per_call_ms,
            s.responder_cpu_per_call_ms,
            s.rss_kib,
            b.map_or("-".into(), |b| format!("{:.0}{}", b.run.setup_rate, if b.held { "" } else { " (not held)" })),
            b.map_or("-".into(), |b| format!(
                "{} / {} / {}",
                pct(&b.run.setup_ms, 0.5),
                pct(&b.run.setup_ms, 0.9),
                pct(&b.run.setup_ms, 0.99)
            )),
        );
    }
    for b in base
        .iter()
        .filter(|b| !stox.iter().any(|s| s.rate == b.rate))
    {
        println!(
            "| {} | - | - | - | - | - | - | {:.0}{} | {} / {} / {} |",
            b.rate,
            b.run.setup_rate,
            if b.held { "" } else { " (not held)" },
            pct(&b.run.setup_ms, 0.5),
            pct(&b.run.setup_ms, 0.9),
            pct(&b.run.setup_ms, 0.99)
        );
    }
    println!(
        "\nHighest step held: stox {} calls/s, SIPp callee {} calls/s. stox idle RSS {idle_rss} KiB.\n",
        knee(stox),
        knee(base)
    );
    println!("| active calls K | set up | stox RSS idle -> K calls (bytes/call) | live heap idle -> K calls (bytes/call) | after {settle} s with the calls up: live heap (bytes/call) | after hang-up: RSS / live heap | {settle} s after hang-up: RSS / live heap | SIPp callee RSS idle -> K calls |");
    println!("|---|---|---|---|---|---|---|---|");
    for m in mems {
        let heap = |h: Option<u64>| h.map_or("n/a".into(), |b| format!("{} KiB", b / 1024));
        let heap_per = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => per_call(a, b, m.k),
            _ => "n/a".into(),
        };
        println!(
            "| {} | {} | {} -> {} KiB ({}) | {} -> {} ({}) | {} | {} KiB / {} | {} | {} -> {} KiB |",
            m.k,
            m.set_up,
            m.idle.0,
            m.up.0,
            per_call(m.idle.0 * 1024, m.up.0 * 1024, m.k),
            heap(m.idle.1),
            heap(m.up.1),
            heap_per(m.idle.1, m.up.1),
            m.settled.map_or("-".into(), |s| format!(
                "{} ({})",
                heap(s.1),
                heap_per(m.idle.1, s.1)
            )),
            m.after.0,
            heap(m.after.1),
            m.after_settled
                .map_or("-".into(), |s| format!("{} KiB / {}", s.0, heap(s.1))),
            m.sipp_uas_rss.0,
            m.sipp_uas_rss.1,
        );
    }
}
