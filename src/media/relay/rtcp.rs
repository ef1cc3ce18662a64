//! RTCP toward the phone when the XMPP leg is ICE + DTLS-SRTP ([`super::Mode::IceX`]): str0m
//! terminates the client's RTCP (it makes its own reports toward the client), so nothing of
//! it can be passed on, and the phone would otherwise get no reports at all. The relay makes
//! them itself (RFC 3550 §6.4, Appendix A.3 and A.8): a sender report for the stream it sends
//! the phone (the client's audio) with a reception report for the phone's stream, and an SDES
//! CNAME, every [`INTERVAL`].
//!
//! Pure: the forwarder feeds it the RTP it sends and receives on the SIP leg and the phone's
//! plain RTCP, and asks for a report when the interval is up.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RFC 3550 §6.2: 5 s is the recommended minimum, what a two-party audio call uses.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// The stream the relay sends the phone.
#[derive(Debug, Clone, Copy)]
struct Sent {
    ssrc: u32,
    packets: u32,
    octets: u32,
    /// RTP timestamp of the last packet and when it went.
    ts: u32,
    at: Instant,
}

/// The phone's stream as received (RFC 3550 Appendix A.1).
#[derive(Debug, Clone, Copy)]
struct Received {
    ssrc: u32,
    base_seq: u16,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the last packet, in timestamp units.
    transit: Option<i64>,
    /// Interarrival jitter, in timestamp units, scaled by 16 (Appendix A.8).
    jitter: u32,
}

/// One call's reports toward the phone.
#[derive(Debug)]
pub struct Reporter {
    /// The SSRC the reports come from until the relay sends RTP (then the sent stream's).
    own_ssrc: u32,
    clockrate: u32,
    /// Arrival times are measured from here, in timestamp units.
    epoch: Instant,
    sent: Option<Sent>,
    received: Option<Received>,
    /// The phone's last sender report: the middle 32 bits of its NTP time, and its arrival.
    last_sr: Option<(u32, Instant)>,
    next: Instant,
}

impl Reporter {
    /// Reports for a call whose audio clock runs at `clockrate` (0: 8000); the first after
    /// half an interval (RFC 3550 §6.2 lets the first report come that early).
    pub fn new(now: Instant, own_ssrc: u32, clockrate: u32) -> Reporter {
        Reporter {
            own_ssrc,
            clockrate: if clockrate == 0 { 8000 } else { clockrate },
            epoch: now,
            sent: None,
            received: None,
            last_sr: None,
            next: now + INTERVAL / 2,
        }
    }

    /// The relay sent the phone `rtp` (plain, before any SRTP).
    pub fn sent(&mut self, now: Instant, rtp: &[u8]) {
        let Some((_, ts, ssrc, payload)) = fields(rtp) else {
            return;
        };
        let s = self.sent.get_or_insert(Sent {
            ssrc,
            packets: 0,
            octets: 0,
            ts,
            at: now,
        });
        if s.ssrc != ssrc {
            *s = Sent {
                ssrc,
                packets: 0,
                octets: 0,
                ts,
                at: now,
            };
        }
        s.packets = s.packets.wrapping_add(1);
        s.octets = s.octets.wrapping_add(payload as u32);
        s.ts = ts;
        s.at = now;
    }

    /// The phone sent `rtp` (plain, after any SRTP).
    pub fn received(&mut self, now: Instant, rtp: &[u8]) {
        let Some((seq, ts, ssrc, _)) = fields(rtp) else {
            return;
        };
        let fresh = Received {
            ssrc,
            base_seq: seq,
            max_seq: seq,
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0,
        };
        let r = self.received.get_or_insert(fresh);
        if r.ssrc != ssrc {
            *r = fresh;
        }
        // Appendix A.1, without probation: the phone's stream was negotiated.
        let delta = seq.wrapping_sub(r.max_seq);
        if delta != 0 && delta < 0x8000 {
            if seq < r.max_seq {
                r.cycles = r.cycles.wrapping_add(1 << 16);
            }
            r.max_seq = seq;
        }
        r.received = r.received.wrapping_add(1);
        // Appendix A.8.
        let arrival =
            (now.duration_since(self.epoch).as_secs_f64() * f64::from(self.clockrate)) as i64;
        let transit = arrival - i64::from(ts);
        if let Some(prev) = r.transit {
            let d = (transit - prev)
                .unsigned_abs()
                // Capped so the scaled estimate (which settles at 16 x d) stays far below
                // u32::MAX whatever timestamps a phone sends.
                .min(u64::from(u32::MAX >> 5)) as u32;
            r.jitter = r
                .jitter
                .saturating_add(d)
                .saturating_sub(r.jitter.saturating_add(8) >> 4);
        }
        r.transit = Some(transit);
    }

    /// The phone's plain RTCP: its sender report, for the LSR/DLSR of ours.
    pub fn received_rtcp(&mut self, now: Instant, rtcp: &[u8]) {
        // A compound packet starts with SR or RR; an SR's NTP time is at bytes 8..16.
        if rtcp.len() >= 28 && rtcp[0] >> 6 == 2 && rtcp[1] == 200 {
            let mid = u32::from_be_bytes([rtcp[10], rtcp[11], rtcp[12], rtcp[13]]);
            self.last_sr = Some((mid, now));
        }
    }

    /// When the next report is due.
    pub fn due(&self) -> Instant {
        self.next
    }

    /// The compound report (SR or RR, then SDES CNAME) if one is due at `now`; `wall` is the
    /// wallclock for the SR's NTP timestamp.
    pub fn poll(&mut self, now: Instant, wall: SystemTime) -> Option<Vec<u8>> {
        if now < self.next {
            return None;
        }
        self.next = now + INTERVAL;
        let block = self.report_block(now);
        let mut out = Vec::with_capacity(80);
        let rc = u8::from(block.is_some());
        let ssrc = match self.sent {
            Some(s) => {
                // SR: header, SSRC, NTP, RTP timestamp of that instant, counts.
                out.extend_from_slice(&[0x80 | rc, 200]);
                out.extend_from_slice(&(6 + 6 * u16::from(rc)).to_be_bytes());
                out.extend_from_slice(&s.ssrc.to_be_bytes());
                let ntp = ntp(wall);
                out.extend_from_slice(&ntp.to_be_bytes());
                let since = now.duration_since(s.at).as_secs_f64() * f64::from(self.clockrate);
                out.extend_from_slice(&s.ts.wrapping_add(since as u32).to_be_bytes());
                out.extend_from_slice(&s.packets.to_be_bytes());
                out.extend_from_slice(&s.octets.to_be_bytes());
                s.ssrc
            }
            None => {
                out.extend_from_slice(&[0x80 | rc, 201]);
                out.extend_from_slice(&(1 + 6 * u16::from(rc)).to_be_bytes());
                out.extend_from_slice(&self.own_ssrc.to_be_bytes());
                self.own_ssrc
            }
        };
        if let Some(b) = block {
            out.extend_from_slice(&b);
        }
        // SDES with one chunk: SSRC, CNAME "stox", the END item, padded to a word.
        const CNAME: &[u8] = b"stox";
        let mut chunk = ssrc.to_be_bytes().to_vec();
        chunk.extend_from_slice(&[1, CNAME.len() as u8]);
        chunk.extend_from_slice(CNAME);
        chunk.push(0);
        while chunk.len() % 4 != 0 {
            chunk.push(0);
        }
        out.extend_from_slice(&[0x81, 202]);
        out.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
        out.extend_from_slice(&chunk);
        Some(out)
    }

    /// The reception report of the phone's stream (Appendix A.3), if it sent any.
    fn report_block(&mut self, now: Instant) -> Option<[u8; 24]> {
        let r = self.received.as_mut()?;
        let extended_max = r.cycles.wrapping_add(u32::from(r.max_seq));
        let expected = extended_max
            .wrapping_sub(u32::from(r.base_seq))
            .wrapping_add(1);
        let lost = i64::from(expected) - i64::from(r.received);
        // 24-bit signed, clamped.
        let lost = lost.clamp(-0x80_0000, 0x7f_ffff) as i32 as u32 & 0xff_ffff;
        let expected_interval = expected.wrapping_sub(r.expected_prior);
        let received_interval = r.received.wrapping_sub(r.received_prior);
        r.expected_prior = expected;
        r.received_prior = r.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u32
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((mid, at)) => {
                let d = now.duration_since(at).as_secs_f64() * 65536.0;
                (mid, d as u32)
            }
            None => (0, 0),
        };
        let mut b = [0u8; 24];
        b[0..4].copy_from_slice(&r.ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&((fraction << 24) | lost).to_be_bytes());
        b[8..12].copy_from_slice(&extended_max.to_be_bytes());
        b[12..16].copy_from_slice(&(r.jitter >> 4).to_be_bytes());
        b[16..20].copy_from_slice(&lsr.to_be_bytes());
        b[20..24].copy_from_slice(&dlsr.to_be_bytes());
        Some(b)
    }
}

/// Sequence number, timestamp, SSRC and payload length of an RTP packet.
fn fields(p: &[u8]) -> Option<(u16, u32, u32, usize)> {
    let f = super::ice::parse_rtp(p)?;
    Some((f.seq, f.timestamp, f.ssrc, p.len() - f.offset))
}

/// The 64-bit NTP timestamp of `wall` (seconds since 1900 and a binary fraction).
fn ntp(wall: SystemTime) -> u64 {
    let d = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
#[path = "rtcp_tests.rs"]
mod tests;
