//! S->X (the gateway is the notifier for a SIP watcher): PRES-9..13, PRES-15..19, PRES-22,
//! PRES-24, PRES-25, and malformed SUBSCRIBEs.

use super::test_support::{header, requests, responds, stanzas, JULIET, ROMEO, ROMEO_JID, T};
use super::wire::*;
use super::*;
use crate::store::AuthState;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Show, Type};

fn subscribe(expires: Option<&str>) -> SipRequestIn {
    SipRequestIn {
        method: "SUBSCRIBE".into(),
        request_uri: "sip:juliet@example.com".into(),
        from_uri: ROMEO.into(),
        from_tag: Some("w1".into()),
        to_uri: "sip:juliet@example.com".into(),
        to_tag: None,
        call_id: "c1@phone".into(),
        cseq: 10,
        contact: Some("sip:romeo@192.0.2.7:5062".into()),
        record_route: vec!["<sip:proxy.example.net;lr>".into()],
        event: Some("presence".into()),
        expires: expires.map(str::to_owned),
        accept: Some("application/pidf+xml".into()),
        ..Default::default()
    }
}

fn refresh(r: &Respond, cseq: u32, expires: &str) -> SipRequestIn {
    SipRequestIn {
        to_tag: r.to_tag.clone(),
        cseq,
        ..subscribe(Some(expires))
    }
}

fn available(t: &mut T, resource: &str, show: Option<Show>, status: &str) -> Vec<Output> {
    let mut p = Presence::new(Type::None);
    p.from = Some(Jid::new(&format!("{JULIET}/{resource}")).unwrap());
    p.to = Some(Jid::new(ROMEO_JID).unwrap());
    p.show = show;
    if !status.is_empty() {
        p.statuses
            .insert(xmpp_parsers::message::Lang(String::new()), status.into());
    }
    t.xmpp_p(p)
}

fn state(r: &OutRequest) -> &str {
    header(r, "Subscription-State").unwrap()
}

/// Romeo subscribes to Juliet and she approves; returns the 200.
fn approved(t: &mut T) -> Respond {
    let (ok, _) = t.sip(subscribe(Some("600")));
    t.xmpp(Type::Subscribed, JULIET, ROMEO_JID);
    ok
}

#[test]
fn pres_9_subscribe_gives_200_pending_notify_and_subscribe_stanza() {
    let mut t = T::new();
    let (ok, out) = t.sip(subscribe(None));
    assert_eq!(ok.status.code, 200);
    assert!(ok.to_tag.is_some());
    assert_eq!(ok.contact_user.as_deref(), Some("juliet"));
    assert!(
        ok.headers.contains(&("Expires", "3600".into())),
        "no Expires = 3600"
    );
    let n = &requests(&out)[0];
    assert_eq!(n.method, OutMethod::Notify);
    assert!(state(n).starts_with("pending"));
    assert!(n.body.is_empty());
    assert_eq!(
        n.request_uri, "sip:romeo@192.0.2.7:5062",
        "Contact is the remote target"
    );
    assert_eq!(n.route_set, vec!["<sip:proxy.example.net;lr>".to_string()]);
    assert_eq!(n.remote_tag.as_deref(), Some("w1"));
    assert_eq!(Some(&n.local_tag), ok.to_tag.as_ref());
    let st = stanzas(&out);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].type_, Type::Subscribe);
    assert_eq!(st[0].from.as_ref().unwrap().to_string(), ROMEO_JID);
    assert_eq!(st[0].to.as_ref().unwrap().to_string(), JULIET);
}

#[test]
fn pres_10_subscribed_gives_active_notify_then_state_follows() {
    let mut t = T::new();
    t.sip(subscribe(Some("600")));
    let out = t.xmpp(Type::Subscribed, JULIET, ROMEO_JID);
    let n = &requests(&out)[0];
    assert!(state(n).starts_with("active"), "{}", state(n));
    assert!(n.body.is_empty(), "nothing known yet");
    // RFC 6121 §3.1.5: the server then sends her presence to the new contact.
    let out = available(&mut t, "balcony", Some(Show::Away), "dreaming");
    let n = &requests(&out)[0];
    let body = String::from_utf8(n.body.clone()).unwrap();
    assert!(body.contains("<basic>open</basic>"), "{body}");
    assert!(
        body.contains("<show xmlns='jabber:client'>away</show>"),
        "{body}"
    );
    assert!(body.contains("dreaming"), "{body}");
    assert!(body.contains("ID-balcony"), "{body}");
    assert_eq!(header(n, "Content-Type"), Some("application/pidf+xml"));
}

#[test]
fn pres_11_unsubscribed_gives_terminated_rejected() {
    let mut t = T::new();
    t.sip(subscribe(Some("600")));
    let out = t.xmpp(Type::Unsubscribed, JULIET, ROMEO_JID);
    let n = &requests(&out)[0];
    assert_eq!(state(n), "terminated;reason=rejected");
    assert_eq!(t.e.stats().dialogs, 0);
    let key = AuthKey::new(JULIET, ROMEO, Direction::SipWatchesXmpp);
    assert_eq!(t.e.auth_state(&key), AuthState::None);
}

#[test]
fn pres_11_revocation_after_approval_uses_the_same_notify() {
    let mut t = T::new();
    approved(&mut t);
    let out = t.xmpp(Type::Unsubscribed, JULIET, ROMEO_JID);
    assert_eq!(state(&requests(&out)[0]), "terminated;reason=rejected");
}

#[test]
fn pres_12_refresh_answered_with_current_state_or_empty() {
    let mut t = T::new();
    let ok = approved(&mut t);
    let (r, out) = t.sip(refresh(&ok, 11, "600"));
    assert_eq!(r.status.code, 200);
    let n = &requests(&out)[0];
    assert!(state(n).starts_with("active"));
    assert!(n.body.is_empty(), "nothing known: empty NOTIFY");
    available(&mut t, "balcony", None, "");
    let (_, out) = t.sip(refresh(&ok, 12, "600"));
    let n = &requests(&out)[0];
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>open</basic>"));
}

#[test]
fn pres_13_expires_0_ends_with_closed_notify_and_unavailable() {
    let mut t = T::new();
    let ok = approved(&mut t);
    let (r, out) = t.sip(refresh(&ok, 11, "0"));
    assert_eq!(r.status.code, 200);
    let n = &requests(&out)[0];
    assert_eq!(state(n), "terminated;reason=timeout");
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>closed</basic>"));
    let st = stanzas(&out);
    assert_eq!(st.len(), 1);
    assert_eq!(
        st[0].type_,
        Type::Unavailable,
        "never unsubscribe (PRES-13)"
    );
    let key = AuthKey::new(JULIET, ROMEO, Direction::SipWatchesXmpp);
    assert_eq!(
        t.e.auth_state(&key),
        AuthState::Subscribed,
        "authorization survives"
    );
}

#[test]
fn pres_13_dialog_expiry_without_refresh_behaves_like_expires_0() {
    let mut t = T::new();
    approved(&mut t);
    assert!(requests(&t.advance(590)).is_empty());
    let out = t.advance(20);
    assert_eq!(state(&requests(&out)[0]), "terminated;reason=timeout");
    assert_eq!(stanzas(&out)[0].type_, Type::Unavailable);
}

#[test]
fn pres_19_two_resources_one_leaves_the_other_stays_open() {
    let mut t = T::new();
    approved(&mut t);
    available(&mut t, "balcony", None, "");
    let out = available(&mut t, "garden", Some(Show::Dnd), "");
    let body = String::from_utf8(requests(&out)[0].body.clone()).unwrap();
    assert!(
        body.contains("ID-balcony") && body.contains("ID-garden"),
        "{body}"
    );
    let mut p = Presence::new(Type::Unavailable);
    p.from = Some(Jid::new(&format!("{JULIET}/garden")).unwrap());
    p.to = Some(Jid::new(ROMEO_JID).unwrap());
    let out = t.xmpp_p(p);
    let body = String::from_utf8(requests(&out)[0].body.clone()).unwrap();
    assert!(
        body.contains("ID-balcony") && !body.contains("ID-garden"),
        "{body}"
    );
    assert!(body.contains("<basic>open</basic>"), "{body}");
}

#[test]
fn pres_22_fetch_probes_then_answers_terminated_with_state() {
    let mut t = T::new();
    let ok = approved(&mut t);
    let _ = ok;
    let mut fetch = subscribe(Some("0"));
    fetch.call_id = "fetch@phone".into();
    let (r, out) = t.sip(fetch);
    assert_eq!(r.status.code, 200);
    let st = stanzas(&out);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].type_, Type::Probe);
    assert!(requests(&out).is_empty(), "waits for the probe's answer");
    // The answer arrives; the fetch NOTIFY goes out when the wait ends.
    let out = available(&mut t, "balcony", None, "");
    assert!(requests(&out)
        .iter()
        .all(|n| !state(n).starts_with("terminated")));
    let out = t.advance(3);
    let n = requests(&out)
        .into_iter()
        .find(|n| n.call_id == "fetch@phone")
        .expect("fetch NOTIFY");
    assert!(state(&n).starts_with("terminated"));
    assert!(String::from_utf8_lossy(&n.body).contains("<basic>open</basic>"));
}

#[test]
fn pres_22_fetch_without_authorization_gets_rejected_and_no_probe() {
    let mut t = T::new();
    let (r, out) = t.sip(subscribe(Some("0")));
    assert_eq!(r.status.code, 200);
    assert_eq!(state(&requests(&out)[0]), "terminated;reason=rejected");
    assert!(stanzas(&out).is_empty(), "no probe, no subscribe prompt");
}

#[test]
fn pres_25_presence_to_one_sip_user_is_not_sent_to_another() {
    let mut t = T::new();
    approved(&mut t);
    // Mercutio also watches Juliet.
    let mut m = subscribe(Some("600"));
    m.from_uri = "sip:mercutio@example.net".into();
    m.call_id = "c2@phone".into();
    t.sip(m);
    t.xmpp(Type::Subscribed, JULIET, "mercutio@sip.example.com");
    // Juliet's server sends directed presence to Romeo only.
    let out = available(&mut t, "balcony", None, "for Romeo");
    let notifies = requests(&out);
    assert_eq!(notifies.len(), 1);
    assert_eq!(notifies[0].remote_uri, ROMEO);
}

#[test]
fn pres_24_sip_subscription_limit_gives_503() {
    let mut t = T::with(Settings {
        max_per_user: 1,
        ..Settings::default()
    });
    t.sip(subscribe(Some("600")));
    let mut other = subscribe(Some("600"));
    other.request_uri = "sip:nurse@example.com".into();
    other.to_uri = other.request_uri.clone();
    other.call_id = "c3".into();
    let (r, out) = t.sip(other);
    assert_eq!(r.status.code, 503);
    assert!(stanzas(&out).is_empty());
}

#[test]
fn subscribe_refusals_carry_the_right_code_and_headers() {
    let mut t = T::new();
    let cases: Vec<(SipRequestIn, u16)> = vec![
        (
            SipRequestIn {
                event: None,
                ..subscribe(None)
            },
            489,
        ),
        (
            SipRequestIn {
                event: Some("dialog".into()),
                ..subscribe(None)
            },
            489,
        ),
        (
            SipRequestIn {
                expires: Some("soon".into()),
                ..subscribe(None)
            },
            400,
        ),
        (
            SipRequestIn {
                expires: Some("10".into()),
                ..subscribe(None)
            },
            423,
        ),
        (
            SipRequestIn {
                accept: Some("text/plain".into()),
                ..subscribe(None)
            },
            406,
        ),
        (
            SipRequestIn {
                from_tag: None,
                ..subscribe(None)
            },
            400,
        ),
        (
            SipRequestIn {
                contact: None,
                ..subscribe(None)
            },
            400,
        ),
        // A SIP user's own JID as presentity, an XMPP user as watcher: loop/spoof.
        (
            SipRequestIn {
                request_uri: ROMEO.into(),
                ..subscribe(None)
            },
            404,
        ),
        (
            SipRequestIn {
                from_uri: "sip:juliet@example.com".into(),
                ..subscribe(None)
            },
            403,
        ),
        (
            SipRequestIn {
                to_tag: Some("unknown".into()),
                ..subscribe(None)
            },
            481,
        ),
        (
            SipRequestIn {
                method: "PUBLISH".into(),
                ..subscribe(None)
            },
            405,
        ),
    ];
    for (req, code) in cases {
        let (r, out) = t.sip(req.clone());
        assert_eq!(r.status.code, code, "{req:?}");
        assert!(stanzas(&out).is_empty(), "{req:?}");
        match code {
            489 => assert!(r.headers.contains(&("Allow-Events", "presence".into()))),
            423 => assert!(r.headers.contains(&("Min-Expires", "60".into()))),
            406 => assert!(r.headers.iter().any(|(n, _)| *n == "Accept")),
            _ => {}
        }
    }
    assert_eq!(t.e.stats().dialogs, 0);
}

#[test]
fn notify_481_from_the_watcher_ends_the_dialog_but_not_the_authorization() {
    let mut t = T::new();
    approved(&mut t);
    t.auto_ok_notify = false;
    let out = available(&mut t, "balcony", None, "");
    let n = requests(&out)[0].clone();
    t.respond(
        n.id,
        SipResponseIn {
            code: 481,
            ..Default::default()
        },
    );
    assert_eq!(t.e.stats().dialogs, 0);
    let key = AuthKey::new(JULIET, ROMEO, Direction::SipWatchesXmpp);
    assert_eq!(t.e.auth_state(&key), AuthState::Subscribed);
}

#[test]
fn resubscribe_after_approval_is_active_at_once_with_no_prompt() {
    let mut t = T::new();
    let ok = approved(&mut t);
    t.sip(refresh(&ok, 11, "0"));
    let mut again = subscribe(Some("600"));
    again.call_id = "c9".into();
    let (_, out) = t.sip(again);
    assert!(state(&requests(&out)[0]).starts_with("active"));
    let st = stanzas(&out);
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(
        st[0].type_,
        Type::Probe,
        "no subscribe prompt; a probe learns her state"
    );
}

#[test]
fn link_up_probes_watched_users() {
    let mut t = T::new();
    approved(&mut t);
    t.e.handle(t.clock, Input::LinkUp);
    let st = stanzas(&t.drain());
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].type_, Type::Probe);
    assert_eq!(st[0].to.as_ref().unwrap().to_string(), JULIET);
}

#[test]
fn responds_cover_every_transaction() {
    // Every inbound request gets exactly one response, whatever happens.
    let mut t = T::new();
    let (_, out) = t.sip(subscribe(Some("600")));
    assert_eq!(responds(&out).len(), 1);
}

#[test]
fn notifies_of_a_dialog_wait_for_the_previous_response_and_coalesce() {
    let mut t = T::new();
    t.auto_ok_notify = false;
    let (_, out) = t.sip(subscribe(Some("600")));
    let pending = requests(&out)[0].clone();
    t.respond(
        pending.id,
        SipResponseIn {
            code: 200,
            ..Default::default()
        },
    );
    let out = t.xmpp(Type::Subscribed, JULIET, ROMEO_JID);
    let first = requests(&out)[0].clone();
    // Three changes while the first NOTIFY is unanswered: nothing goes out yet.
    assert!(requests(&available(&mut t, "balcony", None, "")).is_empty());
    assert!(requests(&available(&mut t, "balcony", Some(Show::Away), "")).is_empty());
    assert!(requests(&available(&mut t, "balcony", Some(Show::Dnd), "")).is_empty());
    let out = t.respond(
        first.id,
        SipResponseIn {
            code: 200,
            ..Default::default()
        },
    );
    let next = requests(&out);
    assert_eq!(next.len(), 1, "only the newest state is sent");
    assert_eq!(next[0].cseq, first.cseq + 1);
    assert!(String::from_utf8_lossy(&next[0].body).contains(">dnd<"));
}

#[test]
fn pres_25_directed_presence_to_an_unsubscribed_sip_jid_is_not_cached() {
    let mut t = T::new();
    for i in 0..50 {
        let mut p = Presence::new(Type::None);
        p.from = Some(Jid::new(&format!("{JULIET}/balcony")).unwrap());
        p.to = Some(Jid::new(&format!("stranger{i}@sip.example.com")).unwrap());
        let out = t.xmpp_p(p);
        assert!(requests(&out).is_empty());
    }
    assert!(t.e.xmpp_cache.is_empty());
}

#[test]
fn pres_19_last_resource_leaving_sends_a_closed_document() {
    let mut t = T::new();
    approved(&mut t);
    available(&mut t, "balcony", None, "");
    let mut p = Presence::new(Type::Unavailable);
    p.from = Some(Jid::new(&format!("{JULIET}/balcony")).unwrap());
    p.to = Some(Jid::new(ROMEO_JID).unwrap());
    let out = t.xmpp_p(p);
    let body = String::from_utf8(requests(&out)[0].body.clone()).unwrap();
    assert!(body.contains("<basic>closed</basic>"), "{body}");
}
