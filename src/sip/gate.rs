//! The SIP adapter of [`crate::access`]: the facts of an ezk request in, the verdict out as
//! the response that carries it (403, or 401 with `WWW-Authenticate`, RFC 3261 §22.2).

use crate::access::{Facts, SipGate, Verdict};
use crate::errmap::SipStatus;
use ezk_sip_core::IncomingRequest;
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::Name;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::debug;

/// The gate in force; a config reload swaps the inner `Arc`.
pub type GateCell = Arc<RwLock<Arc<SipGate>>>;

/// A cell holding `gate`.
pub fn cell(gate: SipGate) -> GateCell {
    Arc::new(RwLock::new(Arc::new(gate)))
}

/// `None` when the request may go on; else the response that refuses or challenges it.
pub fn check(gate: &GateCell, req: &IncomingRequest) -> Option<(SipStatus, Vec<(Name, String)>)> {
    let gate = gate.read().unwrap_or_else(|e| e.into_inner()).clone();
    let from = req.base_headers.from.uri.default_print_ctx().to_string();
    let from_user = crate::addr::SipAddr::parse(&from).ok().and_then(|a| a.user);
    let method = req.line.method.to_string();
    let authorization: Vec<String> = req
        .headers
        .get_raw(&Name::AUTHORIZATION)
        .map(|v| v.to_string())
        .collect();
    let facts = Facts {
        source: req.tp_info.source.ip(),
        method: &method,
        from_user: from_user.as_deref(),
        authorization: authorization.iter().map(String::as_str).collect(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match gate.check(&facts, now) {
        Verdict::Pass | Verdict::Authenticated(_) => None,
        Verdict::Refuse(reason) => {
            debug!(source = %facts.source, %method, reason, "SIP request refused by [access]");
            crate::ops::metrics::get().limit_hit("sip_access_refused");
            Some((SipStatus::with_reason(403, reason), Vec::new()))
        }
        Verdict::Challenge(value) => {
            debug!(source = %facts.source, %method, "SIP request challenged by [access]");
            crate::ops::metrics::get().limit_hit("sip_access_challenged");
            Some((
                SipStatus::with_reason(401, "Unauthorized"),
                vec![(Name::WWW_AUTHENTICATE, value)],
            ))
        }
    }
}
