//! The router's side of chat sessions (RFC 7573): which XMPP stanzas go to which session,
//! starting sessions both ways, the page/session policy (CHAT-2) and what happens to a
//! session's leftovers when it ends (fallback to MESSAGE, re-offer after a lost connection).

use super::chat_session::{self, Cmd, Ctx, Ended, Item, Parties, Start};
use super::Router;
use crate::chat::sdp;
use crate::config::{ChatConfig, ChatMode};
use crate::errmap::{DefinedCondition, SipStatus, XmppError};
use crate::im::SipMessageIn;
use crate::sip::invite::{InviteOut, PendingInvite};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};

/// Session table and policy.
pub struct Hub {
    ctx: Ctx,
    cfg: ChatConfig,
    /// (XMPP JID, SIP AOR) -> session. The JID is the full JID once bound (CHAT-10); a
    /// session a SIP user started is keyed by the bare JID until the XMPP user answers.
    sessions: HashMap<(String, String), Entry>,
    next_id: u64,
    /// Peers that refused a session, and when (CHAT-2 auto mode).
    refused: HashMap<String, Instant>,
}

struct Entry {
    tx: mpsc::Sender<Cmd>,
    id: u64,
}

impl Hub {
    /// A hub over the session context.
    pub fn new(ctx: Ctx, cfg: ChatConfig) -> Hub {
        Hub {
            ctx,
            cfg,
            sessions: HashMap::new(),
            next_id: 0,
            refused: HashMap::new(),
        }
    }

    /// The context sessions run in (shared with room memberships, which use the same MSRP
    /// transport).
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// No live session?
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Change the policy and limits (configuration reload); sessions keep running.
    pub fn set_config(&mut self, cfg: ChatConfig) {
        self.cfg = cfg;
    }

    /// Sessions that involve `who` (an XMPP JID, bare or full, or a SIP AOR):
    /// `(id, xmpp_jid, sip_aor)`.
    pub fn sessions_of(&self, who: &str) -> Vec<(u64, String, String)> {
        let mut v: Vec<_> = self
            .sessions
            .iter()
            .filter(|((j, a), _)| {
                j.eq_ignore_ascii_case(who)
                    || j.split('/')
                        .next()
                        .is_some_and(|b| b.eq_ignore_ascii_case(who))
                    || a.eq_ignore_ascii_case(who)
            })
            .map(|((j, a), e)| (e.id, j.clone(), a.clone()))
            .collect();
        v.sort();
        v
    }

    /// End the session with this id the way its bound resource going away does (BYE; a
    /// session still being set up finishes its setup first). `false` when no such session
    /// runs.
    pub async fn end(&self, id: u64) -> bool {
        match self.sessions.values().find(|e| e.id == id) {
            Some(e) => e.tx.send(Cmd::ResourceGone).await.is_ok(),
            None => false,
        }
    }

    fn spawn(
        &mut self,
        key: (String, String),
        parties: Parties,
        start: Start,
    ) -> mpsc::Sender<Cmd> {
        self.next_id += 1;
        let id = self.next_id;
        // Small: a session's queue only backs up while its INVITE is pending.
        let (tx, rx) = mpsc::channel(64);
        let fut = chat_session::run(self.ctx.clone(), key.clone(), id, parties, start, rx);
        chat_session::spawn_supervised(fut, self.ctx.router.clone(), key.clone(), id);
        self.sessions.insert(key, Entry { tx: tx.clone(), id });
        tx
    }

    /// The larger of the session counts of the XMPP user `jid` (bare or full: every resource
    /// counts for the account) and of the SIP user `aor`. Linear in the table, which
    /// `max_sessions` bounds; only new sessions ask.
    fn session_count(&self, jid: &str, aor: &str) -> usize {
        fn bare(j: &str) -> &str {
            j.split('/').next().unwrap_or_default()
        }
        let account = bare(jid);
        let (mut by_jid, mut by_aor) = (0, 0);
        for (j, a) in self.sessions.keys() {
            by_jid += usize::from(bare(j) == account);
            by_aor += usize::from(a == aor);
        }
        by_jid.max(by_aor)
    }

    fn peer_refused(&mut self, aor: &str) -> bool {
        let memory = Duration::from_secs(self.cfg.peer_memory_secs);
        match self.refused.get(aor) {
            Some(t) if t.elapsed() < memory => true,
            Some(_) => {
                self.refused.remove(aor);
                false
            }
            None => false,
        }
    }
}

/// Refuse an INVITE without holding up the router: the INVITE server transaction waits
/// for the ACK of its final response (up to 32 s over UDP).
fn reject_later(pending: PendingInvite, status: SipStatus) {
    tokio::spawn(async move { pending.reject(&status).await });
}

/// The SIP user's AOR for a session key: no `gr`, no port.
fn aor_of(addr: &crate::addr::SipAddr) -> String {
    let mut a = addr.clone();
    a.gr = None;
    a.aor()
}

impl Router {
    /// Offer an XMPP message to the chat sessions. `Err` gives it back for page mode.
    pub(super) async fn chat_route(
        &mut self,
        el: Element,
        msg: Message,
    ) -> Result<(), (Element, Message)> {
        let item = Item {
            stanza: el,
            msg: Box::new(msg),
            attempts: 0,
        };
        self.route_item(Box::new(item))
            .await
            .map_err(|i| (i.stanza, *i.msg))
    }

    async fn route_item(&mut self, mut item: Box<Item>) -> Result<(), Box<Item>> {
        let (Some(from), Some(to)) = (item.msg.from.clone(), item.msg.to.clone()) else {
            return Err(item);
        };
        let Ok(target) = self.cfg.map.jid_to_sip(&to) else {
            return Err(item);
        };
        let aor = aor_of(&target);
        let key = (from.to_string(), aor.clone());
        // An existing session of this pair, or an unbound one the SIP user started.
        if let Some(e) = self.chat.sessions.get(&key) {
            match e.tx.send(Cmd::Xmpp(item)).await {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(Cmd::Xmpp(i))) => {
                    self.chat.sessions.remove(&key);
                    item = i;
                }
                Err(_) => unreachable!("we sent an Xmpp command"),
            }
        } else if from.resource().is_some() {
            let bare_key = (from.to_bare().to_string(), aor.clone());
            if let Some(e) = self.chat.sessions.remove(&bare_key) {
                // CHAT-10: the XMPP user answered from this resource: bind the session to it.
                let _ = e.tx.send(Cmd::Bind(from.clone())).await;
                match e.tx.send(Cmd::Xmpp(item)).await {
                    Ok(()) => {
                        self.chat.sessions.insert(key, e);
                        return Ok(());
                    }
                    Err(mpsc::error::SendError(Cmd::Xmpp(i))) => item = i,
                    Err(_) => unreachable!("we sent an Xmpp command"),
                }
            }
        }
        self.chat_start(key, target, item).await
    }

    /// Start a session for `item` if the policy says so.
    async fn chat_start(
        &mut self,
        key: (String, String),
        target: crate::addr::SipAddr,
        item: Box<Item>,
    ) -> Result<(), Box<Item>> {
        let give_back = |i: Box<Item>| Err(i);
        let mode = self.chat.cfg.mode_for(&target.host);
        let wants = match mode {
            ChatMode::Page => false,
            ChatMode::Session => true,
            ChatMode::Auto => item.msg.type_ == MessageType::Chat,
        };
        let has_body = item.msg.get_best_body(vec![]).is_some();
        if !wants
            || !has_body
            || self.chat.peer_refused(&key.1)
            || self.chat.sessions.len() >= self.chat.cfg.max_sessions
            || self.chat.session_count(&key.0, &key.1) >= self.chat.cfg.max_sessions_per_user
            || !self.xmpp.is_up()
        {
            return give_back(item);
        }
        // The page-mode translation checks every address and policy rule (CHAT-1).
        let out = match crate::im::xmpp_to_sip(&item.msg, &self.cfg.map, self.cfg.limits) {
            Ok(crate::im::XmppOutcome::Send(out)) => out,
            _ => return give_back(item),
        };
        let invite = InviteOut {
            request_uri: out.request_uri.to_uri(),
            from: out.from.aor(),
            contact: self.sip.contact_uri(
                out.contact.user.as_deref().unwrap_or(""),
                out.contact.gr.as_deref(),
            ),
            subject: out.subject.clone(),
            sdp: Vec::new(),
        };
        let parties = Parties {
            xmpp_user: item.msg.from.clone().expect("checked"),
            sip_user: item.msg.to.clone().expect("checked"),
        };
        let thread = item.msg.thread.as_ref().map(|t| t.id.clone());
        debug!(sip = %key.1, "starting an MSRP session (CHAT-3)");
        let tx = self
            .chat
            .spawn(key, parties, Start::Outbound { invite, thread });
        let _ = tx.send(Cmd::Xmpp(item)).await;
        Ok(())
    }

    /// An inbound INVITE (CHAT-8).
    pub(super) async fn on_invite(&mut self, msg: SipMessageIn, pending: PendingInvite) {
        if !self.xmpp.is_up() {
            reject_later(
                pending,
                SipStatus::with_reason(503, "XMPP Service Unavailable"),
            );
            return;
        }
        let (to, from) = match crate::im::translate::sip_addresses(&msg, &self.cfg.map) {
            Ok(v) => v,
            Err(rej) => {
                debug!(sip = %rej.sip.code, "INVITE refused");
                reject_later(pending, rej.sip);
                return;
            }
        };
        let is_sdp = msg
            .content_type
            .as_deref()
            .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
        if !is_sdp {
            reject_later(
                pending,
                SipStatus::with_reason(415, "Unsupported Media Type"),
            );
            return;
        }
        let offer = match sdp::parse(&msg.body) {
            Ok(o) => o,
            Err(e) => {
                // RFC 3261 §21.4.26: nothing in the offer we can take.
                debug!(error = %e, "INVITE without a usable MSRP offer");
                reject_later(pending, SipStatus::with_reason(488, "Not Acceptable Here"));
                return;
            }
        };
        if offer.tls && !self.chat.ctx.transport.tls() {
            // RFC 4975 §14: a TLS offer is answered over TLS or not at all; answering it with
            // a plain TCP path would downgrade what the offerer asked for.
            debug!("MSRP over TLS offered but chat.msrps_listen is not set");
            reject_later(
                pending,
                SipStatus::with_reason(488, "Not Acceptable Here (no MSRP over TLS)"),
            );
            return;
        }
        let from_addr = crate::addr::SipAddr::parse(&msg.from).ok();
        let domain = from_addr
            .as_ref()
            .map(|a| a.host.clone())
            .unwrap_or_default();
        if self.chat.cfg.mode_for(&domain) == ChatMode::Page {
            reject_later(
                pending,
                SipStatus::with_reason(488, "Not Acceptable Here (page mode only)"),
            );
            return;
        }
        if self.chat.sessions.len() >= self.chat.cfg.max_sessions {
            crate::ops::metrics::get().limit_hit("chat_max_sessions");
            reject_later(pending, SipStatus::with_reason(503, "Too Many Sessions"));
            return;
        }
        let aor = from_addr.as_ref().map(aor_of).unwrap_or_default();
        if self.chat.session_count(&to.to_bare().to_string(), &aor)
            >= self.chat.cfg.max_sessions_per_user
        {
            // One user (either end) holding many sessions is abuse or a runaway client; the
            // caller can retry later or fall back to MESSAGE.
            crate::ops::metrics::get().limit_hit("chat_max_sessions_per_user");
            reject_later(
                pending,
                SipStatus::with_reason(503, "Too Many Sessions For This User"),
            );
            return;
        }
        let user = self
            .cfg
            .map
            .jid_to_sip(&Jid::from(to.to_bare()))
            .ok()
            .and_then(|a| a.user)
            .unwrap_or_default();
        let contact = self.sip.contact_uri(&user, None);
        let key = (to.to_bare().to_string(), aor);
        info!(call_id = %msg.call_id, xmpp = %key.0, sip = %key.1, "MSRP session offered (CHAT-8)");
        let parties = Parties {
            xmpp_user: Jid::from(to.to_bare()),
            sip_user: from,
        };
        self.chat.spawn(
            key,
            parties,
            Start::Inbound {
                pending,
                offer,
                contact,
                call_id: msg.call_id.clone(),
            },
        );
    }

    /// A session ended.
    pub(super) async fn on_chat_ended(&mut self, key: (String, String), id: u64, ended: Ended) {
        if self.chat.sessions.get(&key).is_some_and(|e| e.id == id) {
            self.chat.sessions.remove(&key);
        }
        match ended {
            Ended::Fallback(items) => {
                self.chat.refused.insert(key.1.clone(), Instant::now());
                for i in items {
                    self.page(i.stanza, *i.msg).await;
                }
            }
            Ended::Closed(items) => {
                for mut i in items {
                    if i.attempts == 0 {
                        // Lost with the connection: offered once more, in a new session.
                        i.attempts = 1;
                        if let Err(i) = self.route_item(Box::new(i)).await {
                            self.page(i.stanza, *i.msg).await;
                        }
                    } else {
                        let err = XmppError::new(DefinedCondition::RecipientUnavailable)
                            .with_text("the chat session with the SIP user was lost");
                        self.reply_error(&i.stanza, err).await;
                    }
                }
            }
        }
    }

    /// The XMPP user's resource left: its sessions end (CHAT-12).
    pub(super) async fn chat_resource_gone(&mut self, full: &Jid) {
        let who = full.to_string();
        for ((j, _), e) in &self.chat.sessions {
            if *j == who {
                let _ = e.tx.send(Cmd::ResourceGone).await;
            }
        }
    }

    /// An error stanza for a message a session delivered (its id is the MSRP transaction id):
    /// the session sends the SIP sender a failure REPORT. `false` when no session matches.
    pub(super) async fn chat_bounced(&mut self, msg: &Message, code: u16) -> bool {
        let (Some(id), Some(xmpp), Some(sip)) =
            (msg.id.as_ref(), msg.from.as_ref(), msg.to.as_ref())
        else {
            return false;
        };
        let Ok(target) = self.cfg.map.jid_to_sip(sip) else {
            return false;
        };
        let aor = aor_of(&target);
        let bare = xmpp.to_bare().to_string();
        let entry = self.chat.sessions.iter().find(|((j, a), _)| {
            *a == aor && (*j == xmpp.to_string() || j.split('/').next() == Some(bare.as_str()))
        });
        match entry {
            Some((_, e)) => {
                e.tx.send(Cmd::Bounced {
                    id: id.0.clone(),
                    code,
                })
                .await
                .is_ok()
            }
            None => false,
        }
    }

    /// Stop every session (shutdown).
    pub(super) async fn chat_stop_all(&mut self) {
        for e in self.chat.sessions.values() {
            let _ = e.tx.send(Cmd::Stop).await;
        }
    }
}
