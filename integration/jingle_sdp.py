"""SDP <-> Jingle translation and checks for jingle_peer.py (the suite's independent XMPP call peer; JINGLE_PEER.md).

Pure Python (stdlib only), written from the XEP texts in ../shared/spec/xep/, never from stox's Rust translator:
  XEP-0166 (actions, reasons), XEP-0167 (payload-type, parameter, rtcp-mux), XEP-0176 (ICE-UDP candidates),
  XEP-0320 (DTLS fingerprint + setup), XEP-0293 (rtcp-fb), XEP-0294 (rtp-hdrext), XEP-0338 (BUNDLE group),
  XEP-0339 (ssrc sources), XEP-0115 §5.1 (caps verification string).
"""
from __future__ import annotations

import base64
import hashlib
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional

NS_CLIENT = "jabber:client"
NS_JINGLE = "urn:xmpp:jingle:1"
NS_JINGLE_ERRORS = "urn:xmpp:jingle:errors:1"
NS_RTP = "urn:xmpp:jingle:apps:rtp:1"
NS_RTP_INFO = "urn:xmpp:jingle:apps:rtp:info:1"
NS_RTP_AUDIO = "urn:xmpp:jingle:apps:rtp:audio"
NS_ICE = "urn:xmpp:jingle:transports:ice-udp:1"
NS_RAW_UDP = "urn:xmpp:jingle:transports:raw-udp:1"
NS_DTLS = "urn:xmpp:jingle:apps:dtls:0"
NS_RTCP_FB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_GROUP = "urn:xmpp:jingle:apps:grouping:0"
NS_SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_JMI = "urn:xmpp:jingle-message:0"
NS_HINTS = "urn:xmpp:hints"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

# what disco#info (and so the XEP-0115 hash) advertises
FEATURES = [NS_JINGLE, NS_RTP, NS_RTP_AUDIO, NS_ICE, NS_DTLS, NS_RTCP_FB, NS_HDREXT, NS_GROUP, NS_SSMA, NS_JMI,
            NS_RTP_INFO]
# the same for media="plain" (Raw-UDP + RTP/AVP PCMU, no ICE, no DTLS)
PLAIN_FEATURES = [NS_JINGLE, NS_RTP, NS_RTP_AUDIO, NS_RAW_UDP, NS_JMI, NS_RTP_INFO]
# XEP-0166 §7.2 actions
ACTIONS = {"content-accept", "content-add", "content-modify", "content-reject", "content-remove", "description-info",
           "security-info", "session-accept", "session-info", "session-initiate", "session-terminate",
           "transport-accept", "transport-info", "transport-reject", "transport-replace"}
# XEP-0166 §7.4 reason conditions
REASONS = {"alternative-session", "busy", "cancel", "connectivity-error", "decline", "expired", "failed-application",
           "failed-transport", "general-error", "gone", "incompatible-parameters", "media-error", "security-error",
           "success", "timeout", "unsupported-applications", "unsupported-transports"}


def q(ns: str, name: str) -> str:
    return "{%s}%s" % (ns, name)


def other(role: str) -> str:
    return "responder" if role == "initiator" else "initiator"


# ============================================================================ SDP (RFC 4566) model
@dataclass
class SdpMedia:
    m: str                                  # the m= value: "audio 9 UDP/TLS/RTP/SAVPF 96 0"
    lines: list = field(default_factory=list)   # (type, value) after m=, e.g. ("a", "mid:0"), ("c", "IN IP4 ...")

    @property
    def kind(self) -> str:
        return self.m.split()[0]

    @property
    def formats(self) -> list[str]:
        return self.m.split()[3:]

    def attrs(self, name: str) -> list[str]:
        """Values of a=name:value (a=name alone gives '')."""
        out = []
        for t, v in self.lines:
            if t != "a":
                continue
            k, _, val = v.partition(":")
            if k == name:
                out.append(val)
        return out

    def attr(self, name: str) -> Optional[str]:
        vals = self.attrs(name)
        return vals[0] if vals else None


@dataclass
class Sdp:
    session: list = field(default_factory=list)
    media: list = field(default_factory=list)

    def attrs(self, name: str) -> list[str]:
        return SdpMedia("x 0 x", self.session).attrs(name)


def parse_sdp(text: str) -> Sdp:
    sdp = Sdp()
    cur = None
    for raw in text.replace("\r\n", "\n").split("\n"):
        if len(raw) < 2 or raw[1] != "=":
            continue
        t, v = raw[0], raw[2:].strip()
        if t == "m":
            cur = SdpMedia(v)
            sdp.media.append(cur)
        elif cur is None:
            sdp.session.append((t, v))
        else:
            cur.lines.append((t, v))
    return sdp


DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def senders_from_direction(direction: str, author_role: str) -> str:
    """SDP direction written by AUTHOR_ROLE -> Jingle senders (XEP-0167 §5 / CHECKLIST MEDIA-6)."""
    return {"sendrecv": "both", "sendonly": author_role, "recvonly": other(author_role),
            "inactive": "none"}[direction]


def direction_from_senders(senders: str, author_role: str) -> str:
    if senders == "both":
        return "sendrecv"
    if senders == "none":
        return "inactive"
    return "sendonly" if senders == author_role else "recvonly"


def split_fmtp(params: str) -> list[tuple[str, str]]:
    """a=fmtp parameters -> (name, value) pairs (CHECKLIST MEDIA-19): split on ';' (or ',' when there is
    no ';'), 'name=value' tokens become pairs, other tokens get an empty name."""
    sep = ";" if ";" in params else ("," if "=" in params and "," in params else None)
    tokens = [t.strip() for t in (params.split(sep) if sep else [params])]
    out = []
    for tok in tokens:
        if not tok:
            continue
        name, eq, value = tok.partition("=")
        out.append((name.strip(), value.strip()) if eq else ("", tok))
    return out


def join_fmtp(pairs: list[tuple[str, str]]) -> str:
    return ";".join(v if not n else "%s=%s" % (n, v) for n, v in pairs)


# ===================================================================== SDP -> Jingle (our own side)
def candidate_sdp_to_jingle(value: str, cid: str) -> ET.Element:
    """a=candidate value (RFC 5245 §15.1) -> XEP-0176 <candidate/>."""
    f = value.split()
    el = ET.Element(q(NS_ICE, "candidate"), {
        "foundation": f[0], "component": f[1], "protocol": f[2].lower(), "priority": f[3], "ip": f[4],
        "port": f[5], "type": f[7], "id": cid, "network": "0", "generation": "0"})
    rest = f[8:]
    for i in range(0, len(rest) - 1, 2):
        k, v = rest[i], rest[i + 1]
        if k == "raddr":
            el.set("rel-addr", v)
        elif k == "rport":
            el.set("rel-port", v)
        elif k == "generation":
            el.set("generation", v)
    return el


def candidate_jingle_to_sdp(c: ET.Element) -> str:
    """XEP-0176 <candidate/> -> a=candidate value."""
    s = "%s %s %s %s %s %s typ %s" % (c.get("foundation", "1"), c.get("component", "1"),
                                      c.get("protocol", "udp"), c.get("priority", "1"), c.get("ip"),
                                      c.get("port"), c.get("type", "host"))
    if c.get("rel-addr"):
        s += " raddr %s rport %s" % (c.get("rel-addr"), c.get("rel-port", "0"))
    return s + " generation %s" % c.get("generation", "0")


def sdp_to_jingle(text: str, author_role: str, with_candidates: bool = True) -> tuple[list, Optional[ET.Element]]:
    """Our SDP (aiortc's offer or answer, written by AUTHOR_ROLE) -> Jingle <content/> elements and an
    optional XEP-0338 <group/>. Candidates are left out when WITH_CANDIDATES is false (trickled later)."""
    sdp = parse_sdp(text)
    contents = []
    for i, m in enumerate(sdp.media):
        name = m.attr("mid") or m.kind
        content = ET.Element(q(NS_JINGLE, "content"), {"creator": "initiator", "name": name})
        direction = next((d for d in DIRECTIONS if m.attr(d) is not None), None) or \
            next((d for d in DIRECTIONS if sdp.attrs(d)), "sendrecv")
        senders = senders_from_direction(direction, author_role)
        if senders != "both":
            content.set("senders", senders)
        desc = ET.SubElement(content, q(NS_RTP, "description"), {"media": m.kind})
        rtpmap = {}
        for v in m.attrs("rtpmap"):
            pt, _, enc = v.partition(" ")
            rtpmap[pt] = enc.split("/")
        fmtp = {}
        for v in m.attrs("fmtp"):
            pt, _, params = v.partition(" ")
            fmtp[pt] = split_fmtp(params)
        fbs = {}
        for v in m.attrs("rtcp-fb"):
            pt, _, fb = v.partition(" ")
            fbs.setdefault(pt, []).append(fb.split(None, 1))
        ptime, maxptime = m.attr("ptime"), m.attr("maxptime")
        for pt in m.formats:
            enc = rtpmap.get(pt, [])
            p = ET.SubElement(desc, q(NS_RTP, "payload-type"), {"id": pt})
            if enc:
                p.set("name", enc[0])
            if len(enc) > 1:
                p.set("clockrate", enc[1])
            if len(enc) > 2 and enc[2] != "1":
                p.set("channels", enc[2])
            if ptime:
                p.set("ptime", ptime)
            if maxptime:
                p.set("maxptime", maxptime)
            for n, v in fmtp.get(pt, []):
                ET.SubElement(p, q(NS_RTP, "parameter"), {"name": n, "value": v})
            for fb in fbs.get(pt, []):
                e = ET.SubElement(p, q(NS_RTCP_FB, "rtcp-fb"), {"type": fb[0]})
                if len(fb) > 1:
                    e.set("subtype", fb[1])
        for fb in fbs.get("*", []):
            e = ET.SubElement(desc, q(NS_RTCP_FB, "rtcp-fb"), {"type": fb[0]})
            if len(fb) > 1:
                e.set("subtype", fb[1])
        for v in m.attrs("extmap"):
            idp, _, uri = v.partition(" ")
            ext_id, _, ext_dir = idp.partition("/")
            e = ET.SubElement(desc, q(NS_HDREXT, "rtp-hdrext"), {"id": ext_id, "uri": uri.split()[0]})
            if ext_dir:
                e.set("senders", senders_from_direction(ext_dir, author_role))
        sources: dict = {}
        for v in m.attrs("ssrc"):
            ssrc, _, rest = v.partition(" ")
            an, _, av_ = rest.partition(":")
            sources.setdefault(ssrc, []).append((an, av_))
        for ssrc, params in sources.items():
            s = ET.SubElement(desc, q(NS_SSMA, "source"), {"ssrc": ssrc})
            for an, av_ in params:
                ET.SubElement(s, q(NS_SSMA, "parameter"), {"name": an, "value": av_})
        if m.attr("rtcp-mux") is not None:
            ET.SubElement(desc, q(NS_RTP, "rtcp-mux"))
        ufrag = m.attr("ice-ufrag") or (sdp.attrs("ice-ufrag") or [None])[0]
        pwd = m.attr("ice-pwd") or (sdp.attrs("ice-pwd") or [None])[0]
        tr = ET.SubElement(content, q(NS_ICE, "transport"))
        if ufrag:
            tr.set("ufrag", ufrag)
        if pwd:
            tr.set("pwd", pwd)
        setup = m.attr("setup") or (sdp.attrs("setup") or ["actpass"])[0]
        fps = m.attrs("fingerprint") or sdp.attrs("fingerprint")
        # XEP-0320 carries one fingerprint: prefer sha-256 (what every Jingle client checks)
        fps = sorted(fps, key=lambda f: f.split()[0].lower() != "sha-256")
        if fps:
            h, _, value = fps[0].partition(" ")
            fp = ET.SubElement(tr, q(NS_DTLS, "fingerprint"), {"hash": h.lower(), "setup": setup})
            fp.text = value.strip()
        if with_candidates:
            for n, c in enumerate(m.attrs("candidate")):
                tr.append(candidate_sdp_to_jingle(c, "c%d-%d" % (i, n)))
        contents.append(content)
    group = None
    for g in sdp.attrs("group"):
        sem, *mids = g.split()
        group = ET.Element(q(NS_GROUP, "group"), {"semantics": sem})
        for mid in mids:
            ET.SubElement(group, q(NS_GROUP, "content"), {"name": mid})
    return contents, group


# ================================================================== Jingle -> SDP (the far side's)
class JingleUnsupported(Exception):
    """The far side's content cannot be used by this peer; .reason is the XEP-0166 condition to answer with."""

    def __init__(self, reason: str, text: str):
        super().__init__(text)
        self.reason, self.text = reason, text


def jingle_to_sdp(jingle: ET.Element, author_role: str) -> str:
    """The far side's Jingle (session-initiate or session-accept, written by AUTHOR_ROLE) -> an SDP for aiortc.
    Needs XEP-0176 ICE-UDP + XEP-0320 DTLS (aiortc does only DTLS-SRTP); raises JingleUnsupported."""
    lines = ["v=0", "o=- %d 2 IN IP4 0.0.0.0" % (int(time.time()) & 0x7FFFFFFF), "s=-", "t=0 0"]
    group = jingle.find(q(NS_GROUP, "group"))
    if group is not None:
        lines.append("a=group:%s %s" % (group.get("semantics", "BUNDLE"),
                                        " ".join(c.get("name", "") for c in group.findall(q(NS_GROUP, "content")))))
    contents = jingle.findall(q(NS_JINGLE, "content"))
    if not contents:
        raise JingleUnsupported("failed-application", "no <content/>")
    for content in contents:
        desc = content.find(q(NS_RTP, "description"))
        if desc is None:
            raise JingleUnsupported("unsupported-applications", "content %r has no RTP description"
                                    % content.get("name"))
        tr = content.find(q(NS_ICE, "transport"))
        if tr is None:
            other_tr = [c.tag for c in content if c.tag.endswith("}transport")]
            raise JingleUnsupported("unsupported-transports", "content %r has no ICE-UDP transport (%s)"
                                    % (content.get("name"), ", ".join(other_tr) or "none"))
        fps = tr.findall(q(NS_DTLS, "fingerprint"))
        if not fps:
            raise JingleUnsupported("security-error", "content %r has no DTLS fingerprint (XEP-0320)"
                                    % content.get("name"))
        pts = desc.findall(q(NS_RTP, "payload-type"))
        cands = tr.findall(q(NS_ICE, "candidate"))
        port, ip = ("9", "0.0.0.0")
        if cands:
            port, ip = cands[0].get("port", "9"), cands[0].get("ip", "0.0.0.0")
        lines.append("m=%s %s UDP/TLS/RTP/SAVPF %s" % (desc.get("media", "audio"), port,
                                                      " ".join(p.get("id") for p in pts)))
        lines.append("c=IN %s %s" % ("IP6" if ":" in ip else "IP4", ip))
        lines.append("a=mid:%s" % content.get("name"))
        lines.append("a=%s" % direction_from_senders(content.get("senders", "both"), author_role))
        if desc.find(q(NS_RTP, "rtcp-mux")) is not None:
            lines.append("a=rtcp-mux")
        if tr.get("ufrag"):
            lines.append("a=ice-ufrag:%s" % tr.get("ufrag"))
        if tr.get("pwd"):
            lines.append("a=ice-pwd:%s" % tr.get("pwd"))
        for fp in fps:
            lines.append("a=fingerprint:%s %s" % (fp.get("hash", "sha-256"), (fp.text or "").strip()))
        lines.append("a=setup:%s" % (fps[0].get("setup") or "actpass"))
        for e in desc.findall(q(NS_HDREXT, "rtp-hdrext")):
            d = e.get("senders")
            lines.append("a=extmap:%s%s %s" % (e.get("id"), "/" + direction_from_senders(d, author_role)
                                               if d and d != "both" else "", e.get("uri")))
        for fb in desc.findall(q(NS_RTCP_FB, "rtcp-fb")):
            lines.append("a=rtcp-fb:* %s" % " ".join(filter(None, (fb.get("type"), fb.get("subtype")))))
        ptime = None
        for p in pts:
            enc = "%s/%s" % (p.get("name", ""), p.get("clockrate", "8000"))
            if p.get("channels") and p.get("channels") != "1":
                enc += "/" + p.get("channels")
            lines.append("a=rtpmap:%s %s" % (p.get("id"), enc))
            params = [(e.get("name", ""), e.get("value", "")) for e in p.findall(q(NS_RTP, "parameter"))]
            if params:
                lines.append("a=fmtp:%s %s" % (p.get("id"), join_fmtp(params)))
            for fb in p.findall(q(NS_RTCP_FB, "rtcp-fb")):
                lines.append("a=rtcp-fb:%s %s" % (p.get("id"),
                                                 " ".join(filter(None, (fb.get("type"), fb.get("subtype"))))))
            ptime = ptime or p.get("ptime")
        if ptime:
            lines.append("a=ptime:%s" % ptime)
        for s in desc.findall(q(NS_SSMA, "source")):
            for prm in s.findall(q(NS_SSMA, "parameter")):
                lines.append("a=ssrc:%s %s:%s" % (s.get("ssrc"), prm.get("name"), prm.get("value", "")))
        for c in cands:
            lines.append("a=candidate:%s" % candidate_jingle_to_sdp(c))
    return "\r\n".join(lines) + "\r\n"


# ========================================================== Raw-UDP + RTP/AVP PCMU (media="plain")
def plain_content(ip: str, port: int, cid: str, senders: str = "both", name: str = "audio") -> ET.Element:
    """Our one audio content for media="plain": PCMU/8000 (RFC 3551 payload type 0) over a XEP-0177 Raw-UDP
    transport with one candidate (component 1: RTP; RTCP, if any, goes to PORT+1 as RFC 3550 §11 says)."""
    content = ET.Element(q(NS_JINGLE, "content"), {"creator": "initiator", "name": name})
    if senders != "both":
        content.set("senders", senders)
    desc = ET.SubElement(content, q(NS_RTP, "description"), {"media": "audio"})
    ET.SubElement(desc, q(NS_RTP, "payload-type"), {"id": "0", "name": "PCMU", "clockrate": "8000"})
    tr = ET.SubElement(content, q(NS_RAW_UDP, "transport"))
    ET.SubElement(tr, q(NS_RAW_UDP, "candidate"), {"component": "1", "generation": "0", "id": cid, "ip": ip,
                                                   "port": str(port)})
    return content


def plain_remote(jingle: ET.Element) -> tuple[str, tuple[str, int], str]:
    """The far side's offer/answer for media="plain" -> (content name, (ip, port) of its component-1 Raw-UDP
    candidate, senders). Raises JingleUnsupported when there is no audio content with a Raw-UDP transport or
    when PCMU (payload type 0) is not among its payload types."""
    contents = jingle.findall(q(NS_JINGLE, "content"))
    if not contents:
        raise JingleUnsupported("failed-application", "no <content/>")
    for content in contents:
        desc = content.find(q(NS_RTP, "description"))
        if desc is None:
            continue
        tr = content.find(q(NS_RAW_UDP, "transport"))
        if tr is None:
            other_tr = [c.tag for c in content if c.tag.endswith("}transport")]
            raise JingleUnsupported("unsupported-transports", "content %r has no Raw-UDP transport (%s)"
                                    % (content.get("name"), ", ".join(other_tr) or "none"))
        pts = desc.findall(q(NS_RTP, "payload-type"))
        if not any(p.get("id") == "0" or (p.get("name", "").upper() == "PCMU" and p.get("clockrate", "8000") == "8000")
                   for p in pts):
            raise JingleUnsupported("failed-application", "content %r offers no PCMU (%s)" % (
                content.get("name"), ",".join(p.get("name") or p.get("id", "?") for p in pts)))
        rtp = [c for c in tr.findall(q(NS_RAW_UDP, "candidate")) if c.get("component", "1") == "1"]
        if not rtp or not (rtp[0].get("port") or "").isdigit() or not rtp[0].get("ip"):
            raise JingleUnsupported("failed-transport", "content %r: no usable Raw-UDP candidate for component 1"
                                    % content.get("name"))
        return content.get("name"), (rtp[0].get("ip"), int(rtp[0].get("port"))), content.get("senders", "both")
    raise JingleUnsupported("unsupported-applications", "no RTP description")


def reason_of(el: Optional[ET.Element]) -> tuple[Optional[str], Optional[str]]:
    """(condition, text) of the <reason/> child of EL (either namespace form XEP-0353 uses: jingle's)."""
    if el is None:
        return None, None
    r = el.find(q(NS_JINGLE, "reason"))
    if r is None:
        return None, None
    cond = text = None
    for c in r:
        local = c.tag.split("}", 1)[-1]
        if local == "text":
            text = c.text
        elif cond is None:
            cond = local
    return cond, text


def reason_el(cond: str, text: Optional[str] = None) -> ET.Element:
    r = ET.Element(q(NS_JINGLE, "reason"))
    ET.SubElement(r, q(NS_JINGLE, cond))
    if text:
        ET.SubElement(r, q(NS_JINGLE, "text")).text = text
    return r


# XEP-0176 schema: the attributes a <candidate/> must have
CANDIDATE_REQUIRED = ("component", "foundation", "generation", "id", "ip", "port", "priority", "protocol", "type")
# XEP-0177 schema: the attributes a Raw-UDP <candidate/> must have
RAW_CANDIDATE_REQUIRED = ("component", "generation", "id", "ip", "port")


def check_jingle(j: ET.Element, action: str) -> list[str]:
    """MUST-level problems in a received <jingle/> (XEP-0166 schema and §7, XEP-0176 §4/§5, XEP-0320 §3 with
    RFC 5763 §5, XEP-0167 schema)."""
    out = []
    if not j.get("sid"):
        out.append("%s without sid" % action)
    if action in ("session-initiate", "session-accept", "content-modify", "transport-info") \
            and not j.findall(q(NS_JINGLE, "content")):
        out.append("%s without <content/>" % action)
    for c in j.findall(q(NS_JINGLE, "content")):
        name = c.get("name")
        if not name or c.get("creator") not in ("initiator", "responder"):
            out.append("%s: <content/> needs name and creator=initiator|responder (got name=%r creator=%r)"
                       % (action, name, c.get("creator")))
        if c.get("senders", "both") not in ("both", "initiator", "responder", "none"):
            out.append("%s: content %r senders=%r" % (action, name, c.get("senders")))
        d = c.find(q(NS_RTP, "description"))
        if d is not None:
            for pt in d.findall(q(NS_RTP, "payload-type")):
                pid = pt.get("id", "")
                if not pid.isdigit() or int(pid) > 127:
                    out.append("%s: payload-type id %r is not 0..127" % (action, pid))
        raw = c.find(q(NS_RAW_UDP, "transport"))
        if raw is not None:
            for cand in raw.findall(q(NS_RAW_UDP, "candidate")):
                missing = [a for a in RAW_CANDIDATE_REQUIRED if not cand.get(a)]
                if missing:
                    out.append("%s: Raw-UDP candidate %s lacks %s" % (action, cand.get("id", "?"), ",".join(missing)))
                elif not cand.get("port").isdigit() or not 0 < int(cand.get("port")) < 65536:
                    out.append("%s: Raw-UDP candidate %s port=%r" % (action, cand.get("id"), cand.get("port")))
            if action in ("session-initiate", "session-accept") and not raw.findall(q(NS_RAW_UDP, "candidate")):
                out.append("%s: Raw-UDP transport of content %r without a candidate (XEP-0177 §4)" % (action, name))
        t = c.find(q(NS_ICE, "transport"))
        if t is None:
            continue
        cands = t.findall(q(NS_ICE, "candidate"))
        if cands and not (t.get("ufrag") and t.get("pwd")):
            out.append("%s: content %r has candidates but no ufrag/pwd (XEP-0176 §5)" % (action, name))
        for cand in cands:
            missing = [a for a in CANDIDATE_REQUIRED if not cand.get(a)]
            if missing:
                out.append("%s: candidate %s lacks %s" % (action, cand.get("id", "?"), ",".join(missing)))
        for fp in t.findall(q(NS_DTLS, "fingerprint")):
            setup = fp.get("setup")
            if setup not in ("actpass", "active", "passive"):
                out.append("%s: fingerprint setup=%r" % (action, setup))
            elif action == "session-accept" and setup == "actpass":
                out.append("session-accept: the answerer's fingerprint says setup='actpass' (RFC 5763 §5: "
                           "active or passive)")
            if not fp.get("hash") or not (fp.text or "").strip():
                out.append("%s: fingerprint without hash or value" % action)
    r = j.find(q(NS_JINGLE, "reason"))
    if action == "session-terminate" and r is not None:
        conds = [x.tag.split("}", 1)[1] for x in r if x.tag.split("}", 1)[1] != "text"]
        if not conds or conds[0] not in REASONS:
            out.append("session-terminate: <reason/> condition %r is not one of XEP-0166 §7.4" % conds)
    return out


def summary(contents) -> str:
    """A short description of contents for the event log: names, codecs, candidates, fingerprint setup."""
    parts = []
    for c in contents:
        d = c.find(q(NS_RTP, "description"))
        t = c.find(q(NS_ICE, "transport"))
        raw = c.find(q(NS_RAW_UDP, "transport"))
        pts = [p.get("name", p.get("id")) for p in d.findall(q(NS_RTP, "payload-type"))] if d is not None else []
        fp = t.find(q(NS_DTLS, "fingerprint")) if t is not None else None
        ncand = len(t.findall(q(NS_ICE, "candidate"))) if t is not None else 0
        if raw is not None:
            ncand = ",".join("%s:%s" % (x.get("ip"), x.get("port")) for x in raw.findall(q(NS_RAW_UDP, "candidate")))
            parts.append("%s[%s] raw-udp=%s%s" % (c.get("name"), ",".join(pts), ncand or "-",
                                                 (" senders=" + c.get("senders")) if c.get("senders") else ""))
            continue
        parts.append("%s[%s] cand=%d setup=%s%s" % (c.get("name"), ",".join(pts), ncand,
                                                   fp.get("setup") if fp is not None else "-",
                                                   (" senders=" + c.get("senders")) if c.get("senders") else ""))
    return " ".join(parts)


def caps_ver_of(query: ET.Element) -> str:
    """XEP-0115 §5.1 verification string (sha-1) of a disco#info <query/> (identities + features; no forms)."""
    ns = "{http://jabber.org/protocol/disco#info}"
    ids = sorted("%s/%s/%s/%s" % (i.get("category", ""), i.get("type", ""),
                                  i.get("{http://www.w3.org/XML/1998/namespace}lang", ""), i.get("name", ""))
                 for i in query.findall(ns + "identity"))
    feats = sorted(f.get("var", "") for f in query.findall(ns + "feature"))
    s = "".join(x + "<" for x in ids + feats)
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()
