//! SIP side of audio/video calls (RFC 3261 §9, §12-15; draft-ietf-stox-media MEDIA-7, 17,
//! 18, 22, 23): the thin adapter between ezk's transactions and a call session task.
//!
//! - Caller (UAC): [`SipClient::start_call`](super::SipClient::start_call) returns an
//!   [`OutgoingCall`] at once; a driver task of its own reads the INVITE transaction and turns
//!   it into [`CallEvent`]s. The first 2xx is surfaced as [`CallEvent::Answered`] and is only
//!   ACKed when the session says so ([`OutgoingCall::ack`], MEDIA-7: after the Jingle side
//!   confirmed); 2xx from other forks are ACKed and BYE'd here, never surfaced (MEDIA-22).
//!   CANCEL is built by hand (§9.1: same Via branch as the INVITE; ezk's own CANCEL gets a
//!   new branch, which a UAS cannot match).
//! - Callee (UAS): an INVITE from [`super::inbound`] arrives as a
//!   [`PendingInvite`](super::invite::PendingInvite) that is already registered for CANCEL
//!   (§9.2: the layer answers the CANCEL 200 and the INVITE 487 at once);
//!   [`IncomingCall`] sends 100, 180, the 200 (retransmitted until the ACK, §13.3.1.4) or a
//!   failure, and reports [`CallEvent::Cancelled`].
//! - In a dialog ([`EstablishedCall`], or an answered [`OutgoingCall`]): BYE and re-INVITE
//!   from the peer become events; session refreshes (RFC 4028: a re-INVITE or UPDATE with
//!   no SDP or the same SDP) are answered here with the current SDP, so a peer that runs
//!   session timers keeps the call up without the session task. When the 2xx to our INVITE
//!   names us the refresher (`refresher=uac`), we re-INVITE with the SDP in force every half
//!   interval; a failed refresh ends the call with BYE and `Failed`. A handle dropped without
//!   `bye()` still ends its call (BYE, or CANCEL before the answer).
//!
//! - RFC 3262 as UAC: our INVITE offers `100rel`; a reliable 1xx is PRACKed in its early
//!   dialog, which becomes the call's dialog if that fork answers; a 2xx without SDP is
//!   answered with the reliable 1xx's SDP (MEDIA-17).
//!
//! Not here: reliable provisional responses as UAS (an INVITE that requires `100rel` gets
//! 420), offering `timer` ourselves (a compliant peer is then the refresher), and loop
//! detection across the XMPP side (the router's job, MEDIA-18); the adapter refuses an
//! INVITE that already went through this gateway's own transport (482).

mod dialog;
mod uac;
mod uas;

pub use dialog::EstablishedCall;
pub use uac::OutgoingCall;
pub use uas::IncomingCall;
pub(crate) use uas::{Cancels, Held};

use crate::errmap::SipStatus;
use bytes::Bytes;
use ezk_sip_core::transaction::TsxKey;
use ezk_sip_core::transport::OutgoingRequest;
use ezk_sip_types::Method;
use ezk_sip_ua::dialog::Dialog;

/// What happened to a call, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A provisional response (101-199) to our INVITE. `reliable`: it carried
    /// `Require: 100rel` and `RSeq` (RFC 3262) and was PRACKed; a retransmission of it is
    /// not reported again.
    Provisional {
        /// Status code.
        code: u16,
        /// The To tag (the early dialog; several forks give several tags).
        to_tag: Option<String>,
        /// Early SDP, if any (MEDIA-17: not for Jingle unless it was reliable).
        sdp: Option<Bytes>,
        /// RFC 3262 reliable provisional.
        reliable: bool,
    },
    /// The first 2xx to our INVITE with its SDP answer; the dialog exists, the ACK waits
    /// for [`OutgoingCall::ack`].
    Answered {
        /// The SDP answer.
        sdp: Bytes,
    },
    /// Our INVITE failed: a final non-2xx, 408 when no final response came. After
    /// `Answered` only when a session refresh we sent failed (the call was ended with BYE).
    Failed {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// The caller CANCELled its INVITE (answered 487, the CANCEL 200).
    Cancelled,
    /// The peer ended the call (its BYE is already answered 200).
    Bye,
    /// The peer sent a new offer (hold, unhold, media change); answer it with
    /// `answer_reinvite`.
    ReInvite {
        /// The offer.
        sdp: Bytes,
    },
}

/// Why a call operation failed; `status` is what the peer is (or would be) told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The caller cancelled the INVITE, or the call is over.
    #[error("the call is over ({0:?})")]
    Gone(SipStatus),
    /// The operation does not fit the call's state (e.g. `ack` before the answer).
    #[error("not now: {0}")]
    State(&'static str),
    /// The peer did not ACK our 2xx (RFC 3261 §13.3.1.4; the call is ended with BYE).
    #[error("no ACK for the 2xx")]
    NoAck,
    /// Something could not be built or sent.
    #[error("SIP: {0}")]
    Sip(String),
}

impl CallError {
    /// The SIP status that fits the failure.
    pub fn status(&self) -> SipStatus {
        match self {
            CallError::Gone(s) => s.clone(),
            CallError::State(_) => SipStatus::new(500),
            CallError::NoAck => SipStatus::new(408),
            CallError::Sip(_) => SipStatus::new(500),
        }
    }
}

/// The ACK of a 2xx (RFC 3261 §13.2.2.4) in `dialog`, with the INVITE's CSeq number. Built
/// here because ezk's `create_ack` also bumps the dialog's CSeq.
pub(crate) async fn ack_request(
    dialog: &Dialog,
    cseq: u32,
) -> Result<OutgoingRequest, ezk_sip_core::Error> {
    let ack = dialog.create_request(Method::ACK, Some(cseq));
    let mut target = dialog.target_tp_info.lock().await;
    let mut ack = dialog.endpoint.create_outgoing(ack, &mut target).await?;
    let via = dialog.endpoint.create_via(
        &ack.parts.transport,
        &TsxKey::client(&Method::ACK),
        target.via_host_port.clone(),
    );
    ack.msg.headers.insert_named_front(&via);
    Ok(ack)
}

/// Build and send the ACK of a 2xx; `None` (logged) when it could not be sent.
pub(crate) async fn send_ack(dialog: &Dialog, cseq: u32) -> Option<OutgoingRequest> {
    match ack_request(dialog, cseq).await {
        Ok(mut ack) => {
            if let Err(e) = dialog.endpoint.send_outgoing_request(&mut ack).await {
                tracing::debug!(error = ?e, "ACK not sent");
            }
            Some(ack)
        }
        Err(e) => {
            tracing::debug!(error = ?e, "ACK not built");
            None
        }
    }
}

/// Send BYE in `dialog` and wait for its final response (bounded by Timer F); the code, 0
/// when none came.
pub(crate) async fn send_bye(dialog: &Dialog) -> u16 {
    let request = dialog.create_request(Method::BYE, None);
    let mut target = dialog.target_tp_info.lock().await;
    tracing::trace!(target: "wire::sip", call_id = %dialog.call_id.0, "-> BYE");
    let code = match dialog.endpoint.send_request(request, &mut target).await {
        Ok(mut tsx) => {
            drop(target);
            match tsx.receive_final().await {
                Ok(r) => r.line.code.into_u16(),
                Err(e) => {
                    tracing::debug!(error = ?e, "BYE got no final response");
                    0
                }
            }
        }
        Err(e) => {
            tracing::debug!(error = ?e, "BYE not sent");
            0
        }
    };
    crate::ops::metrics::get().sip(crate::ops::metrics::Dir::Out, "BYE", code);
    code
}
