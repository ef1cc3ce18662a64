//! The SIP gate's table: trusted networks, refusal, the digest challenge and its answers.

use super::digest::{self, Answer, Failure, Nonces};
use super::*;
use crate::config::AccessConfig;

const NOW: u64 = 1_800_000_000;

fn gate(policy: Untrusted, trusted: &[&str]) -> SipGate {
    let cfg = AccessConfig {
        sip_trusted: trusted.iter().map(|s| s.to_string()).collect(),
        sip_untrusted: policy,
        sip_realm: Some("sip.example.com".into()),
        ..AccessConfig::default()
    };
    let mut g = SipGate::new(&cfg, "sip.example.com", [7; 32]).unwrap();
    g.credentials = Credentials::parse("# test users\ncarol:carolpass\n\ndave:pa:ss\n").unwrap();
    g
}

fn facts<'a>(ip: &str, from: Option<&'a str>, auth: Vec<&'a str>) -> Facts<'a> {
    Facts {
        source: ip.parse().unwrap(),
        method: "MESSAGE",
        from_user: from,
        authorization: auth,
    }
}

/// What a client computes from a challenge (RFC 7616 §3.4.1, qop=auth).
fn answer_for(challenge: &str, user: &str, password: &str, uri: &str) -> String {
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let a = Answer {
        username: user.into(),
        realm: "sip.example.com".into(),
        nonce: nonce.into(),
        uri: uri.into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("0a4f113b".into()),
        ..Answer::default()
    };
    let h = |s: String| {
        use md5::Digest as _;
        md5::Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let ha1 = h(format!("{user}:sip.example.com:{password}"));
    let ha2 = h(format!("MESSAGE:{uri}"));
    let response = h(format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", algorithm=MD5",
        a.realm
    )
}

fn challenge_of(v: Verdict) -> String {
    match v {
        Verdict::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn trusted_networks_pass_without_question() {
    let g = gate(
        Untrusted::Refuse,
        &["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
    );
    for ip in ["10.1.2.3", "192.0.2.7", "2001:db8::1", "::ffff:10.9.9.9"] {
        assert_eq!(
            g.check(&facts(ip, None, vec![]), NOW),
            Verdict::Pass,
            "{ip}"
        );
    }
    for ip in ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::ffff:192.0.2.8"] {
        assert_eq!(
            g.check(&facts(ip, None, vec![]), NOW),
            Verdict::Refuse("Forbidden: source not trusted"),
            "{ip}"
        );
    }
}

#[test]
fn default_config_trusts_every_source() {
    let g = SipGate::new(&AccessConfig::default(), "sip.example.com", [1; 32]).unwrap();
    for ip in ["203.0.113.5", "2001:db8::5"] {
        assert_eq!(g.check(&facts(ip, None, vec![]), NOW), Verdict::Pass);
    }
}

#[test]
fn allow_policy_serves_untrusted_sources() {
    let g = gate(Untrusted::Allow, &["10.0.0.0/8"]);
    assert_eq!(
        g.check(&facts("203.0.113.5", None, vec![]), NOW),
        Verdict::Pass
    );
}

#[test]
fn challenge_then_correct_answer_authenticates() {
    let g = gate(Untrusted::Challenge, &["10.0.0.0/8"]);
    let c = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![]), NOW));
    assert!(
        c.starts_with("Digest realm=\"sip.example.com\", nonce=\""),
        "{c}"
    );
    assert!(
        c.contains("algorithm=MD5") && c.contains("qop=\"auth\""),
        "{c}"
    );
    assert!(!c.contains("stale"), "{c}");
    let auth = answer_for(&c, "carol", "carolpass", "sip:alice@example.com");
    assert_eq!(
        g.check(&facts("203.0.113.5", Some("carol"), vec![&auth]), NOW + 10),
        Verdict::Authenticated("carol".into())
    );
    // A password containing ':' is split at the first one only.
    let auth = answer_for(&c, "dave", "pa:ss", "sip:alice@example.com");
    assert_eq!(
        g.check(&facts("203.0.113.5", Some("dave"), vec![&auth]), NOW),
        Verdict::Authenticated("dave".into())
    );
}

#[test]
fn wrong_password_unknown_user_and_forged_nonce_are_challenged_again() {
    let g = gate(Untrusted::Challenge, &[]);
    let c = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![]), NOW));
    let wrong = answer_for(&c, "carol", "guess", "sip:a@b");
    let unknown = answer_for(&c, "mallory", "x", "sip:a@b");
    let forged = answer_for(
        &c.replace("nonce=\"", "nonce=\"0"),
        "carol",
        "carolpass",
        "sip:a@b",
    );
    for auth in [wrong, unknown, forged] {
        let c2 = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![&auth]), NOW));
        assert!(!c2.contains("stale"), "{c2}");
    }
}

#[test]
fn old_nonce_gets_a_stale_challenge() {
    let g = gate(Untrusted::Challenge, &[]);
    let c = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![]), NOW));
    let auth = answer_for(&c, "carol", "carolpass", "sip:a@b");
    let c2 = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![&auth]), NOW + 301));
    assert!(c2.ends_with(", stale=true"), "{c2}");
}

#[test]
fn nonce_of_another_process_key_is_not_ours() {
    let g = gate(Untrusted::Challenge, &[]);
    let other = Nonces::new([9; 32], 300).issue("sip.example.com", NOW);
    let c = format!("Digest realm=\"sip.example.com\", nonce=\"{other}\"");
    let auth = answer_for(&c, "carol", "carolpass", "sip:a@b");
    let c2 = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![&auth]), NOW));
    assert!(!c2.contains(&other), "a fresh nonce is issued");
}

#[test]
fn authenticated_user_cannot_speak_as_another() {
    let g = gate(Untrusted::Challenge, &[]);
    let c = challenge_of(g.check(&facts("203.0.113.5", Some("bob"), vec![]), NOW));
    let auth = answer_for(&c, "carol", "carolpass", "sip:a@b");
    assert_eq!(
        g.check(&facts("203.0.113.5", Some("bob"), vec![&auth]), NOW),
        Verdict::Refuse("Forbidden: From does not match the authenticated user")
    );
    assert!(matches!(
        g.check(&facts("203.0.113.5", None, vec![&auth]), NOW),
        Verdict::Refuse(_)
    ));
}

#[test]
fn answer_for_another_realm_is_ignored() {
    let g = gate(Untrusted::Challenge, &[]);
    let c = challenge_of(g.check(&facts("203.0.113.5", Some("carol"), vec![]), NOW));
    let ours = answer_for(&c, "carol", "carolpass", "sip:a@b");
    let theirs = ours.replace("realm=\"sip.example.com\"", "realm=\"proxy.example.net\"");
    assert!(matches!(
        g.check(&facts("203.0.113.5", Some("carol"), vec![&theirs]), NOW),
        Verdict::Challenge(_)
    ));
    assert_eq!(
        g.check(
            &facts("203.0.113.5", Some("carol"), vec![&theirs, &ours]),
            NOW
        ),
        Verdict::Authenticated("carol".into())
    );
}

/// RFC 7616 §3.9.1, the worked example, in both algorithms (the method there is GET).
#[test]
fn rfc7616_example_responses_verify() {
    let base = Answer {
        username: "Mufasa".into(),
        realm: "http-auth@example.org".into(),
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
        uri: "/dir/index.html".into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
        ..Answer::default()
    };
    let md5 = Answer {
        algorithm: Some("MD5".into()),
        response: "8ca523f5e9506fed4657c9700eebdbec".into(),
        ..base.clone()
    };
    let sha = Answer {
        algorithm: Some("SHA-256".into()),
        response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1".into(),
        ..base
    };
    for a in [&md5, &sha] {
        assert_eq!(digest::verify(a, "GET", "Circle of Life"), Ok(()));
        assert_eq!(
            digest::verify(a, "GET", "Circle of life"),
            Err(Failure::Wrong)
        );
    }
    let unknown = Answer {
        algorithm: Some("SHA-512-256".into()),
        ..md5
    };
    assert_eq!(
        digest::verify(&unknown, "GET", "Circle of Life"),
        Err(Failure::Wrong)
    );
}

#[test]
fn header_parsing_handles_quotes_escapes_and_junk() {
    let a = digest::parse(
        "Digest username=\"ca\\\"rol\",realm=\"r, with comma\" , nonce=n1, uri=\"sip:x@y\", \
         response=\"ABCDEF\", qop=auth, nc=00000001, cnonce=\"c\"",
    )
    .unwrap();
    assert_eq!(a.username, "ca\"rol");
    assert_eq!(a.realm, "r, with comma");
    assert_eq!(a.nonce, "n1");
    assert_eq!(a.response, "abcdef");
    for bad in [
        "",
        "Basic dXNlcjpwYXNz",
        "Digest",
        "Digest username=\"unterminated",
        "Digest =x, username=a",
        "Digest username=a, realm=r, nonce=n, uri=u",
        "Digest username=a, username=b, realm=r, nonce=n, uri=u, response=x",
        "Digest username=a realm=r",
    ] {
        assert_eq!(digest::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn credentials_file_errors_name_the_line_not_the_password() {
    for (text, line) in [
        ("carol:x\nnocolon\n", "line 2"),
        ("carol:\n", "line 1"),
        (":secretpw\n", "line 1"),
        ("carol:a\ncarol:secretpw\n", "line 2"),
    ] {
        let e = Credentials::parse(text).unwrap_err();
        assert!(e.starts_with(line), "{e}");
        assert!(!e.contains("secretpw"), "{e}");
    }
    let c = Credentials::parse("carol:topsecret\n").unwrap();
    assert!(!format!("{c:?}").contains("topsecret"));
}

#[test]
fn config_validation_names_bad_entries() {
    let cfg = AccessConfig {
        sip_trusted: vec![
            "10.0.0.0/33".into(),
            "example.com".into(),
            "10.1.0.0/16".into(),
        ],
        sip_untrusted: Untrusted::Challenge,
        federated_xmpp_domains: vec![
            "user@x.org".into(),
            "sip.example.com".into(),
            "example.com".into(),
        ],
        ..AccessConfig::default()
    };
    let mut problems = Vec::new();
    cfg.validate("sip.example.com", &["example.com".into()], &mut problems);
    let all = problems.join("\n");
    for needle in [
        "\"10.0.0.0/33\"",
        "\"example.com\": not an address",
        "\"user@x.org\": not a domain",
        "\"sip.example.com\": must differ",
        "\"example.com\": already in addresses.xmpp_domains",
        "needs access.sip_credentials_file",
    ] {
        assert!(all.contains(needle), "{needle} missing in:\n{all}");
    }
    assert_eq!(problems.len(), 6, "{all}");
    assert_eq!(
        crate::config::parse_net("192.0.2.77/24")
            .unwrap()
            .to_string(),
        "192.0.2.0/24"
    );
}
