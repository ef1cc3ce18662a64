//! SIPp for the call benchmark: the caller (benches/calls/uac.xml) as one process per step,
//! read back from its statistics file (`-trace_stat`) and its response-time file
//! (`-trace_rtt`: INVITE -> 200 of every call, whole milliseconds, SIPp's clock), and the
//! baseline callee (benches/calls/uas.xml).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/calls");

pub fn available() -> bool {
    Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// What one SIPp caller run reported.
#[derive(Debug, Default)]
pub struct Run {
    pub created: u64,
    pub ok: u64,
    pub failed: u64,
    pub retrans: u64,
    /// INVITE -> 200 per call, ms (SIPp's resolution).
    pub setup_ms: Vec<u32>,
    /// Calls set up per second, from the first 200 to the last (SIPp's timestamps).
    pub setup_rate: f64,
    pub exit_ok: bool,
}

/// A SIPp caller: `calls` calls at `rate`/s to `target`, each held `hold_ms`, at most
/// `limit` at once.
pub struct Caller {
    child: Child,
    dir: PathBuf,
}

impl Caller {
    pub fn start(
        target: SocketAddr,
        calls: u64,
        rate: u64,
        hold_ms: u64,
        limit: u64,
        work: &Path,
    ) -> Caller {
        let dir = work.join(format!("uac-{rate}-{calls}-{hold_ms}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = super::support::free_udp_tcp_port();
        let media = super::support::free_udp_tcp_port();
        let timeout = calls / rate.max(1) + hold_ms / 1000 + 60;
        let child = Command::new("sipp")
            .arg(target.to_string())
            .arg("-sf")
            .arg(format!("{DIR}/uac.xml"))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string()])
            .args(["-m", &calls.to_string(), "-r", &rate.to_string()])
            .args(["-d", &hold_ms.to_string(), "-l", &limit.to_string()])
            .args([
                "-nostdin",
                "-timeout",
                &format!("{timeout}s"),
                "-timeout_error",
            ])
            .args(["-trace_stat", "-stf", "stat.csv", "-fd", "1"])
            .args(["-trace_rtt", "-rtt_freq", "1"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("sipp on PATH");
        Caller { child, dir }
    }

    /// Wait for SIPp to finish and read its files.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().expect("sipp");
        let mut run = Run {
            exit_ok: status.success(),
            ..Run::default()
        };
        if let Ok(stat) = std::fs::read_to_string(self.dir.join("stat.csv")) {
            let mut lines = stat.lines().filter(|l| !l.trim().is_empty());
            let head: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
            let last: Vec<&str> = lines.next_back().unwrap_or("").split(';').collect();
            let col = |name: &str| -> u64 {
                head.iter()
                    .position(|h| *h == name)
                    .and_then(|i| last.get(i)?.trim().parse().ok())
                    .unwrap_or(0)
            };
            run.created = col("TotalCallCreated");
            run.ok = col("SuccessfulCall(C)");
            run.failed = col("FailedCall(C)");
            run.retrans = col("Retransmissions(C)");
        }
        let mut at = Vec::new();
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.ends_with("_rtt.csv") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for l in text.lines().skip(1) {
                let mut f = l.split(';');
                let (Some(t), Some(ms)) = (f.next(), f.next()) else {
                    continue;
                };
                if let (Ok(t), Ok(ms)) = (t.parse::<f64>(), ms.parse::<f64>()) {
                    at.push(t);
                    run.setup_ms.push(ms as u32);
                }
            }
        }
        at.sort_by(|a, b| a.total_cmp(b));
        if at.len() > 1 {
            let span = (at[at.len() - 1] - at[0]) / 1000.0;
            run.setup_rate = (at.len() - 1) as f64 / span.max(1e-3);
        }
        run.setup_ms.sort_unstable();
        let _ = std::fs::remove_dir_all(&self.dir);
        run
    }
}

/// The baseline callee: SIPp answering every call itself. Killed on drop.
pub struct Callee {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Callee {
    pub fn start(work: &Path) -> Callee {
        let port = super::support::free_udp_tcp_port();
        let media = super::support::free_udp_tcp_port();
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(format!("{DIR}/uas.xml"))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media.to_string(), "-nostdin"])
            .current_dir(work)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp on PATH");
        // SIPp binds within a few ms; the first INVITE is retransmitted if not.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Callee {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Callee {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
