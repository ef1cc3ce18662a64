//! Chunking and reassembly, RFC 4975 §5.1 and §7.3.1 (CHAT-20..22).
//!
//! The reassembler holds partial messages by Message-ID with two memory bounds: per
//! session (`max_held`) and, through a shared [`Budget`], for the whole process. A message
//! whose declared or received size passes `max_message` is refused at the first chunk that
//! shows it; the caller answers 413 and later chunks of that message get 413 too.

use super::frame::ByteRange;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes held in partial messages across all sessions, with its limit.
#[derive(Debug, Clone)]
pub struct Budget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Bytes currently held.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur + n > self.limit {
                return false;
            }
            match self
                .used
                .compare_exchange(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One received chunk.
#[derive(Debug)]
pub struct Chunk<'a> {
    /// Message-ID.
    pub message_id: &'a str,
    /// Byte-Range (default `1-*/*`... of the whole body when absent).
    pub range: ByteRange,
    /// Content-Type of the first chunk.
    pub content_type: Option<&'a str>,
    /// The chunk's data.
    pub data: &'a [u8],
    /// The end-line said `$`.
    pub last: bool,
    /// The end-line said `#`.
    pub aborted: bool,
}

/// What a chunk did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The message is complete.
    Complete {
        /// Its Content-Type.
        content_type: Option<String>,
        /// Its bytes.
        body: Vec<u8>,
    },
    /// Stored; more chunks to come.
    Partial,
    /// The sender interrupted the message; what was held is gone.
    Aborted,
    /// Larger than allowed (answer 413).
    TooLarge,
    /// Not enough memory left for it now (answer 413: the sender stops this message).
    NoRoom,
    /// The Byte-Range does not fit the data.
    BadRange,
}

/// Disjoint received ranges one partial message may have (in-order chunks keep one).
const MAX_GAPS: usize = 64;

#[derive(Debug)]
struct Partial {
    content_type: Option<String>,
    buf: Vec<u8>,
    /// Received ranges, 0-based half-open, merged.
    have: Vec<(u64, u64)>,
    total: Option<u64>,
    saw_last: bool,
}

impl Partial {
    fn covered(&self) -> u64 {
        self.have.iter().map(|(a, b)| b - a).sum()
    }

    fn add(&mut self, a: u64, b: u64) {
        self.have.push((a, b));
        self.have.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.have.len());
        for (s, e) in self.have.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }
}

/// Partial messages of one session.
#[derive(Debug)]
pub struct Reassembler {
    partial: HashMap<String, Partial>,
    held: usize,
    max_message: usize,
    max_held: usize,
    budget: Budget,
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

impl Reassembler {
    /// Messages up to `max_message` bytes; at most `max_held` bytes held for this session.
    pub fn new(max_message: usize, max_held: usize, budget: Budget) -> Reassembler {
        Reassembler {
            partial: HashMap::new(),
            held: 0,
            max_message,
            max_held,
            budget,
        }
    }

    /// Bytes held in partial messages.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Forget a partial message (and release its memory).
    pub fn drop_message(&mut self, id: &str) {
        if let Some(p) = self.partial.remove(id) {
            self.release(p.buf.len());
        }
    }

    fn release(&mut self, n: usize) {
        self.held -= n;
        self.budget.give(n);
    }

    /// Add one chunk.
    pub fn add(&mut self, c: &Chunk<'_>) -> Outcome {
        let start = c.range.start - 1;
        let len = c.data.len() as u64;
        let end = start + len;
        if c.range.end.is_some_and(|e| e != end) && !c.aborted {
            // An interrupted chunk may stop short of its range; a complete one may not.
            self.drop_message(c.message_id);
            return Outcome::BadRange;
        }
        let max = self.max_message as u64;
        if c.range.total.is_some_and(|t| t > max) || end > max {
            self.drop_message(c.message_id);
            return Outcome::TooLarge;
        }
        if let Some(t) = c.range.total {
            if end > t {
                self.drop_message(c.message_id);
                return Outcome::BadRange;
            }
        }
        // The common case: a whole message in one chunk, nothing to hold.
        if start == 0 && c.last && !self.partial.contains_key(c.message_id) {
            if c.range.total.is_some_and(|t| t != end) {
                return Outcome::BadRange;
            }
            return Outcome::Complete {
                content_type: c.content_type.map(str::to_string),
                body: c.data.to_vec(),
            };
        }
        if c.aborted {
            self.drop_message(c.message_id);
            return Outcome::Aborted;
        }
        if !self.partial.contains_key(c.message_id) {
            self.partial.insert(
                c.message_id.to_string(),
                Partial {
                    content_type: None,
                    buf: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    saw_last: false,
                },
            );
        }
        // Memory is accounted by the buffer's length: the highest byte seen so far.
        let need = (end as usize).saturating_sub(self.partial[c.message_id].buf.len());
        if need > 0 {
            if self.held + need > self.max_held || !self.budget.take(need) {
                self.drop_message(c.message_id);
                return Outcome::NoRoom;
            }
            self.held += need;
        }
        let p = self.partial.get_mut(c.message_id).expect("inserted above");
        if need > 0 {
            p.buf.resize(end as usize, 0);
        }
        p.buf[start as usize..end as usize].copy_from_slice(c.data);
        p.add(start, end);
        if p.have.len() > MAX_GAPS {
            // Many tiny chunks scattered through a message cost a sort each; a sender that
            // does that is refused rather than served quadratically.
            self.drop_message(c.message_id);
            return Outcome::BadRange;
        }
        if start == 0 {
            p.content_type = c.content_type.map(str::to_string);
        }
        if c.range.total.is_some() {
            p.total = c.range.total;
        }
        if c.last {
            p.saw_last = true;
            if p.total.is_none() {
                p.total = Some(end);
            }
        }
        let done = p.saw_last
            && p.total
                .is_some_and(|t| p.covered() == t && p.have.len() == 1);
        if done {
            let p = self.partial.remove(c.message_id).expect("present");
            self.release(p.buf.len());
            let mut body = p.buf;
            body.truncate(p.total.unwrap_or(0) as usize);
            return Outcome::Complete {
                content_type: p.content_type,
                body,
            };
        }
        Outcome::Partial
    }
}

/// Split `len` bytes into 1-based inclusive ranges of at most `chunk` bytes.
pub fn ranges(len: usize, chunk: usize) -> Vec<(usize, usize)> {
    let chunk = chunk.max(1);
    if len == 0 {
        return vec![(1, 0)];
    }
    (0..len)
        .step_by(chunk)
        .map(|s| (s + 1, (s + chunk).min(len)))
        .collect()
}
