//! Process figures read from /proc: RSS, PSS (summed over a process and its children, since
//! Kamailio runs as a dozen forked workers sharing memory) and CPU time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The process and its direct children (Kamailio's workers are children of its main process).
pub fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if stat_fields(child).and_then(|f| f.get(1).and_then(|p| p.parse().ok())) == Some(pid) {
                out.push(child);
            }
        }
    }
    out
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, ...].
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn kib_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident set of each process of the family, summed (counts shared pages once per process).
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|p| kib_field(&format!("/proc/{p}/status"), "VmRSS:"))
        .sum()
}

/// Proportional set size summed over the family: shared pages split between the sharers.
pub fn pss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|p| kib_field(&format!("/proc/{p}/smaps_rollup"), "Pss:"))
        .sum()
}

/// User + system CPU seconds of the family.
pub fn cpu_secs(pids: &[u32]) -> f64 {
    // Linux reports these in clock ticks of 1/100 s (USER_HZ) on every architecture we run.
    let ticks: u64 = pids
        .iter()
        .filter_map(|&p| {
            let f = stat_fields(p)?;
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 / 100.0
}

/// Samples the family's RSS and PSS every 100 ms while a step runs; keeps the peaks.
pub struct Peak {
    stop: Arc<AtomicBool>,
    rss: Arc<AtomicU64>,
    pss: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Peak {
    pub fn start(pid: u32) -> Peak {
        let stop = Arc::new(AtomicBool::new(false));
        let (rss, pss) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (st, r, p) = (stop.clone(), rss.clone(), pss.clone());
        let thread = std::thread::spawn(move || {
            let pids = family(pid);
            loop {
                r.fetch_max(rss_kib(&pids), Ordering::Relaxed);
                p.fetch_max(pss_kib(&pids), Ordering::Relaxed);
                if st.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Peak {
            stop,
            rss,
            pss,
            thread: Some(thread),
        }
    }

    /// (peak RSS, peak PSS) in KiB.
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.rss.load(Ordering::Relaxed),
            self.pss.load(Ordering::Relaxed),
        )
    }
}
