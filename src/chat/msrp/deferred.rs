//! Deferred answers to complete messages (RFC 7702 §6.3.1, MUC-24): as a chat room's MSRP
//! switch the gateway should answer a SEND only once the room has taken the message (the
//! MUC's reflection), so that the room's refusal can be the SEND's own response. The machine
//! holds the last chunk's transaction until the driver calls [`Session::answer_message`]; a
//! message the driver never answers is answered 200 after [`DEFERRED_WAIT`] (it was passed
//! on; only its echo is missing), well inside the sender's 30 s transaction timeout (§7.1.1).

use super::*;

/// Longest a complete message waits for the driver's answer.
pub const DEFERRED_WAIT: Duration = Duration::from_secs(5);

/// Most answers held at once; beyond, a message is answered 200 at once as without deferral.
const DEFERRED_MAX: usize = 256;

impl Session {
    /// Hold the answers to complete messages until [`Session::answer_message`] (chat-room
    /// switch, MUC-24).
    pub fn defer_answers(&mut self) {
        self.defer = true;
    }

    /// Whether the last chunk `f` of a complete message is held (`true`) rather than answered.
    pub(super) fn hold_answer(&mut self, now: Instant, message_tid: &str, f: &Frame) -> bool {
        if !self.defer || self.deferred.len() >= DEFERRED_MAX {
            return false;
        }
        self.deferred
            .push_back((message_tid.to_owned(), f.clone(), now + DEFERRED_WAIT));
        true
    }

    /// Answer the held message whose first transaction was `tid` (its `Received::tid`) with
    /// `code`; `false` when none is held. A refusal also rules out a later failure REPORT
    /// for it: the sender has its answer.
    pub fn answer_message(&mut self, tid: &str, code: u16) -> bool {
        let Some(pos) = self.deferred.iter().position(|(t, _, _)| t == tid) else {
            return false;
        };
        let Some((_, f, _)) = self.deferred.remove(pos) else {
            return false;
        };
        if code == 200 {
            self.respond(&f, 200, "OK");
        } else {
            self.failable.retain(|(t, ..)| t != tid);
            self.respond(&f, code, "Not Delivered");
        }
        true
    }

    /// The earliest deadline of a held answer.
    pub(super) fn deferred_timeout(&self) -> Option<Instant> {
        self.deferred.iter().map(|(_, _, d)| *d).min()
    }

    /// Answer 200 what waited too long.
    pub(super) fn expire_deferred(&mut self, now: Instant) {
        while let Some(pos) = self.deferred.iter().position(|(_, _, d)| *d <= now) {
            if let Some((_, f, _)) = self.deferred.remove(pos) {
                self.respond(&f, 200, "OK");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::msrp::tests::{drain, send_frame, session};

    fn held() -> (Session, Instant) {
        let mut s = session();
        s.defer_answers();
        let now = Instant::now();
        s.handle_frame(
            now,
            send_frame("tid00001", "m1234", "1-2/2", b"hi", Flag::End),
        );
        (s, now)
    }

    #[test]
    fn muc_24_the_answer_waits_for_the_driver() {
        let (mut s, _) = held();
        let (frames, events) = drain(&mut s);
        assert!(
            frames.is_empty(),
            "answered before the room took it: {frames:?}"
        );
        let Some(Event::Message(r)) = events.first() else {
            panic!("no message: {events:?}");
        };
        assert!(s.answer_message(&r.tid, 403));
        let (frames, _) = drain(&mut s);
        assert!(matches!(frames[0].start, StartLine::Response(403, _)));
        // Answered once: no failure REPORT can follow.
        assert!(!s.answer_message(&r.tid, 200));
        assert!(!s.report_failed(&r.tid, 500));
    }

    #[test]
    fn muc_24_an_unanswered_message_gets_200_in_time() {
        let (mut s, now) = held();
        let _ = drain(&mut s);
        assert_eq!(s.poll_timeout(), Some(now + DEFERRED_WAIT));
        s.handle_timeout(now + DEFERRED_WAIT);
        let (frames, _) = drain(&mut s);
        assert!(matches!(frames[0].start, StartLine::Response(200, _)));
        assert_eq!(s.poll_timeout(), None);
    }
}
