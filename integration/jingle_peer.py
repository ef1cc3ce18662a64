#!/usr/bin/env python3
"""Independent XMPP-side call peer (Jingle RTP over ICE-UDP + DTLS-SRTP) for the stox integration suite.
Notes: JINGLE_PEER.md.

A scripted XMPP client (slixmpp, c2s) that places and answers audio calls with real media (aiortc). Its
SDP <-> Jingle translation (jingle_sdp.py, stdlib only) is written from the XEP texts in ../shared/spec/xep/,
apart from the gateway's Rust code, so that stox's Jingle side is never tested only against itself:
  XEP-0166 Jingle (actions, reasons, errors)   XEP-0167 RTP (payload-type, parameter, rtcp-mux, session-info)
  XEP-0176 ICE-UDP (ufrag/pwd, candidates)     XEP-0320 DTLS-SRTP (fingerprint + setup)
  XEP-0293 rtcp-fb   XEP-0294 rtp-hdrext       XEP-0338 BUNDLE group   XEP-0339 ssrc sources
  XEP-0353 Jingle Message Initiation (propose / ringing / proceed / reject / retract / finish)
  XEP-0030 disco#info + XEP-0115 caps advertising the features above

    async with JinglePeer("alice@localhost", "alicepass", ice_hosts=["127.0.0.1"]) as a, \\
               JinglePeer("bob@localhost", "bobpass", ice_hosts=["127.0.0.1"]) as b:
        call = await a.place_call("bob@localhost")          # <propose/>, <proceed/>, session-initiate/accept
        await call.wait_state("active"); await call.wait_media()
        await asyncio.sleep(2); print(await call.media_stats())
        await call.hangup()                                 # session-terminate <success/> + <finish/>

CLI:  jingle_peer.py selftest | call JID PASSWORD TO | answer JID PASSWORD   (see --help)
"""
from __future__ import annotations

import argparse
import array
import asyncio
import fractions
import math
import os
import sys
import time
import uuid
import wave
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Optional

try:
    import av
    import aioice.ice
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
    from aiortc.sdp import candidate_from_sdp
    AIORTC_ERROR = None
except ImportError as _e:  # the test turns this into a failure that says how to install
    AIORTC_ERROR = _e
    MediaStreamTrack = object  # type: ignore[assignment,misc]

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from jingle_sdp import (  # the translation and checks (pure, stdlib only)
    ACTIONS, FEATURES, NS_CLIENT, NS_HINTS, NS_ICE, NS_JINGLE, NS_JINGLE_ERRORS, NS_JMI, NS_RAW_UDP, NS_RTP,
    NS_RTP_INFO, PLAIN_FEATURES, REASONS, JingleUnsupported, candidate_jingle_to_sdp, caps_ver_of, check_jingle,
    jingle_to_sdp, plain_content, plain_remote, q, reason_el, reason_of, sdp_to_jingle, summary as _summary)
from plain_rtp import PlainRtp, record_name  # media="plain": Raw-UDP + RTP/AVP PCMU (stdlib only)

INSTALL_HINT = ("aiortc is missing from the venv: %s/bin/python -m pip install aiortc==1.16.0 "
                "(integration/run.sh does it)" % (os.environ.get("PEERS_VENV") or "/tmp/stox-peers/venv"))
DEBUG = bool(os.environ.get("JINGLE_PEER_DEBUG"))


# ===================================================================================== media
class ToneTrack(MediaStreamTrack):
    """A sine tone, 48 kHz mono s16 in 20 ms frames, paced in real time. While paused, recv() blocks, so aiortc
    sends no RTP at all (used for hold and for senders that exclude us)."""
    kind = "audio"
    RATE, SAMPLES = 48000, 960

    def __init__(self, freq: float = 440.0, amplitude: float = 0.3):
        super().__init__()
        n = self.RATE  # one second: a whole number of periods for an integer frequency
        self._table = array.array("h", (int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / n))
                                        for i in range(n))).tobytes()
        self._pts = 0
        self._start: Optional[float] = None
        self._live = asyncio.Event()
        self._live.set()
        self.frames = 0

    @property
    def paused(self) -> bool:
        return not self._live.is_set()

    def pause(self):
        self._live.clear()

    def resume(self):
        self._live.set()

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if not self._live.is_set():
            await self._live.wait()
            if self._start is not None:   # the timestamp jumps over the pause, like a real sender's clock
                self._pts = int((time.time() - self._start) * self.RATE) // self.SAMPLES * self.SAMPLES
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self._pts / self.RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        off = (self._pts % self.RATE) * 2
        chunk = (self._table + self._table)[off:off + self.SAMPLES * 2]
        frame.planes[0].update(chunk)
        frame.pts, frame.sample_rate, frame.time_base = self._pts, self.RATE, fractions.Fraction(1, self.RATE)
        self._pts += self.SAMPLES
        self.frames += 1
        return frame


class AudioSink:
    """Consumes the received track: counts decoded frames, RMS (0..1 of full scale) and a zero-crossing
    frequency estimate of the first channel; optionally writes a WAV file."""

    def __init__(self, record_path: Optional[str] = None):
        self.frames = 0
        self.samples = 0
        self.rms: list[float] = []          # per frame
        self.freq: list[float] = []         # per frame
        self.record_path = record_path
        self._wav = None
        self.task: Optional[asyncio.Task] = None

    def start(self, track):
        self.task = asyncio.ensure_future(self._run(track))

    async def _run(self, track):
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                self._feed(frame)
        finally:
            if self._wav is not None:
                self._wav.close()

    def _feed(self, frame):
        ch = len(frame.layout.channels)
        pcm = array.array("h")
        pcm.frombytes(bytes(frame.planes[0])[:frame.samples * ch * 2])
        first = pcm[::ch]
        if not first:
            return
        self.frames += 1
        self.samples += len(first)
        self.rms.append(math.sqrt(sum(x * x for x in first) / len(first)) / 32768.0)
        crossings = sum(1 for a, b in zip(first, first[1:]) if (a < 0) != (b < 0))
        self.freq.append(crossings / 2 / (len(first) / frame.sample_rate))
        if self.record_path:
            if self._wav is None:
                self._wav = wave.open(self.record_path, "wb")
                self._wav.setnchannels(ch)
                self._wav.setsampwidth(2)
                self._wav.setframerate(frame.sample_rate)
            self._wav.writeframes(pcm.tobytes())

    def stop(self):
        if self.task is not None:
            self.task.cancel()


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if s else 0.0


# ====================================================================================== calls
@dataclass
class Event:
    t: float
    peer: str
    direction: str        # "in" / "out" / "--" (local)
    kind: str             # "jingle:session-initiate", "jmi:propose", "iq-error", "media:connected", ...
    sid: str
    detail: str = ""

    def line(self) -> str:
        return "%8.3f %-6s %s %-28s sid=%s %s" % (self.t, self.peer, {"in": "<-", "out": "->"}.get(
            self.direction, "--"), self.kind, self.sid[:8], self.detail)


class Call:
    """One call. State: proposing/proposed -> proceeding -> pending -> active -> ended."""

    def __init__(self, peer: "JinglePeer", sid: str, role: str, remote: str, jmi: bool):
        self.peer, self.sid, self.role, self.remote, self.jmi = peer, sid, role, remote, jmi
        self.state = "new"
        self.reason: Optional[str] = None          # why it ended (condition), from whichever side ended it
        self.reason_text: Optional[str] = None
        self.ended_by: Optional[str] = None        # "local" / "remote"
        self.pc = None
        self.rtp: Optional[PlainRtp] = None         # media="plain": the Raw-UDP RTP stream
        self.tone: Optional[ToneTrack] = None
        self.sink: Optional[AudioSink] = None
        self.contents: list[str] = []              # content names
        self.senders = "both"
        self.remote_info: list[str] = []           # session-info payloads received (ringing, hold, ...)
        self.remote_hold = False
        self.offer_jingle: Optional[ET.Element] = None
        self.pending_candidates: list = []         # transport-info before we have a remote description
        self.media_state = "new"
        self._cond = asyncio.Condition()
        self.ringing_jmi = False
        self.ending = False
        self.final_stats: Optional[dict] = None    # media_stats() taken just before the media closed
        self.local_sdp: Optional[str] = None       # aiortc's offer/answer (what our Jingle was made from)
        self.remote_sdp: Optional[str] = None      # the SDP we made from the far side's Jingle for aiortc

    # ---- waiting
    async def _set(self, **kw):
        async with self._cond:
            for k, v in kw.items():
                setattr(self, k, v)
            self._cond.notify_all()

    async def _wait(self, pred: Callable[[], bool], timeout: float, what: str):
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(pred), timeout)
            except asyncio.TimeoutError:
                raise AssertionError("%s: call %s: no %s within %.0fs (state %s, reason %s); events:\n%s"
                                     % (self.peer.jid, self.sid[:8], what, timeout, self.state, self.reason,
                                        self.peer.log_text())) from None

    async def wait_state(self, state: str, timeout: float = 20):
        await self._wait(lambda: self.state == state or (self.state == "ended" and state != "ended"),
                         timeout, "state " + state)
        if self.state != state:
            raise AssertionError("%s: call %s ended (%s %s) while waiting for %s; events:\n%s" % (
                self.peer.jid, self.sid[:8], self.reason, self.reason_text or "", state, self.peer.log_text()))

    async def wait_ended(self, timeout: float = 20) -> Optional[str]:
        await self._wait(lambda: self.state == "ended", timeout, "end")
        return self.reason

    async def wait_media(self, timeout: float = 20):
        """ICE + DTLS connected (aiortc connectionState 'connected'); media="plain": the first RTP packet
        from the far side has arrived."""
        await self._wait(lambda: self.media_state in ("connected", "failed", "closed"), timeout,
                         "RTP from the far side" if self.peer.media == "plain" else "ICE/DTLS connection")
        if self.media_state != "connected":
            raise AssertionError("%s: media %s; events:\n%s" % (self.peer.jid, self.media_state,
                                                                 self.peer.log_text()))

    async def wait_info(self, name: str, timeout: float = 10):
        await self._wait(lambda: name in self.remote_info, timeout, "session-info <%s/>" % name)

    async def wait_senders(self, senders: str, timeout: float = 10):
        await self._wait(lambda: self.senders == senders, timeout, "senders=%s" % senders)

    # ---- media
    @property
    def sending(self) -> bool:
        return self.senders in ("both", self.role)

    def _apply_senders(self):
        if self.tone is not None:
            (self.tone.resume if self.sending else self.tone.pause)()
        if self.rtp is not None:
            (self.rtp.resume if self.sending else self.rtp.pause)()

    async def media_stats(self) -> dict:
        """RTP counters from aiortc's stats (after SRTP) plus what the sink decoded. media="plain": the same keys
        from our own RTP stack, plus rtcp_received, other_pt, local, remote (where we send) and sources (where
        RTP came from)."""
        if self.rtp is not None:
            return self.rtp.stats()
        out = {"packets_sent": 0, "packets_received": 0, "packets_lost": 0, "frames_decoded": 0,
               "rms_max": 0.0, "rms_median": 0.0, "freq_median": 0.0, "tone_frames": 0}
        if self.pc is not None:
            for s in (await self.pc.getStats()).values():
                if s.type == "outbound-rtp":
                    out["packets_sent"] += s.packetsSent
                elif s.type == "inbound-rtp":
                    out["packets_received"] += s.packetsReceived
                    out["packets_lost"] += s.packetsLost
        if self.sink is not None:
            recent = self.sink.rms[-100:]
            out.update(frames_decoded=self.sink.frames, rms_max=max(self.sink.rms, default=0.0),
                       rms_median=_median(recent), freq_median=_median(self.sink.freq[-100:]))
        if self.tone is not None:
            out["tone_frames"] = self.tone.frames
        return out

    # ---- actions (the peer does the wire work)
    async def proceed(self):
        await self.peer._proceed(self)

    async def reject(self, reason: str = "busy", text: Optional[str] = None):
        await self.peer._reject(self, reason, text)

    async def accept(self):
        await self.peer._accept(self)

    async def hangup(self, reason: str = "success", text: Optional[str] = None):
        await self.peer._terminate(self, reason, text)

    async def hold(self, modify_senders: bool = True):
        """session-info <hold/>, and (by default) content-modify senders=<our role>: the held party stops sending,
        we keep sending (as SDP a=sendonly from the holder, CHECKLIST MEDIA-15)."""
        await self.peer._info(self, "hold")
        if modify_senders:
            await self.peer._content_modify(self, self.role)

    async def unhold(self, modify_senders: bool = True):
        await self.peer._info(self, "unhold")
        if modify_senders:
            await self.peer._content_modify(self, "both")

    async def ring(self):
        await self.peer._info(self, "ringing")

    async def info(self, name: str):
        """Any XEP-0167 session-info payload: active, mute, unmute, ringing, hold, unhold."""
        await self.peer._info(self, name)


# ===================================================================================== the peer
class JinglePeer:
    """A c2s XMPP client that places and answers Jingle audio calls with aiortc media.

    Inbound policy: on_propose = "proceed" | "reject" | "ring" | "ignore" (XEP-0353 <propose/>),
    on_initiate = "accept" | "reject" | "ring" (session-initiate), reject_reason for both; answer_delay
    seconds between ringing and accepting. trickle=True sends candidates in transport-info after the
    session-initiate/accept instead of inside it. ice_hosts limits ICE host candidates (["127.0.0.1"] =
    loopback only; process-wide, aioice's address lookup is patched). codecs e.g. ["PCMU"] limits the offer.
    """

    def __init__(self, jid: str, password: str, host: str = "127.0.0.1", port: Optional[int] = None,
                 resource: Optional[str] = None, on_propose: str = "proceed", on_initiate: str = "accept",
                 reject_reason: str = "busy", answer_delay: float = 0.0, trickle: bool = False,
                 ice_hosts: Optional[list] = None, codecs: Optional[list] = None, tone_hz: float = 440.0,
                 record_dir: Optional[str] = None, name: Optional[str] = None, media: str = "webrtc",
                 rtp_host: str = "127.0.0.1"):
        if media not in ("webrtc", "plain"):
            raise ValueError("media must be 'webrtc' (aiortc: ICE + DTLS-SRTP) or 'plain' (Raw-UDP + RTP/AVP)")
        if media == "webrtc" and AIORTC_ERROR is not None:
            raise RuntimeError(INSTALL_HINT)
        self.media, self.rtp_host = media, rtp_host
        self.jid = jid if "/" in jid else "%s/%s" % (jid, resource or "jpeer-" + uuid.uuid4().hex[:6])
        self.password, self.host = password, host
        self.port = port or int(os.environ.get("XMPP_C2S_PORT", "5222"))
        self.name = name or jid.split("@")[0]
        self.on_propose, self.on_initiate, self.reject_reason = on_propose, on_initiate, reject_reason
        self.answer_delay, self.trickle, self.codecs = answer_delay, trickle, codecs
        self.tone_hz, self.record_dir = tone_hz, record_dir
        if ice_hosts is not None:
            _limit_ice_hosts(ice_hosts)
        self.calls: dict[str, Call] = {}
        self.events: list[Event] = []
        self.trace: list[tuple[float, str, str]] = []          # (t, "in"/"out", raw stanza)
        self.presence_caps: dict[str, dict] = {}               # full JID -> {node, ver, hash}
        self.iq_errors: list[str] = []
        self.violations: list[str] = []    # MUSTs the far side broke (see check_jingle / _on_message)
        self.warnings: list[str] = []      # tolerated oddities (a bare-JID 'from' within a session)
        self._incoming: asyncio.Queue = asyncio.Queue()
        self._t0 = time.monotonic()
        self.x: Optional[slixmpp.ClientXMPP] = None
        self._tasks: set = set()
        self._available = asyncio.Event()

    # ---- plumbing
    def _ev(self, direction: str, kind: str, sid: str, detail: str = ""):
        e = Event(time.monotonic() - self._t0, self.name, direction, kind, sid, detail)
        self.events.append(e)
        if DEBUG:
            print(e.line(), file=sys.stderr, flush=True)

    def log_text(self, last: int = 60) -> str:
        return "\n".join(e.line() for e in self.events[-last:]) or "(no events)"

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)

        def done(task):
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                self._ev("--", "task-error", "-", repr(task.exception()))
        t.add_done_callback(done)
        return t

    @property
    def full_jid(self) -> str:
        return str(self.x.boundjid.full)

    @property
    def bare_jid(self) -> str:
        return str(self.x.boundjid.bare)

    async def __aenter__(self) -> "JinglePeer":
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    async def start(self, timeout: float = 15) -> "JinglePeer":
        x = slixmpp.ClientXMPP(self.jid, self.password)
        self.x = x
        for p in ("xep_0030", "xep_0115", "xep_0199"):
            x.register_plugin(p)
        x.plugin["xep_0030"].add_identity(category="client", itype="pc", name="stox jingle_peer")
        for f in (PLAIN_FEATURES if self.media == "plain" else FEATURES):
            x.plugin["xep_0030"].add_feature(f)
        x.register_handler(Callback("jpeer-jingle", MatchXPath("{%s}iq/{%s}jingle" % (NS_CLIENT, NS_JINGLE)),
                                    self._on_jingle_iq))
        x.register_handler(Callback("jpeer-msg", MatchXPath("{%s}message" % NS_CLIENT), self._on_message))
        x.register_handler(Callback("jpeer-pres", MatchXPath("{%s}presence" % NS_CLIENT), self._on_presence))
        started = asyncio.get_running_loop().create_future()

        def ok(_):
            if not started.done():
                started.set_result(True)

        def fail(*_):
            if not started.done():
                started.set_exception(AssertionError("XMPP login failed for %s on %s:%d"
                                                     % (self.jid, self.host, self.port)))
        x.add_event_handler("session_start", ok)
        x.add_event_handler("failed_auth", fail)
        x.add_event_handler("connection_failed", fail)
        x.plugin["feature_mechanisms"].unencrypted_plain = True
        if hasattr(x, "enable_plaintext"):  # slixmpp >= 1.9
            x.plugin["feature_mechanisms"].unencrypted_scram = True
            x.enable_plaintext, x.enable_starttls, x.enable_direct_tls = True, False, False
            x.connect(self.host, self.port)
        else:  # slixmpp 1.8
            x.connect((self.host, self.port), force_starttls=False, disable_starttls=True)
        await asyncio.wait_for(started, timeout)
        await asyncio.wait_for(x.get_roster(), timeout)
        await x.plugin["xep_0115"].update_caps(broadcast=False)
        x.send_presence()   # with <c/> (XEP-0115), added by slixmpp's caps filter
        # Wait for the server's copy of our own presence (RFC 6121 §4.2.2): before it, the server counts us as
        # unavailable and would store a <propose/> sent to our bare JID offline instead of delivering it.
        await asyncio.wait_for(self._available.wait(), timeout)
        self._ev("--", "online", "-", self.full_jid)
        return self

    async def stop(self):
        for c in list(self.calls.values()):
            if c.state != "ended":
                try:
                    await asyncio.wait_for(self._terminate(c, "success", "peer stopping"), 5)
                except Exception:  # noqa: BLE001 - best effort
                    pass
            await self._close_media(c)
        for t in list(self._tasks):
            t.cancel()
        if self.x is not None:
            # slixmpp's sender takes a stanza off its queue before running the (async) output filters, so
            # disconnect() can see an empty queue while the last stanza (a <reject/>, <finish/>) is unsent
            await asyncio.sleep(0.3)
            try:
                await asyncio.wait_for(self.x.disconnect(wait=1), 3)
            except Exception:  # noqa: BLE001
                pass

    # ---- disco / caps (for tests)
    async def disco_features(self, jid: str) -> list[str]:
        info = await self.x.plugin["xep_0030"].get_info(jid=jid, timeout=10)
        return list(info["disco_info"]["features"])

    async def disco_caps_ver(self, jid: str, node: Optional[str] = None) -> str:
        """Our own XEP-0115 §5.1 verification string of JID's disco#info answer (independent of slixmpp's)."""
        info = await self.x.plugin["xep_0030"].get_info(jid=jid, node=node, timeout=10)
        return caps_ver_of(info.xml.find("{http://jabber.org/protocol/disco#info}query"))

    async def jingle_iq(self, to: str, jingle_xml: str, timeout: float = 10) -> dict:
        """Send any <jingle/> (XML text) in an IQ set; returns {type, condition, jingle_error, raw} of the answer
        (for error-path tests: unknown sid, out-of-order, ...)."""
        iq = self.x.make_iq_set(ito=to)
        iq.append(ET.fromstring(jingle_xml))
        self.trace.append((time.monotonic(), "out", str(iq)))
        try:
            resp = await iq.send(timeout=timeout)
        except IqError as e:
            resp = e.iq
        except IqTimeout:
            return {"type": "timeout", "condition": None, "jingle_error": None, "raw": ""}
        out = {"type": resp["type"], "condition": None, "jingle_error": None, "raw": str(resp)}
        err = resp.xml.find(q(NS_CLIENT, "error"))
        if err is not None:
            out["condition"] = resp["error"]["condition"]
            je = [c.tag.split("}", 1)[1] for c in err if c.tag.startswith("{%s}" % NS_JINGLE_ERRORS)]
            out["jingle_error"] = je[0] if je else None
        return out

    # ---- stanzas out
    def _send_msg(self, to: str, child: ET.Element, kind: str, sid: str, detail: str = ""):
        m = self.x.make_message(mto=to, mtype="chat")
        m.append(child)
        m.append(ET.Element(q(NS_HINTS, "store")))
        self._ev("out", kind, sid, detail + " to=" + to)
        self.trace.append((time.monotonic(), "out", str(m)))
        m.send()

    async def _jingle_set(self, call: Call, action: str, children: list, attrs: Optional[dict] = None,
                          detail: str = "") -> bool:
        iq = self.x.make_iq_set(ito=call.remote)
        j = ET.Element(q(NS_JINGLE, "jingle"), {"action": action, "sid": call.sid})
        j.attrib.update(attrs or {})
        for c in children:
            j.append(c)
        iq.append(j)
        self._ev("out", "jingle:" + action, call.sid, detail)
        self.trace.append((time.monotonic(), "out", str(iq)))
        try:
            await iq.send(timeout=10)
            return True
        except IqError as e:
            err = e.iq["error"]
            text = "%s %s/%s %s" % (action, err["type"], err["condition"], err["text"] or "")
            self.iq_errors.append(text)
            self._ev("in", "iq-error", call.sid, text)
            return False
        except IqTimeout:
            self.iq_errors.append(action + " timeout")
            self._ev("--", "iq-timeout", call.sid, action)
            return False

    # ---- placing a call
    async def place_call(self, to: str, jmi: bool = True, propose_timeout: float = 30) -> Call:
        """Call TO: with jmi, <propose/> to TO (a bare JID), session-initiate to the resource that proceeds;
        without, session-initiate straight to TO (a full JID). Returns at once; follow with call.wait_state()."""
        sid = str(uuid.uuid4())
        call = Call(self, sid, "initiator", to, jmi)
        self.calls[sid] = call
        if jmi:
            self.x.send_presence(pto=to)     # directed presence with caps (XEP-0353 §3.1)
            prop = ET.Element(q(NS_JMI, "propose"), {"id": sid})
            ET.SubElement(prop, q(NS_RTP, "description"), {"media": "audio"})
            call.state = "proposing"
            self._send_msg(to, prop, "jmi:propose", sid)
            self._spawn(self._propose_timer(call, propose_timeout))
        else:
            self._spawn(self._initiate(call))
        return call

    async def _propose_timer(self, call: Call, timeout: float):
        await asyncio.sleep(timeout)
        if call.state == "proposing":
            await self._terminate(call, "timeout", "no answer to propose")

    async def _new_pc(self, call: Call):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))   # no STUN: host candidates only
        call.pc = pc
        call.tone = ToneTrack(self.tone_hz)
        rec = None
        if self.record_dir:
            rec = os.path.join(self.record_dir, "%s-%s.wav" % (self.name, call.sid[:8]))
        call.sink = AudioSink(rec)

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                call.sink.start(track)

        @pc.on("connectionstatechange")
        async def on_state():
            self._ev("--", "media:" + pc.connectionState, call.sid)
            await call._set(media_state=pc.connectionState)
        return pc

    def _add_track(self, call: Call):
        t = call.pc.addTransceiver(call.tone, direction="sendrecv")
        if self.codecs:
            want = [c.lower() for c in self.codecs]
            caps = [c for c in RTCRtpSender.getCapabilities("audio").codecs
                    if c.mimeType.split("/")[1].lower() in want]
            t.setCodecPreferences(caps)
        return t

    async def _new_rtp(self, call: Call) -> PlainRtp:
        rtp = PlainRtp(self.rtp_host, tone_hz=self.tone_hz, record_path=record_name(self.record_dir, self.name, call.sid))
        call.rtp = await rtp.open()

        def first():
            self._ev("--", "media:rtp-in", call.sid, "first RTP packet")
            self._spawn(call._set(media_state="connected"))
        rtp.on_first_packet = first
        return rtp

    async def _initiate_plain(self, call: Call):
        rtp = await self._new_rtp(call)
        contents = [plain_content(rtp.host, rtp.port, "c-" + call.sid[:8])]
        call.contents = ["audio"]
        await call._set(state="pending")
        ok = await self._jingle_set(call, "session-initiate", contents, {"initiator": self.full_jid},
                                    detail=_summary(contents))
        if not ok:
            await self._ended(call, "general-error", "session-initiate refused", "remote")

    async def _initiate(self, call: Call):
        if self.media == "plain":
            return await self._initiate_plain(call)
        pc = await self._new_pc(call)
        self._add_track(call)
        await pc.setLocalDescription(await pc.createOffer())   # gathers every candidate (vanilla ICE)
        call.local_sdp = pc.localDescription.sdp
        contents, group = sdp_to_jingle(pc.localDescription.sdp, "initiator", with_candidates=not self.trickle)
        call.contents = [c.get("name") for c in contents]
        await call._set(state="pending")
        ok = await self._jingle_set(call, "session-initiate", contents + ([group] if group is not None else []),
                                    {"initiator": self.full_jid}, detail=_summary(contents))
        if not ok:
            await self._ended(call, "general-error", "session-initiate refused", "remote")
            return
        if self.trickle:
            await self._trickle(call, pc.localDescription.sdp, "initiator")

    async def _trickle(self, call: Call, sdp_text: str, role: str):
        """One transport-info per candidate (XEP-0176 §5 trickle)."""
        contents, _ = sdp_to_jingle(sdp_text, role, with_candidates=True)
        for content in contents:
            tr = content.find(q(NS_ICE, "transport"))
            for cand in tr.findall(q(NS_ICE, "candidate")):
                c = ET.Element(q(NS_JINGLE, "content"), {"creator": "initiator", "name": content.get("name")})
                t = ET.SubElement(c, q(NS_ICE, "transport"), {"ufrag": tr.get("ufrag", ""), "pwd": tr.get("pwd", "")})
                t.append(cand)
                await self._jingle_set(call, "transport-info", [c], detail="candidate %s:%s" % (cand.get("ip"),
                                                                                                 cand.get("port")))

    # ---- answering
    async def wait_incoming(self, timeout: float = 20) -> Call:
        """The next call offered to us (by <propose/> or by a session-initiate without one)."""
        try:
            return await asyncio.wait_for(self._incoming.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: no incoming call within %.0fs; events:\n%s"
                                 % (self.jid, timeout, self.log_text())) from None

    async def _proceed(self, call: Call):
        self._send_msg(call.remote, ET.Element(q(NS_JMI, "proceed"), {"id": call.sid}), "jmi:proceed", call.sid)
        await call._set(state="proceeding")

    async def _reject(self, call: Call, reason: str, text: Optional[str]):
        if call.state in ("proposed",) or (call.jmi and call.state == "proceeding" and call.offer_jingle is None):
            r = ET.Element(q(NS_JMI, "reject"), {"id": call.sid})
            r.append(reason_el(reason, text))
            self._send_msg(call.remote, r, "jmi:reject", call.sid, reason)
            await self._ended(call, reason, text, "local")
        else:
            await self._terminate(call, reason, text)

    async def _accept(self, call: Call):
        if call.offer_jingle is None:
            raise AssertionError("accept: no session-initiate received for %s" % call.sid)
        if self.media == "plain":
            return await self._accept_plain(call)
        try:
            sdp = jingle_to_sdp(call.offer_jingle, "initiator")
        except JingleUnsupported as e:
            await self._terminate(call, e.reason, e.text)
            return
        pc = await self._new_pc(call)
        self._add_track(call)            # aiortc pairs this transceiver with the offered audio m-line
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await self._flush_candidates(call)
        await pc.setLocalDescription(await pc.createAnswer())
        call.remote_sdp, call.local_sdp = sdp, pc.localDescription.sdp
        contents, group = sdp_to_jingle(pc.localDescription.sdp, "responder", with_candidates=not self.trickle)
        await call._set(state="active")
        call._apply_senders()
        ok = await self._jingle_set(call, "session-accept", contents + ([group] if group is not None else []),
                                    {"initiator": call.remote, "responder": self.full_jid},
                                    detail=_summary(contents))
        if not ok:
            await self._ended(call, "general-error", "session-accept refused", "remote")
            return
        if self.trickle:
            await self._trickle(call, pc.localDescription.sdp, "responder")

    async def _accept_plain(self, call: Call):
        try:
            name, remote, senders = plain_remote(call.offer_jingle)
        except JingleUnsupported as e:
            await self._terminate(call, e.reason, e.text)
            return
        rtp = await self._new_rtp(call)
        call.contents, call.senders = [name], senders
        contents = [plain_content(rtp.host, rtp.port, "r-" + call.sid[:8], senders, name)]
        await call._set(state="active")
        rtp.start_sending(remote)
        call._apply_senders()
        self._ev("--", "media:rtp-out", call.sid, "to %s:%d from %s:%d" % (remote + (rtp.host, rtp.port)))
        ok = await self._jingle_set(call, "session-accept", contents,
                                    {"initiator": call.remote, "responder": self.full_jid},
                                    detail=_summary(contents))
        if not ok:
            await self._ended(call, "general-error", "session-accept refused", "remote")

    async def _flush_candidates(self, call: Call):
        cands, call.pending_candidates = call.pending_candidates, []
        for name, c in cands:
            await self._add_candidate(call, name, c)

    async def _add_candidate(self, call: Call, name: str, c: ET.Element):
        if call.pc is None or call.pc.remoteDescription is None:
            call.pending_candidates.append((name, c))
            return
        cand = candidate_from_sdp(candidate_jingle_to_sdp(c))
        cand.sdpMid = name
        await call.pc.addIceCandidate(cand)

    # ---- session-info, content-modify, terminate
    async def _info(self, call: Call, name: str):
        await self._jingle_set(call, "session-info", [ET.Element(q(NS_RTP_INFO, name))], detail=name)

    async def _content_modify(self, call: Call, senders: str):
        contents = [ET.Element(q(NS_JINGLE, "content"), {"creator": "initiator", "name": n, "senders": senders})
                    for n in call.contents]
        await self._jingle_set(call, "content-modify", contents, detail="senders=" + senders)
        await call._set(senders=senders)
        call._apply_senders()

    async def _terminate(self, call: Call, reason: str, text: Optional[str]):
        if call.state == "ended":
            return
        if call.state in ("proposing",):
            r = ET.Element(q(NS_JMI, "retract"), {"id": call.sid})
            r.append(reason_el("cancel" if reason == "success" else reason, text))
            self._send_msg(call.remote, r, "jmi:retract", call.sid, reason)
        elif call.state == "proposed":
            await self._reject(call, reason, text)
            return
        else:
            await self._jingle_set(call, "session-terminate", [reason_el(reason, text)], detail=reason)
            if call.jmi:
                f = ET.Element(q(NS_JMI, "finish"), {"id": call.sid})
                f.append(reason_el(reason, text))
                self._send_msg(call.remote, f, "jmi:finish", call.sid, reason)
        await self._ended(call, reason, text, "local")

    async def _ended(self, call: Call, reason: Optional[str], text: Optional[str], by: str):
        if call.state == "ended" or call.ending:
            return
        call.ending = True
        if call.pc is not None or call.rtp is not None:    # keep the counters readable after the end
            try:
                call.final_stats = await call.media_stats()
            except Exception:  # noqa: BLE001 - stats are best effort
                pass
        await call._set(state="ended", reason=reason, reason_text=text, ended_by=by)
        self._ev("--", "call-ended", call.sid, "%s by %s%s" % (reason, by, (" (%s)" % text) if text else ""))
        await self._close_media(call)

    async def _close_media(self, call: Call):
        if call.rtp is not None:
            call.rtp.close()               # call.rtp stays: media_stats() keeps answering after the end
        pc, call.pc = call.pc, None
        if pc is None:
            return
        if call.sink:
            call.sink.stop()
        await pc.close()

    # ---- stanzas in
    def _on_presence(self, pres):
        if str(pres["from"]) == self.full_jid and pres["type"] in ("available", ""):
            self._available.set()
        c = pres.xml.find("{http://jabber.org/protocol/caps}c")
        if c is not None:
            self.presence_caps[str(pres["from"])] = dict(c.attrib)

    def _violation(self, sid: str, text: str):
        self.violations.append("%s: %s" % (sid[:8], text))
        self._ev("--", "VIOLATION", sid, text)

    def _on_message(self, msg):
        for child in msg.xml:
            if child.tag.startswith("{%s}" % NS_JMI):
                self.trace.append((time.monotonic(), "in", str(msg)))
                what = "XEP-0353 <%s/>" % child.tag.split("}", 1)[1]
                if msg.xml.get("type") != "chat":                       # XEP-0353 §3
                    self._violation(child.get("id", "-"), "%s in a message of type %r, not 'chat'"
                                    % (what, msg.xml.get("type")))
                if msg.xml.find(q(NS_HINTS, "store")) is None:
                    self._violation(child.get("id", "-"), "%s without the <store/> hint" % what)
                if not child.get("id"):
                    self._violation("-", "%s without an id" % what)
                if msg.xml.find("{urn:xmpp:delay}delay") is not None:
                    # stored offline by the server while we were away: a call of an earlier run, not ours
                    self._ev("in", "jmi:%s (delayed: ignored)" % child.tag.split("}", 1)[1], child.get("id", "-"),
                             "from=%s" % msg["from"])
                    continue
                self._spawn(self._on_jmi(str(msg["from"]), child))

    async def _on_jmi(self, frm: str, el: ET.Element):
        kind = el.tag.split("}", 1)[1]
        sid = el.get("id", "")
        cond, text = reason_of(el)
        self._ev("in", "jmi:" + kind, sid, "from=%s%s" % (frm, (" reason=%s" % cond) if cond else ""))
        call = self.calls.get(sid)
        if kind == "propose":
            if call is not None:
                return
            call = Call(self, sid, "responder", frm, True)
            call.state = "proposed"
            self.calls[sid] = call
            await self._incoming.put(call)
            if self.on_propose == "ignore":
                return
            self._send_msg(frm, ET.Element(q(NS_JMI, "ringing"), {"id": sid}), "jmi:ringing", sid)
            if self.on_propose == "reject":
                await self._reject(call, self.reject_reason, None)
            elif self.on_propose == "proceed":
                await asyncio.sleep(self.answer_delay)
                if call.state == "proposed":
                    await self._proceed(call)
            return
        if call is None:
            return
        if kind == "ringing":
            call.ringing_jmi = True
            await call._set(remote_info=call.remote_info + ["jmi-ringing"])
        elif kind == "proceed" and call.role == "initiator" and call.state == "proposing":
            call.remote = frm                   # the resource that took the call
            await call._set(state="proceeding")
            await self._initiate(call)
        elif kind == "reject" and call.state in ("proposing",):
            await self._ended(call, cond or "decline", text, "remote")
        elif kind == "retract" and call.state in ("proposed", "proceeding"):
            await self._ended(call, cond or "cancel", text, "remote")
        elif kind == "finish":
            pass                                # session-terminate does the work; the event is in the log

    def _on_jingle_iq(self, iq):
        if iq["type"] != "set":
            return
        self.trace.append((time.monotonic(), "in", str(iq)))
        j = iq.xml.find(q(NS_JINGLE, "jingle"))
        action, sid = j.get("action", ""), j.get("sid", "")
        frm = str(iq["from"])
        call = self.calls.get(sid)
        cond, text = reason_of(j)
        detail = "from=%s" % frm
        if cond:
            detail += " reason=%s%s" % (cond, (" (%s)" % text) if text else "")
        if action == "session-info":
            detail += " " + (",".join(c.tag.split("}", 1)[1] for c in j) or "(ping)")
        elif action in ("session-initiate", "session-accept"):
            detail += " " + _summary(j.findall(q(NS_JINGLE, "content")))
        elif action == "content-modify":
            detail += " senders=" + ",".join(c.get("senders", "both") for c in j.findall(q(NS_JINGLE, "content")))
        self._ev("in", "jingle:" + action, sid, detail)
        for v in check_jingle(j, action):
            self._violation(sid, v)
        if action == "session-initiate":
            if call is not None and (call.role != "responder" or call.offer_jingle is not None):
                return self._iq_error(iq, "cancel", "unexpected-request", "out-of-order", sid)
            if call is not None and call.state not in ("proceeding", "proposed"):
                return self._iq_error(iq, "cancel", "unexpected-request", "out-of-order", sid)
            iq.reply(clear=True).send()
            if call is None:
                call = Call(self, sid, "responder", frm, False)
                self.calls[sid] = call
                self._incoming.put_nowait(call)
            call.remote = frm
            call.offer_jingle = j
            call.contents = [c.get("name") for c in j.findall(q(NS_JINGLE, "content"))]
            for c in j.findall(q(NS_JINGLE, "content")):
                call.senders = c.get("senders", "both")
            self._spawn(self._on_initiate(call))
            return
        if action not in ACTIONS:
            return self._iq_error(iq, "cancel", "bad-request", None, sid)
        if call is not None and frm != call.remote and frm.split("/")[0] == call.remote.split("/")[0]:
            # e.g. session-info <ringing/> from the callee's bare JID (CHECKLIST MEDIA-22 reads it so)
            self.warnings.append("%s: %s from %s, not from the session's %s" % (sid[:8], action, frm, call.remote))
        elif call is None or frm != call.remote:
            return self._iq_error(iq, "cancel", "item-not-found", "unknown-session", sid)
        if call.state == "ended":              # XEP-0166 §6.7: after session-terminate the session is unknown
            return self._iq_error(iq, "cancel", "item-not-found", "unknown-session", sid)
        if action == "session-accept" and (call.role != "initiator" or call.state != "pending"):
            return self._iq_error(iq, "cancel", "unexpected-request", "out-of-order", sid)
        if action == "session-info":
            payload = [c.tag.split("}", 1)[1] for c in j if c.tag.startswith("{%s}" % NS_RTP_INFO)]
            unknown = [c for c in j if not c.tag.startswith("{%s}" % NS_RTP_INFO)]
            if unknown:
                return self._iq_error(iq, "modify", "feature-not-implemented", "unsupported-info", sid)
            iq.reply(clear=True).send()
            self._spawn(self._on_info(call, payload))
            return
        iq.reply(clear=True).send()
        if action == "session-accept":
            self._spawn(self._on_accept(call, j, frm))
        elif action == "transport-info":
            for c in j.findall(q(NS_JINGLE, "content")):
                tr = c.find(q(NS_ICE, "transport"))
                for cand in (tr.findall(q(NS_ICE, "candidate")) if tr is not None else []):
                    self._spawn(self._add_candidate(call, c.get("name"), cand))
                raw = c.find(q(NS_RAW_UDP, "transport"))
                for cand in (raw.findall(q(NS_RAW_UDP, "candidate")) if raw is not None else []):
                    if call.rtp is not None and cand.get("component", "1") == "1" and cand.get("port", "").isdigit():
                        call.rtp.remote = (cand.get("ip"), int(cand.get("port")))   # XEP-0177 §4: a new address
                        self._ev("--", "media:rtp-out", sid, "now to %s:%s" % (cand.get("ip"), cand.get("port")))
        elif action == "content-modify":
            for c in j.findall(q(NS_JINGLE, "content")):
                call.senders = c.get("senders", "both")
            call._apply_senders()
            self._spawn(call._set(senders=call.senders))
        elif action == "session-terminate":
            self._spawn(self._on_terminate(call, cond, text))
        elif action == "content-add":          # one audio content is all this peer does (XEP-0166 §7.2.1)
            self._spawn(self._jingle_set(call, "content-reject", [
                ET.Element(q(NS_JINGLE, "content"), {"creator": c.get("creator", "initiator"), "name": c.get("name", "")})
                for c in j.findall(q(NS_JINGLE, "content"))] + [reason_el("unsupported-applications")],
                detail="content-add not supported"))
        elif action == "transport-replace":    # ICE-UDP only (XEP-0166 §7.2.15)
            self._spawn(self._jingle_set(call, "transport-reject", [
                ET.Element(q(NS_JINGLE, "content"), {"creator": c.get("creator", "initiator"), "name": c.get("name", "")})
                for c in j.findall(q(NS_JINGLE, "content"))] + [reason_el("unsupported-transports")],
                detail="transport-replace not supported"))
        elif action not in ("transport-info", "content-modify", "session-accept"):
            self._ev("--", "unhandled", sid, action + " (acknowledged, nothing done)")

    def _iq_error(self, iq, etype: str, condition: str, jingle_cond: Optional[str], sid: str):
        r = iq.reply(clear=True)
        r["type"] = "error"
        r["error"]["type"] = etype
        r["error"]["condition"] = condition
        if jingle_cond:
            r["error"].xml.append(ET.Element(q(NS_JINGLE_ERRORS, jingle_cond)))
        self._ev("out", "iq-error", sid, "%s/%s" % (condition, jingle_cond))
        r.send()

    async def _on_initiate(self, call: Call):
        try:
            if self.media == "plain":
                plain_remote(call.offer_jingle)
            else:
                jingle_to_sdp(call.offer_jingle, "initiator")
        except JingleUnsupported as e:
            await self._terminate(call, e.reason, e.text)
            return
        if not call.jmi:
            await self._info(call, "ringing")
        await call._set(state="pending")
        policy = self.on_initiate
        if policy == "reject":
            await self._terminate(call, self.reject_reason, None)
        elif policy == "accept":
            if not call.jmi:
                await asyncio.sleep(self.answer_delay)
            if call.state == "pending":
                await self._accept(call)

    async def _on_accept(self, call: Call, j: ET.Element, frm: str):
        if call.role != "initiator" or call.state != "pending":
            self._ev("--", "unexpected", call.sid, "session-accept in state %s" % call.state)
            return
        if self.media == "plain":
            return await self._on_accept_plain(call, j)
        try:
            sdp = jingle_to_sdp(j, "responder")
        except JingleUnsupported as e:
            await self._terminate(call, e.reason, e.text)
            return
        for c in j.findall(q(NS_JINGLE, "content")):
            call.senders = c.get("senders", "both")
        call.remote_sdp = sdp
        await call.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await self._flush_candidates(call)
        call._apply_senders()
        await call._set(state="active")

    async def _on_accept_plain(self, call: Call, j: ET.Element):
        try:
            _, remote, senders = plain_remote(j)
        except JingleUnsupported as e:
            await self._terminate(call, e.reason, e.text)
            return
        call.senders = senders
        call.rtp.start_sending(remote)
        call._apply_senders()
        self._ev("--", "media:rtp-out", call.sid, "to %s:%d from %s:%d" % (remote + (call.rtp.host, call.rtp.port)))
        await call._set(state="active")

    async def _on_info(self, call: Call, payload: list):
        if "hold" in payload:
            call.remote_hold = True
        if "unhold" in payload or "active" in payload:
            call.remote_hold = False
        await call._set(remote_info=call.remote_info + payload)

    async def _on_terminate(self, call: Call, cond: Optional[str], text: Optional[str]):
        if call.jmi:
            f = ET.Element(q(NS_JMI, "finish"), {"id": call.sid})
            f.append(reason_el(cond or "success"))
            self._send_msg(call.remote, f, "jmi:finish", call.sid, cond or "success")
        await self._ended(call, cond, text, "remote")


_ICE_HOSTS: Optional[list] = None


def _limit_ice_hosts(hosts: list):
    """Make aioice gather host candidates only on HOSTS (it skips 127.0.0.1 by default)."""
    global _ICE_HOSTS
    _ICE_HOSTS = list(hosts)
    if not getattr(aioice.ice, "_jpeer_patched", False):
        orig = aioice.ice.get_host_addresses

        def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list:
            if _ICE_HOSTS is None:
                return orig(use_ipv4, use_ipv6)
            return [h for h in _ICE_HOSTS if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]
        aioice.ice.get_host_addresses = get_host_addresses
        aioice.ice._jpeer_patched = True


# ======================================================================================== CLI
async def _selftest(args) -> int:
    """Two peers on the server call each other: JMI, accept, audio both ways, hold/unhold, hang-up."""
    hosts = ["127.0.0.1"]
    a = JinglePeer(args.alice, args.alice_password, port=args.port, ice_hosts=hosts, tone_hz=440)
    b = JinglePeer(args.bob, args.bob_password, port=args.port, ice_hosts=hosts, tone_hz=660)
    await a.start()
    await b.start()
    rc = 1
    try:
        call = await a.place_call(b.bare_jid)
        inc = await b.wait_incoming()
        await call.wait_state("active")
        await call.wait_media()
        await asyncio.sleep(args.duration)
        sa, sb = await call.media_stats(), await inc.media_stats()
        print("alice: %s\nbob:   %s" % (sa, sb))
        await call.hangup()
        await inc.wait_ended()
        ok = all(s["packets_received"] > 0 and s["rms_median"] > 0.05 for s in (sa, sb))
        print("SELFTEST %s" % ("OK" if ok else "FAILED"))
        rc = 0 if ok else 1
    finally:
        print(a.log_text(200))
        print(b.log_text(200))
        await a.stop()
        await b.stop()
    return rc


async def _call(args) -> int:
    p = JinglePeer(args.jid, args.password, port=args.port, trickle=args.trickle, tone_hz=args.tone,
                   ice_hosts=args.ice_host or None, codecs=args.codec or None, record_dir=args.record_dir,
                   media="plain" if args.plain else "webrtc", rtp_host=args.rtp_host)
    await p.start()
    try:
        call = await p.place_call(args.to, jmi=not args.no_jmi)
        try:
            await call.wait_state("active", args.timeout)
            await call.wait_media(args.timeout)
        except AssertionError:
            print("call failed: state %s, reason %s %s" % (call.state, call.reason, call.reason_text or ""))
            return 1
        await asyncio.sleep(args.duration)
        stats = await call.media_stats()
        print("stats: %s" % stats)
        await call.hangup()
        return 0 if stats["packets_received"] > 0 else 1
    finally:
        print(p.log_text(200))
        await p.stop()


async def _answer(args) -> int:
    p = JinglePeer(args.jid, args.password, port=args.port, trickle=args.trickle, ice_hosts=args.ice_host or None,
                   tone_hz=args.tone,
                   on_propose=args.on_propose, on_initiate=args.on_initiate, reject_reason=args.reason,
                   codecs=args.codec or None, record_dir=args.record_dir,
                   media="plain" if args.plain else "webrtc", rtp_host=args.rtp_host)
    await p.start()
    try:
        try:
            call = await p.wait_incoming(args.wait)
        except AssertionError:
            print("no incoming call within %.0fs" % args.wait)
            return 1
        if args.on_propose == "reject" or args.on_initiate == "reject":
            await call.wait_ended(args.timeout)
            return 0
        await call.wait_state("active", args.timeout)
        await call.wait_media(args.timeout)
        await call.wait_ended(args.wait)
        stats = call.final_stats or {}
        print("stats: %s" % stats)
        return 0 if stats.get("packets_received", 0) > 0 else 1
    finally:
        print(p.log_text(200))
        await p.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=int(os.environ.get("XMPP_C2S_PORT", "5222")), help="c2s port")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("selftest", help="alice calls bob on the running server (loopback ICE)")
    st.add_argument("--alice", default="alice@localhost")
    st.add_argument("--alice-password", default="alicepass")
    st.add_argument("--bob", default="bob@localhost")
    st.add_argument("--bob-password", default="bobpass")
    st.add_argument("--duration", type=float, default=3)
    for name, hlp in (("call", "place a call to TO, talk DURATION s, hang up"),
                      ("answer", "wait for one call and answer it by policy")):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("jid")
        p.add_argument("password")
        if name == "call":
            p.add_argument("to", help="bare JID (with XEP-0353) or full JID (--no-jmi)")
            p.add_argument("--no-jmi", action="store_true", help="session-initiate without <propose/>")
            p.add_argument("--duration", type=float, default=5)
        else:
            p.add_argument("--on-propose", default="proceed", choices=["proceed", "reject", "ring", "ignore"])
            p.add_argument("--on-initiate", default="accept", choices=["accept", "reject", "ring"])
            p.add_argument("--reason", default="busy", choices=sorted(REASONS))
            p.add_argument("--wait", type=float, default=60)
        p.add_argument("--timeout", type=float, default=30)
        p.add_argument("--trickle", action="store_true", help="candidates in transport-info")
        p.add_argument("--ice-host", action="append", help="host candidate address (repeat); default: aioice's")
        p.add_argument("--codec", action="append", help="offer/answer only this codec (repeat), e.g. PCMU")
        p.add_argument("--record-dir", help="write received audio as WAV files here")
        p.add_argument("--tone", type=float, default=440.0, help="frequency of the sine we send (Hz)")
        p.add_argument("--plain", action="store_true", help="Raw-UDP + RTP/AVP PCMU instead of aiortc")
        p.add_argument("--rtp-host", default="127.0.0.1", help="--plain: the address of our RTP socket")
    args = ap.parse_args(argv)
    if AIORTC_ERROR is not None and not getattr(args, "plain", False):
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    return asyncio.run({"selftest": _selftest, "call": _call, "answer": _answer}[args.cmd](args))


if __name__ == "__main__":
    sys.exit(main())
