"""[access]: who may use the gateway (hardening, RFC 3261 §22 digest; RFC 7247 §8).

The suite's stox trusts only 127.0.0.1 (every peer of the topology) and challenges any other
source; UNTRUSTED_IP (127.0.0.2, also loopback) plays the stranger. SIPp answers the challenge
with its own digest code; the raw-client tests compute the answers here (RFC 7616 §3.4.1), apart
from stox's implementation.
"""
import hashlib
import re
import uuid

from sip_helper import run_uac, sip_transaction
from topology import (COMPONENT, GW_PORT, SIP_AUTH_PASSWORD, SIP_AUTH_USER, UNTRUSTED_IP, UAC_PORT,
                      XMPP_DOMAIN)

ALICE_URI = "sip:alice@%s" % XMPP_DOMAIN


def digest_param(challenge: str, name: str) -> str:
    m = re.search(r'%s="?([^",]*)"?' % name, challenge)
    assert m, "no %s in WWW-Authenticate %r" % (name, challenge)
    return m.group(1)


def authorization(challenge: str, user: str, password: str, method: str, uri: str) -> str:
    realm, nonce = digest_param(challenge, "realm"), digest_param(challenge, "nonce")
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5("%s:%s:%s" % (user, realm, password)), md5("%s:%s" % (method, uri))
    cnonce = uuid.uuid4().hex[:8]
    response = md5("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, ha2))
    return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, '
            'qop=auth, nc=00000001, cnonce="%s"' % (user, realm, nonce, uri, response, cnonce))


def message(body: str, user: str, call_id: str, cseq: int, auth=None):
    """kwargs of sip_transaction for a MESSAGE from sip:USER@127.0.0.1 to alice, from UNTRUSTED_IP."""
    extra = ["Authorization: " + auth] if auth else []
    return dict(frm="sip:%s@127.0.0.1" % user, body=body.encode(), content_type="text/plain",
                call_id=call_id, cseq=cseq, extra_headers=extra, source=UNTRUSTED_IP, port=GW_PORT)


def challenge_of(resp) -> str:
    assert resp is not None, "no final response from stox"
    assert resp.status == 401, "expected 401 for a source outside sip_trusted, got %s" % resp.start
    value = resp.get("www-authenticate")
    assert value and value.startswith("Digest "), "401 without a digest WWW-Authenticate: %r" % value
    assert digest_param(value, "realm") == COMPONENT, value
    return value


def test_access_sipp_from_untrusted_source_answers_the_challenge(alice, kit, run_id, xmpp_server):
    """SIPp from 127.0.0.2: 401 with a digest challenge, its answer with carol's password gets 200,
    and alice receives the message from carol@sip.localhost."""
    body = "authenticated hello " + run_id
    res = run_uac(str(kit.run), "uac_message_auth.xml", {
        "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": SIP_AUTH_USER, "body": body},
        local_port=UAC_PORT, local_ip=UNTRUSTED_IP, timeout=15,
        extra=["-au", SIP_AUTH_USER, "-ap", SIP_AUTH_PASSWORD])
    assert res.rc == 0, "SIPp's challenged MESSAGE did not end in 200:\n%s" % res.summary()
    first = [m for m in res.messages if m.is_response][0]
    challenge_of(first)
    msg = alice.wait_message(lambda m: m.body is not None and run_id in m.body, timeout=10,
                             what="the authenticated message")
    assert msg.frm.split("/")[0] == "%s@%s" % (SIP_AUTH_USER, COMPONENT), msg.raw


def test_access_untrusted_source_without_or_with_wrong_credentials_reaches_nobody(alice, stox, run_id):
    """No Authorization: 401. A wrong password: 401 again. carol's password with another From: 403.
    None of them reaches alice; the correct answer (computed here) does."""
    call_id = "acc-" + run_id
    first = sip_transaction("MESSAGE", ALICE_URI, **message("no creds " + run_id, SIP_AUTH_USER, call_id, 1))
    challenge = challenge_of(first)

    wrong_password = "nope-" + run_id
    wrong = authorization(challenge, SIP_AUTH_USER, wrong_password, "MESSAGE", ALICE_URI)
    again = sip_transaction("MESSAGE", ALICE_URI, **message("wrong pw " + run_id, SIP_AUTH_USER, call_id, 2, wrong))
    challenge_of(again)

    good = authorization(challenge, SIP_AUTH_USER, SIP_AUTH_PASSWORD, "MESSAGE", ALICE_URI)
    forged = sip_transaction("MESSAGE", ALICE_URI,
                             **message("forged " + run_id, "mallory", "acc2-" + run_id, 1, good))
    assert forged is not None and forged.status == 403, \
        "carol's credentials with From mallory: expected 403, got %s" % (forged and forged.start)

    ok = sip_transaction("MESSAGE", ALICE_URI, **message("right pw " + run_id, SIP_AUTH_USER, call_id, 3, good))
    assert ok is not None and ok.status == 200, "the correct digest answer: expected 200, got %s" % (
        ok and ok.start)
    got = alice.wait_message(lambda m: m.body is not None and run_id in m.body, timeout=10,
                             what="the message with the right password")
    assert got.body.startswith("right pw"), \
        "the first message alice got is %r: a challenged or refused request was delivered" % got.body
    leaked = [m.body for m in alice.messages if m.body and run_id in m.body and not m.body.startswith("right pw")]
    assert not leaked, "refused requests reached alice: %r" % leaked
    log = stox.log_text()  # RUST_LOG=stox=debug: the gate's decisions are logged, never the password
    assert "challenged by [access]" in log, "the challenges are not in the debug log"
    assert SIP_AUTH_PASSWORD not in log and wrong_password not in log, "a password reached the stox log"


def test_access_trusted_source_needs_no_credentials(alice, stox, run_id):
    """The same MESSAGE from 127.0.0.1 (in sip_trusted) is served without a challenge."""
    kw = message("trusted " + run_id, "dave", "acc3-" + run_id, 1)
    kw["source"] = "127.0.0.1"
    resp = sip_transaction("MESSAGE", ALICE_URI, **kw)
    assert resp is not None and resp.status == 200, resp and resp.start
    alice.wait_message(lambda m: m.body is not None and run_id in m.body, timeout=10, what="trusted message")


def test_access_options_from_untrusted_source_still_answered(stox):
    """OPTIONS (keepalives, monitoring) reaches nobody and stays answered for every source."""
    resp = sip_transaction("OPTIONS", "sip:%s" % COMPONENT, source=UNTRUSTED_IP, port=GW_PORT)
    assert resp is not None and resp.status == 200, resp and resp.start

