//! Chat-room MSRP input (RFC 7701, RFC 7702 §5.5, §6.3) on arbitrary bytes: what a SIP user
//! or a room's switch can send the gateway inside a chat room.
//!
//! Input: the first byte picks the part; the rest is its input.
//!
//! * 0: MSRP frames into a chat-room session (`set_chatroom`), where NICKNAME is understood;
//!   every NICKNAME reaching the driver is answered, alternately 200 and 425.
//!   Invariants: no panic; every frame the session writes decodes as one frame; a nickname
//!   handed to the driver is 1..=1023 characters without control characters and survives
//!   `quote` -> `unquote`; answering it writes exactly one response. Complete messages are
//!   held (MUC-24): every other one is answered (200, 403), once only; the others are
//!   answered when their time is up, after which no held answer has a deadline in the past.
//! * 1: a SEND body (CPIM when it parses as one) from a SIP user in an XMPP room through
//!   `muc::bridge::from_sip`. Invariants: a refusal is 400, 403, 404 or 415, and `check`
//!   refuses exactly what `from_sip` refuses for content; an accepted message has a non-empty
//!   XML-safe body and survives the wire as the same xmpp-parsers `Message`.
//! * 2: a SEND body from a SIP room's switch through `muc::guest::from_cpim`. Invariants: a
//!   refusal is 400 or 415; an accepted message comes from an occupant JID of the room, to
//!   the user, and survives the wire.
//! * 3: a `Use-Nickname` value: `unquote` never panics and `unquote(quote(n)) == n`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::addr::{BareJid, FullJid, Jid, SipAddr};
use stox::chat::msrp::chunk::Budget;
use stox::chat::msrp::session::nickname::{quote, unquote};
use stox::chat::msrp::{Decoder, Event, MsrpUri, Output, Session, Settings};
use stox::muc::bridge::{self, Membership, Outgoing};
use stox::muc::guest::{self, Guest};
use xmpp_parsers::message::Message;
use xmpp_parsers::minidom::Element;

fn frames(bytes: &[u8]) -> Vec<stox::chat::msrp::Frame> {
    let mut d = Decoder::new(4096);
    d.extend(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        out.push(f);
    }
    out
}

fn survives_the_wire(m: &Message) {
    let el = Element::from(m.clone());
    let text = String::from(&el);
    let back: Element = text.parse().expect("our message does not parse back");
    let again = Message::try_from(back).expect("xmpp-parsers refuses our message");
    assert_eq!(&again, m, "the message changed on the wire");
}

fn session(data: &[u8]) {
    let me = MsrpUri::parse("msrp://gw.example.com:7654/jshA7weztas;tcp").unwrap();
    let peer = MsrpUri::parse("msrp://ua.example.net:12763/kjhd37s2s20w2a;tcp").unwrap();
    let settings = Settings {
        max_message: 2048,
        max_held: 4096,
        validate: Some(bridge::check),
        ..Settings::default()
    };
    let mut s = Session::new(me, vec![peer], settings, Budget::new(8192));
    s.set_chatroom();
    s.defer_answers();
    let now = std::time::Instant::now();
    let mut answer_ok = true;
    let mut held: Vec<String> = Vec::new();
    for f in frames(data) {
        s.handle_frame(now, f);
        let mut asks = Vec::new();
        while let Some(o) = s.poll_output() {
            match o {
                Output::Write(b) => {
                    assert_eq!(frames(&b).len(), 1, "the session wrote a bad frame")
                }
                Output::Event(Event::Nickname { tid, nickname }) => {
                    let n = nickname.chars().count();
                    assert!((1..=1023).contains(&n), "nickname of {n} characters");
                    assert!(
                        !nickname.chars().any(char::is_control),
                        "control character in {nickname:?}"
                    );
                    assert_eq!(
                        unquote(&quote(&nickname)).as_deref(),
                        Some(nickname.as_str())
                    );
                    asks.push(tid);
                }
                Output::Event(Event::Message(r)) => held.push(r.tid),
                Output::Event(_) => {}
            }
        }
        // Complete messages wait for the driver (MUC-24): answer every other one, 200 and
        // 403 in turn; the rest are answered by the timeout below.
        for (i, tid) in held.drain(..).enumerate() {
            if i % 2 == 0 {
                let code = if i % 4 == 0 { 200 } else { 403 };
                assert!(s.answer_message(&tid, code), "a held message was forgotten");
                assert!(!s.answer_message(&tid, code), "a message answered twice");
            }
        }
        for tid in asks {
            let code = if answer_ok { 200 } else { 425 };
            answer_ok = !answer_ok;
            // The request may have asked for no response (Failure-Report: no): then nothing
            // is written, but the request must still be known.
            assert!(
                s.answer_nickname(&tid, code),
                "a waiting NICKNAME was forgotten"
            );
            let mut writes = 0;
            while let Some(o) = s.poll_output() {
                if let Output::Write(b) = o {
                    assert_eq!(frames(&b).len(), 1, "a bad NICKNAME response");
                    writes += 1;
                }
            }
            assert!(writes <= 1, "more than one response to one NICKNAME");
        }
    }
    // Whatever is still held is answered when its time is up, and nothing stays held.
    let later = now + std::time::Duration::from_secs(60);
    s.handle_timeout(later);
    while let Some(o) = s.poll_output() {
        if let Output::Write(b) = o {
            assert_eq!(frames(&b).len(), 1, "a bad late answer");
        }
    }
    assert!(
        s.poll_timeout().is_none_or(|t| t > later),
        "a held answer outlived its deadline"
    );
}

fn sip_user_in_xmpp_room(data: &[u8]) {
    let m = Membership {
        room: BareJid::new("coven@conference.example.com").unwrap(),
        room_uri: SipAddr::parse("sip:coven@conference.example.com").unwrap(),
        occupant: FullJid::new("romeo@sip.example.com/muc-1").unwrap(),
        user_uri: "sip:romeo@example.net".into(),
        nick: "Romeo".into(),
    };
    for ct in ["message/cpim", "text/plain"] {
        let r = bridge::from_sip(&m, ct, data, "id-1");
        let checked = bridge::check(ct, data);
        match &r {
            Err(code) => {
                assert!(
                    [400, 403, 404, 415].contains(code),
                    "unexpected MSRP code {code}"
                );
                if matches!(code, 400 | 415) && checked.is_ok() {
                    // 400 from a bad To URI is the only refusal `check` cannot see.
                    assert_eq!(
                        *code, 400,
                        "check accepted what from_sip refused with {code}"
                    );
                }
            }
            Ok(Outgoing::Message(msg)) => {
                assert!(checked.is_ok(), "check refused what from_sip accepted");
                let body = msg.get_best_body(vec![]).expect("no body").1;
                assert!(!body.trim().is_empty(), "empty body");
                survives_the_wire(msg);
            }
        }
    }
}

fn xmpp_user_in_sip_room(data: &[u8]) {
    let g = Guest {
        room: BareJid::new("capulet@sip.example.com").unwrap(),
        room_uri: SipAddr::parse("sip:capulet@example.net").unwrap(),
        user: Jid::new("juliet@example.com/balcony").unwrap(),
        user_uri: "sip:juliet@example.com".into(),
        nick: "JuliC".into(),
    };
    let nick_of = |uri: &str| (uri == "sip:romeo@example.org").then(|| "Romeo".to_owned());
    match guest::from_cpim(&g, "message/cpim", data, nick_of) {
        Err(code) => assert!([400, 415].contains(&code), "unexpected MSRP code {code}"),
        Ok(msg) => {
            let from = msg.from.clone().expect("no from");
            assert_eq!(from.to_bare(), g.room, "not from the room");
            assert!(from.resource().is_some(), "not from an occupant");
            assert_eq!(msg.to.as_ref(), Some(&g.user), "not to the user");
            survives_the_wire(&msg);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&part, rest)) = data.split_first() else {
        return;
    };
    match part % 4 {
        0 => session(rest),
        1 => sip_user_in_xmpp_room(rest),
        2 => xmpp_user_in_sip_room(rest),
        _ => {
            let v = String::from_utf8_lossy(rest);
            if let Some(n) = unquote(&v) {
                assert_eq!(
                    unquote(&quote(&n)).as_deref(),
                    Some(n.as_str()),
                    "quote/unquote"
                );
            }
        }
    }
});
