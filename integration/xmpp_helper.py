"""Small synchronous XMPP c2s test client for the stox integration suite (slixmpp underneath).

The slixmpp client runs on its own asyncio loop in a background thread; the test talks to it through
blocking methods:

    c = XmppClient("alice@localhost", "alicepass").connect()
    c.send_message("x\\40sipp.test@sip.localhost", "hi", id="m1", subject="s", thread="t", lang="de")
    msg = c.wait_message(lambda m: m.body == "hello", timeout=5)
    kind, reply = c.iq("sip.localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
    c.close()

Messages are sent as raw XML (send_raw) so that the test controls every attribute and child exactly
(xml:lang, id, type, thread, odd addressing).  Every received <message/> is recorded, including
type='error' stanzas and messages without a body, as a ReceivedMessage (parsed from the stanza's XML,
not from slixmpp's interface, so nothing is filled in or normalised by the client library).
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Optional
from xml.sax.saxutils import escape, quoteattr

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _text(el: ET.Element, name: str) -> Optional[str]:
    child = el.find("{%s}%s" % (NS_CLIENT, name))
    if child is None:
        return None
    return child.text or ""


@dataclass
class ReceivedMessage:
    """One received <message/> as the server delivered it."""

    frm: str
    to: str
    id: Optional[str]
    type: Optional[str]  # the raw attribute: None if absent
    lang: Optional[str]  # the raw xml:lang attribute of <message/>: None if absent
    body: Optional[str]
    subject: Optional[str]
    thread: Optional[str]
    body_lang: Optional[str] = None  # xml:lang of the <body/> element itself, if any
    error_type: Optional[str] = None
    error_condition: Optional[str] = None
    error_text: Optional[str] = None
    error_condition_text: Optional[str] = None  # character data of the condition element (e.g. <gone/>)
    raw: str = ""
    at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_xml(cls, el: ET.Element, raw: str) -> "ReceivedMessage":
        err_type = err_cond = err_text = err_cond_text = None
        err = el.find("{%s}error" % NS_CLIENT)
        if err is not None:
            err_type = err.get("type")
            for child in err:
                tag = child.tag
                if tag.startswith("{%s}" % NS_STANZAS):
                    local = tag.split("}", 1)[1]
                    if local == "text":
                        err_text = child.text or ""
                    elif err_cond is None:
                        err_cond = local
                        err_cond_text = child.text
        body_el = el.find("{%s}body" % NS_CLIENT)
        return cls(
            body_lang=body_el.get(XML_LANG) if body_el is not None else None,
            frm=el.get("from", ""),
            to=el.get("to", ""),
            id=el.get("id"),
            type=el.get("type"),
            lang=el.get(XML_LANG),
            body=_text(el, "body"),
            subject=_text(el, "subject"),
            thread=_text(el, "thread"),
            error_type=err_type,
            error_condition=err_cond,
            error_text=err_text,
            error_condition_text=err_cond_text,
            raw=raw,
        )

    def short(self) -> str:
        return self.raw if len(self.raw) < 600 else self.raw[:600] + "..."


class XmppError(AssertionError):
    pass


@dataclass
class ReceivedPresence:
    """A <presence/> as received (type None = available)."""
    frm: str
    to: str
    type: Optional[str]
    show: Optional[str]
    status: Optional[str]
    raw: str

    @classmethod
    def from_xml(cls, el: ET.Element, raw: str) -> "ReceivedPresence":
        return cls(frm=el.get("from", ""), to=el.get("to", ""), type=el.get("type"),
                   show=_text(el, "show"), status=_text(el, "status"), raw=raw)

    def short(self) -> str:
        return "presence from=%s type=%s show=%s status=%r" % (self.frm, self.type, self.show, self.status)


class XmppClient:
    """Blocking facade over a slixmpp ClientXMPP running in a private event-loop thread."""

    def __init__(self, jid: str, password: str, host: str = "127.0.0.1", port: Optional[int] = None,
                 resource: Optional[str] = None):
        self.jid = jid if "/" in jid or resource is None else "%s/%s" % (jid, resource)
        if "/" not in self.jid:
            self.jid = "%s/it-%s" % (jid, uuid.uuid4().hex[:8])
        self.password = password
        self.host = host
        self.port = port or int(os.environ.get("XMPP_C2S_PORT", "5222"))
        self.messages: list[ReceivedMessage] = []
        self.presences: list[ReceivedPresence] = []
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="xmpp-" + jid, daemon=True)
        self._thread.start()
        self._x: Optional[slixmpp.ClientXMPP] = None
        self._online = False

    # ---- plumbing
    def _run(self, coro, timeout: float):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def _call(self, fn, *args):
        async def wrapper():
            return fn(*args)
        return self._run(wrapper(), 10)

    def _on_message(self, stanza):
        raw = str(stanza)
        rec = ReceivedMessage.from_xml(stanza.xml, raw)
        with self._cond:
            self.messages.append(rec)
            self._cond.notify_all()

    def _on_presence(self, stanza):
        raw = str(stanza)
        rec = ReceivedPresence.from_xml(stanza.xml, raw)
        with self._cond:
            self.presences.append(rec)
            self._cond.notify_all()

    async def _connect(self, timeout: float):
        x = slixmpp.ClientXMPP(self.jid, self.password, loop=self._loop)
        self._x = x
        # The tests decide every subscription answer themselves.
        x.auto_authorize = None
        x.auto_subscribe = False
        x.register_handler(Callback("stox-it-all-messages", MatchXPath("{%s}message" % NS_CLIENT), self._on_message))
        x.register_handler(Callback("stox-it-all-presence", MatchXPath("{%s}presence" % NS_CLIENT),
                                    self._on_presence))
        started: asyncio.Future = self._loop.create_future()

        def on_start(_):
            if not started.done():
                started.set_result(True)

        def on_fail(*_):
            if not started.done():
                started.set_exception(XmppError("XMPP login failed for %s" % self.jid))

        x.add_event_handler("session_start", on_start)
        x.add_event_handler("failed_auth", on_fail)
        x.add_event_handler("connection_failed", on_fail)
        x.plugin["feature_mechanisms"].unencrypted_plain = True
        if hasattr(x, "enable_plaintext"):  # slixmpp >= 1.9
            x.plugin["feature_mechanisms"].unencrypted_scram = True
            x.enable_plaintext, x.enable_starttls, x.enable_direct_tls = True, False, False
            x.connect(self.host, self.port)
        else:  # slixmpp 1.8
            x.connect((self.host, self.port), force_starttls=False, disable_starttls=True)
        await asyncio.wait_for(started, timeout)
        # Like a real client: fetch the roster first. Servers send roster pushes and subscription stanzas
        # (`subscribed`, `unsubscribed`) only to "interested" resources, those that asked for the roster.
        await asyncio.wait_for(x.get_roster(), timeout)
        # available presence: servers deliver messages to a bare JID only to available resources
        x.send_presence()

    # ---- public API
    def connect(self, timeout: float = 15) -> "XmppClient":
        try:
            self._run(self._connect(timeout), timeout + 2)
        except Exception as e:  # noqa: BLE001 - re-raise with context
            raise XmppError("could not log in %s on %s:%d: %r" % (self.jid, self.host, self.port, e)) from e
        self._online = True
        return self

    @property
    def full_jid(self) -> str:
        return str(self._x.boundjid.full) if self._x else self.jid

    def close(self):
        if self._x is not None and self._online:
            async def dis():
                try:
                    await asyncio.wait_for(self._x.disconnect(wait=1), 3)
                except Exception:  # noqa: BLE001 - best effort
                    pass
            try:
                self._run(dis(), 5)
            except Exception:  # noqa: BLE001
                pass
            self._online = False

        async def drain():
            # finish slixmpp's background tasks so that nothing touches the loop after it stopped
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=2) if tasks else None
        try:
            self._run(drain(), 5)
        except Exception:  # noqa: BLE001
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def send_raw(self, xml: str):
        self._call(self._x.send_raw, xml)

    def send_message(self, to: str, body: Optional[str] = None, *, id: Optional[str] = None,
                     type: Optional[str] = "chat", subject: Optional[str] = None, thread: Optional[str] = None,
                     lang: Optional[str] = None, extra_xml: str = "") -> str:
        """Send one <message/> exactly as described; returns its id."""
        if id is None:
            id = "it-" + uuid.uuid4().hex[:12]
        attrs = " to=%s id=%s" % (quoteattr(to), quoteattr(id))
        if type is not None:
            attrs += " type=%s" % quoteattr(type)
        if lang is not None:
            attrs += " xml:lang=%s" % quoteattr(lang)
        inner = ""
        if subject is not None:
            inner += "<subject>%s</subject>" % escape(subject)
        if body is not None:
            inner += "<body>%s</body>" % escape(body)
        if thread is not None:
            inner += "<thread>%s</thread>" % escape(thread)
        inner += extra_xml
        self.send_raw("<message%s>%s</message>" % (attrs, inner))
        return id

    def send_presence(self, to: Optional[str] = None, type: Optional[str] = None, show: Optional[str] = None,
                      status: Optional[str] = None, priority: Optional[int] = None):
        """Send one <presence/> (broadcast when `to` is None)."""
        attrs = ""
        if to is not None:
            attrs += " to=%s" % quoteattr(to)
        if type is not None:
            attrs += " type=%s" % quoteattr(type)
        inner = ""
        if show is not None:
            inner += "<show>%s</show>" % escape(show)
        if status is not None:
            inner += "<status>%s</status>" % escape(status)
        if priority is not None:
            inner += "<priority>%d</priority>" % priority
        self.send_raw("<presence%s>%s</presence>" % (attrs, inner))

    def roster_subscription(self, jid: str) -> str:
        """The `subscription` of JID in this client's roster as the server pushed it ('none' if absent)."""
        def get():
            roster = self._x.client_roster
            return roster[jid]["subscription"] if jid in roster else "none"
        return self._call(get)

    def wait_roster(self, jid: str, states, timeout: float = 10, what: str = "") -> str:
        """Wait until the server's roster push says JID's subscription is one of STATES (RFC 6121 §3: servers
        may tell the client about an approval by roster push rather than the `subscribed` stanza)."""
        want = {states} if isinstance(states, str) else set(states)
        end = time.monotonic() + timeout
        while True:
            now = self.roster_subscription(jid)
            if now in want:
                return now
            if time.monotonic() > end:
                raise XmppError("%s: roster item %s has subscription=%r, expected %s %s"
                                % (self.jid, jid, now, "/".join(sorted(want)), what))
            time.sleep(0.1)

    def presence_mark(self) -> int:
        with self._cond:
            return len(self.presences)

    def wait_presence(self, pred: Callable[[ReceivedPresence], bool], timeout: float = 10, since: int = 0,
                      what: str = "presence") -> ReceivedPresence:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for p in self.presences[since:]:
                    if pred(p):
                        return p
                left = end - time.monotonic()
                if left <= 0:
                    got = "\n  ".join(p.short() for p in self.presences[-12:]) or "(nothing)"
                    raise XmppError("%s: no %s within %.1fs; last presences:\n  %s"
                                    % (self.jid, what, timeout, got))
                self._cond.wait(left)

    def wait_message(self, pred: Callable[[ReceivedMessage], bool], timeout: float = 10,
                     what: str = "message") -> ReceivedMessage:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    got = "\n  ".join(m.short() for m in self.messages[-10:]) or "(nothing)"
                    raise XmppError("%s: no matching %s within %.1fs; last received:\n  %s"
                                    % (self.jid, what, timeout, got))
                self._cond.wait(left)

    def collect(self, pred: Callable[[ReceivedMessage], bool], count: int, timeout: float) -> list[ReceivedMessage]:
        """Wait until at least COUNT matching messages arrived (or timeout); return all matching ones."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [m for m in self.messages if pred(m)]
                left = end - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cond.wait(min(left, 0.5))

    def settle(self, pred: Callable[[ReceivedMessage], bool], quiet: float = 1.0) -> list[ReceivedMessage]:
        """Wait until no new matching message arrived for QUIET seconds; return all matching ones."""
        last = -1
        while True:
            with self._cond:
                now = [m for m in self.messages if pred(m)]
            if len(now) == last:
                return now
            last = len(now)
            time.sleep(quiet)

    def iq(self, to: str, type: str, payload_xml: Optional[str], timeout: float = 10):
        """Send an IQ; returns ("result" | "error" | "timeout", ReceivedIq-like dict)."""
        async def go():
            iq = self._x.make_iq(ito=to, itype=type)
            if payload_xml:
                iq.append(ET.fromstring(payload_xml))
            try:
                resp = await iq.send(timeout=timeout)
                return "result", _iq_info(resp)
            except IqError as e:
                return "error", _iq_info(e.iq)
            except IqTimeout:
                return "timeout", {"raw": str(iq)}
        return self._run(go(), timeout + 5)


def _iq_info(iq) -> dict:
    el = iq.xml
    info = {"raw": str(iq), "type": el.get("type"), "id": el.get("id"), "from": el.get("from"), "xml": el,
            "error_type": None, "error_condition": None}
    err = el.find("{%s}error" % NS_CLIENT)
    if err is not None:
        info["error_type"] = err.get("type")
        for child in err:
            if child.tag.startswith("{%s}" % NS_STANZAS) and not child.tag.endswith("}text"):
                info["error_condition"] = child.tag.split("}", 1)[1]
                break
    return info
