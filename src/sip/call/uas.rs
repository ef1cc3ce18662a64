//! The callee side: an inbound INVITE held until the session answers it, CANCEL matching
//! (RFC 3261 §9.2), 100/180/200/failure (§13.3.1), the loop guard (§8.2.2.2, MEDIA-18) and
//! unsupported extensions (§8.2.2.3: 420).

use super::dialog::{respond_failure, EstablishedCall, InCall};
use super::{CallError, CallEvent};
use crate::errmap::SipStatus;
use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_core::transaction::ServerInvTsx;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::header::typed::{Contact, FromTo};
use ezk_sip_types::uri::NameAddr;
use ezk_sip_types::{Name, StatusCode};
use ezk_sip_ua::dialog::Dialog;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{mpsc, watch};
use tracing::{debug, trace};

/// The INVITE while it has no final response.
pub(crate) struct Uas {
    pub(crate) request: IncomingRequest,
    /// The INVITE transaction once a response went through it.
    pub(crate) tsx: Option<ServerInvTsx>,
    /// The To tag of our responses.
    pub(crate) to_tag: Option<BytesStr>,
}

impl Uas {
    /// The INVITE transaction (created on first use).
    pub(crate) fn tsx(&mut self, endpoint: &Endpoint) -> &mut ServerInvTsx {
        let req = &mut self.request;
        self.tsx
            .get_or_insert_with(|| endpoint.create_server_inv_tsx(req))
    }

    /// Answer with a final non-2xx (`extra` headers added), through the INVITE transaction.
    pub(crate) fn fail(
        mut self,
        endpoint: &Endpoint,
        status: &SipStatus,
        extra: Vec<(Name, String)>,
    ) {
        self.tsx(endpoint);
        if let Some(tsx) = self.tsx.take() {
            respond_failure(endpoint, self.request, tsx, status, self.to_tag, extra);
        }
    }
}

/// An inbound INVITE shared by its holder (a pending chat session or call) and the CANCEL
/// matcher: whoever takes the [`Uas`] out answers the INVITE.
pub(crate) struct Held {
    pub(crate) endpoint: Endpoint,
    pub(crate) slot: tokio::sync::Mutex<Option<Uas>>,
    cancelled: watch::Sender<bool>,
    key: String,
    cancels: Weak<Cancels>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(c) = self.cancels.upgrade() {
            c.lock().remove(&self.key);
        }
        // Dropped unanswered (a session that died): the caller is told, not left waiting.
        if let Some(uas) = self.slot.get_mut().take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let status = SipStatus::with_reason(480, "Temporarily Unavailable");
                uas.fail(&self.endpoint, &status, Vec::new());
            }
        }
    }
}

impl Held {
    /// Hold `request`; registered in `cancels` (if given) until dropped.
    pub(crate) fn new(
        endpoint: Endpoint,
        request: IncomingRequest,
        cancels: Option<&Arc<Cancels>>,
    ) -> Arc<Held> {
        let key = cancel_key(&request);
        let held = Arc::new(Held {
            endpoint,
            slot: tokio::sync::Mutex::new(Some(Uas {
                request,
                tsx: None,
                to_tag: None,
            })),
            cancelled: watch::channel(false).0,
            key: key.clone(),
            cancels: cancels.map_or_else(Weak::new, Arc::downgrade),
        });
        if let Some(c) = cancels {
            c.lock().insert(key, Arc::downgrade(&held));
        }
        held
    }
}

/// The INVITEs a CANCEL may still match (RFC 3261 §9.2: same branch, Call-ID, From tag and
/// CSeq number), owned by the SIP layer.
#[derive(Default)]
pub(crate) struct Cancels {
    map: Mutex<HashMap<String, Weak<Held>>>,
}

impl Cancels {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Held>>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The held INVITE a CANCEL is for.
    pub(crate) fn find(&self, cancel: &IncomingRequest) -> Option<Arc<Held>> {
        self.lock().get(&cancel_key(cancel)).and_then(Weak::upgrade)
    }

    /// Answer a matching CANCEL 200 and, if the INVITE still has no final response, the
    /// INVITE 487 (RFC 3261 §9.2); the holder then sees [`CallEvent::Cancelled`].
    pub(crate) async fn cancel(held: Arc<Held>, mut cancel: IncomingRequest) {
        let endpoint = held.endpoint.clone();
        let ok = endpoint.create_response(&cancel, StatusCode::OK, None);
        if let Err(e) = endpoint.create_server_tsx(&mut cancel).respond(ok).await {
            debug!(error = ?e, "200 to CANCEL not sent");
        }
        crate::ops::metrics::get().sip(crate::ops::metrics::Dir::In, "CANCEL", 200);
        let Some(uas) = held.slot.lock().await.take() else {
            return;
        };
        trace!(target: "wire::sip", call_id = %uas.request.base_headers.call_id.0, "CANCEL: 487");
        uas.fail(&endpoint, &SipStatus::new(487), Vec::new());
        held.cancelled.send_replace(true);
    }
}

fn cancel_key(req: &IncomingRequest) -> String {
    let h = &req.base_headers;
    let from_tag = h.from.tag.as_ref().map_or("", |t| t.as_str());
    format!(
        "{} {} {} {}",
        req.tsx_key.branch(),
        h.call_id.0,
        from_tag,
        h.cseq.cseq
    )
}

/// An inbound call waiting for the session's answer.
pub struct IncomingCall {
    held: Arc<Held>,
    dialog: Option<Dialog>,
    offer: Bytes,
    call_id: String,
    cancelled: watch::Receiver<bool>,
    done: bool,
}

impl std::fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IncomingCall({})", self.call_id)
    }
}

/// Require option tags we implement (none: not 100rel, not timer).
const SUPPORTED: [&str; 0] = [];

impl IncomingCall {
    /// Take over a pending INVITE as a call: checks it (482 for a loop, 420 for a required
    /// extension, 400 without Contact/From tag), creates the dialog (our To tag, also used
    /// for the 180) and sends 100 Trying. `Err` when it was refused (already answered).
    pub async fn new(
        pending: super::super::invite::PendingInvite,
        contact: &str,
    ) -> Result<IncomingCall, SipStatus> {
        let held = pending.into_held();
        let mut slot = held.slot.lock().await;
        let Some(uas) = slot.as_mut() else {
            return Err(SipStatus::new(487));
        };
        let refusal = check(&uas.request);
        let dialog = match &refusal {
            Some(_) => None,
            None => super::super::parse_uri(contact).ok().and_then(|uri| {
                Dialog::new_server(
                    held.endpoint.clone(),
                    &uas.request,
                    Contact::new(NameAddr::uri(uri)),
                )
                .ok()
            }),
        };
        let Some(dialog) = dialog else {
            let (status, extra) =
                refusal.unwrap_or_else(|| (SipStatus::with_reason(400, "Bad Contact"), Vec::new()));
            if let Some(uas) = slot.take() {
                uas.fail(&held.endpoint, &status, extra);
            }
            return Err(status);
        };
        uas.to_tag = dialog.local_fromto.tag.clone();
        let mut trying = held
            .endpoint
            .create_response(&uas.request, StatusCode::TRYING, None);
        if let Err(e) = uas
            .tsx(&held.endpoint)
            .respond_provisional(&mut trying)
            .await
        {
            debug!(error = ?e, "100 not sent");
        }
        let offer = uas.request.body.clone();
        let call_id = uas.request.base_headers.call_id.0.to_string();
        drop(slot);
        let cancelled = held.cancelled.subscribe();
        Ok(IncomingCall {
            held,
            dialog: Some(dialog),
            offer,
            call_id,
            cancelled,
            done: false,
        })
    }

    /// The caller's SDP offer (empty for an offerless INVITE).
    pub fn offer(&self) -> &[u8] {
        &self.offer
    }

    /// The INVITE's Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// [`CallEvent::Cancelled`] once the caller CANCELled (already answered 487); then
    /// `None`. Pending until then.
    pub async fn next(&mut self) -> Option<CallEvent> {
        if self.done {
            return None;
        }
        if self.cancelled.wait_for(|c| *c).await.is_ok() {
            self.done = true;
            return Some(CallEvent::Cancelled);
        }
        std::future::pending().await
    }

    /// Send 180 Ringing (with our To tag and Contact).
    pub async fn ringing(&self) -> Result<(), CallError> {
        let mut slot = self.held.slot.lock().await;
        let Some(uas) = slot.as_mut() else {
            return Err(CallError::Gone(SipStatus::new(487)));
        };
        let mut resp = self
            .held
            .endpoint
            .create_response(&uas.request, StatusCode::RINGING, None);
        let tag = uas.to_tag.clone();
        let _ = resp
            .msg
            .headers
            .edit(Name::TO, |to: &mut FromTo| to.tag = tag);
        if let Some(d) = &self.dialog {
            resp.msg.headers.insert_named(&d.local_contact);
        }
        uas.tsx(&self.held.endpoint)
            .respond_provisional(&mut resp)
            .await
            .map_err(|e| CallError::Sip(format!("180 not sent: {e:?}")))
    }

    /// Answer 200 with our SDP and wait for the ACK (the 2xx is resent meanwhile; without an
    /// ACK after 64*T1 the call is ended with BYE and this fails).
    pub async fn answer(mut self, sdp: Bytes) -> Result<EstablishedCall, CallError> {
        let Some(dialog) = self.dialog.take() else {
            return Err(CallError::State("answered twice"));
        };
        let Some(uas) = self.held.slot.lock().await.take() else {
            return Err(CallError::Gone(SipStatus::new(487)));
        };
        let Uas {
            mut request, tsx, ..
        } = uas;
        let tsx = match tsx {
            Some(t) => t,
            None => self.held.endpoint.create_server_inv_tsx(&mut request),
        };
        *dialog.target_tp_info.lock().await = ezk_sip_core::transport::TargetTransportInfo {
            transport: Some((request.tp_info.transport.clone(), request.tp_info.source)),
            ..Default::default()
        };
        let (tx, events) = mpsc::channel(16);
        let cseq = request.base_headers.cseq.cseq;
        let call = InCall::new(dialog, false, cseq, sdp.clone(), self.offer.clone(), tx);
        crate::ops::metrics::get().sip(crate::ops::metrics::Dir::In, "INVITE", 200);
        if let Err(e) = call.respond_2xx(request, tsx, sdp).await {
            call.end_on_drop();
            return Err(e);
        }
        Ok(EstablishedCall {
            call,
            events,
            remote_sdp: self.offer.clone(),
        })
    }

    /// Refuse the call with a final non-2xx (e.g. 486, 603).
    pub async fn reject(self, status: &SipStatus) {
        if let Some(uas) = self.held.slot.lock().await.take() {
            uas.fail(&self.held.endpoint, status, Vec::new());
        }
    }
}

/// Why an INVITE is refused before it reaches the session (with the headers the refusal
/// carries), if it is.
fn check(req: &IncomingRequest) -> Option<(SipStatus, Vec<(Name, String)>)> {
    // Our own transport's address in a Via: a request we sent came back to us (a loop, or a
    // spiral through a proxy that routes it to the gateway again; MEDIA-18, RFC 3261
    // §8.2.2.2).
    let bound = req.tp_info.transport.bound();
    let ours = req.base_headers.via.iter().any(|v| {
        v.sent_by.ip() == Some(bound.ip()) && v.sent_by.port.unwrap_or(5060) == bound.port()
    });
    if ours {
        return Some((SipStatus::new(482), Vec::new()));
    }
    let unsupported: Vec<String> = req
        .headers
        .get_raw(&Name::REQUIRE)
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty() && !SUPPORTED.contains(&t.as_str()))
        .collect();
    if !unsupported.is_empty() {
        let h = vec![(Name::UNSUPPORTED, unsupported.join(", "))];
        return Some((SipStatus::with_reason(420, "Bad Extension"), h));
    }
    if req.base_headers.from.tag.is_none() {
        return Some((SipStatus::with_reason(400, "Missing From tag"), Vec::new()));
    }
    None
}
