//! MUC-23, MUC-24, MUC-25: the message table of a SIP user in an XMPP room.

use super::*;
use crate::xmpp::xml::BuilderExt;

fn membership() -> Membership {
    Membership {
        room: BareJid::new("coven@conference.example.com").unwrap(),
        room_uri: SipAddr::parse("sip:coven@conference.example.com").unwrap(),
        occupant: FullJid::new("romeo@sip.example.com/muc-1").unwrap(),
        user_uri: "sip:romeo@example.net".into(),
        nick: "Romeo".into(),
    }
}

fn cpim(to: &str, inner_type: &str, body: &str) -> Vec<u8> {
    format!(
        "From: <sip:romeo@example.net>\r\nTo: <{to}>\r\nDateTime: 2026-12-07T12:00:00Z\r\n\r\nContent-Type: {inner_type}\r\n\r\n{body}"
    )
    .into_bytes()
}

fn message(out: Outgoing) -> Message {
    let Outgoing::Message(m) = out;
    *m
}

#[test]
fn muc_23_cpim_to_the_room_is_groupchat() {
    let m = membership();
    let body = cpim("sip:coven@conference.example.com", "text/plain", "Hi all");
    let msg = message(from_sip(&m, "message/cpim", &body, "id1").unwrap());
    assert_eq!(msg.type_, MessageType::Groupchat);
    assert_eq!(msg.to.unwrap().to_string(), "coven@conference.example.com");
    assert_eq!(msg.from.unwrap().to_string(), "romeo@sip.example.com/muc-1");
    assert_eq!(msg.id.unwrap().0, "id1");
    assert_eq!(
        msg.bodies[&xmpp_parsers::message::Lang::default()],
        "Hi all"
    );
}

#[test]
fn muc_23_cpim_to_a_participant_is_a_private_chat() {
    let m = membership();
    let body = cpim(
        "sip:coven@conference.example.com;gr=Juliet",
        "text/plain",
        "psst",
    );
    let msg = message(from_sip(&m, "message/cpim", &body, "id2").unwrap());
    assert_eq!(msg.type_, MessageType::Chat);
    assert_eq!(
        msg.to.unwrap().to_string(),
        "coven@conference.example.com/Juliet"
    );
    assert!(msg
        .payloads
        .iter()
        .any(|p| p.is("x", xmpp_parsers::ns::MUC_USER)));
}

#[test]
fn muc_23_refusals_carry_the_msrp_code() {
    let m = membership();
    let table: &[(&str, Vec<u8>, u16)] = &[
        // broken CPIM (no blank lines)
        (
            "message/cpim",
            b"To: <sip:coven@conference.example.com>".to_vec(),
            400,
        ),
        // inner content we cannot carry
        (
            "message/cpim",
            cpim("sip:coven@conference.example.com", "image/png", "x"),
            415,
        ),
        // a To outside the room
        (
            "message/cpim",
            cpim("sip:juliet@example.com", "text/plain", "x"),
            404,
        ),
        // a private message to oneself
        (
            "message/cpim",
            cpim(
                "sip:coven@conference.example.com;gr=Romeo",
                "text/plain",
                "x",
            ),
            403,
        ),
        // nothing to say
        (
            "message/cpim",
            cpim("sip:coven@conference.example.com", "text/plain", "  "),
            400,
        ),
        // not UTF-8
        ("text/plain", vec![0xff, 0xfe], 415),
        ("application/octet-stream", b"x".to_vec(), 415),
    ];
    for (ct, body, code) in table {
        assert_eq!(
            from_sip(&m, ct, body, "i").unwrap_err(),
            *code,
            "{ct} {:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn muc_23_bare_text_goes_to_the_room_and_control_chars_are_dropped() {
    let m = membership();
    let msg = message(from_sip(&m, "text/plain", b"a\x07b", "i").unwrap());
    assert_eq!(msg.type_, MessageType::Groupchat);
    assert_eq!(msg.bodies[&xmpp_parsers::message::Lang::default()], "ab");
}

fn from_room(type_: MessageType, nick: &str, body: &str) -> Message {
    let mut msg = Message::new_with_type(
        type_,
        Some(Jid::new("romeo@sip.example.com/muc-1").unwrap()),
    );
    msg.from = Some(Jid::new(&format!("coven@conference.example.com/{nick}")).unwrap());
    msg.bodies.insert(Default::default(), body.into());
    msg
}

#[test]
fn muc_25_groupchat_becomes_cpim_from_the_participant_to_the_room() {
    let m = membership();
    let out = to_sip(&m, &from_room(MessageType::Groupchat, "Juliet", "Hello")).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "From: \"Juliet\" <sip:coven@conference.example.com;gr=Juliet>\r\n\
         To: <sip:coven@conference.example.com>\r\n\r\n\
         Content-Type: text/plain;charset=UTF-8\r\n\r\nHello"
    );
    // It is itself valid CPIM.
    let c = crate::im::cpim::unwrap(text.as_bytes()).unwrap();
    assert_eq!(c.body, b"Hello");
}

#[test]
fn muc_25_private_message_is_addressed_to_the_sip_user() {
    let m = membership();
    let out = to_sip(&m, &from_room(MessageType::Chat, "Juliet", "psst")).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("To: <sip:romeo@example.net>\r\n"), "{text}");
}

#[test]
fn muc_25_history_keeps_its_time() {
    let m = membership();
    let mut msg = from_room(MessageType::Groupchat, "Juliet", "old");
    msg.payloads.push(
        Element::builder("delay", xmpp_parsers::ns::DELAY)
            .a("stamp", "2026-12-01T10:00:00Z")
            .build(),
    );
    let text = String::from_utf8(to_sip(&m, &msg).unwrap()).unwrap();
    assert!(
        text.contains("DateTime: 2026-12-01T10:00:00Z\r\n"),
        "{text}"
    );
}

#[test]
fn muc_24_own_reflection_and_non_messages_are_not_sent() {
    let m = membership();
    assert!(to_sip(&m, &from_room(MessageType::Groupchat, "Romeo", "mine")).is_none());
    let mut subject = from_room(MessageType::Groupchat, "Juliet", "");
    subject.bodies.clear();
    assert!(to_sip(&m, &subject).is_none());
    let mut other = from_room(MessageType::Groupchat, "Juliet", "x");
    other.from = Some(Jid::new("other@conference.example.com/Juliet").unwrap());
    assert!(to_sip(&m, &other).is_none());
    assert!(to_sip(&m, &from_room(MessageType::Error, "Juliet", "x")).is_none());
}

#[test]
fn display_names_are_quoted_safely() {
    let m = membership();
    let out = to_sip(&m, &from_room(MessageType::Groupchat, "J \"the\" \\", "x")).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("From: \"J \\\"the\\\" \\\\\" <"), "{text}");
}
