//! What the engine puts on the wire: SUBSCRIBEs and NOTIFYs in a dialog (RFC 6665 §4.1.2,
//! §4.2.2; RFC 3261 §12.2.1), the subscription stanzas toward XMPP, and the dialog timers
//! (refresh, expiry, fetch answer; RFC 8048 §5.2.2, §5.3.3).

use std::time::Duration;

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::{Presence, Type};

use super::wire::{OutMethod, OutRequest, SubState};
use super::{Clock, Closing, Dlg, Engine, NotifyBody, Output, Phase, ReqKind, TimerKind};
use crate::presence::pidf::to_xml;
use crate::presence::translate::xmpp_to_pidf;
use crate::store::{AuthKey, AuthState, DialogRole};

impl Engine {
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
    pub(super) fn fetch(&mut self, clock: Clock, xs: &AuthKey) {
        let dk = self.new_subscriber_dialog(clock, xs, Some(Closing::Fetch));
        self.send_subscribe(clock, &dk, 0);
    }

    pub(super) fn new_subscriber_dialog(
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
        let headers = vec![
            ("Event", "presence".into()),
            ("Expires", expires.to_string()),
            ("Accept", "application/pidf+xml".into()),
        ];
        let req = d.request(id, OutMethod::Subscribe, &dk.0, headers, Vec::new());
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

    /// End a notifier dialog: a final NOTIFY `terminated;reason=REASON` (with `body`, if any),
    /// then the dialog is gone.
    pub(super) fn terminate(
        &mut self,
        clock: Clock,
        dk: &(String, String),
        reason: &str,
        body: NotifyBody,
    ) {
        let state = SubState::Terminated {
            reason: Some(reason.into()),
            retry_after: None,
        };
        self.notify(clock, dk, state, body);
        self.remove_dialog(dk);
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
        let req = d.request(id, OutMethod::Notify, &dk.0, headers, bytes);
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
                self.terminate(clock, &dk, "timeout", body);
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
        self.terminate(clock, dk, "timeout", body);
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

impl Dlg {
    /// A request in this dialog with its current CSeq (RFC 3261 §12.2.1.1): to the remote
    /// target, along the route set; the first request of a dialog (no peer tag yet) is
    /// `initial`, routed like any new request.
    fn request(
        &self,
        id: super::ReqId,
        method: OutMethod,
        call_id: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> OutRequest {
        OutRequest {
            id,
            method,
            request_uri: self.remote_target.clone(),
            route_set: self.route_set.clone(),
            initial: method == OutMethod::Subscribe && self.remote_tag.is_none(),
            local_uri: self.local_uri.clone(),
            local_tag: self.local_tag.clone(),
            remote_uri: self.remote_uri.clone(),
            remote_tag: self.remote_tag.clone(),
            call_id: call_id.to_owned(),
            cseq: self.local_cseq,
            contact_user: user_part(&self.local_uri),
            headers,
            body,
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
