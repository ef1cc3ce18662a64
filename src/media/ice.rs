//! ICE details the two protocols disagree on (draft-ietf-stox-media §5.4, MEDIA-11..13):
//! - foundations: RFC 8445 allows 1..=32 ice-chars; an older XEP-0176 typed them as a number,
//!   so [`FoundationMap`] keeps a bijective string <-> number map for peers that want one;
//! - generations: SDP has none, a SIP peer restarts ICE by changing ufrag/pwd, and the
//!   Jingle side must then see the next generation ([`Generations`]);
//! - candidate ids: Jingle wants one per candidate, unique in the session ([`candidate_id`]);
//! - the default candidate written into `m=`/`c=` for a vanilla-ICE or ICE-less SIP peer
//!   ([`default_candidate`]).

use super::model::{Candidate, CandidateKind, IceCredentials};
use std::collections::HashMap;

/// RFC 8445 §5.1.1.3 foundation: 1..=32 of ALPHA / DIGIT / "+" / "/".
pub fn valid_foundation(f: &str) -> bool {
    (1..=32).contains(&f.len())
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// RFC 8445 ice-char strings for ufrag (4..=256) and pwd (22..=256), §5.3; we accept
/// shorter ones (some stacks send 4-char passwords) but never other characters, since both
/// end up in an SDP line.
pub fn valid_ice_credentials(c: &IceCredentials) -> bool {
    let ok = |s: &str| {
        (1..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    ok(&c.ufrag) && ok(&c.pwd)
}

/// A bijective map between string foundations and decimal ones, per session.
#[derive(Debug, Default, Clone)]
pub struct FoundationMap {
    numbers: HashMap<String, u32>,
    strings: Vec<String>,
}

impl FoundationMap {
    /// The decimal foundation for `f`; the same string always gets the same number and two
    /// strings never share one.
    pub fn to_numeric(&mut self, f: &str) -> String {
        if let Some(n) = self.numbers.get(f) {
            return n.to_string();
        }
        let n = self.strings.len() as u32 + 1;
        self.strings.push(f.to_owned());
        self.numbers.insert(f.to_owned(), n);
        n.to_string()
    }

    /// The string a decimal foundation stands for; an unknown number is its own foundation.
    pub fn to_string_form<'a>(&'a self, n: &'a str) -> &'a str {
        n.parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.strings.get(i))
            .map(String::as_str)
            .unwrap_or(n)
    }
}

/// MEDIA-12: the Jingle generation per content, moved on when the SIP side changes its
/// ICE credentials.
#[derive(Debug, Default, Clone)]
pub struct Generations {
    seen: HashMap<String, (IceCredentials, u8)>,
}

impl Generations {
    /// The generation for `content` given the SIP side's current credentials: the first
    /// credentials are generation 0, each change adds one (saturating at 255, XEP-0176's
    /// unsigned byte; a call restarting ICE 255 times keeps the last generation).
    pub fn observe(&mut self, content: &str, creds: &IceCredentials) -> u8 {
        match self.seen.get_mut(content) {
            Some((old, generation)) => {
                if old != creds {
                    *old = creds.clone();
                    *generation = generation.saturating_add(1);
                }
                *generation
            }
            None => {
                self.seen.insert(content.to_owned(), (creds.clone(), 0));
                0
            }
        }
    }
}

/// MEDIA-13: a candidate id unique within the session: content index, generation and the
/// candidate's position.
pub fn candidate_id(content_index: usize, generation: u8, n: usize) -> String {
    format!("c{content_index}g{generation}n{n}")
}

/// The candidate an SDP `m=`/`c=` line names for `component` (RFC 8445 §5.1.4: the one
/// most likely to work for a peer that does no ICE: relayed, then server reflexive, then
/// host; the highest priority within a type).
pub fn default_candidate(cands: &[Candidate], component: u8) -> Option<&Candidate> {
    let rank = |k: CandidateKind| match k {
        CandidateKind::Relay => 3,
        CandidateKind::Srflx => 2,
        CandidateKind::Prflx => 1,
        CandidateKind::Host => 0,
    };
    cands
        .iter()
        .filter(|c| c.component == component)
        .max_by_key(|c| (rank(c.kind), c.priority))
}

/// MEDIA-3/4: fold a `transport-info` for content `name` into the description that will
/// become SDP. New credentials mean an ICE restart: the old candidates are dropped. Known
/// candidate ids are not added twice.
pub fn apply_transport_info(
    desc: &mut super::model::Description,
    name: &str,
    info: super::model::Transport,
) -> Result<(), super::MediaError> {
    use super::{limits, MediaError};
    let content = desc
        .contents
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            MediaError::Malformed(format!("transport-info for unknown content {name:?}"))
        })?;
    let t = &mut content.transport;
    if info.ice.is_some() && info.ice != t.ice {
        t.ice = info.ice;
        t.candidates.clear();
        t.end_of_candidates = false;
    }
    for c in info.candidates {
        if t.candidates.iter().any(|k| k.id == c.id) {
            continue;
        }
        if t.candidates.len() == limits::CANDIDATES {
            return Err(MediaError::TooLarge("candidates"));
        }
        t.candidates.push(c);
    }
    if info.fingerprint.is_some() {
        t.fingerprint = info.fingerprint;
    }
    t.end_of_candidates |= info.end_of_candidates;
    Ok(())
}
