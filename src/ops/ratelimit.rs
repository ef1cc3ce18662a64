//! Per-sender message rate limit (`[limits] messages_per_minute`): a token bucket per sender
//! holding up to a minute's allowance, refilled continuously. Sans-IO: the caller passes the
//! time.
//!
//! Memory stays bounded: a sender whose bucket has refilled completely is indistinguishable
//! from one never seen, so such entries are dropped whenever the table grows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Buckets of every sender seen recently.
#[derive(Debug, Default)]
pub struct RateLimit {
    per_minute: u32,
    buckets: HashMap<String, (f64, Instant)>,
    /// Table size at which the next prune runs.
    prune_at: usize,
}

impl RateLimit {
    /// `per_minute` messages per sender per minute; 0 turns the limit off.
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            buckets: HashMap::new(),
            prune_at: 1024,
        }
    }

    /// Change the rate (reload). Senders keep what they have left, capped at the new burst.
    pub fn set_rate(&mut self, per_minute: u32) {
        self.per_minute = per_minute;
        if per_minute == 0 {
            self.buckets.clear();
        }
        for (tokens, _) in self.buckets.values_mut() {
            *tokens = tokens.min(f64::from(per_minute));
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> u32 {
        self.per_minute
    }

    /// Take one message's token for `sender`. `Err` carries how long until one is available.
    pub fn check(&mut self, sender: &str, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let cap = f64::from(self.per_minute);
        let per_sec = cap / 60.0;
        if !self.buckets.contains_key(sender) && self.buckets.len() >= self.prune_at {
            self.prune(now);
        }
        let (tokens, at) = self.buckets.entry(sender.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_sec))
        }
    }

    fn prune(&mut self, now: Instant) {
        let cap = f64::from(self.per_minute);
        let per_sec = cap / 60.0;
        self.buckets.retain(|_, (tokens, at)| {
            *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec < cap
        });
        // Senders all still limited: let the table double before the next (linear) prune.
        self.prune_at = (self.buckets.len() * 2).max(1024);
    }

    /// Senders tracked (tests).
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_rate_passes_then_it_waits() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(6);
        for _ in 0..6 {
            assert!(r.check("a@x", t0).is_ok());
        }
        let wait = r.check("a@x", t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // Another sender has its own bucket.
        assert!(r.check("b@x", t0).is_ok());
        // One token every 10 s.
        assert!(r.check("a@x", t0 + Duration::from_secs(10)).is_ok());
        assert!(r.check("a@x", t0 + Duration::from_secs(11)).is_err());
    }

    #[test]
    fn zero_is_off_and_reload_changes_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(0);
        for _ in 0..10_000 {
            assert!(r.check("a@x", t0).is_ok());
        }
        assert_eq!(r.tracked(), 0);
        r.set_rate(2);
        assert!(r.check("a@x", t0).is_ok());
        assert!(r.check("a@x", t0).is_ok());
        assert!(r.check("a@x", t0).is_err());
        r.set_rate(0);
        assert!(r.check("a@x", t0).is_ok());
    }

    #[test]
    fn idle_senders_are_forgotten() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(60);
        for i in 0..5000 {
            let _ = r.check(&format!("u{i}@x"), t0);
        }
        assert!(r.tracked() <= 5000);
        // A minute later every bucket is full again: the next growth prunes them all.
        let later = t0 + Duration::from_secs(61);
        for i in 0..4000 {
            let _ = r.check(&format!("v{i}@x"), later);
        }
        assert!(r.tracked() < 5000, "{}", r.tracked());
    }
}
