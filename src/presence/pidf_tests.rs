//! PIDF model tests: the bodies of checklist 2.6 (P3, P4), RFC 8048 Examples 19/20, the
//! RFC 3863 §4.2/§4.3 examples and the RFC 4480 §4 example, plus the writer.

use super::pidf::*;

/// Checklist P3, the expected NOTIFY body.
pub(super) const P3_BODY: &str =
    "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:juliet@example.com'>
  <tuple id='ID-balcony'>
    <status><basic>open</basic><show xmlns='jabber:client'>away</show></status>
    <contact priority='0.039'>sip:juliet@example.com;gr=balcony</contact>
    <note xml:lang='en'>On the balcony</note>
  </tuple>
</presence>";

/// Checklist P4 gives only the tuple; the presence wrapper is the one of RFC 8048 Example 20.
pub(super) const P4_BODY: &str = "<?xml version='1.0' encoding='UTF-8'?>
<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:romeo@example.net'>
<tuple id='ID-dr4hcr0st3lup4c'><status><basic>closed</basic></status></tuple>
</presence>";

/// RFC 8048 Example 19 body.
pub(super) const RFC8048_EX19: &str = "<?xml version='1.0' encoding='UTF-8'?>
<presence xmlns='urn:ietf:params:xml:ns:pidf'
          entity='pres:juliet@example.com'>
  <tuple id='ID-yn0cl4bnw0yr3vym'>
    <status>
      <basic>open</basic>
      <show xmlns='jabber:client'>away</show>
    </status>
  </tuple>
</presence>";

/// RFC 8048 Example 20 body.
pub(super) const RFC8048_EX20: &str = "<?xml version='1.0' encoding='UTF-8'?>
<presence xmlns='urn:ietf:params:xml:ns:pidf'
          entity='pres:romeo@example.net'>
  <tuple id='ID-dr4hcr0st3lup4c'>
    <status>
      <basic>closed</basic>
    </status>
  </tuple>
</presence>";

/// RFC 4480 §4 (RPID) example, verbatim.
pub(super) const RFC4480_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
  <presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:lt="urn:ietf:params:xml:ns:location-type"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    entity="pres:someone@example.com">
 <tuple id="bs35r9">
   <status>
     <basic>open</basic>
   </status>
   <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
   <rpid:relationship><rpid:self/></rpid:relationship>
   <rpid:service-class><rpid:electronic/></rpid:service-class>
   <contact priority="0.8">im:someone@mobile.example.net</contact>
   <note xml:lang="en">Don't Disturb Please!</note>
   <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
   <timestamp>2005-10-27T16:49:29Z</timestamp>
 </tuple>
 <tuple id="ty4658">
   <status>
     <basic>open</basic>
   </status>
   <rpid:relationship><rpid:assistant/></rpid:relationship>
   <contact priority="1.0">mailto:secretary@example.com</contact>
 </tuple>
 <tuple id="eg92n8">
   <status>
     <basic>open</basic>
   </status>
   <dm:deviceID>urn:x-mac:0003ba4811e3</dm:deviceID>
   <rpid:class>email</rpid:class>
   <rpid:service-class><rpid:electronic/></rpid:service-class>
   <rpid:status-icon>http://example.com/mail.png</rpid:status-icon>
   <contact priority="1.0">mailto:someone@example.com</contact>
 </tuple>
 <note>I'll be in Tokyo next week</note>
 <dm:device id="pc147">
   <rpid:user-input idle-threshold="600"
     last-input="2004-10-21T13:20:00-05:00">idle</rpid:user-input>
   <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
   <dm:note>PC</dm:note>
 </dm:device>
 <dm:person id="p1">
   <rpid:activities from="2005-05-30T12:00:00+05:00"
      until="2005-05-30T17:00:00+05:00">
      <rpid:note>Far away</rpid:note>
      <rpid:away/>
   </rpid:activities>
   <rpid:class>calendar</rpid:class>
   <rpid:mood>
     <rpid:angry/>
     <rpid:other>brooding</rpid:other>
   </rpid:mood>
   <rpid:place-type><lt:residence/></rpid:place-type>
   <rpid:time-offset>-240</rpid:time-offset>
   <dm:note>Scoring 120</dm:note>
   <dm:timestamp>2005-05-30T16:09:44+05:00</dm:timestamp>
 </dm:person>
</presence>"#;

pub(super) fn ok(body: &str) -> PresenceDoc {
    match parse(body.as_bytes()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e} for\n{body}"),
    }
}

fn note(text: &str, lang: Option<&str>) -> Note {
    Note::new(text, lang)
}

#[test]
fn pres_16_checklist_p3_body_parses() {
    let doc = ok(P3_BODY);
    assert_eq!(doc.entity, "pres:juliet@example.com");
    assert_eq!(
        doc.tuples,
        vec![Tuple {
            show: Some(Show::Away),
            contact: Some(Contact {
                uri: "sip:juliet@example.com;gr=balcony".into(),
                priority: ContactPriority::from_thousandths(39),
            }),
            notes: vec![note("On the balcony", Some("en"))],
            ..Tuple::new("ID-balcony", Some(Basic::Open))
        }]
    );
    assert!(doc.notes.is_empty() && doc.persons.is_empty());
}

#[test]
fn pres_20_checklist_p4_body_parses() {
    let doc = ok(P4_BODY);
    assert_eq!(doc.entity, "pres:romeo@example.net");
    assert_eq!(
        doc.tuples,
        vec![Tuple::new("ID-dr4hcr0st3lup4c", Some(Basic::Closed))]
    );
}

#[test]
fn pres_16_rfc8048_example19_body_parses() {
    let doc = ok(RFC8048_EX19);
    assert_eq!(doc.entity, "pres:juliet@example.com");
    assert_eq!(
        doc.tuples,
        vec![Tuple {
            show: Some(Show::Away),
            ..Tuple::new("ID-yn0cl4bnw0yr3vym", Some(Basic::Open))
        }]
    );
}

#[test]
fn pres_20_rfc8048_example20_body_parses() {
    let doc = ok(RFC8048_EX20);
    assert_eq!(doc.entity, "pres:romeo@example.net");
    assert_eq!(
        doc.tuples,
        vec![Tuple::new("ID-dr4hcr0st3lup4c", Some(Basic::Closed))]
    );
}

#[test]
fn rfc3863_4_2_2_prefixed_and_default_namespace_forms_are_equal() {
    let prefixed = ok(r#"<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
       entity="pres:someone@example.com">
     <impp:tuple id="sg89ae">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <impp:contact priority="0.8">tel:+09012345678</impp:contact>
     </impp:tuple>
   </impp:presence>"#);
    let default = ok(r#"<?xml version="1.0" encoding="UTF-8"?>
   <presence xmlns="urn:ietf:params:xml:ns:pidf"
       entity="pres:someone@example.com">
     <tuple id="sg89ae">
       <status>
         <basic>open</basic>
       </status>
       <contact priority="0.8">tel:+09012345678</contact>
     </tuple>
   </presence>"#);
    assert_eq!(prefixed, default);
    let contact = default.tuples[0].contact.clone();
    assert_eq!(
        contact,
        Some(Contact {
            uri: "tel:+09012345678".into(),
            priority: ContactPriority::from_thousandths(800),
        })
    );
}

#[test]
fn rfc3863_4_3_1_status_extensions_notes_and_timestamp() {
    let doc = ok(r#"<?xml version="1.0" encoding="UTF-8"?>
   <presence xmlns="urn:ietf:params:xml:ns:pidf"
        xmlns:im="urn:ietf:params:xml:ns:pidf:im"
        xmlns:myex="http://id.example.com/presence/"
        entity="pres:someone@example.com">
     <tuple id="bs35r9">
       <status>
         <basic>open</basic>
         <im:im>busy</im:im>
         <myex:location>home</myex:location>
       </status>
       <contact priority="0.8">im:someone@mobilecarrier.net</contact>
       <note xml:lang="en">Don't Disturb Please!</note>
       <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
       <timestamp>2001-10-27T16:49:29Z</timestamp>
     </tuple>
     <tuple id="eg92n8">
       <status>
         <basic>open</basic>
       </status>
       <contact priority="1.0">mailto:someone@example.com</contact>
     </tuple>
     <note>I'll be in Tokyo next week</note>
   </presence>"#);
    assert_eq!(doc.tuples.len(), 2);
    let first = &doc.tuples[0];
    assert_eq!(first.basic, Some(Basic::Open));
    assert_eq!(first.show, None, "im:im is an unknown extension");
    assert_eq!(
        first.notes,
        vec![
            note("Don't Disturb Please!", Some("en")),
            note("Ne derangez pas, s'il vous plait", Some("fr")),
        ]
    );
    assert_eq!(first.timestamp.as_deref(), Some("2001-10-27T16:49:29Z"));
    assert_eq!(
        doc.tuples[1].contact.as_ref().and_then(|c| c.priority),
        ContactPriority::from_thousandths(1000)
    );
    assert_eq!(doc.notes, vec![note("I'll be in Tokyo next week", None)]);
}

#[test]
fn rfc3863_4_3_2_extension_between_status_and_contact_and_wrapped_contact() {
    let doc = ok(r#"<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
        xmlns:myex="http://id.example.com/presence/"
        entity="pres:someone@example.com">
     <impp:tuple id="ck38g9">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <myex:mytupletag>Extended value in tuple</myex:mytupletag>
       <impp:contact priority="0.65">tel:+09012345678</impp:contact>
     </impp:tuple>
     <impp:tuple id="md66je">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <impp:contact priority="1.0">
          im:someone@mobilecarrier.net</impp:contact>
     </impp:tuple>
     <myex:mytag>My extended presentity information</myex:mytag>
   </impp:presence>"#);
    assert_eq!(doc.tuples.len(), 2);
    assert_eq!(
        doc.tuples[0].contact.as_ref().and_then(|c| c.priority),
        ContactPriority::from_thousandths(650)
    );
    assert_eq!(
        doc.tuples[1].contact.as_ref().map(|c| c.uri.as_str()),
        Some("im:someone@mobilecarrier.net")
    );
}

#[test]
fn rfc3863_4_3_3_must_understand_extension_is_ignored_not_fatal() {
    let doc = ok(r#"<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
        xmlns:myex="http://id.mycompany.com/presence/"
        entity="pres:someone@example.com">
     <impp:tuple id="tj25ds">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <myex:complexExtension>
         <myex:ex1 impp:mustUnderstand="1">val1</myex:ex1>
         <myex:ex2>val2</myex:ex2>
       </myex:complexExtension>
       <impp:contact priority="0.725">tel:+09012345678</impp:contact>
     </impp:tuple>
     <myex:mytag>My extended presentity information</myex:mytag>
   </impp:presence>"#);
    assert_eq!(doc.tuples[0].basic, Some(Basic::Open));
    assert_eq!(
        doc.tuples[0].contact.as_ref().and_then(|c| c.priority),
        ContactPriority::from_thousandths(725)
    );
}

#[test]
fn pres_18_rfc4480_example_person_activities_and_notes() {
    let doc = ok(RFC4480_EXAMPLE);
    assert_eq!(doc.tuples.len(), 3);
    assert!(doc.tuples.iter().all(|t| t.basic == Some(Basic::Open)));
    assert_eq!(doc.notes, vec![note("I'll be in Tokyo next week", None)]);
    // <dm:device> is not modelled; its <dm:note>PC</dm:note> must not leak anywhere.
    assert_eq!(
        doc.persons,
        vec![Person {
            id: Some("p1".into()),
            activities: vec![Activity::Away],
            notes: vec![note("Scoring 120", None)],
        }]
    );
}

#[test]
fn rfc3863_4_1_3_status_without_basic_or_with_invalid_basic_has_no_basic() {
    let doc = ok(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>
        <tuple id='a'><status><x:loc xmlns:x='urn:x'>home</x:loc></status></tuple>
        <tuple id='b'><status><basic>busy</basic></status></tuple>
        <tuple id='c'><status><basic> Open </basic></status></tuple>
        <tuple id='d'/>
        </presence>",
    );
    let basics: Vec<_> = doc.tuples.iter().map(|t| t.basic).collect();
    assert_eq!(basics, vec![None, None, Some(Basic::Open), None]);
}

#[test]
fn rfc3863_4_1_6_note_language_is_inherited_and_can_be_reset() {
    let doc = ok(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b' xml:lang='fr'>
        <tuple id='a' xml:lang='de'><status><basic>open</basic></status>
          <note>Hallo</note><note xml:lang='en'>Hello</note><note xml:lang=''>?</note></tuple>
        <note>Bonjour</note>
        </presence>",
    );
    assert_eq!(
        doc.tuples[0].notes,
        vec![
            note("Hallo", Some("de")),
            note("Hello", Some("en")),
            note("?", None)
        ]
    );
    assert_eq!(doc.notes, vec![note("Bonjour", Some("fr"))]);
}

#[test]
fn pres_17_contact_priority_grammar() {
    let cases: &[(&str, Option<u16>)] = &[
        ("0", Some(0)),
        ("0.", Some(0)),
        ("0.5", Some(500)),
        ("0.05", Some(50)),
        ("0.021", Some(21)),
        ("0.039", Some(39)),
        (" 0.8 ", Some(800)),
        ("1", Some(1000)),
        ("1.0", Some(1000)),
        ("1.000", Some(1000)),
        ("1.001", None),
        ("1.5", None),
        ("2", None),
        ("-0.1", None),
        ("0.1234", None),
        (".5", None),
        ("0.5x", None),
        ("0.+5", None),
        ("", None),
        ("NaN", None),
    ];
    for (text, thousandths) in cases {
        assert_eq!(
            ContactPriority::parse(text).map(ContactPriority::thousandths),
            *thousandths,
            "{text:?}"
        );
    }
}

#[test]
fn pres_17_contact_priority_display_is_shortest_form() {
    for (t, text) in [
        (0, "0"),
        (1000, "1"),
        (500, "0.5"),
        (39, "0.039"),
        (10, "0.01"),
        (7, "0.007"),
    ] {
        let p = ContactPriority::from_thousandths(t).expect("in range");
        assert_eq!(p.to_string(), text);
        assert_eq!(ContactPriority::parse(text), Some(p));
    }
    assert_eq!(ContactPriority::from_thousandths(1001), None);
}

#[test]
fn rfc3863_4_1_5_out_of_range_priority_is_ignored_not_fatal() {
    let doc = ok(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>
        <tuple id='a'><status><basic>open</basic></status>
        <contact priority='7'>sip:a@b</contact></tuple></presence>",
    );
    assert_eq!(
        doc.tuples[0].contact,
        Some(Contact {
            uri: "sip:a@b".into(),
            priority: None
        })
    );
}

#[test]
fn pres_16_show_outside_status_is_accepted_and_unknown_show_dropped() {
    let doc = ok("<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>
        <tuple id='a'><status><basic>open</basic></status><show xmlns='jabber:client'>dnd</show></tuple>
        <tuple id='b'><status><basic>open</basic><show xmlns='jabber:client'>lunch</show></status></tuple>
        <tuple id='c'><status><basic>open</basic><show xmlns='jabber:server'>xa</show></status></tuple>
        </presence>");
    let shows: Vec<_> = doc.tuples.iter().map(|t| t.show.clone()).collect();
    assert_eq!(shows, vec![Some(Show::Dnd), None, None]);
}

#[test]
fn rfc3863_4_2_3_unknown_elements_are_ignored_with_their_content() {
    let doc = ok(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>
        <x:wrap xmlns:x='urn:x'><tuple id='hidden'><status><basic>open</basic></status></tuple>
          <note>hidden</note></x:wrap>
        <tuple id='seen'><status><basic>closed</basic></status></tuple>
        <foo/>
        </presence>",
    );
    assert_eq!(doc.tuples, vec![Tuple::new("seen", Some(Basic::Closed))]);
    assert!(doc.notes.is_empty());
}

#[test]
fn prolog_variants_real_clients_send_are_accepted() {
    let body = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'/>";
    for prefix in [
        "",
        "<?xml version='1.0'?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n",
        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>",
        "\u{FEFF}<?xml version='1.0' encoding='UTF-8'?>",
        "\r\n  ",
        "<?xml version='1.0'?><!-- generated -->\n",
        "<!-- a --> <!-- b -->\n",
    ] {
        let doc = ok(&format!("{prefix}{body}"));
        assert_eq!(doc.entity, "pres:a@b", "{prefix:?}");
    }
    for suffix in ["\n", "<!-- end -->", "\n<!-- end -->\n"] {
        let doc = ok(&format!("{body}{suffix}"));
        assert_eq!(doc.entity, "pres:a@b", "{suffix:?}");
    }
    let inner = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'>\n<!-- c -->\n\
                 <tuple id='t'><!-- c --><status><basic>open</basic></status></tuple></presence>";
    assert_eq!(ok(inner).tuples.len(), 1);
}

#[test]
fn rfc3863_4_1_declared_non_utf8_encoding_is_refused() {
    let body = "<?xml version='1.0' encoding='ISO-8859-1'?>\
                <presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'/>";
    assert_eq!(parse(body.as_bytes()), Err(PidfError::NotUtf8));
}

#[test]
fn rfc3863_structural_musts_are_errors() {
    let cases = [
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
            PidfError::MissingEntity,
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='  '/>",
            PidfError::MissingEntity,
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'><tuple><status><basic>open</basic></status></tuple></presence>",
            PidfError::MissingTupleId,
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'><tuple id=''/></presence>",
            PidfError::MissingTupleId,
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:a@b'><tuple id='x'/><tuple id='x'/></presence>",
            PidfError::DuplicateTupleId("x".into()),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(parse(body.as_bytes()), Err(expected), "{body}");
    }
}

#[test]
fn errors_carry_their_sip_rendering() {
    let too_large = PidfError::TooLarge {
        size: 70000,
        limit: MAX_BODY_BYTES,
    }
    .rejection();
    assert_eq!(too_large.sip.code, 413);
    let bad = PidfError::MissingEntity.rejection();
    assert_eq!(bad.sip.code, 400);
    assert!(bad.sip.reason.starts_with("Bad PIDF"), "{}", bad.sip.reason);
    assert_eq!(bad.xmpp.condition_name(), "bad-request");
    for e in [
        PidfError::TooManyElements(1),
        PidfError::TooManyAttributes(1),
        PidfError::TooManyTuples(1),
    ] {
        assert_eq!(crate::errmap::Rejection::from(e).sip.code, 413);
    }
    for e in [
        PidfError::NotUtf8,
        PidfError::Xml("x".into()),
        PidfError::TooDeep(1),
        PidfError::NotPidf("{}x".into()),
        PidfError::MissingTupleId,
        PidfError::DuplicateTupleId("x".into()),
    ] {
        assert_eq!(e.rejection().sip.code, 400, "{e}");
    }
}

#[test]
fn pres_18_every_rpid_activity_round_trips_by_name() {
    let names = [
        "appointment",
        "away",
        "breakfast",
        "busy",
        "dinner",
        "holiday",
        "in-transit",
        "looking-for-work",
        "lunch",
        "meal",
        "meeting",
        "on-the-phone",
        "performance",
        "permanent-absence",
        "playing",
        "presentation",
        "shopping",
        "sleeping",
        "spectator",
        "steering",
        "travel",
        "tv",
        "unknown",
        "vacation",
        "working",
        "worship",
    ];
    for name in names {
        let activity = Activity::from_name(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(activity.name(), name);
    }
    assert_eq!(Activity::from_name("other"), None);
    assert_eq!(Activity::from_name("note"), None);
}
