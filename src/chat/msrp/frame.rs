//! MSRP framing, RFC 4975 §7 and §9: one request or response with its end-line.
//!
//! [`Decoder`] parses incrementally from a byte buffer: a partial frame is a normal state
//! (`Ok(None)`), not an error. It remembers how far it has scanned, so a large chunk
//! arriving in many reads is searched once. A chunk body larger than the configured limit
//! is not kept: the decoder skips it up to its end-line and hands over the frame marked
//! [`Frame::oversized`], so the session can answer 413 (RFC 4975 §7.3.1, CHAT-22) without
//! holding the bytes.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// The continuation flag of an end-line (RFC 4975 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `$`: the last (or only) chunk of a message.
    End,
    /// `+`: more chunks follow.
    More,
    /// `#`: the sender interrupted the message.
    Abort,
}

impl Flag {
    fn byte(self) -> u8 {
        match self {
            Flag::End => b'$',
            Flag::More => b'+',
            Flag::Abort => b'#',
        }
    }

    fn from_byte(b: u8) -> Option<Flag> {
        match b {
            b'$' => Some(Flag::End),
            b'+' => Some(Flag::More),
            b'#' => Some(Flag::Abort),
            _ => None,
        }
    }
}

/// The first line of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `MSRP tid METHOD`.
    Request(String),
    /// `MSRP tid CODE [comment]`.
    Response(u16, Option<String>),
}

/// One MSRP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Transaction identifier (RFC 4975 §9 `ident`).
    pub tid: String,
    /// Method or status.
    pub start: StartLine,
    /// Header fields in wire order (To-Path and From-Path first).
    pub headers: Vec<(String, String)>,
    /// The data after the header block; `None` when the frame has no content-stuff.
    pub body: Option<Bytes>,
    /// Continuation flag of the end-line.
    pub flag: Flag,
    /// The body exceeded the decoder's limit and was discarded (`body` is then empty).
    pub oversized: bool,
}

impl Frame {
    /// A request frame with no headers yet.
    pub fn request(tid: impl Into<String>, method: &str) -> Frame {
        Frame {
            tid: tid.into(),
            start: StartLine::Request(method.to_string()),
            headers: Vec::new(),
            body: None,
            flag: Flag::End,
            oversized: false,
        }
    }

    /// A response frame with no headers yet.
    pub fn response(tid: impl Into<String>, code: u16, comment: Option<&str>) -> Frame {
        Frame {
            tid: tid.into(),
            start: StartLine::Response(code, comment.map(str::to_string)),
            headers: Vec::new(),
            body: None,
            flag: Flag::End,
            oversized: false,
        }
    }

    /// Append a header field.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Frame {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request(m) => Some(m),
            StartLine::Response(..) => None,
        }
    }

    /// First value of a header field (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Serialize onto `out` (RFC 4975 §9). Header values must not contain CR or LF; the
    /// builders in this crate only put validated text there.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"MSRP ");
        out.extend_from_slice(self.tid.as_bytes());
        match &self.start {
            StartLine::Request(m) => {
                out.push(b' ');
                out.extend_from_slice(m.as_bytes());
            }
            StartLine::Response(code, comment) => {
                out.extend_from_slice(format!(" {code:03}").as_bytes());
                if let Some(c) = comment {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"-------");
        out.extend_from_slice(self.tid.as_bytes());
        out.push(self.flag.byte());
        out.extend_from_slice(b"\r\n");
    }

    /// The encoded frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(128 + self.body.as_ref().map_or(0, Bytes::len));
        self.encode(&mut v);
        v
    }
}

/// Why the byte stream cannot be read as MSRP. The connection cannot be resynchronised
/// after any of these (RFC 4975 has no frame length), so the caller closes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The first line is not `MSRP <tid> <method|code>`.
    StartLine(String),
    /// A header line without `name: value`, or with bytes that are not text.
    Header(String),
    /// The header block is larger than the limit.
    HeadersTooLong,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::StartLine(s) => write!(f, "bad MSRP start line: {s}"),
            FrameError::Header(s) => write!(f, "bad MSRP header: {s}"),
            FrameError::HeadersTooLong => write!(f, "MSRP header block too long"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Is `s` a transaction identifier or Message-ID (`ident` of RFC 4975 §9)?
pub fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b".-+%=".contains(c))
}

/// Where the decoder is inside the current frame.
#[derive(Debug)]
enum State {
    /// Looking for the end of the header block.
    Head,
    /// Headers parsed; searching the body for the end-line from `scanned`.
    Body {
        frame: Frame,
        body_start: usize,
        scanned: usize,
    },
    /// Body over the limit: discarding until the end-line.
    Skip { frame: Frame, scanned: usize },
}

/// Incremental MSRP frame parser.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    state: State,
    max_headers: usize,
    max_body: usize,
}

impl Decoder {
    /// A decoder that keeps chunk bodies up to `max_body` bytes.
    pub fn new(max_body: usize) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            state: State::Head,
            max_headers: 16 * 1024,
            max_body,
        }
    }

    /// Feed bytes read from the connection.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            match std::mem::replace(&mut self.state, State::Head) {
                State::Head => match self.head()? {
                    None => return Ok(None),
                    Some(Head::Complete(f)) => return Ok(Some(f)),
                    Some(Head::Body(frame, body_start)) => {
                        self.state = State::Body {
                            frame,
                            body_start,
                            scanned: body_start,
                        };
                    }
                },
                State::Body {
                    mut frame,
                    body_start,
                    scanned,
                } => {
                    let end = end_line_pattern(&frame.tid);
                    // Lenient: an end-line right after the blank line is an empty body
                    // (the grammar wants `data CRLF` first; some senders omit it).
                    let bare = &end[2..];
                    let rest = &self.buf[body_start..];
                    if rest.len() >= bare.len() + 3 && rest.starts_with(bare) {
                        if let Some(flag) = Flag::from_byte(rest[bare.len()]) {
                            if &rest[bare.len() + 1..bare.len() + 3] == b"\r\n" {
                                self.buf.advance(body_start + bare.len() + 3);
                                frame.body = Some(Bytes::new());
                                frame.flag = flag;
                                return Ok(Some(frame));
                            }
                        }
                    }
                    // The data is followed by CRLF and the end-line.
                    match find_end(&self.buf, scanned, &end) {
                        Found::At(pos, flag) => {
                            let mut all = self.buf.split_to(pos + end.len() + 3).freeze();
                            all.advance(body_start);
                            // The limit must not depend on how the bytes arrived: a body that
                            // came in one read is as oversized as one that came in pieces.
                            if pos - body_start > self.max_body {
                                frame.oversized = true;
                                frame.body = Some(Bytes::new());
                            } else {
                                frame.body = Some(all.slice(..pos - body_start));
                            }
                            frame.flag = flag;
                            return Ok(Some(frame));
                        }
                        Found::NotYet(next) => {
                            // Only the bytes before `next` are surely data (the rest may
                            // start the end-line), so only they count against the limit.
                            if next - body_start > self.max_body {
                                frame.oversized = true;
                                frame.body = Some(Bytes::new());
                                let keep = self.buf.len() - next;
                                self.buf.advance(next);
                                debug_assert!(keep < end.len() + 3);
                                self.state = State::Skip { frame, scanned: 0 };
                            } else {
                                self.state = State::Body {
                                    frame,
                                    body_start,
                                    scanned: next,
                                };
                                return Ok(None);
                            }
                        }
                    }
                }
                State::Skip { mut frame, scanned } => {
                    let end = end_line_pattern(&frame.tid);
                    match find_end(&self.buf, scanned, &end) {
                        Found::At(pos, flag) => {
                            self.buf.advance(pos + end.len() + 3);
                            frame.flag = flag;
                            return Ok(Some(frame));
                        }
                        Found::NotYet(next) => {
                            self.buf.advance(next);
                            self.state = State::Skip { frame, scanned: 0 };
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    fn head(&mut self) -> Result<Option<Head>, FrameError> {
        // Start line.
        let Some(first_end) = find_crlf(&self.buf, 0) else {
            if self.buf.len() > self.max_headers {
                return Err(FrameError::HeadersTooLong);
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&self.buf[..first_end])
            .map_err(|_| FrameError::StartLine("not UTF-8".into()))?;
        let (tid, start) = parse_start(line)?;
        let end_line = format!("-------{tid}");
        let mut pos = first_end + 2;
        let mut headers = Vec::new();
        loop {
            let Some(e) = find_crlf(&self.buf, pos) else {
                if self.buf.len() > self.max_headers {
                    return Err(FrameError::HeadersTooLong);
                }
                return Ok(None);
            };
            if e > self.max_headers {
                return Err(FrameError::HeadersTooLong);
            }
            let line = &self.buf[pos..e];
            if line.is_empty() {
                // Blank line: content-stuff follows (requests only).
                if matches!(start, StartLine::Response(..)) {
                    return Err(FrameError::Header("a response carries no body".into()));
                }
                let frame = Frame {
                    tid,
                    start,
                    headers,
                    body: None,
                    flag: Flag::End,
                    oversized: false,
                };
                return Ok(Some(Head::Body(frame, e + 2)));
            }
            if line.len() == end_line.len() + 1 && line.starts_with(end_line.as_bytes()) {
                let Some(flag) = Flag::from_byte(line[line.len() - 1]) else {
                    return Err(FrameError::Header("bad continuation flag".into()));
                };
                self.buf.advance(e + 2);
                return Ok(Some(Head::Complete(Frame {
                    tid,
                    start,
                    headers,
                    body: None,
                    flag,
                    oversized: false,
                })));
            }
            let text = std::str::from_utf8(line)
                .map_err(|_| FrameError::Header("header is not UTF-8".into()))?;
            let Some((name, value)) = text.split_once(':') else {
                return Err(FrameError::Header(truncate(text)));
            };
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(FrameError::Header(truncate(text)));
            }
            if headers.len() >= 64 {
                return Err(FrameError::HeadersTooLong);
            }
            headers.push((name.to_string(), value.trim().to_string()));
            pos = e + 2;
        }
    }
}

enum Head {
    Complete(Frame),
    Body(Frame, usize),
}

enum Found {
    /// Data ends at this offset; the end-line follows its CRLF.
    At(usize, Flag),
    /// Not found; resume the search from here.
    NotYet(usize),
}

/// `\r\n-------<tid>`: what ends the data (RFC 4975 §9 `data CRLF end-line`).
fn end_line_pattern(tid: &str) -> Vec<u8> {
    let mut p = b"\r\n-------".to_vec();
    p.extend_from_slice(tid.as_bytes());
    p
}

/// Search `buf[from..]` for `pattern` followed by a flag and CRLF.
fn find_end(buf: &[u8], from: usize, pattern: &[u8]) -> Found {
    let full = pattern.len() + 3;
    let mut i = from;
    while i + full <= buf.len() {
        match buf[i..buf.len() - full + 1]
            .iter()
            .position(|&b| b == b'\r')
        {
            None => break,
            Some(off) => {
                let at = i + off;
                if buf[at..].starts_with(pattern) {
                    let f = buf[at + pattern.len()];
                    if let Some(flag) = Flag::from_byte(f) {
                        if &buf[at + pattern.len() + 1..at + full] == b"\r\n" {
                            return Found::At(at, flag);
                        }
                    }
                }
                i = at + 1;
            }
        }
    }
    // Bytes that could still start the end-line are re-examined next time.
    Found::NotYet(buf.len().saturating_sub(full - 1).max(from))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

fn parse_start(line: &str) -> Result<(String, StartLine), FrameError> {
    let bad = || FrameError::StartLine(truncate(line));
    let rest = line.strip_prefix("MSRP ").ok_or_else(bad)?;
    let (tid, rest) = rest.split_once(' ').ok_or_else(bad)?;
    if !is_ident(tid) {
        return Err(bad());
    }
    let (word, comment) = match rest.split_once(' ') {
        Some((w, c)) => (w, Some(c)),
        None => (rest, None),
    };
    if word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit()) {
        let code: u16 = word.parse().map_err(|_| bad())?;
        return Ok((
            tid.to_string(),
            StartLine::Response(code, comment.map(str::to_string)),
        ));
    }
    if comment.is_none() && !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase()) {
        return Ok((tid.to_string(), StartLine::Request(word.to_string())));
    }
    Err(bad())
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// `Byte-Range: start-end/total` (RFC 4975 §7.1.1); `None` for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte, 1-based.
    pub start: u64,
    /// Last byte, if known.
    pub end: Option<u64>,
    /// Message size, if known.
    pub total: Option<u64>,
}

impl ByteRange {
    /// Parse the header value.
    pub fn parse(v: &str) -> Option<ByteRange> {
        let (range, total) = v.trim().split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let num = |s: &str| -> Option<Option<u64>> {
            if s == "*" {
                Some(None)
            } else if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok().map(Some)
            } else {
                None
            }
        };
        let start = num(start)??;
        let end = num(end)?;
        let total = num(total)?;
        if start == 0 || end.is_some_and(|e| e + 1 < start) || total.is_some_and(|t| Some(t) < end)
        {
            return None;
        }
        Some(ByteRange { start, end, total })
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<u64>| v.map_or("*".to_string(), |n| n.to_string());
        write!(f, "{}-{}/{}", self.start, opt(self.end), opt(self.total))
    }
}
