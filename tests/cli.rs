//! The `stox` command line: map (ADDR-6 vectors and the component-domain forms),
//! check-config, --help and --version.

use std::process::Command;

fn stox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stox"))
}

fn config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("stox-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const COMPONENT: &str = r#"
[component]
jid = "sip.example.com"
secret = "s"
[addresses]
xmpp_domains = ["example.com"]
sip_domain = "example.net"
"#;

/// The ADDR-6 vectors need the SIP host to be the JID domain, so these domains are served
/// as XMPP domains here.
const VECTORS: &str = r#"
[component]
jid = "gw.invalid"
secret = "s"
[addresses]
xmpp_domains = ["sip.example", "xmpp.example", "x.example"]
sip_domain = "sip.invalid"
"#;

fn map(cfg: &std::path::Path, input: &str) -> (bool, String, String) {
    let out = stox()
        .args(["map", "--config"])
        .arg(cfg)
        .arg(input)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn addr_6_vectors_through_stox_map() {
    let d = tmpdir("vectors");
    let cfg = config(&d, VECTORS);
    for (sip, jid) in [
        ("sip:f%C3%BC@sip.example", "fü@sip.example"),
        ("sip:o'malley@sip.example", "o\\27malley@sip.example"),
        ("sip:foo@sip.example;gr=bar", "foo@sip.example/bar"),
        ("sip:m&m@xmpp.example", "m\\26m@xmpp.example"),
        ("sip:tsch%C3%BCss@xmpp.example", "tschüss@xmpp.example"),
        ("sip:baz@xmpp.example;gr=qux", "baz@xmpp.example/qux"),
        ("sip:a%40b@x.example", "a\\40b@x.example"),
        ("sip:a/b@x.example", "a\\2fb@x.example"),
    ] {
        assert_eq!(
            map(&cfg, sip),
            (true, jid.to_string(), String::new()),
            "{sip}"
        );
        let (ok, back, _) = map(&cfg, jid);
        assert!(ok, "{jid}");
        assert_eq!(back.to_ascii_lowercase(), sip.to_ascii_lowercase(), "{jid}");
    }
}

#[test]
fn addr_11_component_forms_through_stox_map() {
    let d = tmpdir("component");
    let cfg = config(&d, COMPONENT);
    for (input, expected) in [
        ("sip:romeo@example.net", "romeo@sip.example.com"),
        ("romeo@sip.example.com", "sip:romeo@example.net"),
        ("sip:bob@other.org", "bob\\40other.org@sip.example.com"),
        ("bob\\40other.org@sip.example.com", "sip:bob@other.org"),
        ("bob%other.org@sip.example.com", "sip:bob@other.org"),
        (
            "juliet@example.com/balcony",
            "sip:juliet@example.com;gr=balcony",
        ),
        ("sip:juliet@example.com", "juliet@example.com"),
    ] {
        assert_eq!(
            map(&cfg, input),
            (true, expected.to_string(), String::new()),
            "{input}"
        );
    }
}

#[test]
fn map_refusal_exits_1_with_reason() {
    let d = tmpdir("refuse");
    let cfg = config(&d, COMPONENT);
    for input in ["tel:+15551234", "someone@elsewhere.org", "sip:%ZZ@x"] {
        let (ok, out, err) = map(&cfg, input);
        assert!(!ok, "{input} -> {out}");
        assert!(err.contains("cannot translate"), "{err}");
    }
}

#[test]
fn check_config_lists_every_problem() {
    let d = tmpdir("check");
    let good = config(&d, COMPONENT);
    let out = stox()
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        "[component]\njid = \"a@b\"\n[sip]\nlisten = [\"sctp:1:2\"]\n[addresses]\nxmpp_domains = []\nsip_domain = \"\"\n",
    )
    .unwrap();
    let out = stox()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() >= 4, "{text}");
    let typo = d.join("typo.toml");
    std::fs::write(&typo, format!("{COMPONENT}\nbogus_key = 1\n")).unwrap();
    let out = stox()
        .args(["check-config", "--config"])
        .arg(&typo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown field"));
}

#[test]
fn help_and_version() {
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["map", "--help"],
        &["check-config", "--help"],
    ] {
        let out = stox().args(sub).output().unwrap();
        assert!(out.status.success(), "{sub:?}");
        assert!(!out.stdout.is_empty());
    }
    let out = stox().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
