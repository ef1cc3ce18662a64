"""The admin snippets of the README (docs/prosody.cfg.lua, docs/ejabberd.yml) on real servers, and
the failure modes of its troubleshooting table.

Each server here is our OWN Prosody or ejabberd, apart from the suite's (other ports, its own run
directory, its own ejabberd node), so this module can run next to nothing else but needs no other
fixture. Its config is a minimal base written here plus the snippet file, with only the visible
substitutions listed in PROSODY_SUBST / EJABBERD_SUBST (each must match exactly once, so an edit of
the snippet that the test does not know about fails here). stox runs against it with the same
domain, secret and port, and a c2s user talks to the component through the server.

Run: flock <the suite's lock> integration/run.sh -k test_server_snippets -x
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

from conftest import _CLEANUPS, read_log, require_peer, stox_binary, tail, terminate
from sip_helper import parse_sip, sip_transaction
from xmpp_helper import XmppClient

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Our own servers: none of these may be a port of the rest of the suite (5222, 5347, 5210, 5060,
# 5070, 2855, ...), nor the 15xxx the peer kit's README suggests for a second server.
C2S_PORT = 25222
COMPONENT_PORT = 25347
EJABBERD_DIST_PORT = 25210
EJABBERD_NODE = "stoxsnippets@localhost"
PITFALL_C2S_PORT = 25232        # the Prosody of the misplaced-option test (runs beside the other)
PITFALL_COMPONENT_PORT = 25357
STOX_SIP_PORT = 25070
STOX_MSRP_PORT = 25855
UDP_ONLY_PORT = 25096           # a SIP peer without TCP
UDP_ONLY_DOMAIN = "udponly.test"

DOMAIN = "localhost"            # the XMPP users' domain: alice@localhost
COMPONENT = "sip.localhost"     # stands for sip.example.com
SECRET = "snippet-" + uuid.uuid4().hex  # stands for "a long random secret"
USERS = {"alice": "alicepass"}
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"

# The only changes made to the snippets: (old, new), each old text occurs exactly once.
PROSODY_SUBST = [
    ('Component "sip.example.com"', 'Component "%s"' % COMPONENT),
    ('component_secret = "a long random secret"', 'component_secret = "%s"' % SECRET),
    ("component_ports = { 5347 }", "component_ports = { %d }" % COMPONENT_PORT),
    ('-- modules_disabled = { "s2s" }', 'modules_disabled = { "s2s" }'),  # our test server does not federate
]
EJABBERD_SUBST = [
    ('"sip.example.com":', '"%s":' % COMPONENT),
    ('password: "a long random secret"', 'password: "%s"' % SECRET),
    ("port: 5347", "port: %d" % COMPONENT_PORT),
]


def substitute(text: str, subst: list[tuple[str, str]], name: str) -> str:
    for old, new in subst:
        n = text.count(old)
        assert n == 1, "docs/%s: expected %r exactly once (the test substitutes it), found it %d times" % (
            name, old, n)
        text = text.replace(old, new)
    return text


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def require_free(*ports: int):
    busy = [p for p in ports if port_open(p)]
    if busy:
        pytest.fail("TCP port(s) %s on 127.0.0.1 already in use: a server from an earlier run left over?"
                    % ", ".join(map(str, busy)), pytrace=False)


def wait_until(pred, timeout: float, what: str, log=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    pytest.fail("timeout after %ss waiting for %s%s" % (timeout, what, ("\n" + log()) if log else ""),
                pytrace=False)


def new_run_dir(name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix="stox-snippets-%s-" % name))
    os.chmod(d, 0o755)  # the servers run as their own users and must traverse it
    return d


def as_root() -> bool:
    return os.geteuid() == 0


# ------------------------------------------------------------------------------------ Prosody
PROSODY_BASE_GLOBAL = """\
-- minimal base of the snippet test (integration/test_server_snippets.py)
pidfile = "{run}/prosody.pid"
data_path = "{run}/data"
log = {{ info = "{run}/prosody.log" }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix" }}
authentication = "internal_plain"
certificates = "{run}/certs"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
c2s_ports = {{ {c2s} }}
c2s_interfaces = {{ "127.0.0.1" }}
"""
PROSODY_BASE_HOSTS = """
VirtualHost "{domain}"
"""


class Prosody:
    name = "prosody"

    def __init__(self, run: Path, c2s: int = C2S_PORT, component_port: int = COMPONENT_PORT):
        self.run = run
        self.c2s = c2s
        self.component_port = component_port
        self.config = run / "prosody.cfg.lua"
        self.log = run / "prosody.log"
        self.proc: Optional[subprocess.Popen] = None

    def write_config(self, snippet_part: str):
        for d in ("data", "certs"):
            (self.run / d).mkdir(exist_ok=True)
        self.config.write_text(PROSODY_BASE_GLOBAL.format(run=self.run, c2s=self.c2s) + "\n" + snippet_part
                               + PROSODY_BASE_HOSTS.format(domain=DOMAIN))
        if as_root():
            shutil.chown(self.run, "prosody", "prosody")
            for p in self.run.rglob("*"):
                shutil.chown(p, "prosody", "prosody")

    def _as_prosody(self) -> list[str]:
        # Prosody refuses to run as root; setpriv exec()s, so the PID we get is Prosody's own.
        return ["setpriv", "--reuid=prosody", "--regid=prosody", "--init-groups"] if as_root() else []

    def prosodyctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as_prosody(), "prosodyctl", "--config", str(self.config), *args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, text=True)

    def start(self):
        require_free(self.c2s, self.component_port)
        for user, password in USERS.items():
            r = self.prosodyctl("register", user, DOMAIN, password)
            assert r.returncode == 0, "prosodyctl register %s failed:\n%s" % (user, r.stdout)
        mark = len(self.log_text())
        out = open(self.run / "stdout.log", "ab")
        self.proc = subprocess.Popen([*self._as_prosody(), "prosody", "--config", str(self.config), "-F"],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        _CLEANUPS.append(self.stop)
        wait_until(lambda: self.proc.poll() is not None or "Activated service 'component'" in self.log_text()[mark:],
                   20, "Prosody to open its listeners", self.tail)
        if self.proc.poll() is not None:
            pytest.fail("Prosody exited (code %s):\n%s" % (self.proc.returncode, self.tail()), pytrace=False)
        wait_until(lambda: port_open(self.c2s), 10, "Prosody c2s :%d" % self.c2s, self.tail)

    def stop(self):
        terminate(self.proc, 10)
        self.proc = None

    def log_text(self) -> str:
        return read_log(self.log)

    def tail(self, n: int = 30) -> str:
        return "Prosody log:\n" + tail(self.log, n) + "\nstdout:\n" + tail(self.run / "stdout.log", 10)


# ----------------------------------------------------------------------------------- ejabberd
EJABBERD_BASE = """\
# minimal base of the snippet test (integration/test_server_snippets.py)
loglevel: info
hosts:
  - "{domain}"
auth_method: internal
listen:
  -
    port: {c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
"""
# ejabberdctl settings of our node: a fixed distribution port (no epmd at all), loopback only
EJABBERDCTL_CFG = """\
ERLANG_NODE={node}
ERL_DIST_PORT={dist}
INET_DIST_INTERFACE=127.0.0.1
EJABBERD_PID_PATH={run}/ejabberd.pid
"""
# Erlang resolver: the node name's "localhost" from here, without DNS
INETRC = '{lookup, [file, native]}.\n{host, {127,0,0,1}, ["localhost"]}.\n'


def _cmdline(pid: int) -> str:
    try:
        return Path("/proc/%d/cmdline" % pid).read_bytes().decode(errors="replace")
    except OSError:
        return ""


class Ejabberd:
    name = "ejabberd"

    def __init__(self, run: Path):
        self.run = run
        self.config = run / "ejabberd.yml"
        self.log = run / "logs" / "ejabberd.log"
        self.pidfile = run / "ejabberd.pid"
        self.started = False

    def write_config(self, snippet: str):
        # The snippet is appended as is, with its own "listen:" key: ejabberd 23.01 merges it into
        # the base's listen list (the README says so; this proves it).
        for d in ("db", "logs"):
            (self.run / d).mkdir(exist_ok=True)
        self.config.write_text(EJABBERD_BASE.format(domain=DOMAIN, c2s=C2S_PORT) + snippet)
        (self.run / "ejabberdctl.cfg").write_text(
            EJABBERDCTL_CFG.format(node=EJABBERD_NODE, dist=EJABBERD_DIST_PORT, run=self.run))
        (self.run / "inetrc").write_text(INETRC)
        if as_root():  # ejabberdctl run as root switches to user ejabberd: it must own everything
            shutil.chown(self.run, "ejabberd", "ejabberd")
            for p in self.run.rglob("*"):
                shutil.chown(p, "ejabberd", "ejabberd")

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        cmd = ["ejabberdctl", "--config-dir", str(self.run), "--config", str(self.config),
               "--ctl-config", str(self.run / "ejabberdctl.cfg"), "--logs", str(self.run / "logs"),
               "--spool", str(self.run / "db"), *args]
        try:
            return subprocess.run(cmd, cwd=self.run, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=timeout, text=True)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(cmd, -1, "timed out after %ss: %s" % (timeout, e.stdout or ""), "")

    def pid(self) -> Optional[int]:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        p = self.pid()
        if p is None:
            return False
        try:
            os.kill(p, 0)
            return True
        except OSError:
            return False

    def start(self):
        require_free(C2S_PORT, COMPONENT_PORT, EJABBERD_DIST_PORT)
        mark = len(self.log_text())
        r = self.ctl("start")
        assert r.returncode == 0, "ejabberdctl start failed:\n%s" % r.stdout
        self.started = True
        _CLEANUPS.append(self.stop)
        # 'started' would wait forever for a node that died at boot (a port in use, a config error):
        # poll the listeners and the log instead.
        dead = ("Failed to start ejabberd application", "Invalid value of option")
        wait_until(lambda: any(d in self.log_text()[mark:] for d in dead)
                   or (port_open(C2S_PORT) and port_open(COMPONENT_PORT)), 60, "ejabberd to listen", self.tail)
        if any(d in self.log_text()[mark:] for d in dead):
            pytest.fail("ejabberd did not start:\n%s" % self.tail(), pytrace=False)
        for user, password in USERS.items():
            r = self.ctl("register", user, DOMAIN, password)
            assert r.returncode == 0 or "already registered" in r.stdout, "register %s: %s" % (user, r.stdout)

    def stop(self):
        if not self.started:
            return
        pid = self.pid()
        self.ctl("stop", timeout=20)
        self.ctl("stopped", timeout=20)
        if pid is not None and "beam" in _cmdline(pid):  # 'stop' did not end it: our recorded PID
            os.kill(pid, signal.SIGKILL)
        self.started = False

    def log_text(self) -> str:
        return read_log(self.log)

    def tail(self, n: int = 30) -> str:
        return "ejabberd log:\n" + tail(self.log, n)


# --------------------------------------------------------------------------------------- stox
STOX_CONFIG = """\
[component]
jid = "{jid}"
server = "127.0.0.1:{port}"
secret = "{secret}"
ping_interval_secs = 5
reconnect_max_secs = 2

[sip]
listen = ["udp:127.0.0.1:{sip}", "tcp:127.0.0.1:{sip}"]

[sip.routes]
"{udp_only_domain}" = "sip:127.0.0.1:{udp_only_port}"

[addresses]
xmpp_domains = ["{domain}"]
sip_domain = "127.0.0.1"

[presence]
state_dir = "{state}"

[chat]
mode = "page"
msrp_listen = "127.0.0.1:{msrp}"
"""


class Stox:
    ONLINE = "component online"

    def __init__(self, run: Path, jid: str = COMPONENT, secret: str = SECRET, port: int = COMPONENT_PORT):
        self.run = run
        self.config = run / ("stox-%s.toml" % uuid.uuid4().hex[:6])
        self.log = self.config.with_suffix(".log")
        self.config.write_text(STOX_CONFIG.format(
            jid=jid, port=port, secret=secret, sip=STOX_SIP_PORT, udp_only_domain=UDP_ONLY_DOMAIN,
            udp_only_port=UDP_ONLY_PORT, domain=DOMAIN, state=run / "stox-state", msrp=STOX_MSRP_PORT))
        self.proc: Optional[subprocess.Popen] = None

    def start(self):
        binary = stox_binary()
        if not binary.exists():
            pytest.fail("stox binary %s not found (integration/run.sh builds it)" % binary, pytrace=False)
        require_free(STOX_SIP_PORT, STOX_MSRP_PORT)
        env = dict(os.environ, RUST_LOG="stox=info", NO_COLOR="1")
        env.pop("STOX_COMPONENT_SECRET", None)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([str(binary), "run", "--config", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.run,
                                     start_new_session=True)
        out.close()
        _CLEANUPS.append(self.stop)
        wait_until(lambda: self.proc.poll() is not None or "stox started" in self.log_text(), 20,
                   "stox to start", self.tail)
        assert self.proc.poll() is None, "stox exited:\n%s" % self.tail()
        return self

    def wait_online(self, count: int = 1, timeout: float = 20):
        wait_until(lambda: self.log_text().count(self.ONLINE) >= count, timeout,
                   "stox log line %r #%d" % (self.ONLINE, count), self.tail)

    def stop(self):
        terminate(self.proc, 10)
        self.proc = None

    def log_text(self) -> str:
        return read_log(self.log)

    def tail(self, n: int = 30) -> str:
        return "stox log:\n" + tail(self.log, n)


class stox_running:
    """with stox_running(run, ...) as gw: a stox process, stopped at the end whatever happens."""

    def __init__(self, run: Path, **kw):
        self.gw = Stox(run, **kw)

    def __enter__(self) -> Stox:
        try:
            return self.gw.start()
        except BaseException:
            self.gw.stop()
            raise

    def __exit__(self, *exc):
        self.gw.stop()


# -------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", params=["prosody", "ejabberd"])
def server(request):
    """Our own Prosody or ejabberd, configured with the base + the README snippet."""
    require_peer(request.param)
    run = new_run_dir(request.param)
    if request.param == "prosody":
        srv = Prosody(run)
        srv.write_config(substitute((DOCS / "prosody.cfg.lua").read_text(), PROSODY_SUBST, "prosody.cfg.lua"))
    else:
        srv = Ejabberd(run)
        srv.write_config(substitute((DOCS / "ejabberd.yml").read_text(), EJABBERD_SUBST, "ejabberd.yml"))
    failed_before = request.session.testsfailed
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if request.session.testsfailed == failed_before and not os.environ.get("STOX_IT_KEEP"):
            shutil.rmtree(run, ignore_errors=True)
        else:
            print("\n[stox-it] %s snippet-test logs kept in %s" % (request.param, run))


@pytest.fixture
def alice(server):
    c = XmppClient("alice@%s" % DOMAIN, USERS["alice"], port=C2S_PORT).connect()
    yield c
    c.close()


def disco_info(client: XmppClient, timeout: float = 10):
    return client.iq(COMPONENT, "get", "<query xmlns='%s'/>" % NS_DISCO_INFO, timeout=timeout)


def assert_gateway_answer(kind: str, iq: dict, server):
    assert kind == "result", "disco#info to %s through our %s: expected the component's result, got %s:\n%s" % (
        COMPONENT, server.name, kind, iq["raw"])
    assert iq["from"] == COMPONENT, "answer from %r, expected %r" % (iq["from"], COMPONENT)
    query = iq["xml"].find("{%s}query" % NS_DISCO_INFO)
    identities = [i.get("category") for i in query.findall("{%s}identity" % NS_DISCO_INFO)] if query is not None else []
    assert "gateway" in identities, "not stox's answer (no gateway identity): %s" % iq["raw"]


# ----------------------------------------------------------------------------------- tests
def test_comp_1_2_7_snippet_links_stox_end_to_end(server, alice):
    """The snippet as the README shows it (domain, secret, port substituted) attaches stox; a c2s
    user's disco#info reaches the component and its answer comes back."""
    with stox_running(server.run) as gw:
        gw.wait_online()
        kind, iq = disco_info(alice)
        assert_gateway_answer(kind, iq, server)
        kind, ping = alice.iq(COMPONENT, "get", "<ping xmlns='urn:xmpp:ping'/>")
        assert kind == "result", "XEP-0199 ping to the component: %s\n%s" % (kind, ping["raw"])
    if server.name == "prosody":
        # Only 127.0.0.1: Prosody's default for the component port is 127.0.0.1 AND ::1, so this line
        # proves that the global lines of the snippet were read.
        lines = ["Activated service 'component' on [127.0.0.1]:%d\n" % COMPONENT_PORT,
                 "External component successfully authenticated"]
    else:
        lines = ["Start accepting TCP connections at 127.0.0.1:%d for ejabberd_service" % COMPONENT_PORT,
                 "Accepted external component handshake authentication for %s from 127.0.0.1" % COMPONENT]
    for line in lines:  # ejabberd writes its log a moment later
        wait_until(lambda: line in server.log_text(), 5, "%s log line %r" % (server.name, line), server.tail)
    if server.name == "prosody":
        assert "Activated service 's2s'" not in server.log_text(), "s2s listener despite modules_disabled"


def test_comp_1_users_get_an_error_while_stox_is_not_attached(server, alice):
    """What XMPP users see when the component is configured but stox is not attached, and that it
    all works as soon as stox attaches."""
    kind, iq = disco_info(alice, timeout=15)
    assert kind == "error", "disco#info to an unattached component: expected an error, got %s:\n%s" % (
        kind, iq["raw"])
    want = {"prosody": "remote-server-timeout", "ejabberd": "remote-server-not-found"}[server.name]
    assert iq["error_condition"] == want, "%s answered %s, the README says %s:\n%s" % (
        server.name, iq["error_condition"], want, iq["raw"])
    if server.name == "prosody":
        assert "Component unavailable" in iq["raw"], iq["raw"]
        line = "%s:component\twarn\tComponent not connected, bouncing error for: <iq " % COMPONENT
    else:
        line = "Failed to establish outbound s2s connection %s -> %s" % (DOMAIN, COMPONENT)
    wait_until(lambda: line in server.log_text(), 5, "%s log line %r" % (server.name, line), server.tail)
    # ejabberd has just tried s2s to the domain and "bounces for 220 seconds": the component route
    # must win all the same once stox attaches
    with stox_running(server.run) as gw:
        gw.wait_online()
        kind, iq = disco_info(alice)
        assert_gateway_answer(kind, iq, server)


def test_comp_2_wrong_secret(server):
    """Both sides' logs for a wrong component secret; stox keeps retrying (the README quotes them)."""
    with stox_running(server.run, secret="not-" + SECRET) as gw:
        wait_until(lambda: "attempt=2 " in gw.log_text(), 15, "a second connect attempt", gw.tail)
        wait_until(lambda: server.name == "prosody" or "Failed external component" in server.log_text(), 5,
                   "ejabberd's log line", server.tail)
        log = gw.log_text()
    assert gw.ONLINE not in log, log
    assert re.search(r"WARN stox::xmpp::link: component connect failed attempt=\d+ error=handshake refused: "
                     r"<error xmlns='http://etherx.jabber.org/streams'><not-authorized ", log), gw.tail()
    slog = server.log_text()
    if server.name == "prosody":
        assert "Given token does not match calculated token" in log, gw.tail()
        assert "Component authentication failed for %s" % COMPONENT in slog, server.tail()
    else:
        assert ("Failed external component handshake authentication for %s from 127.0.0.1: not authorized"
                % COMPONENT) in slog, server.tail()


def test_comp_1_component_domain_not_configured(server):
    """stox's jid is not a component domain of the server."""
    other = "sip2." + DOMAIN
    with stox_running(server.run, jid=other) as gw:
        wait_until(lambda: "attempt=2 " in gw.log_text(), 15, "a second connect attempt", gw.tail)
        wait_until(lambda: server.name == "prosody" or "is unconfigured" in server.log_text(), 5,
                   "ejabberd's log line", server.tail)
        log = gw.log_text()
    slog = server.log_text()
    if server.name == "prosody":
        assert "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns=" \
               "'urn:ietf:params:xml:ns:xmpp-streams'>%s does not match any configured external components" \
               % other in log, gw.tail()
        assert "%s does not match any configured external components" % other in slog, server.tail()
    else:
        assert "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>" in log, gw.tail()
        assert "Domain %s is unconfigured for external component from 127.0.0.1" % other in slog, server.tail()


def raw_component(port: int, domain: str, secret: str) -> tuple[socket.socket, bytes]:
    """An XEP-0114 connection of our own (not stox), after the handshake."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
               "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>" % domain).encode())
    buf = b""
    while not re.search(rb"<stream:stream[^>]*>", buf):
        chunk = s.recv(4096)
        assert chunk, "server closed the component stream: %r" % buf
        buf += chunk
    sid = re.search(rb"<stream:stream[^>]*\sid=['\"]([^'\"]+)", buf).group(1)
    s.sendall(b"<handshake>%s</handshake>" % hashlib.sha1(sid + secret.encode()).hexdigest().encode())
    buf = b""
    while b"handshake" not in buf:
        chunk = s.recv(4096)
        assert chunk, "handshake refused: %r" % buf
        buf += chunk
    return s, buf


def read_until_closed(s: socket.socket, timeout: float = 5) -> tuple[bytes, bool]:
    s.settimeout(timeout)
    buf, closed = b"", False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    return buf, closed


def test_comp_1_component_domain_is_a_host_of_the_server(server):
    """The component domain is one of the server's own domains (a VirtualHost / ejabberd host):
    shown with a connection of our own, since stox refuses a jid that is one of its xmpp_domains."""
    s = socket.create_connection(("127.0.0.1", COMPONENT_PORT), timeout=5)
    try:
        s.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                   "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>" % DOMAIN).encode())
        got, closed = read_until_closed(s)
    finally:
        s.close()
    text = got.decode(errors="replace")
    if server.name == "prosody":
        assert "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in text, text
        assert "%s does not match any configured external components" % DOMAIN in text, text
    else:
        assert "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in text, text
        assert "Unable to register route on existing local domain" in text, text
    assert closed, "the stream stayed open: %r" % text


def test_comp_3_from_validation_closes_the_component_stream(server):
    """A component may send only from its own domain. stox always does, so a connection of our own
    shows what the server does otherwise: it ends the whole component stream with invalid-from."""
    s, _ = raw_component(COMPONENT_PORT, COMPONENT, SECRET)
    try:
        s.sendall(b"<message from='mallory@%s' to='alice@%s' type='chat'><body>spoofed</body></message>"
                  % (DOMAIN.encode(), DOMAIN.encode()))
        got, closed = read_until_closed(s)
    finally:
        s.close()
    text = got.decode(errors="replace")
    assert "<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" in text, text
    assert closed and "</stream:stream>" in text, "the stream was not closed: %r" % text
    if server.name == "prosody":
        assert "Component tried to send from address &lt;mallory@%s&gt; which is not in domain &lt;%s&gt;" % (
            DOMAIN, COMPONENT) in text, text
        wait_until(lambda: "Component sent stanza with missing or invalid 'from' address" in server.log_text(),
                   5, "Prosody's warning", server.tail)
    else:
        assert "Improper domain part of &apos;from&apos; attribute" in text, text


def test_comp_6_server_restart_stox_reconnects(server):
    """The XMPP server goes away and comes back: stox logs the loss, retries with backoff, and is
    online again without a restart of its own."""
    with stox_running(server.run) as gw:
        gw.wait_online()
        pid = gw.proc.pid
        server.stop()
        wait_until(lambda: "component link lost, reconnecting" in gw.log_text(), 10, "the link loss", gw.tail)
        wait_until(lambda: "error=i/o: Connection refused" in gw.log_text(), 10, "a refused reconnect", gw.tail)
        server.start()
        gw.wait_online(count=2, timeout=15)
        assert gw.proc.poll() is None and gw.proc.pid == pid
        client = XmppClient("alice@%s" % DOMAIN, USERS["alice"], port=C2S_PORT).connect()
        try:
            kind, iq = disco_info(client)
            assert_gateway_answer(kind, iq, server)
        finally:
            client.close()


# ------------------------------------------------------- SIP side: UDP size limit, listen address
class UdpOnlyUas:
    """A SIP peer on UDP only (no TCP listener): answers every request 200, records the bodies."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.bodies: list[bytes] = []
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = parse_sip(data)
            if msg.is_response:
                continue
            self.bodies.append(msg.body)
            head = ["SIP/2.0 200 OK"] + ["Via: %s" % v for v in msg.get_all("via")]
            head += ["From: %s" % msg.get("from"), "To: %s;tag=udponly" % msg.get("to"),
                     "Call-ID: %s" % msg.get("call-id"), "CSeq: %s" % msg.get("cseq"), "Content-Length: 0"]
            self.sock.sendto(("\r\n".join(head) + "\r\n\r\n").encode(), addr)

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def test_im_4_gen_2_large_message_needs_tcp_at_the_sip_peer(server, alice):
    """Requests over 1300 bytes go over TCP (RFC 3261 §18.1.1): a peer without TCP gets the short
    message but the long one fails, and the XMPP sender gets remote-server-not-found."""
    uas = UdpOnlyUas(UDP_ONLY_PORT)
    try:
        with stox_running(server.run) as gw:
            gw.wait_online()
            to = "bob\\40%s@%s" % (UDP_ONLY_DOMAIN, COMPONENT)
            short, long_ = "s" * 500, "L" * 2000
            alice.send_message(to, short, id="short")
            wait_until(lambda: short.encode() in b"".join(uas.bodies), 10, "the short MESSAGE over UDP", gw.tail)
            alice.send_message(to, long_, id="long")
            err = alice.wait_message(lambda m: m.id == "long" and m.type == "error", timeout=15,
                                     what="an error for the long message")
    finally:
        uas.close()
    print("error for the long message:", err.short())
    assert err.error_condition == "remote-server-not-found", err.short()
    assert "transport=tcp" in (err.error_text or ""), err.short()
    assert long_.encode() not in b"".join(uas.bodies)


def test_gen_2_sip_listen_address_is_where_peers_must_send():
    """sip.listen binds addresses, not the host: 127.0.0.1 (the default) answers, another address of
    the same machine (127.0.0.2 here) gets nothing over UDP and a refused connection over TCP. (SIP
    only: the XMPP link does not matter here.)"""
    run = new_run_dir("listen")
    with stox_running(run) as gw:
        assert "sip=[127.0.0.1:%d, 127.0.0.1:%d]" % (STOX_SIP_PORT, STOX_SIP_PORT) in gw.log_text(), gw.tail()
        ok = sip_transaction("OPTIONS", "sip:127.0.0.1:%d" % STOX_SIP_PORT, port=STOX_SIP_PORT, timeout=5)
        assert ok is not None and ok.status == 200, "OPTIONS to the listen address: %r" % (ok and ok.start)
        lost = sip_transaction("OPTIONS", "sip:127.0.0.2:%d" % STOX_SIP_PORT, host="127.0.0.2",
                               port=STOX_SIP_PORT, timeout=3)
        assert lost is None, "an answer on 127.0.0.2: %s" % lost.start
        with pytest.raises(ConnectionRefusedError):
            sip_transaction("OPTIONS", "sip:127.0.0.2:%d" % STOX_SIP_PORT, transport="tcp", host="127.0.0.2",
                            port=STOX_SIP_PORT, timeout=3)
    shutil.rmtree(run, ignore_errors=True)


# ----------------------------------------------------------------- Prosody: misplaced options
def test_comp_1_prosody_option_below_a_host_line_is_ignored():
    """The pitfall the Prosody snippet warns about: component_interfaces written below a Component
    line is an option of that component, the listener never sees it and Prosody says nothing at
    start; `prosodyctl check config` names it."""
    require_peer("prosody")
    run = new_run_dir("pitfall")
    srv = Prosody(run, c2s=PITFALL_C2S_PORT, component_port=PITFALL_COMPONENT_PORT)
    snippet = (DOCS / "prosody.cfg.lua").read_text()
    component_block = snippet[snippet.index('Component "sip.example.com"'):]
    # Keep the port global (a misplaced port would fall back to 5347, the suite's port); misplace
    # only the interface, and make it one that is not Prosody's default.
    part = ("component_ports = { %d }\n" % PITFALL_COMPONENT_PORT + 'modules_disabled = { "s2s" }\n\n'
            + substitute(component_block, PROSODY_SUBST[:2], "prosody.cfg.lua (Component block)")
            + 'component_interfaces = { "127.0.0.2" }\n')
    srv.write_config(part)
    try:
        check = srv.prosodyctl("check", "config")
        assert "You need to move the following option: component_interfaces" in check.stdout, check.stdout
        srv.start()
        line = re.search(r"Activated service 'component' on (.*)", srv.log_text())
        assert line, srv.tail()
        # Prosody's default for the component port (127.0.0.1 and, with IPv6, ::1): the option was not read
        bound = line.group(1).split(", ")
        assert "[127.0.0.1]:%d" % PITFALL_COMPONENT_PORT in bound and not any("127.0.0.2" in b for b in bound), \
            srv.tail()
        assert not port_open(PITFALL_COMPONENT_PORT, "127.0.0.2")
    finally:
        srv.stop()
    shutil.rmtree(run, ignore_errors=True)
