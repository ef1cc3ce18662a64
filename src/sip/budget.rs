//! A byte budget for inbound SIP requests held while stox works on them (hardening: slow
//! consumers). A MESSAGE waits in the router's inbox and then for its bounce window; when the
//! XMPP server stops reading, they pile up. The inbox is bounded by count, but a count of
//! 16 KB bodies is a lot of memory, so every held request also takes its size from this
//! budget, gives it back when it is answered (the token is dropped with the responder), and
//! a request that does not fit gets 503 at once.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What holding a request costs beyond its bytes: ezk registers a transaction for every
/// received request with a channel of about 35 KB (measured for the IM benchmark, see
/// BENCHMARKS.md), alive as long as the request is.
pub const PER_REQUEST: usize = 36 * 1024;
use std::sync::Arc;

/// Bytes of held requests, shared by the SIP layer (takes) and every token (gives back).
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    max: usize,
}

/// A request's share of the budget; returned on drop.
#[derive(Debug)]
pub struct Token {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Budget {
    /// A budget of `max` bytes (0: unlimited).
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Take `bytes`, or `None` when they do not fit (the caller answers 503).
    pub fn take(self: &Arc<Self>, bytes: usize) -> Option<Token> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if self.max != 0 && next > self.max {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Token {
                        budget: self.clone(),
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_take_and_give_back() {
        let b = Budget::new(100);
        let t1 = b.take(60).expect("fits");
        assert!(b.take(41).is_none(), "over the budget");
        let t2 = b.take(40).expect("fits exactly");
        assert_eq!(b.used(), 100);
        drop(t1);
        assert_eq!(b.used(), 40);
        assert!(b.take(61).is_none());
        drop(t2);
        assert_eq!(b.used(), 0);
        let unlimited = Budget::new(0);
        let _big = unlimited.take(usize::MAX / 2).expect("0 means no limit");
    }
}
