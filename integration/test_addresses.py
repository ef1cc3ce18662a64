"""Address mapping end to end through the real servers (ADDR-4, ADDR-5, ADDR-6, ADDR-11, COMP-11)."""
import pytest

from sip_helper import sip_transaction
from topology import COMPONENT, GW_PORT, UAS_OK_DOMAIN, XMPP_DOMAIN

# XMPP -> SIP: JID the XMPP user writes to -> Request-URI expected at the SIPp UAS
JID_TO_SIP = [
    ("x%%%s@%s" % (UAS_OK_DOMAIN, COMPONENT), "sip:x@%s" % UAS_OK_DOMAIN),                  # alias form
    ("o\\27malley\\40%s@%s" % (UAS_OK_DOMAIN, COMPONENT), "sip:o'malley@%s" % UAS_OK_DOMAIN),
    ("m\\26m\\40%s@%s" % (UAS_OK_DOMAIN, COMPONENT), "sip:m&m@%s" % UAS_OK_DOMAIN),
    ("tschüss\\40%s@%s" % (UAS_OK_DOMAIN, COMPONENT), "sip:tsch%%C3%%BCss@%s" % UAS_OK_DOMAIN),
    ("a\\40b\\40%s@%s" % (UAS_OK_DOMAIN, COMPONENT), "sip:a%%40b@%s" % UAS_OK_DOMAIN),
]

# SIP -> XMPP: From URI of a MESSAGE to alice -> bare JID alice sees
SIP_TO_JID = [
    ("sip:carol@example.com", "carol\\40example.com@%s" % COMPONENT),
    ("sip:bob@127.0.0.1", "bob@%s" % COMPONENT),
    ("sip:o'malley@127.0.0.1", "o\\27malley@%s" % COMPONENT),
    ("sip:f%C3%BC@127.0.0.1", "fü@%s" % COMPONENT),
    # an '@' inside the user part: "a\\40b@sip.localhost" would read as sip:a@b, so even in the default
    # SIP domain the whole AOR is escaped (unescaped at the LAST \\40 on the way back)
    ("sip:a%40b@127.0.0.1", "a\\40b\\40127.0.0.1@%s" % COMPONENT),
]


def _ruri_equal(got: str, want: str) -> bool:
    base = got.split(";")[0]
    return base.lower() == want.lower() or base == want


@pytest.mark.parametrize("jid,ruri", JID_TO_SIP, ids=[j[0].split("@")[0] for j in JID_TO_SIP])
def test_addr_5_jid_to_sip_request_uri(alice, uas, run_id, jid, ruri):
    mark = uas.ok.mark()
    mid = alice.send_message(jid, "addr " + run_id)
    got = uas.ok.wait_requests(mark, lambda m: run_id.encode() in m.body, timeout=8)
    errs = [m.raw for m in alice.messages if m.id == mid and m.type == "error"]
    assert got, "message to %s never reached SIPp (expected %s); XMPP errors: %s" % (jid, ruri, errs or "none")
    assert _ruri_equal(got[0].ruri, ruri), "JID %s -> Request-URI %r, expected %r" % (jid, got[0].ruri, ruri)


@pytest.mark.parametrize("frm,jid", SIP_TO_JID, ids=[f[0].split("@")[0][4:] for f in SIP_TO_JID])
def test_addr_4_sip_from_to_jid(alice, run_id, frm, jid):
    marker = "from-%s" % run_id
    resp = sip_transaction("MESSAGE", "sip:alice@%s" % XMPP_DOMAIN, port=GW_PORT, frm=frm,
                           body=marker.encode(), content_type="text/plain;charset=UTF-8")
    assert resp is not None and resp.status == 200, "MESSAGE from %s: expected 200, got %r" % (
        frm, resp.start if resp else None)
    msg = alice.wait_message(lambda m: m.body == marker, timeout=8, what="message from %s" % frm)
    assert msg.frm.split("/")[0] == jid, "From %s -> JID %r, expected %r" % (frm, msg.frm, jid)


def test_addr_11_xmpp_user_via_component_domain(alice, run_id):
    """sip:alice@sip.localhost reaches the XMPP user alice@localhost too."""
    marker = "viacomp-%s" % run_id
    resp = sip_transaction("MESSAGE", "sip:alice@%s" % COMPONENT, port=GW_PORT, frm="sip:dave@127.0.0.1",
                           body=marker.encode(), content_type="text/plain;charset=UTF-8")
    assert resp is not None and resp.status == 200, "MESSAGE sip:alice@%s: expected 200, got %r" % (
        COMPONENT, resp.start if resp else None)
    msg = alice.wait_message(lambda m: m.body == marker, timeout=8)
    assert msg.to.split("/")[0] == "alice@%s" % XMPP_DOMAIN
