//! Who holds a port or a file, from Linux's /proc, so doctor can say "in use by process 812
//! (stox)" instead of leaving the operator to run `ss -p` / `fuser`.
//!
//! Best effort: other users' processes are invisible without privileges, and other systems
//! have no /proc; then the lists are empty and the messages simply name no process.

use crate::config::Listen;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A process found holding something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub name: String,
}

impl fmt::Display for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {} ({})", self.pid, self.name)
    }
}

/// ", in use by process 812 (stox)" or "" when nobody could be found.
pub fn by(procs: &[Proc]) -> String {
    if procs.is_empty() {
        return String::new();
    }
    let list: Vec<String> = procs.iter().map(Proc::to_string).collect();
    format!(" by {}", list.join(", "))
}

/// Processes with a socket that keeps `l` from being bound: same port and transport, and the
/// same IP or a wildcard on either side.
pub fn socket_owners(l: Listen) -> Vec<Proc> {
    let (files, want, listen_only) = match l {
        Listen::Udp(a) => (["/proc/net/udp", "/proc/net/udp6"], a, false),
        Listen::Tcp(a) | Listen::Tls(a) => (["/proc/net/tcp", "/proc/net/tcp6"], a, true),
    };
    let mut inodes = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if cols.len() < 10 || (listen_only && cols[3] != "0A") {
                continue;
            }
            let Some((ip, port)) = parse_addr(cols[1]) else {
                continue;
            };
            let ip_clash = ip == want.ip() || ip.is_unspecified() || want.ip().is_unspecified();
            if port == want.port() && ip_clash && cols[9] != "0" {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    holders(|target| inodes.iter().any(|i| i == target))
}

/// Processes with `path` open.
pub fn file_holders(path: &Path) -> Vec<Proc> {
    let Ok(path) = path.canonicalize() else {
        return Vec::new();
    };
    let path = path.to_string_lossy().into_owned();
    holders(|target| target == path)
}

/// `0100007F:13CE` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host byte order.
fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = ip
        .as_bytes()
        .chunks(8)
        .map(|w| {
            let w = std::str::from_utf8(w).ok()?;
            u32::from_str_radix(w, 16).ok().map(u32::to_ne_bytes)
        })
        .collect();
    let words = words?;
    let ip = match words.as_slice() {
        [a] => IpAddr::V4(Ipv4Addr::from(*a)),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(*w);
            }
            let v6 = Ipv6Addr::from(bytes);
            // A v4-mapped listener (::ffff:127.0.0.1) clashes like its IPv4 address.
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Every other process with an open descriptor whose link target matches.
fn holders(matches: impl Fn(&str) -> bool) -> Vec<Proc> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let hit = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .map(|t| matches(&t.to_string_lossy()))
                .unwrap_or(false)
        });
        if hit {
            let name = std::fs::read_to_string(p.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            out.push(Proc { pid, name });
        }
    }
    out.sort_by_key(|p| p.pid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses() {
        // What Linux prints on a little-endian machine; to_ne_bytes makes it portable.
        let v4 = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            parse_addr(&format!("{v4:08X}:13CE")),
            Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 5070))
        );
        assert_eq!(
            parse_addr("00000000000000000000000000000000:13C4"),
            Some((IpAddr::V6(Ipv6Addr::UNSPECIFIED), 5060))
        );
        let mapped: String = [
            [0, 0, 0, 0],
            [0, 0, 0, 0],
            [0, 0, 0xff, 0xff],
            [127, 0, 0, 1],
        ]
        .iter()
        .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
        .collect();
        assert_eq!(
            parse_addr(&format!("{mapped}:0050")),
            Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 80))
        );
        assert_eq!(parse_addr("zz:1"), None);
    }
}
