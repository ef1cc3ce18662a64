//! RFC 8048 §6.2 (XMPP -> SIP) mapping tests: checklist P3, RFC 8048 Examples 18/19, one
//! table per Table 1 row (PRES-15..PRES-19) and two-resource documents. The helpers here are
//! shared with `translate_s2x_tests`.

use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::{Presence, Show, Type};

use super::pidf::{self, Activity, Basic, Contact, ContactPriority, Note, Tuple};
use super::pidf_tests::RFC8048_EX19;
use super::translate::*;
use crate::addr::{AddressMap, BareJid, Jid};

pub(super) fn map() -> AddressMap {
    AddressMap::new(
        "sip.example.com",
        &["example.com".to_owned()],
        "example.net",
    )
}

pub(super) fn juliet() -> BareJid {
    BareJid::new("juliet@example.com").expect("valid")
}

pub(super) fn jid(s: &str) -> Jid {
    Jid::new(s).expect("valid JID")
}

/// An XMPP stanza as the component receives it (stanza namespace of the `component`
/// feature), parsed by xmpp-parsers.
pub(super) fn stanza(xml: &str) -> Presence {
    let xml = xml.replacen("<presence", "<presence xmlns='jabber:component:accept'", 1);
    let el: Element = xml.parse().expect("well-formed");
    Presence::try_from(el).expect("valid presence")
}

pub(super) fn resource(
    name: &str,
    show: Option<Show>,
    priority: i8,
    statuses: &[(&str, Option<&str>)],
) -> ResourcePresence {
    ResourcePresence {
        resource: name.to_owned(),
        show,
        statuses: statuses.iter().map(|(t, l)| Note::new(*t, *l)).collect(),
        priority,
    }
}

pub(super) fn sip_side(body: &str, watcher: &str) -> Vec<Presence> {
    let doc = pidf::parse(body.as_bytes()).expect("valid PIDF");
    pidf_to_xmpp(&doc, &jid(watcher), &map(), NotifyContext::default()).expect("translates")
}

#[test]
fn pres_15_only_available_and_unavailable_are_notifications() {
    let cases = [
        (Type::None, true),
        (Type::Unavailable, true),
        (Type::Subscribe, false),
        (Type::Subscribed, false),
        (Type::Unsubscribe, false),
        (Type::Unsubscribed, false),
        (Type::Probe, false),
        (Type::Error, false),
    ];
    for (type_, expected) in cases {
        assert_eq!(
            is_notification(&Presence::new(type_.clone())),
            expected,
            "{type_:?}"
        );
    }
}

#[test]
fn pres_16_checklist_p3_availability_to_pidf() {
    let p = stanza(
        "<presence from='juliet@example.com/balcony' to='romeo@sip.example.com' xml:lang='en'>\
         <show>away</show><status>On the balcony</status><priority>5</priority></presence>",
    );
    let r = ResourcePresence::from_stanza(&p, Some("en")).expect("available");
    let out = xmpp_to_pidf(&juliet(), &[r], &map()).expect("translates");
    let expected = pidf::parse(
        b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:juliet@example.com'>
  <tuple id='ID-balcony'>
    <status><basic>open</basic><show xmlns='jabber:client'>away</show></status>
    <contact priority='0.039'>sip:juliet@example.com;gr=balcony</contact>
    <note xml:lang='en'>On the balcony</note>
  </tuple>
</presence>",
    )
    .expect("P3 body");
    assert_eq!(out.doc.entity, expected.entity);
    assert_eq!(out.doc.tuples, expected.tuples);
    assert_eq!(out.content_language.as_deref(), Some("en"));
    // PRES-18 addition beyond P3: the RPID activity for RPID-only clients.
    assert_eq!(out.doc.persons.len(), 1);
    assert_eq!(out.doc.persons[0].activities, vec![Activity::Away]);
    // And the wire form parses back to the same model.
    assert_eq!(pidf::parse(pidf::to_xml(&out.doc).as_bytes()), Ok(out.doc));
}

#[test]
fn pres_16_rfc8048_examples_18_19_available_resource() {
    // Example 18 has no <show/> although Example 19 shows `away`: test both readings.
    let p = stanza("<presence from='juliet@example.com/yn0cl4bnw0yr3vym'/>");
    let r = ResourcePresence::from_stanza(&p, None).expect("available");
    let plain = xmpp_to_pidf(&juliet(), std::slice::from_ref(&r), &map()).expect("translates");
    assert_eq!(plain.doc.tuples[0].id, "ID-yn0cl4bnw0yr3vym");
    assert_eq!(plain.doc.tuples[0].basic, Some(Basic::Open));
    assert_eq!(plain.doc.tuples[0].show, None);
    assert!(plain.doc.persons.is_empty());
    assert_eq!(plain.content_language, None);

    let away = ResourcePresence {
        show: Some(Show::Away),
        ..r
    };
    let out = xmpp_to_pidf(&juliet(), &[away], &map()).expect("translates");
    let mut ex19 = pidf::parse(RFC8048_EX19.as_bytes()).expect("Example 19");
    // We add the GRUU contact (RFC 3863 §4.1.2: tuples with <basic> SHOULD have one).
    ex19.tuples[0].contact = Some(Contact {
        uri: "sip:juliet@example.com;gr=yn0cl4bnw0yr3vym".into(),
        priority: ContactPriority::from_thousandths(0),
    });
    assert_eq!(out.doc.entity, ex19.entity);
    assert_eq!(out.doc.tuples, ex19.tuples);
}

#[test]
fn pres_16_no_available_resource_maps_to_one_closed_tuple() {
    let unavailable = stanza("<presence type='unavailable' from='juliet@example.com/balcony'/>");
    assert_eq!(ResourcePresence::from_stanza(&unavailable, None), None);
    let out = xmpp_to_pidf(&juliet(), &[], &map()).expect("translates");
    assert_eq!(
        out.doc.tuples,
        vec![Tuple {
            contact: Some(Contact {
                uri: "sip:juliet@example.com".into(),
                priority: None
            }),
            ..Tuple::new(OFFLINE_TUPLE_ID, Some(Basic::Closed))
        }]
    );
    assert!(out.doc.persons.is_empty() && out.content_language.is_none());
}

#[test]
fn pres_16_from_stanza_takes_only_available_presence_from_a_full_jid() {
    for xml in [
        "<presence from='juliet@example.com'/>",
        "<presence type='probe' from='juliet@example.com/a'/>",
        "<presence type='subscribe' from='juliet@example.com/a'/>",
        "<presence type='error' from='juliet@example.com/a'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
    ] {
        assert_eq!(ResourcePresence::from_stanza(&stanza(xml), None), None, "{xml}");
    }
}

#[test]
fn pres_16_show_table_extension_and_rpid() {
    let rows = [
        (None, None),
        (Some(Show::Chat), None),
        (Some(Show::Away), Some(Activity::Away)),
        (Some(Show::Xa), Some(Activity::Away)),
        (Some(Show::Dnd), Some(Activity::Busy)),
    ];
    for (show, activity) in rows {
        let r = resource("r", show.clone(), 0, &[]);
        let out = xmpp_to_pidf(&juliet(), &[r], &map()).expect("translates");
        assert_eq!(out.doc.tuples[0].show, show, "{show:?}");
        let activities: Vec<_> = out
            .doc
            .persons
            .iter()
            .flat_map(|p| p.activities.clone())
            .collect();
        assert_eq!(
            activities,
            activity.into_iter().collect::<Vec<_>>(),
            "{show:?}"
        );
        assert!(out
            .doc
            .persons
            .iter()
            .all(|p| p.id.as_deref() == Some(PERSON_ID)));
    }
}

#[test]
fn pres_16_status_to_note_keeps_xml_lang() {
    let p = stanza(
        "<presence from='juliet@example.com/balcony' xml:lang='de'>\
         <status>Auf dem Balkon</status><status xml:lang='en'>On the balcony</status>\
         <status xml:lang='fr'>Sur le balcon</status></presence>",
    );
    let r = ResourcePresence::from_stanza(&p, Some("de")).expect("available");
    let out = xmpp_to_pidf(&juliet(), &[r], &map()).expect("translates");
    assert_eq!(
        out.doc.tuples[0].notes,
        vec![
            Note::new("Auf dem Balkon", Some("de")),
            Note::new("On the balcony", Some("en")),
            Note::new("Sur le balcon", Some("fr")),
        ]
    );
    assert_eq!(out.content_language.as_deref(), Some("de, en, fr"));
    // A status without language and no stanza language: a note without xml:lang.
    let bare = ResourcePresence::from_stanza(
        &stanza("<presence from='juliet@example.com/b'><status>hi</status></presence>"),
        Some("not a tag!"),
    )
    .expect("available");
    assert_eq!(bare.statuses, vec![Note::new("hi", None)]);
}

#[test]
fn pres_17_priority_table_both_directions() {
    let forward: &[(i8, Option<&str>)] = &[
        (-128, None),
        (-1, None),
        (0, Some("0")),
        (1, Some("0.007")),
        (2, Some("0.015")),
        (5, Some("0.039")),
        (64, Some("0.503")),
        (126, Some("0.992")),
        (127, Some("1")),
    ];
    for (xmpp, pidf) in forward {
        assert_eq!(
            xmpp_priority_to_pidf(*xmpp)
                .map(|p| p.to_string())
                .as_deref(),
            *pidf,
            "{xmpp}"
        );
    }
    let reverse: &[(&str, i8)] = &[
        ("0", 0),
        ("0.001", 0),
        ("0.004", 1),
        ("0.039", 5),
        ("0.5", 64),
        ("0.992", 126),
        ("1", 127),
    ];
    for (pidf, xmpp) in reverse {
        let q = ContactPriority::parse(pidf).expect("valid qvalue");
        assert_eq!(pidf_priority_to_xmpp(q), *xmpp, "{pidf}");
    }
}

#[test]
fn pres_17_priority_mapping_is_monotonic_and_inverted_exactly() {
    let mut last = None;
    for p in 0..=127i8 {
        let q = xmpp_priority_to_pidf(p).expect("non-negative maps");
        assert!(last < Some(q), "not strictly increasing at {p}");
        assert_eq!(pidf_priority_to_xmpp(q), p);
        last = Some(q);
    }
    for t in 0..=1000u16 {
        let q = ContactPriority::from_thousandths(t).expect("in range");
        assert!((0..=127).contains(&pidf_priority_to_xmpp(q)));
    }
}

#[test]
fn pres_17_negative_priority_is_not_mapped() {
    let out = xmpp_to_pidf(&juliet(), &[resource("r", None, -5, &[])], &map()).expect("ok");
    assert_eq!(
        out.doc.tuples[0].contact.as_ref().and_then(|c| c.priority),
        None
    );
    assert!(!pidf::to_xml(&out.doc).contains("priority="));
}

#[test]
fn pres_19_two_resources_then_one_goes_unavailable() {
    let both = [
        resource(
            "balcony",
            Some(Show::Away),
            5,
            &[("On the balcony", Some("en"))],
        ),
        resource("garden", None, 10, &[]),
    ];
    let out = xmpp_to_pidf(&juliet(), &both, &map()).expect("translates");
    let ids: Vec<_> = out.doc.tuples.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["ID-balcony", "ID-garden"]);
    assert!(out.doc.tuples.iter().all(|t| t.basic == Some(Basic::Open)));
    // The most available resource (garden, no show) wins: no RPID activity.
    assert!(out.doc.persons.is_empty());

    // balcony goes unavailable: the full-state document keeps garden open.
    let out = xmpp_to_pidf(&juliet(), &both[1..], &map()).expect("translates");
    assert_eq!(out.doc.tuples.len(), 1);
    assert_eq!(out.doc.tuples[0].id, "ID-garden");
    assert_eq!(out.doc.tuples[0].basic, Some(Basic::Open));
}

#[test]
fn pres_19_most_available_show_drives_the_rpid_activity() {
    let rows: &[(&[Option<Show>], Option<Activity>)] = &[
        (&[Some(Show::Away), Some(Show::Dnd), None], None),
        (&[Some(Show::Dnd), Some(Show::Away)], Some(Activity::Away)),
        (&[Some(Show::Dnd), Some(Show::Xa)], Some(Activity::Away)),
        (&[Some(Show::Dnd)], Some(Activity::Busy)),
        (&[Some(Show::Dnd), Some(Show::Chat)], None),
    ];
    for (shows, activity) in rows {
        let resources: Vec<_> = shows
            .iter()
            .enumerate()
            .map(|(i, s)| resource(&format!("r{i}"), s.clone(), 0, &[]))
            .collect();
        let out = xmpp_to_pidf(&juliet(), &resources, &map()).expect("translates");
        let got = out
            .doc
            .persons
            .first()
            .and_then(|p| p.activities.first().cloned());
        assert_eq!(&got, activity, "{shows:?}");
    }
}

#[test]
fn pres_19_repeated_resource_counts_once_and_odd_resources_get_valid_ids() {
    let out = xmpp_to_pidf(
        &juliet(),
        &[
            resource("Home PC", None, 0, &[]),
            resource("Home PC", Some(Show::Dnd), 0, &[]),
        ],
        &map(),
    )
    .expect("translates");
    assert_eq!(out.doc.tuples.len(), 1);
    assert_eq!(out.doc.tuples[0].id, "ID-Home_20PC");
    assert_eq!(resource_to_tuple_id("a_b/ü"), "ID-a_5Fb_2F_C3_BC");
    assert_eq!(tuple_id_to_resource("ID-a_5Fb_2F_C3_BC"), "a_b/ü");
    assert_eq!(tuple_id_to_resource("ID-x_zz_+F"), "x_zz_+F");
    assert_eq!(tuple_id_to_resource("bs35r9"), "bs35r9");
}

#[test]
fn pres_16_only_served_xmpp_users_can_publish_to_sip() {
    let sip_user = BareJid::new("romeo@sip.example.com").expect("valid");
    let e = xmpp_to_pidf(&sip_user, &[], &map()).expect_err("a SIP user's JID");
    assert_eq!(e.xmpp.condition_name(), "not-allowed");
    let foreign = BareJid::new("mallory@evil.example").expect("valid");
    let e = xmpp_to_pidf(&foreign, &[], &map()).expect_err("not served");
    assert_eq!(e.xmpp.condition_name(), "not-allowed");
}
