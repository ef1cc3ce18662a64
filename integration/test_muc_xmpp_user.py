"""An XMPP user in a SIP/MSRP chat room (RFC 7702 §5, CHECKLIST MUC-1..MUC-17) with real parts: alice is a real
XMPP client on Prosody/ejabberd; the room is served by msrp_room.TestFocus (an independent conference focus and
MSRP switch written from RFC 7701/7702/4575, MSRP_ROOM.md), with SIP participants (msrp_room.RoomUa) joined
to it directly. stox sits between alice and the room: sip:<room>@rooms.test is the JID
<room>\\40rooms.test@sip.localhost.

Every test ends with the focus's and the participants' RFC checks: their `violations` must stay empty."""
import xml.etree.ElementTree as ET

import pytest

from topology import COMPONENT, FOCUS_DOMAIN, FOCUS_MSRP_PORT, FOCUS_PORT, MSRP_DOMAIN

MUC_USER = "http://jabber.org/protocol/muc#user"
FOCUS = ("127.0.0.1", FOCUS_PORT)


def room_jid(name: str) -> str:
    return "%s\\40%s@%s" % (name, FOCUS_DOMAIN, COMPONENT)


def statuses(raw: str) -> set:
    el = ET.fromstring(raw)
    return {s.get("code") for s in el.iter("{%s}status" % MUC_USER)}


@pytest.fixture
def focus(stox):
    from msrp_room import TestFocus
    f = TestFocus(sip_port=FOCUS_PORT, msrp_port=FOCUS_MSRP_PORT, domain=FOCUS_DOMAIN,
                  rooms={"capulet": {"subject": "The feast"}, "montague": {"private_messages": False}}).start()
    yield f
    f.stop()
    assert f.violations == [], "the test focus saw RFC violations from stox:\n  " + "\n  ".join(f.violations)


@pytest.fixture
def bob(stox):
    from xmpp_helper import XmppClient
    from topology import C2S_PORT, XMPP_DOMAIN
    c = XmppClient("bob@%s" % XMPP_DOMAIN, "bobpass", port=C2S_PORT).connect()
    yield c
    c.close()


@pytest.fixture
def romeo(focus):
    """A SIP participant already in sip:capulet@rooms.test, joined straight at the focus."""
    from msrp_room import RoomUa
    ua = RoomUa(user="romeo").start()
    rs = ua.join(focus.room_uri("capulet"), FOCUS, "sip:romeo@%s" % MSRP_DOMAIN, nickname="Romeo")
    yield rs
    ua.stop()
    assert ua.violations == [], "the SIP participant saw RFC violations:\n  " + "\n  ".join(ua.violations)


def join(client, room: str, nick: str):
    mark = client.presence_mark()
    client.send_raw("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>" % (room, nick))
    return mark


def test_muc_1_to_14_xmpp_user_joins_a_sip_room_and_talks(alice, focus, romeo, run_id):
    room = room_jid("capulet")
    mark = join(alice, room, "alice")
    # MUC-8: the SIP participant first, the self-presence (110) last; then the subject (MUC-10).
    me = alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark,
                             what="alice's self-presence")
    assert "110" in statuses(me.raw), me.raw
    others = [p for p in alice.presences[mark:] if p.frm == room + "/Romeo" and p.type is None]
    assert others, "romeo's occupant presence came before alice's own"
    subject = alice.wait_message(lambda m: m.frm == room and m.subject is not None, what="the subject")
    assert subject.subject == "The feast" and subject.type == "groupchat", subject.raw
    # MUC-1..MUC-5 at the focus: alice is a participant with her nickname.
    focus.wait_participants(lambda ps: "alice" in [p["nick"] for p in ps], room="capulet")
    romeo.wait_roster(lambda r: "alice" in romeo.nicks())

    # MUC-11 + MUC-12: groupchat to the room reaches romeo, and alice sees her own message back.
    hello = "Good even " + run_id
    alice.send_message(room, hello, type="groupchat", id="g-" + run_id)
    m = romeo.wait_message(lambda m: m["text"] == hello)
    assert m["nick"] == "alice" and not m["private"], m
    echo = alice.wait_message(lambda m: m.body == hello, what="the reflection of alice's message")
    assert echo.frm == room + "/alice" and echo.type == "groupchat" and echo.id == "g-" + run_id, echo.raw

    # MUC-14: room traffic from the SIP side.
    reply = "Good even, fair " + run_id
    romeo.send_room(reply)
    got = alice.wait_message(lambda m: m.body == reply, what="romeo's room message")
    assert got.frm == room + "/Romeo" and got.type == "groupchat", got.raw

    # MUC-13/14: private messages both ways.
    psst = "psst " + run_id
    alice.send_message(room + "/Romeo", psst, type="chat")
    m = romeo.wait_message(lambda m: m["text"] == psst)
    assert m["private"], m
    back = "psst back " + run_id
    romeo.send_private("alice", back)
    got = alice.wait_message(lambda m: m.body == back, what="romeo's private message")
    assert got.type == "chat" and got.frm == room + "/Romeo", got.raw

    # Roster changes: romeo leaves -> unavailable presence.
    mark = alice.presence_mark()
    romeo.leave()
    alice.wait_presence(lambda p: p.frm == room + "/Romeo" and p.type == "unavailable", since=mark,
                        what="romeo leaving")

    # MUC-17: alice leaves -> BYE to the focus, her own unavailable presence with 110.
    mark = alice.presence_mark()
    alice.send_raw("<presence to='%s/alice' type='unavailable'/>" % room)
    bye = alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type == "unavailable", since=mark,
                              what="alice's own unavailable presence")
    assert "110" in statuses(bye.raw), bye.raw
    focus.wait_participants(lambda ps: "alice" not in [p["nick"] for p in ps], room="capulet")


def test_muc_6_15_nicknames(alice, focus, romeo, run_id):
    room = room_jid("capulet")
    # MUC-6: joining with a taken nickname is a presence error <conflict/>.
    mark = join(alice, room, "Romeo")
    err = alice.wait_presence(lambda p: p.frm == room + "/Romeo" and p.type == "error", since=mark,
                              what="the conflict presence error")
    assert "conflict" in err.raw, err.raw
    focus.wait_participants(lambda ps: len(ps) == 1, room="capulet")

    mark = join(alice, room, "alice")
    alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark, what="alice in")
    # MUC-15: a nick change -> NICKNAME 200 -> the 303 pair.
    mark = alice.presence_mark()
    alice.send_raw("<presence to='%s/juliet'/>" % room)
    gone = alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type == "unavailable", since=mark,
                               what="the unavailable half of the nick change")
    assert "303" in statuses(gone.raw), gone.raw
    alice.wait_presence(lambda p: p.frm == room + "/juliet" and p.type is None, since=mark,
                        what="alice as juliet")
    romeo.wait_roster(lambda r: "juliet" in romeo.nicks())
    # A taken nickname: 425 -> presence error <conflict/>, alice keeps hers.
    mark = alice.presence_mark()
    alice.send_raw("<presence to='%s/Romeo'/>" % room)
    err = alice.wait_presence(lambda p: p.frm == room + "/Romeo" and p.type == "error", since=mark,
                              what="the nick-change conflict")
    assert "conflict" in err.raw, err.raw
    alice.send_raw("<presence to='%s/juliet' type='unavailable'/>" % room)


def test_muc_kick_from_the_sip_room_is_status_307(alice, focus, romeo, run_id):
    room = room_jid("capulet")
    mark = join(alice, room, "alice")
    alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark, what="alice in")
    mark = alice.presence_mark()
    assert focus.kick("alice", room="capulet") == 200
    out = alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type == "unavailable", since=mark,
                              what="alice kicked")
    assert {"110", "307"} <= statuses(out.raw), out.raw


def test_muc_14_last_room_message_before_the_switch_drops_the_connection(alice, focus, romeo, run_id):
    """The room's switch delivers a message and drops the MSRP connection at once: alice still gets the message,
    then she is out of the room. stox sees the SEND and the connection's end together."""
    from msrp_room import build_cpim
    room = room_jid("capulet")
    mark = join(alice, room, "alice")
    alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark, what="alice in")
    focus.wait_participants(lambda ps: "alice" in [p["nick"] for p in ps], room="capulet")
    with focus.lock:
        her = next(p for p in focus._all() if p.nick == "alice")
        him = next(p for p in focus._all() if p.nick == "Romeo")
    her.session.wait_connected(5)
    mark = alice.presence_mark()
    last = "Last call " + run_id
    her.session.send(build_cpim("Romeo <%s>" % him.entity, "<%s>" % focus.room_uri("capulet"), last),
                     "message/cpim")
    her.session.conn.close()
    got = alice.wait_message(lambda m: m.body == last, what="the room's last message")
    assert got.frm == room + "/Romeo" and got.type == "groupchat", got.raw
    alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type == "unavailable", since=mark,
                        what="alice out of the room after the connection dropped")


def test_muc_13_private_messages_refused_by_the_room(alice, focus, run_id):
    from msrp_room import RoomUa
    ua = RoomUa(user="benvolio").start()
    try:
        ua.join(focus.room_uri("montague"), FOCUS, "sip:benvolio@%s" % MSRP_DOMAIN, nickname="Benvolio")
        room = room_jid("montague")
        mark = join(alice, room, "alice")
        alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark, what="alice in")
        alice.send_message(room + "/Benvolio", "psst " + run_id, type="chat", id="p-" + run_id)
        err = alice.wait_message(lambda m: m.id == "p-" + run_id and m.type == "error",
                                 what="the refused private message")
        assert err.error_condition in ("forbidden", "feature-not-implemented"), err.raw
    finally:
        ua.stop()


def test_muc_1_unknown_sip_room_is_a_presence_error(alice, focus, run_id):
    room = room_jid("nowhere" + run_id)
    mark = join(alice, room, "alice")
    err = alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type == "error", since=mark,
                              what="the join error")
    assert "item-not-found" in err.raw or "recipient-unavailable" in err.raw, err.raw


def test_muc_9_malformed_conference_documents_never_break_the_room(alice, focus, run_id):
    focus.faults = {"no-namespace"}
    room = room_jid("capulet")
    mark = join(alice, room, "alice")
    # Every document is unreadable (400 to each NOTIFY): alice still gets into the room, alone.
    me = alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark, timeout=15,
                             what="alice's self-presence despite unreadable documents")
    assert "110" in statuses(me.raw), me.raw
    # ... and every unreadable document was answered 400 (RFC 4575 §4.2 wants the namespace).
    from msrp_ua import parse_sip
    codes = set()
    for _, kind, raw in list(focus.trace):
        if kind == "sip-rx":
            r = parse_sip(raw)
            if r.get("code") and "NOTIFY" in r["headers"].get("CSeq", ""):
                codes.add(r["code"])
    assert codes == {400}, "NOTIFY responses from stox: %r" % codes
    focus.faults = set()


def test_muc_32_a_sip_room_looks_like_a_room_and_is_not_administered(alice, focus, run_id):
    room = room_jid("capulet")
    kind, info = alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
    raw = info["raw"].replace("'", '"')
    assert kind == "result" and 'category="conference"' in raw and 'type="text"' in raw, info
    assert 'var="http://jabber.org/protocol/muc"' in raw, raw
    kind, info = alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#owner'/>")
    assert kind == "error" and "feature-not-implemented" in info["raw"], info


def test_muc_16_mediated_invitation_becomes_refer(alice, focus, romeo, run_id):
    room = room_jid("capulet")
    mark = join(alice, room, "alice")
    alice.wait_presence(lambda p: p.frm == room + "/alice" and p.type is None, since=mark, what="alice in")
    alice.send_raw("<message to='%s'><x xmlns='%s'><invite to='benvolio\\40montague.test@%s'/></x></message>"
                   % (room, MUC_USER, COMPONENT))
    focus._wait(lambda: focus.refers, 10, "the REFER at the focus")
    assert focus.refers[-1]["refer_to"] == "sip:benvolio@montague.test", focus.refers
    alice.send_raw("<presence to='%s/alice' type='unavailable'/>" % room)


def test_muc_two_xmpp_users_talk_through_a_sip_room(alice, bob, focus, romeo, run_id):
    room = room_jid("capulet")
    for client, nick in ((alice, "alice"), (bob, "bob")):
        mark = join(client, room, nick)
        client.wait_presence(lambda p, n=nick: p.frm == "%s/%s" % (room, n) and p.type is None, since=mark,
                             what="%s in" % nick)
    alice.wait_presence(lambda p: p.frm == room + "/bob" and p.type is None, what="bob as an occupant for alice")
    romeo.wait_roster(lambda r: {"alice", "bob"} <= set(romeo.nicks()))
    text = "Two households " + run_id
    bob.send_message(room, text, type="groupchat")
    got = alice.wait_message(lambda m: m.body == text, what="bob's message through the SIP room")
    assert got.frm == room + "/bob" and got.type == "groupchat", got.raw
    assert romeo.wait_message(lambda m: m["text"] == text)["nick"] == "bob"
    for client, nick in ((alice, "alice"), (bob, "bob")):
        client.send_raw("<presence to='%s/%s' type='unavailable'/>" % (room, nick))
    focus.wait_participants(lambda ps: [p["nick"] for p in ps] == ["Romeo"], room="capulet")
