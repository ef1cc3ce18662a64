//! IQ services the component answers itself (COMP-4, COMP-7, COMP-8, COMP-10): XEP-0030
//! service discovery, XEP-0100 jabber:iq:gateway, XEP-0199 ping and XEP-0092 version.
//!
//! Pure: an IQ element in, the reply element out. Every `get`/`set` gets exactly one answer
//! (result or error, COMP-4); `result`/`error` IQs are never answered (ERR-13).

use super::xml::BuilderExt;
use crate::addr::AddressMap;
use crate::errmap::{DefinedCondition, XmppError};
use tokio_xmpp::minidom::Element;

const NS: &str = "jabber:component:accept";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_GATEWAY: &str = "jabber:iq:gateway";
const NS_PING: &str = "urn:xmpp:ping";
const NS_VERSION: &str = "jabber:iq:version";

/// Features of the component JID itself.
const COMPONENT_FEATURES: &[&str] = &[
    super::adhoc::NS_COMMANDS,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_GATEWAY,
    NS_PING,
    NS_VERSION,
];
/// Features the gateway maps for a SIP user's JID (only what is implemented: COMP-8 says
/// clients decide what to offer from this list, so advertising more would break them).
/// A SIP user's JID: disco, ping, and what a Jingle client looks for before it offers a
/// call button (MEDIA-26): Jingle RTP audio/video over ICE-UDP or Raw-UDP with DTLS-SRTP and
/// the RTP extensions the translator maps, and XEP-0353 ringing. `urn:ietf:rfc:3264` is
/// left out on purpose (MEDIA-1: it would force Jingle peers into offer/answer only).
const USER_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_PING,
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
    "urn:xmpp:jingle:apps:rtp:info:1",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:transports:raw-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
    "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
    "urn:xmpp:jingle:apps:grouping:0",
    "urn:xmpp:jingle:apps:rtp:ssma:0",
    "urn:xmpp:jingle-message:0",
];

/// The XEP-0115 node stox announces in the presence it sends for SIP users.
pub const CAPS_NODE: &str = "https://stox.invalid";

/// XEP-0115 `<c/>` for the presence of SIP users (MEDIA-26): its `ver` is the hash of what
/// disco#info answers on a SIP user's JID, so clients that discover by caps (Conversations,
/// Dino) learn the Jingle features without asking every contact.
pub fn user_caps() -> Element {
    static CAPS: std::sync::OnceLock<Element> = std::sync::OnceLock::new();
    CAPS.get_or_init(|| {
        use xmpp_parsers::caps::{compute_disco, hash_caps, Caps};
        use xmpp_parsers::disco::{DiscoInfoResult, Identity};
        use xmpp_parsers::hashes::Algo;
        let disco = DiscoInfoResult {
            node: None,
            identities: vec![Identity::new_anonymous::<_, _, (), ()>("client", "phone")],
            features: USER_FEATURES.iter().map(|f| f.to_string()).collect(),
            extensions: vec![],
        };
        match hash_caps(&compute_disco(&disco), Algo::Sha_1) {
            Ok(hash) => Caps::new(CAPS_NODE, hash).into(),
            // SHA-1 always hashes; an empty <c/> would still be well-formed.
            Err(_) => Element::builder("c", "http://jabber.org/protocol/caps").build(),
        }
    })
    .clone()
}

/// Answer an IQ addressed to the component or one of its JIDs. `None` for result/error IQs.
pub fn answer_iq(iq: &Element, map: &AddressMap) -> Option<Element> {
    let typ = iq.attr("type").unwrap_or("");
    if typ != "get" && typ != "set" {
        return None;
    }
    let to = iq.attr("to").unwrap_or("");
    let to_component = to.eq_ignore_ascii_case(map.component());
    let mut children = iq.children();
    let payload = match (children.next(), children.next()) {
        (Some(p), None) => p,
        _ => {
            return Some(error_reply(
                iq,
                XmppError::new(DefinedCondition::BadRequest)
                    .with_text("an IQ get/set carries exactly one payload"),
                map.component(),
            ))
        }
    };
    let reply = match (typ, payload.name(), payload.ns().as_str()) {
        ("get", "query", NS_DISCO_INFO) => Ok(Some(disco_info(to_component, payload))),
        ("get", "query", NS_DISCO_ITEMS) => Ok(Some(
            Element::builder("query", NS_DISCO_ITEMS)
                .a("node", payload.attr("node"))
                .build(),
        )),
        ("get", "ping", NS_PING) => Ok(None),
        ("get", "query", NS_VERSION) => Ok(Some(
            Element::builder("query", NS_VERSION)
                .append(text_el("name", NS_VERSION, "stox"))
                .append(text_el("version", NS_VERSION, env!("CARGO_PKG_VERSION")))
                .build(),
        )),
        ("get", "query", NS_GATEWAY) if to_component => Ok(Some(
            Element::builder("query", NS_GATEWAY)
                .append(text_el(
                    "desc",
                    NS_GATEWAY,
                    "Enter the SIP address (for example sip:bob@example.net) to get its JID.",
                ))
                .append(text_el("prompt", NS_GATEWAY, "SIP address"))
                .build(),
        )),
        ("set", "query", NS_GATEWAY) if to_component => gateway_set(payload, map),
        _ => Err(XmppError::new(DefinedCondition::ServiceUnavailable)),
    };
    Some(match reply {
        Ok(payload) => result_reply(iq, payload, map.component()),
        Err(e) => error_reply(iq, e, map.component()),
    })
}

fn disco_info(to_component: bool, query: &Element) -> Element {
    let mut b = Element::builder("query", NS_DISCO_INFO).a("node", query.attr("node"));
    let features = if to_component {
        b = b.append(
            Element::builder("identity", NS_DISCO_INFO)
                .a("category", "gateway")
                // "simple" is the XMPP Registrar's gateway type for SIP/SIMPLE.
                .a("type", "simple")
                .a("name", "SIP gateway")
                .build(),
        );
        COMPONENT_FEATURES
    } else {
        b = b.append(
            Element::builder("identity", NS_DISCO_INFO)
                .a("category", "client")
                .a("type", "phone")
                .build(),
        );
        USER_FEATURES
    };
    for f in features {
        b = b.append(
            Element::builder("feature", NS_DISCO_INFO)
                .a("var", *f)
                .build(),
        );
    }
    b.build()
}

/// XEP-0100 §6.3: translate the legacy address in `<prompt/>` to a JID (ADDR-11).
fn gateway_set(query: &Element, map: &AddressMap) -> Result<Option<Element>, XmppError> {
    let prompt = query
        .get_child("prompt", NS_GATEWAY)
        .map(|p| p.text())
        .unwrap_or_default();
    let prompt = prompt.trim();
    let uri = if prompt.contains(':') {
        prompt.to_string()
    } else {
        format!("sip:{prompt}")
    };
    let jid = crate::addr::SipAddr::parse(&uri)
        .and_then(|a| map.sip_to_jid(&a))
        .map_err(|e| XmppError::new(DefinedCondition::NotAcceptable).with_text(e.to_string()))?;
    Ok(Some(
        Element::builder("query", NS_GATEWAY)
            .append(text_el("jid", NS_GATEWAY, &jid.to_string()))
            .build(),
    ))
}

fn text_el(name: &str, ns: &str, text: &str) -> Element {
    Element::builder(name, ns).append(text).build()
}

/// `<iq type='result'/>` echoing the id, from/to swapped (from: see [`reply_from`]).
pub fn result_reply(iq: &Element, payload: Option<Element>, component: &str) -> Element {
    let mut b = Element::builder("iq", NS)
        .a("type", "result")
        .a("id", iq.attr("id").unwrap_or(""))
        .a("from", reply_from(iq, component))
        .a("to", iq.attr("from"));
    if let Some(p) = payload {
        b = b.append(p);
    }
    b.build()
}

/// The `from` of a reply: the original `to` when it is a valid JID, else the component
/// domain. Echoing an invalid address would make the server reject the reply or drop the
/// link (COMP-3).
fn reply_from<'a>(stanza: &'a Element, component: &'a str) -> &'a str {
    stanza
        .attr("to")
        .filter(|t| xmpp_parsers::jid::Jid::new(t).is_ok())
        .unwrap_or(component)
}

/// An error reply to any stanza element (message, presence or iq): same name and id,
/// from/to swapped (from: see [`reply_from`]), the original payload left out (RFC 6120
/// §8.3.1 allows that).
pub fn error_reply(stanza: &Element, err: XmppError, component: &str) -> Element {
    let error: Element = err.to_stanza_error().into();
    Element::builder(stanza.name(), NS)
        .a("type", "error")
        .a("id", stanza.attr("id"))
        .a("from", reply_from(stanza, component))
        .a("to", stanza.attr("from"))
        .append(error)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> AddressMap {
        AddressMap::new("sip.example.com", &["example.com".into()], "example.net")
    }

    fn iq(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn comp_7_disco_info_on_component_is_gateway() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='d1' from='juliet@example.com/b' to='sip.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(r.attr("id"), Some("d1"));
        assert_eq!(r.attr("from"), Some("sip.example.com"));
        assert_eq!(r.attr("to"), Some("juliet@example.com/b"));
        let q = r.get_child("query", NS_DISCO_INFO).unwrap();
        let id = q.get_child("identity", NS_DISCO_INFO).unwrap();
        assert_eq!(id.attr("category"), Some("gateway"));
        let feats: Vec<_> = q.children().filter_map(|c| c.attr("var")).collect();
        assert!(feats.contains(&NS_GATEWAY));
        assert!(!feats.contains(&"urn:ietf:rfc:3264"), "MEDIA-1");
    }

    #[test]
    fn comp_8_disco_info_on_user_is_client_phone() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='d2' from='juliet@example.com/b' to='romeo@sip.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
            &map(),
        )
        .unwrap();
        let q = r.get_child("query", NS_DISCO_INFO).unwrap();
        assert_eq!(
            q.get_child("identity", NS_DISCO_INFO)
                .unwrap()
                .attr("category"),
            Some("client")
        );
    }

    /// MEDIA-26: a SIP user's JID (with the call resource) answers disco#info with the Jingle
    /// features, and the XEP-0115 ver in its presence is the hash of exactly that answer
    /// (queried with the caps node, as clients do).
    #[test]
    fn media_26_user_disco_has_jingle_and_caps_ver_matches() {
        let node = format!("{CAPS_NODE}#{}", user_caps().attr("ver").unwrap());
        let r = answer_iq(
            &iq(&format!("<iq xmlns='jabber:component:accept' type='get' id='d3' from='juliet@example.com/b' to='romeo@sip.example.com/sip'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>")),
            &map(),
        )
        .unwrap();
        let q = r.get_child("query", NS_DISCO_INFO).unwrap().clone();
        assert_eq!(q.attr("node"), Some(node.as_str()));
        let feats: Vec<_> = q.children().filter_map(|c| c.attr("var")).collect();
        for f in [
            "urn:xmpp:jingle:1",
            "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:transports:ice-udp:1",
            "urn:xmpp:jingle:apps:dtls:0",
            "urn:xmpp:jingle-message:0",
        ] {
            assert!(feats.contains(&f), "{f} missing");
        }
        assert!(!feats.contains(&"urn:ietf:rfc:3264"), "MEDIA-1");
        let disco = xmpp_parsers::disco::DiscoInfoResult::try_from(q).unwrap();
        let hash = xmpp_parsers::caps::hash_caps(
            &xmpp_parsers::caps::compute_disco(&disco),
            xmpp_parsers::hashes::Algo::Sha_1,
        )
        .unwrap();
        let caps = xmpp_parsers::caps::Caps::try_from(user_caps()).unwrap();
        assert_eq!(
            caps.ver, hash.hash,
            "caps ver must hash the disco#info answer"
        );
        assert_eq!(caps.node, CAPS_NODE);
    }

    #[test]
    fn comp_10_gateway_prompt_translates_sip_address() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='set' id='g1' from='juliet@example.com/b' to='sip.example.com'><query xmlns='jabber:iq:gateway'><prompt>sip:bob@other.org</prompt></query></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("result"));
        let jid = r
            .get_child("query", NS_GATEWAY)
            .unwrap()
            .get_child("jid", NS_GATEWAY)
            .unwrap()
            .text();
        assert_eq!(jid, "bob\\40other.org@sip.example.com");
    }

    #[test]
    fn comp_10_gateway_get_has_prompt() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='g0' from='j@example.com/b' to='sip.example.com'><query xmlns='jabber:iq:gateway'/></iq>"),
            &map(),
        )
        .unwrap();
        assert!(r
            .get_child("query", NS_GATEWAY)
            .unwrap()
            .get_child("prompt", NS_GATEWAY)
            .is_some());
    }

    #[test]
    fn comp_10_gateway_bad_prompt_is_error() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='set' id='g2' from='j@example.com/b' to='sip.example.com'><query xmlns='jabber:iq:gateway'><prompt>tel:+123</prompt></query></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("error"));
    }

    #[test]
    fn comp_4_ping_and_version_answered() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='p1' from='example.com' to='sip.example.com'><ping xmlns='urn:xmpp:ping'/></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(r.children().count(), 0);
        let v = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='v1' from='j@example.com/b' to='sip.example.com'><query xmlns='jabber:iq:version'/></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(
            v.get_child("query", NS_VERSION)
                .unwrap()
                .get_child("name", NS_VERSION)
                .unwrap()
                .text(),
            "stox"
        );
    }

    #[test]
    fn comp_4_unknown_iq_gets_service_unavailable() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='set' id='u1' from='j@example.com/b' to='romeo@sip.example.com'><query xmlns='urn:example:nope'/></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("error"));
        assert_eq!(r.attr("id"), Some("u1"));
        let e = r.get_child("error", NS).unwrap();
        assert!(e
            .get_child("service-unavailable", "urn:ietf:params:xml:ns:xmpp-stanzas")
            .is_some());
    }

    #[test]
    fn comp_4_iq_with_two_payloads_gets_bad_request() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='x' from='j@example.com/b' to='sip.example.com'><a xmlns='urn:a'/><b xmlns='urn:b'/></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("error"));
    }

    #[test]
    fn comp_3_reply_to_an_invalid_to_comes_from_the_component() {
        let r = answer_iq(
            &iq("<iq xmlns='jabber:component:accept' type='get' id='p2' from='j@example.com/b' to='a b@sip.example.com'><ping xmlns='urn:xmpp:ping'/></iq>"),
            &map(),
        )
        .unwrap();
        assert_eq!(r.attr("type"), Some("result"));
        assert_eq!(r.attr("from"), Some("sip.example.com"));
    }

    #[test]
    fn err_13_results_and_errors_are_never_answered() {
        for t in ["result", "error"] {
            let x = format!("<iq xmlns='jabber:component:accept' type='{t}' id='r' from='example.com' to='sip.example.com'/>");
            assert!(answer_iq(&iq(&x), &map()).is_none());
        }
    }
}
