//! The ezk call adapter (`sip::call`) behind the call task's [`SipLeg`] and [`Dialer`]:
//! event and action translation only.

use super::call_session::{Dialer, SipLeg};
use crate::errmap::SipStatus;
use crate::media::call::{SipIn, SipOut};
use crate::sip::call::{CallEvent, EstablishedCall, IncomingCall, OutgoingCall};
use crate::sip::invite::{InviteOut, PendingInvite};
use crate::sip::{SendFailure, SipClient};
use bytes::Bytes;
use tracing::debug;

/// One call's SIP dialog in whichever stage it is.
pub enum Leg {
    /// We called: the INVITE transaction and, once answered, its dialog.
    Out(OutgoingCall),
    /// We were called and have not answered yet (boxed: it holds the INVITE).
    In(Box<IncomingCall>),
    /// We were called and answered.
    Up(EstablishedCall),
    /// Over.
    Gone,
}

impl Leg {
    /// Take an inbound INVITE as a call; `None` when the adapter refused it (already
    /// answered, e.g. 482 for a loop).
    pub async fn incoming(pending: PendingInvite, contact: &str) -> Option<Leg> {
        match IncomingCall::new(pending, contact).await {
            Ok(c) => Some(Leg::In(Box::new(c))),
            Err(status) => {
                debug!(code = status.code, "call refused by the SIP adapter");
                None
            }
        }
    }
}

fn event(e: CallEvent) -> SipIn {
    match e {
        CallEvent::Provisional {
            code,
            sdp,
            reliable,
            ..
        } => SipIn::Provisional {
            code,
            sdp: sdp.map(|b| b.to_vec()),
            reliable,
        },
        CallEvent::Answered { sdp } => SipIn::Answered { sdp: sdp.to_vec() },
        CallEvent::Failed { code, .. } => SipIn::Failed { code },
        CallEvent::Cancelled => SipIn::Cancelled,
        CallEvent::Bye => SipIn::Bye,
        CallEvent::ReInvite { sdp } => SipIn::ReInvite { sdp: sdp.to_vec() },
    }
}

#[async_trait::async_trait]
impl SipLeg for Leg {
    async fn next(&mut self) -> Option<SipIn> {
        let e = match self {
            Leg::Out(c) => c.next().await,
            Leg::In(c) => c.next().await,
            Leg::Up(c) => c.next().await,
            Leg::Gone => std::future::pending().await,
        };
        e.map(event)
    }

    fn signalling_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Leg::Out(c) => Some(c.destination().ip()),
            _ => None,
        }
    }

    async fn act(&mut self, action: SipOut) -> Option<SipIn> {
        match (std::mem::replace(self, Leg::Gone), action) {
            (Leg::In(c), SipOut::Ringing) => {
                let r = c.ringing().await;
                *self = Leg::In(c);
                r.err().map(|_| SipIn::Cancelled)
            }
            (Leg::In(c), SipOut::Answer(sdp)) => match (*c).answer(Bytes::from(sdp)).await {
                Ok(up) => {
                    *self = Leg::Up(up);
                    None
                }
                Err(e) => {
                    debug!(error = %e, "answer failed");
                    Some(SipIn::Bye)
                }
            },
            (Leg::In(c), SipOut::Reject(code)) => {
                (*c).reject(&SipStatus::new(code)).await;
                None
            }
            (Leg::Out(c), SipOut::Cancel) => {
                c.cancel();
                *self = Leg::Out(c);
                None
            }
            (Leg::Out(c), SipOut::Ack) => {
                if let Err(e) = c.ack().await {
                    debug!(error = %e, "ACK failed");
                }
                *self = Leg::Out(c);
                None
            }
            (Leg::Out(c), SipOut::Bye) => {
                c.bye().await;
                None
            }
            (Leg::Up(c), SipOut::Bye) => {
                c.bye().await;
                None
            }
            (Leg::Out(c), SipOut::ReInvite(sdp)) => {
                let r = c.reinvite(Bytes::from(sdp)).await;
                *self = Leg::Out(c);
                Some(SipIn::ReInviteAnswer(r.map(|b| b.to_vec())))
            }
            (Leg::Up(c), SipOut::ReInvite(sdp)) => {
                let r = c.reinvite(Bytes::from(sdp)).await;
                *self = Leg::Up(c);
                Some(SipIn::ReInviteAnswer(r.map(|b| b.to_vec())))
            }
            (Leg::Out(c), SipOut::AnswerReInvite(r)) => {
                let _ = c
                    .answer_reinvite(r.map(Bytes::from).map_err(SipStatus::new))
                    .await;
                *self = Leg::Out(c);
                None
            }
            (Leg::Up(c), SipOut::AnswerReInvite(r)) => {
                let _ = c
                    .answer_reinvite(r.map(Bytes::from).map_err(SipStatus::new))
                    .await;
                *self = Leg::Up(c);
                None
            }
            (other, action) => {
                debug!(?action, "SIP action does not fit the dialog's stage");
                *self = other;
                None
            }
        }
    }
}

/// Places the INVITE of a call from XMPP along the gateway's routing.
pub struct SipDialer {
    /// The SIP side.
    pub sip: SipClient,
    /// Request-URI, From and Contact; the offer is filled in per call.
    pub invite: InviteOut,
}

#[async_trait::async_trait]
impl Dialer for SipDialer {
    async fn dial(&self, offer: Vec<u8>) -> Result<Box<dyn SipLeg>, u16> {
        let mut o = self.invite.clone();
        o.sdp = offer;
        match self.sip.start_call(&o).await {
            Ok(c) => Ok(Box::new(Leg::Out(c))),
            Err(SendFailure::Response { status, .. }) => Err(status.code),
            Err(SendFailure::Timeout) => Err(408),
            Err(SendFailure::Unreachable(why)) => {
                debug!(%why, "call not placed");
                Err(503)
            }
        }
    }
}
