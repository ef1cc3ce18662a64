#!/usr/bin/env python3
"""Independent SIP (UDP) + MSRP (TCP or TLS) test user agent for the stox integration suite.  Notes: MSRP_UA.md.

Written from the RFC texts only (never from the gateway's Rust codec), stdlib only:
  RFC 3261  UA core over UDP: Timer A/E/B/F (§17.1), 2xx retransmitted until ACK (§13.3.1.4), ACK for 2xx as a
            new transaction (§13.2.2.4), dialogs (§12), BYE (§15);  RFC 4566 + RFC 4975 §8 SDP offer/answer
  RFC 4975  MSRP framing (§7.1, §9), SEND chunks (§7.1.1), REPORT (§7.1.2-7.1.4), responses (§7.2), receiving (§7.3)
  RFC 4976  relay AUTH + Use-Path (§5.1);  RFC 3994 isComposing;  RFC 6135 a=setup (connection direction)
  RFC 4975 §6, §8.1, §14: MSRP over TLS with Python's ssl module (OpenSSL): MsrpUa(tls={"cert", "key", "ca"}) uses
            msrps: URIs and TCP/TLS/MSRP only, verifies the peer's certificate for the host of its msrps: URI

    ua = MsrpUa(sip_port=5131, msrp_port=2861, user="romeo").start()
    s = ua.invite("sip:juliet@localhost", via_host_port=("127.0.0.1", 5070))
    mid = s.send("hi", success_report=True); s.wait_report(mid); s.wait_message(); s.bye(); ua.stop()

Whatever the far side does against the RFCs is appended to ua.violations (tests assert it stays []).
Self-check without the gateway:  python3 msrp_ua.py selftest [--relay 127.0.0.1:2855]
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import select
import socket
import ssl
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Callable, Optional

T1, T2, TIMER_B = 0.5, 4.0, 32.0                     # RFC 3261 §17 timers (seconds)
DEFAULT_ACCEPT = "text/plain message/cpim application/im-iscomposing+xml"
NS_ISCOMPOSING = "urn:ietf:params:xml:ns:im-iscomposing"
COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via"}
REASONS = {100: "Trying", 200: "OK", 405: "Method Not Allowed", 415: "Unsupported Media Type", 486: "Busy Here",
           480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 488: "Not Acceptable Here",
           500: "Server Internal Error", 501: "Not Implemented", 603: "Decline", 606: "Not Acceptable"}
ALLOW = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE"
IDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$")        # RFC 4975 §9 ident (tid, Message-ID)
MSRP_URI_RE = re.compile(r"^(msrps?)://(?:[^@/;]*@)?(\[[^\]]+\]|[^:/;@]+)(?::(\d+))?(?:/([^;]*))?;([^;]+)(;.*)?$", re.I)
BYTE_RANGE_RE = re.compile(r"^(\d+)-(\d+|\*)/(\d+|\*)$")
DEBUG = bool(os.environ.get("MSRP_UA_DEBUG"))


class SipError(Exception):
    """A non-2xx final response (408 when Timer B/F expires) to one of our requests."""

    def __init__(self, code: int, reason: str = "", response: Optional[dict] = None):
        super().__init__("SIP %d %s" % (code, reason))
        self.code, self.reason, self.response = code, reason, response


class Headers:
    """Ordered (name, value) pairs with case-insensitive lookup (SIP compact forms expanded)."""

    def __init__(self, pairs=()):
        self.pairs = [(k.strip(), v.strip()) for k, v in pairs]

    def get_all(self, name: str) -> list[str]:
        norm = lambda n: COMPACT.get(n.strip().lower(), n.strip().lower())  # noqa: E731
        return [v for k, v in self.pairs if norm(k) == norm(name)]

    def get(self, name: str, default=None):
        return (self.get_all(name) or [default])[0]

    def __getitem__(self, name):
        if name not in self:
            raise KeyError(name)
        return self.get(name)

    def __contains__(self, name):
        return bool(self.get_all(name))

    def __repr__(self):
        return "Headers(%r)" % self.pairs


# ---------------------------------------------------------------------------------------- SIP / SDP helpers
def parse_sip(data: bytes) -> dict:
    """RFC 3261 §7: {method|code, uri|reason, headers, body}; folded lines joined; body cut to Content-Length."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines, pairs = head.decode("utf-8").split("\r\n"), []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and pairs:
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError("bad header line %r" % line)
        pairs.append((name, value))
    h = Headers(pairs)
    body = body[:int(h["content-length"])] if "content-length" in h else body
    parts = lines[0].split(" ", 2)
    if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
        return {"method": None, "code": int(parts[1]), "reason": (parts + [""])[2], "headers": h, "body": body}
    if len(parts) == 3 and parts[2] == "SIP/2.0":
        return {"method": parts[0], "uri": parts[1], "headers": h, "body": body}
    raise ValueError("bad start line %r" % lines[0][:80])


def _uri_of(v: str) -> str:
    m = re.search(r"<([^>]*)>", v)
    return m.group(1) if m else v.split(";")[0].strip()


def _tag_of(v: str) -> Optional[str]:
    m = re.search(r";\s*tag=([^;\s,]+)", v.rsplit(">", 1)[-1])
    return m.group(1) if m else None


def _branch(h: Headers) -> str:
    m = re.search(r";\s*branch=([^;,\s]+)", h.get("via", "").split(",")[0])
    return m.group(1) if m else ""


def _explicit_hostport(uri: str) -> Optional[tuple[str, int]]:
    m = re.match(r"^sips?:(?:[^@]*@)?([^:;>?]+):(\d+)", uri)
    return (m.group(1), int(m.group(2))) if m else None


def _sip_bytes(first: str, lines: list[str], body: bytes = b"", ctype: Optional[str] = None) -> bytes:
    lines = [first] + lines + (["Content-Type: " + ctype] if body else []) + ["Content-Length: %d" % len(body)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def build_sdp(port: int, path: list[str], accept_types: str, max_size=None, setup=None, host="127.0.0.1",
              extra=()) -> str:
    """RFC 4975 §8.1/§8.2: c= and the m= port are those of our own URI (the last one of the path); an msrps: URI
    means TCP/TLS/MSRP (§8.1, §14).  extra: more media-level lines, e.g. "a=chatroom:nickname" (RFC 7701 §8)."""
    v = int(time.time())
    proto = "TCP/TLS/MSRP" if path[-1].lower().startswith("msrps:") else "TCP/MSRP"
    lines = ["v=0", "o=- %d %d IN IP4 %s" % (v, v, host), "s=-", "c=IN IP4 " + host, "t=0 0",
             "m=message %d %s *" % (port, proto), "a=accept-types:" + accept_types, "a=path:" + " ".join(path)]
    lines += (["a=max-size:%d" % max_size] if max_size is not None else []) + (["a=setup:" + setup] if setup else [])
    lines += list(extra)
    return "\r\n".join(lines) + "\r\n"


def parse_sdp(text: str) -> dict:
    """The first m=message section: {c, m (fields), path [...], accept_types [...], max_size, setup}."""
    out: dict = {"c": None, "m": None, "path": [], "accept_types": [], "max_size": None, "setup": None}
    in_msg = False
    for line in text.splitlines():
        k, _, v = line.strip().partition("=")
        if k == "m":
            in_msg = out["m"] is None and v.split()[:1] == ["message"]
            out["m"] = v.split() if in_msg else out["m"]
        elif k == "c" and (in_msg or out["m"] is None) and v.split():
            out["c"] = v.split()[-1]
        elif k == "a" and in_msg:
            name, _, val = v.partition(":")
            if name in ("path", "accept-types"):
                out[name.replace("-", "_")] = val.split()
            elif name == "max-size" and val.strip().isdigit():
                out["max_size"] = int(val)
            elif name == "setup":
                out["setup"] = val.strip()
    return out


# ---------------------------------------------------------------------------------------- MSRP helpers
def parse_msrp_uri(uri: str) -> Optional[dict]:
    """RFC 4975 §6/§9 MSRP-URI -> {scheme, host, port (None if absent), session, transport} (None if invalid)."""
    m = MSRP_URI_RE.match(uri)
    return m and {"scheme": m.group(1).lower(), "host": m.group(2).lower(), "session": m.group(4) or "",
                  "port": int(m.group(3)) if m.group(3) else None, "transport": m.group(5).lower()}


def same_msrp_uri(a: str, b: str) -> bool:
    """RFC 4975 §6.1: scheme/host/transport case-insensitive, port exact (explicit != absent), session-id exact."""
    pa = parse_msrp_uri(a)
    return pa is not None and pa == parse_msrp_uri(b)


def type_ok(ctype: str, accepted: list[str]) -> bool:
    """RFC 4975 §8.6: an explicit type, 'type/*' or '*'; parameters are ignored for matching."""
    t = ctype.split(";")[0].strip().lower()
    return any(a in ("*", t) or (a.endswith("/*") and t.split("/")[0] == a[:-2])
               for a in (x.split(";")[0].strip().lower() for x in accepted))


def new_ident() -> str:
    """Transaction id / Message-ID with 64 random bits (RFC 4975 §7.1, §7.1.1)."""
    return secrets.token_hex(8)


def build_frame(tid: str, start: str, headers: list, body: Optional[bytes] = None, ctype: str = "",
                flag: str = "$") -> bytes:
    """RFC 4975 §7.1: start line ('SEND', '200 OK', ...), headers, then - iff there is a body - Content-Type
    last, an empty line, the body and a CRLF; end-line = 7 '-' + tid + flag ('$' last, '+' more, '#' abort)."""
    data = ("MSRP %s %s\r\n" % (tid, start) + "".join("%s: %s\r\n" % kv for kv in headers)).encode()
    if body is not None:
        data += b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body + b"\r\n"
    return data + b"-------" + tid.encode() + flag.encode() + b"\r\n"


class Frame:
    """A parsed MSRP request (method set, code None) or response (code set, method None)."""

    def __init__(self, tid, method, code, comment, headers, body, flag, raw):
        self.tid, self.method, self.code, self.comment = tid, method, code, comment
        self.headers, self.body, self.flag, self.raw = headers, body, flag, raw


class FrameParser:
    """Incremental framing (RFC 4975 §7.1, §9): feed() bytes as they arrive (split, or several frames per read).
    A frame ends at the first CRLF '-------' tid flag CRLF after its start line (the sender MUST keep that out of
    the body); the body is what lies between the empty line and that CRLF.  ValueError: input cannot be framed."""
    MAX = 8 * 1024 * 1024

    def __init__(self):
        self.buf = b""

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out = []
        while self.buf:
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                if len(self.buf) > 2048:
                    raise ValueError("no start line in %d bytes" % len(self.buf))
                break
            first = self.buf[:nl].decode("utf-8", "replace")
            m = re.match(r"^MSRP (\S+) (\d{3})(?: (.*))?$", first) or re.match(r"^MSRP (\S+) ([A-Z]+)$", first)
            if not m:
                raise ValueError("bad start line %r" % first[:80])
            end = re.compile(rb"\r\n-------" + re.escape(m.group(1).encode()) + rb"([$+#])\r\n").search(self.buf, nl)
            if not end:
                if len(self.buf) > self.MAX:
                    raise ValueError("no end-line within %d bytes" % self.MAX)
                break
            head_end = self.buf.find(b"\r\n\r\n", nl, end.start() + 2)
            hdr = self.buf[nl + 2:head_end if head_end >= 0 else end.start()].decode("utf-8", "replace")
            pairs = [line.partition(":") for line in hdr.split("\r\n")] if hdr else []
            if any(not sep for _, sep, _ in pairs):
                raise ValueError("bad header line in %r" % hdr[:200])
            resp = m.group(2).isdigit()
            out.append(Frame(m.group(1), None if resp else m.group(2), int(m.group(2)) if resp else None,
                             (m.group(3) or "") if resp else "", Headers((k, v) for k, _, v in pairs),
                             self.buf[head_end + 4:end.start()] if head_end >= 0 else None, end.group(1).decode(),
                             self.buf[:end.end()]))
            self.buf = self.buf[end.end():]
        return out


def iscomposing_body(state: str = "active", refresh: Optional[int] = 90, contenttype: str = "text/plain") -> bytes:
    """RFC 3994 §3/§5 status message (<refresh> only with state active)."""
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="%s"><state>%s</state>' % (NS_ISCOMPOSING, state)
    xml += "<contenttype>%s</contenttype>" % contenttype if contenttype else ""
    xml += "<refresh>%d</refresh>" % refresh if refresh is not None and state == "active" else ""
    return (xml + "</isComposing>").encode()


def parse_iscomposing(body: bytes) -> dict:
    """{state, refresh, contenttype, lastactive} of an RFC 3994 document; ValueError if it is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ValueError("isComposing not well-formed: %s" % e) from None
    if root.tag != "{%s}isComposing" % NS_ISCOMPOSING:
        raise ValueError("isComposing root element is %s" % root.tag)
    out = {n: (root.findtext("{%s}%s" % (NS_ISCOMPOSING, n)) or "").strip() or None
           for n in ("state", "refresh", "contenttype", "lastactive")}
    if out["state"] not in ("active", "idle"):
        raise ValueError("isComposing <state> is %r" % out["state"])
    out["refresh"] = int(out["refresh"]) if out["refresh"] is not None else None
    return out


def parse_cpim(body: bytes) -> dict:
    """message/cpim (RFC 3862): {headers (CPIM), mime (Headers), body}."""
    cpim, _, rest = body.replace(b"\r\n", b"\n").partition(b"\n\n")
    mime, _, content = rest.partition(b"\n\n")
    split = lambda b: Headers(ln.split(":", 1) for ln in b.decode("utf-8").split("\n") if ":" in ln)  # noqa: E731
    return {"headers": split(cpim), "mime": split(mime), "body": content}


class Conn:
    """One MSRP TCP connection: accepted (inbound) or opened by us towards key=(host, port)."""

    def __init__(self, ua: "MsrpUa", sock: socket.socket, key=None, inbound=False, relay=False):
        self.sock, self.key, self.inbound, self.relay = sock, key, inbound, relay
        self.parser, self.send_lock, self.alive, self.requests = FrameParser(), threading.Lock(), True, 0
        # An OpenSSL connection must not be read and written by two threads at once: over TLS the reader takes
        # send_lock too, and only once select() says there is something to read (so writers do not starve).
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.name = "%s:%s:%d" % ("in" if inbound else "out", *sock.getpeername()[:2])
        self.thread = threading.Thread(target=ua._reader, args=(self,), name="msrp-" + self.name, daemon=True)

    def send(self, data: bytes):
        with self.send_lock:
            self.sock.sendall(data)

    def close(self):
        self.alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------------------------------- session
class Session:
    """A SIP dialog plus its MSRP session; role 'uac' (MsrpUa.invite) or 'uas' (MsrpUa.wait_session)."""

    def __init__(self, ua: "MsrpUa", role: str, call_id: str):
        self.ua, self.role, self.call_id = ua, role, call_id
        self.local_sid = secrets.token_urlsafe(12)          # 96 random bits (RFC 4975 §8.2, §14.1)
        self.local_uri = "%s://%s:%d/%s;tcp" % ("msrps" if ua.tls else "msrp", ua.host, ua.msrp_port, self.local_sid)
        self.use_path: list[str] = []                       # from the relay's AUTH response
        self.remote_path: list[str] = []                    # the peer's a=path
        self.remote_accept_types: list[str] = []
        self.remote_max_size: Optional[int] = None
        self.local_accept, self.max_size = ua.accept_types.split(), ua.max_size   # max_size: 413 above it
        self.sdp_offer = self.sdp_answer = ""
        self.active, self.conn, self.auto_report = False, None, True
        self.messages: list[dict] = []      # reassembled: message_id content_type body headers tid chunks from_path ...
        self.responses: list[tuple] = []    # (tid, code, message_id) for our SENDs
        self.reports: list[dict] = []       # message_id status code byte_range headers tid
        self.sent: list[dict] = []
        self.aborted: list[str] = []        # Message-IDs dropped after a '#' chunk
        self.rejected: list[str] = []       # Message-IDs answered 413
        self.bodiless, self.bye_received, self.closed = 0, False, False
        self.local_tag, self.remote_tag = secrets.token_hex(4), None
        self.local_from = self.remote_to = self.remote_target = ""
        self.route_set: list[str] = []
        self.peer_addr: Optional[tuple] = None
        self.local_seq, self.remote_seq, self.ack = 1, None, None
        self.contact: Optional[str] = None                  # Contact for our in-dialog requests (None: ua.contact)
        self.invite_response: Optional[dict] = None         # the 2xx to our INVITE (uac role)
        self._partial: dict[str, dict] = {}

    def __repr__(self):
        return "<Session %s %s %s>" % (self.role, self.call_id[:12], self.local_uri)

    def to_path(self) -> list[str]:
        """RFC 4975 §8.2: the peer's SDP path; relay_to_path='use-path': RFC 4976 §5.1 Use-Path + that path."""
        return (self.use_path if self.ua.relay_to_path == "use-path" else []) + self.remote_path

    def send(self, text_or_bytes, content_type="text/plain", success_report=False, failure_report=None,
             chunk_size=None, message_id=None) -> str:
        """SEND (RFC 4975 §7.1.1), split into chunk_size-octet chunks ('+' ... '$'); a chunk above 2048 octets gets
        range-end '*' (interruptible).  failure_report None -> no header (= yes).  Returns the Message-ID."""
        body = text_or_bytes.encode() if isinstance(text_or_bytes, str) else bytes(text_or_bytes)
        mid, n, pos, tids = message_id or new_ident(), len(body), 0, []
        # Recorded before the first chunk goes out: the peer's REPORT can arrive (on the reader
        # thread) before this loop ends.
        with self.ua.lock:
            self.sent.append({"message_id": mid, "tids": tids, "size": n, "success_report": bool(success_report)})
        while True:
            part = body[pos:pos + (chunk_size or max(n, 1))]
            hdrs = [("Message-ID", mid)] + ([("Success-Report", "yes")] if success_report else [])
            hdrs += [("Failure-Report", failure_report)] if failure_report else []
            hdrs.append(("Byte-Range", "%d-%s/%d" % (pos + 1, "*" if len(part) > 2048 else pos + len(part), n)))
            pos += len(part)
            tids.append(self.ua._send_request(self, "SEND", self.to_path(), hdrs, part, content_type,
                                              "$" if pos >= n else "+", mid, failure_report))
            if pos >= n:
                break
        return mid

    def send_interrupted(self, first_part, content_type="text/plain", total=None) -> str:
        """The first chunk of a message that is then aborted: Byte-Range 1-*/<total|*>, end-line flag '#' (§7.1)."""
        body = first_part.encode() if isinstance(first_part, str) else bytes(first_part)
        mid = new_ident()
        hdrs = [("Message-ID", mid), ("Byte-Range", "1-*/%s" % (total or "*"))]
        self.ua._send_request(self, "SEND", self.to_path(), hdrs, body, content_type, "#", mid)
        return mid

    def send_composing(self, state="active", refresh: Optional[int] = 90, contenttype="text/plain", **kw) -> str:
        """RFC 3994 isComposing as a SEND body (application/im-iscomposing+xml); kw go to send()."""
        return self.send(iscomposing_body(state, refresh, contenttype), "application/im-iscomposing+xml", **kw)

    def send_report(self, message_id: str, total: int, status="000 200 OK", byte_range=None) -> str:
        """REPORT (RFC 4975 §7.1.2/§7.1.3): To-Path = the SEND's From-Path (all URIs), Message-ID, Byte-Range, Status."""
        with self.ua.lock:
            got = [m["from_path"] for m in self.messages if m["message_id"] == message_id]
        hdrs = [("Message-ID", message_id), ("Byte-Range", byte_range or "1-%d/%d" % (total, total)), ("Status", status)]
        return self.ua._send_request(self, "REPORT", got[0] if got else self.to_path(), hdrs)

    def wait_message(self, pred: Optional[Callable[[dict], bool]] = None, timeout: float = 10) -> dict:
        """The next reassembled message (not returned by an earlier wait_message) matching pred."""
        return self.ua._take(self.messages, pred, timeout, "MSRP message on %r" % self)

    def wait_report(self, message_id: str, timeout: float = 10) -> dict:
        return self.ua._take(self.reports, lambda r: r["message_id"] == message_id, timeout, "REPORT " + message_id)

    def wait_response(self, message_id: str, timeout: float = 10) -> int:
        """Code of the next transaction response to a SEND (chunk) of message_id."""
        return self.ua._take(self.responses, lambda r: r[2] == message_id, timeout, "response " + message_id)[1]

    def wait_connected(self, timeout: float = 10) -> bool:
        """True once an MSRP connection is bound (we connected, or the peer's first request arrived)."""
        return self.ua._wait(lambda: self.conn is not None, timeout, "MSRP connection for %r" % self)

    def bye(self, timeout: float = TIMER_B + 1) -> int:
        """Send BYE (RFC 3261 §15.1.1) with a CSeq above any we used; returns the final response code."""
        with self.ua.lock:
            self.closed, self.local_seq = True, self.local_seq + 1
            tx = self.ua._dialog_request(self, "BYE")
        return self.ua._wait(lambda: tx["final"], timeout, "BYE response")["code"]

    def wait_bye(self, timeout: float = 10) -> bool:
        """True when the far side sent BYE (we answered 200); False on timeout."""
        try:
            return self.ua._wait(lambda: self.bye_received, timeout, "BYE")
        except TimeoutError:
            return False


# ---------------------------------------------------------------------------------------- the user agent
class MsrpUa:
    """SIP UA on UDP host:sip_port + MSRP endpoint on TCP host:msrp_port; threads: SIP receive (+timers), MSRP
    accept, one reader per connection; shared state under self.lock, waits on self.cond.
    With tls={"cert", "key", "ca"} every session is MSRP over TLS (msrps:, TCP/TLS/MSRP), the listener speaks TLS, and
    a TCP/MSRP offer gets 488.
    Knobs: answer_mode ('accept' or an int SIP code), bodiless_first, accept_types, max_size (a=max-size of our
    answers and 413 limit), setup_answer (a=setup we pick for an actpass offer), relay_to_path ('remote'|'use-path')."""

    TRACKED_METHODS = ("SEND",)   # MSRP requests whose responses go to session.responses (msrp_room adds NICKNAME)

    def __init__(self, sip_port: int = 0, msrp_port: int = 0, user: str = "romeo", host: str = "127.0.0.1",
                 relay: Optional[tuple[str, int]] = None, tls: Optional[dict] = None):
        self.user, self.host, self.relay, self.tls = user, host, relay, tls
        self.tls_errors: list[str] = []           # failed TLS handshakes (either direction)
        if tls:
            # RFC 4975 §14.2: the certificate must be valid for the host of the msrps: URI; our listener serves ours.
            self.tls_client = ssl.create_default_context(cafile=str(tls["ca"]))
            self.tls_client.check_hostname = True
            self.tls_server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_server.load_cert_chain(str(tls["cert"]), str(tls["key"]))
        self.answer_mode: object = "accept"
        self.bodiless_first, self.accept_types, self.max_size = True, DEFAULT_ACCEPT, None
        self.setup_answer, self.relay_to_path = "passive", "remote"
        self.requests: list[dict] = []            # every SIP request received (first copy per transaction)
        self.messages: list[dict] = []            # SIP MESSAGE requests (page mode), answered 200
        self.violations: list[str] = []
        self.trace: list[tuple] = []              # (monotonic, 'sip-rx'|'sip-tx'|'msrp-rx'|'msrp-tx', raw bytes)
        self.sessions: dict[str, Session] = {}    # Call-ID -> Session
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._stop = threading.Event()
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((host, sip_port))
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, msrp_port))
        self.lsock.listen(16)
        self.sip_port, self.msrp_port = self.sip.getsockname()[1], self.lsock.getsockname()[1]
        self.aor, self.contact = "sip:%s@%s" % (user, host), "<sip:%s@%s:%d>" % (user, host, self.sip_port)
        self._ctx: dict[str, dict] = {}           # our client transactions by branch
        self._srv: dict[tuple, bytes] = {}        # (branch, method) -> our last response (for retransmissions)
        self._retx: dict[str, list] = {}          # Call-ID -> [data, addr, next, interval, deadline] until ACK
        self._mtx: dict[str, dict] = {}           # MSRP tid -> our request (SEND/AUTH) awaiting a response
        self._by_sid: dict[str, Session] = {}
        self._conns: list[Conn] = []
        self._out: dict[tuple, Conn] = {}         # (host, port) -> connection we opened
        self._seen_from: dict[str, Conn] = {}     # one-URI From-Path -> connection its requests came on
        self._new: list[Session] = []
        self._taken: set = set()
        self._relay_conn: Optional[Conn] = None
        self._threads = [threading.Thread(target=self._sip_loop, name="sip-%d" % self.sip_port, daemon=True),
                         threading.Thread(target=self._accept_loop, name="msrp-accept", daemon=True)]

    def start(self) -> "MsrpUa":
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        """Close every socket and join all threads (within 2 s in total)."""
        self._stop.set()
        # The SIP thread notices the stop within its 50 ms receive timeout; closing its socket
        # under it could fail a send it is in the middle of (EBADF), which is not stox's fault.
        if self._threads[0].is_alive() and self._threads[0] is not threading.current_thread():
            self._threads[0].join(1.0)
        self.sip.close()
        self.lsock.close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            c.close()
        end = time.monotonic() + 2
        for t in self._threads + [c.thread for c in conns]:
            t.join(max(0.0, end - time.monotonic()))

    def __enter__(self) -> "MsrpUa":
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _wait(self, fn, timeout, what):
        end = time.monotonic() + timeout
        with self.cond:
            while not (v := fn()):
                if time.monotonic() >= end:
                    raise TimeoutError("%s: timeout after %.1fs waiting for %s" % (self.user, timeout, what))
                self.cond.wait(min(end - time.monotonic(), 0.2))
            return v

    def _take(self, items: list, pred, timeout, what):
        """Wait for the first item of a recorded list not returned before by _take and matching pred."""
        def find():
            for i, it in enumerate(items):
                if (id(items), i) not in self._taken and (pred is None or pred(it)):
                    self._taken.add((id(items), i))
                    return it
        return self._wait(find, timeout, what)

    def _violation(self, text: str):
        self.violations.append(text)
        self._trace("VIOLATION", text.encode())

    def _trace(self, kind: str, data: bytes):
        self.trace.append((time.monotonic(), kind, data))
        if DEBUG:
            print("[msrp_ua %s] %s\n%s" % (self.user, kind, data[:1500].decode("utf-8", "replace")), file=sys.stderr)

    # ------------------------------------------------------------------ SIP transport and transactions
    def _sip_send(self, data: bytes, addr):
        self._trace("sip-tx", data)
        self.sip.sendto(data, addr)

    def _sip_loop(self):
        self.sip.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data, addr = self.sip.recvfrom(65535)
            except socket.timeout:
                data, addr = None, None
            except OSError:
                return
            try:
                if data and data.strip():
                    self._on_sip(data, addr)
                self._timers()
            except Exception as e:  # noqa: BLE001 - the receive thread never dies; malformed input is recorded
                if self._stop.is_set():
                    return                            # stopping: the socket may be gone already
                with self.lock:
                    self._violation("SIP: error handling %s: %r" % ("input from %s" % (addr,) if data else "timers", e))

    def _timers(self):
        now = time.monotonic()
        with self.lock:
            for tx in self._ctx.values():           # Timer A/E retransmit, Timer B/F give up (RFC 3261 §17.1)
                if tx["final"]:
                    continue
                if now >= tx["deadline"]:
                    tx["final"] = {"code": 408, "reason": "no response (Timer B/F)", "headers": Headers(), "body": b""}
                    self.cond.notify_all()
                elif now >= tx["next"] and not (tx["method"] == "INVITE" and tx["provisional"]):
                    self._sip_send(tx["data"], tx["addr"])
                    tx["interval"] = tx["interval"] * 2 if tx["method"] == "INVITE" else min(tx["interval"] * 2, T2)
                    tx["next"] = now + tx["interval"]
            for call_id, r in list(self._retx.items()):   # final response to INVITE until ACK (§13.3.1.4, §17.2.1)
                if now >= r[4]:
                    del self._retx[call_id]
                    self._violation("SIP: no ACK for our final response to INVITE %s within 32 s" % call_id)
                elif now >= r[2]:
                    self._sip_send(r[0], r[1])
                    r[3] = min(r[3] * 2, T2)
                    r[2] = now + r[3]

    def _build_request(self, method, ruri, from_hdr, to_hdr, call_id, cseq, extra=(), body=b"", ctype=None, branch=None,
                       contact=None):
        branch = branch or "z9hG4bK" + secrets.token_hex(8)
        lines = ["Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (self.host, self.sip_port, branch), "Max-Forwards: 70",
                 "From: " + from_hdr, "To: " + to_hdr, "Call-ID: " + call_id, "CSeq: %d %s" % (cseq, method),
                 "Contact: " + (contact or self.contact), "User-Agent: stox-msrp_ua.py", *extra]
        return _sip_bytes("%s %s SIP/2.0" % (method, ruri), lines, body, ctype), branch

    def _request(self, method, ruri, addr, from_hdr, to_hdr, call_id, cseq, extra=(), body=b"", ctype=None,
                 contact=None) -> dict:
        """Start a client transaction (retransmitted by _timers until a response); returns its state dict."""
        data, branch = self._build_request(method, ruri, from_hdr, to_hdr, call_id, cseq, extra, body, ctype,
                                           contact=contact)
        now = time.monotonic()
        tx = {"method": method, "data": data, "addr": addr, "interval": T1, "next": now + T1, "deadline": now + TIMER_B,
              "final": None, "provisional": False, "ruri": ruri, "from": from_hdr, "call_id": call_id, "cseq": cseq,
              "branch": branch, "ack": None}
        with self.lock:
            self._ctx[branch] = tx
            self._sip_send(data, addr)
        return tx

    def request(self, method: str, target: str, via_host_port: tuple, from_uri: Optional[str] = None, body=b"",
                content_type: Optional[str] = None, extra=(), timeout: float = TIMER_B + 1) -> dict:
        """Out-of-dialog request (MESSAGE, OPTIONS, ...) to via_host_port; returns the final response dict."""
        body = body.encode() if isinstance(body, str) else body
        tx = self._request(method, target, via_host_port, "<%s>;tag=%s" % (from_uri or self.aor, secrets.token_hex(4)),
                           "<%s>" % target, uuid.uuid4().hex, 1, extra, body, content_type)
        return self._wait(lambda: tx["final"], timeout, "final response to " + method)

    def _dialog_dest(self, s: Session) -> tuple:
        """In-dialog requests go to the first (loose) route, else to the remote target if it names a port, else to
        the address the dialog was set up with (the gateway's static route)."""
        return _explicit_hostport(_uri_of(s.route_set[0]) if s.route_set else s.remote_target) or s.peer_addr

    def _dialog_request(self, s: Session, method: str, extra=(), body=b"", ctype=None) -> dict:
        """A request in s's dialog with CSeq s.local_seq (the caller increments it); extra: more header lines."""
        return self._request(method, s.remote_target, self._dialog_dest(s), s.local_from, s.remote_to, s.call_id,
                             s.local_seq, ["Route: " + r for r in s.route_set] + list(extra), body, ctype,
                             contact=s.contact)

    def _reply(self, req: dict, code: int, reason=None, to_tag=None, extra=(), body=b"", ctype=None) -> bytes:
        """Response to the request's source address (RFC 3581 rport behaviour); remembered for retransmissions."""
        h = req["headers"]
        to = h.get("to", "") + (";tag=" + to_tag if to_tag and not _tag_of(h.get("to", "")) else "")
        lines = ["Via: " + v for v in h.get_all("via")] + ["From: " + h.get("from", ""), "To: " + to,
                                                          "Call-ID: " + h.get("call-id", ""), "CSeq: " + h.get("cseq", "")]
        first = "SIP/2.0 %d %s" % (code, reason or REASONS.get(code, "Rejected"))
        data = _sip_bytes(first, lines + list(extra), body, ctype)
        self._srv[(_branch(h), req["method"])] = data
        self._sip_send(data, req["src"])
        return data

    def _on_sip(self, data: bytes, addr):
        try:
            msg = dict(parse_sip(data), src=addr)
        except (ValueError, UnicodeDecodeError) as e:
            with self.lock:
                self._violation("SIP: malformed message from %s: %s" % (addr, e))
            return
        with self.lock:
            self._trace("sip-rx", data)
            (self._on_response if msg["method"] is None else self._on_request)(msg)
            self.cond.notify_all()

    def _on_response(self, msg: dict):
        h = msg["headers"]
        tx = self._ctx.get(_branch(h))
        if tx is None or tx["final"]:                       # a retransmitted final response: repeat our ACK
            s = self.sessions.get(h.get("call-id", ""))
            if tx and tx["ack"]:
                self._sip_send(tx["ack"], tx["addr"])
            elif s and s.ack and 200 <= msg["code"] < 300 and h.get("cseq", "").endswith("INVITE"):
                self._sip_send(*s.ack)                        # §13.2.2.4
            return
        if msg["code"] < 200:
            tx["provisional"] = True
            return
        tx["final"] = msg
        if tx["method"] == "INVITE" and msg["code"] >= 300:   # ACK for non-2xx is part of the INVITE tx (§17.1.1.3)
            tx["ack"] = self._build_request("ACK", tx["ruri"], tx["from"], h.get("to", ""), tx["call_id"], tx["cseq"],
                                            branch=tx["branch"])[0]
            self._sip_send(tx["ack"], tx["addr"])

    def _on_request(self, msg: dict):
        h, method = msg["headers"], msg["method"]
        if method != "ACK" and (_branch(h), method) in self._srv:   # retransmission: repeat our response (§17.2)
            self._sip_send(self._srv[(_branch(h), method)], msg["src"])
            return
        self.requests.append(msg)
        call_id, to_tag = h.get("call-id", ""), _tag_of(h.get("to", ""))
        s = self.sessions.get(call_id)
        if method == "ACK":
            if self._retx.pop(call_id, None) and s and s.active and s.role == "uas" and s.conn is None:
                threading.Thread(target=self._activate, args=(s,), daemon=True).start()  # RFC 6135 active answerer
        elif to_tag:                                          # in-dialog request (RFC 3261 §12.2.2)
            seq = int((h.get("cseq", "0").split() or ["0"])[0])
            if s is None or s.closed or to_tag != s.local_tag:
                self._reply(msg, 481)
            elif s.remote_seq is not None and seq <= s.remote_seq:   # gaps are fine, going backwards is not
                self._reply(msg, 500, "Server Internal Error (CSeq out of order)")
            else:
                s.remote_seq = seq
                s.bye_received = s.closed = method == "BYE"
                if method == "MESSAGE":
                    self.messages.append(msg)
                if self._dialog_hook(s, msg):                 # a subclass (msrp_room.py) answered it itself
                    pass
                elif method == "INVITE":                      # re-INVITE: unchanged SDP, same o= (RFC 4975 §8.4)
                    self._reply(msg, 200, extra=["Contact: " + self.contact], ctype="application/sdp",
                                body=(s.sdp_answer if s.role == "uas" else s.sdp_offer).encode())
                else:
                    self._reply(msg, 200 if method in ("BYE", "MESSAGE", "OPTIONS", "INFO", "UPDATE", "NOTIFY") else 501)
        elif method == "INVITE":
            self._on_invite(msg)
        elif method in ("MESSAGE", "OPTIONS"):
            if method == "MESSAGE":
                self.messages.append(msg)
            self._reply(msg, 200, extra=[ALLOW, "Accept: application/sdp, text/plain"] if method == "OPTIONS" else [])
        elif method in ("CANCEL", "BYE"):                     # INVITEs are answered at once: CANCEL has no effect
            self._reply(msg, 200 if s and method == "CANCEL" else 481)
        else:
            self._reply(msg, 405, extra=[ALLOW])

    # Hooks for subclasses (msrp_room.py: conference participant and focus).  The defaults keep the 1:1 behaviour.
    def _dialog_hook(self, s: Session, msg: dict) -> bool:
        """An in-dialog request other than ACK, under the lock.  True = the subclass replied to it itself."""
        return False

    def _on_other_request(self, s: Session, f: "Frame", respond) -> None:
        """An MSRP request that is neither SEND nor REPORT (e.g. RFC 7701 NICKNAME), under the lock."""
        respond(501, "Not Implemented")

    def _send_verdict(self, s: Session, f: "Frame", start: int, body: bytes) -> Optional[tuple]:
        """Before a SEND chunk is accepted: None, or (code, comment) to answer it with and drop the chunk."""
        return None

    def _on_message_complete(self, s: Session, msg: dict, out: list) -> None:
        """A reassembled message was appended to s.messages (under the lock); network sends go into out."""

    def _on_invite(self, msg: dict):
        """UAS side of a new INVITE (the far side offers): 100, then answer_mode's code or 200 + SDP answer."""
        h, addr, call_id = msg["headers"], msg["src"], msg["headers"].get("call-id", "")
        self._reply(msg, 100)
        s, now = Session(self, "uas", call_id), time.monotonic()
        s.sdp_offer = msg["body"].decode("utf-8", "replace")
        offer = parse_sdp(s.sdp_offer)
        code = 200 if offer["m"] and offer["m"][2:3] == [self.proto()] else 488
        if not any(type_ok(t, s.local_accept) for t in offer["accept_types"]):
            code = 488                                        # RFC 4975 §8.6: no payload type in common
        if self.answer_mode != "accept" or code != 200:
            data = self._reply(msg, code if self.answer_mode == "accept" else int(self.answer_mode), to_tag=s.local_tag)
            self._retx[call_id] = [data, addr, now + T1, T1, now + TIMER_B]   # Timer G until ACK (§17.2.1)
            return
        if not h.get("contact") or (h.get("content-type") or "").split(";")[0].strip().lower() != "application/sdp":
            self._violation("SIP: INVITE %s without Contact or with Content-Type %r" % (call_id, h.get("content-type")))
        self._check_sdp(offer, "SDP offer")
        s.remote_tag, s.remote_seq = _tag_of(h.get("from", "")), int(h.get("cseq", "1").split()[0])
        s.local_from, s.remote_to = h.get("to", "") + ";tag=" + s.local_tag, h.get("from", "")
        s.remote_target, s.peer_addr = _uri_of(h.get("contact", "")) or _uri_of(h.get("from", "")), addr
        s.route_set = [r.strip() for v in h.get_all("record-route") for r in v.split(",")]
        s.remote_path, s.remote_accept_types, s.remote_max_size = offer["path"], offer["accept_types"], offer["max_size"]
        setup = offer["setup"] and {"passive": "active", "actpass": self.setup_answer}.get(offer["setup"], "passive")
        s.active = setup == "active"                          # RFC 6135; without a=setup the offerer connects
        s.use_path = self._relay_auth(s.local_uri) if self.relay else []
        s.sdp_answer = build_sdp(self.msrp_port, s.use_path[::-1] + [s.local_uri], " ".join(s.local_accept),
                                 s.max_size, setup, self.host)
        self.sessions[call_id] = self._by_sid[s.local_sid] = s
        self._new.append(s)
        data = self._reply(msg, 200, to_tag=s.local_tag, body=s.sdp_answer.encode(), ctype="application/sdp",
                           extra=["Contact: " + self.contact] + ["Record-Route: " + v for v in h.get_all("record-route")])
        self._retx[call_id] = [data, addr, now + T1, T1, now + TIMER_B]

    def proto(self) -> str:
        """The one m=message protocol of this UA (RFC 4975 §8.1, §14)."""
        return "TCP/TLS/MSRP" if self.tls else "TCP/MSRP"

    def _check_sdp(self, sdp: dict, what: str):
        """RFC 4975 §8.1 (c=/m= match our peer's URI), §8.2 (a=path, explicit ports), §8.6 (a=accept-types);
        over TLS (§14) the peer's own URI is msrps:."""
        m, path = sdp["m"], sdp["path"]
        last = parse_msrp_uri(path[-1]) if path else None
        scheme = "msrps" if self.tls else "msrp"
        for bad, text in ((m is None or len(m) < 4 or m[2] != self.proto() or m[3] != "*", "m= line %r" % m),
                          (last is not None and last["scheme"] != scheme, "last path URI is not %s:" % scheme),
                          (not path, "no a=path"), (not sdp["accept_types"], "no a=accept-types"),
                          (last and m and m[1:2] != [str(last["port"])], "m= port differs from the path URI port (§8.1)"),
                          (last and sdp["c"] and sdp["c"].lower() != last["host"], "c= differs from the path URI host"),
                          (last is not None and not last["session"], "last path URI has no session-id")):
            if bad:
                self._violation("%s: %s" % (what, text))
        for u in path:
            if not (p := parse_msrp_uri(u)) or p["port"] is None or p["transport"] != "tcp":
                self._violation("%s: path URI %r invalid or without explicit port / ;tcp (§6, §8.2)" % (what, u))

    def invite(self, target: str, via_host_port: tuple, from_uri: Optional[str] = None,
               accept_types: str = DEFAULT_ACCEPT, max_size: Optional[int] = None, setup: Optional[str] = None,
               timeout: float = TIMER_B + 1, sdp_extra=()) -> Session:
        """UAC: INVITE with an SDP offer, wait for the final response, ACK a 2xx; then as the active endpoint connect
        to the answer's first path URI and send a bodiless SEND (RFC 4975 §5.4).  SipError on a non-2xx.
        sdp_extra: more media-level SDP lines (e.g. RFC 7701 a=chatroom)."""
        s = Session(self, "uac", uuid.uuid4().hex)
        s.local_accept, s.max_size, s.peer_addr = accept_types.split(), max_size, via_host_port
        s.local_from = "<%s>;tag=%s" % (from_uri or self.aor, s.local_tag)
        s.remote_to, s.remote_target = "<%s>" % target, target
        s.use_path = self._relay_auth(s.local_uri) if self.relay else []
        s.sdp_offer = build_sdp(self.msrp_port, s.use_path[::-1] + [s.local_uri], accept_types, max_size, setup, self.host,
                                sdp_extra)
        with self.lock:
            self.sessions[s.call_id] = self._by_sid[s.local_sid] = s
        tx = self._request("INVITE", target, via_host_port, s.local_from, s.remote_to, s.call_id, 1,
                           body=s.sdp_offer.encode(), ctype="application/sdp")
        try:
            r = self._wait(lambda: tx["final"], timeout, "final response to INVITE")
        except TimeoutError:
            r = tx["final"] = {"code": 408, "reason": "no final response within %.1fs" % timeout}
        with self.lock:
            if not 200 <= r["code"] < 300:
                del self.sessions[s.call_id], self._by_sid[s.local_sid]
                raise SipError(r["code"], r.get("reason", ""), r)
            h, s.invite_response = r["headers"], r
            s.remote_tag, s.remote_to = _tag_of(h.get("to", "")), h.get("to", "")
            s.remote_target = _uri_of(h.get("contact", "")) or target
            if "contact" not in h:
                self._violation("SIP: 200 to INVITE without Contact")
            s.route_set = [x.strip() for v in h.get_all("record-route") for x in v.split(",")][::-1]
            s.sdp_answer = r["body"].decode("utf-8", "replace")
            ans = parse_sdp(s.sdp_answer)
            self._check_sdp(ans, "SDP answer")
            s.remote_path, s.remote_accept_types, s.remote_max_size = ans["path"], ans["accept_types"], ans["max_size"]
            s.active = ans["setup"] != "active"               # RFC 6135: the answerer may take the active role
            ack = self._build_request("ACK", s.remote_target, s.local_from, s.remote_to, s.call_id, 1,
                                      ["Route: " + x for x in s.route_set])[0]
            s.ack = (ack, self._dialog_dest(s))               # ACK for 2xx = a new transaction (§13.2.2.4)
            self._sip_send(*s.ack)
        if s.active and s.remote_path:
            self._activate(s)
        return s

    def wait_session(self, timeout: float = 10) -> Session:
        """The next session the far side set up by INVITE to us."""
        return self._take(self._new, None, timeout, "an inbound INVITE session")

    def wait_sip_message(self, pred: Optional[Callable[[dict], bool]] = None, timeout: float = 10) -> dict:
        """The next SIP MESSAGE (dict: method uri headers body src) not returned before and matching pred."""
        return self._take(self.messages, pred, timeout, "SIP MESSAGE")

    # ------------------------------------------------------------------ MSRP connections and sending
    def _accept_loop(self):
        self.lsock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                sock = self.lsock.accept()[0]
            except socket.timeout:
                continue
            except OSError:
                return
            if self.tls:        # the handshake in its own thread: a silent client does not block the next one
                threading.Thread(target=self._tls_accept, args=(sock,), daemon=True).start()
            else:
                self._add_conn(Conn(self, sock, inbound=True))

    def _tls_accept(self, sock: socket.socket):
        sock.settimeout(5)
        try:
            tls = self.tls_server.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            with self.lock:
                self.tls_errors.append("accept: %r" % e)
            sock.close()
            return
        self._add_conn(Conn(self, tls, inbound=True))

    def _connect(self, p: dict, key: tuple) -> socket.socket:
        """TCP to key; for an msrps: URI, TLS on it, verifying the certificate for the URI's host (§14.2)."""
        sock = socket.create_connection(key, timeout=5)
        if p["scheme"] != "msrps":
            return sock
        if not self.tls:
            sock.close()
            raise ValueError("msrps: URI but this UA has no TLS settings")
        try:
            return self.tls_client.wrap_socket(sock, server_hostname=key[0])
        except (OSError, ssl.SSLError) as e:
            with self.lock:
                self.tls_errors.append("connect %s:%d: %r" % (key[0], key[1], e))
            sock.close()
            raise

    def _add_conn(self, c: Conn) -> Conn:
        with self.lock:
            self._conns.append(c)
            if c.key:
                self._out[c.key] = c
        c.thread.start()
        return c

    def _conn_for(self, s: Session, to_path: list[str]) -> Conn:
        """RFC 4975 §5.4: the session's connection if it goes to the first hop; for a one-URI path the connection
        that peer sent us requests on (the passive side answers on the active side's connection); else an open
        connection to the first hop's host:port; else a new one.  An unbound session gets bound to the result."""
        p = parse_msrp_uri(to_path[0])
        if p is None or p["port"] is None:
            raise ValueError("cannot route to %r" % to_path[0])
        key = (p["host"].strip("[]"), p["port"])
        with self.lock:
            direct = self._seen_from.get(to_path[0]) if len(to_path) == 1 else None
            for c in (s.conn if s.conn and s.conn.key == key else None, direct,
                      s.conn if s.conn and s.conn.inbound and len(to_path) == 1 else None, self._out.get(key)):
                if c and c.alive:
                    break
            else:
                c = None
        c = c or self._add_conn(Conn(self, self._connect(p, key), key=key))
        with self.lock:
            if s.conn is None or not s.conn.alive:
                s.conn = c
                self.cond.notify_all()
        return c

    def _activate(self, s: Session):
        """Active endpoint (RFC 4975 §5.4): open/reuse the connection and immediately send a (bodiless) SEND."""
        try:
            if self.bodiless_first:       # bodiless: no Content-Type, Byte-Range 1-0/0 (§7.1, §7.1.1)
                self._send_request(s, "SEND", s.to_path(), [("Message-ID", new_ident()), ("Byte-Range", "1-0/0")])
            else:
                self._conn_for(s, s.to_path())
        except (OSError, ValueError) as e:
            with self.lock:
                self._violation("MSRP: cannot connect to %s: %s" % (s.to_path()[:1], e))

    def _send_request(self, s: Session, method: str, to_path: list[str], headers: list, body: Optional[bytes] = None,
                      ctype: str = "", flag: str = "$", message_id: Optional[str] = None, failure_report=None) -> str:
        tid = new_ident()
        while body and b"-------" + tid.encode() in body:   # §7.1: the end-line must not occur in the body
            tid = new_ident()
        data = build_frame(tid, method, [("To-Path", " ".join(to_path)), ("From-Path", s.local_uri)] + headers,
                           body, ctype, flag)
        conn = self._conn_for(s, to_path)
        with self.lock:
            if method in self.TRACKED_METHODS:
                self._mtx[tid] = {"session": s, "message_id": message_id, "from": s.local_uri, "fr": failure_report}
            self._trace("msrp-tx", data)
        conn.send(data)
        return tid

    def _relay_auth(self, local_uri: str) -> list[str]:
        """RFC 4976 §5.1: AUTH over our one relay connection; returns the Use-Path URIs (no Digest support: the
        kit's Kamailio relay does not challenge)."""
        if self._relay_conn is None or not self._relay_conn.alive:
            key = tuple(self.relay)
            self._relay_conn = self._add_conn(Conn(self, socket.create_connection(key, timeout=5), key=key, relay=True))
        tid = new_ident()
        data = build_frame(tid, "AUTH", [("To-Path", "msrp://%s:%d;tcp" % tuple(self.relay)), ("From-Path", local_uri)])
        with self.lock:
            self._mtx[tid] = {"session": None, "from": local_uri, "resp": None}
            self._trace("msrp-tx", data)
        self._relay_conn.send(data)
        r = self._wait(lambda: self._mtx[tid]["resp"], 10, "AUTH response from the relay")
        if r.code != 200 or "Use-Path" not in r.headers:
            raise RuntimeError("relay AUTH failed: %d %s (Digest is not implemented)" % (r.code, r.comment))
        return r.headers["Use-Path"].split()

    def _recv(self, c: Conn) -> bytes:
        if not c.tls:
            return c.sock.recv(65536)
        if not c.sock.pending() and not select.select([c.sock], [], [], 0.2)[0]:
            raise socket.timeout()
        with c.send_lock:
            return c.sock.recv(65536)

    def _reader(self, c: Conn):
        try:
            c.sock.settimeout(0.05 if c.tls else 0.2)
        except OSError:             # a test closed the connection before this thread first ran
            c.alive = False
        while not self._stop.is_set() and c.alive:
            try:
                data = self._recv(c)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                frames = c.parser.feed(data) if data else None
            except ValueError as e:
                with self.lock:
                    self._violation("MSRP framing error on %s: %s" % (c.name, e))
                frames = None
            if frames is None:
                break
            for f in frames:
                try:
                    for action in self._on_frame(c, f):
                        action()
                except Exception as e:  # noqa: BLE001 - the reader never dies on bad input
                    if self._stop.is_set() or not c.alive:
                        break      # we closed the socket ourselves under a pending answer: not the far side's fault
                    with self.lock:
                        self._violation("MSRP: error handling %s %s on %s: %r" % (f.method or f.code, f.tid, c.name, e))
        c.close()
        with self.lock:
            self.cond.notify_all()

    # ------------------------------------------------------------------ MSRP receiving (RFC 4975 §7.3)
    def _on_frame(self, c: Conn, f: Frame) -> list:
        """Handle one frame under the lock; returns callables (network sends) to run once the lock is released."""
        out: list = []
        with self.lock:
            self._trace("msrp-rx", f.raw)
            self.cond.notify_all()
            h, what = f.headers, "MSRP %s %s" % (f.method or f.code, f.tid)
            if [k.lower() for k, _ in h.pairs[:2]] != ["to-path", "from-path"]:
                self._violation("%s: To-Path and From-Path must be the first two headers (§9)" % what)
            if not IDENT_RE.match(f.tid):
                self._violation("%s: transaction id is not an RFC 4975 ident (4-32 chars, §9)" % what)
            to, frm = h.get("To-Path", "").split(), h.get("From-Path", "").split()
            if f.method is None:
                self._on_msrp_response(f, to, what)
                return out
            s = self._by_sid.get((parse_msrp_uri(to[-1]) or {}).get("session")) if to else None
            fr = (h.get("Failure-Report") or "yes").lower()

            def respond(code: int, comment: str):   # §7.2; none for REPORT or Failure-Report no / partial+200 (§7.1.4)
                if f.method == "REPORT" or not frm or fr == "no" or (fr == "partial" and code == 200):
                    return
                rto = frm[0] if f.method == "SEND" else " ".join(frm)   # SEND: back to the previous hop only (§7.2)
                data = build_frame(f.tid, "%d %s" % (code, comment),
                                   [("To-Path", rto), ("From-Path", s.local_uri if s else to[-1])])
                self._trace("msrp-tx", data)
                out.append(lambda: c.send(data))     # on the connection the request arrived on (§7.2)

            if not to or not frm:
                self._violation("%s: missing To-Path or From-Path" % what)
            elif s is None or s.closed:
                self._violation("%s: To-Path %s matches no open session (§7.3)" % (what, to[-1]))
                respond(481, "Session Does Not Exist")
            else:
                self._check_paths(s, c, f, to, frm, what)
                if f.method == "SEND":
                    self._on_send(s, f, frm, respond, out, what)
                elif f.method == "REPORT":
                    self._on_report(s, f, what)
                else:
                    self._on_other_request(s, f, respond)
            return out

    def _check_paths(self, s: Session, c: Conn, f: Frame, to: list, frm: list, what: str):
        if len(to) != 1 or not same_msrp_uri(to[0], s.local_uri):
            self._violation("%s: To-Path %r is not exactly our URI %s (§6.1, §7.3)" % (what, to, s.local_uri))
        if any(not (p := parse_msrp_uri(u)) or p["port"] is None for u in frm):
            self._violation("%s: From-Path %r has an invalid URI or one without explicit port (§6)" % (what, frm))
        elif s.remote_path and not same_msrp_uri(frm[-1], s.remote_path[-1]):
            self._violation("%s: From-Path %r does not end with the peer's a=path URI %s" % (what, frm, s.remote_path[-1]))
        if c.inbound and c.requests == 0 and f.method != "SEND":
            self._violation("%s: the first request on a new connection must be a SEND (§5.4)" % what)
        c.requests += 1
        if len(frm) == 1:
            self._seen_from[frm[0]] = c
        if s.conn is None:
            s.conn = c                                      # passive side: the first request binds the connection
        elif s.conn is not c and c.inbound and not self.relay and len(s.remote_path) == 1:
            self._violation("%s: session used on a 2nd connection %s (bound: %s) (§5.4)" % (what, c.name, s.conn.name))

    def _on_send(self, s: Session, f: Frame, frm: list, respond, out: list, what: str):
        h, body = f.headers, f.body
        mid, br = h.get("Message-ID"), h.get("Byte-Range")
        m = BYTE_RANGE_RE.match((br or "1-*/*").strip())
        start, end, total = [None if x == "*" else int(x) for x in m.groups()] if m else (1, None, None)
        n = len(body or b"")
        checks = ((not mid or not IDENT_RE.match(mid), "Message-ID %r missing or not an ident (§7.1.1)" % mid),
                  ((h.get("Success-Report") or "no").lower() not in ("yes", "no"), "bad Success-Report"),
                  ((h.get("Failure-Report") or "yes").lower() not in ("yes", "no", "partial"), "bad Failure-Report"),
                  (br is None, "no Byte-Range (§7.1.1)"), (not m, "malformed Byte-Range %r" % br),
                  (body is None and "Content-Type" in h, "bodiless SEND with Content-Type (§7.1)"),
                  (body is not None and h.pairs[-1][0].lower() != "content-type", "Content-Type absent or not last"),
                  (start < 1 or (end is not None and end - start + 1 != n)
                   or (total is not None and (start - 1 + n > total or (f.flag == "$" and start - 1 + n != total))),
                   "Byte-Range %s inconsistent with %d body octets and flag %s (§7.1.1)" % (br, n, f.flag)),
                  (n > 2048 and end is not None, "%d-octet chunk needs range-end '*' (> 2048, §7.1.1)" % n))
        for bad, text in checks:
            if bad:
                self._violation("%s: %s" % (what, text))
        if body is None:
            s.bodiless += 1
            return respond(200, "OK")
        ctype = h.get("Content-Type") or ""
        if not mid or not m:
            return respond(400, "Bad Request")
        if not type_ok(ctype, s.local_accept):
            self._violation("%s: Content-Type %s not in our accept-types (§8.6)" % (what, ctype))
            return respond(415, "Unsupported Media Type")
        if verdict := self._send_verdict(s, f, start, body):
            s._partial.pop(mid, None)
            return respond(*verdict)
        if s.max_size is not None and max(total or 0, start - 1 + n) > s.max_size:
            s._partial.pop(mid, None)                      # RFC 7573 §8 (CHAT-22): 413 and drop the message
            s.rejected.append(mid)
            return respond(413, "Message Too Large")
        p = s._partial.setdefault(mid, {"chunks": [], "total": None, "ctype": ctype, "headers": h, "tid": f.tid,
                                        "sr": False, "from": frm})
        p["chunks"].append((start, body))
        p["sr"] |= (h.get("Success-Report") or "").lower() == "yes"
        p["total"] = start - 1 + n if f.flag == "$" else (total if total is not None else p["total"])
        respond(200, "OK")
        if f.flag == "#":                                   # aborted: drop what we have of the message (§7.1)
            del s._partial[mid]
            return s.aborted.append(mid)
        pos = 1                                             # chunks may arrive out of order (§7.3.1)
        for a, b in sorted((st, st + len(d)) for st, d in p["chunks"]):
            pos = max(pos, b) if a <= pos else pos
        if p["total"] is None or pos <= p["total"]:
            return
        del s._partial[mid]
        buf = bytearray(p["total"])
        for st, d in p["chunks"]:                           # in arrival order: the last one received wins (§7.3.1)
            buf[st - 1:st - 1 + len(d)] = d
        msg = {"message_id": mid, "content_type": p["ctype"], "body": bytes(buf[:p["total"]]), "headers": p["headers"],
               "tid": p["tid"], "chunks": len(p["chunks"]), "from_path": p["from"], "success_report": p["sr"]}
        base = p["ctype"].split(";")[0].strip().lower()
        try:
            if base.startswith("text/"):
                msg["text"] = msg["body"].decode("utf-8")
            elif base == "application/im-iscomposing+xml":
                msg["composing"] = parse_iscomposing(msg["body"])
            elif base == "message/cpim":
                msg["cpim"] = parse_cpim(msg["body"])
        except ValueError as e:                             # UnicodeDecodeError is a ValueError
            self._violation("%s: %s body: %s" % (what, base, e))
        out.append(lambda: self._publish(s, msg))           # after our 200 (appended above) is on the wire
        if p["sr"] and s.auto_report:                       # one success report for the whole message (§7.1.3)
            out.append(lambda: s.send_report(mid, len(msg["body"])))

    def _publish(self, s: Session, msg: dict):
        """Make a received message visible to the test only once its 200 has gone out: a test that acts on it at
        once (closes the connection, stops the UA) must not take that 200 with it, or the sender rightly offers
        the message again in a new session (at-least-once, RFC 4975 §7.1.2) and the next test receives it."""
        more: list = []
        with self.lock:
            s.messages.append(msg)
            self._on_message_complete(s, msg, more)
            self.cond.notify_all()
        for action in more:
            action()

    def _on_report(self, s: Session, f: Frame, what: str):
        h = f.headers
        mid, st = h.get("Message-ID"), h.get("Status") or ""
        code = int(st.split()[1]) if re.match(r"^\d{3} \d{3}( .*)?$", st) else None
        sent = [m for m in s.sent if m["message_id"] == mid]
        for bad, text in ((not mid or code is None, "Message-ID %r / Status %r missing or malformed (§7.1.2)" % (mid, st)),
                          ("Success-Report" in h or "Failure-Report" in h, "carries Success-/Failure-Report (§7.1.2)"),
                          (mid and not sent, "for a Message-ID we never sent"),
                          (code == 200 and sent and not sent[0]["success_report"], "success REPORT unasked (§7.1.3)")):
            if bad:
                self._violation("%s: REPORT %s" % (what, text))
        s.reports.append({"message_id": mid, "status": st, "code": code, "byte_range": h.get("Byte-Range"),
                          "headers": h, "tid": f.tid})

    def _on_msrp_response(self, f: Frame, to: list, what: str):
        tx = self._mtx.get(f.tid)
        if tx is None:
            return self._violation("%s: response to no request we sent" % what)
        if "resp" in tx:                                    # AUTH (RFC 4976 §5.1)
            tx["resp"] = f
            return
        fr = (tx["fr"] or "yes").lower()
        for bad, text in ((f.body is not None, "response with a body (§9)"),
                          (len(to) != 1 or not same_msrp_uri(to[0], tx["from"]), "To-Path %r is not our URI (§7.2)" % to),
                          (fr == "no" or (fr == "partial" and f.code == 200), "answers Failure-Report: %s (§7.1.4)" % fr)):
            if bad:
                self._violation("%s: %s" % (what, text))
        tx["session"].responses.append((f.tid, f.code, tx["message_id"]))


# ---------------------------------------------------------------------------------------- self-test
def selftest(relay: Optional[tuple] = None, tls: Optional[dict] = None) -> int:
    """Two UAs against each other (A optionally behind the relay, both optionally over TLS); prints SELFTEST OK and
    returns the exit code."""
    a, b = MsrpUa(user="alice", relay=relay, tls=tls).start(), MsrpUa(user="bob", tls=tls).start()
    notes: list[str] = []

    def check(cond, what):
        if not cond:
            raise AssertionError(what)
        print("ok   " + what, flush=True)
    try:
        sip_a, sip_b = ("127.0.0.1", a.sip_port), ("127.0.0.1", b.sip_port)
        bob, alice = "sip:bob@127.0.0.1:%d" % b.sip_port, "sip:alice@127.0.0.1:%d" % a.sip_port
        sa = a.invite(bob, sip_b, from_uri="sip:alice@127.0.0.1")
        sb = b.wait_session()
        check(b._wait(lambda: sb.bodiless == 1, 5, "bodiless SEND"), "A (offerer, active) sent a bodiless SEND first")
        mid = sa.send("hello bob", success_report=True)
        check(sb.wait_message()["body"] == b"hello bob", "A->B text delivered")
        check(sa.wait_response(mid) == 200 and sa.wait_report(mid)["code"] == 200, "A->B 200 response + success REPORT")
        big = "a\u00e9\u263a" * 833 + "ab"                     # 5000 UTF-8 octets; chunk borders split characters
        mid = sa.send(big, chunk_size=1024)
        m = sb.wait_message()
        check(len(big.encode()) == 5000 and m["message_id"] == mid and m["text"] == big and m["chunks"] == 5,
              "A->B 5000 UTF-8 octets in 5 chunks of 1024 reassembled")
        sb.send(big, chunk_size=1024)
        check(sa.wait_message()["text"] == big, "B->A 5000 octets in 5 chunks reassembled")
        sb.send("hi alice \u263a")
        check(sa.wait_message()["text"] == "hi alice \u263a", "B->A text delivered")
        sa.send_composing("active")
        check(sb.wait_message()["composing"]["state"] == "active", "A->B isComposing active")
        sb.send_composing("idle")
        check(sa.wait_message()["composing"]["state"] == "idle", "B->A isComposing idle")
        sa.send_interrupted("this message is aborted")
        sa.send("after abort")
        check(sb.wait_message()["text"] == "after abort" and len(sb.aborted) == 1, "aborted ('#') message dropped")
        sb.max_size = 100
        mid = sa.send("x" * 200)
        check(sa.wait_response(mid) == 413 and sb.rejected == [mid], "413 for a message above max_size")
        sb.max_size = None
        mid = sa.send("no response please", failure_report="no")
        check(sb.wait_message()["message_id"] == mid, "Failure-Report: no message delivered")
        time.sleep(0.3)
        check(not [r for r in sa.responses if r[2] == mid], "no transaction response for Failure-Report: no")
        mid = sb.send("report me", success_report=True)
        check(sa.wait_message()["message_id"] == mid, "B->A message with Success-Report delivered")
        if relay:   # see MSRP_UA.md "Kamailio relay": responses to B are dropped, A's REPORT bounces back to A
            time.sleep(0.5)
            with a.lock:
                bounced = [v for v in a.violations if "matches no open session" in v]
                a.violations[:] = [v for v in a.violations if v not in bounced]
            notes.append("B got %d transaction responses for its SENDs through the relay" % len(sb.responses))
            notes.append("A's REPORT (To-Path: Use-Path B) reached B: %s; came back to A: %s" % (bool(sb.reports), bounced))
        else:
            check(sb.wait_report(mid)["code"] == 200 and sb.wait_response(mid) == 200, "B->A 200 + success REPORT")
        r = a.request("MESSAGE", bob, sip_b, body="page mode", content_type="text/plain")
        check(r["code"] == 200 and b.wait_sip_message()["body"] == b"page mode", "SIP MESSAGE answered 200 + recorded")
        check(a.request("OPTIONS", bob, sip_b)["code"] == 200, "OPTIONS answered 200")
        check(sa.bye() == 200 and sb.wait_bye(), "BYE from the UAC")
        sb2 = b.invite(alice, sip_a, from_uri="sip:bob@127.0.0.1")     # B offers; A answers (passive)
        sa2 = a.wait_session()
        check(sa2.wait_connected(5) and a._wait(lambda: sa2.bodiless == 1, 5, "bodiless"), "B (active) connected to A")
        path = parse_sdp(sa2.sdp_answer)["path"]
        check(len(path) == (2 if relay else 1), "A's a=path: %s" % path)
        sb2.send("to the answerer")
        check(sa2.wait_message()["text"] == "to the answerer", "offerer->answerer text delivered")
        mid = sa2.send("to the offerer", success_report=True)
        check(sb2.wait_message()["text"] == "to the offerer" and sa2.wait_report(mid)["code"] == 200,
              "answerer->offerer text + REPORT")
        check(sa2.bye() == 200 and sb2.wait_bye(), "BYE from the UAS")
        b.answer_mode = 488
        try:
            a.invite(bob, sip_b)
            check(False, "INVITE rejected")
        except SipError as e:
            check(e.code == 488, "INVITE rejected with 488 -> SipError(488)")
        time.sleep(0.3)
        check(a.violations == [] and b.violations == [], "no violations")
    except (AssertionError, TimeoutError, SipError, OSError, RuntimeError) as e:
        print("SELFTEST FAILED: %r\nA violations: %s\nB violations: %s" % (e, a.violations, b.violations))
        return 1
    finally:
        a.stop()
        b.stop()
    for n in notes:
        print("note " + n)
    print("SELFTEST OK")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest", help="two UAs against each other (no gateway)").add_argument(
        "--relay", help="HOST:PORT of an RFC 4976 relay used by UA A, e.g. 127.0.0.1:2855")
    ap._subparsers._group_actions[0].choices["selftest"].add_argument(
        "--tls", metavar="DIR", help="MSRP over TLS with DIR/peer.crt, DIR/peer.key (for 127.0.0.1) and DIR/ca.crt")
    args = ap.parse_args(argv)
    host, _, port = (args.relay or "").rpartition(":")
    tls = {"cert": os.path.join(args.tls, "peer.crt"), "key": os.path.join(args.tls, "peer.key"),
           "ca": os.path.join(args.tls, "ca.crt")} if args.tls else None
    return selftest((host, int(port)) if args.relay else None, tls)


if __name__ == "__main__":
    sys.exit(main())
