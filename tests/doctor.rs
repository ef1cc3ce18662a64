//! `stox doctor`: the checks called directly against a fake XEP-0114 server, held ports and
//! broken state directories, and the command's output and exit status.

#[path = "support/sha1.rs"]
mod sha1;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stox::config::{Listen, Secret};
use stox::doctor::{component, sockets, store, Check, Level};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const JID: &str = "sip.example.com";
const SECRET: &str = "doctor-secret";
const STREAM_ID: &str = "f00d-1234";

/// How the fake server treats a handshake.
#[derive(Clone, Copy)]
enum Mode {
    /// `<handshake/>` for the right secret, `<not-authorized/>` for a wrong one (as Prosody
    /// and ejabberd do).
    Normal,
    /// Right secret, but the domain is taken: `<conflict/>` (Prosody's answer to a second
    /// component on one domain).
    Occupied,
    /// Domain unknown: `<host-unknown/>` right after the stream header, no stream id.
    UnknownHost,
    /// Stream header, then silence.
    Silent,
}

/// What the fake saw on its one connection.
#[derive(Debug, Default)]
struct Seen {
    /// The `to` of the component's stream header.
    to: Option<String>,
    /// The handshake matched hex(sha1(stream id + secret)).
    hash_ok: Option<bool>,
    /// The component sent `</stream:stream>` after the answer.
    footer: bool,
}

async fn fake_server(mode: Mode) -> (SocketAddr, JoinHandle<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        serve(&mut s, mode).await
    });
    (addr, task)
}

/// Read until `pred` holds for the text so far (or EOF / 5 s); returns the text.
async fn read_until(s: &mut TcpStream, buf: &mut String, pred: impl Fn(&str) -> bool) -> bool {
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pred(buf) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            _ => return false,
        }
    }
    true
}

fn attr(tag: &str, name: &str) -> Option<String> {
    for q in ['\'', '"'] {
        let pat = format!("{name}={q}");
        if let Some(i) = tag.find(&pat) {
            let rest = &tag[i + pat.len()..];
            return rest.find(q).map(|j| rest[..j].to_string());
        }
    }
    None
}

async fn serve(s: &mut TcpStream, mode: Mode) -> Seen {
    let mut seen = Seen::default();
    let mut buf = String::new();
    let header_done = |b: &str| {
        b.find("<stream:stream")
            .is_some_and(|i| b[i..].contains('>'))
    };
    if !read_until(s, &mut buf, header_done).await {
        return seen;
    }
    let start = buf.find("<stream:stream").unwrap();
    let tag = &buf[start..start + buf[start..].find('>').unwrap()];
    seen.to = attr(tag, "to");
    let from = seen.to.clone().unwrap_or_default();
    let open = |id: Option<&str>| {
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' from='{from}'{}>",
            id.map(|i| format!(" id='{i}'")).unwrap_or_default()
        )
    };
    let error = |cond: &str, text: &str| {
        format!(
            "<stream:error><{cond} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>{text}</text></stream:error>\
             </stream:stream>"
        )
    };
    if let Mode::UnknownHost = mode {
        let reply = open(None) + &error("host-unknown", "no such component");
        s.write_all(reply.as_bytes()).await.unwrap();
        return seen;
    }
    s.write_all(open(Some(STREAM_ID)).as_bytes()).await.unwrap();
    buf.clear();
    let got = |b: &str| b.contains("</handshake>") || b.contains("<handshake/>");
    if !read_until(s, &mut buf, got).await {
        return seen;
    }
    let body = buf
        .split_once("<handshake>")
        .and_then(|(_, r)| r.split_once("</handshake>"))
        .map(|(h, _)| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ok = body == sha1::sha1_hex(format!("{STREAM_ID}{SECRET}").as_bytes());
    seen.hash_ok = Some(ok);
    let reply = match (mode, ok) {
        (Mode::Silent, _) => {
            // Hold the connection open, say nothing, until the client gives up.
            let mut sink = [0u8; 64];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            return seen;
        }
        (_, false) => error(
            "not-authorized",
            "Given token does not match calculated token",
        ),
        (Mode::Occupied, true) => error("conflict", "Component already connected"),
        (_, true) => "<handshake/>".to_string(),
    };
    s.write_all(reply.as_bytes()).await.unwrap();
    buf.clear();
    seen.footer = read_until(s, &mut buf, |b| b.contains("</stream:stream>")).await;
    seen
}

async fn probe(addr: SocketAddr, secret: &str, timeout: Duration) -> Check {
    component::check_component(JID, &addr.to_string(), &Secret::new(secret), timeout).await
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn component_accepted_then_closed_cleanly() {
    let (addr, seen) = fake_server(Mode::Normal).await;
    let c = probe(addr, SECRET, T).await;
    assert_eq!(c.level, Level::Ok, "{c}");
    assert_eq!(c.message, format!("{addr} accepted the secret for {JID}"));
    let seen = seen.await.unwrap();
    assert_eq!(seen.to.as_deref(), Some(JID), "stream header 'to'");
    assert_eq!(seen.hash_ok, Some(true));
    assert!(
        seen.footer,
        "doctor must close the stream right after the handshake"
    );
}

#[tokio::test]
async fn component_wrong_secret_is_not_authorized() {
    let (addr, seen) = fake_server(Mode::Normal).await;
    let c = probe(addr, "not-the-secret", T).await;
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains("rejected the secret"), "{c}");
    assert!(c.message.contains("not-authorized"), "{c}");
    assert!(c.message.contains("component_secret"), "{c}");
    assert_eq!(seen.await.unwrap().hash_ok, Some(false));
}

#[tokio::test]
async fn component_conflict_says_another_component_is_connected() {
    let (addr, seen) = fake_server(Mode::Occupied).await;
    let c = probe(addr, SECRET, T).await;
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains("already connected"), "{c}");
    assert!(c.message.contains("conflict"), "{c}");
    assert!(c.message.contains("running stox"), "{c}");
    assert_eq!(seen.await.unwrap().hash_ok, Some(true));
}

#[tokio::test]
async fn component_host_unknown_names_the_domain() {
    let (addr, _seen) = fake_server(Mode::UnknownHost).await;
    let c = probe(addr, SECRET, T).await;
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains("host-unknown"), "{c}");
    assert!(
        c.message
            .contains(&format!("does not serve the component {JID}")),
        "{c}"
    );
}

#[tokio::test]
async fn component_silent_server_times_out_quickly() {
    let (addr, _seen) = fake_server(Mode::Silent).await;
    let t0 = Instant::now();
    let c = probe(addr, SECRET, Duration::from_millis(300)).await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains("no answer"), "{c}");
    assert!(c.message.contains("handshake answer"), "{c}");
}

#[tokio::test]
async fn component_nothing_listening_is_connection_refused() {
    // Bind and drop: a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = probe(addr, SECRET, T).await;
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains("connection refused"), "{c}");
}

#[tokio::test]
async fn component_non_xmpp_port_is_named() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let mut sink = [0u8; 256];
        let _ = s.read(&mut sink).await;
    });
    let c = probe(addr, SECRET, T).await;
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains("XMPP component port"), "{c}");
}

#[tokio::test]
async fn component_client_port_is_recognised_by_its_features() {
    // What Prosody's c2s port sends for one of its own VirtualHosts.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = String::new();
        read_until(&mut s, &mut buf, |b| b.contains("<stream:stream")).await;
        let _ = s
            .write_all(
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' id='c2s-1' version='1.0'>\
                  <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                  <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
            )
            .await;
        let mut sink = [0u8; 256];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let c = probe(addr, SECRET, T).await;
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(
        c.message.contains("client (c2s) or server (s2s) port"),
        "{c}"
    );
}

#[test]
fn sip_port_in_use_fails_naming_the_port() {
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = held.local_addr().unwrap();
    let c = sockets::check_listen(Listen::Udp(a));
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains(&format!("udp {a}")), "{c}");
    assert!(c.message.contains("in use"), "{c}");
    assert!(c.message.contains("stox (or another SIP server)"), "{c}");
    let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ta = t.local_addr().unwrap();
    let c = sockets::check_listen(Listen::Tcp(ta));
    assert_eq!(c.level, Level::Fail, "{c}");
    assert!(c.message.contains(&format!("tcp {ta}")), "{c}");
    let c = sockets::check_msrp(ta);
    assert_eq!((c.level, c.area), (Level::Fail, "msrp"), "{c}");
    assert!(c.message.contains("chat.msrp_listen"), "{c}");
    let c = sockets::check_msrps(ta);
    assert_eq!((c.level, c.area), (Level::Fail, "msrp"), "{c}");
    assert!(c.message.contains(&format!("tls {ta}")), "{c}");
    assert!(c.message.contains("chat.msrps_listen"), "{c}");
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("stox-doctor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn levels(checks: &[Check]) -> Vec<Level> {
    checks.iter().map(|c| c.level).collect()
}

#[tokio::test]
async fn state_dir_that_is_a_file_fails() {
    let d = tmpdir("file");
    let f = d.join("state");
    std::fs::write(&f, b"x").unwrap();
    let c = store::check_store(&f, Duration::from_millis(200)).await;
    assert_eq!(levels(&c), vec![Level::Fail], "{c:?}");
    assert!(c[0].message.contains("not a directory"), "{c:?}");
    // Below a file: cannot be created either.
    let c = store::check_store(&f.join("sub"), Duration::from_millis(200)).await;
    assert_eq!(levels(&c), vec![Level::Fail], "{c:?}");
    assert!(c[0].message.contains(&f.join("sub").display().to_string()));
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn missing_state_dir_is_created_and_removed_again() {
    let d = tmpdir("missing");
    let state = d.join("a").join("b");
    let c = store::check_store(&state, Duration::from_millis(200)).await;
    assert_eq!(levels(&c), vec![Level::Ok], "{c:?}");
    assert!(c[0].message.contains("does not exist yet"), "{c:?}");
    assert!(
        !d.join("a").exists(),
        "doctor left the probe directory behind"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn existing_database_opens_and_a_locked_one_fails() {
    use sqlx::{ConnectOptions, Connection};
    let d = tmpdir("db");
    let c = store::check_store(&d, Duration::from_millis(200)).await;
    assert_eq!(levels(&c), vec![Level::Ok, Level::Ok], "{c:?}");
    assert!(c[1].message.contains("no database yet"), "{c:?}");
    assert!(
        !d.join("stox.sqlite3").exists(),
        "doctor must not create the database"
    );

    let s = stox::store::SqliteStore::open(&d).await.unwrap();
    stox::store::Store::close(&s).await;
    let c = store::check_store(&d, Duration::from_millis(200)).await;
    assert_eq!(levels(&c), vec![Level::Ok, Level::Ok], "{c:?}");
    assert!(c[1].message.contains("opens"), "{c:?}");

    // Another connection holds the write lock for longer than the busy timeout.
    let mut holder = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(d.join("stox.sqlite3"))
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let c = store::check_store(&d, Duration::from_millis(200)).await;
    assert_eq!(c.last().unwrap().level, Level::Fail, "{c:?}");
    assert!(c.last().unwrap().message.contains("locked"), "{c:?}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_database_from_a_newer_stox_fails() {
    let d = tmpdir("newer");
    let s = stox::store::SqliteStore::open(&d).await.unwrap();
    stox::store::Store::close(&s).await;
    let mut conn = <sqlx::sqlite::SqliteConnectOptions as sqlx::ConnectOptions>::connect(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(d.join("stox.sqlite3")),
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (?, 'future', 1, x'00', 0)",
    )
    .bind(stox::store::SCHEMA_VERSION + 1)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let c = store::check_store(&d, Duration::from_millis(200)).await;
    assert_eq!(c.last().unwrap().level, Level::Fail, "{c:?}");
    assert!(c.last().unwrap().message.contains("newer"), "{c:?}");
    let _ = std::fs::remove_dir_all(&d);
}

// ------------------------------------------------------------------------- the command

fn write_config(dir: &Path, server: SocketAddr, secret: &str, sip: u16, msrp: u16) -> PathBuf {
    let p = dir.join("stox.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[component]
jid = "{JID}"
server = "{server}"
secret_file = "{secret_file}"
[sip]
listen = ["udp:127.0.0.1:{sip}", "tcp:127.0.0.1:{sip}"]
[addresses]
xmpp_domains = ["localhost"]
sip_domain = "127.0.0.1"
[presence]
state_dir = "{state}"
[chat]
msrp_listen = "127.0.0.1:{msrp}"
"#,
            secret_file = dir.join("secret").display(),
            state = dir.join("state").display(),
        ),
    )
    .unwrap();
    std::fs::write(dir.join("secret"), format!("{secret}\n")).unwrap();
    p
}

fn free_port() -> u16 {
    loop {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

async fn doctor(config: &Path) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stox"))
        .args(["doctor", "--timeout", "3", "--config"])
        .arg(config)
        .env_remove("STOX_COMPONENT_SECRET")
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn cli_exits_0_when_nothing_fails() {
    let d = tmpdir("cli-ok");
    let (addr, _seen) = fake_server(Mode::Normal).await;
    let cfg = write_config(&d, addr, SECRET, free_port(), free_port());
    let (code, out) = doctor(&cfg).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines()
            .any(|l| l == format!("ok    component: {addr} accepted the secret for {JID}")),
        "{out}"
    );
    assert!(
        out.contains("ok    config: component secret read from secret_file"),
        "{out}"
    );
    assert!(out.contains("info  tls: no TLS is configured"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn cli_exits_1_on_wrong_secret_and_on_a_held_port() {
    let d = tmpdir("cli-fail");
    let (addr, _seen) = fake_server(Mode::Normal).await;
    let cfg = write_config(&d, addr, "wrong", free_port(), free_port());
    let (code, out) = doctor(&cfg).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  component:"), "{out}");
    assert!(out.contains("rejected the secret"), "{out}");

    // The port is held by this test process: the child doctor names it.
    let (addr, _seen) = fake_server(Mode::Normal).await;
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let cfg = write_config(&d, addr, SECRET, port, free_port());
    let (code, out) = doctor(&cfg).await;
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("FAIL  sip: udp"))
        .unwrap_or_else(|| panic!("no sip FAIL line:\n{out}"));
    assert!(
        line.contains(&format!("127.0.0.1:{port} is in use")),
        "{line}"
    );
    if std::path::Path::new("/proc/net/udp").exists() {
        let me = format!("by process {} (", std::process::id());
        assert!(line.contains(&me), "holder not named: {line}");
    }
    drop(held);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn cli_unreadable_config_exits_1() {
    let d = tmpdir("cli-missing");
    let (code, out) = doctor(&d.join("nope.toml")).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAIL  config: cannot read"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}
