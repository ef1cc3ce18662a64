//! The task that moves one relayed call's packets: four sockets (RTP and RTCP toward each
//! side), a [`Latch`] per socket, and the no-media timer. Between plain legs packets are
//! forwarded as they are: RTP, RTCP and SRTP alike (the relay never looks inside beyond
//! telling RTCP from RTP on a muxed port, RFC 5761 §4). With an ICE + DTLS-SRTP leg toward
//! XMPP ([`IceLeg`]), RTP is re-sent between it and the SIP leg, through the SIP leg's SDES
//! contexts ([`super::srtp`]) when the phone speaks SDES-SRTP.
//!
//! The [`Relay`] handle is owned by the call's task; dropping it stops the task and closes
//! the sockets, which returns the ports to the range.

use super::ice::{IceLeg, Out};
use super::latch::Latch;
use super::ports::CallPorts;
use super::rtcp::Reporter;
use super::srtp::{Srtcp, Srtp, SrtpError};
use super::{LocalIce, MediaOut, Side, SipSrtp};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Packet counters of one call (read by tests and the benchmark).
#[derive(Debug, Default)]
pub struct Stats {
    /// Forwarded from the XMPP party to the SIP party.
    pub x_to_s: AtomicU64,
    /// Forwarded from the SIP party to the XMPP party.
    pub s_to_x: AtomicU64,
    /// Dropped: from an address outside the call's negotiation, or with nowhere to go yet.
    pub dropped: AtomicU64,
}

/// One relayed call.
#[derive(Debug)]
pub struct Relay {
    updates: mpsc::UnboundedSender<Update>,
    timed_out: Option<oneshot::Receiver<()>>,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

/// Relays alive in the process (the `media_relays` gauge).
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many calls the relay carries now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Relay {
    /// Start relaying on `ports`. `x_signalling` / `s_signalling` are the IPs each party's
    /// signalling came from, when known (they may latch from there, for NAT). `timeout`:
    /// end the call after this long without a packet on either leg (`None`: never).
    /// `local_ice`: the relay's ICE credentials toward the XMPP party, for a call the machine
    /// anchors in [`super::Mode::IceX`].
    pub fn spawn(
        ports: CallPorts,
        x_signalling: Option<IpAddr>,
        s_signalling: Option<IpAddr>,
        timeout: Option<Duration>,
        local_ice: Option<LocalIce>,
    ) -> std::io::Result<Relay> {
        let x_local = ports.x.0.local_addr()?;
        let sock = |s: std::net::UdpSocket| UdpSocket::from_std(s);
        let legs = Legs {
            x_rtp: sock(ports.x.0)?,
            x_rtcp: sock(ports.x.1)?,
            s_rtp: sock(ports.s.0)?,
            s_rtcp: sock(ports.s.1)?,
        };
        let (updates, rx) = mpsc::unbounded_channel();
        let (tx_timeout, timed_out) = oneshot::channel();
        let stats = Arc::new(Stats::default());
        let state = State {
            x: (Latch::new(x_signalling), Latch::new(x_signalling)),
            s: (Latch::new(s_signalling), Latch::new(s_signalling)),
            both_ways: (false, false),
            last: Instant::now(),
            stats: stats.clone(),
            ice: None,
            local_ice,
            x_local,
            srtp: None,
            pending: Vec::new(),
            reports: None,
        };
        let task = tokio::spawn(run(legs, state, rx, timeout, tx_timeout));
        LIVE.fetch_add(1, Ordering::Relaxed);
        Ok(Relay {
            updates,
            timed_out: Some(timed_out),
            stats,
            task,
        })
    }

    /// Tell the relay what the call machine decided.
    pub fn update(&self, m: MediaOut) {
        // The task only ends when this handle drops or the media timed out; an update
        // after a timeout has nothing left to change.
        let _ = self.updates.send(Update::Media(m));
    }

    /// `side`'s signalling turned out to come from `ip` (the SIP hop an INVITE went to):
    /// its media may come from there too.
    pub fn allow(&self, side: Side, ip: IpAddr) {
        let _ = self.updates.send(Update::Signalling(side, ip));
    }

    /// Resolves once the call's media has stopped for the timeout; never otherwise.
    pub async fn timed_out(&mut self) {
        match self.timed_out.as_mut() {
            Some(rx) => {
                if rx.await.is_ok() {
                    self.timed_out = None;
                    return;
                }
                // The task ended without a timeout (aborted): never resolve again.
                self.timed_out = None;
                std::future::pending().await
            }
            None => std::future::pending().await,
        }
    }

    /// The call's packet counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// What the handle tells the task.
// One per description or INVITE: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Update {
    Media(MediaOut),
    Signalling(Side, IpAddr),
}

struct Legs {
    x_rtp: UdpSocket,
    x_rtcp: UdpSocket,
    s_rtp: UdpSocket,
    s_rtcp: UdpSocket,
}

struct State {
    /// (RTP, RTCP) latches of each side.
    x: (Latch, Latch),
    s: (Latch, Latch),
    /// Whether each side's last description has media both ways.
    both_ways: (bool, bool),
    /// The last packet forwarded, or the moment both sides last resumed media.
    last: Instant,
    stats: Arc<Stats>,
    /// The ICE + DTLS-SRTP leg toward the XMPP party, once its description has come.
    ice: Option<IceLeg>,
    local_ice: Option<LocalIce>,
    x_local: SocketAddr,
    /// The SIP party's SDES-SRTP, terminated here when the XMPP leg is ICE + DTLS-SRTP.
    srtp: Option<SrtpLeg>,
    /// What the ICE leg produced while an update was applied, to send next.
    pending: Vec<Out>,
    /// The relay's own RTCP toward the phone while the ICE leg terminates the client's.
    reports: Option<Reporter>,
}

/// The two SRTP contexts of the SIP leg and the keys they were made from (a re-INVITE that
/// repeats the keys keeps the contexts, with their rollover counters and replay windows).
struct SrtpLeg {
    keys: SipSrtp,
    /// Decrypts what the phone sends.
    rx: Srtp,
    /// Encrypts what the relay sends the phone.
    tx: Srtp,
    /// Encrypts the relay's reports to the phone.
    rtcp_tx: Srtcp,
    /// Decrypts the phone's reports.
    rtcp_rx: Srtcp,
}

impl SrtpLeg {
    fn update(leg: Option<SrtpLeg>, keys: Option<&SipSrtp>) -> Option<SrtpLeg> {
        let keys = keys?;
        let Some(mut leg) = leg else {
            return Some(SrtpLeg {
                rx: Srtp::new(&keys.theirs.key, keys.theirs.suite, keys.theirs.mki_len),
                tx: Srtp::new(&keys.ours, keys.theirs.suite, 0),
                rtcp_tx: Srtcp::new(&keys.ours),
                rtcp_rx: Srtcp::receiver(&keys.theirs.key, keys.theirs.mki_len),
                keys: keys.clone(),
            });
        };
        let (old, new) = (&leg.keys.theirs, &keys.theirs);
        if (&old.key, old.suite, old.mki_len) != (&new.key, new.suite, new.mki_len) {
            leg.rx = Srtp::new(&new.key, new.suite, new.mki_len);
            leg.rtcp_rx = Srtcp::receiver(&new.key, new.mki_len);
        }
        if (&leg.keys.ours, old.suite) != (&keys.ours, new.suite) {
            leg.tx = Srtp::new(&keys.ours, new.suite, 0);
        }
        if leg.keys.ours != keys.ours {
            leg.rtcp_tx = Srtcp::new(&keys.ours);
        }
        leg.keys = keys.clone();
        Some(leg)
    }
}

/// Which of the four sockets a packet came in on.
#[derive(Clone, Copy)]
enum Port {
    XRtp,
    XRtcp,
    SRtp,
    SRtcp,
}

impl State {
    fn apply(&mut self, u: Update) {
        let p = match u {
            Update::Media(MediaOut::Peer(p)) => p,
            Update::Media(MediaOut::Direct) => return,
            Update::Signalling(side, ip) => {
                let l = match side {
                    Side::X => &mut self.x,
                    Side::S => &mut self.s,
                };
                l.0.set_signalling(ip);
                l.1.set_signalling(ip);
                return;
            }
        };
        if let (Side::X, Some(remote)) = (p.side, &p.ice) {
            let now = Instant::now().into_std();
            match (&mut self.ice, &self.local_ice) {
                (Some(leg), _) => leg.add_candidates(remote),
                (None, Some(me)) => {
                    self.ice = IceLeg::new(now, self.x_local, me, remote, &p.payloads);
                    if self.ice.is_none() {
                        tracing::debug!("media relay: no ICE leg (no identity or no known codec)");
                    }
                    self.reports = Some(Reporter::new(
                        Instant::now().into_std(),
                        rand::random(),
                        super::audio_clockrate(&p.payloads),
                    ));
                }
                (None, None) => {}
            }
            // Arm the leg's timer now: its own connectivity checks (and, as the controlling
            // agent, its nomination) must not wait for the client's first datagram, which
            // an ICE-lite client never sends.
            if let Some(leg) = self.ice.as_mut() {
                leg.timeout(now, &mut self.pending);
            }
        }
        if p.side == Side::S {
            self.srtp = SrtpLeg::update(self.srtp.take(), p.srtp.as_ref());
        }
        let (latches, both) = match p.side {
            Side::X => (&mut self.x, &mut self.both_ways.0),
            Side::S => (&mut self.s, &mut self.both_ways.1),
        };
        latches.0.negotiate(p.rtp);
        latches.1.negotiate(p.rtcp);
        *both = p.both_ways;
        // Leaving hold starts the no-media timer afresh: the silence of the hold is not
        // the media stopping.
        if self.both_ways != (true, true) || !p.both_ways {
            return;
        }
        self.last = Instant::now();
    }

    /// Where a packet from `src` on `port` goes: the socket to send it from and the address.
    fn route(&mut self, port: Port, src: SocketAddr, rtcp: bool) -> Option<(Port, SocketAddr)> {
        let (from, to, out_rtp, out_rtcp) = match port {
            Port::XRtp | Port::XRtcp => (&mut self.x, &self.s, Port::SRtp, Port::SRtcp),
            Port::SRtp | Port::SRtcp => (&mut self.s, &self.x, Port::XRtp, Port::XRtcp),
        };
        let on_rtcp_port = matches!(port, Port::XRtcp | Port::SRtcp);
        let ok = if on_rtcp_port {
            from.1.accept(src)
        } else {
            from.0.accept(src)
        };
        if !ok {
            return None;
        }
        // RTCP arriving on the RTP port (rtcp-mux) still goes to the other side's RTCP
        // destination, which is its RTP address when it muxes too.
        if on_rtcp_port || rtcp {
            to.1.destination().map(|d| (out_rtcp, d))
        } else {
            to.0.destination().map(|d| (out_rtp, d))
        }
    }
}

impl State {
    /// A packet while the call has its ICE leg: the XMPP party's datagrams go into the leg,
    /// the SIP party's RTP out through it. `false`: not the leg's (the plain path decides).
    fn through_ice(&mut self, legs: &Legs, port: Port, src: SocketAddr, pkt: &[u8]) -> bool {
        let now = std::time::Instant::now();
        let mut outs = Vec::new();
        match port {
            Port::XRtp => {
                if let Some(leg) = self.ice.as_mut() {
                    leg.receive(now, src, pkt, &mut outs);
                }
            }
            // rtcp-mux: nothing comes here from an ICE client.
            Port::XRtcp => {}
            Port::SRtp => {
                let pkt = match self.take_from_phone(false, src, pkt) {
                    None => return false,
                    Some(None) => return true,
                    Some(Some(p)) => p,
                };
                let pkt = &pkt[..];
                if let Some(r) = self.reports.as_mut() {
                    r.received(now, pkt);
                }
                let sent = self
                    .ice
                    .as_mut()
                    .is_some_and(|leg| leg.send_rtp(now, pkt, &mut outs));
                let c = if sent {
                    &self.stats.s_to_x
                } else {
                    &self.stats.dropped
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
            // The leg makes its own RTCP toward the client (str0m terminates SRTCP); the
            // phone's reports keep the call alive and time our own reports' LSR/DLSR, but
            // go no further.
            Port::SRtcp => {
                let pkt = match self.take_from_phone(true, src, pkt) {
                    None => return false,
                    Some(None) => return true,
                    Some(Some(p)) => p,
                };
                if let Some(r) = self.reports.as_mut() {
                    r.received_rtcp(now, &pkt);
                }
            }
        }
        self.carry_out(legs, outs);
        true
    }

    /// A datagram from the phone on its RTP or RTCP port while the call has an ICE leg.
    /// `None`: its source may not send here (the plain path decides). `Some(None)`: dropped,
    /// because the phone speaks SDES and it is not authentic: a forged, replayed or garbled
    /// packet neither moves the latch nor keeps the call alive (a spoofed source on the
    /// phone's IP could otherwise steal its media). `Some(Some(p))`: latched, the call kept
    /// alive, and `p` the packet decrypted or as it came.
    fn take_from_phone<'p>(
        &mut self,
        rtcp: bool,
        src: SocketAddr,
        pkt: &'p [u8],
    ) -> Option<Option<std::borrow::Cow<'p, [u8]>>> {
        let latch = if rtcp { &mut self.s.1 } else { &mut self.s.0 };
        if !latch.allowed(src.ip()) {
            return None;
        }
        let plain = match self.srtp.as_mut().map(|s| match rtcp {
            false => s.rx.unprotect(pkt),
            true => s.rtcp_rx.unprotect(pkt),
        }) {
            None => std::borrow::Cow::Borrowed(pkt),
            Some(Ok(p)) => std::borrow::Cow::Owned(p),
            Some(Err(e)) => {
                note_srtp_drop(e);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return Some(None);
            }
        };
        latch.accept(src);
        self.last = Instant::now();
        Some(Some(plain))
    }

    /// Send what the ICE leg produced.
    fn carry_out(&mut self, legs: &Legs, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Transmit(dst, bytes) => {
                    let _ = legs.x_rtp.try_send_to(&bytes, dst);
                }
                Out::Rtp(bytes) => {
                    self.last = Instant::now();
                    if let Some(r) = self.reports.as_mut() {
                        r.sent(std::time::Instant::now(), &bytes);
                    }
                    let bytes = match self.srtp.as_mut().map(|s| s.tx.protect(&bytes)) {
                        None => bytes,
                        Some(Ok(b)) => b,
                        Some(Err(e)) => {
                            note_srtp_drop(e);
                            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    let sent = self
                        .s
                        .0
                        .destination()
                        .is_some_and(|d| legs.s_rtp.try_send_to(&bytes, d).is_ok());
                    let c = if sent {
                        &self.stats.x_to_s
                    } else {
                        &self.stats.dropped
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

fn note_srtp_drop(e: SrtpError) {
    tracing::trace!(?e, "media relay: SRTP packet dropped");
}

impl State {
    /// The relay's report to the phone, if one is due: to its RTCP address, as SRTCP when
    /// it speaks SDES.
    fn report(&mut self, legs: &Legs) {
        let now = std::time::Instant::now();
        let Some(pkt) = self
            .reports
            .as_mut()
            .and_then(|r| r.poll(now, std::time::SystemTime::now()))
        else {
            return;
        };
        let pkt = match self.srtp.as_mut().map(|s| s.rtcp_tx.protect(&pkt)) {
            None => pkt,
            Some(Ok(p)) => p,
            Some(Err(e)) => return note_srtp_drop(e),
        };
        if let Some(d) = self.s.1.destination() {
            let _ = legs.s_rtcp.try_send_to(&pkt, d);
        }
    }
}

async fn sleep_until_std(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// RFC 5761 §4: on a muxed port, RTCP packet types 192..=223 are told from RTP payload types
/// by the second byte.
fn is_rtcp(p: &[u8]) -> bool {
    p.len() >= 2 && (192..=223).contains(&p[1])
}

async fn run(
    legs: Legs,
    mut st: State,
    mut updates: mpsc::UnboundedReceiver<Update>,
    timeout: Option<Duration>,
    timed_out: oneshot::Sender<()>,
) {
    // One buffer for every packet: RTP over UDP fits in 1500 bytes; a larger datagram is
    // truncated by the kernel and dropped below.
    let mut buf = vec![0u8; 2048];
    let check = timeout.map(|t| t.min(Duration::from_secs(1)));
    let mut tick = check.map(tokio::time::interval);
    loop {
        // Updates first: a packet that arrives with the description that routes it must
        // not be dropped as having nowhere to go.
        let port = tokio::select! {
            biased;
            u = updates.recv() => {
                match u {
                    Some(m) => {
                        st.apply(m);
                        let outs = std::mem::take(&mut st.pending);
                        st.carry_out(&legs, outs);
                    }
                    // The handle is gone: the call is over.
                    None => return,
                }
                continue;
            }
            r = legs.x_rtp.readable() => { r.ok(); Port::XRtp }
            r = legs.x_rtcp.readable() => { r.ok(); Port::XRtcp }
            r = legs.s_rtp.readable() => { r.ok(); Port::SRtp }
            r = legs.s_rtcp.readable() => { r.ok(); Port::SRtcp }
            _ = sleep_until_std(st.ice.as_ref().and_then(IceLeg::next_timeout)) => {
                let mut outs = Vec::new();
                if let Some(leg) = st.ice.as_mut() {
                    leg.timeout(std::time::Instant::now(), &mut outs);
                }
                st.carry_out(&legs, outs);
                continue;
            }
            _ = sleep_until_std(st.reports.as_ref().map(Reporter::due)) => {
                st.report(&legs);
                continue;
            }
            _ = tick_or_never(tick.as_mut()) => {
                let quiet = st.both_ways == (true, true)
                    && timeout.is_some_and(|t| st.last.elapsed() >= t);
                if quiet {
                    let _ = timed_out.send(());
                    return;
                }
                continue;
            }
        };
        // Drain what is queued on that socket, a bounded number at a time so the other
        // three are not starved.
        for _ in 0..BATCH {
            let res = legs.socket(port).try_recv_from(&mut buf);
            let (n, src) = match res {
                Ok(v) => v,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ICMP port unreachable from an earlier send shows up as an error here on
                // Linux; it says nothing about this socket, so carry on.
                Err(_) => continue,
            };
            if n == 0 || n >= buf.len() {
                st.stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let pkt = &buf[..n];
            if st.ice.is_some() && st.through_ice(&legs, port, src, pkt) {
                continue;
            }
            let Some((out, dst)) = st.route(port, src, is_rtcp(pkt)) else {
                st.stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            st.last = Instant::now();
            let counter = match out {
                Port::SRtp | Port::SRtcp => &st.stats.x_to_s,
                Port::XRtp | Port::XRtcp => &st.stats.s_to_x,
            };
            // A full socket buffer drops the packet, as the network would.
            if legs.socket(out).try_send_to(pkt, dst).is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                st.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Packets read from one socket before the task looks at the others again.
const BATCH: usize = 32;

impl Legs {
    fn socket(&self, p: Port) -> &UdpSocket {
        match p {
            Port::XRtp => &self.x_rtp,
            Port::XRtcp => &self.x_rtcp,
            Port::SRtp => &self.s_rtp,
            Port::SRtcp => &self.s_rtcp,
        }
    }
}

async fn tick_or_never(t: Option<&mut tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
