//! Step outcomes and the side-by-side table the IM benchmark prints.

use std::time::Duration;

use super::procs;
use super::sink::{percentile_ms, Tally};
use super::sip::GenReport;

#[derive(Clone, Copy)]
pub enum Direction {
    SipToXmpp,
    XmppToSip,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::SipToXmpp => "SIP->XMPP",
            Direction::XmppToSip => "XMPP->SIP",
        }
    }
}

/// A rate is only held if 99 % of its messages arrive within this: a queue that keeps
/// growing over the step shows up here before it shows up as loss.
pub const HELD_P99_MS: f64 = 50.0;

/// One step: a rate held for a while (or a burst, rate 0).
#[derive(Clone, Debug)]
pub struct Step {
    pub rate: u64,
    pub count: u64,
    pub tally: Tally,
    pub sip: Option<GenReport>,
    /// Last arrival after the last message was sent, ms (0 if it came before).
    pub drain_ms: f64,
    /// Last arrival after the first message was sent, ms (the burst's time to drain).
    pub total_ms: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub held: bool,
    /// Peak RSS and PSS of the gateway's processes during the step, KiB.
    pub rss: u64,
    pub pss: u64,
    /// Gateway CPU seconds per 10,000 delivered messages.
    pub cpu_per_10k: Option<f64>,
}

/// A step's raw results before the gateway's figures are attached.
pub struct Outcome {
    step: Step,
}

impl Outcome {
    /// `start_ns`/`send_end_ns`: when the first and the last message were written (sink clock).
    pub fn new(
        rate: u64,
        count: u64,
        mut tally: Tally,
        start_ns: u64,
        send_end_ns: u64,
    ) -> Outcome {
        tally.latencies.sort_unstable();
        let l = &tally.latencies;
        let step = Step {
            rate,
            count,
            drain_ms: tally.last_arrival_ns.saturating_sub(send_end_ns) as f64 / 1e6,
            total_ms: tally.last_arrival_ns.saturating_sub(start_ns) as f64 / 1e6,
            p50: percentile_ms(l, 50.0),
            p99: percentile_ms(l, 99.0),
            p999: percentile_ms(l, 99.9),
            max: percentile_ms(l, 100.0),
            held: false,
            rss: 0,
            pss: 0,
            cpu_per_10k: None,
            sip: None,
            tally,
        };
        Outcome { step }
    }

    pub fn with_sip(mut self, gen: GenReport) -> Outcome {
        self.step.sip = Some(gen);
        self
    }

    pub fn finish(self, peak: Option<procs::Peak>, cpu0: Option<f64>, pid: Option<u32>) -> Step {
        let mut s = self.step;
        if let Some(p) = peak {
            (s.rss, s.pss) = p.finish();
        }
        if let (Some(c0), Some(pid)) = (cpu0, pid) {
            let used = procs::cpu_secs(&procs::family(pid)) - c0;
            if s.tally.delivered > 0 {
                s.cpu_per_10k = Some(used * 10_000.0 / s.tally.delivered as f64);
            }
        }
        let t = &s.tally;
        let sip_clean = s.sip.as_ref().is_none_or(|g| {
            g.ok == g.sent && g.failed == 0 && g.timeouts == 0 && g.retransmissions == 0
        });
        s.held = t.delivered == s.count
            && t.duplicates == 0
            && t.errors == 0
            && sip_clean
            && s.drain_ms <= 500.0
            && s.p99 <= HELD_P99_MS;
        s
    }
}

impl Step {
    pub fn line(&self) -> String {
        let mut out = format!(
            "{:>7}/s x {:<7} {} delivered {} dup {} err {} stray {} | p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.1} ms | drain {:.0} ms",
            self.rate,
            self.count,
            if self.held { "HELD" } else { "FAIL" },
            self.tally.delivered,
            self.tally.duplicates,
            self.tally.errors,
            self.tally.stray,
            self.p50,
            self.p99,
            self.p999,
            self.max,
            self.drain_ms,
        );
        if let Some(g) = &self.sip {
            out += &format!(
                " | SIP 2xx {} fail {} timeout {} retx {}{}",
                g.ok,
                g.failed,
                g.timeouts,
                g.retransmissions,
                if g.codes.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", g.codes)
                }
            );
        }
        if self.rss > 0 {
            out += &format!(" | RSS {} KiB PSS {} KiB", self.rss, self.pss);
        }
        if let Some(c) = self.cpu_per_10k {
            out += &format!(" | {c:.2} CPU s/10k");
        }
        out
    }
}

/// One direction through one gateway.
pub struct Column {
    pub best: u64,
    pub steps: Vec<Step>,
    /// (percent of best, step) for the latency points.
    pub at: Vec<(u64, Step)>,
    pub tcp: Option<u64>,
    pub burst: Option<Step>,
}

impl Column {
    pub fn new(best: u64, steps: Vec<Step>) -> Column {
        Column {
            best,
            steps,
            at: Vec::new(),
            tcp: None,
            burst: None,
        }
    }

    /// The held step at the sustained rate.
    fn best_step(&self) -> Option<&Step> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.held && s.rate == self.best)
    }
}

pub struct Gw {
    pub name: &'static str,
    pub idle_rss: u64,
    pub s2x: Column,
    pub x2s: Column,
    pub sipp: Option<String>,
}

pub struct Ceilings {
    pub sip_udp: u64,
    pub x_in: u64,
    pub x_out: u64,
}

fn lat(s: &Step) -> String {
    format!(
        "{:.2} / {:.2} / {:.2}{}",
        s.p50,
        s.p99,
        s.p999,
        if s.held { "" } else { " (not held)" }
    )
}

fn row(name: &str, cells: Vec<String>, ratio: Option<f64>) {
    println!(
        "| {name} | {} | {} |",
        cells.join(" | "),
        ratio.map_or("".into(), |r| format!("{r:.1}x"))
    );
}

fn ratio(gws: &[Gw], f: impl Fn(&Gw) -> f64) -> Option<f64> {
    (gws.len() == 2 && f(&gws[1]) > 0.0).then(|| f(&gws[0]) / f(&gws[1]))
}

fn column_rows(gws: &[Gw], dir: Direction, pick: impl Fn(&Gw) -> &Column, ceiling: u64) {
    let d = dir.name();
    row(
        &format!("{d} sustained msgs/s (UDP, zero loss)"),
        gws.iter().map(|g| pick(g).best.to_string()).collect(),
        ratio(gws, |g| pick(g).best as f64),
    );
    row(
        &format!("{d} as a share of the harness ceiling ({ceiling}/s)"),
        gws.iter()
            .map(|g| format!("{:.0} %", pick(g).best as f64 * 100.0 / ceiling as f64))
            .collect(),
        None,
    );
    for (i, pct) in [25, 50, 90].iter().enumerate() {
        row(
            &format!("{d} latency p50 / p99 / p99.9 ms at {pct} %"),
            gws.iter()
                .map(|g| pick(g).at.get(i).map_or("-".into(), |(_, s)| lat(s)))
                .collect(),
            None,
        );
    }
    row(
        &format!("{d} peak RSS / PSS KiB at the sustained rate"),
        gws.iter()
            .map(|g| {
                pick(g)
                    .best_step()
                    .map_or("-".into(), |s| format!("{} / {}", s.rss, s.pss))
            })
            .collect(),
        None,
    );
    row(
        &format!("{d} CPU seconds per 10,000 messages at 50 %"),
        gws.iter()
            .map(|g| {
                pick(g)
                    .at
                    .get(1)
                    .and_then(|(_, s)| s.cpu_per_10k)
                    .map_or("-".into(), |c| format!("{c:.2}"))
            })
            .collect(),
        ratio(gws, |g| {
            pick(g)
                .at
                .get(1)
                .and_then(|(_, s)| s.cpu_per_10k)
                .map_or(0.0, |c| 1.0 / c)
        }),
    );
}

pub fn print(c: &Ceilings, gws: &[Gw], step_secs: u64, took: Duration) {
    let s2x_ceiling = c.sip_udp.min(c.x_in);
    let x2s_ceiling = c.sip_udp.min(c.x_out);
    println!();
    println!(
        "Harness ceiling (tools wired to each other, same run): SIP generator -> responder {} msgs/s (UDP); \
         XMPP stand-in -> server {} msgs/s; server -> stand-in {} msgs/s",
        c.sip_udp, c.x_in, c.x_out
    );
    println!(
        "So the SIP->XMPP ceiling is {s2x_ceiling} msgs/s and the XMPP->SIP ceiling {x2s_ceiling} msgs/s. Steps of {step_secs} s."
    );
    println!();
    let names: Vec<&str> = gws.iter().map(|g| g.name).collect();
    println!("| measure | {} | ratio |", names.join(" | "));
    println!("|---|{}---|", "---|".repeat(gws.len()));
    column_rows(gws, Direction::SipToXmpp, |g| &g.s2x, s2x_ceiling);
    row(
        "SIP->XMPP sustained msgs/s over TCP (one pipelined connection)",
        gws.iter()
            .map(|g| g.s2x.tcp.map_or("-".into(), |t| t.to_string()))
            .collect(),
        ratio(gws, |g| g.s2x.tcp.unwrap_or(0) as f64),
    );
    column_rows(gws, Direction::XmppToSip, |g| &g.x2s, x2s_ceiling);
    row(
        "XMPP->SIP burst of 20,000: delivered, time to drain",
        gws.iter()
            .map(|g| {
                g.x2s.burst.as_ref().map_or("-".into(), |b| {
                    format!(
                        "{} in {:.2} s{}",
                        b.tally.delivered,
                        b.total_ms / 1e3,
                        if b.tally.errors > 0 {
                            format!(" ({} errors)", b.tally.errors)
                        } else {
                            String::new()
                        }
                    )
                })
            })
            .collect(),
        None,
    );
    row(
        "RSS idle, KiB (all processes)",
        gws.iter().map(|g| g.idle_rss.to_string()).collect(),
        None,
    );
    println!();
    for g in gws {
        if let Some(s) = &g.sipp {
            println!("Cross-check: {s}");
        }
    }
    println!("Whole run: {:.0} s", took.as_secs_f64());
}
