//! One MSRP session as a sans-IO machine (RFC 4975 §5, §7): it turns frames read from the
//! connection into events and outgoing messages into frames, and keeps the transaction
//! and report bookkeeping. No sockets, no clock: `now` is handed in.
//!
//! - Outgoing messages are chunked at `chunk_size` (§7.1.1: SENDs over 2048 bytes must be
//!   interruptible; small chunks keep them so), each with a fresh Message-ID. At most four
//!   chunks of one message are in flight: other messages interleave with a long one, and an
//!   error response stops the chunks not yet sent (§10.5).
//! - Every SEND asks for a transaction response (`Failure-Report: yes`): a failure then
//!   becomes an XMPP error for the sender instead of a silent loss. RFC 7573 §7 suggests
//!   `no` only because XEP-0184 has no failure receipt; the gateway has a better carrier,
//!   the error stanza of RFC 7247 §7.2.
//! - Incoming SENDs are checked (§7.3: To-Path is this session, 481 otherwise), reassembled
//!   with limits (413, CHAT-22) and answered per their Failure-Report (§7.2).

use super::chunk::{self, Budget, Chunk, Outcome, Reassembler};
use super::frame::{is_ident, ByteRange, Flag, Frame, StartLine};
use super::uri::{path_string, random_chars, MsrpUri};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Checks a complete message (content type, body); `Err` is the MSRP code to answer.
pub type Validator = fn(&str, &[u8]) -> Result<(), u16>;

/// Session tunables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest message accepted (advertised as `a=max-size`).
    pub max_message: usize,
    /// Bytes of partial messages held for one session.
    pub max_held: usize,
    /// Outgoing chunk size.
    pub chunk_size: usize,
    /// Transaction timeout (RFC 4975 §7.1.1 suggests 30 s).
    pub tx_timeout: Duration,
    /// Content types accepted in SEND (top-level; `*` allowed as in `a=accept-types`).
    pub accept_types: Vec<String>,
    /// Checks a complete message before its last chunk is answered; `Err(code)` answers
    /// that code instead of 200 and drops the message (a bad body is refused, not lost).
    pub validate: Option<Validator>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_message: 65_536,
            max_held: 1 << 20,
            chunk_size: 2048,
            tx_timeout: Duration::from_secs(30),
            accept_types: vec![
                "text/plain".into(),
                "message/cpim".into(),
                "application/im-iscomposing+xml".into(),
            ],
            validate: None,
        }
    }
}

/// A complete message from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Message-ID.
    pub message_id: String,
    /// Transaction id of its first chunk (CHAT-7 uses it as the XMPP id).
    pub tid: String,
    /// Content-Type (parameters included).
    pub content_type: String,
    /// The bytes.
    pub body: Vec<u8>,
    /// The sender asked for a success report (CHAT-18).
    pub success_report: bool,
}

/// What the session tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message arrived.
    Message(Received),
    /// Every chunk of the message with this token got a 200 from the next hop.
    Sent(u64),
    /// The message failed (transaction response, REPORT or timeout).
    Failed {
        /// The caller's token.
        token: u64,
        /// MSRP status code (408 for a timeout).
        code: u16,
    },
    /// A success REPORT for a message that asked for one (CHAT-17).
    Delivered(u64),
    /// The switch's answer to our NICKNAME request `tid` (RFC 7701 §7): 200, 424, 425…, or
    /// 408 when none came.
    NicknameAnswer {
        /// The request's transaction id.
        tid: String,
        /// The response code.
        code: u16,
    },
    /// A chat-room participant asks for a nickname (RFC 7701 §7); answer it with
    /// [`Session::answer_nickname`].
    Nickname {
        /// The request's transaction id.
        tid: String,
        /// The requested nickname, unquoted.
        nickname: String,
    },
}

/// An output of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes to write on the connection.
    Write(Bytes),
    /// An event for the driver.
    Event(Event),
}

#[derive(Debug)]
struct PendingTx {
    token: u64,
    deadline: Instant,
}

#[derive(Debug)]
struct OutMessage {
    token: u64,
    chunks_open: usize,
    failed: bool,
    wants_report: bool,
    sent_at: Instant,
}

/// How long a sent message waits for its REPORT before it is forgotten.
const REPORT_WAIT: Duration = Duration::from_secs(600);
/// Received messages remembered for a later REPORT (CHAT-18).
const REPORTABLE: usize = 256;
/// Chunks of one message in flight before the next waits for a response.
const CHUNK_WINDOW: usize = 4;
/// Refused Message-IDs remembered so their later chunks get 413 too.
const REFUSED: usize = 64;

/// One MSRP session.
#[derive(Debug)]
pub struct Session {
    local: MsrpUri,
    to_path: Vec<MsrpUri>,
    settings: Settings,
    reasm: Reassembler,
    pending: HashMap<String, (String, PendingTx)>,
    messages: HashMap<String, OutMessage>,
    /// Received message -> (From-Path, size) for the REPORT the XMPP receipt triggers.
    reportable: VecDeque<(String, String, usize)>,
    /// Received messages that allow a failure REPORT: (tid, Message-ID, From-Path, size).
    failable: VecDeque<(String, String, String, usize)>,
    refused: VecDeque<String>,
    /// First tid of each partial incoming message (for CHAT-7's id).
    first_tid: HashMap<String, (String, bool)>,
    out: VecDeque<Output>,
    unavailable: bool,
    /// A chat-room session (RFC 7701): NICKNAME is understood.
    chatroom: bool,
    /// Chunks of our messages not yet written: Message-ID -> (token, frames).
    queued: HashMap<String, (u64, VecDeque<Frame>)>,
    /// NICKNAME requests waiting for the driver's answer (RFC 7701 §7).
    nicknames: VecDeque<Frame>,
    /// Answers to complete messages are held for the driver (MUC-24).
    defer: bool,
    /// Held answers: (the message's first tid, its last chunk, deadline).
    deferred: VecDeque<(String, Frame, Instant)>,
}

impl Session {
    /// A session whose own URI is `local`; SENDs go along `to_path` (relays first, then the
    /// peer's `a=path`).
    pub fn new(local: MsrpUri, to_path: Vec<MsrpUri>, settings: Settings, budget: Budget) -> Self {
        let reasm = Reassembler::new(settings.max_message, settings.max_held, budget);
        Session {
            local,
            to_path,
            settings,
            reasm,
            pending: HashMap::new(),
            messages: HashMap::new(),
            reportable: VecDeque::new(),
            failable: VecDeque::new(),
            refused: VecDeque::new(),
            first_tid: HashMap::new(),
            out: VecDeque::new(),
            unavailable: false,
            chatroom: false,
            queued: HashMap::new(),
            nicknames: VecDeque::new(),
            defer: false,
            deferred: VecDeque::new(),
        }
    }

    /// Make this a chat-room session, where we are the MSRP switch (RFC 7701): NICKNAME
    /// requests reach the driver instead of getting 501.
    pub fn set_chatroom(&mut self) {
        self.chatroom = true;
    }

    /// While set, complete incoming messages are refused (503) instead of accepted: the
    /// driver has nowhere to deliver them (the XMPP link is down).
    pub fn set_unavailable(&mut self, unavailable: bool) {
        self.unavailable = unavailable;
    }

    /// This session's URI.
    pub fn local(&self) -> &MsrpUri {
        &self.local
    }

    /// Bytes held in partial incoming messages.
    pub fn held(&self) -> usize {
        self.reasm.held()
    }

    /// Messages still waiting for a response or report.
    pub fn outstanding(&self) -> usize {
        self.messages.len()
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Session::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self.pending.values().map(|(_, p)| p.deadline).min();
        let rep = self
            .messages
            .values()
            .filter(|m| m.chunks_open == 0)
            .map(|m| m.sent_at + REPORT_WAIT)
            .min();
        tx.into_iter()
            .chain(rep)
            .chain(self.deferred_timeout())
            .min()
    }

    /// Expire transactions (408, RFC 4975 §7.1.1) and forget old report waits.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_deferred(now);
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (_, p))| p.deadline <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for tid in expired {
            if let Some((mid, _)) = self.pending.remove(&tid) {
                if mid.is_empty() {
                    self.out
                        .push_back(Output::Event(Event::NicknameAnswer { tid, code: 408 }));
                } else {
                    self.fail(&mid, 408);
                }
            }
        }
        self.messages
            .retain(|_, m| m.chunks_open > 0 || m.failed || m.sent_at + REPORT_WAIT > now);
    }

    /// An empty SEND, as the active side sends first to bind the connection (§5.4).
    pub fn send_bodiless(&mut self, now: Instant) {
        let tid = random_chars(12);
        let mid = random_chars(16);
        let f = Frame::request(tid.clone(), "SEND")
            .with("To-Path", path_string(&self.to_path))
            .with("From-Path", self.local.to_string())
            .with("Message-ID", mid.clone())
            .with("Byte-Range", "1-0/0");
        self.pending.insert(
            tid,
            (
                mid,
                PendingTx {
                    token: u64::MAX,
                    deadline: now + self.settings.tx_timeout,
                },
            ),
        );
        self.write(&f);
    }

    /// Queue a message; `token` comes back in its events. Returns its Message-ID.
    pub fn send(
        &mut self,
        now: Instant,
        token: u64,
        content_type: &str,
        body: &[u8],
        success_report: bool,
    ) -> String {
        let mid = random_chars(16);
        let total = body.len();
        let ranges = chunk::ranges(total, self.settings.chunk_size);
        self.messages.insert(
            mid.clone(),
            OutMessage {
                token,
                chunks_open: ranges.len(),
                failed: false,
                wants_report: success_report,
                sent_at: now,
            },
        );
        let to_path = path_string(&self.to_path);
        let from_path = self.local.to_string();
        let n = ranges.len();
        // Through a relay, ask only for negative responses: relays answer SENDs hop by hop
        // (RFC 4976 §6.4.1) and some never pass the far end's 200 back, which would turn
        // every message into a timeout.
        let relayed = self.to_path.len() > 1;
        let mut frames = VecDeque::with_capacity(n);
        for (i, (s, e)) in ranges.into_iter().enumerate() {
            let mut f = Frame::request(random_chars(12), "SEND")
                .with("To-Path", to_path.clone())
                .with("From-Path", from_path.clone())
                .with("Message-ID", mid.clone())
                .with("Success-Report", if success_report { "yes" } else { "no" })
                .with("Failure-Report", if relayed { "partial" } else { "yes" })
                .with("Byte-Range", format!("{s}-{e}/{total}"))
                // §9: every frame with data ends its headers with Content-Type.
                .with("Content-Type", content_type.to_string());
            f.body = Some(Bytes::copy_from_slice(&body[s - 1..e.max(s - 1)]));
            f.flag = if i + 1 == n { Flag::End } else { Flag::More };
            frames.push_back(f);
        }
        if relayed {
            // Nothing comes back to pace by: all chunks go at once.
            for f in frames {
                self.write(&f);
            }
        } else {
            // A few chunks in flight per message: other messages interleave with a long
            // one, and an error stops the rest of it (§7.1.1, §10.5).
            self.queued.insert(mid.clone(), (token, frames));
            self.release(now, &mid, CHUNK_WINDOW);
        }
        if relayed {
            // No 200 will come; the message counts as sent unless a REPORT says otherwise.
            if let Some(m) = self.messages.get_mut(&mid) {
                m.chunks_open = 0;
            }
            if !success_report {
                self.messages.remove(&mid);
            }
            self.out.push_back(Output::Event(Event::Sent(token)));
        }
        mid
    }

    /// Put up to `n` more queued chunks of `mid` on the wire.
    fn release(&mut self, now: Instant, mid: &str, n: usize) {
        for _ in 0..n {
            let Some((token, frames)) = self.queued.get_mut(mid) else {
                return;
            };
            let token = *token;
            let Some(f) = frames.pop_front() else {
                self.queued.remove(mid);
                return;
            };
            if frames.is_empty() {
                self.queued.remove(mid);
            }
            self.pending.insert(
                f.tid.clone(),
                (
                    mid.to_string(),
                    PendingTx {
                        token,
                        deadline: now + self.settings.tx_timeout,
                    },
                ),
            );
            self.write(&f);
        }
    }

    /// Send the success REPORT for a received message whose XMPP receipt came back
    /// (CHAT-18). `false` when the message is unknown or asked for no report.
    pub fn report_delivered(&mut self, message_id: &str) -> bool {
        let Some(pos) = self.reportable.iter().position(|(m, _, _)| m == message_id) else {
            return false;
        };
        let (mid, from_path, size) = self.reportable.remove(pos).expect("found");
        let f = Frame::request(random_chars(12), "REPORT")
            .with("To-Path", from_path)
            .with("From-Path", self.local.to_string())
            .with("Message-ID", mid)
            .with("Byte-Range", format!("1-{size}/{size}"))
            .with("Status", "000 200 OK");
        self.write(&f);
        true
    }

    /// The message whose first transaction id is `tid` could not be delivered after all (the
    /// XMPP server bounced it): a failure REPORT with `code` (RFC 4975 §7.1.2), if the sender
    /// did not say `Failure-Report: no`. `false` when nothing was sent.
    pub fn report_failed(&mut self, tid: &str, code: u16) -> bool {
        let Some(pos) = self.failable.iter().position(|(t, ..)| t == tid) else {
            return false;
        };
        let (_, mid, from_path, size) = self.failable.remove(pos).expect("found");
        self.reportable.retain(|(m, ..)| *m != mid);
        let f = Frame::request(random_chars(12), "REPORT")
            .with("To-Path", from_path)
            .with("From-Path", self.local.to_string())
            .with("Message-ID", mid)
            .with("Byte-Range", format!("1-{size}/{size}"))
            .with("Status", format!("000 {code} Not Delivered"));
        self.write(&f);
        true
    }

    /// A frame read from the connection.
    pub fn handle_frame(&mut self, now: Instant, f: Frame) {
        match f.start.clone() {
            StartLine::Response(code, _) => self.on_response(now, &f.tid, code),
            StartLine::Request(m) if m == "SEND" => self.on_send(now, f),
            StartLine::Request(m) if m == "REPORT" => self.on_report(&f),
            StartLine::Request(m) if m == "NICKNAME" && self.chatroom => self.on_nickname(f),
            StartLine::Request(_) => {
                // §12: an unknown method gets 501.
                self.respond(&f, 501, "Not Implemented");
            }
        }
    }

    fn on_response(&mut self, now: Instant, tid: &str, code: u16) {
        let Some((mid, p)) = self.pending.remove(tid) else {
            return;
        };
        if mid.is_empty() {
            let tid = tid.to_owned();
            self.out
                .push_back(Output::Event(Event::NicknameAnswer { tid, code }));
            return;
        }
        if p.token == u64::MAX {
            return; // the bodiless SEND
        }
        if code == 200 {
            let Some(m) = self.messages.get_mut(&mid) else {
                return;
            };
            m.chunks_open = m.chunks_open.saturating_sub(1);
            self.release(now, &mid, 1);
            let Some(m) = self.messages.get_mut(&mid) else {
                return;
            };
            if m.chunks_open == 0 && !m.failed {
                let token = m.token;
                if !m.wants_report {
                    self.messages.remove(&mid);
                }
                self.out.push_back(Output::Event(Event::Sent(token)));
            }
        } else {
            self.fail(&mid, code);
        }
    }

    fn fail(&mut self, mid: &str, code: u16) {
        if let Some(m) = self.messages.get_mut(mid) {
            if !m.failed {
                m.failed = true;
                let token = m.token;
                self.out
                    .push_back(Output::Event(Event::Failed { token, code }));
            }
        }
        // The other chunks' transactions need no separate failure, and the chunks not yet
        // written are never sent (§10.5: a 413 asks the sender to stop).
        self.pending.retain(|_, (m, _)| m != mid);
        self.queued.remove(mid);
        self.messages.remove(mid);
    }

    fn on_report(&mut self, f: &Frame) {
        // REPORTs never get a response (§7.1.2).
        let Some(mid) = f.header("Message-ID") else {
            return;
        };
        let code = f
            .header("Status")
            .and_then(|s| s.split_ascii_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok());
        let Some(m) = self.messages.get(mid) else {
            return;
        };
        let token = m.token;
        match code {
            Some(200) => {
                let whole = f
                    .header("Byte-Range")
                    .and_then(ByteRange::parse)
                    .is_none_or(|r| r.start == 1 && r.end.is_some() && r.end == r.total);
                if whole && m.wants_report {
                    self.messages.remove(mid);
                    self.out.push_back(Output::Event(Event::Delivered(token)));
                }
            }
            Some(c) => {
                let mid = mid.to_string();
                self.fail(&mid, c);
            }
            None => {}
        }
    }

    fn write(&mut self, f: &Frame) {
        self.out.push_back(Output::Write(Bytes::from(f.to_bytes())));
    }
}

#[path = "deferred.rs"]
pub mod deferred;
#[path = "session_in.rs"]
mod incoming;
#[path = "nickname.rs"]
pub mod nickname;
