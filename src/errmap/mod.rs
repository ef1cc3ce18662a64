//! Error mapping between SIP final responses and XMPP stanza errors — RFC 7247 §7
//! (§7.1 Table 2 = checklist Table E1, XMPP -> SIP; §7.2 Table 3 = checklist Table E2,
//! SIP -> XMPP), with XMPP error types from RFC 6120 §8.3 (checklist ERR-1..ERR-14).
//!
//! The two tables are deliberately not inverses of each other (e.g. `<conflict/>` -> 400 but
//! 400 -> `<bad-request/>`), so each direction is its own function: [`xmpp_to_sip`] and
//! [`sip_to_xmpp`]. Translators that reject something build a [`Rejection`], which carries its
//! rendering on both sides so that whichever side the failure has to be reported to, the
//! answer is already decided in one place.
//!
//! Every place where we deviate from the tables or pick one of several allowed answers is
//! listed, with its reason, in [`DEVIATIONS`].
//!
//! Nothing in this module panics: all lookups are total `match`es, out-of-range SIP codes get
//! a defined answer, and free text crossing between the protocols is sanitized (see
//! [`SipStatus::with_reason`] and [`XmppError::with_text`]).

mod tables;

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

pub use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Every deviation from RFC 7247 Tables 2/3 and every choice among the alternatives the RFC
/// allows (checklist ERR-6, ERR-7, ERR-10, ERR-12 and related), as `(checklist id, what and
/// why)`. The project README links here; keep it in sync with `tables.rs`.
pub const DEVIATIONS: &[(&str, &str)] = &[
    (
        "ERR-6",
        "<remote-server-not-found/> always maps to 404, never 408. RFC 7247 §7.1 note 4 wants 404 \
         when the remote server does not exist and 408 when it cannot be resolved, but the stanza \
         error does not say which; a server that exists but does not answer in time is reported \
         as <remote-server-timeout/>, which already maps to 408.",
    ),
    (
        "ERR-7",
        "<service-unavailable/> never maps to 503 (a SIP client would stop using the whole \
         gateway). Full-JID target -> 405 Method Not Allowed (that endpoint lacks the feature); \
         bare-JID target -> 403 Forbidden (the server refuses the service for that user, and 403 \
         does not disclose whether the account exists).",
    ),
    (
        "ERR-10",
        "SIP 403 -> <forbidden/>, 404 -> <item-not-found/>, 408 -> <remote-server-timeout/>: the \
         table's primary entries. The scenario-dependent alternatives (<not-allowed/>, \
         <policy-violation/>, <remote-server-not-found/>) cannot be told apart from a final \
         response; a translator that knows the scenario uses Rejection::explicit.",
    ),
    (
        "ERR-11",
        "Reason phrase <-> <text/> is copied in both directions. SIP -> XMPP copies any non-empty \
         reason phrase, even the standard one (example A3 shows 'Busy Here'); example I5 shows no \
         <text/> because copying is a MAY, and it appears when the caller passes no reason. \
         XMPP -> SIP prefers the xml:lang='en' text and sanitizes it into one line of at most 128 \
         characters with RFC 3261 Reason-Phrase grammar (controls removed, characters outside the \
         grammar percent-encoded) so no text can inject a header into a status line.",
    ),
    (
        "ERR-12 unexpected-request",
        "<unexpected-request/> -> 491 Request Pending (Table 2 allows 491 or 400): 491 says \
         'out of order, retry later', the same meaning; 400 would make the SIP peer treat it as \
         malformed.",
    ),
    (
        "ERR-12 301 without Contact",
        "SIP 301 whose Contact is missing or cannot be mapped -> <gone/> without character data. \
         §7.2 note 1 says the <gone/> MUST carry the new address, which cannot be met without one; \
         <gone/> still conveys 'permanently unreachable here', which is what the SIP peer said.",
    ),
    (
        "ERR-12 3xx Contact",
        "Not a deviation but an addition: for 3xx codes mapped to <redirect/> the caller's mapped \
         Contact goes into the <redirect/> character data (RFC 6120 §8.3.3.14 says it SHOULD); \
         410 never carries data even if a Contact is passed (ERR-9).",
    ),
    (
        "ERR-12 payment-required",
        "A legacy <payment-required/> cannot be represented by xmpp-parsers (RFC 6120 removed it) \
         and such an <error/> fails to parse; condition_name_to_sip maps it, and any unknown \
         condition name, to 400 Bad Request as the checklist says.",
    ),
    (
        "ERR-13",
        "Where RFC 6120 offers two error types we use: feature-not-implemented cancel, \
         policy-violation modify (the SIP codes mapped to it are about the request's shape), \
         unexpected-request wait (from 491 Request Pending), undefined-condition cancel.",
    ),
    (
        "ERR-1",
        "sip_to_xmpp on a code outside 300..=699 (1xx, 2xx, garbage) returns \
         <internal-server-error/> without text instead of failing: only a gateway bug can get \
         there, and copying e.g. 'OK' into an error text would mislead.",
    ),
];

/// Longest reason phrase we put on a SIP status line, in characters.
pub const MAX_REASON_CHARS: usize = 128;

/// Longest `<text/>` we put into an XMPP error, in characters. Longer texts are cut so a SIP
/// peer cannot make the gateway emit arbitrarily large stanzas.
pub const MAX_TEXT_CHARS: usize = 1024;

/// A SIP final status with its reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipStatus {
    /// The status code (normally 300..=699 here; not validated).
    pub code: u16,
    /// The reason phrase: one line, no control characters.
    pub reason: String,
    /// `Retry-After` seconds for a 503 (RFC 3261 §21.5.4); `None`: the default of 5.
    pub retry_after: Option<u32>,
}

impl SipStatus {
    /// Status with the standard reason phrase for the code (RFC 3261 §21 plus the extension
    /// codes of Table E2 such as 430, 439, 440, 489, 494), or `"Unknown"` for an unregistered
    /// code.
    pub fn new(code: u16) -> SipStatus {
        SipStatus {
            code,
            reason: tables::standard_reason(code)
                .unwrap_or("Unknown")
                .to_owned(),
            retry_after: None,
        }
    }

    /// Status with a custom reason phrase. The phrase is sanitized exactly like a copied XMPP
    /// `<text/>` (one line, no control characters, RFC 3261 grammar, at most
    /// [`MAX_REASON_CHARS`]); if nothing is left the standard phrase is used.
    pub fn with_reason(code: u16, reason: impl Into<String>) -> SipStatus {
        let reason = sanitize_reason(&reason.into());
        if reason.is_empty() {
            SipStatus::new(code)
        } else {
            SipStatus {
                code,
                reason,
                retry_after: None,
            }
        }
    }

    /// The same status with a `Retry-After` of `secs` seconds.
    pub fn retry_after(mut self, secs: u32) -> SipStatus {
        self.retry_after = Some(secs);
        self
    }
}

impl fmt::Display for SipStatus {
    /// The status-line tail, e.g. `486 Busy Here`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

/// An XMPP stanza error rendering: condition + type + optional text (RFC 6120 §8.3).
#[derive(Debug, Clone, PartialEq)]
pub struct XmppError {
    /// The defined condition (`urn:ietf:params:xml:ns:xmpp-stanzas`).
    pub condition: DefinedCondition,
    /// The `error/@type` attribute.
    pub type_: ErrorType,
    /// Human-readable `<text/>`, rendered with `xml:lang='en'`.
    pub text: Option<String>,
}

impl XmppError {
    /// The condition with its RFC 6120 suggested type (Table E1 last column): bad-request
    /// modify, conflict cancel, feature-not-implemented cancel, forbidden auth, gone cancel,
    /// internal-server-error cancel, item-not-found cancel, jid-malformed modify,
    /// not-acceptable modify, not-allowed cancel, not-authorized auth, policy-violation modify,
    /// recipient-unavailable wait, redirect modify, registration-required auth,
    /// remote-server-not-found cancel, remote-server-timeout wait, resource-constraint wait,
    /// service-unavailable cancel, subscription-required auth, undefined-condition cancel,
    /// unexpected-request wait.
    pub fn new(condition: DefinedCondition) -> XmppError {
        XmppError {
            type_: tables::suggested_type(&condition),
            condition,
            text: None,
        }
    }

    /// Set the `<text/>`. The text is made into one line without control characters (XML 1.0
    /// forbids most of them, and the text may later become a SIP reason phrase) and cut at
    /// [`MAX_TEXT_CHARS`]; an empty result removes the text.
    pub fn with_text(mut self, text: impl Into<String>) -> XmppError {
        let text = clean_line(&text.into(), MAX_TEXT_CHARS, Grammar::XmlText);
        self.text = (!text.is_empty()).then_some(text);
        self
    }

    /// Build the xmpp-parsers [`StanzaError`] (`xml:lang='en'` on the text when present, no
    /// `<text/>` at all otherwise).
    pub fn to_stanza_error(&self) -> StanzaError {
        // Built field by field rather than with StanzaError::new, which always inserts a
        // <text/> even when we have none.
        let mut texts = BTreeMap::new();
        if let Some(text) = &self.text {
            texts.insert("en".to_owned(), text.clone());
        }
        StanzaError {
            type_: self.type_.clone(),
            by: None,
            defined_condition: self.condition.clone(),
            texts,
            other: None,
        }
    }

    /// The condition's element name, e.g. `"item-not-found"` (for logs and tests).
    pub fn condition_name(&self) -> &'static str {
        tables::condition_name(&self.condition)
    }
}

/// Whether the XMPP request that failed was addressed to a full JID or a bare JID (ERR-3,
/// ERR-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `localpart@domainpart/resourcepart`: one endpoint (SIP 4xx family).
    Full,
    /// `localpart@domainpart`: the user as a whole (SIP 6xx family where Table E1 has one).
    Bare,
}

/// Table E1 (RFC 7247 §7.1): XMPP error -> SIP final response.
///
/// * ERR-3: `<feature-not-implemented/>` -> 405 (full JID) / 501 (bare JID).
/// * ERR-4: `<forbidden/>`, `<item-not-found/>`, `<not-acceptable/>`,
///   `<recipient-unavailable/>` -> 403/404/406/480 (full) or 603/604/606/600 (bare).
/// * ERR-5: `<gone/>` with character data -> 301 (get the address with [`gone_contact`]),
///   without -> 410.
/// * ERR-6: `<remote-server-not-found/>` -> 404 (see [`DEVIATIONS`]).
/// * ERR-7: `<service-unavailable/>` -> 405 (full) / 403 (bare), never 503.
/// * `<unexpected-request/>` -> 491.
///
/// ERR-11: the error's `<text/>` (preferring `xml:lang='en'`) becomes the reason phrase,
/// sanitized to one line of at most [`MAX_REASON_CHARS`] characters; otherwise the standard
/// phrase is used.
pub fn xmpp_to_sip(err: &StanzaError, target: Target) -> SipStatus {
    let code = tables::e1_code(&err.defined_condition, target);
    pick_text(&err.texts)
        .map(sanitize_reason)
        .filter(|reason| !reason.is_empty())
        .map_or_else(
            || SipStatus::new(code),
            |reason| SipStatus {
                code,
                reason,
                retry_after: None,
            },
        )
}

/// For a `<gone/>` error with character data (ERR-5): the new address as given (an `xmpp:`
/// URI or a JID, trimmed) for the caller to map into a SIP `Contact`; `None` otherwise.
pub fn gone_contact(err: &StanzaError) -> Option<String> {
    match &err.defined_condition {
        DefinedCondition::Gone {
            new_address: Some(address),
        } if tables::has_address(Some(address)) => Some(address.trim().to_owned()),
        _ => None,
    }
}

/// Fallback for an XMPP `<error/>` that xmpp-parsers could not turn into a [`StanzaError`]:
/// map the condition element's name through Table E1. The legacy `<payment-required/>` and
/// any unknown name give 400 Bad Request (checklist note under Table E1). `<gone/>` is
/// treated as having no address (410).
pub fn condition_name_to_sip(condition_name: &str, target: Target) -> SipStatus {
    match tables::condition_from_name(condition_name) {
        Some(condition) => SipStatus::new(tables::e1_code(&condition, target)),
        None => SipStatus::new(400),
    }
}

/// Table E2 (RFC 7247 §7.2): SIP final response (3xx-6xx) -> XMPP error.
///
/// * Listed codes per the table; unlisted codes by class (ERR-8): 3xx `<redirect/>`,
///   4xx `<bad-request/>`, 5xx `<internal-server-error/>`, 6xx `<recipient-unavailable/>`.
/// * 301 -> `<gone/>` carrying `moved_to` as character data (ERR-9 MUST; the caller passes
///   the Contact already mapped to an `xmpp:` URI). 410 -> `<gone/>` never carrying data.
///   Other 3xx mapped to `<redirect/>` carry `moved_to` too (RFC 6120 §8.3.3.14).
/// * A non-empty reason phrase is copied into `<text/>` (ERR-11, example A3).
/// * Codes below 300 or above 699 -> `<internal-server-error/>` without text (ERR-1).
///
/// The error type is the condition's RFC 6120 suggested type ([`XmppError::new`]).
pub fn sip_to_xmpp(code: u16, reason: Option<&str>, moved_to: Option<&str>) -> XmppError {
    if !(300..=699).contains(&code) {
        return XmppError::new(DefinedCondition::InternalServerError);
    }
    // The address becomes XML character data: strip what XML cannot carry and drop it if
    // nothing is left, so an empty Contact never yields an empty-but-present <gone></gone>.
    let moved_to = moved_to
        .map(|address| clean_line(address, MAX_TEXT_CHARS, Grammar::XmlText))
        .filter(|address| !address.is_empty());
    let error = XmppError::new(tables::e2_condition(code, moved_to));
    match reason {
        Some(reason) => error.with_text(reason),
        None => error,
    }
}

/// A failure that knows how to render itself on both sides ("errors carry their rendering"),
/// used by every translator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{sip_code} {sip_reason} / {xmpp}", sip_code = self.sip.code, sip_reason = self.sip.reason, xmpp = self.xmpp.condition_name())]
pub struct Rejection {
    /// What to answer on the SIP side.
    pub sip: SipStatus,
    /// What to answer on the XMPP side.
    pub xmpp: XmppError,
}

impl Rejection {
    /// Start from an XMPP condition; the SIP side follows Table E1 for `target` (use
    /// [`Target::Bare`] when the failure is about the user rather than one endpoint). The
    /// text goes into `<text/>` and, per ERR-11, the SIP reason phrase; an empty text leaves
    /// both at their defaults. E.g.
    /// `Rejection::from_xmpp(DefinedCondition::PolicyViolation, Target::Bare, "message too large")`.
    pub fn from_xmpp(
        condition: DefinedCondition,
        target: Target,
        text: impl Into<String>,
    ) -> Rejection {
        let xmpp = XmppError::new(condition).with_text(text);
        let sip = xmpp_to_sip(&xmpp.to_stanza_error(), target);
        Rejection { sip, xmpp }
    }

    /// Start from a SIP code; the XMPP side follows Table E2, with the reason copied into
    /// `<text/>` when non-empty. E.g. `Rejection::from_sip(415, "Unsupported Media Type")`.
    /// A 301 built this way has no new address (use [`Rejection::explicit`] with
    /// [`sip_to_xmpp`] to supply one).
    pub fn from_sip(code: u16, reason: impl Into<String>) -> Rejection {
        let reason = sanitize_reason(&reason.into());
        let copied = (!reason.is_empty()).then_some(reason.as_str());
        Rejection {
            xmpp: sip_to_xmpp(code, copied, None),
            sip: match copied {
                Some(reason) => SipStatus {
                    code,
                    reason: reason.to_owned(),
                    retry_after: None,
                },
                None => SipStatus::new(code),
            },
        }
    }

    /// Both sides explicit, for documented deviations (e.g. a refused `sips:` URI: 403 "SIPS
    /// not supported via XMPP" / `<forbidden/>`).
    pub fn explicit(sip: SipStatus, xmpp: XmppError) -> Rejection {
        Rejection { sip, xmpp }
    }
}

/// The `<text/>` to use as a reason phrase: `xml:lang='en'`, then no language, then any
/// `en-*`, then the first other language. Blank texts are skipped.
fn pick_text(texts: &BTreeMap<String, String>) -> Option<&str> {
    let rank = |lang: &str| {
        let primary = lang.split('-').next().unwrap_or("");
        if lang == "en" {
            0
        } else if lang.is_empty() {
            1
        } else if primary.eq_ignore_ascii_case("en") {
            2
        } else {
            3
        }
    };
    texts
        .iter()
        .filter(|(_, text)| !text.trim().is_empty())
        // min_by_key keeps the first of equal ranks, and BTreeMap order makes that stable.
        .min_by_key(|(lang, _)| rank(lang))
        .map(|(_, text)| text.as_str())
}

/// One-line SIP Reason-Phrase of at most [`MAX_REASON_CHARS`] characters.
fn sanitize_reason(input: &str) -> String {
    clean_line(input, MAX_REASON_CHARS, Grammar::SipReason)
}

/// Which grammar the cleaned text must satisfy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grammar {
    /// RFC 3261 §25.1 Reason-Phrase: reserved / unreserved / escaped / UTF8-NONASCII / SP.
    SipReason,
    /// XML 1.0 character data (minidom escapes `<`, `&`, quotes itself).
    XmlText,
}

/// Normalize free text into one line: control and line-break characters and whitespace runs
/// become a single space, invisible bidi/BOM/non-characters are dropped, the ends are
/// trimmed, and the result is cut (never mid-escape) at `max_chars` characters. For a SIP
/// reason, printable ASCII outside the RFC 3261 grammar (and a `%` that does not start an
/// escape) is percent-encoded instead of passed through.
fn clean_line(input: &str, max_chars: usize, grammar: Grammar) -> String {
    let mut out = String::new();
    let mut out_chars = 0usize;
    let mut pending_space = false;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            // Collapsed and only emitted before the next visible token: no leading/trailing
            // blanks, and CR/LF can never survive.
            pending_space = true;
            continue;
        }
        let escaped = grammar == Grammar::SipReason && needs_escape(c, chars.as_str());
        // A valid `%HH` already in the text is one 3-character token: cutting it at the
        // length limit would leave a broken escape behind.
        let literal_escape = grammar == Grammar::SipReason && c == '%' && !escaped;
        let token_chars = if escaped || literal_escape { 3 } else { 1 };
        let space = usize::from(pending_space && out_chars > 0);
        if out_chars + space + token_chars > max_chars {
            break;
        }
        if space == 1 {
            out.push(' ');
        }
        if escaped {
            // needs_escape is only true for ASCII, so the cast is lossless.
            push_percent_encoded(&mut out, c as u8);
        } else if literal_escape {
            out.push('%');
            // needs_escape checked that two ASCII hex digits follow.
            out.extend(chars.by_ref().take(2));
        } else {
            out.push(c);
        }
        out_chars += space + token_chars;
        pending_space = false;
    }
    out
}

/// Characters that render as nothing but can reorder or hide text in logs and UIs, plus the
/// XML non-characters U+FFFE/U+FFFF.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFFE}'
            | '\u{FFFF}'
    )
}

/// Printable ASCII that RFC 3261's Reason-Phrase does not allow literally, or a `%` that is
/// not followed by two hex digits (it would be read as a broken escape).
fn needs_escape(c: char, rest: &str) -> bool {
    match c {
        '"' | '#' | '<' | '>' | '[' | '\\' | ']' | '^' | '`' | '{' | '|' | '}' => true,
        '%' => {
            let mut next = rest.bytes();
            !matches!(
                (next.next(), next.next()),
                (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit()
            )
        }
        _ => false,
    }
}

/// Append `%HH` for one byte.
fn push_percent_encoded(out: &mut String, byte: u8) {
    out.push('%');
    for nibble in [byte >> 4, byte & 0x0F] {
        // A nibble is always < 16, so from_digit cannot fail; '?' is a panic-free fallback.
        let digit = char::from_digit(u32::from(nibble), 16).unwrap_or('?');
        out.push(digit.to_ascii_uppercase());
    }
}
