//! The two mapping tables of RFC 7247 §7 as plain `match`es: §7.1 Table 2 (checklist Table E1,
//! XMPP condition -> SIP code) and §7.2 Table 3 (checklist Table E2, SIP code -> XMPP condition),
//! plus the RFC 6120 §8.3.3 suggested error types and the RFC 3261 §21 reason phrases.
//!
//! Everything here is a total function over its input type: no lookup can fail or panic, so the
//! public API in `mod.rs` never has to handle a "not in table" case except by class defaults.

use super::{DefinedCondition, ErrorType, Target};

/// RFC 6120 §8.3.3 suggested `error/@type` for a condition (checklist ERR-13, Table E1 last
/// column). Where RFC 6120 offers two types we pick the first one it names, except where noted.
pub(super) fn suggested_type(condition: &DefinedCondition) -> ErrorType {
    use DefinedCondition as C;
    match condition {
        C::BadRequest => ErrorType::Modify,
        C::Conflict => ErrorType::Cancel,
        // RFC 6120: "cancel" or "modify". A missing feature cannot be fixed by resending a
        // modified stanza in the general case, so "cancel".
        C::FeatureNotImplemented => ErrorType::Cancel,
        C::Forbidden => ErrorType::Auth,
        C::Gone { .. } => ErrorType::Cancel,
        C::InternalServerError => ErrorType::Cancel,
        C::ItemNotFound => ErrorType::Cancel,
        C::JidMalformed => ErrorType::Modify,
        C::NotAcceptable => ErrorType::Modify,
        C::NotAllowed => ErrorType::Cancel,
        C::NotAuthorized => ErrorType::Auth,
        // RFC 6120: "modify" or "wait" depending on the policy. The SIP codes mapped here
        // (413, 414, 440, 489, 513) are all about the request's shape, so "modify".
        C::PolicyViolation => ErrorType::Modify,
        C::RecipientUnavailable => ErrorType::Wait,
        C::Redirect { .. } => ErrorType::Modify,
        C::RegistrationRequired => ErrorType::Auth,
        C::RemoteServerNotFound => ErrorType::Cancel,
        C::RemoteServerTimeout => ErrorType::Wait,
        C::ResourceConstraint => ErrorType::Wait,
        C::ServiceUnavailable => ErrorType::Cancel,
        C::SubscriptionRequired => ErrorType::Auth,
        // RFC 6120 allows any type; "cancel" is the least misleading default for an
        // unclassified failure (the sender should not blindly retry).
        C::UndefinedCondition => ErrorType::Cancel,
        // RFC 6120: "wait" or "modify". The only SIP source is 491 Request Pending, which
        // means "retry later", so "wait".
        C::UnexpectedRequest => ErrorType::Wait,
    }
}

/// The element name of a condition in `urn:ietf:params:xml:ns:xmpp-stanzas`.
pub(super) fn condition_name(condition: &DefinedCondition) -> &'static str {
    use DefinedCondition as C;
    match condition {
        C::BadRequest => "bad-request",
        C::Conflict => "conflict",
        C::FeatureNotImplemented => "feature-not-implemented",
        C::Forbidden => "forbidden",
        C::Gone { .. } => "gone",
        C::InternalServerError => "internal-server-error",
        C::ItemNotFound => "item-not-found",
        C::JidMalformed => "jid-malformed",
        C::NotAcceptable => "not-acceptable",
        C::NotAllowed => "not-allowed",
        C::NotAuthorized => "not-authorized",
        C::PolicyViolation => "policy-violation",
        C::RecipientUnavailable => "recipient-unavailable",
        C::Redirect { .. } => "redirect",
        C::RegistrationRequired => "registration-required",
        C::RemoteServerNotFound => "remote-server-not-found",
        C::RemoteServerTimeout => "remote-server-timeout",
        C::ResourceConstraint => "resource-constraint",
        C::ServiceUnavailable => "service-unavailable",
        C::SubscriptionRequired => "subscription-required",
        C::UndefinedCondition => "undefined-condition",
        C::UnexpectedRequest => "unexpected-request",
    }
}

/// Inverse of [`condition_name`]; `<gone/>`/`<redirect/>` come back without an address.
/// Unknown names (including the legacy `payment-required`) give `None`.
pub(super) fn condition_from_name(name: &str) -> Option<DefinedCondition> {
    use DefinedCondition as C;
    Some(match name {
        "bad-request" => C::BadRequest,
        "conflict" => C::Conflict,
        "feature-not-implemented" => C::FeatureNotImplemented,
        "forbidden" => C::Forbidden,
        "gone" => C::Gone { new_address: None },
        "internal-server-error" => C::InternalServerError,
        "item-not-found" => C::ItemNotFound,
        "jid-malformed" => C::JidMalformed,
        "not-acceptable" => C::NotAcceptable,
        "not-allowed" => C::NotAllowed,
        "not-authorized" => C::NotAuthorized,
        "policy-violation" => C::PolicyViolation,
        "recipient-unavailable" => C::RecipientUnavailable,
        "redirect" => C::Redirect { new_address: None },
        "registration-required" => C::RegistrationRequired,
        "remote-server-not-found" => C::RemoteServerNotFound,
        "remote-server-timeout" => C::RemoteServerTimeout,
        "resource-constraint" => C::ResourceConstraint,
        "service-unavailable" => C::ServiceUnavailable,
        "subscription-required" => C::SubscriptionRequired,
        "undefined-condition" => C::UndefinedCondition,
        "unexpected-request" => C::UnexpectedRequest,
        _ => return None,
    })
}

/// Table E1 (RFC 7247 §7.1 Table 2): XMPP condition -> SIP response code.
pub(super) fn e1_code(condition: &DefinedCondition, target: Target) -> u16 {
    use DefinedCondition as C;
    // ERR-4 (§7.1 note 2): 4xx concerns one endpoint (full JID), 6xx the user everywhere
    // (bare JID).
    let per_target = |full: u16, bare: u16| match target {
        Target::Full => full,
        Target::Bare => bare,
    };
    match condition {
        C::BadRequest | C::Conflict | C::JidMalformed => 400,
        // ERR-3 (§7.1 note 1): a resource lacking a feature is "method not allowed here"; a
        // user (server) lacking it is "not implemented".
        C::FeatureNotImplemented => per_target(405, 501),
        C::Forbidden => per_target(403, 603),
        // ERR-5 (§7.1 note 3, MUST): 301 only when there is a new address to put in Contact.
        C::Gone { new_address } => {
            if has_address(new_address.as_deref()) {
                301
            } else {
                410
            }
        }
        C::InternalServerError | C::ResourceConstraint => 500,
        C::ItemNotFound => per_target(404, 604),
        C::NotAcceptable => per_target(406, 606),
        C::NotAllowed | C::PolicyViolation => 403,
        C::NotAuthorized => 401,
        C::RecipientUnavailable => per_target(480, 600),
        C::Redirect { .. } => 302,
        C::RegistrationRequired => 407,
        // ERR-6 (§7.1 note 4): 404 "does not exist" vs 408 "cannot be resolved". The stanza
        // error carries no such distinction, and a server that exists but does not answer in
        // time reports <remote-server-timeout/> (-> 408) instead, so 404. See DEVIATIONS.
        C::RemoteServerNotFound => 404,
        C::RemoteServerTimeout => 408,
        // ERR-7 (§7.1 note 5): never 503 — a SIP client would treat the whole gateway as
        // down. A full JID that answers this lacks the feature (405); for a bare JID the
        // server refuses the service for that user (403), which also avoids disclosing
        // whether the account exists. See DEVIATIONS.
        C::ServiceUnavailable => per_target(405, 403),
        C::SubscriptionRequired | C::UndefinedCondition => 400,
        // Table 2 allows 491 or 400; 491 Request Pending is the closer meaning
        // ("out of order, try again later"). See DEVIATIONS.
        C::UnexpectedRequest => 491,
    }
}

/// Whether `<gone/>` character data counts as a new address: whitespace alone does not.
pub(super) fn has_address(data: Option<&str>) -> bool {
    data.is_some_and(|s| !s.trim().is_empty())
}

/// Table E2 (RFC 7247 §7.2 Table 3): SIP response code -> XMPP condition, for codes already
/// known to be in 300..=699. `moved_to` is the already-mapped `xmpp:` URI of the Contact.
pub(super) fn e2_condition(code: u16, moved_to: Option<String>) -> DefinedCondition {
    use DefinedCondition as C;
    match code {
        // ERR-9 (§7.2 note 1): 301 MUST carry the new address; 410 MUST NOT.
        301 => C::Gone {
            new_address: moved_to,
        },
        410 => C::Gone { new_address: None },
        380 => C::NotAcceptable,
        // 300, 302, 305 and the 3xx class default. RFC 6120 §8.3.3.14 says <redirect/>
        // SHOULD carry the alternate address, so the Contact goes in when we have one.
        300..=399 => C::Redirect {
            new_address: moved_to,
        },

        400 | 402 | 493 => C::BadRequest,
        401 => C::NotAuthorized,
        // ERR-10: alternatives not-allowed / policy-violation are scenario-dependent and
        // cannot be told from a final response; the table's primary entry is used.
        403 => C::Forbidden,
        // ERR-10: alternative remote-server-not-found not chosen (see DEVIATIONS).
        404 | 481 | 484 | 485 | 604 => C::ItemNotFound,
        405 | 420 | 439 | 501 => C::FeatureNotImplemented,
        406 | 415 | 416 | 421 | 482 | 483 | 488 | 505 | 606 => C::NotAcceptable,
        407 => C::RegistrationRequired,
        // ERR-10: alternative remote-server-not-found not chosen (see DEVIATIONS).
        408 | 504 => C::RemoteServerTimeout,
        413 | 414 | 440 | 489 | 513 => C::PolicyViolation,
        423 => C::ResourceConstraint,
        430 | 480 | 486 | 487 | 600 | 603 => C::RecipientUnavailable,
        491 => C::UnexpectedRequest,
        502 => C::RemoteServerNotFound,
        // 503 deliberately lands on internal-server-error, not service-unavailable (§7.2
        // note 9: the semantics differ, see ERR-7). It is also the 5xx class default.
        500..=599 => C::InternalServerError,
        // ERR-8 class defaults for the remaining 4xx and 6xx codes.
        400..=499 => C::BadRequest,
        600..=699 => C::RecipientUnavailable,
        // Unreachable through the public API (it filters 300..=699 first), but a total
        // match keeps this function panic-free on its own.
        _ => C::InternalServerError,
    }
}

/// Standard reason phrase: RFC 3261 §21, plus the extension codes Table E2 and the STOX
/// parts use (RFC 3265/6665, 3329, 3903, 4028, 4412, 4474, 5079, 5360, 5393, 5626, 5839,
/// 6086, 6442, 3312, 8197, 8599, 8688, 3892). `None` for an unregistered code.
pub(super) fn standard_reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        424 => "Bad Location Information",
        428 => "Use Identity Header",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        433 => "Anonymity Disallowed",
        436 => "Bad Identity-Info",
        437 => "Unsupported Certificate",
        438 => "Invalid Identity Header",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        469 => "Bad Info Package",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        555 => "Push Notification Service Not Supported",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        608 => "Rejected",
        _ => return None,
    })
}
