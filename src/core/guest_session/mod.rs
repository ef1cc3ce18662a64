//! One XMPP user in one SIP/MSRP chat room (RFC 7702 §5): the task that owns the INVITE
//! dialog to the room's focus, the conference subscription in it and the MSRP session to the
//! room's switch, and shows the room to the XMPP user as a XEP-0045 room.
//!
//! - Join (MUC-1..MUC-5): INVITE with an MSRP offer and `a=chatroom`; after the 200, the
//!   bodiless SEND, the NICKNAME for the join's nickname (when the room takes nicknames) and
//!   the SUBSCRIBE for the conference package (MUC-7). A refused INVITE or nickname is a
//!   presence error from `room/nick` (MUC-6: 425 -> `<conflict/>`, 424 -> `<jid-malformed/>`).
//! - Roster (MUC-8..MUC-10): NOTIFY bodies feed [`crate::muc::roster::Roster`]; its changes
//!   become presences ([`crate::muc::occupant`]), the self-presence last, then the subject.
//! - Messages (MUC-11..MUC-14): [`crate::muc::guest`]; the user's own groupchat message is
//!   reflected once the switch took it; a refusal is an error message.
//! - Nick change (MUC-15), leave (MUC-17: BYE, then the user's unavailable self-presence)
//!   and removal (the focus's BYE: unavailable with status 307).

use super::chat_session::Ctx;
use super::Event;
use crate::chat::msrp::{self, MsrpUri, Session};
use crate::chat::sdp;
use crate::chat::transport::{Conn, Inbound};
use crate::errmap::{DefinedCondition, XmppError};
use crate::muc::guest::{self, Guest};
use crate::muc::occupant::{self, RoomView};
use crate::muc::roster::{self, Roster};
use crate::sip::invite::{Established, InDialog, InviteOut};
use crate::xmpp::service;
use crate::xmpp::xml::BuilderExt;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

/// Conference subscription length asked for (RFC 7702 Example 5); refreshed before it ends.
const SUBSCRIBE_EXPIRES: u32 = 600;

/// Commands from the router.
#[derive(Debug)]
pub enum Cmd {
    /// A presence or message the XMPP user sent to the room or an occupant.
    Stanza(Element),
    /// The gateway is stopping.
    Stop,
    /// The XMPP link went down: the user is gone from the gateway's view; the SIP room is
    /// left (BYE).
    LinkLost,
}

/// How the guest starts.
pub struct Start {
    /// Who is where.
    pub guest: Guest,
    /// The INVITE (its SDP is filled in by the task).
    pub invite: InviteOut,
}

/// Run one guest; the router learns its end through [`Event::GuestEnded`].
pub async fn run(
    ctx: Ctx,
    key: (String, String),
    id: u64,
    start: Start,
    mut cmds: mpsc::Receiver<Cmd>,
) {
    let (local, frames) = ctx.transport.open_session(false);
    let release = Release {
        router: ctx.router.clone(),
        key: key.clone(),
        id,
    };
    let why = Box::pin(guest_task(&ctx, start, &local, frames, &mut cmds, &release)).await;
    info!(why, "guest over");
    ctx.transport.close_session(&local);
    let _ = ctx.router.send(Event::GuestEnded { key, id }).await;
}

/// Spawn a guest; if it panics, the router still learns it is gone.
pub fn spawn_supervised<F>(fut: F, router: mpsc::Sender<Event>, key: (String, String), id: u64)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use tracing::Instrument;
    let span = tracing::info_span!("guest", xmpp = %key.0, room = %key.1, id);
    let task = tokio::spawn(fut.instrument(span));
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "guest task failed");
            let _ = router.send(Event::GuestEnded { key, id }).await;
        }
    });
}

/// Tells the router the guest is over before its BYE is answered, so a join that follows at
/// once (after a refused nickname, or a quick leave and re-join) starts a new guest rather
/// than reaching this one.
struct Release {
    router: mpsc::Sender<Event>,
    key: (String, String),
    id: u64,
}

impl Release {
    async fn now(&self) {
        let (key, id) = (self.key.clone(), self.id);
        let _ = self.router.send(Event::GuestEnded { key, id }).await;
    }
}

/// What a message of the user waits for: the switch's 200 (then the reflection) or a failure.
struct Pending {
    stanza: Element,
    reflect: Option<Message>,
}

struct State {
    g: Guest,
    view: RoomView,
    session: Session,
    roster: Roster,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    /// NICKNAME in flight: (tid, nickname asked for, is it the join's).
    nick_req: Option<(String, String, bool)>,
    /// The join finished (self-presence sent): presences and messages flow.
    joined: bool,
    refresh_at: Option<Instant>,
    /// The nickname before a change the switch accepted, until the roster shows it.
    renaming: Option<String>,
    /// Unreadable conference documents while joining.
    bad_docs: u32,
    end: Option<&'static str>,
}

async fn guest_task(
    ctx: &Ctx,
    start: Start,
    local: &MsrpUri,
    mut frames: mpsc::Receiver<Box<Inbound>>,
    cmds: &mut mpsc::Receiver<Cmd>,
    release: &Release,
) -> &'static str {
    let Start {
        guest: g,
        mut invite,
    } = start;
    // MUC-1: the offer, with our URI's explicit port (MUC-3).
    let s = &ctx.settings.msrp;
    invite.sdp = sdp::build(
        &sdp::Local {
            host: local.host.trim_matches(['[', ']']).to_string(),
            port: local.port.unwrap_or(2855),
            path: vec![local.clone()],
            accept_types: vec!["message/cpim".into()],
            accept_wrapped: vec!["text/plain".into()],
            max_size: s.max_message,
            setup: None,
            tls: false,
        },
        1,
    );
    invite
        .sdp
        .extend_from_slice(b"a=chatroom:nickname private-messages\r\n");
    let result = Box::pin(ctx.sip.invite(&invite)).await;
    let mut dialog = match result {
        Ok(d) => d,
        Err(f) => {
            debug!(?f, "room INVITE failed");
            let err = super::conversation::failure_to_xmpp(&f, &ctx.map);
            presence_error(ctx, &g, err).await;
            return "INVITE refused";
        }
    };
    dialog.serve_conference();
    let answer = String::from_utf8_lossy(&dialog.remote_sdp).into_owned();
    let remote = match sdp::parse(&dialog.remote_sdp) {
        Ok(r) => r,
        Err(e) => {
            debug!(error = %e, "room answered without a usable MSRP answer");
            Box::pin(dialog.bye()).await;
            let err = XmppError::new(DefinedCondition::ServiceUnavailable)
                .with_text("the SIP room answered without an MSRP session");
            presence_error(ctx, &g, err).await;
            return "no MSRP answer";
        }
    };
    let takes_nicknames = answer
        .lines()
        .any(|l| l.starts_with("a=chatroom") && l.contains("nickname"));
    let mut session = Session::new(
        local.clone(),
        remote.path.clone(),
        s.clone(),
        ctx.budget.clone(),
    );
    let mut conn: Option<Conn> = None;
    if sdp::offer_role(remote.setup.as_deref()) == sdp::Role::Active || remote.path.len() > 1 {
        match ctx.transport.connect(&remote.path[0]).await {
            Ok(c) => {
                conn = Some(c);
                session.send_bodiless(Instant::now().into_std());
            }
            Err(e) => {
                info!(error = %e, "cannot reach the room's MSRP switch: BYE");
                Box::pin(dialog.bye()).await;
                let err = XmppError::new(DefinedCondition::RemoteServerTimeout)
                    .with_text("the SIP room's chat server cannot be reached");
                presence_error(ctx, &g, err).await;
                return "MSRP connection failed";
            }
        }
    }
    let view = RoomView {
        room: g.room.clone(),
        to: g.user.clone(),
        show_real_jids: false,
    };
    let mut st = State {
        roster: Roster::new(&g.nick),
        g,
        view,
        session,
        pending: HashMap::new(),
        next_token: 0,
        nick_req: None,
        joined: false,
        refresh_at: None,
        renaming: None,
        bad_docs: 0,
        end: None,
    };
    if takes_nicknames {
        // MUC-5: the join's nickname; the subscription follows its 200.
        let tid = st
            .session
            .request_nickname(Instant::now().into_std(), &st.g.nick.clone());
        st.nick_req = Some((tid, st.g.nick.clone(), true));
    } else {
        subscribe(ctx, &mut st, &dialog).await;
    }
    let connect_deadline = Instant::now() + ctx.settings.connect_wait;
    let mut writes: VecDeque<Bytes> = VecDeque::new();
    loop {
        while let Some(o) = st.session.poll_output() {
            match o {
                msrp::Output::Write(b) => writes.push_back(b),
                msrp::Output::Event(e) => on_msrp(ctx, &mut st, &dialog, e).await,
            }
        }
        if let Some(c) = &conn {
            while let Some(b) = writes.pop_front() {
                if !c.write(b).await {
                    st.end.get_or_insert("MSRP connection lost");
                    break;
                }
            }
        }
        if let Some(why) = st.end {
            release.now().await;
            leave(ctx, &mut st, &dialog, Some("307")).await;
            return why;
        }
        let mut wake = Instant::now() + Duration::from_secs(3600);
        if conn.is_none() {
            wake = wake.min(connect_deadline);
        }
        for t in [
            st.session.poll_timeout().map(Instant::from_std),
            st.refresh_at,
        ]
        .into_iter()
        .flatten()
        {
            wake = wake.min(t);
        }
        let watch = conn.clone();
        let closed = async move {
            match watch {
                Some(mut c) => c.closed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            c = cmds.recv() => match c {
                Some(Cmd::Stanza(el)) => {
                    if on_user(ctx, &mut st, &dialog, el).await {
                        // MUC-17: the user left.
                        release.now().await;
                        leave(ctx, &mut st, &dialog, None).await;
                        return "the XMPP user left";
                    }
                }
                Some(Cmd::Stop) | None => {
                    leave(ctx, &mut st, &dialog, Some("332")).await;
                    return "gateway stopping";
                }
                Some(Cmd::LinkLost) => {
                    release.now().await;
                    Box::pin(dialog.bye()).await;
                    return "the XMPP link went down";
                }
            },
            f = frames.recv() => match f {
                Some(inbound) => {
                    let Inbound { frame, conn: c } = *inbound;
                    if conn.is_none() {
                        conn = Some(c);
                    }
                    st.session.set_unavailable(!ctx.xmpp.is_up());
                    st.session.handle_frame(Instant::now().into_std(), frame);
                }
                None => st.end = Some("MSRP transport closed"),
            },
            ev = dialog.events.recv() => match ev {
                Some(InDialog::ConferenceNotify { body, terminated }) => {
                    // An unreadable body (already answered 400/413) is fed as one: the roster
                    // then knows an update was lost and asks for full state.
                    let r = match &body {
                        Some(b) => st.roster.handle(roster::Input::Notify(b)),
                        None if !terminated => st.roster.handle(roster::Input::Notify(b"")),
                        None => Ok(()),
                    };
                    if r.is_err() || body.is_none() && !terminated {
                        debug!("unreadable conference document");
                        st.bad_docs += 1;
                        if st.bad_docs >= 2 && !st.joined {
                            // The room's documents cannot be read: in without a roster.
                            enter_alone(ctx, &mut st).await;
                        }
                    }
                    if terminated && st.end.is_none() {
                        // The focus ended the subscription; ask again for full state.
                        st.roster.handle(roster::Input::NewSubscription).ok();
                        subscribe(ctx, &mut st, &dialog).await;
                    }
                    roster_outputs(ctx, &mut st, &dialog).await;
                }
                Some(InDialog::Bye) | None => {
                    // The focus ended the session: the user was removed (kicked) or the
                    // room closed.
                    self_unavailable(ctx, &st, Some("307")).await;
                    return "the room's focus sent BYE";
                }
                Some(_) => {}
            },
            _ = closed => {
                // What came before the close still counts; its events run at the loop's top.
                let now = Instant::now().into_std();
                for f in crate::chat::transport::already_received(&mut frames) {
                    st.session.handle_frame(now, f);
                }
                st.end = Some("MSRP connection closed");
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                st.session.handle_timeout(now.into_std());
                if conn.is_none() && now >= connect_deadline {
                    st.end = Some("the room's switch never connected");
                }
                if st.refresh_at.is_some_and(|t| now >= t) {
                    subscribe(ctx, &mut st, &dialog).await;
                }
            }
        }
    }
}

mod events;
use events::*;
