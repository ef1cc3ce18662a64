//! Scenarios of operating the gateway: admin ad-hoc commands (XEP-0050), configuration
//! reload, and the per-sender message rate limit. The real-server versions (slixmpp against
//! Prosody, SIGHUP under load, the metrics endpoint scraped) are in
//! integration/test_operations.py.

mod support;

use support::check::*;
use support::xml::stanza_error;
use support::{opts, romeo_message, Harness, Opts, COMPONENT, SOON};
use tokio_xmpp::minidom::Element;

const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
const NS_DATA: &str = "jabber:x:data";
/// juliet (the harness's XMPP user) is the admin of these scenarios.
const ADMIN: &str = "[admin]\njids = [\"juliet@example.com\"]\n";

fn with_admin(extra: &str) -> Opts {
    Opts {
        extra_config: format!("{ADMIN}{extra}"),
        ..opts()
    }
}

/// Send an IQ from `from` to the component, return the answer.
async fn iq_from(h: &mut Harness, from: &str, id: &str, typ: &str, payload: &str) -> Element {
    h.xmpp.send(&format!(
        "<iq type='{typ}' id='{id}' from='{from}' to='{COMPONENT}'>{payload}</iq>"
    ));
    h.xmpp.stanza_with_id(id, SOON).await
}

fn command(node: &str, action: &str, fields: &[(&str, &str)]) -> String {
    let form = if fields.is_empty() {
        String::new()
    } else {
        let f: String = fields
            .iter()
            .map(|(k, v)| format!("<field var='{k}'><value>{v}</value></field>"))
            .collect();
        format!("<x xmlns='{NS_DATA}' type='submit'>{f}</x>")
    };
    format!("<command xmlns='{NS_COMMANDS}' node='{node}' action='{action}'>{form}</command>")
}

/// The `(label, values)` of a completed command's result form.
fn rows(reply: &Element) -> Vec<(String, String)> {
    let cmd = reply.get_child("command", NS_COMMANDS).expect("command");
    assert_eq!(cmd.attr("status"), Some("completed"), "{}", s(reply));
    cmd.get_child("x", NS_DATA)
        .map(|x| {
            x.children()
                .filter(|f| f.name() == "field")
                .map(|f| {
                    let v: Vec<String> = f.children().map(|v| v.text()).collect();
                    (f.attr("label").unwrap_or("").to_string(), v.join("\n"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn note(reply: &Element) -> (String, String) {
    let n = reply
        .get_child("command", NS_COMMANDS)
        .and_then(|c| c.get_child("note", NS_COMMANDS))
        .unwrap_or_else(|| panic!("a note: {}", s(reply)));
    (n.attr("type").unwrap_or("").to_string(), n.text())
}

#[tokio::test]
async fn admin_sees_commands_and_others_do_not() {
    let mut h = Harness::start(with_admin("")).await;
    let items = format!("<query xmlns='{NS_DISCO_ITEMS}' node='{NS_COMMANDS}'/>");
    let r = iq_from(&mut h, JULIET, "i1", "get", &items).await;
    let nodes: Vec<String> = r
        .get_child("query", NS_DISCO_ITEMS)
        .unwrap()
        .children()
        .filter_map(|i| i.attr("node").map(str::to_string))
        .collect();
    assert_eq!(
        nodes,
        ["status", "sessions", "end-session", "reload", "translate"],
        "{}",
        s(&r)
    );
    let r = iq_from(&mut h, "mallory@example.com/x", "i2", "get", &items).await;
    assert_eq!(r.attr("type"), Some("result"), "{}", s(&r));
    assert_eq!(
        r.get_child("query", NS_DISCO_ITEMS)
            .unwrap()
            .children()
            .count(),
        0
    );

    // Executing is refused with forbidden, for every command.
    for node in ["status", "reload", "translate"] {
        let r = iq_from(
            &mut h,
            "mallory@example.com/x",
            node,
            "set",
            &command(node, "execute", &[]),
        )
        .await;
        assert_eq!(r.attr("type"), Some("error"), "{}", s(&r));
        assert_eq!(stanza_error(&r).1, "forbidden", "{}", s(&r));
    }
    // The disco#info of the component says it has commands.
    let r = iq_result(
        &mut h,
        "get",
        "d1",
        COMPONENT,
        &format!("<query xmlns='{NS_DISCO_INFO}'/>"),
    )
    .await;
    let f = features(r.get_child("query", NS_DISCO_INFO).unwrap());
    assert!(f.contains(&NS_COMMANDS.to_string()), "{f:?}");
}

#[tokio::test]
async fn status_shows_state_and_counters() {
    let mut h = Harness::start(with_admin("")).await;
    // One message through, so that the counters have something to show.
    let resp = h.sip_transact(romeo_message(&[], b"hi")).await;
    assert_eq!(resp.code(), Some(200));
    let r = iq_from(
        &mut h,
        JULIET,
        "st",
        "set",
        &command("status", "execute", &[]),
    )
    .await;
    let rows = rows(&r);
    let get = |k: &str| rows.iter().find(|(l, _)| l == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("component_link_up").as_deref(),
        Some("true"),
        "{rows:?}"
    );
    assert_eq!(get("chat_sessions").as_deref(), Some("0"), "{rows:?}");
    let sip_in = rows
        .iter()
        .find(|(l, _)| {
            l.starts_with(
                "stox_sip_transactions_total{direction=\"in\",method=\"MESSAGE\",code=\"200\"}",
            )
        })
        .map(|(_, v)| v.parse::<u64>().unwrap());
    assert!(sip_in.is_some_and(|n| n >= 1), "{rows:?}");
}

#[tokio::test]
async fn translate_asks_then_answers_and_cancel_cancels() {
    let mut h = Harness::start(with_admin("")).await;
    let r = iq_from(
        &mut h,
        JULIET,
        "t1",
        "set",
        &command("translate", "execute", &[]),
    )
    .await;
    let cmd = r.get_child("command", NS_COMMANDS).expect("command");
    assert_eq!(cmd.attr("status"), Some("executing"), "{}", s(&r));
    let sid = cmd.attr("sessionid").expect("sessionid").to_string();
    let x = cmd.get_child("x", NS_DATA).expect("form");
    assert_eq!(x.attr("type"), Some("form"));
    assert!(x.children().any(|f| f.attr("var") == Some("address")));

    let submit = command("translate", "complete", &[("address", "sip:bob@other.org")]).replacen(
        "<command ",
        &format!("<command sessionid='{sid}' "),
        1,
    );
    let r = iq_from(&mut h, JULIET, "t2", "set", &submit).await;
    assert_eq!(
        rows(&r),
        vec![(
            "sip:bob@other.org".to_string(),
            format!("bob\\40other.org@{COMPONENT}")
        )]
    );
    let r = iq_from(
        &mut h,
        JULIET,
        "t3",
        "set",
        &command("translate", "complete", &[("address", "not an address@@")]),
    )
    .await;
    assert_eq!(note(&r).0, "error", "{}", s(&r));
    let r = iq_from(
        &mut h,
        JULIET,
        "t4",
        "set",
        &command("translate", "cancel", &[]),
    )
    .await;
    assert_eq!(
        r.get_child("command", NS_COMMANDS).unwrap().attr("status"),
        Some("canceled")
    );
    let r = iq_from(
        &mut h,
        JULIET,
        "t5",
        "set",
        &command("nonesuch", "execute", &[]),
    )
    .await;
    assert_eq!(stanza_error(&r).1, "item-not-found", "{}", s(&r));
}

#[tokio::test]
async fn reload_changes_route_and_rate_limit_and_reports_what_needs_a_restart() {
    let mut h = Harness::start(with_admin("")).await;
    // Before: no limit, three messages reach the UAS.
    for i in 0..3 {
        h.xmpp.send(&juliet_msg(&format!("a{i}"), ROMEO, "before"));
        h.uas_answer(200, "OK", &[]).await;
    }
    // The new file: a limit of 2 per minute, example.net routed nowhere useful (a port with no
    // listener), and a changed SIP socket, which needs a restart.
    let dead = support::free_udp_tcp_port();
    let text = h
        .config
        .replace(
            &format!("\"example.net\" = \"sip:{}\"", h.uas.addr),
            &format!("\"example.net\" = \"sip:127.0.0.1:{dead}\""),
        )
        .replace("[admin]", "[limits]\nmessages_per_minute = 2\n\n[admin]")
        .replace("udp:127.0.0.1:", "udp:127.0.0.2:");
    assert_ne!(text, h.config);
    std::fs::write(&h.config_path, text).unwrap();
    let r = iq_from(
        &mut h,
        JULIET,
        "rl",
        "set",
        &command("reload", "execute", &[]),
    )
    .await;
    let (kind, summary) = note(&r);
    assert_eq!(kind, "info", "{summary}");
    assert_eq!(
        summary,
        "applied: sip.routes, limits.messages_per_minute; needs a restart: sip.listen"
    );
    // The rate limit: two pass, the third is refused with policy-violation.
    h.xmpp
        .send(&juliet_msg("b1", "x\\40other.org@sip.example.com", "1"));
    h.uas_answer(200, "OK", &[]).await;
    h.xmpp
        .send(&juliet_msg("b2", "x\\40other.org@sip.example.com", "2"));
    h.uas_answer(200, "OK", &[]).await;
    h.xmpp
        .send(&juliet_msg("b3", "x\\40other.org@sip.example.com", "3"));
    let e = h.xmpp.stanza_with_id("b3", SOON).await;
    assert_eq!(stanza_error(&e).1, "policy-violation", "{}", s(&e));
    // The route: another sender (own bucket) to example.net now goes to the dead port and
    // fails instead of reaching the UAS.
    h.xmpp.send("<message from='nurse@example.com/x' to='romeo@sip.example.com' id='c1'><body>x</body></message>");
    let e = h
        .xmpp
        .stanza_with_id("c1", std::time::Duration::from_secs(40))
        .await;
    assert_eq!(e.attr("type"), Some("error"), "{}", s(&e));
    assert!(h
        .uas
        .recv(std::time::Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_running_settings_stay() {
    let mut h = Harness::start(with_admin("")).await;
    std::fs::write(&h.config_path, "[component]\njid = ").unwrap();
    let r = iq_from(
        &mut h,
        JULIET,
        "r1",
        "set",
        &command("reload", "execute", &[]),
    )
    .await;
    let (kind, text) = note(&r);
    assert_eq!(kind, "error", "{text}");
    assert!(text.contains("TOML") || text.contains("parse"), "{text}");
    // Still working, still admin.
    h.xmpp.send(&juliet_msg("ok1", ROMEO, "still here"));
    h.uas_answer(200, "OK", &[]).await;
    let r = iq_from(
        &mut h,
        JULIET,
        "st",
        "set",
        &command("status", "execute", &[]),
    )
    .await;
    assert!(!rows(&r).is_empty());
}

#[tokio::test]
async fn sip_senders_over_the_rate_get_503() {
    let mut h = Harness::start(with_admin("[limits]\nmessages_per_minute = 1\n")).await;
    let r = h.sip_transact(romeo_message(&[], b"one")).await;
    assert_eq!(r.code(), Some(200), "{}", r.start);
    let _ = h.next_message().await;
    let r = h
        .refused_without_stanza(romeo_message(&[], b"two"), 503)
        .await;
    // One message a minute: the next token comes in about 60 s, and Retry-After says so.
    let after: u32 = r
        .header("retry-after")
        .unwrap_or("")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        (55..=61).contains(&after),
        "Retry-After {after}: {}",
        r.start
    );
}

#[tokio::test]
async fn sessions_lists_a_users_presence_subscriptions() {
    let mut h = Harness::start(with_admin("")).await;
    h.xmpp
        .send("<presence type='subscribe' from='juliet@example.com' to='romeo@sip.example.com'/>");
    // The SUBSCRIBE reaches the UAS; the subscription is pending from then on.
    let _ = h.uas.request(SOON).await;
    let r = iq_from(
        &mut h,
        JULIET,
        "s1",
        "set",
        &command("sessions", "complete", &[("user", "juliet@example.com")]),
    )
    .await;
    let rows = rows(&r);
    assert!(
        rows.iter().any(|(l, v)| l == "presence"
            && v.contains("sip:romeo@example.net")
            && v.contains("Pending")),
        "{rows:?}"
    );
    let r = iq_from(
        &mut h,
        JULIET,
        "s2",
        "set",
        &command("end-session", "complete", &[("session", "999")]),
    )
    .await;
    assert_eq!(note(&r).0, "error");
}

/// A level the process cannot take (here: logging is the test harness's) does not hold up the
/// rest of the reload.
#[tokio::test]
async fn an_unappliable_log_level_is_reported_and_the_rest_applies() {
    let mut h = Harness::start(with_admin("")).await;
    let text = h.config.replace(
        "[admin]",
        "[log]\nlevel = \"debug\"\n\n[limits]\nmessages_per_minute = 7\n\n[admin]",
    );
    std::fs::write(&h.config_path, text).unwrap();
    let r = iq_from(
        &mut h,
        JULIET,
        "lv",
        "set",
        &command("reload", "execute", &[]),
    )
    .await;
    assert_eq!(
        note(&r),
        (
            "info".to_string(),
            "applied: limits.messages_per_minute; needs a restart: log.level (RUST_LOG is set)"
                .to_string()
        )
    );
}
