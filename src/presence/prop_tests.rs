//! Properties: the PIDF model round-trips through XML, parsing never panics and agrees with
//! itself after re-encoding, tuple ids invert, and presence survives XMPP -> SIP -> XMPP.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use xmpp_parsers::message::Lang;
use xmpp_parsers::presence::Show;

use super::pidf::*;
use super::translate::*;
use crate::addr::{AddressMap, BareJid, Jid};

/// Text content: any XML character, including CR/LF/TAB and markup characters.
fn xml_text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            4 => any::<char>(),
            1 => prop::sample::select(vec!['<', '>', '&', '\'', '"', '\r', '\n', '\t', ' ', ']']),
        ],
        0..24,
    )
    .prop_map(|chars| {
        chars
            .into_iter()
            .filter(|c| {
                matches!(*c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
                    || *c >= '\u{10000}'
            })
            .collect()
    })
}

/// Attribute-ish or token values: the parser trims these, so the model never holds outer
/// whitespace.
fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:@.;=_&<>'\"%é中-][a-zA-Z0-9 :@.;=_&<>'\"%é中-]{0,16}"
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("non-empty after trim", |s| !s.is_empty())
}

fn lang() -> impl Strategy<Value = Option<String>> {
    option::of("[a-z]{2}(-[A-Z]{2})?")
}

fn note() -> impl Strategy<Value = Note> {
    (xml_text(), lang()).prop_map(|(text, lang)| Note { text, lang })
}

fn show() -> impl Strategy<Value = Option<Show>> {
    option::of(prop::sample::select(vec![
        Show::Away,
        Show::Chat,
        Show::Dnd,
        Show::Xa,
    ]))
}

fn activity() -> impl Strategy<Value = Activity> {
    prop_oneof![
        xml_text().prop_map(Activity::Other),
        prop::sample::select(vec![
            "away",
            "busy",
            "meeting",
            "on-the-phone",
            "vacation",
            "sleeping",
            "unknown",
            "tv",
        ])
        .prop_map(|n| Activity::from_name(n).unwrap_or(Activity::Unknown)),
    ]
}

fn tuple() -> impl Strategy<Value = Tuple> {
    (
        token(),
        option::of(prop::sample::select(vec![Basic::Open, Basic::Closed])),
        show(),
        option::of((token(), option::of(0u16..=1000))),
        vec(note(), 0..3),
        option::of(token()),
    )
        .prop_map(|(id, basic, show, contact, notes, timestamp)| Tuple {
            id,
            basic,
            show,
            contact: contact.map(|(uri, p)| Contact {
                uri,
                priority: p.and_then(ContactPriority::from_thousandths),
            }),
            notes,
            timestamp,
        })
}

fn presence_doc() -> impl Strategy<Value = PresenceDoc> {
    (
        token(),
        vec(tuple(), 0..6),
        vec(note(), 0..3),
        vec(
            (
                option::of(token()),
                vec(activity(), 0..3),
                vec(note(), 0..2),
            )
                .prop_map(|(id, activities, notes)| Person {
                    id,
                    activities,
                    notes,
                }),
            0..2,
        ),
    )
        .prop_map(|(entity, mut tuples, notes, persons)| {
            // Tuple ids must be unique (RFC 3863 §4.1.2); make them so.
            for (i, t) in tuples.iter_mut().enumerate() {
                t.id = format!("{}{i}", t.id);
            }
            PresenceDoc {
                entity,
                tuples,
                notes,
                persons,
            }
        })
}

/// Valid documents with a few random edits (fragments inserted, ranges deleted), so that
/// the parser sees near-valid input, not only noise that fails at the first byte.
fn mutated() -> impl Strategy<Value = String> {
    let fragments = vec![
        "<tuple id='m'>",
        "</tuple>",
        "<status>",
        "</status>",
        "<basic>open</basic>",
        "<show xmlns='jabber:client'>dnd</show>",
        "<note>",
        "</note>",
        "&amp;",
        "&bogus;",
        "<!DOCTYPE x>",
        "<![CDATA[x]]>",
        "<!-- c -->",
        "<?pi?>",
        "<rpid:busy/>",
        "<x:e xmlns:x='u'>",
        "</x:e>",
        "<x:e xmlns:x='u'/>",
        " a='b'",
        "'",
        "\"",
        "<",
        ">",
        "é",
        "<contact priority='0.5'>sip:a@b;gr=z</contact>",
        "<dm:note>n</dm:note>",
    ];
    let edit = (
        any::<prop::sample::Index>(),
        prop_oneof![
            prop::sample::select(fragments).prop_map(|f| Ok(f.to_owned())),
            (0usize..8).prop_map(Err),
        ],
    );
    (presence_doc(), vec(edit, 0..4)).prop_map(|(doc, edits)| {
        let mut xml = to_xml(&doc);
        for (at, edit) in edits {
            let mut i = at.index(xml.len() + 1);
            while !xml.is_char_boundary(i) {
                i -= 1;
            }
            match edit {
                Ok(fragment) => xml.insert_str(i, &fragment),
                Err(len) => {
                    let mut j = (i + len).min(xml.len());
                    while !xml.is_char_boundary(j) {
                        j -= 1;
                    }
                    xml.replace_range(i..j, "");
                }
            }
        }
        xml
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pidf_model_round_trips_through_xml(doc in presence_doc()) {
        let xml = to_xml(&doc);
        prop_assert_eq!(parse(xml.as_bytes()), Ok(doc), "{}", xml);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(body in vec(any::<u8>(), 0..2048)) {
        let _ = parse(&body);
    }

    #[test]
    fn parse_encode_parse_agree_on_mutated_documents(body in mutated()) {
        if let Ok(doc) = parse(body.as_bytes()) {
            let again = parse(to_xml(&doc).as_bytes());
            prop_assert_eq!(again, Ok(doc), "{}", body);
        }
    }

    #[test]
    fn tuple_ids_are_ncnames_and_invert(resource in "\\PC{1,24}") {
        let id = resource_to_tuple_id(&resource);
        prop_assert!(id.starts_with(TUPLE_ID_PREFIX));
        prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
        prop_assert_eq!(tuple_id_to_resource(&id), resource);
    }

    #[test]
    fn tuple_id_decoding_never_panics(id in "\\PC{0,24}") {
        let _ = tuple_id_to_resource(&id);
        let _ = tuple_id_to_resource(&format!("{TUPLE_ID_PREFIX}{id}"));
    }

    #[test]
    fn sip_to_xmpp_never_panics_and_speaks_only_for_sip_users(doc in presence_doc()) {
        let map = map();
        let watcher = Jid::new("juliet@example.com").expect("valid");
        if let Ok(presences) = super::pidf_to_xmpp(&doc, &watcher, &map, Default::default()) {
            for p in presences {
                let from = p.from.expect("always set");
                prop_assert!(map.is_component_jid(&from), "{}", from);
                prop_assert!(from.resource().is_some());
                prop_assert_eq!(p.to, Some(watcher.clone()));
            }
        }
    }

    #[test]
    fn presence_survives_xmpp_to_sip_to_xmpp(
        resources in vec(("[a-zA-Z0-9][a-zA-Z0-9 ._/@-]{0,11}", show(), any::<i8>(), option::of("[a-z]{2}"), "[a-zA-Z .!]{0,12}"), 1..5)
    ) {
        let user = BareJid::new("juliet@example.com").expect("valid");
        let mut seen = std::collections::HashSet::new();
        let resources: Vec<ResourcePresence> = resources
            .into_iter()
            .filter(|(r, ..)| user.with_resource_str(r).is_ok() && seen.insert(r.clone()))
            .map(|(resource, show, priority, lang, status)| ResourcePresence {
                resource,
                show,
                statuses: vec![Note { text: status, lang }],
                priority,
            })
            .collect();
        let map = map();
        let out = super::xmpp_to_pidf(&user, &resources, &map).expect("served user");
        let mut doc = parse(to_xml(&out.doc).as_bytes()).expect("own output parses");
        doc.entity = "pres:romeo@example.net".into();
        let watcher = Jid::new("juliet@example.com").expect("valid");
        let back = super::pidf_to_xmpp(&doc, &watcher, &map, Default::default()).expect("maps");
        prop_assert_eq!(back.len(), resources.len().max(1));
        for (r, p) in resources.iter().zip(&back) {
            prop_assert_eq!(p.from.as_ref().and_then(|j| j.resource()).map(|r| r.as_str()), Some(r.resource.as_str()));
            prop_assert_eq!(&p.show, &r.show);
            prop_assert_eq!(p.priority.0, r.priority.max(0));
            let lang = Lang(r.statuses[0].lang.clone().unwrap_or_default());
            prop_assert_eq!(p.statuses.get(&lang), Some(&r.statuses[0].text));
        }
    }
}

fn map() -> AddressMap {
    AddressMap::new(
        "sip.example.com",
        &["example.com".to_owned()],
        "example.net",
    )
}
