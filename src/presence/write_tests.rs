//! PIDF writer tests: RFC 8048 Example 19 / checklist P3 layout, the RPID prefixes, escaping.

use super::pidf::*;
use super::pidf_tests::{ok, P3_BODY, RFC4480_EXAMPLE};

fn note(text: &str, lang: Option<&str>) -> Note {
    Note::new(text, lang)
}

#[test]
fn pres_16_writer_produces_the_p3_document() {
    let doc = ok(P3_BODY);
    let xml = to_xml(&doc);
    assert!(xml.starts_with("<?xml version='1.0' encoding='UTF-8'?>\n<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='pres:juliet@example.com'>"), "{xml}");
    assert!(
        xml.contains("<status><basic>open</basic><show xmlns='jabber:client'>away</show></status>"),
        "{xml}"
    );
    assert!(
        xml.contains("<contact priority='0.039'>sip:juliet@example.com;gr=balcony</contact>"),
        "{xml}"
    );
    assert!(
        xml.contains("<note xml:lang='en'>On the balcony</note>"),
        "{xml}"
    );
    // No person, so no dm/rpid declarations.
    assert!(
        !xml.contains("xmlns:dm") && !xml.contains("xmlns:rpid"),
        "{xml}"
    );
    assert_eq!(ok(&xml), doc);
}

#[test]
fn pres_18_writer_round_trips_the_rfc4480_model() {
    let doc = ok(RFC4480_EXAMPLE);
    let xml = to_xml(&doc);
    assert!(
        xml.contains("xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model'"),
        "{xml}"
    );
    assert!(
        xml.contains("xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid'"),
        "{xml}"
    );
    assert!(
        xml.contains("<rpid:activities><rpid:away/></rpid:activities>"),
        "{xml}"
    );
    assert_eq!(ok(&xml), doc);
}

#[test]
fn writer_escapes_markup_and_keeps_line_breaks_exactly() {
    let doc = PresenceDoc {
        entity: "pres:o'neil&co@example.net".into(),
        tuples: vec![Tuple {
            contact: Some(Contact {
                uri: "sip:a@b?x=<y>".into(),
                priority: None,
            }),
            notes: vec![note("a < b && c ]]> d\r\nnext\rline\ttab", Some("en"))],
            timestamp: Some("2024-01-01T00:00:00Z".into()),
            ..Tuple::new("ID-x\"y", Some(Basic::Open))
        }],
        notes: vec![],
        persons: vec![Person {
            id: None,
            activities: vec![
                Activity::Other("<reading> & 'writing'".into()),
                Activity::Unknown,
            ],
            notes: vec![note("", None)],
        }],
    };
    let xml = to_xml(&doc);
    assert!(!xml.contains("]]>"), "{xml}");
    assert_eq!(ok(&xml), doc);
}

#[test]
fn writer_drops_characters_xml_cannot_carry() {
    let doc = PresenceDoc {
        entity: "pres:a\u{1}@b".into(),
        tuples: vec![Tuple {
            notes: vec![note("x\u{0}y\u{FFFE}z\u{1B}", None)],
            ..Tuple::new("t", Some(Basic::Open))
        }],
        ..PresenceDoc::default()
    };
    let back = ok(&to_xml(&doc));
    assert_eq!(back.entity, "pres:a@b");
    assert_eq!(back.tuples[0].notes, vec![note("xyz", None)]);
}
