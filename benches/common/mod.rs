//! Memory figures of a benchmarked stox process, shared by the benchmarks.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub fn rss_kib(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes the child has allocated and not yet freed (glibc `malloc_stats()` called through
/// gdb; it prints to the child's stderr, which goes to `stderr_file`). RSS alone cannot tell a
/// leak from memory glibc keeps after a peak; this can. `None` without gdb.
pub fn in_use(pid: u32, stderr_file: &std::path::Path) -> Option<u64> {
    let status = Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "call (void)malloc_stats()",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(stderr_file).ok()?;
    let total = text.rfind("Total (incl. mmap):")?;
    text[total..]
        .lines()
        .find(|l| l.trim_start().starts_with("in use bytes"))?
        .split('=')
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

pub fn kib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a (no gdb)".into(), |b| format!("{} KiB", b / 1024))
}

/// A stox process under benchmark: killed and its directory removed on drop.
pub struct Gw {
    /// The process.
    pub child: Child,
    /// Its SIP address.
    pub sip: SocketAddr,
    /// Its stderr file (where `malloc_stats()` prints).
    pub stderr: std::path::PathBuf,
    /// Its state directory.
    pub dir: std::path::PathBuf,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
