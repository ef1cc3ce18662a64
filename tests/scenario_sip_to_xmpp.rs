//! Scenarios of SIP -> XMPP delivery (section 3.2): a SIP MESSAGE from the raw SIP UAC becomes
//! a `<message/>` at the fake XMPP server, and the UAC gets 200 once the bounce window has
//! passed. Refusals and bounces are in scenario_errors.rs.
//! Test names cite the requirement IDs of shared/spec/CHECKLIST.md; the harness and its
//! timing rules are described in tests/support/mod.rs.

mod support;

use std::time::Duration;
use support::check::*;
use support::sip::{param, request, tcp_transact};
use support::xml::{child, xml_lang, NS_COMPONENT};
use support::{opts, romeo_message, Harness, Opts, COMPONENT, SECRET, SOON};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// 3.2 SIP -> XMPP (IM-5..IM-7, IM-10, GEN-2, ADDR-7)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn im_5_im_6_sip_message_becomes_xmpp_message_then_200() {
    let mut h = Harness::start(opts()).await;
    let headers = [
        ("Subject", "Tonight"),
        ("Content-Language", "it"),
        ("Content-Type", "text/plain;charset=UTF-8"),
    ];
    let req = romeo_message(&headers, "Ci vediamo al balcone. ❤ 😀".as_bytes());
    let call_id = req.header("call-id").unwrap().to_string();
    let t = Instant::now();
    let sent = h.sip_send(req).await;
    let st = h.next_message().await;
    assert_eq!(st.attr("from"), Some(ROMEO), "{}", s(&st));
    assert_eq!(st.attr("to"), Some("juliet@example.com"), "{}", s(&st));
    assert_eq!(
        st.attr("type"),
        Some("chat"),
        "inbound_type = chat: {}",
        s(&st)
    );
    assert!(
        st.attr("id").is_some_and(|i| !i.is_empty()),
        "IM-6 id: {}",
        s(&st)
    );
    assert_eq!(
        child(&st, "thread", NS_COMPONENT).text(),
        call_id,
        "IM-6 Call-ID -> thread"
    );
    assert_eq!(child(&st, "subject", NS_COMPONENT).text(), "Tonight");
    let b = child(&st, "body", NS_COMPONENT);
    assert_eq!(b.text(), "Ci vediamo al balcone. ❤ 😀", "IM-8/IM-11");
    let lang = xml_lang(b).or_else(|| xml_lang(&st));
    assert_eq!(
        lang.as_deref(),
        Some("it"),
        "IM-6 Content-Language -> xml:lang: {}",
        s(&st)
    );
    let resp = h.sip_final(&sent).await;
    assert_eq!(resp.code(), Some(200), "IM-5: {}", resp.start);
    assert!(
        t.elapsed() >= Duration::from_millis(90),
        "200 after the bounce window ({:?})",
        t.elapsed()
    );
    assert!(
        param(resp.header("to").unwrap(), "tag").is_some(),
        "To tag on the 200"
    );
    h.xmpp.assert_all_from_component(COMPONENT);
    h.stop().await;
}

#[tokio::test]
async fn im_5_burst_of_sip_messages_is_delivered_once_each() {
    let mut h = Harness::start(opts()).await;
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(
            h.sip_send(romeo_message(&[], format!("s2x {i}").as_bytes()))
                .await,
        );
    }
    let mut bodies = Vec::new();
    while bodies.len() < 30 {
        bodies.push(body(&h.next_message().await));
    }
    for req in &sent {
        let resp = h.sip_final(req).await;
        assert_eq!(resp.code(), Some(200), "{}", resp.start);
    }
    let mut sorted = bodies.clone();
    sorted.sort_by_key(|b| b[4..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..30).map(|i| format!("s2x {i}")).collect();
    assert_eq!(sorted, want, "each exactly once");
    let extra: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(extra.is_empty(), "duplicates: {extra:?}");
    h.stop().await;
}

/// RFC 3261 §17.2.2: a MESSAGE retransmitted after its final response (Completed state,
/// Timer J) gets that same response again and is not delivered a second time. stox answers
/// these from its own response cache (sip/retrans.rs), not from a transaction task.
#[tokio::test]
async fn im_5_retransmission_after_the_final_response_gets_the_same_response_once_delivered() {
    let mut h = Harness::start(opts()).await;
    let sent = h.sip_send(romeo_message(&[], b"only once")).await;
    assert_eq!(body(&h.next_message().await), "only once");
    let first = h.sip_final(&sent).await;
    assert_eq!(first.code(), Some(200), "{}", first.start);
    for _ in 0..2 {
        h.uac.send(&sent, h.gw_sip).await;
        let again = h.sip_final(&sent).await;
        assert_eq!(again.code(), Some(200), "{}", again.start);
        assert_eq!(
            again.header("to"),
            first.header("to"),
            "the retransmission gets the same response (same To tag)"
        );
    }
    let extra: Vec<_> = h.xmpp.barrier().await.iter().map(s).collect();
    assert!(extra.is_empty(), "delivered twice: {extra:?}");
    h.stop().await;
}

#[tokio::test]
async fn im_7_inbound_type_normal_gives_normal_messages() {
    let mut h = Harness::start(Opts {
        inbound_type: "normal",
        ..opts()
    })
    .await;
    assert_eq!(
        h.sip_transact(romeo_message(&[], b"page mode"))
            .await
            .code(),
        Some(200)
    );
    let st = h.next_message().await;
    assert!(
        matches!(st.attr("type"), None | Some("normal")),
        "IM-7: {}",
        s(&st)
    );
    h.stop().await;
}

#[tokio::test]
async fn im_10_cpim_wrapped_text_is_delivered_unwrapped() {
    let mut h = Harness::start(opts()).await;
    let cpim = "From: <sip:romeo@example.net>\r\nTo: <sip:juliet@example.com>\r\n\
                DateTime: 2024-01-01T00:00:00Z\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nwrapped é";
    let req = romeo_message(&[("Content-Type", "message/cpim")], cpim.as_bytes());
    assert_eq!(h.sip_transact(req).await.code(), Some(200));
    assert_eq!(body(&h.next_message().await), "wrapped é");
    h.stop().await;
}

#[tokio::test]
async fn gen_2_im_5_message_over_tcp_is_delivered() {
    let mut h = Harness::start(opts()).await;
    let resp = tcp_transact(h.gw_sip, romeo_message(&[], b"over tcp"), SOON).await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    assert_eq!(body(&h.next_message().await), "over tcp");
    h.stop().await;
}

#[tokio::test]
async fn addr_7_gruu_in_contact_becomes_the_resource() {
    let mut h = Harness::start(opts()).await;
    let contact = format!("<sip:romeo@{};gr=phone>", h.uac.addr);
    let resp = h
        .sip_transact(romeo_message(&[("Contact", &contact)], b"from my phone"))
        .await;
    assert_eq!(resp.code(), Some(200));
    let st = h.next_message().await;
    assert_eq!(
        st.attr("from"),
        Some("romeo@sip.example.com/phone"),
        "{}",
        s(&st)
    );
    h.stop().await;
}

#[tokio::test]
async fn rfc3261_options_gets_200_with_allow_message() {
    let h = Harness::start(opts()).await;
    let from = "<sip:romeo@example.net>;tag=o1";
    let resp = h
        .sip_transact(request(
            "OPTIONS",
            "sip:example.com",
            from,
            "<sip:example.com>",
            &[],
            b"",
        ))
        .await;
    assert_eq!(resp.code(), Some(200), "{}", resp.start);
    let allow: Vec<String> = resp
        .header_values("allow")
        .iter()
        .map(|a| a.to_ascii_uppercase())
        .collect();
    assert!(allow.iter().any(|a| a == "MESSAGE"), "Allow: {allow:?}");
}

#[tokio::test]
async fn gen_2_gateway_reports_the_bound_sip_sockets() {
    // `Gateway::sip_addrs` is documented as the bound sockets, "useful when a port was 0".
    let xmpp = support::xmpp::FakeServer::start(SECRET).await;
    let state = support::fresh_state_dir();
    let text = format!(
        "[component]\njid = \"{COMPONENT}\"\nserver = \"{}\"\nsecret = \"{SECRET}\"\n\
         [sip]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n\
         [addresses]\nxmpp_domains = [\"example.com\"]\nsip_domain = \"example.net\"\n\
         [presence]\nstate_dir = \"{}\"\n[chat]\nmsrp_listen = \"127.0.0.1:0\"\n",
        xmpp.addr,
        state.display()
    );
    let cfg = stox::config::Config::parse(&text).unwrap();
    let gw = stox::app::Gateway::start(&cfg)
        .await
        .expect("gateway starts");
    let addrs = gw.sip_addrs.clone();
    gw.stop().await;
    let _ = std::fs::remove_dir_all(state);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(
        addrs.iter().all(|a| a.port() != 0),
        "a listener bound to port 0 reports port 0: {addrs:?}"
    );
}
