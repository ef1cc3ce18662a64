//! Scenarios of `[access]` (hardening, issue "who may use the gateway"): SIP sources outside
//! `sip_trusted` refused or digest-challenged (RFC 3261 §22), the policy swapped by a reload,
//! and XMPP users of foreign domains kept out unless federated.
//!
//! The harness UAC sends from 127.0.0.1, so a gateway trusting only 127.0.0.2 treats it as
//! an untrusted source. The digest answers are computed here from RFC 7616 §3.4.1, apart
//! from the gateway's code.

mod support;

use md5::{Digest, Md5};
use support::check::*;
use support::sip::{request, SipMsg};
use support::{opts, romeo_message, Harness, Opts, SOON};

fn untrusted(policy: &str, credentials: Option<&str>) -> Opts {
    let creds = credentials.map(|text| {
        let p = support::fresh_state_dir().join("sip-users");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    });
    Opts {
        extra_config: format!(
            "\n[access]\nsip_trusted = [\"127.0.0.2\"]\nsip_untrusted = \"{policy}\"\n{}",
            creds.map_or(String::new(), |p| format!(
                "sip_credentials_file = \"{}\"\n",
                p.display()
            ))
        ),
        ..opts()
    }
}

/// A `name=value` or `name="value"` parameter of a digest challenge (comma-separated).
fn param(challenge: &str, name: &str) -> Option<String> {
    let rest = challenge.strip_prefix("Digest ")?;
    rest.split(',').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case(name).then(|| v.to_string())
    })
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Authorization` a client sends for `challenge` (a `WWW-Authenticate` value).
fn authorization(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
    let realm = param(challenge, "realm").expect("realm");
    let nonce = param(challenge, "nonce").expect("nonce");
    let strip = |s: String| s.trim_matches('"').to_string();
    let (realm, nonce) = (strip(realm), strip(nonce));
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    )
}

fn from_user(user: &str) -> (String, String) {
    (
        format!("<sip:{user}@example.net>;tag={}", support::sip::token()),
        format!("{user}-{}", support::sip::token()),
    )
}

/// A MESSAGE from `user` with `extra` headers, in the dialog-less call `call_id`.
fn message_from(from: &str, call_id: &str, cseq: u32, extra: &[(&str, &str)]) -> SipMsg {
    let cseq = format!("{cseq} MESSAGE");
    let mut headers = vec![
        ("Call-ID", call_id),
        ("CSeq", cseq.as_str()),
        ("Content-Type", "text/plain"),
    ];
    headers.extend_from_slice(extra);
    request(
        "MESSAGE",
        "sip:juliet@example.com",
        from,
        "<sip:juliet@example.com>",
        &headers,
        b"let me in",
    )
}

#[tokio::test]
async fn untrusted_source_is_refused_with_403_and_nothing_reaches_xmpp() {
    let mut h = Harness::start(untrusted("refuse", None)).await;
    let r = h
        .refused_without_stanza(romeo_message(&[], b"x"), 403)
        .await;
    assert!(r.start.contains("source not trusted"), "{}", r.start);
    let sub = request(
        "SUBSCRIBE",
        "sip:juliet@example.com",
        &format!("<sip:romeo@example.net>;tag={}", support::sip::token()),
        "<sip:juliet@example.com>",
        &[("Event", "presence"), ("Expires", "600")],
        b"",
    );
    h.refused_without_stanza(sub, 403).await;
    // OPTIONS stays answered: it reaches nobody and monitors use it.
    let opt = request(
        "OPTIONS",
        "sip:sip.example.com",
        "<sip:monitor@example.net>;tag=o1",
        "<sip:sip.example.com>",
        &[],
        b"",
    );
    assert_eq!(h.sip_transact(opt).await.code(), Some(200));
    h.stop().await;
}

#[tokio::test]
async fn untrusted_source_is_challenged_and_its_answer_delivers_the_message() {
    let mut h = Harness::start(untrusted("challenge", Some("romeo:r0meo:pw\n"))).await;
    let (from, call_id) = from_user("romeo");
    let first = h.sip_transact(message_from(&from, &call_id, 1, &[])).await;
    assert_eq!(first.code(), Some(401), "{}", first.start);
    let challenge = first.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.starts_with("Digest "), "{challenge}");
    assert_eq!(
        param(challenge, "realm").as_deref(),
        Some("\"sip.example.com\"")
    );
    let leaked = h.xmpp.barrier().await;
    assert!(leaked.is_empty(), "the challenged request went nowhere");

    let auth = authorization(
        challenge,
        "romeo",
        "r0meo:pw",
        "MESSAGE",
        "sip:juliet@example.com",
    );
    let ok = h
        .sip_transact(message_from(
            &from,
            &call_id,
            2,
            &[("Authorization", &auth)],
        ))
        .await;
    assert_eq!(ok.code(), Some(200), "{}", ok.start);
    let m = h.next_message().await;
    assert_eq!(body(&m), "let me in");
    assert_eq!(m.attr("from"), Some(ROMEO));
    h.stop().await;
}

#[tokio::test]
async fn wrong_password_is_challenged_again_and_a_forged_from_is_refused() {
    let mut h = Harness::start(untrusted("challenge", Some("romeo:secret\n"))).await;
    let (from, call_id) = from_user("romeo");
    let first = h.sip_transact(message_from(&from, &call_id, 1, &[])).await;
    let challenge = first
        .header("www-authenticate")
        .expect("challenge")
        .to_string();

    let wrong = authorization(
        &challenge,
        "romeo",
        "guess",
        "MESSAGE",
        "sip:juliet@example.com",
    );
    let again = h
        .sip_transact(message_from(
            &from,
            &call_id,
            2,
            &[("Authorization", &wrong)],
        ))
        .await;
    assert_eq!(again.code(), Some(401), "{}", again.start);

    // romeo's password used with a From of another user: nobody may speak as someone else.
    let (mallory, call_id) = from_user("mercutio");
    let good = authorization(
        &challenge,
        "romeo",
        "secret",
        "MESSAGE",
        "sip:juliet@example.com",
    );
    let forged = message_from(&mallory, &call_id, 1, &[("Authorization", &good)]);
    let r = h.refused_without_stanza(forged, 403).await;
    assert!(r.start.contains("does not match"), "{}", r.start);
    h.stop().await;
}

#[tokio::test]
async fn reload_swaps_the_sip_policy_without_a_restart() {
    let mut h = Harness::start(untrusted("refuse", None)).await;
    h.refused_without_stanza(romeo_message(&[], b"before"), 403)
        .await;
    let text = h.config.replace(
        "sip_trusted = [\"127.0.0.2\"]",
        "sip_trusted = [\"127.0.0.0/8\"]",
    );
    std::fs::write(&h.config_path, text).unwrap();
    let plan =
        h.gw.as_ref()
            .unwrap()
            .reload()
            .await
            .expect("reload applies");
    assert!(plan.applied.contains(&"access.sip_trusted"), "{plan:?}");
    let r = h.sip_transact(romeo_message(&[], b"after")).await;
    assert_eq!(r.code(), Some(200), "{}", r.start);
    assert_eq!(body(&h.next_message().await), "after");
    h.stop().await;
}

#[tokio::test]
async fn foreign_xmpp_domain_needs_federated_xmpp_domains() {
    let msg = "<message id='p1' from='paris@partner.example/home' to='romeo@sip.example.com'><body>hi</body></message>";
    let mut h = Harness::start(opts()).await;
    h.xmpp.send(msg);
    let e = h.xmpp.stanza_with_id("p1", SOON).await;
    assert_error(
        &e,
        ("message", "p1", ROMEO, "paris@partner.example/home"),
        "cancel",
        "not-allowed",
    );
    h.stop().await;

    let mut h = Harness::start(Opts {
        extra_config: "\n[access]\nfederated_xmpp_domains = [\"partner.example\"]\n".into(),
        ..opts()
    })
    .await;
    h.xmpp.send(msg);
    let req = h.uas_answer(200, "OK", &[]).await;
    assert!(
        req.header("from")
            .is_some_and(|f| f.contains("<sip:paris@partner.example>")),
        "{:?}",
        req.header("from")
    );
    assert_eq!(req.body_str(), "hi");
    h.stop().await;
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    const PASSWORD: &str = "pw-in-the-file-77";
    let mut h = Harness::start(untrusted("challenge", Some(&format!("romeo:{PASSWORD}\n")))).await;
    let (from, call_id) = from_user("romeo");
    let first = h.sip_transact(message_from(&from, &call_id, 1, &[])).await;
    let challenge = first
        .header("www-authenticate")
        .expect("challenge")
        .to_string();
    for (cseq, password) in [(2, "wrong-guess-55"), (3, PASSWORD)] {
        let auth = authorization(
            &challenge,
            "romeo",
            password,
            "MESSAGE",
            "sip:juliet@example.com",
        );
        h.sip_transact(message_from(
            &from,
            &call_id,
            cseq,
            &[("Authorization", &auth)],
        ))
        .await;
    }
    assert_eq!(body(&h.next_message().await), "let me in");
    h.gw.as_ref().unwrap().reload().await.expect("reload");
    h.stop().await;
    let logs = h.logs().text();
    assert!(
        logs.contains("challenged by [access]"),
        "the run logged its steps"
    );
    for secret in [support::SECRET, PASSWORD, "wrong-guess-55"] {
        assert_eq!(
            h.logs().count(secret),
            0,
            "{secret} appears in the logs:\n{logs}"
        );
    }
}
