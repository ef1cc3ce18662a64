//! The bounce window for SIP -> XMPP messages (RFC 7572 §5 with RFC 7247 §7.1, IM-14).
//!
//! XMPP has no positive delivery acknowledgement for a `<message/>`: the server only sends an
//! error stanza back when it cannot deliver. So the final response of a SIP MESSAGE is held for
//! a short window: an error stanza echoing the id within the window becomes the mapped SIP
//! failure (Table E1), silence becomes 200. The window must stay well under SIP's T1 (500 ms)
//! so a UDP sender does not retransmit.
//!
//! Sans-IO: the caller feeds the clock, [`BounceWindow::poll_timeout`] says when to wake up,
//! and [`BounceWindow::poll_expired`] hands back the responders whose window passed.

use crate::errmap::SipStatus;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Pending inbound MESSAGEs keyed by the stanza id the gateway gave them.
#[derive(Debug)]
pub struct BounceWindow<R> {
    window: Duration,
    pending: HashMap<String, (Instant, String, R)>,
    deadlines: BTreeSet<(Instant, String)>,
}

impl<R> BounceWindow<R> {
    /// A window of `window` per message.
    pub fn new(window: Duration) -> Self {
        BounceWindow {
            window,
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// A stanza with `id` was sent to the bare JID `peer` at `now`; `responder` answers the
    /// SIP transaction later.
    pub fn sent(&mut self, now: Instant, id: String, peer: String, responder: R) {
        let deadline = now + self.window;
        if let Some((old, _, _)) = self.pending.insert(id.clone(), (deadline, peer, responder)) {
            self.deadlines.remove(&(old, id.clone()));
        }
        self.deadlines.insert((deadline, id));
    }

    /// An error stanza echoing `id` arrived from the bare JID `from`: the responder to answer
    /// with `status`, if the id was still pending and the error comes from the recipient or
    /// its server (RFC 6120 §8.3.1: the error's `from` is the original `to`). Anything else
    /// (a late bounce, a third party replaying an id) changes nothing.
    pub fn bounced(&mut self, id: &str, from: &str, status: SipStatus) -> Option<(R, SipStatus)> {
        let (_, peer, _) = self.pending.get(id)?;
        let peer_domain = peer.rsplit('@').next().unwrap_or(peer);
        if !from.eq_ignore_ascii_case(peer) && !from.eq_ignore_ascii_case(peer_domain) {
            return None;
        }
        let (deadline, _, r) = self.pending.remove(id)?;
        self.deadlines.remove(&(deadline, id.to_string()));
        Some((r, status))
    }

    /// Is `id` waiting for its window to pass?
    pub fn is_pending(&self, id: &str) -> bool {
        self.pending.contains_key(id)
    }

    /// When the next window closes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// The next responder whose window closed by `now` (answer it 200).
    pub fn poll_expired(&mut self, now: Instant) -> Option<R> {
        let (deadline, _) = self.deadlines.first()?;
        if *deadline > now {
            return None;
        }
        let (_, id) = self.deadlines.pop_first()?;
        self.pending.remove(&id).map(|(_, _, r)| r)
    }

    /// Everything still pending (used when the XMPP link drops: the fate of those stanzas
    /// is unknown, so they are answered at once).
    pub fn drain(&mut self) -> Vec<R> {
        self.deadlines.clear();
        self.pending.drain().map(|(_, (_, _, r))| r).collect()
    }

    /// Number of pending messages.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No pending messages.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn im_14_silence_within_window_means_200() {
        let t0 = Instant::now();
        let mut w = BounceWindow::new(Duration::from_millis(200));
        w.sent(t0, "a".into(), "j@x".into(), 1);
        w.sent(t0 + Duration::from_millis(50), "b".into(), "j@x".into(), 2);
        assert_eq!(w.poll_timeout(), Some(t0 + Duration::from_millis(200)));
        assert_eq!(w.poll_expired(t0 + Duration::from_millis(199)), None);
        assert_eq!(w.poll_expired(t0 + Duration::from_millis(200)), Some(1));
        assert_eq!(w.poll_expired(t0 + Duration::from_millis(200)), None);
        assert_eq!(w.poll_expired(t0 + Duration::from_millis(260)), Some(2));
        assert!(w.is_empty());
        assert_eq!(w.poll_timeout(), None);
    }

    #[test]
    fn im_14_bounce_within_window_gives_mapped_status() {
        let t0 = Instant::now();
        let mut w = BounceWindow::new(Duration::from_millis(200));
        w.sent(t0, "a".into(), "juliet@example.com".into(), "resp-a");
        assert!(
            w.bounced("a", "mallory@example.com", SipStatus::new(404))
                .is_none(),
            "third party"
        );
        let (r, s) = w
            .bounced("a", "juliet@example.com", SipStatus::new(404))
            .unwrap();
        assert_eq!((r, s.code), ("resp-a", 404));
        assert_eq!(w.poll_expired(t0 + Duration::from_secs(1)), None);
        assert!(
            w.bounced("a", "juliet@example.com", SipStatus::new(404))
                .is_none(),
            "answered once only"
        );
    }

    #[test]
    fn im_14_bounce_from_the_recipients_server_counts() {
        let mut w = BounceWindow::new(Duration::from_millis(200));
        w.sent(Instant::now(), "a".into(), "juliet@example.com".into(), 7);
        assert!(w.bounced("a", "example.com", SipStatus::new(404)).is_some());
    }

    #[test]
    fn im_14_unknown_bounce_is_ignored() {
        let mut w: BounceWindow<u8> = BounceWindow::new(Duration::from_millis(200));
        assert!(w.bounced("nope", "x@y", SipStatus::new(500)).is_none());
    }

    #[test]
    fn drain_returns_everything() {
        let t0 = Instant::now();
        let mut w = BounceWindow::new(Duration::from_millis(200));
        w.sent(t0, "a".into(), "p@x".into(), 1);
        w.sent(t0, "b".into(), "p@x".into(), 2);
        let mut d = w.drain();
        d.sort();
        assert_eq!(d, vec![1, 2]);
        assert_eq!(w.poll_timeout(), None);
    }
}
