//! XMPP presence stanzas addressed to SIP users' JIDs (RFC 8048 §5.2, §5.3.1, §6.2, §7.1).

use std::time::Duration;

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::{Presence, Type};

use super::wire::{OutMethod, OutRequest, SubState};
use super::{Clock, Closing, Dlg, Engine, NotifyBody, Online, Output, Phase, ReqKind, TimerKind};
use crate::errmap::{DefinedCondition, XmppError};
use crate::presence::pidf::to_xml;
use crate::presence::translate::{xmpp_to_pidf, ResourcePresence};
use crate::store::{AuthKey, AuthState, DialogRole, Direction};

impl Engine {
    pub(super) fn on_presence(&mut self, clock: Clock, p: Presence, lang: Option<String>) {
        let (Some(from), Some(to)) = (p.from.clone(), p.to.clone()) else {
            return;
        };
        if p.type_ == Type::Error {
            self.on_presence_error(clock, &from, &to);
            return;
        }
        // Presence for the gateway's own JID (no localpart) carries no subscription.
        if to.node().is_none() || !self.map.is_component_jid(&to) {
            return;
        }
        // PRES-24: only users of the served XMPP domains use the gateway; everyone else gets
        // a presence error (and no SIP traffic).
        let served = self
            .map
            .xmpp_domains()
            .iter()
            .any(|d| d.eq_ignore_ascii_case(from.domain().as_str()));
        let Ok(contact) = self.map.jid_to_sip(&Jid::from(to.to_bare())) else {
            if p.type_ != Type::Unavailable {
                self.presence_error(
                    &p,
                    XmppError::new(DefinedCondition::JidMalformed)
                        .with_text("not a SIP user's address"),
                );
            }
            return;
        };
        if !served {
            if matches!(p.type_, Type::Subscribe | Type::Probe) {
                self.presence_error(
                    &p,
                    XmppError::new(DefinedCondition::Forbidden)
                        .with_text("only users of this server may use the SIP gateway"),
                );
            }
            return;
        }
        let user = from.to_bare().to_string();
        let aor = contact.aor();
        let xs = AuthKey::new(user.clone(), aor.clone(), Direction::XmppWatchesSip);
        let sx = AuthKey::new(user.clone(), aor.clone(), Direction::SipWatchesXmpp);
        match p.type_ {
            Type::Subscribe => self.x_subscribe(clock, &p, &xs),
            Type::Unsubscribe => self.x_unsubscribe(clock, &xs),
            Type::Subscribed => self.x_subscribed(clock, &sx),
            Type::Unsubscribed => self.x_unsubscribed(clock, &sx),
            Type::Probe => {
                self.mark_online(&user, None);
                self.x_probe(clock, &xs);
            }
            Type::None => {
                let resource = from.resource().map(|r| r.as_str().to_owned());
                self.mark_online(&user, resource.clone());
                // Cached only for a SIP watcher that asked or was granted: directed presence to
                // arbitrary SIP JIDs must not grow the gateway's memory.
                let watched = self.auth_state(&sx) != AuthState::None;
                if let Some(rp) =
                    ResourcePresence::from_stanza(&p, lang.as_deref()).filter(|_| watched)
                {
                    let cache = self
                        .xmpp_cache
                        .entry((user.clone(), aor.clone()))
                        .or_default();
                    cache.retain(|r| r.resource != rp.resource);
                    cache.push(rp);
                }
                // PRES-4 (a): the user started a presence session: make sure a dialog runs.
                if self.auth_state(&xs) == AuthState::Subscribed && !self.has_live_subscriber(&xs) {
                    self.resubscribe(clock, &xs);
                }
                self.notify_watchers(clock, &sx);
            }
            Type::Unavailable => {
                let resource = from.resource().map(|r| r.as_str().to_owned());
                // An emptied entry stays: "known to be offline" (a closed PIDF) differs from
                // "nothing known" (an empty NOTIFY, PRES-12).
                if let Some(c) = self.xmpp_cache.get_mut(&(user.clone(), aor.clone())) {
                    match &resource {
                        Some(r) => c.retain(|x| &x.resource != r),
                        None => c.clear(),
                    }
                }
                let offline = self.mark_offline(&user, resource);
                self.notify_watchers(clock, &sx);
                if offline {
                    self.user_went_offline(clock, &user);
                }
            }
            Type::Error => {}
        }
    }

    /// A presence error from an XMPP user to a SIP user's JID: the `subscribe` we relayed for a
    /// SIP watcher could not be delivered (no such user, blocked): the SIP watcher's pending
    /// request ends.
    fn on_presence_error(&mut self, clock: Clock, from: &Jid, to: &Jid) {
        let Ok(contact) = self.map.jid_to_sip(&Jid::from(to.to_bare())) else {
            return;
        };
        let sx = AuthKey::new(
            from.to_bare().to_string(),
            contact.aor(),
            Direction::SipWatchesXmpp,
        );
        if self.auth_state(&sx) == AuthState::Pending {
            self.set_auth(clock, &sx, AuthState::None);
            for dk in self.dialogs_of(&sx) {
                self.notify(
                    clock,
                    &dk,
                    SubState::Terminated {
                        reason: Some("noresource".into()),
                        retry_after: None,
                    },
                    None,
                );
                self.remove_dialog(&dk);
            }
        }
    }

    fn presence_error(&mut self, p: &Presence, err: XmppError) {
        let mut e = Presence::new(Type::Error);
        e.from = p.to.clone();
        e.to = p.from.clone();
        e.id = p.id.clone();
        e.payloads.push(err.to_stanza_error().into());
        self.out.push_back(Output::Stanza(e));
    }

    fn mark_online(&mut self, user: &str, resource: Option<String>) {
        let entry = self
            .online
            .entry(user.to_owned())
            .or_insert_with(|| Online::Yes(Default::default()));
        if let Online::No = entry {
            *entry = Online::Yes(Default::default());
        }
        if let (Online::Yes(set), Some(r)) = (entry, resource) {
            set.insert(r);
        }
    }

    /// Returns true when this made the user offline.
    fn mark_offline(&mut self, user: &str, resource: Option<String>) -> bool {
        let entry = self
            .online
            .entry(user.to_owned())
            .or_insert_with(|| Online::Yes(Default::default()));
        match (entry, resource) {
            (Online::No, _) => false,
            (e @ Online::Yes(_), None) => {
                *e = Online::No;
                true
            }
            (e, Some(r)) => {
                let Online::Yes(set) = e else { return false };
                set.remove(&r);
                if set.is_empty() {
                    *e = Online::No;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// PRES-4: the XMPP user is gone: end the dialogs watching SIP users (the authorizations
    /// stay; the next session re-subscribes). Saves the SIP side NOTIFYs nobody reads.
    fn user_went_offline(&mut self, clock: Clock, user: &str) {
        let keys: Vec<_> = self
            .by_pair
            .keys()
            .filter(|k| k.direction == Direction::XmppWatchesSip && k.xmpp_jid == user)
            .cloned()
            .collect();
        for k in keys {
            self.cancel_resubscribe(&k);
            for dk in self.dialogs_of(&k) {
                let closing = self.dialogs.get(&dk).and_then(|d| d.closing);
                if closing.is_none() {
                    self.end_subscriber(clock, &dk, Closing::Offline);
                }
            }
        }
    }

    /// PRES-1: XMPP `subscribe` -> SUBSCRIBE in a new dialog.
    fn x_subscribe(&mut self, clock: Clock, p: &Presence, xs: &AuthKey) {
        self.mark_online(&xs.xmpp_jid, None);
        match self.auth_state(xs) {
            AuthState::Subscribed => {
                // Already granted: answer for the SIP side (RFC 6121 §3.1.3 lets the contact's
                // server reply at once) and make sure a dialog runs.
                self.send_sub_stanza(xs, Type::Subscribed);
                if !self.has_live_subscriber(xs) {
                    self.resubscribe(clock, xs);
                }
                return;
            }
            AuthState::Pending if self.has_live_subscriber(xs) => return,
            _ => {}
        }
        if !self.within_limits(xs) {
            self.presence_error(
                p,
                XmppError::new(DefinedCondition::ResourceConstraint)
                    .with_text("too many presence subscriptions"),
            );
            return;
        }
        self.set_auth(clock, xs, AuthState::Pending);
        self.resubscribe(clock, xs);
    }

    /// PRES-6: XMPP `unsubscribe` -> SUBSCRIBE Expires 0 in the dialog; `unsubscribed` once
    /// the SIP side answered (or at once without a dialog). PRES-7: the other direction is
    /// untouched.
    fn x_unsubscribe(&mut self, clock: Clock, xs: &AuthKey) {
        let had = self.auth_state(xs) != AuthState::None;
        self.set_auth(clock, xs, AuthState::None);
        self.cancel_resubscribe(xs);
        let mut waiting = false;
        for dk in self.dialogs_of(xs) {
            let Some(d) = self.dialogs.get(&dk) else {
                continue;
            };
            if d.closing == Some(Closing::Fetch) {
                continue;
            }
            if d.remote_tag.is_some() || d.inflight.is_none() {
                self.end_subscriber(clock, &dk, Closing::Unsubscribe);
                waiting = true;
            } else {
                // The first SUBSCRIBE is unanswered: its response will end it.
                if let Some(d) = self.dialogs.get_mut(&dk) {
                    d.closing = Some(Closing::Unsubscribe);
                }
                waiting = true;
            }
        }
        if !waiting && had {
            self.send_sub_stanza(xs, Type::Unsubscribed);
        }
    }

    /// PRES-10: XMPP `subscribed` -> NOTIFY active (no body), then the state if known.
    fn x_subscribed(&mut self, clock: Clock, sx: &AuthKey) {
        let dialogs = self.dialogs_of(sx);
        if self.auth_state(sx) == AuthState::None && dialogs.is_empty() {
            // Nobody asked: RFC 6121 §3.1.5 says ignore it.
            return;
        }
        self.set_auth(clock, sx, AuthState::Subscribed);
        for dk in dialogs {
            let Some(d) = self.dialogs.get(&dk) else {
                continue;
            };
            if d.closing == Some(Closing::Fetch) || d.phase == Phase::Active {
                continue;
            }
            let body = self.current_pidf(sx);
            self.notify_active(clock, &dk, body);
        }
    }

    /// PRES-11: XMPP `unsubscribed` (denial or revocation) -> NOTIFY
    /// `terminated;reason=rejected`, dialogs end.
    fn x_unsubscribed(&mut self, clock: Clock, sx: &AuthKey) {
        if self.auth_state(sx) == AuthState::None && self.dialogs_of(sx).is_empty() {
            return;
        }
        self.set_auth(clock, sx, AuthState::None);
        for dk in self.dialogs_of(sx) {
            self.notify(
                clock,
                &dk,
                SubState::Terminated {
                    reason: Some("rejected".into()),
                    retry_after: None,
                },
                None,
            );
            self.remove_dialog(&dk);
        }
        self.xmpp_cache
            .remove(&(sx.xmpp_jid.clone(), sx.sip_aor.clone()));
    }

    /// PRES-4 (a) and PRES-21: a probe from the user's server.
    fn x_probe(&mut self, clock: Clock, xs: &AuthKey) {
        match self.auth_state(xs) {
            AuthState::Subscribed => {
                // A new presence session: refresh, whose NOTIFY brings the full state.
                let live: Vec<_> = self
                    .dialogs_of(xs)
                    .into_iter()
                    .filter(|dk| {
                        self.dialogs.get(dk).is_some_and(|d| {
                            d.closing.is_none() && d.role == DialogRole::Subscriber
                        })
                    })
                    .collect();
                match live.first() {
                    Some(dk) => {
                        let busy = self.dialogs.get(dk).is_some_and(|d| d.inflight.is_some());
                        if !busy {
                            self.refresh(clock, dk);
                        }
                    }
                    None => self.resubscribe(clock, xs),
                }
            }
            AuthState::Pending => {}
            AuthState::None => self.fetch(clock, xs),
        }
    }

    fn has_live_subscriber(&self, xs: &AuthKey) -> bool {
        self.resubscribe_at
            .contains_key(&(xs.xmpp_jid.clone(), xs.sip_aor.clone()))
            || self
                .dialogs_of(xs)
                .iter()
                .any(|dk| self.dialogs.get(dk).is_some_and(|d| d.closing.is_none()))
    }

    /// A presence of a subscription type from the SIP user's JID to the XMPP user.
    pub(super) fn send_sub_stanza(&mut self, xs: &AuthKey, t: Type) {
        let Some(from) = self.contact_jid(&xs.sip_aor) else {
            return;
        };
        let Ok(to) = xs.xmpp_jid.parse::<BareJid>() else {
            return;
        };
        let mut p = Presence::new(t);
        p.from = Some(Jid::from(from));
        p.to = Some(Jid::from(to));
        self.out.push_back(Output::Stanza(p));
    }

    /// `<presence type='probe'/>` from the SIP user's JID to the XMPP user (PRES-22, COMP-5).
    pub(super) fn send_probe(&mut self, sx: &AuthKey) {
        self.send_sub_stanza(sx, Type::Probe);
    }

    pub(super) fn contact_jid(&self, aor: &str) -> Option<BareJid> {
        let addr = crate::addr::SipAddr::parse(aor).ok()?;
        self.map.sip_to_jid(&addr).ok().map(|j| j.to_bare())
    }

    /// Start (or restart) the X->S notification dialog of an authorization.
    pub(super) fn resubscribe(&mut self, clock: Clock, xs: &AuthKey) {
        self.cancel_resubscribe(xs);
        // One dialog per authorization: an old one still running is replaced.
        for dk in self.dialogs_of(xs) {
            if self.dialogs.get(&dk).is_some_and(|d| d.closing.is_none()) {
                self.remove_dialog(&dk);
            }
        }
        let dk = self.new_subscriber_dialog(clock, xs, None);
        self.send_subscribe(clock, &dk, self.settings.expires);
    }

    /// PRES-21: one-shot SUBSCRIBE Expires 0 in a new dialog.
    fn fetch(&mut self, clock: Clock, xs: &AuthKey) {
        let dk = self.new_subscriber_dialog(clock, xs, Some(Closing::Fetch));
        self.send_subscribe(clock, &dk, 0);
    }

    fn new_subscriber_dialog(
        &mut self,
        clock: Clock,
        xs: &AuthKey,
        closing: Option<Closing>,
    ) -> (String, String) {
        let call_id = format!(
            "{}@{}",
            crate::sip::inbound::random_token(),
            self.map.component()
        );
        let tag = crate::sip::inbound::random_token();
        let d = Dlg {
            role: DialogRole::Subscriber,
            auth: xs.clone(),
            local_uri: super::xmpp_side_uri(&self.map, xs),
            local_tag: tag.clone(),
            remote_uri: xs.sip_aor.clone(),
            remote_tag: None,
            remote_target: xs.sip_aor.clone(),
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: None,
            expires_at: clock.now,
            expires_unix: clock.unix,
            phase: Phase::Sent,
            closing,
            reported: Vec::new(),
            last_sent: Vec::new(),
            inflight: None,
            notify_inflight: None,
            queued: None,
            timer: None,
        };
        let dk = (call_id, tag);
        self.insert_dialog(dk.clone(), d);
        dk
    }

    /// Send a SUBSCRIBE in the dialog (initial, refresh, or Expires 0).
    pub(super) fn send_subscribe(&mut self, clock: Clock, dk: &(String, String), expires: u32) {
        let id = self.fresh_req();
        let Some(d) = self.dialogs.get_mut(dk) else {
            return;
        };
        d.local_cseq = d.local_cseq.wrapping_add(1).max(1);
        d.inflight = Some(id);
        if expires > 0 {
            // Until the response says otherwise, the dialog lives as long as we asked
            // (RFC 6665 §4.1.2.1), plus Timer F for the answer to arrive.
            d.expires_at = clock.now + Duration::from_secs(u64::from(expires) + 32);
            d.expires_unix = clock.unix + i64::from(expires) + 32;
        }
        let req = OutRequest {
            id,
            method: OutMethod::Subscribe,
            request_uri: d.remote_target.clone(),
            route_set: d.route_set.clone(),
            initial: d.remote_tag.is_none(),
            local_uri: d.local_uri.clone(),
            local_tag: d.local_tag.clone(),
            remote_uri: d.remote_uri.clone(),
            remote_tag: d.remote_tag.clone(),
            call_id: dk.0.clone(),
            cseq: d.local_cseq,
            contact_user: user_part(&d.local_uri),
            headers: vec![
                ("Event", "presence".into()),
                ("Expires", expires.to_string()),
                ("Accept", "application/pidf+xml".into()),
            ],
            body: Vec::new(),
        };
        self.requests
            .insert(id, (dk.clone(), ReqKind::Subscribe(expires)));
        self.out.push_back(Output::Request(req));
        self.persist(clock, dk);
        // No answer at all (the adapter reports 408 after Timer F, but a lost adapter task
        // must not leave the dialog forever): the dialog expires.
        let at = self.dialogs.get(dk).map(|d| d.expires_at);
        if let Some(at) = at {
            self.set_timer(
                dk,
                at.max(clock.now + Duration::from_secs(64)),
                TimerKind::Expire,
            );
        }
    }

    pub(super) fn refresh(&mut self, clock: Clock, dk: &(String, String)) {
        self.send_subscribe(clock, dk, self.settings.expires);
    }

    /// End a subscriber dialog with SUBSCRIBE Expires 0.
    pub(super) fn end_subscriber(&mut self, clock: Clock, dk: &(String, String), why: Closing) {
        let Some(d) = self.dialogs.get_mut(dk) else {
            return;
        };
        d.closing = Some(why);
        if d.remote_tag.is_none() && d.inflight.is_some() {
            // Its response will come; on_response ends it then.
            return;
        }
        self.send_subscribe(clock, dk, 0);
    }

    /// S->X: NOTIFY every dialog of the pair with the watcher's current view (PRES-19, 25).
    pub(super) fn notify_watchers(&mut self, clock: Clock, sx: &AuthKey) {
        if self.auth_state(sx) != AuthState::Subscribed {
            return;
        }
        for dk in self.dialogs_of(sx) {
            let active = self
                .dialogs
                .get(&dk)
                .is_some_and(|d| d.phase == Phase::Active && d.closing.is_none());
            if active {
                let body = self.current_pidf(sx);
                self.notify_active(clock, &dk, body);
            }
        }
    }

    /// The PIDF for what `sx`'s watcher knows of the XMPP user (`None` if nothing is known).
    pub(super) fn current_pidf(&self, sx: &AuthKey) -> NotifyBody {
        let cache = self
            .xmpp_cache
            .get(&(sx.xmpp_jid.clone(), sx.sip_aor.clone()))?;
        let user: BareJid = sx.xmpp_jid.parse().ok()?;
        let doc = xmpp_to_pidf(&user, cache, &self.map).ok()?;
        Some((to_xml(&doc.doc), doc.content_language))
    }

    pub(super) fn notify_active(&mut self, clock: Clock, dk: &(String, String), body: NotifyBody) {
        let remaining = self.remaining(clock, dk);
        if let Some(d) = self.dialogs.get_mut(dk) {
            d.phase = Phase::Active;
        }
        self.notify(
            clock,
            dk,
            SubState::Active {
                expires: Some(remaining),
            },
            body,
        );
    }

    pub(super) fn remaining(&self, clock: Clock, dk: &(String, String)) -> u32 {
        self.dialogs.get(dk).map_or(0, |d| {
            d.expires_at
                .saturating_duration_since(clock.now)
                .as_secs()
                .min(u64::from(u32::MAX)) as u32
        })
    }

    /// Send a NOTIFY in a notifier dialog.
    pub(super) fn notify(
        &mut self,
        clock: Clock,
        dk: &(String, String),
        state: SubState,
        body: NotifyBody,
    ) {
        let id = self.fresh_req();
        let Some(d) = self.dialogs.get_mut(dk) else {
            return;
        };
        if d.role != DialogRole::Notifier {
            return;
        }
        let terminated = matches!(state, SubState::Terminated { .. });
        if d.notify_inflight.is_some() && !terminated {
            d.queued = Some((state, body));
            return;
        }
        if !terminated {
            d.notify_inflight = Some(id);
        }
        d.local_cseq = d.local_cseq.wrapping_add(1).max(1);
        let mut headers = vec![
            ("Event", "presence".to_string()),
            ("Subscription-State", state.render()),
        ];
        let mut bytes = Vec::new();
        if let Some((xml, lang)) = body {
            headers.push(("Content-Type", "application/pidf+xml".into()));
            if let Some(l) = lang {
                headers.push(("Content-Language", l));
            }
            bytes = xml.into_bytes();
        }
        let req = OutRequest {
            id,
            method: OutMethod::Notify,
            request_uri: d.remote_target.clone(),
            route_set: d.route_set.clone(),
            initial: false,
            local_uri: d.local_uri.clone(),
            local_tag: d.local_tag.clone(),
            remote_uri: d.remote_uri.clone(),
            remote_tag: d.remote_tag.clone(),
            call_id: dk.0.clone(),
            cseq: d.local_cseq,
            contact_user: user_part(&d.local_uri),
            headers,
            body: bytes,
        };
        self.requests.insert(id, (dk.clone(), ReqKind::Notify));
        self.out.push_back(Output::Request(req));
        if !terminated {
            self.persist(clock, dk);
        }
    }

    pub(super) fn on_dialog_timer(&mut self, clock: Clock, dk: (String, String), kind: TimerKind) {
        let Some(d) = self.dialogs.get(&dk) else {
            return;
        };
        let role = d.role;
        let auth = d.auth.clone();
        let closing = d.closing;
        match (role, kind) {
            (DialogRole::Subscriber, TimerKind::Refresh) => {
                let granted = self.auth_state(&auth) != AuthState::None;
                if closing.is_some() || !granted {
                    self.remove_dialog(&dk);
                } else if self.user_online(&auth.xmpp_jid) {
                    self.refresh(clock, &dk);
                } else {
                    // PRES-4: refresh only while the XMPP user is online.
                    self.end_subscriber(clock, &dk, Closing::Offline);
                }
            }
            (DialogRole::Subscriber, _) => {
                // Expired without refresh, or an unsubscribe whose final NOTIFY never came.
                let d = self.remove_dialog(&dk);
                if closing.is_none() {
                    if let Some(d) = d {
                        self.report_gone(&auth, &d.reported);
                    }
                    if self.auth_state(&auth) != AuthState::None && self.user_online(&auth.xmpp_jid)
                    {
                        self.schedule_resubscribe(&auth, clock.now + self.settings.retry);
                    }
                }
            }
            (DialogRole::Notifier, TimerKind::FetchReply) => {
                let body = self.current_pidf(&auth);
                self.notify(
                    clock,
                    &dk,
                    SubState::Terminated {
                        reason: Some("timeout".into()),
                        retry_after: None,
                    },
                    body,
                );
                self.remove_dialog(&dk);
            }
            (DialogRole::Notifier, _) => {
                // RFC 6665 §4.2.2: the subscription expired; PRES-13 as for Expires 0.
                self.end_notifier(clock, &dk);
            }
        }
    }

    /// PRES-13: the SIP watcher's dialog ends: closed PIDF + `terminated;reason=timeout`, and
    /// `unavailable` from the SIP user to the XMPP user (no `unsubscribe`).
    pub(super) fn end_notifier(&mut self, clock: Clock, dk: &(String, String)) {
        let Some(d) = self.dialogs.get(dk) else {
            return;
        };
        let auth = d.auth.clone();
        let granted = self.auth_state(&auth) == AuthState::Subscribed;
        let body = if granted {
            auth.xmpp_jid
                .parse::<BareJid>()
                .ok()
                .and_then(|u| xmpp_to_pidf(&u, &[], &self.map).ok())
                .map(|doc| (to_xml(&doc.doc), doc.content_language))
        } else {
            None
        };
        self.notify(
            clock,
            dk,
            SubState::Terminated {
                reason: Some("timeout".into()),
                retry_after: None,
            },
            body,
        );
        self.remove_dialog(dk);
        if granted {
            self.send_sub_stanza(&auth, Type::Unavailable);
        }
    }

    /// Tell the XMPP user that the resources reported so far are gone.
    pub(super) fn report_gone(&mut self, auth: &AuthKey, reported: &[String]) {
        let Some(from) = self.contact_jid(&auth.sip_aor) else {
            return;
        };
        let Ok(to) = auth.xmpp_jid.parse::<BareJid>() else {
            return;
        };
        for r in reported {
            let Ok(full) = from.with_resource_str(r) else {
                continue;
            };
            let mut p = Presence::new(Type::Unavailable);
            p.from = Some(Jid::from(full));
            p.to = Some(Jid::from(to.clone()));
            self.out.push_back(Output::Stanza(p));
        }
        if reported.is_empty() && self.auth_state(auth) == AuthState::Subscribed {
            // Nothing specific was reported, but the XMPP client may still show the contact
            // from before a restart: one bare unavailable clears it.
            let mut p = Presence::new(Type::Unavailable);
            p.from = Some(Jid::from(from));
            p.to = Some(Jid::from(to));
            self.out.push_back(Output::Stanza(p));
        }
    }
}

/// The decoded user part of a `sip:` URI (for our Contact).
pub(super) fn user_part(uri: &str) -> String {
    crate::addr::SipAddr::parse(uri)
        .ok()
        .and_then(|a| a.user)
        .unwrap_or_default()
}
