//! The two gateways under test, started the same way against the same harness: stox (the
//! release binary) and the baseline, Kamailio 5.6 with its xmpp module in component mode
//! (built with the crash fix by the peer kit's `kamailio-xmpp/build-module.sh`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::sip::Shape;

pub const SECRET: &str = "bench-secret";
/// The component domain both gateways serve.
pub const COMPONENT: &str = "sip.example.com";
/// The XMPP users who send the XMPP -> SIP messages (`{n}`: 0..64 in turn).
pub const XMPP_SENDER: &str = "romeo{n}@example.com/bench";

pub struct Gateway {
    pub name: &'static str,
    pub pid: u32,
    pub sip: SocketAddr,
    /// How SIP -> XMPP MESSAGEs are addressed to reach `juliet@example.com`.
    pub shape: Shape,
    /// The JID that reaches `sip:bob@example.net` (the harness responder).
    pub to_jid: String,
    child: Child,
    dir: PathBuf,
}

impl Gateway {
    /// Where the gateway's stderr goes.
    pub fn stderr_file(&self) -> PathBuf {
        self.dir.join("stderr.log")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM lets Kamailio's main process take its workers down with it.
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stox-bench-im-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spawn(cmd: &mut Command, dir: &Path) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// stox with its XMPP side on `xmpp` and every `example.net` request routed to `responder`.
pub fn stox(binary: &str, xmpp: SocketAddr, responder: SocketAddr) -> Gateway {
    let port = free_port();
    let dir = fresh_dir("stox");
    let cfg = dir.join("stox.toml");
    std::fs::write(
        &cfg,
        format!(
            "[component]\njid = \"{COMPONENT}\"\nserver = \"{xmpp}\"\nsecret = \"{SECRET}\"\n\
             ping_interval_secs = 3600\n\
             [sip]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\n\
             [sip.routes]\n\"example.net\" = \"sip:{responder}\"\n\
             [addresses]\nxmpp_domains = [\"example.com\"]\nsip_domain = \"example.net\"\n\
             [presence]\nstate_dir = \"{}\"\n[chat]\nmode = \"page\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let child = spawn(
        Command::new(binary)
            .args(["run", "--config"])
            .arg(&cfg)
            .env(
                "RUST_LOG",
                std::env::var("STOX_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        &dir,
    );
    Gateway {
        name: "stox",
        pid: child.id(),
        sip: SocketAddr::from(([127, 0, 0, 1], port)),
        shape: Shape {
            ruri: "sip:juliet@example.com".into(),
            from_domain: "example.net".into(),
            from_users: 64,
        },
        to_jid: format!("bob@{COMPONENT}"),
        child,
        dir,
    }
}

/// The peer kit: `$STOX_PEERS`, or `../shared/peers` beside the repository.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("STOX_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers"))
}

/// Kamailio + xmpp module, `children` SIP worker processes per listener.
pub fn kamailio(xmpp: SocketAddr, responder: SocketAddr, children: u32) -> Gateway {
    let kit = peers_dir().join("kamailio-xmpp");
    let binary = ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!(
                "Kamailio is not installed: run {}/install.sh kamailio (or set STOX_BENCH_GATEWAYS=stox)",
                peers_dir().display()
            )
        });
    let built = Command::new("bash")
        .arg(kit.join("build-module.sh"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}/build-module.sh: {e}", kit.display()));
    let out = String::from_utf8_lossy(&built.stdout);
    let so = out
        .lines()
        .find_map(|l| l.strip_prefix("ready: "))
        .unwrap_or_else(|| {
            panic!(
                "building Kamailio's xmpp module failed ({}/build-module.sh): {out}{}",
                kit.display(),
                String::from_utf8_lossy(&built.stderr)
            )
        })
        .to_string();
    let port = free_port();
    let dir = fresh_dir("kamailio");
    let template = std::fs::read_to_string(kit.join("kamailio-xmpp.cfg.in"))
        .unwrap_or_else(|e| panic!("{}: {e}", kit.display()));
    let cfg = template
        .replace("@XMPP_SO@", &so)
        .replace("@CHILDREN@", &children.to_string())
        .replace("@SIP_HOST@", "127.0.0.1")
        .replace("@SIP_PORT@", &port.to_string())
        .replace("@GATEWAY_DOMAIN@", "gw.example.net")
        .replace("@COMPONENT@", COMPONENT)
        .replace("@XMPP_HOST@", &xmpp.ip().to_string())
        .replace("@XMPP_PORT@", &xmpp.port().to_string())
        .replace("@SECRET@", SECRET)
        .replace("@OUTBOUND_PROXY@", &format!("sip:{responder}"));
    std::fs::write(dir.join("kamailio.cfg"), cfg).unwrap();
    let child = spawn(
        Command::new(binary)
            .arg("-f")
            .arg(dir.join("kamailio.cfg"))
            .args(["-DD", "-E", "-Y"])
            .arg(&dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .args(["-m", "256", "-M", "16"]),
        &dir,
    );
    Gateway {
        name: "kamailio",
        pid: child.id(),
        sip: SocketAddr::from(([127, 0, 0, 1], port)),
        shape: Shape {
            ruri: "sip:juliet*example.com@gw.example.net".into(),
            from_domain: "example.net".into(),
            from_users: 64,
        },
        to_jid: format!("bob*example.net@{COMPONENT}"),
        child,
        dir,
    }
}
