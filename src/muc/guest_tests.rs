//! MUC-11..MUC-14: the message table of an XMPP user in a SIP room.

use super::*;

fn guest() -> Guest {
    Guest {
        room: BareJid::new("capulet@sip.example.com").unwrap(),
        room_uri: SipAddr::parse("sip:capulet@example.net").unwrap(),
        user: Jid::new("juliet@example.com/balcony").unwrap(),
        user_uri: "sip:juliet@example.com;gr=balcony".into(),
        nick: "JuliC".into(),
    }
}

fn from_user(type_: MessageType, to: &str, body: &str) -> Message {
    let mut m = Message::new_with_type(type_, Some(Jid::new(to).unwrap()));
    m.from = Some(Jid::new("juliet@example.com/balcony").unwrap());
    if !body.is_empty() {
        m.bodies.insert(Default::default(), body.into());
    }
    m
}

fn entities(nick: &str) -> Option<String> {
    (nick == "Romeo").then(|| "sip:capulet@example.net;gr=Romeo".to_owned())
}

#[test]
fn muc_11_groupchat_becomes_cpim_to_the_room() {
    let g = guest();
    let m = from_user(MessageType::Groupchat, "capulet@sip.example.com", "Hi all");
    let body = String::from_utf8(to_cpim(&g, &m, entities).unwrap().unwrap()).unwrap();
    assert_eq!(
        body,
        "From: <sip:juliet@example.com;gr=balcony>\r\nTo: <sip:capulet@example.net>\r\n\r\n\
         Content-Type: text/plain;charset=UTF-8\r\n\r\nHi all"
    );
}

#[test]
fn muc_13_private_message_goes_to_the_participant_entity() {
    let g = guest();
    let m = from_user(MessageType::Chat, "capulet@sip.example.com/Romeo", "psst");
    let body = String::from_utf8(to_cpim(&g, &m, entities).unwrap().unwrap()).unwrap();
    assert!(
        body.contains("To: <sip:capulet@example.net;gr=Romeo>\r\n"),
        "{body}"
    );
    let unknown = from_user(MessageType::Chat, "capulet@sip.example.com/Tybalt", "x");
    let err = to_cpim(&g, &unknown, entities).unwrap_err();
    assert_eq!(err.condition, DefinedCondition::ItemNotFound);
    let bad = from_user(MessageType::Groupchat, "capulet@sip.example.com/Romeo", "x");
    assert_eq!(
        to_cpim(&g, &bad, entities).unwrap_err().condition,
        DefinedCondition::BadRequest
    );
    let states = from_user(MessageType::Groupchat, "capulet@sip.example.com", "");
    assert_eq!(to_cpim(&g, &states, entities).unwrap(), None);
}

fn cpim(from: &str, to: &str, text: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: {to}\r\n\r\nContent-Type: text/plain\r\n\r\n{text}").into_bytes()
}

#[test]
fn muc_14_room_traffic_and_private_messages() {
    let g = guest();
    let nick_of = |uri: &str| (uri == "sip:romeo@example.org").then(|| "Romeo".to_owned());
    let table: &[(&str, &str, MessageType, &str)] = &[
        // a roster entity
        (
            "<sip:romeo@example.org>",
            "<sip:capulet@example.net>",
            MessageType::Groupchat,
            "capulet@sip.example.com/Romeo",
        ),
        // the switch's in-room address
        (
            "<sip:capulet@example.net;gr=Tybalt>",
            "<sip:capulet@example.net>",
            MessageType::Groupchat,
            "capulet@sip.example.com/Tybalt",
        ),
        // a display name only
        (
            "\"Nurse\" <sip:n@example.org>",
            "<sip:capulet@example.net>",
            MessageType::Groupchat,
            "capulet@sip.example.com/Nurse",
        ),
        // to the user: private
        (
            "<sip:romeo@example.org>",
            "<sip:juliet@example.com>",
            MessageType::Chat,
            "capulet@sip.example.com/Romeo",
        ),
    ];
    for (from, to, type_, jid) in table {
        let m = from_cpim(&g, "message/cpim", &cpim(from, to, "hello"), nick_of).unwrap();
        assert_eq!(&m.type_, type_, "{from} {to}");
        assert_eq!(m.from.as_ref().unwrap().to_string(), *jid);
        assert_eq!(
            m.to.as_ref().unwrap().to_string(),
            "juliet@example.com/balcony"
        );
        let private = m
            .payloads
            .iter()
            .any(|p| p.is("x", xmpp_parsers::ns::MUC_USER));
        assert_eq!(private, *type_ == MessageType::Chat);
    }
}

#[test]
fn muc_14_refusals() {
    let g = guest();
    let none = |_: &str| None;
    assert_eq!(from_cpim(&g, "text/plain", b"x", none).unwrap_err(), 415);
    assert_eq!(
        from_cpim(&g, "message/cpim", b"garbage", none).unwrap_err(),
        400
    );
    let html = b"From: <sip:a@b>\r\nTo: <sip:capulet@example.net>\r\n\r\nContent-Type: text/html\r\n\r\n<b>x</b>";
    assert_eq!(from_cpim(&g, "message/cpim", html, none).unwrap_err(), 415);
    let no_from = b"To: <sip:capulet@example.net>\r\n\r\nContent-Type: text/plain\r\n\r\nx";
    assert_eq!(
        from_cpim(&g, "message/cpim", no_from, none).unwrap_err(),
        400
    );
}

#[test]
fn muc_12_reflection_comes_from_the_own_nickname() {
    let g = guest();
    let mut m = from_user(MessageType::Groupchat, "capulet@sip.example.com", "mine");
    m.id = Some(xmpp_parsers::message::Id("m1".into()));
    let echo = reflection(&g, &m).unwrap();
    assert_eq!(
        echo.from.unwrap().to_string(),
        "capulet@sip.example.com/JuliC"
    );
    assert_eq!(echo.id.unwrap().0, "m1");
    assert_eq!(echo.type_, MessageType::Groupchat);
}
