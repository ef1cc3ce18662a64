//! Table tests for RFC 7572 translations, built from the CHECKLIST worked examples
//! (A1, A2, I1, I2, I3) and the field tables IM-2 / IM-6.

use super::*;
use crate::errmap::ErrorType;
use proptest::prelude::*;
use std::str::FromStr;

fn map() -> AddressMap {
    AddressMap::new("sip.example.com", &["example.com".into()], "example.net")
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
    }
}

fn xmpp(xml: &str) -> Message {
    let el: xmpp_parsers::minidom::Element = xml.parse().expect("test XML parses");
    Message::try_from(el).expect("test message parses")
}

fn send(xml: &str) -> SipMessageOut {
    match xmpp_to_sip(&xmpp(xml), &map(), limits()).expect("translates") {
        XmppOutcome::Send(m) => *m,
        XmppOutcome::Ignore(why) => panic!("ignored: {why}"),
    }
}

fn reject(xml: &str) -> Rejection {
    xmpp_to_sip(&xmpp(xml), &map(), limits()).expect_err("must be refused")
}

const NS: &str = "xmlns='jabber:component:accept'";

#[test]
fn im_2_example_i2_xmpp_to_sip_fields() {
    let m = send(&format!(
        "<message {NS} from='juliet@example.com/balcony' to='romeo@sip.example.com' id='m42'>\
         <thread>t-77</thread><body>Art thou not Romeo?</body></message>"
    ));
    assert_eq!(m.request_uri.to_uri(), "sip:romeo@example.net");
    assert_eq!(m.to.to_uri(), "sip:romeo@example.net");
    assert_eq!(
        m.from.to_uri(),
        "sip:juliet@example.com",
        "ADDR-7: From is the bare JID"
    );
    assert_eq!(
        m.contact.gr.as_deref(),
        Some("balcony"),
        "ADDR-7: resource as gr"
    );
    assert_eq!(m.call_id.as_deref(), Some("t-77"));
    assert_eq!(m.body, "Art thou not Romeo?");
    assert_eq!(m.subject, None);
    assert_eq!(m.content_language, None);
}

#[test]
fn im_2_subject_and_lang_map_to_headers() {
    let m = send(&format!(
        "<message {NS} from='juliet@example.com/b' to='romeo@sip.example.com' xml:lang='it'>\
         <subject>Stasera</subject><body>Ci vediamo 😀</body></message>"
    ));
    assert_eq!(m.subject.as_deref(), Some("Stasera"));
    assert_eq!(m.content_language.as_deref(), Some("it"), "IM-11");
    assert_eq!(m.body, "Ci vediamo 😀");
}

#[test]
fn im_2_example_a2_non_ascii_sender_percent_encoded() {
    let m = send(&format!(
        "<message {NS} from='tschüss@example.com/Küche' to='romeo@sip.example.com'><body>x</body></message>"
    ));
    assert_eq!(m.from.to_uri(), "sip:tsch%C3%BCss@example.com");
    assert_eq!(
        m.contact.to_uri(),
        "sip:tsch%C3%BCss@example.com;gr=K%C3%BCche"
    );
}

#[test]
fn im_2_foreign_sip_domain_via_escaped_localpart() {
    let m = send(&format!(
        "<message {NS} from='juliet@example.com/b' to='bob\\40other.org@sip.example.com'><body>x</body></message>"
    ));
    assert_eq!(m.request_uri.to_uri(), "sip:bob@other.org");
}

#[test]
fn gen_5_escaped_xmpp_address_is_not_looped_through_sip() {
    for to in [
        "juliet\\40example.com@sip.example.com",
        "x\\40sip.example.com@sip.example.com",
    ] {
        let r = reject(&format!(
            "<message {NS} from='romeo@example.com/b' to='{to}'><body>x</body></message>"
        ));
        assert_eq!(r.xmpp.condition, DefinedCondition::NotAcceptable, "{to}");
    }
}

#[test]
fn im_2_thread_that_is_not_a_call_id_maps_to_a_stable_legal_one() {
    let xml = format!(
        "<message {NS} from='juliet@example.com/b' to='romeo@sip.example.com'><thread>a b c</thread><body>x</body></message>"
    );
    let a = send(&xml).call_id.expect("derived Call-ID");
    assert!(is_call_id(&a), "{a}");
    assert_eq!(send(&xml).call_id.as_deref(), Some(a.as_str()), "stable");
    let other = send(&xml.replace("a b c", "a b d")).call_id.unwrap();
    assert_ne!(a, other);
}

#[test]
fn im_2_no_thread_leaves_call_id_to_the_adapter() {
    let m = send(&format!(
        "<message {NS} from='juliet@example.com/b' to='romeo@sip.example.com'><body>x</body></message>"
    ));
    assert_eq!(m.call_id, None);
}

#[test]
fn im_2_subject_header_injection_is_folded() {
    let m = send(&format!(
        "<message {NS} from='juliet@example.com/b' to='romeo@sip.example.com'><subject>a&#13;&#10;Via: evil</subject><body>x</body></message>"
    ));
    assert_eq!(m.subject.as_deref(), Some("a  Via: evil"));
}

#[test]
fn im_4_example_i3_oversize_is_policy_violation() {
    let body = "x".repeat(4097);
    let r = reject(&format!(
        "<message {NS} id='big1' from='juliet@example.com/balcony' to='romeo@sip.example.com'><body>{body}</body></message>"
    ));
    assert_eq!(r.xmpp.condition, DefinedCondition::PolicyViolation);
    assert_eq!(r.xmpp.type_, ErrorType::Modify);
}

#[test]
fn im_4_body_at_limit_is_sent() {
    let body = "x".repeat(4096);
    let m = send(&format!(
        "<message {NS} from='juliet@example.com/b' to='romeo@sip.example.com'><body>{body}</body></message>"
    ));
    assert_eq!(m.body.len(), 4096);
}

#[test]
fn im_14_groupchat_is_bad_request() {
    let r = reject(&format!(
        "<message {NS} type='groupchat' from='juliet@example.com/b' to='romeo@sip.example.com'><body>x</body></message>"
    ));
    assert_eq!(r.xmpp.condition, DefinedCondition::BadRequest);
}

#[test]
fn im_14_chat_and_headline_are_sent() {
    for t in ["chat", "headline", "normal"] {
        let m = send(&format!(
            "<message {NS} type='{t}' from='juliet@example.com/b' to='romeo@sip.example.com'><body>x</body></message>"
        ));
        assert_eq!(m.body, "x");
    }
}

#[test]
fn im_12_omemo_is_feature_not_implemented() {
    let r = reject(&format!(
        "<message {NS} from='juliet@example.com/b' to='romeo@sip.example.com'>\
         <encrypted xmlns='eu.siacs.conversations.axolotl'/><body>I sent you an OMEMO message</body></message>"
    ));
    assert_eq!(r.xmpp.condition, DefinedCondition::FeatureNotImplemented);
}

#[test]
fn chat_state_only_message_is_ignored() {
    let out = xmpp_to_sip(
        &xmpp(&format!(
            "<message {NS} type='chat' from='juliet@example.com/b' to='romeo@sip.example.com'>\
             <composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )),
        &map(),
        limits(),
    )
    .unwrap();
    assert!(matches!(out, XmppOutcome::Ignore(_)));
}

#[test]
fn sender_outside_served_domains_is_not_allowed() {
    let r = reject(&format!(
        "<message {NS} from='eve@elsewhere.org/x' to='romeo@sip.example.com'><body>x</body></message>"
    ));
    assert_eq!(r.xmpp.condition, DefinedCondition::NotAllowed);
}

fn sip_in(ruri: &str, from: &str) -> SipMessageIn {
    SipMessageIn {
        request_uri: ruri.into(),
        from: from.into(),
        to: ruri.into(),
        contact: None,
        call_id: "9E97FB43@example.net".into(),
        subject: None,
        content_type: Some("text/plain;charset=UTF-8".into()),
        content_language: None,
        max_forwards: Some(70),
        body: b"Ci vediamo al balcone.".to_vec(),
    }
}

fn deliver(m: &SipMessageIn) -> Message {
    sip_to_xmpp(m, &map(), "a3f1c0", InboundType::Normal).expect("delivers")
}

fn refuse(m: &SipMessageIn) -> Rejection {
    sip_to_xmpp(m, &map(), "id", InboundType::Chat).expect_err("must be refused")
}

#[test]
fn im_6_example_i1_sip_to_xmpp_fields() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.subject = Some("Tonight".into());
    m.content_language = Some("it".into());
    let x = deliver(&m);
    assert_eq!(
        x.from,
        Some(Jid::from_str("romeo@sip.example.com").unwrap())
    );
    assert_eq!(x.to, Some(Jid::from_str("juliet@example.com").unwrap()));
    assert_eq!(x.id, Some(Id("a3f1c0".into())));
    assert_eq!(x.type_, MessageType::Normal, "IM-7");
    assert_eq!(
        x.thread.as_ref().map(|t| t.id.as_str()),
        Some("9E97FB43@example.net")
    );
    assert_eq!(
        x.bodies.get(&Lang("it".into())).map(String::as_str),
        Some("Ci vediamo al balcone.")
    );
    assert_eq!(
        x.subjects.get(&Lang("it".into())).map(String::as_str),
        Some("Tonight")
    );
}

#[test]
fn im_6_content_language_is_the_stanza_xml_lang() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.content_language = Some("it".into());
    let el = to_element(deliver(&m));
    let xml = String::from(&el);
    assert!(
        xml.contains("xml:lang=\"it\"") || xml.contains("xml:lang='it'"),
        "{xml}"
    );
    assert_eq!(
        el.attr_ns(xmpp_parsers::minidom::rxml::Namespace::XML.as_str(), "lang"),
        Some("it")
    );
    let plain = to_element(deliver(&sip_in(
        "sip:juliet@example.com",
        "sip:romeo@example.net",
    )));
    assert!(
        !String::from(&plain).contains("xml:lang"),
        "no language stated, none claimed"
    );
}

#[test]
fn im_6_example_a1_apostrophe_sender_is_escaped() {
    let x = deliver(&sip_in(
        "sip:juliet@example.com",
        "sip:o'malley@example.net",
    ));
    assert_eq!(x.from.unwrap().to_string(), "o\\27malley@sip.example.com");
}

#[test]
fn im_6_gruu_in_contact_becomes_resource() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.contact = Some("<sip:romeo@example.net;gr=phone>".into());
    assert_eq!(
        deliver(&m).from.unwrap().to_string(),
        "romeo@sip.example.com/phone"
    );
    let m = sip_in("sip:juliet@example.com", "<sip:romeo@example.net;gr=desk>");
    assert_eq!(
        deliver(&m).from.unwrap().to_string(),
        "romeo@sip.example.com/desk"
    );
}

#[test]
fn im_6_chat_type_is_configurable() {
    let x = sip_to_xmpp(
        &sip_in("sip:juliet@example.com", "sip:romeo@example.net"),
        &map(),
        "i",
        InboundType::Chat,
    )
    .unwrap();
    assert_eq!(x.type_, MessageType::Chat);
}

#[test]
fn im_5_via_component_host_reaches_xmpp_user() {
    let x = deliver(&sip_in("sip:juliet@sip.example.com", "sip:bob@other.org"));
    assert_eq!(x.to.unwrap().to_string(), "juliet@example.com");
}

#[test]
fn gen_4_sips_is_refused_with_403() {
    let r = refuse(&sip_in("sips:juliet@example.com", "sip:romeo@example.net"));
    assert_eq!(r.sip.code, 403);
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.to = "sips:juliet@example.com".into();
    assert_eq!(refuse(&m).sip.code, 403);
}

#[test]
fn gen_5_max_forwards_zero_is_483() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.max_forwards = Some(0);
    assert_eq!(refuse(&m).sip.code, 483);
}

#[test]
fn gen_5_sip_user_target_is_not_regatewayed() {
    let r = refuse(&sip_in("sip:bob@example.net", "sip:romeo@example.net"));
    assert_eq!(r.sip.code, 404);
}

#[test]
fn gen_5_from_claiming_xmpp_user_is_403() {
    let r = refuse(&sip_in("sip:juliet@example.com", "sip:romeo@example.com"));
    assert_eq!(r.sip.code, 403);
}

#[test]
fn adr_1_unsupported_scheme_is_416() {
    let r = refuse(&sip_in("tel:+123", "sip:romeo@example.net"));
    assert_eq!(r.sip.code, 416);
}

#[test]
fn im_10_other_content_type_is_415() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.content_type = Some("application/json".into());
    assert_eq!(refuse(&m).sip.code, 415);
    m.content_type = Some("text/plain;charset=ISO-8859-1".into());
    assert_eq!(refuse(&m).sip.code, 415);
}

#[test]
fn im_10_cpim_is_unwrapped() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.content_type = Some("message/cpim".into());
    m.body =
        b"From: <sip:romeo@example.net>\r\n\r\nContent-Type: text/plain\r\n\r\ninner text".to_vec();
    let x = deliver(&m);
    assert_eq!(x.get_best_body(vec![]).unwrap().1, "inner text");
    m.body = b"Content-Type: text/html\r\n\r\nContent-Type: text/html\r\n\r\n<p>x</p>".to_vec();
    assert_eq!(refuse(&m).sip.code, 415);
}

#[test]
fn im_8_invalid_utf8_and_empty_bodies_are_400() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.body = vec![0xff, 0xfe, 0x41];
    assert_eq!(refuse(&m).sip.code, 400);
    m.body = vec![];
    assert_eq!(refuse(&m).sip.code, 400);
}

#[test]
fn im_11_xml_illegal_controls_are_dropped() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.body = b"a\x00b\x1bc\td".to_vec();
    assert_eq!(deliver(&m).get_best_body(vec![]).unwrap().1, "abc\td");
}

#[test]
fn im_8_body_of_only_control_characters_is_400() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.body = b"\x01\x02\x1b".to_vec();
    assert_eq!(refuse(&m).sip.code, 400);
}

#[test]
fn im_11_bad_language_tag_is_ignored() {
    let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
    m.content_language = Some("'><evil".into());
    assert!(deliver(&m).bodies.contains_key(&Lang::default()));
    m.content_language = Some("de-CH, en".into());
    assert!(deliver(&m).bodies.contains_key(&Lang("de-CH".into())));
}

#[test]
fn call_id_grammar() {
    assert!(is_call_id("t-77"));
    assert!(is_call_id("9E97FB43@example.net"));
    assert!(!is_call_id(""));
    assert!(!is_call_id("a b"));
    assert!(!is_call_id("a@b@c"));
    assert!(!is_call_id("ü"));
}

proptest! {
    #[test]
    fn sip_to_xmpp_never_panics(
        ruri in ".{0,40}", from in ".{0,40}", ct in proptest::option::of(".{0,30}"),
        lang in proptest::option::of(".{0,12}"), body in proptest::collection::vec(any::<u8>(), 0..200),
        mf in proptest::option::of(0u32..5),
    ) {
        let m = SipMessageIn {
            request_uri: ruri, from, to: String::new(), contact: None, call_id: "c".into(),
            subject: None, content_type: ct, content_language: lang, max_forwards: mf, body,
        };
        let _ = sip_to_xmpp(&m, &map(), "id", InboundType::Chat);
    }

    #[test]
    fn delivered_text_is_always_xml_safe(body in ".{1,100}") {
        let mut m = sip_in("sip:juliet@example.com", "sip:romeo@example.net");
        m.body = body.into_bytes();
        if let Ok(x) = sip_to_xmpp(&m, &map(), "id", InboundType::Chat) {
            // Serialising and parsing back proves the stanza is well-formed XML.
            let el: xmpp_parsers::minidom::Element = x.into();
            let text = String::from(&el);
            prop_assert!(text.parse::<xmpp_parsers::minidom::Element>().is_ok(), "{}", text);
        }
    }
}
