"""A SIP user in an XMPP multi-user chat room (RFC 7702 §6, CHECKLIST MUC-18..MUC-28) with real parts: the
room lives on the XMPP server's own MUC service (Prosody's / ejabberd's conference.localhost), alice is a real
XMPP client in it, and the SIP user is msrp_ua.py (an independent SIP + MSRP UA, MSRP_UA.md) joining through
stox with an MSRP INVITE to sip:<room>@conference.localhost.

Every test ends with the peer's own RFC checks: `ua.violations` must be empty."""
import re

from msrp_ua import SipError
from topology import GW_PORT, MSRP_DOMAIN, MUC_DOMAIN

import pytest

GW = ("127.0.0.1", GW_PORT)
ROMEO_URI = "sip:romeo@%s" % MSRP_DOMAIN
MUC_USER = "http://jabber.org/protocol/muc#user"


def make_room(client, name: str, nick: str = "alice") -> str:
    """CLIENT creates the room NAME as an instant room (XEP-0045 §10.1.2) and is in it as NICK."""
    room = "%s@%s" % (name, MUC_DOMAIN)
    mark = client.presence_mark()
    client.send_raw("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>" % (room, nick))
    client.wait_presence(lambda p: p.frm == "%s/%s" % (room, nick) and p.type is None, since=mark,
                         what="alice's self-presence in the new room")
    client.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'>"
                           "<x xmlns='jabber:x:data' type='submit'/></query>")
    return room


def cpim(to: str, text: str) -> bytes:
    return ("From: <%s>\r\nTo: <%s>\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n%s" % (ROMEO_URI, to, text)
            ).encode()


def join(ua, room: str, display: str = None):
    frm = ROMEO_URI if display is None else ROMEO_URI
    return ua.invite("sip:" + room, via_host_port=GW, from_uri=frm)


def final_response(ua, call_id: str) -> dict:
    """The final response the UA received for its INVITE CALL_ID (from its trace)."""
    from msrp_ua import parse_sip
    for _, kind, raw in ua.trace:
        if kind != "sip-rx":
            continue
        r = parse_sip(raw)
        if r.get("code") and r["code"] >= 200 and r["headers"].get("Call-ID") == call_id \
                and "INVITE" in r["headers"].get("CSeq", ""):
            return r
    raise AssertionError("no final response to the INVITE in the trace")


def test_muc_18_23_25_28_sip_user_joins_talks_and_leaves(alice, ua, run_id):
    room = make_room(alice, "r" + run_id)
    mark = alice.presence_mark()
    s = join(ua, room)
    resp = final_response(ua, s.call_id)
    assert ";isfocus" in resp["headers"].get("Contact", ""), "MUC-18: Contact ;isfocus\n%s" % resp["headers"].pairs
    assert re.search(r"^a=chatroom:.*nickname", s.sdp_answer, re.M), "MUC-18 answer:\n" + s.sdp_answer
    assert "message/cpim" in s.remote_accept_types, s.sdp_answer
    # The room sees the SIP user arrive under its SIP user name (MUC-19).
    alice.wait_presence(lambda p: p.frm == room + "/romeo" and p.type is None, since=mark,
                        what="romeo's occupant presence")

    # MUC-23: SIP -> room, a groupchat message from romeo's occupant JID.
    hello = "Hello room " + run_id
    mid = s.send(cpim("sip:" + room, hello), content_type="message/cpim")
    assert s.wait_response(mid) == 200
    got = alice.wait_message(lambda m: m.body == hello, what="romeo's groupchat message")
    assert got.type == "groupchat" and got.frm == room + "/romeo", got.raw

    # MUC-25: room -> SIP, CPIM from the participant's URI to the room's URI.
    answer = "Hi romeo " + run_id
    alice.send_message(room, answer, type="groupchat")
    m = s.wait_message(lambda m: answer.encode() in m["body"], timeout=10)
    assert m["content_type"].lower().startswith("message/cpim"), m["content_type"]
    text = m["body"].decode()
    assert re.search(r"^From: .*<sip:%s;gr=alice>\r$" % re.escape(room), text, re.M), text
    assert "To: <sip:%s>\r\n" % room in text, text

    # MUC-24: the MUC's reflection of romeo's own message is not sent back to him.
    assert not any(hello.encode() in x["body"] for x in s.messages), "the switch echoed romeo's own message"

    # Private messages both ways (§6.3.2).
    psst = "psst romeo " + run_id
    alice.send_message(room + "/romeo", psst, type="chat",
                       extra_xml="<x xmlns='%s'/>" % MUC_USER)
    m = s.wait_message(lambda m: psst.encode() in m["body"], timeout=10)
    assert "To: <%s>\r\n" % ROMEO_URI in m["body"].decode(), m["body"]
    back = "psst alice " + run_id
    s.send(cpim("sip:%s;gr=alice" % room, back), content_type="message/cpim")
    got = alice.wait_message(lambda m: m.body == back, what="romeo's private message")
    assert got.type == "chat" and got.frm == room + "/romeo", got.raw

    # MUC-28: BYE -> romeo leaves the room.
    mark = alice.presence_mark()
    assert s.bye() == 200
    alice.wait_presence(lambda p: p.frm == room + "/romeo" and p.type == "unavailable", since=mark,
                        what="romeo's unavailable presence after BYE")


def test_muc_23_28_last_message_before_the_connection_closes_reaches_the_room(alice, ua, run_id):
    """A SIP client that sends its last message and drops the MSRP connection at once (a closed app): the room
    still gets the message, then romeo leaves. stox sees the SEND and the connection's end together."""
    room = make_room(alice, "c" + run_id)
    mark = alice.presence_mark()
    s = join(ua, room)
    alice.wait_presence(lambda p: p.frm == room + "/romeo" and p.type is None, since=mark,
                        what="romeo's occupant presence")
    s.wait_connected(5)
    mark = alice.presence_mark()
    last = "Last words " + run_id
    s.send(cpim("sip:" + room, last), content_type="message/cpim")
    s.conn.close()
    got = alice.wait_message(lambda m: m.body == last, what="romeo's last groupchat message")
    assert got.type == "groupchat" and got.frm == room + "/romeo", got.raw
    alice.wait_presence(lambda p: p.frm == room + "/romeo" and p.type == "unavailable", since=mark,
                        what="romeo's unavailable presence after the connection closed")


def test_muc_19_nickname_clash_gets_the_next_free_nickname(alice, ua, run_id):
    room = make_room(alice, "n" + run_id, nick="romeo")
    mark = alice.presence_mark()
    s = join(ua, room)
    alice.wait_presence(lambda p: p.frm == room + "/romeo (2)" and p.type is None, since=mark,
                        what="the SIP romeo as 'romeo (2)' (MUC-30)")
    s.bye()


def test_muc_19_members_only_room_refuses_the_invite(alice, ua, run_id):
    room = make_room(alice, "m" + run_id)
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
                          "type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
                          "</value></field><field var='muc#roomconfig_membersonly'><value>1</value></field></x>"
                          "</query>")
    with pytest.raises(SipError) as e:
        join(ua, room)
    # XEP-0045 registration-required: Table E1's 407 would need a challenge stox cannot make: 403.
    assert e.value.code == 403, e.value.code


def test_muc_18_room_invite_without_msrp_is_488(ua, stox, run_id):
    r = ua.request("INVITE", "sip:x%s@%s" % (run_id, MUC_DOMAIN), GW, from_uri=ROMEO_URI,
                   body=b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                        b"m=audio 4000 RTP/AVP 0\r\n", content_type="application/sdp")
    assert r["code"] == 488, r


# ------------------------------------------------------------------ with the chat-room participant (msrp_room.py)
@pytest.fixture
def room_ua(stox):
    """msrp_room.RoomUa as romeo on free ports, fresh per test; its RFC checks must find nothing."""
    from msrp_room import RoomUa
    u = RoomUa(user="romeo").start()
    yield u
    u.stop()
    assert u.violations == [], "the chat-room peer saw RFC violations from stox:\n  " + "\n  ".join(u.violations)


@pytest.fixture
def bob(stox):
    from xmpp_helper import XmppClient
    from topology import C2S_PORT, XMPP_DOMAIN
    c = XmppClient("bob@%s" % XMPP_DOMAIN, "bobpass", port=C2S_PORT).connect()
    yield c
    c.close()


def enter(client, room: str, nick: str):
    mark = client.presence_mark()
    client.send_raw("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>" % (room, nick))
    client.wait_presence(lambda p: p.frm == "%s/%s" % (room, nick) and p.type is None, since=mark,
                         what="%s's self-presence" % nick)


def test_muc_20_22_26_roster_full_then_partial_and_nicknames(alice, bob, room_ua, run_id):
    room = make_room(alice, "s" + run_id)
    alice.send_message(room, None, type="groupchat", subject="Verona " + run_id)
    mark = alice.presence_mark()
    rs = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    # MUC-26: NICKNAME -> the MUC's nick change -> 200; the room sees the new nickname.
    assert rs.nickname_results == [("Romeo", 200)], rs.nickname_results
    alice.wait_presence(lambda p: p.frm == room + "/Romeo" and p.type is None, since=mark,
                        what="romeo under his new nickname")
    # MUC-22: the first NOTIFY is the full roster, with the room's subject.
    first = rs.notifies[0]
    assert first["state"] == "full" and first["version"] == 0, first
    rs.wait_roster(lambda r: {"alice", "Romeo"} <= set(rs.nicks()))
    rs.wait_notify(lambda n: (n["doc"] or {}).get("subject") == "Verona " + run_id) if rs.subject is None else None
    assert rs.subject == "Verona " + run_id, rs.subject

    # Later changes come as partial documents holding only the changed user.
    enter(bob, room, "bob")
    rs.wait_roster(lambda r: "bob" in rs.nicks())
    last = rs.notifies[-1]
    assert last["state"] == "partial", last
    assert len(last["doc"]["users"]["list"]) == 1, last["body"]

    # MUC-26: a nickname someone else has is 425; the MUC was asked, not guessed.
    assert rs.set_nickname("bob") == 425
    mark = bob.presence_mark()
    bob.send_raw("<presence to='%s/bob' type='unavailable'/>" % room)
    rs.wait_roster(lambda r: "bob" not in rs.nicks())
    assert rs.notifies[-1]["state"] == "partial"

    # The subject changes: a partial document with the new one.
    alice.send_message(room, None, type="groupchat", subject="Mantua " + run_id)
    rs.wait_notify(lambda n: (n["doc"] or {}).get("subject") == "Mantua " + run_id)
    assert rs.leave() == 200


def test_muc_kicked_sip_user_gets_bye(alice, room_ua, run_id):
    room = make_room(alice, "k" + run_id)
    rs = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                          "<item nick='Romeo' role='none'><reason>out</reason></item></query>")
    assert rs.wait_bye(10), "a kicked SIP user's session ends with BYE from the focus"


def test_muc_27_refer_is_a_mediated_invitation(alice, bob, room_ua, run_id):
    from topology import XMPP_DOMAIN
    room = make_room(alice, "i" + run_id)
    # ejabberd lets only moderators invite unless the room says otherwise (allow_user_invites).
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
                          "type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
                          "</value></field><field var='muc#roomconfig_allowinvites'><value>1</value></field></x>"
                          "</query>")
    rs = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    assert rs.refer("sip:bob@%s" % XMPP_DOMAIN) == 200
    inv = bob.wait_message(lambda m: m.frm == room and "invite" in m.raw, what="the mediated invitation")
    assert "muc#user" in inv.raw, inv.raw
    n = room_ua._wait(lambda: rs.refer_notifies, 5, "refer NOTIFY")[0]
    assert n["body"].startswith(b"SIP/2.0 100"), n
    assert "terminated" in n["headers"].get("Subscription-State", ""), n["headers"].pairs
    rs.leave()


def test_muc_23_private_message_to_nobody_fails_with_404(alice, room_ua, run_id):
    room = make_room(alice, "p" + run_id)
    rs = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    mid = rs.send_private("sip:%s;gr=nobody" % room, "anyone there?")
    assert rs.wait_response(mid) == 404, "RFC 7701 §6.2: no such participant"
    rs.leave()


def test_muc_24_the_room_refusing_a_message_is_the_sends_answer(alice, room_ua, run_id):
    room = make_room(alice, "v" + run_id)
    # A moderated room: visitors may not speak.
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
                          "type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
                          "</value></field><field var='muc#roomconfig_moderatedroom'><value>1</value></field></x>"
                          "</query>")
    rs = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    # The moderator takes Romeo's voice (XEP-0045 §8.4; ejabberd makes newcomers participants).
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                          "<item nick='Romeo' role='visitor'/></query>")
    rs.wait_roster(lambda r: any(u["nick"] == "Romeo" and "visitor" in u["roles"] for u in r.values()))
    mid = rs.send_room("may I speak? " + run_id)
    assert rs.wait_response(mid) == 403, "MUC-24: the MUC's refusal is the SEND's own response"
    rs.leave()


def test_muc_two_sip_users_talk_through_the_xmpp_room(alice, room_ua, run_id):
    from msrp_room import RoomUa
    room = make_room(alice, "t" + run_id)
    romeo = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    other = RoomUa(user="mercutio").start()
    try:
        merc = other.join("sip:" + room, GW, "sip:mercutio@%s" % MSRP_DOMAIN, nickname="Mercutio")
        romeo.wait_roster(lambda r: "Mercutio" in romeo.nicks())
        text = "A plague o' both your houses " + run_id
        mid = merc.send_room(text)
        assert merc.wait_response(mid) == 200
        got = romeo.wait_message(lambda m: m["text"] == text)
        assert got["nick"] == "Mercutio" and not got["private"], got
        alice.wait_message(lambda m: m.body == text and m.frm == room + "/Mercutio")
        merc.leave()
        romeo.wait_roster(lambda r: "Mercutio" not in romeo.nicks())
    finally:
        other.stop()
    assert other.violations == [], other.violations
    romeo.leave()


def test_muc_19_password_protected_room_refuses_the_invite_with_403(alice, ua, run_id):
    room = make_room(alice, "w" + run_id)
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
                          "type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig"
                          "</value></field><field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field>"
                          "<field var='muc#roomconfig_roomsecret'><value>capulet</value></field></x></query>")
    with pytest.raises(SipError) as e:
        join(ua, room)
    # XEP-0045 not-authorized: 401 without a challenge would be wrong; 403.
    assert e.value.code == 403, e.value.code


def test_muc_destroyed_room_ends_the_sip_session(alice, room_ua, run_id):
    room = make_room(alice, "d" + run_id)
    rs = room_ua.join("sip:" + room, GW, ROMEO_URI, nickname="Romeo")
    alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'>"
                          "<destroy><reason>closing</reason></destroy></query>")
    assert rs.wait_bye(10), "the SIP user's session ends with BYE when the room is destroyed"
