//! Row-by-row tests of RFC 7247 §7.1 Table 2 (checklist Table E1, XMPP -> SIP, both
//! full- and bare-JID targets, with the RFC 6120 §8.3 suggested type) and §7.2 Table 3
//! (checklist Table E2, SIP -> XMPP, condition and type), plus the class defaults (ERR-8) and
//! out-of-range codes (ERR-1). Test names cite checklist IDs.

use super::tests::{all_conditions, stanza, stanza_with_text};
use super::*;
use xmpp_parsers::minidom::Element;
use DefinedCondition as DC;

/// One Table E1 row: SIP code for a full-JID and a bare-JID target, and the RFC 6120
/// suggested type (last column), which is what we emit when we generate that condition.
macro_rules! e1_row {
    ($name:ident, $cond:expr, full => $full:expr, bare => $bare:expr, $ty:expr) => {
        #[test]
        fn $name() {
            let condition: DefinedCondition = $cond;
            let full = xmpp_to_sip(&stanza(condition.clone()), Target::Full);
            let bare = xmpp_to_sip(&stanza(condition.clone()), Target::Bare);
            assert_eq!(full.code, $full, "full JID target");
            assert_eq!(bare.code, $bare, "bare JID target");
            // Without <text/> the standard phrase is used (ERR-11 is only a MAY).
            assert_eq!(full, SipStatus::new($full));
            assert_eq!(bare, SipStatus::new($bare));
            assert_eq!(XmppError::new(condition).type_, $ty, "RFC 6120 type");
        }
    };
}

e1_row!(err_2_e1_01_bad_request_is_400, DC::BadRequest, full => 400, bare => 400, ErrorType::Modify);
e1_row!(err_2_e1_02_conflict_is_400, DC::Conflict, full => 400, bare => 400, ErrorType::Cancel);
e1_row!(err_3_e1_03_feature_not_implemented_full_405_bare_501, DC::FeatureNotImplemented, full => 405, bare => 501, ErrorType::Cancel);
e1_row!(err_4_e1_04_forbidden_full_403_bare_603, DC::Forbidden, full => 403, bare => 603, ErrorType::Auth);
e1_row!(err_5_e1_05_gone_with_address_is_301, DC::Gone { new_address: Some("xmpp:romeo@example.net".into()) }, full => 301, bare => 301, ErrorType::Cancel);
e1_row!(err_5_e1_05_gone_without_address_is_410, DC::Gone { new_address: None }, full => 410, bare => 410, ErrorType::Cancel);
e1_row!(err_5_e1_05_gone_with_blank_address_is_410, DC::Gone { new_address: Some(" \n ".into()) }, full => 410, bare => 410, ErrorType::Cancel);
e1_row!(err_2_e1_06_internal_server_error_is_500, DC::InternalServerError, full => 500, bare => 500, ErrorType::Cancel);
e1_row!(err_4_e1_07_item_not_found_full_404_bare_604, DC::ItemNotFound, full => 404, bare => 604, ErrorType::Cancel);
e1_row!(err_2_e1_08_jid_malformed_is_400, DC::JidMalformed, full => 400, bare => 400, ErrorType::Modify);
e1_row!(err_4_e1_09_not_acceptable_full_406_bare_606, DC::NotAcceptable, full => 406, bare => 606, ErrorType::Modify);
e1_row!(err_2_e1_10_not_allowed_is_403, DC::NotAllowed, full => 403, bare => 403, ErrorType::Cancel);
e1_row!(err_2_e1_11_not_authorized_is_401, DC::NotAuthorized, full => 401, bare => 401, ErrorType::Auth);
e1_row!(err_2_e1_12_policy_violation_is_403, DC::PolicyViolation, full => 403, bare => 403, ErrorType::Modify);
e1_row!(err_4_e1_13_recipient_unavailable_full_480_bare_600, DC::RecipientUnavailable, full => 480, bare => 600, ErrorType::Wait);
e1_row!(err_2_e1_14_redirect_is_302, DC::Redirect { new_address: None }, full => 302, bare => 302, ErrorType::Modify);
e1_row!(err_2_e1_14_redirect_with_address_is_302, DC::Redirect { new_address: Some("xmpp:r@example.net".into()) }, full => 302, bare => 302, ErrorType::Modify);
e1_row!(err_2_e1_15_registration_required_is_407, DC::RegistrationRequired, full => 407, bare => 407, ErrorType::Auth);
e1_row!(err_6_e1_16_remote_server_not_found_is_404, DC::RemoteServerNotFound, full => 404, bare => 404, ErrorType::Cancel);
e1_row!(err_2_e1_17_remote_server_timeout_is_408, DC::RemoteServerTimeout, full => 408, bare => 408, ErrorType::Wait);
e1_row!(err_2_e1_18_resource_constraint_is_500, DC::ResourceConstraint, full => 500, bare => 500, ErrorType::Wait);
e1_row!(err_7_e1_19_service_unavailable_full_405_bare_403, DC::ServiceUnavailable, full => 405, bare => 403, ErrorType::Cancel);
e1_row!(err_2_e1_20_subscription_required_is_400, DC::SubscriptionRequired, full => 400, bare => 400, ErrorType::Auth);
e1_row!(err_2_e1_21_undefined_condition_is_400, DC::UndefinedCondition, full => 400, bare => 400, ErrorType::Cancel);
e1_row!(err_2_e1_22_unexpected_request_is_491, DC::UnexpectedRequest, full => 491, bare => 491, ErrorType::Wait);

#[test]
fn err_4_item_not_found_bare_jid_is_604() {
    let sip = xmpp_to_sip(&stanza(DC::ItemNotFound), Target::Bare);
    assert_eq!(sip, SipStatus::with_reason(604, "Does Not Exist Anywhere"));
}

#[test]
fn err_2_e1_payment_required_legacy_and_unknown_names_are_400() {
    assert_eq!(
        condition_name_to_sip("payment-required", Target::Full).code,
        400
    );
    assert_eq!(
        condition_name_to_sip("no-such-thing", Target::Bare).code,
        400
    );
    assert_eq!(condition_name_to_sip("", Target::Bare).code, 400);
    // Known names go through Table E1 like a parsed error.
    assert_eq!(
        condition_name_to_sip("item-not-found", Target::Bare).code,
        604
    );
    assert_eq!(condition_name_to_sip("gone", Target::Full).code, 410);
    for condition in all_conditions() {
        let name = tables::condition_name(&condition);
        for target in [Target::Full, Target::Bare] {
            assert_eq!(
                condition_name_to_sip(name, target),
                xmpp_to_sip(&stanza(condition.clone()), target),
                "{name}"
            );
        }
    }
}

#[test]
fn err_5_gone_contact_returns_new_address_only_for_gone_with_data() {
    let gone = |a: Option<&str>| {
        stanza(DC::Gone {
            new_address: a.map(str::to_owned),
        })
    };
    assert_eq!(
        gone_contact(&gone(Some(" xmpp:romeo@example.net "))),
        Some("xmpp:romeo@example.net".to_owned())
    );
    assert_eq!(
        gone_contact(&gone(Some("romeo@example.net"))),
        Some("romeo@example.net".to_owned())
    );
    assert_eq!(gone_contact(&gone(None)), None);
    assert_eq!(gone_contact(&gone(Some("   "))), None);
    let redirect = stanza(DC::Redirect {
        new_address: Some("xmpp:r@example.net".into()),
    });
    assert_eq!(gone_contact(&redirect), None);
}

#[test]
fn err_5_gone_parsed_from_wire_maps_to_301_and_410() {
    let with: Element = "<error xmlns='jabber:component:accept' type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:romeo@example.net</gone></error>".parse().unwrap();
    let without: Element = "<error xmlns='jabber:component:accept' type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>".parse().unwrap();
    let with = StanzaError::try_from(with).unwrap();
    let without = StanzaError::try_from(without).unwrap();
    assert_eq!(xmpp_to_sip(&with, Target::Bare).code, 301);
    assert_eq!(
        gone_contact(&with).as_deref(),
        Some("xmpp:romeo@example.net")
    );
    assert_eq!(xmpp_to_sip(&without, Target::Bare).code, 410);
    assert_eq!(gone_contact(&without), None);
}

#[test]
fn err_7_service_unavailable_is_never_503() {
    for target in [Target::Full, Target::Bare] {
        for text in ["", "Service Unavailable", "503"] {
            let err = stanza_with_text(DC::ServiceUnavailable, "en", text);
            let code = xmpp_to_sip(&err, target).code;
            assert!(code == 403 || code == 405, "{code}");
        }
    }
    for condition in all_conditions() {
        for target in [Target::Full, Target::Bare] {
            assert_ne!(xmpp_to_sip(&stanza(condition.clone()), target).code, 503);
        }
    }
}

/// One Table E2 row: condition AND error type, no text when no reason is given.
macro_rules! e2_row {
    ($name:ident, $code:expr => $cond:expr, $ty:expr) => {
        #[test]
        fn $name() {
            let err = sip_to_xmpp($code, None, None);
            assert_eq!(err.condition, $cond);
            assert_eq!(err.type_, $ty);
            assert_eq!(err.text, None);
        }
    };
}

const NO_REDIRECT: DC = DC::Redirect { new_address: None };

e2_row!(err_8_e2_3xx_class_default_is_redirect, 399 => NO_REDIRECT, ErrorType::Modify);
e2_row!(err_8_e2_300_redirect, 300 => NO_REDIRECT, ErrorType::Modify);
e2_row!(err_9_e2_301_without_contact_is_gone_without_data, 301 => DC::Gone { new_address: None }, ErrorType::Cancel);
e2_row!(err_8_e2_302_redirect, 302 => NO_REDIRECT, ErrorType::Modify);
e2_row!(err_8_e2_305_redirect, 305 => NO_REDIRECT, ErrorType::Modify);
e2_row!(err_8_e2_380_not_acceptable, 380 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_4xx_class_default_is_bad_request, 499 => DC::BadRequest, ErrorType::Modify);
e2_row!(err_8_e2_4xx_class_default_422_is_bad_request, 422 => DC::BadRequest, ErrorType::Modify);
e2_row!(err_8_e2_400_bad_request, 400 => DC::BadRequest, ErrorType::Modify);
e2_row!(err_8_e2_401_not_authorized, 401 => DC::NotAuthorized, ErrorType::Auth);
e2_row!(err_8_e2_402_bad_request, 402 => DC::BadRequest, ErrorType::Modify);
e2_row!(err_10_e2_403_forbidden, 403 => DC::Forbidden, ErrorType::Auth);
e2_row!(err_10_e2_404_item_not_found, 404 => DC::ItemNotFound, ErrorType::Cancel);
e2_row!(err_8_e2_405_feature_not_implemented, 405 => DC::FeatureNotImplemented, ErrorType::Cancel);
e2_row!(err_8_e2_406_not_acceptable, 406 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_407_registration_required, 407 => DC::RegistrationRequired, ErrorType::Auth);
e2_row!(err_10_e2_408_remote_server_timeout, 408 => DC::RemoteServerTimeout, ErrorType::Wait);
e2_row!(err_9_e2_410_gone_without_data, 410 => DC::Gone { new_address: None }, ErrorType::Cancel);
e2_row!(err_8_e2_413_policy_violation, 413 => DC::PolicyViolation, ErrorType::Modify);
e2_row!(err_8_e2_414_policy_violation, 414 => DC::PolicyViolation, ErrorType::Modify);
e2_row!(err_8_e2_415_not_acceptable, 415 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_416_not_acceptable, 416 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_420_feature_not_implemented, 420 => DC::FeatureNotImplemented, ErrorType::Cancel);
e2_row!(err_8_e2_421_not_acceptable, 421 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_423_resource_constraint, 423 => DC::ResourceConstraint, ErrorType::Wait);
e2_row!(err_8_e2_430_recipient_unavailable, 430 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_439_feature_not_implemented, 439 => DC::FeatureNotImplemented, ErrorType::Cancel);
e2_row!(err_8_e2_440_policy_violation, 440 => DC::PolicyViolation, ErrorType::Modify);
e2_row!(err_8_e2_480_recipient_unavailable, 480 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_481_item_not_found, 481 => DC::ItemNotFound, ErrorType::Cancel);
e2_row!(err_8_e2_482_not_acceptable, 482 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_483_not_acceptable, 483 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_484_item_not_found, 484 => DC::ItemNotFound, ErrorType::Cancel);
e2_row!(err_8_e2_485_item_not_found, 485 => DC::ItemNotFound, ErrorType::Cancel);
e2_row!(err_8_e2_486_recipient_unavailable, 486 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_487_recipient_unavailable, 487 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_488_not_acceptable, 488 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_489_policy_violation, 489 => DC::PolicyViolation, ErrorType::Modify);
e2_row!(err_8_e2_491_unexpected_request, 491 => DC::UnexpectedRequest, ErrorType::Wait);
e2_row!(err_8_e2_493_bad_request, 493 => DC::BadRequest, ErrorType::Modify);
e2_row!(err_8_e2_5xx_class_default_is_internal_server_error, 580 => DC::InternalServerError, ErrorType::Cancel);
e2_row!(err_8_e2_500_internal_server_error, 500 => DC::InternalServerError, ErrorType::Cancel);
e2_row!(err_8_e2_501_feature_not_implemented, 501 => DC::FeatureNotImplemented, ErrorType::Cancel);
e2_row!(err_8_e2_502_remote_server_not_found, 502 => DC::RemoteServerNotFound, ErrorType::Cancel);
e2_row!(err_7_e2_503_internal_server_error_not_service_unavailable, 503 => DC::InternalServerError, ErrorType::Cancel);
e2_row!(err_8_e2_504_remote_server_timeout, 504 => DC::RemoteServerTimeout, ErrorType::Wait);
e2_row!(err_8_e2_505_not_acceptable, 505 => DC::NotAcceptable, ErrorType::Modify);
e2_row!(err_8_e2_513_policy_violation, 513 => DC::PolicyViolation, ErrorType::Modify);
e2_row!(err_8_e2_6xx_class_default_is_recipient_unavailable, 607 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_600_recipient_unavailable, 600 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_603_recipient_unavailable, 603 => DC::RecipientUnavailable, ErrorType::Wait);
e2_row!(err_8_e2_604_item_not_found, 604 => DC::ItemNotFound, ErrorType::Cancel);
e2_row!(err_8_e2_606_not_acceptable, 606 => DC::NotAcceptable, ErrorType::Modify);

#[test]
fn err_9_e2_301_with_moved_to_is_gone_with_data() {
    let err = sip_to_xmpp(301, None, Some("xmpp:romeo@example.net"));
    assert_eq!(
        err.condition,
        DC::Gone {
            new_address: Some("xmpp:romeo@example.net".into())
        }
    );
    assert_eq!(err.type_, ErrorType::Cancel);
    // A blank Contact does not produce an empty-but-present <gone></gone>.
    let blank = sip_to_xmpp(301, None, Some(" \r\n"));
    assert_eq!(blank.condition, DC::Gone { new_address: None });
}

#[test]
fn err_9_e2_410_never_carries_data() {
    let err = sip_to_xmpp(410, Some("Gone"), Some("xmpp:romeo@example.net"));
    assert_eq!(err.condition, DC::Gone { new_address: None });
    let xml = Element::from(err.to_stanza_error());
    let gone = xml.children().next().expect("condition element");
    assert_eq!(gone.name(), "gone");
    assert_eq!(gone.text(), "");
}

#[test]
fn err_8_e2_3xx_redirect_carries_moved_to() {
    let err = sip_to_xmpp(302, None, Some("xmpp:romeo@example.net"));
    assert_eq!(
        err.condition,
        DC::Redirect {
            new_address: Some("xmpp:romeo@example.net".into())
        }
    );
    // Non-3xx codes ignore a Contact.
    assert_eq!(
        sip_to_xmpp(404, None, Some("xmpp:x@y")).condition,
        DC::ItemNotFound
    );
}

#[test]
fn err_1_non_failure_and_garbage_codes_are_internal_server_error() {
    for code in [0, 1, 99, 100, 180, 200, 202, 299, 700, 999, 65535] {
        let err = sip_to_xmpp(code, Some("OK"), Some("xmpp:x@y"));
        assert_eq!(err.condition, DC::InternalServerError, "{code}");
        assert_eq!(err.type_, ErrorType::Cancel);
        assert_eq!(err.text, None);
    }
}

#[test]
fn err_1_every_u16_code_maps_without_panicking() {
    for code in 0..=u16::MAX {
        let err = sip_to_xmpp(code, Some("x\r\ny"), Some("\0"));
        let _ = err.to_stanza_error();
        assert!(!SipStatus::new(code).reason.is_empty());
        let rejection = Rejection::from_sip(code, "");
        assert_eq!(rejection.sip.code, code);
    }
}

#[test]
fn tables_are_not_inverses() {
    // Checklist note under Table E2: a round trip is not the identity.
    let sip = xmpp_to_sip(&stanza(DC::Conflict), Target::Full);
    assert_eq!(sip.code, 400);
    assert_eq!(sip_to_xmpp(sip.code, None, None).condition, DC::BadRequest);
}
