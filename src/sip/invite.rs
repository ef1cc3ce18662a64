//! INVITE dialogs for MSRP chat sessions (RFC 3261 §13-15, RFC 7573 §4-5): the thin
//! adapter between ezk's dialog layer and the chat session task.
//!
//! ezk's `InviteInitiator` cannot be given a next hop (it always resolves the Request-URI),
//! so the gateway's routing (`[sip.routes]`, outbound proxy) would be bypassed; its
//! `InviteAcceptor` hides the dialog it makes. We therefore build on the public pieces:
//! `ClientDialogBuilder` / `Dialog::new_server` for the dialog, the endpoint's INVITE
//! transactions, and our own dialog [`Usage`] that hands in-dialog requests (ACK, BYE,
//! re-INVITE) to the session task.

use super::call::{Cancels, Held};
use super::outbound::SipClient;
use super::SendFailure;
use crate::errmap::SipStatus;
use bytes::Bytes;
use bytesstr::BytesStr;
use ezk_sip_core::transport::TargetTransportInfo;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::header::typed::{CSeq, Contact, ContentType};
use ezk_sip_types::uri::NameAddr;
use ezk_sip_types::{CodeKind, Method, Name, StatusCode};
use ezk_sip_ua::dialog::{ClientDialogBuilder, Dialog, UsageGuard};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, trace};

/// An in-dialog request that reached our usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InDialog {
    /// The ACK of our 2xx.
    Ack,
    /// The peer ended the session (already answered 200).
    Bye,
    /// A SUBSCRIBE for the conference event package in this dialog (RFC 7702 §6.1, MUC-20),
    /// already answered 200 with this expiry in seconds (0: the subscription ends).
    Subscribe(u32),
    /// A REFER in a chat room's dialog (RFC 7702 §6.5, MUC-27), already answered 200: the
    /// `Refer-To` URI, whom the user invites into the room.
    Refer(String),
    /// A NOTIFY of the conference package in a chat room's dialog where we are the
    /// participant (RFC 7702 §5.3, MUC-7), already answered: 200 and the body, or the body's
    /// 400/413 and `None` (the roster machine then asks for full state again).
    ConferenceNotify {
        /// The conference-info document, when it could be read.
        body: Option<Bytes>,
        /// `Subscription-State: terminated`: the focus ended the subscription.
        terminated: bool,
    },
}

mod usage;
use usage::ChatUsage;

/// An established INVITE dialog.
pub struct Established {
    dialog: Dialog,
    _usage: UsageGuard,
    /// In-dialog requests for the session task.
    pub events: mpsc::Receiver<InDialog>,
    /// The peer's SDP.
    pub remote_sdp: Bytes,
    /// The dialog's Call-ID.
    pub call_id: String,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Established({})", self.call_id)
    }
}

impl Established {
    fn new(dialog: Dialog, remote_sdp: Bytes) -> Established {
        Established::with_usage(dialog, remote_sdp, false)
    }

    fn with_usage(dialog: Dialog, remote_sdp: Bytes, conference: bool) -> Established {
        let (tx, events) = mpsc::channel(8);
        let usage = dialog.register_usage(ChatUsage {
            events: tx,
            conference,
        });
        let call_id = dialog.call_id.0.to_string();
        Established {
            dialog,
            _usage: usage,
            events,
            remote_sdp,
            call_id,
        }
    }

    /// End the session with BYE (RFC 3261 §15.1.1); waits for the final response (bounded by
    /// Timer F).
    pub async fn bye(&self) {
        let request = self.dialog.create_request(Method::BYE, None);
        let mut target = self.dialog.target_tp_info.lock().await;
        trace!(target: "wire::sip", call_id = %self.call_id, "-> BYE");
        match self
            .dialog
            .endpoint
            .send_request(request, &mut target)
            .await
        {
            Ok(mut tsx) => {
                drop(target);
                let r = tsx.receive_final().await;
                crate::ops::metrics::get().sip(
                    crate::ops::metrics::Dir::Out,
                    "BYE",
                    r.as_ref().map_or(0, |r| r.line.code.into_u16()),
                );
                if let Err(e) = r {
                    debug!(error = ?e, "BYE got no final response");
                }
            }
            Err(e) => debug!(error = ?e, "BYE not sent"),
        }
    }
}

impl Established {
    /// Send a NOTIFY of the conference event package in this dialog (RFC 4575, MUC-22):
    /// `state` is the `Subscription-State` value. The final response is awaited by a task of
    /// its own, so a subscriber that never answers does not hold up the room; the next
    /// document goes out after this one on the same transport, in CSeq order.
    pub async fn notify_conference(&self, state: &str, body: Vec<u8>) {
        self.notify("conference", state, "application/conference-info+xml", body)
            .await;
    }

    /// As a chat-room participant: SUBSCRIBE to the room's conference package in this dialog
    /// (RFC 7702 §5.3, MUC-7) and wait for the final response; its code (408 when none).
    pub async fn subscribe_conference(&self, expires: u32) -> u16 {
        let mut request = self.dialog.create_request(Method::SUBSCRIBE, None);
        request.headers.insert(Name::EVENT, "conference");
        request.headers.insert(Name::EXPIRES, expires.to_string());
        request
            .headers
            .insert(Name::ACCEPT, "application/conference-info+xml");
        request.headers.insert(Name::ALLOW_EVENTS, "conference");
        let mut target = self.dialog.target_tp_info.lock().await;
        trace!(target: "wire::sip", call_id = %self.call_id, expires, "-> SUBSCRIBE (conference)");
        let sent = self
            .dialog
            .endpoint
            .send_request(request, &mut target)
            .await;
        drop(target);
        let code = match sent {
            Ok(mut tsx) => tsx
                .receive_final()
                .await
                .map_or(408, |r| r.line.code.into_u16()),
            Err(e) => {
                debug!(error = ?e, "SUBSCRIBE not sent");
                503
            }
        };
        crate::ops::metrics::get().sip(crate::ops::metrics::Dir::Out, "SUBSCRIBE", code);
        code
    }

    /// As a chat-room participant: invite `target` (a SIP URI) into the room with a REFER in
    /// this dialog (RFC 7702 §5.7, MUC-16); the final response's code (408 when none).
    pub async fn refer(&self, target: &str) -> u16 {
        let mut request = self.dialog.create_request(Method::REFER, None);
        request
            .headers
            .insert(Name::REFER_TO, format!("<{target}>"));
        request.headers.insert(Name::ACCEPT, "message/sipfrag");
        let mut tp = self.dialog.target_tp_info.lock().await;
        trace!(target: "wire::sip", call_id = %self.call_id, "-> REFER");
        let sent = self.dialog.endpoint.send_request(request, &mut tp).await;
        drop(tp);
        let code = match sent {
            Ok(mut tsx) => tsx
                .receive_final()
                .await
                .map_or(408, |r| r.line.code.into_u16()),
            Err(e) => {
                debug!(error = ?e, "REFER not sent");
                503
            }
        };
        crate::ops::metrics::get().sip(crate::ops::metrics::Dir::Out, "REFER", code);
        code
    }

    /// As a chat room's participant: the dialog also takes the focus's NOTIFYs (MUC-7).
    pub fn serve_conference(&mut self) {
        let (tx, events) = mpsc::channel(8);
        self._usage = self.dialog.register_usage(ChatUsage {
            events: tx,
            conference: true,
        });
        let old = std::mem::replace(&mut self.events, events);
        drop(old);
    }

    /// A NOTIFY of package `event` in this dialog, as [`Established::notify_conference`].
    pub async fn notify(
        &self,
        event: &'static str,
        state: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) {
        let mut request = self.dialog.create_request(Method::NOTIFY, None);
        request.headers.insert(Name::EVENT, event);
        request
            .headers
            .insert(Name::SUBSCRIPTION_STATE, state.to_owned());
        if !body.is_empty() {
            request
                .headers
                .insert_named(&ContentType(BytesStr::from_static(content_type)));
            request.body = body.into();
        }
        let mut target = self.dialog.target_tp_info.lock().await;
        trace!(target: "wire::sip", call_id = %self.call_id, event, state, "-> NOTIFY");
        match self
            .dialog
            .endpoint
            .send_request(request, &mut target)
            .await
        {
            Ok(mut tsx) => {
                tokio::spawn(async move {
                    let r = tsx.receive_final().await;
                    crate::ops::metrics::get().sip(
                        crate::ops::metrics::Dir::Out,
                        "NOTIFY",
                        r.as_ref().map_or(0, |r| r.line.code.into_u16()),
                    );
                });
            }
            Err(e) => debug!(error = ?e, "NOTIFY not sent"),
        }
    }
}

/// What the gateway sends for a new session.
#[derive(Debug, Clone)]
pub struct InviteOut {
    /// Request-URI (and To).
    pub request_uri: String,
    /// From URI (the XMPP user's SIP address).
    pub from: String,
    /// Contact URI (with `gr=`, ADDR-7).
    pub contact: String,
    /// Subject header.
    pub subject: Option<String>,
    /// SDP offer.
    pub sdp: Vec<u8>,
}

impl SipClient {
    /// Build the INVITE of `o` and the dialog builder, with the transport of the next hop
    /// (`[sip.routes]`, outbound proxy, else the Request-URI) already chosen; and the hop.
    pub(crate) async fn prepare_invite(
        &self,
        o: &InviteOut,
    ) -> Result<(ClientDialogBuilder, ezk_sip_core::Request, String), SendFailure> {
        let ruri = super::parse_uri(&o.request_uri).map_err(SendFailure::Unreachable)?;
        let from = super::parse_uri(&o.from).map_err(SendFailure::Unreachable)?;
        let contact = super::parse_uri(&o.contact).map_err(SendFailure::Unreachable)?;
        let host = crate::addr::SipAddr::parse(&o.request_uri)
            .map(|a| a.host)
            .unwrap_or_default();
        let hop = super::tls::hop_with_transport(
            &self.next_hop(&host, &o.request_uri),
            o.sdp.len() + 900,
            super::outbound::UDP_LIMIT,
        )
        .map_err(SendFailure::Unreachable)?;
        let hop_uri = super::parse_uri(&hop).map_err(SendFailure::Unreachable)?;
        let transport = self
            .endpoint()
            .select_transport(&hop_uri)
            .await
            .map_err(|e| SendFailure::Unreachable(format!("{hop}: {e:?}")))?;
        let mut builder = ClientDialogBuilder::new(
            self.endpoint().clone(),
            NameAddr::uri(from),
            Contact::new(NameAddr::uri(contact)),
            ruri,
        );
        builder.target_tp_info = TargetTransportInfo {
            transport: Some(transport),
            ..Default::default()
        };
        let mut request = builder.create_request(Method::INVITE, None);
        request
            .headers
            .insert_named(&ContentType(BytesStr::from_static("application/sdp")));
        if let Some(s) = &o.subject {
            request.headers.insert(Name::SUBJECT, s.as_str());
        }
        request.body = o.sdp.clone().into();
        Ok((builder, request, hop))
    }

    /// Send an INVITE with an SDP offer along the configured routing and wait for the
    /// final response; a 2xx is ACKed (RFC 3261 §13.2.2.4).
    pub async fn invite(&self, o: &InviteOut) -> Result<Established, SendFailure> {
        let (mut builder, request, hop) = self.prepare_invite(o).await?;
        let cseq = builder.local_cseq;
        trace!(target: "wire::sip", ruri = %o.request_uri, hop = %hop, "-> INVITE");
        let mut tsx = self
            .endpoint()
            .send_invite(request, &mut builder.target_tp_info)
            .await
            .map_err(|e| SendFailure::Unreachable(format!("{hop}: {e:?}")))?;
        loop {
            let out = crate::ops::metrics::Dir::Out;
            let resp = match tsx.receive().await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    crate::ops::metrics::get().sip(out, "INVITE", 0);
                    return Err(SendFailure::Timeout);
                }
                Err(e) => {
                    debug!(error = ?e, "INVITE transaction failed");
                    crate::ops::metrics::get().sip(out, "INVITE", 0);
                    return Err(SendFailure::Timeout);
                }
            };
            if resp.line.code.kind() != CodeKind::Provisional {
                crate::ops::metrics::get().sip(out, "INVITE", resp.line.code.into_u16());
            }
            match resp.line.code.kind() {
                CodeKind::Provisional => continue,
                CodeKind::Success => {
                    if resp.base_headers.to.tag.is_none() {
                        debug!("2xx without To tag ignored");
                        continue;
                    }
                    let dialog = builder
                        .create_dialog_from_response(&resp)
                        .map_err(|e| SendFailure::Unreachable(format!("bad 2xx: {e:?}")))?;
                    super::call::send_ack(&dialog, cseq).await;
                    return Ok(Established::new(dialog, resp.body.clone()));
                }
                _ => return Err(SendFailure::of(&resp)),
            }
        }
    }
}

/// An inbound INVITE waiting for the gateway's answer. Held with the CANCEL matcher of the
/// SIP layer: a CANCEL answers it 487 (RFC 3261 §9.2), after which `accept` fails and
/// `reject` does nothing.
pub struct PendingInvite {
    held: Arc<Held>,
    call_id: String,
    source: std::net::SocketAddr,
}

impl std::fmt::Debug for PendingInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingInvite({})", self.call_id)
    }
}

impl PendingInvite {
    /// Hold an inbound INVITE (no CANCEL matching).
    pub fn new(endpoint: Endpoint, request: IncomingRequest) -> PendingInvite {
        PendingInvite::watched(endpoint, request, None)
    }

    /// Hold an inbound INVITE, matched by the CANCELs `cancels` sees.
    pub(crate) fn watched(
        endpoint: Endpoint,
        request: IncomingRequest,
        cancels: Option<&Arc<Cancels>>,
    ) -> PendingInvite {
        let call_id = request.base_headers.call_id.0.to_string();
        let source = request.tp_info.source;
        PendingInvite {
            held: Held::new(endpoint, request, cancels),
            call_id,
            source,
        }
    }

    /// Where the INVITE came from (the last hop: the caller itself, or its proxy).
    pub fn source(&self) -> std::net::SocketAddr {
        self.source
    }

    /// The shared hold (for [`super::call::IncomingCall`]).
    pub(crate) fn into_held(self) -> Arc<Held> {
        self.held
    }

    /// Refuse it (a final non-2xx; the INVITE transaction handles the ACK).
    pub async fn reject(self, status: &SipStatus) {
        let Some(uas) = self.held.slot.lock().await.take() else {
            return;
        };
        if uas.tsx.is_some() {
            uas.fail(&self.held.endpoint, status, Vec::new());
        } else {
            super::inbound::respond_full(
                &self.held.endpoint,
                uas.request,
                status,
                Default::default(),
                None,
            )
            .await;
        }
    }

    /// Answer 200 with our SDP, creating the dialog. The 2xx is retransmitted until the ACK
    /// arrives (RFC 3261 §13.3.1.4) by a task of its own.
    pub async fn accept(self, contact: &str, sdp: Vec<u8>) -> Result<Established, String> {
        self.answer(contact, sdp, false).await
    }

    /// Answer 200 as a chat room's conference focus (RFC 7702 §6.1, MUC-18, MUC-20): the
    /// Contact carries `;isfocus` and the dialog serves the conference event package.
    pub async fn accept_as_focus(self, contact: &str, sdp: Vec<u8>) -> Result<Established, String> {
        self.answer(contact, sdp, true).await
    }

    async fn answer(self, contact: &str, sdp: Vec<u8>, focus: bool) -> Result<Established, String> {
        let Some(uas) = self.held.slot.lock().await.take() else {
            return Err("the caller cancelled".into());
        };
        let endpoint = self.held.endpoint.clone();
        let mut req = uas.request;
        let contact_uri = super::parse_uri(contact)?;
        let mut contact = Contact::new(NameAddr::uri(contact_uri));
        if focus {
            contact
                .params
                .push(ezk_sip_types::uri::params::Param::name("isfocus"));
        }
        let dialog = Dialog::new_server(endpoint.clone(), &req, contact)
            .map_err(|e| format!("cannot make a dialog: {e:?}"))?;
        *dialog.target_tp_info.lock().await = TargetTransportInfo {
            transport: Some((req.tp_info.transport.clone(), req.tp_info.source)),
            ..Default::default()
        };
        // Built by hand: ezk's Dialog::create_response panics when the endpoint lists no
        // Supported extension (the gateway supports none).
        let mut resp = endpoint.create_response(&req, StatusCode::OK, None);
        let tag = dialog.local_fromto.tag.clone();
        resp.msg
            .headers
            .edit(Name::TO, |to: &mut ezk_sip_types::header::typed::FromTo| {
                to.tag = tag;
            })
            .map_err(|e| format!("{e:?}"))?;
        let _ = req
            .headers
            .clone_into(&mut resp.msg.headers, Name::RECORD_ROUTE);
        resp.msg.headers.insert_named(&dialog.local_contact);
        resp.msg.headers.insert(Name::ALLOW, super::ALLOW);
        resp.msg
            .headers
            .insert_named(&ContentType(BytesStr::from_static("application/sdp")));
        resp.msg.body = sdp.into();
        let established = Established::with_usage(dialog, req.body.clone(), focus);
        let tsx = match uas.tsx {
            Some(t) => t,
            None => endpoint.create_server_inv_tsx(&mut req),
        };
        let mut accepted = tsx
            .respond_success(resp)
            .await
            .map_err(|e| format!("200 not sent: {e:?}"))?;
        crate::ops::metrics::get().sip(crate::ops::metrics::Dir::In, "INVITE", 200);
        let cseq = req.headers.get_named::<CSeq>().map(|c| c.cseq).ok();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut delta = Duration::from_millis(500);
            let mut waited = Duration::ZERO;
            while waited < Duration::from_secs(32) {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(delta) => {}
                }
                waited += delta;
                if accepted.retransmit().await.is_err() {
                    return;
                }
                delta = (delta * 2).min(Duration::from_secs(4));
            }
            debug!(?cseq, "no ACK for our 2xx");
        });
        Ok(established.with_ack_stop(stop))
    }
}

impl Established {
    fn with_ack_stop(mut self, stop: tokio::sync::oneshot::Sender<()>) -> Established {
        // The first in-dialog ACK stops the retransmissions; the session task sees it too.
        let (tx, rx) = mpsc::channel(8);
        let mut inner = std::mem::replace(&mut self.events, rx);
        tokio::spawn(async move {
            let mut stop = Some(stop);
            while let Some(ev) = inner.recv().await {
                if matches!(ev, InDialog::Ack) {
                    if let Some(s) = stop.take() {
                        let _ = s.send(());
                    }
                }
                if tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
        self
    }
}
