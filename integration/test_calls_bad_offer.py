"""Bad offers on the wire (CHECKLIST part 6; tests/corpus/sdp and tests/corpus/jingle, whose READMEs name the class
of each file): every malformed or unmappable offer is refused the way its class says, stox stays up, and the far
side never sees a call.

An integration test rather than a Rust scenario: the Jingle half needs a real XMPP client on a real server (an
XMPP client cannot live in stox's build, GUIDE §5), and both halves then check the same thing end to end: the
bytes a SIP peer sends reach the router through ezk, and what a refused offer does NOT cause (a <propose/> on
alice's devices, an INVITE on the SIP side) is only visible from outside.

- SIP -> XMPP: each tests/corpus/sdp/*.sdp is the body (application/sdp) of a raw UDP INVITE to
  sip:alice@localhost, straight to stox. Each gets 488 (two of them are not call offers: a body without m=audio
  or m=video goes to the MSRP chat path, which refuses it with 488 too; unsupported-only-msrp.sdp is a valid MSRP
  offer, refused only because the test config puts the caller's domain in chat mode "page": in "session" or
  "auto" mode stox would take it as a chat session) and no 180 before it; the same bytes as
  text/plain get 415 with Accept: application/sdp. alice is online with jingle_peer.py and gets no <propose/>.
  A valid offer at the end does reach her (the check can see a propose), and her <reject/> gives 603.
- XMPP -> SIP: each tests/corpus/jingle/*.xml (with a sid of its own) is a session-initiate from alice to
  bo\\40sink.test@sip.localhost/sip, whose domain stox routes to SipSink, a UDP socket that records every datagram.
  malformed-* get an IQ error bad-request; unsupported-* an IQ result, then session-terminate
  <unsupported-applications/>; transport-* the same with <unsupported-transports/>. SipSink receives nothing.
  A valid session-initiate at the end does reach the sink as an INVITE (the sink answers 603)."""
import asyncio
import re
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from call_peer import allow_rsa_dtls_servers
from jingle_peer import AIORTC_ERROR, INSTALL_HINT, JinglePeer
from sip_helper import new_branch, parse_sip, sipsak_ok
from topology import BAD_OFFER_UAC_PORT, C2S_PORT, GW_PORT, SINK_DOMAIN, SINK_PORT, XMPP_DOMAIN, sip_jid

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
VALID_SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
VALID_JINGLE = ("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content creator='initiator' "
                "name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='0' "
                "name='PCMU' clockrate='8000'/></description><transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'>"
                "<candidate id='c' component='1' generation='0' ip='192.0.2.1' port='5000'/></transport></content>"
                "</jingle>")


def corpus(kind: str, ext: str) -> list[Path]:
    files = sorted((CORPUS / kind).glob("*." + ext))
    assert len(files) >= 10, "corpus %s is nearly empty" % kind
    return files


def alice_peer() -> JinglePeer:
    if AIORTC_ERROR is not None:
        pytest.fail("%s (import error: %s)" % (INSTALL_HINT, AIORTC_ERROR), pytrace=False)
    allow_rsa_dtls_servers()
    return JinglePeer("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT, on_propose="ignore",
                      reject_reason="decline", ice_hosts=["127.0.0.1"])


def run(scenario, peer: JinglePeer, timeout: float = 120):
    async def main():
        try:
            await peer.start()
            await asyncio.wait_for(scenario(peer), timeout)
        except Exception as e:
            raise AssertionError("%s: %s\n--- alice events:\n%s" % (type(e).__name__, e, peer.log_text(80))) from e
        finally:
            await peer.stop()
    asyncio.run(main())


# ------------------------------------------------------------------------------------------------ SIP -> XMPP
def invite(body: bytes, content_type: str = "application/sdp", timeout: float = 8) -> tuple[list[int], object]:
    """One INVITE to sip:alice@localhost straight to stox (UDP, from BAD_OFFER_UAC_PORT, retransmitted per Timer
    A); returns the provisional codes seen and the final response, which is ACKed (RFC 3261 §17.1.1.3)."""
    ruri = "sip:alice@%s" % XMPP_DOMAIN
    branch, tag, call_id = new_branch(), "bo" + uuid.uuid4().hex[:8], "bo-" + uuid.uuid4().hex
    via = "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (BAD_OFFER_UAC_PORT, branch)
    common = [via, "Max-Forwards: 70", "From: <sip:badoffer@127.0.0.1>;tag=%s" % tag, "To: <%s>" % ruri,
              "Call-ID: %s" % call_id]
    req = "\r\n".join(["INVITE %s SIP/2.0" % ruri] + common + [
        "CSeq: 1 INVITE", "Contact: <sip:badoffer@127.0.0.1:%d>" % BAD_OFFER_UAC_PORT,
        "Content-Type: %s" % content_type, "Content-Length: %d" % len(body)]).encode() + b"\r\n\r\n" + body
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", BAD_OFFER_UAC_PORT))
    provisional: list[int] = []
    try:
        end, t1, next_send, got_1xx = time.monotonic() + timeout, 0.5, 0.0, False
        while time.monotonic() < end:
            if not got_1xx and time.monotonic() >= next_send:
                s.sendto(req, ("127.0.0.1", GW_PORT))
                next_send, t1 = time.monotonic() + t1, t1 * 2
            s.settimeout(max(0.05, min(next_send if not got_1xx else end, end) - time.monotonic()))
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                continue
            msg = parse_sip(data)
            if not msg.is_response or msg.get("call-id") != call_id:
                continue
            if msg.status < 200:
                provisional.append(msg.status)
                got_1xx = True
                continue
            to = msg.get("to")
            ack = "\r\n".join(["ACK %s SIP/2.0" % ruri, via, "Max-Forwards: 70",
                               "From: <sip:badoffer@127.0.0.1>;tag=%s" % tag, "To: %s" % to,
                               "Call-ID: %s" % call_id, "CSeq: 1 ACK", "Content-Length: 0"]).encode() + b"\r\n\r\n"
            s.sendto(ack, ("127.0.0.1", GW_PORT))
            return provisional, msg
        return provisional, None
    finally:
        s.close()


def expected_sip(name: str) -> int:
    # tests/corpus/sdp/README.md: every file is answered 488 on the SIP side, whatever its class
    assert name.split("-", 1)[0] in ("malformed", "unsupported", "transport"), name
    return 488


def proposes(peer: JinglePeer) -> list[str]:
    return [e.line() for e in peer.events if e.direction == "in" and e.kind == "jmi:propose"]


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_bad_offer_sdp_corpus_gets_488_and_no_propose(xmpp_server, stox):
    files = corpus("sdp", "sdp")
    results = {}

    async def scenario(a):
        wrong = []
        for f in files:
            body = f.read_bytes()
            prov, final = await asyncio.to_thread(invite, body)
            code = final.status if final is not None else None
            results[f.name] = (prov, final.start if final is not None else None)
            if code != expected_sip(f.name) or any(p != 100 for p in prov):
                wrong.append("%s: %s (provisional %s), expected %d" % (f.name, results[f.name][1], prov,
                                                                       expected_sip(f.name)))
        # not an SDP body at all: refused on its content type (RFC 3261 §21.4.13), telling what would do
        prov, final = await asyncio.to_thread(invite, (CORPUS / "sdp" / "malformed-not-sdp.sdp").read_bytes(),
                                              "text/plain")
        if final is None or final.status != 415 or (final.get("accept") or "").strip() != "application/sdp":
            wrong.append("text/plain body: %s (Accept: %s), expected 415 with Accept: application/sdp"
                         % (final and final.start, final and final.get("accept")))
        await asyncio.sleep(1.5)      # a late <propose/> would be in by now
        got = proposes(a)
        assert not wrong, "\n".join(wrong)
        assert got == [], "alice got a <propose/> for a refused offer:\n%s" % "\n".join(got)
        assert sipsak_ok(), "stox no longer answers OPTIONS"
        # the check can see a propose: a valid offer rings alice, and her <reject/> is the INVITE's 603
        a.on_propose = "reject"
        prov, final = await asyncio.to_thread(invite, VALID_SDP, timeout=15)
        assert len(proposes(a)) == 1, "the valid offer did not reach alice as a <propose/>"
        assert final is not None and final.status == 603, "alice's <reject/> gave %s" % (final and final.start)
    run(scenario, alice_peer())
    for name, (prov, final) in results.items():
        print("%-45s %s %s" % (name, prov, final))


# ------------------------------------------------------------------------------------------------ XMPP -> SIP
class SipSink:
    """A UDP socket on SINK_PORT that records every datagram; it answers an INVITE 603 (so a call that does
    reach it ends at once)."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.got: list[str] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = parse_sip(data)
            self.got.append(msg.start)
            if msg.method == "INVITE":
                to = msg.get("to") or ""
                if ";tag=" not in to:
                    to += ";tag=sink"
                head = ["SIP/2.0 603 Decline"] + ["Via: %s" % v for v in msg.get_all("via")] + [
                    "From: %s" % msg.get("from"), "To: %s" % to, "Call-ID: %s" % msg.get("call-id"),
                    "CSeq: %s" % msg.get("cseq"), "Content-Length: 0"]
                self.sock.sendto(("\r\n".join(head) + "\r\n\r\n").encode(), src)

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def terminate_reason(peer: JinglePeer, sid: str) -> list[str]:
    return [e.detail for e in peer.events
            if e.direction == "in" and e.kind == "jingle:session-terminate" and e.sid == sid]


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_bad_offer_jingle_corpus_refused_and_no_invite(xmpp_server, stox):
    files = corpus("jingle", "xml")
    to = sip_jid("bo", SINK_DOMAIN) + "/sip"
    sink = SipSink(SINK_PORT)
    try:
        async def scenario(a):
            wrong, sids = [], {}
            for f in files:
                sid = "bo-" + uuid.uuid4().hex[:10]
                xml = re.sub(r" sid='s'", " sid='%s'" % sid, f.read_text(), count=1)
                sids[f.name] = sid
                r = await a.jingle_iq(to, xml)
                klass = f.name.split("-", 1)[0]
                if klass == "malformed":
                    if r["type"] != "error" or r["condition"] != "bad-request":
                        wrong.append("%s: %s %s, expected error bad-request" % (f.name, r["type"], r["condition"]))
                elif r["type"] != "result":
                    wrong.append("%s: %s %s, expected result" % (f.name, r["type"], r["condition"]))
            await asyncio.sleep(1.5)   # the terminates, and an INVITE would have left after the 0.5 s gather
            for f in files:
                klass = f.name.split("-", 1)[0]
                got = terminate_reason(a, sids[f.name])
                want = {"unsupported": "reason=unsupported-applications",
                        "transport": "reason=unsupported-transports"}.get(klass)
                if want is None:
                    if got:
                        wrong.append("%s: session-terminate after an IQ error: %s" % (f.name, got))
                elif len(got) != 1 or want not in got[0]:
                    wrong.append("%s: session-terminate %s, expected one with %s" % (f.name, got, want))
            assert not wrong, "\n".join(wrong)
            assert sink.got == [], "SIP requests left stox for refused offers: %s" % sink.got
            assert sipsak_ok(), "stox no longer answers OPTIONS"
            # the sink would see an INVITE: a valid offer to the same JID gets there, and its 603 ends the call
            sid = "bo-" + uuid.uuid4().hex[:10]
            r = await a.jingle_iq(to, VALID_JINGLE.replace(" sid='s'", " sid='%s'" % sid))
            assert r["type"] == "result", r
            end = time.monotonic() + 5
            while time.monotonic() < end and not terminate_reason(a, sid):
                await asyncio.sleep(0.1)
            assert any(s.startswith("INVITE sip:bo@%s" % SINK_DOMAIN) for s in sink.got), \
                "the valid offer never reached the sink: %s" % sink.got
            assert any("reason=decline" in d for d in terminate_reason(a, sid)), terminate_reason(a, sid)
        run(scenario, alice_peer())
    finally:
        sink.stop()
