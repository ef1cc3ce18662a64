//! The relay's UDP ports: `[media] port_min..=port_max`, four per call (an RTP port on an even
//! number and RTCP on the next one, RFC 3550 §11, for each side). Ports are the sockets
//! themselves: dropping a call's [`CallPorts`] closes them, on every path a call ends by.
//! The search starts after the last pair handed out, so a port just released is not reused
//! at once (late packets of the old call would reach the new one).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

/// The four sockets of one call.
#[derive(Debug)]
pub struct CallPorts {
    /// RTP and RTCP toward the XMPP party.
    pub x: (UdpSocket, UdpSocket),
    /// RTP and RTCP toward the SIP party.
    pub s: (UdpSocket, UdpSocket),
}

impl CallPorts {
    /// The RTP port the XMPP party is told.
    pub fn x_port(&self) -> u16 {
        port_of(&self.x.0)
    }

    /// The RTP port the SIP party is told.
    pub fn s_port(&self) -> u16 {
        port_of(&self.s.0)
    }
}

fn port_of(s: &UdpSocket) -> u16 {
    s.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// The configured range and where the next search starts.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    next: Mutex<u16>,
}

impl PortPool {
    /// A pool binding `ip`, ports `min..=max` (`min` even).
    pub fn new(ip: IpAddr, min: u16, max: u16) -> PortPool {
        PortPool {
            ip,
            min,
            max,
            next: Mutex::new(min),
        }
    }

    /// The address the sockets bind and the descriptions carry.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Whether this pool was made for these settings (a reload may change them).
    pub fn is(&self, ip: IpAddr, min: u16, max: u16) -> bool {
        (self.ip, self.min, self.max) == (ip, min, max)
    }

    /// Four free ports, or `None` when the range has no two free pairs left.
    pub fn allocate(&self) -> Option<CallPorts> {
        let x = self.pair()?;
        let s = self.pair()?;
        Some(CallPorts { x, s })
    }

    /// One free (even, even + 1) pair, searching the whole range once.
    fn pair(&self) -> Option<(UdpSocket, UdpSocket)> {
        let pairs = (self.max.saturating_sub(self.min) as usize).div_ceil(2);
        // A poisoned lock only means a panic elsewhere mid-search; the cursor is a plain
        // number and stays usable.
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..pairs {
            let port = *next;
            *next = if port.saturating_add(3) > self.max {
                self.min
            } else {
                port + 2
            };
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(self.ip, port + 1)) else {
                continue;
            };
            if rtp.set_nonblocking(true).is_ok() && rtcp.set_nonblocking(true).is_ok() {
                return Some((rtp, rtcp));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_base() -> u16 {
        // An even base with four free ports above it, found by asking the OS.
        loop {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let p = s.local_addr().unwrap().port() & !1;
            drop(s);
            if p < 60000 && (p..p + 8).all(|q| UdpSocket::bind(("127.0.0.1", q)).is_ok()) {
                return p;
            }
        }
    }

    #[test]
    fn four_ports_even_rtp_and_released_on_drop() {
        let base = free_base();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), base, base + 7);
        let a = pool.allocate().expect("a call fits");
        assert_eq!(a.x_port() % 2, 0);
        assert_eq!(a.s_port() % 2, 0);
        assert_eq!(port_of(&a.x.1), a.x_port() + 1);
        assert_eq!(port_of(&a.s.1), a.s_port() + 1);
        let b = pool.allocate().expect("a second call fits in 8 ports");
        let ports = [a.x_port(), a.s_port(), b.x_port(), b.s_port()];
        let mut sorted = ports;
        sorted.sort();
        assert_eq!(sorted, [base, base + 2, base + 4, base + 6]);
        assert!(pool.allocate().is_none(), "the range is full");
        drop(a);
        let c = pool.allocate().expect("the first call's ports came back");
        assert!(ports[..2].contains(&c.x_port()));
        drop((b, c));
    }

    #[test]
    fn ports_taken_by_others_are_skipped() {
        let base = free_base();
        let squatter = UdpSocket::bind(("127.0.0.1", base + 1)).unwrap();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), base, base + 7);
        let a = pool.allocate().expect("two other pairs are free");
        assert!(a.x_port() != base && a.s_port() != base);
        drop(squatter);
    }
}
