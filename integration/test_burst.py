"""200 messages each way in a burst: exactly once and in order (IM-1, IM-5; transaction handling)."""
import collections
import re

from sip_helper import run_uac
from topology import UAC_PORT, UAS_OK_DOMAIN, XMPP_DOMAIN, sip_jid

N = 200


def check_sequence(seen: list[int], what: str):
    counts = collections.Counter(seen)
    missing = [i for i in range(1, N + 1) if counts[i] == 0]
    dups = {i: c for i, c in counts.items() if c > 1}
    out_of_order = [(a, b) for a, b in zip(seen, seen[1:]) if b < a]
    problems = []
    if missing:
        problems.append("%d missing (first: %s)" % (len(missing), missing[:15]))
    if dups:
        problems.append("%d duplicated (counter: copies) %s" % (len(dups), dict(list(dups.items())[:15])))
    if out_of_order:
        problems.append("%d out-of-order pairs (first: %s)" % (len(out_of_order), out_of_order[:10]))
    assert not problems, "%s: %s; arrival order: %s" % (what, "; ".join(problems), seen[:60])


def test_im_1_burst_xmpp_to_sip_exactly_once_in_order(alice, uas, run_id):
    to = sip_jid("burst", UAS_OK_DOMAIN)
    marker = "xburst-%s" % run_id
    mark = uas.ok.mark()
    ids = [alice.send_message(to, "%s %d" % (marker, i), id="%s-%d" % (marker, i)) for i in range(1, N + 1)]
    got = uas.ok.wait_requests(mark, lambda m: marker.encode() in m.body, count=N, timeout=60)
    # give duplicates / stragglers a moment to show up, then count by transaction
    got = uas.ok.wait_requests(mark, lambda m: marker.encode() in m.body, count=N + 1, timeout=1.5)
    idset = set(ids)
    errors = [m for m in alice.messages if m.type == "error" and m.id in idset]
    seen = []
    for req in got:
        m = re.search(rb"%s (\d+)" % marker.encode(), req.body)
        seen.append(int(m.group(1)))
    assert not errors, "%d of the burst messages came back as XMPP errors, first: %s" % (len(errors), errors[0].raw)
    check_sequence(seen, "XMPP->SIP burst of %d counted at the SIPp UAS (%d transactions)" % (N, len(got)))


def test_im_5_burst_sip_to_xmpp_exactly_once_in_order(alice, kit, run_id):
    marker = "sburst-%s" % run_id
    res = run_uac(str(kit.run), "uac_message_burst.xml", {
        "ruri_user": "alice", "ruri_host": XMPP_DOMAIN, "from_user": "burster-" + run_id, "body": marker},
        calls=N, rate=40, limit=40, local_port=UAC_PORT, timeout=60)
    codes = collections.Counter(m.status for m in res.finals)
    assert res.rc == 0 and codes.get(200, 0) >= N, \
        "SIPp burst of %d MESSAGEs: final responses %s (every one must be 200)\n%s" % (N, dict(codes), res.summary())
    msgs = alice.collect(lambda m: m.body is not None and marker in m.body, N, timeout=30)
    msgs = alice.settle(lambda m: m.body is not None and marker in m.body, quiet=1.5)
    seen = [int(re.search(r"%s (\d+)" % marker, m.body).group(1)) for m in msgs]
    check_sequence(seen, "SIP->XMPP burst of %d received by alice (%d messages)" % (N, len(msgs)))
