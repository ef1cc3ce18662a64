//! PIDF bodies from SIP (RFC 3863, RFC 8048 §6.3) through `stox::presence::parse`, the PIDF
//! writer `to_xml`, `pidf_to_xmpp` and back through `ResourcePresence::from_stanza` and
//! `xmpp_to_pidf` (RFC 8048 §6.2), as a NOTIFY from a SIP user and the XMPP presence of a
//! served user take them.
//!
//! Input: the first line is the `Content-Language` header (empty: none), the rest the body.
//!
//! Invariants:
//! * `parse` never panics; a refusal answers 400 or 413 with a clean reason phrase.
//! * Writer/reader: `parse(to_xml(doc)) == doc` for every parsed document.
//! * SIP -> XMPP: a refusal is 400 or 403 with a clean reason; otherwise each presence
//!   serialises to XML that parses back as the same element and as an xmpp-parsers
//!   `Presence`, comes from a full JID in the component domain (one resource per presence),
//!   goes to the watcher, is available or unavailable, with a priority in 0..=127; never
//!   more presences than tuples.
//! * Same status both ways: the available presences, read back as an XMPP user's resources,
//!   make a PIDF document (`xmpp_to_pidf`) that our reader parses back to what was written,
//!   and that document, sent by the SIP user again, gives the same presences (resource, show,
//!   priority, statuses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::addr::{BareJid, Jid};
use stox::presence::pidf::{self, Basic};
use stox::presence::{NotifyContext, ResourcePresence};
use stox_fuzz::*;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::{Presence, Type};

const WATCHER: &str = "juliet@example.com/balcony";
/// The XMPP user whose presence goes to SIP in the second half.
const XMPP_USER: &str = "romeo@example.com";
/// The SIP user the second document is sent from again.
const SIP_ENTITY: &str = "pres:bob@example.net";

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let content_language = std::str::from_utf8(first).ok().filter(|l| !l.is_empty());
    let doc = match stox::presence::parse(body) {
        Ok(doc) => doc,
        Err(e) => {
            let rej = e.rejection();
            assert_rejection_sip(&rej.sip, 400..=413, "PIDF refusal");
            assert!(
                matches!(rej.sip.code, 400 | 413),
                "PIDF refusal {}",
                rej.sip.code
            );
            return;
        }
    };
    if debug() {
        eprintln!("{doc:#?}");
    }
    let written = pidf::to_xml(&doc);
    assert_eq!(
        pidf::parse(written.as_bytes()).as_ref(),
        Ok(&doc),
        "our PIDF does not parse back to the same document:\n{written}"
    );

    let map = map();
    let watcher = Jid::new(WATCHER).unwrap();
    let ctx = NotifyContext {
        presentity: None,
        content_language,
    };
    let presences = match stox::presence::pidf_to_xmpp(&doc, &watcher, &map, ctx) {
        Ok(p) => p,
        Err(rej) => {
            assert_rejection_sip(&rej.sip, 400..=403, "pidf_to_xmpp refusal");
            assert!(
                matches!(rej.sip.code, 400 | 403),
                "pidf_to_xmpp refusal {}",
                rej.sip.code
            );
            return;
        }
    };
    if debug() {
        eprintln!("{presences:#?}");
    }
    assert!(
        presences.len() <= doc.tuples.len(),
        "more presences than tuples"
    );
    let mut resources = std::collections::HashSet::new();
    for p in &presences {
        check_presence(p, &watcher, &map);
        let from = p.from.as_ref().unwrap();
        assert!(
            resources.insert(from.resource().unwrap().as_str().to_owned()),
            "two presences from {from}"
        );
    }
    same_status_both_ways(&presences, &watcher, &map);
});

fn check_presence(p: &Presence, watcher: &Jid, map: &stox::addr::AddressMap) {
    let el: Element = p.clone().into();
    let back = assert_xml_round_trip(&el, "presence");
    let parsed = Presence::try_from(back)
        .unwrap_or_else(|e| panic!("presence is not a valid Presence for xmpp-parsers: {e}"));
    assert_eq!(&parsed, p, "presence changed over the wire");
    let from = p.from.as_ref().expect("presence has a from");
    assert!(
        map.is_component_jid(from),
        "presence from {from}, outside the component domain"
    );
    assert!(from.resource().is_some(), "presence from a bare JID {from}");
    assert_eq!(
        Jid::new(from.as_str()).as_ref(),
        Ok(from),
        "from is not canonical"
    );
    assert_eq!(p.to.as_ref(), Some(watcher), "presence not to the watcher");
    assert!(
        matches!(p.type_, Type::None | Type::Unavailable),
        "presence type {:?}",
        p.type_
    );
    assert!(p.priority.0 >= 0, "negative priority {}", p.priority.0);
    for (lang, text) in &p.statuses {
        assert_xml_chars(text, "status");
        assert!(
            lang.0
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "status language {:?} is not a language tag",
            lang.0
        );
    }
}

/// The available presences as an XMPP user's resources -> PIDF -> our reader -> the SIP
/// user's presences again.
fn same_status_both_ways(presences: &[Presence], watcher: &Jid, map: &stox::addr::AddressMap) {
    let available: Vec<(ResourcePresence, &Presence)> = presences
        .iter()
        .filter_map(|p| ResourcePresence::from_stanza(p, None).map(|r| (r, p)))
        .collect();
    let user = BareJid::new(XMPP_USER).unwrap();
    let resources: Vec<ResourcePresence> = available.iter().map(|(r, _)| r.clone()).collect();
    let out = stox::presence::xmpp_to_pidf(&user, &resources, map)
        .unwrap_or_else(|e| panic!("xmpp_to_pidf refused {resources:?}: {e:?}"));
    if let Some(langs) = &out.content_language {
        assert_header_safe(langs, "Content-Language");
    }
    let xml = pidf::to_xml(&out.doc);
    let mut doc = pidf::parse(xml.as_bytes())
        .unwrap_or_else(|e| panic!("our PIDF does not parse ({e}):\n{xml}"));
    assert_eq!(doc, out.doc, "our PIDF parses to another document:\n{xml}");
    if resources.is_empty() {
        assert_eq!(doc.tuples.len(), 1, "no resource: one closed tuple");
        assert_eq!(doc.tuples[0].basic, Some(Basic::Closed));
        return;
    }
    assert!(doc.tuples.iter().all(|t| t.basic == Some(Basic::Open)));
    doc.entity = SIP_ENTITY.to_owned();
    let again = stox::presence::pidf_to_xmpp(&doc, watcher, map, NotifyContext::default())
        .unwrap_or_else(|e| panic!("our own PIDF is refused: {e:?}\n{xml}"));
    assert_eq!(
        again.len(),
        available.len(),
        "presences lost or added on the way through PIDF:\n{xml}"
    );
    for ((r, first), p) in available.iter().zip(&again) {
        let what = format!("resource {:?} through\n{xml}", r.resource);
        let resource = p
            .from
            .as_ref()
            .and_then(|j| j.resource())
            .map(|r| r.as_str());
        assert_eq!(resource, Some(r.resource.as_str()), "{what}: resource");
        assert_eq!(p.type_, Type::None, "{what}: type");
        assert_eq!(p.show, first.show, "{what}: show");
        assert_eq!(p.priority, first.priority, "{what}: priority");
        assert_eq!(p.statuses, first.statuses, "{what}: statuses");
    }
}
