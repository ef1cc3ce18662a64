//! The NICKNAME method of RFC 7701 §7 (MUC-26): a chat-room participant asks its MSRP switch
//! for a nickname. The machine checks the request and its `Use-Nickname` syntax (424 when it
//! is malformed, §7.1) and hands the nickname to the driver, which answers later with
//! [`Session::answer_nickname`] once the room has decided (200, or 425 when it is taken).

use super::*;

/// Most NICKNAME requests waiting for the driver's answer; more get 503 at once. A client
/// sends one and waits for its response (RFC 7701 §7.1), so a few are already generous.
const NICKNAMES_WAITING: usize = 4;

/// Longest nickname (RFC 7701 §7.2: `1*1023` characters).
const MAX_NICKNAME: usize = 1023;

impl Session {
    pub(super) fn on_nickname(&mut self, f: Frame) {
        let to_ok = f
            .header("To-Path")
            .and_then(MsrpUri::parse_path)
            .is_some_and(|p| p.len() == 1 && p[0].same(&self.local));
        if !to_ok {
            self.respond(&f, 481, "No Such Session");
            return;
        }
        if f.header("From-Path")
            .and_then(MsrpUri::parse_path)
            .is_none()
        {
            self.respond(&f, 400, "Bad From-Path");
            return;
        }
        let Some(nick) = f.header("Use-Nickname").and_then(unquote) else {
            self.respond(&f, 424, "Nickname Malformed");
            return;
        };
        if self.nicknames.len() >= NICKNAMES_WAITING {
            self.respond(&f, 503, "Too Many Nickname Requests");
            return;
        }
        let tid = f.tid.clone();
        self.nicknames.push_back(f);
        self.out.push_back(Output::Event(Event::Nickname {
            tid,
            nickname: nick,
        }));
    }

    /// Answer the NICKNAME request `tid` with `code`; `false` when no such request waits.
    pub fn answer_nickname(&mut self, tid: &str, code: u16) -> bool {
        let Some(pos) = self.nicknames.iter().position(|f| f.tid == tid) else {
            return false;
        };
        let Some(f) = self.nicknames.remove(pos) else {
            return false;
        };
        let comment = match code {
            200 => "OK",
            424 => "Nickname Malformed",
            425 => "Nickname reserved or already in use",
            _ => "Nickname Not Set",
        };
        self.respond(&f, code, comment);
        true
    }
}

impl Session {
    /// As a chat-room participant (RFC 7701 §7, MUC-5): ask the switch for `nickname`. The
    /// answer comes back as [`Event::NicknameAnswer`] with the returned transaction id (408
    /// when none arrives in time).
    pub fn request_nickname(&mut self, now: Instant, nickname: &str) -> String {
        let tid = random_chars(12);
        let f = Frame::request(tid.clone(), "NICKNAME")
            .with("To-Path", path_string(&self.to_path))
            .with("From-Path", self.local.to_string())
            .with("Use-Nickname", quote(nickname));
        // An empty Message-ID marks a NICKNAME transaction among the pending ones.
        self.pending.insert(
            tid.clone(),
            (
                String::new(),
                PendingTx {
                    token: u64::MAX,
                    deadline: now + self.settings.tx_timeout,
                },
            ),
        );
        self.write(&f);
        tid
    }
}

/// An RFC 4975 quoted string.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The nickname of a `Use-Nickname` value: an RFC 4975 quoted string, unescaped; `None` when
/// the syntax is wrong, it is empty or too long, or it holds control characters.
pub fn unquote(v: &str) -> Option<String> {
    let inner = v.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            // qd-esc (RFC 4975 §9) escapes printable characters only: an escaped control
            // character would reach the XMPP nickname (fuzz finding F20).
            '\\' => match chars.next()? {
                c if c.is_control() => return None,
                c => out.push(c),
            },
            '"' => return None,
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    let n = out.chars().count();
    (1..=MAX_NICKNAME).contains(&n).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_nickname_syntax() {
        let table: &[(&str, Option<&str>)] = &[
            ("\"Alice the great\"", Some("Alice the great")),
            (" \"a\\\"b\" ", Some("a\"b")),
            ("\"\"", None),
            ("Alice", None),
            ("\"a\"b\"", None),
            ("\"a\u{7}\"", None),
            ("\"trailing\\\"", None),
            ("\"a\\\u{0}c\"", None),
        ];
        for (v, want) in table {
            assert_eq!(unquote(v).as_deref(), *want, "{v:?}");
        }
        assert!(unquote(&format!("\"{}\"", "x".repeat(1024))).is_none());
        assert!(unquote(&format!("\"{}\"", "x".repeat(1023))).is_some());
        for n in ["Alice the great", "a\"b\\c"] {
            assert_eq!(unquote(&quote(n)).as_deref(), Some(n));
        }
    }
}
