"""The independent XMPP call peer (jingle_peer.py, see JINGLE_PEER.md) against itself on a real XMPP server,
before stox speaks Jingle: two c2s users (alice, bob) call each other through the server with real media.

Proves the peer that later tests of CHECKLIST part 6 (MEDIA-*) will point at stox: XEP-0353 propose/proceed/
reject/retract/finish, XEP-0166 session-initiate/accept/info/terminate with reasons, content-modify (hold),
transport-info (trickled candidates), XEP-0176 ICE + XEP-0320 DTLS-SRTP connecting on loopback, audio arriving
both ways (RTP counters from aiortc, RMS and pitch of the decoded tone), disco#info + XEP-0115 caps.
The gateway is not involved: only the server fixture is used."""
import asyncio
import xml.etree.ElementTree as ET

import pytest

from jingle_peer import AIORTC_ERROR, INSTALL_HINT, JinglePeer
from jingle_sdp import (FEATURES, NS_DTLS, NS_HDREXT, NS_ICE, NS_JINGLE, NS_RTCP_FB, NS_RTP, NS_SSMA,
                        check_jingle, jingle_to_sdp, parse_sdp, q, sdp_to_jingle)
from topology import C2S_PORT, XMPP_DOMAIN

ALICE_HZ, BOB_HZ = 440.0, 660.0
LOOPBACK = ["127.0.0.1"]
RMS_MIN = 0.05          # the tone is sent at 0.3 of full scale; silence or noise stays far below this
PITCH_TOL = 60.0        # zero-crossing estimate per 20 ms frame: 25 Hz steps


@pytest.fixture
def need_aiortc():
    if AIORTC_ERROR is not None:
        pytest.fail("%s (import error: %s)" % (INSTALL_HINT, AIORTC_ERROR), pytrace=False)


@pytest.fixture
def server_up(xmpp_server):
    """The XMPP server, started again if an earlier module (a restart test) left it stopped."""
    if not xmpp_server.running:
        xmpp_server.start()
    return xmpp_server


def SERVERS(fn):
    """A test of two peers on Prosody and on ejabberd; it fails (with the install command) without aiortc."""
    return pytest.mark.usefixtures("need_aiortc", "server_up")(
        pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)(fn))


def peer(user: str, **kw) -> JinglePeer:
    kw.setdefault("ice_hosts", LOOPBACK)
    kw.setdefault("tone_hz", ALICE_HZ if user == "alice" else BOB_HZ)
    return JinglePeer("%s@%s" % (user, XMPP_DOMAIN), user + "pass", port=C2S_PORT, **kw)


def run(scenario, *peers_kw, timeout: float = 90):
    """Start one peer per kwargs dict, run SCENARIO(*peers) in one event loop, always stop the peers;
    on failure the event logs of all peers are part of the message."""
    async def main():
        peers = [peer(**kw) for kw in peers_kw]
        try:
            for p in peers:
                await p.start()
            await asyncio.wait_for(scenario(*peers), timeout)
            for p in peers:    # the peer's own XEP checks of what the other peer sent
                assert p.violations == [], "%s saw violations: %s" % (p.name, p.violations)
        except Exception as e:
            logs = "\n".join("--- %s events:\n%s" % (p.name, p.log_text(120)) for p in peers)
            raise AssertionError("%s: %s\n%s" % (type(e).__name__, e, logs)) from e
        finally:
            for p in peers:
                await p.stop()
    asyncio.run(main())


def kinds(p: JinglePeer, sid: str) -> list[str]:
    """'in:jingle:session-accept', 'out:jmi:propose', ... for one call, in order."""
    return ["%s:%s" % (e.direction, e.kind) for e in p.events if e.sid == sid and e.direction in ("in", "out")]


def in_order(seq: list[str], *wanted: str) -> bool:
    it = iter(seq)
    return all(any(x == w for x in it) for w in wanted)


async def delta(call, key: str, secs: float) -> int:
    before = (await call.media_stats())[key]
    await asyncio.sleep(secs)
    return (await call.media_stats())[key] - before


def check_audio(stats: dict, hears_hz: float, who: str):
    assert stats["packets_received"] >= 50, "%s: only %d RTP packets received: %s" % (
        who, stats["packets_received"], stats)
    assert stats["frames_decoded"] >= 40, "%s: %s" % (who, stats)
    assert stats["rms_median"] > RMS_MIN, "%s: received audio is silent (RMS %.4f): %s" % (
        who, stats["rms_median"], stats)
    assert abs(stats["freq_median"] - hears_hz) <= PITCH_TOL, "%s hears %.0f Hz, the far end sends %.0f Hz" % (
        who, stats["freq_median"], hears_hz)


# ------------------------------------------------------------------------------------------ tests
@SERVERS
def test_media_26_jingle_peer_disco_and_caps(xmpp_server):
    """disco#info of a peer lists the Jingle RTP / ICE-UDP / DTLS / audio / JMI features; its presence carries
    XEP-0115 caps whose ver is the hash of that disco#info (computed here, not by slixmpp)."""
    async def scenario(a, b):
        feats = await a.disco_features(b.full_jid)
        missing = [f for f in FEATURES if f not in feats]
        assert not missing, "disco#info of %s lacks %s (has %s)" % (b.full_jid, missing, feats)
        b.x.send_presence(pto=a.full_jid)            # directed presence, as XEP-0353 §3.1 recommends
        for _ in range(100):
            if b.full_jid in a.presence_caps:
                break
            await asyncio.sleep(0.05)
        caps = a.presence_caps.get(b.full_jid)
        assert caps, "no XEP-0115 <c/> in %s's presence" % b.full_jid
        assert caps.get("hash") == "sha-1" and caps.get("node"), caps
        ver = await a.disco_caps_ver(b.full_jid, "%s#%s" % (caps["node"], caps["ver"]))
        assert ver == caps["ver"], "caps ver %s but disco#info hashes to %s" % (caps["ver"], ver)
    run(scenario, {"user": "alice"}, {"user": "bob"})


@SERVERS
def test_media_25_15_23_jingle_peer_call_audio_hold_hangup(xmpp_server):
    """alice calls bob's bare JID: propose/ringing/proceed, session-initiate/accept to the full JID, ICE + DTLS-SRTP
    on loopback, each hears the other's tone; alice holds (session-info + content-modify senders=initiator: bob
    stops sending, alice goes on), unholds (both flow again); bob hangs up with <success/>; both send <finish/>."""
    async def scenario(a, b):
        call = await a.place_call(b.bare_jid)
        inc = await b.wait_incoming()
        assert inc.sid == call.sid and inc.jmi
        await call.wait_state("active")
        await inc.wait_state("active")
        assert call.remote == b.full_jid, "session-initiate went to %s, not the proceeding resource" % call.remote
        await call.wait_media()
        await inc.wait_media()
        await asyncio.sleep(2.5)
        sa, sb = await call.media_stats(), await inc.media_stats()
        print("\nafter 2.5 s: alice %s\n             bob   %s" % (sa, sb))
        check_audio(sa, BOB_HZ, "alice")
        check_audio(sb, ALICE_HZ, "bob")
        assert in_order(kinds(a, call.sid), "out:jmi:propose", "in:jmi:ringing", "in:jmi:proceed",
                        "out:jingle:session-initiate", "in:jingle:session-accept"), kinds(a, call.sid)
        assert in_order(kinds(b, call.sid), "in:jmi:propose", "out:jmi:proceed", "in:jingle:session-initiate",
                        "out:jingle:session-accept"), kinds(b, call.sid)

        # hold: the held party (bob) stops sending, the holder (alice) keeps sending
        await call.hold()
        await inc.wait_info("hold")
        await inc.wait_senders("initiator")
        assert inc.remote_hold
        await asyncio.sleep(0.3)                              # packets already in flight
        bob_sent, alice_got, bob_got = await asyncio.gather(delta(inc, "packets_sent", 1.5),
                                                            delta(call, "packets_received", 1.5),
                                                            delta(inc, "packets_received", 1.5))
        assert bob_sent <= 2 and alice_got <= 2, "on hold bob still sent %d, alice got %d" % (bob_sent, alice_got)
        assert bob_got >= 50, "the holder's audio stopped too: bob got %d packets in 1.5 s" % bob_got
        print("\non hold, in 1.5 s: bob sent %d, alice got %d, bob got %d" % (bob_sent, alice_got, bob_got))

        await call.unhold()
        await inc.wait_info("unhold")
        await inc.wait_senders("both")
        assert not inc.remote_hold
        await asyncio.sleep(0.3)
        bob_sent, alice_got = await asyncio.gather(delta(inc, "packets_sent", 1.5), delta(call, "packets_received", 1.5))
        assert bob_sent >= 50 and alice_got >= 50, "after unhold bob sent %d, alice got %d" % (bob_sent, alice_got)
        print("after unhold, in 1.5 s: bob sent %d, alice got %d" % (bob_sent, alice_got))
        rms = (await call.media_stats())["rms_median"]
        assert rms > RMS_MIN, "after unhold alice hears silence (RMS %.4f)" % rms

        await inc.hangup("success")                           # from the callee's side
        assert await call.wait_ended() == "success" and call.ended_by == "remote"
        assert inc.state == "ended" and inc.ended_by == "local"
        fa, fb = call.final_stats, inc.final_stats
        assert fa and fb and fa["packets_received"] > 100 and fb["packets_received"] > 100, (fa, fb)
        for _ in range(40):
            if "in:jmi:finish" in kinds(a, call.sid) and "in:jmi:finish" in kinds(b, call.sid):
                break
            await asyncio.sleep(0.05)
        assert "in:jmi:finish" in kinds(a, call.sid) and "in:jmi:finish" in kinds(b, call.sid)
        print("\nalice final %s\nbob final   %s" % (fa, fb))
    run(scenario, {"user": "alice"}, {"user": "bob"})


@SERVERS
def test_media_7_jingle_peer_direct_initiate_trickle_ring_then_accept(xmpp_server):
    """No XEP-0353: session-initiate straight to bob's full JID with no candidates, every candidate in its own
    transport-info (both directions); bob only rings (session-info <ringing/>) until the test accepts; audio
    both ways; bob (the responder) holds and unholds; alice hangs up with <success/>."""
    async def scenario(a, b):
        call = await a.place_call(b.full_jid, jmi=False)
        inc = await b.wait_incoming()
        await inc.wait_state("pending")
        await call.wait_info("ringing")
        assert call.state == "pending"
        await asyncio.sleep(0.5)
        assert call.state == "pending", "bob was set to ring only, yet the call is %s" % call.state
        await inc.accept()
        await call.wait_state("active")
        await call.wait_media()
        await inc.wait_media()
        await asyncio.sleep(2)
        check_audio(await call.media_stats(), BOB_HZ, "alice")
        check_audio(await inc.media_stats(), ALICE_HZ, "bob")
        ka, kb = kinds(a, call.sid), kinds(b, call.sid)
        assert "out:jmi:propose" not in ka
        assert ka.count("out:jingle:transport-info") >= 1 and kb.count("in:jingle:transport-info") >= 1, ka
        assert kb.count("out:jingle:transport-info") >= 1 and ka.count("in:jingle:transport-info") >= 1, kb
        si = next(e for e in a.events if e.sid == call.sid and e.kind == "jingle:session-initiate")
        assert "cand=0" in si.detail, "trickle: the session-initiate should carry no candidate: " + si.detail

        # now the responder holds: content-modify senders='responder', so alice (the initiator) stops sending
        await inc.hold()
        await call.wait_info("hold")
        await call.wait_senders("responder")
        await asyncio.sleep(0.3)
        alice_sent, alice_got = await asyncio.gather(delta(call, "packets_sent", 1.5),
                                                     delta(call, "packets_received", 1.5))
        assert alice_sent <= 2 and alice_got >= 50, "bob holds: alice sent %d (want 0), got %d" % (
            alice_sent, alice_got)
        await inc.unhold()
        await call.wait_senders("both")
        await asyncio.sleep(0.3)
        assert await delta(inc, "packets_received", 1.0) >= 30, "after unhold bob hears nothing"
        await call.hangup()
        assert await inc.wait_ended() == "success" and inc.ended_by == "remote"
    run(scenario, {"user": "alice", "trickle": True}, {"user": "bob", "trickle": True, "on_initiate": "ring"})


@SERVERS
def test_media_9_jingle_peer_pcmu_only_recorded(xmpp_server, tmp_path):
    """Both sides limited to PCMU (what SIP phones behind stox will offer): only PCMU is offered and answered, the
    8 kHz audio arrives, and bob's recording is a WAV file with alice's tone in it."""
    import array
    import math
    import wave

    async def scenario(a, b):
        call = await a.place_call(b.bare_jid)
        inc = await b.wait_incoming()
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(2)
        si = next(e for e in a.events if e.sid == call.sid and e.kind == "jingle:session-initiate")
        acc = next(e for e in b.events if e.sid == call.sid and e.kind == "jingle:session-accept")
        assert "0[PCMU]" in si.detail and "0[PCMU]" in acc.detail, (si.detail, acc.detail)
        check_audio(await inc.media_stats(), ALICE_HZ, "bob")
        check_audio(await call.media_stats(), BOB_HZ, "alice")
        await call.hangup()
        await inc.wait_ended()
        wavs = list(tmp_path.glob("bob-*.wav"))
        assert len(wavs) == 1, wavs
        w = wave.open(str(wavs[0]))
        pcm = array.array("h")
        pcm.frombytes(w.readframes(w.getnframes()))
        secs = w.getnframes() / w.getframerate()
        rms = math.sqrt(sum(x * x for x in pcm) / max(len(pcm), 1)) / 32768
        print("\nbob's recording: %s, %d Hz, %.2f s, RMS %.3f" % (wavs[0].name, w.getframerate(), secs, rms))
        assert w.getframerate() == 8000 and secs >= 1.5 and rms > RMS_MIN, (w.getframerate(), secs, rms)
    run(scenario, {"user": "alice", "codecs": ["PCMU"]},
        {"user": "bob", "codecs": ["PCMU"], "record_dir": str(tmp_path)})


@SERVERS
@pytest.mark.parametrize("reason", ["decline", "busy"])
def test_media_25_jingle_peer_propose_rejected(xmpp_server, reason):
    """bob rejects the <propose/> with REASON: alice's call ends with it and no session-initiate is sent."""
    async def scenario(a, b):
        call = await a.place_call(b.bare_jid)
        assert await call.wait_ended(15) == reason and call.ended_by == "remote"
        inc = await b.wait_incoming()
        assert inc.state == "ended" and inc.reason == reason
        assert "out:jingle:session-initiate" not in kinds(a, call.sid)
        assert "in:jmi:reject" in kinds(a, call.sid)
    run(scenario, {"user": "alice"}, {"user": "bob", "on_propose": "reject", "reject_reason": reason})


@SERVERS
def test_media_23_jingle_peer_session_initiate_busy(xmpp_server):
    """bob answers a direct session-initiate with session-terminate <busy/> (after ringing): alice's call ends busy."""
    async def scenario(a, b):
        call = await a.place_call(b.full_jid, jmi=False)
        assert await call.wait_ended(15) == "busy" and call.ended_by == "remote"
        assert in_order(kinds(a, call.sid), "out:jingle:session-initiate", "in:jingle:session-info",
                        "in:jingle:session-terminate"), kinds(a, call.sid)
        assert "in:jingle:session-accept" not in kinds(a, call.sid)
    run(scenario, {"user": "alice"}, {"user": "bob", "on_initiate": "reject", "reject_reason": "busy"})


@SERVERS
def test_media_25_jingle_peer_ringing_then_retract(xmpp_server):
    """bob's device rings but nobody answers; alice gives up: <retract/> with <cancel/> ends bob's call too."""
    async def scenario(a, b):
        call = await a.place_call(b.bare_jid)
        inc = await b.wait_incoming()
        await call.wait_info("jmi-ringing")
        await asyncio.sleep(0.5)
        assert call.state == "proposing" and inc.state == "proposed"
        await call.hangup()
        assert call.reason == "success" and "out:jmi:retract" in kinds(a, call.sid)
        assert await inc.wait_ended() == "cancel" and inc.ended_by == "remote"
    run(scenario, {"user": "alice"}, {"user": "bob", "on_propose": "ring"})


@SERVERS
def test_media_8_jingle_peer_errors_for_unknown_session_and_info(xmpp_server):
    """Jingle IQ errors (XEP-0166 §10, CHECKLIST MEDIA-8): an unknown sid gets item-not-found + <unknown-session/>;
    a session-info payload the peer does not know gets feature-not-implemented + <unsupported-info/>; a second
    session-accept gets unexpected-request + <out-of-order/>; content-add is answered with content-reject; after
    session-terminate the sid is unknown."""
    async def scenario(a, b):
        r = await a.jingle_iq(b.full_jid, "<jingle xmlns='%s' action='transport-info' sid='no-such-sid'><content "
                              "creator='initiator' name='0'/></jingle>" % NS_JINGLE)
        assert (r["type"], r["condition"], r["jingle_error"]) == ("error", "item-not-found", "unknown-session"), r
        call = await a.place_call(b.bare_jid)
        await call.wait_state("active")
        r = await a.jingle_iq(b.full_jid, "<jingle xmlns='%s' action='session-info' sid='%s'><x xmlns='urn:example:x'/>"
                              "</jingle>" % (NS_JINGLE, call.sid))
        assert (r["type"], r["condition"], r["jingle_error"]) == ("error", "feature-not-implemented",
                                                                  "unsupported-info"), r
        r = await a.jingle_iq(b.full_jid, "<jingle xmlns='%s' action='session-info' sid='%s'/>" % (NS_JINGLE, call.sid))
        assert r["type"] == "result", "an empty session-info (ping) must get a result: %s" % r
        r = await a.jingle_iq(b.full_jid, "<jingle xmlns='%s' action='content-add' sid='%s'><content creator='initiator' "
                              "name='v'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/></content>"
                              "</jingle>" % (NS_JINGLE, call.sid))
        assert r["type"] == "result", r
        for _ in range(100):
            if "in:jingle:content-reject" in kinds(a, call.sid):
                break
            await asyncio.sleep(0.05)
        assert "in:jingle:content-reject" in kinds(a, call.sid), "content-add got no content-reject"
        r = await a.jingle_iq(b.full_jid, "<jingle xmlns='%s' action='session-accept' sid='%s'><content "
                              "creator='initiator' name='0'/></jingle>" % (NS_JINGLE, call.sid))
        assert (r["condition"], r["jingle_error"]) == ("unexpected-request", "out-of-order"), r
        await call.hangup()
        assert await b.calls[call.sid].wait_ended() == "success"
        r = await a.jingle_iq(b.full_jid, "<jingle xmlns='%s' action='session-info' sid='%s'/>" % (NS_JINGLE, call.sid))
        assert (r["condition"], r["jingle_error"]) == ("item-not-found", "unknown-session"), \
            "an IQ for a terminated session must get unknown-session (XEP-0166 §6.7): %s" % r
    run(scenario, {"user": "alice"}, {"user": "bob"})


# ------------------------------------------------------- the peer's own translation (no server needed)
OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE a0",
    "m=audio 50000 UDP/TLS/RTP/SAVPF 111 0 101", "c=IN IP4 192.0.2.1", "a=mid:a0", "a=sendonly",
    "a=ice-ufrag:Uf1x", "a=ice-pwd:pwpwpwpwpwpwpwpwpwpwpw",
    "a=fingerprint:sha-256 AA:BB:CC", "a=fingerprint:sha-1 11:22", "a=setup:actpass", "a=rtcp-mux",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:2/recvonly urn:example:x",
    "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtcp-fb:111 transport-cc",
    "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=rtcp-fb:* nack",
    "a=ptime:20", "a=ssrc:1234 cname:abc",
    "a=candidate:f1 1 UDP 2130706431 192.0.2.1 50000 typ host",
    "a=candidate:f2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 192.0.2.1 rport 50000", ""])


def _find(el, ns, name):
    return el.findall(q(ns, name))


def test_media_9_11_24_jingle_peer_translation_sdp_jingle_sdp():
    """The peer's SDP -> Jingle (XEP-0167/0176/0320/0293/0294/0338/0339) and back, on an offer with more than
    aiortc writes: direction (MEDIA-6), fmtp split (MEDIA-19), rtcp-fb per payload and '*', hdrext with a
    direction, srflx candidate with raddr/rport, BUNDLE group, ssrc, sha-256 chosen among two fingerprints."""
    contents, group = sdp_to_jingle(OFFER, "initiator")
    assert len(contents) == 1 and group is not None and group.get("semantics") == "BUNDLE"
    c = contents[0]
    assert (c.get("name"), c.get("creator"), c.get("senders")) == ("a0", "initiator", "initiator")
    d = c.find(q(NS_RTP, "description"))
    pts = _find(d, NS_RTP, "payload-type")
    assert [(p.get("id"), p.get("name"), p.get("clockrate"), p.get("channels")) for p in pts] == [
        ("111", "opus", "48000", "2"), ("0", "PCMU", "8000", None), ("101", "telephone-event", "8000", None)]
    assert [(x.get("name"), x.get("value")) for x in _find(pts[0], NS_RTP, "parameter")] == [
        ("minptime", "10"), ("useinbandfec", "1")]
    assert [x.get("type") for x in _find(pts[0], NS_RTCP_FB, "rtcp-fb")] == ["transport-cc"]
    assert [x.get("type") for x in _find(d, NS_RTCP_FB, "rtcp-fb")] == ["nack"]
    assert [(x.get("id"), x.get("uri"), x.get("senders")) for x in _find(d, NS_HDREXT, "rtp-hdrext")] == [
        ("1", "urn:ietf:params:rtp-hdrext:ssrc-audio-level", None), ("2", "urn:example:x", "responder")]
    assert d.find(q(NS_RTP, "rtcp-mux")) is not None and pts[0].get("ptime") == "20"
    assert [s.get("ssrc") for s in _find(d, NS_SSMA, "source")] == ["1234"]
    t = c.find(q(NS_ICE, "transport"))
    assert (t.get("ufrag"), t.get("pwd")) == ("Uf1x", "pwpwpwpwpwpwpwpwpwpwpw")
    fps = _find(t, NS_DTLS, "fingerprint")
    assert [(f.get("hash"), f.get("setup"), f.text) for f in fps] == [("sha-256", "actpass", "AA:BB:CC")]
    cands = _find(t, NS_ICE, "candidate")
    assert [(x.get("foundation"), x.get("protocol"), x.get("type"), x.get("rel-addr"), x.get("rel-port"))
            for x in cands] == [("f1", "udp", "host", None, None), ("f2", "udp", "srflx", "192.0.2.1", "50000")]

    # and back, as the far side's session-initiate would be turned into SDP for aiortc
    j = ET.Element(q("urn:xmpp:jingle:1", "jingle"), {"action": "session-initiate", "sid": "s"})
    j.extend(contents + [group])
    back = parse_sdp(jingle_to_sdp(j, "initiator"))
    m = back.media[0]
    assert m.formats == ["111", "0", "101"] and m.attr("mid") == "a0" and m.attr("sendonly") is not None
    assert m.attrs("rtpmap") == ["111 opus/48000/2", "0 PCMU/8000", "101 telephone-event/8000"]
    assert m.attrs("fmtp") == ["111 minptime=10;useinbandfec=1", "101 0-15"]
    assert sorted(m.attrs("rtcp-fb")) == ["* nack", "111 transport-cc"]
    assert m.attrs("extmap") == ["1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "2/recvonly urn:example:x"]
    assert (m.attr("ice-ufrag"), m.attr("setup"), m.attrs("fingerprint")) == ("Uf1x", "actpass",
                                                                            ["sha-256 AA:BB:CC"])
    assert m.attr("rtcp-mux") is not None and back.attrs("group") == ["BUNDLE a0"]
    assert m.attrs("candidate") == ["f1 1 udp 2130706431 192.0.2.1 50000 typ host generation 0",
                                    "f2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 192.0.2.1 rport 50000 "
                                    "generation 0"]
    # the same SDP read as the answerer's: sendonly from the responder means senders='responder'
    assert sdp_to_jingle(OFFER, "responder")[0][0].get("senders") == "responder"


def test_media_8_jingle_peer_checks_flag_violations():
    """check_jingle (the peer's checks of what it receives) finds what a broken gateway could send."""
    bad = ET.fromstring(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'><content name='0'>"
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='200' name='x'/>"
        "</description><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>"
        "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>AA</fingerprint>"
        "<candidate id='c1' ip='127.0.0.1' port='1'/></transport></content></jingle>")
    found = "\n".join(check_jingle(bad, "session-accept"))
    for what in ("creator", "0..127", "no ufrag/pwd", "lacks component,foundation,generation,priority,protocol,type",
                 "setup='actpass'"):
        assert what in found, "check_jingle missed %r:\n%s" % (what, found)
    term = ET.fromstring("<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'><reason><nope/>"
                         "</reason></jingle>")
    assert check_jingle(term, "session-terminate"), "an unknown reason condition must be flagged"


# ------------------------------------------------------------------ media="plain" (Raw-UDP + RTP/AVP PCMU)
@pytest.mark.usefixtures("server_up")
@pytest.mark.parametrize("xmpp_server", ["prosody", "ejabberd"], indirect=True)
def test_media_10_jingle_peer_plain_rtp_call_hold_hangup(xmpp_server):
    """Both peers in media="plain" (no aiortc): alice calls bob, the offer and answer carry one Raw-UDP candidate
    and PCMU only, each sends its tone as mu-law RTP to the other's candidate and hears the other's; bob holds
    (alice stops, bob goes on), unholds; alice hangs up."""
    async def scenario(a, b):
        call = await a.place_call(b.bare_jid)
        inc = await b.wait_incoming()
        await call.wait_state("active")
        await call.wait_media()
        await inc.wait_media()
        await asyncio.sleep(2.0)
        sa, sb = await call.media_stats(), await inc.media_stats()
        print("\nplain, after 2 s: alice %s\n                  bob   %s" % (sa, sb))
        check_audio(sa, BOB_HZ, "alice")
        check_audio(sb, ALICE_HZ, "bob")
        assert sa["remote"] == sb["local"] and sb["remote"] == sa["local"], (sa, sb)
        assert sa["sources"] == [sb["local"]] and sa["packets_lost"] == 0, sa
        await inc.hold()
        await call.wait_senders("responder")
        await asyncio.sleep(0.3)
        got_b, got_a = await asyncio.gather(delta(inc, "packets_received", 1.0), delta(call, "packets_received", 1.0))
        assert got_b == 0 and got_a >= 40, "on hold: bob (held by himself) got %d, alice got %d" % (got_b, got_a)
        await inc.unhold()
        await call.wait_senders("both")
        await asyncio.sleep(0.3)
        assert await delta(inc, "packets_received", 1.0) >= 40
        await call.hangup()
        assert await inc.wait_ended() == "success"
        assert (await inc.media_stats())["packets_received"] > 0     # readable after the end
    run(scenario, {"user": "alice", "media": "plain"}, {"user": "bob", "media": "plain"})


def test_media_10_jingle_peer_plain_rtp_units():
    """mu-law against G.711's fixed points and a round trip, the RTP header, and the Raw-UDP content both ways."""
    from jingle_sdp import NS_RAW_UDP, JingleUnsupported, plain_content, plain_remote
    from plain_rtp import parse_rtp, rtp_header, ulaw_decode, ulaw_encode
    assert ulaw_encode(0) == 0xFF and ulaw_encode(32767) == 0x80 and ulaw_encode(-32768) == 0x00
    assert ulaw_decode(0xFF) == 0 and ulaw_decode(0x80) == 32124 and ulaw_decode(0x00) == -32124
    for s in range(-32000, 32000, 7):
        err = abs(ulaw_decode(ulaw_encode(s)) - s)
        assert err <= max(4, abs(s) // 16), (s, err)           # a step is 1/16 of the segment
    h = rtp_header(65535, 0xFFFFFFFF, 0x12345678, 0, True)
    assert h == bytes([0x80, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x12, 0x34, 0x56, 0x78])
    p = parse_rtp(h + b"\xff" * 160)
    assert (p["pt"], p["marker"], p["seq"], p["ssrc"], len(p["payload"])) == (0, True, 65535, 0x12345678, 160)
    assert parse_rtp(bytes([0x80, 200]) + b"\0" * 26) is None      # an RTCP sender report is not RTP
    c = plain_content("192.0.2.7", 40000, "c1")
    cand = c.find(q(NS_RAW_UDP, "transport")).find(q(NS_RAW_UDP, "candidate"))
    assert cand.attrib == {"component": "1", "generation": "0", "id": "c1", "ip": "192.0.2.7", "port": "40000"}
    j = ET.Element(q(NS_JINGLE, "jingle"), {"action": "session-accept", "sid": "s"})
    j.append(c)
    assert check_jingle(j, "session-accept") == []
    assert plain_remote(j) == ("audio", ("192.0.2.7", 40000), "both")
    del cand.attrib["generation"]
    assert any("lacks generation" in v for v in check_jingle(j, "session-accept"))
    offer = ET.fromstring(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content creator='initiator' name='a'>"
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><payload-type id='8' name='PCMA'/>"
        "</description><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'/></content>"
        "</jingle>")
    with pytest.raises(JingleUnsupported) as e:
        plain_remote(offer)
    assert e.value.reason == "unsupported-transports"
