//! Can stox bind its SIP sockets (`sip.listen`) and its MSRP listeners (`chat.msrp_listen`,
//! `chat.msrps_listen`)?
//!
//! Each socket is bound the way `stox run` binds it (a UDP socket, a TCP listener) and
//! released at once. The usual failures each get their fix: a port in use (a running stox
//! or another SIP server), a privileged port without CAP_NET_BIND_SERVICE, an IP that is
//! not one of this machine's.

use super::procfs;
use super::{describe, Check, Level};
use crate::config::Listen;
use std::io;
use std::net::SocketAddr;

/// Bind one `sip.listen` entry.
pub fn check_listen(l: Listen) -> Check {
    let what = describe(l);
    let bound = match l {
        Listen::Udp(a) => std::net::UdpSocket::bind(a).map(drop),
        Listen::Tcp(a) | Listen::Tls(a) => std::net::TcpListener::bind(a).map(drop),
    };
    judge(
        "sip",
        &what,
        l,
        bound,
        "stox (or another SIP server) already runs",
        "sip.listen",
    )
}

/// Bind the MSRP listener (TCP).
pub fn check_msrp(addr: SocketAddr) -> Check {
    check_msrp_key(addr, "tcp", "chat.msrp_listen")
}

/// Bind the MSRP over TLS listener (a TCP socket too: TLS starts after accept).
pub fn check_msrps(addr: SocketAddr) -> Check {
    check_msrp_key(addr, "tls", "chat.msrps_listen")
}

fn check_msrp_key(addr: SocketAddr, transport: &str, key: &str) -> Check {
    let l = Listen::Tcp(addr);
    let bound = std::net::TcpListener::bind(addr).map(drop);
    judge(
        "msrp",
        &format!("{transport} {addr}"),
        l,
        bound,
        "stox (or an MSRP relay) already runs",
        key,
    )
}

fn judge(
    area: &'static str,
    what: &str,
    l: Listen,
    bound: io::Result<()>,
    who: &str,
    key: &str,
) -> Check {
    let addr = match l {
        Listen::Udp(a) | Listen::Tcp(a) | Listen::Tls(a) => a,
    };
    let e = match bound {
        Ok(()) => return Check::new(Level::Ok, area, format!("{what} can be bound")),
        Err(e) => e,
    };
    let msg = match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "{what} is in use{}: {who}? Stop it, or choose another port in {key}",
            procfs::by(&procfs::socket_owners(l))
        ),
        io::ErrorKind::PermissionDenied if addr.port() < 1024 && addr.port() != 0 => format!(
            "{what}: permission denied for port {} (below 1024): run stox with \
             CAP_NET_BIND_SERVICE (the systemd unit grants it; or `setcap \
             cap_net_bind_service=+ep` on the binary), or use a port above 1023",
            addr.port()
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "{what}: {} is not an address of this machine ({e}): fix {key}",
            addr.ip()
        ),
        _ => format!("{what} cannot be bound: {e}"),
    };
    Check::new(Level::Fail, area, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_udp_port_fails_and_a_free_one_passes() {
        let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = holder.local_addr().unwrap();
        let c = check_listen(Listen::Udp(a));
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.message.contains(&a.to_string()), "{c}");
        assert!(c.message.contains("in use"), "{c}");
        drop(holder);
        assert_eq!(check_listen(Listen::Udp(a)).level, Level::Ok);
    }

    #[test]
    fn a_foreign_ip_is_named() {
        // TEST-NET-1 is never assigned to a local interface.
        let c = check_listen(Listen::Tcp("192.0.2.1:5060".parse().unwrap()));
        assert_eq!(c.level, Level::Fail, "{c}");
        assert!(c.message.contains("not an address of this machine"), "{c}");
    }

    #[test]
    fn privileged_port_advice() {
        let c = judge(
            "sip",
            "udp 0.0.0.0:506",
            Listen::Udp("0.0.0.0:506".parse().unwrap()),
            Err(io::Error::from(io::ErrorKind::PermissionDenied)),
            "x",
            "sip.listen",
        );
        assert!(c.message.contains("CAP_NET_BIND_SERVICE"), "{c}");
    }
}
