//! `[calls]`: Jingle <-> SIP call signalling (draft-ietf-stox-media).

use serde::Deserialize;

/// `[calls]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    /// How long an XMPP user's devices ring for a SIP caller before it gets 480.
    #[serde(default = "default_ring")]
    pub ring_timeout_secs: u64,
    /// How long trickled Jingle candidates are collected before the SDP goes to the SIP side
    /// (MEDIA-3); a Raw-UDP or complete description goes at once.
    #[serde(default = "default_gather")]
    pub gather_ms: u64,
    /// Most calls at once; more get 503 (SIP) or resource-constraint (XMPP).
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
}

fn default_ring() -> u64 {
    60
}

fn default_gather() -> u64 {
    500
}

fn default_max_calls() -> usize {
    1000
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            ring_timeout_secs: default_ring(),
            gather_ms: default_gather(),
            max_calls: default_max_calls(),
        }
    }
}

impl CallsConfig {
    /// Problems in this section.
    pub fn validate(&self, problems: &mut Vec<String>) {
        if !(1..=600).contains(&self.ring_timeout_secs) {
            problems.push(format!(
                "calls.ring_timeout_secs = {}: expected 1..=600",
                self.ring_timeout_secs
            ));
        }
        if self.gather_ms > 10_000 {
            problems.push(format!(
                "calls.gather_ms = {}: expected at most 10000 (SIP callers give up long before)",
                self.gather_ms
            ));
        }
        if self.max_calls == 0 {
            problems.push("calls.max_calls = 0: expected at least 1".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let c: CallsConfig = toml::from_str("").unwrap();
        assert_eq!(
            (c.ring_timeout_secs, c.gather_ms, c.max_calls),
            (60, 500, 1000)
        );
        let mut problems = Vec::new();
        c.validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let bad: CallsConfig =
            toml::from_str("ring_timeout_secs = 0\ngather_ms = 60000\nmax_calls = 0").unwrap();
        bad.validate(&mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            toml::from_str::<CallsConfig>("ring = 5").is_err(),
            "unknown keys are refused"
        );
    }
}
