//! The router: the one place that sees both sides. It owns the link state, the bounce
//! window of SIP -> XMPP messages and one conversation task per (XMPP sender, SIP target)
//! pair for XMPP -> SIP messages, so messages of one conversation leave in order while
//! different conversations proceed independently.
//!
//! All protocol decisions are made by the pure modules (`im`, `errmap`, `addr`,
//! `xmpp::service`); this loop only moves their results between the adapters.

pub mod admin;
pub mod call_hub;
mod call_leg;
pub mod call_session;
pub mod chat_hub;
pub mod chat_session;
pub mod conversation;
mod guest_hub;
pub mod guest_session;
mod limits;
mod page;
mod presence_io;
mod room_hub;
pub mod room_session;
pub mod store_writer;
pub mod stun_watch;

mod event;
pub use event::Event;

use crate::addr::AddressMap;
use crate::config::InboundType;
use crate::errmap::{self, DefinedCondition, SipStatus, StanzaError, Target, XmppError};
use crate::im::{self, bounce::BounceWindow, Limits};
use crate::presence::subscription::{self as presub, Clock, Engine, Output, StoreOp, TxId};
use crate::sip::{Responder, SipClient, SipEvent};
use crate::xmpp::{service, LinkEvent, XmppHandle};
use conversation::{Conversation, Outbound};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info, info_span, warn, Instrument};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::Type as PresenceType;

/// Router settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Address plan.
    pub map: AddressMap,
    /// Type of SIP -> XMPP messages.
    pub inbound_type: InboundType,
    /// Bounce window.
    pub bounce_window: Duration,
    /// Translation limits.
    pub limits: Limits,
    /// Presence tunables.
    pub presence: presub::Settings,
    /// Admin commands, reload and the effective configuration.
    pub ops: admin::Ops,
}

/// The router task's state.
pub struct Router {
    cfg: RouterConfig,
    xmpp: XmppHandle,
    sip: SipClient,
    bounce: BounceWindow<Responder>,
    conversations: HashMap<(String, String), mpsc::Sender<Outbound>>,
    in_flight: Arc<AtomicUsize>,
    id_prefix: String,
    next_id: u64,
    presence: Engine,
    held: HashMap<TxId, Responder>,
    next_tx: TxId,
    store_ops: mpsc::UnboundedSender<StoreOp>,
    /// The router's own inbox, for responses of requests it started.
    inbox: mpsc::Sender<Event>,
    epoch: (Instant, i64),
    /// Subscription stanzas produced while the XMPP link was down.
    presence_outbox: std::collections::VecDeque<xmpp_parsers::presence::Presence>,
    /// MSRP chat sessions.
    chat: chat_hub::Hub,
    /// Page-mode typing and receipts.
    page: crate::chat::page::PageState,
    /// Admin state: effective config, config path, start time.
    ops: admin::Ops,
    /// `[limits] messages_per_minute`, per sender.
    rate: crate::ops::ratelimit::RateLimit,
    /// `[limits] subscriptions_per_minute`, per subscriber.
    sub_rate: crate::ops::ratelimit::RateLimit,
    /// Calls (Jingle <-> SIP INVITE).
    calls: call_hub::Calls,
    /// SIP users in XMPP rooms.
    rooms: room_hub::Rooms,
    /// XMPP users in SIP rooms.
    guests: guest_hub::Guests,
}

/// Most subscription stanzas held for the link.
const OUTBOX_LIMIT: usize = 10_000;

impl Router {
    /// A router over the two adapters.
    ///
    /// `presence` is the engine (already restored from the store); its store writes go to
    /// `store_ops`, and responses to its SIP requests come back through `inbox`.
    pub fn new(
        cfg: RouterConfig,
        xmpp: XmppHandle,
        sip: SipClient,
        presence: Engine,
        store_ops: mpsc::UnboundedSender<StoreOp>,
        inbox: mpsc::Sender<Event>,
        chat: chat_hub::Hub,
    ) -> Self {
        let bounce = BounceWindow::new(cfg.bounce_window);
        let ops = cfg.ops.clone();
        Router {
            rate: crate::ops::ratelimit::RateLimit::new(ops.effective.limits.messages_per_minute),
            sub_rate: crate::ops::ratelimit::RateLimit::new(
                ops.effective.limits.subscriptions_per_minute,
            ),
            ops,
            calls: Default::default(),
            rooms: Default::default(),
            guests: Default::default(),
            chat,
            page: Default::default(),
            presence,
            held: HashMap::new(),
            next_tx: 0,
            store_ops,
            inbox,
            epoch: (Instant::now(), unix_now()),
            presence_outbox: std::collections::VecDeque::new(),
            cfg,
            xmpp,
            sip,
            bounce,
            conversations: HashMap::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            // A per-process prefix keeps ids unique across restarts (late bounces of a
            // previous run must not match a new message).
            id_prefix: crate::sip::inbound::random_token()[..8].to_string(),
            next_id: 0,
        }
    }

    /// Run until the event channel closes or shutdown is requested and in-flight work has
    /// drained (bounded by `drain_limit`).
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut shutdown: watch::Receiver<bool>,
        drain_limit: Duration,
    ) {
        let mut deadline: Option<Instant> = None;
        self.stun_refresh();
        loop {
            if let Some(d) = deadline {
                let idle = self.bounce.is_empty() && self.in_flight.load(Ordering::SeqCst) == 0;
                if idle || Instant::now() >= d {
                    info!(
                        pending = self.bounce.len(),
                        in_flight = self.in_flight.load(Ordering::SeqCst),
                        "router stopped"
                    );
                    for r in self.bounce.drain() {
                        respond_later(r, SipStatus::new(200));
                    }
                    self.chat_stop_all().await;
                    self.room_stop_all().await;
                    self.guest_stop_all().await;
                    return;
                }
            }
            self.drain_presence().await;
            self.gauges(events.len());
            let wake = self
                .bounce
                .poll_timeout()
                .into_iter()
                .chain(self.presence.poll_timeout())
                .chain(self.page.next_deadline())
                .min()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let wake = match deadline {
                Some(_) => wake.min(Instant::now() + Duration::from_millis(50)),
                None => wake,
            };
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(Event::Xmpp(e)) => self.on_link(e).await,
                    Some(Event::Sip(e)) => self.on_sip(*e).await,
                    Some(Event::Reload(reply)) => {
                        let _ = reply.send(self.reload());
                        self.stun_refresh();
                    }
                    Some(Event::CallEnded { key }) => self.on_call_ended(key),
                    Some(Event::RoomEnded { key, id }) => self.on_room_ended(key, id),
                    Some(Event::GuestEnded { key, id }) => self.on_guest_ended(key, id),
                    Some(Event::ChatEnded { key, id, ended }) => {
                        self.on_chat_ended(key, id, ended).await;
                    }
                    Some(Event::PresenceResponse(id, resp)) => {
                        debug!(id, code = resp.code, "presence request answered");
                        let clock = self.clock();
                        self.presence.handle(clock, presub::Input::Response { id, resp });
                    }
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now().into_std();
                    self.bounce_windows_passed(now);
                    let clock = self.clock();
                    self.presence.handle_timeout(clock);
                    self.page_lapsed().await;
                }
                _ = shutdown.changed(), if deadline.is_none() => {
                    if *shutdown.borrow() {
                        info!("shutdown: finishing in-flight messages");
                        deadline = Some(Instant::now() + drain_limit);
                    }
                }
            }
        }
    }

    async fn on_link(&mut self, e: LinkEvent) {
        match e {
            LinkEvent::Up => {
                info!("XMPP link up");
                let held = std::mem::take(&mut self.presence_outbox);
                if !held.is_empty() {
                    info!(
                        count = held.len(),
                        "sending subscription stanzas held while the link was down"
                    );
                }
                for p in held {
                    if self.xmpp.send(Element::from(p.clone())).await.is_err() {
                        self.hold_for_link(p);
                    }
                }
                let clock = self.clock();
                self.presence.handle(clock, presub::Input::LinkUp);
            }
            LinkEvent::Down => {
                // RFC 7702 memberships ride on the component stream: they end with it.
                self.room_link_lost();
                self.guest_link_lost();
                // COMP-6: stanzas in flight are lost with the stream; the SIP senders
                // still waiting must not be told 200 for something that may not arrive.
                let pending = self.bounce.drain();
                if !pending.is_empty() {
                    warn!(
                        count = pending.len(),
                        "XMPP link lost with messages in their bounce window: 503"
                    );
                }
                for r in pending {
                    respond_later(r, SipStatus::with_reason(503, "XMPP Link Lost"));
                }
            }
            LinkEvent::Stanza(el) => self.on_stanza(el).await,
        }
    }

    async fn on_stanza(&mut self, el: Element) {
        if self.room_stanza(&el) || self.guest_stanza(&el).await || self.room_iq(&el).await {
            return;
        }
        if self.call_stanza(&el).await {
            return;
        }
        match el.name() {
            "message" => self.on_message(el).await,
            "iq" => {
                if el.attr("type") == Some("result") || el.attr("type") == Some("error") {
                    return;
                }
                if self.admin_iq(&el).await {
                    return;
                }
                if let Some(reply) = service::answer_iq(&el, &self.cfg.map) {
                    let _ = self.xmpp.send(reply).await;
                }
            }
            "presence" => self.on_presence(el).await,
            _ => debug!(name = el.name(), "stanza ignored"),
        }
    }

    async fn on_message(&mut self, el: Element) {
        let is_error = el.attr("type") == Some("error");
        let msg = match Message::try_from(el.clone()) {
            Ok(m) => m,
            Err(e) => {
                if !is_error {
                    debug!(error = %e, "malformed message stanza");
                    crate::ops::metrics::get().failure("malformed_stanza");
                    let bad_address = ["to", "from"]
                        .iter()
                        .any(|a| el.attr(*a).is_some_and(|j| Jid::new(j).is_err()));
                    let err = if bad_address {
                        XmppError::new(DefinedCondition::JidMalformed)
                            .with_text("malformed address")
                    } else {
                        XmppError::new(DefinedCondition::BadRequest).with_text("malformed message")
                    };
                    self.reply_error(&el, err).await;
                }
                return;
            }
        };
        if msg.type_ == MessageType::Error {
            if let Some(code) = self.on_bounce(&msg) {
                self.chat_bounced(&msg, code).await;
            }
            return;
        }
        let to_gateway = msg.to.as_ref().is_some_and(|t| t.node().is_none());
        if to_gateway {
            let err = XmppError::new(DefinedCondition::ServiceUnavailable)
                .with_text("send messages to a SIP user's JID, not to the gateway");
            self.reply_error(&el, err).await;
            return;
        }
        if let Err(wait) = self.rate_check(&msg) {
            crate::ops::metrics::get().limit_hit("messages_per_minute");
            let err = XmppError::new(DefinedCondition::PolicyViolation).with_text(format!(
                "rate limit: at most {} messages per minute; try again in {} s",
                self.rate.rate(),
                wait.as_secs() + 1
            ));
            self.reply_error(&el, err).await;
            return;
        }
        let (el, msg) = match self.chat_route(el, msg).await {
            Ok(()) => return,
            Err(back) => back,
        };
        self.page(el, msg).await;
    }

    /// Page mode (RFC 7572): the message becomes a SIP MESSAGE.
    async fn page(&mut self, el: Element, msg: Message) {
        if self.page_extras(&el, &msg).await {
            return;
        }
        match im::xmpp_to_sip(&msg, &self.cfg.map, self.cfg.limits) {
            Ok(im::XmppOutcome::Send(mut out)) => {
                self.page_wrap(&msg, &mut out);
                self.dispatch(el, *out).await;
            }
            Ok(im::XmppOutcome::Ignore(why)) => debug!(why, "message not forwarded"),
            Err(rej) => {
                debug!(%rej, "message refused");
                crate::ops::metrics::get().failure("xmpp_message");
                self.reply_error(&el, rej.xmpp).await;
            }
        }
    }

    async fn reply_error(&self, stanza: &Element, err: XmppError) {
        let reply = service::error_reply(stanza, err, self.cfg.map.component());
        let _ = self.xmpp.send(reply).await;
    }

    /// An error stanza: if it echoes a pending SIP MESSAGE, that MESSAGE fails with the
    /// Table E1 code (IM-14); otherwise it is never answered (ERR-13).
    /// Returns the SIP code when no pending MESSAGE matched (a chat session's message may).
    fn on_bounce(&mut self, msg: &Message) -> Option<u16> {
        let id = msg.id.as_ref().map(|i| i.0.clone())?;
        let err = msg
            .payloads
            .iter()
            .find(|p| p.name() == "error")
            .and_then(|p| StanzaError::try_from(p.clone()).ok());
        let status = match &err {
            // The bounced stanza was addressed to a bare JID (IM-6: Request-URI -> bare JID).
            Some(e) => errmap::xmpp_to_sip(e, Target::Bare),
            None => SipStatus::new(500),
        };
        let from = msg
            .from
            .as_ref()
            .map(|f| f.to_bare().to_string())
            .unwrap_or_default();
        let code = status.code;
        match self.bounce.bounced(&id, &from, status) {
            Some((r, status)) => {
                debug!(id, code = status.code, "XMPP bounced a SIP message");
                respond_later(r, status);
                None
            }
            None => {
                debug!(id, "error stanza without a pending MESSAGE");
                Some(code)
            }
        }
    }

    async fn dispatch(&mut self, el: Element, out: im::SipMessageOut) {
        self.dispatch_as(el, out, false).await;
    }

    async fn dispatch_as(&mut self, el: Element, out: im::SipMessageOut, quiet: bool) {
        let key = (
            el.attr("from").unwrap_or("").to_string(),
            out.request_uri.aor(),
        );
        let item = Outbound {
            stanza: el,
            out,
            quiet,
        };
        let item = match self.conversations.get(&key) {
            Some(tx) => match tx.try_send(item) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(item)) => {
                    crate::ops::metrics::get().limit_hit("conversation_queue");
                    let err = XmppError::new(DefinedCondition::ResourceConstraint)
                        .with_text("too many messages in flight to this SIP user");
                    self.reply_error(&item.stanza, err).await;
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(item)) => item,
            },
            None => item,
        };
        let (tx, rx) = mpsc::channel(256);
        let conv = Conversation::new(
            self.sip.clone(),
            self.xmpp.clone(),
            self.cfg.map.clone(),
            self.in_flight.clone(),
        );
        let span = info_span!("conversation", xmpp = %key.0, sip = %key.1);
        tokio::spawn(conv.run(rx).instrument(span));
        let _ = tx.try_send(item);
        self.conversations.retain(|_, s| !s.is_closed());
        self.conversations.insert(key, tx);
    }

    /// The presence engine's clock: monotonic now and a unix time that advances with it
    /// (so a paused test clock moves both).
    fn clock(&self) -> Clock {
        let now = Instant::now();
        Clock {
            now: now.into_std(),
            unix: self.epoch.1 + (now - self.epoch.0).as_secs() as i64,
        }
    }

    async fn on_sip(&mut self, e: SipEvent) {
        let (msg, responder) = match e {
            SipEvent::Message { msg, responder } if !self.xmpp.is_up() => (msg, responder),
            SipEvent::Message { msg, responder } => match self.page_inbound(msg, responder).await {
                Ok(()) => return,
                Err(back) => back,
            },
            SipEvent::Invite { msg, pending } if self.room_invite_target(&msg).is_some() => {
                if let Some(room) = self.room_invite_target(&msg) {
                    self.room_invite(room, *msg, pending).await;
                }
                return;
            }
            SipEvent::Invite { msg, pending } if call_hub::is_call_offer(&msg) => {
                self.call_invite(*msg, pending).await;
                return;
            }
            SipEvent::Invite { msg, pending } => {
                self.on_invite(*msg, pending).await;
                return;
            }
            SipEvent::Presence { req, responder } => {
                // A new subscription needs the XMPP user's answer: not now. NOTIFYs and
                // refreshes of existing dialogs are handled (their stanzas wait for COMP-5's
                // re-announce when the link is back).
                let new_subscription = req.method == "SUBSCRIBE" && req.to_tag.is_none();
                if new_subscription && !self.xmpp.is_up() {
                    respond_later(
                        responder,
                        SipStatus::with_reason(503, "XMPP Service Unavailable"),
                    );
                    return;
                }
                if let Some(status) = self.sip_subscription_limited(&req) {
                    respond_later(responder, status);
                    return;
                }
                debug!(method = %req.method, call_id = %req.call_id, state = ?req.subscription_state, "presence <- SIP");
                self.next_tx += 1;
                let tx = self.next_tx;
                self.held.insert(tx, responder);
                let clock = self.clock();
                self.presence
                    .handle(clock, presub::Input::Request { tx, req });
                return;
            }
        };
        if !self.xmpp.is_up() {
            respond_later(
                responder,
                SipStatus::with_reason(503, "XMPP Service Unavailable"),
            );
            return;
        }
        let sender = crate::addr::SipAddr::parse(&msg.from)
            .map(|a| a.aor())
            .unwrap_or_else(|_| msg.from.clone());
        if let Err(wait) = self.rate.check(&sender, Instant::now().into_std()) {
            crate::ops::metrics::get().limit_hit("messages_per_minute");
            // Retry-After is when the sender's next token is there, rounded up.
            let secs = u32::try_from(wait.as_secs())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            respond_later(
                responder,
                SipStatus::with_reason(503, "Rate Limit Exceeded").retry_after(secs),
            );
            return;
        }
        self.next_id += 1;
        // Unguessable ids: a bounce is matched by id (and sender), so a predictable id would
        // let a third party fail other people's messages.
        let id = format!(
            "stox-{}-{}-{}",
            self.id_prefix,
            self.next_id,
            crate::sip::inbound::random_token()
        );
        let stanza = match im::sip_to_xmpp(&msg, &self.cfg.map, &id, self.cfg.inbound_type) {
            Ok(mut m) => {
                self.page_request(&msg, &mut m);
                m
            }
            Err(rej) => {
                debug!(%rej, call_id = %msg.call_id, "SIP MESSAGE refused");
                crate::ops::metrics::get().failure("sip_message");
                respond_later(responder, rej.sip);
                return;
            }
        };
        debug!(id, call_id = %msg.call_id, to = ?stanza.to, "SIP -> XMPP message");
        let peer = stanza
            .to
            .as_ref()
            .map(|t| t.to_bare().to_string())
            .unwrap_or_default();
        if self.xmpp.send(im::to_element(stanza)).await.is_err() {
            respond_later(
                responder,
                SipStatus::with_reason(503, "XMPP Service Unavailable"),
            );
            return;
        }
        self.bounce
            .sent(Instant::now().into_std(), id, peer, responder);
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Answer a SIP transaction without holding up the router loop (a TCP peer that reads slowly
/// must not stall every other conversation).
fn respond_later(responder: Responder, status: SipStatus) {
    tokio::spawn(async move { responder.respond(&status).await });
}
