//! Calls: Jingle (XEP-0166/0167 with ICE-UDP XEP-0176, Raw-UDP XEP-0177, DTLS-SRTP XEP-0320,
//! rtcp-fb XEP-0293, hdrext XEP-0294, grouping XEP-0338, ssma XEP-0339) <-> SIP offer/answer
//! with SDP (RFC 3264, RFC 4566), after draft-ietf-stox-media-07 §5, §7-§11 and
//! ../shared/spec/CHECKLIST.md part 6 (MEDIA-1..26).
//!
//! Pure translators only, no I/O:
//! - [`model`]: the offer/answer description both sides are parsed into and rendered from;
//! - [`sdp`]: SDP <-> model (sdp-types as the SDP model, as for MSRP);
//! - [`jingle`]: Jingle `<content>` elements <-> model. Parsed from minidom elements by hand,
//!   not with xmpp-parsers' typed Jingle: those types reject children they do not know
//!   (`<encryption>`, `<extmap-allow-mixed>` that Conversations sends) and keep the ICE
//!   `ufrag`/`pwd` private, so a real client's offer would not get through them;
//! - [`fmtp`]: `a=fmtp` <-> `<parameter/>` (MEDIA-19..21);
//! - [`ice`]: foundations, generations and candidate ids (MEDIA-11..13);
//! - [`reason`]: SIP status <-> Jingle `<reason/>` (MEDIA-23).

pub mod call;
pub mod fmtp;
pub mod ice;
pub mod jingle;
pub mod model;
pub mod reason;
pub mod relay;
pub mod sdp;

#[cfg(test)]
pub(crate) mod tests;

use crate::errmap::{SipStatus, XmppError};
use reason::Reason;
use xmpp_parsers::stanza_error::DefinedCondition;

/// Upper bounds on what one offer or answer may carry. Real calls use a handful of each;
/// the bounds keep a hostile offer from costing more than a few kilobytes of state.
pub mod limits {
    /// Contents (`m=` lines) per description.
    pub const CONTENTS: usize = 16;
    /// Payload types per content.
    pub const PAYLOADS: usize = 64;
    /// Candidates per content.
    pub const CANDIDATES: usize = 64;
    /// fmtp parameters per payload type, rtcp-fb entries per payload, header extensions,
    /// sources and crypto lines per content.
    pub const ITEMS: usize = 64;
    /// Length of any one token or value copied from the peer, in bytes.
    pub const VALUE: usize = 1024;
}

/// Why an offer or answer cannot be translated. Each carries its rendering on both sides:
/// the SIP side answers 488 (RFC 3261 §21.4.26; the corpus rule), the Jingle side
/// gets an IQ error for a malformed request or a `session-terminate` reason for one we
/// understood but cannot serve (XEP-0166 §7.2.8, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// The SDP or Jingle does not follow its grammar.
    Malformed(String),
    /// Well-formed, but nothing in it can be mapped (no RTP audio/video, an unknown profile,
    /// `a=setup:holdconn`, TCP-only candidates).
    Unsupported(String),
    /// A transport we cannot express on the other side.
    Transport(String),
    /// More than [`limits`] allows.
    TooLarge(&'static str),
}

impl MediaError {
    /// The SIP final response for an INVITE / re-INVITE carrying this.
    pub fn sip_status(&self) -> SipStatus {
        SipStatus::new(488)
    }

    /// The IQ error for a Jingle request carrying this (XEP-0166 §8: a request the responder
    /// cannot parse is `bad-request`; one it parses but cannot serve is acknowledged and
    /// then terminated with [`MediaError::jingle_reason`]).
    pub fn xmpp_error(&self) -> XmppError {
        XmppError::new(DefinedCondition::BadRequest).with_text(self.to_string())
    }

    /// Whether the Jingle request should be refused at IQ level rather than acknowledged
    /// and terminated.
    pub fn is_malformed(&self) -> bool {
        matches!(self, MediaError::Malformed(_) | MediaError::TooLarge(_))
    }

    /// The `session-terminate` reason for a session that cannot go on.
    pub fn jingle_reason(&self) -> Reason {
        match self {
            MediaError::Malformed(_) | MediaError::TooLarge(_) => Reason::FailedApplication,
            MediaError::Unsupported(_) => Reason::UnsupportedApplications,
            MediaError::Transport(_) => Reason::UnsupportedTransports,
        }
    }
}

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaError::Malformed(d) => write!(f, "malformed media description: {d}"),
            MediaError::Unsupported(d) => write!(f, "unsupported media: {d}"),
            MediaError::Transport(d) => write!(f, "unsupported transport: {d}"),
            MediaError::TooLarge(what) => write!(f, "too many {what} in the media description"),
        }
    }
}

impl std::error::Error for MediaError {}

/// Copy a peer's token, refusing one longer than [`limits::VALUE`] or holding a control
/// character: everything read from SDP may end up in a Jingle attribute, and XML 1.0 has no
/// place for most control characters (minidom's writer panics on them, F14).
pub(crate) fn bounded(s: &str, what: &'static str) -> Result<String, MediaError> {
    if s.len() > limits::VALUE {
        return Err(MediaError::TooLarge(what));
    }
    if s.chars().any(char::is_control) {
        return Err(MediaError::Malformed(format!(
            "{what} holds a control character"
        )));
    }
    Ok(s.to_owned())
}
