//! Call outcome mapping, SIP final status <-> Jingle `<reason/>` (XEP-0166 §7.4), per
//! CHECKLIST MEDIA-23 (the draft leaves it open; this is the table real clients expect:
//! Conversations and Dino show "busy" or "declined" only for those reasons).

use tokio_xmpp::minidom::Element;
use xmpp_parsers::ns;

/// The XEP-0166 reason conditions stox sends or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `<alternative-session/>` (read only; mapped as a general error).
    AlternativeSession,
    /// `<busy/>`.
    Busy,
    /// `<cancel/>`.
    Cancel,
    /// `<connectivity-error/>`.
    ConnectivityError,
    /// `<decline/>`.
    Decline,
    /// `<expired/>`.
    Expired,
    /// `<failed-application/>`.
    FailedApplication,
    /// `<failed-transport/>`.
    FailedTransport,
    /// `<general-error/>`.
    GeneralError,
    /// `<gone/>`.
    Gone,
    /// `<incompatible-parameters/>`.
    IncompatibleParameters,
    /// `<media-error/>`.
    MediaError,
    /// `<security-error/>`.
    SecurityError,
    /// `<success/>`.
    Success,
    /// `<timeout/>`.
    Timeout,
    /// `<unsupported-applications/>`.
    UnsupportedApplications,
    /// `<unsupported-transports/>`.
    UnsupportedTransports,
}

const NAMES: [(Reason, &str); 17] = [
    (Reason::AlternativeSession, "alternative-session"),
    (Reason::Busy, "busy"),
    (Reason::Cancel, "cancel"),
    (Reason::ConnectivityError, "connectivity-error"),
    (Reason::Decline, "decline"),
    (Reason::Expired, "expired"),
    (Reason::FailedApplication, "failed-application"),
    (Reason::FailedTransport, "failed-transport"),
    (Reason::GeneralError, "general-error"),
    (Reason::Gone, "gone"),
    (Reason::IncompatibleParameters, "incompatible-parameters"),
    (Reason::MediaError, "media-error"),
    (Reason::SecurityError, "security-error"),
    (Reason::Success, "success"),
    (Reason::Timeout, "timeout"),
    (Reason::UnsupportedApplications, "unsupported-applications"),
    (Reason::UnsupportedTransports, "unsupported-transports"),
];

impl Reason {
    /// The element name.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, n)| *n)
            .unwrap_or("general-error")
    }

    /// Parse an element name.
    pub fn from_name(name: &str) -> Option<Reason> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }

    /// Read the condition of a `<reason/>` element; an unknown or missing one reads as
    /// `general-error` (XEP-0166 §7.4 lets a party extend the set).
    pub fn from_element(reason: &Element) -> Reason {
        reason
            .children()
            .filter(|c| c.ns() == ns::JINGLE)
            .find_map(|c| Reason::from_name(c.name()))
            .unwrap_or(Reason::GeneralError)
    }

    /// `<reason><condition/>[<text/>]</reason>` in the Jingle namespace.
    pub fn to_element(self, text: Option<&str>) -> Element {
        let mut b = Element::builder("reason", ns::JINGLE)
            .append(Element::builder(self.name(), ns::JINGLE).build());
        if let Some(t) = text {
            b = b.append(Element::builder("text", ns::JINGLE).append(t).build());
        }
        b.build()
    }

    /// The reason for a SIP final failure to an INVITE (MEDIA-23); `2xx` never gets here.
    pub fn from_sip(code: u16) -> Reason {
        match code {
            486 | 600 => Reason::Busy,
            603 => Reason::Decline,
            487 => Reason::Cancel,
            408 | 480 => Reason::Timeout,
            488 | 606 => Reason::IncompatibleParameters,
            404 | 410 | 604 => Reason::Gone,
            415 | 420 => Reason::UnsupportedApplications,
            _ => Reason::GeneralError,
        }
    }

    /// The SIP final response the callee side sends when the Jingle responder ends an
    /// unanswered call with this reason (MEDIA-23 reverse). `None` for reasons that do not
    /// refuse a call (`success`).
    pub fn to_sip(self) -> Option<u16> {
        Some(match self {
            Reason::Busy => 486,
            Reason::Decline => 603,
            Reason::UnsupportedApplications
            | Reason::IncompatibleParameters
            | Reason::UnsupportedTransports
            | Reason::FailedApplication
            | Reason::SecurityError => 488,
            Reason::Timeout | Reason::Expired => 408,
            Reason::Gone => 410,
            Reason::Cancel => 487,
            Reason::Success => return None,
            Reason::AlternativeSession
            | Reason::ConnectivityError
            | Reason::FailedTransport
            | Reason::GeneralError
            | Reason::MediaError => 500,
        })
    }
}
