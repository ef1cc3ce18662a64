"""MEDIA-7, 9, 11, 24, 25, 26: calls through stox between the independent Jingle peer (jingle_peer.py: slixmpp +
aiortc, ICE + DTLS-SRTP + rtcp-mux) and baresip (ice + dtls_srtp modules) on the real XMPP server, both
directions. Media flows end to end (stox only translates the signalling); the proof is on the peers: aiortc's
RTP counters and the RMS/pitch of the tone it decoded, and baresip's recording of what it received."""
import asyncio
import time

import pytest

from call_peer import TONE_HZ, BaresipCall, allow_rsa_dtls_servers, delta, primary_ipv4, wav_rms
from jingle_peer import AIORTC_ERROR, INSTALL_HINT, JinglePeer
from topology import (BARESIP_CALL, BARESIP_CALL_MANUAL, C2S_PORT, CALL_DOMAIN, CALL_MANUAL_DOMAIN, CALL_RING_SECS, GW_PORT,
                      XMPP_DOMAIN, sip_jid)

RMS_MIN = 0.05
ALICE_HZ = 660.0
CARL = "carl"


@pytest.fixture
def carl(stox, kit):
    """baresip carl (sip:carl@127.0.0.1; from XMPP: carl\\40calls.test@sip.localhost, routed to it)."""
    b = BaresipCall(kit, CARL, BARESIP_CALL[0], BARESIP_CALL[1], GW_PORT).start()
    yield b
    b.stop()


def alice(**kw) -> JinglePeer:
    if AIORTC_ERROR is not None:
        pytest.fail("%s (import error: %s)" % (INSTALL_HINT, AIORTC_ERROR), pytrace=False)
    allow_rsa_dtls_servers()
    # ICE host candidates on the address where baresip has its own: with loopback-only candidates the selected
    # pair is not baresip's default candidate, so baresip, when it is the controlling agent (it called), sends
    # a re-INVITE after ICE and restarts its DTLS server in the middle of aiortc's handshake ("dtls: accept
    # error" in baresip 1.0.0's log): baresip's behaviour, the same without a gateway.
    kw.setdefault("ice_hosts", [primary_ipv4()])
    kw.setdefault("tone_hz", ALICE_HZ)
    kw.setdefault("codecs", ["PCMU"])
    return JinglePeer("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT, **kw)


def run(scenario, peer: JinglePeer, baresip: BaresipCall, timeout: float = 60):
    async def main():
        try:
            await peer.start()
            await asyncio.wait_for(scenario(peer), timeout)
            assert peer.violations == [], "the Jingle peer saw violations: %s" % peer.violations
        except Exception as e:
            raise AssertionError("%s: %s\n--- alice events:\n%s\n--- baresip log tail:\n%s"
                                 % (type(e).__name__, e, peer.log_text(120), baresip.log_text()[-3000:])) from e
        finally:
            await peer.stop()
    asyncio.run(main())


def check_heard(stats: dict, hz: float, who: str):
    assert stats["packets_received"] >= 50, "%s got %d RTP packets" % (who, stats["packets_received"])
    assert stats["rms_median"] > RMS_MIN, "%s hears silence (RMS %.4f)" % (who, stats["rms_median"])
    assert abs(stats["freq_median"] - hz) <= 60, "%s hears %.0f Hz, not %.0f Hz" % (who, stats["freq_median"], hz)


def check_baresip_heard(b: BaresipCall):
    end = time.monotonic() + 5
    while time.monotonic() < end and not b.recordings("dec"):
        time.sleep(0.2)
    decs = b.recordings("dec")
    assert decs, "baresip recorded nothing it received (files: %s)" % list(b.rec.iterdir())
    rms = max(wav_rms(p) for p in decs)
    assert rms > RMS_MIN, "baresip received silence (RMS %.4f in %s)" % (rms, decs)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_7_25_26_xmpp_user_calls_baresip(xmpp_server, stox, carl):
    """alice (Jingle) rings carl's bare JID: stox answers the propose with proceed from carl's call JID
    (which disco#info shows as a Jingle RTP/ICE/DTLS endpoint), turns session-initiate into an INVITE to
    baresip, baresip answers, session-accept reaches alice; ICE + DTLS-SRTP connect peer to peer and each
    side hears the other's tone; alice hangs up and baresip's call ends (BYE)."""
    async def scenario(a):
        to = sip_jid(CARL, CALL_DOMAIN)
        feats = await a.disco_features(to + "/sip")
        for f in ("urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:transports:ice-udp:1",
                  "urn:xmpp:jingle:apps:dtls:0", "urn:xmpp:jingle-message:0"):
            assert f in feats, "disco#info of %s/sip lacks %s" % (to, f)
        call = await a.place_call(to)
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        check_heard(s, TONE_HZ, "alice")
        await call.hangup("success")
    run(scenario, alice(), carl)
    carl.wait_log("terminated", timeout=10)
    check_baresip_heard(carl)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_7_25_baresip_calls_xmpp_user(xmpp_server, stox, carl):
    """baresip dials sip:alice@localhost through stox: alice's devices get a propose (stox answered the INVITE
    with 180), alice proceeds, stox sends session-initiate with baresip's ICE/DTLS offer, alice accepts, the
    SDP answer goes back in the 200; audio both ways; baresip hangs up and alice sees session-terminate
    <success/>."""
    async def scenario(a):
        await asyncio.to_thread(carl.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        assert inc.jmi, "the call did not start with a XEP-0353 propose"
        await inc.wait_state("active")
        await inc.wait_media()
        await asyncio.sleep(2.5)
        s = await inc.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        check_heard(s, TONE_HZ, "alice")
        await asyncio.to_thread(carl.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    run(scenario, alice(), carl)
    check_baresip_heard(carl)


@pytest.fixture
def dave(stox, kit):
    """baresip dave, which rings and answers only when told (sip:dave@127.0.0.1; from XMPP:
    dave\\40ring.test@sip.localhost, routed to it)."""
    b = BaresipCall(kit, "dave", BARESIP_CALL_MANUAL[0], BARESIP_CALL_MANUAL[1], GW_PORT, answermode="manual").start()
    yield b
    b.stop()


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_7_23_xmpp_caller_cancels_and_sip_callee_declines(xmpp_server, stox, dave):
    """alice calls dave, who rings: the 180 reaches alice as <ringing/>; alice hangs up before the answer and
    dave's call is CANCELled. alice calls again and dave rejects: baresip's 486 reaches alice as <busy/>."""
    to = sip_jid("dave", CALL_MANUAL_DOMAIN)

    async def scenario(a):
        call = await a.place_call(to)
        await call.wait_info("ringing")
        await asyncio.to_thread(dave.wait_log, "Incoming call", 10)
        await call.hangup("cancel")
        # baresip 1.0.0 logs a CANCELled incoming call as "session closed: Connection reset by peer"
        await asyncio.to_thread(dave.wait_log, "session closed", 10)
        again = await a.place_call(to)
        await again.wait_info("ringing")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(dave.ctrl, "hangup")
        assert await again.wait_ended() == "busy", "486 from baresip should end the call with <busy/>"
    run(scenario, alice(), dave)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_25_23_xmpp_callee_rejects_and_sip_caller_cancels(xmpp_server, stox, carl):
    """carl dials alice, whose devices reject with <busy/>: carl's call fails with 486. carl dials again, alice
    only rings, carl hangs up: alice's devices get <retract/> with <cancel/>."""
    async def busy(a):
        await asyncio.to_thread(carl.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        assert await inc.wait_ended() == "busy"
        await asyncio.to_thread(carl.wait_log, "486 Busy Here", 10)
    run(busy, alice(on_propose="reject", reject_reason="busy"), carl)

    async def cancel(a):
        await asyncio.to_thread(carl.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(carl.ctrl, "hangup")
        assert await inc.wait_ended() == "cancel", "CANCEL should retract the propose with <cancel/>"
    run(cancel, alice(on_propose="ring"), carl)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_15_xmpp_user_holds_and_unholds(xmpp_server, stox, carl):
    """alice calls carl; her hold becomes a re-INVITE with a=sendonly, baresip stops sending (alice receives
    almost nothing while she still sends); her unhold (a=sendrecv) brings carl's audio back."""
    async def scenario(a):
        call = await a.place_call(sip_jid(CARL, CALL_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(1.0)
        await call.hold()
        await asyncio.sleep(1.0)                          # the re-INVITE round trip and packets in flight
        got, sent = await asyncio.gather(delta(call, "packets_received", 1.5), delta(call, "packets_sent", 1.5))
        print("\non hold, in 1.5 s: alice got %d, sent %d" % (got, sent))
        assert got <= 5, "baresip kept sending while held: alice got %d packets in 1.5 s" % got
        assert sent >= 50, "the holder stopped sending too (%d packets)" % sent
        await call.unhold()
        await asyncio.sleep(1.0)
        got = await delta(call, "packets_received", 1.5)
        print("after unhold, in 1.5 s: alice got %d" % got)
        assert got >= 50, "baresip's audio did not come back after unhold (%d packets)" % got
        await call.hangup("success")
    run(scenario, alice(), carl)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_25_23_nobody_answers_the_sip_caller(xmpp_server, stox, carl):
    """carl dials alice, whose devices only ring: after [calls] ring_timeout_secs stox retracts the propose
    with <timeout/> and carl's call fails with 480."""
    async def scenario(a):
        t0 = time.monotonic()
        await asyncio.to_thread(carl.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        assert await inc.wait_ended() == "timeout", "an unanswered call should be retracted with <timeout/>"
        waited = time.monotonic() - t0
        assert CALL_RING_SECS - 1 <= waited <= CALL_RING_SECS + 5, "retracted after %.1f s" % waited
        await asyncio.to_thread(carl.wait_log, "480", 10)
    run(scenario, alice(on_propose="ring"), carl)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_16_sip_user_holds_and_resumes(xmpp_server, stox, carl):
    """alice calls carl; carl holds: baresip's re-INVITE (a=sendonly) reaches alice as content-modify
    senders='responder' and she stops sending; carl resumes (a=sendrecv): senders='both', her audio flows
    again."""
    async def scenario(a):
        call = await a.place_call(sip_jid(CARL, CALL_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(carl.ctrl, "hold")
        await call.wait_senders("responder")
        await asyncio.sleep(0.5)
        sent = await delta(call, "packets_sent", 1.5)
        print("\nheld by carl, in 1.5 s: alice sent %d" % sent)
        assert sent <= 5, "alice kept sending while carl held the call (%d packets)" % sent
        await asyncio.to_thread(carl.ctrl, "resume")
        await call.wait_senders("both")
        await asyncio.sleep(0.5)
        sent = await delta(call, "packets_sent", 1.5)
        print("resumed, in 1.5 s: alice sent %d" % sent)
        assert sent >= 50, "alice's audio did not resume (%d packets)" % sent
        await call.hangup("success")
    run(scenario, alice(), carl)
