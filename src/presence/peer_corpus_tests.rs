//! PIDF bodies captured from real SIP peers (tests/corpus/presence/peers, see its README):
//! each parses, and the SIP -> XMPP mapping (PRES-20, PRES-18) reads what the peer meant.

use super::pidf::Basic;
use super::{parse, pidf_to_xmpp, NotifyContext};
use crate::addr::AddressMap;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Show, Type};

fn body(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/presence/peers")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (file, first tuple's basic, XMPP type, show, status)
const CASES: &[(&str, Basic, Option<Show>, Option<&str>)] = &[
    ("baresip-online.xml", Basic::Open, None, None),
    ("baresip-offline.xml", Basic::Closed, None, None),
    ("pjsua-online.xml", Basic::Open, None, Some("back")),
    (
        "pjsua-away.xml",
        Basic::Open,
        Some(Show::Away),
        Some("Out to lunch"),
    ),
    (
        "pjsua-busy.xml",
        Basic::Open,
        Some(Show::Dnd),
        Some("In a meeting"),
    ),
    ("pjsua-offline.xml", Basic::Closed, None, None),
    (
        "pjsua-publish-away.xml",
        Basic::Open,
        Some(Show::Away),
        Some("note-away"),
    ),
    (
        "kamailio-from-pjsua-away.xml",
        Basic::Open,
        Some(Show::Away),
        Some("note-away"),
    ),
    (
        "kamailio-from-pjsua-busy.xml",
        Basic::Open,
        Some(Show::Dnd),
        Some("note-busy"),
    ),
    (
        "kamailio-from-pjsua-offline.xml",
        Basic::Closed,
        None,
        Some("note-offline"),
    ),
    ("kamailio-from-baresip-online.xml", Basic::Open, None, None),
    (
        "kamailio-from-baresip-offline.xml",
        Basic::Closed,
        None,
        None,
    ),
];

#[test]
fn pres_20_real_peer_bodies_map_to_what_the_peer_meant() {
    // The entity of each body names its own peer: serve 127.0.0.1 and pjsua.test as SIP.
    for (file, basic, show, status) in CASES {
        let doc = parse(&body(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.tuples[0].basic, Some(*basic), "{file}");
        let map = AddressMap::new("sip.localhost", &["localhost".into()], "127.0.0.1");
        let watcher = Jid::new("alice@localhost").unwrap();
        let out = pidf_to_xmpp(&doc, &watcher, &map, NotifyContext::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let p = &out[0];
        let want = if *basic == Basic::Open {
            Type::None
        } else {
            Type::Unavailable
        };
        assert_eq!(p.type_, want, "{file}");
        assert_eq!(p.show, *show, "{file}");
        if let Some(s) = status {
            assert_eq!(
                p.statuses.values().next().map(String::as_str),
                Some(*s),
                "{file}"
            );
        }
    }
}
