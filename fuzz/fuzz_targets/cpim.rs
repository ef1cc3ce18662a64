//! `stox::im::cpim::unwrap` (RFC 3862 `message/cpim`) on arbitrary bytes.
//!
//! Invariants: never panics; the returned body is a slice of the input, and its tail (CPIM
//! content runs to the end of the SIP body); the content type is trimmed and has no LF; the split
//! happens at the first empty line of each header block, as the function documents ("Split at
//! the first empty line (CRLF CRLF, or LF LF from lenient senders)"), checked against a small
//! reference splitter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox_fuzz::{find, skip_known};

fuzz_target!(|data: &[u8]| {
    let got = stox::im::cpim::unwrap(data);
    let want = reference(data);
    if stox_fuzz::debug() {
        eprintln!("{got:?}\nreference body: {want:?}");
    }
    // F3: a CRLF CRLF anywhere wins over an earlier LF LF.
    if skip_known("F3") && find(data, b"\n\n").is_some() && find(data, b"\r\n\r\n").is_some() {
        return;
    }
    let Some(c) = got else {
        assert!(
            want.is_none(),
            "unwrap refused a body the reference splits: {:?}",
            String::from_utf8_lossy(data)
        );
        return;
    };
    let start = data.as_ptr() as usize;
    let end = start + data.len();
    let body_start = c.body.as_ptr() as usize;
    assert!(
        body_start >= start && body_start + c.body.len() <= end,
        "body slice is not inside the input"
    );
    assert_eq!(
        body_start + c.body.len(),
        end,
        "body slice does not run to the end of the input"
    );
    assert!(
        !c.content_type.contains('\n'),
        "content type spans lines: {:?}",
        c.content_type
    );
    assert_eq!(
        c.content_type.trim(),
        c.content_type,
        "content type not trimmed"
    );
    if let Some(want_body) = want {
        assert_eq!(
            c.body,
            want_body,
            "body does not start after the first empty line of each header block in {:?}",
            String::from_utf8_lossy(data)
        );
    }
});

/// The documented rule, written differently: a header block ends at the first empty line,
/// i.e. at the earliest `CRLF CRLF` or `LF LF` (or at once, if the block starts with CRLF or
/// LF). Applied twice; the MIME header block must be UTF-8 (its Content-Type is read).
fn reference(data: &[u8]) -> Option<&[u8]> {
    let rest = after_blank_line(data)?;
    let content = after_blank_line(rest)?;
    let mime_headers = &rest[..rest.len() - content.len()];
    std::str::from_utf8(mime_headers).ok()?;
    Some(content)
}

fn after_blank_line(b: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = b.strip_prefix(b"\r\n").or_else(|| b.strip_prefix(b"\n")) {
        return Some(rest);
    }
    let crlf = find(b, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(b, b"\n\n").map(|i| (i, 2));
    let (i, len) = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(&b[i + len..])
}
