"""MSRP over TLS (CHAT-9, CHAT-23; RFC 4975 §6, §8.1, §14; RFC 7573) with the real XMPP servers: alice on Prosody/ejabberd chats
with msrp_ua.py over an MSRP session on TLS, in both directions. msrp_ua.py does its TLS with Python's ssl module
(OpenSSL), apart from stox's rustls: it serves the run's peer.crt and verifies stox's gw.crt against the run's CA
(conftest.tls_dir), for the host of stox's msrps: URI; stox verifies peer.crt through [sip.tls] ca_file.

- SIP -> XMPP: the run's config has [chat] msrps_listen (GW_MSRPS_PORT) on [sip.tls]'s certificate; romeo offers
  TCP/TLS/MSRP with an msrps: path and stox answers the same way.
- XMPP -> SIP: stox restarted with [chat] offer_tls = true offers TCP/TLS/MSRP and connects to romeo's msrps: URI.

Every test ends with msrp_ua.py's own RFC checks (`violations`) and no failed TLS handshake on its side."""
import re

import pytest

from conftest import tls_dir
from msrp_ua import MsrpUa
from topology import GW_MSRPS_PORT, GW_PORT, MSRP_DOMAIN, MSRP_UA_MSRP_PORT, MSRP_UA_PORT, XMPP_DOMAIN, sip_jid

ROMEO = sip_jid("romeo", MSRP_DOMAIN)
ALICE_SIP = "sip:alice@%s" % XMPP_DOMAIN
GW = ("127.0.0.1", GW_PORT)


def tls_ua(stox, tls=True) -> MsrpUa:
    certs = tls_dir(stox.state_dir)
    conf = {"cert": certs / "peer.crt", "key": certs / "peer.key", "ca": certs / "ca.crt"} if tls else None
    return MsrpUa(sip_port=MSRP_UA_PORT, msrp_port=MSRP_UA_MSRP_PORT, user="romeo", tls=conf).start()


def clean(ua: MsrpUa):
    assert ua.violations == [], "the MSRP peer saw RFC violations from stox:\n  " + "\n  ".join(ua.violations)
    assert ua.tls_errors == [], "TLS handshakes failed: %s" % ua.tls_errors


def test_chat_23_msrps_sip_user_opens_a_tls_session_and_both_talk(alice, stox, run_id):
    ua = tls_ua(stox)
    try:
        s = ua.invite(ALICE_SIP, via_host_port=GW, from_uri="sip:romeo@%s" % MSRP_DOMAIN)
        assert re.search(r"^m=message %d TCP/TLS/MSRP \*\r?$" % GW_MSRPS_PORT, s.sdp_answer, re.M), \
            "a TLS answer on the msrps listener:\n" + s.sdp_answer
        assert "a=path:msrps://127.0.0.1:%d/" % GW_MSRPS_PORT in s.sdp_answer, s.sdp_answer
        assert s.wait_connected(5) and s.conn.tls, "romeo (the offerer) connected over TLS"
        text = "over msrps " + run_id
        mid = s.send(text, failure_report="yes")
        assert s.wait_response(mid, timeout=5) == 200, "RFC 4975 §7.2: a transaction response over TLS"
        got = alice.wait_message(lambda m: m.body == text, timeout=10, what="romeo's SEND over TLS")
        assert got.thread == s.call_id, got.raw
        answer = "back over msrps " + run_id
        alice.send_message(got.frm, answer, thread=got.thread)
        s.wait_message(lambda m: m.get("text") == answer, timeout=10)
        assert len(ua.sessions) == 1, "alice's answer must go into romeo's TLS session"
    finally:
        ua.stop()
    clean(ua)


def test_chat_23_msrps_plain_offer_still_gets_a_plain_answer(alice, stox, run_id):
    """The listener adds TLS; it does not force it: a TCP/MSRP offer keeps its msrp: answer."""
    ua = tls_ua(stox, tls=False)
    try:
        s = ua.invite(ALICE_SIP, via_host_port=GW, from_uri="sip:romeo@%s" % MSRP_DOMAIN)
        assert " TCP/MSRP *" in s.sdp_answer and "a=path:msrp://" in s.sdp_answer, s.sdp_answer
        s.send("plain " + run_id)
        alice.wait_message(lambda m: m.body == "plain " + run_id, timeout=10, what="a plain MSRP message")
    finally:
        ua.stop()
    clean(ua)


@pytest.fixture
def offering_tls(stox, gateway):
    """stox restarted with [chat] offer_tls = true for one test, then as before."""
    gateway.stop()
    gateway.offer_tls = True
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
        gateway.offer_tls = False
        gateway.start()


def test_chat_23_msrps_xmpp_user_opens_a_tls_session_and_both_talk(offering_tls, run_id):
    from topology import C2S_PORT
    from xmpp_helper import XmppClient
    ua = tls_ua(offering_tls)
    a = XmppClient("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT).connect()
    try:
        body = "wherefore, over TLS " + run_id
        a.send_message(ROMEO, body, thread="th-" + run_id)
        s = ua.wait_session(15)
        assert re.search(r"^m=message %d TCP/TLS/MSRP \*\r?$" % GW_MSRPS_PORT, s.sdp_offer, re.M), \
            "a TLS offer:\n" + s.sdp_offer
        assert "a=path:msrps://127.0.0.1:%d/" % GW_MSRPS_PORT in s.sdp_offer, s.sdp_offer
        m = s.wait_message(lambda m: m.get("text") == body, timeout=10)
        assert s.conn is not None and s.conn.inbound and s.conn.tls, "stox connected to romeo over TLS"
        assert m["content_type"].lower().startswith("text/plain"), m["content_type"]
        reply = "here, over TLS " + run_id
        s.send(reply)
        got = a.wait_message(lambda m: m.body == reply, timeout=10, what="romeo's reply over TLS")
        assert got.thread == "th-" + run_id, got.raw
    finally:
        a.close()
        ua.stop()
    clean(ua)


def test_chat_23_msrps_offer_is_refused_by_a_plain_peer_and_falls_back_to_message(offering_tls, run_id):
    """A peer without TLS answers the TLS offer 488: alice's message still arrives, as a MESSAGE; no session is
    downgraded to TCP."""
    from topology import C2S_PORT
    from xmpp_helper import XmppClient
    ua = tls_ua(offering_tls, tls=False)
    a = XmppClient("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT).connect()
    try:
        body = "no tls here " + run_id
        a.send_message(ROMEO, body)
        m = ua.wait_sip_message(lambda m: m["body"].decode(errors="replace").endswith(body), timeout=15)
        assert m["body"].decode().endswith(body)
        invites = [r for r in ua.requests if r["method"] == "INVITE"]
        assert invites and all(b"TCP/TLS/MSRP" in r["body"] for r in invites), \
            "every INVITE offered TLS only: %r" % [r["body"] for r in invites]
        assert ua.sessions == {}, "no session was set up"
    finally:
        a.close()
        ua.stop()
    assert ua.violations == [], ua.violations

