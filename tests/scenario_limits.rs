//! Scenarios of the per-user limits (hardening): `[limits] subscriptions_per_minute` on both
//! sides, and `[chat] max_sessions_per_user`, each answered with its mapped error and
//! leaving what the user already holds alone.

mod support;

use support::check::*;
use support::sip::{request, token};
use support::{opts, Harness, Opts, SOON};

fn limited(extra: &str, chat_mode: &'static str) -> Opts {
    Opts {
        extra_config: format!("\n[limits]\n{extra}\n"),
        chat_mode,
        ..opts()
    }
}

#[tokio::test]
async fn xmpp_subscriptions_beyond_the_rate_get_policy_violation() {
    let mut h = Harness::start(limited("subscriptions_per_minute = 2", "page")).await;
    for (n, user) in ["romeo", "mercutio", "tybalt"].iter().enumerate() {
        h.xmpp.send(&format!(
            "<presence type='subscribe' id='s{n}' from='juliet@example.com' to='{user}@sip.example.com'/>"
        ));
    }
    // The first two become SIP SUBSCRIBEs.
    for _ in 0..2 {
        let (sub, src) = h.uas.request(SOON).await;
        assert_eq!(sub.method(), Some("SUBSCRIBE"), "{}", sub.start);
        h.uas.send(&sub.response(202, "Accepted", &[]), src).await;
    }
    let e = h.xmpp.stanza_with_id("s2", SOON).await;
    assert_eq!(e.name(), "presence");
    assert_eq!(e.attr("type"), Some("error"), "{}", s(&e));
    assert!(s(&e).contains("policy-violation"), "{}", s(&e));
    assert!(
        h.uas
            .recv(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "the third subscription must not reach SIP"
    );
    // Unsubscribing is never limited: a user can always drop what it holds.
    h.xmpp.send(
        "<presence type='unsubscribe' id='u0' from='juliet@example.com' to='romeo@sip.example.com'/>",
    );
    let after = h.xmpp.barrier().await;
    assert!(
        !after.iter().any(|e| e.attr("id") == Some("u0")),
        "unsubscribe was refused: {:?}",
        after.iter().map(s).collect::<Vec<_>>()
    );
    h.stop().await;
}

fn sip_subscribe(to_user: &str, h: &Harness) -> support::sip::SipMsg {
    request(
        "SUBSCRIBE",
        &format!("sip:{to_user}@example.com"),
        &format!("<sip:romeo@example.net>;tag={}", token()),
        &format!("<sip:{to_user}@example.com>"),
        &[
            ("Event", "presence"),
            ("Expires", "600"),
            ("Contact", &format!("<sip:romeo@{}>", h.uas.addr)),
        ],
        b"",
    )
}

#[tokio::test]
async fn sip_subscriptions_beyond_the_rate_get_503_with_retry_after() {
    let mut h = Harness::start(limited("subscriptions_per_minute = 2", "page")).await;
    for user in ["juliet", "nurse"] {
        let ok = h.sip_transact(sip_subscribe(user, &h)).await;
        assert_eq!(ok.code(), Some(200), "{}", ok.start);
    }
    let r = h.sip_transact(sip_subscribe("benvolio", &h)).await;
    assert_eq!(r.code(), Some(503), "{}", r.start);
    let retry: u32 = r
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok())
        .expect("Retry-After");
    // Two per minute: the next token is about 30 s away.
    assert!((1..=31).contains(&retry), "Retry-After {retry}");
    let asks = h.xmpp.barrier().await;
    let subscribes: Vec<String> = asks
        .iter()
        .filter(|e| e.attr("type") == Some("subscribe"))
        .map(|e| e.attr("to").unwrap_or_default().to_string())
        .collect();
    assert!(
        !subscribes.iter().any(|t| t.starts_with("benvolio")),
        "{subscribes:?}"
    );
    h.stop().await;
}

fn invite(h: &Harness, to_user: &str) -> support::sip::SipMsg {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 9 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
               a=path:msrp://127.0.0.1:9/lim0001;tcp\r\n";
    request(
        "INVITE",
        &format!("sip:{to_user}@example.com"),
        &format!("<sip:romeo@example.net>;tag={}", token()),
        &format!("<sip:{to_user}@example.com>"),
        &[
            ("Contact", &format!("<sip:romeo@{}>", h.uac.addr)),
            ("Content-Type", "application/sdp"),
        ],
        sdp.as_bytes(),
    )
}

#[tokio::test]
async fn chat_sessions_beyond_the_per_user_limit_get_503() {
    let mut h = Harness::start(Opts {
        extra_config: "max_sessions_per_user = 1\n".into(),
        chat_mode: "session",
        ..opts()
    })
    .await;
    let sent = h.sip_send(invite(&h, "juliet")).await;
    assert_eq!(h.sip_final(&sent).await.code(), Some(200));
    // romeo already holds one session: a second one, with someone else, is refused.
    let sent = h.sip_send(invite(&h, "nurse")).await;
    let r = h.sip_final(&sent).await;
    assert_eq!(r.code(), Some(503), "{}", r.start);
    assert!(r.start.contains("Too Many Sessions"), "{}", r.start);
    h.stop().await;
}

/// Collect requests at the UAS until one whose body (or To user) contains `needle`.
async fn uas_sees(h: &Harness, needle: &str) -> bool {
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some((m, src)) = h.uas.recv(left).await else {
            return false;
        };
        if m.method().is_none() {
            continue;
        }
        // Answer whatever arrives so nothing retransmits into the next test step.
        h.uas.send(&m.response(200, "OK", &[]), src).await;
        if m.body_str().contains(needle) || m.header("to").is_some_and(|t| t.contains(needle)) {
            return true;
        }
    }
}

#[tokio::test]
async fn message_and_subscription_limits_release_as_their_buckets_refill() {
    // 60 a minute: a burst of 60, then one more each second.
    let mut h = Harness::start(limited(
        "messages_per_minute = 60\nsubscriptions_per_minute = 60",
        "page",
    ))
    .await;
    for n in 0..60 {
        h.xmpp
            .send(&juliet_msg(&format!("m{n}"), ROMEO, &format!("burst {n}")));
        h.xmpp.send(&format!(
            "<presence type='subscribe' id='p{n}' from='juliet@example.com' to='u{n}@sip.example.com'/>"
        ));
    }
    h.xmpp.send(&juliet_msg("m60", ROMEO, "one too many"));
    h.xmpp.send(
        "<presence type='subscribe' id='p60' from='juliet@example.com' to='late@sip.example.com'/>",
    );
    for id in ["m60", "p60"] {
        let e = h.xmpp.stanza_with_id(id, SOON).await;
        assert!(s(&e).contains("policy-violation"), "{}", s(&e));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    h.xmpp.send(&juliet_msg("m61", ROMEO, "after the refill"));
    h.xmpp.send(
        "<presence type='subscribe' id='p61' from='juliet@example.com' to='refilled@sip.example.com'/>",
    );
    assert!(
        uas_sees(&h, "after the refill").await,
        "the message limit did not release"
    );
    assert!(
        uas_sees(&h, "refilled@").await,
        "the subscription limit did not release"
    );
    h.stop().await;
}
