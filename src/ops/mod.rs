//! Operating stox: metrics (OpenMetrics endpoint), log setup, configuration reload and the
//! per-sender rate limit. The admin ad-hoc commands (XEP-0050) live in `core::admin`, beside
//! the state they show.

pub mod http;
pub mod log;
pub mod metrics;
pub mod ratelimit;
pub mod reload;
