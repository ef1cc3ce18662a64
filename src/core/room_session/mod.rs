//! One SIP user in one XMPP MUC room (RFC 7702 §6): the task that owns the INVITE dialog, the
//! MSRP session (the gateway is the user's MSRP switch, RFC 7701) and the user's occupant
//! identity in the room, and moves everything between them (one loop per membership).
//!
//! - Join (MUC-18, MUC-19): the occupant presence goes out first and the INVITE is answered
//!   only when the MUC lets the user in (its self-presence, status 110), so a refusal
//!   (members-only, password, banned, room full) becomes the INVITE's RFC 7247 Table E1 code
//!   instead of a session that ends at once. A nickname taken by someone else is retried as
//!   `Nick (2)`, `Nick (3)` (MUC-30: the gateway adjusts it; the conference document tells the
//!   user which one it got). A room the join created is unlocked as an instant room.
//! - Roster (MUC-20..22): the conference event package is served in the INVITE dialog; the
//!   first NOTIFY is the full roster, later ones partial ([`crate::muc::focus`]).
//! - Messages (MUC-23..25): [`crate::muc::bridge`]; the MUC's error for a message the user sent
//!   becomes a failure REPORT.
//! - Nickname (MUC-26): MSRP NICKNAME -> presence to the new occupant JID; 200 when the MUC
//!   confirms, 425 for a conflict.
//! - Leave (MUC-28): BYE -> unavailable presence; being kicked, banned or the room destroyed
//!   (our own unavailable presence without status 303) -> BYE.

use super::chat_session::Ctx;
use super::Event;
use crate::chat::msrp::MsrpUri;
use crate::chat::sdp;
use crate::errmap::{self, SipStatus, StanzaError, Target};
use crate::muc::bridge::Membership;
use crate::muc::focus::{OccupantList, PresenceEffect};
use crate::sip::invite::PendingInvite;
use crate::xmpp::xml::BuilderExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info};
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

mod member;
#[cfg(test)]
mod tests;

/// XEP-0045 namespaces used here.
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// Nicknames tried when the one asked for is taken (`Nick`, `Nick (2)`, `Nick (3)`).
const NICK_TRIES: u32 = 3;

/// History the MUC sends on join (XEP-0045 §7.2.14): enough to see what the talk is about.
const HISTORY_STANZAS: u32 = 20;

/// Commands from the router.
#[derive(Debug)]
pub enum Cmd {
    /// A presence or message the MUC sent to the user's occupant identity.
    Stanza(Element),
    /// The gateway is stopping.
    Stop,
    /// The XMPP link went down: the MUC no longer sees the occupant (the stream that carried
    /// it is gone), so the membership ends rather than pretend.
    LinkLost,
}

/// How the membership starts.
pub struct Start {
    /// The INVITE to answer.
    pub pending: PendingInvite,
    /// Its MSRP offer.
    pub offer: sdp::Remote,
    /// Our Contact (the focus; `;isfocus` is added).
    pub contact: String,
    /// The INVITE's Call-ID.
    pub call_id: String,
    /// Who is where.
    pub membership: Membership,
    /// How long the MUC may take to let the user in.
    pub join_timeout: Duration,
}

/// Run one membership; the router learns its end through [`Event::RoomEnded`].
pub async fn run(
    ctx: Ctx,
    key: String,
    id: u64,
    start: Start,
    mut cmds: mpsc::Receiver<Cmd>,
    lost: Arc<AtomicBool>,
) {
    let (local, frames) = ctx.transport.open_session(start.offer.tls);
    let cmds = Cmds {
        rx: &mut cmds,
        lost,
    };
    let outcome = Box::pin(membership(&ctx, start, &local, frames, cmds)).await;
    match outcome {
        Outcome::Refused(code) => info!(code, "membership refused"),
        Outcome::Cancelled => info!("membership cancelled before the answer"),
        Outcome::Ended(why) => info!(why, "membership over"),
    }
    ctx.transport.close_session(&local);
    let _ = ctx.router.send(Event::RoomEnded { key, id }).await;
}

/// Spawn a membership; if it panics, the router still learns it is gone.
pub fn spawn_supervised<F>(fut: F, router: mpsc::Sender<Event>, key: String, id: u64)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use tracing::Instrument;
    let span = tracing::info_span!("room", occupant = %key, id);
    let task = tokio::spawn(fut.instrument(span));
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "room membership task failed");
            let _ = router.send(Event::RoomEnded { key, id }).await;
        }
    });
}

/// The router's commands, and whether it had to drop one.
pub(super) struct Cmds<'a> {
    rx: &'a mut mpsc::Receiver<Cmd>,
    lost: Arc<AtomicBool>,
}

impl Cmds<'_> {
    /// The next command; `Err` once the router had to drop a stanza for us (our view of the
    /// room is then wrong and the membership must end).
    pub(super) async fn recv(&mut self) -> Result<Option<Cmd>, Lost> {
        let c = self.rx.recv().await;
        if self.lost.load(Ordering::Relaxed) {
            return Err(Lost);
        }
        Ok(c)
    }
}

/// A stanza for the membership was dropped (its queue was full).
#[derive(Debug)]
pub(super) struct Lost;

/// How a membership ended (for the log).
enum Outcome {
    /// The MUC refused the join; the INVITE got this code.
    Refused(u16),
    /// The caller gave up before we answered.
    Cancelled,
    /// The user left (BYE), was removed, or the gateway stopped.
    Ended(&'static str),
}

/// What the join produced: the room's occupants so far and the nickname the MUC gave us.
struct Joined {
    occupants: OccupantList,
    early: Vec<Element>,
}

async fn membership(
    ctx: &Ctx,
    start: Start,
    local: &MsrpUri,
    frames: mpsc::Receiver<Box<crate::chat::transport::Inbound>>,
    mut cmds: Cmds<'_>,
) -> Outcome {
    let Start {
        pending,
        offer,
        contact,
        call_id,
        mut membership,
        join_timeout,
    } = start;
    let joined = match join(ctx, &mut membership, join_timeout, &mut cmds).await {
        Ok(j) => j,
        Err(status) => {
            info!(%call_id, code = status.code, "the MUC refused the SIP user");
            let code = status.code;
            pending.reject(&status).await;
            return Outcome::Refused(code);
        }
    };
    // MUC-18: our answer, as the room's focus and MSRP switch.
    let (role, setup) = sdp::answer_role(offer.setup.as_deref());
    let s = &ctx.settings.msrp;
    let mut answer = sdp::build(
        &sdp::Local {
            host: local.host.trim_matches(['[', ']']).to_string(),
            port: local.port.unwrap_or(2855),
            path: vec![local.clone()],
            accept_types: vec!["message/cpim".into(), "text/plain".into()],
            accept_wrapped: vec!["text/plain".into()],
            max_size: s.max_message,
            setup,
            tls: local.secure,
        },
        1,
    );
    // RFC 7701 §9: we take nicknames and carry private messages.
    answer.extend_from_slice(b"a=chatroom:nickname private-messages\r\n");
    let dialog = match pending.accept_as_focus(&contact, answer).await {
        Ok(d) => d,
        Err(e) => {
            debug!(error = %e, "INVITE not answered");
            send_presence(ctx, &membership, PresenceType::Unavailable).await;
            return Outcome::Cancelled;
        }
    };
    info!(%call_id, room = %membership.room, nick = %membership.nick, "SIP user in the room (MUC-18)");
    let up = member::Up {
        dialog,
        remote: offer,
        role,
        frames,
        local: local.clone(),
        occupants: joined.occupants,
        early: joined.early,
    };
    Box::pin(member::established(ctx, membership, up, &mut cmds)).await
}

/// MUC-19: enter the room, trying the next nickname on a conflict. `Err` is the INVITE's
/// final response.
async fn join(
    ctx: &Ctx,
    m: &mut Membership,
    timeout: Duration,
    cmds: &mut Cmds<'_>,
) -> Result<Joined, SipStatus> {
    let base = m.nick.clone();
    let deadline = Instant::now() + timeout;
    let mut occupants = OccupantList::new();
    let mut early = Vec::new();
    let mut attempt = 1;
    send_join(ctx, m).await;
    loop {
        let cmd = tokio::select! {
            c = cmds.recv() => c,
            _ = tokio::time::sleep_until(deadline) => {
                send_presence(ctx, m, PresenceType::Unavailable).await;
                return Err(SipStatus::with_reason(408, "Room Did Not Answer"));
            }
        };
        let el = match cmd {
            Ok(Some(Cmd::Stanza(el))) => el,
            Ok(Some(Cmd::Stop | Cmd::LinkLost) | None) => {
                return Err(SipStatus::with_reason(503, "Service Unavailable"));
            }
            Err(Lost) => {
                // Part of the room's roster burst was dropped: better a clear failure the
                // caller can retry than a member with a wrong roster.
                send_presence(ctx, m, PresenceType::Unavailable).await;
                return Err(SipStatus::with_reason(503, "Room Roster Lost"));
            }
        };
        if el.name() != "presence" {
            // History and the subject come after the self-presence; anything earlier waits.
            if early.len() < 64 {
                early.push(el);
            }
            continue;
        }
        let Ok(p) = Presence::try_from(el.clone()) else {
            continue;
        };
        let from_nick = p
            .from
            .as_ref()
            .and_then(|j| j.resource())
            .map(|r| r.as_str().to_owned());
        if p.type_ == PresenceType::Error {
            let err = el
                .get_child("error", xmpp_parsers::ns::COMPONENT)
                .and_then(|e| StanzaError::try_from(e.clone()).ok());
            let conflict = err.as_ref().is_some_and(|e| {
                e.defined_condition == xmpp_parsers::stanza_error::DefinedCondition::Conflict
            });
            if conflict && attempt < NICK_TRIES {
                attempt += 1;
                m.nick = format!("{base} ({attempt})");
                debug!(nick = %m.nick, "nickname taken: trying the next one (MUC-30)");
                send_join(ctx, m).await;
                continue;
            }
            return Err(match err {
                Some(e) => join_refusal(&e),
                None => SipStatus::new(500),
            });
        }
        let statuses = muc_statuses(&p);
        let is_self = from_nick.as_deref() == Some(m.nick.as_str());
        if is_self && statuses.contains(&Status::RoomHasBeenCreated) {
            // XEP-0045 §10.1.2: accept the default configuration (an instant room), or the
            // room stays locked to everyone else.
            unlock(ctx, m).await;
        }
        if occupants.apply_presence(&p) == PresenceEffect::RosterComplete && is_self {
            return Ok(Joined { occupants, early });
        }
    }
}

/// MUC-19: the MUC's refusal of a join as the INVITE's final response: RFC 7247 Table E1,
/// except where the table's code would be wrong for a room. 401 and 407 must carry a
/// challenge the gateway cannot make (RFC 3261 §21.4.2, §21.4.8): a members-only or
/// password-protected room is 403. A full room (`<service-unavailable/>`, XEP-0045 §7.2.10)
/// is 486 Busy Here rather than the table's 405 or 403.
fn join_refusal(e: &StanzaError) -> SipStatus {
    use xmpp_parsers::stanza_error::DefinedCondition as C;
    if e.defined_condition == C::ServiceUnavailable {
        return SipStatus::with_reason(486, "Busy Here (room full)");
    }
    // The join is addressed to an occupant JID (`room/nick`), a full JID.
    let status = errmap::xmpp_to_sip(e, Target::Full);
    match status.code {
        401 | 407 => {
            SipStatus::with_reason(403, "Forbidden (members-only or password-protected room)")
        }
        _ => status,
    }
}

/// The status codes of a MUC presence.
fn muc_statuses(p: &Presence) -> Vec<Status> {
    p.payloads
        .iter()
        .find_map(|x| MucUser::try_from(x.clone()).ok())
        .map(|x| x.status)
        .unwrap_or_default()
}

async fn send_join(ctx: &Ctx, m: &Membership) {
    let x = Element::builder("x", NS_MUC)
        .append(
            Element::builder("history", NS_MUC)
                .a("maxstanzas", HISTORY_STANZAS.to_string())
                .build(),
        )
        .build();
    let el = Element::builder("presence", xmpp_parsers::ns::COMPONENT)
        .a("from", m.occupant.to_string())
        .a("to", format!("{}/{}", m.room, m.nick))
        .append(x)
        .build();
    let _ = ctx.xmpp.send(el).await;
}

/// A presence of the user's occupant to its current occupant JID (a nickname change sends
/// `Type::None` to the new one).
async fn send_presence(ctx: &Ctx, m: &Membership, type_: PresenceType) {
    let mut el = Element::builder("presence", xmpp_parsers::ns::COMPONENT)
        .a("from", m.occupant.to_string())
        .a("to", format!("{}/{}", m.room, m.nick));
    if type_ == PresenceType::Unavailable {
        el = el.a("type", "unavailable");
    }
    let _ = ctx.xmpp.send(el.build()).await;
}

async fn unlock(ctx: &Ctx, m: &Membership) {
    let form = Element::builder("x", "jabber:x:data")
        .a("type", "submit")
        .build();
    let query = Element::builder("query", NS_MUC_OWNER).append(form).build();
    let iq = Element::builder("iq", xmpp_parsers::ns::COMPONENT)
        .a("type", "set")
        .a(
            "id",
            format!("unlock-{}", crate::sip::inbound::random_token()),
        )
        .a("from", m.occupant.to_string())
        .a("to", m.room.to_string())
        .append(query)
        .build();
    let _ = ctx.xmpp.send(iq).await;
}
