//! SIP requests and responses of presence dialogs (RFC 6665, RFC 3856; RFC 8048 §5, §7).

use std::time::Duration;

use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type};

use super::outgoing::user_part;
use super::wire::{
    accepts_pidf, is_pidf, is_presence_event, parse_expires, Respond, SipRequestIn, SubState, TxId,
};
use super::{refresh_after, Clock, Closing, Dlg, Engine, Output, Phase, TimerKind};
use crate::addr::SipAddr;
use crate::errmap::SipStatus;
use crate::presence::pidf;
use crate::presence::translate::{pidf_to_xmpp, NotifyContext};
use crate::store::{AuthKey, AuthState, DialogRole, Direction};

/// Largest PIDF body accepted in a NOTIFY (the parser has its own 64 KiB cap too).
const MAX_NOTIFY_BODY: usize = 64 * 1024;

impl Engine {
    pub(super) fn on_request(&mut self, clock: Clock, tx: TxId, req: SipRequestIn) {
        match req.method.as_str() {
            "SUBSCRIBE" => self.on_subscribe(clock, tx, &req),
            "NOTIFY" => self.on_notify(clock, tx, &req),
            _ => self.respond(tx, SipStatus::new(405)),
        }
    }

    pub(super) fn respond(&mut self, tx: TxId, status: SipStatus) {
        let mut r = Respond::status(tx, status);
        match r.status.code {
            489 => r.headers.push(("Allow-Events", "presence".into())),
            415 | 406 => r.headers.push(("Accept", "application/pidf+xml".into())),
            _ => {}
        }
        self.out.push_back(Output::Respond(r));
    }

    // ---- notifier: SUBSCRIBE from a SIP watcher -------------------------------------------

    pub(super) fn on_subscribe(&mut self, clock: Clock, tx: TxId, req: &SipRequestIn) {
        if !is_presence_event(req.event.as_deref()) {
            // RFC 6665 §4.2.1.1: unknown or missing package.
            return self.respond(tx, SipStatus::new(489));
        }
        if req.from_tag.is_none() {
            return self.respond(tx, SipStatus::with_reason(400, "Missing From tag"));
        }
        let expires = match req.expires.as_deref().map(parse_expires) {
            None => self.settings.expires,
            Some(Some(e)) => e,
            Some(None) => return self.respond(tx, SipStatus::with_reason(400, "Bad Expires")),
        };
        if let Some(tag) = &req.to_tag {
            return self.on_resubscribe(clock, tx, req, tag.clone(), expires);
        }
        if !accepts_pidf(req.accept.as_deref()) {
            return self.respond(tx, SipStatus::new(406));
        }
        // The presentity: an XMPP user of a served domain (not one of the SIP users' JIDs).
        let target = SipAddr::parse(&req.request_uri)
            .ok()
            .and_then(|a| self.map.sip_to_jid(&SipAddr { gr: None, ..a }).ok());
        let Some(user) = target.filter(|j| !self.map.is_component_jid(j)) else {
            return self.respond(tx, SipStatus::new(404));
        };
        // The watcher: a SIP user, i.e. its JID is in the component domain (GEN-5: an XMPP
        // user's own address coming back from SIP is a loop or a spoof).
        let watcher = SipAddr::parse(&req.from_uri).ok().and_then(|mut a| {
            a.gr = None;
            let jid = self.map.sip_to_jid(&a).ok()?;
            self.map.is_component_jid(&jid).then(|| a.aor())
        });
        let Some(aor) = watcher else {
            return self.respond(tx, SipStatus::with_reason(403, "Forbidden (watcher)"));
        };
        if expires != 0 && expires < self.settings.min_expires {
            let mut r = Respond::status(tx, SipStatus::new(423));
            r.headers
                .push(("Min-Expires", self.settings.min_expires.to_string()));
            self.out.push_back(Output::Respond(r));
            return;
        }
        let user = user.to_bare().to_string();
        let sx = AuthKey::new(user, aor, Direction::SipWatchesXmpp);
        let state = self.auth_state(&sx);
        if expires != 0 && !self.within_limits(&sx) {
            // PRES-24; RFC 7247: resource-constraint <-> 500 is the XMPP side's code, but a
            // SIP watcher over its limit is told to come back later.
            let mut r = Respond::status(tx, SipStatus::with_reason(503, "Too Many Subscriptions"));
            r.headers.push(("Retry-After", "3600".into()));
            self.out.push_back(Output::Respond(r));
            return;
        }
        let granted = expires.min(self.settings.max_expires);
        let Some(contact) = req.contact.clone() else {
            return self.respond(tx, SipStatus::with_reason(400, "Missing Contact"));
        };
        let tag = crate::sip::inbound::random_token();
        let mut route_set = req.record_route.clone();
        route_set.retain(|r| !r.is_empty());
        let d = Dlg {
            role: DialogRole::Notifier,
            auth: sx.clone(),
            local_uri: req.to_uri.clone(),
            local_tag: tag.clone(),
            remote_uri: req.from_uri.clone(),
            remote_tag: req.from_tag.clone(),
            remote_target: contact,
            route_set,
            local_cseq: 0,
            remote_cseq: Some(req.cseq),
            expires_at: clock.now + Duration::from_secs(u64::from(granted)),
            expires_unix: clock.unix + i64::from(granted),
            phase: Phase::Pending,
            closing: (expires == 0).then_some(Closing::Fetch),
            reported: Vec::new(),
            last_sent: Vec::new(),
            inflight: None,
            notify_inflight: None,
            queued: None,
            timer: None,
        };
        let dk = (req.call_id.clone(), tag.clone());
        self.insert_dialog(dk.clone(), d);
        let mut ok = Respond::status(tx, SipStatus::new(200));
        ok.to_tag = Some(tag);
        ok.contact_user = Some(user_part(&req.to_uri));
        ok.headers.push(("Expires", granted.to_string()));
        self.out.push_back(Output::Respond(ok));

        if expires == 0 {
            // PRES-22: a fetch. Authorized: answer with what we know, or probe first.
            if state != AuthState::Subscribed {
                self.terminate(clock, &dk, "rejected", None);
            } else if self.current_pidf(&sx).is_some() {
                self.on_dialog_timer(clock, dk, TimerKind::FetchReply);
            } else {
                self.send_probe(&sx);
                self.set_timer(
                    &dk,
                    clock.now + self.settings.fetch_wait,
                    TimerKind::FetchReply,
                );
            }
            return;
        }
        self.persist(clock, &dk);
        self.set_timer(
            &dk,
            clock.now + Duration::from_secs(u64::from(granted)),
            TimerKind::Expire,
        );
        match state {
            AuthState::Subscribed => {
                // Granted before: active at once (PRES-12), the state if known, else a probe
                // whose answer becomes the next NOTIFY.
                let body = self.current_pidf(&sx);
                let known = body.is_some();
                self.notify_active(clock, &dk, body);
                if !known {
                    self.send_probe(&sx);
                }
            }
            _ => {
                // PRES-9: pending NOTIFY at once, `subscribe` to the XMPP user.
                self.notify(
                    clock,
                    &dk,
                    SubState::Pending {
                        expires: Some(granted),
                    },
                    None,
                );
                self.set_auth(clock, &sx, AuthState::Pending);
                self.send_sub_stanza(&sx, Type::Subscribe);
            }
        }
    }

    /// An in-dialog SUBSCRIBE: refresh (PRES-12) or end (PRES-13).
    pub(super) fn on_resubscribe(
        &mut self,
        clock: Clock,
        tx: TxId,
        req: &SipRequestIn,
        tag: String,
        expires: u32,
    ) {
        let dk = (req.call_id.clone(), tag.clone());
        let Some(d) = self.dialogs.get_mut(&dk) else {
            return self.respond(tx, SipStatus::new(481));
        };
        if d.role != DialogRole::Notifier || d.remote_tag != req.from_tag {
            return self.respond(tx, SipStatus::new(481));
        }
        if d.remote_cseq.is_some_and(|c| req.cseq <= c) {
            // RFC 3261 §12.2.2: out of order.
            return self.respond(tx, SipStatus::with_reason(500, "CSeq out of order"));
        }
        d.remote_cseq = Some(req.cseq);
        if expires != 0 && expires < self.settings.min_expires {
            let mut r = Respond::status(tx, SipStatus::new(423));
            r.headers
                .push(("Min-Expires", self.settings.min_expires.to_string()));
            self.out.push_back(Output::Respond(r));
            return;
        }
        let granted = expires.min(self.settings.max_expires);
        let mut ok = Respond::status(tx, SipStatus::new(200));
        ok.to_tag = Some(tag);
        ok.contact_user = Some(user_part(&d.local_uri));
        ok.headers.push(("Expires", granted.to_string()));
        let auth = d.auth.clone();
        let phase = d.phase;
        self.out.push_back(Output::Respond(ok));
        if expires == 0 {
            return self.end_notifier(clock, &dk);
        }
        if let Some(d) = self.dialogs.get_mut(&dk) {
            d.expires_at = clock.now + Duration::from_secs(u64::from(granted));
            d.expires_unix = clock.unix + i64::from(granted);
        }
        self.set_timer(
            &dk,
            clock.now + Duration::from_secs(u64::from(granted)),
            TimerKind::Expire,
        );
        // PRES-12: a NOTIFY with the current state; empty when nothing is known.
        match self.auth_state(&auth) {
            AuthState::Subscribed => {
                let body = self.current_pidf(&auth);
                self.notify_active(clock, &dk, body);
            }
            _ if phase == Phase::Active => {
                self.notify_active(clock, &dk, None);
            }
            _ => self.notify(
                clock,
                &dk,
                SubState::Pending {
                    expires: Some(granted),
                },
                None,
            ),
        }
    }

    // ---- subscriber: NOTIFY from the SIP side ------------------------------------------

    pub(super) fn on_notify(&mut self, clock: Clock, tx: TxId, req: &SipRequestIn) {
        // RFC 6665 §4.1.3: matched by Call-ID and our tag (To); the notifier's tag is learned
        // here when the NOTIFY overtakes the 2xx.
        let Some(tag) = req.to_tag.clone() else {
            return self.respond(tx, SipStatus::new(481));
        };
        let dk = (req.call_id.clone(), tag);
        let Some(d) = self.dialogs.get(&dk) else {
            return self.respond(tx, SipStatus::new(481));
        };
        if d.role != DialogRole::Subscriber {
            return self.respond(tx, SipStatus::new(481));
        }
        if d.remote_tag.is_some() && d.remote_tag != req.from_tag {
            // A second fork: RFC 6665 §4.1.2.4 would let us keep it; one dialog per
            // authorization is enough, so refuse it.
            return self.respond(tx, SipStatus::new(481));
        }
        if !is_presence_event(req.event.as_deref()) {
            return self.respond(tx, SipStatus::new(489));
        }
        if d.remote_cseq.is_some_and(|c| req.cseq <= c) {
            return self.respond(tx, SipStatus::with_reason(500, "CSeq out of order"));
        }
        let Some(state) = req.subscription_state.as_deref().and_then(SubState::parse) else {
            return self.respond(tx, SipStatus::with_reason(400, "Bad Subscription-State"));
        };
        // The body is checked before anything is believed: a bad body forwards nothing.
        let presences = if req.body.is_empty() {
            None
        } else if !is_pidf(req.content_type.as_deref()) {
            return self.respond(tx, SipStatus::new(415));
        } else if req.body.len() > MAX_NOTIFY_BODY {
            return self.respond(tx, SipStatus::new(413));
        } else {
            let doc = match pidf::parse(&req.body) {
                Ok(doc) => doc,
                Err(e) => return self.respond(tx, e.rejection().sip),
            };
            let presentity = SipAddr::parse(&d.auth.sip_aor).ok();
            let watcher = match d.auth.xmpp_jid.parse::<Jid>() {
                Ok(j) => j,
                Err(_) => return self.respond(tx, SipStatus::new(500)),
            };
            let ctx = NotifyContext {
                presentity: presentity.as_ref(),
                content_language: req.content_language.as_deref(),
            };
            match pidf_to_xmpp(&doc, &watcher, &self.map, ctx) {
                Ok(p) => Some(p),
                Err(rej) => return self.respond(tx, rej.sip),
            }
        };
        let Some(d) = self.dialogs.get_mut(&dk) else {
            return self.respond(tx, SipStatus::new(481));
        };
        d.remote_cseq = Some(req.cseq);
        if d.remote_tag.is_none() {
            d.remote_tag = req.from_tag.clone();
        }
        if let Some(c) = &req.contact {
            // RFC 6665 §4.1.2.4 / RFC 3261 §12.2.1.2: the remote target follows the NOTIFY.
            d.remote_target = c.clone();
        }
        if d.route_set.is_empty() && !req.record_route.is_empty() && d.phase == Phase::Sent {
            // A NOTIFY that creates the dialog carries the route set (RFC 6665 §4.1.2.4).
            d.route_set = req.record_route.clone();
        }
        let closing = d.closing;
        let auth = d.auth.clone();
        let phase = d.phase;
        self.respond(tx, SipStatus::new(200));

        match state {
            SubState::Pending { .. } => {
                // PRES-2: neutral; nothing toward XMPP.
                if let Some(d) = self.dialogs.get_mut(&dk) {
                    if d.phase == Phase::Sent {
                        d.phase = Phase::Pending;
                    }
                }
                self.persist(clock, &dk);
            }
            SubState::Active { expires } => {
                if closing == Some(Closing::Fetch) {
                    // PRES-21: the fetch's answer (normally a terminated NOTIFY, but a
                    // notifier may send active first).
                    self.forward_state(&dk, presences, &auth);
                    return;
                }
                if closing.is_some() {
                    return;
                }
                if let Some(d) = self.dialogs.get_mut(&dk) {
                    d.phase = Phase::Active;
                }
                if phase != Phase::Active && self.auth_state(&auth) == AuthState::Pending {
                    // PRES-3: the first active NOTIFY grants the authorization.
                    self.set_auth(clock, &auth, AuthState::Subscribed);
                    self.send_sub_stanza(&auth, Type::Subscribed);
                }
                if let Some(secs) = expires {
                    self.set_expiry(clock, &dk, secs);
                }
                self.forward_state(&dk, presences, &auth);
                self.persist(clock, &dk);
            }
            SubState::Terminated {
                reason,
                retry_after,
            } => {
                if closing == Some(Closing::Fetch) {
                    self.forward_state(&dk, presences, &auth);
                    self.remove_dialog(&dk);
                    return;
                }
                let d = self.remove_dialog(&dk);
                if closing.is_some() {
                    // PRES-6: the final NOTIFY after our unsubscribe: accepted, no stanza.
                    return;
                }
                let reported = d.map(|d| d.reported).unwrap_or_default();
                self.on_terminated(clock, &auth, reason.as_deref(), retry_after, &reported);
            }
        }
    }

    /// PRES-5 / PRES-8: the notifier ended the dialog.
    pub(super) fn on_terminated(
        &mut self,
        clock: Clock,
        auth: &AuthKey,
        reason: Option<&str>,
        retry_after: Option<u32>,
        reported: &[String],
    ) {
        match reason {
            Some("rejected") => {
                // Permanent: the authorization is revoked.
                let had = self.auth_state(auth) != AuthState::None;
                self.set_auth(clock, auth, AuthState::None);
                if had {
                    self.report_gone(auth, reported);
                    self.send_sub_stanza(auth, Type::Unsubscribed);
                }
            }
            _ => {
                // deactivated/timeout: at once; probation/giveup/noresource/none: later.
                self.report_gone(auth, reported);
                if self.auth_state(auth) == AuthState::None || !self.user_online(&auth.xmpp_jid) {
                    return;
                }
                let wait = match (reason, retry_after) {
                    (_, Some(s)) => Duration::from_secs(u64::from(s)),
                    (Some("deactivated") | Some("timeout"), None) => Duration::ZERO,
                    _ => self.settings.retry,
                };
                if wait.is_zero() {
                    self.resubscribe(clock, auth);
                } else {
                    self.schedule_resubscribe(auth, clock.now + wait);
                }
            }
        }
    }

    pub(super) fn set_expiry(&mut self, clock: Clock, dk: &(String, String), secs: u32) {
        let Some(d) = self.dialogs.get_mut(dk) else {
            return;
        };
        d.expires_at = clock.now + Duration::from_secs(u64::from(secs));
        d.expires_unix = clock.unix + i64::from(secs);
        if d.inflight.is_none() {
            self.set_timer(dk, clock.now + refresh_after(secs), TimerKind::Refresh);
        }
    }

    /// Send the presences of a NOTIFY to the XMPP user; resources reported before and missing
    /// now become `unavailable` (full state, PRES-20). `None` (no body): state unknown (PRES-3),
    /// so everything reported before is unavailable.
    pub(super) fn forward_state(
        &mut self,
        dk: &(String, String),
        presences: Option<Vec<Presence>>,
        auth: &AuthKey,
    ) {
        let presences = presences.unwrap_or_default();
        let resource = |p: &Presence| p.from.as_ref()?.resource().map(|r| r.as_str().to_owned());
        let mentioned: Vec<String> = presences.iter().filter_map(resource).collect();
        let now: Vec<String> = presences
            .iter()
            .filter(|p| p.type_ == Type::None)
            .filter_map(resource)
            .collect();
        let before = self
            .dialogs
            .get(dk)
            .map(|d| d.reported.clone())
            .unwrap_or_default();
        // Closed tuples speak for themselves; resources that vanished from the document are
        // reported unavailable here.
        let gone: Vec<String> = before
            .iter()
            .filter(|r| !mentioned.contains(r))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.report_gone(auth, &gone);
        }
        let available: Vec<Presence> = presences
            .iter()
            .filter(|p| p.type_ == Type::None)
            .cloned()
            .collect();
        for p in presences {
            self.out.push_back(Output::Stanza(p));
        }
        if let Some(d) = self.dialogs.get_mut(dk) {
            d.reported = now;
            d.last_sent = available;
        }
    }
}
