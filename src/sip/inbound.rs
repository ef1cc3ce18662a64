//! Inbound SIP requests (RFC 3261 §8.2, RFC 3428): the ezk `Layer` that answers what needs
//! no XMPP (OPTIONS, unsupported methods) and hands MESSAGEs to the router together with a
//! [`Responder`] that owns the server transaction.

use crate::errmap::SipStatus;
use crate::im::translate::ACCEPTED_TYPES;
use crate::im::SipMessageIn;
use bytesstr::BytesStr;
use ezk_sip_core::{Endpoint, EndpointBuilder, IncomingRequest, Layer, MayTake};
use ezk_sip_types::header::typed::{FromTo, MaxForwards};
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::{Method, Name, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, trace, warn};

/// An inbound request the router must decide on.
#[derive(Debug)]
pub enum SipEvent {
    /// A MESSAGE (RFC 3428).
    Message {
        /// The request's fields.
        msg: Box<SipMessageIn>,
        /// Answers the transaction.
        responder: Responder,
    },
    /// An INVITE outside a dialog (RFC 7573 §5: an MSRP chat session).
    Invite {
        /// The request's fields.
        msg: Box<SipMessageIn>,
        /// Answers it.
        pending: super::invite::PendingInvite,
    },
    /// A SUBSCRIBE or NOTIFY (RFC 6665), in or out of a dialog.
    Presence {
        /// The request's fields.
        req: Box<crate::presence::subscription::SipRequestIn>,
        /// Answers the transaction.
        responder: Responder,
    },
}

/// Owns a server transaction until its final response.
pub struct Responder {
    endpoint: Endpoint,
    request: IncomingRequest,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder({})", self.request.base_headers.call_id.0)
    }
}

impl Responder {
    /// Send the final response. Headers the status needs ride along: `Retry-After` with 503,
    /// `Accept` with 415, `Allow` with 405.
    pub async fn respond(self, status: &SipStatus) {
        respond(&self.endpoint, self.request, status).await;
    }

    /// Send the final response with a chosen To tag (a dialog-creating 2xx), a Contact URI and
    /// extra headers.
    pub async fn respond_with(
        self,
        status: &SipStatus,
        to_tag: Option<String>,
        contact: Option<String>,
        headers: Vec<(Name, String)>,
    ) {
        respond_full(
            &self.endpoint,
            self.request,
            status,
            to_tag,
            contact,
            headers,
        )
        .await;
    }
}

async fn respond(endpoint: &Endpoint, request: IncomingRequest, status: &SipStatus) {
    respond_full(endpoint, request, status, None, None, Vec::new()).await;
}

pub(super) async fn respond_full(
    endpoint: &Endpoint,
    mut request: IncomingRequest,
    status: &SipStatus,
    to_tag: Option<String>,
    contact: Option<String>,
    headers: Vec<(Name, String)>,
) {
    let code = StatusCode::from(status.code);
    let mut resp =
        endpoint.create_response(&request, code, Some(BytesStr::from(status.reason.clone())));
    if status.code > 100 && request.base_headers.to.tag.is_none() {
        // RFC 3261 §8.2.6.2: a UAS adds a To tag to its responses.
        let tag = BytesStr::from(to_tag.unwrap_or_else(random_token));
        let _ = resp
            .msg
            .headers
            .edit(Name::TO, |to: &mut FromTo| to.tag = Some(tag));
    }
    if let Some(c) = contact {
        resp.msg.headers.insert(Name::CONTACT, format!("<{c}>"));
    }
    for (n, v) in headers {
        resp.msg.headers.insert(n, v);
    }
    match status.code {
        503 => resp.msg.headers.insert(
            Name::RETRY_AFTER,
            status.retry_after.unwrap_or(5).to_string(),
        ),
        415 if request.line.method == Method::INVITE => {
            resp.msg.headers.insert(Name::ACCEPT, "application/sdp")
        }
        415 => resp.msg.headers.insert(Name::ACCEPT, ACCEPTED_TYPES),
        405 => resp.msg.headers.insert(Name::ALLOW, super::ALLOW),
        _ => {}
    }
    if request.line.method == Method::OPTIONS && status.code == 200 {
        resp.msg.headers.insert(Name::ALLOW, super::ALLOW);
        resp.msg.headers.insert(Name::ACCEPT, ACCEPTED_TYPES);
        resp.msg.headers.insert(Name::SUPPORTED, "");
        resp.msg.headers.insert(Name::ALLOW_EVENTS, "presence");
    }
    trace!(target: "wire::sip", code = status.code, call_id = %request.base_headers.call_id.0, "-> response");
    crate::ops::metrics::get().sip(
        crate::ops::metrics::Dir::In,
        &request.line.method.to_string(),
        status.code,
    );
    let result = if request.line.method == Method::INVITE {
        endpoint
            .create_server_inv_tsx(&mut request)
            .respond_failure(resp)
            .await
    } else {
        endpoint.create_server_tsx(&mut request).respond(resp).await
    };
    if let Err(e) = result {
        debug!(error = ?e, "sending response failed");
    }
}

/// A short random token for tags and ids.
pub fn random_token() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

/// The ezk layer: everything out-of-dialog that ezk's own layers did not take lands here.
pub struct StoxLayer {
    events: mpsc::Sender<SipEvent>,
    closing: Arc<AtomicBool>,
}

impl StoxLayer {
    /// `closing` set to true makes new MESSAGEs get 503 (graceful shutdown).
    pub fn new(events: mpsc::Sender<SipEvent>, closing: Arc<AtomicBool>) -> Self {
        StoxLayer { events, closing }
    }
}

#[async_trait::async_trait]
impl Layer for StoxLayer {
    fn name(&self) -> &'static str {
        "stox"
    }

    fn init(&mut self, ep: &mut EndpointBuilder) {
        ep.add_allow(Method::MESSAGE);
        ep.add_allow(Method::OPTIONS);
        ep.add_allow(Method::SUBSCRIBE);
        ep.add_allow(Method::NOTIFY);
        ep.add_allow(Method::INVITE);
        ep.add_allow(Method::ACK);
        ep.add_allow(Method::BYE);
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        let method = request.line.method.clone();
        if method == Method::ACK || method == Method::CANCEL || method == Method::BYE {
            // ACK gets no response; CANCEL/BYE outside a transaction/dialog: ezk answers 481.
            return;
        }
        let request = request.take();
        trace!(target: "wire::sip", method = %method, call_id = %request.base_headers.call_id.0, "<- request");
        if method == Method::OPTIONS {
            respond(endpoint, request, &SipStatus::new(200)).await;
            return;
        }
        if method == Method::SUBSCRIBE || method == Method::NOTIFY {
            let req = Box::new(super::presence::extract(&request));
            let responder = Responder {
                endpoint: endpoint.clone(),
                request,
            };
            // While shutting down, no new subscription; requests of existing dialogs are
            // still answered (a 503 to a NOTIFY would end the subscription on the far side).
            let new_subscription = method == Method::SUBSCRIBE && req.to_tag.is_none();
            if new_subscription && self.closing.load(Ordering::Relaxed) {
                responder
                    .respond(&SipStatus::with_reason(503, "Shutting Down"))
                    .await;
                return;
            }
            if let Err(e) = self.events.try_send(SipEvent::Presence { req, responder }) {
                let (mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev)) =
                    e;
                warn!("router queue full, answering 503");
                if let SipEvent::Presence { responder, .. } | SipEvent::Message { responder, .. } =
                    ev
                {
                    responder
                        .respond(&SipStatus::with_reason(503, "Overloaded"))
                        .await;
                }
            }
            return;
        }
        if method == Method::INVITE && request.base_headers.to.tag.is_none() {
            let msg = Box::new(extract(&request));
            let pending = super::invite::PendingInvite::new(endpoint.clone(), request);
            if self.closing.load(Ordering::Relaxed) {
                pending
                    .reject(&SipStatus::with_reason(503, "Shutting Down"))
                    .await;
                return;
            }
            if let Err(e) = self.events.try_send(SipEvent::Invite { msg, pending }) {
                let (mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev)) =
                    e;
                warn!("router queue full, answering 503");
                if let SipEvent::Invite { pending, .. } = ev {
                    pending
                        .reject(&SipStatus::with_reason(503, "Overloaded"))
                        .await;
                }
            }
            return;
        }
        if method != Method::MESSAGE {
            let known = [
                Method::INVITE,
                Method::REGISTER,
                Method::PUBLISH,
                Method::REFER,
                Method::INFO,
                Method::UPDATE,
                Method::PRACK,
            ];
            let status = if known.contains(&method) {
                SipStatus::new(405)
            } else {
                SipStatus::new(501)
            };
            respond(endpoint, request, &status).await;
            return;
        }
        if self.closing.load(Ordering::Relaxed) {
            respond(
                endpoint,
                request,
                &SipStatus::with_reason(503, "Shutting Down"),
            )
            .await;
            return;
        }
        let msg = Box::new(extract(&request));
        let responder = Responder {
            endpoint: endpoint.clone(),
            request,
        };
        if let Err(e) = self.events.try_send(SipEvent::Message { msg, responder }) {
            // Back-pressure made explicit: a full router queue is an overload, say so.
            let (mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev)) = e;
            warn!("router queue full, answering 503");
            crate::ops::metrics::get().limit_hit("router_queue");
            if let SipEvent::Message { responder, .. } | SipEvent::Presence { responder, .. } = ev {
                responder
                    .respond(&SipStatus::with_reason(503, "Overloaded"))
                    .await;
            }
        }
    }
}

fn header(req: &IncomingRequest, name: &Name) -> Option<String> {
    req.headers.get_raw(name).next().map(|v| v.to_string())
}

/// The fields the RFC 7572 translator needs, as text.
pub fn extract(req: &IncomingRequest) -> SipMessageIn {
    SipMessageIn {
        request_uri: req.line.uri.default_print_ctx().to_string(),
        from: req.base_headers.from.uri.default_print_ctx().to_string(),
        to: req.base_headers.to.uri.default_print_ctx().to_string(),
        contact: header(req, &Name::CONTACT),
        call_id: req.base_headers.call_id.0.to_string(),
        subject: header(req, &Name::SUBJECT),
        content_type: header(req, &Name::CONTENT_TYPE),
        content_language: header(req, &Name::CONTENT_LANGUAGE),
        max_forwards: req
            .headers
            .get_named::<MaxForwards>()
            .ok()
            .map(|m| u32::from(m.0)),
        body: req.body.to_vec(),
    }
}
