//! An established call's dialog (RFC 3261 §12, §14, §15): our usage for in-dialog requests
//! and the requests we send in it (ACK, BYE, re-INVITE).

use super::{CallError, CallEvent};
use crate::errmap::SipStatus;
use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_core::transaction::{ServerInvTsx, TsxResponse};
use ezk_sip_core::transport::OutgoingRequest;
use ezk_sip_core::{Endpoint, IncomingRequest, MayTake};
use ezk_sip_types::header::typed::ContentType;
use ezk_sip_types::{CodeKind, Method, Name, StatusCode};
use ezk_sip_ua::dialog::{Dialog, Usage, UsageGuard};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace};

/// Longest wait for the ACK of a 2xx (64*T1, RFC 3261 §13.3.1.4).
const ACK_WAIT: Duration = Duration::from_secs(32);

/// The state shared by the session's handle and the dialog usage.
pub(crate) struct InCall {
    pub(crate) dialog: Dialog,
    usage: Mutex<Option<UsageGuard>>,
    /// CSeq of the INVITE that made the dialog (for its ACK).
    invite_cseq: u32,
    local_sdp: Mutex<Bytes>,
    remote_sdp: Mutex<Bytes>,
    /// Our ACK of the initial 2xx (UAC), resent when the 2xx is.
    ack: tokio::sync::Mutex<Option<OutgoingRequest>>,
    /// A re-INVITE from the peer waiting for the session's answer.
    pending: tokio::sync::Mutex<Option<(IncomingRequest, ServerInvTsx)>>,
    /// Our own re-INVITE is in progress (glare, RFC 3261 §14.2: the peer's gets 491).
    busy: AtomicBool,
    /// The ACK awaited for a 2xx we sent: its CSeq and whom to tell.
    awaited_ack: Mutex<Option<(u32, oneshot::Sender<()>)>>,
    ended: AtomicBool,
    /// We are the UAC of the initial INVITE (its 2xx needs our ACK).
    needs_ack: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InCall {
    /// Wrap `dialog` and register our usage; in-dialog events go to `events`.
    pub(crate) fn new(
        dialog: Dialog,
        needs_ack: bool,
        invite_cseq: u32,
        local_sdp: Bytes,
        remote_sdp: Bytes,
        events: mpsc::Sender<CallEvent>,
    ) -> Arc<InCall> {
        let call = Arc::new(InCall {
            dialog,
            usage: Mutex::new(None),
            invite_cseq,
            local_sdp: Mutex::new(local_sdp),
            remote_sdp: Mutex::new(remote_sdp),
            ack: tokio::sync::Mutex::new(None),
            pending: tokio::sync::Mutex::new(None),
            busy: AtomicBool::new(false),
            awaited_ack: Mutex::new(None),
            ended: AtomicBool::new(false),
            needs_ack,
        });
        let guard = call.dialog.register_usage(CallUsage {
            call: Arc::downgrade(&call),
            events,
        });
        *lock(&call.usage) = Some(guard);
        call
    }

    pub(crate) fn call_id(&self) -> &str {
        self.dialog.call_id.0.as_str()
    }

    /// Send the ACK of the initial 2xx (once; later calls resend it).
    pub(crate) async fn ack(&self) {
        let mut slot = self.ack.lock().await;
        if let Some(ack) = slot.as_mut() {
            let _ = self.dialog.endpoint.send_outgoing_request(ack).await;
            return;
        }
        trace!(target: "wire::sip", call_id = %self.call_id(), "-> ACK");
        *slot = super::send_ack(&self.dialog, self.invite_cseq).await;
    }

    /// The initial 2xx came again: resend our ACK if the session already sent it.
    pub(crate) async fn reack(&self) {
        if let Some(ack) = self.ack.lock().await.as_mut() {
            let _ = self.dialog.endpoint.send_outgoing_request(ack).await;
        }
    }

    pub(crate) fn ack_sent(&self) -> bool {
        self.ack.try_lock().map_or(true, |a| a.is_some())
    }

    /// End the call with BYE (once).
    pub(crate) async fn bye(&self) {
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        super::send_bye(&self.dialog).await;
        self.usage_done();
    }

    fn usage_done(&self) {
        // Late requests of the dialog then get ezk's default answer (481/404).
        let guard = lock(&self.usage).take();
        drop(guard);
    }

    /// Our own re-INVITE with a new offer (RFC 3261 §14.1; hold, MEDIA-15): the answer, or
    /// the failure's status (the session stays as it was).
    pub(crate) async fn reinvite(self: &Arc<Self>, sdp: Bytes) -> Result<Bytes, u16> {
        if self.ended.load(Ordering::SeqCst) {
            return Err(481);
        }
        if self.pending.lock().await.is_some() || self.busy.swap(true, Ordering::SeqCst) {
            return Err(491);
        }
        let result = self.reinvite_inner(sdp).await;
        self.busy.store(false, Ordering::SeqCst);
        result
    }

    async fn reinvite_inner(&self, sdp: Bytes) -> Result<Bytes, u16> {
        let mut request = self.dialog.create_request(Method::INVITE, None);
        let cseq = request
            .headers
            .get_named::<ezk_sip_types::header::typed::CSeq>()
            .map(|c| c.cseq)
            .map_err(|_| 500u16)?;
        request
            .headers
            .insert_named(&ContentType(BytesStr::from_static("application/sdp")));
        request.body = sdp.clone();
        let mut target = self.dialog.target_tp_info.lock().await;
        trace!(target: "wire::sip", call_id = %self.call_id(), "-> re-INVITE");
        let mut tsx = self
            .dialog
            .endpoint
            .send_invite(request, &mut target)
            .await
            .map_err(|e| {
                debug!(error = ?e, "re-INVITE not sent");
                503u16
            })?;
        drop(target);
        loop {
            let resp: TsxResponse = match tsx.receive().await {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => return Err(408),
            };
            match resp.line.code.kind() {
                CodeKind::Provisional => continue,
                CodeKind::Success => {
                    let ack = super::send_ack(&self.dialog, cseq).await;
                    *lock(&self.local_sdp) = sdp;
                    if !resp.body.is_empty() {
                        *lock(&self.remote_sdp) = resp.body.clone();
                    }
                    // Retransmissions of the 2xx get the ACK again (§13.2.2.4).
                    if let Some(mut ack) = ack {
                        let endpoint = self.dialog.endpoint.clone();
                        tokio::spawn(async move {
                            while let Ok(Some(r)) = tsx.receive().await {
                                if r.line.code.kind() == CodeKind::Success {
                                    let _ = endpoint.send_outgoing_request(&mut ack).await;
                                }
                            }
                        });
                    }
                    return Ok(resp.body);
                }
                _ => return Err(resp.line.code.into_u16()),
            }
        }
    }

    /// Answer the peer's pending re-INVITE: `Ok(sdp)` is a 200 with our answer (the
    /// 2xx is resent until the ACK), `Err` a failure that leaves the session unchanged.
    pub(crate) async fn answer_reinvite(
        self: &Arc<Self>,
        answer: Result<Bytes, SipStatus>,
    ) -> Result<(), CallError> {
        let Some((req, tsx)) = self.pending.lock().await.take() else {
            return Err(CallError::State("no re-INVITE pending"));
        };
        match answer {
            Ok(sdp) => {
                *lock(&self.remote_sdp) = req.body.clone();
                *lock(&self.local_sdp) = sdp.clone();
                self.respond_2xx(req, tsx, sdp).await
            }
            Err(status) => {
                respond_failure(&self.dialog.endpoint, req, tsx, &status, None, vec![]);
                Ok(())
            }
        }
    }

    /// Send a 2xx with `sdp` to an INVITE of this dialog and wait for its ACK, resending the
    /// 2xx (Timer G doubling up to T2, for 64*T1; RFC 3261 §13.3.1.4).
    pub(crate) async fn respond_2xx(
        &self,
        req: IncomingRequest,
        tsx: ServerInvTsx,
        sdp: Bytes,
    ) -> Result<(), CallError> {
        let mut resp = self
            .dialog
            .endpoint
            .create_response(&req, StatusCode::OK, None);
        if req.base_headers.to.tag.is_none() {
            let tag = self.dialog.local_fromto.tag.clone();
            resp.msg
                .headers
                .edit(Name::TO, |to: &mut ezk_sip_types::header::typed::FromTo| {
                    to.tag = tag;
                })
                .map_err(|e| CallError::Sip(format!("{e:?}")))?;
            let _ = req
                .headers
                .clone_into(&mut resp.msg.headers, Name::RECORD_ROUTE);
        }
        resp.msg.headers.insert_named(&self.dialog.local_contact);
        resp.msg.headers.insert(Name::ALLOW, crate::sip::ALLOW);
        resp.msg
            .headers
            .insert_named(&ContentType(BytesStr::from_static("application/sdp")));
        resp.msg.body = sdp;
        let (tx, mut acked) = oneshot::channel();
        *lock(&self.awaited_ack) = Some((req.base_headers.cseq.cseq, tx));
        let mut accepted = tsx
            .respond_success(resp)
            .await
            .map_err(|e| CallError::Sip(format!("200 not sent: {e:?}")))?;
        let mut delta = Duration::from_millis(500);
        let deadline = tokio::time::Instant::now() + ACK_WAIT;
        loop {
            tokio::select! {
                r = &mut acked => {
                    return r.map_err(|_| CallError::Gone(SipStatus::new(481)));
                }
                () = tokio::time::sleep(delta) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            if let Err(e) = accepted.retransmit().await {
                debug!(error = ?e, "2xx retransmission failed");
            }
            delta = (delta * 2).min(Duration::from_secs(4));
        }
        info!(call_id = %self.call_id(), "no ACK for our 2xx, ending the call");
        self.bye().await;
        Err(CallError::NoAck)
    }

    pub(crate) fn local_sdp(&self) -> Bytes {
        lock(&self.local_sdp).clone()
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// The session's handle went away without `bye()`: end the call anyway (ACKing first if
    /// the 2xx was never ACKed), so the peer is not left with a call nobody serves.
    pub(crate) fn end_on_drop(self: &Arc<Self>) {
        if self.is_ended() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let call = self.clone();
        rt.spawn(async move {
            if !call.ack_sent() && call.needs_ack {
                call.ack().await;
            }
            call.bye().await;
        });
    }

    /// RFC 4028 §10: we are the refresher (`refresher=uac` in the 2xx to our INVITE): a
    /// re-INVITE with the SDP in force every `interval`; a refresh answered 408 or 481
    /// (or none) ends the call with BYE and [`CallEvent::Failed`].
    pub(crate) fn refresh_every(
        self: &Arc<Self>,
        interval: Duration,
        events: mpsc::Sender<CallEvent>,
    ) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(call) = weak.upgrade() else {
                    return;
                };
                if call.is_ended() {
                    return;
                }
                if !call.ack_sent() {
                    continue;
                }
                match call.reinvite(call.local_sdp()).await {
                    Ok(_) | Err(491) => {}
                    Err(code) if code == 408 || code == 481 || code == 503 => {
                        info!(call_id = %call.call_id(), code, "session refresh failed, ending the call");
                        call.bye().await;
                        let reason = "session refresh failed".to_string();
                        let _ = events.send(CallEvent::Failed { code, reason }).await;
                        return;
                    }
                    // Any other refusal leaves the session as it was (RFC 4028 §10).
                    Err(code) => debug!(code, "session refresh refused"),
                }
            }
        });
    }
}

/// Answer `req` with a failure through its INVITE transaction (which waits for the ACK, so
/// in a task of its own).
pub(crate) fn respond_failure(
    endpoint: &Endpoint,
    req: IncomingRequest,
    tsx: ServerInvTsx,
    status: &SipStatus,
    to_tag: Option<BytesStr>,
    extra: Vec<(Name, String)>,
) {
    // ezk's INVITE transaction asserts a failure code: anything else becomes a 500.
    let fallback;
    let status = if (300..=699).contains(&status.code) {
        status
    } else {
        fallback = SipStatus::new(500);
        &fallback
    };
    let mut resp = endpoint.create_response(
        &req,
        StatusCode::from(status.code),
        Some(BytesStr::from(status.reason.clone())),
    );
    if req.base_headers.to.tag.is_none() {
        // RFC 3261 §8.2.6.2: the UAS tags the To of its responses (the tag of our 1xx).
        let tag = to_tag.unwrap_or_else(|| BytesStr::from(crate::sip::inbound::random_token()));
        let _ = resp
            .msg
            .headers
            .edit(Name::TO, |to: &mut ezk_sip_types::header::typed::FromTo| {
                to.tag = Some(tag);
            });
    }
    for (n, v) in extra {
        resp.msg.headers.insert(n, v);
    }
    if status.code == 500 || status.code == 503 {
        let secs = status.retry_after.unwrap_or(1).to_string();
        resp.msg.headers.insert(Name::RETRY_AFTER, secs);
    }
    crate::ops::metrics::get().sip(crate::ops::metrics::Dir::In, "INVITE", status.code);
    tokio::spawn(async move {
        if let Err(e) = tsx.respond_failure(resp).await {
            debug!(error = ?e, "INVITE failure response");
        }
    });
}

/// Our dialog usage: ACK, BYE, re-INVITE and UPDATE of a call.
struct CallUsage {
    call: Weak<InCall>,
    events: mpsc::Sender<CallEvent>,
}

#[async_trait::async_trait]
impl Usage for CallUsage {
    fn name(&self) -> &'static str {
        "stox-call"
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        let Some(call) = self.call.upgrade() else {
            return;
        };
        let method = request.line.method.clone();
        if method == Method::ACK {
            let cseq = request.base_headers.cseq.cseq;
            request.take();
            let waiter = {
                let mut a = lock(&call.awaited_ack);
                match a.take() {
                    Some((c, tx)) if c == cseq => Some(tx),
                    other => {
                        *a = other;
                        None
                    }
                }
            };
            if let Some(tx) = waiter {
                let _ = tx.send(());
            }
            return;
        }
        let mut req = request.take();
        if method == Method::INVITE {
            let mut tsx = endpoint.create_server_inv_tsx(&mut req);
            if call.ended.load(Ordering::SeqCst) {
                return respond_failure(endpoint, req, tsx, &SipStatus::new(481), None, vec![]);
            }
            if call.busy.load(Ordering::SeqCst) {
                return respond_failure(endpoint, req, tsx, &SipStatus::new(491), None, vec![]);
            }
            let mut pending = call.pending.lock().await;
            if pending.is_some() {
                let s = SipStatus::new(500).retry_after(2);
                return respond_failure(endpoint, req, tsx, &s, None, vec![]);
            }
            let refresh = req.body.is_empty() || req.body == *lock(&call.remote_sdp);
            if refresh {
                // RFC 4028 refresh (or no offer at all): our current SDP, no session change.
                drop(pending);
                debug!(call_id = %call.call_id(), "session refresh answered");
                let sdp = call.local_sdp();
                let c = call.clone();
                tokio::spawn(async move {
                    let _ = c.respond_2xx(req, tsx, sdp).await;
                });
                return;
            }
            let mut trying = endpoint.create_response(&req, StatusCode::TRYING, None);
            let _ = tsx.respond_provisional(&mut trying).await;
            let sdp = req.body.clone();
            *pending = Some((req, tsx));
            drop(pending);
            let _ = self.events.send(CallEvent::ReInvite { sdp }).await;
            return;
        }
        let mut resp = endpoint.create_response(&req, StatusCode::OK, None);
        let mut event = None;
        if method == Method::BYE {
            call.ended.store(true, Ordering::SeqCst);
            event = Some(CallEvent::Bye);
        } else if method == Method::UPDATE {
            // Only the refresh form (RFC 4028 §7.4): no offer, or the offer we already have.
            if !req.body.is_empty() && req.body != *lock(&call.remote_sdp) {
                resp = endpoint.create_response(&req, StatusCode::from(488), None);
            } else if !req.body.is_empty() {
                resp.msg
                    .headers
                    .insert_named(&ContentType(BytesStr::from_static("application/sdp")));
                resp.msg.body = call.local_sdp();
            }
        } else if method != Method::OPTIONS {
            resp = endpoint.create_response(&req, StatusCode::from(405), None);
            resp.msg.headers.insert(Name::ALLOW, crate::sip::ALLOW);
        }
        let code = resp.msg.line.code.into_u16();
        crate::ops::metrics::get().sip(crate::ops::metrics::Dir::In, &method.to_string(), code);
        if let Err(e) = endpoint.create_server_tsx(&mut req).respond(resp).await {
            debug!(error = ?e, "in-dialog response failed");
        }
        if let Some(ev) = event {
            call.usage_done();
            let _ = self.events.send(ev).await;
        }
    }
}

/// A call in its dialog: what the callee has after [`super::IncomingCall::answer`], and the
/// in-dialog half of an answered [`super::OutgoingCall`].
pub struct EstablishedCall {
    pub(crate) call: Arc<InCall>,
    pub(crate) events: mpsc::Receiver<CallEvent>,
    /// The peer's SDP when the call was set up.
    pub remote_sdp: Bytes,
}

impl std::fmt::Debug for EstablishedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EstablishedCall({})", self.call.call_id())
    }
}

impl Drop for EstablishedCall {
    fn drop(&mut self) {
        self.call.end_on_drop();
    }
}

impl EstablishedCall {
    /// The dialog's Call-ID.
    pub fn call_id(&self) -> &str {
        self.call.call_id()
    }

    /// The next in-dialog event ([`CallEvent::Bye`], [`CallEvent::ReInvite`]); `None` once
    /// nothing more can come.
    pub async fn next(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    /// End the call with BYE.
    pub async fn bye(&self) {
        self.call.bye().await;
    }

    /// Send a new offer (re-INVITE); the answer, or the failure's status code.
    pub async fn reinvite(&self, sdp: Bytes) -> Result<Bytes, u16> {
        self.call.reinvite(sdp).await
    }

    /// Answer the peer's re-INVITE ([`CallEvent::ReInvite`]).
    pub async fn answer_reinvite(&self, answer: Result<Bytes, SipStatus>) -> Result<(), CallError> {
        self.call.answer_reinvite(answer).await
    }
}
