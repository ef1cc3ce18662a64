//! Per-user subscription rate limit (`[limits] subscriptions_per_minute`; hardening: a
//! subscription costs a SIP dialog and stored state, so a client subscribing in a loop must
//! be slowed down). Only requests that create a subscription count: refreshes, NOTIFYs and
//! unsubscribes always pass, so a limited user never loses a subscription it holds.

use super::Router;
use crate::errmap::SipStatus;
use crate::presence::subscription::SipRequestIn;
use std::time::Instant;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::errmap::XmppError;

impl Router {
    /// `Some(error)` when the XMPP user behind a `subscribe` to a SIP user is over the rate
    /// (answered with policy-violation, like the message limit).
    pub(super) fn xmpp_subscription_limited(&mut self, p: &Presence) -> Option<XmppError> {
        if p.type_ != PresenceType::Subscribe {
            return None;
        }
        let from = p.from.as_ref()?.to_bare().to_string();
        let wait = self.sub_rate.check(&from, Instant::now()).err()?;
        crate::ops::metrics::get().limit_hit("subscriptions_per_minute");
        Some(
            XmppError::new(DefinedCondition::PolicyViolation).with_text(format!(
                "rate limit: at most {} new subscriptions per minute; try again in {} s",
                self.sub_rate.rate(),
                wait.as_secs() + 1
            )),
        )
    }

    /// `Some(503)` with Retry-After when the SIP user sending a new SUBSCRIBE is over the rate.
    pub(super) fn sip_subscription_limited(&mut self, req: &SipRequestIn) -> Option<SipStatus> {
        if req.method != "SUBSCRIBE" || req.to_tag.is_some() {
            return None;
        }
        let from = crate::addr::SipAddr::parse(&req.from_uri)
            .map(|a| a.aor())
            .unwrap_or_else(|_| req.from_uri.clone());
        let wait = self.sub_rate.check(&from, Instant::now()).err()?;
        crate::ops::metrics::get().limit_hit("subscriptions_per_minute");
        let secs = u32::try_from(wait.as_secs())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        Some(SipStatus::with_reason(503, "Rate Limit Exceeded").retry_after(secs))
    }
}
