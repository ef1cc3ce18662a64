//! Recovery (RFC 8048 PRES-14, COMP-5): what a restarted engine does with the stored state,
//! and what it re-sends when the XMPP link comes back.

use std::time::Duration;

use xmpp_parsers::presence::Presence;

use super::{xmpp_side_uri, Clock, DKey, Dlg, Engine, Output, Phase, StoreOp, TimerKind};
use crate::store::{AuthKey, AuthState, Authorization, Dialog, DialogRole, Direction};

impl Engine {
    /// Loads what the store kept (PRES-14) and schedules the recovery: every X->S dialog is
    /// refreshed at once (its NOTIFY brings the state back within one round trip), every S->X
    /// dialog keeps its expiry, and [`Input::LinkUp`] probes the users they watch.
    pub fn restore(&mut self, clock: Clock, auths: Vec<Authorization>, dialogs: Vec<Dialog>) {
        for a in auths {
            if a.state != AuthState::None {
                self.set_auth_mem(&a.key, a.state);
            }
        }
        let mut restored = 0usize;
        for d in dialogs {
            let granted = self.auths.get(&d.auth).copied();
            let remaining = d.expires_at.saturating_sub(clock.unix);
            let live = granted.is_some() && remaining > 0;
            if !live {
                // A fetch, an ended authorization or an expired dialog: nothing to resume.
                self.out
                    .push_back(Output::Store(StoreOp::DeleteDialog(d.key.clone())));
                if d.role == DialogRole::Subscriber && granted.is_some_and(|s| s != AuthState::None)
                {
                    self.schedule_resubscribe(&d.auth, clock.now);
                }
                continue;
            }
            let dk: DKey = (d.key.call_id.clone(), d.key.local_tag.clone());
            // Both roles: our side is the XMPP user's SIP address, the peer the SIP user's.
            let (local_uri, remote_uri) =
                (xmpp_side_uri(&self.map, &d.auth), d.auth.sip_aor.clone());
            let dlg = Dlg {
                role: d.role,
                auth: d.auth.clone(),
                local_uri,
                local_tag: d.key.local_tag.clone(),
                remote_uri,
                remote_tag: d.remote_tag.clone(),
                remote_target: d.remote_target.clone(),
                route_set: d.route_set.clone(),
                local_cseq: d.local_cseq,
                remote_cseq: d.remote_cseq,
                expires_at: clock.now + Duration::from_secs(remaining as u64),
                expires_unix: d.expires_at,
                phase: if granted == Some(AuthState::Subscribed) {
                    Phase::Active
                } else {
                    Phase::Pending
                },
                closing: None,
                reported: Vec::new(),
                last_sent: Vec::new(),
                inflight: None,
                notify_inflight: None,
                queued: None,
                timer: None,
            };
            let role = d.role;
            self.insert_dialog(dk.clone(), dlg);
            match role {
                DialogRole::Subscriber => {
                    // Refresh at once, but spread (200 per second, within half the remaining
                    // time): a restart with thousands of dialogs must not burst the SIP side.
                    let spread = Duration::from_millis(5 * restored as u64)
                        .min(Duration::from_secs(remaining as u64 / 2));
                    restored += 1;
                    self.set_timer(&dk, clock.now + spread, TimerKind::Refresh)
                }
                DialogRole::Notifier => {
                    let at = clock.now + Duration::from_secs(remaining as u64);
                    self.set_timer(&dk, at, TimerKind::Expire)
                }
            }
        }
        // Authorizations granted toward SIP without any dialog left: start one.
        let orphans: Vec<AuthKey> = self
            .auths
            .iter()
            .filter(|(k, s)| {
                k.direction == Direction::XmppWatchesSip
                    && **s == AuthState::Subscribed
                    && self.by_pair.get(*k).is_none_or(|v| v.is_empty())
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in orphans {
            self.schedule_resubscribe(&k, clock.now);
        }
    }

    pub(super) fn on_link_up(&mut self) {
        // COMP-5: the SIP users' presence, as last notified, to their XMPP watchers again.
        let resend: Vec<Presence> = self
            .dialogs
            .values()
            .filter(|d| {
                d.role == DialogRole::Subscriber && d.closing.is_none() && d.phase == Phase::Active
            })
            .flat_map(|d| d.last_sent.iter().cloned())
            .collect();
        self.out.extend(resend.into_iter().map(Output::Stanza));
        // COMP-5: after (re)connecting, learn the current presence of every XMPP user a SIP
        // user is authorized to watch; the answers become NOTIFYs. The probe is authorized
        // (the XMPP user granted the subscription), so the server answers with presence.
        let pairs: Vec<AuthKey> = self
            .auths
            .iter()
            .filter(|(k, s)| {
                k.direction == Direction::SipWatchesXmpp && **s == AuthState::Subscribed
            })
            .filter(|(k, _)| self.by_pair.get(*k).is_some_and(|v| !v.is_empty()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in pairs {
            self.send_probe(&k);
        }
    }
}
