#!/usr/bin/env python3
"""Independent SIP/MSRP multi-party chat test peers for the stox integration suite.  Notes: MSRP_ROOM.md.

Written from the RFC texts only (never from the gateway's Rust code), stdlib only, on top of msrp_ua.py:
  RFC 7701  MSRP chat rooms: a=chatroom (§8), message/cpim everywhere (§5.2), fan-out without echo (§6.1),
            private messages and 404/428 (§6.2), 403/415 (§6.3), NICKNAME + Use-Nickname, 424/425 (§7)
  RFC 7702  §5 (XMPP user -> SIP room) and §6 (SIP user -> XMPP room): isfocus Contact, SUBSCRIBE in the INVITE
            dialog, conference-info roster with <user entity="sip:room@host;gr=Nick">
  RFC 4575  conference event package: full/partial/deleted states (§4.4), versions (§4.6, §5.2)
  RFC 6665  SUBSCRIBE/NOTIFY (Event, Subscription-State, Expires);  RFC 3862 message/cpim

    ua = RoomUa(user="romeo").start()
    room = ua.join("sip:capulet@rooms.example.com", ("127.0.0.1", 5070), "sip:romeo@sip.example.com", nickname="Romeo")
    room.send_room("Romeo is here!"); room.wait_message(lambda m: not m["private"]); room.leave(); ua.stop()

    focus = TestFocus(rooms={"montague": {"subject": "Today in Verona"}}).start()   # the other direction

What the far side gets wrong is appended to ua.violations / focus.violations (tests assert they stay []).
Self-check: python3 msrp_room.py selftest
"""
from __future__ import annotations

import re
import secrets
import sys
import time
import unicodedata
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Callable, Optional
from xml.sax.saxutils import escape, quoteattr

from msrp_ua import T1, TIMER_B, Headers, MsrpUa, Session, SipError, build_sdp, parse_sdp, type_ok, _tag_of, _uri_of

NS_CONF = "urn:ietf:params:xml:ns:conference-info"           # RFC 4575 §4.2
NS_XCON = "urn:ietf:params:xml:ns:xcon-conference-info"      # RFC 6501 nickname attribute (RFC 7701 §7.4)
CONF_TYPE = "application/conference-info+xml"
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")   # RFC 3339
GONE = ("disconnecting", "disconnected")                     # RFC 4575 §5.7.2 endpoint states that mean "left"


# ---------------------------------------------------------------------------------------- URIs and CPIM
def parse_name_addr(value: str) -> dict:
    """'"Nick" <sip:a@b;gr=x>;p=v' -> {display, uri, params (after the '>'), bracketed}.  RFC 3862 §3.3 allows
    only '[Formal-name] <URI>' in CPIM From/To, so 'params' must be empty there (RFC 7702's examples put ;gr= after
    the '>', which is why the params are kept apart instead of silently merged)."""
    m = re.match(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>(.*)$', value or "")
    if not m:
        return {"display": None, "uri": (value or "").strip(), "params": {}, "bracketed": False}
    display = re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else (m.group(2).strip() or None)
    params = {}
    for p in m.group(4).split(";"):
        k, _, v = p.strip().partition("=")
        if k:
            params[k.lower()] = v.strip()
    return {"display": display, "uri": m.group(3).strip(), "params": params, "bracketed": True}


def uri_key(uri: str, outside: Optional[dict] = None) -> tuple:
    """(scheme, user, host, gr): how rooms and participants are compared here.  Port, transport and other URI
    parameters are ignored (the same room is written with and without ;transport=tcp, RFC 7701 §9.3); 'gr' is kept
    because it tells the participants of one room apart (RFC 7702 §6.2).  outside: params after the '>'."""
    m = re.match(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*):(?:([^@;?]*)@)?(\[[^\]]*\]|[^;?:]*)(?::\d+)?([^?]*)", uri or "")
    if not m:
        return ("", "", (uri or "").strip().lower(), None)
    params = dict(p.strip().partition("=")[::2] for p in m.group(4).split(";")[1:] if p.strip())
    params = {k.lower(): v for k, v in params.items()}
    gr = (outside or {}).get("gr", params.get("gr"))
    return (m.group(1).lower(), urllib.parse.unquote(m.group(2) or ""), m.group(3).lower(),
            urllib.parse.unquote(gr) if gr is not None else None)


def in_room_uri(room_uri: str, nick: str) -> str:
    """RFC 7702 §6.2: the occupant's URI inside the room, sip:room@host;gr=<nick> (nick percent-encoded)."""
    return "%s;gr=%s" % (room_uri, urllib.parse.quote(nick, safe=""))


def cpim_datetime() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def build_cpim(from_hdr: str, to_hdr: str, content, content_type: str = "text/plain",
               dt: Optional[str] = None) -> bytes:
    """RFC 3862 §2/§3: CPIM headers, empty line, MIME headers, empty line, content (all CRLF)."""
    content = content.encode() if isinstance(content, str) else bytes(content)
    head = "From: %s\r\nTo: %s\r\nDateTime: %s\r\n\r\nContent-Type: %s\r\n\r\n" % (
        from_hdr, to_hdr, dt or cpim_datetime(), content_type)
    return head.encode() + content


def _header_block(block: bytes, what: str, problems: list) -> Headers:
    pairs = []
    for line in block.decode("utf-8").split("\r\n"):
        m = re.match(r"^([^\s:]+): (.*)$", line)      # RFC 3862 §3.1: name ": " value (exactly colon + space)
        if not m:
            problems.append("%s header line %r is not 'Name: value' (RFC 3862 §3.1)" % (what, line[:80]))
            name, _, val = line.partition(":")
            pairs.append((name, val))
        else:
            pairs.append((m.group(1), m.group(2)))
    return Headers(pairs)


def unwrap_cpim(body: bytes) -> dict:
    """message/cpim -> {headers (CPIM), mime (Headers), content (bytes), problems [...]}; ValueError if the two
    header blocks cannot be found.  Bare-LF line ends are accepted but reported (RFC 3862 uses CRLF)."""
    problems: list[str] = []
    if b"\r\n\r\n" not in body and b"\n\n" in body:
        problems.append("CPIM uses bare LF line ends (RFC 3862 §3.1: CRLF)")
        body = body.replace(b"\n", b"\r\n")
    head, found, rest = body.partition(b"\r\n\r\n")
    if not found:
        raise ValueError("no empty line after the CPIM message headers (RFC 3862 §2)")
    mime, found, content = rest.partition(b"\r\n\r\n")
    if not found:
        raise ValueError("no empty line after the encapsulated MIME headers (RFC 3862 §2)")
    return {"headers": _header_block(head, "CPIM", problems), "mime": _header_block(mime, "MIME", problems),
            "content": content, "problems": problems}


def rewrite_cpim(body: bytes, new: dict) -> bytes:
    """Replace the values of CPIM message headers (e.g. {"From": ...}); everything else stays byte for byte."""
    head, sep, rest = body.partition(b"\r\n\r\n")
    lines = []
    for line in head.split(b"\r\n"):
        name = line.split(b":", 1)[0].decode("utf-8", "replace")
        lines.append(("%s: %s" % (name, new[name])).encode() if name in new else line)
    return b"\r\n".join(lines) + sep + rest


def media_attrs(sdp_text: str) -> dict:
    """Attributes of the first m=message section: name -> [values] (a flag attribute gives [''])."""
    out: dict = {}
    in_msg = found = False
    for line in sdp_text.splitlines():
        k, _, v = line.strip().partition("=")
        if k == "m":
            in_msg = not found and v.split()[:1] == ["message"]
            found = found or in_msg
        elif k == "a" and in_msg:
            name, _, val = v.partition(":")
            out.setdefault(name.strip().lower(), []).append(val.strip())
    return out


def quote_nickname(nick: str) -> str:
    """RFC 7701 §7.1 / RFC 4975 §9 quoted-string: backslash escapes only for '\\' and '"'."""
    return '"%s"' % nick.replace("\\", "\\\\").replace('"', '\\"')


def unquote_nickname(value: Optional[str]) -> Optional[str]:
    """The nickname of a Use-Nickname value, or None when it is not a quoted-string of qdtext / qd-esc."""
    m = re.match(r'^"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\\"])*)"$', (value or "").strip())
    return re.sub(r'\\([\\"])', r"\1", m.group(1)) if m else None


def prepare_nickname(nick: str) -> str:
    """A stand-in for the RFC 7700 Nickname profile (MUC-29): NFKC, runs of spaces folded to one, trimmed, case
    folded.  ValueError for an empty result or control characters (-> 424)."""
    if any(unicodedata.category(ch) == "Cc" for ch in nick):
        raise ValueError("control character in nickname")
    out = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", nick)).strip().casefold()
    if not out:
        raise ValueError("empty nickname")
    return out


# ---------------------------------------------------------------------------------------- conference-info
def _q(name: str) -> str:
    return "{%s}%s" % (NS_CONF, name)


def parse_conference_info(body: bytes) -> dict:
    """RFC 4575 document -> {entity, version, state, subject (None if absent), users (None if no <users>)}, users =
    {state, list: [user]}, user = {entity, state, display_text, nickname, roles, aors, endpoints}; None = absent.
    ValueError: not XML, root not {urn:ietf:params:xml:ns:conference-info}conference-info, version missing."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ValueError("conference-info is not well-formed XML: %s" % e) from None
    if root.tag != _q("conference-info"):
        raise ValueError("root element is %s, not {%s}conference-info (RFC 4575 §4.2)" % (root.tag, NS_CONF))
    if not (root.get("version") or "").isdigit():
        raise ValueError("<conference-info> without a numeric version (RFC 4575 §4.3)")
    desc = root.find(_q("conference-description"))
    users_el = root.find(_q("users"))

    def entries(el):
        if el is None:
            return None
        return [(e.findtext(_q("uri")) or e.text or "").strip() for e in el.findall(_q("entry"))]

    def user(u):
        eps = []
        for e in u.findall(_q("endpoint")):
            media = [(m.findtext(_q("type")) or "").strip() for m in e.findall(_q("media"))]
            status = e.findtext(_q("status"))
            eps.append({"entity": e.get("entity", ""), "state": e.get("state", "full"),
                        "status": status.strip() if status is not None else None, "media": media})
        dt = u.findtext(_q("display-text"))
        roles = u.find(_q("roles"))
        return {"entity": u.get("entity", ""), "state": u.get("state", "full"),
                "display_text": dt.strip() if dt is not None else None, "nickname": u.get("{%s}nickname" % NS_XCON),
                "roles": None if roles is None else [(r.text or "").strip() for r in roles.findall(_q("entry"))],
                "aors": entries(u.find(_q("associated-aors"))), "endpoints": eps}
    return {"entity": root.get("entity", ""), "version": int(root.get("version")), "state": root.get("state", "full"),
            "has_description": desc is not None,
            "subject": None if desc is None else (desc.findtext(_q("subject")) or "").strip(),
            "users": None if users_el is None else {"state": users_el.get("state", "full"),
                                                     "list": [user(u) for u in users_el.findall(_q("user"))]}}


def conference_info_xml(entity: str, version: int, state: str, users: list, subject: Optional[str] = None) -> bytes:
    """RFC 4575 document with its namespace.  users: [(user entity, state, info dict or None)], info = {nick, aor,
    endpoint, media_id, joined}; a 'deleted' user has no children (§4.4).  subject None: no description."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<conference-info xmlns="%s" xmlns:xcon="%s" entity=%s state="%s" version="%d">'
           % (NS_CONF, NS_XCON, quoteattr(entity), state, version)]
    if subject is not None:
        out.append("<conference-description><subject>%s</subject></conference-description>" % escape(subject))
    out.append('<users%s>' % ("" if state == "full" else ' state="%s"' % state))
    for ent, ustate, info in users:
        if ustate == "deleted":
            out.append('<user entity=%s state="deleted"/>' % quoteattr(ent))
            continue
        out.append('<user entity=%s state="%s" xcon:nickname=%s><display-text>%s</display-text>'
                   '<associated-aors><entry><uri>%s</uri></entry></associated-aors>'
                   '<roles><entry>participant</entry></roles>'
                   '<endpoint entity=%s state="full"><status>connected</status>'
                   '<joining-info><when>%s</when></joining-info>'
                   '<media id="%s"><type>message</type></media></endpoint></user>'
                   % (quoteattr(ent), ustate, quoteattr(info["nick"]), escape(info["nick"]), escape(info["aor"]),
                      quoteattr(info["endpoint"]), info["joined"], info["media_id"]))
    out.append("</users></conference-info>")
    return "\n".join(out).encode()


class ConferenceState:
    """Subscriber side of RFC 4575 §4.6: the local copy of one subscription's conference document.
    apply(doc) -> (problems, refresh): problems are RFC violations of the notifier; refresh=True when a partial
    document skipped versions and the subscriber MUST refresh the subscription to get full state."""

    def __init__(self):
        self.version: Optional[int] = None
        self.entity = ""
        self.subject: Optional[str] = None
        self.users: dict[str, dict] = {}              # entity -> user (parse_conference_info shape, endpoints by key)

    @staticmethod
    def _user(u: dict) -> dict:
        return dict(u, endpoints={e["entity"]: dict(e) for e in u["endpoints"]})

    def _replace_all(self, doc: dict):
        self.entity, self.subject = doc["entity"], doc["subject"]
        self.users = {u["entity"]: self._user(u) for u in (doc["users"] or {"list": []})["list"]
                      if u["state"] != "deleted"}

    def _merge(self, doc: dict):
        if doc["subject"] is not None:                # <conference-description> is atomic (§4.6 step 3.2)
            self.subject = doc["subject"]
        users = doc["users"]
        if users is None:
            return
        if users["state"] == "full":                  # 'full' is the default state of <users> (§4.4)
            self.users = {}
        for u in users["list"]:
            old = self.users.get(u["entity"])
            if u["state"] == "deleted":
                self.users.pop(u["entity"], None)
            elif u["state"] == "full" or old is None:
                self.users[u["entity"]] = self._user(u)
            else:                                      # partial user: replace what it carries (§4.6 step 3)
                for k in ("display_text", "nickname", "roles", "aors"):
                    if u[k] is not None:
                        old[k] = u[k]
                for e in u["endpoints"]:
                    if e["state"] == "deleted":
                        old["endpoints"].pop(e["entity"], None)
                    elif e["state"] == "full" or e["entity"] not in old["endpoints"]:
                        old["endpoints"][e["entity"]] = dict(e)
                    else:
                        old["endpoints"][e["entity"]].update({k: v for k, v in e.items() if v not in (None, [])})

    def apply(self, doc: dict) -> tuple[list[str], bool]:
        v, st, problems = doc["version"], doc["state"], []
        for u in (doc["users"] or {"list": []})["list"]:       # §4.4: children of a full parent are full
            parent = "full" if st == "full" else (doc["users"]["state"])
            if parent == "full" and u["state"] != "full":
                problems.append("user %s has state=%s inside a full parent (RFC 4575 §4.4)"
                                % (u["entity"], u["state"]))
        if st == "full" and (not doc["has_description"] or doc["users"] is None):
            problems.append("full document without <conference-description> and <users> (RFC 4575 §5.2)")
        if self.version is None:
            if st != "full":
                problems.append("first notification has state=%s, not full (RFC 4575 §4.6)" % st)
            self.version = v
            (self._replace_all if st != "partial" else self._merge)(doc)
            return problems, False
        if v <= self.version:
            if not (st == "full" and v == self.version and self._same(doc)):   # §5.2 allows an unchanged full repeat
                problems.append("version %d after %d: not increasing (RFC 4575 §4.6, §5.2)" % (v, self.version))
            return problems, False
        if v > self.version + 1:
            problems.append("version jumps from %d to %d (RFC 4575 §5.2: +1 per notification)" % (self.version, v))
            if st == "partial":                        # §4.6: discard it and refresh the subscription
                return problems, True
        self.version = v
        (self._merge if st == "partial" else self._replace_all)(doc)
        return problems, False

    def _same(self, doc: dict) -> bool:
        other = ConferenceState()
        other._replace_all(doc)
        return other.users == self.users and other.subject == self.subject

    def roster(self, include_gone: bool = False) -> dict:
        """entity -> {entity, nick, display_text, nickname, roles, status, aors, endpoints}; nick = the XCON nickname
        attribute, else <display-text> (RFC 7702 §7).  Users whose every endpoint is disconnected are left out."""
        out = {}
        for ent, u in self.users.items():
            statuses = [e["status"] for e in u["endpoints"].values()]
            if not include_gone and statuses and all(s in GONE for s in statuses):
                continue
            out[ent] = {"entity": ent, "nick": u["nickname"] or u["display_text"], "display_text": u["display_text"],
                        "nickname": u["nickname"], "roles": list(u["roles"] or []),
                        "status": statuses[0] if statuses else None, "aors": list(u["aors"] or []),
                        "endpoints": [dict(e) for e in u["endpoints"].values()]}
        return out


# ---------------------------------------------------------------------------------------- participant
class RoomSession:
    """One chat room joined by a RoomUa: the SIP dialog + MSRP session (self.session) + the conference
    subscription in that dialog.  Thread-safe through ua.lock."""

    def __init__(self, ua: "RoomUa", s: Session, room_uri: str, from_uri: str, accept_wrapped: str):
        self.ua, self.session, self.room_uri, self.from_uri = ua, s, room_uri, from_uri
        self.accept_wrapped = accept_wrapped.split()
        self.state = ConferenceState()
        self.notifies: list[dict] = []        # {version, state, subscription_state, headers, body, doc}
        self.refer_notifies: list[dict] = []  # NOTIFY Event: refer after refer() (RFC 3515): {headers, body}
        self.messages: list[dict] = []        # unwrapped CPIM messages (see _unwrap)
        self.nickname: Optional[str] = None   # the last one the switch accepted with 200
        self.nickname_results: list[tuple] = []
        self.subscribe_code: Optional[int] = None
        self.subscription_state: Optional[str] = None    # active / pending / terminated (last NOTIFY)
        self.expires = 600
        ans = media_attrs(s.sdp_answer)
        self.chatroom_tokens = (ans.get("chatroom") or [""])[0].split() if "chatroom" in ans else None
        self.remote_accept_wrapped = (ans.get("accept-wrapped-types") or [""])[0].split()

    def __repr__(self):
        return "<RoomSession %s as %s>" % (self.room_uri, self.nickname or self.from_uri)

    # --- roster
    @property
    def subject(self) -> Optional[str]:
        return self.state.subject

    def roster(self, include_gone: bool = False) -> dict:
        with self.ua.lock:
            return self.state.roster(include_gone)

    def nicks(self) -> list[str]:
        return sorted(u["nick"] or "" for u in self.roster().values())

    def entity_for(self, nick: str) -> str:
        """The <user entity> of the participant with this nickname (KeyError if none)."""
        for ent, u in self.roster().items():
            if u["nick"] == nick:
                return ent
        raise KeyError("no participant %r in %s (roster: %s)" % (nick, self.room_uri, self.nicks()))

    def self_entity(self) -> Optional[str]:
        """Our own <user> in the roster: the one whose entity or associated AOR is our URI, else our nickname's."""
        me = uri_key(self.from_uri)
        roster = self.roster()
        for ent, u in roster.items():
            if uri_key(ent) == me or any(uri_key(a) == me for a in u["aors"]):
                return ent
        return next((ent for ent, u in roster.items() if self.nickname and u["nick"] == self.nickname), None)

    def wait_roster(self, pred: Callable[[dict], bool], timeout: float = 10) -> dict:
        """Wait until pred(roster()) is true (checked on every change); returns that roster."""
        self.ua._wait(lambda: self.state.version is not None and pred(self.state.roster()), timeout,
                      "roster condition in %s (nicks now: %s)" % (self.room_uri, self.nicks()))
        return self.roster()

    def wait_notify(self, pred: Optional[Callable[[dict], bool]] = None, timeout: float = 10) -> dict:
        return self.ua._take(self.notifies, pred, timeout, "NOTIFY in %s" % self.room_uri)

    # --- SIP: subscription and leaving
    def _subscribe_tx(self, expires: int) -> dict:
        s = self.session
        with self.ua.lock:
            s.local_seq += 1
            return self.ua._dialog_request(s, "SUBSCRIBE", extra=[
                "Event: conference", "Expires: %d" % expires, "Accept: " + CONF_TYPE, "Allow-Events: conference"])

    def subscribe(self, expires: int = 600, timeout: float = TIMER_B + 1) -> int:
        """SUBSCRIBE (Event: conference) inside the INVITE dialog (RFC 7702 §5.3/§6.1); returns the final code."""
        self.expires = expires
        tx = self._subscribe_tx(expires)
        r = self.ua._wait(lambda: tx["final"], timeout, "SUBSCRIBE response")
        self.subscribe_code = r["code"]
        if 200 <= r["code"] < 300:
            exp = r["headers"].get("expires") if r.get("headers") else None
            with self.ua.lock:
                if exp is None:
                    self.ua.notes.append("200 to SUBSCRIBE without Expires (RFC 6665 §4.1.2.1: it gives the duration)")
                elif not exp.strip().isdigit() or int(exp) > expires:
                    self.ua._violation("SUBSCRIBE: 2xx Expires %r longer than the %d asked (RFC 6665 §4.2.1.1)"
                                       % (exp, expires))
        return r["code"]

    def refer(self, target: str, timeout: float = TIMER_B + 1) -> int:
        """Invite someone (RFC 7702 §6.5, MUC-27): REFER in the INVITE dialog with Refer-To: <target>; returns the
        final code.  The progress NOTIFYs (Event: refer) land in refer_notifies."""
        s = self.session
        with self.ua.lock:
            s.local_seq += 1
            tx = self.ua._dialog_request(s, "REFER", ["Refer-To: <%s>" % target, "Accept: message/sipfrag",
                                                      "Supported: replaces"])
        return self.ua._wait(lambda: tx["final"], timeout, "REFER response")["code"]

    def leave(self, timeout: float = TIMER_B + 1) -> int:
        """BYE to the focus (RFC 7702 §6.6); returns the final response code."""
        return self.session.bye(timeout)

    def wait_bye(self, timeout: float = 10) -> bool:
        """True when the focus sent BYE (e.g. we were kicked)."""
        return self.session.wait_bye(timeout)

    def _on_notify(self, msg: dict):
        """Under ua.lock: check and apply one NOTIFY of our conference subscription (the caller replies 200)."""
        h, body, ua = msg["headers"], msg["body"], self.ua
        event = (h.get("event") or "").split(";")[0].strip().lower()
        if not h.get("event"):
            ua._violation("NOTIFY without Event header (RFC 6665 §8.2.1)")
        elif event != "conference":
            ua._violation("NOTIFY with Event %r in a conference subscription (RFC 4575 §3.1)" % h.get("event"))
        ss = h.get("subscription-state")
        sub_state = (ss or "").split(";")[0].strip().lower() or None
        if not ss:
            ua._violation("NOTIFY without Subscription-State (RFC 6665 §4.2.2)")
        elif sub_state not in ("active", "pending", "terminated"):
            ua._violation("NOTIFY Subscription-State %r (RFC 6665 §4.2.2)" % ss)
        elif sub_state != "terminated" and not re.search(r";\s*expires\s*=\s*\d+", ss):
            ua._violation("NOTIFY Subscription-State %r without expires= (RFC 6665 §4.2.2)" % ss)
        self.subscription_state = sub_state or self.subscription_state
        rec = {"version": None, "state": None, "subscription_state": ss, "headers": h, "body": body, "doc": None}
        ctype = (h.get("content-type") or "").split(";")[0].strip().lower()
        if body and ctype != CONF_TYPE:
            ua._violation("NOTIFY body with Content-Type %r, not %s (RFC 4575 §3.2)" % (ctype, CONF_TYPE))
        elif body:
            try:
                doc = parse_conference_info(body)
            except ValueError as e:
                ua._violation("NOTIFY: %s" % e)
            else:
                rec.update(version=doc["version"], state=doc["state"], doc=doc)
                problems, refresh = self.state.apply(doc)
                for p in problems:
                    ua._violation("NOTIFY conference-info: " + p)
                if refresh and sub_state != "terminated":
                    self._subscribe_tx(self.expires)   # §4.6 MUST: refresh to get full state (response not awaited)
        elif sub_state != "terminated":
            ua.notes.append("NOTIFY without a body while the subscription is %s" % sub_state)
        self.notifies.append(rec)

    # --- MSRP: nickname and messages
    def set_nickname(self, nick: str, timeout: float = 10) -> int:
        """MSRP NICKNAME with Use-Nickname: "<nick>" (RFC 7701 §7.1, no Success-/Failure-Report); returns the
        response code (200, 403, 424, 425, ...).  '' removes the nickname (§7.3)."""
        s = self.session
        tid = self.ua._send_request(s, "NICKNAME", s.to_path(), [("Use-Nickname", quote_nickname(nick))])
        code = self.ua._take(s.responses, lambda r: r[0] == tid, timeout, "NICKNAME response")[1]
        with self.ua.lock:
            self.nickname_results.append((nick, code))
            if code == 200:
                self.nickname = nick or None
        return code

    def _send_cpim(self, to_uri: str, text, content_type: str, display: Optional[str], **send_kw) -> str:
        frm = ('%s <%s>' % (quote_nickname(display), self.from_uri)) if display else "<%s>" % self.from_uri
        return self.session.send(build_cpim(frm, "<%s>" % to_uri, text, content_type), "message/cpim", **send_kw)

    def send_room(self, text, content_type: str = "text/plain", display: Optional[str] = None, **send_kw) -> str:
        """Public message (RFC 7701 §6.1): SEND message/cpim with CPIM To = room URI, From = our URI."""
        return self._send_cpim(self.room_uri, text, content_type, display, **send_kw)

    def send_private(self, nick_or_uri: str, text, content_type: str = "text/plain", display: Optional[str] = None,
                     **send_kw) -> str:
        """Private message (RFC 7701 §6.2, RFC 7702 §6.3.2): CPIM To = the participant's <user entity> from the
        roster (a nickname is looked up; a string with ':' is used as the URI as is)."""
        uri = nick_or_uri if ":" in nick_or_uri else self.entity_for(nick_or_uri)
        return self._send_cpim(uri, text, content_type, display, **send_kw)

    def wait_response(self, message_id: str, timeout: float = 10) -> int:
        return self.session.wait_response(message_id, timeout)

    def wait_message(self, pred: Optional[Callable[[dict], bool]] = None, timeout: float = 10) -> dict:
        """The next received room message (not returned before) matching pred; see _unwrap for the dict."""
        return self.ua._take(self.messages, pred, timeout, "room message in %s" % self.room_uri)

    def _nick_of(self, uri: str, outside: dict, display: Optional[str]) -> Optional[str]:
        k = uri_key(uri, outside)
        for ent, u in self.state.roster(include_gone=True).items():
            if k in [uri_key(ent)] + [uri_key(a) for a in u["aors"]] + [uri_key(e["entity"]) for e in u["endpoints"]]:
                return u["nick"]
        return k[3] or display

    def _unwrap(self, msg: dict) -> dict:
        """Under ua.lock: a reassembled SEND from the switch -> {message_id, from, from_display, nick, to, private,
        body, text, content_type, datetime, cpim_headers, raw}, checking it against RFC 7701 §5.2/§6 and RFC 3862."""
        ua, v = self.ua, self.ua._violation
        out = {"message_id": msg["message_id"], "from": None, "from_display": None, "nick": None, "to": None,
               "private": False, "body": msg["body"], "text": None, "content_type": msg["content_type"],
               "datetime": None, "cpim_headers": None, "raw": msg}
        if msg["content_type"].split(";")[0].strip().lower() != "message/cpim":
            v("room SEND %s with Content-Type %s: RFC 7701 §5.2 allows only message/cpim" % (
                msg["message_id"], msg["content_type"]))
            return out
        try:
            c = unwrap_cpim(msg["body"])
        except (ValueError, UnicodeDecodeError) as e:
            v("room SEND %s: %s" % (msg["message_id"], e))
            return out
        what = "room SEND %s CPIM" % msg["message_id"]
        for p in c["problems"]:
            v("%s: %s" % (what, p))
        h = c["headers"]
        froms, tos = h.get_all("From"), h.get_all("To")
        if len(froms) != 1 or len(tos) != 1:
            v("%s: %d From and %d To headers (one each, RFC 7701 §6.1/§6.2)" % (what, len(froms), len(tos)))
        fa, ta = parse_name_addr((froms or [""])[0]), parse_name_addr((tos or [""])[0])
        for name, a in (("From", fa), ("To", ta)):
            if not a["bracketed"] or a["params"]:
                v("%s: %s %r is not '[Formal-name] <URI>' (RFC 3862 §3.3)" % (what, name, h.get(name)))
        dt = h.get("DateTime")
        if dt is not None and not DATETIME_RE.match(dt.strip()):
            v("%s: DateTime %r is not RFC 3339 (RFC 3862 §4.6)" % (what, dt))
        inner = c["mime"].get("Content-Type")
        if not inner:
            v("%s: no Content-Type for the wrapped content (RFC 3862 §2)" % what)
        elif not type_ok(inner, self.accept_wrapped):
            v("%s: wrapped type %s not in our accept-wrapped-types %s (RFC 7701 §6.1)"
              % (what, inner, self.accept_wrapped))
        room_keys = {uri_key(self.room_uri), uri_key(self.state.entity)}
        me = self.self_entity()
        my_keys = {uri_key(self.from_uri)} | ({uri_key(me)} if me else set())
        to_key, from_key = uri_key(ta["uri"], ta["params"]), uri_key(fa["uri"], fa["params"])
        private = to_key not in room_keys
        if private and to_key not in my_keys:
            v("%s: To %r is neither the room %s nor us (RFC 7701 §6.1/§6.2)" % (what, h.get("To"), self.room_uri))
        if not private and from_key in my_keys:
            v("%s: our own message came back (RFC 7701 §6.1: everyone except the sender)" % what)
        body = c["content"]
        out.update({"from": fa["uri"], "from_display": fa["display"], "to": ta["uri"], "private": private,
                    "nick": self._nick_of(fa["uri"], fa["params"], fa["display"]), "body": body,
                    "content_type": inner, "datetime": dt, "cpim_headers": h})
        if (inner or "").lower().startswith("text/"):
            try:
                out["text"] = body.decode("utf-8")
            except UnicodeDecodeError:
                v("%s: wrapped %s is not UTF-8" % (what, inner))
        return out


class RoomUa(MsrpUa):
    """A SIP/MSRP chat room participant (RFC 7701 client, RFC 7702 §6's SIP user).  One UA may join several rooms;
    ua.rooms maps Call-ID -> RoomSession.  Extra lists: notes (odd but allowed behaviour)."""
    TRACKED_METHODS = ("SEND", "NICKNAME")

    def __init__(self, sip_port: int = 0, msrp_port: int = 0, user: str = "romeo", host: str = "127.0.0.1", **kw):
        super().__init__(sip_port, msrp_port, user, host, **kw)
        self.accept_types = "message/cpim text/plain"
        self.rooms: dict[str, RoomSession] = {}
        self.notes: list[str] = []
        self._early: dict[str, list] = {}       # SENDs that arrived before join() registered the RoomSession

    def join(self, room_uri: str, via_host_port: tuple, from_uri: Optional[str] = None, nickname: Optional[str] = None,
             subscribe: bool = True, expires: int = 600, wait_roster: bool = True, timeout: float = 10,
             accept_wrapped: str = "text/plain text/html", chatroom: str = "nickname private-messages") -> RoomSession:
        """INVITE the room (RFC 7701 §5.2 / RFC 7702 §6.1), ACK, connect + bodiless SEND; check the 2xx (isfocus,
        a=chatroom, message/cpim); then SUBSCRIBE to the conference package in the dialog, send NICKNAME if a
        nickname is given (its code: rs.nickname_results) and wait for the first NOTIFY.  SipError on a non-2xx."""
        extra = ["a=accept-wrapped-types:" + accept_wrapped, "a=chatroom" + (":" + chatroom if chatroom else "")]
        s = self.invite(room_uri, via_host_port, from_uri, accept_types=self.accept_types, sdp_extra=extra)
        with self.lock:
            rs = self.rooms[s.call_id] = RoomSession(self, s, room_uri, from_uri or self.aor, accept_wrapped)
            for msg in self._early.pop(s.call_id, []):
                rs.messages.append(rs._unwrap(msg))
            self._check_join(rs)
        if subscribe:
            rs.subscribe(expires)
        if nickname is not None:
            rs.set_nickname(nickname, timeout)
        if subscribe and wait_roster and 200 <= (rs.subscribe_code or 0) < 300:
            self._wait(lambda: rs.state.version is not None, timeout, "first NOTIFY from %s" % room_uri)
        return rs

    def _check_join(self, rs: RoomSession):
        """RFC 7701 §5.2: the 2xx Contact carries isfocus, the answer accepts message/cpim and has a=chatroom."""
        contact = rs.session.invite_response["headers"].get("contact", "")
        if not re.search(r";\s*isfocus\b", contact.rsplit(">", 1)[-1] if ">" in contact else contact, re.I):
            self._violation("200 to the room INVITE: Contact %r without ;isfocus (RFC 7701 §5.2, RFC 4579)" % contact)
        if not type_ok("message/cpim", rs.session.remote_accept_types) or "message/cpim" not in [
                t.split(";")[0].lower() for t in rs.session.remote_accept_types]:
            self._violation("room SDP answer accept-types %s without message/cpim (RFC 7701 §5.2)"
                            % rs.session.remote_accept_types)
        if rs.chatroom_tokens is None:
            self._violation("room SDP answer without a=chatroom (RFC 7701 §8, RFC 7702 §6.1)")
        elif len(set(rs.chatroom_tokens)) != len(rs.chatroom_tokens):
            self._violation("a=chatroom repeats a token: %s (RFC 7701 §8)" % rs.chatroom_tokens)

    # hooks from MsrpUa (called under self.lock)
    def _dialog_hook(self, s: Session, msg: dict) -> bool:
        rs = self.rooms.get(s.call_id)
        if rs is None or msg["method"] != "NOTIFY":
            return False
        event = (msg["headers"].get("event") or "").split(";")[0].strip().lower()
        if event == "refer":                          # the implicit subscription of our REFER (RFC 3515 §2.4.4)
            rs.refer_notifies.append({"headers": msg["headers"], "body": msg["body"]})
            if not msg["headers"].get("subscription-state"):
                self._violation("NOTIFY (refer) without Subscription-State (RFC 6665 §4.2.2)")
        else:
            rs._on_notify(msg)
        self._reply(msg, 200)
        return True

    def _on_message_complete(self, s: Session, msg: dict, out: list) -> None:
        rs = self.rooms.get(s.call_id)
        if rs is None:
            self._early.setdefault(s.call_id, []).append(msg)
        else:
            rs.messages.append(rs._unwrap(msg))


# ---------------------------------------------------------------------------------------- test focus
class Participant:
    """One participant's SIP dialog + MSRP session with the TestFocus, and its place in a room."""

    def __init__(self, focus: "TestFocus", room: str, s: Session, aor: str, display: Optional[str], ruri: str,
                 tokens: list, wrapped: list, media_id: int):
        self.focus, self.room, self.session, self.aor, self.ruri = focus, room, s, aor, ruri
        self.nick = display or uri_key(aor)[1] or "guest"
        self.chat_tokens, self.wrapped, self.media_id = tokens, wrapped, media_id
        self.subscribed, self.version, self.sub_deadline = False, -1, 0.0
        self.joined = cpim_datetime()
        self.routes: dict[str, list] = {}         # Message-ID -> recipients decided on the first chunk

    @property
    def entity(self) -> str:
        """RFC 7702 §6.2 in-room URI sip:room@domain;gr=Nick, or (entity_mode 'aor') the participant's own URI."""
        return self.aor if self.focus.entity_mode == "aor" else in_room_uri(self.focus.room_uri(self.room), self.nick)

    def info(self) -> dict:
        endpoint = self.entity if self.focus.entity_mode != "aor" else _uri_of(self.session.remote_target)
        return {"nick": self.nick, "aor": self.aor, "endpoint": endpoint, "media_id": self.media_id,
                "joined": self.joined}


class TestFocus(MsrpUa):
    """An RFC 7701 conference focus + MSRP switch for chat rooms sip:<room>@<domain> (RFC 7702 §5's SIP side).

    rooms: {name: {subject, private_messages (True), nicknames (True), reserved ([nicks])}}.
    entity_mode: 'in-room' (<user entity="sip:room@domain;gr=Nick">, RFC 7702 §6.2) or 'aor' (the participant's
    own URI, RFC 7701 §9.4/§9.6).  from_mode: 'in-room' (copies carry From: "Nick" <entity> and, for private ones,
    To: <recipient's URI>, RFC 7702 §6.3.2) or 'as-sent' (content unmodified, RFC 7701 §6.1)."""
    TRACKED_METHODS = ("SEND",)
    __test__ = False                                  # not a pytest test class despite its name

    def __init__(self, sip_port: int = 0, msrp_port: int = 0, host: str = "127.0.0.1", rooms: Optional[dict] = None,
                 domain: Optional[str] = None, entity_mode: str = "in-room", from_mode: str = "in-room"):
        super().__init__(sip_port, msrp_port, "focus", host)
        self.accept_types = "message/cpim"            # RFC 7701 §5.2: the answer's accept-types is message/cpim
        self.domain, self.entity_mode, self.from_mode = domain or host, entity_mode, from_mode
        self.rooms = {name: {"subject": cfg.get("subject", ""), "private_messages": cfg.get("private_messages", True),
                             "nicknames": cfg.get("nicknames", True), "reserved": list(cfg.get("reserved", ())),
                             "participants": {}}
                      for name, cfg in (rooms or {"room": {}}).items()}
        self.notes: list[str] = []
        self.log: list[dict] = []                     # {room, kind room|private|rejected, from, to, code, body}
        self.refers: list[dict] = []                  # REFER requests (RFC 7702 §5.7): {room, refer_to}
        # Deliberate RFC faults, to test a participant's checks: "no-isfocus" (Contact), "echo" (room messages also
        # go back to the sender), "version-skip" (partial NOTIFY versions +2), "no-namespace" (conference-info).
        self.faults: set[str] = set()
        self._media_ids = iter(range(1000, 10 ** 9))

    def room_uri(self, room: str) -> str:
        return "sip:%s@%s" % (room, self.domain)

    def _all(self):
        return [p for r in self.rooms.values() for p in r["participants"].values()]

    def _participant(self, call_id: str) -> Optional[Participant]:
        return next((p for p in self._all() if p.session.call_id == call_id), None)

    def participants(self, room: Optional[str] = None) -> list[dict]:
        """[{room, nick, aor, entity, call_id, subscribed, connected}] in join order."""
        with self.lock:
            return [{"room": p.room, "nick": p.nick, "aor": p.aor, "entity": p.entity, "call_id": p.session.call_id,
                     "subscribed": p.subscribed, "connected": p.session.conn is not None}
                    for p in self._all() if room is None or p.room == room]

    def wait_participants(self, pred: Callable[[list], bool], room: Optional[str] = None, timeout: float = 10) -> list:
        self._wait(lambda: pred(self.participants(room)), timeout, "participants condition")
        return self.participants(room)

    # --- SIP: INVITE, SUBSCRIBE/NOTIFY, BYE, REFER
    def _on_invite(self, msg: dict):
        """A participant joins: 404 unknown room, 488 without TCP/MSRP or message/cpim (RFC 7701 §5.2), else 200
        with Contact ...;isfocus and an answer with accept-types message/cpim and a=chatroom."""
        h, call_id, now = msg["headers"], msg["headers"].get("call-id", ""), time.monotonic()
        self._reply(msg, 100)

        def final(code, reason=None, **kw):
            data = self._reply(msg, code, reason, to_tag=kw.pop("tag", secrets.token_hex(4)), **kw)
            self._retx[call_id] = [data, msg["src"], now + T1, T1, now + TIMER_B]   # until the ACK (§17.2.1)
        room = uri_key(msg["uri"])[1]
        if room not in self.rooms:
            return final(404, "Not Found")
        text = msg["body"].decode("utf-8", "replace")
        offer, attrs = parse_sdp(text), media_attrs(text)
        if not offer["m"] or offer["m"][2:3] != [self.proto()]:
            return final(488)
        if not type_ok("message/cpim", offer["accept_types"]):
            return final(488, "Not Acceptable Here (no message/cpim, RFC 7701 §5.2)")
        if not h.get("contact") or (h.get("content-type") or "").split(";")[0].strip().lower() != "application/sdp":
            self._violation("SIP: INVITE %s without Contact or with Content-Type %r" % (call_id, h.get("content-type")))
        self._check_sdp(offer, "room SDP offer")
        if "chatroom" not in attrs:
            self._violation("room SDP offer without a=chatroom (RFC 7702 §5.1 / §6.1)")
        s = Session(self, "uas", call_id)
        s.local_accept, s.sdp_offer = ["message/cpim"], text
        s.remote_tag, s.remote_seq = _tag_of(h.get("from", "")), int(h.get("cseq", "1").split()[0])
        s.local_from, s.remote_to = h.get("to", "") + ";tag=" + s.local_tag, h.get("from", "")
        s.remote_target, s.peer_addr = _uri_of(h.get("contact", "")) or _uri_of(h.get("from", "")), msg["src"]
        s.route_set = [r.strip() for v in h.get_all("record-route") for r in v.split(",")]
        s.remote_path, s.remote_accept_types = offer["path"], offer["accept_types"]
        setup = offer["setup"] and {"passive": "active", "actpass": self.setup_answer}.get(offer["setup"], "passive")
        s.active = setup == "active"
        isfocus = "" if "no-isfocus" in self.faults else ";isfocus"
        s.contact = "<sip:%s@%s:%d>%s" % (room, self.host, self.sip_port, isfocus)
        cfg = self.rooms[room]
        tokens = ["nickname"] * cfg["nicknames"] + ["private-messages"] * cfg["private_messages"]
        s.sdp_answer = build_sdp(self.msrp_port, [s.local_uri], "message/cpim", None, setup, self.host,
                                 ["a=accept-wrapped-types:text/plain text/html",
                                  "a=chatroom" + (":" + " ".join(tokens) if tokens else "")])
        self.sessions[call_id] = self._by_sid[s.local_sid] = s
        fa = parse_name_addr(h.get("from", ""))
        p = Participant(self, room, s, fa["uri"], fa["display"], msg["uri"], (attrs.get("chatroom") or [""])[0].split(),
                        (attrs.get("accept-wrapped-types") or [""])[0].split() + offer["accept_types"],
                        next(self._media_ids))
        p.nick = self._free_nick(room, p.nick)
        cfg["participants"][call_id] = p
        self._broadcast(room, [(p.entity, "full", p.info())], exclude=p)
        final(200, tag=s.local_tag, body=s.sdp_answer.encode(), ctype="application/sdp",
              extra=["Contact: " + s.contact] + ["Record-Route: " + v for v in h.get_all("record-route")])

    def _free_nick(self, room: str, nick: str) -> str:
        """A temporary nickname nobody uses (RFC 7701 §7.1: never the same nickname for two sessions automatically)."""
        taken = {prepare_nickname(q.nick) for q in self.rooms[room]["participants"].values()}
        taken |= {prepare_nickname(n) for n in self.rooms[room]["reserved"]}
        cand, i = nick, 1
        while prepare_nickname(cand) in taken:
            i += 1
            cand = "%s%d" % (nick, i)
        return cand

    def _full_doc(self, p: Participant) -> bytes:
        room = self.rooms[p.room]
        users = [(q.entity, "full", q.info()) for q in room["participants"].values()]
        return conference_info_xml(self.room_uri(p.room), p.version, "full", users, room["subject"])

    def _notify(self, p: Participant, body: bytes, terminated: Optional[str] = None):
        """NOTIFY in p's INVITE dialog (RFC 6665 §4.2.2); the caller has set p.version and holds the lock."""
        s = p.session
        s.local_seq += 1
        if "no-namespace" in self.faults:
            body = body.replace(b' xmlns="%s"' % NS_CONF.encode(), b"")
        state = ("terminated;reason=" + terminated if terminated else
                 "active;expires=%d" % max(0, int(p.sub_deadline - time.monotonic())))
        self._dialog_request(s, "NOTIFY", ["Event: conference", "Subscription-State: " + state], body, CONF_TYPE)

    def _broadcast(self, room: str, users: list, exclude: Optional[Participant] = None, subject=None):
        """A partial NOTIFY (version +1, RFC 4575 §5.2) to every subscriber of the room except `exclude`."""
        for q in list(self.rooms[room]["participants"].values()):
            if q is exclude or not q.subscribed or q.session.closed:
                continue
            q.version += 2 if "version-skip" in self.faults else 1
            self._notify(q, conference_info_xml(self.room_uri(room), q.version, "partial", users, subject))

    def _dialog_hook(self, s: Session, msg: dict) -> bool:
        p, method, h = self._participant(s.call_id), msg["method"], msg["headers"]
        if p is None:
            return False
        if method == "SUBSCRIBE":
            event = (h.get("event") or "").split(";")[0].strip().lower()
            accept = [a.split(";")[0].strip().lower() for a in ",".join(h.get_all("accept")).split(",") if a.strip()]
            if event != "conference":
                self._reply(msg, 489, "Bad Event", extra=["Allow-Events: conference"])
            elif accept and CONF_TYPE not in accept:
                self._reply(msg, 406, "Not Acceptable")
            else:
                self._on_subscribe(p, msg)
            return True
        if method == "BYE":                           # the participant leaves; the default code answers 200
            self._remove(p)
        elif method == "REFER":                       # RFC 7702 §5.7/§6.5: accept, one NOTIFY, subscription over
            self.refers.append({"room": p.room, "refer_to": _uri_of(h.get("refer-to", ""))})
            self._reply(msg, 202, "Accepted", extra=["Contact: " + s.contact])
            s.local_seq += 1
            self._dialog_request(s, "NOTIFY", ["Event: refer", "Subscription-State: terminated;reason=noresource"],
                                 b"SIP/2.0 100 Trying\r\n", "message/sipfrag;version=2.0")
            return True
        return False

    def _on_subscribe(self, p: Participant, msg: dict):
        """RFC 4575 §3.3 (default 3600 s), RFC 6665 §4.2.1: 200 with Expires, then a full NOTIFY at once."""
        exp_hdr = msg["headers"].get("expires")
        expires = min(int(exp_hdr), 3600) if exp_hdr and exp_hdr.strip().isdigit() else 3600
        self._reply(msg, 200, extra=["Expires: %d" % expires, "Contact: " + p.session.contact])
        p.version += 1
        if expires == 0:                              # unsubscribe: last NOTIFY with the state, then no more
            p.subscribed = False
            self._notify(p, self._full_doc(p), terminated="timeout")
        else:
            p.subscribed, p.sub_deadline = True, time.monotonic() + expires
            self._notify(p, self._full_doc(p))

    def _remove(self, p: Participant):
        room = self.rooms[p.room]
        if room["participants"].pop(p.session.call_id, None):
            p.subscribed = False
            self._broadcast(p.room, [(p.entity, "deleted", None)])

    def kick(self, nick: str, room: Optional[str] = None, timeout: float = TIMER_B + 1) -> int:
        """Remove a participant: partial NOTIFY (user deleted) to the others, then BYE to it; returns the BYE code."""
        with self.lock:
            key = prepare_nickname(nick)
            p = next((q for q in self._all() if (room is None or q.room == room) and prepare_nickname(q.nick) == key),
                     None)
            if p is None:
                raise KeyError("no participant %r (have %s)" % (nick, [q.nick for q in self._all()]))
            self._remove(p)
        return p.session.bye(timeout)

    def set_subject(self, room: str, subject: str):
        """Change the subject: a partial NOTIFY carrying only <conference-description> (atomic, RFC 4575 §4.6)."""
        with self.lock:
            self.rooms[room]["subject"] = subject
            self._broadcast(room, [], subject=subject)

    # --- MSRP: NICKNAME and SEND fan-out (RFC 7701 §6, §7)
    def _on_other_request(self, s: Session, f, respond) -> None:
        p = self._participant(s.call_id)
        if f.method != "NICKNAME" or p is None:
            return respond(501, "Not Implemented")
        h, what = f.headers, "NICKNAME %s" % f.tid
        if "Success-Report" in h or "Failure-Report" in h:
            self._violation("%s: carries Success-Report/Failure-Report (RFC 7701 §7.1)" % what)
        if f.body is not None:
            self._violation("%s: has a body" % what)
        if not self.rooms[p.room]["nicknames"]:
            return respond(403, "Forbidden (no nicknames in this room)")
        raw = h.get("Use-Nickname")
        nick = unquote_nickname(raw)
        if nick is None or len(nick.encode()) > 1023:
            self._violation("%s: Use-Nickname %r is not a quoted-string of at most 1023 octets (RFC 7701 §7.1)"
                            % (what, raw))
            return respond(424, "Nickname usage failed (malformed)")
        if nick == "":                                # §7.3: an empty quoted string drops the nickname
            nick = self._free_nick(p.room, uri_key(p.aor)[1] or "guest")
        try:
            key = prepare_nickname(nick)
        except ValueError as e:                       # a user's choice, not a protocol error: 424 only
            self.notes.append("%s: %r refused with 424: %s" % (what, nick, e))
            return respond(424, "Nickname usage failed")
        others = [q for q in self.rooms[p.room]["participants"].values()
                  if q is not p and uri_key(q.aor)[:3] != uri_key(p.aor)[:3]]   # §7.1: same user may reuse it
        taken = {prepare_nickname(n) for n in self.rooms[p.room]["reserved"]}
        taken |= {prepare_nickname(q.nick) for q in others}
        if key in taken:
            return respond(425, "Nickname reserved or already in use")
        old = p.entity
        p.nick = nick
        respond(200, "OK")
        change = [(old, "deleted", None)] if old != p.entity else []
        self._broadcast(p.room, change + [(p.entity, "full", p.info())])

    def _route(self, p: Participant, to_value: str):
        """CPIM To -> ('room', [participants]) or ('private', [participants]) or (code, comment) (RFC 7701 §6.2)."""
        room = self.rooms[p.room]
        a = parse_name_addr(to_value)
        key = uri_key(a["uri"], a["params"])
        if key in (uri_key(self.room_uri(p.room)), uri_key(p.ruri)):
            return "room", [q for q in room["participants"].values() if q is not p or "echo" in self.faults]
        if not room["private_messages"]:
            return 403, "Forbidden (no private messages in this room)"
        targets = [q for q in room["participants"].values() if key in (uri_key(q.entity), uri_key(q.aor))]
        if not targets:
            return 404, "Not Found"
        if any("private-messages" not in q.chat_tokens for q in targets):
            return 428, "Recipient does not support private messages"
        return "private", targets

    def _send_verdict(self, s: Session, f, start: int, body: bytes):
        """On the first chunk (it holds the CPIM headers, RFC 7701 §6.1): 403 for several To or a From that is not
        the sender's (§6.1, §6.3), 404/428 for private ones (§6.2); the recipients are fixed here."""
        p = self._participant(s.call_id)
        if p is None or start != 1 or b"\r\n\r\n" not in body:
            return None                               # later chunks follow the first one's routing
        problems: list[str] = []
        h = _header_block(body.partition(b"\r\n\r\n")[0], "CPIM", problems)
        what = "SEND %s CPIM" % f.headers.get("Message-ID")
        for pr in problems:
            self._violation("%s: %s" % (what, pr))
        froms, tos = h.get_all("From"), h.get_all("To")
        if len(tos) > 1:
            verdict = (403, "Forbidden (several CPIM To, RFC 7701 §6.1)")
        elif not froms or not tos:
            self._violation("%s: no CPIM From or To (RFC 7701 §6.1)" % what)
            verdict = (400, "Bad Request")
        else:
            fa, ta = parse_name_addr(froms[0]), parse_name_addr(tos[0])
            for name, a in (("From", fa), ("To", ta)):
                if not a["bracketed"] or a["params"]:
                    self._violation("%s: %s %r is not '[Formal-name] <URI>' (RFC 3862 §3.3)" % (what, name, a["uri"]))
            if uri_key(fa["uri"], fa["params"])[:3] not in (uri_key(p.aor)[:3], uri_key(p.entity)[:3]):
                self._violation("%s: From %r is not the sender %s (RFC 7701 §6.1, §6.3)" % (what, froms[0], p.aor))
                verdict = (403, "Forbidden (CPIM From is not yours)")
            else:
                verdict = self._route(p, tos[0])
        if isinstance(verdict[0], int):
            self.log.append({"room": p.room, "kind": "rejected", "from": p.nick, "to": tos, "code": verdict[0],
                             "body": body})
            return verdict
        p.routes[f.headers.get("Message-ID")] = list(verdict)
        return None

    def _on_message_complete(self, s: Session, msg: dict, out: list) -> None:
        """Fan a public message out to everyone but the sender (RFC 7701 §6.1), a private one to its recipient(s)."""
        p = self._participant(s.call_id)
        if p is None:
            return
        route = p.routes.pop(msg["message_id"], None)
        try:
            c = unwrap_cpim(msg["body"])
        except (ValueError, UnicodeDecodeError) as e:
            return self._violation("SEND %s: %s" % (msg["message_id"], e))
        if route is None:                             # the first chunk was too short to route on
            route = self._route(p, c["headers"].get("To", ""))
            if isinstance(route[0], int):
                self.notes.append("SEND %s unroutable after a 200 (%d %s)" % (msg["message_id"], *route))
                return
        kind, targets = route
        inner = c["mime"].get("Content-Type") or "text/plain"
        body = msg["body"]
        if self.from_mode == "in-room":
            new = {"From": '%s <%s>' % (quote_nickname(p.nick), p.entity)}
            if kind == "private":
                new["To"] = "<%s>" % targets[0].aor
            body = rewrite_cpim(body, new)
        self.log.append({"room": p.room, "kind": kind, "from": p.nick, "to": [q.nick for q in targets], "code": 200,
                         "body": c["content"]})
        for q in targets:
            if q.session.closed or q.session.conn is None:
                continue                              # not connected (yet) or gone: nothing to deliver on
            if not type_ok(inner, q.wrapped):         # RFC 7701 §6.1: SHOULD NOT forward what q cannot take
                self.notes.append("not forwarded to %s: %s not accepted" % (q.nick, inner))
                continue
            out.append(lambda q=q: self._deliver(q, body))

    def _deliver(self, q: Participant, body: bytes):
        try:
            q.session.send(body, "message/cpim")
        except (OSError, ValueError) as e:
            with self.lock:
                self.notes.append("delivery to %s failed: %r" % (q.nick, e))


# ---------------------------------------------------------------------------------------- self-test
def _unit_checks(check):
    """The parsers and RFC 4575 §4.6 bookkeeping without any network."""
    def doc(version, state, users, subject=None):
        return parse_conference_info(conference_info_xml("sip:r@h", version, state, users, subject))
    info = lambda n: {"nick": n, "aor": "sip:%s@x" % n.lower(), "endpoint": "sip:r@h;gr=" + n,  # noqa: E731
                      "media_id": 1, "joined": cpim_datetime()}
    st = ConferenceState()
    check(st.apply(doc(0, "full", [("sip:r@h;gr=A", "full", info("A"))], "s")) == ([], False)
          and list(st.roster()) == ["sip:r@h;gr=A"] and st.subject == "s", "unit: full document -> roster")
    st.apply(doc(1, "partial", [("sip:r@h;gr=B", "full", info("B"))]))
    check(sorted(u["nick"] for u in st.roster().values()) == ["A", "B"], "unit: partial adds a user")
    problems, refresh = st.apply(doc(1, "partial", [("sip:r@h;gr=A", "deleted", None)]))
    check(problems and "not increasing" in problems[0] and len(st.roster()) == 2,
          "unit: repeated version reported, ignored")
    problems, refresh = st.apply(doc(3, "partial", [("sip:r@h;gr=A", "deleted", None)]))
    check(problems and refresh and len(st.roster()) == 2,
          "unit: version gap reported, partial discarded, refresh asked")
    check(st.apply(doc(4, "full", [("sip:r@h;gr=B", "full", info("B"))]))[0] and list(st.roster()) == ["sip:r@h;gr=B"],
          "unit: full after the gap replaces the roster (gap still reported)")
    bare = b'<conference-info version="0" state="full" entity="sip:r@h"><users/></conference-info>'
    try:
        parse_conference_info(bare)
        check(False, "unit: conference-info without namespace rejected")
    except ValueError:
        check(True, "unit: conference-info without its namespace rejected (RFC 7702 examples omit it)")
    check(unquote_nickname('"a \\"b\\" \\\\ c"') == 'a "b" \\ c' and unquote_nickname("abc") is None,
          "unit: Use-Nickname quoted-string")
    check(uri_key("sip:room@H:5060;transport=tcp") == uri_key("sip:room@h")
          and uri_key("sip:r@h;gr=Nick%20X") == uri_key("sip:r@h", {"gr": "Nick X"}) != uri_key("sip:r@h"),
          "unit: URI comparison (port/transport ignored, gr kept)")


def _other_modes(check, uas):
    """A focus with entity_mode 'aor' + from_mode 'as-sent', then one with faults the participants must report."""
    a_ua, b_ua, c_ua = uas
    focus = TestFocus(entity_mode="aor", from_mode="as-sent").start()
    try:
        via, room = ("127.0.0.1", focus.sip_port), focus.room_uri("room")
        a = a_ua.join(room, via, "sip:alice@a.example", nickname="Alice")
        b = b_ua.join(room, via, "sip:bob@b.example", nickname="Bob")
        a.wait_roster(lambda r: sorted(r) == ["sip:alice@a.example", "sip:bob@b.example"])
        check(b.entity_for("Alice") == "sip:alice@a.example", "entity_mode aor: <user entity> is the participant's URI")
        check(b.set_nickname("Robert") == 200, "nick change in aor mode: 200")
        a.wait_roster(lambda r: r["sip:bob@b.example"]["nick"] == "Robert")
        check(True, "aor mode: the same entity, new display-text")
        a.send_room("as sent")
        m = b.wait_message()
        check(m["from"] == "sip:alice@a.example" and m["nick"] == "Alice" and m["text"] == "as sent",
              "from_mode as-sent: CPIM From unchanged, nick found through the roster")
        a.send_private("Robert", "direct")
        m = b.wait_message()
        check(m["private"] and m["to"] == "sip:bob@b.example", "as-sent private message: To = recipient's URI")
        a.leave(), b.leave()
    finally:
        focus.stop()
    bad = TestFocus().start()
    bad.faults = {"no-isfocus", "echo", "version-skip"}
    try:
        via, room = ("127.0.0.1", bad.sip_port), bad.room_uri("room")
        a = a_ua.join(room, via, "sip:alice@a.example", nickname="Alice")
        b = b_ua.join(room, via, "sip:bob@b.example", nickname="Bob")
        a.send_room("boomerang")
        b.wait_message(), a.wait_message()
        bad.faults = {"no-namespace"}
        b.set_nickname("Bobby")
        time.sleep(0.3)
        with a_ua.lock:
            found = " | ".join(a_ua.violations)
        for what, text in (("missing isfocus", "without ;isfocus"), ("echo", "own message came back"),
                           ("version skip", "version jumps"), ("no namespace", "not {urn:ietf:params:xml:ns:")):
            check(text in found, "a faulty focus is reported: " + what)
        check(len([n for n in a.notifies if n["state"] == "full"]) >= 2,
              "each version gap led to a refresh SUBSCRIBE and a full NOTIFY")
        a.leave(), b.leave()
        time.sleep(0.3)
        for ua in (a_ua, b_ua):                       # the faults also broke the later NOTIFYs: all seen, expected
            with ua.lock:
                ua.violations.clear()
    finally:
        bad.stop()


def selftest() -> int:
    """Three RoomUa participants against a TestFocus on free ports; prints SELFTEST OK and returns the exit code."""
    focus = TestFocus(rooms={"room": {"subject": "Today in Verona"}, "quiet": {"private_messages": False}}).start()
    uas = [RoomUa(user=n).start() for n in ("alice", "bob", "carol")]
    a_ua, b_ua, c_ua = uas

    def check(cond, what):
        if not cond:
            raise AssertionError(what)
        print("ok   " + what, flush=True)

    def quiet(rs, secs=0.3):
        time.sleep(secs)
        with rs.ua.lock:
            return [m for i, m in enumerate(rs.messages) if (id(rs.messages), i) not in rs.ua._taken]
    try:
        _unit_checks(check)
        via, room = ("127.0.0.1", focus.sip_port), focus.room_uri("room")
        t0 = time.monotonic()
        a = a_ua.join(room, via, "sip:alice@a.example", nickname="Alice")
        check(a.nickname_results == [("Alice", 200)] and a.chatroom_tokens == ["nickname", "private-messages"],
              "Alice joined (isfocus, a=chatroom, NICKNAME 200)")
        check(a.wait_roster(lambda r: [u["nick"] for u in r.values()] == ["Alice"]) and a.subject == "Today in Verona"
              and a.state.version == 1, "Alice's full roster: herself + subject (versions 0 full, 1 partial)")
        b = b_ua.join(room, via, "sip:bob@b.example", nickname="Bob")
        check(b.nicks() == ["Alice", "Bob"] or b.wait_roster(lambda r: len(r) == 2), "Bob's full roster: Alice, Bob")
        a.wait_roster(lambda r: sorted(u["nick"] for u in r.values()) == ["Alice", "Bob"])
        check(all(n["version"] == i for i, n in enumerate(a.notifies)), "Alice got partial NOTIFYs, versions +1 each")
        c = c_ua.join(room, via, "sip:carol@c.example", nickname="bob")
        check(c.nickname_results == [("bob", 425)] and c.set_nickname("Carol") == 200,
              "Carol: NICKNAME 'bob' -> 425 (case-folded clash), 'Carol' -> 200")
        for rs in (a, b, c):
            rs.wait_roster(lambda r: sorted(u["nick"] for u in r.values()) == ["Alice", "Bob", "Carol"])
        check(True, "all three rosters: Alice, Bob, Carol")
        mid = a.send_room("Hello room \u263a")
        check(a.wait_response(mid) == 200, "room message: 200 from the switch")
        mb, mc = b.wait_message(), c.wait_message()
        check(mb["text"] == mc["text"] == "Hello room \u263a" and not mb["private"] and mb["nick"] == "Alice"
              and mb["content_type"] == "text/plain" and mb["datetime"], "room message fanned out to Bob and Carol")
        check(quiet(a) == [], "no echo to the sender (RFC 7701 §6.1)")
        mid = b.send_private("Carol", "psst")
        check(b.wait_response(mid) == 200, "private message: 200 from the switch")
        m = c.wait_message()
        check(m["private"] and m["text"] == "psst" and m["nick"] == "Bob", "private message reached Carol only")
        check(quiet(a) == [] and quiet(b, 0) == [], "nobody else got the private message")
        check(b.wait_response(b.send_private("sip:room@127.0.0.1;gr=Nobody", "?")) == 404, "private to nobody -> 404")
        mid = b.session.send("not wrapped", "text/plain")
        check(b.wait_response(mid) == 415, "SEND without message/cpim -> 415 (RFC 7701 §6.3)")
        with focus.lock:
            check(len(focus.violations) == 1 and "accept-types" in focus.violations[0], "focus reported that SEND")
            focus.violations.clear()
        check(b.set_nickname("Bobby") == 200, "Bob -> Bobby: 200")
        for rs in (a, c):
            rs.wait_roster(lambda r: sorted(u["nick"] for u in r.values()) == ["Alice", "Bobby", "Carol"])
        check(True, "nick change seen by Alice and Carol (old entity deleted, new one added)")
        check(focus.kick("Carol") == 200 and c.wait_bye(5), "kick Carol: the focus sent BYE")
        for rs in (a, b):
            rs.wait_roster(lambda r: sorted(u["nick"] for u in r.values()) == ["Alice", "Bobby"])
        check(True, "Alice and Bobby saw Carol deleted")
        check(a.leave() == 200, "Alice leaves: BYE 200")
        b.wait_roster(lambda r: [u["nick"] for u in r.values()] == ["Bobby"])
        check(focus.participants("room")[0]["nick"] == "Bobby", "Bobby saw Alice leave; the focus has only Bobby")
        try:
            a_ua.join(focus.room_uri("nosuchroom"), via, "sip:alice@a.example")
            check(False, "unknown room rejected")
        except SipError as e:
            check(e.code == 404, "INVITE to an unknown room -> 404")
        q = c_ua.join(focus.room_uri("quiet"), via, "sip:carol@c.example", nickname="Carol")
        q2 = a_ua.join(focus.room_uri("quiet"), via, "sip:alice@a.example", nickname="Alice")
        check(q.chatroom_tokens == ["nickname"], "room without private messages: a=chatroom:nickname")
        check(q2.wait_response(q2.send_private("Carol", "hi")) == 403, "private message there -> 403")
        check(b.refer("sip:benvolio@example.com") == 202 and focus.refers[-1]["refer_to"] == "sip:benvolio@example.com"
              and b.ua._wait(lambda: b.refer_notifies, 5, "refer NOTIFY")[0]["body"].startswith(b"SIP/2.0 100"),
              "REFER -> 202, NOTIFY Event: refer with SIP/2.0 100 Trying")
        check(b.leave() == 200 and q.leave() == 200 and q2.leave() == 200, "everyone left")
        _other_modes(check, uas)
        time.sleep(0.3)
        for ua in uas:
            check(ua.violations == [], "%s: no violations" % ua.user)
        check(focus.violations == [], "focus: no violations")
        check(time.monotonic() - t0 < 25, "took %.1f s" % (time.monotonic() - t0))
    except (AssertionError, TimeoutError, SipError, OSError, KeyError) as e:
        print("SELFTEST FAILED: %r" % e)
        for ua in uas + [focus]:
            print("%s violations: %s" % (ua.user, ua.violations))
        return 1
    finally:
        for ua in uas + [focus]:
            ua.stop()
    print("SELFTEST OK")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["selftest"]:
        print(__doc__)
        print("usage: msrp_room.py selftest", file=sys.stderr)
        return 2
    return selftest()


if __name__ == "__main__":
    sys.exit(main())
