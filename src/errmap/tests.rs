//! Tests for the RFC 7247 §7 error mapping (RFC 6120 §8.3 errors): serialization, the
//! checklist examples A3, A4, A5 and I5, reason-phrase sanitizing (ERR-11), `Rejection`
//! (ERR-14) and the deviation list (ERR-12). The per-row tests of §7.1 Table 2 and §7.2
//! Table 3 are in `table_tests.rs`; the shared helpers are here. Test names cite checklist IDs.

use super::*;
use proptest::prelude::*;
use xmpp_parsers::minidom::Element;
use DefinedCondition as DC;

/// The stanza error a remote XMPP entity would send for `condition`, without text.
pub(super) fn stanza(condition: DefinedCondition) -> StanzaError {
    XmppError::new(condition).to_stanza_error()
}

/// The same with a `<text xml:lang=lang/>`.
pub(super) fn stanza_with_text(condition: DefinedCondition, lang: &str, text: &str) -> StanzaError {
    StanzaError::new(
        tables::suggested_type(&condition),
        condition,
        lang.to_owned(),
        text.to_owned(),
    )
}

/// Expected `<error/>` XML as xmpp-parsers renders it in a component stream.
fn expected_xml(inner: &str, type_: &str) -> Element {
    format!("<error xmlns='jabber:component:accept' type='{type_}'>{inner}</error>")
        .parse()
        .expect("test XML parses")
}

/// All 22 RFC 6120 conditions, in Table E1 order.
pub(super) fn all_conditions() -> Vec<DefinedCondition> {
    vec![
        DC::BadRequest,
        DC::Conflict,
        DC::FeatureNotImplemented,
        DC::Forbidden,
        DC::Gone { new_address: None },
        DC::InternalServerError,
        DC::ItemNotFound,
        DC::JidMalformed,
        DC::NotAcceptable,
        DC::NotAllowed,
        DC::NotAuthorized,
        DC::PolicyViolation,
        DC::RecipientUnavailable,
        DC::Redirect { new_address: None },
        DC::RegistrationRequired,
        DC::RemoteServerNotFound,
        DC::RemoteServerTimeout,
        DC::ResourceConstraint,
        DC::ServiceUnavailable,
        DC::SubscriptionRequired,
        DC::UndefinedCondition,
        DC::UnexpectedRequest,
    ]
}

#[test]
fn a3_486_busy_here_to_recipient_unavailable_wait() {
    let err = sip_to_xmpp(486, Some("Busy Here"), None);
    assert_eq!(err.condition, DC::RecipientUnavailable);
    assert_eq!(err.type_, ErrorType::Wait);
    assert_eq!(err.text.as_deref(), Some("Busy Here"));
    assert_eq!(err.condition_name(), "recipient-unavailable");
}

#[test]
fn a3_err_13_stanza_error_serializes_to_expected_xml() {
    let xml = Element::from(sip_to_xmpp(486, Some("Busy Here"), None).to_stanza_error());
    let expected = expected_xml(
        "<recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Busy Here</text>",
        "wait",
    );
    assert_eq!(xml, expected);
    // Also check the pieces by name, so a failure says what differs.
    assert_eq!(xml.name(), "error");
    assert_eq!(xml.attr("type"), Some("wait"));
    let names: Vec<_> = xml.children().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, ["recipient-unavailable", "text"]);
    let text = xml.children().nth(1).unwrap();
    assert_eq!(text.ns(), "urn:ietf:params:xml:ns:xmpp-stanzas");
    assert_eq!(text.text(), "Busy Here");
}

#[test]
fn a4_301_to_gone_with_new_address() {
    let uri = "xmpp:romeo%5C40verona.example@sip.example.com";
    let err = sip_to_xmpp(301, None, Some(uri));
    let expected = expected_xml(
        &format!("<gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>{uri}</gone>"),
        "cancel",
    );
    assert_eq!(Element::from(err.to_stanza_error()), expected);
    // With the reason phrase copied (ERR-11) the address stays in <gone/>.
    let with_reason = sip_to_xmpp(301, Some("Moved Permanently"), Some(uri));
    assert_eq!(with_reason.text.as_deref(), Some("Moved Permanently"));
    assert_eq!(
        gone_contact(&with_reason.to_stanza_error()).as_deref(),
        Some(uri)
    );
}

#[test]
fn a5_service_unavailable_bare_is_403_full_is_405() {
    let err = stanza(DC::ServiceUnavailable);
    assert_eq!(xmpp_to_sip(&err, Target::Bare), SipStatus::new(403));
    assert_eq!(xmpp_to_sip(&err, Target::Full), SipStatus::new(405));
    assert_eq!(SipStatus::new(405).reason, "Method Not Allowed");
}

#[test]
fn i5_404_to_item_not_found_cancel() {
    let xml = Element::from(sip_to_xmpp(404, None, None).to_stanza_error());
    let expected = expected_xml(
        "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>",
        "cancel",
    );
    assert_eq!(xml, expected);
    let with_reason = sip_to_xmpp(404, Some("Not Found"), None);
    assert_eq!(with_reason.condition, DC::ItemNotFound);
    assert_eq!(with_reason.type_, ErrorType::Cancel);
    assert_eq!(with_reason.text.as_deref(), Some("Not Found"));
}

#[test]
fn err_13_every_condition_serializes_with_its_name_and_type_and_parses_back() {
    for condition in all_conditions() {
        let err = XmppError::new(condition.clone()).with_text("why");
        let xml = Element::from(err.to_stanza_error());
        let child = xml.children().next().expect("condition child");
        assert_eq!(child.name(), err.condition_name());
        assert_eq!(child.ns(), "urn:ietf:params:xml:ns:xmpp-stanzas");
        let back = StanzaError::try_from(xml).expect("round trip");
        assert_eq!(back.defined_condition, condition);
        assert_eq!(back.type_, err.type_);
        assert_eq!(back.texts.get("en").map(String::as_str), Some("why"));
    }
}

#[test]
fn err_13_no_text_element_without_text() {
    let err = XmppError::new(DC::BadRequest).with_text(" \r\n ");
    assert_eq!(err.text, None);
    assert!(err.to_stanza_error().texts.is_empty());
    let xml = Element::from(err.to_stanza_error());
    assert_eq!(xml.children().count(), 1);
}

#[test]
fn err_11_xmpp_text_becomes_reason_phrase() {
    let err = stanza_with_text(DC::PolicyViolation, "en", "message too large");
    assert_eq!(
        xmpp_to_sip(&err, Target::Bare),
        SipStatus::with_reason(403, "message too large")
    );
}

#[test]
fn err_11_english_text_is_preferred() {
    let mut err = stanza_with_text(DC::ItemNotFound, "fr", "Nœud non trouvé");
    assert_eq!(xmpp_to_sip(&err, Target::Full).reason, "Nœud non trouvé");
    err.texts
        .insert("en-GB".into(), "Node not found (GB)".into());
    assert_eq!(
        xmpp_to_sip(&err, Target::Full).reason,
        "Node not found (GB)"
    );
    err.texts.insert(String::new(), "No lang".into());
    assert_eq!(xmpp_to_sip(&err, Target::Full).reason, "No lang");
    err.texts.insert("en".into(), "Node not found".into());
    assert_eq!(xmpp_to_sip(&err, Target::Full).reason, "Node not found");
    // A blank English text does not hide a real one.
    err.texts.insert("en".into(), "  ".into());
    assert_eq!(xmpp_to_sip(&err, Target::Full).reason, "No lang");
}

#[test]
fn err_11_crlf_injection_never_reaches_status_line() {
    let err = stanza_with_text(
        DC::Forbidden,
        "en",
        "nope\r\nVia: SIP/2.0/UDP evil\r\n\r\nINVITE sip:x SIP/2.0",
    );
    let sip = xmpp_to_sip(&err, Target::Full);
    assert_eq!(sip.code, 403);
    assert!(!sip.reason.contains(['\r', '\n']));
    assert_eq!(
        sip.reason,
        "nope Via: SIP/2.0/UDP evil INVITE sip:x SIP/2.0"
    );
    // Other line breaks and controls too.
    let sip = SipStatus::with_reason(480, "a\u{85}b\u{2028}c\u{0}d\u{1b}[31me\tf");
    assert_eq!(sip.reason, "a b c d %5B31me f");
}

#[test]
fn err_11_reason_is_trimmed_collapsed_and_bounded() {
    let long = "x".repeat(1000);
    let sip = xmpp_to_sip(&stanza_with_text(DC::Conflict, "en", &long), Target::Full);
    assert_eq!(sip.reason.chars().count(), MAX_REASON_CHARS);
    let multibyte = "ü".repeat(300);
    assert_eq!(
        SipStatus::with_reason(400, multibyte)
            .reason
            .chars()
            .count(),
        MAX_REASON_CHARS
    );
    assert_eq!(
        SipStatus::with_reason(400, "  spaced \t\t out  ").reason,
        "spaced out"
    );
    // Nothing left -> the standard phrase.
    assert_eq!(
        SipStatus::with_reason(486, "\r\n\u{202E}").reason,
        "Busy Here"
    );
    assert_eq!(SipStatus::with_reason(499, "").reason, "Unknown");
}

#[test]
fn err_11_reason_follows_rfc3261_grammar() {
    assert_eq!(
        SipStatus::with_reason(400, "bad <foo> \"x\" 100% {ok} %41").reason,
        "bad %3Cfoo%3E %22x%22 100%25 %7Bok%7D %41"
    );
    // Truncation never splits an escape.
    let sip = SipStatus::with_reason(400, format!("{}<", "a".repeat(126)));
    assert_eq!(sip.reason, "a".repeat(126));
    // Bidi overrides are dropped, not kept invisibly.
    assert_eq!(SipStatus::with_reason(400, "ab\u{202E}cd").reason, "abcd");
}

#[test]
fn err_11_sip_reason_to_xmpp_text_is_one_line() {
    let err = sip_to_xmpp(486, Some("Busy\r\n Here\u{0}"), None);
    assert_eq!(err.text.as_deref(), Some("Busy Here"));
    assert_eq!(sip_to_xmpp(486, Some(""), None).text, None);
    let long = "y".repeat(5000);
    let err = sip_to_xmpp(486, Some(&long), None);
    assert_eq!(err.text.map(|t| t.chars().count()), Some(MAX_TEXT_CHARS));
}

#[test]
fn sip_status_standard_phrases() {
    let cases = [
        (301, "Moved Permanently"),
        (404, "Not Found"),
        (430, "Flow Failed"),
        (439, "First Hop Lacks Outbound Support"),
        (440, "Max-Breadth Exceeded"),
        (486, "Busy Here"),
        (489, "Bad Event"),
        (494, "Security Agreement Required"),
        (504, "Server Time-out"),
        (604, "Does Not Exist Anywhere"),
    ];
    for (code, reason) in cases {
        assert_eq!(SipStatus::new(code).reason, reason);
    }
    assert_eq!(SipStatus::new(0).reason, "Unknown");
    assert_eq!(SipStatus::new(486).to_string(), "486 Busy Here");
    // Every code Table E1 can produce has a real phrase.
    for condition in all_conditions() {
        for target in [Target::Full, Target::Bare] {
            let code = tables::e1_code(&condition, target);
            assert!(tables::standard_reason(code).is_some(), "{code}");
        }
    }
}

#[test]
fn err_14_rejection_from_xmpp() {
    let r = Rejection::from_xmpp(DC::PolicyViolation, Target::Bare, "message too large");
    assert_eq!(r.sip, SipStatus::with_reason(403, "message too large"));
    assert_eq!(r.xmpp.condition, DC::PolicyViolation);
    assert_eq!(r.xmpp.type_, ErrorType::Modify);
    assert_eq!(r.xmpp.text.as_deref(), Some("message too large"));
    let r = Rejection::from_xmpp(DC::ItemNotFound, Target::Full, "");
    assert_eq!(r.sip, SipStatus::new(404));
    assert_eq!(r.xmpp.text, None);
}

#[test]
fn err_14_rejection_from_sip() {
    let r = Rejection::from_sip(415, "Unsupported Media Type");
    assert_eq!(r.sip, SipStatus::new(415));
    assert_eq!(r.xmpp.condition, DC::NotAcceptable);
    assert_eq!(r.xmpp.type_, ErrorType::Modify);
    assert_eq!(r.xmpp.text.as_deref(), Some("Unsupported Media Type"));
    let r = Rejection::from_sip(488, "");
    assert_eq!(r.sip.reason, "Not Acceptable Here");
    assert_eq!(r.xmpp.text, None);
    let r = Rejection::from_sip(403, "x\r\nEvil: 1");
    assert_eq!(r.sip.reason, "x Evil: 1");
    assert_eq!(r.xmpp.text.as_deref(), Some("x Evil: 1"));
}

#[test]
fn err_12_rejection_explicit_and_display() {
    let r = Rejection::explicit(
        SipStatus::with_reason(403, "SIPS not supported via XMPP"),
        XmppError::new(DC::Forbidden).with_text("SIPS not supported via XMPP"),
    );
    assert_eq!(r.to_string(), "403 SIPS not supported via XMPP / forbidden");
    let as_error: &dyn std::error::Error = &r;
    assert!(as_error.source().is_none());
}

#[test]
fn err_12_deviations_are_documented() {
    for id in ["ERR-6", "ERR-7", "ERR-10", "ERR-12"] {
        assert!(
            DEVIATIONS.iter().any(|(k, _)| k.starts_with(id)),
            "missing {id}"
        );
    }
    assert!(DEVIATIONS.iter().all(|(_, why)| !why.is_empty()));
}

/// Free text with a heavy dose of the characters the sanitizer has to deal with.
fn hostile_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec![
            '\r', '\n', '\t', '\0', '%', '<', '"', ' ', '\u{85}', '\u{2028}', '\u{202E}', 'ü',
            'A', 'f', '4',
        ]),
    ];
    prop::collection::vec(c, 0..400).prop_map(|v| v.into_iter().collect())
}

/// RFC 3261 §25.1 Reason-Phrase characters (with escapes checked separately).
fn reason_char_ok(c: char) -> bool {
    !c.is_ascii() || c.is_ascii_alphanumeric() || " ;/?:@&=+$,-_.!~*'()%".contains(c)
}

proptest! {
    #[test]
    fn err_11_any_text_gives_a_safe_reason_phrase(text in hostile_text()) {
        let sip = xmpp_to_sip(&stanza_with_text(DC::Forbidden, "en", &text), Target::Full);
        let r = &sip.reason;
        prop_assert!(!r.is_empty());
        prop_assert!(r.chars().count() <= MAX_REASON_CHARS);
        prop_assert!(!r.chars().any(char::is_control));
        prop_assert!(r.chars().all(reason_char_ok), "{:?}", r);
        prop_assert!(!r.starts_with(' ') && !r.ends_with(' ') && !r.contains("  "));
        let bytes = r.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'%' {
                prop_assert!(
                    bytes.len() > i + 2
                        && bytes[i + 1].is_ascii_hexdigit()
                        && bytes[i + 2].is_ascii_hexdigit()
                );
            }
        }
    }

    #[test]
    fn err_1_any_code_and_reason_round_trips_through_xml(
        code in any::<u16>(),
        reason in hostile_text(),
        moved in hostile_text(),
    ) {
        let err = sip_to_xmpp(code, Some(&reason), Some(&moved));
        // What we emit must be valid XML that xmpp-parsers reads back unchanged.
        let mut bytes = Vec::new();
        Element::from(err.to_stanza_error()).write_to(&mut bytes).unwrap();
        let parsed: Element = String::from_utf8(bytes).unwrap().parse().unwrap();
        let back = StanzaError::try_from(parsed).unwrap();
        prop_assert_eq!(back, err.to_stanza_error());
    }
}

#[test]
fn err_11_literal_escape_is_never_cut_at_the_length_limit() {
    // 126 visible characters, then a valid escape: the limit falls inside it.
    let text = format!("{}%AB", "a".repeat(126));
    let sip = xmpp_to_sip(&stanza_with_text(DC::Forbidden, "en", &text), Target::Full);
    assert!(!sip.reason.contains('%'), "{:?}", sip.reason);
    assert_eq!(sip.reason.chars().count(), 126);
    let text = format!("{}%AB", "a".repeat(120));
    let sip = xmpp_to_sip(&stanza_with_text(DC::Forbidden, "en", &text), Target::Full);
    assert!(sip.reason.ends_with("%AB"), "{:?}", sip.reason);
}
