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

/// A gateway config whose state directory is `state` (the component server is never reached:
/// the state database is opened first).
fn run_config(dir: &std::path::Path, state: &std::path::Path) -> std::path::PathBuf {
    config(
        dir,
        &format!(
            "[component]\njid = \"sip.example.com\"\nserver = \"127.0.0.1:9\"\nsecret = \"s\"\n\
             [sip]\nlisten = [\"udp:127.0.0.1:0\"]\n\
             [addresses]\nxmpp_domains = [\"example.com\"]\nsip_domain = \"example.net\"\n\
             [presence]\nstate_dir = \"{}\"\n[chat]\nmsrp_listen = \"127.0.0.1:0\"\n",
            state.display()
        ),
    )
}

#[test]
fn pres_14_corrupt_state_database_is_a_clear_startup_error() {
    let dir = tmpdir("corrupt-db");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("stox.sqlite3"),
        b"this is not an SQLite file, it is a note\n",
    )
    .unwrap();
    let out = stox()
        .args(["run", "--config"])
        .arg(run_config(&dir, &state))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must not start: {err}");
    assert!(
        err.contains("state database") && err.contains("not a usable stox database"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn pres_14_locked_state_database_is_a_clear_startup_error() {
    let dir = tmpdir("locked-db");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let db = state.join("stox.sqlite3");
    // Another process holds an exclusive lock (an sqlite3 shell in a transaction).
    let mut holder = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect(
            "the sqlite3 shell is needed for this test (apt-get install sqlite3; test.sh does)",
        );
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);"
        )
        .unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = stox()
        .args(["run", "--config"])
        .arg(run_config(&dir, &state))
        .output()
        .unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must not start: {err}");
    assert!(err.contains("locked"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `[log] format = "json"`: every line stox writes is one JSON object (for log shippers), and
/// SIGHUP reloads the file (its outcome is logged) without stopping the process; SIGTERM then
/// ends it cleanly.
#[test]
fn json_logs_and_sighup_reload() {
    let d = tmpdir("jsonlog");
    // A component port nobody listens on: stox keeps retrying, which is what this test needs.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let base = format!(
        r#"
[component]
jid = "sip.example.com"
server = "127.0.0.1:{port}"
secret = "s"
[sip]
listen = ["udp:127.0.0.1:0"]
[addresses]
xmpp_domains = ["example.com"]
sip_domain = "example.net"
[presence]
state_dir = "{state}"
[chat]
msrp_listen = "127.0.0.1:0"
[log]
format = "json"
"#,
        state = d.join("state").display()
    );
    let cfg = config(&d, &base);
    let out_path = d.join("out.log");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = stox()
        .args(["run", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let wait_for = |needle: &str| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !read().contains(needle) {
            assert!(
                std::time::Instant::now() < end,
                "no {needle:?} in:\n{}",
                read()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for("stox started");
    std::fs::write(&cfg, format!("{base}\n[limits]\nmessages_per_minute = 3\n")).unwrap();
    let kill = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    kill("-HUP");
    wait_for("configuration reloaded");
    kill("-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", read());
    let text = read();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |msg: &str| lines.iter().find(|v| v["message"] == msg).cloned();
    let reloaded = find("configuration reloaded").expect("reload line");
    assert_eq!(
        reloaded["summary"],
        "applied: limits.messages_per_minute; needs a restart: nothing"
    );
    assert_eq!(reloaded["level"], "INFO");
    let failed = find("component connect failed").expect("connect failures are logged");
    assert_eq!(failed["level"], "WARN");
    assert!(find("stox stopped").is_some(), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}
