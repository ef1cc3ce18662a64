//! RFC 4575 conference-info bodies from a SIP focus (RFC 7702 §5.4) through
//! `stox::muc::parse`, the writer `to_xml`, the roster machine (MUC-9), the XEP-0045 mapping
//! (MUC-8) and back out as the gateway's own documents (RFC 7702 §6.2, MUC-22).
//!
//! Input: one or more NOTIFY bodies separated by NUL bytes (which XML cannot contain), fed
//! in order to one roster.
//!
//! Invariants:
//! * `parse` never panics; a refusal answers 400 or 413 with a clean reason phrase, and its
//!   XMPP rendering is a valid stanza error.
//! * Writer/reader: `parse(to_xml(doc)) == doc` for every parsed document.
//! * Roster: a body is refused exactly when `parse` refuses it; the first body again right
//!   after it changes nothing (a duplicate version is ignored). After every body, occupant
//!   nicknames are distinct valid resourceparts, at most one occupant is the user itself, and
//!   every change maps to presences that survive the wire as the same xmpp-parsers
//!   `Presence`, from `room/nick`, to the user, with a `muc#user` payload xmpp-parsers reads
//!   back (`affiliation='none'`). With one body, never more occupants than users.
//! * Focus: the occupants, as a MUC room, render to a full document that parses back to
//!   itself and lists each of them once; an immediate partial document is `None`.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use stox::addr::{BareJid, Jid, SipAddr};
use stox::muc::focus::{MucOccupant, Notifier, OccupantList};
use stox::muc::occupant::{presences, RoomView};
use stox::muc::roster::{Input, Output, Roster};
use stox::muc::{parse, to_xml};
use stox_fuzz::*;
use xmpp_parsers::muc::user::{Affiliation, MucUser};
use xmpp_parsers::presence::Presence;

const USER: &str = "juliet@example.com/balcony";
const ROOM: &str = "montague@sip.example.com";

fuzz_target!(|data: &[u8]| {
    let view = RoomView {
        room: BareJid::new(ROOM).unwrap(),
        to: Jid::new(USER).unwrap(),
        show_real_jids: true,
    };
    let mut roster = Roster::new("JuliC");
    let bodies: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let mut users = 0;
    for (n, body) in bodies.iter().enumerate() {
        let parsed = check_document(body);
        if let Some(doc) = &parsed {
            users = doc.users.as_ref().map_or(0, |u| u.users.len());
        }
        let answer = roster.handle(Input::Notify(body));
        assert_eq!(
            answer.is_ok(),
            parsed.is_some(),
            "roster and parser disagree"
        );
        drain(&mut roster, &view);
        if n == 0 && parsed.is_some() {
            assert_eq!(roster.handle(Input::Notify(body)), Ok(()));
            if let Some(out) = roster.poll_output() {
                assert!(
                    matches!(out, Output::Resubscribe),
                    "the same document twice changed the roster: {out:?}"
                );
            }
        }
        check_occupants(&roster, &view, (bodies.len() == 1).then_some(users));
    }
});

/// Parser and writer invariants; the document when the body parses.
fn check_document(body: &[u8]) -> Option<stox::muc::ConferenceInfo> {
    let doc = match parse(body) {
        Ok(doc) => doc,
        Err(e) => {
            let rej = e.rejection();
            assert_rejection_sip(&rej.sip, 400..=413, "conference-info refusal");
            assert!(
                matches!(rej.sip.code, 400 | 413),
                "refusal {}",
                rej.sip.code
            );
            assert_xmpp_error(&rej.xmpp, "conference-info refusal");
            return None;
        }
    };
    if debug() {
        eprintln!("{doc:#?}");
    }
    let written = to_xml(&doc);
    assert_eq!(
        parse(written.as_bytes()).as_ref(),
        Ok(&doc),
        "our conference-info does not parse back to the same document:\n{written}"
    );
    Some(doc)
}

fn drain(roster: &mut Roster, view: &RoomView) {
    while let Some(out) = roster.poll_output() {
        if debug() {
            eprintln!("{out:?}");
        }
        if let Output::Change(change) = out {
            for p in presences(&change, view).expect("roster nicknames are resourceparts") {
                check_presence(&p, view);
            }
        }
    }
}

fn check_occupants(roster: &Roster, view: &RoomView, users: Option<usize>) {
    let mut nicks = HashSet::new();
    let mut own = 0;
    let mut room = OccupantList::new();
    for o in roster.occupants() {
        assert!(nicks.insert(o.nick.clone()), "nickname {:?} twice", o.nick);
        view.room
            .with_resource_str(&o.nick)
            .unwrap_or_else(|e| panic!("nickname {:?} is no resourcepart: {e}", o.nick));
        own += usize::from(o.is_self);
        room.insert(
            o.nick.clone(),
            MucOccupant {
                role: o.role.clone(),
                affiliation: Affiliation::None,
                jid: None,
            },
        );
    }
    assert!(own <= 1, "{own} self occupants");
    if let Some(users) = users {
        assert!(nicks.len() <= users, "more occupants than users");
    }

    let mut notifier = Notifier::new(SipAddr::parse("sip:montague@chat.example.net").unwrap());
    let subject = roster.subject().map(str::to_owned);
    let full = notifier.full(&room, subject.as_deref());
    let xml = to_xml(&full);
    assert_eq!(
        parse(xml.as_bytes()).as_ref(),
        Ok(&full),
        "our full document does not parse back:\n{xml}"
    );
    assert_eq!(full.users.as_ref().map_or(0, |u| u.users.len()), room.len());
    assert_eq!(notifier.partial(&room, subject.as_deref()), None);
}

fn check_presence(p: &Presence, view: &RoomView) {
    let el: xmpp_parsers::minidom::Element = p.clone().into();
    let back = assert_xml_round_trip(&el, "occupant presence");
    let parsed = Presence::try_from(back)
        .unwrap_or_else(|e| panic!("occupant presence is not a valid Presence: {e}"));
    assert_eq!(&parsed, p, "presence changed over the wire");
    let from = p.from.as_ref().expect("presence has a from");
    assert_eq!(from.to_bare(), view.room, "presence not from the room");
    assert!(from.resource().is_some(), "presence from the bare room");
    assert_eq!(p.to.as_ref(), Some(&view.to));
    let x = MucUser::try_from(p.payloads[0].clone())
        .unwrap_or_else(|e| panic!("muc#user payload does not parse back: {e}"));
    assert_eq!(x.items.len(), 1, "one <item/> per occupant presence");
    assert_eq!(
        x.items[0].affiliation,
        Affiliation::None,
        "Table 3 affiliation"
    );
}
