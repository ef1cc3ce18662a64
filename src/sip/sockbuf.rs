//! Receive buffers of the UDP listeners ezk binds.
//!
//! A UDP socket drops whatever arrives while its buffer is full, and the kernel default
//! (about 200 KB, some 150 datagrams of SIP) fills within milliseconds at a few thousand
//! requests a second whenever the runtime is busy elsewhere. Every drop costs the sender a
//! 500 ms retransmission (BENCHMARKS.md, "IM": all 151 retransmissions of a 9,000/s run were
//! drops at stox's socket). ezk binds its sockets itself and gives no access to them, so the
//! socket is found among the process's descriptors by its bound address.

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use tracing::{info, warn};

/// Ask for `bytes` of receive buffer on the UDP socket bound to `bound`; returns what the
/// kernel granted (Linux reports twice the usable size), or `None` if no such socket exists.
pub fn grow_udp_receive_buffer(bound: SocketAddr, bytes: usize) -> Option<usize> {
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    for entry in fds.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor comes from this process's own table and is only used for
        // the getsockopt/setsockopt calls below, during startup, before any task could close
        // it; a descriptor that is not a socket just fails those calls.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let is_udp = sock.r#type().ok() == Some(socket2::Type::DGRAM);
        let here = sock.local_addr().ok().and_then(|a| a.as_socket());
        if !is_udp || here != Some(bound) {
            continue;
        }
        let _ = sock.set_recv_buffer_size(bytes);
        return sock.recv_buffer_size().ok();
    }
    None
}

/// Apply the configured size to the listener at `bound`, saying what it got.
pub fn apply(bound: SocketAddr, bytes: usize) {
    if bytes == 0 {
        return;
    }
    match grow_udp_receive_buffer(bound, bytes) {
        // Linux reports twice what it granted (the rest is its bookkeeping), so the grant is
        // compared at half: a cap between the request and twice it must still warn.
        Some(got) if got / 2 >= bytes => info!(%bound, bytes = got / 2, "UDP receive buffer"),
        Some(got) => warn!(
            %bound,
            asked = bytes,
            got = got / 2,
            "UDP receive buffer capped by net.core.rmem_max; raise that sysctl to avoid drops under bursts"
        ),
        None => warn!(%bound, "UDP listener not found to size its receive buffer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_bound_to_the_address_gets_the_buffer() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let bound = sock.local_addr().unwrap();
        let before = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let ask = (max / 2).max(before);
        let got = grow_udp_receive_buffer(bound, ask).expect("socket found");
        assert_eq!(
            got,
            socket2::SockRef::from(&sock).recv_buffer_size().unwrap()
        );
        assert!(got >= ask, "asked {ask}, got {got} (rmem_max {max})");
    }

    #[test]
    fn no_socket_at_an_unbound_address() {
        let free = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // That socket is closed again: nothing is bound there now.
        assert_eq!(grow_udp_receive_buffer(free, 1 << 20), None);
    }
}
