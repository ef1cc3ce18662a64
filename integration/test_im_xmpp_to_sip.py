"""XMPP -> SIP pager-mode messages (IM-1, IM-2, IM-3, IM-11, ERR-8, ERR-13)."""
import re
import time

from topology import COMPONENT, UAS_404_DOMAIN, UAS_CODE_DOMAIN, UAS_OK_DOMAIN, UAS_TCP_DOMAIN, XMPP_DOMAIN, sip_jid

URI_RE = re.compile(r"<?\s*(sips?):([^@;>]+)@([^;>:]+)(?::(\d+))?")


def uri_parts(value: str):
    """('sip', user, host, port) of the first URI in a header value / Request-URI."""
    m = URI_RE.search(value or "")
    return (m.group(1), m.group(2), m.group(3).lower(), m.group(4)) if m else None


def norm_ct(value: str) -> str:
    return re.sub(r"\s+", "", (value or "")).lower().replace('"', "")


def test_im_2_xmpp_to_sip_fields(alice, uas, run_id, xmpp_server):
    """body (UTF-8 + emoji), subject, thread, xml:lang arrive intact at the SIPp UAS."""
    to = sip_jid("x", UAS_OK_DOMAIN)
    body = "Grüße aus XMPP ✓ 😀🎉 <&> '\" %s" % run_id
    subject = "Betreff ⚡ %s" % run_id
    thread = "thr-%s" % run_id
    mark = uas.ok.mark()
    mid = alice.send_message(to, body, id="im2-" + run_id, subject=subject, thread=thread, lang="de", type="chat")
    got = uas.ok.wait_requests(mark, lambda m: run_id.encode() in m.body, timeout=10)
    errs = [m for m in alice.messages if m.id == mid and m.type == "error"]
    assert got, "MESSAGE for %s never reached the SIPp UAS on %s within 10 s%s" % (
        to, UAS_OK_DOMAIN, ("; XMPP error instead: %s" % errs[0].raw) if errs else "")
    assert len(got) == 1, "expected exactly one MESSAGE transaction, got %d" % len(got)
    req = got[0]
    dump = "\n--- received by SIPp ---\n" + req.describe()
    assert uri_parts(req.ruri)[:3] == ("sip", "x", UAS_OK_DOMAIN), "Request-URI %r, expected sip:x@%s%s" % (
        req.ruri, UAS_OK_DOMAIN, dump)
    assert uri_parts(req.get("to"))[:3] == ("sip", "x", UAS_OK_DOMAIN), "To %r%s" % (req.get("to"), dump)
    frm = uri_parts(req.get("from"))
    assert frm and frm[:3] == ("sip", "alice", XMPP_DOMAIN), \
        "From %r: expected the bare JID as sip:alice@%s (ADDR-7)%s" % (req.get("from"), XMPP_DOMAIN, dump)
    assert norm_ct(req.get("content-type")) == "text/plain;charset=utf-8", \
        "Content-Type %r, expected text/plain;charset=UTF-8%s" % (req.get("content-type"), dump)
    assert req.body == body.encode("utf-8"), "body bytes differ:\n sent %r\n got  %r%s" % (
        body.encode("utf-8"), req.body, dump)
    assert req.get("subject") == subject, "Subject %r, expected %r%s" % (req.get("subject"), subject, dump)
    assert req.get("call-id") == thread, "Call-ID %r, expected the <thread/> %r (IM-2)%s" % (
        req.get("call-id"), thread, dump)
    assert (req.get("content-language") or "").lower() == "de", "Content-Language %r, expected 'de'%s" % (
        req.get("content-language"), dump)
    # a 200 from SIP must not produce an error stanza
    time.sleep(0.5)
    errs = [m for m in alice.messages if m.id == mid and m.type == "error"]
    assert not errs, "SIP answered 200 but XMPP got an error: %s" % errs[0].raw


def test_im_1_normal_message_without_type(alice, uas, run_id):
    """A <message/> without type (= normal, RFC 7572 pager mode) is forwarded as well."""
    to = sip_jid("y", UAS_OK_DOMAIN)
    mark = uas.ok.mark()
    alice.send_message(to, "normal " + run_id, type=None)
    got = uas.ok.wait_requests(mark, lambda m: run_id.encode() in m.body, timeout=10)
    assert len(got) == 1, "type-less <message/> to %s: %d MESSAGEs at SIPp (expected 1)" % (to, len(got))
    assert got[0].body == ("normal " + run_id).encode()


def test_gen_2_xmpp_to_tcp_only_sip_target(alice, uas, run_id):
    """A SIP next hop reachable over TCP only ([sip.routes] "...;transport=tcp") gets the MESSAGE (GEN-2)."""
    to = sip_jid("t", UAS_TCP_DOMAIN)
    mark = uas.tcp.mark()
    mid = alice.send_message(to, "over tcp " + run_id)
    got = uas.tcp.wait_requests(mark, lambda m: run_id.encode() in m.body, timeout=10)
    errs = [m.raw for m in alice.messages if m.id == mid and m.type == "error"]
    assert got, "MESSAGE for %s never reached the TCP-only SIPp UAS within 10 s; XMPP errors: %s" % (to, errs or "none")
    assert got[0].transport == "TCP", "received over %s" % got[0].transport
    assert got[0].body == ("over tcp " + run_id).encode()
    time.sleep(0.5)
    errs = [m.raw for m in alice.messages if m.id == mid and m.type == "error"]
    assert not errs, "the TCP UAS answered 200 but XMPP got an error: %s" % errs


def test_err_8_sip_404_to_item_not_found(alice, uas, run_id):
    """SIP 404 from the UAS comes back as <message type='error'> with the original id, item-not-found."""
    to = sip_jid("nobody", UAS_404_DOMAIN)
    mid = "err8-" + run_id
    mark = uas.notfound.mark()
    alice.send_message(to, "will be rejected " + run_id, id=mid)
    err = alice.wait_message(lambda m: m.id == mid and m.type == "error", timeout=10,
                             what="<message type='error' id='%s'>" % mid)
    reached = uas.notfound.requests(mark)
    assert reached, "the MESSAGE never reached the 404 UAS, so the error is not the mapped SIP 404: %s" % err.raw
    assert err.error_condition == "item-not-found", \
        "SIP 404 must map to <item-not-found/> (RFC 7247 Table 3), got %r:\n%s" % (err.error_condition, err.raw)
    assert err.error_type == "cancel", "error type %r, expected 'cancel' (ERR-13):\n%s" % (err.error_type, err.raw)
    assert err.frm.split("/")[0].lower() == to.lower(), "error from %r, expected the SIP JID %r" % (err.frm, to)


def test_im_1_xmpp_to_baresip_via_kamailio(alice, baresip, run_id):
    """alice@localhost -> bob@sip.localhost -> (Kamailio) -> baresip bob (sip:bob@127.0.0.1)."""
    body = "hallo bob 😀 " + run_id
    mid = alice.send_message("bob@%s" % COMPONENT, body)
    end = time.monotonic() + 10
    # baresip's stdio UI prints an incoming MESSAGE as: <From URI>: "<body>"
    needle = re.compile(re.escape("sip:alice@%s" % XMPP_DOMAIN) + r'[^\s"]*: "' + re.escape(body) + '"')
    while time.monotonic() < end and not needle.search(baresip.log_text()):
        time.sleep(0.2)
    log = baresip.log_text()
    errs = [m.raw for m in alice.messages if m.id == mid and m.type == "error"]
    assert needle.search(log), "baresip bob did not print %r within 10 s (XMPP errors: %s); baresip log tail:\n%s" % (
        needle.pattern, errs or "none", "\n".join(log.splitlines()[-15:]))


# RFC 7247 §7.2 Table 3 (CHECKLIST Table E2): SIP final response -> acceptable XMPP conditions
# (first = the table's mapping, others = the MAY alternatives of ERR-10)
SIP_TO_CONDITION = {
    400: ["bad-request"], 403: ["forbidden", "not-allowed", "policy-violation"],
    404: ["item-not-found", "remote-server-not-found"], 405: ["feature-not-implemented"],
    406: ["not-acceptable"], 408: ["remote-server-timeout", "remote-server-not-found"], 410: ["gone"],
    413: ["policy-violation"], 415: ["not-acceptable"], 480: ["recipient-unavailable"], 481: ["item-not-found"],
    484: ["item-not-found"], 486: ["recipient-unavailable"], 488: ["not-acceptable"],
    500: ["internal-server-error"], 501: ["feature-not-implemented"], 502: ["remote-server-not-found"],
    503: ["internal-server-error"], 504: ["remote-server-timeout"], 600: ["recipient-unavailable"],
    603: ["recipient-unavailable"], 604: ["item-not-found"], 606: ["not-acceptable"],
}
# RFC 6120's suggested error type per condition (CHECKLIST Table E1, ERR-13), alternatives included
CONDITION_TYPES = {
    "bad-request": {"modify"}, "forbidden": {"auth"}, "not-allowed": {"cancel"}, "policy-violation": {"modify", "wait"},
    "item-not-found": {"cancel"}, "remote-server-not-found": {"cancel"}, "feature-not-implemented": {"cancel", "modify"},
    "not-acceptable": {"modify"}, "remote-server-timeout": {"wait"}, "gone": {"cancel"},
    "recipient-unavailable": {"wait"}, "internal-server-error": {"cancel"},
}


def send_failures(alice, uas, run_id, tag):
    """One message per SIP code to sip:codeNNN@sippcode.test; returns {code: error stanza or None}."""
    mark = uas.code.mark()
    ids = {}
    for code in SIP_TO_CONDITION:
        ids[code] = alice.send_message(sip_jid("code%d" % code, UAS_CODE_DOMAIN), "%s %d %s" % (tag, code, run_id),
                                       id="%s-%d-%s" % (tag, code, run_id))
    alice.collect(lambda m: m.type == "error" and m.id in set(ids.values()), len(ids), timeout=15)
    reached = {int(re.match(r"sip:code(\d+)@", r.ruri).group(1)) for r in uas.code.requests(mark)
               if re.match(r"sip:code(\d+)@", r.ruri or "")}
    out = {}
    for code, mid in ids.items():
        errs = [m for m in alice.messages if m.id == mid and m.type == "error"]
        out[code] = (errs[0] if errs else None, code in reached)
    return out


def test_err_8_sip_failure_codes_map_to_conditions(alice, uas, run_id):
    """Each SIP final failure from the UAS comes back as <message type='error'> (same id) with the
    RFC 7247 Table 3 condition; 410 -> <gone/> without character data (ERR-9)."""
    results = send_failures(alice, uas, run_id, "err8")
    problems = []
    for code, (err, reached) in results.items():
        if not reached:
            problems.append("%d: MESSAGE never reached the SIPp UAS" % code)
        elif err is None:
            problems.append("%d: no <message type='error'/> came back" % code)
        elif err.error_condition not in SIP_TO_CONDITION[code]:
            problems.append("%d: <%s/>, expected <%s/>" % (code, err.error_condition, "/> or <".join(SIP_TO_CONDITION[code])))
        elif code == 410 and (err.error_condition_text or "").strip():
            problems.append("410: <gone/> must not carry character data (ERR-9), got %r" % err.error_condition_text)
    assert not problems, "SIP response -> XMPP error mapping (RFC 7247 §7.2):\n  " + "\n  ".join(problems)


def test_err_13_error_types_match_condition(alice, uas, run_id):
    """Every generated error has the RFC 6120 type suggested for its condition (ERR-13)."""
    results = send_failures(alice, uas, run_id, "err13")
    problems = []
    for code, (err, _) in results.items():
        if err is None or err.error_condition not in CONDITION_TYPES:
            continue  # mapping problems are reported by test_err_8_sip_failure_codes_map_to_conditions
        if err.error_type not in CONDITION_TYPES[err.error_condition]:
            problems.append("%d -> <%s/> type=%r, expected %s" % (code, err.error_condition, err.error_type,
                                                               " or ".join(sorted(CONDITION_TYPES[err.error_condition]))))
    assert not problems, "error types (RFC 6120 §8.3.2, ERR-13):\n  " + "\n  ".join(problems)
