//! The roster machine (MUC-9) and its XEP-0045 rendering (MUC-8, MUC-10, MUC-15, MUC-30),
//! driven by the RFC 7702 Example 9 roster and the partial fixtures in tests/fixtures/muc/.

use xmpp_parsers::minidom::Element;
use xmpp_parsers::muc::user::Role;
use xmpp_parsers::presence::Presence;

use super::confinfo::CONFINFO_NS;
use super::occupant::{presences, subject_message, RoomView};
use super::roster::{Input, Occupant, Output, Roster, RosterChange};
use crate::addr::{BareJid, Jid};

const EX9: &[u8] = include_bytes!("../../tests/fixtures/muc/rfc7702-ex9-full.xml");
const V1: &[u8] = include_bytes!("../../tests/fixtures/muc/partial-v1-ben-leaves-nurse-joins.xml");
const V2: &[u8] =
    include_bytes!("../../tests/fixtures/muc/partial-v2-romeo-renamed-nurse-disconnected.xml");
const DELETED: &[u8] = include_bytes!("../../tests/fixtures/muc/deleted-conference.xml");

fn drain(roster: &mut Roster) -> Vec<Output> {
    std::iter::from_fn(|| roster.poll_output()).collect()
}

fn feed(roster: &mut Roster, body: &[u8]) -> Vec<Output> {
    roster.handle(Input::Notify(body)).expect("accepted");
    drain(roster)
}

/// A roster synced to Example 9 (version 0), outputs drained.
fn synced() -> Roster {
    let mut roster = Roster::new("JuliC");
    feed(&mut roster, EX9);
    roster
}

/// What the changes say, compactly: `+nick`, `-nick`, `old>new`, `nick=role`, `*` for self.
fn summary(outputs: &[Output]) -> Vec<String> {
    let me = |o: &Occupant| if o.is_self { "*" } else { "" };
    outputs
        .iter()
        .map(|out| match out {
            Output::Change(RosterChange::Joined(o)) => format!("+{}{}", o.nick, me(o)),
            Output::Change(RosterChange::Left(o)) => format!("-{}{}", o.nick, me(o)),
            Output::Change(RosterChange::NickChanged { occupant, old_nick }) => {
                format!("{old_nick}>{}{}", occupant.nick, me(occupant))
            }
            Output::Change(RosterChange::RoleChanged(o)) => format!("{}={:?}", o.nick, o.role),
            Output::Subject(s) => format!("subject:{s}"),
            Output::Resubscribe => "resubscribe".into(),
            Output::Ended => "ended".into(),
        })
        .collect()
}

fn doc(state: &str, version: u32, users: &str) -> String {
    format!("<conference-info xmlns='{CONFINFO_NS}' entity='sip:room@h' state='{state}' version='{version}'><users state='{state}'>{users}</users></conference-info>")
}

fn view() -> RoomView {
    RoomView {
        room: BareJid::new("montague@chat.example.org").unwrap(),
        to: Jid::new("juliet@example.com/yn0cl4bnw0yr3vym").unwrap(),
        show_real_jids: false,
    }
}

fn stanza(xml: &str) -> Presence {
    let xml = xml.replacen(
        "<presence ",
        &format!("<presence xmlns='{}' ", xmpp_parsers::ns::DEFAULT_NS),
        1,
    );
    Presence::try_from(xml.parse::<Element>().unwrap()).unwrap()
}

fn rendered(outputs: &[Output]) -> Vec<Presence> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Change(c) => Some(presences(c, &view()).unwrap()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn muc_8_muc_10_example_9_roster_self_last_then_subject() {
    let mut roster = Roster::new("JuliC");
    let out = feed(&mut roster, EX9);
    assert_eq!(
        summary(&out),
        ["+Romeo", "+Ben", "+JuliC*", "subject:Today in Verona"]
    );
    assert_eq!(roster.version(), Some(0));
    // RFC 7702 Example 10 (F14), structurally.
    let expected: Vec<Presence> = ["Romeo", "Ben"]
        .iter()
        .map(|nick| {
            stanza(&format!(
                "<presence from='montague@chat.example.org/{nick}' to='juliet@example.com/yn0cl4bnw0yr3vym'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>"
            ))
        })
        .chain([stanza(
            "<presence from='montague@chat.example.org/JuliC' to='juliet@example.com/yn0cl4bnw0yr3vym'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='110'/></x></presence>",
        )])
        .collect();
    assert_eq!(rendered(&out), expected);
}

#[test]
fn muc_10_subject_message_is_groupchat_from_the_room_even_empty() {
    let m = subject_message(&view(), "Today in Verona");
    assert_eq!(m.type_, xmpp_parsers::message::MessageType::Groupchat);
    assert_eq!(m.from, Some(Jid::new("montague@chat.example.org").unwrap()));
    assert_eq!(m.subjects.values().next().unwrap(), "Today in Verona");
    let empty = subject_message(&view(), "");
    assert_eq!(empty.subjects.values().next().unwrap(), "");
    // A roster without a subject still ends with an (empty) subject.
    let mut roster = Roster::new("me");
    let out = feed(&mut roster, doc("full", 0, "").as_bytes());
    assert_eq!(summary(&out), ["subject:"]);
}

#[test]
fn muc_8_real_jid_only_in_non_anonymous_view() {
    let mut roster = Roster::new("JuliC");
    let out = feed(&mut roster, EX9);
    let Output::Change(romeo) = &out[0] else {
        panic!()
    };
    let open = RoomView {
        show_real_jids: true,
        ..view()
    };
    let p = &presences(romeo, &open).unwrap()[0];
    let x: xmpp_parsers::muc::MucUser = p.payloads[0].clone().try_into().unwrap();
    assert_eq!(
        x.items[0].jid.as_ref().map(|j| j.to_string()),
        Some("romeo@example.org/dr4hcr0st3lup4c".to_owned())
    );
}

#[test]
fn muc_9_partial_leave_and_join() {
    let mut roster = synced();
    assert_eq!(summary(&feed(&mut roster, V1)), ["-Ben", "+Nurse"]);
    assert_eq!(
        rendered(&feed(&mut synced(), V1))[0],
        stanza("<presence type='unavailable' from='montague@chat.example.org/Ben' to='juliet@example.com/yn0cl4bnw0yr3vym'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/></x></presence>")
    );
}

#[test]
fn muc_9_muc_15_muc_30_nick_change_and_disconnected_endpoint() {
    let mut roster = synced();
    feed(&mut roster, V1);
    let out = feed(&mut roster, V2);
    // The XCON nickname (Romeo2) wins over the new display text; Nurse's only endpoint is
    // disconnected, so Nurse leaves.
    assert_eq!(
        summary(&out),
        ["subject:Tomorrow in Mantua", "Romeo>Romeo2", "-Nurse"]
    );
    let pair = rendered(&out[1..2]);
    assert_eq!(
        pair,
        [
            stanza("<presence type='unavailable' from='montague@chat.example.org/Romeo' to='juliet@example.com/yn0cl4bnw0yr3vym'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant' nick='Romeo2'/><status code='303'/></x></presence>"),
            stanza("<presence from='montague@chat.example.org/Romeo2' to='juliet@example.com/yn0cl4bnw0yr3vym'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>"),
        ]
    );
}

#[test]
fn muc_15_own_nick_change_carries_110_in_both_presences() {
    let mut roster = synced();
    let out = feed(
        &mut roster,
        doc(
            "partial",
            1,
            "<user entity='sip:montague@chat.example.org;gr=JuliC' state='partial'><display-text>Juliet</display-text></user>",
        )
        .as_bytes(),
    );
    assert_eq!(summary(&out), ["JuliC>Juliet*"]);
    for p in rendered(&out) {
        let x: xmpp_parsers::muc::MucUser = p.payloads[0].clone().try_into().unwrap();
        assert!(x
            .status
            .contains(&xmpp_parsers::muc::user::Status::SelfPresence));
    }
}

#[test]
fn muc_9_stale_and_duplicate_versions_are_ignored() {
    let mut roster = synced();
    feed(&mut roster, V1);
    assert!(feed(&mut roster, V1).is_empty(), "duplicate");
    assert!(feed(&mut roster, EX9).is_empty(), "older full state");
    assert_eq!(roster.version(), Some(1));
}

#[test]
fn muc_9_gap_asks_for_full_state_once_then_resyncs() {
    let mut roster = synced();
    assert_eq!(summary(&feed(&mut roster, V2)), ["resubscribe"]);
    let later = doc("partial", 3, "<user entity='sip:x@h' state='full'/>");
    assert!(feed(&mut roster, later.as_bytes()).is_empty());
    assert_eq!(roster.version(), Some(0));
    let full = doc(
        "full",
        5,
        "<user entity='sip:montague@chat.example.org;gr=JuliC'><display-text>JuliC</display-text></user><user entity='sip:n@h'><display-text>Nurse</display-text></user>",
    );
    assert_eq!(
        summary(&feed(&mut roster, full.as_bytes())),
        ["-Ben", "-Romeo", "+Nurse"]
    );
    assert_eq!(roster.version(), Some(5));
}

#[test]
fn muc_9_malformed_update_answers_400_and_resubscribes() {
    let mut roster = synced();
    let err = roster
        .handle(Input::Notify(b"<conference-info"))
        .unwrap_err();
    assert_eq!(err.rejection().sip.code, 400);
    assert_eq!(summary(&drain(&mut roster)), ["resubscribe"]);
    assert_eq!(roster.occupants().count(), 3, "roster kept as it was");
}

#[test]
fn muc_9_partial_before_full_state_resubscribes_once() {
    let mut roster = Roster::new("me");
    assert_eq!(summary(&feed(&mut roster, V1)), ["resubscribe"]);
    assert!(feed(&mut roster, V2).is_empty());
    assert_eq!(roster.version(), None);
}

#[test]
fn muc_9_deleted_conference_empties_the_room() {
    let mut roster = synced();
    assert_eq!(
        summary(&feed(&mut roster, DELETED)),
        ["-Ben", "-JuliC*", "-Romeo", "ended"]
    );
    assert!(feed(&mut roster, EX9).is_empty(), "nothing after the end");
}

#[test]
fn muc_9_role_change_and_deleted_endpoint() {
    let mut roster = synced();
    let out = feed(
        &mut roster,
        doc(
            "partial",
            1,
            "<user entity='sip:montague@chat.example.org;gr=Ben' state='partial'><roles><entry>moderator</entry></roles></user>",
        )
        .as_bytes(),
    );
    assert_eq!(summary(&out), ["Ben=Moderator"]);
    let out = feed(
        &mut roster,
        doc(
            "partial",
            2,
            "<user entity='sip:montague@chat.example.org;gr=Ben' state='partial'><endpoint entity='sip:montague@chat.example.org;gr=Ben' state='deleted'/></user>",
        )
        .as_bytes(),
    );
    // No endpoint left at all: a user without endpoints is listed as present.
    assert!(out.is_empty(), "{:?}", summary(&out));
}

#[test]
fn muc_30_clashing_nicknames_are_made_unique() {
    let mut roster = Roster::new("me");
    let out = feed(
        &mut roster,
        doc(
            "full",
            0,
            "<user entity='sip:a@h'><display-text>Ben</display-text></user><user entity='sip:b@h'><display-text>Ben</display-text></user><user entity='sip:c@h;gr=Gr'/><user entity='sip:dave@h'><display-text>  </display-text></user>",
        )
        .as_bytes(),
    );
    // Display text, then the gr parameter, then the user part (MUC-30 fallbacks).
    assert_eq!(
        summary(&out),
        ["+Ben", "+Ben (2)", "+Gr", "+dave", "subject:"]
    );
}

#[test]
fn muc_9_new_subscription_restarts_versions_without_flapping() {
    let mut roster = synced();
    feed(&mut roster, V1);
    roster.handle(Input::NewSubscription).unwrap();
    let again = String::from_utf8(EX9.to_vec()).unwrap();
    // Version 0 again, on the new dialog: accepted, and only the differences come out.
    assert_eq!(
        summary(&feed(&mut roster, again.as_bytes())),
        ["-Nurse", "+Ben"]
    );
    assert_eq!(roster.version(), Some(0));
}

#[test]
fn muc_9_version_at_the_32_bit_limit_does_not_wrap() {
    let mut roster = Roster::new("me");
    feed(&mut roster, doc("full", u32::MAX, "").as_bytes());
    assert!(feed(
        &mut roster,
        doc("partial", 0, "<user entity='sip:a@h'/>").as_bytes()
    )
    .is_empty());
    assert_eq!(roster.version(), Some(u32::MAX));
}

#[test]
fn roles_map_per_table_3_and_impl_names() {
    let mut roster = Roster::new("me");
    let out = feed(
        &mut roster,
        doc(
            "full",
            0,
            "<user entity='sip:a@h'><roles><entry>participant</entry></roles></user><user entity='sip:b@h'><roles><entry>Chair</entry></roles></user><user entity='sip:c@h'><roles><entry>observer</entry></roles></user><user entity='sip:d@h'/>",
        )
        .as_bytes(),
    );
    let roles: Vec<Role> = out
        .iter()
        .filter_map(|o| match o {
            Output::Change(RosterChange::Joined(o)) => Some(o.role.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        roles,
        [
            Role::Participant,
            Role::Moderator,
            Role::Visitor,
            Role::Participant
        ]
    );
}

/// A hostile focus gives a thousand users the same display text: nicknames stay unique and
/// the cost stays about linear (each clash tries about one suffix).
#[test]
fn muc_30_a_thousand_clashing_nicknames_stay_cheap() {
    let users: String = (0..super::confinfo::MAX_USERS)
        .map(|i| format!("<user entity='sip:u{i}@h'><display-text>Ben</display-text></user>"))
        .collect();
    let mut roster = Roster::new("Ben");
    let started = std::time::Instant::now();
    let out = feed(&mut roster, doc("full", 0, &users).as_bytes());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(out.len(), super::confinfo::MAX_USERS + 1);
    let nicks: std::collections::HashSet<_> = roster.occupants().map(|o| o.nick.clone()).collect();
    assert_eq!(nicks.len(), super::confinfo::MAX_USERS);
    assert_eq!(roster.occupants().filter(|o| o.is_self).count(), 1);
    // Self is the first user holding the nickname asked for, announced last (MUC-8).
    assert_eq!(summary(&out[out.len() - 2..]), ["+Ben*", "subject:"]);
}

/// Each document is bounded, their sum is not: a focus adding a thousand disconnected users
/// per partial NOTIFY must not grow the roster without end.
#[test]
fn muc_9_stored_users_stay_bounded_across_partial_documents() {
    let max = super::confinfo::MAX_USERS;
    let mut roster = Roster::new("me");
    feed(
        &mut roster,
        doc(
            "full",
            0,
            "<user entity='sip:in@h'><display-text>In</display-text></user>",
        )
        .as_bytes(),
    );
    for v in 1..=3u32 {
        let users: String = (0..max)
            .map(|i| format!("<user entity='sip:v{v}u{i}@h' state='full'><endpoint entity='e'><status>disconnected</status></endpoint></user>"))
            .collect();
        assert!(feed(&mut roster, doc("partial", v, &users).as_bytes()).is_empty());
        assert!(roster.stored_users() <= max);
    }
    // An arriving occupant still gets in, in place of a user who is not in the room.
    let out = feed(
        &mut roster,
        doc(
            "partial",
            4,
            "<user entity='sip:new@h' state='full'><display-text>New</display-text></user>",
        )
        .as_bytes(),
    );
    assert_eq!(summary(&out), ["+New"]);
    assert_eq!(roster.occupants().count(), 2);
    assert!(roster.stored_users() <= max);
}
