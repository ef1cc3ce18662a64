//! Logging setup: text or JSON lines (`[log] format`), and a level that a reload can change
//! without a restart (`[log] level`; `RUST_LOG`, when set, wins and pins the level).

use crate::config::{LogConfig, LogFormat};
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// ezk warns once per unparsable datagram: at the default levels a flood of garbage must not
/// turn into a flood of log lines, so its crates log errors only unless named explicitly.
const QUIET: &str = "ezk_sip_core=error,ezk_sip_ua=error";

type Handle = reload::Handle<EnvFilter, Registry>;

static HANDLE: OnceLock<Option<Handle>> = OnceLock::new();

/// The filter directive for a configured level: the level, plus ezk kept quiet unless the
/// admin's directive already says something about it.
pub fn directive(level: &str) -> String {
    if level.contains("ezk") {
        level.to_string()
    } else {
        format!("{level},{QUIET}")
    }
}

/// Install the global subscriber. Call once, before anything logs.
pub fn init(cfg: &LogConfig) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let pinned = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| {
        EnvFilter::try_new(directive(&cfg.level))
            .unwrap_or_else(|_| EnvFilter::new(directive("info")))
    });
    let (filter, handle) = reload::Layer::new(filter);
    let (text, json) = match cfg.format {
        LogFormat::Text => (Some(tracing_subscriber::fmt::layer()), None),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
        ),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init();
    let _ = HANDLE.set((!pinned).then_some(handle));
}

/// Change the level. `Err` says why it was not changed.
pub fn set_level(level: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(directive(level)).map_err(|e| format!("log.level {level:?}: {e}"))?;
    match HANDLE.get() {
        Some(Some(h)) => h.reload(filter).map_err(|e| e.to_string()),
        Some(None) => Err("RUST_LOG is set and pins the log level".into()),
        None => Err("logging is not set up in this process".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_keeps_ezk_quiet_unless_named() {
        assert_eq!(directive("debug"), format!("debug,{QUIET}"));
        assert_eq!(
            directive("info,ezk_sip_core=debug"),
            "info,ezk_sip_core=debug"
        );
    }

    #[test]
    fn a_bad_level_is_refused() {
        assert!(set_level("no=such=level").is_err());
    }
}
