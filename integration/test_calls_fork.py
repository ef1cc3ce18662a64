"""MEDIA-22: SIP forking hidden from Jingle, with real peers. Two baresips (call_peer.BaresipCall, register=True)
register one AOR at the kit's Kamailio; alice (jingle_peer.py) calls that AOR's JID, stox's INVITE goes to its
outbound proxy Kamailio, whose lookup("location") makes one branch per registered contact and t_relay() sends them
in parallel (registrar's append_branches defaults to 1; the kit's kamailio.cfg needs no change). When one branch
answers, Kamailio CANCELs the others; a 2xx that crossed that CANCEL is forwarded to stox, which must ACK and BYE it
and never show it to alice.

Test (a) puts a UDP relay (LateCancel) in front of the second fork so that its 2xx always crosses Kamailio's
CANCEL. Each test uses a fresh AOR (sip:fork<id>@127.0.0.1), so contacts left registered by an earlier test (or
the other server's run, same Kamailio) can never be forked to."""
import asyncio
import re
import socket
import threading
import time
import uuid

import pytest

from call_peer import TONE_HZ, BaresipCall, allow_rsa_dtls_servers, primary_ipv4, wav_rms
from conftest import read_log, require_peer
from sip_helper import sip_transaction
from jingle_peer import AIORTC_ERROR, INSTALL_HINT, JinglePeer
from topology import (BARESIP_FORK_1, BARESIP_FORK_2, C2S_PORT, COMPONENT, FORK_SHIM_PORT, KAMAILIO_PORT,
                      XMPP_DOMAIN)

RMS_MIN = 0.05


@pytest.fixture
def kamailio(kit, stox):
    """The kit's Kamailio (idempotent start; the kit's cleanup stops it at the end of the run)."""
    require_peer("kamailio")
    kit.script("kamailio/start.sh")
    return kit.run / "kamailio" / "kamailio.log"


def forked_pair(kit, user: str, modes: tuple[str, str]) -> tuple[BaresipCall, BaresipCall]:
    a = BaresipCall(kit, user, BARESIP_FORK_1[0], BARESIP_FORK_1[1], KAMAILIO_PORT, answermode=modes[0],
                    name="fork1", register=True).start()
    try:
        b = BaresipCall(kit, user, BARESIP_FORK_2[0], BARESIP_FORK_2[1], KAMAILIO_PORT, answermode=modes[1],
                        name="fork2", register=True).start()
    except BaseException:
        a.stop()
        raise
    return a, b


def alice_peer() -> JinglePeer:
    if AIORTC_ERROR is not None:
        pytest.fail("%s (import error: %s)" % (INSTALL_HINT, AIORTC_ERROR), pytrace=False)
    allow_rsa_dtls_servers()
    return JinglePeer("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT, ice_hosts=[primary_ipv4()],
                      tone_hz=660.0, codecs=["PCMU"])


def run(scenario, peer: JinglePeer, uas: tuple[BaresipCall, BaresipCall], timeout: float = 60):
    async def main():
        try:
            await peer.start()
            await asyncio.wait_for(scenario(peer), timeout)
            assert peer.violations == [], "the Jingle peer saw violations: %s" % peer.violations
        except Exception as e:
            raise AssertionError("%s: %s\n--- alice events:\n%s\n--- fork1 log tail:\n%s\n--- fork2 log tail:\n%s"
                                 % (type(e).__name__, e, peer.log_text(120), uas[0].log_text()[-2500:],
                                    uas[1].log_text()[-2500:])) from e
        finally:
            await peer.stop()
    asyncio.run(main())


def received(peer: JinglePeer, sid: str, kind: str) -> int:
    return sum(1 for e in peer.events if e.direction == "in" and e.kind == kind and e.sid == sid)


def established(b: BaresipCall) -> bool:
    return "Call established" in b.log_text()


def ended(b: BaresipCall) -> bool:
    """baresip 1.0.0 logs '<peer>: session closed: Connection reset by peer' when the far end BYEs (or CANCELs)
    its call, and 'Call with <peer> terminated (duration: N secs)' for some ends of an established call."""
    t = b.log_text()
    return "session closed" in t or "terminated (duration" in t


def bye_from_stox(kamailio_log: str, port: int) -> bool:
    """Kamailio's request_route logs every request it gets: 'REQ BYE <R-URI> from <From> (src <ip:port>)'. A BYE
    from alice's side (stox; it sends from an ephemeral port) to the contact of the baresip on PORT."""
    return re.search(r"REQ BYE sip:\S*@127\.0\.0\.1:%d\S* from sip:alice@%s \(src 127\.0\.0\.1:\d+\)"
                     % (port, re.escape(XMPP_DOMAIN)), kamailio_log) is not None


def wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class LateCancel:
    """A UDP relay in front of the second fork: Kamailio's INVITE reaches it INVITE_DELAY late (so the first fork
    always answers first) and Kamailio's CANCEL CANCEL_DELAY late (so the second fork has answered by then: its
    2xx crosses the CANCEL, as on a slow link). Anything else passes at once; the fork's own messages go straight
    to Kamailio (its Via), whatever comes back here is passed to Kamailio."""

    INVITE_DELAY, CANCEL_DELAY = 0.3, 2.0

    def __init__(self, port: int, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.relayed: list[str] = []
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
            if src == self.target:
                self._send(data, ("127.0.0.1", KAMAILIO_PORT))
                continue
            method = data.split(b" ", 1)[0]
            self.relayed.append(method.decode(errors="replace"))
            delay = {b"INVITE": self.INVITE_DELAY, b"CANCEL": self.CANCEL_DELAY}.get(method, 0.0)
            threading.Timer(delay, self._send, (data, self.target)).start()

    def _send(self, data: bytes, to):
        try:
            self.sock.sendto(data, to)
        except OSError:
            pass

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def register_contact(user: str, contact_port: int, expires: int = 120):
    """REGISTER sip:USER@127.0.0.1 at Kamailio with the contact sip:USER@127.0.0.1:CONTACT_PORT."""
    aor = "sip:%s@127.0.0.1" % user
    r = sip_transaction("REGISTER", "sip:127.0.0.1", port=KAMAILIO_PORT, frm=aor, to=aor,
                        extra_headers=["Contact: <sip:%s@127.0.0.1:%d>" % (user, contact_port),
                                       "Expires: %d" % expires])
    assert r is not None and r.status == 200, "REGISTER of the relayed contact failed: %s" % (r and r.start)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_22_fork_both_answer(xmpp_server, stox, kit, kamailio):
    """Both forks auto-answer, so stox gets two 2xx. fork1 registered itself; fork2's contact is registered as
    LateCancel's port, which makes the order certain: fork1 answers first, Kamailio CANCELs fork2, but fork2's
    200 is out before that CANCEL reaches it (without the relay which fork's 200 loses to the CANCEL is a race,
    and a fork CANCELled before it answered makes no second 2xx at all). alice sees at most one <ringing/> and
    exactly one session-accept; audio flows with fork1; fork2's call is established (stox ACKs its 2xx) and ended
    by stox's BYE within seconds, while fork1's call stays up until alice hangs up."""
    user = "fork" + uuid.uuid4().hex[:6]
    winner = BaresipCall(kit, user, BARESIP_FORK_1[0], BARESIP_FORK_1[1], KAMAILIO_PORT, name="fork1",
                         register=True).start()
    loser = None
    relay = LateCancel(FORK_SHIM_PORT, BARESIP_FORK_2[0])
    log_from = len(stox.log_text())
    kam_from = len(read_log(kamailio))
    try:
        loser = BaresipCall(kit, user, BARESIP_FORK_2[0], BARESIP_FORK_2[1], KAMAILIO_PORT, name="fork2").start()
        register_contact(user, FORK_SHIM_PORT)
        pair = (winner, loser)

        async def scenario(a):
            call = await a.place_call("%s@%s" % (user, COMPONENT))
            await call.wait_state("active", timeout=20)
            both = await asyncio.to_thread(wait_for, lambda: all(established(b) for b in pair), 5)
            assert both, "not both forks answered: established = %s" % [established(b) for b in pair]
            gone = await asyncio.to_thread(wait_for, lambda: ended(loser), 5)
            assert gone, "the second fork's call was not torn down within 5 s of its answer"
            await call.wait_media()
            await asyncio.sleep(2.5)
            s = await call.media_stats()
            print("\nalice after 2.5 s: %s" % s)
            assert s["packets_received"] >= 50, "alice got %d RTP packets" % s["packets_received"]
            assert s["rms_median"] > RMS_MIN, "alice hears silence (RMS %.4f)" % s["rms_median"]
            assert abs(s["freq_median"] - TONE_HZ) <= 60, "alice hears %.0f Hz" % s["freq_median"]
            assert not ended(winner), "the winning fork's call ended before alice hung up"
            kam = read_log(kamailio)[kam_from:]
            assert len(re.findall(r"REPLY 2\d\d \S+ for INVITE", kam)) == 2, "not two 2xx:\n%s" % kam[-3000:]
            assert bye_from_stox(kam, BARESIP_FORK_2[0]), "no BYE from stox to the second fork (:%d) in " \
                "Kamailio's log:\n%s" % (BARESIP_FORK_2[0], kam[-3000:])
            assert not bye_from_stox(kam, BARESIP_FORK_1[0]), "stox sent BYE to the winning fork before the hang-up"
            assert received(a, call.sid, "jingle:session-accept") == 1
            assert call.remote_info.count("ringing") <= 1, "alice got %s" % call.remote_info
            await call.hangup("success")
        run(scenario, alice_peer(), pair)
        assert "CANCEL" in relay.relayed, "Kamailio never CANCELled the second fork: %s" % relay.relayed
        assert wait_for(lambda: ended(winner), 10), "the winner's call was not ended by alice's hang-up"
        decs = winner.recordings("dec")
        assert decs and max(wav_rms(p) for p in decs) > RMS_MIN, "the winning baresip received no audio"
        log = stox.log_text()[log_from:]
        assert log.count("extra 2xx from another fork: ACK + BYE") == 1, \
            "stox did not log exactly one ACK + BYE of an extra 2xx"
    finally:
        relay.stop()
        for b in (winner, loser):
            if b is not None:
                b.stop()


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_22_fork_one_answers_other_rings(xmpp_server, stox, kit, kamailio):
    """Both forks ring; fork1 answers, fork2 only rings: Kamailio CANCELs fork2 when fork1 answers (fork2's
    INVITE ends with 487, its call never established), alice gets one session-accept and at most one <ringing/>,
    and audio flows with fork1."""
    user = "fork" + uuid.uuid4().hex[:6]
    pair = forked_pair(kit, user, ("manual", "manual"))
    kam_from = len(read_log(kamailio))
    try:
        async def scenario(a):
            call = await a.place_call("%s@%s" % (user, COMPONENT))
            for b in pair:       # both ring before fork1 answers (an auto-answer could beat fork2's ringing)
                await asyncio.to_thread(b.wait_log, "Incoming call", 10)
            await asyncio.to_thread(pair[0].ctrl, "accept")
            await call.wait_state("active", timeout=20)
            await call.wait_media()
            await asyncio.sleep(2.0)
            s = await call.media_stats()
            print("\nalice after 2 s: %s" % s)
            assert s["packets_received"] >= 40, "alice got %d RTP packets" % s["packets_received"]
            assert s["rms_median"] > RMS_MIN, "alice hears silence (RMS %.4f)" % s["rms_median"]
            assert received(a, call.sid, "jingle:session-accept") == 1
            assert call.remote_info.count("ringing") <= 1, "alice got %s" % call.remote_info
            await call.hangup("success")
        run(scenario, alice_peer(), pair)
        ringer = pair[1]
        assert wait_for(lambda: "session closed" in ringer.log_text(), 5), "fork2's ringing call was not closed"
        assert not established(ringer), "fork2's call was established though it never answered"
        kam = read_log(kamailio)[kam_from:]
        assert "REPLY 487 Request Terminated for INVITE" in kam, \
            "Kamailio saw no 487 to an INVITE (fork2 was not CANCELled); its log:\n%s" % kam[-3000:]
        assert "REPLY 200 OK for CANCEL" in kam, "no 200 to a CANCEL in Kamailio's log:\n%s" % kam[-3000:]
        assert wait_for(lambda: ended(pair[0]), 10), "fork1's call was not ended by alice's hang-up"
    finally:
        for b in pair:
            b.stop()
