"""Plain RTP media for jingle_peer.py's media="plain" mode (JINGLE_PEER.md): Jingle Raw-UDP (XEP-0177) with one
audio content, PCMU (payload type 0, 8000 Hz) over RTP/AVP, no ICE, no DTLS, no SRTP. Stdlib only.

Written from RFC 3550 (RTP header), RFC 3551 (PCMU = payload type 0, 8 kHz, 20 ms = 160 samples per packet)
and ITU-T G.711 (mu-law, bias 0x84, 14-bit magnitude in 3 exponent + 4 mantissa bits, all bits inverted).

The sender paces a sine tone in 20 ms packets to the address of the far side's Raw-UDP candidate. The receiver
takes RTP from any source (symmetric RTP: a SIP UA may send from an address it never signalled) but sends only
to the signalled address, so a wrong address in the Jingle or SDP shows up as missing audio on the far side.
"""
from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import struct
import time
import wave
from typing import Optional

RATE = 8000
SAMPLES = 160                # 20 ms
PT_PCMU = 0
_BIAS, _CLIP = 0x84, 32635


def ulaw_encode(sample: int) -> int:
    """One 16-bit linear sample -> one G.711 mu-law byte."""
    sign = 0x80 if sample < 0 else 0x00
    mag = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exp = 7
    while exp > 0 and not mag & (0x4000 >> (7 - exp)):
        exp -= 1
    mant = (mag >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def ulaw_decode(byte: int) -> int:
    """One G.711 mu-law byte -> a 16-bit linear sample."""
    b = ~byte & 0xFF
    mag = (((b & 0x0F) << 3) + _BIAS) << ((b >> 4) & 0x07)
    mag -= _BIAS
    return -mag if b & 0x80 else mag


ULAW_DECODE = [ulaw_decode(b) for b in range(256)]


def rtp_header(seq: int, ts: int, ssrc: int, pt: int = PT_PCMU, marker: bool = False) -> bytes:
    """RFC 3550 §5.1 fixed header: V=2, P=0, X=0, CC=0, M, PT, sequence, timestamp, SSRC."""
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | (pt & 0x7F), seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc & 0xFFFFFFFF)


def parse_rtp(data: bytes) -> Optional[dict]:
    """An RTP packet's header fields and payload (CSRCs, extension and padding skipped); None if it is not
    RTP version 2 or is RTCP (packet types 200..204 in the second byte, RFC 5761 §4)."""
    if len(data) < 12 or data[0] >> 6 != 2 or 200 <= data[1] <= 204:
        return None
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:                                   # header extension
        if len(data) < off + 4:
            return None
        off += 4 + 4 * struct.unpack("!H", data[off + 2:off + 4])[0]
    end = len(data)
    if b0 & 0x20 and end > off:                     # padding: the last byte counts it
        end -= data[-1]
    if off > end:
        return None
    return {"pt": b1 & 0x7F, "marker": bool(b1 & 0x80), "seq": seq, "ts": ts, "ssrc": ssrc,
            "payload": data[off:end]}


def tone_ulaw(freq: float, amplitude: float = 0.3) -> bytes:
    """One second of a sine as mu-law bytes (a whole number of periods for an integer frequency)."""
    return bytes(ulaw_encode(int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / RATE)))
                 for i in range(RATE))


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, session: "PlainRtp"):
        self.session = session

    def datagram_received(self, data, addr):
        self.session._received(data, addr)


class PlainRtp:
    """One Raw-UDP RTP/AVP PCMU stream: a UDP socket on HOST (port chosen by the kernel unless PORT), a paced
    sine sender (start_sending) and a receiver that counts, decodes and measures what comes in."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tone_hz: float = 440.0,
                 record_path: Optional[str] = None):
        self.host, self.port, self.tone_hz, self.record_path = host, port, tone_hz, record_path
        self.remote: Optional[tuple] = None         # where we send: the far side's Raw-UDP candidate
        self.transport = None
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts0 = random.getrandbits(32)
        self._tone = tone_ulaw(tone_hz)
        self._live = asyncio.Event()                # cleared = paused (hold / senders excluding us)
        self._live.set()
        self._task: Optional[asyncio.Task] = None
        self.packets_sent = 0
        self.packets_received = 0
        self.rtcp_received = 0
        self.other_pt = 0                           # RTP packets with a payload type other than 0
        self.sources: dict = {}                     # (ip, port) -> packets from there
        self.ssrcs: set = set()
        self._seq_first: Optional[int] = None
        self._seq_max: Optional[int] = None         # extended (wrap-counted) highest sequence number
        self.frames = 0
        self.rms: list[float] = []
        self.freq: list[float] = []
        self.first_packet_at: Optional[float] = None
        self.on_first_packet = None                 # callback, called once
        self._wav = None

    async def open(self) -> "PlainRtp":
        loop = asyncio.get_running_loop()
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), local_addr=(self.host, self.port),
                                                                family=fam)
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    # ---- sending
    def start_sending(self, remote: tuple):
        self.remote = remote
        if self._task is None:
            self._task = asyncio.ensure_future(self._send_loop())

    def pause(self):
        self._live.clear()

    def resume(self):
        self._live.set()

    @property
    def paused(self) -> bool:
        return not self._live.is_set()

    async def _send_loop(self):
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0                                       # 20 ms slots since start (the RTP clock runs during a pause)
        marker = True
        while True:
            if not self._live.is_set():
                await self._live.wait()
                n = int((loop.time() - start) / 0.02)
                marker = True                       # RFC 3551 §4.1: first packet of a talkspurt
            wait = start + n * 0.02 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._live.is_set() and self.transport is not None and self.remote is not None:
                off = (n * SAMPLES) % RATE
                payload = (self._tone + self._tone)[off:off + SAMPLES]
                pkt = rtp_header(self.seq, self.ts0 + n * SAMPLES, self.ssrc, PT_PCMU, marker) + payload
                self.transport.sendto(pkt, self.remote)
                self.seq = (self.seq + 1) & 0xFFFF
                self.packets_sent += 1
                marker = False
            n += 1

    # ---- receiving
    def _received(self, data: bytes, addr):
        if len(data) >= 2 and data[0] >> 6 == 2 and 200 <= data[1] <= 204:
            self.rtcp_received += 1
            return
        p = parse_rtp(data)
        if p is None:
            return
        self.packets_received += 1
        src = (addr[0], addr[1])
        self.sources[src] = self.sources.get(src, 0) + 1
        self.ssrcs.add(p["ssrc"])
        seq = p["seq"]
        if self._seq_first is None:
            self._seq_first = self._seq_max = seq
            self.first_packet_at = time.monotonic()
            if self.on_first_packet is not None:
                self.on_first_packet()
        else:
            cur = self._seq_max & 0xFFFF
            diff = (seq - cur) & 0xFFFF
            if 0 < diff < 0x8000:
                self._seq_max += diff
        if p["pt"] != PT_PCMU:
            self.other_pt += 1
            return
        pcm = [ULAW_DECODE[b] for b in p["payload"]]
        if not pcm:
            return
        self.frames += 1
        self.rms.append(math.sqrt(sum(x * x for x in pcm) / len(pcm)) / 32768.0)
        crossings = sum(1 for a, b in zip(pcm, pcm[1:]) if (a < 0) != (b < 0))
        self.freq.append(crossings / 2 / (len(pcm) / RATE))
        if self.record_path:
            if self._wav is None:
                self._wav = wave.open(self.record_path, "wb")
                self._wav.setnchannels(1)
                self._wav.setsampwidth(2)
                self._wav.setframerate(RATE)
            self._wav.writeframes(struct.pack("<%dh" % len(pcm), *pcm))

    def stats(self) -> dict:
        expected = 0 if self._seq_first is None else self._seq_max - self._seq_first + 1
        recent_rms, recent_freq = sorted(self.rms[-100:]), sorted(self.freq[-100:])
        return {"packets_sent": self.packets_sent, "packets_received": self.packets_received,
                "packets_lost": max(0, expected - self.packets_received), "frames_decoded": self.frames,
                "rms_max": max(self.rms, default=0.0),
                "rms_median": recent_rms[len(recent_rms) // 2] if recent_rms else 0.0,
                "freq_median": recent_freq[len(recent_freq) // 2] if recent_freq else 0.0,
                "tone_frames": self.packets_sent, "rtcp_received": self.rtcp_received, "other_pt": self.other_pt,
                "local": "%s:%d" % (self.host, self.port),
                "remote": "%s:%d" % self.remote if self.remote else None,
                "sources": sorted("%s:%d" % s for s in self.sources)}

    def close(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self._wav is not None:
            self._wav.close()
            self._wav = None


def record_name(record_dir: Optional[str], name: str, sid: str) -> Optional[str]:
    return os.path.join(record_dir, "%s-%s.wav" % (name, sid[:8])) if record_dir else None
