//! XMPP presence stanzas addressed to SIP users' JIDs (RFC 8048 §5.2, §5.3.1, §6.2, §7.1).

use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type};

use super::{Clock, Closing, Engine, Online, Output, Phase};
use crate::errmap::{DefinedCondition, XmppError};
use crate::presence::translate::ResourcePresence;
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
    pub(super) fn on_presence_error(&mut self, clock: Clock, from: &Jid, to: &Jid) {
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
                self.terminate(clock, &dk, "noresource", None);
            }
        }
    }

    pub(super) fn presence_error(&mut self, p: &Presence, err: XmppError) {
        let mut e = Presence::new(Type::Error);
        e.from = p.to.clone();
        e.to = p.from.clone();
        e.id = p.id.clone();
        e.payloads.push(err.to_stanza_error().into());
        self.out.push_back(Output::Stanza(e));
    }

    pub(super) fn mark_online(&mut self, user: &str, resource: Option<String>) {
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
    pub(super) fn mark_offline(&mut self, user: &str, resource: Option<String>) -> bool {
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
    pub(super) fn user_went_offline(&mut self, clock: Clock, user: &str) {
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
    pub(super) fn x_subscribe(&mut self, clock: Clock, p: &Presence, xs: &AuthKey) {
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
    pub(super) fn x_unsubscribe(&mut self, clock: Clock, xs: &AuthKey) {
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
    pub(super) fn x_subscribed(&mut self, clock: Clock, sx: &AuthKey) {
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
    pub(super) fn x_unsubscribed(&mut self, clock: Clock, sx: &AuthKey) {
        if self.auth_state(sx) == AuthState::None && self.dialogs_of(sx).is_empty() {
            return;
        }
        self.set_auth(clock, sx, AuthState::None);
        for dk in self.dialogs_of(sx) {
            self.terminate(clock, &dk, "rejected", None);
        }
        self.xmpp_cache
            .remove(&(sx.xmpp_jid.clone(), sx.sip_aor.clone()));
    }

    /// PRES-4 (a) and PRES-21: a probe from the user's server.
    pub(super) fn x_probe(&mut self, clock: Clock, xs: &AuthKey) {
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

    pub(super) fn has_live_subscriber(&self, xs: &AuthKey) -> bool {
        self.resubscribe_at
            .contains_key(&(xs.xmpp_jid.clone(), xs.sip_aor.clone()))
            || self
                .dialogs_of(xs)
                .iter()
                .any(|dk| self.dialogs.get(dk).is_some_and(|d| d.closing.is_none()))
    }
}
