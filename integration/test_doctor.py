"""`stox doctor` against the real XMPP servers: what Prosody and ejabberd answer to the XEP-0114
handshake (wrong secret, unknown component domain, the domain already held by the running
gateway, and the gateway's own config with the gateway stopped), and SIP/MSRP ports held by the
running gateway."""
import re
import socket
import subprocess
import tempfile
from pathlib import Path

from conftest import stox_binary
from topology import COMPONENT, COMPONENT_PORT, GW_MSRP_PORT, GW_MSRPS_PORT, GW_PORT, XMPP_DOMAIN

NS_PING = "urn:xmpp:ping"


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 (so doctor's own socket checks pass)."""
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()


def config(kit, jid: str = COMPONENT, secret: str = "secret") -> Path:
    """A config of its own (free SIP/MSRP ports, fresh state_dir under the run's directory) for
    the component checks."""
    d = Path(tempfile.mkdtemp(prefix="doctor-", dir=kit.run))
    p = d / "stox.toml"
    sip = free_port()
    p.write_text(f"""
[component]
jid = "{jid}"
server = "127.0.0.1:{COMPONENT_PORT}"
secret = "{secret}"
[sip]
listen = ["udp:127.0.0.1:{sip}", "tcp:127.0.0.1:{sip}"]
[addresses]
xmpp_domains = ["{XMPP_DOMAIN}"]
sip_domain = "127.0.0.1"
[presence]
state_dir = "{d / 'state'}"
[chat]
msrp_listen = "127.0.0.1:{free_port()}"
""")
    return p


def doctor(cfg: Path):
    p = subprocess.run([str(stox_binary()), "doctor", "--timeout", "3", "--config", str(cfg)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    return p.returncode, out


def line(out: str, prefix: str) -> str:
    found = [ln for ln in out.splitlines() if ln.startswith(prefix)]
    assert found, "no line starting with %r in doctor's output:\n%s" % (prefix, out)
    return found[0]


def test_doctor_wrong_secret_is_rejected(stox, xmpp_server, kit):
    rc, out = doctor(config(kit, secret="not-the-secret"))
    assert rc == 1, "doctor with a wrong secret must exit 1:\n%s" % out
    comp = line(out, "FAIL  component:")
    # Both servers answer <not-authorized/>; Prosody adds a <text/>.
    expected = {
        "prosody": '(not-authorized: "Given token does not match calculated token")',
        "ejabberd": "(not-authorized)",
    }[xmpp_server.name]
    assert "127.0.0.1:%d rejected the secret for %s %s" % (COMPONENT_PORT, COMPONENT, expected) in comp, comp
    assert "component_secret (Prosody)" in comp, comp


def test_doctor_unknown_component_domain(stox, xmpp_server, kit):
    jid = "doctor.localhost"   # not a component of the kit's servers
    rc, out = doctor(config(kit, jid=jid))
    assert rc == 1, out
    comp = line(out, "FAIL  component:")
    if xmpp_server.name == "prosody":
        assert ('does not serve the component %s (host-unknown: "%s does not match any configured external '
                'components")' % (jid, jid)) in comp, comp
    else:
        # ejabberd does not say host-unknown: an unconfigured domain gets the wrong-secret answer
        # (its log says "Domain doctor.localhost is unconfigured for external component").
        assert "rejected the secret for %s (not-authorized)" % jid in comp, comp
        assert "missing from its ejabberd_service hosts" in comp, comp


def test_doctor_while_the_gateway_runs(stox, xmpp_server, alice):
    """The gateway's own config while it runs: its ports are in use (named with its pid), its
    database is open in it, and the component domain is taken (Prosody) or shared (ejabberd);
    the running gateway keeps working."""
    pid = stox.proc.pid
    rc, out = doctor(stox.config)
    assert rc == 1, out
    held = "is in use by process %d (stox)" % pid
    assert held in line(out, "FAIL  sip: udp 127.0.0.1:%d" % GW_PORT), out
    assert held in line(out, "FAIL  sip: tcp 127.0.0.1:%d" % GW_PORT), out
    assert held in line(out, "FAIL  msrp: tcp 127.0.0.1:%d" % GW_MSRP_PORT), out
    assert held in line(out, "FAIL  msrp: tls 127.0.0.1:%d" % GW_MSRPS_PORT), out
    assert "is open in process %d (stox)" % pid in line(out, "info  store:"), out
    assert re.search(r"^ok    store: .*stox\.sqlite3 opens", out, re.M), out
    if xmpp_server.name == "prosody":
        # Prosody refuses a second connection for a component domain.
        comp = line(out, "FAIL  component:")
        assert 'refused %s as taken (conflict: "Component already connected")' % COMPONENT in comp, comp
        assert "a running stox?" in comp, comp
    else:
        # ejabberd accepts several connections for one component domain (it balances between them).
        assert line(out, "ok    component:") == "ok    component: 127.0.0.1:%d accepted the secret for %s" % (
            COMPONENT_PORT, COMPONENT), out
    # The gateway's own link survived doctor's handshake.
    kind, iq = alice.iq(COMPONENT, "get", "<ping xmlns='%s'/>" % NS_PING)
    assert kind == "result", "the gateway stopped answering after doctor ran (%s):\n%s" % (kind, iq["raw"])
    assert stox.alive() and stox.proc.pid == pid


def test_doctor_gateway_config_all_ok_when_stopped(stox, xmpp_server):
    """With the gateway stopped, its own config passes every check (exit 0): the real server
    accepts the handshake, the ports are free, the database opens."""
    stox.stop()
    try:
        rc, out = doctor(stox.config)
        assert rc == 0, "doctor on the gateway's config with the gateway stopped:\n%s" % out
        assert "FAIL" not in out, out
        assert line(out, "ok    component:") == "ok    component: 127.0.0.1:%d accepted the secret for %s" % (
            COMPONENT_PORT, COMPONENT), out
        assert "ok    sip: udp 127.0.0.1:%d can be bound" % GW_PORT in out, out
        assert re.search(r"^ok    store: .*stox\.sqlite3 opens", out, re.M), out
        assert "info  dns: %s is a special-use name" % XMPP_DOMAIN in out, out
    finally:
        stox.start()
