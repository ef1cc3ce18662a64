//! `message/cpim` (RFC 3862) unwrapping for inbound SIP MESSAGE bodies (RFC 7572 §7, IM-10).
//!
//! A CPIM body is: message headers (`From:`, `To:`, `DateTime:`, `NS:` ...), a blank line,
//! MIME content headers (`Content-Type:` ...), a blank line, then the content. We only need
//! the inner content type and bytes; the outer SIP headers already identify the parties.

/// The encapsulated content of a CPIM message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpimContent<'a> {
    /// Inner `Content-Type` (defaults to `text/plain` when absent, RFC 3862 §3.3).
    pub content_type: String,
    /// Inner body bytes.
    pub body: &'a [u8],
    /// The CPIM message headers (`From`, `NS`, `imdn.Message-ID` ...), in order.
    pub headers: Vec<(String, String)>,
    /// Inner MIME headers other than Content-Type (e.g. `Content-Disposition`).
    pub mime_headers: Vec<(String, String)>,
}

impl CpimContent<'_> {
    /// A header of the namespace `ns` (RFC 3862 §3.3.5: `NS: prefix <uri>` binds the prefix
    /// used as `prefix.Name`).
    pub fn ns_header(&self, ns: &str, name: &str) -> Option<&str> {
        let prefixes: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("NS"))
            .filter_map(|(_, v)| {
                let (prefix, uri) = v.split_once('<')?;
                (uri.trim_end().trim_end_matches('>') == ns).then_some(prefix.trim())
            })
            .collect();
        self.headers.iter().find_map(|(n, v)| {
            let (p, local) = n.split_once('.')?;
            (local.eq_ignore_ascii_case(name) && prefixes.iter().any(|x| x.eq_ignore_ascii_case(p)))
                .then_some(v.as_str())
        })
    }
}

fn header_lines(block: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(block)
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Split a CPIM body. `None` when the structure is broken (no blank-line separators).
pub fn unwrap(body: &[u8]) -> Option<CpimContent<'_>> {
    let (msg_headers, rest) = split_headers(body)?;
    let (mime_headers, content) = split_headers(rest)?;
    std::str::from_utf8(mime_headers).ok()?;
    let mut content_type = "text/plain".to_string();
    let mut others = Vec::new();
    for (name, value) in header_lines(mime_headers) {
        if name.eq_ignore_ascii_case("content-type") {
            content_type = value;
        } else {
            others.push((name, value));
        }
    }
    Some(CpimContent {
        content_type,
        body: content,
        headers: header_lines(msg_headers),
        mime_headers: others,
    })
}

/// Split at the first empty line (CRLF CRLF, or LF LF from lenient senders).
fn split_headers(b: &[u8]) -> Option<(&[u8], &[u8])> {
    // An empty header block is just the blank line.
    if let Some(rest) = b.strip_prefix(b"\r\n") {
        return Some((&[], rest));
    }
    if let Some(rest) = b.strip_prefix(b"\n") {
        return Some((&[], rest));
    }
    // Whichever blank line comes first ends the block: a CRLF CRLF later in the content
    // must not win over an earlier LF LF.
    match (find(b, b"\r\n\r\n"), find(b, b"\n\n")) {
        (Some(crlf), Some(lf)) if lf < crlf => Some((&b[..lf], &b[lf + 2..])),
        (Some(crlf), _) => Some((&b[..crlf], &b[crlf + 4..])),
        (None, Some(lf)) => Some((&b[..lf], &b[lf + 2..])),
        (None, None) => None,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn im_10_cpim_unwraps_inner_text() {
        let body = b"From: <sip:romeo@example.net>\r\nTo: <sip:juliet@example.com>\r\nDateTime: 2024-01-01T00:00:00Z\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nhello there";
        let c = unwrap(body).unwrap();
        assert_eq!(c.content_type, "text/plain;charset=UTF-8");
        assert_eq!(c.body, b"hello there");
    }

    #[test]
    fn im_10_cpim_without_separators_is_rejected() {
        assert!(unwrap(b"From: x\r\nhello").is_none());
        assert!(unwrap(b"").is_none());
    }

    #[test]
    fn im_10_first_blank_line_wins_over_a_later_crlf_one() {
        // fuzz/regressions/cpim/lf-headers-crlf-blank-line-in-text
        let c = unwrap(b"From: x\n\nContent-Type: text/plain\n\nline1\r\n\r\nline2").unwrap();
        assert_eq!(c.content_type, "text/plain");
        assert_eq!(c.body, b"line1\r\n\r\nline2");
    }

    #[test]
    fn im_10_cpim_defaults_to_text_plain() {
        let c = unwrap(b"From: x\n\n\nhi").unwrap();
        assert_eq!(c.content_type, "text/plain");
        assert_eq!(c.body, b"hi");
    }
}
