//! Properties: every consistent model renders to XML that parses back to itself; no input
//! makes the parser or the roster machine panic; the roster keeps nicknames unique whatever
//! sequence of documents it is fed (MUC-9, MUC-30).

use std::collections::HashSet;

use proptest::prelude::*;

use super::confinfo::*;
use super::roster::{Input, Roster};

/// Trimmed XML text (no controls but TAB/CR/LF inside, no noncharacters).
fn text() -> impl Strategy<Value = String> {
    "[\\PC\t\r\n]{0,12}".prop_map(|s| s.trim().to_owned())
}

fn non_empty() -> impl Strategy<Value = String> {
    text().prop_map(|s| if s.is_empty() { "x".to_owned() } else { s })
}

fn state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::Full),
        Just(State::Partial),
        Just(State::Deleted)
    ]
}

fn execution() -> impl Strategy<Value = Option<Execution>> {
    proptest::option::of(
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(when, reason, by)| Execution { when, reason, by }),
    )
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    (
        non_empty(),
        state(),
        proptest::option::of(text()),
        proptest::option::of(proptest::sample::select(EndpointStatus::ALL)),
        execution(),
        execution(),
        proptest::collection::vec(
            (non_empty(), proptest::option::of(text()))
                .prop_map(|(id, media_type)| Media { id, media_type }),
            0..3,
        ),
    )
        .prop_map(
            |(entity, state, display_text, status, joining_info, disconnection_info, media)| {
                Endpoint {
                    entity,
                    state,
                    display_text,
                    status,
                    joining_info,
                    disconnection_info,
                    media,
                }
            },
        )
}

fn user() -> impl Strategy<Value = User> {
    (
        non_empty(),
        state(),
        proptest::option::of(non_empty()),
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(endpoint(), 0..3),
    )
        .prop_map(
            |(entity, state, nickname, display_text, associated_aors, roles, endpoints)| User {
                entity,
                state,
                nickname,
                display_text,
                associated_aors,
                roles,
                endpoints,
            },
        )
}

fn raw_doc() -> impl Strategy<Value = ConferenceInfo> {
    (
        non_empty(),
        state(),
        any::<u32>(),
        proptest::option::of(
            (proptest::option::of(text()), proptest::option::of(text())).prop_map(
                |(display_text, subject)| Description {
                    display_text,
                    subject,
                },
            ),
        ),
        proptest::option::of(
            (state(), proptest::collection::vec(user(), 0..5))
                .prop_map(|(state, users)| Users { state, users }),
        ),
    )
        .prop_map(
            |(entity, state, version, description, users)| ConferenceInfo {
                entity,
                state,
                version,
                description,
                users,
            },
        )
}

/// Makes a generated model one the RFC allows: unique keys (§4.5), full parents with full
/// children and no content under deleted elements (§4.4).
fn consistent(mut doc: ConferenceInfo) -> ConferenceInfo {
    if doc.state == State::Deleted {
        doc.description = None;
        doc.users = None;
        return doc;
    }
    let Some(users) = &mut doc.users else {
        return doc;
    };
    if doc.state == State::Full {
        users.state = State::Full;
    }
    if users.state == State::Deleted {
        users.users.clear();
    }
    for (i, user) in users.users.iter_mut().enumerate() {
        user.entity = format!("{}{i}", user.entity);
        if users.state == State::Full {
            user.state = State::Full;
        }
        if user.state == State::Deleted {
            *user = User {
                entity: user.entity.clone(),
                state: State::Deleted,
                ..User::default()
            };
            continue;
        }
        for (j, endpoint) in user.endpoints.iter_mut().enumerate() {
            endpoint.entity = format!("{}{j}", endpoint.entity);
            if user.state == State::Full {
                endpoint.state = State::Full;
            }
            if endpoint.state == State::Deleted {
                *endpoint = Endpoint {
                    entity: endpoint.entity.clone(),
                    state: State::Deleted,
                    ..Endpoint::default()
                };
                continue;
            }
            for (k, media) in endpoint.media.iter_mut().enumerate() {
                media.id = format!("{}{k}", media.id);
            }
        }
    }
    doc
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn render_then_parse_is_identity(doc in raw_doc().prop_map(consistent)) {
        let xml = to_xml(&doc);
        prop_assert_eq!(parse(xml.as_bytes()), Ok(doc), "{}", xml);
    }

    #[test]
    fn any_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse(&body) {
            let code = e.rejection().sip.code;
            prop_assert!(code == 400 || code == 413);
        }
        let mut roster = Roster::new("me");
        let _ = roster.handle(Input::Notify(&body));
        while roster.poll_output().is_some() {}
    }

    #[test]
    fn damaged_documents_never_panic(
        doc in raw_doc().prop_map(consistent),
        cut in any::<prop::sample::Index>(),
        noise in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut xml = to_xml(&doc).into_bytes();
        let at = cut.index(xml.len() + 1);
        xml.splice(at..at, noise);
        let _ = parse(&xml);
        xml.truncate(at);
        let _ = parse(&xml);
    }

    /// MUC-9/MUC-30 under any sequence of documents: occupants have distinct nicknames, at
    /// most one is the user, and each is a listed user.
    #[test]
    fn roster_invariants_hold_over_any_document_sequence(
        docs in proptest::collection::vec(raw_doc().prop_map(consistent), 1..6),
    ) {
        let mut roster = Roster::new("x");
        for (n, mut doc) in docs.into_iter().enumerate() {
            // Mostly consecutive versions so partial documents are applied, not resynced.
            doc.version = if n % 3 == 2 { doc.version } else { n as u32 };
            let _ = roster.handle(Input::Notify(to_xml(&doc).as_bytes()));
            while roster.poll_output().is_some() {}
            let mut nicks = HashSet::new();
            let mut own = 0;
            for o in roster.occupants() {
                prop_assert!(nicks.insert(o.nick.clone()), "nickname {} twice", o.nick);
                own += usize::from(o.is_self);
            }
            prop_assert!(own <= 1);
        }
    }
}
