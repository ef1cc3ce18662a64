//! `[media] stun_server`: a task that asks the STUN server where the relay's address is seen
//! from (RFC 8489 §6, with the pure codec in `crate::media::relay::stun`), at start and every
//! few minutes after, so the address written into SDP and Jingle follows a public IP that
//! changes. The router reads the last answer when a relayed call starts; until the first one
//! (or when the server never answers) the relay's own address is written, as without a STUN
//! server.

use crate::media::relay::stun::{self, Reply};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How often a known address is asked again: a cloud IP changes with a restart or a move,
/// not by the minute, and a Binding every five minutes costs nothing.
const REFRESH: Duration = Duration::from_secs(300);
/// After a failed exchange: soon, since calls meanwhile announce the private address.
const RETRY: Duration = Duration::from_secs(30);
/// RFC 8489 §6.2.1: RTO 500 ms, doubled each time. Four sends (0, 0.5, 1.5, 3.5 s) and a last
/// wait of 4 s: a server that is up answers the first; 7.5 s bounds a dead one.
const RTO: Duration = Duration::from_millis(500);
const SENDS: u32 = 4;

/// The discovery task of one (server, relay address); dropping it stops the task.
pub struct StunWatch {
    server: String,
    bind: IpAddr,
    found: Arc<Mutex<Option<IpAddr>>>,
    task: JoinHandle<()>,
}

impl Drop for StunWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StunWatch {
    /// Start asking `server` (`host[:port]`, port 3478 by default) from a socket on `bind`.
    pub fn start(server: &str, bind: IpAddr) -> StunWatch {
        let found = Arc::new(Mutex::new(None));
        let task = tokio::spawn(watch(server.to_owned(), bind, found.clone()));
        StunWatch {
            server: server.to_owned(),
            bind,
            found,
            task,
        }
    }

    /// Whether this task serves these settings (a reload may change them).
    pub fn is(&self, server: &str, bind: IpAddr) -> bool {
        self.server == server && self.bind == bind
    }

    /// The public address the server reported last, if it has answered yet.
    pub fn address(&self) -> Option<IpAddr> {
        *self.found.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn watch(server: String, bind: IpAddr, found: Arc<Mutex<Option<IpAddr>>>) {
    loop {
        let wait = match discover(&server, bind).await {
            Ok(ip) => {
                let old = found.lock().unwrap_or_else(|p| p.into_inner()).replace(ip);
                if old != Some(ip) {
                    info!(%ip, %bind, stun_server = %server, "media relay: public address from the STUN server");
                }
                REFRESH
            }
            Err(e) => {
                let known = *found.lock().unwrap_or_else(|p| p.into_inner());
                warn!(error = %e, stun_server = %server, ?known,
                      "media relay: no answer from the STUN server; calls announce the last address it gave, or the relay's own");
                RETRY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One Binding exchange: the address `server` saw our request come from.
pub async fn discover(server: &str, bind: IpAddr) -> Result<IpAddr, String> {
    let (host, port) = stun::target(server)?;
    let want_v4 = bind.is_ipv4();
    let to: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .find(|a| a.is_ipv4() == want_v4)
        .ok_or_else(|| format!("{host} has no address of the relay address's family"))?;
    let sock = UdpSocket::bind(SocketAddr::new(bind, 0))
        .await
        .map_err(|e| format!("cannot bind {bind}: {e}"))?;
    // Connected: datagrams from anyone but the server never reach us.
    sock.connect(to)
        .await
        .map_err(|e| format!("cannot reach {to}: {e}"))?;
    let tid: [u8; 12] = rand::random();
    let request = stun::binding_request(&tid);
    let mut buf = [0u8; 1500];
    let mut rto = RTO;
    for n in 1..=SENDS {
        sock.send(&request)
            .await
            .map_err(|e| format!("cannot send to {to}: {e}"))?;
        // The last send waits as long as the one before it took (§6.2.1's Rm, shortened).
        let wait = if n == SENDS { rto * 2 } else { rto };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await;
            let Ok(got) = got else { break };
            // ICMP port unreachable surfaces as an error on a connected socket: the server
            // is not there. Wait out the interval all the same and send again; it may be
            // restarting.
            let Ok(n) = got else {
                tokio::time::sleep_until(deadline).await;
                break;
            };
            match stun::parse_response(&buf[..n], &tid) {
                Some(Reply::Mapped(a)) => return Ok(a.ip()),
                Some(Reply::Error(code, reason)) => {
                    return Err(format!("{to} answered {code} {reason}"));
                }
                None => continue,
            }
        }
        rto *= 2;
    }
    Err(format!("{to} did not answer {SENDS} Binding requests"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN server on loopback that answers with a fixed address after ignoring the first
    /// request: the exchange retransmits and takes the answer.
    #[tokio::test]
    async fn discover_retransmits_and_reads_the_answer() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let _ = server.recv_from(&mut buf).unwrap(); // the first is "lost"
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(n, 20);
            let mut tid = [0u8; 12];
            tid.copy_from_slice(&buf[8..20]);
            // A stray datagram first (another transaction), then the answer.
            let mut r = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
            let mut other = tid;
            other[0] ^= 0xff;
            let mut stray = r.clone();
            stray.extend_from_slice(&other);
            stray.extend_from_slice(&[0, 1, 0, 8, 0, 1, 0, 1, 10, 0, 0, 1]);
            server.send_to(&stray, from).unwrap();
            r.extend_from_slice(&tid);
            // XOR-MAPPED-ADDRESS 203.0.113.9:4000.
            let ip = [203u8, 0, 113, 9];
            let x: Vec<u8> = ip
                .iter()
                .zip([0x21u8, 0x12, 0xa4, 0x42])
                .map(|(a, b)| a ^ b)
                .collect();
            let port = (4000u16 ^ 0x2112).to_be_bytes();
            r.extend_from_slice(&[
                0, 0x20, 0, 8, 0, 1, port[0], port[1], x[0], x[1], x[2], x[3],
            ]);
            server.send_to(&r, from).unwrap();
        });
        let got = discover(&addr.to_string(), "127.0.0.1".parse().unwrap()).await;
        t.join().unwrap();
        assert_eq!(got, Ok("203.0.113.9".parse().unwrap()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_an_error_after_the_sends_run_out() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let e = discover(&addr, "127.0.0.1".parse().unwrap())
            .await
            .unwrap_err();
        assert!(e.contains("did not answer 4"), "{e}");
        drop(server);
    }
}
