"""Malformed SIP input and odd XMPP stanzas (IM-12, COMP-4, IM-14, ERR-13): the gateway answers with
errors, never crashes, and still works afterwards."""
import time

import pytest

from sip_helper import fuzz, run_uac, sip_transaction, sipsak_ok
from topology import COMPONENT, GW_PORT, UAC_PORT, UAS_OK_DOMAIN, XMPP_DOMAIN, sip_jid

UNKNOWN_NS = "urn:x-stox-it:unknown"
ACCEPTED_IQ_CONDITIONS = {"service-unavailable", "feature-not-implemented"}

# JIDs that cannot be mapped to any SIP URI: each message to them must come back as an error
WEIRD_JIDS = [
    "\\40@" + COMPONENT,                      # SIP AOR "@"
    "x\\40@" + COMPONENT,                     # empty host
    "\\40%s@%s" % (UAS_OK_DOMAIN, COMPONENT),  # empty user
    "x%@" + COMPONENT,                        # alias form with empty host
    "%" + UAS_OK_DOMAIN + "@" + COMPONENT,    # alias form with empty user
]


def assert_gateway_works(stox, alice, uas, kit, tag):
    assert stox.alive(), "stox process is gone after %s:\n%s" % (tag, stox.tail(60))
    assert sipsak_ok(), "stox no longer answers sipsak OPTIONS on :%d after %s" % (GW_PORT, tag)
    resp = sip_transaction("OPTIONS", "sip:127.0.0.1:%d" % GW_PORT, transport="tcp")
    assert resp is not None and resp.status == 200, "no 200 to OPTIONS over TCP after %s: %r" % (
        tag, resp.start if resp else None)
    marker = "after-%s-%d" % (tag, int(time.time() * 1000))
    res = run_uac(str(kit.run), "uac_message.xml", {
        "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": "survivor", "subject": "still there",
        "lang": "en", "body": marker}, local_port=UAC_PORT, timeout=15)
    assert res.rc == 0 and res.final is not None and res.final.status == 200, \
        "a normal SIP MESSAGE fails after %s\n%s" % (tag, res.summary())
    alice.wait_message(lambda m: m.body is not None and marker in m.body, timeout=10,
                       what="normal SIP->XMPP message after %s" % tag)
    mark = uas.ok.mark()
    alice.send_message(sip_jid("survivor", UAS_OK_DOMAIN), "x" + marker)
    got = uas.ok.wait_requests(mark, lambda m: ("x" + marker).encode() in m.body, timeout=10)
    assert got, "a normal XMPP->SIP message does not arrive after %s" % tag


def test_comp_4_unknown_iq_gets_error(alice, stox):
    for to in (COMPONENT, "bob@" + COMPONENT, "bob@%s/res" % COMPONENT, sip_jid("x", UAS_OK_DOMAIN)):
        for typ in ("get", "set"):
            kind, iq = alice.iq(to, typ, "<query xmlns='%s'><x/></query>" % UNKNOWN_NS, timeout=5)
            assert kind == "error", "unknown IQ %s to %s: expected an IQ error, got %s:\n%s" % (typ, to, kind, iq["raw"])
            assert iq["error_condition"] in ACCEPTED_IQ_CONDITIONS, \
                "unknown IQ %s to %s: condition %r, expected one of %s:\n%s" % (
                    typ, to, iq["error_condition"], sorted(ACCEPTED_IQ_CONDITIONS), iq["raw"])
            assert iq["error_type"], "IQ error without type (ERR-13):\n%s" % iq["raw"]


def test_comp_4_weird_jids_get_error(alice, stox, uas, run_id):
    ids = {}
    for n, jid in enumerate(WEIRD_JIDS):
        ids[alice.send_message(jid, "weird %s %d" % (run_id, n), id="weird-%s-%d" % (run_id, n))] = jid
    missing = []
    for mid, jid in ids.items():
        try:
            alice.wait_message(lambda m, i=mid: m.id == i and m.type == "error", timeout=8)
        except AssertionError:
            missing.append(jid)
    assert not missing, "no <message type='error'/> for messages to unmappable JIDs: %s" % missing


def test_im_14_error_and_groupchat_not_forwarded(alice, stox, uas, run_id):
    """type='error' and type='groupchat' messages to a SIP JID must not become SIP MESSAGEs, and an
    error is never answered with an error."""
    to = sip_jid("x", UAS_OK_DOMAIN)
    mark = uas.ok.mark()
    eid = alice.send_message(to, "err %s" % run_id, type="error", extra_xml=(
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"))
    alice.send_message(to, "gc %s" % run_id, type="groupchat")
    # a control message afterwards shows that the gateway processed the earlier ones
    alice.send_message(to, "ctl %s" % run_id)
    uas.ok.wait_requests(mark, lambda m: ("ctl " + run_id).encode() in m.body, timeout=10)
    time.sleep(1.0)
    got = uas.ok.wait_requests(mark, lambda m: run_id.encode() in m.body, count=3, timeout=0)
    bodies = [g.body.decode(errors="replace") for g in got]
    assert any(b.startswith("ctl ") for b in bodies), "control message did not arrive: %s" % bodies
    assert not any(b.startswith(("err ", "gc ")) for b in bodies), \
        "an error/groupchat message was forwarded to SIP: %s" % bodies
    answers = [m.raw for m in alice.messages if m.id == eid]
    assert not answers, "the gateway answered an error stanza: %s" % answers


def test_im_12_malformed_input_survives(alice, stox, uas, kit, run_id):
    """A few thousand malformed/truncated/oversized SIP requests (UDP + TCP) plus odd stanzas; then
    stox still answers OPTIONS, normal messages go through both ways, and the process is alive."""
    st = fuzz("127.0.0.1", GW_PORT, udp_count=3000, tcp_count=300, max_seconds=60, seed=7106)
    print("fuzzer: %r" % st)
    assert st.udp_sent + st.tcp_sent >= 1000, "fuzzer could send only %r" % st
    assert stox.alive(), "stox died under SIP fuzzing (%r):\n%s" % (st, stox.tail(80))
    # odd stanzas
    big = "B" * 20000
    alice.send_message(sip_jid("big", UAS_OK_DOMAIN), big, id="big-" + run_id)
    alice.send_message(sip_jid("x", UAS_OK_DOMAIN), None, id="nobody-" + run_id,
                       extra_xml="<active xmlns='http://jabber.org/protocol/chatstates'/>")
    alice.send_message(COMPONENT, "to the component itself " + run_id, id="comp-" + run_id)
    alice.send_message("ü😀\\20x@" + COMPONENT, "unicode " + run_id, id="uni-" + run_id)
    alice.send_message(sip_jid("x", UAS_OK_DOMAIN), "bad lang " + run_id, lang="x-" + "a" * 200)
    alice.send_message(sip_jid("x", UAS_OK_DOMAIN), "bad thread " + run_id, thread="t h r e a d <>;@\"" * 20)
    alice.send_raw("<iq type='result' to='%s' id='unsolicited-%s'/>" % (COMPONENT, run_id))
    alice.send_raw("<iq type='error' to='%s' id='unsolicited-err-%s'><error type='cancel'>"
                   "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>" % (COMPONENT, run_id))
    alice.send_raw("<presence to='%s' type='probe'/>" % sip_jid("x", UAS_OK_DOMAIN))
    kind, iq = alice.iq(COMPONENT, "get", "<query xmlns='%s'/>" % UNKNOWN_NS, timeout=5)
    assert kind == "error", "unknown IQ after the odd stanzas: expected an error, got %s:\n%s" % (kind, iq["raw"])
    time.sleep(1)
    assert_gateway_works(stox, alice, uas, kit, "fuzzing")


def _rss_kib(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


# ezk keeps a UDP server transaction for Timer J (64*T1 = 32 s) after its final response, so
# memory is compared after that state has expired, not right after a round of fuzzing.
TRANSACTION_STATE_SECS = 34
LEAK_BUDGET_KIB = 2 * 1024  # ~1 KiB per request of the round; observed drift: < 100 KiB


@pytest.mark.one_server("prosody")
def test_im_12_malformed_input_does_not_leak(stox, run_id):
    """The same round of malformed SIP, sent twice: once the transaction state of a round has
    expired, the second round must not leave the process larger than the first did (a leak
    grows with every round; allocator caches and transaction state do not)."""
    pid = stox.proc.pid
    fuzz("127.0.0.1", GW_PORT, udp_count=2000, tcp_count=100, max_seconds=40, seed=4242)
    time.sleep(TRANSACTION_STATE_SECS)
    after_first = _rss_kib(pid)
    fuzz("127.0.0.1", GW_PORT, udp_count=2000, tcp_count=100, max_seconds=40, seed=4242)
    time.sleep(TRANSACTION_STATE_SECS)
    after_second = _rss_kib(pid)
    print("RSS after round 1: %d KiB, after round 2: %d KiB" % (after_first, after_second))
    assert stox.alive(), "stox died under SIP fuzzing:\n%s" % stox.tail(60)
    assert after_second - after_first < LEAK_BUDGET_KIB, (
        "RSS grew by %d KiB over a second identical round of malformed input (%d -> %d KiB): a leak"
        % (after_second - after_first, after_first, after_second))
    assert sipsak_ok(), "stox no longer answers OPTIONS after the fuzzing rounds"
