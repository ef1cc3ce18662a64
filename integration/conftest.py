"""Fixtures of the stox real-peer integration suite.

Peers come from the peer kit (../shared/peers relative to the repo root, or $STOX_PEERS) and are
started/stopped only through its start.sh/stop.sh scripts, with all their state under a private
PEERS_RUN directory (mode 755: Prosody runs as user 'prosody' and must traverse it).

Session-scoped, in this order:
  kit          - the kit + private PEERS_RUN (removed at the end unless a test failed or STOX_IT_KEEP=1)
  xmpp_server  - Prosody OR ejabberd (parametrized; same ports, so only one runs at a time)
  gateway      - the stox binary, attached to that server as component sip.localhost
  sipp_uas     - SIPp UASs: :5096 answers 200 ("sipp.test"), :5098 answers 404 ("sipp404.test")
  baresip      - Kamailio on :5060 + baresip 'bob' (sip:bob@127.0.0.1) registered there
Function-scoped:
  stox         - the gateway, checked alive before and after every test (a crash fails the test)
  alice        - a logged-in XMPP client alice@localhost (xmpp_helper.XmppClient)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from sip_helper import SippUas, sipsak_ok  # noqa: E402
from xmpp_helper import XmppClient  # noqa: E402

PEERS = Path(os.environ.get("STOX_PEERS") or (ROOT.parent / "shared" / "peers")).resolve()

from topology import (  # noqa: E402
    BOUNCE_WINDOW_MS, C2S_PORT, COMPONENT, MUC_DOMAIN, FOCUS_DOMAIN, FOCUS_PORT, COMPONENT_PORT, GW_PORT, KAMAILIO_PORT, RECONNECT_MAX_SECS,
    UAS_404_DOMAIN, UAS_404_PORT, UAS_CODE_DOMAIN, UAS_CODE_PORT, UAS_OK_DOMAIN, UAS_OK_PORT, UAS_TCP_DOMAIN,
    UAS_TCP_PORT, XMPP_DOMAIN, PJSUA_DOMAIN, PJSUA_PORT, GW_MSRP_PORT, GW_MSRPS_PORT, MSRP_UA_PORT, MSRP_DOMAIN, BARESIP_FB, BARESIP_CALL, CALL_DOMAIN,
    BARESIP_CALL_MANUAL, CALL_MANUAL_DOMAIN, CALL_RING_SECS, SINK_DOMAIN, SINK_PORT, BARESIP_PLAIN, PLAIN_DOMAIN,
    BARESIP_FB_DOMAIN, CHAT_IDLE_SECS, MAX_HELD_BYTES, MSRP_PAGE_DOMAIN, METRICS_PORT, MSRP_UA_MSRP_PORT, SIP_AUTH_USER,
    SIP_AUTH_PASSWORD, GW_TLS_PORT, TLS_UAS_DOMAIN, TLS_UAS_PORT, BARESIP_TLS, BARESIP_TLS_DOMAIN,
)
import tls_peer  # noqa: E402

# kit component -> binaries that must exist
PEER_BINARIES = {
    "prosody": ["prosody", "prosodyctl"],
    "ejabberd": ["ejabberdctl"],
    "kamailio": ["kamailio", "sipsak"],
    "baresip": ["baresip"],
    "sipp": ["sipp"],
    "sipsak": ["sipsak"],
}


def require_peer(component: str):
    """Fail (never skip) with the install command when a peer is missing."""
    missing = [b for b in PEER_BINARIES[component]
               if shutil.which(b) is None and not any(Path(d, b).exists() for d in ("/usr/sbin", "/sbin"))]
    if missing:
        pytest.fail("peer '%s' is not installed (%s not found): run ../shared/peers/install.sh %s"
                    % (component, ", ".join(missing), component), pytrace=False)


def terminate(proc: Optional[subprocess.Popen], grace: float = 8) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; None or an exited process is fine."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def read_log(path: Path) -> str:
    """A log file's text ('' while it does not exist)."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def tail(path: Path, n: int = 40) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(lines[-n:])


# ------------------------------------------------------------------------------------------ kit
class Kit:
    def __init__(self, peers: Path, run: Path, venv: str):
        self.peers = peers
        self.run = run
        self.venv = venv

    def env(self, extra=None) -> dict:
        env = dict(os.environ)
        env.update({"PEERS_RUN": str(self.run), "PEERS_VENV": self.venv,
                    "XMPP_C2S_PORT": str(C2S_PORT), "XMPP_COMPONENT_PORT": str(COMPONENT_PORT),
                    "XMPP_COMPONENT_DOMAIN": COMPONENT, "XMPP_DOMAIN": XMPP_DOMAIN,
                    "KAMAILIO_PORT": str(KAMAILIO_PORT), "GATEWAY_SIP_ADDR": "127.0.0.1:%d" % GW_PORT})
        env.update(extra or {})
        return env

    def script(self, rel: str, *args, env=None, check=True, timeout=120) -> subprocess.CompletedProcess:
        """Run a kit script; its output goes to a file, not a pipe: the scripts leave background
        processes (peers, FIFO holders) that inherit stdout/stderr and would keep a pipe open."""
        path = self.peers / rel
        with tempfile.TemporaryFile() as out:
            try:
                p = subprocess.run([str(path), *args], env=self.env(env), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = None
            out.seek(0)
            text = out.read().decode(errors="replace")
        if check and rc is None:
            pytest.fail("%s %s timed out after %ss:\n%s" % (rel, " ".join(args), timeout, text), pytrace=False)
        if check and rc != 0:
            pytest.fail("%s %s failed (exit %s):\n%s" % (rel, " ".join(args), rc, text), pytrace=False)
        return subprocess.CompletedProcess([str(path), *args], -1 if rc is None else rc, text, "")


_CLEANUPS: list = []       # last-resort stops (after a crash of the fixture teardown, SIGTERM, ...)


def emergency_cleanup():
    """Stop whatever this run may have left: the stox processes we spawned and every kit peer under
    our PEERS_RUN (kit stop scripts act only on recorded PIDs, so this is idempotent)."""
    while _CLEANUPS:
        fn = _CLEANUPS.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            print("[stox-it] cleanup error: %r" % e)


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def pytest_configure(config):
    # CI/timeout sends SIGTERM: turn it into KeyboardInterrupt so that fixture teardown still runs
    signal.signal(signal.SIGTERM, _sigterm)


def pytest_unconfigure(config):
    emergency_cleanup()


@pytest.fixture(scope="session")
def kit(request):
    if not (PEERS / "install.sh").exists():
        pytest.fail("peer kit not found at %s (expected ../shared/peers next to the repo, or set STOX_PEERS)"
                    % PEERS, pytrace=False)
    venv = os.environ.get("PEERS_VENV") or os.path.join(os.environ.get("TMPDIR") or "/tmp", "stox-peers", "venv")
    run = Path(tempfile.mkdtemp(prefix="stox-it-"))
    os.chmod(run, 0o755)  # user prosody must traverse it
    k = Kit(PEERS, run, venv)

    def stop_peers():
        for args in (["baresip/stop.sh", "bob"], ["kamailio/stop.sh"], ["sipp/stop.sh", "5096"],
                     ["sipp/stop.sh", "5098"],
                     ["sipp/stop.sh", "5099"], ["prosody/stop.sh"], ["ejabberd/stop.sh"],
                     ["kamailio-msrp/stop.sh"], ["baresip/stop.sh", "chatfb"]):
            if (run / args[0].split("/")[0]).exists():
                k.script(*args, check=False, timeout=60)
    _CLEANUPS.insert(0, stop_peers)
    yield k
    emergency_cleanup()
    failed = request.session.testsfailed
    if failed or os.environ.get("STOX_IT_KEEP"):
        print("\n[stox-it] peer/gateway logs kept in %s" % run)
    else:
        shutil.rmtree(run, ignore_errors=True)


# ------------------------------------------------------------------------------ XMPP servers
class XmppServer:
    def __init__(self, kit: Kit, name: str):
        self.kit = kit
        self.name = name
        self.running = False

    def start(self):
        self.kit.script("%s/start.sh" % self.name, timeout=90)
        self.running = True

    def stop(self):
        self.kit.script("%s/stop.sh" % self.name, check=False, timeout=60)
        self.running = False

    def logs(self) -> str:
        if self.name == "prosody":
            return tail(self.kit.run / "prosody" / "prosody.log", 30)
        logs = sorted((self.kit.run / "ejabberd" / "logs").glob("*.log"))
        return "\n".join(tail(p, 20) for p in logs)


@pytest.fixture(scope="session", params=["prosody", "ejabberd"])
def xmpp_server(request, kit):
    require_peer(request.param)
    srv = XmppServer(kit, request.param)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


# ------------------------------------------------------------------------------------ gateway
def stox_binary() -> Path:
    b = os.environ.get("STOX_BIN")
    if b:
        return Path(b)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or (ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "stox"


def credentials_path(state_dir: Path) -> Path:
    """The [access] credentials file of a run (written by the gateway fixture)."""
    return state_dir.parent / "sip-users"


def tls_dir(state_dir: Path) -> Path:
    """The certificates of a run (tls_peer.certs: CA, gateway, TLS UAS)."""
    return state_dir.parent / "tls"


def render_config(server_name: str, state_dir: Path, relay: Optional[str] = None, offer_tls: bool = False) -> str:
    tls = tls_dir(state_dir)
    return f"""# rendered by integration/conftest.py for the {server_name} run
[component]
jid = "{COMPONENT}"
server = "127.0.0.1:{COMPONENT_PORT}"
secret = "secret"
ping_interval_secs = 5
reconnect_max_secs = {RECONNECT_MAX_SECS}

[sip]
listen = ["udp:127.0.0.1:{GW_PORT}", "tcp:127.0.0.1:{GW_PORT}", "tls:127.0.0.1:{GW_TLS_PORT}"]
outbound_proxy = "sip:127.0.0.1:{KAMAILIO_PORT}"
max_held_bytes = {MAX_HELD_BYTES}

[sip.tls]
cert_file = "{tls / 'gw.crt'}"
key_file = "{tls / 'gw.key'}"
ca_file = "{tls / 'ca.crt'}"

[sip.routes]
"{UAS_OK_DOMAIN}" = "sip:127.0.0.1:{UAS_OK_PORT}"
"{UAS_404_DOMAIN}" = "sip:127.0.0.1:{UAS_404_PORT}"
"{UAS_CODE_DOMAIN}" = "sip:127.0.0.1:{UAS_CODE_PORT}"
"{UAS_TCP_DOMAIN}" = "sip:127.0.0.1:{UAS_TCP_PORT};transport=tcp"
"{PJSUA_DOMAIN}" = "sip:127.0.0.1:{PJSUA_PORT}"
"{MSRP_DOMAIN}" = "sip:127.0.0.1:{MSRP_UA_PORT}"
"{MSRP_PAGE_DOMAIN}" = "sip:127.0.0.1:{MSRP_UA_PORT}"
"{BARESIP_FB_DOMAIN}" = "sip:127.0.0.1:{BARESIP_FB[0]}"
"{TLS_UAS_DOMAIN}" = "sip:127.0.0.1:{TLS_UAS_PORT};transport=tls"
"{BARESIP_TLS_DOMAIN}" = "sip:127.0.0.1:{BARESIP_TLS[0] + 1};transport=tls"
"{CALL_DOMAIN}" = "sip:127.0.0.1:{BARESIP_CALL[0]}"
"{CALL_MANUAL_DOMAIN}" = "sip:127.0.0.1:{BARESIP_CALL_MANUAL[0]}"
"{SINK_DOMAIN}" = "sip:127.0.0.1:{SINK_PORT}"
"{PLAIN_DOMAIN}" = "sip:127.0.0.1:{BARESIP_PLAIN[0]}"
"{FOCUS_DOMAIN}" = "sip:127.0.0.1:{FOCUS_PORT}"

[addresses]
xmpp_domains = ["{XMPP_DOMAIN}"]
sip_domain = "127.0.0.1"

[messages]
inbound_type = "chat"
bounce_window_ms = {BOUNCE_WINDOW_MS}

[presence]
state_dir = "{state_dir}"

[chat]
mode = "page"
msrp_listen = "127.0.0.1:{GW_MSRP_PORT}"
idle_timeout_secs = {CHAT_IDLE_SECS}
{'relay = "%s"' % relay if relay else 'msrps_listen = "127.0.0.1:%d"' % GW_MSRPS_PORT}
offer_tls = {'true' if offer_tls else 'false'}

[chat.domains]
"{MSRP_DOMAIN}" = "session"
"{BARESIP_FB_DOMAIN}" = "auto"

[calls]
ring_timeout_secs = {CALL_RING_SECS}

[muc]
services = ["{MUC_DOMAIN}"]
sip_room_domains = ["{FOCUS_DOMAIN}"]

[access]
sip_trusted = ["127.0.0.1"]
sip_untrusted = "challenge"
sip_credentials_file = "{credentials_path(state_dir)}"

[admin]
jids = ["alice@{XMPP_DOMAIN}"]

[metrics]
listen = "127.0.0.1:{METRICS_PORT}"
"""


def udp_port_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tcp_port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Gateway:
    ONLINE = "component online"

    def __init__(self, kit: Kit, server_name: str):
        self.kit = kit
        self.server_name = server_name
        self.dir = kit.run / ("stox-" + server_name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "stox.toml"
        self.log = self.dir / "stox.log"
        # Kept across restarts of this run (restart tests rely on it), fresh for each run.
        self.state_dir = self.dir / "state"
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.relay: Optional[str] = None   # [chat] relay for the next start (MSRP relay tests)
        self.offer_tls = False             # [chat] offer_tls for the next start (test_msrp_tls.py)

    def start(self):
        binary = stox_binary()
        if not binary.exists():
            pytest.fail("stox binary %s not found: build it first (cargo build; integration/run.sh does)" % binary,
                        pytrace=False)
        require_peer("sipsak")
        if not udp_port_free(GW_PORT) or tcp_port_open(GW_PORT):
            pytest.fail("127.0.0.1:%d is already in use (a stox or peer left running?)" % GW_PORT, pytrace=False)
        credentials_path(self.state_dir).write_text("# [access] digest users\n%s:%s\n" % (
            SIP_AUTH_USER, SIP_AUTH_PASSWORD))
        tls_peer.certs(tls_dir(self.state_dir))
        self.config.write_text(render_config(self.server_name, self.state_dir, self.relay, self.offer_tls))
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "stox=debug")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log lines (tracing-subscriber honours NO_COLOR)
        env.pop("STOX_COMPONENT_SECRET", None)
        online_before = self.online_count_total()
        logf = open(self.log, "ab")
        logf.write(b"\n===== [harness] starting stox (%s run, start #%d) =====\n" % (self.server_name.encode(), self.starts + 1))
        logf.flush()
        self.proc = subprocess.Popen([str(binary), "run", "--config", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=self.dir,
                                     start_new_session=True)
        logf.close()
        _CLEANUPS.append(self.stop)
        self.starts += 1
        self.wait_ready(timeout=30, online_before=online_before)

    def reload(self, text: str, timeout: float = 10) -> str:
        """Write `text` as the config file, send SIGHUP, and return the reload's log line."""
        before = self.log_text().count("configuration reload")
        self.config.write_text(text)
        self.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            lines = [l for l in self.log_text().splitlines() if "configuration reload" in l]
            if len(lines) > before:
                return lines[-1]
            time.sleep(0.1)
        pytest.fail("no reload log line within %ss after SIGHUP; log tail:\n%s" % (timeout, self.tail(40)),
                    pytrace=False)

    def rendered(self) -> str:
        """The config this run starts with."""
        return render_config(self.server_name, self.state_dir, self.relay, self.offer_tls)

    def log_text(self) -> str:
        return read_log(self.log)

    def online_count_total(self) -> int:
        return self.log_text().count(self.ONLINE)

    def wait_ready(self, timeout: float, online_before: int = 0):
        """Ready = process alive, a new 'component online' log line, and OPTIONS answered 200."""
        end = time.monotonic() + timeout
        online = sip = False
        while time.monotonic() < end:
            if not self.alive():
                pytest.fail("stox exited during startup (exit code %s); log tail:\n%s"
                            % (self.proc.returncode, tail(self.log, 60)), pytrace=False)
            online = online or self.online_count_total() > online_before
            sip = sip or sipsak_ok()
            if online and sip:
                return
            time.sleep(0.2)
        pytest.fail("stox not ready within %ss (log line '%s': %s, sipsak OPTIONS 200 on :%d: %s); log tail:\n%s"
                    % (timeout, self.ONLINE, "yes" if online else "NO", GW_PORT, "yes" if sip else "NO",
                       tail(self.log, 60)), pytrace=False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        terminate(self.proc)
        self.proc = None

    def tail(self, n: int = 60) -> str:
        return tail(self.log, n)


@pytest.fixture(scope="session")
def gateway(kit, xmpp_server):
    gw = Gateway(kit, xmpp_server.name)
    try:
        gw.start()
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def stox(gateway, xmpp_server, request):
    """The running gateway; a test during which the stox process dies fails."""
    if not xmpp_server.running:                      # an earlier test left the server stopped
        before = gateway.online_count_total()
        xmpp_server.start()
        if gateway.alive():
            gateway.wait_ready(timeout=20, online_before=before)
    if not gateway.alive():                          # an earlier test crashed it: fresh start
        code = gateway.proc.returncode if gateway.proc else None
        print("[stox-it] stox was not running (exit code %s); restarting it for %s" % (code, request.node.name))
        gateway.stop()
        gateway.start()
    yield gateway
    if not gateway.alive():
        pytest.fail("stox process died during %s (exit code %s); log tail:\n%s"
                    % (request.node.name, gateway.proc.returncode, gateway.tail(80)), pytrace=False)


# ------------------------------------------------------------------------------- SIP peers
class SippPeers:
    def __init__(self, ok: SippUas, notfound: SippUas, code: SippUas, tcp: SippUas):
        self.ok = ok
        self.notfound = notfound
        self.code = code
        self.tcp = tcp
        self.all = (ok, notfound, code, tcp)


@pytest.fixture(scope="session")
def sipp_uas(kit):
    require_peer("sipp")
    ok = SippUas(kit, UAS_OK_PORT, "uas_message.xml")
    nf = SippUas(kit, UAS_404_PORT, "uas_message_404.xml")
    code = SippUas(kit, UAS_CODE_PORT, "uas_message_code.xml")
    tcp = SippUas(kit, UAS_TCP_PORT, "uas_message.xml", transport="tcp")
    peers = SippPeers(ok, nf, code, tcp)
    _CLEANUPS.append(tcp.stop)
    try:
        for u in peers.all:
            u.start()
        yield peers
    finally:
        for u in peers.all:
            u.stop()


@pytest.fixture
def uas(sipp_uas):
    for u in sipp_uas.all:
        if not u.alive():
            pytest.fail("SIPp UAS on :%d is not running any more; its log:\n%s"
                        % (u.port, tail(u.kit.run / "sipp" / ("uas-%d.log" % u.port))), pytrace=False)
    return sipp_uas


class Baresip:
    def __init__(self, kit: Kit, name: str, ctrl_port: int):
        self.kit = kit
        self.name = name
        self.ctrl_port = ctrl_port
        self.log = kit.run / "baresip" / name / "baresip.log"

    def ctrl(self, *commands: str, listen: float = 1.0) -> str:
        p = subprocess.run([sys.executable, str(self.kit.peers / "scripts" / "baresip_ctrl.py"), str(self.ctrl_port),
                            *commands, "--listen", str(listen)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return p.stdout.decode(errors="replace")

    def log_text(self) -> str:
        return read_log(self.log)


@pytest.fixture(scope="session")
def baresip(kit):
    """Kamailio + baresip bob (sip:bob@127.0.0.1 = JID bob@sip.localhost), whose current contact is
    sip:alice@localhost (the XMPP user alice, reached through Kamailio -> gateway)."""
    require_peer("kamailio")
    require_peer("baresip")
    try:
        kit.script("kamailio/start.sh")
        kit.script("baresip/start.sh", "bob", env={"BARESIP_CONTACTS": "sip:alice@%s" % XMPP_DOMAIN})
        yield Baresip(kit, "bob", 4442)
    finally:
        kit.script("baresip/stop.sh", "bob", check=False)
        kit.script("kamailio/stop.sh", check=False)


@pytest.fixture
def ua(stox):
    """msrp_ua.py as romeo (SIP 5131, MSRP 2861), fresh per test; its RFC checks must find nothing."""
    from msrp_ua import MsrpUa
    u = MsrpUa(sip_port=MSRP_UA_PORT, msrp_port=MSRP_UA_MSRP_PORT, user="romeo").start()
    yield u
    u.stop()
    assert u.violations == [], "the MSRP peer saw RFC violations from stox:\n  " + "\n  ".join(u.violations)


# ------------------------------------------------------------------------------- XMPP clients
@pytest.fixture
def alice(stox):
    c = XmppClient("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT).connect()
    yield c
    c.close()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


# ------------------------------------------------------------------- failure reports: add logs
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "setup", "teardown"):
        gw = item.funcargs.get("stox") or item.funcargs.get("gateway")
        if isinstance(gw, Gateway):
            rep.sections.append(("stox log (tail)", gw.tail(80)))


MODULE_ORDER = ["test_component", "test_sip_basics", "test_im_xmpp_to_sip", "test_im_sip_to_xmpp", "test_addresses",
                "test_presence", "test_burst",
                "test_robustness", "test_restart"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "one_server(name): run against this XMPP server only (the other's run is deselected, not "
        "skipped): for the minute-long soak tests, whose measure (stox's memory and answers under SIP load) does "
        "not depend on the XMPP server; a second run would add a minute to CI")


def pytest_collection_modifyitems(session, config, items):
    """All Prosody tests first, then all ejabberd tests (each server is started once); within a server,
    the disruptive modules (fuzzing, server restart) come last. A test marked one_server runs once."""
    other = []
    for item in items:
        m = item.get_closest_marker("one_server")
        cs = getattr(item, "callspec", None)
        server = cs.params.get("xmpp_server") if cs else None
        if m is not None and server is not None and server != m.args[0]:
            other.append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [i for i in items if i not in other]

    def key(item):
        cs = getattr(item, "callspec", None)
        p = cs.params.get("xmpp_server") if cs else None
        mod = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        rank = MODULE_ORDER.index(mod) if mod in MODULE_ORDER else len(MODULE_ORDER)
        return ({"prosody": 0, "ejabberd": 1}.get(p, -1), rank)
    items.sort(key=key)

