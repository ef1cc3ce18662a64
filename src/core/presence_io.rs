//! Presence stanzas into the engine, and carrying out the presence engine's decisions
//! (RFC 8048): stanzas to the XMPP link (held while it is down when they are subscription
//! decisions), SIP requests in their own tasks, held responses, store operations.

use super::*;

impl Router {
    /// A presence stanza from XMPP: limits, a resource going away (chat sessions), then the
    /// presence engine; a malformed one gets its error.
    pub(super) async fn on_presence(&mut self, el: Element) {
        let is_error = el.attr("type") == Some("error");
        let lang = el.attr("xml:lang").map(str::to_owned);
        match xmpp_parsers::presence::Presence::try_from(el.clone()) {
            Ok(p) => {
                if let Some(err) = self.xmpp_subscription_limited(&p) {
                    self.reply_error(&el, err).await;
                    return;
                }
                if p.type_ == PresenceType::Unavailable {
                    if let Some(from) = p.from.as_ref().filter(|f| f.resource().is_some()) {
                        self.chat_resource_gone(from).await;
                    }
                }
                debug!(
                    kind = ?p.type_,
                    from = ?p.from.as_ref().map(|j| j.to_string()),
                    to = ?p.to.as_ref().map(|j| j.to_string()),
                    "presence <- XMPP"
                );
                let clock = self.clock();
                self.presence.handle(
                    clock,
                    presub::Input::Presence {
                        presence: Box::new(p),
                        lang,
                    },
                );
            }
            Err(e) if !is_error => {
                debug!(error = %e, "malformed presence stanza");
                crate::ops::metrics::get().failure("malformed_stanza");
                let bad_address = ["to", "from"]
                    .iter()
                    .any(|a| el.attr(*a).is_some_and(|j| Jid::new(j).is_err()));
                let err = if bad_address {
                    XmppError::new(DefinedCondition::JidMalformed).with_text("malformed address")
                } else {
                    XmppError::new(DefinedCondition::BadRequest).with_text("malformed presence")
                };
                self.reply_error(&el, err).await;
            }
            Err(_) => {}
        }
    }

    /// Keep a subscription stanza until the link is back (bounded: the oldest goes first).
    pub(super) fn hold_for_link(&mut self, p: xmpp_parsers::presence::Presence) {
        if self.presence_outbox.len() >= OUTBOX_LIMIT {
            warn!("too many subscription stanzas held for the XMPP link: dropping the oldest");
            self.presence_outbox.pop_front();
        }
        self.presence_outbox.push_back(p);
    }

    /// Carry out what the presence engine decided.
    pub(super) async fn drain_presence(&mut self) {
        while let Some(out) = self.presence.poll_output() {
            match out {
                Output::Stanza(p) => {
                    debug!(
                        kind = ?p.type_,
                        from = ?p.from.as_ref().map(|j| j.to_string()),
                        to = ?p.to.as_ref().map(|j| j.to_string()),
                        "presence -> XMPP"
                    );
                    // Subscription stanzas are decisions nothing re-sends: they wait for the link.
                    // Availability is state, re-announced on reconnect (COMP-5).
                    let decision =
                        !matches!(p.type_, PresenceType::None | PresenceType::Unavailable);
                    // Waiting on a full link queue is the back-pressure: stanzas keep order.
                    if self.xmpp.send(Element::from(p.clone())).await.is_err() {
                        if decision {
                            self.hold_for_link(p);
                        } else {
                            debug!("presence stanza not sent: XMPP link down");
                        }
                    }
                }
                Output::Request(r) => {
                    debug!(
                        method = r.method.as_str(),
                        ruri = %r.request_uri,
                        call_id = %r.call_id,
                        headers = ?r.headers,
                        "presence -> SIP"
                    );
                    let sip = self.sip.clone();
                    let inbox = self.inbox.clone();
                    tokio::spawn(async move {
                        let resp = sip.send_presence(&r).await;
                        let _ = inbox.send(Event::PresenceResponse(r.id, resp)).await;
                    });
                }
                Output::Respond(r) => {
                    debug!(code = r.status.code, reason = %r.status.reason, "presence response");
                    if let Some(responder) = self.held.remove(&r.tx) {
                        let host = self.sip.contact_host().to_owned();
                        tokio::spawn(async move { responder.respond_presence(r, &host).await });
                    }
                }
                Output::Store(op) => {
                    if self.store_ops.send(op).is_err() {
                        warn!("store writer gone: presence change not persisted");
                    }
                }
            }
        }
    }
}
