//! Inbound SIP requests (RFC 3261 §8.2, RFC 3428): the ezk `Layer` that answers what needs
//! no XMPP (OPTIONS, unsupported methods) and hands MESSAGEs to the router together with a
//! [`Responder`] that owns the server transaction.

use super::retrans::{TtlCache, MAX_ENTRIES, TIMER_J};
use crate::errmap::SipStatus;
use crate::im::translate::ACCEPTED_TYPES;
use crate::im::SipMessageIn;
use bytesstr::BytesStr;
use ezk_sip_core::transport::TpHandle;
use ezk_sip_core::{Endpoint, EndpointBuilder, IncomingRequest, Layer, MayTake};
use ezk_sip_types::header::typed::{FromTo, MaxForwards};
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::{Method, Name, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
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

/// Final responses of answered non-INVITE UDP requests, for retransmissions (Timer J), by
/// [`tsx_id`].
pub type ResponseCache = Mutex<TtlCache<Box<str>, Cached>>;

/// What a retransmission is answered with: an exact copy of the response's bytes (the
/// printed buffer has spare capacity) and where they went.
#[derive(Clone)]
pub struct Cached {
    bytes: Arc<[u8]>,
    transport: TpHandle,
    destination: std::net::SocketAddr,
}

/// The server transaction a request belongs to (RFC 3261 §17.2.3; ACK matches INVITE), as a
/// string of its own: ezk's `TsxKey` shares the request's buffer, and 32 s of requests kept
/// alive through their keys was most of this cache's memory.
fn tsx_id(req: &IncomingRequest) -> Box<str> {
    let method = if req.line.method == Method::ACK {
        "INVITE".to_string()
    } else {
        req.line.method.to_string()
    };
    let branch = req.tsx_key.branch();
    if branch.starts_with("z9hG4bK") {
        format!("{branch} {method}").into()
    } else {
        // RFC 2543 peers: no unique branch, so the dialog identifiers and CSeq stand in.
        let h = &req.base_headers;
        let tag = h.from.tag.as_ref().map_or("", |t| t.as_str());
        format!("{} {} {tag} {method}", h.call_id.0, h.cseq.cseq).into()
    }
}

/// A fresh, empty [`ResponseCache`].
pub fn response_cache() -> Arc<ResponseCache> {
    Arc::new(Mutex::new(TtlCache::new(TIMER_J, MAX_ENTRIES)))
}

/// Owns a server transaction until its final response.
pub struct Responder {
    endpoint: Endpoint,
    request: IncomingRequest,
    cache: Arc<ResponseCache>,
    /// The request's share of the in-flight budget, given back when the responder is dropped
    /// (after answering).
    _budget: Option<super::budget::Token>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Responder({})", self.request.base_headers.call_id.0)
    }
}

impl Responder {
    /// The request came over UDP (answering it never waits on the peer).
    pub fn is_udp(&self) -> bool {
        self.request.tp_info.transport.is_udp()
    }

    /// Send the final response. Headers the status needs ride along: `Retry-After` with 503,
    /// `Accept` with 415, `Allow` with 405.
    pub async fn respond(self, status: &SipStatus) {
        respond(&self.endpoint, self.request, status, &self.cache).await;
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
        let cache = self.cache.clone();
        let reply = Reply {
            to_tag,
            contact,
            headers,
        };
        respond_full(&self.endpoint, self.request, status, reply, Some(&cache)).await;
    }
}

/// What a final response carries besides its status.
#[derive(Default)]
pub(super) struct Reply {
    /// The To tag (a dialog-creating 2xx); random when `None`.
    pub to_tag: Option<String>,
    /// A Contact URI.
    pub contact: Option<String>,
    /// Extra headers.
    pub headers: Vec<(Name, String)>,
}

async fn respond(
    endpoint: &Endpoint,
    request: IncomingRequest,
    status: &SipStatus,
    cache: &ResponseCache,
) {
    respond_full(endpoint, request, status, Reply::default(), Some(cache)).await;
}

/// Send the final response to `request`. Non-INVITE requests over UDP are answered here and
/// the response kept in `cache` for retransmissions (see [`super::retrans`]); everything else
/// goes through ezk's server transactions.
pub(super) async fn respond_full(
    endpoint: &Endpoint,
    mut request: IncomingRequest,
    status: &SipStatus,
    reply: Reply,
    cache: Option<&ResponseCache>,
) {
    let Reply {
        to_tag,
        contact,
        headers,
    } = reply;
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
    } else if let Some(cache) = cache.filter(|_| resp.parts.transport.is_udp()) {
        let sent = endpoint.send_outgoing_response(&mut resp).await;
        // Remembered before `request` (and with it ezk's transaction) is dropped, so a
        // retransmission finds either the transaction or the cached response.
        let cached = Cached {
            bytes: Arc::from(&resp.parts.buffer[..]),
            transport: resp.parts.transport,
            destination: resp.parts.destination,
        };
        cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            tsx_id(&request),
            cached,
            Instant::now(),
        );
        sent.map_err(Into::into)
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
    cache: Arc<ResponseCache>,
    gate: super::gate::GateCell,
    budget: Arc<super::budget::Budget>,
    /// INVITEs without a final response yet, for CANCEL (RFC 3261 §9.2).
    cancels: Arc<super::call::Cancels>,
}

impl StoxLayer {
    /// `closing` set to true makes new MESSAGEs get 503 (graceful shutdown); `gate` decides
    /// which sources are served (`[access]`); `budget` bounds the bytes of requests held for
    /// the router (`sip.max_held_bytes`).
    pub fn new(
        events: mpsc::Sender<SipEvent>,
        closing: Arc<AtomicBool>,
        gate: super::gate::GateCell,
        budget: Arc<super::budget::Budget>,
    ) -> Self {
        StoxLayer {
            events,
            closing,
            cache: response_cache(),
            gate,
            budget,
            cancels: Arc::default(),
        }
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
        if method == Method::CANCEL {
            // A CANCEL of an INVITE still waiting for its answer; any other gets ezk's 481.
            if let Some(held) = self.cancels.find(&request) {
                super::call::Cancels::cancel(held, request.take()).await;
            }
            return;
        }
        if method == Method::ACK || method == Method::BYE {
            // ACK gets no response; BYE outside a dialog: ezk answers 481.
            return;
        }
        let request = request.take();
        trace!(target: "wire::sip", method = %method, call_id = %request.base_headers.call_id.0, "<- request");
        if method != Method::INVITE && self.retransmitted(&request).await {
            return;
        }
        let cache = &*self.cache;
        if method == Method::OPTIONS {
            respond(endpoint, request, &SipStatus::new(200), cache).await;
            return;
        }
        // Everything past OPTIONS (a keepalive that reveals nothing) passes the gate first:
        // an untrusted source must not reach a user, a subscription or a dialog.
        if let Some((status, headers)) = super::gate::check(&self.gate, &request) {
            let reply = Reply {
                headers,
                ..Reply::default()
            };
            respond_full(endpoint, request, &status, reply, Some(cache)).await;
            return;
        }
        if method == Method::SUBSCRIBE || method == Method::NOTIFY {
            let req = Box::new(super::presence::extract(&request));
            let token = self.hold(&request);
            // A NOTIFY of an existing subscription is never refused for load: a failed NOTIFY
            // may end the subscription on the far side (RFC 6665 §4.2.2); it goes through,
            // counted if it fits.
            if token.is_none() && !(method == Method::NOTIFY && req.to_tag.is_some()) {
                respond(endpoint, request, &overloaded(), cache).await;
                return;
            }
            let responder = Responder {
                endpoint: endpoint.clone(),
                request,
                cache: self.cache.clone(),
                _budget: token,
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
            let pending = super::invite::PendingInvite::watched(
                endpoint.clone(),
                request,
                Some(&self.cancels),
            );
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
            respond(endpoint, request, &status, cache).await;
            return;
        }
        if self.closing.load(Ordering::Relaxed) {
            respond(
                endpoint,
                request,
                &SipStatus::with_reason(503, "Shutting Down"),
                cache,
            )
            .await;
            return;
        }
        let msg = Box::new(extract(&request));
        let Some(token) = self.hold(&request) else {
            respond(endpoint, request, &overloaded(), cache).await;
            return;
        };
        let responder = Responder {
            endpoint: endpoint.clone(),
            request,
            cache: self.cache.clone(),
            _budget: Some(token),
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

/// 503 for a request that finds the router's queue or the held-bytes budget full.
fn overloaded() -> SipStatus {
    SipStatus::with_reason(503, "Overloaded").retry_after(1)
}

impl StoxLayer {
    /// The request's share of the held-bytes budget: its whole datagram or frame, which the
    /// request keeps alive until it is answered, plus what ezk allocates per transaction.
    fn hold(&self, request: &IncomingRequest) -> Option<super::budget::Token> {
        let bytes = request.tp_info.buffer.len() + super::budget::PER_REQUEST;
        let token = self.budget.take(bytes);
        if token.is_none() {
            // Per request and under overload: debug, the metric is what to watch.
            debug!(
                held = self.budget.used(),
                "held SIP requests over sip.max_held_bytes"
            );
            crate::ops::metrics::get().limit_hit("sip_max_held_bytes");
        }
        token
    }

    /// A retransmission of a request already answered: send the same response again
    /// (RFC 3261 §17.2.2, Completed state) and tell the caller to drop it.
    async fn retransmitted(&self, request: &IncomingRequest) -> bool {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tsx_id(request), Instant::now())
            .cloned();
        let Some(c) = cached else {
            return false;
        };
        trace!(target: "wire::sip", call_id = %request.base_headers.call_id.0, "retransmission answered from the cache");
        if let Err(e) = c.transport.send(&c.bytes, c.destination).await {
            debug!(error = ?e, "resending a response failed");
        }
        true
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
