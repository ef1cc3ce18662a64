"""Operating stox with real peers: the metrics endpoint scraped while real traffic flows, the admin
ad-hoc commands (XEP-0050) driven by slixmpp's own xep_0050 plugin through Prosody/ejabberd, and a
SIGHUP reload under message load that changes a route and the rate limit while an MSRP session and a
presence subscription keep working.

The gateway's config (conftest.render_config) makes alice@localhost an admin and serves metrics on
127.0.0.1:METRICS_PORT."""
import collections
import re
import time
import urllib.request

import pytest
from slixmpp.exceptions import IqError

from presence_peers import SipUdpEndpoint, pidf_status, sub_state_of
from sip_helper import run_uac
from topology import (COMPONENT, GW_PORT, METRICS_PORT, MSRP_DOMAIN, MSRP_UA_PORT,
                      RELOAD_DOMAIN, UAC_PORT, UAS_OK_DOMAIN, XMPP_DOMAIN, sip_jid)
from xmpp_helper import XmppClient

SIP_IN_OK = 'stox_sip_transactions_total{direction="in",method="MESSAGE",code="200"}'
SIP_OUT_OK = 'stox_sip_transactions_total{direction="out",method="MESSAGE",code="200"}'
STANZA_OUT_MSG = 'stox_stanzas_total{direction="out",kind="message"}'
STANZA_IN_MSG = 'stox_stanzas_total{direction="in",kind="message"}'


def scrape() -> dict:
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % METRICS_PORT, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers["Content-Type"]
        text = r.read().decode()
    assert text.endswith("# EOF\n"), text[-200:]
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def delta(after: dict, before: dict, key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_ops_metrics_counters_match_real_traffic(alice, uas, kit, run_id):
    before = scrape()
    assert before.get("stox_component_link_up") == 1.0, "the link is up while the suite runs"
    n_in, n_out = 7, 4
    marker = "met-%s" % run_id
    res = run_uac(str(kit.run), "uac_message_burst.xml", {
        "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": "metrics-" + run_id, "body": marker},
        calls=n_in, rate=20, local_port=UAC_PORT, timeout=30)
    assert res.rc == 0, res.summary()
    alice.collect(lambda m: m.body is not None and marker in m.body, n_in, timeout=15)

    out_marker = "mout-%s" % run_id
    mark = uas.ok.mark()
    for i in range(n_out):
        alice.send_message(sip_jid("metrics", UAS_OK_DOMAIN), "%s %d" % (out_marker, i))
    uas.ok.wait_requests(mark, lambda m: out_marker.encode() in m.body, count=n_out, timeout=15)
    # the counters move when each transaction has its final response: give the last one a moment
    deadline = time.monotonic() + 5
    while True:
        after = scrape()
        if delta(after, before, SIP_OUT_OK) >= n_out or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert delta(after, before, SIP_IN_OK) == n_in, "inbound MESSAGE 200s: %s" % delta(after, before, SIP_IN_OK)
    assert delta(after, before, SIP_OUT_OK) == n_out, "outbound MESSAGE 200s: %s" % delta(after, before, SIP_OUT_OK)
    assert delta(after, before, STANZA_OUT_MSG) >= n_in, "message stanzas to XMPP"
    assert delta(after, before, STANZA_IN_MSG) >= n_out, "message stanzas from XMPP"
    assert any(k.startswith("stox_store_write_seconds") for k in after), "store latency histogram is exported"


def _commands(client: XmppClient):
    """slixmpp's XEP-0050 plugin on a connected test client."""
    x = client._x
    if "xep_0050" not in x.plugin:
        client._call(x.register_plugin, "xep_0050")
    return x.plugin["xep_0050"], x


def call(client: XmppClient, fn, *args, **kwargs):
    """Run a slixmpp call (it returns a future or a coroutine) on the client's loop; its result."""
    async def go():
        return await fn(*args, **kwargs)
    return client._run(go(), 20)


def _fields(iq) -> dict:
    """label -> value (lines joined by newlines) of the result form, read from the XML as received."""
    ns = "{jabber:x:data}"
    out = {}
    for f in iq.xml.iter(ns + "field"):
        out[f.get("label")] = "\n".join(v.text or "" for v in f.findall(ns + "value"))
    return out


def test_ops_adhoc_commands_for_admins_only(alice, stox, run_id):
    cmd, x = _commands(alice)
    items = call(alice, cmd.get_commands, jid=COMPONENT)
    nodes = {i[1] for i in items["disco_items"]["items"]}
    assert nodes == {"status", "sessions", "end-session", "reload", "translate"}, nodes

    status = call(alice, cmd.send_command, COMPONENT, "status")
    assert status["command"]["status"] == "completed", status
    f = _fields(status)
    assert f.get("component_link_up") == "true", f
    assert f.get("stox_component_link_up") == "1", "the status carries the metrics samples too: %s" % f

    # two steps: the form, then the answer (the same session id)
    first = call(alice, cmd.send_command, COMPONENT, "translate")
    assert first["command"]["status"] == "executing", first
    sid = first["command"]["sessionid"]
    form = x.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="address", value="sip:bob@other.example")
    done = call(alice, cmd.send_command, COMPONENT, "translate", sessionid=sid, payload=form, action="complete")
    assert done["command"]["status"] == "completed", done
    assert _fields(done) == {"sip:bob@other.example": "bob\\40other.example@%s" % COMPONENT}, done

    form = x.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="user", value="alice@%s" % XMPP_DOMAIN)
    listed = call(alice, cmd.send_command, COMPONENT, "sessions", payload=form, action="complete")
    assert listed["command"]["status"] == "completed", listed

    bob = XmppClient("bob@%s" % XMPP_DOMAIN, "bobpass").connect()
    try:
        bcmd, _ = _commands(bob)
        items = call(bob, bcmd.get_commands, jid=COMPONENT)
        assert list(items["disco_items"]["items"]) == [], "a non-admin sees no commands"
        for node in ("status", "reload", "translate"):
            with pytest.raises(IqError) as e:
                call(bob, bcmd.send_command, COMPONENT, node)
            assert e.value.iq["error"]["condition"] == "forbidden", e.value.iq
    finally:
        bob.close()
    assert "admin command refused: not an admin" in stox.log_text()


def test_ops_sighup_under_load_changes_route_and_rate_limit_keeping_sessions(alice, ua, stox, kit, run_id):
    romeo = sip_jid("romeo", MSRP_DOMAIN)
    reload_target = sip_jid("rl", RELOAD_DOMAIN)
    # Before the reload, reload.test has no route: the outbound proxy refuses it.
    alice.send_message(reload_target, "unrouted " + run_id, id="unrouted-" + run_id)
    err = alice.wait_message(lambda m: m.id == "unrouted-" + run_id, timeout=40, what="the unrouted refusal")
    assert err.type == "error", err.raw
    # An MSRP session, alice <-> romeo (kept busy below: the suite's chat idle timeout is short).
    alice.send_message(romeo, "hello before " + run_id)
    s = ua.wait_session(15)
    s.wait_message(lambda m: m.get("text") == "hello before " + run_id, timeout=10)
    # A presence subscription, a SIP watcher -> alice, approved.
    watcher = "rw" + run_id[:8]
    ep = SipUdpEndpoint(user=watcher, next_hop=("127.0.0.1", GW_PORT)).start()
    try:
        mark = alice.presence_mark()
        d = ep.subscribe("sip:alice@%s" % XMPP_DOMAIN)
        watcher_jid = "%s@%s" % (watcher, COMPONENT)
        alice.wait_presence(lambda p: p.frm == watcher_jid and p.type == "subscribe", 15, mark,
                            what="subscribe from the SIP watcher")
        alice.send_presence(to=watcher_jid, type="subscribed")
        ep.wait_notify(d, lambda m: sub_state_of(m) == "active" and pidf_status(m.body) == "online", timeout=15)

        # Load: a SIP sender streams MESSAGEs to alice while the reload happens.
        original = stox.rendered()
        new = original.replace("[sip.routes]\n", '[sip.routes]\n"%s" = "sip:127.0.0.1:%d"\n'
                               % (RELOAD_DOMAIN, MSRP_UA_PORT), 1)
        new += "\n[limits]\nmessages_per_minute = 20\n"
        marker = "hup-%s" % run_id
        import threading
        result = {}

        def load():
            result["res"] = run_uac(str(kit.run), "uac_message_burst_ok_or_503.xml", {
                "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": "loader-" + run_id, "body": marker},
                calls=120, rate=30, local_port=UAC_PORT, timeout=40)
        t = threading.Thread(target=load)
        t.start()
        composing = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
        try:
            time.sleep(1.5)
            line = stox.reload(new)
            while t.is_alive():            # the session carries typing notifications during the load
                alice.send_message(romeo, None, extra_xml=composing)
                t.join(1.5)
        finally:
            t.join(60)
        # The session survived: the same session carries messages both ways.
        alice.send_message(romeo, "hello after " + run_id)
        s.wait_message(lambda m: m.get("text") == "hello after " + run_id, timeout=10)
        s.send("reply after " + run_id)
        alice.wait_message(lambda m: m.body == "reply after " + run_id, timeout=10, what="romeo's reply")
        assert len(ua.sessions) == 1, "the reload must not end the MSRP session (%d INVITEs)" % len(ua.sessions)
        assert "applied: sip.routes, limits.messages_per_minute; needs a restart: nothing" in line, line

        res = result["res"]
        finals = collections.Counter(m.status for m in res.finals)
        assert res.rc == 0 and finals[200] + finals[503] == 120, \
            "every MESSAGE under load got 200 or 503: %s\n%s" % (dict(finals), res.summary())
        assert finals[503] > 0, "the new rate limit (20/min) refused some of the 30/s stream: %s" % dict(finals)
        got = alice.settle(lambda m: m.body is not None and marker in m.body, quiet=2)
        seen = collections.Counter(int(re.search(r"%s (\d+)" % marker, m.body).group(1)) for m in got)
        assert sum(seen.values()) == finals[200] and all(c == 1 for c in seen.values()), \
            "each 200 is one message at alice, each 503 none (%d 200s, %d stanzas, dups %s)" \
            % (finals[200], sum(seen.values()), {k: c for k, c in seen.items() if c > 1})

        # The new route works.
        alice.send_message(reload_target, "routed " + run_id)
        ua.wait_sip_message(lambda m: b"routed " + run_id.encode() in m["body"], timeout=10)
        # The subscription survived: a presence change still reaches the watcher.
        n = len(d.notifies)
        alice.send_presence(show="away", status="after reload")
        ep.wait_notify(d, lambda m: sub_state_of(m) == "active" and pidf_status(m.body) == "away", timeout=15,
                       since=n)
    finally:
        # back to the suite's config for the tests that follow
        stox.reload(stox.rendered())
        ep.close()


def test_ops_admin_lists_and_ends_a_chat_session(alice, ua, stox, run_id):
    romeo = sip_jid("romeo", MSRP_DOMAIN)
    alice.send_message(romeo, "end me " + run_id)
    s = ua.wait_session(15)
    s.wait_message(lambda m: m.get("text") == "end me " + run_id, timeout=10)
    cmd, x = _commands(alice)
    form = x.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="user", value="sip:romeo@%s" % MSRP_DOMAIN)
    listed = _fields(call(alice, cmd.send_command, COMPONENT, "sessions", payload=form, action="complete"))
    # (a session of an earlier test's alice may still be winding down: this alice's is the one)
    chats = {k: v for k, v in listed.items() if k.startswith("chat session ") and v.startswith(alice.full_jid + " ")}
    assert len(chats) == 1, listed
    (label, parties), = chats.items()
    assert parties == "%s <-> sip:romeo@%s" % (alice.full_jid, MSRP_DOMAIN), parties
    form = x.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="session", value=label.split()[-1])
    done = call(alice, cmd.send_command, COMPONENT, "end-session", payload=form, action="complete")
    note = done.xml.find("{http://jabber.org/protocol/commands}command/{http://jabber.org/protocol/commands}note")
    assert note is not None and note.get("type") == "info", done
    assert s.wait_bye(10), "the SIP side gets a BYE for the ended session"
