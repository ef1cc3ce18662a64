"""MEDIA-2, 7, 10, 25: calls through stox between a Jingle client doing Raw-UDP (XEP-0177) + RTP/AVP PCMU and a
SIP phone doing plain RTP (baresip without ice and dtls_srtp), both directions, on both XMPP servers.

The XMPP side is jingle_peer.py in media="plain" mode (our own RTP stack, plain_rtp.py: no aiortc, no ICE, no
DTLS). stox only translates the signalling: the Raw-UDP candidate <-> c=/m= (MEDIA-10). Media flows end to end,
so the proof is on the peers: alice's RTP counters, the RMS and pitch of baresip's 440 Hz tone she decoded,
the address it came from, and baresip's recording of alice's 660 Hz tone."""
import asyncio
import struct
import wave
import xml.etree.ElementTree as ET

import pytest

from call_peer import TONE_HZ, BaresipCall, delta, primary_ipv4
from jingle_peer import JinglePeer
from jingle_sdp import NS_ICE, NS_JINGLE, NS_RAW_UDP, NS_RTP, q
from test_calls import check_baresip_heard, check_heard, run
from topology import BARESIP_PLAIN, C2S_PORT, GW_PORT, PLAIN_DOMAIN, XMPP_DOMAIN, sip_jid

ALICE_HZ = 660.0
PAM = "pam"


@pytest.fixture
def pam(stox, kit):
    """baresip pam, a plain-RTP phone: no medianat, no mediaenc, RTP/AVP PCMU (sip:pam@127.0.0.1; from XMPP:
    pam\\40plain.test@sip.localhost, routed to it)."""
    b = BaresipCall(kit, PAM, BARESIP_PLAIN[0], BARESIP_PLAIN[1], GW_PORT, medianat=None, mediaenc=None,
                    sip_trace=True).start()
    yield b
    b.stop()


def alice(**kw) -> JinglePeer:
    kw.setdefault("rtp_host", primary_ipv4())
    kw.setdefault("tone_hz", ALICE_HZ)
    return JinglePeer("alice@%s" % XMPP_DOMAIN, "alicepass", port=C2S_PORT, media="plain", **kw)


def jingle_in(peer: JinglePeer, action: str) -> ET.Element:
    """The first <jingle action=ACTION/> the peer received."""
    for _, direction, raw in peer.trace:
        if direction != "in" or "action='%s'" % action not in raw and 'action="%s"' % action not in raw:
            continue
        j = ET.fromstring(raw).find(q(NS_JINGLE, "jingle"))
        if j is not None and j.get("action") == action:
            return j
    raise AssertionError("no %s received; events:\n%s" % (action, peer.log_text()))


def raw_udp_address(j: ET.Element) -> tuple:
    """The one audio content's Raw-UDP component-1 candidate (ip, port); the content must carry PCMU and no
    ICE-UDP transport."""
    contents = j.findall(q(NS_JINGLE, "content"))
    assert len(contents) == 1, "%s: %d contents" % (j.get("action"), len(contents))
    c = contents[0]
    assert c.find(q(NS_ICE, "transport")) is None, "%s carries an ICE-UDP transport" % j.get("action")
    pts = [(p.get("id"), p.get("name")) for p in c.find(q(NS_RTP, "description")).findall(q(NS_RTP, "payload-type"))]
    assert ("0", "PCMU") in pts, "%s: no PCMU payload type (%s)" % (j.get("action"), pts)
    tr = c.find(q(NS_RAW_UDP, "transport"))
    assert tr is not None, "%s has no Raw-UDP transport: %s" % (j.get("action"), ET.tostring(c).decode())
    cands = [x for x in tr.findall(q(NS_RAW_UDP, "candidate")) if x.get("component") == "1"]
    assert len(cands) == 1, "%s: Raw-UDP component-1 candidates %s" % (j.get("action"), cands)
    return cands[0].get("ip"), int(cands[0].get("port"))


def check_baresip_pitch(b: BaresipCall, hz: float):
    """The pitch of what baresip received (its sndfile 'dec' recording): the median zero-crossing frequency of
    the 20 ms blocks that are not silent."""
    freqs = []
    for path in b.recordings("dec"):
        w = wave.open(str(path), "rb")
        rate, data = w.getframerate(), w.readframes(w.getnframes())
        w.close()
        pcm = struct.unpack("<%dh" % (len(data) // 2), data[:len(data) // 2 * 2])
        n = rate // 50
        for i in range(0, len(pcm) - n, n):
            blk = pcm[i:i + n]
            if (sum(x * x for x in blk) / n) ** 0.5 / 32768 > 0.05:
                freqs.append(sum(1 for a, c in zip(blk, blk[1:]) if (a < 0) != (c < 0)) / 2 * 50)
    assert len(freqs) >= 50, "baresip recorded only %d blocks of audio" % len(freqs)
    f = sorted(freqs)[len(freqs) // 2]
    print("baresip heard %d blocks of audio, pitch %.0f Hz" % (len(freqs), f))
    assert abs(f - hz) <= 60, "baresip hears %.0f Hz, not alice's %.0f Hz" % (f, hz)


def sdps_at_baresip(b: BaresipCall, port) -> list:
    """The SDP bodies in baresip's SIP trace whose m=audio line has PORT, in order."""
    bodies = [t.split("\n\n")[0].split("\x1b")[0] for t in b.log_text().split("v=0")[1:]]
    return [t for t in bodies if "m=audio %s " % port in t]


def check_sdp_at_baresip(b: BaresipCall, s: dict):
    """The SDP stox sent baresip (the INVITE's offer or the 200's answer, in baresip's SIP trace) is plain
    RTP/AVP with alice's Raw-UDP candidate as m= port and c= address, and nothing of ICE or DTLS."""
    ip, port = s["local"].rsplit(":", 1)
    sdps = sdps_at_baresip(b, port)
    assert sdps, "no SDP with m=audio %s in baresip's SIP trace:\n%s" % (port, b.log_text()[-3000:])
    sdp = sdps[0]
    print("SDP stox sent to baresip:\n%s" % sdp.strip())
    assert "m=audio %s RTP/AVP 0" % port in sdp, sdp
    assert "c=IN IP4 %s" % ip in sdp, sdp
    for bad in ("ice-ufrag", "a=candidate", "fingerprint", "SAVP", "a=crypto"):
        assert bad not in sdp, "%s in the SDP stox sent: %s" % (bad, sdp)


def check_plain_media(s: dict, far: tuple):
    """alice heard baresip's tone, sent hers, and the RTP came from the address the Jingle named."""
    check_heard(s, TONE_HZ, "alice")
    assert s["packets_sent"] >= 100, "alice sent only %d RTP packets" % s["packets_sent"]
    assert s["remote"] == "%s:%d" % far, "alice sends to %s, not to the Raw-UDP candidate %s:%d" % ((s["remote"],) + far)
    assert s["sources"] == ["%s:%d" % far], "RTP came from %s, not from the signalled %s:%d" % ((s["sources"],) + far)
    assert s["other_pt"] == 0, "%d RTP packets were not PCMU" % s["other_pt"]


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_10_xmpp_plain_caller_to_plain_sip_phone(xmpp_server, stox, pam):
    """alice (Raw-UDP + PCMU) calls pam through stox: the INVITE's SDP is RTP/AVP with alice's candidate as
    c=/m= (baresip's audio arrives at alice's socket, and pam logs the offer), baresip answers, the
    session-accept carries one Raw-UDP candidate with baresip's address (alice's audio, sent only there,
    is in baresip's recording); alice hangs up and baresip's call ends."""
    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        far = raw_udp_address(jingle_in(a, "session-accept"))
        check_plain_media(s, far)
        check_sdp_at_baresip(pam, s)
        await call.hangup("success")
    run(scenario, alice(), pam)
    pam.wait_log("terminated", timeout=10)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ALICE_HZ)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_10_plain_sip_phone_calls_xmpp_plain_user(xmpp_server, stox, pam):
    """pam dials sip:alice@localhost with a plain RTP/AVP offer: alice gets a propose, proceeds, stox's
    session-initiate carries a Raw-UDP candidate with baresip's c=/m= and PCMU; alice accepts with her own
    Raw-UDP candidate, which reaches baresip as the 200's c=/m= (its recording has alice's tone); audio both
    ways; pam hangs up and alice sees session-terminate <success/>."""
    async def scenario(a):
        await asyncio.to_thread(pam.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        assert inc.jmi, "the call did not start with a XEP-0353 propose"
        await inc.wait_state("active")
        await inc.wait_media()
        await asyncio.sleep(2.5)
        s = await inc.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        far = raw_udp_address(jingle_in(a, "session-initiate"))
        check_plain_media(s, far)
        check_sdp_at_baresip(pam, s)
        await asyncio.to_thread(pam.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    run(scenario, alice(), pam)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ALICE_HZ)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_15_10_plain_caller_holds_and_unholds(xmpp_server, stox, pam):
    """alice (Raw-UDP) calls pam and holds: the re-INVITE (a=sendonly, same RTP/AVP address) makes baresip stop
    sending while alice goes on; unhold (a=sendrecv) brings baresip's audio back to the same address."""
    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(1.0)
        await call.hold()
        await asyncio.sleep(1.0)                          # the re-INVITE round trip and packets in flight
        got, sent = await asyncio.gather(delta(call, "packets_received", 1.5), delta(call, "packets_sent", 1.5))
        print("\non hold, in 1.5 s: alice got %d, sent %d" % (got, sent))
        assert got <= 5, "baresip kept sending while held: alice got %d packets in 1.5 s" % got
        assert sent >= 50, "the holder stopped sending too (%d packets)" % sent
        port = (await call.media_stats())["local"].rsplit(":", 1)[1]
        held = [x for x in sdps_at_baresip(pam, port) if "a=sendonly" in x]
        assert held and "m=audio %s RTP/AVP 0" % port in held[0], "no sendonly re-INVITE to %s: %s" % (
            port, sdps_at_baresip(pam, port))
        await call.unhold()
        await asyncio.sleep(1.0)
        got = await delta(call, "packets_received", 1.5)
        s = await call.media_stats()
        print("after unhold, in 1.5 s: alice got %d; %s" % (got, s))
        assert got >= 50, "baresip's audio did not come back after unhold (%d packets)" % got
        assert len(s["sources"]) == 1, "RTP came from %s" % s["sources"]
        await call.hangup("success")
    run(scenario, alice(), pam)
