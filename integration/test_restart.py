"""XMPP server restart without restarting stox (COMP-6): 503 + Retry-After while the link is down,
then messages flow again within 10 s of the server being back."""
import time

from sip_helper import run_uac, sip_transaction
from topology import C2S_PORT, GW_PORT, UAC_PORT, UAS_OK_DOMAIN, XMPP_DOMAIN, sip_jid
from xmpp_helper import XmppClient, XmppError

RECOVERY_SECS = 10


def test_comp_6_xmpp_server_restart(stox, xmpp_server, uas, kit, run_id):
    pid_before = stox.proc.pid
    xmpp_server.stop()
    time.sleep(1.0)  # the component TCP stream is closed by the server: the gateway knows at once
    res = run_uac(str(kit.run), "uac_message_any.xml", {
        "scheme": "sip", "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": "gap-" + run_id,
        "subject": "gap", "lang": "en", "body": "in the gap " + run_id}, local_port=UAC_PORT, timeout=15)
    fin = res.final
    assert stox.alive(), "stox died when %s stopped:\n%s" % (xmpp_server.name, stox.tail(60))
    assert fin is not None, "no final response to a MESSAGE while %s is down\n%s" % (xmpp_server.name, res.summary())
    assert fin.status == 503, "MESSAGE while the XMPP link is down: expected 503, got %r\n%s" % (
        fin.start, fin.describe())
    retry_after = fin.get("retry-after")
    assert retry_after and retry_after.split(";")[0].strip().isdigit(), \
        "503 without a valid Retry-After header (got %r):\n%s" % (retry_after, fin.describe())

    xmpp_server.start()
    t_back = time.monotonic()
    deadline = t_back + RECOVERY_SECS
    alice = XmppClient("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT).connect()
    try:
        # SIP -> XMPP: retry (raw UDP MESSAGE) until 200 and delivery
        attempts, s2x_ok, last = 0, None, None
        while time.monotonic() < deadline:
            attempts += 1
            marker = "back-%s-%d" % (run_id, attempts)
            resp = sip_transaction("MESSAGE", "sip:alice@%s" % XMPP_DOMAIN, port=GW_PORT, timeout=3,
                                   frm="sip:back-%s@127.0.0.1" % run_id, body=marker.encode(),
                                   content_type="text/plain;charset=UTF-8")
            last = resp.start if resp else "no response"
            if resp is not None and resp.status == 200:
                try:
                    alice.wait_message(lambda m, mk=marker: m.body == mk, timeout=2)
                    s2x_ok = time.monotonic() - t_back
                    break
                except XmppError:
                    pass
            time.sleep(0.5)
        assert s2x_ok is not None, "SIP->XMPP did not work again within %ds after %s was back (%d attempts, last: %s)\n%s" % (
            RECOVERY_SECS, xmpp_server.name, attempts, last, stox.tail(40))
        # XMPP -> SIP, still inside the same 10 s budget
        to = sip_jid("back", UAS_OK_DOMAIN)
        mark = uas.ok.mark()
        marker = "xback-" + run_id
        alice.send_message(to, marker)
        left = max(0.5, deadline - time.monotonic())
        got = uas.ok.wait_requests(mark, lambda m: marker.encode() in m.body, timeout=left)
        assert got, "XMPP->SIP did not work again within %ds after %s was back (SIP->XMPP ok after %.1fs)" % (
            RECOVERY_SECS, xmpp_server.name, s2x_ok)
    finally:
        alice.close()
    assert stox.alive() and stox.proc.pid == pid_before, "stox was restarted/died during the XMPP server restart"


def test_muc_memberships_end_when_the_xmpp_link_goes_down(stox, xmpp_server, run_id):
    """A SIP user in an XMPP room (RFC 7702 §6) rides on the component stream: when the server goes away, the
    membership ends with BYE rather than leave the SIP user in a room nobody sees it in."""
    from msrp_room import RoomUa
    from test_muc_sip_user import make_room
    from topology import MSRP_DOMAIN
    alice = XmppClient("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT).connect()
    ua = RoomUa(user="romeo").start()
    online_before = stox.online_count_total()
    try:
        room = make_room(alice, "l" + run_id)
        rs = ua.join("sip:" + room, ("127.0.0.1", GW_PORT), "sip:romeo@%s" % MSRP_DOMAIN, nickname="Romeo")
        alice.close()
        xmpp_server.stop()
        assert rs.wait_bye(10), "no BYE to the SIP room member when the XMPP link went down\n" + stox.tail(30)
    finally:
        ua.stop()
        if not xmpp_server.running:
            xmpp_server.start()
        # The tests after this one need the component back on the server.
        stox.wait_ready(30, online_before)
    assert ua.violations == [], ua.violations
