"""SIP side of the stox integration suite: SIPp UAS/UAC wrappers, SIPp message-trace parsing,
a minimal raw SIP client (OPTIONS, sips:, TCP) and the malformed-input fuzzer.

Everything talks to 127.0.0.1 only.
"""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE / "sipp"

COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via"}


# --------------------------------------------------------------------------- SIP message model
@dataclass
class SipMessage:
    start: str                                  # request line or status line
    headers: list[tuple[str, str]]              # (lower-case canonical name, value) in order
    body: bytes
    direction: str = ""                         # "sent" / "received" (from a SIPp trace)
    transport: str = ""
    raw: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> Optional[int]:
        return int(self.start.split()[1]) if self.is_response else None

    @property
    def method(self) -> Optional[str]:
        return None if self.is_response else self.start.split()[0]

    @property
    def ruri(self) -> Optional[str]:
        return None if self.is_response else self.start.split()[1]

    def get(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def branch(self) -> Optional[str]:
        via = self.get("via") or ""
        m = re.search(r";\s*branch=([^;,\s]+)", via)
        return m.group(1) if m else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def describe(self) -> str:
        return self.raw.decode("utf-8", errors="replace")


def parse_sip(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    lines = re.split(rb"\r?\n", head)
    start = lines[0].decode("utf-8", errors="replace").strip()
    headers: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.decode("utf-8", errors="replace")
        if line[:1] in (" ", "\t") and headers:          # folded continuation line
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        headers.append((name, value.strip()))
    return SipMessage(start=start, headers=headers, body=body, raw=data)


_TRACE_RE = re.compile(
    rb"(?m)^-{20,} \d{4}-\d\d-\d\d [\d:.]+\n(\w+) message (sent|received) (?:\((\d+) bytes\):|\[(\d+)\] bytes :)\n\n")


def parse_trace(data: bytes) -> list[SipMessage]:
    """Parse a SIPp -trace_msg file (or a slice of it) into the messages it logged."""
    out = []
    for m in _TRACE_RE.finditer(data):
        n = int(m.group(3) or m.group(4))
        raw = data[m.end():m.end() + n]
        msg = parse_sip(raw)
        msg.direction = m.group(2).decode()
        msg.transport = m.group(1).decode()
        out.append(msg)
    return out


# --------------------------------------------------------------------------- SIPp UAS (kit scripts)
class SippUas:
    """A SIPp UAS on PORT with one of our scenarios; every received request is recorded in a
    -trace_msg file that tests read (only what arrived since mark()).  UDP UASs are started with the
    kit's sipp/start.sh; a TCP-only UAS (-t t1) is spawned here because the kit script probes UDP."""

    def __init__(self, kit, port: int, scenario: str, transport: str = "udp"):
        self.kit = kit
        self.port = port
        self.scenario = SIPP_DIR / scenario
        self.transport = transport
        self.trace = Path(kit.run) / "sipp" / ("uas-%d-messages.log" % port)
        # -deadcall_wait 0: a finished "call" does not swallow a later MESSAGE with the same Call-ID
        # -buff_size 4 MiB: a burst of MESSAGEs must not overflow the UAS's own receive buffer (about 200 small
        # datagrams fill the 208 KiB default on loopback) while it writes its trace; a datagram lost there comes
        # back as stox's retransmission after later ones, which the ordering tests would blame on stox.
        self.args = ["-trace_msg", "-message_file", str(self.trace), "-deadcall_wait", "0", "-max_recv_loops", "1000",
                     "-buff_size", "4194304"]
        self.proc: Optional[subprocess.Popen] = None

    def start(self):
        self.trace.parent.mkdir(parents=True, exist_ok=True)
        if self.transport == "udp":
            self.kit.script("sipp/start.sh", str(self.port), env={
                "SIPP_SCENARIO": str(self.scenario), "SIPP_ARGS": " ".join(self.args)})
            return
        log = open(self.trace.parent / ("uas-%d.log" % self.port), "wb")
        self.proc = subprocess.Popen(["sipp", "-sf", str(self.scenario), "-t", "t1", "-i", "127.0.0.1",
                                      "-p", str(self.port), "-nostdin", *self.args],
                                     cwd=self.trace.parent, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("SIPp TCP UAS on :%d did not start" % self.port)

    def stop(self):
        if self.transport == "udp":
            self.kit.script("sipp/stop.sh", str(self.port), check=False)
            return
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        self.proc = None

    def alive(self) -> bool:
        if self.transport != "udp":
            return self.proc is not None and self.proc.poll() is None
        pidf = Path(self.kit.run) / "sipp" / ("uas-%d.pid" % self.port)
        try:
            os.kill(int(pidf.read_text().strip()), 0)
            return True
        except (OSError, ValueError):
            return False

    def mark(self) -> int:
        try:
            return self.trace.stat().st_size
        except FileNotFoundError:
            return 0

    def messages(self, since: int = 0) -> list[SipMessage]:
        try:
            with open(self.trace, "rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return []
        return parse_trace(data)

    def requests(self, since: int = 0, method: str = "MESSAGE") -> list[SipMessage]:
        return [m for m in self.messages(since) if m.direction == "received" and m.method == method]

    def wait_requests(self, since: int, pred, count: int = 1, timeout: float = 10,
                      method: str = "MESSAGE") -> list[SipMessage]:
        """Wait until COUNT distinct transactions (by Via branch) matching PRED arrived; return the
        first copy of each transaction in arrival order (retransmissions are folded)."""
        end = time.monotonic() + timeout
        while True:
            uniq = unique_transactions([m for m in self.requests(since, method) if pred(m)])
            if len(uniq) >= count or time.monotonic() > end:
                return uniq
            time.sleep(0.1)


def unique_transactions(msgs: list[SipMessage]) -> list[SipMessage]:
    seen, out = set(), []
    for m in msgs:
        key = (m.branch, m.get("call-id"), m.get("cseq"))
        if key in seen:
            continue
        seen.add(key)
        out.append(m)
    return out


# --------------------------------------------------------------------------- SIPp UAC (one-shot)
@dataclass
class UacResult:
    rc: int
    output: str
    messages: list[SipMessage] = field(default_factory=list)

    @property
    def finals(self) -> list[SipMessage]:
        return [m for m in self.messages if m.direction == "received" and m.is_response and m.status >= 200]

    @property
    def final(self) -> Optional[SipMessage]:
        f = self.finals
        return f[0] if f else None

    @property
    def sent_requests(self) -> list[SipMessage]:
        return [m for m in self.messages if m.direction == "sent" and not m.is_response]

    def summary(self) -> str:
        stat = "\n".join(l for l in self.output.splitlines() if re.search(r"Successful call|Failed call|rror|nexpected", l))
        fin = self.final
        return "sipp rc=%d; final response: %s\n%s" % (self.rc, fin.start if fin else "NONE", stat[-2000:])


def run_uac(run_dir: str, scenario: str, keys: dict, target: str = "127.0.0.1:5070", calls: int = 1,
            rate: Optional[int] = None, limit: Optional[int] = None, timeout: float = 30,
            local_port: int = 5097, extra: Optional[list] = None, local_ip: str = "127.0.0.1") -> UacResult:
    """Run SIPp as UAC with one of our scenarios (bounded by TIMEOUT); returns rc, output and the trace."""
    work = Path(run_dir) / "sipp"
    work.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    trace = work / ("uac-%s-messages.log" % tag)
    cmd = ["sipp", "-sf", str(SIPP_DIR / scenario), target, "-i", local_ip, "-p", str(local_port),
           "-m", str(calls), "-nostdin", "-trace_msg", "-message_file", str(trace),
           "-timeout", "%ds" % int(timeout), "-timeout_error", "-max_recv_loops", "1000"]
    if rate:
        cmd += ["-r", str(rate), "-rp", "1000"]
    if limit:
        cmd += ["-l", str(limit)]
    for k, v in keys.items():
        cmd += ["-key", k, str(v)]
    cmd += extra or []
    try:
        p = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout + 15)
        rc, out = p.returncode, p.stdout.decode("utf-8", errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = -1, "sipp killed after %ss\n%s" % (timeout + 15, (e.stdout or b"").decode(errors="replace"))
    msgs = parse_trace(trace.read_bytes()) if trace.exists() else []
    return UacResult(rc=rc, output=out, messages=msgs)


# --------------------------------------------------------------------------- raw SIP client
def new_branch() -> str:
    return "z9hG4bK-it-" + uuid.uuid4().hex[:16]


def build_request(method: str, ruri: str, *, transport: str = "UDP", local_port: int = 0, local_ip: str = "127.0.0.1",
                  frm: str = "sip:tester@127.0.0.1", to: Optional[str] = None, body: bytes = b"",
                  content_type: Optional[str] = None, extra_headers: Optional[list[str]] = None,
                  call_id: Optional[str] = None, cseq: int = 1) -> bytes:
    hdrs = [
        "%s %s SIP/2.0" % (method, ruri),
        "Via: SIP/2.0/%s %s:%d;branch=%s;rport" % (transport, local_ip, local_port, new_branch()),
        "Max-Forwards: 70",
        "From: <%s>;tag=it%s" % (frm, uuid.uuid4().hex[:8]),
        "To: <%s>" % (to or ruri),
        "Call-ID: %s" % (call_id or "it-" + uuid.uuid4().hex),
        "CSeq: %d %s" % (cseq, method),
    ]
    hdrs += extra_headers or []
    if body and content_type:
        hdrs.append("Content-Type: %s" % content_type)
    hdrs.append("Content-Length: %d" % len(body))
    return ("\r\n".join(hdrs) + "\r\n\r\n").encode() + body


def sip_transaction(method: str, ruri: str, *, transport: str = "udp", host: str = "127.0.0.1",
                    port: int = 5070, timeout: float = 5, source: str = "127.0.0.1",
                    **kw) -> Optional[SipMessage]:
    """Send one request (UDP with retransmissions, or TCP) from the address SOURCE and return its
    final response (or None)."""
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((source, 0))
        try:
            data = build_request(method, ruri, transport="UDP", local_port=s.getsockname()[1],
                                 local_ip=source, **kw)
            end = time.monotonic() + timeout
            t1 = 0.5
            next_send = 0.0
            while time.monotonic() < end:
                if time.monotonic() >= next_send:
                    s.sendto(data, (host, port))
                    next_send = time.monotonic() + t1
                    t1 = min(t1 * 2, 4)
                s.settimeout(max(0.05, min(next_send, end) - time.monotonic()))
                try:
                    resp, _ = s.recvfrom(65535)
                except socket.timeout:
                    continue
                msg = parse_sip(resp)
                if msg.is_response and msg.status >= 200:
                    return msg
            return None
        finally:
            s.close()
    s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    try:
        data = build_request(method, ruri, transport="TCP", local_port=s.getsockname()[1],
                             local_ip=source, **kw)
        s.sendall(data)
        buf = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65535)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) < n:
                    break
                msg = parse_sip(head + b"\r\n\r\n" + rest[:n])
                buf = rest[n:]
                if msg.is_response and msg.status >= 200:
                    return msg
        return None
    finally:
        s.close()


def sipsak_ok(port: int = 5070) -> bool:
    try:
        return subprocess.run(["sipsak", "-s", "sip:127.0.0.1:%d" % port], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# --------------------------------------------------------------------------- malformed-input fuzzer
def _valid_message(rnd: random.Random, body: bytes = b"fuzz") -> bytes:
    return build_request("MESSAGE", "sip:nobody-fuzz@localhost", local_port=5999, body=body,
                         content_type="text/plain;charset=UTF-8")


def fuzz_cases(rnd: random.Random):
    """Yield malformed / truncated / oversized SIP requests (bytes); deterministic for a given seed."""
    base = _valid_message(rnd)
    head, _, body = base.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fixed = [
        b"", b"\r\n", b"\r\n\r\n", b"\x00" * 64, b"SIP/2.0 200 OK\r\n\r\n",
        b"MESSAGE\r\n\r\n", b"MESSAGE sip: SIP/2.0\r\n\r\n", b"MESSAGE sip:@ SIP/2.0\r\n\r\n",
        b"MESSAGE sip:a@b SIP/3.0\r\n\r\n", b"MESSAGE <sip:a@b> SIP/2.0\r\nVia: x\r\n\r\n",
        b"OPTIONS sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP\r\n\r\n",
        b"INVITE sip:alice@localhost SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"MESSAGE sip:alice@localhost SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\nx",
        b"MESSAGE sip:alice@localhost SIP/2.0\r\n" + b"X-Long: " + b"A" * 60000 + b"\r\n\r\n",
        b"MESSAGE sip:" + b"a" * 20000 + b"@localhost SIP/2.0\r\n\r\n",
        b"\xff\xfe\xfd MESSAGE sip:alice@localhost SIP/2.0\r\n\r\n",
        "MESSAGE sip:ä😀@localhost SIP/2.0\r\n\r\n".encode(),
        b"MESSAGE sips:alice@localhost SIP/2.0\r\n\r\n",
        b"MESSAGE tel:+123 SIP/2.0\r\n\r\n",
        b"MESSAGE sip:alice@localhost:99999 SIP/2.0\r\n\r\n",
        b"MESSAGE sip:alice@[::1 SIP/2.0\r\n\r\n",
        b"ACK sip:alice@localhost SIP/2.0\r\n\r\n", b"CANCEL * SIP/2.0\r\n\r\n",
        b"BYE sip:alice@localhost SIP/2.0\r\nCall-ID: nope\r\nCSeq: 1 BYE\r\n\r\n",
    ]
    for f in fixed:
        yield f
    i = 0
    while True:
        i += 1
        kind = rnd.randrange(12)
        if kind == 0:                                   # truncated anywhere
            yield base[: rnd.randrange(len(base))]
        elif kind == 1:                                 # drop a random header
            l2 = list(lines)
            if len(l2) > 1:
                del l2[rnd.randrange(1, len(l2))]
            yield b"\r\n".join(l2) + b"\r\n\r\n" + body
        elif kind == 2:                                 # duplicate / conflicting headers
            l2 = list(lines) + [rnd.choice(lines[1:])] + [b"Content-Length: %d" % rnd.randrange(0, 5000)]
            yield b"\r\n".join(l2) + b"\r\n\r\n" + body
        elif kind == 3:                                 # random byte flips
            b = bytearray(base)
            for _ in range(rnd.randrange(1, 20)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            yield bytes(b)
        elif kind == 4:                                 # garbage header values
            junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
            name = rnd.choice([b"Via", b"From", b"To", b"Call-ID", b"CSeq", b"Content-Length", b"Content-Type",
                               b"Max-Forwards", b"Subject", b"Content-Language", b"Contact", b"Route"])
            l2 = [l for l in lines if not l.lower().startswith(name.lower() + b":")]
            l2.insert(rnd.randrange(1, len(l2) + 1), name + b": " + junk)
            yield b"\r\n".join(l2) + b"\r\n\r\n" + body
        elif kind == 5:                                 # oversized body, lying Content-Length
            n = rnd.choice([1300, 1301, 8000, 60000])
            big = b"B" * n
            yield b"\r\n".join(lines[:-1] + [b"Content-Length: %d" % rnd.choice([n, n + 10, n // 2])]) + b"\r\n\r\n" + big
        elif kind == 6:                                 # invalid UTF-8 body
            yield b"\r\n".join(lines[:-1] + [b"Content-Length: 6"]) + b"\r\n\r\n\xc3\x28\xa0\xa1\xff\xfe"
        elif kind == 7:                                 # weird request URIs
            ruri = rnd.choice([b"sip:", b"sip:@localhost", b"sip:a@", b"sip:a@b@c", b"sip:%zz@localhost",
                               b"sip:a%00b@localhost", b"sip:a@localhost;gr=", b"sip:a@" + b"x" * 300,
                               b"sips:alice@localhost", b"im:alice@localhost", b"sip:alice@sip.localhost;transport=",
                               b"sip:\\40@sip.localhost", b"sip:a;b=c?d=e@localhost"])
            l2 = [lines[0].split(b" ")[0] + b" " + ruri + b" SIP/2.0"] + lines[1:]
            yield b"\r\n".join(l2) + b"\r\n\r\n" + body
        elif kind == 8:                                 # unknown / odd methods
            meth = rnd.choice([b"FOO", b"", b"M" * 500, b"message", b"INFO", b"NOTIFY", b"SUBSCRIBE",
                               b"PUBLISH", b"REFER", b"PRACK", b"UPDATE", b"REGISTER"])
            yield meth + lines[0][7:] + b"\r\n" + b"\r\n".join(lines[1:]) + b"\r\n\r\n" + body
        elif kind == 9:                                 # header folding / whitespace abuse
            l2 = [lines[0]] + [l.replace(b": ", b":\r\n \t ") for l in lines[1:]]
            yield b"\r\n".join(l2) + b"\r\n\r\n" + body
        elif kind == 10:                                # many headers
            yield b"\r\n".join(lines + [b"X-H%d: v" % k for k in range(rnd.choice([100, 1000, 3000]))]) + b"\r\n\r\n" + body
        else:                                           # pure noise
            yield bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 1500)))


@dataclass
class FuzzStats:
    udp_sent: int = 0
    tcp_conns: int = 0
    tcp_sent: int = 0
    responses: int = 0
    seconds: float = 0.0


def fuzz(host: str = "127.0.0.1", port: int = 5070, udp_count: int = 3000, tcp_count: int = 300,
         max_seconds: float = 60, seed: int = 7106) -> FuzzStats:
    """Send UDP_COUNT malformed datagrams and TCP_COUNT malformed requests over short TCP connections,
    bounded by MAX_SECONDS in total, loopback only; drains responses without checking them."""
    assert host.startswith("127."), "the fuzzer only targets loopback"
    rnd = random.Random(seed)
    gen = fuzz_cases(rnd)
    st = FuzzStats()
    t0 = time.monotonic()
    end = t0 + max_seconds
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.setblocking(False)
    try:
        for i in range(udp_count):
            if time.monotonic() > end:
                break
            data = next(gen)[:65000]
            try:
                u.sendto(data, (host, port))
                st.udp_sent += 1
            except OSError:
                pass
            if i % 50 == 0:                             # pace a little and drain replies
                time.sleep(0.005)
            while True:
                try:
                    u.recvfrom(65535)
                    st.responses += 1
                except (BlockingIOError, OSError):
                    break
    finally:
        u.close()
    for i in range(tcp_count):
        if time.monotonic() > end:
            break
        try:
            s = socket.create_connection((host, port), timeout=2)
        except OSError:
            time.sleep(0.05)
            continue
        st.tcp_conns += 1
        try:
            s.settimeout(0.05)
            for _ in range(rnd.randrange(1, 4)):
                data = next(gen)
                if rnd.random() < 0.3:                  # split into small segments
                    for k in range(0, len(data), 7):
                        s.sendall(data[k:k + 7])
                else:
                    s.sendall(data)
                st.tcp_sent += 1
            if rnd.random() < 0.5:
                try:
                    if s.recv(65535):
                        st.responses += 1
                except (socket.timeout, OSError):
                    pass
        except OSError:
            pass
        finally:
            if rnd.random() < 0.3:                      # abortive close (RST)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
    st.seconds = time.monotonic() - t0
    return st
