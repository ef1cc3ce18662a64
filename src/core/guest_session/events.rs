//! What a guest does with each event of its loop: the roster's changes, the user's stanzas,
//! the switch's MSRP events, and leaving.

use super::*;
use crate::addr::Jid;

/// MUC-7: (re)subscribe to the room's conference package. Without a subscription the user
/// still enters the room, seeing only itself.
pub(super) async fn subscribe(ctx: &Ctx, st: &mut State, dialog: &Established) {
    let code = dialog.subscribe_conference(SUBSCRIBE_EXPIRES).await;
    if (200..300).contains(&code) {
        st.refresh_at =
            Some(Instant::now() + Duration::from_secs(u64::from(SUBSCRIBE_EXPIRES) * 9 / 10));
        return;
    }
    info!(
        code,
        "the room refused the conference subscription: no roster"
    );
    st.refresh_at = None;
    enter_alone(ctx, st).await;
}

/// Without a usable roster the user still enters the room, seeing only itself.
pub(super) async fn enter_alone(ctx: &Ctx, st: &mut State) {
    if st.joined {
        return;
    }
    st.joined = true;
    let me = roster::Occupant {
        entity: String::new(),
        nick: st.g.nick.clone(),
        role: xmpp_parsers::muc::user::Role::Participant,
        real_jid: None,
        is_self: true,
    };
    if let Ok(ps) = occupant::presences(&roster::RosterChange::Joined(me), &st.view) {
        for p in ps {
            send(ctx, Element::from(p)).await;
        }
    }
    let subject = occupant::subject_message(&st.view, "");
    send(ctx, Element::from(subject)).await;
}

pub(super) async fn roster_outputs(ctx: &Ctx, st: &mut State, dialog: &Established) {
    let mut outputs = Vec::new();
    while let Some(o) = st.roster.poll_output() {
        outputs.push(o);
    }
    // A focus that keys users by nickname shows our accepted nickname change as our old user
    // deleted and a new one: XEP-0045 wants the 303 pair (MUC-15).
    if let Some(old_nick) = st.renaming.take() {
        let left = outputs.iter().position(
            |o| matches!(o, roster::Output::Change(roster::RosterChange::Left(x)) if x.is_self),
        );
        let joined = outputs.iter().position(
            |o| matches!(o, roster::Output::Change(roster::RosterChange::Joined(x)) if x.is_self),
        );
        match (left, joined) {
            (Some(l), Some(j)) => {
                if let roster::Output::Change(roster::RosterChange::Joined(occupant)) =
                    outputs[j].clone()
                {
                    outputs[j] = roster::Output::Change(roster::RosterChange::NickChanged {
                        occupant,
                        old_nick,
                    });
                    outputs.remove(l);
                }
            }
            _ => st.renaming = Some(old_nick),
        }
    }
    for o in outputs {
        match o {
            roster::Output::Change(change) => {
                if let roster::RosterChange::Joined(o)
                | roster::RosterChange::NickChanged { occupant: o, .. } = &change
                {
                    if o.is_self {
                        st.g.nick = o.nick.clone();
                        st.joined = true;
                    }
                }
                match occupant::presences(&change, &st.view) {
                    Ok(ps) => {
                        for p in ps {
                            send(ctx, Element::from(p)).await;
                        }
                    }
                    Err(e) => debug!(error = %e, "roster change not shown"),
                }
            }
            roster::Output::Subject(s) => {
                send(ctx, Element::from(occupant::subject_message(&st.view, &s))).await;
            }
            roster::Output::Resubscribe => subscribe(ctx, st, dialog).await,
            roster::Output::Ended => st.end = Some("the conference ended"),
        }
    }
}

/// A stanza from the user; `true` when the user left the room.
pub(super) async fn on_user(ctx: &Ctx, st: &mut State, dialog: &Established, el: Element) -> bool {
    match el.name() {
        "presence" => {
            let Ok(p) = Presence::try_from(el) else {
                return false;
            };
            if p.type_ == PresenceType::Unavailable {
                return true;
            }
            let asked =
                p.to.as_ref()
                    .and_then(|t| t.resource())
                    .map(|r| r.as_str().to_owned());
            match asked {
                // MUC-15: a nickname change.
                Some(n) if n != st.g.nick && st.nick_req.is_none() => {
                    let tid = st.session.request_nickname(Instant::now().into_std(), &n);
                    // The focus's NOTIFY may overtake its 200 (SIP and MSRP are separate
                    // connections): the roster must know the new nickname already.
                    st.roster.set_own_nick(&n);
                    st.renaming = Some(st.g.nick.clone());
                    st.nick_req = Some((tid, n, false));
                }
                _ => {}
            }
            false
        }
        "message" => {
            let Ok(msg) = Message::try_from(el.clone()) else {
                return false;
            };
            if let Some(x) = el.get_child("x", xmpp_parsers::ns::MUC_USER) {
                invite(ctx, dialog, &el, x).await;
                return false;
            }
            let roster = &st.roster;
            let entity_of = |nick: &str| {
                roster
                    .occupants()
                    .find(|o| o.nick == nick)
                    .map(|o| o.entity.clone())
            };
            match guest::to_cpim(&st.g, &msg, entity_of) {
                Ok(Some(body)) => {
                    st.next_token += 1;
                    let token = st.next_token;
                    st.session.send(
                        Instant::now().into_std(),
                        token,
                        crate::muc::bridge::CPIM,
                        &body,
                        false,
                    );
                    let reflect = (msg.type_ == MessageType::Groupchat)
                        .then(|| guest::reflection(&st.g, &msg))
                        .flatten();
                    st.pending.insert(
                        token,
                        Pending {
                            stanza: el,
                            reflect,
                        },
                    );
                }
                Ok(None) => {}
                Err(err) => {
                    let reply = service::error_reply(&el, err, ctx.map.component());
                    send(ctx, reply).await;
                }
            }
            false
        }
        _ => false,
    }
}

pub(super) async fn on_msrp(ctx: &Ctx, st: &mut State, dialog: &Established, e: msrp::Event) {
    match e {
        msrp::Event::Message(r) => {
            let roster = &st.roster;
            let nick_of = |uri: &str| {
                roster
                    .occupants()
                    .find(|o| o.entity.eq_ignore_ascii_case(uri))
                    .map(|o| o.nick.clone())
            };
            match guest::from_cpim(&st.g, &r.content_type, &r.body, nick_of) {
                Ok(m) => send(ctx, Element::from(m)).await,
                Err(code) => {
                    debug!(code, "room message not deliverable");
                    st.session.report_failed(&r.tid, code);
                }
            }
        }
        msrp::Event::Sent(token) => {
            if let Some(p) = st.pending.remove(&token) {
                if let Some(echo) = p.reflect {
                    // MUC-12: the switch took it; the room shows it to its sender too.
                    send(ctx, Element::from(echo)).await;
                }
            }
        }
        msrp::Event::Failed { token, code } => {
            if let Some(p) = st.pending.remove(&token) {
                let err = match code {
                    428 => XmppError::new(DefinedCondition::FeatureNotImplemented)
                        .with_text("the room does not carry private messages"),
                    404 => XmppError::new(DefinedCondition::ItemNotFound),
                    403 => XmppError::new(DefinedCondition::Forbidden),
                    c => crate::chat::translate::msrp_failure(c),
                };
                let reply = service::error_reply(&p.stanza, err, ctx.map.component());
                send(ctx, reply).await;
            }
        }
        msrp::Event::NicknameAnswer { tid, code } => {
            let Some((want, nick, initial)) = st.nick_req.take() else {
                return;
            };
            if want != tid {
                st.nick_req = Some((want, nick, initial));
                return;
            }
            match (code, initial) {
                (200, true) => subscribe(ctx, st, dialog).await,
                (200, false) => {
                    // The roster's NOTIFY shows the change (the 303 pair).
                    debug!(%nick, "nickname changed (MUC-15)");
                }
                (_, true) => {
                    // MUC-6: the join fails.
                    presence_error(ctx, &st.g, nickname_error(code)).await;
                    st.end = Some("nickname refused");
                    // No self-presence was sent: leaving quietly is enough.
                    st.joined = false;
                }
                (_, false) => {
                    st.roster.set_own_nick(&st.g.nick.clone());
                    st.renaming = None;
                    let mut g = st.g.clone();
                    g.nick = nick;
                    presence_error(ctx, &g, nickname_error(code)).await;
                }
            }
        }
        msrp::Event::Delivered(_) | msrp::Event::Nickname { .. } => {}
    }
}

/// MUC-16: a mediated invitation (XEP-0045 §7.8.2) becomes a REFER to the focus per invitee;
/// a refusal or an invitee without a SIP address is an error to the user.
async fn invite(ctx: &Ctx, dialog: &Established, el: &Element, x: &Element) {
    for inv in x.children().filter(|c| c.name() == "invite") {
        let target = inv
            .attr("to")
            .and_then(|t| Jid::new(t).ok())
            .and_then(|j| ctx.map.jid_to_sip(&Jid::from(j.to_bare())).ok());
        let err = match target {
            None => Some(
                XmppError::new(DefinedCondition::JidMalformed)
                    .with_text("the invitee has no SIP address"),
            ),
            Some(addr) => {
                let code = dialog.refer(&addr.to_uri()).await;
                (!(200..300).contains(&code)).then(|| crate::errmap::sip_to_xmpp(code, None, None))
            }
        };
        if let Some(err) = err {
            let reply = service::error_reply(el, err, ctx.map.component());
            send(ctx, reply).await;
        }
    }
}

/// MUC-6: the switch's NICKNAME refusal as the presence error's condition.
pub(super) fn nickname_error(code: u16) -> XmppError {
    match code {
        425 => XmppError::new(DefinedCondition::Conflict),
        424 => XmppError::new(DefinedCondition::JidMalformed),
        403 => XmppError::new(DefinedCondition::NotAllowed),
        408 => XmppError::new(DefinedCondition::RemoteServerTimeout),
        _ => XmppError::new(DefinedCondition::NotAcceptable),
    }
}

/// Leave: BYE to the focus, then (once the user was in) its unavailable self-presence.
pub(super) async fn leave(ctx: &Ctx, st: &mut State, dialog: &Established, status: Option<&str>) {
    Box::pin(dialog.bye()).await;
    if st.joined {
        self_unavailable(ctx, st, status).await;
    }
}

pub(super) async fn self_unavailable(ctx: &Ctx, st: &State, status: Option<&str>) {
    let mut x = Element::builder("x", xmpp_parsers::ns::MUC_USER)
        .append(
            Element::builder("item", xmpp_parsers::ns::MUC_USER)
                .a("affiliation", "none")
                .a("role", "none")
                .build(),
        )
        .append(
            Element::builder("status", xmpp_parsers::ns::MUC_USER)
                .a("code", "110")
                .build(),
        );
    if let Some(code) = status {
        x = x.append(
            Element::builder("status", xmpp_parsers::ns::MUC_USER)
                .a("code", code)
                .build(),
        );
    }
    let el = Element::builder("presence", xmpp_parsers::ns::COMPONENT)
        .a("from", format!("{}/{}", st.g.room, st.g.nick))
        .a("to", st.g.user.to_string())
        .a("type", "unavailable")
        .append(x.build())
        .build();
    send(ctx, el).await;
}

/// A presence error from `room/nick` (MUC-6, XEP-0045 §7.2.9).
pub(super) async fn presence_error(ctx: &Ctx, g: &Guest, err: XmppError) {
    let error: Element = err.to_stanza_error().into();
    let el = Element::builder("presence", xmpp_parsers::ns::COMPONENT)
        .a("from", format!("{}/{}", g.room, g.nick))
        .a("to", g.user.to_string())
        .a("type", "error")
        .append(Element::builder("x", "http://jabber.org/protocol/muc").build())
        .append(error)
        .build();
    send(ctx, el).await;
}

pub(super) async fn send(ctx: &Ctx, el: Element) {
    if ctx.xmpp.send(el).await.is_err() {
        debug!("XMPP link down: room stanza not delivered");
    }
}
