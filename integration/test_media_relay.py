"""Issue 7, media anchoring (`[media] mode = "relay"`), with real peers on both XMPP servers: a plain-RTP SIP
phone (baresip pam, no ICE, no DTLS) and either a Jingle client doing Raw-UDP + RTP/AVP PCMU (jingle_peer.py,
media="plain") or a WebRTC-style one doing ICE + DTLS-SRTP + rtcp-mux (jingle_peer.py with aiortc), which stox
terminates. With the relay on, each side is told stox's address and a port from the configured range instead
of the other party's, and the media goes through stox.

The proof is on the peers, not in stox's log: the address each peer was told and the address its RTP came
from are stox's relay ports (never the other peer's), alice's RTP counters and the pitch of baresip's tone she
decoded, baresip's recording of alice's tone; after the call the relay's ports can be bound again (released);
with both peers silent, stox hangs the call up (alice gets session-terminate <connectivity-error/>)."""
import asyncio
import os
import signal
import socket
import time

import pytest

from call_peer import TONE_HZ, delta, primary_ipv4
from test_calls import ALICE_HZ as ICE_ALICE_HZ
from test_calls import alice as ice_alice
from test_calls import CARL, carl  # noqa: F401
from test_calls import check_baresip_heard, check_heard, run
from test_operations import scrape
from call_peer import BaresipCall
from test_calls_plain import (ALICE_HZ, PAM, alice, check_baresip_pitch, jingle_in, pam, raw_udp_address,  # noqa: F401
                              sdps_at_baresip)
from topology import BARESIP_PLAIN, CALL_DOMAIN, GW_PORT, PLAIN_DOMAIN, XMPP_DOMAIN, sip_jid

# The relay's port range in these tests; nothing else on the machine uses it.
PORT_MIN, PORT_MAX = 36000, 36099
RELAYS = 'stox_sessions{kind="media_relays"}'
# stox's SIP contact host, which the relay binds and advertises when media.relay_address is unset.
RELAY_IP = "127.0.0.1"


def relay_config(stox, timeout_secs: int = 60, xmpp_transport: str = "raw-udp", mode: str = "relay",
                 sip_srtp: str = "off") -> str:
    return stox.rendered() + """
[media]
mode = "%s"
port_min = %d
port_max = %d
timeout_secs = %d
xmpp_transport = "%s"
sip_srtp = "%s"
""" % (mode, PORT_MIN, PORT_MAX, timeout_secs, xmpp_transport, sip_srtp)


@pytest.fixture
def relay(stox):
    """stox with the relay on (a reload: new calls are anchored), SIP callers offered to XMPP as Raw-UDP; back to
    direct media afterwards."""
    line = stox.reload(relay_config(stox))
    assert "media.mode" in line, "the reload did not take media.mode: %s" % line
    yield stox
    stox.reload(stox.rendered())


@pytest.fixture
def relay_ice(stox):
    """stox with the relay on, SIP callers offered to XMPP as ICE-UDP + DTLS-SRTP (the default)."""
    line = stox.reload(relay_config(stox, xmpp_transport="ice-udp"))
    assert "media.mode" in line, "the reload did not take media.mode: %s" % line
    yield stox
    stox.reload(stox.rendered())


def in_range(addr: tuple) -> bool:
    return addr[0] == RELAY_IP and PORT_MIN <= addr[1] <= PORT_MAX


def check_relayed(s: dict, told: tuple, baresip_sdp: str):
    """alice was told a relay port and her RTP came from exactly there; baresip was told another relay port."""
    assert in_range(told), "alice was told %s:%d, not a relay port of stox (%s, %d-%d)" % (
        told + (RELAY_IP, PORT_MIN, PORT_MAX))
    assert s["remote"] == "%s:%d" % told, "alice sends to %s, not to the relay %s:%d" % ((s["remote"],) + told)
    assert s["sources"] == ["%s:%d" % told], "alice's RTP came from %s, not only from the relay %s:%d" % (
        (s["sources"],) + told)
    check_heard(s, TONE_HZ, "alice")
    assert s["other_pt"] == 0, "%d RTP packets were not PCMU" % s["other_pt"]
    alice_ip, alice_port = s["local"].rsplit(":", 1)
    assert "c=IN IP4 %s" % RELAY_IP in baresip_sdp, baresip_sdp
    assert "m=audio %s " % alice_port not in baresip_sdp, "baresip was told alice's own port: %s" % baresip_sdp
    port = int(baresip_sdp.split("m=audio ", 1)[1].split()[0])
    assert PORT_MIN <= port <= PORT_MAX and port != told[1], "baresip was told port %d" % port
    return port


def sdp_to_baresip(b) -> str:
    """The SDP stox sent baresip: the one in its trace whose c= is the relay (its own offer has its address)."""
    bodies = [t.split("\n\n")[0].split("\x1b")[0] for t in b.log_text().split("v=0")[1:]]
    ours = [t for t in bodies if "c=IN IP4 %s" % RELAY_IP in t and "m=audio" in t]
    assert ours, "no SDP with the relay's address in baresip's SIP trace:\n%s" % b.log_text()[-3000:]
    return ours[0]


def check_rtcp_at_baresip(b):
    """baresip's rtcpsummary line at the call's end says it got RTCP reports from the far end (stox's own, since the
    ICE leg ends the client's): "EX=BareSip;CS=...", not "ERROR=No RTCP stats collected"."""
    b.wait_log("EX=BareSip;", timeout=10)
    line = [x for x in b.log_text().splitlines() if "EX=BareSip;" in x][-1]
    assert "ERROR" not in line and "CS=" in line, "baresip got no RTCP from stox: %s" % line
    return line


def check_released(ports: list, timeout: float = 5):
    """Every relay port of the call can be bound again: stox closed them."""
    end = time.monotonic() + timeout
    left = list(ports)
    while left and time.monotonic() < end:
        for p in list(left):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((RELAY_IP, p))
                left.remove(p)
            except OSError:
                pass
            finally:
                s.close()
        if left:
            time.sleep(0.2)
    assert not left, "relay ports still bound after the call ended: %s" % left


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_xmpp_plain_caller_to_plain_sip_phone(xmpp_server, relay, pam):
    """alice (Raw-UDP) calls pam with the relay on: baresip's offer answer reaches alice as a relay port, the
    INVITE's SDP carries another relay port, audio flows both ways through stox; after the hang-up the four
    ports are free again."""
    used = []

    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        told = raw_udp_address(jingle_in(a, "session-accept"))
        sip_port = check_relayed(s, told, sdp_to_baresip(pam))
        used.extend([told[1], told[1] + 1, sip_port, sip_port + 1])
        await call.hangup("success")
    run(scenario, alice(), pam)
    pam.wait_log("terminated", timeout=10)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ALICE_HZ)
    check_released(used)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_plain_sip_phone_calls_xmpp_plain_user(xmpp_server, relay, pam):
    """pam calls alice with the relay on: the session-initiate's Raw-UDP candidate is a relay port, alice's
    answer reaches baresip as another relay port, audio both ways; pam hangs up, alice sees <success/>, and the
    ports are released."""
    used = []

    async def scenario(a):
        await asyncio.to_thread(pam.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        await inc.wait_state("active")
        await inc.wait_media()
        await asyncio.sleep(2.5)
        s = await inc.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        told = raw_udp_address(jingle_in(a, "session-initiate"))
        sip_port = check_relayed(s, told, sdp_to_baresip(pam))
        used.extend([told[1], told[1] + 1, sip_port, sip_port + 1])
        await asyncio.to_thread(pam.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    run(scenario, alice(), pam)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ALICE_HZ)
    check_released(used)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_hold_then_media_stops_and_stox_hangs_up(xmpp_server, stox, pam):
    """With media.timeout_secs = 2: a call on hold longer than that is not hung up; once unheld, both peers go
    silent (alice pauses her RTP, baresip is stopped with SIGSTOP) and stox ends the call with
    <connectivity-error/> to alice and a BYE to baresip; the ports are released."""
    stox.reload(relay_config(stox, timeout_secs=2))
    used = []

    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        told = raw_udp_address(jingle_in(a, "session-accept"))
        assert in_range(told), "alice was told %s:%d, not a relay port" % told
        used.extend([told[1], told[1] + 1])
        await call.hold()
        call.rtp.pause()                                   # the holder is silent too: nobody sends
        await asyncio.sleep(4)
        assert call.state == "active", "a held call was hung up for lack of media (state %s)" % call.state
        call.rtp.resume()
        await call.unhold()
        await asyncio.sleep(1)
        call.rtp.pause()
        os.kill(pam.proc.pid, signal.SIGSTOP)
        try:
            reason = await call.wait_ended(timeout=10)
        finally:
            os.kill(pam.proc.pid, signal.SIGCONT)
        assert reason == "connectivity-error", "the call ended with %r" % reason
    try:
        run(scenario, alice(), pam)
        pam.wait_log("terminated", timeout=10)
    finally:
        stox.reload(stox.rendered())
    check_released(used)


def ice_transport(j) -> dict:
    """The ICE-UDP transport of the one audio content of a received <jingle/>: its candidates (ip, port) of
    component 1, the fingerprint's setup, and whether rtcp-mux is on."""
    import xml.etree.ElementTree as ET  # noqa: F401
    from jingle_sdp import NS_ICE, NS_JINGLE, NS_RTP, q
    contents = j.findall(q(NS_JINGLE, "content"))
    assert len(contents) == 1, "%d contents" % len(contents)
    tr = contents[0].find(q(NS_ICE, "transport"))
    assert tr is not None, "%s carries no ICE-UDP transport" % j.get("action")
    cands = [(c.get("ip"), int(c.get("port"))) for c in tr.findall(q(NS_ICE, "candidate")) if c.get("component") == "1"]
    fp = [c for c in tr if c.tag.endswith("}fingerprint")]
    desc = contents[0].find(q(NS_RTP, "description"))
    mux = desc is not None and any(c.tag.endswith("}rtcp-mux") for c in desc)
    return {"candidates": cands, "setup": fp[0].get("setup") if fp else None, "rtcp_mux": mux}


def check_plain_sdp_to_baresip(b) -> int:
    """The SDP stox sent baresip is plain RTP/AVP at a relay port, with nothing of ICE or DTLS; the port."""
    sdp = sdp_to_baresip(b)
    for bad in ("ice-ufrag", "a=candidate", "fingerprint", "SAVP", "rtcp-mux"):
        assert bad not in sdp, "%s in the SDP stox sent baresip: %s" % (bad, sdp)
    port = int(sdp.split("m=audio ", 1)[1].split()[0])
    assert PORT_MIN <= port <= PORT_MAX, "baresip was told port %d" % port
    return port


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_ice_dtls_client_calls_plain_sip_phone(xmpp_server, relay_ice, pam):
    """alice (aiortc: ICE + DTLS-SRTP + rtcp-mux, the way Conversations and Dino call) calls pam, a phone with
    plain RTP only: stox's session-accept is ICE-UDP with one host candidate at a relay port, DTLS `active`,
    rtcp-mux; baresip is offered plain RTP/AVP at another relay port; ICE and DTLS connect between alice and
    stox, and each peer hears the other's tone (alice decodes baresip's 440 Hz, baresip records alice's)."""
    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        t = ice_transport(jingle_in(a, "session-accept"))
        assert len(t["candidates"]) == 1 and in_range(t["candidates"][0]), "candidates %s" % t["candidates"]
        assert t["setup"] == "active" and t["rtcp_mux"], t
        check_plain_sdp_to_baresip(pam)
        check_heard(s, TONE_HZ, "alice")
        m = await asyncio.to_thread(scrape)
        assert m.get(RELAYS) == 1, "%s during the call: %s" % (RELAYS, m.get(RELAYS))
        await call.hangup("success")
    run(scenario, ice_alice(), pam)
    pam.wait_log("terminated", timeout=10)
    end = time.monotonic() + 5
    while scrape().get(RELAYS) != 0 and time.monotonic() < end:
        time.sleep(0.2)
    assert scrape().get(RELAYS) == 0, "the relay is still counted after the call"
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ICE_ALICE_HZ)


async def phone_dials_ice_alice(a, phone) -> tuple:
    """PHONE dials alice (aiortc) through the relay: her incoming call once active with media, her RTP stats
    after 2.5 s, and the ICE transport of stox's session-initiate, which has one host candidate at a relay port."""
    await asyncio.to_thread(phone.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
    inc = await a.wait_incoming()
    await inc.wait_state("active")
    await inc.wait_media()
    await asyncio.sleep(2.5)
    s = await inc.media_stats()
    print("\nalice after 2.5 s: %s" % s)
    t = ice_transport(jingle_in(a, "session-initiate"))
    assert len(t["candidates"]) == 1 and in_range(t["candidates"][0]), "candidates %s" % t["candidates"]
    return inc, s, t


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_plain_sip_phone_calls_ice_dtls_client(xmpp_server, relay_ice, pam):
    """pam (plain RTP/AVP offer) calls alice (aiortc): stox's session-initiate offers ICE-UDP with a relay host
    candidate, DTLS `actpass` and rtcp-mux; alice's answer reaches baresip as plain RTP/AVP at a relay port;
    audio both ways; pam holds and unholds (audio back at alice), then hangs up and alice sees <success/>."""
    async def scenario(a):
        inc, s, t = await phone_dials_ice_alice(a, pam)
        assert t["setup"] == "actpass" and t["rtcp_mux"], t
        check_plain_sdp_to_baresip(pam)
        check_heard(s, TONE_HZ, "alice")
        await asyncio.to_thread(pam.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    run(scenario, ice_alice(), pam)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ICE_ALICE_HZ)
    print("baresip's RTCP summary: %s" % check_rtcp_at_baresip(pam))


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_ice_dtls_client_holds_and_unholds(xmpp_server, relay_ice, pam):
    """alice (aiortc) calls pam through the relay and holds: the re-INVITE baresip gets is a=sendonly at the same
    relay port (plain RTP/AVP), baresip stops sending, so alice receives almost nothing while her own audio still
    goes out; unhold brings baresip's audio back over the same ICE + DTLS session."""
    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(1.0)
        port = check_plain_sdp_to_baresip(pam)
        await call.hold()
        await asyncio.sleep(1.0)                          # the re-INVITE round trip and packets in flight
        got, sent = await asyncio.gather(delta(call, "packets_received", 1.5), delta(call, "packets_sent", 1.5))
        print("\non hold, in 1.5 s: alice got %d, sent %d" % (got, sent))
        assert got <= 5, "baresip kept sending while held: alice got %d packets in 1.5 s" % got
        assert sent >= 50, "the holder stopped sending too (%d packets)" % sent
        held = [x for x in sdps_at_baresip(pam, port) if "a=sendonly" in x]
        assert held and "c=IN IP4 %s" % RELAY_IP in held[0], "no sendonly re-INVITE at the relay port %d: %s" % (
            port, sdps_at_baresip(pam, port))
        await call.unhold()
        await asyncio.sleep(1.0)
        got = await delta(call, "packets_received", 1.5)
        print("after unhold, in 1.5 s: alice got %d" % got)
        assert got >= 50, "baresip's audio did not come back after unhold (%d packets)" % got
        await call.hangup("success")
    run(scenario, ice_alice(), pam)


@pytest.fixture
def auto(stox):
    """stox with media.mode = "auto"; back to direct afterwards."""
    line = stox.reload(relay_config(stox, xmpp_transport="ice-udp", mode="auto"))
    assert "media.mode" in line, "the reload did not take media.mode: %s" % line
    yield stox
    stox.reload(stox.rendered())


@pytest.mark.parametrize("mode", ["auto", "relay"])
@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_ice_dtls_phone_and_client_stay_direct_both_ways(xmpp_server, stox, carl, mode):
    """A SIP phone that does ICE + DTLS-SRTP itself (baresip carl) with media.mode = "auto" or "relay": alice
    (aiortc) calls carl and carl calls alice; neither call is relayed (the Jingle candidates alice gets are
    baresip's, none is a relay port) and audio flows both ways each time. In "auto" alice's offer goes to carl as
    it is at once; in "relay" carl refuses the relayed plain RTP/AVP offer and answers the SDES one with ICE + DTLS
    of its own, so stox ends that dialog and the next INVITE is alice's own offer."""
    line = stox.reload(relay_config(stox, xmpp_transport="ice-udp", mode=mode))
    assert "media.mode" in line, "the reload did not take media.mode: %s" % line

    async def scenario(a):
        call = await a.place_call(sip_jid(CARL, CALL_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.0)
        s = await call.media_stats()
        print("\nalice calling, after 2 s: %s" % s)
        t = ice_transport(jingle_in(a, "session-accept"))
        assert t["candidates"] and not any(in_range(c) for c in t["candidates"]), "relayed: %s" % t["candidates"]
        check_heard(s, TONE_HZ, "alice")
        await call.hangup("success")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(carl.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        await inc.wait_state("active")
        await inc.wait_media()
        await asyncio.sleep(2.0)
        s = await inc.media_stats()
        print("alice called, after 2 s: %s" % s)
        t = ice_transport(jingle_in(a, "session-initiate"))
        assert t["candidates"] and not any(in_range(c) for c in t["candidates"]), "relayed: %s" % t["candidates"]
        check_heard(s, TONE_HZ, "alice")
        await asyncio.to_thread(carl.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    try:
        run(scenario, ice_alice(), carl)
    finally:
        stox.reload(stox.rendered())
    check_baresip_heard(carl)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_auto_relays_a_plain_phone_both_ways(xmpp_server, auto, pam):
    """media.mode = "auto" with a plain-RTP phone (pam): alice's (aiortc) ICE + DTLS offer reaches baresip as it
    is, baresip refuses it, and stox sends the INVITE again through the relay: alice gets a relay candidate and
    audio flows both ways; pam calling alice is relayed at once (ICE-UDP at a relay port toward alice)."""
    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice calling, after 2.5 s: %s" % s)
        t = ice_transport(jingle_in(a, "session-accept"))
        assert len(t["candidates"]) == 1 and in_range(t["candidates"][0]), "not relayed: %s" % t["candidates"]
        check_plain_sdp_to_baresip(pam)
        check_heard(s, TONE_HZ, "alice")
        await call.hangup("success")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(pam.ctrl, "dial sip:alice@%s" % XMPP_DOMAIN)
        inc = await a.wait_incoming()
        await inc.wait_state("active")
        await inc.wait_media()
        await asyncio.sleep(2.0)
        s = await inc.media_stats()
        print("alice called, after 2 s: %s" % s)
        t = ice_transport(jingle_in(a, "session-initiate"))
        assert len(t["candidates"]) == 1 and in_range(t["candidates"][0]), "not relayed: %s" % t["candidates"]
        check_heard(s, TONE_HZ, "alice")
        await asyncio.to_thread(pam.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    run(scenario, ice_alice(), pam)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ICE_ALICE_HZ)


@pytest.fixture
def pam_srtp(stox, kit):
    """baresip as pam (same address and route as the plain phone) with mediaenc srtp-mand: it offers RTP/SAVP with
    SDES keys (a=crypto), refuses plain RTP, and encrypts and decrypts with libsrtp."""
    b = BaresipCall(kit, PAM, BARESIP_PLAIN[0], BARESIP_PLAIN[1], GW_PORT, name="pam-srtp", medianat=None,
                    mediaenc="srtp-mand", sip_trace=True).start()
    yield b
    b.stop()


def crypto_keys(sdp: str) -> list:
    """The inline: keys of an SDP's a=crypto lines."""
    return [line.split("inline:", 1)[1].split("|")[0].strip() for line in sdp.splitlines()
            if line.startswith("a=crypto:") and "inline:" in line]


def sdps_to_baresip(b) -> list:
    """Every SDP stox sent baresip (c= the relay), in order."""
    bodies = [t.split("\n\n")[0].split("\x1b")[0] for t in b.log_text().split("v=0")[1:]]
    return [t for t in bodies if "c=IN IP4 %s" % RELAY_IP in t and "m=audio" in t]


def check_sdes_sdp_to_baresip(b) -> str:
    """The first RTP/SAVP SDP stox sent baresip is at a relay port with one a=crypto line of stox's own key (none
    of the keys baresip offered itself), and nothing of ICE or DTLS."""
    savp = [t for t in sdps_to_baresip(b) if "RTP/SAVP" in t]
    assert savp, "stox did not speak SDES-SRTP to baresip: %s" % sdps_to_baresip(b)
    sdp = savp[0]
    for bad in ("ice-ufrag", "a=candidate", "fingerprint"):
        assert bad not in sdp, "%s in the SDP stox sent baresip: %s" % (bad, sdp)
    ours = crypto_keys(sdp)
    assert len(ours) == 1, "expected one a=crypto line from stox: %s" % sdp
    theirs = [k for t in b.log_text().split("v=0")[1:] if "c=IN IP4 %s" % RELAY_IP not in t for k in crypto_keys(t)]
    assert ours[0] not in theirs, "stox sent baresip's own key back"
    return sdp


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_sdes_phone_calls_ice_dtls_client(xmpp_server, relay_ice, pam_srtp):
    """pam with SDES-SRTP (RTP/SAVP, a=crypto) calls alice (aiortc, ICE + DTLS-SRTP): stox answers baresip with
    SDES at a relay port and a key of its own, offers alice ICE-UDP + DTLS at another, and decrypts and
    re-encrypts between the two: alice decodes baresip's tone and baresip records alice's; stox reads baresip's
    SRTCP (its reports give baresip a round-trip time)."""
    async def scenario(a):
        inc, s, _ = await phone_dials_ice_alice(a, pam_srtp)
        check_sdes_sdp_to_baresip(pam_srtp)
        check_heard(s, TONE_HZ, "alice")
        # Long enough for baresip's first SRTCP sender report (every 5 s) to reach stox and
        # stox's next report (every 5 s) to answer it with LSR/DLSR.
        await asyncio.sleep(9)
        await asyncio.to_thread(pam_srtp.ctrl, "hangup")
        assert await inc.wait_ended() == "success"
    run(scenario, ice_alice(), pam_srtp)
    check_baresip_heard(pam_srtp)
    # SRTCP: baresip decrypted and authenticated stox's reports; its round-trip time (DL, ms) is only known
    # when stox's report carried the LSR/DLSR of baresip's own SRTCP sender report, which stox had to decrypt.
    line = check_rtcp_at_baresip(pam_srtp)
    print("baresip's RTCP summary: %s" % line)
    dl = float(line.split("DL=", 1)[1].split(";", 1)[0])
    assert dl > 0, "baresip knows no round-trip time: stox's reports had no LSR/DLSR for its SRTCP: %s" % line
    check_baresip_pitch(pam_srtp, ICE_ALICE_HZ)


@pytest.mark.parametrize("sip_srtp", ["sdes", "off"])
@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_relay_ice_dtls_client_calls_sdes_phone(xmpp_server, stox, pam_srtp, sip_srtp):
    """alice (aiortc) calls pam, which only takes SDES-SRTP. With media.sip_srtp = "sdes" the INVITE is RTP/SAVP
    with stox's key at a relay port; with "off" the first INVITE is plain RTP/AVP, baresip refuses it and stox
    sends it again as RTP/SAVP. baresip answers with its own key, audio flows both ways, alice holds and unholds
    (the re-INVITE repeats stox's key; baresip's audio comes back) and hangs up."""
    line = stox.reload(relay_config(stox, xmpp_transport="ice-udp", sip_srtp=sip_srtp))
    assert "media.mode" in line, "the reload did not take media.mode: %s" % line
    assert ("media.sip_srtp" in line) == (sip_srtp != "off"), "the reload and media.sip_srtp: %s" % line

    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice after 2.5 s: %s" % s)
        t = ice_transport(jingle_in(a, "session-accept"))
        assert len(t["candidates"]) == 1 and in_range(t["candidates"][0]), "not relayed: %s" % t["candidates"]
        sdp = check_sdes_sdp_to_baresip(pam_srtp)
        first = sdps_to_baresip(pam_srtp)[0]
        if sip_srtp == "off":
            assert "RTP/AVP" in first and "a=crypto" not in first, "the first INVITE was not plain: %s" % first
        else:
            assert first == sdp, "the first INVITE was not SDES: %s" % first
        check_heard(s, TONE_HZ, "alice")
        await call.hold()
        await asyncio.sleep(1.0)
        await call.unhold()
        await asyncio.sleep(1.0)
        got = await delta(call, "packets_received", 1.5)
        print("after unhold, in 1.5 s: alice got %d" % got)
        assert got >= 50, "baresip's audio did not come back after unhold (%d packets)" % got
        port = int(sdp.split("m=audio ", 1)[1].split()[0])
        again = [x for x in sdps_at_baresip(pam_srtp, port) if "a=sendonly" in x]
        assert again and crypto_keys(again[0]) == crypto_keys(sdp), "the hold re-INVITE did not repeat stox's key"
        await call.hangup("success")
    try:
        run(scenario, ice_alice(), pam_srtp)
        pam_srtp.wait_log("terminated", timeout=10)
    finally:
        stox.reload(stox.rendered())
    check_baresip_heard(pam_srtp)
    check_baresip_pitch(pam_srtp, ICE_ALICE_HZ)


# coturn as a plain STUN server (media.stun_server), and the NAT's inner-side port that forwards to it.
STUN_PORT, STUN_VIA_NAT = 34780, (RELAY_IP, 34781)


@pytest.fixture
def stun_server(kit):
    """coturn (turnserver --stun-only) on 127.0.0.1:STUN_PORT, for the length of a test."""
    import shutil
    import subprocess
    from conftest import terminate
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn is not installed (turnserver not found): apt-get install coturn "
                    "(integration/run.sh installs it)", pytrace=False)
    log = kit.run / "coturn.log"
    proc = subprocess.Popen([binary, "-n", "--stun-only", "--no-cli", "--listening-ip", RELAY_IP,
                             "--listening-port", str(STUN_PORT), "--log-file", "stdout", "--simple-log"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        # Ready when it answers a Binding request (RFC 8489 §6: 20 bytes, magic cookie, transaction id).
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.settimeout(0.2)
        end = time.monotonic() + 10
        while True:
            assert proc.poll() is None, "coturn exited: %s" % log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < end, "coturn did not answer: %s" % log.read_text(errors="replace")[-2000:]
            probe.sendto(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + os.urandom(12), (RELAY_IP, STUN_PORT))
            try:
                if probe.recv(1500)[:2] == b"\x01\x01":
                    break
            except OSError:
                time.sleep(0.1)
        probe.close()
        yield (RELAY_IP, STUN_PORT)
    finally:
        terminate(proc)


@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
@pytest.mark.parametrize("how", ["public_address", "stun_server"])
def test_relay_behind_a_1to1_nat_announces_the_public_address(xmpp_server, stox, pam, how, request):
    """stox's relay binds 127.0.0.1 behind a 1:1 NAT (nat.py) whose public side is this machine's primary address,
    and either media.public_address says so or media.stun_server finds it out (coturn, asked through the NAT, sees
    the public address): alice (aiortc) calls pam and the ICE candidate she gets and the c=/m= baresip gets are the
    public address at relay ports; both send there, the NAT carries baresip's media in and the relay's back out
    (latched to the NAT's mapping), and each hears the other's tone. (alice's own media may take the relay's
    direct address, which its checks reveal: nothing on this machine stops it the way a real NAT would.)"""
    from nat import Nat
    public = primary_ipv4()
    assert public != RELAY_IP, "the machine needs a non-loopback address for this test"
    nat = Nat(public, RELAY_IP, range(PORT_MIN, PORT_MAX + 1)).start()
    if how == "public_address":
        line = stox.reload(relay_config(stox, xmpp_transport="ice-udp") + 'public_address = "%s"\n' % public)
        assert "media.public_address" in line, "the reload did not take media.public_address: %s" % line
    else:
        nat.forward_out(STUN_VIA_NAT, request.getfixturevalue("stun_server"))
        learned = "public address from the STUN server ip=%s " % public
        before = stox.log_text().count(learned)
        line = stox.reload(relay_config(stox, xmpp_transport="ice-udp") + 'stun_server = "%s:%d"\n' % STUN_VIA_NAT)
        assert "media.stun_server" in line, "the reload did not take media.stun_server: %s" % line
        end = time.monotonic() + 10
        while stox.log_text().count(learned) == before:
            assert time.monotonic() < end, "stox did not learn its address from the STUN server:\n%s" % stox.tail(30)
            time.sleep(0.1)

    async def scenario(a):
        call = await a.place_call(sip_jid(PAM, PLAIN_DOMAIN))
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2.5)
        s = await call.media_stats()
        print("\nalice after 2.5 s: %s; NAT in %d, out %d" % (s, nat.inbound, nat.outbound))
        t = ice_transport(jingle_in(a, "session-accept"))
        assert len(t["candidates"]) == 1, "candidates %s" % t["candidates"]
        ip, port = t["candidates"][0]
        assert ip == public and PORT_MIN <= port <= PORT_MAX, "alice was told %s:%d, not the public address" % (
            ip, port)
        told = [x for x in pam.log_text().split("v=0")[1:] if "c=IN IP4 %s" % public in x and any(
            "m=audio %d " % p in x for p in range(PORT_MIN, PORT_MAX + 1))]
        assert told, "baresip was not told the public address at a relay port"
        check_heard(s, TONE_HZ, "alice")
        await call.hangup("success")
    try:
        run(scenario, ice_alice(), pam)
        pam.wait_log("terminated", timeout=10)
        if how == "stun_server":
            # `stox doctor` asks the same server the same way and says what calls announce.
            import subprocess
            from conftest import stox_binary
            cfg = stox.dir / "doctor-stun.toml"
            cfg.write_text(relay_config(stox, xmpp_transport="ice-udp") + 'stun_server = "%s:%d"\n' % STUN_VIA_NAT)
            out = subprocess.run([str(stox_binary()), "doctor", "--timeout", "3", "--config", str(cfg)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 timeout=60).stdout.decode(errors="replace")
            media = [ln for ln in out.splitlines() if "media:" in ln]
            assert media and media[0].startswith("ok") and "sees the relay as %s" % public in media[0], \
                "doctor's media line: %s\n%s" % (media, out)
    finally:
        nat.stop()
        stox.reload(stox.rendered())
    # baresip's 50 packets/s go in through the NAT and the relay's come back out of it (latched to the mapping).
    assert nat.inbound >= 100 and nat.outbound >= 50, "the NAT carried %d in, %d out" % (nat.inbound, nat.outbound)
    check_baresip_heard(pam)
    check_baresip_pitch(pam, ICE_ALICE_HZ)
