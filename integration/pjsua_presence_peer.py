#!/usr/bin/env python3
"""Long-running pjsua2 presence peer, driven by JSON lines on stdin, reporting JSON lines on stdout.

Run it with the peer kit's venv python ($PEERS_VENV/bin/python, which has the pjsua2 wheel).
Wrapper class: presence_peers.PjsuaPresencePeer.  Notes: integration/PRESENCE_PEERS.md.

The UA is sip:USER@DOMAIN on 127.0.0.1:PORT (UDP).  It is at the same time
  * a presence NOTIFIER: incoming SUBSCRIBE (Event: presence) is answered by pjsua itself
    (accept_policy: 200 + NOTIFY active, 202 + NOTIFY pending, or a 4xx/6xx rejection); every
    'presence' command sends a NOTIFY with the new PIDF to all accepted watchers;
  * a PUBLISHER (only with a registrar and without --no-publish): 'presence' also PUBLISHes;
  * a SUBSCRIBER: 'buddy' SUBSCRIBEs to a URI (through the proxy, if one is set) and reports
    every NOTIFY as a buddy_state event.

Commands (one JSON object per line on stdin):
  {"cmd":"presence","status":"online|away|busy|offline","note":"..."}
  {"cmd":"buddy","uri":"sip:..."}            subscribe (pjsua refreshes it itself)
  {"cmd":"unbuddy","uri":"sip:..."}          unsubscribe (SUBSCRIBE Expires: 0) and forget
  {"cmd":"accept_policy","value":"accept|pending|reject|<code>"}   for FUTURE incoming SUBSCRIBEs
        accept -> 200 + NOTIFY active; pending -> 202 + NOTIFY pending; reject -> 403; 603 etc -> that code
  {"cmd":"notify","state":"active|pending|terminated","reason":"rejected"}  explicit NOTIFY to every
        watcher (e.g. turn 'pending' watchers active, or terminate them)
  {"cmd":"buddies"}                           report buddy_state for every buddy (current values)
  {"cmd":"quit"}

Events (one JSON object per line on stdout; every event has "event" and "t" = seconds since start):
  ready {uri, port}                               after start (and REGISTER 200 if registering)
  reg_state {code, reason}
  incoming_subscribe {from, code}                 code = what we answered
  buddy_state {uri, status, note, activity, status_text, sub_state, term_code, term_reason}
        status: online | away | busy | offline | unknown (away/busy from the RPID activity)
  notify_sent {to, sub_state, body}               from pjsip's message log (every NOTIFY we send)
  notify_received {from, sub_state, content_type, body}   every NOTIFY we receive (raw PIDF)
  publish_sent {body}                             every PUBLISH we send
  sip {dir: tx|rx, first_line}                    every SIP message (only with --trace)
  ok {cmd} / error {cmd, error}                   result of each command
  bye                                             just before exiting
"""
import argparse
import gc
import json
import os
import re
import select
import sys
import time

import pjsua2 as pj

T0 = time.monotonic()
# pjlib prints a few lines straight to fd 1 before our log writer is installed: keep a private
# copy of stdout for the JSON events and point fd 1 at stderr.
OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def emit(event, **kw):
    kw = {"event": event, "t": round(time.monotonic() - T0, 3), **kw}
    OUT.write(json.dumps(kw) + "\n")
    OUT.flush()


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--user", default="dave")
ap.add_argument("--domain", default="127.0.0.1", help="domain of the AOR (default 127.0.0.1)")
ap.add_argument("--port", type=int, default=5093, help="local SIP UDP port (127.0.0.1)")
ap.add_argument("--registrar", default="sip:127.0.0.1:%s" % os.environ.get("KAMAILIO_PORT", "5060"),
                help="registrar, also used as outbound proxy (default sip:127.0.0.1:$KAMAILIO_PORT)")
ap.add_argument("--no-register", action="store_true",
                help="direct topology: no REGISTER, no PUBLISH, no outbound proxy unless --proxy")
ap.add_argument("--proxy", help="outbound proxy URI (default: the registrar; none with --no-register)")
ap.add_argument("--no-publish", action="store_true", help="never PUBLISH")
ap.add_argument("--accept-policy", default="accept", help="initial accept_policy (accept|pending|reject|CODE)")
ap.add_argument("--status", choices=["online", "away", "busy", "offline"],
                help="initial own presence (set before 'ready'); without it pjsua starts OFFLINE (basic closed)")
ap.add_argument("--note", default="", help="note for --status")
ap.add_argument("--trace", action="store_true", help="emit a 'sip' event for every SIP message")
ap.add_argument("--log-file", help="full pjsip log (level 5, with SIP messages) to this file")
a = ap.parse_args()

STATUS_ACTIVITY = {"online": pj.PJRPID_ACTIVITY_UNKNOWN, "away": pj.PJRPID_ACTIVITY_AWAY,
                   "busy": pj.PJRPID_ACTIVITY_BUSY, "offline": pj.PJRPID_ACTIVITY_UNKNOWN}


def policy_code(value):
    v = str(value).lower()
    if v == "accept":
        return 200
    if v == "pending":
        return 202
    if v == "reject":
        return 403
    if v.isdigit() and 200 <= int(v) < 700:
        return int(v)
    raise ValueError("accept_policy must be accept|pending|reject|CODE, not %r" % value)


state = {"policy": policy_code(a.accept_policy)}


def hdr(text, name, compact=None):
    m = re.search(r"(?im)^(?:%s%s)[ \t]*:[ \t]*(.*?)\r?$" % (re.escape(name), "|" + compact if compact else ""), text)
    return m.group(1).strip() if m else None


class Writer(pj.LogWriter):
    """Receives pjsip's log; SIP messages are logged as 'TX|RX nnn bytes ... :\\n<message>--end msg--'."""
    def __init__(self, logfile):
        pj.LogWriter.__init__(self)
        self.f = open(logfile, "a") if logfile else None

    def write(self, entry):
        msg = entry.msg
        if self.f:
            self.f.write(msg if msg.endswith("\n") else msg + "\n")
            self.f.flush()
        m = re.search(r"\b(TX|RX) \d+ bytes .*?:\r?\n(.*?)(?:--end msg--|$)", msg, re.S)
        if not m:
            return
        direction, sipmsg = m.group(1).lower(), m.group(2)
        head, _, body = sipmsg.partition("\r\n\r\n") if "\r\n\r\n" in sipmsg else sipmsg.partition("\n\n")
        first = head.split("\n", 1)[0].strip()
        if a.trace:
            emit("sip", dir=direction, first_line=first)
        body = body.strip()
        if first.startswith("NOTIFY "):
            if direction == "tx":
                emit("notify_sent", to=first.split()[1], sub_state=hdr(head, "Subscription-State"), body=body)
            else:
                emit("notify_received", **{"from": hdr(head, "From", "f"), "sub_state": hdr(head, "Subscription-State"),
                                           "content_type": hdr(head, "Content-Type", "c"), "body": body})
        elif first.startswith("PUBLISH ") and direction == "tx":
            emit("publish_sent", body=body)


def buddy_status(ps):
    if ps.status == pj.PJSUA_BUDDY_STATUS_ONLINE:
        if ps.activity == pj.PJRPID_ACTIVITY_AWAY:
            return "away"
        if ps.activity == pj.PJRPID_ACTIVITY_BUSY:
            return "busy"
        return "online"
    if ps.status == pj.PJSUA_BUDDY_STATUS_OFFLINE:
        return "offline"
    return "unknown"


ACTIVITY_NAME = {pj.PJRPID_ACTIVITY_UNKNOWN: "unknown", pj.PJRPID_ACTIVITY_AWAY: "away", pj.PJRPID_ACTIVITY_BUSY: "busy"}


class Buddy(pj.Buddy):
    last = None

    def report(self, force=False):
        bi = self.getInfo()
        ps = bi.presStatus
        ev = dict(uri=bi.uri, status=buddy_status(ps), note=ps.note, activity=ACTIVITY_NAME.get(ps.activity, ps.activity),
                  status_text=ps.statusText, sub_state=bi.subStateName, term_code=bi.subTermCode,
                  term_reason=bi.subTermReason)
        if force or ev != self.last:        # onBuddyState and onBuddyEvSubState often fire together
            self.last = ev
            emit("buddy_state", **ev)

    def onBuddyState(self):
        self.report()

    def onBuddyEvSubState(self, prm):
        self.report()


pending_notify = []          # srvPres answered 202: NOTIFY pending right after the callback returns


class Account(pj.Account):
    watchers = []           # srvPres handles of accepted incoming subscriptions

    def onRegState(self, prm):
        emit("reg_state", code=prm.code, reason=prm.reason)

    def onIncomingSubscribe(self, prm):
        code = state["policy"]
        prm.code = code
        if code >= 300:
            prm.reason = "Forbidden" if code == 403 else "Decline" if code == 603 else "Rejected"
        else:
            self.watchers.append(prm.srvPres)
            if code == 202:                  # pjsua sends no NOTIFY for 202 by itself: do it after the callback
                pending_notify.append(prm.srvPres)
        emit("incoming_subscribe", **{"from": prm.fromUri, "code": code})


ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.uaConfig.mainThreadOnly = True      # callbacks only inside our libHandleEvents() calls
writer = Writer(a.log_file)
cfg.logConfig.writer = writer
cfg.logConfig.level = 5 if a.log_file else 4
cfg.logConfig.consoleLevel = 5 if a.log_file else 4    # the writer only sees levels <= consoleLevel
cfg.logConfig.msgLogging = True
cfg.logConfig.decor = 0
ep.libInit(cfg)
tc = pj.TransportConfig()
tc.port = a.port
tc.boundAddress = "127.0.0.1"
tc.publicAddress = "127.0.0.1"
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
ep.libStart()
ep.audDevManager().setNullDev()

acfg = pj.AccountConfig()
acfg.idUri = "sip:%s@%s" % (a.user, a.domain)
proxy = a.proxy or (None if a.no_register else a.registrar)
if not a.no_register:
    acfg.regConfig.registrarUri = a.registrar
if proxy:
    acfg.sipConfig.proxies.append(proxy if ";lr" in proxy else proxy + ";lr")
acfg.presConfig.publishEnabled = not (a.no_register or a.no_publish)
acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
acc = Account()
acc.create(acfg)
buddies = {}


def pump(sec):
    end = time.monotonic() + sec
    while time.monotonic() < end:
        ep.libHandleEvents(20)


def set_presence(status, note):
    if status not in STATUS_ACTIVITY:
        raise ValueError("status must be online|away|busy|offline")
    ps = pj.PresenceStatus()
    ps.status = pj.PJSUA_BUDDY_STATUS_OFFLINE if status == "offline" else pj.PJSUA_BUDDY_STATUS_ONLINE
    ps.activity = STATUS_ACTIVITY[status]
    ps.note = note or ""
    acc.setOnlineStatus(ps)


def explicit_notify(st, reason, targets=None):
    names = {"active": pj.PJSIP_EVSUB_STATE_ACTIVE, "pending": pj.PJSIP_EVSUB_STATE_PENDING,
             "terminated": pj.PJSIP_EVSUB_STATE_TERMINATED}
    sent = 0
    for sp in list(acc.watchers if targets is None else targets):
        prm = pj.PresNotifyParam()
        prm.srvPres = sp
        prm.state = names[st]
        if reason:
            prm.reason = reason
        prm.withBody = True
        try:
            acc.presNotify(prm)
            sent += 1
        except pj.Error:
            acc.watchers.remove(sp)        # subscription gone
    if st == "terminated" and targets is None:
        acc.watchers.clear()
    return sent


if not a.no_register:
    end = time.monotonic() + 5
    while time.monotonic() < end and not acc.getInfo().regIsActive:
        ep.libHandleEvents(20)
if a.status:
    set_presence(a.status, a.note)
    pump(0.1)
emit("ready", uri=acfg.idUri, port=a.port, registered=(not a.no_register) and acc.getInfo().regIsActive)


def handle(line):
    try:
        c = json.loads(line)
    except ValueError as e:
        emit("error", cmd=None, error="bad JSON: %s" % e)
        return True
    cmd = c.get("cmd")
    try:
        if cmd == "quit":
            return False
        if cmd == "presence":
            set_presence(c.get("status", "online"), c.get("note", ""))
        elif cmd == "buddy":
            uri = c["uri"]
            if uri in buddies:
                raise ValueError("already a buddy")
            bc = pj.BuddyConfig()
            bc.uri = uri
            bc.subscribe = True
            b = Buddy()
            b.create(acc, bc)
            buddies[uri] = b
        elif cmd == "unbuddy":
            b = buddies.pop(c["uri"])
            b.subscribePresence(False)
            pump(0.2)
            del b
            gc.collect()
        elif cmd == "accept_policy":
            state["policy"] = policy_code(c["value"])
        elif cmd == "notify":
            emit("ok", cmd=cmd, sent=explicit_notify(c.get("state", "active"), c.get("reason")))
            return True
        elif cmd == "buddies":
            for b in buddies.values():
                b.report(force=True)
        else:
            raise ValueError("unknown command %r" % cmd)
        emit("ok", cmd=cmd)
    except Exception as e:  # noqa: BLE001 - report every failure as an event
        text = e.info() if isinstance(e, pj.Error) else str(e)
        emit("error", cmd=cmd, error="%s: %s" % (type(e).__name__, text))
    return True


buf = b""
running = True
stdin_fd = sys.stdin.fileno()
while running:
    ep.libHandleEvents(20)
    if pending_notify:
        explicit_notify("pending", None, list(pending_notify))
        pending_notify.clear()
    r, _, _ = select.select([stdin_fd], [], [], 0)
    if not r:
        continue
    chunk = os.read(stdin_fd, 65536)
    if not chunk:                      # stdin closed: quit
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        if line.strip() and not handle(line.decode(errors="replace")):
            running = False
            break

# shutdown: unsubscribe buddies, terminate watchers, un-PUBLISH/unREGISTER
for b in buddies.values():
    try:
        b.subscribePresence(False)
    except pj.Error:
        pass
pump(0.3)
buddies.clear()
acc.watchers.clear()
gc.collect()
emit("bye")
try:
    acc.shutdown()
    pump(0.3)
    ep.libDestroy()
except Exception:  # noqa: BLE001
    pass
OUT.flush()
os._exit(0)     # skip interpreter-exit finalizers of pjsua2 objects (they can assert)
