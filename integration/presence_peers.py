"""SIP-peer side drivers for the presence (RFC 8048) real-peer tests.  Notes: PRESENCE_PEERS.md.

Everything here was verified against the peer kit's Kamailio 5.6 / baresip 1.0.0 / pjsua2 2.15.1
without the gateway (see PRESENCE_PEERS.md for the transcripts and the facts each helper relies on).

  BaresipPresencePeer  - a kit baresip: set own presence (presence_online/presence_offline -> PUBLISH
                         + NOTIFY to its own watchers), read what it shows for its contacts, start it
                         with contacts it SUBSCRIBEs to (the only way: baresip 1.0 has no add-contact command)
  PjsuaPresencePeer    - wrapper of pjsua_presence_peer.py (JSON lines on stdin/stdout): notifier with an
                         accept policy, subscriber (buddy), publisher; online/away/busy/offline + note
  SipUdpEndpoint       - raw UDP SIP endpoint (stdlib): a WATCHER (sends SUBSCRIBE, records the responses
                         and every NOTIFY, answers NOTIFY 200) and/or a STUB NOTIFIER (answers SUBSCRIBE with
                         a chosen code and sends NOTIFYs with a chosen state/body) - e.g. a stand-in for the
                         gateway on GATEWAY_SIP_ADDR, or a SIP user that subscribes to sip:alice@localhost
  pidf_summary / pidf_status / gateway_pidf - parse and build PIDF (+RPID, +<show xmlns='jabber:client'>)

Only stdlib (pjsua2 runs in the child process under the kit venv).  Everything binds 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sip_helper import SipMessage, parse_sip  # noqa: E402

ROOT = HERE.parent
PEERS = Path(os.environ.get("STOX_PEERS") or (ROOT.parent / "shared" / "peers")).resolve()
PJSUA_PEER_SCRIPT = HERE / "pjsua_presence_peer.py"

NS_PIDF = "urn:ietf:params:xml:ns:pidf"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
NS_RPID = "urn:ietf:params:xml:ns:pidf:rpid"
NS_JABBER = "jabber:client"

STATUSES = ("online", "away", "busy", "offline")


def venv_python() -> str:
    venv = os.environ.get("PEERS_VENV") or os.path.join(os.environ.get("TMPDIR") or "/tmp", "stox-peers", "venv")
    return os.path.join(venv, "bin", "python")


def wait_until(fn: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll fn() until it returns something truthy (returned); TimeoutError naming `what` otherwise."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= end:
            raise TimeoutError("timeout after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ================================================================================== PIDF helpers
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def pidf_summary(body) -> dict:
    """Parse a PIDF document (bytes/str) into
    {entity, tuples: [{id, basic, contact, notes, show, priority}], activities: [...], person_notes: [...]}.
    show = text of <show xmlns='jabber:client'> anywhere in the tuple (the gateway puts it inside <status>);
    activities = local names of the children of every <rpid:activities> (e.g. ['away'])."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    root = ET.fromstring(body.strip())
    out = {"entity": root.get("entity"), "tuples": [], "activities": [], "person_notes": []}
    for t in root.findall("{%s}tuple" % NS_PIDF):
        basic = t.find("{%s}status/{%s}basic" % (NS_PIDF, NS_PIDF))
        contact = t.find("{%s}contact" % NS_PIDF)
        show = t.find(".//{%s}show" % NS_JABBER)
        out["tuples"].append({
            "id": t.get("id"),
            "basic": basic.text.strip() if basic is not None and basic.text else None,
            "contact": contact.text.strip() if contact is not None and contact.text else None,
            "priority": contact.get("priority") if contact is not None else None,
            "notes": [n.text or "" for n in t.findall("{%s}note" % NS_PIDF)],
            "show": show.text.strip() if show is not None and show.text else None,
        })
    for acts in root.iter("{%s}activities" % NS_RPID):
        out["activities"] += [_local(c.tag) for c in acts]
    for person in root.findall("{%s}person" % NS_DM):
        out["person_notes"] += [n.text or "" for n in person.findall("{%s}note" % NS_DM)]
    return out


def pidf_status(body) -> str:
    """online/away/busy/offline/unknown of a PIDF document: 'open' in any tuple -> online, refined by the
    RPID activity (away / busy|on-the-phone) or an XMPP <show> (away|xa -> away, dnd -> busy)."""
    if not body or not (body.strip() if isinstance(body, (bytes, str)) else body):
        return "unknown"
    s = pidf_summary(body)
    if not any(t["basic"] == "open" for t in s["tuples"]):
        return "offline" if s["tuples"] else "unknown"
    acts = set(s["activities"])
    shows = {t["show"] for t in s["tuples"] if t["show"]}
    if "busy" in acts or "on-the-phone" in acts or "dnd" in shows:
        return "busy"
    if "away" in acts or shows & {"away", "xa"}:
        return "away"
    return "online"


def gateway_pidf(entity: str, tuples, activity: Optional[str] = None, person_note: Optional[str] = None) -> str:
    """A PIDF document shaped like the one the gateway sends (for stub notifiers):
    tuples = [(tuple_id, basic 'open'|'closed', show or None, note or None), ...];
    activity e.g. 'away' -> <dm:person><rpid:activities><rpid:away/></rpid:activities></dm:person>."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<presence xmlns="%s" xmlns:dm="%s" xmlns:rpid="%s" entity="%s">' % (NS_PIDF, NS_DM, NS_RPID, entity)]
    for tid, basic, show, note in tuples:
        parts.append('<tuple id="%s"><status><basic>%s</basic>%s</status>%s</tuple>'
                     % (tid, basic, "<show xmlns='jabber:client'>%s</show>" % show if show else "",
                        "<note>%s</note>" % note if note else ""))
    if activity or person_note:
        parts.append('<dm:person id="p1">%s%s</dm:person>'
                     % ("<rpid:activities><rpid:%s/></rpid:activities>" % activity if activity else "",
                        "<dm:note>%s</dm:note>" % person_note if person_note else ""))
    parts.append("</presence>")
    return "\n".join(parts)


# ======================================================================== raw UDP SIP endpoint
def _split_hdr_list(value: str) -> list[str]:
    """Split a comma-separated header value (Record-Route, Route) outside <> and quotes."""
    out, cur, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            depth += 1
        elif ch == ">" and not quoted:
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _uri_of(addr: str) -> str:
    m = re.search(r"<([^>]*)>", addr)
    return (m.group(1) if m else addr.split(";", 1)[0]).strip()


def _tag_of(addr: str) -> Optional[str]:
    m = re.search(r">\s*;(?:.*;)?\s*tag=([^;\s]+)", addr) if "<" in addr else re.search(r";\s*tag=([^;\s]+)", addr)
    return m.group(1) if m else None


def _hostport(uri: str) -> tuple[str, int]:
    u = re.sub(r"^sips?:", "", uri.strip())
    u = u.split(";", 1)[0].split("?", 1)[0]
    if "@" in u:
        u = u.split("@", 1)[1]
    host, _, port = u.partition(":")
    return host, int(port) if port else 5060


def _cseq(msg: SipMessage) -> str:
    return msg.get("cseq") or ""


def sub_state_of(msg: SipMessage) -> Optional[str]:
    """'active', 'pending', 'terminated' (the value before the first ';') of a NOTIFY."""
    v = msg.get("subscription-state")
    return v.split(";", 1)[0].strip().lower() if v else None


class Dialog:
    """One SUBSCRIBE dialog of a SipUdpEndpoint (role 'uac' = we subscribed, 'uas' = a watcher of ours)."""

    def __init__(self, role: str, call_id: str, local_uri: str, local_tag: str, remote_uri: str):
        self.role = role
        self.call_id = call_id
        self.local_uri = local_uri
        self.local_tag = local_tag
        self.remote_uri = remote_uri
        self.remote_tag: Optional[str] = None
        self.remote_target = remote_uri
        self.route_set: list[str] = []
        self.cseq = 1
        self.event = "presence"
        self.expires = 0
        self.responses: list[SipMessage] = []   # final+provisional responses to our requests in this dialog
        self.notifies: list[SipMessage] = []    # NOTIFYs received (uac) - retransmissions removed
        self.subscribes: list[SipMessage] = []  # SUBSCRIBEs received (uas)
        self.state = "init"                     # uas: active/pending/terminated; uac: last Subscription-State
        self.body = ""                          # uas: current NOTIFY body
        self.content_type = "application/pidf+xml"

    @property
    def final(self) -> Optional[SipMessage]:
        """Final response to the initial SUBSCRIBE (uac)."""
        for r in self.responses:
            if r.status >= 200 and _cseq(r).startswith("1 "):
                return r
        return None

    def __repr__(self):
        return "<Dialog %s %s %s state=%s>" % (self.role, self.remote_uri, self.call_id, self.state)


class SipUdpEndpoint:
    """Raw UDP SIP endpoint on 127.0.0.1 (a thread receives, answers and retransmits).

    Watcher:   ep = SipUdpEndpoint(user="watcher", next_hop=("127.0.0.1", kamailio_port)).start()
               d = ep.subscribe("sip:ben@127.0.0.1"); n = ep.wait_notify(d, lambda m: sub_state_of(m) == "active")
               ep.unsubscribe(d)
    Stub notifier (e.g. a fake gateway on GATEWAY_SIP_ADDR):
               ep = SipUdpEndpoint(port=15070, user="gw").start()
               ep.serve_subscriptions(code=200, state="active", body=gateway_pidf(...))
               ... ep.notify_all("active", other_body) ... ep.notify_all("terminated", reason="rejected")
    All messages sent/received are in ep.log as (monotonic time, 'tx'|'rx', SipMessage).
    Out-of-dialog requests go to next_hop, else to the Request-URI's host:port; in-dialog requests
    follow the route set (loose routing) or the remote target.
    """

    def __init__(self, port: int = 0, user: str = "watcher", domain: str = "127.0.0.1",
                 next_hop: Optional[tuple[str, int]] = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.user = user
        self.aor = "sip:%s@%s" % (user, domain)
        self.contact = "<sip:%s@127.0.0.1:%d>" % (user, self.port)
        self.next_hop = next_hop
        self.log: list[tuple[float, str, SipMessage]] = []
        self.dialogs: dict[str, Dialog] = {}
        self.lock = threading.RLock()
        self.pending: dict[str, list] = {}        # branch -> [data, addr, next_at, interval, deadline]
        self.notify_code = 200                    # our answer to NOTIFYs
        self.serve: Optional[dict] = None         # SUBSCRIBE policy (None -> 489 Bad Event... see _on_subscribe)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sip-udp-%d" % self.port, daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SipUdpEndpoint":
        self.thread.start()
        return self

    def close(self):
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(2)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ wire
    def _send(self, data: bytes, addr: tuple[str, int], retransmit_branch: Optional[str] = None):
        self.sock.sendto(data, addr)
        with self.lock:
            self.log.append((time.monotonic(), "tx", parse_sip(data)))
            if retransmit_branch:
                now = time.monotonic()
                self.pending[retransmit_branch] = [data, addr, now + 0.5, 0.5, now + 32]

    def _run(self):
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                data = None
            except OSError:
                return
            if data and data.strip():
                try:
                    self._on_message(parse_sip(data), addr)
                except Exception as e:  # noqa: BLE001 - never kill the receiver thread
                    print("[SipUdpEndpoint:%d] error handling message: %r" % (self.port, e), file=sys.stderr)
            now = time.monotonic()
            with self.lock:
                for br, p in list(self.pending.items()):
                    if now >= p[4]:
                        del self.pending[br]
                    elif now >= p[2]:
                        self.sock.sendto(p[0], p[1])
                        p[3] = min(p[3] * 2, 4.0)
                        p[2] = now + p[3]

    def _on_message(self, msg: SipMessage, addr):
        with self.lock:
            self.log.append((time.monotonic(), "rx", msg))
            if msg.is_response:
                self.pending.pop(msg.branch or "", None)
                d = self.dialogs.get(msg.get("call-id") or "")
                if d is not None:
                    d.responses.append(msg)
                    if d.role == "uac" and _cseq(msg).startswith("1 ") and 200 <= msg.status < 300:
                        self._learn_dialog(d, msg, from_response=True)
                    elif d.role == "uac" and _cseq(msg).startswith("1 ") and msg.status >= 300:
                        d.state = "failed"
                return
            method = msg.method
            if method == "ACK":
                return
            if method == "NOTIFY":
                self._on_notify(msg, addr)
            elif method == "SUBSCRIBE":
                self._on_subscribe(msg, addr)
            else:
                self._reply(msg, addr, 200, "OK")

    def _reply(self, req: SipMessage, addr, code: int, reason: str, to_tag: Optional[str] = None,
               extra: Optional[list[str]] = None, copy_rr: bool = False):
        lines = ["SIP/2.0 %d %s" % (code, reason)]
        for v in req.get_all("via"):
            lines.append("Via: %s" % v)
        to = req.get("to") or ""
        if to_tag and not _tag_of(to):
            to += ";tag=%s" % to_tag
        lines += ["From: %s" % req.get("from"), "To: %s" % to, "Call-ID: %s" % req.get("call-id"),
                  "CSeq: %s" % req.get("cseq")]
        if copy_rr:
            lines += ["Record-Route: %s" % v for v in req.get_all("record-route")]
        lines += extra or []
        lines += ["Content-Length: 0", "", ""]
        # responses go back to the source address (rport behaviour)
        self._send("\r\n".join(lines).encode(), addr)

    def _learn_dialog(self, d: Dialog, msg: SipMessage, from_response: bool):
        """Remote tag, remote target and (once) route set from a 2xx (uac: reversed Record-Route) or from
        the first NOTIFY (Record-Route in order, RFC 6665 4.1.2.4)."""
        remote = msg.get("to") if from_response else msg.get("from")
        if d.remote_tag is None:
            d.remote_tag = _tag_of(remote or "")
            rr = [x for v in msg.get_all("record-route") for x in _split_hdr_list(v)]
            d.route_set = list(reversed(rr)) if from_response else rr
        if msg.get("contact"):
            d.remote_target = _uri_of(msg.get("contact"))

    def _dest(self, d: Dialog) -> tuple[str, int]:
        if d.route_set:
            first = _uri_of(d.route_set[0])
            if ";lr" in first:
                return _hostport(first)
        return _hostport(d.remote_target)

    def _request(self, d: Dialog, method: str, extra: list[str], body: str = "", content_type: str = "",
                 initial_addr: Optional[tuple[str, int]] = None) -> bytes:
        branch = "z9hG4bK-pp-" + uuid.uuid4().hex[:16]
        ruri = d.remote_target
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.port, branch),
                 "Max-Forwards: 70",
                 "From: <%s>;tag=%s" % (d.local_uri, d.local_tag),
                 "To: <%s>%s" % (d.remote_uri, ";tag=%s" % d.remote_tag if d.remote_tag else ""),
                 "Call-ID: %s" % d.call_id,
                 "CSeq: %d %s" % (d.cseq, method)]
        lines += ["Route: %s" % r for r in d.route_set]
        lines += ["Contact: %s" % self.contact] + extra
        b = body.encode()
        if b:
            lines.append("Content-Type: %s" % content_type)
        lines.append("Content-Length: %d" % len(b))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + b
        self._send(data, initial_addr or self._dest(d), retransmit_branch=branch)
        d.cseq += 1
        return data

    # ------------------------------------------------------------------ watcher (UAC) side
    def subscribe(self, ruri: str, frm: Optional[str] = None, to: Optional[str] = None, expires: int = 3600,
                  event: str = "presence", accept: str = "application/pidf+xml",
                  extra_headers: Optional[list[str]] = None, next_hop: Optional[tuple[str, int]] = None) -> Dialog:
        """Send an initial SUBSCRIBE (From frm, default our AOR); returns the Dialog (see wait_final,
        wait_notify)."""
        d = Dialog("uac", "pp-" + uuid.uuid4().hex, frm or self.aor, uuid.uuid4().hex[:10], to or ruri)
        d.remote_target = ruri
        d.event = event
        d.expires = expires
        with self.lock:
            self.dialogs[d.call_id] = d
            hop = next_hop or self.next_hop or _hostport(ruri)
            self._request(d, "SUBSCRIBE", ["Event: %s" % event, "Accept: %s" % accept, "Expires: %d" % expires]
                          + (extra_headers or []), initial_addr=hop)
        return d

    def resubscribe(self, d: Dialog, expires: int = 3600):
        """In-dialog refresh (expires=0: unsubscribe)."""
        with self.lock:
            self._request(d, "SUBSCRIBE", ["Event: %s" % d.event, "Accept: application/pidf+xml",
                                           "Expires: %d" % expires])

    def unsubscribe(self, d: Dialog):
        self.resubscribe(d, 0)

    def _on_notify(self, msg: SipMessage, addr):
        d = self.dialogs.get(msg.get("call-id") or "")
        if d is None or d.role != "uac":
            self._reply(msg, addr, 481, "Subscription Does Not Exist")
            return
        code = self.notify_code
        self._reply(msg, addr, code, "OK" if code == 200 else "Rejected")
        if any(n.get("cseq") == msg.get("cseq") for n in d.notifies):
            return                                  # retransmission
        self._learn_dialog(d, msg, from_response=False)
        d.notifies.append(msg)
        d.state = sub_state_of(msg) or d.state

    def wait_final(self, d: Dialog, timeout: float = 5) -> SipMessage:
        """The final response to the initial SUBSCRIBE."""
        return wait_until(lambda: d.final, timeout, "final response to SUBSCRIBE %s" % d.remote_uri)

    def wait_notify(self, d: Dialog, pred: Optional[Callable[[SipMessage], bool]] = None, timeout: float = 5,
                    since: int = 0) -> SipMessage:
        """First NOTIFY of dialog d with index >= since matching pred (e.g.
        lambda m: sub_state_of(m) == 'active' and pidf_status(m.body) == 'away')."""
        def find():
            with self.lock:
                for n in d.notifies[since:]:
                    if pred is None or pred(n):
                        return n
            return None
        return wait_until(find, timeout, "NOTIFY in %r" % d)

    # ------------------------------------------------------------------ notifier (UAS) side
    def serve_subscriptions(self, code: int = 200, state: str = "active", body: str = "",
                            content_type: str = "application/pidf+xml", expires: int = 600):
        """Answer FUTURE incoming SUBSCRIBEs with `code` (2xx: a dialog + an immediate NOTIFY in `state`
        with `body`; >= 300: just the rejection)."""
        self.serve = {"code": code, "state": state, "body": body, "content_type": content_type, "expires": expires}

    @property
    def watchers(self) -> list[Dialog]:
        with self.lock:
            return [d for d in self.dialogs.values() if d.role == "uas"]

    def _on_subscribe(self, msg: SipMessage, addr):
        to_tag = _tag_of(msg.get("to") or "")
        d = self.dialogs.get(msg.get("call-id") or "")
        if to_tag and (d is None or d.role != "uas"):
            self._reply(msg, addr, 481, "Subscription Does Not Exist")
            return
        if d is None:
            pol = self.serve
            if pol is None:
                self._reply(msg, addr, 489, "Bad Event")
                return
            if pol["code"] >= 300:
                self._reply(msg, addr, pol["code"], "Rejected")
                d = Dialog("uas-rejected", msg.get("call-id"), _uri_of(msg.get("to")), "", _uri_of(msg.get("from")))
                d.subscribes.append(msg)
                self.dialogs[d.call_id] = d
                return
            d = Dialog("uas", msg.get("call-id"), _uri_of(msg.get("to")), uuid.uuid4().hex[:10],
                       _uri_of(msg.get("from")))
            d.remote_tag = _tag_of(msg.get("from") or "")
            d.remote_target = _uri_of(msg.get("contact") or msg.get("from"))
            d.route_set = [x for v in msg.get_all("record-route") for x in _split_hdr_list(v)]
            d.event = (msg.get("event") or "presence").split(";")[0].strip()
            d.state, d.body, d.content_type = pol["state"], pol["body"], pol["content_type"]
            self.dialogs[d.call_id] = d
            code = pol["code"]
            max_exp = pol["expires"]
        else:
            code, max_exp = 200, (self.serve or {}).get("expires", 600)
        d.subscribes.append(msg)
        req_exp = int(msg.get("expires") or 3600)
        d.expires = min(req_exp, max_exp)
        self._reply(msg, addr, code, "OK" if code == 200 else "Accepted", to_tag=d.local_tag, copy_rr=True,
                    extra=["Contact: %s" % self.contact, "Expires: %d" % d.expires])
        if d.expires == 0:
            self._notify(d, "terminated", reason="timeout")
        else:
            self._notify(d, d.state)

    def _notify(self, d: Dialog, state: str, body: Optional[str] = None, reason: Optional[str] = None):
        d.state = state
        if body is not None:
            d.body = body
        if state == "terminated":
            ss = "terminated;reason=%s" % (reason or "noresource")
        else:
            ss = "%s;expires=%d" % (state, d.expires)
        self._request(d, "NOTIFY", ["Event: %s" % d.event, "Subscription-State: %s" % ss], d.body, d.content_type)

    def notify_all(self, state: str = "active", body: Optional[str] = None, reason: Optional[str] = None) -> int:
        """Send a NOTIFY (new state and/or body) to every watcher that is not terminated; returns the count."""
        n = 0
        with self.lock:
            for d in self.watchers:
                if d.state != "terminated":
                    self._notify(d, state, body, reason)
                    n += 1
            if body is not None and self.serve:
                self.serve["body"] = body
        return n

    # ------------------------------------------------------------------ log access
    def mark(self) -> int:
        with self.lock:
            return len(self.log)

    def received(self, since: int = 0, method: Optional[str] = None) -> list[SipMessage]:
        with self.lock:
            return [m for _, d, m in self.log[since:] if d == "rx" and (method is None or m.method == method)]

    def wait_received(self, pred: Callable[[SipMessage], bool], timeout: float = 5, since: int = 0) -> SipMessage:
        def find():
            for m in self.received(since):
                if pred(m):
                    return m
            return None
        return wait_until(find, timeout, "a matching SIP message at :%d" % self.port)


# ===================================================================================== baresip
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BARESIP_STATUS = {"Online": "online", "Offline": "offline", "Busy": "busy", "Unknown": "unknown"}


class BaresipPresencePeer:
    """A kit baresip (baresip/start.sh NAME SIP_PORT CTRL_PORT) for presence tests.

    contacts: URIs baresip SUBSCRIBEs to (presence=p2p, through its outbound proxy = Kamailio; ~1 s
    after start, refreshed every 600 s).  They can only be given at start (baresip 1.0 has no command
    to add a contact).  env: the kit environment (PEERS_RUN, KAMAILIO_PORT, ...; e.g. Kit.env()).
    """

    def __init__(self, name: str, sip_port: int, ctrl_port: int, contacts=(), env: Optional[dict] = None,
                 peers: Path = PEERS, register: bool = True):
        self.name, self.sip_port, self.ctrl_port = name, sip_port, ctrl_port
        self.contacts_at_start = list(contacts)
        self.env = dict(env if env is not None else os.environ)
        self.peers = peers
        self.register = register
        self.aor = "sip:%s@127.0.0.1" % name
        run = self.env.get("PEERS_RUN") or os.path.join(os.environ.get("TMPDIR") or "/tmp", "stox-peers")
        self.dir = Path(run) / "baresip" / name
        self.log = self.dir / "baresip.log"

    def start(self) -> "BaresipPresencePeer":
        # the kit's start.sh leaves background processes holding its stdout: capture through a file
        env = dict(self.env)
        env.update({"BARESIP_CONTACTS": " ".join(self.contacts_at_start),
                    "BARESIP_REGISTER": "1" if self.register else "0"})
        with tempfile.TemporaryFile() as out:
            p = subprocess.run([str(self.peers / "baresip" / "start.sh"), self.name, str(self.sip_port),
                                str(self.ctrl_port)], env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=60)
            out.seek(0)
            text = out.read().decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError("baresip/start.sh %s failed:\n%s" % (self.name, text))
        return self

    def stop(self):
        with tempfile.TemporaryFile() as out:
            subprocess.run([str(self.peers / "baresip" / "stop.sh"), self.name], env=self.env,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=60)

    # ------------------------------------------------------------------ ctrl_tcp
    def ctrl(self, command: str, params: str = "", timeout: float = 5) -> dict:
        """One ctrl_tcp command (netstring JSON); returns the response object {response, ok, data}."""
        s = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=timeout)
        try:
            req = json.dumps({"command": command, "params": params, "token": "pp"}).encode()
            s.sendall(str(len(req)).encode() + b":" + req + b",")
            buf = b""
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                s.settimeout(max(0.05, end - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                buf += chunk
                while True:
                    i = buf.find(b":")
                    if i < 0:
                        break
                    n = int(buf[:i])
                    if len(buf) < i + 2 + n:
                        break
                    obj = json.loads(buf[i + 1:i + 1 + n])
                    buf = buf[i + 2 + n:]
                    if obj.get("response"):
                        return obj
            raise TimeoutError("no ctrl_tcp response from baresip %s to %r" % (self.name, command))
        finally:
            s.close()

    # ------------------------------------------------------------------ presence
    def set_presence(self, status: str):
        """online -> presence_online, offline -> presence_offline.  Each change PUBLISHes
        <basic>open|closed</basic> to Kamailio (pubint=600) and NOTIFYs baresip's own watchers.
        baresip 1.0 has NO away/busy: its PIDF is always just basic open/closed (ValueError)."""
        cmd = {"online": "presence_online", "offline": "presence_offline"}.get(status)
        if cmd is None:
            raise ValueError("baresip 1.0 can only set online/offline, not %r" % status)
        r = self.ctrl(cmd)
        if not r.get("ok"):
            raise RuntimeError("baresip %s: %s failed: %r" % (self.name, cmd, r))

    def contacts(self) -> dict[str, str]:
        """{contact URI: online|offline|busy|unknown} as baresip shows them (`contacts` command).
        What baresip derives from a NOTIFY (subscriber.c): basic open -> online; then the raw text
        '<rpid:away/>' -> OFFLINE (!), '<rpid:busy/>' or '<rpid:on-the-phone/>' -> busy; no body -> unknown;
        subscription terminated/failed -> unknown."""
        data = ANSI.sub("", self.ctrl("contacts").get("data", ""))
        out = {}
        for line in data.splitlines():
            m = re.match(r"^[> ]\s*(Online|Offline|Busy|Unknown)\s+.*<([^>]+)>\s*$", line)
            if m:
                out[m.group(2)] = BARESIP_STATUS[m.group(1)]
        return out

    def contact_status(self, uri: str) -> Optional[str]:
        return self.contacts().get(uri)

    def wait_contact_status(self, uri: str, status, timeout: float = 10) -> str:
        """Wait until `contacts` shows uri with status (a string or a collection of strings)."""
        want = {status} if isinstance(status, str) else set(status)

        def check():
            s = self.contact_status(uri)
            return s if s in want else None
        return wait_until(check, timeout, "baresip %s to show %s as %s (now: %s)"
                          % (self.name, uri, "/".join(sorted(want)), self.contacts()), interval=0.2)

    def log_text(self) -> str:
        try:
            return ANSI.sub("", self.log.read_text(errors="replace"))
        except OSError:
            return ""


# ====================================================================================== pjsua2
class PjsuaPresencePeer:
    """pjsua_presence_peer.py as a child process (kit venv python): send commands, wait for events.

        p = PjsuaPresencePeer("dave", 15093, registrar="sip:127.0.0.1:5060").start()
        p.set_presence("away", "lunch")                 # NOTIFY to watchers (+ PUBLISH if registered)
        p.buddy("sip:alice@localhost")
        p.wait_buddy("sip:alice@localhost", status="away", timeout=10)
        ev = p.wait_for(lambda e: e["event"] == "incoming_subscribe")
        p.stop()
    Direct topology (no Kamailio): PjsuaPresencePeer("dave", 15093, no_register=True,
    proxy="sip:127.0.0.1:5070") - SUBSCRIBEs to buddies then go straight to the proxy given.
    """

    def __init__(self, user: str = "dave", port: int = 5093, registrar: Optional[str] = None,
                 no_register: bool = False, proxy: Optional[str] = None, domain: str = "127.0.0.1",
                 accept_policy: str = "accept", status: Optional[str] = "online", note: str = "",
                 log_dir: Optional[Path] = None, trace: bool = False,
                 python: Optional[str] = None, env: Optional[dict] = None):
        self.user, self.port, self.domain = user, port, domain
        self.aor = "sip:%s@%s" % (user, domain)
        args = ["--user", user, "--port", str(port), "--domain", domain, "--accept-policy", accept_policy]
        if registrar:
            args += ["--registrar", registrar]
        if no_register:
            args.append("--no-register")
        if proxy:
            args += ["--proxy", proxy]
        if status:                       # without it pjsua starts OFFLINE (basic closed) and PUBLISHes nothing
            args += ["--status", status, "--note", note]
        if trace:
            args.append("--trace")
        self.log_dir = Path(log_dir) if log_dir else None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            args += ["--log-file", str(self.log_dir / ("pjsua-%s-%d.log" % (user, port)))]
        self.cmd = [python or venv_python(), str(PJSUA_PEER_SCRIPT)] + args
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.events: list[dict] = []
        self.noise: list[str] = []       # non-JSON output lines (should stay empty)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

    def start(self, timeout: float = 10) -> "PjsuaPresencePeer":
        stderr = open(self.log_dir / ("pjsua-%s-%d.stderr" % (self.user, self.port)), "ab") if self.log_dir \
            else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                     env=self.env, start_new_session=True)
        threading.Thread(target=self._reader, daemon=True).start()
        self.wait_for(lambda e: e["event"] == "ready", timeout, what="ready")
        return self

    def _reader(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                self.noise.append(line)
                continue
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def mark(self) -> int:
        with self.lock:
            return len(self.events)

    def send(self, cmd: str, **kw):
        if not self.alive():
            raise RuntimeError("pjsua peer %s is not running (exit %s)" % (self.aor, self.proc and self.proc.returncode))
        self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
        self.proc.stdin.flush()

    def wait_for(self, pred: Callable[[dict], bool], timeout: float = 5, since: int = 0, what: str = "") -> dict:
        """First event with index >= since for which pred(event) is true."""
        end = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and i >= len(self.events)):
                    raise TimeoutError("pjsua peer %s: no event %s within %.1fs; last events:\n%s"
                                       % (self.aor, what or "matching", timeout,
                                          "\n".join(json.dumps(e) for e in self.events[-8:])))
                self.cond.wait(min(left, 0.2))

    def command(self, cmd: str, timeout: float = 5, **kw) -> dict:
        """Send a command and wait for its ok (returned) or error (RuntimeError)."""
        since = self.mark()
        self.send(cmd, **kw)
        ev = self.wait_for(lambda e: e["event"] in ("ok", "error") and e.get("cmd") == cmd, timeout, since, what=cmd)
        if ev["event"] == "error":
            raise RuntimeError("pjsua peer %s: %s failed: %s" % (self.aor, cmd, ev.get("error")))
        return ev

    def set_presence(self, status: str, note: str = ""):
        return self.command("presence", status=status, note=note)

    def buddy(self, uri: str):
        return self.command("buddy", uri=uri)

    def unbuddy(self, uri: str):
        return self.command("unbuddy", uri=uri)

    def accept_policy(self, value: str):
        return self.command("accept_policy", value=value)

    def notify(self, state: str = "active", reason: Optional[str] = None):
        kw = {"state": state}
        if reason:
            kw["reason"] = reason
        return self.command("notify", **kw)

    def wait_buddy(self, uri: str, status: Optional[str] = None, sub_state: Optional[str] = None,
                   timeout: float = 10, since: int = 0, note: Optional[str] = None) -> dict:
        """Wait for a buddy_state event of uri with the given status / sub_state (ACTIVE, PENDING,
        TERMINATED, ACCEPTED...) / note."""
        def pred(e):
            return (e["event"] == "buddy_state" and e["uri"] == uri and (status is None or e["status"] == status)
                    and (sub_state is None or e["sub_state"] == sub_state) and (note is None or e["note"] == note))
        return self.wait_for(pred, timeout, since, what="buddy_state %s status=%s sub_state=%s" % (uri, status, sub_state))

    def of(self, event: str, since: int = 0) -> list[dict]:
        with self.lock:
            return [e for e in self.events[since:] if e["event"] == event]

    def stop(self, timeout: float = 5):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout)
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
