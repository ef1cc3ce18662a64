//! RFC 7247 §7 error mapping (`stox::errmap`) with arbitrary codes and texts.
//!
//! Invariants:
//! * `sip_to_xmpp(code, reason, moved_to).to_stanza_error()` serialises to XML that parses
//!   back to the same stanza error; its `<text/>` is one line, XML-safe, at most
//!   `MAX_TEXT_CHARS`; codes outside 300..=699 give `<internal-server-error/>` without text;
//!   301 with an address gives `<gone>` carrying it, 410 never does.
//! * `SipStatus::with_reason`, `Rejection::from_sip`, `Rejection::from_xmpp`,
//!   `errmap::xmpp_to_sip` and `condition_name_to_sip` always give a non-empty RFC 3261
//!   Reason-Phrase without CR/LF/control characters, at most `MAX_REASON_CHARS` long; the
//!   XMPP -> SIP direction always gives a 300..=699 code.
//! * An arbitrary `<error/>` element (the bounce path) that xmpp-parsers accepts maps to a
//!   clean SIP status, and `gone_contact` returns a trimmed, non-empty address or nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use stox::errmap::{
    self, DefinedCondition, ErrorType, Rejection, SipStatus, StanzaError, Target, XmppError,
};
use stox_fuzz::*;
use xmpp_parsers::minidom::Element;

/// The fuzz input: NUL-separated fields (the last one takes the rest, NULs included), read
/// as UTF-8 lossily; missing fields are empty. `code` is decimal (anything else reads the
/// first two bytes little-endian); an empty `reason`/`moved_to` is `None`; `condition` is an
/// index into the 22 RFC 6120 conditions (mod 22); `target` is `full` or anything else for
/// bare; `texts` is `lang:text` pairs separated by `\x01`.
///
/// `code \0 reason \0 moved_to \0 text \0 condition \0 target \0 texts \0 condition_name \0 error_xml`
#[derive(Debug)]
struct Input {
    code: u16,
    reason: Option<String>,
    moved_to: Option<String>,
    text: String,
    condition: u8,
    full_jid: bool,
    texts: Vec<(String, String)>,
    condition_name: String,
    /// An `<error/>` element as XML text (the bounce path).
    error_xml: String,
}

impl Input {
    fn parse(data: &[u8]) -> Input {
        let mut f = data.splitn(9, |&b| b == 0);
        let mut next = || String::from_utf8_lossy(f.next().unwrap_or_default()).into_owned();
        let code = next();
        let code = code.trim().parse().unwrap_or_else(|_| {
            let b = code.as_bytes();
            u16::from_le_bytes([
                b.first().copied().unwrap_or(0),
                b.get(1).copied().unwrap_or(0),
            ])
        });
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let reason = opt(next());
        let moved_to = opt(next());
        let text = next();
        let condition = next().trim().parse::<u32>().map_or(0, |c| (c % 22) as u8);
        let full_jid = next() == "full";
        let texts = next()
            .split('\x01')
            .filter(|t| !t.is_empty())
            .map(|t| match t.split_once(':') {
                Some((l, t)) => (l.to_owned(), t.to_owned()),
                None => (String::new(), t.to_owned()),
            })
            .collect();
        Input {
            code,
            reason,
            moved_to,
            text,
            condition,
            full_jid,
            texts,
            condition_name: next(),
            error_xml: next(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    if debug() {
        eprintln!("{input:#?}");
    }
    let target = if input.full_jid {
        Target::Full
    } else {
        Target::Bare
    };

    // SIP -> XMPP (Table E2).
    let e = errmap::sip_to_xmpp(
        input.code,
        input.reason.as_deref(),
        input.moved_to.as_deref(),
    );
    assert_xmpp_error(&e, "sip_to_xmpp");
    if !(300..=699).contains(&input.code) {
        assert_eq!(e.condition, DefinedCondition::InternalServerError);
        assert_eq!(e.text, None, "out-of-range code copied a text");
    }
    if input.code == 410 {
        assert_eq!(
            e.condition,
            DefinedCondition::Gone { new_address: None },
            "410 carries an address (ERR-9)"
        );
    }
    if let DefinedCondition::Gone {
        new_address: Some(a),
    }
    | DefinedCondition::Redirect {
        new_address: Some(a),
    } = &e.condition
    {
        assert!(!a.trim().is_empty(), "blank new address");
        assert_xml_chars(a, "new address");
    }

    // Reason phrases.
    let s = SipStatus::with_reason(input.code, input.text.clone());
    assert_eq!(s.code, input.code);
    assert_reason_phrase(&s.reason, "SipStatus::with_reason");
    assert_reason_phrase(&SipStatus::new(input.code).reason, "SipStatus::new");
    let r = Rejection::from_sip(input.code, input.text.clone());
    assert_eq!(r.sip.code, input.code);
    assert_reason_phrase(&r.sip.reason, "Rejection::from_sip");
    assert_xmpp_error(&r.xmpp, "Rejection::from_sip");

    // XMPP -> SIP (Table E1). A condition's address is the caller's data, not free text
    // that errmap sanitises, so it gets the XML-safe form here (stox builds <gone/> and
    // <redirect/> only through sip_to_xmpp, which cleans it).
    let address = input
        .moved_to
        .as_deref()
        .map(stox::im::translate::xml_safe)
        .filter(|a| !a.is_empty());
    let condition = condition(input.condition, address);
    let r = Rejection::from_xmpp(condition.clone(), target, input.text.clone());
    assert_rejection_sip(&r.sip, 300..=699, "Rejection::from_xmpp");
    assert_xmpp_error(&r.xmpp, "Rejection::from_xmpp");
    let se = StanzaError {
        type_: ErrorType::Cancel,
        by: None,
        defined_condition: condition,
        texts: input.texts.iter().cloned().collect::<BTreeMap<_, _>>(),
        other: None,
    };
    assert_rejection_sip(&errmap::xmpp_to_sip(&se, target), 300..=699, "xmpp_to_sip");
    gone(&se);
    assert_rejection_sip(
        &errmap::condition_name_to_sip(&input.condition_name, target),
        300..=699,
        "condition_name_to_sip",
    );
    let _ = XmppError::new(DefinedCondition::BadRequest).condition_name();

    // The bounce path: an <error/> from the wire.
    if let Ok(el) = input.error_xml.parse::<Element>() {
        if let Ok(se) = StanzaError::try_from(el) {
            assert_rejection_sip(
                &errmap::xmpp_to_sip(&se, target),
                300..=699,
                "xmpp_to_sip (parsed <error/>)",
            );
            gone(&se);
        }
    }
});

fn gone(se: &StanzaError) {
    if let Some(a) = errmap::gone_contact(se) {
        assert!(!a.is_empty(), "gone_contact returned an empty address");
        assert_eq!(a.trim(), a, "gone_contact returned an untrimmed address");
    }
}

fn condition(i: u8, address: Option<String>) -> DefinedCondition {
    use DefinedCondition::*;
    match i % 22 {
        0 => BadRequest,
        1 => Conflict,
        2 => FeatureNotImplemented,
        3 => Forbidden,
        4 => Gone {
            new_address: address,
        },
        5 => InternalServerError,
        6 => ItemNotFound,
        7 => JidMalformed,
        8 => NotAcceptable,
        9 => NotAllowed,
        10 => NotAuthorized,
        11 => PolicyViolation,
        12 => RecipientUnavailable,
        13 => Redirect {
            new_address: address,
        },
        14 => RegistrationRequired,
        15 => RemoteServerNotFound,
        16 => RemoteServerTimeout,
        17 => ResourceConstraint,
        18 => ServiceUnavailable,
        19 => SubscriptionRequired,
        20 => UndefinedCondition,
        _ => UnexpectedRequest,
    }
}
