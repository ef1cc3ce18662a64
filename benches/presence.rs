//! Presence benchmark (issue: memory per active subscription, NOTIFY throughput at 10,000
//! subscriptions). Not a test: it prints figures to compare between builds.
//!
//!     cargo bench --bench presence            # N = 10000
//!     STOX_BENCH_N=2000 cargo bench --bench presence
//!
//! Two parts:
//!
//! 1. **Wire**: the release `stox` binary as its own process, a fake XEP-0114 server and raw
//!    UDP SIP watchers in this process. N SIP users subscribe to one XMPP user (SUBSCRIBE,
//!    pending NOTIFY, `subscribe` stanza, `subscribed`, active NOTIFY), then the XMPP user's
//!    presence changes once per watcher: N NOTIFYs with a PIDF body, each answered 200.
//!    Reported: the stox process's RSS before and after (per subscription), NOTIFYs per second
//!    and the latency from the XMPP stanza to its NOTIFY (p50/p90/p99/max).
//! 2. **Engine**: the sans-IO presence engine alone, N subscriptions each way (S->X and X->S):
//!    heap growth per subscription, XMPP presence -> NOTIFY and NOTIFY (PIDF parse and
//!    translation) -> stanza rates, without sockets.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

mod common;
use common::{in_use, kib, rss_kib, Gw};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::sip::{param, request, token, SipMsg, UdpPeer};
use support::xmpp::{Ev, FakeServer};
use tokio::sync::Mutex;

const SECRET: &str = "bench-secret";
/// Most NOTIFYs in flight at once (see `wire`).
const WINDOW: usize = 32;

fn n() -> usize {
    std::env::var("STOX_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

// ------------------------------------------------------------------------------- wire part

fn start_stox(xmpp: SocketAddr, n: usize) -> Gw {
    common::start_stox(
        env!("CARGO_BIN_EXE_stox"),
        xmpp,
        SECRET,
        &format!(
            "[presence]\nmax_subscriptions_per_user = {}\nmax_subscriptions_total = {}\n",
            n * 2,
            n * 4
        ),
    )
}

#[derive(Clone, Copy)]
enum Count {
    All = 0,
    Pending = 1,
    Active = 2,
}

/// Answers every NOTIFY 200 and records when each arrived, by watcher user.
struct Watcher {
    peer: Arc<UdpPeer>,
    /// Arrival time of the last NOTIFY per watcher user.
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    /// NOTIFYs received: all, pending, active.
    counts: Arc<[AtomicUsize; 3]>,
}

impl Watcher {
    async fn start() -> Watcher {
        let peer = Arc::new(UdpPeer::bind().await);
        let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let counts: Arc<[AtomicUsize; 3]> = Arc::default();
        let (p, s, c) = (peer.clone(), seen.clone(), counts.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((len, src)) = p.sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(msg) = SipMsg::parse(&buf[..len]) else {
                    continue;
                };
                if msg.method() != Some("NOTIFY") {
                    continue;
                }
                let now = Instant::now();
                p.send(&msg.response(200, "OK", &[]), src).await;
                let user = msg
                    .uri()
                    .and_then(|u| u.strip_prefix("sip:"))
                    .and_then(|u| u.split('@').next())
                    .unwrap_or("")
                    .to_string();
                let state = msg.header("subscription-state").unwrap_or("");
                s.lock().await.insert(user, now);
                c[0].fetch_add(1, Ordering::SeqCst);
                if state.starts_with("pending") {
                    c[1].fetch_add(1, Ordering::SeqCst);
                } else if state.starts_with("active") {
                    c[2].fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Watcher { peer, seen, counts }
    }

    fn count(&self, which: Count) -> usize {
        self.counts[which as usize].load(Ordering::SeqCst)
    }

    async fn wait(&self, what: &str, want: usize, which: Count, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let got = self.count(which);
            if got >= want {
                return;
            }
            assert!(
                Instant::now() < end,
                "{what}: {got}/{want} NOTIFYs after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Drain stanzas the gateway sent until `want` match (keeps the fake server's memory flat).
async fn drain_stanzas(
    xmpp: &mut FakeServer,
    want: usize,
    pred: impl Fn(&tokio_xmpp::minidom::Element) -> bool,
) {
    let mut got = 0;
    while got < want {
        match xmpp.try_wait_for(Duration::from_secs(30), |_| true).await {
            Some(Ev::Stanza { el, .. }) if pred(&el) => got += 1,
            Some(_) => {}
            None => panic!("only {got}/{want} stanzas from the gateway"),
        }
    }
    xmpp.seen.clear();
}

/// Watchers `w{first}`..`w{first+n}` subscribe to juliet, she approves them all.
async fn setup(
    xmpp: &mut FakeServer,
    gw: &Gw,
    watcher: &Watcher,
    uac: &UdpPeer,
    first: usize,
    n: usize,
) -> f64 {
    let active0 = watcher.count(Count::Active);
    let pending0 = watcher.count(Count::Pending);
    // N SIP users subscribe to juliet (one transaction at a time: this measures setup, not
    // the UDP socket buffers).
    let t = Instant::now();
    for i in first..first + n {
        let req = request(
            "SUBSCRIBE",
            "sip:juliet@example.com",
            &format!("<sip:w{i}@example.net>;tag={}", token()),
            "<sip:juliet@example.com>",
            &[
                ("Event", "presence"),
                ("Expires", "3600"),
                ("Contact", &format!("<sip:w{i}@{}>", watcher.peer.addr)),
            ],
            b"",
        );
        let resp = uac.transact(req, gw.sip, Duration::from_secs(10)).await;
        assert_eq!(resp.code(), Some(200), "{}", resp.start);
        assert!(param(resp.header("to").unwrap_or(""), "tag").is_some());
    }
    drain_stanzas(xmpp, n, |e| e.attr("type") == Some("subscribe")).await;
    watcher
        .wait(
            "pending",
            pending0 + n,
            Count::Pending,
            Duration::from_secs(60),
        )
        .await;
    let subscribe_secs = t.elapsed().as_secs_f64();
    // Juliet approves all of them (at most WINDOW active NOTIFYs outstanding: a burst of
    // thousands would overflow the loopback socket buffers).
    for i in first..first + n {
        while i - first >= WINDOW && watcher.count(Count::Active) < active0 + i - first - WINDOW {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        xmpp.send(&format!(
            "<presence type='subscribed' from='juliet@example.com' to='w{i}@sip.example.com'/>"
        ));
    }
    watcher
        .wait(
            "active",
            active0 + n,
            Count::Active,
            Duration::from_secs(60),
        )
        .await;

    subscribe_secs
}

async fn wire(n: usize, settle: Duration) {
    let mut xmpp = FakeServer::start(SECRET).await;
    let gw = start_stox(xmpp.addr, n);
    xmpp.wait_online(Duration::from_secs(30)).await;
    xmpp.seen.clear();
    let pid = gw.child.id();
    let rss0 = rss_kib(Some(pid));
    let heap0 = in_use(pid, &gw.stderr);
    let watcher = Watcher::start().await;
    let uac = UdpPeer::bind().await;

    let subscribe_secs = setup(&mut xmpp, &gw, &watcher, &uac, 0, n).await;
    let rss_busy = rss_kib(Some(pid));
    let heap_busy = in_use(pid, &gw.stderr);
    // Transactions linger for Timer J/K (32 s / 5 s after their final response, RFC 3261
    // §17): measure the settled figure after them.
    tokio::time::sleep(settle).await;
    let rss1 = rss_kib(Some(pid));
    let heap1 = in_use(pid, &gw.stderr);

    // Throughput: one presence change per watcher, each becomes a NOTIFY with a PIDF body. At
    // most WINDOW changes are outstanding (a burst of thousands of datagrams overflows the
    // loopback socket buffers, and ezk retransmits a lost NOTIFY only after 4 s).
    let before = watcher.count(Count::All);
    let mut sent_at = HashMap::with_capacity(n);
    let t = Instant::now();
    for i in 0..n {
        while i >= WINDOW && watcher.count(Count::All) < before + i - WINDOW {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        sent_at.insert(format!("w{i}"), Instant::now());
        xmpp.send(&format!(
            "<presence from='juliet@example.com/balcony' to='w{i}@sip.example.com'><show>away</show><status>bench {i}</status></presence>"
        ));
    }
    watcher
        .wait("presence", before + n, Count::All, Duration::from_secs(300))
        .await;
    let elapsed = t.elapsed();
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for (user, at) in watcher.seen.lock().await.iter() {
        if let Some(sent) = sent_at.get(user) {
            lat.push(at.saturating_duration_since(*sent));
        }
    }
    lat.sort();
    let rss2 = rss_kib(Some(pid));
    println!("wire: stox process, {n} SIP watchers of one XMPP user (UDP, loopback)");
    println!(
        "  setup       {n} SUBSCRIBE + pending NOTIFY in {subscribe_secs:.2} s ({:.0}/s, one at a time)",
        n as f64 / subscribe_secs
    );
    println!(
        "  RSS         {} KiB idle -> {} KiB right after setup (live heap {}) -> {} KiB settled with {n} active subscriptions",
        rss0, rss_busy, kib(heap_busy), rss1
    );
    println!(
        "              = {:.0} bytes of RSS per subscription (whole process, settled)",
        (rss1.saturating_sub(rss0) as f64 * 1024.0) / n as f64
    );
    println!(
        "  live heap   {} idle -> {} settled = {} per subscription (malloc in use; see BENCHMARKS.md on RSS)",
        kib(heap0),
        kib(heap1),
        match (heap0, heap1) {
            (Some(a), Some(b)) => format!("{:.0} bytes", b.saturating_sub(a) as f64 / n as f64),
            _ => "n/a".into(),
        }
    );
    println!(
        "  NOTIFY      {n} presence stanzas -> {n} NOTIFYs answered in {:.2} s = {:.0} NOTIFY/s (window {WINDOW})",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency     stanza sent -> NOTIFY received: p50 {} p90 {} p99 {} max {}",
        fmt_ms(percentile(&lat, 0.5)),
        fmt_ms(percentile(&lat, 0.9)),
        fmt_ms(percentile(&lat, 0.99)),
        fmt_ms(percentile(&lat, 1.0))
    );
    println!("  RSS after   {rss2} KiB");
    // A second wave of N new subscriptions: the transaction memory of the first wave is free
    // again, so a leak would show as the same growth once more.
    setup(&mut xmpp, &gw, &watcher, &uac, n, n).await;
    tokio::time::sleep(settle).await;
    let rss3 = rss_kib(Some(pid));
    let heap3 = in_use(pid, &gw.stderr);
    println!(
        "  2nd wave    +{n} subscriptions ({} in all): RSS {} KiB (+{:.0} bytes per added subscription), live heap {} ({} per subscription)",
        2 * n,
        rss3,
        (rss3.saturating_sub(rss2) as f64 * 1024.0) / n as f64,
        kib(heap3),
        match (heap0, heap3) {
            (Some(a), Some(b)) => format!("{:.0} bytes", b.saturating_sub(a) as f64 / (2 * n) as f64),
            _ => "n/a".into(),
        }
    );
    drop(gw);
}

// ----------------------------------------------------------------------------- engine part

fn engine(n: usize) {
    use stox::addr::AddressMap;
    use stox::presence::subscription::{
        Clock, Engine, Input, OutMethod, Output, Settings, SipRequestIn, SipResponseIn,
    };
    use xmpp_parsers::jid::Jid;
    use xmpp_parsers::presence::{Presence, Show, Type};

    let map = AddressMap::new("sip.example.com", &["example.com".into()], "example.net");
    let mut e = Engine::new(
        map,
        Settings {
            max_per_user: n * 2,
            max_total: n * 4,
            ..Settings::default()
        },
    );
    let clock = Clock {
        now: std::time::Instant::now(),
        unix: 1_700_000_000,
    };
    // Answers every request at once: NOTIFYs 200, SUBSCRIBEs 200 with a tag.
    fn pump(e: &mut Engine, clock: Clock, counts: &mut (usize, usize)) {
        loop {
            let mut answered = Vec::new();
            while let Some(o) = e.poll_output() {
                match o {
                    Output::Request(r) => {
                        if r.method == OutMethod::Notify {
                            counts.0 += 1;
                        }
                        answered.push((r.id, r.method, r.local_tag.clone()));
                    }
                    Output::Stanza(_) => counts.1 += 1,
                    _ => {}
                }
            }
            if answered.is_empty() {
                return;
            }
            for (id, m, _) in answered {
                let resp = SipResponseIn {
                    code: 200,
                    to_tag: (m == OutMethod::Subscribe).then(|| "peer".to_string()),
                    contact: Some("sip:peer@192.0.2.1".into()),
                    expires: Some("3600".into()),
                    ..Default::default()
                };
                e.handle(clock, Input::Response { id, resp });
            }
        }
    }
    let presence = |t: Type, from: &str, to: &str| {
        let mut p = Presence::new(t);
        p.from = Some(Jid::new(from).unwrap());
        p.to = Some(Jid::new(to).unwrap());
        Input::Presence {
            presence: Box::new(p),
            lang: None,
        }
    };
    let mut counts = (0, 0);
    let heap0 = rss_kib(None);
    // S->X: N SIP watchers of juliet, approved.
    for i in 0..n {
        let req = SipRequestIn {
            method: "SUBSCRIBE".into(),
            request_uri: "sip:juliet@example.com".into(),
            from_uri: format!("sip:w{i}@example.net"),
            from_tag: Some(format!("t{i}")),
            to_uri: "sip:juliet@example.com".into(),
            call_id: format!("c{i}"),
            cseq: 1,
            contact: Some(format!("sip:w{i}@192.0.2.1")),
            event: Some("presence".into()),
            expires: Some("3600".into()),
            ..Default::default()
        };
        e.handle(
            clock,
            Input::Request {
                tx: i as u64,
                req: Box::new(req),
            },
        );
        e.handle(
            clock,
            presence(
                Type::Subscribed,
                "juliet@example.com",
                &format!("w{i}@sip.example.com"),
            ),
        );
        pump(&mut e, clock, &mut counts);
    }
    // X->S: N XMPP users watching one SIP user each... here: nurse watching N SIP users.
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        e.handle(
            clock,
            presence(
                Type::Subscribe,
                &format!("x{i}@example.com"),
                &format!("r{i}@sip.example.com"),
            ),
        );
        let mut reqs = Vec::new();
        while let Some(o) = e.poll_output() {
            if let Output::Request(r) = o {
                reqs.push(r);
            }
        }
        for r in reqs {
            e.handle(
                clock,
                Input::Response {
                    id: r.id,
                    resp: SipResponseIn {
                        code: 200,
                        to_tag: Some("n".into()),
                        contact: Some(format!("sip:r{i}@192.0.2.2")),
                        expires: Some("3600".into()),
                        ..Default::default()
                    },
                },
            );
            subs.push((r.call_id, r.local_tag));
        }
        pump(&mut e, clock, &mut counts);
    }
    let heap1 = rss_kib(None);
    let stats = e.stats();
    // XMPP presence -> NOTIFY.
    let (notifies0, _) = counts;
    let t = Instant::now();
    for i in 0..n {
        let mut p = Presence::new(Type::None);
        p.from = Some(Jid::new("juliet@example.com/balcony").unwrap());
        p.to = Some(Jid::new(&format!("w{i}@sip.example.com")).unwrap());
        p.show = Some(Show::Away);
        e.handle(
            clock,
            Input::Presence {
                presence: Box::new(p),
                lang: None,
            },
        );
        pump(&mut e, clock, &mut counts);
    }
    let x2s = t.elapsed();
    let notifies = counts.0 - notifies0;
    // NOTIFY with PIDF -> stanzas.
    let stanzas0 = counts.1;
    let t = Instant::now();
    for (i, (call_id, tag)) in subs.iter().enumerate() {
        let body = format!(
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:r{i}@example.net'><tuple id='ID-phone'><status><basic>open</basic><show xmlns='jabber:client'>away</show></status><note>bench</note></tuple></presence>"
        );
        let req = SipRequestIn {
            method: "NOTIFY".into(),
            from_uri: format!("sip:r{i}@example.net"),
            from_tag: Some("n".into()),
            to_tag: Some(tag.clone()),
            call_id: call_id.clone(),
            cseq: 2,
            event: Some("presence".into()),
            subscription_state: Some("active;expires=3000".into()),
            content_type: Some("application/pidf+xml".into()),
            body: body.into_bytes(),
            ..Default::default()
        };
        e.handle(
            clock,
            Input::Request {
                tx: (n + i) as u64,
                req: Box::new(req),
            },
        );
        pump(&mut e, clock, &mut counts);
    }
    let s2x = t.elapsed();
    let stanzas = counts.1 - stanzas0;
    println!("engine: sans-IO presence engine alone, {n} subscriptions each way");
    println!(
        "  memory      {} KiB -> {} KiB for {} authorizations / {} dialogs = {:.0} bytes per subscription",
        heap0,
        heap1,
        stats.authorizations,
        stats.dialogs,
        (heap1.saturating_sub(heap0) as f64 * 1024.0) / stats.dialogs.max(1) as f64
    );
    println!(
        "  X->S        {n} XMPP presences -> {notifies} NOTIFYs (PIDF written) in {} = {:.0}/s",
        fmt_ms(x2s),
        notifies as f64 / x2s.as_secs_f64()
    );
    println!(
        "  S->X        {n} NOTIFYs (PIDF parsed) -> {stanzas} stanzas in {} = {:.0}/s",
        fmt_ms(s2x),
        n as f64 / s2x.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench. Under `cargo test --all-targets` (no --bench) it runs as a
    // quick smoke test: 100 subscriptions, no waiting for transactions to settle.
    let bench = std::env::args().any(|a| a == "--bench");
    let (n, settle) = if bench {
        (n(), Duration::from_secs(35))
    } else {
        (100, Duration::ZERO)
    };
    engine(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(wire(n, settle));
}
