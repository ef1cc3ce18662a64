"""One-to-one chat sessions over MSRP (RFC 7573, CHECKLIST part 4) with real peers: alice on Prosody/ejabberd
chats with msrp_ua.py (an independent SIP+MSRP UA, see MSRP_UA.md) through stox, directly and through the
kit's Kamailio MSRP relay; baresip, which refuses MSRP sessions with 488, still gets every message as MESSAGE.

Every test ends with the peer's own RFC 4975/3261 checks: `ua.violations` must be empty."""
import re
import time
import xml.etree.ElementTree as ET

import pytest

from msrp_ua import MsrpUa, SipError
from presence_peers import BaresipPresencePeer
from topology import (BARESIP_FB, BARESIP_FB_DOMAIN, CHAT_IDLE_SECS, GW_MSRP_PORT, GW_PORT, MSRP_DOMAIN,
                      MSRP_RELAY_PORT, MSRP_UA_MSRP_PORT, MSRP_UA_PORT, XMPP_DOMAIN, sip_jid)

CHATSTATES = "http://jabber.org/protocol/chatstates"
RECEIPTS = "urn:xmpp:receipts"
ROMEO = sip_jid("romeo", MSRP_DOMAIN)          # romeo\40msrp.test@sip.localhost
ALICE_SIP = "sip:alice@%s" % XMPP_DOMAIN
GW = ("127.0.0.1", GW_PORT)


def bare(jid: str) -> str:
    return jid.split("/")[0].lower()


def payload(m, ns: str, name: str):
    """The child <name xmlns=ns/> of a received message, or None."""
    el = ET.fromstring(m.raw)
    return el.find("{%s}%s" % (ns, name))


def from_romeo(m) -> bool:
    return bare(m.frm) == ROMEO.lower()


def sip_session(ua):
    """romeo (SIP) opens a session to alice (CHAT-8)."""
    return ua.invite(ALICE_SIP, via_host_port=GW, from_uri="sip:romeo@%s" % MSRP_DOMAIN)


def test_chat_3_5_6_7_10_first_xmpp_message_opens_a_session(alice, ua, run_id):
    body = "Art thou not Romeo? ☺ " + run_id
    thread = "th-" + run_id
    alice.send_message(ROMEO, body, thread=thread)
    s = ua.wait_session(15)
    invite = next(r for r in ua.requests if r["method"] == "INVITE" and r["headers"].get("Call-ID") == s.call_id)
    sdp = invite["body"].decode()
    assert invite["headers"].get("Content-Type", "").startswith("application/sdp"), invite["headers"].pairs
    assert re.search(r"^m=message \d+ TCP/MSRP \*\r?$", sdp, re.M), "CHAT-3 offer:\n" + sdp
    assert "a=path:msrp://127.0.0.1:%d/" % GW_MSRP_PORT in sdp, "CHAT-9 path with explicit port:\n" + sdp
    assert ";gr=" in invite["headers"].get("Contact", ""), "ADDR-7: the XMPP resource as gr in Contact"
    m = s.wait_message(lambda m: m.get("text") == body, timeout=10)
    assert m["content_type"].lower().startswith("text/plain"), m["content_type"]
    assert s.bodiless >= 1, "CHAT-5: the active side sends a SEND right after connecting"

    reply = "Neither, fair saint " + run_id
    s.send(reply)
    got = alice.wait_message(lambda m: m.body == reply, timeout=10, what="the SIP user's reply (CHAT-7)")
    assert got.type == "chat" and from_romeo(got), got.raw
    assert got.thread == thread, "the XMPP thread comes back (got %r):\n%s" % (got.thread, got.raw)

    second = "second " + run_id
    alice.send_message(ROMEO, second, thread=thread)
    s.wait_message(lambda m: m.get("text") == second, timeout=10)
    assert len(ua.sessions) == 1, "CHAT-10: one conversation is one session (%d INVITEs)" % len(ua.sessions)


def test_chat_8_10_sip_user_opens_the_session(alice, ua, run_id):
    s = sip_session(ua)
    assert "a=path:msrp://127.0.0.1:%d/" % GW_MSRP_PORT in s.sdp_answer, s.sdp_answer
    assert "a=max-size:" in s.sdp_answer, "CHAT-21: a=max-size advertised:\n" + s.sdp_answer
    text = "hello alice " + run_id
    mid = s.send(text, failure_report="yes")
    assert s.wait_response(mid, timeout=5) == 200, "RFC 4975 §7.2: a transaction response is due"
    got = alice.wait_message(lambda m: m.body == text, timeout=10, what="the SIP user's first message")
    assert got.type == "chat" and from_romeo(got), got.raw
    assert got.thread == s.call_id, "CHAT-7: thread = the session's Call-ID (got %r)" % got.thread
    answer = "hi romeo " + run_id
    alice.send_message(got.frm, answer, thread=got.thread)
    s.wait_message(lambda m: m.get("text") == answer, timeout=10)
    assert len(ua.sessions) == 1, "the answer must go into the SIP user's session, not a new INVITE"


def test_chat_20_multi_kilobyte_utf8_both_ways(alice, ua, run_id):
    s = sip_session(ua)
    big_in = ("Grüße aus Verona ☺ %s " % run_id) * 300          # ~7.5 kB of UTF-8
    s.send(big_in, chunk_size=1024)
    got = alice.wait_message(lambda m: m.body is not None and m.body.startswith("Grüße"), timeout=15)
    assert got.body == big_in, "reassembled %d of %d characters" % (len(got.body), len(big_in))
    unchunked = ("ü" * 3000) + run_id                              # one SEND over 2048 octets: Byte-Range 1-*/N
    s.send(unchunked)
    alice.wait_message(lambda m: m.body == unchunked, timeout=15, what="a message sent as one large SEND")
    big_out = ("наш Ромео %s " % run_id) * 350                    # ~8 kB
    alice.send_message(got.frm, big_out)
    m = s.wait_message(lambda m: m.get("text") == big_out, timeout=15)
    assert m["chunks"] >= 2, "stox sends large messages in chunks (§7.1.1), got %d SEND" % m["chunks"]


def test_chat_13_15_16_typing_both_ways(alice, ua, run_id):
    s = sip_session(ua)
    hello = "typing test " + run_id
    s.send(hello)
    got = alice.wait_message(lambda m: m.body == hello, timeout=10)
    # S -> X: isComposing active -> <composing/>, idle -> <active/>, never as text
    s.send_composing("active", refresh=90)
    c = alice.wait_message(lambda m: from_romeo(m) and payload(m, CHATSTATES, "composing") is not None,
                           timeout=10, what="<composing/> (CHAT-13 Table C1)")
    assert c.body is None, "a chat state is never text (CHAT-16): " + c.raw
    s.send_composing("idle")
    alice.wait_message(lambda m: from_romeo(m) and payload(m, CHATSTATES, "active") is not None,
                       timeout=10, what="<active/> for idle")
    # X -> S: <composing/> -> active with refresh, <paused/> -> idle
    alice.send_message(got.frm, None, extra_xml="<composing xmlns='%s'/>" % CHATSTATES)
    m = s.wait_message(lambda m: m.get("composing") is not None, timeout=10)
    assert m["content_type"].startswith("application/im-iscomposing+xml"), m["content_type"]
    assert m["composing"]["state"] == "active" and m["composing"].get("refresh"), m["composing"]
    alice.send_message(got.frm, None, extra_xml="<paused xmlns='%s'/>" % CHATSTATES)
    m = s.wait_message(lambda m: m.get("composing") is not None, timeout=10)
    assert m["composing"]["state"] == "idle", m["composing"]
    assert not [x for x in s.messages if x.get("text")], "chat states arrived as text: %r" % s.messages


def test_chat_17_18_receipts_both_ways_and_never_faked(alice, ua, run_id):
    s = sip_session(ua)
    # S -> X: Success-Report: yes -> <request/>; alice's <received/> -> REPORT 200
    text = "did you get it " + run_id
    mid = s.send(text, success_report=True)
    got = alice.wait_message(lambda m: m.body == text, timeout=10)
    assert payload(got, RECEIPTS, "request") is not None, "CHAT-18: <request/> expected:\n" + got.raw
    alice.send_message(got.frm, None, extra_xml="<received xmlns='%s' id='%s'/>" % (RECEIPTS, got.id))
    rep = s.wait_report(mid, timeout=10)
    assert rep["code"] == 200, rep
    # X -> S with the peer not reporting: a 200 alone must not become a receipt (CHAT-17)
    s.auto_report = False
    quiet = alice.send_message(got.frm, "no receipt yet " + run_id,
                               extra_xml="<request xmlns='%s'/>" % RECEIPTS)
    m = s.wait_message(lambda m: m.get("text") == "no receipt yet " + run_id, timeout=10)
    assert m["success_report"], "CHAT-17: <request/> -> Success-Report: yes"
    time.sleep(2)
    fake = [x for x in alice.messages if payload(x, RECEIPTS, "received") is not None
            and payload(x, RECEIPTS, "received").get("id") == quiet]
    assert not fake, "a receipt without the SIP side's REPORT: " + fake[0].raw
    # ... and with the REPORT it comes
    s.send_report(m["message_id"], len(m["body"]))
    alice.wait_message(lambda x: payload(x, RECEIPTS, "received") is not None
                       and payload(x, RECEIPTS, "received").get("id") == quiet, timeout=10,
                       what="<received id=%s/> after the REPORT" % quiet)


def test_chat_11_14_bye_and_gone_both_ways(alice, ua, run_id):
    s = sip_session(ua)
    s.send("bye soon " + run_id)
    got = alice.wait_message(lambda m: m.body == "bye soon " + run_id, timeout=10)
    assert s.bye() == 200
    gone = alice.wait_message(lambda m: from_romeo(m) and payload(m, CHATSTATES, "gone") is not None,
                              timeout=10, what="<gone/> after BYE (CHAT-11)")
    assert gone.thread == s.call_id, gone.raw
    # X -> S: <gone/> ends the session with BYE
    s2 = sip_session(ua)
    s2.send("again " + run_id)
    got = alice.wait_message(lambda m: m.body == "again " + run_id, timeout=10)
    alice.send_message(got.frm, None, extra_xml="<gone xmlns='%s'/>" % CHATSTATES)
    assert s2.wait_bye(timeout=10), "CHAT-14: <gone/> must end the session with BYE"


def test_chat_12_idle_session_ends_with_bye(alice, ua, run_id):
    s = sip_session(ua)
    s.send("idle soon " + run_id)
    alice.wait_message(lambda m: m.body == "idle soon " + run_id, timeout=10)
    t0 = time.monotonic()
    assert s.wait_bye(timeout=CHAT_IDLE_SECS + 10), "no BYE after %d s of silence (CHAT-12)" % CHAT_IDLE_SECS
    assert time.monotonic() - t0 >= CHAT_IDLE_SECS - 1, "BYE came before the idle timeout"


def test_chat_22_oversized_inbound_message_gets_413(alice, ua, run_id):
    s = sip_session(ua)
    big = "x" * 70_000                                            # over the default 60000-octet max-size
    mid = s.send(big, chunk_size=2048, failure_report="yes")
    assert s.wait_response(mid, timeout=10) == 413, "CHAT-22: 413 for a message over a=max-size"
    time.sleep(1)
    assert not [m for m in alice.messages if m.body and m.body.startswith("xxxx")], "oversized message delivered"
    # the session still works
    s.send("after 413 " + run_id)
    alice.wait_message(lambda m: m.body == "after 413 " + run_id, timeout=10)


@pytest.fixture
def fallback_baresip(kit, stox):
    b = BaresipPresencePeer("chatfb", BARESIP_FB[0], BARESIP_FB[1], env=kit.env(), peers=kit.peers, register=False)
    b.start()
    yield b
    b.stop()


def test_chat_4_baresip_refuses_msrp_and_gets_every_message_once_in_order(alice, fallback_baresip, stox, run_id):
    to = sip_jid("chatfb", BARESIP_FB_DOMAIN)          # baresip answers INVITEs only for its own user
    bodies = ["fallback %d %s" % (i, run_id) for i in range(1, 6)]
    for b in bodies:                                     # all sent while the INVITE is still pending
        alice.send_message(to, b)
    end = time.monotonic() + 20
    pattern = re.compile(r'"(fallback \d %s)"' % run_id)
    while time.monotonic() < end and len(pattern.findall(fallback_baresip.log.read_text(errors="replace"))) < 5:
        time.sleep(0.2)
    seen = pattern.findall(fallback_baresip.log.read_text(errors="replace"))
    errors = [m.raw for m in alice.messages if m.type == "error"]
    assert seen == bodies, "baresip got %r, expected each once in order %r (XMPP errors: %s)" % (seen, bodies, errors)
    assert "SIP user refused an MSRP session" in stox.log_text(), "no MSRP attempt before the fallback?"
    # the refusal is remembered: the next message goes straight to MESSAGE (no second INVITE)
    refusals = stox.log_text().count("SIP user refused an MSRP session")
    alice.send_message(to, "fallback 6 " + run_id)
    end = time.monotonic() + 10
    while time.monotonic() < end and ("fallback 6 " + run_id) not in fallback_baresip.log.read_text(errors="replace"):
        time.sleep(0.2)
    assert ("fallback 6 " + run_id) in fallback_baresip.log.read_text(errors="replace")
    assert stox.log_text().count("SIP user refused an MSRP session") == refusals, "a second INVITE was sent"


@pytest.fixture
def msrp_relay(kit, stox):
    kit.script("kamailio-msrp/start.sh")     # fails the test with the kit's message if the relay cannot start
    yield ("127.0.0.1", MSRP_RELAY_PORT)
    kit.script("kamailio-msrp/stop.sh", check=False)


def test_chat_rfc4976_peer_behind_kamailio_relay(alice, msrp_relay, stox, run_id):
    ua = MsrpUa(sip_port=MSRP_UA_PORT, msrp_port=MSRP_UA_MSRP_PORT, user="romeo", relay=msrp_relay).start()
    try:
        s = sip_session(ua)
        assert ":%d/" % MSRP_RELAY_PORT in s.sdp_offer, "the peer's path starts at the relay:\n" + s.sdp_offer
        alice_text = "through the relay " + run_id
        s.send("to alice " + run_id)
        got = alice.wait_message(lambda m: m.body == "to alice " + run_id, timeout=10)
        alice.send_message(got.frm, alice_text)
        s.wait_message(lambda m: m.get("text") == alice_text, timeout=10)
        # stox knows the peer only by its a=path, whose first hop is the relay
        assert re.search(r"MSRP session up .*remote=msrp://127\.0\.0\.1:%d/" % MSRP_RELAY_PORT, stox.log_text()), \
            "stox did not send along the peer's relayed path"
    finally:
        ua.stop()
    assert ua.violations == [], ua.violations


def test_chat_rfc4976_stox_behind_kamailio_relay(alice, msrp_relay, stox, gateway, xmpp_server, run_id):
    gateway.stop()
    gateway.relay = "%s:%d" % msrp_relay
    try:
        gateway.start()
        ua = MsrpUa(sip_port=MSRP_UA_PORT, msrp_port=MSRP_UA_MSRP_PORT, user="romeo").start()
        try:
            from xmpp_helper import XmppClient
            from topology import C2S_PORT
            a = XmppClient("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT).connect()
            try:
                s = sip_session(ua)
                assert s.remote_path and ":%d/" % MSRP_RELAY_PORT in s.remote_path[0], \
                    "stox's a=path must start with its relay's Use-Path: %r" % s.remote_path
                text = "via stox's relay " + run_id
                s.send(text)
                got = a.wait_message(lambda m: m.body == text, timeout=10, what="a SEND relayed to stox")
                a.send_message(got.frm, "back " + run_id)
                s.wait_message(lambda m: m.get("text") == "back " + run_id, timeout=10)
            finally:
                a.close()
        finally:
            ua.stop()
        # Kamailio's relay forwards stox's hop-by-hop 200 (To-Path = the relay, RFC 4975 §7.2) on to the peer
        # instead of consuming it (RFC 4976 §6.4.1); the peer flags that response, which is the relay's doing.
        relay_uri = re.compile(r"MSRP 200 \S+: To-Path \['msrp://127\.0\.0\.1:%d/" % MSRP_RELAY_PORT)
        others = [v for v in ua.violations if not relay_uri.match(v)]
        assert others == [], others
    finally:
        gateway.stop()
        gateway.relay = None
        gateway.start()


# ------------------------------------------------------------------ page mode: typing and IMDN over MESSAGE
from topology import MSRP_PAGE_DOMAIN  # noqa: E402

ROMEO_PAGE = sip_jid("romeo", MSRP_PAGE_DOMAIN)
IMDN_NS = "urn:ietf:params:imdn"
MARKERS = "urn:xmpp:chat-markers:0"


def ctype(m) -> str:
    return (m["headers"].get("Content-Type") or "").lower()


def test_chat_13_16_page_mode_typing_both_ways(alice, ua, run_id):
    alice.send_message(ROMEO_PAGE, None, extra_xml="<composing xmlns='%s'/>" % CHATSTATES)
    m = ua.wait_sip_message(lambda m: "im-iscomposing" in ctype(m), timeout=10)
    assert b"<state>active</state>" in m["body"] and b"<refresh>" in m["body"], m["body"]
    alice.send_message(ROMEO_PAGE, None, extra_xml="<paused xmlns='%s'/>" % CHATSTATES)
    m = ua.wait_sip_message(lambda m: "im-iscomposing" in ctype(m), timeout=10)
    assert b"<state>idle</state>" in m["body"], m["body"]
    text = "typed " + run_id
    alice.send_message(ROMEO_PAGE, text, extra_xml="<active xmlns='%s'/>" % CHATSTATES)
    m = ua.wait_sip_message(lambda m: ctype(m).startswith("text/plain"), timeout=10)
    assert m["body"].decode() == text
    # SIP -> XMPP: an isComposing MESSAGE is a chat state, never text
    doc = ("<?xml version='1.0' encoding='UTF-8'?><isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'>"
           "<state>active</state><refresh>60</refresh></isComposing>")
    r = ua.request("MESSAGE", ALICE_SIP, GW, from_uri="sip:romeo@%s" % MSRP_PAGE_DOMAIN, body=doc.encode(),
                   content_type="application/im-iscomposing+xml", timeout=10)
    assert r["code"] == 200, r
    c = alice.wait_message(lambda m: bare(m.frm) == ROMEO_PAGE.lower() and payload(m, CHATSTATES, "composing")
                           is not None, timeout=10, what="<composing/> from a page-mode isComposing")
    assert c.body is None, c.raw


def cpim_request(frm: str, to: str, imdn_id: str, text: str) -> bytes:
    return ("From: <%s>\r\nTo: <%s>\r\nNS: imdn <%s>\r\nimdn.Message-ID: %s\r\nDateTime: 2026-11-26T10:00:00Z\r\n"
            "imdn.Disposition-Notification: positive-delivery, display\r\n\r\n"
            "Content-Type: text/plain;charset=UTF-8\r\n\r\n%s" % (frm, to, IMDN_NS, imdn_id, text)).encode()


def test_chat_17_18_page_mode_receipts_via_imdn_both_ways(alice, ua, run_id):
    romeo = "sip:romeo@%s" % MSRP_PAGE_DOMAIN
    # SIP -> XMPP: the IMDN request becomes <request/> + <markable/>; alice's receipt and marker come back
    text = "imdn please " + run_id
    r = ua.request("MESSAGE", ALICE_SIP, GW, from_uri=romeo, body=cpim_request(romeo, ALICE_SIP, "im" + run_id, text),
                   content_type="message/cpim", timeout=10)
    assert r["code"] == 200, r
    got = alice.wait_message(lambda m: m.body == text, timeout=10)
    assert payload(got, RECEIPTS, "request") is not None and payload(got, MARKERS, "markable") is not None, got.raw
    # no notification before alice's client says so
    time.sleep(1)
    assert not [m for m in ua.messages if b"imdn+xml" in m["body"]], "a notification nobody sent"
    alice.send_message(got.frm, None, extra_xml="<received xmlns='%s' id='%s'/>" % (RECEIPTS, got.id))
    n = ua.wait_sip_message(lambda m: b"<delivered/>" in m["body"], timeout=10)
    assert ctype(n).startswith("message/cpim") and ("<message-id>im%s</message-id>" % run_id).encode() in n["body"], \
        n["body"]
    alice.send_message(got.frm, None, extra_xml="<displayed xmlns='%s' id='%s'/>" % (MARKERS, got.id))
    n = ua.wait_sip_message(lambda m: b"<displayed/>" in m["body"], timeout=10)
    assert ("<message-id>im%s</message-id>" % run_id).encode() in n["body"], n["body"]
    # XMPP -> SIP: romeo's client speaks IMDN now, so alice's <request/> becomes an IMDN request ...
    mid = alice.send_message(ROMEO_PAGE, "got it? " + run_id, extra_xml="<request xmlns='%s'/>" % RECEIPTS)
    m = ua.wait_sip_message(lambda m: ("got it? " + run_id).encode() in m["body"], timeout=10)
    assert ctype(m).startswith("message/cpim"), ctype(m)
    imdn_id = re.search(rb"imdn\.Message-ID: (\S+)", m["body"]).group(1).decode()
    assert re.search(rb"imdn\.Disposition-Notification: [^\r\n]*positive-delivery", m["body"]), m["body"]
    time.sleep(1)
    assert not [x for x in alice.messages if payload(x, RECEIPTS, "received") is not None
                and payload(x, RECEIPTS, "received").get("id") == mid], "receipt from a bare 200"
    # ... and romeo's delivery notification becomes alice's receipt
    xml = ("<?xml version='1.0' encoding='UTF-8'?><imdn xmlns='urn:ietf:params:xml:ns:imdn'><message-id>%s"
           "</message-id><datetime>2026-11-26T10:00:01Z</datetime><delivery-notification><status><delivered/>"
           "</status></delivery-notification></imdn>" % imdn_id)
    body = ("From: <%s>\r\nTo: <%s>\r\nNS: imdn <%s>\r\nimdn.Message-ID: n%s\r\n\r\nContent-Type: message/imdn+xml\r\n"
            "Content-Disposition: notification\r\n\r\n%s" % (romeo, ALICE_SIP, IMDN_NS, run_id, xml)).encode()
    r = ua.request("MESSAGE", ALICE_SIP, GW, from_uri=romeo, body=body, content_type="message/cpim", timeout=10)
    assert r["code"] == 200, r
    alice.wait_message(lambda x: payload(x, RECEIPTS, "received") is not None
                       and payload(x, RECEIPTS, "received").get("id") == mid, timeout=10,
                       what="<received/> from an IMDN delivery notification")


def test_chat_12_bound_resource_leaving_ends_the_session(alice, ua, run_id):
    alice.send_presence(to=ROMEO)                       # directed presence: the server will tell stox when it ends
    alice.send_message(ROMEO, "before leaving " + run_id)
    s = ua.wait_session(15)
    s.wait_message(lambda m: m.get("text") == "before leaving " + run_id, timeout=10)
    alice.send_presence(to=ROMEO, type="unavailable")
    assert s.wait_bye(timeout=10), "CHAT-12: the resource went unavailable, the session must end with BYE"


def test_chat_lost_tcp_connection_next_message_opens_a_new_session(alice, ua, run_id):
    alice.send_message(ROMEO, "first " + run_id)
    s = ua.wait_session(15)
    s.wait_message(lambda m: m.get("text") == "first " + run_id, timeout=10)
    s.wait_connected(5)
    s.conn.close()                                      # the MSRP connection dies under the session
    assert s.wait_bye(timeout=10), "stox must end a session whose MSRP connection is gone (BYE)"
    alice.send_message(ROMEO, "after the loss " + run_id)
    try:
        s2 = ua.wait_session(15)
    except TimeoutError:
        # Say where the message went instead: page mode, an error, or nowhere.
        raise AssertionError("no new session for the message after the loss; romeo got %s; alice got errors %s" % (
            [(r["method"], r["headers"].get("call-id")) for r in ua.requests],
            [m.raw for m in alice.messages if m.type == "error"])) from None
    s2.wait_message(lambda m: m.get("text") == "after the loss " + run_id, timeout=10)
    errors = [m.raw for m in alice.messages if m.type == "error"]
    assert not errors, "no error expected, the message has a new session: %s" % errors


def test_chat_21_message_over_the_peers_max_size_is_a_policy_violation(alice, ua, run_id):
    ua.max_size = 1000                                  # our answer says a=max-size:1000
    alice.send_message(ROMEO, "small first " + run_id)
    s = ua.wait_session(15)
    s.wait_message(lambda m: m.get("text") == "small first " + run_id, timeout=10)
    big_id = alice.send_message(ROMEO, "y" * 2000)
    err = alice.wait_message(lambda m: m.id == big_id and m.type == "error", timeout=10,
                             what="the error for a message over the peer's a=max-size")
    assert err.error_condition == "policy-violation", err.raw
    assert not [m for m in s.messages if m.get("text", "").startswith("yyyy")], "oversized message was sent"
    alice.send_message(ROMEO, "small again " + run_id)
    s.wait_message(lambda m: m.get("text") == "small again " + run_id, timeout=10)


def test_chat_14_message_then_gone_is_delivered_in_the_session_before_bye(alice, ua, run_id):
    alice.send_message(ROMEO, "open " + run_id)
    s = ua.wait_session(15)
    s.wait_message(lambda m: m.get("text") == "open " + run_id, timeout=10)
    # a chat window closed right after a last message: both in one go
    alice.send_message(ROMEO, "last words " + run_id, extra_xml="<gone xmlns='%s'/>" % CHATSTATES)
    s.wait_message(lambda m: m.get("text") == "last words " + run_id, timeout=10)
    assert s.wait_bye(timeout=10), "CHAT-14: <gone/> ends the session with BYE"
    time.sleep(1)
    assert len(ua.sessions) == 1, "the last message must not need a new session (%d INVITEs)" % len(ua.sessions)


def test_chat_xmpp_bounce_of_a_session_message_becomes_a_failure_report(stox, ua, run_id):
    """A session to an XMPP user who does not exist: the SEND gets its hop-by-hop 200, the XMPP server bounces
    the stanza, and the SIP sender learns it from a failure REPORT (RFC 4975 §7.1.2): nothing is lost silently."""
    s = ua.invite("sip:nobody-%s@%s" % (run_id, XMPP_DOMAIN), via_host_port=GW, from_uri="sip:romeo@%s" % MSRP_DOMAIN)
    mid = s.send("anyone there? " + run_id, failure_report="yes")
    assert s.wait_response(mid, timeout=5) == 200
    rep = s.wait_report(mid, timeout=10)
    assert rep["code"] >= 400, "a failure status expected, got %r" % rep
