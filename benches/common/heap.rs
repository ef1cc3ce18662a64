//! The live heap of a benchmarked process, shared by every benchmark (glibc through gdb).

use std::process::{Command, Stdio};

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
