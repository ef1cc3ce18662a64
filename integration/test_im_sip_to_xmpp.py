"""SIP -> XMPP pager-mode messages (IM-5, IM-6, IM-8, IM-11, ERR-7)."""
import socket
import time

from sip_helper import build_request, parse_sip, run_uac, sip_transaction
from topology import COMPONENT, GW_PORT, UAC_PORT, XMPP_DOMAIN


def norm_body(text: str) -> str:
    """XML parsers turn CRLF into LF, and SIPp ends every body with CRLF: compare modulo that."""
    return text.replace("\r\n", "\n").rstrip("\n")


def test_im_6_sip_to_xmpp_fields(alice, kit, run_id, xmpp_server):
    """SIPp UAC -> gateway: body (UTF-8 + emoji), Subject, Content-Language, Call-ID arrive intact; SIPp gets 200."""
    body = "Grüße aus SIPp ✓ 😀🎉 <&> %s" % run_id
    subject = "Betreff ⚡ %s" % run_id
    from_user = "sippuser-" + run_id
    res = run_uac(str(kit.run), "uac_message.xml", {
        "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": from_user, "subject": subject,
        "lang": "de", "body": body}, local_port=UAC_PORT, timeout=15)
    assert res.final is not None and res.final.status == 200, \
        "MESSAGE sip:alice@%s: expected 200 from the gateway\n%s" % (XMPP_DOMAIN, res.summary())
    assert res.rc == 0, "SIPp reported a failure:\n%s" % res.summary()
    sent = res.sent_requests[0]
    assert norm_body(sent.text) == body, "SIPp sent an unexpected body %r" % sent.body
    msg = alice.wait_message(lambda m: m.body is not None and run_id in m.body, timeout=10,
                             what="message with body containing %s" % run_id)
    raw = "\n--- delivered to alice ---\n" + msg.raw
    assert msg.frm.split("/")[0] == "%s@%s" % (from_user, COMPONENT), \
        "from %r, expected %s@%s (sip:%s@127.0.0.1 is in the default SIP domain)%s" % (
            msg.frm, from_user, COMPONENT, from_user, raw)
    assert msg.to.split("/")[0] == "alice@%s" % XMPP_DOMAIN, "to %r%s" % (msg.to, raw)
    assert msg.type == "chat", "type %r, expected 'chat' (messages.inbound_type = \"chat\")%s" % (msg.type, raw)
    assert norm_body(msg.body) == body, "body differs:\n sent %r\n got  %r%s" % (body, msg.body, raw)
    assert msg.subject == subject, "subject %r, expected %r%s" % (msg.subject, subject, raw)
    assert msg.lang == "de", "<message xml:lang=%r> (its <body xml:lang=%r>), expected xml:lang='de' on the " \
        "message stanza (Content-Language, IM-6/IM-11)%s" % (msg.lang, msg.body_lang, raw)
    assert msg.thread == sent.get("call-id"), "thread %r, expected the Call-ID %r (IM-6)%s" % (
        msg.thread, sent.get("call-id"), raw)


def test_im_5_baresip_to_xmpp_via_kamailio(alice, baresip, run_id):
    """baresip bob -> sip:alice@localhost -> (Kamailio) -> gateway -> alice@localhost from bob@sip.localhost."""
    text = "hi alice 😀 from baresip " + run_id
    out = baresip.ctrl("message " + text, listen=1.0)
    msg = alice.wait_message(lambda m: m.body is not None and run_id in m.body, timeout=10,
                             what="message from baresip (ctrl output: %s)" % out.strip())
    assert msg.frm.split("/")[0] == "bob@%s" % COMPONENT, "from %r, expected bob@%s:\n%s" % (msg.frm, COMPONENT, msg.raw)
    assert norm_body(msg.body) == text, "body %r, expected %r" % (msg.body, text)


def test_err_7_message_to_nonexistent_xmpp_user(stox, kit, run_id, xmpp_server):
    """The XMPP server bounces the message (user does not exist): SIP must get a 4xx/6xx, never 200 or 503."""
    res = run_uac(str(kit.run), "uac_message_any.xml", {
        "scheme": "sip", "ruri_user": "nobody", "ruri_host": XMPP_DOMAIN, "from_user": "bouncer-" + run_id,
        "subject": "bounce", "lang": "en", "body": "to nobody " + run_id}, local_port=UAC_PORT, timeout=15)
    fin = res.final
    assert fin is not None, "no final response for MESSAGE sip:nobody@%s\n%s" % (XMPP_DOMAIN, res.summary())
    assert fin.status != 200, "MESSAGE to the non-existent XMPP user nobody@%s got 200 (the %s bounce was ignored)" % (
        XMPP_DOMAIN, xmpp_server.name)
    assert fin.status != 503, "the bounce must not map to 503 (RFC 7247 §7.1 note 5 / ERR-7):\n%s" % fin.describe()
    assert 400 <= fin.status <= 699, "expected a 4xx/6xx final response, got %r" % fin.start


def test_gen_2_message_over_tcp(alice, run_id):
    """A MESSAGE over TCP is delivered like one over UDP (GEN-2)."""
    marker = "tcp-" + run_id
    resp = sip_transaction("MESSAGE", "sip:alice@%s" % XMPP_DOMAIN, transport="tcp", port=GW_PORT,
                           frm="sip:tcpuser@127.0.0.1", body=marker.encode(), content_type="text/plain;charset=UTF-8")
    assert resp is not None and resp.status == 200, "MESSAGE over TCP: expected 200, got %r" % (
        resp.start if resp else None)
    msg = alice.wait_message(lambda m: m.body == marker, timeout=8, what="message sent over TCP")
    assert msg.frm.split("/")[0] == "tcpuser@%s" % COMPONENT


def test_im_5_retransmissions_delivered_once(alice, run_id):
    """UDP retransmissions of one MESSAGE (same branch) are one transaction: one XMPP message, and
    every copy is answered with the same final response."""
    marker = "retrans-" + run_id
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        data = build_request("MESSAGE", "sip:alice@%s" % XMPP_DOMAIN, local_port=s.getsockname()[1],
                             frm="sip:retrans@127.0.0.1", body=marker.encode(), content_type="text/plain;charset=UTF-8")
        for _ in range(3):
            s.sendto(data, ("127.0.0.1", GW_PORT))
            time.sleep(0.1)
        time.sleep(0.8)  # first copy + bounce window + the retransmissions' answers
        s.sendto(data, ("127.0.0.1", GW_PORT))  # a late retransmission after the final response
        codes, end = [], time.monotonic() + 3
        s.settimeout(0.2)
        while time.monotonic() < end:
            try:
                d, _ = s.recvfrom(65535)
            except socket.timeout:
                continue
            m = parse_sip(d)
            if m.is_response:
                codes.append(m.status)
    finally:
        s.close()
    got = alice.settle(lambda m: m.body == marker, quiet=1.0)
    assert len(got) == 1, "one MESSAGE sent 4 times (same transaction) -> %d XMPP messages" % len(got)
    finals = [c for c in codes if c >= 200]
    assert finals and set(finals) == {200}, "final responses to the copies: %s (expected only 200s)" % codes
    assert len(finals) >= 2, "the late retransmission was not answered again (got %s)" % codes
