//! Helpers shared by the stox fuzz targets: the address plan they all use, the text format of
//! the `sip_to_xmpp` inputs, and the invariant checks that more than one target asserts.
//!
//! Every check panics with a message naming the invariant, so a libFuzzer crash report says
//! which rule broke, not only where.

use stox::addr::AddressMap;
use xmpp_parsers::minidom::Element;

/// The component domain of [`map`].
pub const COMPONENT: &str = "sip.example.com";
/// The served XMPP domain of [`map`].
pub const XMPP_DOMAIN: &str = "example.com";
/// The default SIP domain of [`map`].
pub const SIP_DOMAIN: &str = "example.net";

/// The address plan of the README and the checklist examples: component `sip.example.com`,
/// XMPP users at `example.com`, default SIP domain `example.net`.
pub fn map() -> AddressMap {
    AddressMap::new(COMPONENT, &[XMPP_DOMAIN.to_owned()], SIP_DOMAIN)
}

/// An inbound SIP MESSAGE in the fuzz input format: a request line (`MESSAGE <uri> SIP/2.0`;
/// the second word is the Request-URI, or the whole line if it has no space), header lines
/// `Name: value`, an empty line, then the raw body. Line ends may be CRLF or LF. The header
/// text is read as UTF-8 (lossily); the body stays bytes. Recognised headers: `From`, `To`,
/// `Contact`, `Call-ID`, `Subject`, `Content-Type`, `Content-Language`, `Max-Forwards` (a
/// value that is not a `u32` counts as absent), and `X-Inbound: normal` to pick
/// `InboundType::Normal`. Unknown headers are ignored; a repeated header keeps its last value.
pub fn parse_sip_message(data: &[u8]) -> (stox::im::SipMessageIn, stox::config::InboundType) {
    use stox::config::InboundType;
    let (head, body) = match find(data, b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => match find(data, b"\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, &[][..]),
        },
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let request_uri = match request_line.split_once(' ') {
        Some((_method, rest)) => rest.rsplit_once(' ').map_or(rest, |(uri, _)| uri),
        None => request_line,
    };
    let mut m = stox::im::SipMessageIn {
        request_uri: request_uri.to_owned(),
        body: body.to_vec(),
        ..Default::default()
    };
    let mut inbound = InboundType::Chat;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            "from" | "f" => m.from = value,
            "to" | "t" => m.to = value,
            "contact" | "m" => m.contact = Some(value),
            "call-id" | "i" => m.call_id = value,
            "subject" | "s" => m.subject = Some(value),
            "content-type" | "c" => m.content_type = Some(value),
            "content-language" => m.content_language = Some(value),
            "max-forwards" => m.max_forwards = value.trim().parse().ok(),
            "x-inbound" if value.trim() == "normal" => inbound = InboundType::Normal,
            _ => {}
        }
    }
    (m, inbound)
}

/// First index of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The element serialises to XML that minidom parses back into the same element (same names,
/// namespaces, attributes, child elements and text; an empty text node, which serialises as
/// `<a></a>` and comes back as `<a/>`, does not count). Returns the reparsed element.
pub fn assert_xml_round_trip(el: &Element, what: &str) -> Element {
    let text = String::from(el);
    let back: Element = text
        .parse()
        .unwrap_or_else(|e| panic!("{what}: serialised XML does not parse back ({e}): {text:?}"));
    if let Err(diff) = same_xml(el, &back) {
        panic!(
            "{what}: {diff} changed over a serialise/parse round trip\n sent: {text:?}\n back: {:?}",
            String::from(&back)
        );
    }
    back
}

fn same_xml(a: &Element, b: &Element) -> Result<(), String> {
    if a.name() != b.name() || a.ns() != b.ns() {
        return Err(format!("element <{}> ({})", a.name(), a.ns()));
    }
    if a.attrs() != b.attrs() {
        return Err(format!("attributes of <{}>", a.name()));
    }
    if a.text() != b.text() {
        return Err(format!("text of <{}>", a.name()));
    }
    let (ac, bc): (Vec<_>, Vec<_>) = (a.children().collect(), b.children().collect());
    if ac.len() != bc.len() {
        return Err(format!("children of <{}>", a.name()));
    }
    ac.iter().zip(bc).try_for_each(|(x, y)| same_xml(x, y))
}

/// One header line: no CR, LF or other control character.
pub fn assert_header_safe(s: &str, what: &str) {
    assert!(
        !s.chars().any(char::is_control),
        "{what}: control character (CR/LF?) in a SIP header value: {s:?}"
    );
}

/// RFC 3261 §25.1 `Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII /
/// UTF8-CONT / SP / HTAB)`, without HTAB (stox's sanitizer turns it into a space), non-empty
/// and at most `stox::errmap::MAX_REASON_CHARS` characters.
pub fn assert_reason_phrase(reason: &str, what: &str) {
    assert!(!reason.is_empty(), "{what}: empty reason phrase");
    assert!(
        reason.chars().count() <= stox::errmap::MAX_REASON_CHARS,
        "{what}: reason phrase longer than MAX_REASON_CHARS: {reason:?}"
    );
    assert_header_safe(reason, what);
    let bytes = reason.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            assert!(ok, "{what}: broken %-escape in reason phrase {reason:?}");
            i += 3;
            continue;
        }
        let allowed =
            b >= 0x80 || b.is_ascii_alphanumeric() || b";/?:@&=+$,-_.!~*'() ".contains(&b);
        assert!(
            allowed,
            "{what}: byte {:?} outside the RFC 3261 Reason-Phrase grammar in {reason:?}",
            char::from(b)
        );
        i += 1;
    }
}

/// A SIP status of a rejection: a final error code and a clean reason phrase.
pub fn assert_rejection_sip(
    status: &stox::errmap::SipStatus,
    codes: std::ops::RangeInclusive<u16>,
    what: &str,
) {
    assert!(
        codes.contains(&status.code),
        "{what}: SIP code {} outside {codes:?}",
        status.code
    );
    assert_reason_phrase(&status.reason, what);
}

/// XML 1.0 character data: no control characters other than TAB/LF/CR, no U+FFFE/U+FFFF.
pub fn assert_xml_chars(s: &str, what: &str) {
    assert!(
        s.chars()
            .all(|c| matches!(c, '\t' | '\n' | '\r')
                || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')),
        "{what}: character XML 1.0 cannot carry in {s:?}"
    );
}

/// An `XmppError` renders as a `<error/>` that parses back to the same stanza error, with a
/// clean, bounded text.
pub fn assert_xmpp_error(err: &stox::errmap::XmppError, what: &str) {
    use xmpp_parsers::stanza_error::StanzaError;
    if let Some(text) = &err.text {
        assert!(!text.is_empty(), "{what}: Some(empty) <text/>");
        assert!(
            text.chars().count() <= stox::errmap::MAX_TEXT_CHARS,
            "{what}: <text/> longer than MAX_TEXT_CHARS"
        );
        assert!(
            !text.chars().any(char::is_control),
            "{what}: control character in <text/>: {text:?}"
        );
    }
    let se = err.to_stanza_error();
    let el: Element = se.clone().into();
    let back = assert_xml_round_trip(&el, what);
    let parsed = StanzaError::try_from(back)
        .unwrap_or_else(|e| panic!("{what}: rendered <error/> is not a valid stanza error: {e}"));
    assert_eq!(parsed.type_, se.type_, "{what}: error type changed");
    assert_eq!(
        parsed.defined_condition, se.defined_condition,
        "{what}: condition changed over the wire"
    );
    assert_eq!(
        parsed.texts, se.texts,
        "{what}: <text/> changed over the wire"
    );
}

/// Whether `STOX_FUZZ_DEBUG` is set: the targets then print what they got (use it when
/// replaying one input, e.g. `STOX_FUZZ_DEBUG=1 target/.../sip_to_xmpp FILE`).
pub fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("STOX_FUZZ_DEBUG").is_some())
}

/// Whether the known finding `id` (see FUZZING.md, "Findings") should be stepped over, so a
/// long run can look for other bugs while it is still open: `STOX_FUZZ_SKIP_KNOWN=F1,F2` (or
/// `all`). Unset (the default, and what `scripts/fuzz-smoke.sh` uses), every invariant is
/// checked.
pub fn skip_known(id: &str) -> bool {
    static SKIP: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let skip = SKIP.get_or_init(|| {
        std::env::var("STOX_FUZZ_SKIP_KNOWN")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    skip.iter().any(|s| s == id || s == "all")
}
