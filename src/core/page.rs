//! Page-mode typing and receipts (RFC 3994 and RFC 5438 over SIP MESSAGE; see
//! `crate::chat::page`): the router's side, between the XMPP stanzas and MESSAGEs.

use super::Router;
use crate::addr::SipAddr;
use crate::chat::page::{self, Disposition, Special};
use crate::chat::{iscomposing, translate};
use crate::errmap::{SipStatus, Target};
use crate::im::{SipMessageIn, SipMessageOut};
use crate::sip::Responder;
use tokio_xmpp::minidom::Element;
use tracing::debug;
use xmpp_parsers::message::Message;

/// Bytes a `message/cpim` wrapper (RFC 3862 headers) may add to a body of
/// `messages.max_body_bytes` text.
const CPIM_ALLOWANCE: usize = 1024;

impl Router {
    /// A body-less XMPP message in page mode: chat state -> isComposing, receipt or
    /// displayed marker -> IMDN notification. `true` when it was one of those.
    pub(super) async fn page_extras(&mut self, el: &Element, msg: &Message) -> bool {
        let chat = translate::read_xmpp(msg);
        if chat.body.is_some() || msg.get_best_subject(vec![]).is_some() {
            return false;
        }
        let mut handled = false;
        for (id, kind) in [
            (chat.received.as_ref(), Disposition::Delivered),
            (chat.displayed.as_ref(), Disposition::Displayed),
        ] {
            let Some(id) = id else { continue };
            handled = true;
            let Some(d) = self.page.notify(id, kind) else {
                debug!(id, ?kind, "receipt for no SIP message that asked for one");
                continue;
            };
            let own = crate::sip::inbound::random_token();
            let body = page::notification(
                &d.sip_to,
                &d.sip_from,
                &own,
                &d.request.message_id,
                kind,
                self.clock().unix,
            );
            if let Some(out) = self.page_out(msg, body, "message/cpim") {
                self.dispatch_as(el.clone(), out, true).await;
            }
        }
        if let Some(state) = &chat.chat_state {
            handled = true;
            if let (Some(active), Some(from), Some(to)) = (
                iscomposing::from_chat_state(state),
                msg.from.as_ref(),
                msg.to.as_ref(),
            ) {
                let pair = (from.to_string(), to.to_bare().to_string());
                if self.page.composing(pair, active) {
                    let body = iscomposing::build(active, 90);
                    if let Some(out) = self.page_out(msg, body, iscomposing::CONTENT_TYPE) {
                        self.dispatch_as(el.clone(), out, true).await;
                    }
                }
            }
        }
        handled
    }

    /// A MESSAGE of ours to the SIP user `msg` is addressed to, with this body.
    fn page_out(&self, msg: &Message, body: String, content_type: &str) -> Option<SipMessageOut> {
        let (from, to) = (msg.from.as_ref()?, msg.to.as_ref()?);
        let target = if to.resource().is_some() {
            Target::Full
        } else {
            Target::Bare
        };
        let (request_uri, from_aor, contact, to_aor) =
            crate::im::translate::xmpp_addresses(from, to, &self.cfg.map, target).ok()?;
        Some(SipMessageOut {
            request_uri,
            from: from_aor,
            to: to_aor,
            contact,
            call_id: None,
            subject: None,
            content_language: None,
            body,
            content_type: content_type.to_string(),
        })
    }

    /// A text MESSAGE about to go out: ask for IMDN when the XMPP sender wants a receipt and
    /// the SIP user's client is known to speak IMDN (CHAT-17's page-mode twin).
    pub(super) fn page_wrap(&mut self, msg: &Message, out: &mut SipMessageOut) {
        let chat = translate::read_xmpp(msg);
        if let (Some(from), Some(to)) = (msg.from.as_ref(), msg.to.as_ref()) {
            self.page
                .message_sent(&(from.to_string(), to.to_bare().to_string()));
        }
        let to_aor = out.to.aor();
        let (Some(id), true) = (chat.id.clone(), chat.receipt_request || chat.markable) else {
            return;
        };
        if !self.page.speaks_imdn(&to_aor) {
            return;
        }
        let imdn_id = crate::sip::inbound::random_token();
        out.body = page::wrap_request(
            &out.from.aor(),
            &to_aor,
            &imdn_id,
            chat.markable,
            self.clock().unix,
            &out.body,
        );
        out.content_type = "message/cpim".into();
        self.page.sent(
            imdn_id,
            page::Sent {
                xmpp_id: id,
                xmpp_user: msg.from.as_ref().map(|j| j.to_string()).unwrap_or_default(),
                sip_user: msg.to.as_ref().map(|j| j.to_string()).unwrap_or_default(),
            },
        );
    }

    /// Answer 200 to the SIP MESSAGEs whose bounce window has passed. Datagram answers never
    /// block, so one task sends the whole batch; a TCP answer gets a task of its own (a slow
    /// reader must not hold up the rest).
    pub(super) fn bounce_windows_passed(&mut self, now: std::time::Instant) {
        let mut datagrams = Vec::new();
        while let Some(r) = self.bounce.poll_expired(now) {
            if r.is_udp() {
                datagrams.push(r);
            } else {
                super::respond_later(r, SipStatus::new(200));
            }
        }
        if !datagrams.is_empty() {
            tokio::spawn(async move {
                let ok = SipStatus::new(200);
                for r in datagrams {
                    r.respond(&ok).await;
                }
            });
        }
    }

    /// An inbound MESSAGE that is a typing notification or an IMDN notification, answered
    /// here; `Err` hands other MESSAGEs back.
    pub(super) async fn page_inbound(
        &mut self,
        msg: Box<SipMessageIn>,
        responder: Responder,
    ) -> Result<(), (Box<SipMessageIn>, Responder)> {
        // Every inbound MESSAGE passes here first. An XMPP server closes a component stream
        // that sends a stanza over its size limit, so an oversized SIP body is refused here
        // (RFC 3261 §21.4.11) instead of taking the link down for everyone.
        if msg.body.len() > self.cfg.limits.max_body_bytes + CPIM_ALLOWANCE {
            crate::ops::metrics::get().limit_hit("max_body_bytes");
            super::respond_later(
                responder,
                SipStatus::with_reason(413, "Request Entity Too Large"),
            );
            return Ok(());
        }
        let Some(ct) = msg.content_type.clone() else {
            return Err((msg, responder));
        };
        let Some(special) = page::classify(&ct, &msg.body) else {
            if page::claims_special(&ct, &msg.body) {
                crate::ops::metrics::get().failure("sip_message");
                super::respond_later(
                    responder,
                    SipStatus::with_reason(400, "Bad Request (malformed isComposing or IMDN)"),
                );
                return Ok(());
            }
            return Err((msg, responder));
        };
        let (to, from) = match crate::im::translate::sip_addresses(&msg, &self.cfg.map) {
            Ok(v) => v,
            Err(rej) => {
                super::respond_later(responder, rej.sip);
                return Ok(());
            }
        };
        let stanza = match special {
            Special::Composing(c) => {
                // RFC 3994 §4: an active state lapses after its refresh (default 120 s).
                let until = c.active.then(|| {
                    tokio::time::Instant::now().into_std()
                        + std::time::Duration::from_secs(u64::from(c.refresh.unwrap_or(120)))
                });
                self.page.peer_composing(
                    (from.to_string(), to.to_string()),
                    until,
                    msg.call_id.clone(),
                );
                Some(translate::chat_state(
                    &from,
                    &to,
                    &msg.call_id,
                    iscomposing::to_chat_state(&c),
                ))
            }
            Special::Notification {
                message_id,
                kind,
                ok,
            } => match self.page.take_sent(&message_id, kind) {
                Some(s) if ok => {
                    let (Ok(sip_user), Ok(xmpp_user)) = (
                        xmpp_parsers::jid::Jid::new(&s.sip_user),
                        xmpp_parsers::jid::Jid::new(&s.xmpp_user),
                    ) else {
                        super::respond_later(responder, SipStatus::new(200));
                        return Ok(());
                    };
                    Some(match kind {
                        Disposition::Delivered => {
                            translate::receipt(&sip_user, &xmpp_user, &s.xmpp_id)
                        }
                        Disposition::Displayed => {
                            translate::displayed(&sip_user, &xmpp_user, &s.xmpp_id)
                        }
                    })
                }
                _ => {
                    debug!(message_id, "IMDN notification for nothing we track");
                    None
                }
            },
        };
        let status = match stanza {
            Some(m) => match self.xmpp.send(Element::from(m)).await {
                Ok(()) => SipStatus::new(200),
                Err(_) => SipStatus::with_reason(503, "XMPP Service Unavailable"),
            },
            None => SipStatus::new(200),
        };
        super::respond_later(responder, status);
        Ok(())
    }

    /// Composing states of SIP users whose refresh lapsed: the XMPP user gets `<active/>`
    /// (CHAT-16).
    pub(super) async fn page_lapsed(&mut self) {
        let now = tokio::time::Instant::now().into_std();
        for (sip, xmpp, thread) in self.page.lapsed(now) {
            let (Ok(from), Ok(to)) = (
                xmpp_parsers::jid::Jid::new(&sip),
                xmpp_parsers::jid::Jid::new(&xmpp),
            ) else {
                continue;
            };
            let m = translate::chat_state(
                &from,
                &to,
                &thread,
                xmpp_parsers::chatstates::ChatState::Active,
            );
            let _ = self.xmpp.send(Element::from(m)).await;
        }
    }

    /// A text MESSAGE that asked for IMDN notifications: the XMPP stanza asks for a receipt
    /// (and is markable for display), and the request is remembered under its id.
    pub(super) fn page_request(&mut self, msg: &SipMessageIn, stanza: &mut Message) {
        if let (Some(from), Some(to)) = (stanza.from.as_ref(), stanza.to.as_ref()) {
            self.page.peer_message(&(from.to_string(), to.to_string()));
        }
        let Some(ct) = msg.content_type.as_deref() else {
            return;
        };
        let Some(req) = page::imdn_request(ct, &msg.body) else {
            return;
        };
        let Some(id) = stanza.id.as_ref().map(|i| i.0.clone()) else {
            return;
        };
        if req.delivery {
            stanza.payloads.push(xmpp_parsers::receipts::Request.into());
        }
        if req.display {
            stanza
                .payloads
                .push(Element::builder("markable", translate::MARKERS_NS).build());
        }
        let aor = |s: &str| SipAddr::parse(s).map(|a| a.aor()).unwrap_or_default();
        self.page.delivered(
            id,
            aor(&msg.from),
            page::Delivered {
                request: req,
                sip_from: aor(&msg.from),
                sip_to: aor(&msg.to),
                done: Default::default(),
            },
        );
    }
}
