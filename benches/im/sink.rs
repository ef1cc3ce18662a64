//! What the receiving side of the harness counts: each benchmark message carries
//! `stoxbench run=R seq=S ts=T` in its body (T: nanoseconds since the harness epoch, taken
//! when the generator wrote it), so the receiver can tell delivered, duplicated and stray
//! messages apart and measure end-to-end latency without trusting the gateway's clock.

use std::sync::Mutex;
use std::time::Instant;

/// The body the generators put in every message.
pub fn body(run: u32, seq: u64, ts_ns: u64) -> String {
    format!("stoxbench run={run} seq={seq} ts={ts_ns}")
}

/// Figures of one run, read by the step that started it.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Distinct messages of this run that arrived.
    pub delivered: u64,
    /// Arrivals of a message already counted.
    pub duplicates: u64,
    /// Error stanzas or failure responses seen by the receiver.
    pub errors: u64,
    /// Arrivals that belong to no current run (an earlier step's late messages).
    pub stray: u64,
    /// Latency of each first arrival, nanoseconds.
    pub latencies: Vec<u64>,
    /// When the last first arrival happened (ns since epoch).
    pub last_arrival_ns: u64,
}

struct Run {
    run: u32,
    seen: Vec<bool>,
    tally: Tally,
}

/// Counts one run's messages at a time; `reset` starts the next run.
pub struct Sink {
    epoch: Instant,
    inner: Mutex<Run>,
}

fn field(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Sink {
    pub fn new(epoch: Instant) -> Self {
        Sink {
            epoch,
            inner: Mutex::new(Run {
                run: u32::MAX,
                seen: Vec::new(),
                tally: Tally::default(),
            }),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Start counting run `run` of `count` messages (sequence numbers 0..=count).
    pub fn reset(&self, run: u32, count: u64) {
        let mut r = self.inner.lock().unwrap();
        r.run = run;
        r.seen = vec![false; count as usize + 1];
        r.tally = Tally {
            latencies: Vec::with_capacity(count as usize),
            ..Tally::default()
        };
    }

    pub fn tally(&self) -> Tally {
        self.inner.lock().unwrap().tally.clone()
    }

    pub fn error(&self) {
        self.inner.lock().unwrap().tally.errors += 1;
    }

    /// Count one received body (the text between the body tags, or a SIP body).
    pub fn record(&self, body: &[u8]) {
        let now = self.now_ns();
        let text = String::from_utf8_lossy(body);
        let (Some(run), Some(seq)) = (field(&text, "run="), field(&text, "seq=")) else {
            self.inner.lock().unwrap().tally.stray += 1;
            return;
        };
        let ts = field(&text, "ts=");
        let mut r = self.inner.lock().unwrap();
        if run != u64::from(r.run) || seq as usize >= r.seen.len() {
            r.tally.stray += 1;
            return;
        }
        if std::mem::replace(&mut r.seen[seq as usize], true) {
            r.tally.duplicates += 1;
            return;
        }
        r.tally.delivered += 1;
        r.tally.last_arrival_ns = now;
        if let Some(ts) = ts {
            r.tally.latencies.push(now.saturating_sub(ts));
        }
    }
}

/// Percentile (0..=100) of nanosecond samples, in milliseconds.
pub fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1e6
}
