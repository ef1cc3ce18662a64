"""SIP over TLS against the real XMPP servers (GEN-3, GEN-4).

The SIP peers: baresip 1.0 over TLS both ways (tls_peer.BaresipTls, started with a config of its
own: the kit's start.sh has no TLS settings), and tls_peer.py on Python's ssl module (OpenSSL) for
what baresip cannot be asked to show: a TLS client into stox's listener (127.0.0.1:GW_TLS_PORT)
that checks the served certificate, and a TLS UAS that stox reaches through the route
"tls.test" = ";transport=tls". Certificates are made by the openssl CLI in the run directory
(conftest.tls_dir): a private CA, which stox trusts through [sip.tls] ca_file and the Python client
through its context, and the gateway's and the UAS's certificates, both for IP 127.0.0.1.
"""
import shutil

import pytest

from tls_peer import BaresipTls, TlsClient, TlsUas, fingerprint_pem, issue
from topology import (BARESIP_TLS, BARESIP_TLS_DOMAIN, COMPONENT, GW_TLS_PORT, TLS_UAS_DOMAIN, TLS_UAS_PORT,
                      XMPP_DOMAIN, sip_jid)
from conftest import tls_dir


@pytest.fixture
def baresip_tls(kit, stox):
    b = BaresipTls(kit, tls_dir(stox.state_dir), "bstls", BARESIP_TLS[0], BARESIP_TLS[1], GW_TLS_PORT,
                   "sip:alice@%s" % XMPP_DOMAIN)
    b.start()
    yield b
    b.stop()


def test_gen_3_baresip_over_tls_both_ways(alice, baresip_tls, stox, run_id):
    """baresip, whose only way to stox is TLS (outbound proxy = the TLS listener), reaches alice;
    alice's answer reaches baresip's TLS port (route ;transport=tls, baresip's certificate verified
    against ca_file)."""
    text = "from baresip over tls " + run_id
    out = baresip_tls.ctrl("message " + text)
    msg = alice.wait_message(lambda m: m.body == text, timeout=10,
                             what="baresip's MESSAGE over TLS (ctrl output: %s)" % out.strip())
    assert msg.frm.split("/")[0] == "bstls@%s" % COMPONENT, msg.raw
    reply = "to baresip over tls " + run_id
    alice.send_message(sip_jid("bstls", BARESIP_TLS_DOMAIN), reply)
    baresip_tls.wait_log('"%s"' % reply, timeout=10)
    errors = alice.settle(lambda m: m.type == "error", quiet=1.0)
    assert errors == [], "alice got an error for a message baresip received: %s" % [e.raw for e in errors]


def test_gen_3_sip_message_over_tls_reaches_alice(alice, stox, run_id):
    """A MESSAGE over TLS (server certificate verified by OpenSSL against the test CA) gets 200 and
    reaches alice through the real XMPP server."""
    certs = tls_dir(stox.state_dir)
    c = TlsClient(certs / "ca.crt", GW_TLS_PORT)
    try:
        assert c.peer_fingerprint == fingerprint_pem(certs / "gw.crt"), "stox serves [sip.tls] cert_file"
        marker = "over-tls-" + run_id
        resp = c.transact("MESSAGE", "sip:alice@%s" % XMPP_DOMAIN, frm="sip:tlsuser@127.0.0.1",
                          body=marker.encode(), content_type="text/plain;charset=UTF-8")
    finally:
        c.close()
    assert resp is not None and resp.status == 200, "MESSAGE over TLS: expected 200, got %r" % (
        resp.start if resp else None)
    assert (resp.get("via") or "").startswith("SIP/2.0/TLS"), resp.describe()
    msg = alice.wait_message(lambda m: m.body == marker, timeout=10, what="message sent over TLS")
    assert msg.frm.split("/")[0] == "tlsuser@%s" % COMPONENT, msg.raw


def test_gen_4_sips_request_uri_over_tls_still_gets_403(alice, stox, run_id):
    """TLS on the SIP leg does not lift GEN-4: XMPP cannot promise TLS on every hop, so a sips:
    Request-URI is refused with 403 and nothing reaches alice."""
    c = TlsClient(tls_dir(stox.state_dir) / "ca.crt", GW_TLS_PORT)
    marker = "sips-" + run_id
    try:
        resp = c.transact("MESSAGE", "sips:alice@%s" % XMPP_DOMAIN, frm="sips:tlsuser@127.0.0.1",
                          body=marker.encode(), content_type="text/plain")
    finally:
        c.close()
    assert resp is not None and resp.status == 403, "sips: over TLS: expected 403, got %r" % (
        resp.start if resp else None)
    assert alice.settle(lambda m: m.body == marker, quiet=1.5) == [], "a sips: message reached alice"


def test_gen_3_xmpp_message_goes_out_over_tls_to_a_tls_uas(alice, stox, run_id):
    """alice -> romeo\\40tls.test: stox opens TLS to the UAS (verifying its certificate against
    ca_file), sends the MESSAGE with a TLS Via, and alice gets no error for the 200."""
    uas = TlsUas(tls_dir(stox.state_dir), TLS_UAS_PORT).start()
    try:
        marker = "to-tls-uas-" + run_id
        alice.send_message(sip_jid("romeo", TLS_UAS_DOMAIN), marker)
        req = uas.wait_request(lambda m: m.body == marker.encode(), timeout=10)
        assert req.method == "MESSAGE", req.describe()
        assert req.ruri == "sip:romeo@%s" % TLS_UAS_DOMAIN, req.describe()
        assert (req.get("via") or "").startswith("SIP/2.0/TLS"), req.describe()
        errors = alice.settle(lambda m: m.type == "error", quiet=1.5)
        assert errors == [], "alice got an error for a message the UAS accepted: %s" % [e.raw for e in errors]
        assert uas.handshake_errors == [], uas.handshake_errors
    finally:
        uas.stop()


def test_reload_swaps_the_tls_certificate_for_new_connections(stox, run_id):
    """A renewed certificate (new files at the same paths) + SIGHUP: the next handshake gets it, a
    connection opened before keeps working; a key that does not match is refused and the running
    certificate stays."""
    certs = tls_dir(stox.state_dir)
    old = TlsClient(certs / "ca.crt", GW_TLS_PORT)
    before = old.peer_fingerprint
    try:
        # A half-done renewal: a new certificate, the old key. Refused whole.
        renewal = certs / ("renewal-" + run_id)
        renewal.mkdir()
        for f in ("ca.crt", "ca.key"):
            shutil.copy(certs / f, renewal / f)
        issue(renewal, "gw")
        shutil.copy(renewal / "gw.crt", certs / "gw.crt")
        line = stox.reload(stox.config.read_text())
        assert "reload refused" in line and "does not match" in line, line
        c = TlsClient(certs / "ca.crt", GW_TLS_PORT)
        assert c.peer_fingerprint == before, "a refused reload keeps the running certificate"
        c.close()

        # The whole renewal.
        shutil.copy(renewal / "gw.key", certs / "gw.key")
        line = stox.reload(stox.config.read_text())
        assert "configuration reloaded" in line and "sip.tls certificate" in line, line
        new = TlsClient(certs / "ca.crt", GW_TLS_PORT)
        try:
            assert new.peer_fingerprint == fingerprint_pem(renewal / "gw.crt") != before
            resp = new.transact("OPTIONS", "sip:%s" % COMPONENT)
            assert resp is not None and resp.status == 200, resp
        finally:
            new.close()
        resp = old.transact("OPTIONS", "sip:%s" % COMPONENT)
        assert resp is not None and resp.status == 200, "the connection opened before the reload still works"
    finally:
        old.close()

