//! The relay's leg toward an XMPP client that insists on ICE + DTLS-SRTP + rtcp-mux (XEP-0176,
//! XEP-0320; Conversations, Dino, aiortc): str0m's sans-IO agent in RTP mode, driven without SDP
//! from the values a Jingle ICE-UDP transport carries (ARCHITECTURE.md, "Media relay").
//!
//! [`IceLeg`] takes datagrams from the client and plain RTP from the SIP side and returns
//! datagrams to send to the client and plain RTP for the SIP side; the forwarding task does
//! the I/O. RTP is re-sent, never transcoded: payload type, sequence number, timestamp,
//! marker and payload go through, under the leg's own SSRC toward the client. RTCP toward the
//! client is str0m's own (it terminates SRTCP); the phone gets the relay's (`rtcp`).

use super::{LocalIce, PayloadType, RemoteIce};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;
use str0m::config::{DtlsCert, Fingerprint};
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, IceCreds, Input, Output, Rtc};

/// The process's DTLS certificate and its fingerprint. One for every call: a certificate per
/// call costs about 20 ms of CPU on the router task and buys nothing, since the fingerprint
/// travels in the signalling of each call anyway (RFC 8842 §5 lets an endpoint reuse one).
pub struct Identity {
    cert: DtlsCert,
    /// `sha-256` and the upper-case hex, as XEP-0320 writes them.
    pub fingerprint: (String, String),
}

/// The identity, made on first use; `None` if the crypto provider cannot make one.
pub fn identity() -> Option<&'static Identity> {
    static ID: OnceLock<Option<Identity>> = OnceLock::new();
    ID.get_or_init(|| {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider.dtls_provider.generate_certificate()?;
        // str0m computes the fingerprint inside an Rtc only.
        let mut rtc = Rtc::builder()
            .set_dtls_cert(cert.clone())
            .build(Instant::now());
        let fp = rtc.direct_api().local_dtls_fingerprint().to_string();
        let (hash, value) = fp.split_once(' ')?;
        Some(Identity {
            cert,
            fingerprint: (hash.to_owned(), value.to_ascii_uppercase()),
        })
    })
    .as_ref()
}

/// What the leg wants done.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// A datagram for the client (STUN, DTLS, SRTP, SRTCP).
    Transmit(SocketAddr, Vec<u8>),
    /// A plain RTP packet from the client, for the SIP side.
    Rtp(Vec<u8>),
}

/// One call's ICE + DTLS-SRTP leg.
pub struct IceLeg {
    rtc: Rtc,
    local: SocketAddr,
    mid: Mid,
    tx_ssrc: Ssrc,
    rx_ssrc: Option<Ssrc>,
    /// Payload types the client may send and be sent (the negotiated ones).
    pts: Vec<u8>,
    /// The last SIP-side sequence number and its extension (str0m wants 64-bit ones).
    seq: Option<(u16, u64)>,
    remote: Vec<SocketAddr>,
    next: Option<Instant>,
}

impl std::fmt::Debug for IceLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceLeg")
            .field("local", &self.local)
            .field("connected", &self.rtc.is_connected())
            .finish()
    }
}

fn codec(name: &str) -> Option<Codec> {
    Some(match name.to_ascii_lowercase().as_str() {
        "opus" => Codec::Opus,
        "pcmu" => Codec::PCMU,
        "pcma" => Codec::PCMA,
        "g722" => Codec::G722,
        "telephone-event" => Codec::Tele,
        "cn" => Codec::CN,
        _ => return None,
    })
}

impl IceLeg {
    /// A leg on the relay socket `local` (its host candidate) with `me` as our ICE credentials
    /// and the process identity; `None` without an identity or a payload type str0m knows.
    pub fn new(
        now: Instant,
        local: SocketAddr,
        me: &LocalIce,
        remote: &RemoteIce,
        payloads: &[PayloadType],
    ) -> Option<IceLeg> {
        let id = identity()?;
        let mut cfg = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .clear_extension_map()
            .set_dtls_cert(id.cert.clone())
            .set_local_ice_credentials(IceCreds {
                ufrag: me.ufrag.clone(),
                pass: me.pwd.clone(),
            });
        let mut pts = Vec::new();
        for p in payloads {
            let (Some(c), Some(rate)) = (codec(&p.name), Frequency::new(p.clockrate)) else {
                continue;
            };
            let channels = (p.channels > 1).then_some(p.channels);
            cfg.codec_config().add_config(
                Pt::from(p.pt),
                None,
                c,
                rate,
                channels,
                FormatParams::default(),
            );
            pts.push(p.pt);
        }
        if pts.is_empty() {
            return None;
        }
        let mut rtc = cfg.build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").ok()?)?;
        let mid = Mid::from("audio");
        let tx_ssrc: Ssrc = rand::random::<u32>().into();
        let fingerprint: Fingerprint = format!("{} {}", remote.fingerprint.0, remote.fingerprint.1)
            .parse()
            .ok()?;
        {
            let mut api = rtc.direct_api();
            api.set_ice_controlling(remote.controlling);
            api.set_remote_ice_credentials(IceCreds {
                ufrag: remote.ufrag.clone(),
                pass: remote.pwd.clone(),
            });
            api.set_remote_fingerprint(fingerprint);
            api.declare_media(mid, MediaKind::Audio);
            api.declare_stream_tx(tx_ssrc, None, mid, None);
            api.start_dtls(remote.dtls_client).ok()?;
        }
        let mut leg = IceLeg {
            rtc,
            local,
            mid,
            tx_ssrc,
            rx_ssrc: None,
            pts,
            seq: None,
            remote: Vec::new(),
            next: None,
        };
        leg.add_candidates(remote);
        Some(leg)
    }

    /// Remote candidates from a later description or transport-info (trickle ICE).
    pub fn add_candidates(&mut self, remote: &RemoteIce) {
        for a in &remote.candidates {
            if self.remote.contains(a) || self.remote.len() >= super::super::limits::CANDIDATES {
                continue;
            }
            if let Ok(c) = Candidate::host(*a, "udp") {
                self.rtc.add_remote_candidate(c);
                self.remote.push(*a);
            }
        }
    }

    /// When [`IceLeg::timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Whether ICE and DTLS are up.
    pub fn connected(&self) -> bool {
        self.rtc.is_connected()
    }

    /// A datagram from the client at `src`.
    pub fn receive(&mut self, now: Instant, src: SocketAddr, data: &[u8], out: &mut Vec<Out>) {
        // The client's SSRC was not signalled in a form we keep: take it from its first RTP
        // packet (SRTP leaves the header in the clear; RFC 7983 §7: first byte 128..=191,
        // RTCP packet types 192..=223).
        if self.rx_ssrc.is_none()
            && data.len() >= 12
            && (128..=191).contains(&data[0])
            && !(192..=223).contains(&data[1])
        {
            let ssrc: Ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]).into();
            let mid = self.mid;
            self.rtc
                .direct_api()
                .expect_stream_rx(ssrc, None, mid, None);
            self.rx_ssrc = Some(ssrc);
        }
        let Ok(r) = Receive::new(Protocol::Udp, src, self.local, data) else {
            return;
        };
        if self.rtc.handle_input(Input::Receive(now, r)).is_ok() {
            self.drain(out);
        }
    }

    /// A plain RTP packet from the SIP side, for the client. Anything that is not RTP of a
    /// negotiated payload type, and everything before ICE and DTLS are up, is dropped.
    pub fn send_rtp(&mut self, now: Instant, pkt: &[u8], out: &mut Vec<Out>) -> bool {
        let Some(rtp) = parse_rtp(pkt) else {
            return false;
        };
        if !self.rtc.is_connected() || !self.pts.contains(&rtp.pt) {
            return false;
        }
        let ext = match self.seq {
            None => u64::from(rtp.seq),
            Some((last, ext)) => {
                let delta = rtp.seq.wrapping_sub(last) as i16;
                ext.saturating_add_signed(i64::from(delta))
            }
        };
        self.seq = Some((rtp.seq, ext));
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx(&self.tx_ssrc) else {
            return false;
        };
        let w = RtpWrite::new(
            Pt::from(rtp.pt),
            SeqNo::from(ext),
            rtp.timestamp,
            now,
            pkt[rtp.offset..].to_vec(),
        )
        .marker(rtp.marker);
        stream.write_rtp(w);
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain(out);
        true
    }

    /// The leg's timer fired.
    pub fn timeout(&mut self, now: Instant, out: &mut Vec<Out>) {
        if self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain(out);
        }
    }

    fn drain(&mut self, out: &mut Vec<Out>) {
        // Bounded: a poll loop that never reaches its timeout would be a str0m bug, not a
        // reason to spin.
        for _ in 0..256 {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next = Some(t);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    out.push(Out::Transmit(t.destination, t.contents.to_vec()));
                }
                Ok(Output::Event(Event::RtpPacket(p))) => {
                    let h = &p.header;
                    let pt = *h.payload_type;
                    if self.pts.contains(&pt) {
                        out.push(Out::Rtp(build_rtp(
                            h.marker,
                            pt,
                            h.sequence_number,
                            h.timestamp,
                            *h.ssrc,
                            &p.payload,
                        )));
                    }
                }
                Ok(Output::Event(Event::Connected)) => {
                    tracing::debug!(local = %self.local, "media relay: ICE + DTLS up");
                }
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "media relay: ICE/DTLS leg failed");
                    self.next = None;
                    return;
                }
            }
        }
    }
}

/// The fields of an RTP header the relay uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFields {
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Where the payload starts (after CSRCs and the header extension).
    pub offset: usize,
}

/// Read an RTP header (RFC 3550 §5.1); `None` for RTCP, a wrong version or a packet shorter
/// than its header says. Padding is left in the payload: it is forwarded as it came.
pub fn parse_rtp(p: &[u8]) -> Option<RtpFields> {
    if p.len() < 12 || p[0] >> 6 != 2 || (192..=223).contains(&p[1]) {
        return None;
    }
    let cc = usize::from(p[0] & 0x0f);
    let mut offset = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let len = p.get(offset + 2..offset + 4)?;
        offset += 4 + 4 * usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    if offset > p.len() {
        return None;
    }
    Some(RtpFields {
        marker: p[1] & 0x80 != 0,
        pt: p[1] & 0x7f,
        seq: u16::from_be_bytes([p[2], p[3]]),
        timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        offset,
    })
}

/// A plain RTP packet with a 12-byte header.
pub fn build_rtp(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.push(0x80);
    v.push(u8::from(marker) << 7 | (pt & 0x7f));
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
#[path = "ice_tests.rs"]
mod tests;
