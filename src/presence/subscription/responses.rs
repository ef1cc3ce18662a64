//! Final responses to the SUBSCRIBEs and NOTIFYs the engine sent (RFC 6665 §4.1.2.1,
//! §4.2.2; RFC 8048 §5.2.2: 403/489/603 revoke, 423 and 481 are transient).

use std::time::Duration;

use xmpp_parsers::presence::Type;

use super::wire::{parse_expires, SipResponseIn};
use super::{backoff, Clock, Closing, Engine, Phase, ReqId, ReqKind, TimerKind};
use crate::store::{AuthState, DialogRole};

impl Engine {
    pub(super) fn on_response(&mut self, clock: Clock, id: ReqId, resp: SipResponseIn) {
        let Some((dk, kind)) = self.requests.remove(&id) else {
            return;
        };
        match kind {
            ReqKind::Notify => {
                let Some(d) = self.dialogs.get_mut(&dk) else {
                    return;
                };
                if d.notify_inflight == Some(id) {
                    d.notify_inflight = None;
                }
                // RFC 6665 §4.2.2: 481, 408 or no answer at all ends the subscription. The
                // authorization is not touched (PRES-7).
                let ends = matches!(resp.code, 481 | 408) || resp.code >= 500 && resp.code != 503;
                if ends && d.role == DialogRole::Notifier {
                    self.remove_dialog(&dk);
                } else if let Some((state, body)) = d.queued.take() {
                    self.notify(clock, &dk, state, body);
                }
            }
            ReqKind::Subscribe(asked) => self.on_subscribe_response(clock, dk, id, asked, resp),
        }
    }

    pub(super) fn on_subscribe_response(
        &mut self,
        clock: Clock,
        dk: (String, String),
        id: ReqId,
        asked: u32,
        resp: SipResponseIn,
    ) {
        let Some(d) = self.dialogs.get_mut(&dk) else {
            return;
        };
        if d.inflight == Some(id) {
            d.inflight = None;
        }
        let closing = d.closing;
        let auth = d.auth.clone();
        let code = resp.code;
        if (200..300).contains(&code) {
            self.failures
                .remove(&(auth.xmpp_jid.clone(), auth.sip_aor.clone()));
            let Some(d) = self.dialogs.get_mut(&dk) else {
                return;
            };
            if d.remote_tag.is_none() {
                d.remote_tag = resp.to_tag.clone();
            }
            if d.phase == Phase::Sent {
                d.phase = Phase::Pending;
                // RFC 3261 §12.1.2: the route set is the Record-Route list reversed.
                d.route_set = resp.record_route.iter().rev().cloned().collect();
            }
            if let Some(c) = &resp.contact {
                d.remote_target = c.clone();
            }
            let granted = resp
                .expires
                .as_deref()
                .and_then(parse_expires)
                .unwrap_or(asked)
                .min(asked.max(1));
            match closing {
                Some(Closing::Unsubscribe) if asked == 0 => {
                    // PRES-6: tell the XMPP user; the final NOTIFY (or a timer) ends the dialog.
                    self.send_sub_stanza(&auth, Type::Unsubscribed);
                    self.set_timer(&dk, clock.now + Duration::from_secs(32), TimerKind::Expire);
                }
                Some(Closing::Unsubscribe | Closing::Offline) if asked != 0 => {
                    // Answered an earlier refresh; now end it.
                    self.send_subscribe(clock, &dk, 0);
                }
                Some(_) => {
                    self.set_timer(&dk, clock.now + Duration::from_secs(32), TimerKind::Expire);
                }
                None => {
                    self.set_expiry(clock, &dk, granted);
                    self.persist(clock, &dk);
                }
            }
            return;
        }
        // Failures.
        let reported = d.reported.clone();
        match code {
            423 if asked != 0 => {
                // PRES-5: transient; again with the server's minimum.
                let min = resp
                    .min_expires
                    .as_deref()
                    .and_then(parse_expires)
                    .filter(|m| *m > asked)
                    .unwrap_or(asked.saturating_mul(2).max(60));
                self.send_subscribe(clock, &dk, min);
                return;
            }
            _ => {}
        }
        self.remove_dialog(&dk);
        if closing == Some(Closing::Fetch) {
            return;
        }
        if let Some(Closing::Unsubscribe) = closing {
            // Whatever the SIP side said, the XMPP user asked to stop.
            self.send_sub_stanza(&auth, Type::Unsubscribed);
            return;
        }
        if closing.is_some() {
            return;
        }
        let permanent = matches!(code, 403 | 489 | 603) || matches!(code, 404 | 410 | 604 | 484);
        if permanent {
            // PRES-5 (403/489/603) and addresses that do not exist: the authorization ends.
            let had = self.auth_state(&auth) != AuthState::None;
            self.set_auth(clock, &auth, AuthState::None);
            if had {
                self.report_gone(&auth, &reported);
                self.send_sub_stanza(&auth, Type::Unsubscribed);
            }
            return;
        }
        // 481 (dialog gone): a new dialog at once; 408/5xx/other: later. The XMPP user sees
        // the contact unavailable meanwhile (PRES-8).
        if !reported.is_empty() || self.auth_state(&auth) == AuthState::Subscribed {
            self.report_gone(&auth, &reported);
        }
        if self.auth_state(&auth) == AuthState::None {
            return;
        }
        let retry = resp
            .retry_after
            .as_deref()
            .and_then(|r| {
                r.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .map(Duration::from_secs);
        if code == 481 {
            self.resubscribe(clock, &auth);
        } else {
            let k = (auth.xmpp_jid.clone(), auth.sip_aor.clone());
            let n = self.failures.entry(k).or_insert(0);
            let wait = retry.unwrap_or(backoff(self.settings.retry, *n));
            *n = n.saturating_add(1);
            self.schedule_resubscribe(&auth, clock.now + wait);
        }
    }
}
