//! Scenarios of what the component answers on its link: IQ services (disco, jabber:iq:gateway,
//! ping, version, unknown payloads), the `from` of everything it sends, and malformed or
//! unanswerable stanzas (which get errors, or nothing, and never cost the link).
//! Test names cite the requirement IDs of shared/spec/CHECKLIST.md; the harness and its
//! timing rules are described in tests/support/mod.rs.

mod support;

use support::check::*;
use support::xml::{child, stanza_error};
use support::{opts, romeo_message, Harness, COMPONENT, SOON};

// ---------------------------------------------------------------------------------------
// 7.2 IQ services (COMP-4, COMP-7, COMP-8, COMP-10)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn comp_7_disco_info_on_the_component_is_a_gateway() {
    let mut h = Harness::start(opts()).await;
    let r = iq_result(
        &mut h,
        "get",
        "di1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
    )
    .await;
    let q = child(&r, "query", NS_DISCO_INFO);
    assert_eq!(
        child(q, "identity", NS_DISCO_INFO).attr("category"),
        Some("gateway"),
        "{}",
        s(&r)
    );
    let f = features(q);
    for want in [NS_DISCO_INFO, NS_GATEWAY] {
        assert!(
            f.iter().any(|x| x == want),
            "COMP-7 feature {want} missing: {f:?}"
        );
    }
    assert!(
        !f.iter().any(|x| x == "urn:ietf:rfc:3264"),
        "MEDIA-1: {f:?}"
    );
    let r = iq_result(
        &mut h,
        "get",
        "dit1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_ITEMS}'/>"),
    )
    .await;
    child(&r, "query", NS_DISCO_ITEMS);
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_8_disco_info_on_a_sip_user_is_a_client_phone() {
    let mut h = Harness::start(opts()).await;
    for (id, to) in [("du1", ROMEO), ("du2", "romeo@sip.example.com/phone")] {
        let r = iq_result(
            &mut h,
            "get",
            id,
            to,
            &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
        )
        .await;
        let q = child(&r, "query", NS_DISCO_INFO);
        let identity = child(q, "identity", NS_DISCO_INFO);
        let ct = (identity.attr("category"), identity.attr("type"));
        assert_eq!(ct, (Some("client"), Some("phone")), "{}", s(&r));
        assert!(
            !features(q).iter().any(|x| x == "urn:ietf:rfc:3264"),
            "MEDIA-1"
        );
    }
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_10_jabber_iq_gateway_prompt_and_translation() {
    let mut h = Harness::start(opts()).await;
    let r = iq_result(
        &mut h,
        "get",
        "g1",
        COMPONENT,
        &format!("<query xmlns='{NS_GATEWAY}'/>"),
    )
    .await;
    let q = child(&r, "query", NS_GATEWAY);
    child(q, "desc", NS_GATEWAY);
    assert!(
        !child(q, "prompt", NS_GATEWAY).text().is_empty(),
        "{}",
        s(&r)
    );
    for (id, prompt, jid) in [
        (
            "g2",
            "sip:bob@other.org",
            "bob\\40other.org@sip.example.com",
        ),
        ("g3", "sip:romeo@example.net", ROMEO),
    ] {
        let payload = format!("<query xmlns='{NS_GATEWAY}'><prompt>{prompt}</prompt></query>");
        let r = iq_result(&mut h, "set", id, COMPONENT, &payload).await;
        let got = child(child(&r, "query", NS_GATEWAY), "jid", NS_GATEWAY).text();
        assert_eq!(got, jid, "ADDR-11 {prompt}");
    }
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_4_ping_version_and_unknown_iq_are_answered() {
    let mut h = Harness::start(opts()).await;
    let ping = format!("<ping xmlns='{NS_PING}'/>");
    iq_result(&mut h, "get", "p1", COMPONENT, &ping).await;
    iq_result(&mut h, "get", "p2", ROMEO, &ping).await;
    let r = iq_result(
        &mut h,
        "get",
        "v1",
        COMPONENT,
        &format!("<query xmlns='{NS_VERSION}'/>"),
    )
    .await;
    let q = child(&r, "query", NS_VERSION);
    assert_eq!(child(q, "name", NS_VERSION).text(), "stox");
    assert!(!child(q, "version", NS_VERSION).text().is_empty());
    for (id, typ, to) in [("u1", "get", COMPONENT), ("u2", "set", ROMEO)] {
        let r = iq(&mut h, typ, id, to, "<query xmlns='urn:example:unknown'/>").await;
        assert_error(&r, ("iq", id, to, JULIET), "cancel", "service-unavailable");
    }
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

// ---------------------------------------------------------------------------------------
// COMP-3, ERR-13: the sender of every stanza, malformed and unanswerable stanzas
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn comp_3_every_stanza_sent_is_from_the_component_domain() {
    let mut h = Harness::start(opts()).await;
    // IQ answers, error replies, a SIP->XMPP message and an XMPP->SIP failure (keepalive
    // pings are checked in comp_6_keepalive_pings_the_first_xmpp_domain).
    iq(
        &mut h,
        "get",
        "c1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
    )
    .await;
    iq(
        &mut h,
        "get",
        "c2",
        "romeo@sip.example.com/x",
        "<query xmlns='urn:example:unknown'/>",
    )
    .await;
    h.xmpp
        .send(&juliet_msg("c3", COMPONENT, "to the gateway itself"));
    h.xmpp.stanza_with_id("c3", SOON).await;
    assert_eq!(
        h.sip_transact(romeo_message(&[], b"hi")).await.code(),
        Some(200)
    );
    h.xmpp.send(&juliet_msg("c4", ROMEO, "fails"));
    h.uas_answer(480, "Temporarily Unavailable", &[]).await;
    h.xmpp.stanza_with_id("c4", SOON).await;
    h.xmpp.barrier().await;
    assert!(h.xmpp.seen.len() >= 6);
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn err_13_result_and_error_stanzas_are_never_answered() {
    let mut h = Harness::start(opts()).await;
    let su = "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>";
    h.xmpp
        .send("<iq type='result' id='r1' from='example.com' to='sip.example.com'/>");
    h.xmpp.send(&format!(
        "<iq type='result' id='r2' from='{JULIET}' to='{ROMEO}'><query xmlns='{NS_VERSION}'/></iq>"
    ));
    h.xmpp.send(&format!(
        "<iq type='error' id='e1' from='{JULIET}' to='{ROMEO}'>{su}</iq>"
    ));
    // An error message matching no pending SIP MESSAGE.
    h.xmpp.send(&format!(
        "<message type='error' id='nobody' from='juliet@example.com' to='{ROMEO}'>{su}</message>"
    ));
    let answered: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(
        answered.is_empty(),
        "ERR-13: result/error stanzas get no answer: {answered:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn comp_4_err_13_malformed_stanzas_get_errors_and_the_link_survives() {
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(&format!(
        "<message type='bogus' id='bad-type' from='{JULIET}' to='{ROMEO}'><body>x</body></message>"
    ));
    assert_romeo_error(
        &h.xmpp.stanza_with_id("bad-type", SOON).await,
        "bad-type",
        "modify",
        "bad-request",
    );

    let two = format!("<query xmlns='{NS_DISCO_INFO}'/><ping xmlns='{NS_PING}'/>");
    let r = iq(&mut h, "get", "two", COMPONENT, &two).await;
    assert_error(
        &r,
        ("iq", "two", COMPONENT, JULIET),
        "modify",
        "bad-request",
    );

    h.xmpp
        .send(&juliet_msg("to-gw", COMPONENT, "hello gateway"));
    let e = h.xmpp.stanza_with_id("to-gw", SOON).await;
    assert_error(
        &e,
        ("message", "to-gw", COMPONENT, JULIET),
        "cancel",
        "service-unavailable",
    );

    // An unknown top-level element and a presence: ignored, no disconnect.
    h.xmpp.send(&format!(
        "<foo xmlns='urn:example:foo'/><presence from='{JULIET}' to='{ROMEO}'/>"
    ));

    // The link stayed up and the gateway still works.
    h.xmpp.barrier().await;
    assert_eq!(
        (h.xmpp.connections(), h.xmpp.handshakes()),
        (1, 1),
        "no reconnect happened"
    );
    h.xmpp.send(M42);
    assert_eq!(
        h.uas_answer(200, "OK", &[]).await.header("call-id"),
        Some("t-77")
    );
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn comp_3_err_13_malformed_to_jid_gets_jid_malformed_from_a_valid_jid() {
    let mut h = Harness::start(opts()).await;
    // Not a JID (nodeprep forbids '"' in a localpart) but inside the component domain, so a
    // lax server routes it here.
    let bad_to = "ro&quot;meo@sip.example.com";
    h.xmpp.send(&format!(
        "<message id='bad-jid' from='{JULIET}' to='{bad_to}'><body>x</body></message>"
    ));
    let e = h.xmpp.stanza_with_id("bad-jid", SOON).await;
    assert_eq!(
        (e.attr("type"), e.attr("to")),
        (Some("error"), Some(JULIET)),
        "{}",
        s(&e)
    );
    h.xmpp.barrier().await;
    assert_eq!(
        (h.xmpp.connections(), h.xmpp.handshakes()),
        (1, 1),
        "no reconnect happened"
    );
    let from = e.attr("from").unwrap_or("");
    let valid = xmpp_parsers::jid::Jid::new(from).is_ok_and(|j| j.domain().as_str() == COMPONENT);
    assert!(
        valid,
        "COMP-3: from must be a valid JID of {COMPONENT} or the server rejects the stanza: {}",
        s(&e)
    );
    let (t, c, _, _) = stanza_error(&e);
    assert_eq!(
        (t.as_str(), c.as_str()),
        ("modify", "jid-malformed"),
        "RFC 6120 §8.3.3.8: {}",
        s(&e)
    );
    h.stop().await;
}
