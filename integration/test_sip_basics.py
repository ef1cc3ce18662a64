"""Plain SIP behaviour of the gateway listener: OPTIONS (UDP and TCP) and sips: refusal (GEN-2, GEN-4)."""
import pytest

from sip_helper import run_uac, sip_transaction
from topology import GW_PORT, UAC_PORT, XMPP_DOMAIN


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_gen_2_options_200_with_allow(stox, transport):
    resp = sip_transaction("OPTIONS", "sip:127.0.0.1:%d" % GW_PORT, transport=transport)
    assert resp is not None, "no final response to OPTIONS over %s on :%d" % (transport, GW_PORT)
    assert resp.status == 200, "OPTIONS over %s: expected 200, got %r\n%s" % (transport, resp.start, resp.describe())
    allow = ",".join(resp.get_all("allow"))
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    assert allow, "200 to OPTIONS has no Allow header:\n%s" % resp.describe()
    assert {"MESSAGE", "OPTIONS"} <= methods, "Allow must list at least MESSAGE and OPTIONS, got %r" % allow


def test_gen_2_options_to_user_uri(stox):
    """OPTIONS for an XMPP user's address is answered too (never left unanswered)."""
    resp = sip_transaction("OPTIONS", "sip:alice@%s" % XMPP_DOMAIN)
    assert resp is not None, "no final response to OPTIONS sip:alice@%s" % XMPP_DOMAIN
    assert resp.status == 200, "OPTIONS sip:alice@%s: expected 200, got %r" % (XMPP_DOMAIN, resp.start)


def test_gen_4_sips_request_uri_403(stox, alice, kit, run_id):
    """A MESSAGE with a sips: Request-URI must be refused with 403 and must not reach XMPP."""
    marker = "sips-" + run_id
    res = run_uac(str(kit.run), "uac_message_any.xml", {
        "scheme": "sips", "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": "sipsuser",
        "subject": "sips", "lang": "en", "body": marker}, local_port=UAC_PORT, timeout=15)
    assert res.final is not None, "no final response to MESSAGE sips:alice@%s\n%s" % (XMPP_DOMAIN, res.summary())
    assert res.final.status == 403, "MESSAGE sips:alice@%s: expected 403, got %r\n%s" % (
        XMPP_DOMAIN, res.final.start, res.final.describe())
    # raw UDP as well (another client implementation, To also sips:)
    resp = sip_transaction("MESSAGE", "sips:alice@%s" % XMPP_DOMAIN, body=(marker + "-raw").encode(),
                           content_type="text/plain;charset=UTF-8")
    assert resp is not None and resp.status == 403, "raw MESSAGE sips:: expected 403, got %r" % (
        resp.start if resp else None)
    leaked = alice.collect(lambda m: m.body and marker in m.body, 1, timeout=1.0)
    assert not leaked, "a sips: MESSAGE was delivered to XMPP: %s" % leaked[0].raw
