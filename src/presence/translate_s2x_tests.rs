//! RFC 8048 §6.3 (SIP -> XMPP) mapping tests: checklist P4, RFC 8048 Examples 20/21, one
//! table per Table 2 row (PRES-18, PRES-20), two resources through both directions.

use xmpp_parsers::message::Lang;
use xmpp_parsers::presence::{Priority, Show, Type};

use super::pidf::{self, Activity, Basic, PresenceDoc, Tuple};
use super::pidf_tests::{P4_BODY, RFC4480_EXAMPLE, RFC8048_EX20};
use super::translate::*;
use super::translate_tests::{jid, juliet, map, resource, sip_side, stanza};
use crate::addr::SipAddr;

#[test]
fn pres_20_checklist_p4_closed_to_unavailable() {
    let got = sip_side(P4_BODY, "juliet@example.com");
    let expected = stanza(
        "<presence type='unavailable' from='romeo@sip.example.com/dr4hcr0st3lup4c' to='juliet@example.com'/>",
    );
    assert_eq!(got, vec![expected]);
}

#[test]
fn pres_20_rfc8048_examples_20_21() {
    // Example 21 writes from='romeo@example.net'; per ADDR-11 the SIP user lives in the
    // component domain, and per PRES-20 IMPL the tuple id gives the resource.
    let got = sip_side(RFC8048_EX20, "juliet@example.com/yn0cl4bnw0yr3vym");
    let expected = stanza(
        "<presence from='romeo@sip.example.com/dr4hcr0st3lup4c' \
         to='juliet@example.com/yn0cl4bnw0yr3vym' type='unavailable'/>",
    );
    assert_eq!(got, vec![expected]);
}

fn one_tuple(status: &str, rest: &str) -> String {
    format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' \
         xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' entity='pres:romeo@example.net'>\
         <tuple id='ID-phone'><status>{status}</status></tuple>{rest}</presence>"
    )
}

#[test]
fn pres_20_basic_and_show_table() {
    let rows: &[(&str, Type, Option<Show>)] = &[
        ("<basic>open</basic>", Type::None, None),
        ("<basic>closed</basic>", Type::Unavailable, None),
        (
            "<basic>open</basic><show xmlns='jabber:client'>away</show>",
            Type::None,
            Some(Show::Away),
        ),
        (
            "<basic>open</basic><show xmlns='jabber:client'>chat</show>",
            Type::None,
            Some(Show::Chat),
        ),
        (
            "<basic>open</basic><show xmlns='jabber:client'>dnd</show>",
            Type::None,
            Some(Show::Dnd),
        ),
        (
            "<basic>open</basic><show xmlns='jabber:client'>xa</show>",
            Type::None,
            Some(Show::Xa),
        ),
        // A closed tuple never carries <show/>.
        (
            "<basic>closed</basic><show xmlns='jabber:client'>dnd</show>",
            Type::Unavailable,
            None,
        ),
    ];
    for (status, type_, show) in rows {
        let got = sip_side(&one_tuple(status, ""), "juliet@example.com");
        assert_eq!(got.len(), 1, "{status}");
        assert_eq!(&got[0].type_, type_, "{status}");
        assert_eq!(&got[0].show, show, "{status}");
        assert_eq!(got[0].from, Some(jid("romeo@sip.example.com/phone")));
    }
    // MEDIA-26: available presence carries the XEP-0115 caps of SIP users (their disco#info
    // lists the Jingle features); unavailable presence carries none.
    let open = sip_side(&one_tuple("<basic>open</basic>", ""), "juliet@example.com");
    assert_eq!(open[0].payloads, [crate::xmpp::service::user_caps()]);
    let closed = sip_side(
        &one_tuple("<basic>closed</basic>", ""),
        "juliet@example.com",
    );
    assert!(closed[0].payloads.is_empty());
    // No <basic>: no availability, no stanza.
    assert!(sip_side(&one_tuple("<x:y xmlns:x='u'/>", ""), "juliet@example.com").is_empty());
}

#[test]
fn pres_18_rpid_activity_table_sip_to_xmpp() {
    use Activity as A;
    let rows: Vec<(Activity, Option<Show>)> = vec![
        (A::OnThePhone, Some(Show::Dnd)),
        (A::Meeting, Some(Show::Dnd)),
        (A::Busy, Some(Show::Dnd)),
        (A::Performance, Some(Show::Dnd)),
        (A::Presentation, Some(Show::Dnd)),
        (A::Appointment, Some(Show::Dnd)),
        (A::Vacation, Some(Show::Xa)),
        (A::Sleeping, Some(Show::Xa)),
        (A::Holiday, Some(Show::Xa)),
        (A::PermanentAbsence, Some(Show::Xa)),
        (A::Away, Some(Show::Away)),
        (A::Steering, Some(Show::Away)),
        (A::Travel, Some(Show::Away)),
        (A::InTransit, Some(Show::Away)),
        (A::Breakfast, Some(Show::Away)),
        (A::Lunch, Some(Show::Away)),
        (A::Dinner, Some(Show::Away)),
        (A::Meal, Some(Show::Away)),
        (A::Shopping, Some(Show::Away)),
        (A::LookingForWork, None),
        (A::Playing, None),
        (A::Spectator, None),
        (A::Tv, None),
        (A::Working, None),
        (A::Worship, None),
        (A::Unknown, None),
        (A::Other("x".into()), None),
    ];
    assert_eq!(rows.len(), 27, "26 RFC 4480 values plus <other>");
    for (activity, show) in rows {
        let element = match &activity {
            A::Other(text) => format!("<rpid:other>{text}</rpid:other>"),
            known => format!("<rpid:{}/>", known.name()),
        };
        let person =
            format!("<dm:person id='p'><rpid:activities>{element}</rpid:activities></dm:person>");
        let got = sip_side(
            &one_tuple("<basic>open</basic>", &person),
            "juliet@example.com",
        );
        assert_eq!(got[0].show, show, "{activity:?}");
        assert_eq!(activity_to_show(&activity), show);
    }
}

#[test]
fn pres_18_several_activities_least_available_wins_and_extension_beats_rpid() {
    use Activity as A;
    assert_eq!(
        activities_to_show(&[A::Travel, A::OnThePhone]),
        Some(Show::Dnd)
    );
    assert_eq!(activities_to_show(&[A::Meal, A::Vacation]), Some(Show::Xa));
    assert_eq!(activities_to_show(&[A::Tv, A::Lunch]), Some(Show::Away));
    assert_eq!(activities_to_show(&[A::Tv]), None);
    let person = "<dm:person id='p'><rpid:activities><rpid:busy/></rpid:activities></dm:person>";
    let got = sip_side(
        &one_tuple(
            "<basic>open</basic><show xmlns='jabber:client'>chat</show>",
            person,
        ),
        "juliet@example.com",
    );
    assert_eq!(got[0].show, Some(Show::Chat));
    // The RFC 4480 §4 example: person is away, every open tuple shows away.
    let doc = pidf::parse(RFC4480_EXAMPLE.as_bytes()).expect("valid");
    let mut doc = doc;
    doc.entity = "pres:romeo@example.net".into();
    let got = pidf_to_xmpp(
        &doc,
        &jid("juliet@example.com"),
        &map(),
        NotifyContext::default(),
    )
    .expect("translates");
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|p| p.show == Some(Show::Away)));
    // Tuple notes first; tuples without notes take the document note.
    assert_eq!(
        got[0].statuses.get(&Lang::from("fr")).map(String::as_str),
        Some("Ne derangez pas, s'il vous plait")
    );
    assert_eq!(
        got[1].statuses.get(&Lang::from("")).map(String::as_str),
        Some("I'll be in Tokyo next week")
    );
}

#[test]
fn pres_20_note_to_status_with_language_and_fallbacks() {
    let body = one_tuple(
        "<basic>open</basic>",
        "",
    )
    .replace("</status></tuple>", "</status><note xml:lang='en'>Busy</note><note>Occupé</note><note xml:lang='en'>dup</note></tuple>");
    let doc = pidf::parse(body.as_bytes()).expect("valid");
    let ctx = NotifyContext {
        content_language: Some("fr, en"),
        ..NotifyContext::default()
    };
    let got = pidf_to_xmpp(&doc, &jid("juliet@example.com"), &map(), ctx).expect("ok");
    let statuses: Vec<_> = got[0]
        .statuses
        .iter()
        .map(|(l, t)| (l.0.as_str(), t.as_str()))
        .collect();
    assert_eq!(statuses, [("en", "Busy"), ("fr", "Occupé")]);
    // Person notes are the last fallback.
    let person = "<dm:person id='p'><dm:note xml:lang='it'>Occupato</dm:note></dm:person>";
    let got = sip_side(
        &one_tuple("<basic>closed</basic>", person),
        "juliet@example.com",
    );
    assert_eq!(
        got[0].statuses.get(&Lang::from("it")).map(String::as_str),
        Some("Occupato")
    );
}

#[test]
fn pres_20_contact_priority_to_xmpp_priority() {
    let body = one_tuple("<basic>open</basic>", "").replace(
        "</status></tuple>",
        "</status><contact priority='0.039'>sip:romeo@example.net</contact></tuple>",
    );
    let got = sip_side(&body, "juliet@example.com");
    assert_eq!(got[0].priority, Priority(5));
    let got = sip_side(&one_tuple("<basic>open</basic>", ""), "juliet@example.com");
    assert_eq!(
        got[0].priority,
        Priority(0),
        "absent priority -> XMPP default"
    );
}

#[test]
fn pres_20_resource_from_gruu_then_tuple_id() {
    let body = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:romeo@example.net'>\
        <tuple id='t1'><status><basic>open</basic></status><contact>sip:romeo@example.net;gr=desk</contact></tuple>\
        <tuple id='t2'><status><basic>open</basic></status><contact>sip:romeo@example.net;gr=desk</contact></tuple>\
        <tuple id='ID-Home_20PC'><status><basic>open</basic></status><contact>tel:+1555</contact></tuple>\
        <tuple id='bs35r9'><status><basic>closed</basic></status></tuple></presence>";
    let got = sip_side(body, "juliet@example.com");
    let froms: Vec<_> = got
        .iter()
        .map(|p| p.from.clone().map(|j| j.to_string()))
        .collect();
    assert_eq!(
        froms,
        [
            Some("romeo@sip.example.com/desk".to_owned()),
            // Same GRUU again: the tuple id keeps the two resources apart.
            Some("romeo@sip.example.com/t2".to_owned()),
            Some("romeo@sip.example.com/Home PC".to_owned()),
            Some("romeo@sip.example.com/bs35r9".to_owned()),
        ]
    );
}

#[test]
fn pres_19_two_resources_both_ways() {
    // XMPP -> SIP -> (wire) -> SIP -> XMPP, as if the document came back from a SIP user.
    let resources = [
        resource(
            "balcony",
            Some(Show::Away),
            5,
            &[("On the balcony", Some("en"))],
        ),
        resource("garden", Some(Show::Dnd), -1, &[("Gardening", None)]),
    ];
    let out = xmpp_to_pidf(&juliet(), &resources, &map()).expect("translates");
    let mut doc = pidf::parse(pidf::to_xml(&out.doc).as_bytes()).expect("round trip");
    doc.entity = "pres:romeo@example.net".into();
    let got = pidf_to_xmpp(
        &doc,
        &jid("juliet@example.com"),
        &map(),
        NotifyContext::default(),
    )
    .expect("translates");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].from, Some(jid("romeo@sip.example.com/balcony")));
    assert_eq!(
        (got[0].show.clone(), got[0].priority.clone()),
        (Some(Show::Away), Priority(5))
    );
    assert_eq!(
        got[0].statuses.get(&Lang::from("en")).map(String::as_str),
        Some("On the balcony")
    );
    assert_eq!(got[1].from, Some(jid("romeo@sip.example.com/garden")));
    assert_eq!(
        (got[1].show.clone(), got[1].priority.clone()),
        (Some(Show::Dnd), Priority(0))
    );
    assert_eq!(
        got[1].statuses.get(&Lang::from("")).map(String::as_str),
        Some("Gardening")
    );
}

#[test]
fn pres_20_from_is_always_in_the_component_domain() {
    let foreign = P4_BODY.replace("pres:romeo@example.net", "sip:bob@other.org");
    let got = sip_side(&foreign, "juliet@example.com");
    assert_eq!(
        got[0].from,
        Some(jid("bob\\40other.org@sip.example.com/dr4hcr0st3lup4c"))
    );
    // An entity naming one of our XMPP users: loop or spoof.
    let doc = pidf::parse(
        P4_BODY
            .replace("romeo@example.net", "juliet@example.com")
            .as_bytes(),
    )
    .expect("valid");
    let e = pidf_to_xmpp(
        &doc,
        &jid("nurse@example.com"),
        &map(),
        NotifyContext::default(),
    )
    .expect_err("refused");
    assert_eq!(e.sip.code, 403);
    // Not a mappable URI.
    for entity in ["tel:+15551234", "pres:example.net", "garbage"] {
        let doc = PresenceDoc {
            entity: entity.into(),
            ..PresenceDoc::default()
        };
        let e = pidf_to_xmpp(
            &doc,
            &jid("juliet@example.com"),
            &map(),
            NotifyContext::default(),
        )
        .expect_err(entity);
        assert_eq!(e.sip.code, 400, "{entity}");
    }
}

#[test]
fn pres_20_entity_must_match_the_dialog_presentity() {
    let doc = pidf::parse(P4_BODY.as_bytes()).expect("valid");
    let watcher = jid("juliet@example.com");
    let romeo = SipAddr::parse("<sip:Romeo@EXAMPLE.net>;tag=yt66").expect("valid");
    let ctx = NotifyContext {
        presentity: Some(&romeo),
        ..NotifyContext::default()
    };
    assert_eq!(
        pidf_to_xmpp(&doc, &watcher, &map(), ctx).map(|v| v.len()),
        Ok(1)
    );
    let tybalt = SipAddr::parse("sip:tybalt@example.net").expect("valid");
    let ctx = NotifyContext {
        presentity: Some(&tybalt),
        ..NotifyContext::default()
    };
    let e = pidf_to_xmpp(&doc, &watcher, &map(), ctx).expect_err("mismatch");
    assert_eq!(e.sip.code, 400);
}

#[test]
fn pres_20_tuple_without_usable_resource_is_dropped() {
    // A tuple whose every resource candidate is invalid is dropped, not mapped to the bare JID.
    let long = "x".repeat(1100);
    let doc = PresenceDoc {
        entity: "pres:romeo@example.net".into(),
        tuples: vec![
            Tuple::new(long, Some(Basic::Open)),
            Tuple::new("ok", Some(Basic::Open)),
        ],
        ..PresenceDoc::default()
    };
    let got = pidf_to_xmpp(
        &doc,
        &jid("juliet@example.com"),
        &map(),
        NotifyContext::default(),
    )
    .expect("translates");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, Some(jid("romeo@sip.example.com/ok")));
}
