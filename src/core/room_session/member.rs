//! The established phase of a membership: one loop over the MUC's stanzas, the MSRP frames,
//! the INVITE dialog (BYE, the conference subscription) and the timers.

use super::*;
use crate::addr::SipAddr;
use crate::chat::msrp::{self, Session};
use crate::chat::transport::{Conn, Inbound};
use crate::muc::bridge::{self, Outgoing};
use crate::muc::focus::Notifier;
use crate::sip::invite::{Established, InDialog};
use bytes::Bytes;
use std::collections::VecDeque;
use xmpp_parsers::message::{Message, MessageType};

/// Set-up results handed to the loop.
pub(super) struct Up {
    pub dialog: Established,
    pub remote: sdp::Remote,
    pub role: sdp::Role,
    pub frames: mpsc::Receiver<Box<Inbound>>,
    pub local: MsrpUri,
    pub occupants: OccupantList,
    pub early: Vec<Element>,
}

/// Message ids (MSRP tids) of the user's messages sent to the MUC, for its error replies.
const REMEMBERED_IDS: usize = 128;

struct State {
    m: Membership,
    session: Session,
    occupants: OccupantList,
    notifier: Notifier,
    subject: Option<String>,
    /// The conference subscription's expiry, while there is one.
    subscribed_until: Option<Instant>,
    /// A NICKNAME waiting for the MUC: (MSRP tid, nickname asked for).
    nick_change: Option<(String, String)>,
    sent_ids: VecDeque<String>,
    next_token: u64,
    /// Set when the membership is over.
    end: Option<&'static str>,
}

pub(super) async fn established(ctx: &Ctx, m: Membership, up: Up, cmds: &mut Cmds<'_>) -> Outcome {
    let Up {
        mut dialog,
        remote,
        role,
        mut frames,
        local,
        occupants,
        early,
    } = up;
    let mut settings = ctx.settings.msrp.clone();
    settings.accept_types = vec!["message/cpim".into(), "text/plain".into()];
    settings.validate = Some(bridge::check);
    let mut session = Session::new(local, remote.path.clone(), settings, ctx.budget.clone());
    session.set_chatroom();
    // MUC-24: a SEND is answered once the MUC has reflected it (or refused it).
    session.defer_answers();
    let notifier = Notifier::new(m.room_uri.clone());
    let mut st = State {
        m,
        session,
        occupants,
        notifier,
        subject: None,
        subscribed_until: None,
        nick_change: None,
        sent_ids: VecDeque::new(),
        next_token: 0,
        end: None,
    };
    let active = role == sdp::Role::Active || remote.path.len() > 1;
    let mut conn: Option<Conn> = None;
    if active {
        match ctx.transport.connect(&remote.path[0]).await {
            Ok(c) => {
                conn = Some(c);
                st.session.send_bodiless(Instant::now().into_std());
            }
            Err(e) => {
                info!(error = %e, "cannot reach the SIP user's MSRP endpoint: BYE");
                leave(ctx, &st, &dialog).await;
                return Outcome::Ended("MSRP connection failed");
            }
        }
    }
    for el in early {
        on_stanza(ctx, &mut st, &dialog, el).await;
    }
    let connect_deadline = Instant::now() + ctx.settings.connect_wait;
    let mut writes: VecDeque<Bytes> = VecDeque::new();
    let why = loop {
        while let Some(o) = st.session.poll_output() {
            match o {
                msrp::Output::Write(b) => writes.push_back(b),
                msrp::Output::Event(e) => on_msrp(ctx, &mut st, e).await,
            }
        }
        if let Some(c) = &conn {
            while let Some(b) = writes.pop_front() {
                if !c.write(b).await {
                    st.end = Some("MSRP connection lost");
                    break;
                }
            }
        }
        if let Some(why) = st.end {
            break why;
        }
        let mut wake = Instant::now() + Duration::from_secs(3600);
        if conn.is_none() {
            wake = wake.min(connect_deadline);
        }
        for t in [
            st.session.poll_timeout().map(Instant::from_std),
            st.subscribed_until,
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
                Ok(Some(Cmd::Stanza(el))) => on_stanza(ctx, &mut st, &dialog, el).await,
                Ok(Some(Cmd::Stop) | None) => {
                    leave(ctx, &st, &dialog).await;
                    break "gateway stopping";
                }
                Ok(Some(Cmd::LinkLost)) => {
                    Box::pin(dialog.bye()).await;
                    break "the XMPP link went down";
                }
                Err(Lost) => {
                    leave(ctx, &st, &dialog).await;
                    break "a stanza from the room was lost (queue full)";
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
                None => {
                    leave(ctx, &st, &dialog).await;
                    break "MSRP transport closed";
                }
            },
            ev = dialog.events.recv() => match ev {
                Some(InDialog::Subscribe(expires)) => subscribe(&mut st, &dialog, expires).await,
                Some(InDialog::Refer(to)) => refer(ctx, &st, &dialog, &to).await,
                // We are the focus here: NOTIFYs come from us, not to us.
                Some(InDialog::Ack | InDialog::ConferenceNotify { .. }) => {}
                Some(InDialog::Bye) | None => {
                    // MUC-28: the SIP user left.
                    send_presence(ctx, &st.m, PresenceType::Unavailable).await;
                    break "the SIP user left (BYE)";
                }
            },
            _ = closed => {
                // What came before the close still counts (the SIP user's last message).
                let now = Instant::now().into_std();
                for f in crate::chat::transport::already_received(&mut frames) {
                    st.session.handle_frame(now, f);
                }
                while let Some(o) = st.session.poll_output() {
                    if let msrp::Output::Event(e) = o {
                        on_msrp(ctx, &mut st, e).await;
                    }
                }
                leave(ctx, &st, &dialog).await;
                break "MSRP connection closed";
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                st.session.handle_timeout(now.into_std());
                if conn.is_none() && now >= connect_deadline {
                    info!("the SIP user never connected over MSRP: BYE");
                    leave(ctx, &st, &dialog).await;
                    break "no MSRP connection";
                }
                if st.subscribed_until.is_some_and(|t| now >= t) {
                    st.subscribed_until = None;
                    dialog.notify_conference("terminated;reason=timeout", Vec::new()).await;
                }
            }
        }
    };
    Outcome::Ended(why)
}

/// Leave the room and end the dialog (our side ends the membership).
async fn leave(ctx: &Ctx, st: &State, dialog: &Established) {
    send_presence(ctx, &st.m, PresenceType::Unavailable).await;
    Box::pin(dialog.bye()).await;
}

/// MUC-20, MUC-22: a (re)subscription gets the full roster; an unsubscription ends it.
async fn subscribe(st: &mut State, dialog: &Established, expires: u32) {
    let doc = st.notifier.full(&st.occupants, st.subject.as_deref());
    if expires == 0 {
        st.subscribed_until = None;
        dialog
            .notify_conference(
                "terminated;reason=timeout",
                crate::muc::to_xml(&doc).into_bytes(),
            )
            .await;
        return;
    }
    st.subscribed_until = Some(Instant::now() + Duration::from_secs(u64::from(expires)));
    dialog
        .notify_conference(
            &format!("active;expires={expires}"),
            crate::muc::to_xml(&doc).into_bytes(),
        )
        .await;
}

/// MUC-27: the user invites someone (a REFER, answered 200): a mediated invitation
/// (XEP-0045 §7.8.2) to the invitee's JID, and the one NOTIFY RFC 7702 §6.5 advises, ending the
/// refer subscription at once (XMPP says nothing about the invitation's fate).
async fn refer(ctx: &Ctx, st: &State, dialog: &Established, refer_to: &str) {
    let invitee = SipAddr::parse(refer_to)
        .ok()
        .and_then(|a| ctx.map.sip_to_jid(&a).ok());
    let frag = match invitee {
        Some(jid) => {
            let invite = Element::builder("invite", xmpp_parsers::ns::MUC_USER)
                .a("to", jid.to_bare().to_string())
                .build();
            let x = Element::builder("x", xmpp_parsers::ns::MUC_USER)
                .append(invite)
                .build();
            let msg = Element::builder("message", xmpp_parsers::ns::COMPONENT)
                .a("from", st.m.occupant.to_string())
                .a("to", st.m.room.to_string())
                .a(
                    "id",
                    format!("refer-{}", crate::sip::inbound::random_token()),
                )
                .append(x)
                .build();
            let _ = ctx.xmpp.send(msg).await;
            "SIP/2.0 100 Trying\r\n"
        }
        None => "SIP/2.0 404 Not Found\r\n",
    };
    dialog
        .notify(
            "refer",
            "terminated;reason=noresource",
            "message/sipfrag;version=2.0",
            frag.as_bytes().to_vec(),
        )
        .await;
}

/// After a roster or subject change: the partial document, when someone is subscribed.
async fn notify_changes(st: &mut State, dialog: &Established) {
    let Some(until) = st.subscribed_until else {
        return;
    };
    if let Some(doc) = st.notifier.partial(&st.occupants, st.subject.as_deref()) {
        let left = until.saturating_duration_since(Instant::now()).as_secs();
        dialog
            .notify_conference(
                &format!("active;expires={left}"),
                crate::muc::to_xml(&doc).into_bytes(),
            )
            .await;
    }
}

async fn on_stanza(ctx: &Ctx, st: &mut State, dialog: &Established, el: Element) {
    match el.name() {
        "presence" => on_presence(ctx, st, dialog, el).await,
        "message" => on_message(ctx, st, dialog, el).await,
        _ => {}
    }
}

async fn on_presence(ctx: &Ctx, st: &mut State, dialog: &Established, el: Element) {
    let Ok(p) = Presence::try_from(el.clone()) else {
        return;
    };
    let nick = p
        .from
        .as_ref()
        .and_then(|j| j.resource())
        .map(|r| r.as_str().to_owned());
    if p.type_ == PresenceType::Error {
        // MUC-26: the new nickname was refused.
        if let Some((tid, asked)) = st.nick_change.take() {
            if nick.as_deref() == Some(asked.as_str()) {
                let conflict = el
                    .get_child("error", xmpp_parsers::ns::COMPONENT)
                    .and_then(|e| StanzaError::try_from(e.clone()).ok())
                    .is_some_and(|e| {
                        matches!(
                            e.defined_condition,
                            xmpp_parsers::stanza_error::DefinedCondition::Conflict
                                | xmpp_parsers::stanza_error::DefinedCondition::NotAcceptable
                                | xmpp_parsers::stanza_error::DefinedCondition::NotAllowed
                        )
                    });
                st.session
                    .answer_nickname(&tid, if conflict { 425 } else { 403 });
            } else {
                st.nick_change = Some((tid, asked));
            }
        }
        return;
    }
    let statuses = super::muc_statuses(&p);
    let ours = nick.as_deref() == Some(st.m.nick.as_str());
    if ours && p.type_ == PresenceType::Unavailable {
        if statuses.contains(&Status::NewNick) {
            // The first half of our nickname change; the available one follows.
        } else {
            // Kicked, banned, removed, or the room was destroyed.
            info!(?statuses, "removed from the room: BYE");
            st.occupants.apply_presence(&p);
            Box::pin(dialog.bye()).await;
            st.end = Some("removed from the room");
            return;
        }
    }
    let is_new_self = p.type_ == PresenceType::None && statuses.contains(&Status::SelfPresence);
    if is_new_self && !ours {
        if let Some(new) = &nick {
            // MUC-26: the MUC confirmed our new nickname.
            st.m.nick = new.clone();
            if let Some((tid, _)) = st.nick_change.take() {
                st.session.answer_nickname(&tid, 200);
            }
        }
    }
    if st.occupants.apply_presence(&p) != PresenceEffect::Ignored {
        notify_changes(st, dialog).await;
    }
    let _ = ctx;
}

async fn on_message(ctx: &Ctx, st: &mut State, dialog: &Established, el: Element) {
    let Ok(msg) = Message::try_from(el) else {
        return;
    };
    let id = msg.id.as_ref().map(|i| i.0.clone());
    let ours = id.as_ref().is_some_and(|i| st.sent_ids.contains(i));
    if msg.type_ == MessageType::Error {
        // The MUC refused a message of the user's (MUC-24): the SEND's answer, or a failure
        // REPORT once it was answered.
        if let (true, Some(id)) = (ours, &id) {
            let code = msg
                .payloads
                .iter()
                .find(|p| p.name() == "error")
                .and_then(|p| StanzaError::try_from(p.clone()).ok())
                .map_or(400, |e| msrp_code(&e));
            answer(st, id, code);
        }
        return;
    }
    let reflection = msg.type_ == MessageType::Groupchat
        && msg
            .from
            .as_ref()
            .and_then(|f| f.resource())
            .is_some_and(|n| n.as_str() == st.m.nick);
    if let (true, true, Some(id)) = (reflection, ours, &id) {
        // MUC-24: the room took it; the SEND gets its 200 now.
        answer(st, id, 200);
    }
    if msg.type_ == MessageType::Groupchat && msg.bodies.is_empty() {
        if let Some((_, s)) = msg.get_best_subject(vec![]) {
            // MUC-10's counterpart: the subject goes into the conference document.
            st.subject = Some(crate::im::translate::xml_safe(s));
            notify_changes(st, dialog).await;
        }
        return;
    }
    if let Some(body) = bridge::to_sip(&st.m, &msg) {
        st.next_token += 1;
        st.session.send(
            Instant::now().into_std(),
            st.next_token,
            bridge::CPIM,
            &body,
            false,
        );
    }
    let _ = ctx;
}

/// The answer to the user's message `tid`: its SEND's held response, or (once that went out)
/// a failure REPORT for a refusal.
fn answer(st: &mut State, tid: &str, code: u16) {
    if !st.session.answer_message(tid, code) && code != 200 {
        st.session.report_failed(tid, code);
    }
}

/// MUC-24: the MUC's refusal of a message as an MSRP code.
fn msrp_code(e: &StanzaError) -> u16 {
    use xmpp_parsers::stanza_error::DefinedCondition as C;
    match e.defined_condition {
        C::Forbidden | C::NotAllowed | C::NotAcceptable => 403,
        C::ItemNotFound | C::RecipientUnavailable => 404,
        _ => 400,
    }
}

async fn on_msrp(ctx: &Ctx, st: &mut State, e: msrp::Event) {
    match e {
        msrp::Event::Message(r) => {
            match bridge::from_sip(&st.m, &r.content_type, &r.body, &r.tid) {
                Ok(Outgoing::Message(msg)) => {
                    let private_to_stranger =
                        msg.type_ == MessageType::Chat
                            && msg.to.as_ref().and_then(|t| t.resource()).is_some_and(|n| {
                                !st.occupants.occupants().contains_key(n.as_str())
                            });
                    if private_to_stranger {
                        // RFC 7701 §6.2: no such participant.
                        answer(st, &r.tid, 404);
                        return;
                    }
                    let private = msg.type_ == MessageType::Chat;
                    if st.sent_ids.len() >= REMEMBERED_IDS {
                        st.sent_ids.pop_front();
                    }
                    st.sent_ids.push_back(r.tid.clone());
                    if ctx.xmpp.send(Element::from(*msg)).await.is_err() {
                        answer(st, &r.tid, 503);
                    } else if private {
                        // A MUC does not reflect private messages: passed on is all we learn.
                        answer(st, &r.tid, 200);
                    }
                }
                Err(code) => answer(st, &r.tid, code),
            }
        }
        msrp::Event::Nickname { tid, nickname } => {
            if nickname == st.m.nick {
                st.session.answer_nickname(&tid, 200);
                return;
            }
            // MUC-26: a nickname that is no valid resourcepart is malformed (424), without
            // asking the MUC.
            if st.m.room.with_resource_str(&nickname).is_err() || st.nick_change.is_some() {
                st.session
                    .answer_nickname(&tid, if st.nick_change.is_some() { 425 } else { 424 });
                return;
            }
            let el = Element::builder("presence", xmpp_parsers::ns::COMPONENT)
                .a("from", st.m.occupant.to_string())
                .a("to", format!("{}/{}", st.m.room, nickname))
                .build();
            st.nick_change = Some((tid, nickname));
            let _ = ctx.xmpp.send(el).await;
        }
        msrp::Event::Sent(_)
        | msrp::Event::Delivered(_)
        | msrp::Event::Failed { .. }
        | msrp::Event::NicknameAnswer { .. } => {}
    }
}
