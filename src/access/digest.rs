//! HTTP digest as a SIP UAS checks it (RFC 3261 §22.4, RFC 7616 §3.4, RFC 8760 for
//! SHA-256): the `Authorization` header parsed, the expected response computed, stateless
//! nonces. Pure; [`super::SipGate`] decides what to do with the outcome.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// Digest algorithms stox accepts (RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5: what nearly every SIP client speaks.
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token in the header.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The fields of one `Authorization: Digest ...` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (the digest-uri).
    pub uri: String,
    /// `response`, lowercase hex.
    pub response: String,
    /// `algorithm` (MD5 when absent, RFC 7616 §3.4).
    pub algorithm: Option<String>,
    /// `qop`.
    pub qop: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `nc`.
    pub nc: Option<String>,
}

/// Parse one header value; `None` when it is not a digest answer with the required fields.
pub fn parse(header: &str) -> Option<Answer> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut a = Answer::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in params(rest)? {
        let k = k.to_ascii_lowercase();
        if !seen.insert(k.clone()) {
            // A parameter given twice is ambiguous; RFC 7616 allows each once.
            return None;
        }
        match k.as_str() {
            "username" => a.username = v,
            "realm" => a.realm = v,
            "nonce" => a.nonce = v,
            "uri" => a.uri = v,
            "response" => a.response = v.to_ascii_lowercase(),
            "algorithm" => a.algorithm = Some(v),
            "qop" => a.qop = Some(v),
            "cnonce" => a.cnonce = Some(v),
            "nc" => a.nc = Some(v),
            _ => {}
        }
    }
    let required = [&a.username, &a.realm, &a.nonce, &a.uri, &a.response];
    if required.iter().any(|f| f.is_empty()) {
        return None;
    }
    Some(a)
}

/// `k=v, k="quoted, \"escaped\""` pairs; `None` on unbalanced quotes or a missing `=`.
fn params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_whitespace() || *c == ',')
        {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        chars.next()?; // '='
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        out.push((key.to_string(), value.trim().to_string()));
    }
}

/// Why an answer does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The nonce is not one of ours, the realm or algorithm is wrong, or the response does
    /// not match the password.
    Wrong,
    /// Our nonce, but too old: challenge again with `stale=true`.
    Stale,
}

/// Issues and checks nonces without keeping state: a nonce is its issue time and a MAC over
/// it, so any nonce of this process is recognised and its age known.
#[derive(Clone)]
pub struct Nonces {
    key: [u8; 32],
    lifetime_secs: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonces(lifetime {} s)", self.lifetime_secs)
    }
}

impl Nonces {
    /// `key` signs the nonces (random per process), `lifetime_secs` is their validity.
    pub fn new(key: [u8; 32], lifetime_secs: u64) -> Nonces {
        Nonces { key, lifetime_secs }
    }

    /// The same key with another lifetime (a reload).
    pub fn with_lifetime(&self, lifetime_secs: u64) -> Nonces {
        Nonces {
            key: self.key,
            lifetime_secs,
        }
    }

    fn mac(&self, stamp: &str, realm: &str) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(stamp.as_bytes());
        m.update(b":");
        m.update(realm.as_bytes());
        hex(&m.finalize().into_bytes()[..16])
    }

    /// A fresh nonce for `realm` at `now` (seconds).
    pub fn issue(&self, realm: &str, now: u64) -> String {
        let stamp = format!("{now:016x}");
        let mac = self.mac(&stamp, realm);
        format!("{stamp}{mac}")
    }

    /// Whether `nonce` is ours and still fresh.
    pub fn check(&self, nonce: &str, realm: &str, now: u64) -> Result<(), Failure> {
        if nonce.len() != 48 || !nonce.is_ascii() {
            return Err(Failure::Wrong);
        }
        let (stamp, mac) = nonce.split_at(16);
        if !constant_time_eq(self.mac(stamp, realm).as_bytes(), mac.as_bytes()) {
            return Err(Failure::Wrong);
        }
        let issued = u64::from_str_radix(stamp, 16).map_err(|_| Failure::Wrong)?;
        if now.saturating_sub(issued) > self.lifetime_secs || issued > now.saturating_add(5) {
            return Err(Failure::Stale);
        }
        Ok(())
    }
}

/// The `WWW-Authenticate` value of a challenge.
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let mut s = format!(
        "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        realm.replace(['"', '\\'], ""),
        algorithm.token()
    );
    if stale {
        s.push_str(", stale=true");
    }
    s
}

/// Check `a` for `method` against `password` (the nonce was checked by the caller).
pub fn verify(a: &Answer, method: &str, password: &str) -> Result<(), Failure> {
    let alg = match &a.algorithm {
        None => Algorithm::Md5,
        Some(t) => Algorithm::parse(t).ok_or(Failure::Wrong)?,
    };
    let ha1 = alg.hash_hex(&format!("{}:{}:{password}", a.username, a.realm));
    let ha2 = alg.hash_hex(&format!("{method}:{}", a.uri));
    let expected = match a.qop.as_deref() {
        None => alg.hash_hex(&format!("{ha1}:{}:{ha2}", a.nonce)),
        Some(q) if q.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (&a.nc, &a.cnonce) else {
                return Err(Failure::Wrong);
            };
            alg.hash_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", a.nonce))
        }
        // auth-int would need the body hash; we never offer it.
        Some(_) => return Err(Failure::Wrong),
    };
    if constant_time_eq(expected.as_bytes(), a.response.as_bytes()) {
        Ok(())
    } else {
        Err(Failure::Wrong)
    }
}

/// Equal-length comparison that does not stop at the first difference, so the time taken
/// says nothing about how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
