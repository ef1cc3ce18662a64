//! The configuration file: the example, unknown keys, validation, secrets.

use super::*;

const EXAMPLE: &str = include_str!("../component.toml.example");

#[test]
fn example_config_parses_and_is_valid() {
    let c = Config::parse(EXAMPLE).expect("example parses");
    assert_eq!(c.component.jid, "sip.example.com");
    assert_eq!(c.validate(), Vec::<String>::new());
}

#[test]
fn unknown_key_is_rejected() {
    let text = EXAMPLE.replace("[addresses]", "[addresses]\nxmpp_domain = \"typo\"");
    let err = Config::parse(&text).unwrap_err();
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn unknown_section_is_rejected() {
    let text = format!("{EXAMPLE}\n[nonsense]\na = 1\n");
    assert!(Config::parse(&text).is_err());
}

#[test]
fn validate_reports_every_problem_at_once() {
    let text = r#"
[component]
jid = "user@bad"
server = "nohostport"
[sip]
listen = ["sctp:1.2.3.4:5", "udp:notanaddr"]
outbound_proxy = "http://x"
[addresses]
xmpp_domains = []
sip_domain = ""
[messages]
bounce_window_ms = 900
"#;
    let c = Config::parse(text).unwrap();
    let p = c.validate();
    assert!(p.len() >= 8, "{p:#?}");
}

#[test]
fn secret_never_prints() {
    let c = Config::parse(EXAMPLE).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("change-me"), "{dbg}");
    assert!(dbg.contains("<redacted>"));
}
