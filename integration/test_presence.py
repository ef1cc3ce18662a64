"""Presence both ways with real peers (RFC 8048; checklist PRES-1..25): Prosody/ejabberd + slixmpp on the
XMPP side; on the SIP side pjsua2 and baresip, both directly (the UA answers SUBSCRIBE itself) and through
Kamailio's presence server (PUBLISH + SUBSCRIBE), PRES-23. What each peer can show is in PRESENCE_PEERS.md:
baresip only knows Online/Busy/Offline (it shows RPID away as Offline), pjsua2 reads away and the note."""
import subprocess
import time

import pytest

from presence_peers import BaresipPresencePeer, PjsuaPresencePeer
from topology import (BARESIP_P1, BARESIP_P2, COMPONENT, KAMAILIO_PORT, PJSUA_DOMAIN, PJSUA_PORT, XMPP_DOMAIN,
                      sip_jid)
from xmpp_helper import XmppClient

ALICE = "alice@%s" % XMPP_DOMAIN
REGISTRAR = "sip:127.0.0.1:%d" % KAMAILIO_PORT


def bare(jid: str) -> str:
    return jid.split("/")[0]


@pytest.fixture
def pjsua_factory(kit, baresip):
    """pjsua2 presence peers (Kamailio runs: the `baresip` fixture starts it)."""
    started = []

    def make(user, **kw):
        kw.setdefault("log_dir", kit.run / "pjsua")
        kw.setdefault("env", kit.env())
        p = PjsuaPresencePeer(user, PJSUA_PORT, **kw).start(timeout=20)
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()


@pytest.fixture
def baresip_factory(kit, baresip):
    started = []

    def make(name, ports, contacts=()):
        b = BaresipPresencePeer(name, ports[0], ports[1], contacts=contacts, env=kit.env(), peers=kit.peers)
        b.start()
        started.append(b)
        return b
    yield make
    for b in started:
        b.stop()


def subscribe_and_wait_granted(client: XmppClient, contact: str, timeout: float = 15):
    """PRES-3: the gateway's `subscribed` becomes roster subscription 'to' (Prosody tells the client by roster
    push only; ejabberd also forwards the stanza)."""
    mark = client.presence_mark()
    client.send_presence(to=contact, type="subscribe")
    client.wait_roster(contact, ("to", "both"), timeout, "after `subscribed` from the gateway (PRES-3)")
    return mark


def wait_denied(client: XmppClient, contact: str, timeout: float = 15, what: str = ""):
    """`unsubscribed` from the gateway: the roster item loses 'to' and its pending ask."""
    client.wait_roster(contact, ("none", "from"), timeout, what)


def test_pres_1_3_16_20_xmpp_watches_sip_through_kamailio_presence_server(alice, pjsua_factory, run_id):
    """PRES-1/3/20/23: alice subscribes to a SIP user that PUBLISHes to Kamailio's presence server; she sees
    him online, away with his note, and offline."""
    user = "dave" + run_id
    dave = pjsua_factory(user, registrar=REGISTRAR, status="online")
    dave.wait_for(lambda e: e["event"] in ("published", "registered", "reg_state"), 10, what="registration")
    time.sleep(1)  # the first PUBLISH reaches Kamailio
    contact = "%s@%s" % (user, COMPONENT)
    mark = subscribe_and_wait_granted(alice, contact)
    alice.wait_presence(lambda p: bare(p.frm) == contact and p.type is None, 15, mark,
                        what="available presence of %s" % contact)
    note = "at lunch " + run_id
    mark = alice.presence_mark()
    dave.set_presence("away", note)
    got = alice.wait_presence(lambda p: bare(p.frm) == contact and p.type is None and p.show == "away", 15, mark,
                              what="away presence of %s" % contact)
    assert got.status == note, "status %r, expected the PIDF note %r (PRES-20)\n%s" % (got.status, note, got.raw)
    mark = alice.presence_mark()
    dave.set_presence("offline")
    alice.wait_presence(lambda p: bare(p.frm) == contact and p.type == "unavailable", 15, mark,
                        what="unavailable from %s" % contact)


def test_pres_5_6_23_xmpp_watches_sip_ua_directly_then_unsubscribes_and_is_denied(alice, pjsua_factory, run_id,
                                                                                  xmpp_server):
    """PRES-23 direct topology: the SIP UA answers the SUBSCRIBE itself. PRES-6: unsubscribe ends the dialog
    and alice gets `unsubscribed`. PRES-5: a UA that answers 403 makes the gateway send `unsubscribed`."""
    user = "erin" + run_id
    erin = pjsua_factory(user, no_register=True, status="online", note="here " + run_id)
    contact = sip_jid(user, PJSUA_DOMAIN)
    mark = subscribe_and_wait_granted(alice, contact)
    sub = erin.wait_for(lambda e: e["event"] == "incoming_subscribe", 10, what="incoming SUBSCRIBE")
    assert "alice@%s" % XMPP_DOMAIN in sub.get("from", ""), sub
    alice.wait_presence(lambda p: bare(p.frm) == contact and p.type is None, 15, mark,
                        what="available presence of %s" % contact)
    mark = alice.presence_mark()
    erin.set_presence("busy", "on a call")
    got = alice.wait_presence(lambda p: bare(p.frm) == contact and p.show == "dnd", 15, mark,
                              what="dnd presence (RPID busy -> dnd, PRES-18)")
    assert got.status == "on a call", got.raw

    mark = alice.presence_mark()
    alice.send_presence(to=contact, type="unsubscribe")
    wait_denied(alice, contact, what="after unsubscribe (PRES-6)")

    bob = XmppClient("bob@%s" % XMPP_DOMAIN, "bobpass").connect()
    try:
        erin.accept_policy("reject")
        mark = bob.presence_mark()
        bob.send_presence(to=contact, type="subscribe")
        time.sleep(1)
        wait_denied(bob, contact, what="after the UA's 403 (PRES-5)")
        assert not [p for p in bob.presences[mark:] if bare(p.frm) == contact and p.type is None], \
            "a denied subscription delivered presence"
    finally:
        bob.close()


def test_pres_9_10_19_sip_watches_xmpp_baresip_via_kamailio(alice, baresip_factory, run_id):
    """PRES-9/10: baresip subscribes to alice through Kamailio; alice gets `subscribe`, approves; baresip shows
    her Online, then Busy (dnd -> RPID busy), and with two resources one leaving keeps her Online (PRES-19)."""
    name = "pa" + run_id[:6]
    watcher_jid = "%s@%s" % (name, COMPONENT)
    mark = alice.presence_mark()
    b = baresip_factory(name, BARESIP_P1, contacts=["sip:alice@%s" % XMPP_DOMAIN])
    alice.wait_presence(lambda p: p.frm == watcher_jid and p.type == "subscribe", 20, mark,
                        what="<presence type='subscribe'/> from %s (PRES-9)" % watcher_jid)
    assert b.contact_status("sip:alice@%s" % XMPP_DOMAIN) in ("unknown", None), "pending must show nothing"
    alice.send_presence(to=watcher_jid, type="subscribed")
    b.wait_contact_status("sip:alice@%s" % XMPP_DOMAIN, "online", 15)
    alice.send_presence(show="dnd", status="busy " + run_id)
    b.wait_contact_status("sip:alice@%s" % XMPP_DOMAIN, "busy", 15)
    alice.send_presence()  # available again
    b.wait_contact_status("sip:alice@%s" % XMPP_DOMAIN, "online", 15)

    second = XmppClient(ALICE, "alicepass", resource="second").connect()
    try:
        time.sleep(1)
        alice.send_presence(type="unavailable")
        time.sleep(2)
        assert b.contact_status("sip:alice@%s" % XMPP_DOMAIN) == "online", \
            "one of two resources left: baresip must still show alice online (PRES-19), shows %s" % b.contacts()
    finally:
        second.close()
    b.wait_contact_status("sip:alice@%s" % XMPP_DOMAIN, "offline", 15)


def test_pres_10_11_sip_watches_xmpp_pjsua_sees_away_note_and_revocation(alice, pjsua_factory, run_id):
    """PRES-10/16: pjsua (via Kamailio) watches alice: after approval it shows away + note. PRES-11: alice
    revokes; pjsua's subscription is terminated."""
    user = "fay" + run_id
    fay = pjsua_factory(user, registrar=REGISTRAR, status="online")
    watcher_jid = "%s@%s" % (user, COMPONENT)
    mark = alice.presence_mark()
    fay.buddy("sip:alice@%s" % XMPP_DOMAIN)
    alice.wait_presence(lambda p: p.frm == watcher_jid and p.type == "subscribe", 20, mark,
                        what="subscribe from %s" % watcher_jid)
    alice.send_presence(to=watcher_jid, type="subscribed")
    fay.wait_buddy("sip:alice@%s" % XMPP_DOMAIN, status="online", timeout=15)
    alice.send_presence(show="away", status="gone fishing " + run_id)
    fay.wait_buddy("sip:alice@%s" % XMPP_DOMAIN, status="away", note="gone fishing " + run_id, timeout=15)
    since = fay.mark()
    alice.send_presence(to=watcher_jid, type="unsubscribed")
    fay.wait_buddy("sip:alice@%s" % XMPP_DOMAIN, sub_state="TERMINATED", timeout=15, since=since)


def test_pres_14_restart_keeps_authorizations_and_dialogs(alice, stox, pjsua_factory, baresip_factory, run_id):
    """PRES-14: with subscriptions running both ways, stox restarts: no subscribe prompt repeats, the SIP
    user's state reaches alice again, alice's changes reach the SIP UA in the old dialog, and the database
    holds both authorizations."""
    user = "gus" + run_id
    gus = pjsua_factory(user, no_register=True, status="online")
    contact = sip_jid(user, PJSUA_DOMAIN)
    subscribe_and_wait_granted(alice, contact)
    name = "pb" + run_id[:6]
    watcher_jid = "%s@%s" % (name, COMPONENT)
    mark = alice.presence_mark()
    b = baresip_factory(name, BARESIP_P2, contacts=["sip:alice@%s" % XMPP_DOMAIN])
    alice.wait_presence(lambda p: p.frm == watcher_jid and p.type == "subscribe", 20, mark,
                        what="subscribe from %s" % watcher_jid)
    alice.send_presence(to=watcher_jid, type="subscribed")
    b.wait_contact_status("sip:alice@%s" % XMPP_DOMAIN, "online", 15)

    stox.stop()
    rows = subprocess.run(["sqlite3", str(stox.state_dir / "stox.sqlite3"),
                           "SELECT direction, state FROM presence_authorization WHERE sip_aor LIKE '%%%s%%' "
                           "OR sip_aor LIKE '%%%s%%' ORDER BY direction" % (user, name)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10).stdout
    assert "sip_watches_xmpp|subscribed" in rows and "xmpp_watches_sip|subscribed" in rows, \
        "authorizations in the database after stop:\n%s" % rows
    mark = alice.presence_mark()
    gus.set_presence("away", "after restart " + run_id)
    stox.start()
    got = alice.wait_presence(lambda p: bare(p.frm) == contact and p.show == "away", 20, mark,
                              what="gus's away presence after the restart (refresh in the stored dialog)")
    assert got.status == "after restart " + run_id, got.raw
    alice.send_presence(show="dnd")
    b.wait_contact_status("sip:alice@%s" % XMPP_DOMAIN, "busy", 15)
    time.sleep(2)
    prompts = [p for p in alice.presences[mark:] if p.type in ("subscribe", "subscribed", "unsubscribed")]
    assert not prompts, "subscription stanzas repeated after the restart:\n%s" % "\n".join(p.raw for p in prompts)


def test_pres_11_sip_watcher_denied_by_xmpp_user(alice, pjsua_factory, run_id):
    """PRES-11: alice denies a pending SIP watcher: pjsua's subscription ends (terminated;reason=rejected)
    and it never gets her presence."""
    user = "hal" + run_id
    hal = pjsua_factory(user, registrar=REGISTRAR, status="online")
    watcher_jid = "%s@%s" % (user, COMPONENT)
    mark = alice.presence_mark()
    hal.buddy("sip:alice@%s" % XMPP_DOMAIN)
    alice.wait_presence(lambda p: p.frm == watcher_jid and p.type == "subscribe", 20, mark,
                        what="subscribe from %s" % watcher_jid)
    since = hal.mark()
    alice.send_presence(to=watcher_jid, type="unsubscribed")
    ev = hal.wait_buddy("sip:alice@%s" % XMPP_DOMAIN, sub_state="TERMINATED", timeout=15, since=since)
    assert ev["status"] in ("unknown", "offline"), "a denied watcher must not see alice online: %r" % ev
    assert not [e for e in hal.of("buddy_state") if e["status"] == "online"], hal.of("buddy_state")


def test_pres_13_sip_watcher_unsubscribes_xmpp_user_sees_unavailable_not_unsubscribe(alice, pjsua_factory, run_id):
    """PRES-13: the SIP watcher ends its subscription (SUBSCRIBE Expires: 0): alice gets `unavailable` from
    it, never `unsubscribe`; her roster keeps the authorization."""
    user = "ivy" + run_id
    ivy = pjsua_factory(user, registrar=REGISTRAR, status="online")
    watcher_jid = "%s@%s" % (user, COMPONENT)
    mark = alice.presence_mark()
    ivy.buddy("sip:alice@%s" % XMPP_DOMAIN)
    alice.wait_presence(lambda p: p.frm == watcher_jid and p.type == "subscribe", 20, mark,
                        what="subscribe from %s" % watcher_jid)
    alice.send_presence(to=watcher_jid, type="subscribed")
    ivy.wait_buddy("sip:alice@%s" % XMPP_DOMAIN, status="online", timeout=15)
    mark = alice.presence_mark()
    ivy.unbuddy("sip:alice@%s" % XMPP_DOMAIN)
    alice.wait_presence(lambda p: bare(p.frm) == watcher_jid and p.type == "unavailable", 15, mark,
                        what="unavailable from %s (PRES-13)" % watcher_jid)
    time.sleep(1)
    bad = [p for p in alice.presences[mark:] if bare(p.frm) == watcher_jid and p.type in ("unsubscribe", "unsubscribed")]
    assert not bad, "PRES-13: no unsubscribe toward XMPP: %s" % [p.raw for p in bad]
    assert alice.roster_subscription(watcher_jid) in ("from", "both"), \
        "the authorization survives the end of the SIP dialog"
