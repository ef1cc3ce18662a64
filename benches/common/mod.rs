//! Memory figures of a benchmarked stox process, shared by the benchmarks.

mod heap;

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

pub use heap::in_use;

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

/// Start `binary` (the stox under benchmark) against the XEP-0114 server `xmpp`, with the
/// shared config plus `extra` (its own sections; `[presence]` is merged here because TOML
/// allows a section once). Logs go to `stox.log` in its directory (`RUST_LOG` from
/// `$STOX_BENCH_LOG`, default `warn`); stderr to a file for `malloc_stats()`.
pub fn start_stox(binary: &str, xmpp: SocketAddr, secret: &str, extra: &str) -> Gw {
    start_stox_on(binary, xmpp, secret, &["udp"], extra)
}

/// [`start_stox`] with SIP listening on each of `transports` (`udp`, `tcp`), all on the
/// same port ([`Gw::sip`]).
pub fn start_stox_on(
    binary: &str,
    xmpp: SocketAddr,
    secret: &str,
    transports: &[&str],
    extra: &str,
) -> Gw {
    let port = super::support::free_udp_tcp_port();
    let listen = transports
        .iter()
        .map(|t| format!("\"{t}:127.0.0.1:{port}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = super::support::fresh_state_dir();
    let cfg = dir.join("bench.toml");
    let (presence_extra, rest) = match extra.strip_prefix("[presence]\n") {
        Some(p) => (p.to_string(), String::new()),
        None => (String::new(), extra.to_string()),
    };
    std::fs::write(
        &cfg,
        format!(
            "[component]\njid = \"sip.example.com\"\nserver = \"{xmpp}\"\nsecret = \"{secret}\"\n\
             [sip]\nlisten = [{listen}]\n\
             [addresses]\nxmpp_domains = [\"example.com\"]\nsip_domain = \"example.net\"\n\
             [presence]\nstate_dir = \"{}\"\n{presence_extra}{rest}",
            dir.display()
        ),
    )
    .unwrap();
    let stderr = dir.join("stox.stderr");
    let child = Command::new(binary)
        .args(["run", "--config"])
        .arg(&cfg)
        .env(
            "RUST_LOG",
            std::env::var("STOX_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stox.log")).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start stox");
    Gw {
        child,
        sip: SocketAddr::from(([127, 0, 0, 1], port)),
        stderr,
        dir,
    }
}
