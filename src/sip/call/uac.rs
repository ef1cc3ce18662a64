//! The caller side: our INVITE, its responses as [`CallEvent`]s, CANCEL (RFC 3261 §9.1) and
//! forked 2xx (§13.2.2.4, MEDIA-22).

use super::dialog::{EstablishedCall, InCall};
use super::{CallError, CallEvent};
use crate::errmap::SipStatus;
use crate::sip::invite::InviteOut;
use crate::sip::{SendFailure, SipClient};
use bytes::Bytes;
use ezk_sip_core::transaction::{ClientInvTsx, TsxResponse};
use ezk_sip_core::transport::{OutgoingParts, OutgoingRequest};
use ezk_sip_core::{Endpoint, Request};
use ezk_sip_types::header::typed::{CSeq, MaxForwards, RAck, RSeq, Require};
use ezk_sip_types::msg::RequestLine;
use ezk_sip_types::{CodeKind, Headers, Method, Name};
use ezk_sip_ua::dialog::{ClientDialogBuilder, Dialog};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, trace, warn};

/// 64*T1: how long CANCEL is resent without a final response to the INVITE (§9.1).
const CANCEL_WAIT: Duration = Duration::from_secs(32);

#[derive(Default)]
struct UacState {
    /// The session wants the INVITE cancelled.
    cancel_wanted: bool,
    /// A provisional response came (CANCEL may be sent, §9.1).
    provisional: bool,
    cancel_sent: bool,
    /// The answered dialog.
    call: Option<Arc<InCall>>,
}

struct Shared {
    endpoint: Endpoint,
    state: Mutex<UacState>,
    /// The CANCEL to send (built from the INVITE).
    cancel: Request,
    parts: (ezk_sip_core::transport::TpHandle, std::net::SocketAddr),
    /// Set when the INVITE got its final response: stops CANCEL retransmissions.
    finished: watch::Sender<bool>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, UacState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Send the CANCEL now if it is wanted and allowed, and resend it (Timer E style, UDP)
    /// until the INVITE's final response or 64*T1.
    fn maybe_cancel(self: &Arc<Self>) {
        if *self.finished.borrow() {
            return;
        }
        {
            let mut s = self.state();
            if !s.cancel_wanted || !s.provisional || s.cancel_sent || s.call.is_some() {
                return;
            }
            s.cancel_sent = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut out = OutgoingRequest {
                msg: me.cancel.clone(),
                parts: OutgoingParts {
                    transport: me.parts.0.clone(),
                    destination: me.parts.1,
                    buffer: Bytes::new(),
                },
            };
            let reliable = !out.parts.transport.is_udp();
            let mut finished = me.finished.subscribe();
            let mut delta = Duration::from_millis(500);
            let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
            loop {
                trace!(target: "wire::sip", "-> CANCEL");
                if let Err(e) = me.endpoint.send_outgoing_request(&mut out).await {
                    debug!(error = ?e, "CANCEL not sent");
                }
                if reliable {
                    return;
                }
                tokio::select! {
                    _ = finished.wait_for(|f| *f) => return,
                    () = tokio::time::sleep(delta) => {}
                }
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
                delta = (delta * 2).min(Duration::from_secs(4));
            }
        });
    }
}

/// A call we placed.
pub struct OutgoingCall {
    shared: Arc<Shared>,
    events: mpsc::Receiver<CallEvent>,
    call_id: String,
    /// Turned into an [`EstablishedCall`], which owns the dialog now.
    handed_over: bool,
}

impl std::fmt::Debug for OutgoingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutgoingCall({})", self.call_id)
    }
}

impl Drop for OutgoingCall {
    fn drop(&mut self) {
        // A session gone before the answer: CANCEL; an answer that comes anyway is ACKed and
        // BYE'd by the driver (its events have no reader). Gone after it: BYE.
        if self.handed_over {
            return;
        }
        let call = {
            let mut s = self.shared.state();
            s.cancel_wanted = true;
            s.call.clone()
        };
        match call {
            Some(call) => call.end_on_drop(),
            None => self.shared.maybe_cancel(),
        }
    }
}

impl SipClient {
    /// Place a call: send the INVITE (SDP offer in `o.sdp`) along the configured routing and
    /// return at once; its responses come from [`OutgoingCall::next`].
    pub async fn start_call(&self, o: &InviteOut) -> Result<OutgoingCall, SendFailure> {
        let (mut builder, mut request, hop) = self.prepare_invite(o).await?;
        // RFC 3262: reliable provisional responses are PRACKed (MEDIA-17 needs their SDP).
        request.headers.insert(Name::SUPPORTED, "100rel");
        let cseq = builder.local_cseq;
        trace!(target: "wire::sip", ruri = %o.request_uri, hop = %hop, "-> INVITE (call)");
        let tsx = self
            .endpoint()
            .send_invite(request, &mut builder.target_tp_info)
            .await
            .map_err(|e| SendFailure::Unreachable(format!("{hop}: {e:?}")))?;
        let cancel = cancel_for(tsx.request(), cseq);
        let shared = Arc::new(Shared {
            endpoint: self.endpoint().clone(),
            state: Mutex::new(UacState::default()),
            cancel,
            parts: (
                tsx.request().parts.transport.clone(),
                tsx.request().parts.destination,
            ),
            finished: watch::channel(false).0,
        });
        let (tx, events) = mpsc::channel(16);
        let call_id = builder.call_id.0.to_string();
        let driver = Driver {
            shared: shared.clone(),
            builder,
            cseq,
            events: tx,
            local_sdp: Bytes::from(o.sdp.clone()),
            answered_tag: None,
            early: HashMap::new(),
        };
        tokio::spawn(driver.run(tsx));
        Ok(OutgoingCall {
            shared,
            events,
            call_id,
            handed_over: false,
        })
    }
}

/// RFC 3261 §9.1: the CANCEL of an INVITE: same Request-URI, Via (branch), From, To,
/// Call-ID, Route and CSeq number.
fn cancel_for(invite: &OutgoingRequest, cseq: u32) -> Request {
    let mut headers = Headers::new();
    let h = &invite.msg.headers;
    for name in [Name::VIA, Name::FROM, Name::TO, Name::CALL_ID, Name::ROUTE] {
        let _ = h.clone_into(&mut headers, name);
    }
    headers.insert_named(&MaxForwards(70));
    headers.insert_named(&CSeq {
        cseq,
        method: Method::CANCEL,
    });
    Request {
        line: RequestLine {
            method: Method::CANCEL,
            uri: invite.msg.line.uri.clone(),
        },
        headers,
        body: Bytes::new(),
    }
}

impl OutgoingCall {
    /// Where the INVITE was sent: the callee, or the proxy in front of it.
    pub fn destination(&self) -> std::net::SocketAddr {
        self.shared.parts.1
    }

    /// The INVITE's Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The next event: provisional responses, then `Answered` or `Failed`, then (answered)
    /// `Bye` / `ReInvite`. `None` when nothing more can come.
    pub async fn next(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    fn call(&self) -> Option<Arc<InCall>> {
        self.shared.state().call.clone()
    }

    /// Cancel the call before it is answered (RFC 3261 §9.1; sent once a provisional response
    /// came). The outcome still comes from [`OutgoingCall::next`]: `Failed { 487 }`, or, if a
    /// 2xx crossed the CANCEL, nothing: that 2xx is ACKed and BYE'd here.
    pub fn cancel(&self) {
        self.shared.state().cancel_wanted = true;
        self.shared.maybe_cancel();
    }

    /// ACK the 2xx (MEDIA-7: once the Jingle side accepted).
    pub async fn ack(&self) -> Result<(), CallError> {
        let call = self.call().ok_or(CallError::State("not answered"))?;
        call.ack().await;
        Ok(())
    }

    /// End the call: BYE once answered (ACKing first if needed), else CANCEL.
    pub async fn bye(&self) {
        match self.call() {
            Some(call) => {
                if !call.ack_sent() {
                    call.ack().await;
                }
                call.bye().await;
            }
            None => self.cancel(),
        }
    }

    /// Send a new offer in the dialog (re-INVITE; hold, MEDIA-15).
    pub async fn reinvite(&self, sdp: Bytes) -> Result<Bytes, u16> {
        match self.call() {
            Some(call) => call.reinvite(sdp).await,
            None => Err(491),
        }
    }

    /// Answer the peer's re-INVITE ([`CallEvent::ReInvite`]).
    pub async fn answer_reinvite(&self, answer: Result<Bytes, SipStatus>) -> Result<(), CallError> {
        let call = self.call().ok_or(CallError::State("not answered"))?;
        call.answer_reinvite(answer).await
    }

    /// The answered call as an [`EstablishedCall`] (the same API as the callee's); the call
    /// back when it is not answered yet.
    pub fn into_established(mut self, remote_sdp: Bytes) -> Result<EstablishedCall, OutgoingCall> {
        let Some(call) = self.call() else {
            return Err(self);
        };
        self.handed_over = true;
        let events = std::mem::replace(&mut self.events, mpsc::channel(1).1);
        Ok(EstablishedCall {
            call,
            events,
            remote_sdp,
        })
    }
}

/// Reads the INVITE transaction until it ends.
struct Driver {
    shared: Arc<Shared>,
    builder: ClientDialogBuilder,
    cseq: u32,
    events: mpsc::Sender<CallEvent>,
    local_sdp: Bytes,
    answered_tag: Option<String>,
    /// Early dialogs made by reliable provisional responses (RFC 3262), by To tag.
    early: HashMap<String, Early>,
}

/// An early dialog of a reliable provisional response: it takes our PRACKs and becomes the
/// call's dialog if the same fork answers (its CSeq goes on).
struct Early {
    dialog: Dialog,
    last_rseq: u32,
    /// The SDP answer of a reliable 1xx (MEDIA-17: used when the 2xx has none).
    sdp: Option<Bytes>,
}

impl Driver {
    async fn run(mut self, mut tsx: ClientInvTsx) {
        let metrics = crate::ops::metrics::get();
        let out = crate::ops::metrics::Dir::Out;
        loop {
            let resp = match tsx.receive().await {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    if self.answered_tag.is_none() {
                        debug!(error = ?e, "INVITE got no final response");
                        metrics.sip(out, "INVITE", 0);
                        // No response within Timer B, or none for 2 minutes after the last
                        // provisional one (ezk's stand-in for Timer C): give up, CANCEL.
                        self.shared.state().cancel_wanted = true;
                        self.shared.maybe_cancel();
                        self.fail(408, "Request Timeout").await;
                    }
                    break;
                }
            };
            let code = resp.line.code.into_u16();
            match resp.line.code.kind() {
                CodeKind::Provisional => self.provisional(code, &resp).await,
                CodeKind::Success => self.success(resp).await,
                _ => {
                    metrics.sip(out, "INVITE", code);
                    let reason = resp.line.reason.as_ref().map(|r| r.to_string());
                    self.fail(code, &reason.unwrap_or_default()).await;
                    break;
                }
            }
        }
        self.shared.finished.send_replace(true);
    }

    async fn fail(&self, code: u16, reason: &str) {
        self.shared.finished.send_replace(true);
        let _ = self
            .events
            .send(CallEvent::Failed {
                code,
                reason: reason.to_string(),
            })
            .await;
    }

    async fn provisional(&mut self, code: u16, resp: &TsxResponse) {
        if self.answered_tag.is_some() {
            return;
        }
        self.shared.state().provisional = true;
        self.shared.maybe_cancel();
        if code == 100 {
            return;
        }
        let rseq = resp
            .headers
            .try_get_named::<Vec<Require>>()
            .and_then(Result::ok)
            .is_some_and(|r| r.iter().any(|t| t.0 == "100rel"))
            .then(|| resp.headers.get_named::<RSeq>().ok())
            .flatten()
            .map(|r| r.0);
        let to_tag = resp.base_headers.to.tag.as_ref().map(|t| t.to_string());
        let sdp = (!resp.body.is_empty()).then(|| resp.body.clone());
        if let (Some(n), Some(tag)) = (rseq, &to_tag) {
            if !self.prack(tag, n, resp, sdp.clone()).await {
                return;
            }
        }
        let ev = CallEvent::Provisional {
            code,
            to_tag,
            sdp,
            reliable: rseq.is_some(),
        };
        // A session that does not keep up loses provisional responses, never the outcome.
        if self.events.try_send(ev).is_err() {
            debug!("provisional response not delivered");
        }
    }

    /// PRACK a reliable provisional response (RFC 3262 §4) in its early dialog; `false` for
    /// a retransmission or one out of order (not PRACKed, not reported).
    async fn prack(
        &mut self,
        tag: &str,
        rseq: u32,
        resp: &TsxResponse,
        sdp: Option<Bytes>,
    ) -> bool {
        if let Some(e) = self.early.get_mut(tag) {
            if rseq != e.last_rseq.wrapping_add(1) {
                return false;
            }
            e.last_rseq = rseq;
            e.sdp = e.sdp.take().or(sdp);
        } else {
            let mut dialog = match self.builder.create_dialog_from_response(resp) {
                Ok(d) => d,
                Err(e) => {
                    debug!(error = ?e, "reliable 1xx that makes no early dialog");
                    return false;
                }
            };
            dialog.route_set.reverse();
            let early = Early {
                dialog,
                last_rseq: rseq,
                sdp,
            };
            self.early.insert(tag.to_string(), early);
        }
        let Some(e) = self.early.get(tag) else {
            return false;
        };
        let mut prack = e.dialog.create_request(Method::PRACK, None);
        prack.headers.insert_named(&RAck {
            rack: rseq,
            cseq: self.cseq,
            method: Method::INVITE,
        });
        let mut target = e.dialog.target_tp_info.lock().await;
        trace!(target: "wire::sip", rseq, "-> PRACK");
        match e.dialog.endpoint.send_request(prack, &mut target).await {
            Ok(mut tsx) => {
                tokio::spawn(async move {
                    if let Err(e) = tsx.receive_final().await {
                        debug!(error = ?e, "PRACK got no final response");
                    }
                });
            }
            Err(e) => debug!(error = ?e, "PRACK not sent"),
        }
        true
    }

    async fn success(&mut self, resp: TsxResponse) {
        let Some(tag) = resp.base_headers.to.tag.as_ref().map(|t| t.to_string()) else {
            debug!("2xx without To tag ignored");
            return;
        };
        if self.answered_tag.as_deref() == Some(tag.as_str()) {
            // Retransmission: our ACK again, if the session sent it (§13.2.2.4).
            let call = self.shared.state().call.clone();
            if let Some(call) = call {
                call.reack().await;
            }
            return;
        }
        let early = self.early.remove(&tag);
        let early_sdp = early.as_ref().and_then(|e| e.sdp.clone());
        let dialog = match early {
            // The fork's early dialog goes on (its CSeq, its route set); the 2xx refreshes
            // the target (RFC 3261 §12.2.1.2).
            Some(Early { mut dialog, .. }) => {
                if let Ok(c) = resp.headers.get_named() {
                    dialog.peer_contact = c;
                }
                dialog
            }
            None => match self.builder.create_dialog_from_response(&resp) {
                Ok(mut d) => {
                    // RFC 3261 §12.1.2: the UAC's route set is the Record-Route in reverse.
                    d.route_set.reverse();
                    d
                }
                Err(e) => {
                    warn!(error = ?e, "2xx that makes no dialog ignored");
                    return;
                }
            },
        };
        if self.answered_tag.is_some() {
            // MEDIA-22: another fork answered too; ACK and end it, the session never hears.
            info!(call_id = %dialog.call_id.0, to_tag = %tag, "extra 2xx from another fork: ACK + BYE");
            let cseq = self.cseq;
            tokio::spawn(async move {
                super::send_ack(&dialog, cseq).await;
                super::send_bye(&dialog).await;
            });
            return;
        }
        crate::ops::metrics::get().sip(
            crate::ops::metrics::Dir::Out,
            "INVITE",
            resp.line.code.into_u16(),
        );
        self.answered_tag = Some(tag);
        self.shared.finished.send_replace(true);
        let refresh = refresh_interval(&resp);
        // MEDIA-17: a 2xx without SDP confirms the answer of a reliable 1xx.
        let answer = match early_sdp {
            Some(sdp) if resp.body.is_empty() => sdp,
            _ => resp.body.clone(),
        };
        let call = InCall::new(
            dialog,
            true,
            self.cseq,
            self.local_sdp.clone(),
            answer.clone(),
            self.events.clone(),
        );
        let cancelled = {
            let mut s = self.shared.state();
            s.call = Some(call.clone());
            s.cancel_wanted
        };
        if cancelled || answer.is_empty() {
            // A 2xx that crossed our CANCEL (or with no answer to our offer): the call is
            // not wanted; ACK and BYE it (RFC 3261 §9.1, §13.2.2.4).
            info!(call_id = %call.call_id(), "2xx after CANCEL or without SDP: ACK + BYE");
            call.ack().await;
            call.bye().await;
            let (code, reason) = if cancelled {
                (487, "Request Terminated")
            } else {
                (488, "2xx without an SDP answer")
            };
            let _ = self
                .events
                .send(CallEvent::Failed {
                    code,
                    reason: reason.into(),
                })
                .await;
            return;
        }
        if let Some(interval) = refresh {
            call.refresh_every(interval, self.events.clone());
        }
        if self
            .events
            .send(CallEvent::Answered { sdp: answer })
            .await
            .is_err()
        {
            call.ack().await;
            call.bye().await;
        }
    }
}

/// RFC 4028 §7.2: `Session-Expires: <secs>;refresher=uac` in the 2xx to our INVITE makes us
/// the refresher, at half the interval (at least 1 s).
fn refresh_interval(resp: &TsxResponse) -> Option<Duration> {
    let value = resp.headers.get_raw(&Name::SESSION_EXPIRES).next()?;
    let mut parts = value.split(';');
    let secs: u64 = parts.next()?.trim().parse().ok()?;
    let uac = parts.any(|p| {
        p.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("refresher") && v.trim().eq_ignore_ascii_case("uac")
        })
    });
    uac.then(|| Duration::from_secs((secs / 2).max(1)))
}
