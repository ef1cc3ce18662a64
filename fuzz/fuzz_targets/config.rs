//! `stox::config::Config::parse` on arbitrary text.
//!
//! Invariants: parsing never panics; for a parsed file, `validate()` and the accessors the
//! application calls after it (`address_map`, `listen`, `ping_interval`, `bounce_window`)
//! never panic; the `Debug` output never contains the component secret (it is redacted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox_fuzz::debug;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = stox::config::Config::parse(text);
    if debug() {
        eprintln!("{parsed:#?}");
    }
    let Ok(cfg) = parsed else {
        return;
    };
    let _ = cfg.validate();
    let _ = cfg.address_map();
    let _ = cfg.listen();
    let _ = cfg.ping_interval();
    let _ = cfg.bounce_window();
    if let Some(secret) = &cfg.component.secret {
        let mut redacted = cfg.clone();
        redacted.component.secret = None;
        let with = format!("{cfg:?}");
        let without = format!("{redacted:?}");
        let s = secret.expose();
        assert!(
            s.is_empty() || !with.contains(s) || without.contains(s),
            "Debug output leaks the component secret"
        );
    }
});
