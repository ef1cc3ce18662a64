//! SDES-SRTP on the relay's SIP leg (RFC 4568 keys, RFC 3711 packets), for a phone that
//! encrypts with keys from `a=crypto` while the XMPP client does DTLS-SRTP: the two sides'
//! SRTP contexts differ, so the relay decrypts what the phone sends and encrypts what it
//! sends the phone ([`Srtp`]), and the ICE leg does the same toward the client.
//!
//! Pure and sans-IO. The AES counter mode and HMAC-SHA1 primitives are the crypto provider's
//! that str0m uses for its own SRTP (`str0m::crypto`): no second crypto library; the packet
//! layout, key derivation, index estimation and replay window are RFC 3711's, written here.
//!
//! Supported: AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568 §6.2), key derivation rate 0, an MKI
//! on received packets (skipped; the relay's own key has none). SRTCP is sent only: the
//! relay's own reports toward the phone ([`Srtcp`], from `rtcp`); the phone's RTCP ends at
//! the relay unread, as its plain RTCP's report blocks would say nothing the relay uses.

use base64::Engine;
use str0m::crypto::{Aes128CmSha1_80, Aes128CmSha1_80Cipher, CryptoProvider};

/// An SDES crypto suite the relay can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// AES_CM_128_HMAC_SHA1_80: 80-bit authentication tag.
    Sha1_80,
    /// AES_CM_128_HMAC_SHA1_32: 32-bit tag on SRTP (SRTCP would keep 80).
    Sha1_32,
}

impl Suite {
    /// The suite named in an `a=crypto` line, if the relay speaks it.
    pub fn parse(name: &str) -> Option<Suite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::Sha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::Sha1_32),
            _ => None,
        }
    }

    /// Its name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Sha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::Sha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Suite::Sha1_80 => 10,
            Suite::Sha1_32 => 4,
        }
    }
}

/// Master key (16 bytes) and master salt (14 bytes), as `inline:` carries them.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(pub [u8; 30]);

impl std::fmt::Debug for MasterKey {
    // Keys stay out of logs: a debug line of the call state would otherwise print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn random() -> MasterKey {
        use rand::RngCore;
        let mut k = [0u8; 30];
        // ThreadRng is a CSPRNG seeded from the OS.
        rand::rng().fill_bytes(&mut k);
        MasterKey(k)
    }

    /// `inline:<base64>` for `a=crypto`.
    pub fn key_params(&self) -> String {
        format!(
            "inline:{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

/// What one `a=crypto` line gives the relay: the suite, the sender's key, and the length of
/// the MKI its packets carry (0: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesKey {
    /// The line's tag, which an answer repeats.
    pub tag: u32,
    /// Suite.
    pub suite: Suite,
    /// The key its author encrypts with.
    pub key: MasterKey,
    /// MKI length in bytes.
    pub mki_len: usize,
}

/// Read an `a=crypto` line's suite, key parameters and session parameters. `None`: a suite
/// the relay does not speak, a malformed key, or session parameters it does not honour
/// (e.g. UNENCRYPTED_SRTP, a non-zero KDR), so the line is passed over.
pub fn sdes_key(
    tag: u32,
    suite: &str,
    key_params: &str,
    session_params: Option<&str>,
) -> Option<SdesKey> {
    let suite = Suite::parse(suite)?;
    if session_params.is_some_and(|s| !s.trim().is_empty()) {
        return None;
    }
    // Several keys (';') come only with MKIs; the first is the one in use.
    let first = key_params.split(';').next()?;
    let rest = first.strip_prefix("inline:")?;
    let mut parts = rest.split('|');
    let b64 = parts.next()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
        .ok()?;
    let key: [u8; 30] = raw.try_into().ok()?;
    let mut mki_len = 0;
    for p in parts {
        // "lifetime" (decimal or 2^n) or "MKI:length".
        if let Some((_, len)) = p.split_once(':') {
            mki_len = len
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=128).contains(l))?;
        }
    }
    Some(SdesKey {
        tag,
        suite,
        key: MasterKey(key),
        mki_len,
    })
}

/// Why a packet was not protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    /// Not an RTP packet, or too short for its header and tag.
    Malformed,
    /// The authentication tag does not match.
    Auth,
    /// Seen before, or older than the replay window (RFC 3711 §3.3.2).
    Replay,
}

/// Per-SSRC state: the rollover counter, the highest sequence number, and the replay window.
#[derive(Debug, Clone)]
struct Stream {
    ssrc: u32,
    roc: u32,
    s_l: u16,
    /// Bit i set: index (highest - i) was received.
    window: u64,
    /// When it was last used (for replacing the stalest when the table is full).
    used: u64,
}

/// SSRCs one context tracks; a phone uses one, a re-INVITE may bring another. Bounded so a
/// stream of random SSRCs cannot grow memory.
const MAX_STREAMS: usize = 8;

/// One direction's SRTP context (one master key).
pub struct Srtp {
    cipher: Box<dyn Aes128CmSha1_80Cipher>,
    auth: [u8; 20],
    salt: [u8; 14],
    suite: Suite,
    mki_len: usize,
    streams: Vec<Stream>,
    clock: u64,
    provider: &'static CryptoProvider,
}

impl std::fmt::Debug for Srtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srtp")
            .field("suite", &self.suite)
            .field("streams", &self.streams.len())
            .finish()
    }
}

fn provider() -> &'static CryptoProvider {
    static P: std::sync::OnceLock<CryptoProvider> = std::sync::OnceLock::new();
    P.get_or_init(str0m::crypto::from_feature_flags)
}

/// RFC 3711 §4.3.1 with a key derivation rate of 0: the session key of `label` is AES-CM
/// keystream under the master key, from IV = (master salt XOR label at byte 7) * 2^16.
fn derive(p: &CryptoProvider, master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut key = [0u8; 16];
    key.copy_from_slice(&master.0[..16]);
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&master.0[16..]);
    iv[7] ^= label;
    let mut cipher = p
        .srtp_provider
        .aes_128_cm_sha1_80()
        .create_cipher(key, true);
    let zeros = vec![0u8; out.len()];
    // A 16-byte key and an output as long as the input: the provider cannot fail here.
    let _ = cipher.encrypt(&iv, &zeros, out);
}

/// The cipher, authentication key and salt of the session under `master` whose first label
/// is `first` (0 for SRTP, 3 for SRTCP; RFC 3711 §4.3.2).
fn session_keys(
    p: &CryptoProvider,
    master: &MasterKey,
    first: u8,
) -> (Box<dyn Aes128CmSha1_80Cipher>, [u8; 20], [u8; 14]) {
    let mut enc = [0u8; 16];
    let mut auth = [0u8; 20];
    let mut salt = [0u8; 14];
    derive(p, master, first, &mut enc);
    derive(p, master, first + 1, &mut auth);
    derive(p, master, first + 2, &mut salt);
    let cipher = p
        .srtp_provider
        .aes_128_cm_sha1_80()
        .create_cipher(enc, true);
    (cipher, auth, salt)
}

/// Length of the RTP header (fixed part, CSRCs, extension) of `p`, or `None` if `p` is not
/// a version 2 RTP packet at least that long.
fn header_len(p: &[u8]) -> Option<usize> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let mut n = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(n + 2)?, *p.get(n + 3)?]);
        n += 4 + 4 * usize::from(words);
    }
    (n <= p.len()).then_some(n)
}

impl Srtp {
    /// A context for packets under `key` with `suite`; `mki_len`: the MKI bytes each
    /// received packet carries before its tag.
    pub fn new(key: &MasterKey, suite: Suite, mki_len: usize) -> Srtp {
        let p = provider();
        let (cipher, auth, salt) = session_keys(p, key, 0);
        Srtp {
            cipher,
            auth,
            salt,
            suite,
            mki_len,
            streams: Vec::new(),
            clock: 0,
            provider: p,
        }
    }

    /// The stream of `ssrc`, made (replacing the stalest when the table is full) if new.
    fn stream(&mut self, ssrc: u32) -> &mut Stream {
        self.clock += 1;
        let i = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None => {
                let fresh = Stream {
                    ssrc,
                    roc: 0,
                    s_l: 0,
                    window: 0,
                    used: 0,
                };
                if self.streams.len() < MAX_STREAMS {
                    self.streams.push(fresh);
                    self.streams.len() - 1
                } else {
                    let i = (0..self.streams.len())
                        .min_by_key(|&i| self.streams[i].used)
                        .unwrap_or(0);
                    self.streams[i] = fresh;
                    i
                }
            }
        };
        let s = &mut self.streams[i];
        s.used = self.clock;
        s
    }

    fn tag(&self, authenticated: &[u8], roc: u32) -> [u8; 20] {
        self.provider
            .sha1_hmac_provider
            .sha1_hmac(&self.auth, &[authenticated, &roc.to_be_bytes()])
    }

    /// RTP -> SRTP: the payload encrypted, the tag appended.
    pub fn protect(&mut self, rtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let h = header_len(rtp).ok_or(SrtpError::Malformed)?;
        let ssrc = u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]);
        let seq = u16::from_be_bytes([rtp[2], rtp[3]]);
        let s = self.stream(ssrc);
        // The relay re-sends packets as they come, reordered ones included: the sender's
        // index is estimated the way a receiver's is, so a late packet keeps its old ROC.
        let fresh = s.window == 0;
        let index = if fresh {
            u64::from(seq)
        } else {
            estimate(s.roc, s.s_l, seq).ok_or(SrtpError::Replay)?
        };
        advance(s, index, fresh);
        let tag_len = self.suite.tag_len();
        let mut out = vec![0u8; rtp.len() + tag_len];
        out[..h].copy_from_slice(&rtp[..h]);
        let iv = Aes128CmSha1_80::rtp_iv(self.salt, ssrc, index);
        self.cipher
            .encrypt(&iv, &rtp[h..], &mut out[h..rtp.len()])
            .map_err(|_| SrtpError::Malformed)?;
        let tag = self.tag(&out[..rtp.len()], (index >> 16) as u32);
        out[rtp.len()..].copy_from_slice(&tag[..tag_len]);
        Ok(out)
    }

    /// SRTP -> RTP: the tag checked, the replay window consulted, the payload decrypted.
    pub fn unprotect(&mut self, srtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.suite.tag_len();
        let trailer = tag_len + self.mki_len;
        let body = srtp
            .len()
            .checked_sub(trailer)
            .ok_or(SrtpError::Malformed)?;
        let h = header_len(&srtp[..body]).ok_or(SrtpError::Malformed)?;
        let ssrc = u32::from_be_bytes([srtp[8], srtp[9], srtp[10], srtp[11]]);
        let seq = u16::from_be_bytes([srtp[2], srtp[3]]);
        // Looked up, not made: only an authentic packet may take a place in the table.
        let (roc, s_l, window) = self
            .streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map_or((0, 0, 0), |s| (s.roc, s.s_l, s.window));
        let fresh = window == 0;
        let index = if fresh {
            u64::from(seq)
        } else {
            estimate(roc, s_l, seq).ok_or(SrtpError::Replay)?
        };
        if !fresh {
            let highest = (u64::from(roc) << 16) | u64::from(s_l);
            if index <= highest {
                let age = highest - index;
                if age >= 64 || window & (1 << age) != 0 {
                    return Err(SrtpError::Replay);
                }
            }
        }
        let expected = self.tag(&srtp[..body], (index >> 16) as u32);
        let got = &srtp[srtp.len() - tag_len..];
        // Constant time: how much of a forged tag matched must not show in the timing.
        let diff = expected[..tag_len]
            .iter()
            .zip(got)
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(SrtpError::Auth);
        }
        let mut out = vec![0u8; body];
        out[..h].copy_from_slice(&srtp[..h]);
        let iv = Aes128CmSha1_80::rtp_iv(self.salt, ssrc, index);
        self.cipher
            .encrypt(&iv, &srtp[h..body], &mut out[h..])
            .map_err(|_| SrtpError::Malformed)?;
        // Only an authentic packet moves the state (RFC 3711 §3.3.1).
        let s = self.stream(ssrc);
        advance(s, index, fresh);
        Ok(out)
    }
}

/// SRTCP (RFC 3711 §3.4) toward the phone (the relay's own reports, encrypted and
/// authenticated under the RTCP session keys of its master key) and from it (its reports,
/// which time the relay's LSR/DLSR). The tag is 80 bits whatever
/// the suite (RFC 4568 §6.2.2: only SRTP's is shortened in _32).
pub struct Srtcp {
    cipher: Box<dyn Aes128CmSha1_80Cipher>,
    auth: [u8; 20],
    salt: [u8; 14],
    /// The next SRTCP index (31 bits; libsrtp starts at 1, and so do we).
    index: u32,
    provider: &'static CryptoProvider,
    /// Receiving: the MKI length of the sender's key, the highest index taken and the
    /// 64-index replay window below it (bit n: highest - n seen). One sender (the phone)
    /// per context, so one window, whatever SSRCs its reports carry.
    mki_len: usize,
    highest: Option<u32>,
    window: u64,
}

impl std::fmt::Debug for Srtcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srtcp").field("index", &self.index).finish()
    }
}

impl Srtcp {
    /// A sending context under `key`.
    pub fn new(key: &MasterKey) -> Srtcp {
        let p = provider();
        let (cipher, auth, salt) = session_keys(p, key, 3);
        Srtcp {
            cipher,
            auth,
            salt,
            index: 1,
            provider: p,
            mki_len: 0,
            highest: None,
            window: 0,
        }
    }

    /// A receiving context for a sender's `key` whose packets carry an MKI of `mki_len`
    /// bytes (RFC 3711 §3.4: after the E flag and index, before the tag).
    pub fn receiver(key: &MasterKey, mki_len: usize) -> Srtcp {
        Srtcp {
            mki_len,
            ..Srtcp::new(key)
        }
    }

    /// SRTCP -> the compound RTCP packet: the tag checked (80 bits, whatever the SRTP
    /// suite), the index against the replay window, the payload decrypted when the E flag
    /// says it is encrypted.
    pub fn unprotect(&mut self, srtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag_at = srtcp.len().checked_sub(10).ok_or(SrtpError::Malformed)?;
        let index_at = tag_at
            .checked_sub(self.mki_len + 4)
            .filter(|at| *at >= 8)
            .ok_or(SrtpError::Malformed)?;
        if srtcp[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let e_index = u32::from_be_bytes([
            srtcp[index_at],
            srtcp[index_at + 1],
            srtcp[index_at + 2],
            srtcp[index_at + 3],
        ]);
        let index = e_index & 0x7fff_ffff;
        if let Some(h) = self.highest {
            if index <= h {
                let age = h - index;
                if age >= 64 || self.window & (1 << age) != 0 {
                    return Err(SrtpError::Replay);
                }
            }
        }
        // The tag covers the header, the (encrypted) payload and E || index, not the MKI.
        let expected = self
            .provider
            .sha1_hmac_provider
            .sha1_hmac(&self.auth, &[&srtcp[..index_at + 4]]);
        let diff = expected[..10]
            .iter()
            .zip(&srtcp[tag_at..])
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 {
            return Err(SrtpError::Auth);
        }
        let mut out = srtcp[..index_at].to_vec();
        if e_index & 0x8000_0000 != 0 {
            let ssrc = u32::from_be_bytes([srtcp[4], srtcp[5], srtcp[6], srtcp[7]]);
            let iv = Aes128CmSha1_80::rtp_iv(self.salt, ssrc, u64::from(index));
            self.cipher
                .encrypt(&iv, &srtcp[8..index_at], &mut out[8..])
                .map_err(|_| SrtpError::Malformed)?;
        }
        // Only an authentic packet moves the window.
        match self.highest {
            Some(h) if index <= h => self.window |= 1 << (h - index),
            Some(h) => {
                let shift = index - h;
                self.window = if shift >= 64 {
                    1
                } else {
                    (self.window << shift) | 1
                };
                self.highest = Some(index);
            }
            None => {
                self.highest = Some(index);
                self.window = 1;
            }
        }
        Ok(out)
    }

    /// A compound RTCP packet -> SRTCP: everything after the first 8 bytes encrypted, then
    /// E flag and index, then the tag over all of it.
    pub fn protect(&mut self, rtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if rtcp.len() < 8 || rtcp[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = u32::from_be_bytes([rtcp[4], rtcp[5], rtcp[6], rtcp[7]]);
        let index = self.index;
        self.index = (self.index + 1) & 0x7fff_ffff;
        let mut out = vec![0u8; rtcp.len() + 4 + 10];
        out[..8].copy_from_slice(&rtcp[..8]);
        let iv = Aes128CmSha1_80::rtp_iv(self.salt, ssrc, u64::from(index));
        self.cipher
            .encrypt(&iv, &rtcp[8..], &mut out[8..rtcp.len()])
            .map_err(|_| SrtpError::Malformed)?;
        let e_index = 0x8000_0000 | index;
        out[rtcp.len()..rtcp.len() + 4].copy_from_slice(&e_index.to_be_bytes());
        let end = rtcp.len() + 4;
        let tag = self
            .provider
            .sha1_hmac_provider
            .sha1_hmac(&self.auth, &[&out[..end]]);
        out[end..].copy_from_slice(&tag[..10]);
        Ok(out)
    }
}

/// RFC 3711 §3.3.1 / Appendix A: the packet index of `seq` given the rollover counter and
/// the highest sequence number seen. `None`: it would lie before the stream's first packet
/// (a rollover counter of -1).
fn estimate(roc: u32, s_l: u16, seq: u16) -> Option<u64> {
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        // 2^32 rollovers (2^48 packets) is past any call; the counter wraps as RFC 3711's does.
        roc.wrapping_add(1)
    } else {
        roc
    };
    Some((u64::from(v) << 16) | u64::from(seq))
}

/// Record `index` as received: a newer one becomes the highest (shifting the window), an
/// older one sets its bit.
fn advance(s: &mut Stream, index: u64, fresh: bool) {
    let highest = (u64::from(s.roc) << 16) | u64::from(s.s_l);
    if fresh {
        s.roc = (index >> 16) as u32;
        s.s_l = index as u16;
        s.window = 1;
    } else if index > highest {
        let shift = index - highest;
        s.window = if shift >= 64 {
            1
        } else {
            (s.window << shift) | 1
        };
        s.roc = (index >> 16) as u32;
        s.s_l = index as u16;
    } else if highest - index < 64 {
        s.window |= 1 << (highest - index);
    }
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
