//! One MSRP chat session (RFC 7573): the task that owns the INVITE dialog, the MSRP
//! session machine and its connection, and moves a conversation between them (one loop per
//! conversation). The router starts it and forwards the conversation's XMPP stanzas; the
//! task reports back when it ends, with what it could not deliver.
//!
//! - Set-up X->S (CHAT-3..5): stanzas arriving before the session is up are queued; a
//!   refusal that means "no MSRP here" (415, 488, 606, 405, 501) hands the queue back for
//!   MESSAGE (CHAT-4); any other failure answers each queued stanza with its RFC 7247 error.
//! - Set-up S->X (CHAT-8): the router accepted the INVITE's addresses; the task answers it.
//! - Teardown (CHAT-11, 12, 14): BYE <-> `<gone/>`, the idle timer, the bound resource
//!   leaving. A lost TCP connection ends the session with BYE and hands the messages that
//!   had no MSRP 200 yet back to the router, which sends them in a new session.

use super::Event;
use crate::addr::AddressMap;
use crate::chat::msrp::chunk::Budget;
use crate::chat::msrp::{self, MsrpUri, Session};
use crate::chat::sdp::{self, Role};
use crate::chat::transport::{Conn, Inbound, Transport};
use crate::chat::{iscomposing, translate};
use crate::core::conversation::failure_to_xmpp;
use crate::sip::invite::{Established, InDialog, InviteOut, PendingInvite};
use crate::sip::{SendFailure, SipClient};
use crate::xmpp::{service, XmppHandle};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info, warn};
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;

/// Session settings shared by all sessions.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// MSRP machine settings.
    pub msrp: msrp::Settings,
    /// CHAT-12 inactivity timer.
    pub idle: Duration,
    /// How long to wait for the peer's MSRP connection or first frame.
    pub connect_wait: Duration,
    /// Offer MSRP over TLS in the sessions we start (`chat.offer_tls`).
    pub offer_tls: bool,
}

/// Everything a session task needs.
#[derive(Clone)]
pub struct Ctx {
    /// SIP side.
    pub sip: SipClient,
    /// XMPP side.
    pub xmpp: XmppHandle,
    /// MSRP transport.
    pub transport: Transport,
    /// Address plan.
    pub map: AddressMap,
    /// Settings.
    pub settings: ChatSettings,
    /// Process-wide reassembly budget.
    pub budget: Budget,
    /// The router's inbox.
    pub router: mpsc::Sender<Event>,
}

/// An XMPP stanza for the session.
#[derive(Debug, Clone)]
pub struct Item {
    /// As received (for error replies).
    pub stanza: Element,
    /// Parsed.
    pub msg: Box<Message>,
    /// Sessions this stanza has already been offered to (a lost connection re-offers once).
    pub attempts: u8,
}

/// Commands from the router.
#[derive(Debug)]
pub enum Cmd {
    /// A stanza of this conversation (boxed: the queue's blocks are sized by the largest
    /// command, and every session has one).
    Xmpp(Box<Item>),
    /// The XMPP user's full JID the session is now bound to (CHAT-10).
    Bind(Jid),
    /// The bound resource went unavailable (CHAT-12).
    ResourceGone,
    /// The XMPP server bounced the message we delivered with this id (the MSRP transaction
    /// id, CHAT-7); `code` is its RFC 7247 Table 1 SIP code.
    Bounced {
        /// Stanza id.
        id: String,
        /// Status code for the failure REPORT.
        code: u16,
    },
    /// The gateway is stopping.
    Stop,
}

/// How the session started (built once per session, so its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Start {
    /// An XMPP user's first chat message (CHAT-3).
    Outbound {
        /// The INVITE (its SDP is filled in by the task).
        invite: InviteOut,
        /// The XMPP thread of the first message, echoed on the way back.
        thread: Option<String>,
    },
    /// A SIP user's INVITE (CHAT-8).
    Inbound {
        /// The transaction to answer.
        pending: PendingInvite,
        /// The MSRP media of the offer.
        offer: sdp::Remote,
        /// Contact URI for our 200.
        contact: String,
        /// The INVITE's Call-ID (the XMPP thread).
        call_id: String,
    },
}

/// What the task tells the router when it ends.
#[derive(Debug)]
pub enum Ended {
    /// The peer does not do MSRP sessions: send these as MESSAGE (CHAT-4).
    Fallback(Vec<Item>),
    /// Done; `requeue` had no MSRP 200 before the connection was lost.
    Closed(Vec<Item>),
}

/// Codes that mean "this peer does not take MSRP sessions" (CHAT-2, CHAT-4).
pub fn is_no_session_code(code: u16) -> bool {
    matches!(code, 415 | 488 | 606 | 405 | 501)
}

/// The conversation's parties.
#[derive(Debug, Clone)]
pub struct Parties {
    /// The XMPP user (full JID once bound, CHAT-10; bare for an unbound S->X session).
    pub xmpp_user: Jid,
    /// The SIP user's JID (`from` of what we deliver).
    pub sip_user: Jid,
}

/// Run one session. `key` and `id` identify it to the router.
pub async fn run(
    ctx: Ctx,
    key: (String, String),
    id: u64,
    parties: Parties,
    start: Start,
    mut cmds: mpsc::Receiver<Cmd>,
) {
    // Inbound, the offer decides (the hub refused a TLS offer we cannot serve); outbound, the
    // policy does.
    let secure = match &start {
        Start::Inbound { offer, .. } => offer.tls,
        Start::Outbound { .. } => ctx.settings.offer_tls && ctx.transport.tls(),
    };
    let (local, frames) = ctx.transport.open_session(secure);
    let mut task = Task {
        ctx: ctx.clone(),
        parties,
        thread: String::new(),
        queue: VecDeque::new(),
        local: local.clone(),
    };
    match Box::pin(task.setup(start, &mut cmds, frames)).await {
        Err(ended) => finish(&ctx, key, id, &local, ended, cmds).await,
        Ok(up) => {
            // The set-up future is large (SIP transactions, SDP, relay AUTH) and a task keeps
            // its future's size for life: the conversation continues in a task of its own,
            // sized for the established session only, and this one ends.
            let router = ctx.router.clone();
            let k = key.clone();
            spawn_supervised(
                async move {
                    let Up {
                        dialog,
                        remote,
                        role,
                        relay_conn,
                        mut frames,
                    } = up;
                    let ended = Box::pin(task.established(
                        dialog,
                        remote,
                        role,
                        relay_conn,
                        &mut cmds,
                        &mut frames,
                    ))
                    .await;
                    finish(&ctx, key, id, &local, ended, cmds).await;
                },
                router,
                k,
                id,
            );
        }
    }
}

/// Spawn a session future; if it panics, the router still learns the session is gone.
pub fn spawn_supervised<F>(fut: F, router: mpsc::Sender<Event>, key: (String, String), id: u64)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use tracing::Instrument;
    let span = tracing::info_span!("chat", xmpp = %key.0, sip = %key.1, id);
    let task = tokio::spawn(fut.instrument(span));
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %e, sip = %key.1, "chat session task failed");
            let ended = Ended::Closed(Vec::new());
            let _ = router.send(Event::ChatEnded { key, id, ended }).await;
        }
    });
}

/// Report the end to the router, with what is still queued.
async fn finish(
    ctx: &Ctx,
    key: (String, String),
    id: u64,
    local: &MsrpUri,
    ended: Ended,
    mut cmds: mpsc::Receiver<Cmd>,
) {
    ctx.transport.close_session(local);
    // Whatever is still queued in the channel belongs to the result.
    cmds.close();
    let mut rest = Vec::new();
    while let Ok(c) = cmds.try_recv() {
        if let Cmd::Xmpp(i) = c {
            rest.push(*i);
        }
    }
    let ended = match ended {
        Ended::Fallback(mut v) => {
            v.extend(rest);
            Ended::Fallback(v)
        }
        Ended::Closed(mut v) => {
            v.extend(rest);
            Ended::Closed(v)
        }
    };
    let _ = ctx.router.send(Event::ChatEnded { key, id, ended }).await;
}

/// An established session handed from set-up to the conversation loop.
struct Up {
    dialog: Established,
    remote: sdp::Remote,
    role: Role,
    relay_conn: Option<Conn>,
    frames: mpsc::Receiver<Box<Inbound>>,
}

struct Task {
    ctx: Ctx,
    parties: Parties,
    thread: String,
    queue: VecDeque<Item>,
    local: MsrpUri,
}

/// A message of ours waiting for its MSRP outcome.
struct InFlight {
    item: Option<Item>,
    receipt_for: Option<String>,
}

impl Task {
    async fn setup(
        &mut self,
        start: Start,
        cmds: &mut mpsc::Receiver<Cmd>,
        frames: mpsc::Receiver<Box<Inbound>>,
    ) -> Result<Up, Ended> {
        let relay = match Box::pin(self.ctx.transport.relay()).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "MSRP relay unusable");
                return Err(self.refuse_start(start, &e).await);
            }
        };
        let path: Vec<MsrpUri> = match &relay {
            Some((_, use_path)) => use_path
                .iter()
                .cloned()
                .chain([self.local.clone()])
                .collect(),
            None => vec![self.local.clone()],
        };
        // RFC 4975 §8.1: c= and m= name our own URI (the last of the path), relay or not.
        let (sdp_host, sdp_port) = (
            self.local.host.trim_matches(['[', ']']).to_string(),
            self.local.port.unwrap_or(2855),
        );
        let s = &self.ctx.settings.msrp;
        let local_sdp = |setup| sdp::Local {
            host: sdp_host.clone(),
            port: sdp_port,
            path: path.clone(),
            accept_types: s.accept_types.clone(),
            accept_wrapped: vec!["text/plain".into()],
            max_size: s.max_message,
            setup,
            tls: self.local.secure,
        };
        // ---- set-up
        let (dialog, remote, role) = match start {
            Start::Outbound { mut invite, thread } => {
                invite.sdp = sdp::build(&local_sdp(None), 1);
                let sip = self.ctx.sip.clone();
                let result = {
                    // Boxed: the INVITE future is large and only lives during set-up; inline it
                    // would size every idle session's task for it.
                    let mut fut = Box::pin(sip.invite(&invite));
                    loop {
                        tokio::select! {
                            r = &mut fut => break r,
                            c = cmds.recv() => match c {
                                Some(Cmd::Xmpp(i)) => self.queue.push_back(*i),
                                Some(Cmd::Bind(j)) => self.parties.xmpp_user = j,
                                Some(Cmd::ResourceGone | Cmd::Stop | Cmd::Bounced { .. }) | None => {}
                            }
                        }
                    }
                };
                let dialog = match result {
                    Ok(d) => d,
                    Err(SendFailure::Response { status, .. })
                        if is_no_session_code(status.code) =>
                    {
                        info!(
                            code = status.code,
                            "SIP user refused an MSRP session: page mode"
                        );
                        return Err(Ended::Fallback(self.queue.drain(..).collect()));
                    }
                    Err(f) => {
                        debug!(?f, "session INVITE failed");
                        let err = failure_to_xmpp(&f, &self.ctx.map);
                        for i in std::mem::take(&mut self.queue) {
                            self.reply_error(&i, err.clone()).await;
                        }
                        return Err(Ended::Closed(Vec::new()));
                    }
                };
                self.thread = thread.unwrap_or_else(|| dialog.call_id.clone());
                let remote = match sdp::parse(&dialog.remote_sdp) {
                    Ok(r) => r,
                    Err(e) => {
                        info!(error = %e, "2xx without a usable MSRP answer: BYE, page mode");
                        Box::pin(dialog.bye()).await;
                        return Err(Ended::Fallback(self.queue.drain(..).collect()));
                    }
                };
                let role = sdp::offer_role(remote.setup.as_deref());
                (dialog, remote, role)
            }
            Start::Inbound {
                pending,
                offer,
                contact,
                call_id,
            } => {
                self.thread = call_id;
                let (role, setup) = sdp::answer_role(offer.setup.as_deref());
                let answer = sdp::build(&local_sdp(setup), 1);
                match Box::pin(pending.accept(&contact, answer)).await {
                    Ok(d) => (d, offer, role),
                    Err(e) => {
                        warn!(error = %e, "could not answer the INVITE");
                        return Err(Ended::Closed(Vec::new()));
                    }
                }
            }
        };
        info!(call_id = %dialog.call_id, local = %self.local, remote = %msrp::uri::path_string(&remote.path), "MSRP session up");
        Ok(Up {
            dialog,
            remote,
            role,
            relay_conn: relay.map(|r| r.0),
            frames,
        })
    }

    async fn refuse_start(&mut self, start: Start, why: &str) -> Ended {
        match start {
            Start::Inbound { pending, .. } => {
                pending
                    .reject(&crate::errmap::SipStatus::with_reason(
                        503,
                        "MSRP Relay Unavailable",
                    ))
                    .await;
                // (set-up only: the future's size does not matter here)
                Ended::Closed(Vec::new())
            }
            Start::Outbound { .. } => {
                debug!(why, "no session possible now: page mode");
                Ended::Fallback(self.queue.drain(..).collect())
            }
        }
    }
}

mod conversation;
