//! RFC 4575 documents: the RFC 4575 §7 and RFC 7702 §5.4/§6.2 examples as golden inputs
//! (tests/fixtures/muc/, errata fixed as noted in each file), the writer, and hostile bodies.

use super::confinfo::*;
use crate::errmap::DefinedCondition;

const EX9: &[u8] = include_bytes!("../../tests/fixtures/muc/rfc7702-ex9-full.xml");
const EX32: &[u8] = include_bytes!("../../tests/fixtures/muc/rfc7702-ex32-full.xml");
const BASIC: &[u8] = include_bytes!("../../tests/fixtures/muc/rfc4575-7.1-basic.xml");
const RICH: &[u8] = include_bytes!("../../tests/fixtures/muc/rfc4575-7.2-rich-partial.xml");
const V1: &[u8] = include_bytes!("../../tests/fixtures/muc/partial-v1-ben-leaves-nurse-joins.xml");
const V2: &[u8] =
    include_bytes!("../../tests/fixtures/muc/partial-v2-romeo-renamed-nurse-disconnected.xml");
const DELETED: &[u8] = include_bytes!("../../tests/fixtures/muc/deleted-conference.xml");

fn round_trip(doc: &ConferenceInfo) {
    let xml = to_xml(doc);
    assert_eq!(parse(xml.as_bytes()).as_ref(), Ok(doc), "{xml}");
}

#[test]
fn muc_8_rfc7702_example_9_full_roster() {
    let doc = parse(EX9).unwrap();
    assert_eq!(doc.entity, "sip:3402934234@chat.example.org");
    assert_eq!((doc.state, doc.version), (State::Full, 0));
    let description = doc.description.as_ref().unwrap();
    assert_eq!(description.subject.as_deref(), Some("Today in Verona"));
    let users = &doc.users.as_ref().unwrap().users;
    let names: Vec<_> = users
        .iter()
        .map(|u| u.display_text.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["Romeo", "Ben", "JuliC"]);
    let romeo = &users[0];
    assert_eq!(romeo.entity, "sip:montague@chat.example.org;gr=Romeo");
    assert_eq!(romeo.state, State::Full);
    assert_eq!(romeo.roles, ["participant"]);
    assert_eq!(
        romeo.associated_aors,
        ["xmpp:romeo@example.org/dr4hcr0st3lup4c"]
    );
    let ep = &romeo.endpoints[0];
    assert_eq!(ep.status, Some(EndpointStatus::Connected));
    assert_eq!(
        ep.joining_info.as_ref().unwrap().when.as_deref(),
        Some("2013-12-12T10:01:03.691128+01:00")
    );
    assert_eq!(ep.media[0].id, "211835820");
    assert_eq!(ep.media[0].media_type.as_deref(), Some("message"));
    round_trip(&doc);
}

#[test]
fn muc_8_rfc7702_example_9_verbatim_without_namespace_is_refused() {
    // The RFC prints the body without xmlns (an erratum: RFC 4575 §4.2 defines the
    // namespace); such a body is refused with a 400 that says so.
    let verbatim = String::from_utf8(EX9.to_vec())
        .unwrap()
        .replace(" xmlns=\"urn:ietf:params:xml:ns:conference-info\"", "");
    assert!(!verbatim.contains("xmlns="));
    let err = parse(verbatim.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
    assert_eq!(err.rejection().sip.code, 400);
}

#[test]
fn muc_22_rfc7702_example_32_full_roster() {
    let doc = parse(EX32).unwrap();
    assert_eq!(doc.entity, "sip:capulet@rooms.example.com");
    let users = &doc.users.as_ref().unwrap().users;
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].entity, "sip:capulet@rooms.example.com;gr=JuliC");
    assert_eq!(users[1].display_text.as_deref(), Some("Ben"));
    round_trip(&doc);
}

#[test]
fn rfc4575_7_1_basic_example() {
    let doc = parse(BASIC).unwrap();
    assert_eq!(doc.entity, "sips:conf233@example.com");
    assert_eq!((doc.state, doc.version), (State::Full, 1));
    assert_eq!(
        doc.description.as_ref().unwrap().subject.as_deref(),
        Some("Agenda: This month's goals")
    );
    let users = &doc.users.as_ref().unwrap().users;
    let bob = &users[0].endpoints[0];
    assert_eq!(bob.entity, "sip:bob@pc33.example.com");
    assert_eq!(bob.display_text.as_deref(), Some("Bob's Laptop"));
    assert_eq!(bob.status, Some(EndpointStatus::Disconnected));
    let info = bob.disconnection_info.as_ref().unwrap();
    assert_eq!(info.reason.as_deref(), Some("bad voice quality"));
    assert_eq!(info.by.as_deref(), Some("sip:mike@example.com"));
    let alice = &users[1].endpoints[0];
    assert_eq!(alice.entity, "sip:4kfk4j392jsu@example.com;grid=433kj4j3u");
    assert_eq!(alice.status, Some(EndpointStatus::Connected));
    assert_eq!(alice.media[0].media_type.as_deref(), Some("audio"));
    round_trip(&doc);
}

#[test]
fn muc_9_rfc4575_7_2_partial_example_users_without_state_are_partial() {
    let doc = parse(RICH).unwrap();
    assert_eq!((doc.state, doc.version), (State::Partial, 5));
    let users = doc.users.as_ref().unwrap();
    // The example's <users> has no state; read as partial so Bob's update does not flush the
    // other 31 participants (see `parse`).
    assert_eq!(users.state, State::Partial);
    let bob = &users.users[0];
    assert_eq!(bob.state, State::Full);
    assert_eq!(bob.associated_aors, ["mailto:bob@example.com"]);
    assert_eq!(bob.endpoints[0].status, Some(EndpointStatus::Disconnecting));
    round_trip(&doc);
}

#[test]
fn muc_9_partial_fixtures() {
    let v1 = parse(V1).unwrap();
    let users = &v1.users.as_ref().unwrap().users;
    assert_eq!(users[0].state, State::Deleted);
    assert_eq!(users[1].display_text.as_deref(), Some("Nurse"));
    let v2 = parse(V2).unwrap();
    let romeo = &v2.users.as_ref().unwrap().users[0];
    assert_eq!(romeo.nickname.as_deref(), Some("Romeo2"));
    assert_eq!(romeo.state, State::Partial);
    let deleted = parse(DELETED).unwrap();
    assert_eq!((deleted.state, deleted.version), (State::Deleted, 3));
    for doc in [v1, v2, deleted] {
        round_trip(&doc);
    }
}

#[test]
fn muc_30_xcon_nickname_qualified_or_not() {
    let unqualified = br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:r@h" version="0"><users><user entity="sip:r@h;gr=a" nickname="Nick"/></users></conference-info>"#;
    let user = &parse(unqualified).unwrap().users.unwrap().users[0];
    assert_eq!(user.nickname.as_deref(), Some("Nick"));
}

#[test]
fn deleted_elements_lose_their_content() {
    let body = br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:r@h" state="partial" version="2"><users state="partial"><user entity="sip:a@h" state="deleted"><display-text>ignored</display-text></user></users></conference-info>"#;
    let user = &parse(body).unwrap().users.unwrap().users[0];
    assert_eq!(user.display_text, None);
    assert_eq!(user.state, State::Deleted);
}

#[test]
fn writer_declares_xcon_only_when_used_and_escapes() {
    let mut doc = parse(EX9).unwrap();
    assert!(!to_xml(&doc).contains("xmlns:xcon"));
    let user = &mut doc.users.as_mut().unwrap().users[0];
    user.nickname = Some("R&'<\"\t\r\nX".into());
    user.display_text = Some("a]]>b\rc".into());
    let xml = to_xml(&doc);
    assert!(xml.contains("xmlns:xcon='urn:ietf:params:xml:ns:xcon-conference-info'"));
    round_trip(&doc);
}

#[test]
fn versions_are_unsigned_32_bit() {
    for (v, ok) in [
        ("0", Some(0)),
        (" 7 ", Some(7)),
        ("+3", Some(3)),
        ("4294967295", Some(u32::MAX)),
        ("4294967296", None),
        ("-1", None),
        ("1.0", None),
        ("", None),
        ("x", None),
    ] {
        let body =
            format!("<conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h' version='{v}'/>");
        match ok {
            Some(n) => assert_eq!(parse(body.as_bytes()).unwrap().version, n, "{v:?}"),
            None => assert!(
                matches!(parse(body.as_bytes()), Err(ConfInfoError::BadVersion(_))),
                "{v:?}"
            ),
        }
    }
}

fn doc_with_users(users: &str) -> String {
    format!("<conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h' version='0'><users>{users}</users></conference-info>")
}

/// One malformed-body case: what it is, the body, the error it must give, the SIP code.
type Case = (&'static str, String, fn(&ConfInfoError) -> bool, u16);

/// Hostile and malformed bodies.
#[test]
fn malformed_bodies_are_refused_with_their_rendering() {
    let deep = format!(
        "<conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h' version='0'>{}{}</conference-info>",
        "<x>".repeat(MAX_DEPTH),
        "</x>".repeat(MAX_DEPTH)
    );
    let many_users = doc_with_users(
        &(0..=MAX_USERS)
            .map(|i| format!("<user entity='sip:u{i}@h'/>"))
            .collect::<String>(),
    );
    let many_roles = doc_with_users(&format!(
        "<user entity='sip:a@h'><roles>{}</roles></user>",
        "<entry>r</entry>".repeat(MAX_CHILDREN + 1)
    ));
    let attrs: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='x'")).collect();
    let long_text = doc_with_users(&format!(
        "<user entity='sip:a@h'><display-text>{}</display-text></user>",
        "n".repeat(MAX_TEXT_BYTES + 1)
    ));
    let huge = format!(
        "<conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h' version='0'>{}</conference-info>",
        " ".repeat(MAX_BODY_BYTES)
    );
    let cases: Vec<Case> = vec![
        ("empty", String::new(), |e| matches!(e, ConfInfoError::Xml(_)), 400),
        (
            "truncated",
            doc_with_users("<user entity='sip:a@h'><display")[..80].to_owned(),
            |e| matches!(e, ConfInfoError::Xml(_)),
            400,
        ),
        (
            "wrong namespace",
            "<conference-info xmlns='urn:example:other' entity='sip:r@h' version='0'/>".into(),
            |e| matches!(e, ConfInfoError::NotConferenceInfo(_)),
            400,
        ),
        (
            "PIDF instead",
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@h'/>".into(),
            |e| matches!(e, ConfInfoError::NotConferenceInfo(_)),
            400,
        ),
        ("huge", huge, |e| matches!(e, ConfInfoError::TooLarge { .. }), 413),
        ("deep nesting", deep, |e| matches!(e, ConfInfoError::TooDeep(_)), 400),
        (
            "too many users",
            many_users,
            |e| matches!(e, ConfInfoError::TooMany { element: "user", .. }),
            413,
        ),
        (
            "too many roles",
            many_roles,
            |e| matches!(e, ConfInfoError::TooMany { .. }),
            413,
        ),
        (
            "too many attributes",
            format!("<conference-info xmlns='{CONFINFO_NS}'{attrs}/>"),
            |e| matches!(e, ConfInfoError::TooManyAttributes(_)),
            413,
        ),
        ("text too long", long_text, |e| matches!(e, ConfInfoError::TextTooLong(_)), 400),
        (
            "no version",
            format!("<conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h'/>"),
            |e| matches!(e, ConfInfoError::Missing { attribute: "version", .. }),
            400,
        ),
        (
            "no entity",
            format!("<conference-info xmlns='{CONFINFO_NS}' version='0'/>"),
            |e| matches!(e, ConfInfoError::Missing { attribute: "entity", .. }),
            400,
        ),
        (
            "user without entity",
            doc_with_users("<user><display-text>x</display-text></user>"),
            |e| matches!(e, ConfInfoError::Missing { element: "user", .. }),
            400,
        ),
        (
            "duplicate users",
            doc_with_users("<user entity='sip:a@h'/><user entity='sip:a@h'/>"),
            |e| matches!(e, ConfInfoError::Duplicate { element: "user", .. }),
            400,
        ),
        (
            "duplicate endpoints",
            doc_with_users(
                "<user entity='sip:a@h'><endpoint entity='e'/><endpoint entity='e'/></user>",
            ),
            |e| matches!(e, ConfInfoError::Duplicate { element: "endpoint", .. }),
            400,
        ),
        (
            "bad state",
            format!("<conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h' version='0' state='some'/>"),
            |e| matches!(e, ConfInfoError::BadValue { element: "conference-info", .. }),
            400,
        ),
        (
            "bad endpoint status",
            doc_with_users("<user entity='sip:a@h'><endpoint entity='e'><status>asleep</status></endpoint></user>"),
            |e| matches!(e, ConfInfoError::BadValue { element: "status", .. }),
            400,
        ),
        (
            "partial user in a full document",
            doc_with_users("<user entity='sip:a@h' state='partial'/>"),
            |e| matches!(e, ConfInfoError::InconsistentState("user")),
            400,
        ),
        (
            "entity expansion",
            "<!DOCTYPE c [<!ENTITY a 'aaaa'>]><conference-info xmlns='urn:ietf:params:xml:ns:conference-info' entity='&a;' version='0'/>".into(),
            |e| matches!(e, ConfInfoError::Xml(_)),
            400,
        ),
        (
            "latin-1",
            "<?xml version='1.0' encoding='ISO-8859-1'?><conference-info/>".into(),
            |e| matches!(e, ConfInfoError::NotUtf8),
            400,
        ),
        (
            "duplicate attribute",
            format!("<conference-info xmlns='{CONFINFO_NS}' entity='a' entity='b' version='0'/>"),
            |e| matches!(e, ConfInfoError::Xml(_)),
            400,
        ),
    ];
    for (what, body, expected, code) in cases {
        let err = parse(body.as_bytes()).expect_err(what);
        assert!(expected(&err), "{what}: got {err:?}");
        let rejection = err.rejection();
        assert_eq!(rejection.sip.code, code, "{what}");
        assert_eq!(
            rejection.xmpp.condition,
            DefinedCondition::ServiceUnavailable,
            "{what}"
        );
        assert!(rejection.xmpp.text.is_some(), "{what}");
    }
    assert!(matches!(
        parse(&[0xff, 0xfe, b'<']),
        Err(ConfInfoError::NotUtf8)
    ));
}

#[test]
fn unknown_elements_and_comments_are_skipped() {
    let body = format!(
        "<?xml version='1.0' standalone='no'?><!-- banner --><conference-info xmlns='{CONFINFO_NS}' entity='sip:r@h' version='4'><host-info><display-text>x</display-text></host-info><ext xmlns='urn:x'><users/></ext><users><user entity='sip:a@h'><languages>en</languages><other xmlns='urn:x'/></user></users></conference-info><!-- tail -->"
    );
    let doc = parse(body.as_bytes()).unwrap();
    assert_eq!(doc.version, 4);
    assert_eq!(doc.users.unwrap().users.len(), 1);
}
