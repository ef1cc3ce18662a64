//! The gateway as focus (RFC 7702 §6.2): MUC-20..MUC-22, against Example 31 (presences in)
//! and Example 32 (document out).

use std::collections::BTreeMap;

use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::user::{Affiliation, Role};
use xmpp_parsers::presence::Presence;

use super::confinfo::{parse, to_xml, State};
use super::focus::{diff, MucOccupant, Notifier, OccupantList, PresenceEffect};
use crate::addr::SipAddr;

const EX32: &[u8] = include_bytes!("../../tests/fixtures/muc/rfc7702-ex32-full.xml");

fn room() -> SipAddr {
    SipAddr::parse("sip:capulet@rooms.example.com").unwrap()
}

fn presence(xml: &str) -> Presence {
    let xml = xml.replacen(
        "<presence ",
        &format!("<presence xmlns='{}' ", xmpp_parsers::ns::DEFAULT_NS),
        1,
    );
    Presence::try_from(xml.parse::<Element>().unwrap()).unwrap()
}

/// RFC 7702 Example 31 (F41), in the order XEP-0045 sends it: others first, self last (the
/// example prints Romeo's self-presence first).
fn example_31() -> Vec<Presence> {
    ["Ben", "JuliC"]
        .iter()
        .map(|nick| {
            presence(&format!(
                "<presence from='capulet@rooms.example.com/{nick}' to='romeo@example.org/dr4hcr0st3lup4c'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>"
            ))
        })
        .chain([presence(
            "<presence from='capulet@rooms.example.com/Romeo' to='romeo@example.org/dr4hcr0st3lup4c'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='110'/></x></presence>",
        )])
        .collect()
}

fn participant() -> MucOccupant {
    MucOccupant {
        role: Role::Participant,
        affiliation: Affiliation::None,
        jid: None,
    }
}

#[test]
fn muc_21_muc_22_collect_until_self_presence() {
    let mut list = OccupantList::new();
    let effects: Vec<_> = example_31()
        .iter()
        .map(|p| list.apply_presence(p))
        .collect();
    assert_eq!(
        effects,
        [
            PresenceEffect::Changed,
            PresenceEffect::Changed,
            PresenceEffect::RosterComplete
        ]
    );
    assert!(list.is_complete());
    assert_eq!(list.len(), 3);
    // The same presence again changes nothing.
    assert_eq!(
        list.apply_presence(&example_31()[0]),
        PresenceEffect::Ignored
    );
}

#[test]
fn muc_22_first_notify_is_full_state_version_0_like_example_32() {
    let mut list = OccupantList::new();
    for p in example_31() {
        list.apply_presence(&p);
    }
    let mut notifier = Notifier::new(room());
    let doc = notifier.full(&list, Some("Today in Verona"));
    assert_eq!((doc.state, doc.version), (State::Full, 0));
    assert_eq!(doc.entity, "sip:capulet@rooms.example.com");
    // Example 32's users (JuliC and Ben) are ours too, element for element, except the media
    // ids (the example numbers them, ours are "1") and Romeo's own entry, which we include.
    let golden = parse(EX32).unwrap();
    let ours = doc.users.as_ref().unwrap();
    for mut expected in golden.users.unwrap().users {
        let nick = expected.display_text.clone().unwrap();
        let mine = ours
            .users
            .iter()
            .find(|u| u.display_text.as_deref() == Some(&nick))
            .unwrap_or_else(|| panic!("{nick} missing"));
        expected.endpoints[0].media[0].id = "1".into();
        assert_eq!(mine, &expected, "{nick}");
    }
    assert_eq!(ours.users.len(), 3);
    assert_eq!(
        doc.description.as_ref().unwrap().subject.as_deref(),
        Some("Today in Verona")
    );
    let xml = to_xml(&doc);
    assert_eq!(parse(xml.as_bytes()).unwrap(), doc);
}

#[test]
fn muc_22_later_changes_are_partial_with_only_the_changed_users() {
    let mut list = OccupantList::new();
    for p in example_31() {
        list.apply_presence(&p);
    }
    let mut notifier = Notifier::new(room());
    notifier.full(&list, None);
    assert_eq!(notifier.partial(&list, None), None, "nothing changed");

    // Ben leaves, the Nurse arrives, JuliC becomes moderator.
    list.apply_presence(&presence(
        "<presence type='unavailable' from='capulet@rooms.example.com/Ben' to='romeo@example.org/x'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/></x></presence>",
    ));
    list.apply_presence(&presence(
        "<presence from='capulet@rooms.example.com/Nurse' to='romeo@example.org/x'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x></presence>",
    ));
    list.apply_presence(&presence(
        "<presence from='capulet@rooms.example.com/JuliC' to='romeo@example.org/x'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='moderator'/></x></presence>",
    ));
    let doc = notifier.partial(&list, None).unwrap();
    assert_eq!((doc.state, doc.version), (State::Partial, 1));
    assert_eq!(doc.description, None, "subject unchanged");
    let users = doc.users.as_ref().unwrap();
    assert_eq!(users.state, State::Partial);
    let summary: Vec<(String, State, Vec<String>)> = users
        .users
        .iter()
        .map(|u| (u.entity.clone(), u.state, u.roles.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "sip:capulet@rooms.example.com;gr=Ben".into(),
                State::Deleted,
                vec![]
            ),
            (
                "sip:capulet@rooms.example.com;gr=JuliC".into(),
                State::Full,
                vec!["moderator".into()]
            ),
            (
                "sip:capulet@rooms.example.com;gr=Nurse".into(),
                State::Full,
                vec!["participant".into()]
            ),
        ]
    );
    let xml = to_xml(&doc);
    assert_eq!(parse(xml.as_bytes()).unwrap(), doc);
    // Subject change alone: a partial document with only the description.
    let doc = notifier.partial(&list, Some("Tomorrow")).unwrap();
    assert_eq!(doc.version, 2);
    assert_eq!(doc.users, None);
    assert_eq!(
        doc.description.unwrap().subject.as_deref(),
        Some("Tomorrow")
    );
    assert_eq!(notifier.next_version(), 3);
}

#[test]
fn muc_22_nick_change_is_a_deletion_and_an_arrival() {
    let mut list = OccupantList::new();
    for p in example_31() {
        list.apply_presence(&p);
    }
    let mut notifier = Notifier::new(room());
    notifier.full(&list, None);
    list.apply_presence(&presence(
        "<presence type='unavailable' from='capulet@rooms.example.com/Ben' to='romeo@example.org/x'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant' nick='Benvolio'/><status code='303'/></x></presence>",
    ));
    list.apply_presence(&presence(
        "<presence from='capulet@rooms.example.com/Benvolio' to='romeo@example.org/x'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>",
    ));
    let doc = notifier.partial(&list, None).unwrap();
    let states: Vec<(String, State)> = doc
        .users
        .unwrap()
        .users
        .into_iter()
        .map(|u| (u.display_text.unwrap_or_default(), u.state))
        .collect();
    assert_eq!(
        states,
        [
            ("".into(), State::Deleted),
            ("Benvolio".into(), State::Full)
        ]
    );
}

#[test]
fn muc_22_nicknames_are_escaped_in_the_entity() {
    let mut list = OccupantList::new();
    list.insert("Lady Capulet;x", participant());
    let doc = Notifier::new(room()).full(&list, None);
    let user = &doc.users.unwrap().users[0];
    assert_eq!(
        user.entity,
        "sip:capulet@rooms.example.com;gr=Lady%20Capulet%3Bx"
    );
    assert_eq!(
        SipAddr::parse(&user.entity).unwrap().gr.as_deref(),
        Some("Lady Capulet;x")
    );
}

#[test]
fn muc_20_partial_before_any_full_document_is_full() {
    let mut list = OccupantList::new();
    list.insert("Ben", participant());
    let mut notifier = Notifier::new(room());
    let doc = notifier.partial(&list, None).unwrap();
    assert_eq!((doc.state, doc.version), (State::Full, 0));
}

/// Hundreds of occupants: a change costs one linear merge walk, not a pairwise comparison.
#[test]
fn diff_of_a_large_room_is_linear_and_exact() {
    let old: BTreeMap<String, MucOccupant> = (0..2000)
        .map(|i| (format!("nick{i:05}"), participant()))
        .collect();
    let mut new = old.clone();
    new.remove("nick00010");
    new.insert("zz-new".into(), participant());
    if let Some(o) = new.get_mut("nick01000") {
        o.role = Role::Visitor;
    }
    // Affiliation and real JID are not in the document: no change to report.
    if let Some(o) = new.get_mut("nick01500") {
        o.affiliation = Affiliation::Member;
    }
    let started = std::time::Instant::now();
    let users = diff(&room(), &old, &new);
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    let entities: Vec<(&str, State)> = users
        .iter()
        .map(|u| (u.entity.rsplit('=').next().unwrap(), u.state))
        .collect();
    assert_eq!(
        entities,
        [
            ("nick00010", State::Deleted),
            ("nick01000", State::Full),
            ("zz-new", State::Full)
        ]
    );
}

#[test]
fn presences_that_are_not_occupant_presences_are_ignored() {
    let mut list = OccupantList::new();
    let bare = presence("<presence from='capulet@rooms.example.com' to='romeo@example.org/x'/>");
    assert_eq!(list.apply_presence(&bare), PresenceEffect::Ignored);
    let unknown_leave = presence(
        "<presence type='unavailable' from='capulet@rooms.example.com/Nobody' to='romeo@example.org/x'/>",
    );
    assert_eq!(list.apply_presence(&unknown_leave), PresenceEffect::Ignored);
    assert!(list.is_empty());
}
