"""baresip as the SIP side of calls (CHECKLIST part 6): its ice and dtls_srtp modules, so a WebRTC-style Jingle
client can reach it through a signalling-only gateway; g711 only, an 8 kHz 440 Hz tone file as microphone, and
its sndfile module recording what it sends and receives (the proof that audio crossed). Started directly with
its own config (the kit's start.sh has no ICE/DTLS settings); process handling is tls_peer.BaresipTls's."""
import math
import shutil
import struct
import wave
from pathlib import Path
from typing import Optional

import pytest

from tls_peer import BaresipTls

TONE_HZ = 440.0


def write_tone(path: Path, hz: float = TONE_HZ, secs: int = 20) -> None:
    w = wave.open(str(path), "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(8000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / 8000)))
                           for i in range(8000 * secs)))
    w.close()


def allow_rsa_dtls_servers() -> None:
    """aiortc as DTLS client offers only ECDSA cipher suites, so it cannot reach a DTLS server whose certificate
    is RSA, and baresip 1.0.0's dtls_srtp makes only RSA ones (baresip then logs "dtls: accept error"). libwebrtc
    (Conversations) and browsers take both, so the call peer is made to as well (process-wide), and the call in
    which baresip is the DTLS server can be tested."""
    from aiortc import rtcdtlstransport as dtls
    if getattr(dtls.RTCCertificate, "_stox_rsa_ok", False):
        return
    orig = dtls.RTCCertificate._create_ssl_context

    def create_ssl_context(self, srtp_profiles):
        ctx = orig(self, srtp_profiles)
        ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:"
                            b"ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
                            b"ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA")
        return ctx
    dtls.RTCCertificate._create_ssl_context = create_ssl_context
    dtls.RTCCertificate._stox_rsa_ok = True


async def delta(call, key: str, secs: float) -> int:
    """How much one of a jingle_peer call's media counters grows in SECS."""
    import asyncio
    before = (await call.media_stats())[key]
    await asyncio.sleep(secs)
    return (await call.media_stats())[key] - before


def primary_ipv4() -> str:
    """The machine's own IPv4 address on its default route (baresip gathers ICE candidates there, not on
    loopback); 127.0.0.1 when there is no route. A UDP connect only looks the route up, nothing is sent."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("198.51.100.1", 9))
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def wav_rms(path: Path) -> float:
    """RMS of a 16-bit mono WAV, 0..1 of full scale."""
    w = wave.open(str(path), "rb")
    data = w.readframes(w.getnframes())
    w.close()
    n = len(data) // 2
    if n == 0:
        return 0.0
    samples = struct.unpack("<%dh" % n, data[:2 * n])
    return math.sqrt(sum(s * s for s in samples) / n) / 32768.0


class BaresipCall(BaresipTls):
    """baresip user USER on SIP_PORT (udp/tcp), stox (GW_PORT) as its outbound proxy, answermode auto, medianat
    ice and mediaenc dtls_srtp. By default no registration; with register=True GW_PORT is a registrar (the kit's
    Kamailio) that the account registers at and uses as outbound proxy, so several instances (give each its own
    NAME: the directory) can register one AOR, and Kamailio forks calls to them. medianat=None and mediaenc=None
    make a plain-RTP phone (RTP/AVP, c=/m= only: the ice and dtls_srtp modules are not loaded); mediaenc="srtp-mand"
    an SDES-SRTP one (RTP/SAVP with a=crypto). sip_trace logs SIP messages."""

    def __init__(self, kit, user: str, sip_port: int, ctrl_port: int, gw_port: int, answermode: str = "auto",
                 name: str = "", register: bool = False, medianat: Optional[str] = "ice",
                 mediaenc: Optional[str] = "dtls_srtp", sip_trace: bool = False):
        if shutil.which("baresip") is None:
            pytest.fail("baresip is not installed: run ../shared/peers/install.sh baresip", pytrace=False)
        self.kit, self.user, self.ctrl_port = kit, user, ctrl_port
        self.register = register
        self.extra_args = ["-s"] if sip_trace else []     # -s: baresip logs every SIP message (with its SDP)
        self.dir = kit.run / ("baresip-call-" + (name or user))
        self.rec = self.dir / "rec"
        self.rec.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "baresip.log"
        tone = self.dir / "tone.wav"
        write_tone(tone)
        (self.dir / "config").write_text("\n".join([
            "poll_method epoll",
            "sip_listen 127.0.0.1:%d" % sip_port,
            "audio_player aubridge,null_%s" % user,
            "audio_source aufile,%s" % tone,
            "audio_alert aubridge,null_%s" % user,
            "rtcp_mux yes",
            "snd_path %s" % self.rec,
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            # at the call's end: a line of the RTCP the far end sent ("EX=BareSip;..."), or that none came
            "module rtcpsummary.so",
            "module stdio.so",
            *(["module ice.so"] if medianat == "ice" else []),
            *(["module dtls_srtp.so"] if mediaenc == "dtls_srtp" else []),
            # srtp, srtp-mand, srtp-mandf: SDES-SRTP (a=crypto)
            *(["module srtp.so"] if mediaenc and mediaenc.startswith("srtp") else []),
            "module_tmp account.so",
            "module_app contact.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            "ctrl_tcp_listen 127.0.0.1:%d" % ctrl_port,
            ""]))
        (self.dir / "accounts").write_text(
            '<sip:%s@127.0.0.1>;regint=%d;%s%sanswermode=%s;mwi=no;'
            'outbound="sip:127.0.0.1:%d;lr"\n' % (user, 600 if register else 0,
                                                   "medianat=%s;" % medianat if medianat else "",
                                                   "mediaenc=%s;" % mediaenc if mediaenc else "", answermode,
                                                   gw_port))
        (self.dir / "contacts").write_text("")
        self.proc = None
        self.fifo_fd = None

    def start(self) -> "BaresipCall":
        # A fresh log and no old recordings per test: the tests look for lines and files this call made.
        self.log.write_bytes(b"")
        for f in self.rec.glob("*.wav"):
            f.unlink()
        super().start()
        if self.register:
            # the kit's start.sh waits for the same line
            self.wait_log("registered successfully", timeout=10)
        return self

    def recordings(self, kind: str) -> list[Path]:
        """sndfile's WAVs: kind 'dec' = audio received and decoded, 'enc' = audio sent."""
        return sorted(self.rec.glob("*-%s.wav" % kind))
