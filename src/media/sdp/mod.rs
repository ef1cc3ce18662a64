//! SDP (RFC 4566 / RFC 8866, offer/answer RFC 3264) <-> [`Description`], the SDP half of
//! draft-ietf-stox-media §5 (MEDIA-5, 6, 9..13, 19..21, 24). [`read`] turns an offer or
//! answer into the model, [`write`] renders the model as SDP; sdp-types is the line model.
//!
//! An SDP answer must repeat the offer's `m=` lines in order, with port 0 for the streams it
//! refuses (RFC 3264 §6), so reading an offer also returns its [`MLine`] layout, which
//! rendering the answer follows.

mod read;
mod write;

pub use read::{from_sdp, parse};
pub use write::{to_sdp, SdpOrigin};

use super::model::{Role, Senders};

/// One `m=` line of an offer, kept to shape the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MLine {
    /// The content name it became (`a=mid`, or the media type made unique).
    pub name: String,
    /// Media type as written.
    pub media: String,
    /// Transport protocol as written.
    pub proto: String,
    /// The first format, for a refused line's `m=` (RFC 3264 §6 wants at least one).
    pub first_fmt: String,
    /// Whether the offer carried `a=mid` (RFC 5888 §9.1: then the answer must too).
    pub had_mid: bool,
    /// Whether the line became a content (audio/video RTP with a non-zero port).
    pub used: bool,
}

/// An offer or answer read from SDP.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadSdp {
    /// The usable contents.
    pub description: super::model::Description,
    /// Every `m=` line, used or not.
    pub lines: Vec<MLine>,
    /// `o=` username (MEDIA-5: the localpart of the Jingle initiator on the way in).
    pub origin_user: Option<String>,
}

/// `a=sendrecv` & co. as written by `author` (MEDIA-6: "only the author sends" is
/// `sendonly` whichever Jingle role the author has).
pub fn direction(senders: Senders, author: Role) -> &'static str {
    match (senders, author) {
        (Senders::Both, _) => "sendrecv",
        (Senders::None, _) => "inactive",
        (Senders::Initiator, Role::Initiator) | (Senders::Responder, Role::Responder) => "sendonly",
        _ => "recvonly",
    }
}

/// The reverse of [`direction`]; `None` for a token that is no direction.
pub fn senders(direction: &str, author: Role) -> Option<Senders> {
    let other = match author {
        Role::Initiator => Senders::Responder,
        Role::Responder => Senders::Initiator,
    };
    let own = match author {
        Role::Initiator => Senders::Initiator,
        Role::Responder => Senders::Responder,
    };
    Some(match direction {
        "sendrecv" => Senders::Both,
        "inactive" => Senders::None,
        "sendonly" => own,
        "recvonly" => other,
        _ => return None,
    })
}

/// Static RTP/AVP payload types (RFC 3551 §6) that SIP peers often list without
/// `a=rtpmap`; Jingle needs their name and rate.
pub fn static_payload(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        15 => ("G728", 8000, 1),
        18 => ("G729", 8000, 1),
        26 => ("JPEG", 90000, 1),
        31 => ("H261", 90000, 1),
        34 => ("H263", 90000, 1),
        _ => return None,
    })
}

/// The RTP profiles a call can use (RFC 3551, RFC 4585, RFC 3711, RFC 5124, RFC 5764).
pub fn is_rtp_profile(proto: &str) -> bool {
    matches!(
        proto.to_ascii_uppercase().as_str(),
        "RTP/AVP"
            | "RTP/AVPF"
            | "RTP/SAVP"
            | "RTP/SAVPF"
            | "UDP/TLS/RTP/SAVP"
            | "UDP/TLS/RTP/SAVPF"
    )
}
