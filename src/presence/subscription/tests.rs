//! X->S (the gateway subscribes for an XMPP user): PRES-1..8, PRES-21, PRES-24, PRES-14
//! recovery. Time is a hand-advanced `Clock`.

use super::test_support::*;
use super::wire::*;
use super::*;
use crate::store::{AuthState, DialogRole};
use xmpp_parsers::presence::{Presence, Show, Type};

fn types(ps: &[Presence]) -> Vec<Type> {
    ps.iter().map(|p| p.type_.clone()).collect()
}

/// Juliet subscribes to Romeo; returns the SUBSCRIBE.
fn subscribed_request(t: &mut T) -> OutRequest {
    let out = t.xmpp(Type::Subscribe, JULIET, ROMEO_JID);
    let reqs = requests(&out);
    assert_eq!(reqs.len(), 1, "{out:?}");
    reqs[0].clone()
}

/// Juliet subscribed, Romeo granted with an active NOTIFY; returns the SUBSCRIBE.
fn granted(t: &mut T) -> OutRequest {
    let sub = subscribed_request(t);
    t.respond(sub.id, ok("nt", 3600));
    let (r, _) = t.sip(notify_for(&sub, 1, "active;expires=3600", Some(PIDF_AWAY)));
    assert_eq!(r.status.code, 200);
    sub
}

#[test]
fn pres_1_subscribe_becomes_subscribe_with_event_accept_expires() {
    let mut t = T::new();
    let out = t.xmpp(Type::Subscribe, JULIET, ROMEO_JID);
    let r = &requests(&out)[0];
    assert_eq!(r.method, OutMethod::Subscribe);
    assert_eq!(r.request_uri, ROMEO);
    assert_eq!(r.remote_uri, ROMEO);
    assert_eq!(r.local_uri, "sip:juliet@example.com");
    assert!(r.initial && r.remote_tag.is_none());
    assert_eq!(header(r, "Event"), Some("presence"));
    assert_eq!(header(r, "Accept"), Some("application/pidf+xml"));
    assert_eq!(header(r, "Expires"), Some("3600"));
    assert_eq!(r.contact_user, "juliet");
    assert!(stanzas(&out).is_empty(), "nothing to XMPP yet");
    assert!(stores(&out)
        .iter()
        .any(|s| matches!(s, StoreOp::PutAuth(a) if a.state == AuthState::Pending)));
}

#[test]
fn pres_2_pending_notify_answered_but_silent() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    t.respond(sub.id, ok("nt", 3600));
    let (r, out) = t.sip(notify_for(&sub, 1, "pending;expires=3600", None));
    assert_eq!(r.status.code, 200);
    assert!(stanzas(&out).is_empty(), "{out:?}");
}

#[test]
fn pres_3_first_active_notify_gives_subscribed_then_availability() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    t.respond(sub.id, ok("nt", 3600));
    let (r, out) = t.sip(notify_for(&sub, 1, "active;expires=3600", Some(PIDF_AWAY)));
    assert_eq!(r.status.code, 200);
    let st = stanzas(&out);
    assert_eq!(types(&st), vec![Type::Subscribed, Type::None]);
    assert_eq!(st[0].from.as_ref().unwrap().to_string(), ROMEO_JID);
    assert_eq!(st[0].to.as_ref().unwrap().to_string(), JULIET);
    assert_eq!(
        st[1].from.as_ref().unwrap().to_string(),
        "romeo@sip.example.com/phone"
    );
    assert_eq!(st[1].show, Some(Show::Away));
    assert_eq!(
        st[1].statuses.values().next().map(String::as_str),
        Some("at lunch")
    );
    let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
    assert_eq!(t.e.auth_state(&key), AuthState::Subscribed);
    // A second active NOTIFY does not repeat `subscribed`.
    let (_, out) = t.sip(notify_for(
        &sub,
        2,
        "active;expires=3500",
        Some(PIDF_CLOSED),
    ));
    assert_eq!(types(&stanzas(&out)), vec![Type::Unavailable]);
}

#[test]
fn pres_3_notify_before_the_2xx_is_not_lost() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    // The NOTIFY overtakes the 200 (RFC 6665 §4.1.2.4).
    let (r, out) = t.sip(notify_for(&sub, 1, "active;expires=3600", Some(PIDF_AWAY)));
    assert_eq!(r.status.code, 200);
    assert_eq!(types(&stanzas(&out)), vec![Type::Subscribed, Type::None]);
    let out = t.respond(sub.id, ok("nt", 3600));
    assert!(stanzas(&out).is_empty());
}

#[test]
fn pres_3_bodyless_active_notify_reports_nothing_available() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    let (_, out) = t.sip(notify_for(&sub, 1, "active", None));
    assert_eq!(types(&stanzas(&out)), vec![Type::Subscribed]);
}

#[test]
fn pres_4_refresh_before_expiry_while_online_and_drop_when_offline() {
    let mut t = T::new();
    t.xmpp(Type::None, "juliet@example.com/balcony", ROMEO_JID);
    let sub = granted(&mut t);
    // 3600 s granted: refresh 360 s before.
    assert!(requests(&t.advance(3200)).is_empty());
    let out = t.advance(40);
    let refresh = &requests(&out)[0];
    assert_eq!(refresh.call_id, sub.call_id);
    assert_eq!(refresh.remote_tag.as_deref(), Some("nt"));
    assert_eq!(
        refresh.request_uri, "sip:romeo@192.0.2.7:5060",
        "remote target from Contact"
    );
    assert_eq!(refresh.cseq, sub.cseq + 1);
    assert_eq!(header(refresh, "Expires"), Some("3600"));
    t.respond(refresh.id, ok("nt", 3600));
    // Juliet goes offline: the dialog ends with Expires 0, the authorization stays.
    let out = t.xmpp(Type::Unavailable, "juliet@example.com/balcony", ROMEO_JID);
    let end = &requests(&out)[0];
    assert_eq!(header(end, "Expires"), Some("0"));
    let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
    assert_eq!(t.e.auth_state(&key), AuthState::Subscribed);
    t.respond(end.id, ok("nt", 0));
    // No more refreshes.
    assert!(requests(&t.advance(7200)).is_empty());
    // Her next session (the server probes) starts a new dialog.
    let out = t.xmpp(Type::Probe, JULIET, ROMEO_JID);
    let again = &requests(&out)[0];
    assert_ne!(again.call_id, sub.call_id);
    assert_eq!(header(again, "Expires"), Some("3600"));
}

#[test]
fn pres_4_refresh_timer_does_not_refresh_for_an_offline_user() {
    let mut t = T::new();
    t.xmpp(Type::None, "juliet@example.com/balcony", ROMEO_JID);
    granted(&mut t);
    // Offline, but the Expires 0 got lost (no response): the dialog still ends by itself.
    let out = t.xmpp(Type::Unavailable, "juliet@example.com/balcony", ROMEO_JID);
    assert_eq!(requests(&out).len(), 1);
    let later = t.advance(4000);
    assert!(requests(&later).is_empty(), "{later:?}");
    assert_eq!(t.e.stats().dialogs, 0);
}

#[test]
fn pres_5_403_489_603_revoke_the_authorization() {
    for code in [403, 489, 603] {
        let mut t = T::new();
        let sub = subscribed_request(&mut t);
        let out = t.respond(
            sub.id,
            SipResponseIn {
                code,
                ..Default::default()
            },
        );
        assert_eq!(types(&stanzas(&out)), vec![Type::Unsubscribed], "{code}");
        let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
        assert_eq!(t.e.auth_state(&key), AuthState::None, "{code}");
        assert!(requests(&t.advance(7200)).is_empty(), "{code}: no retry");
        assert!(stores(&out).contains(&StoreOp::DeleteAuth(key)));
    }
}

#[test]
fn pres_5_423_retries_with_min_expires() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    let out = t.respond(
        sub.id,
        SipResponseIn {
            code: 423,
            min_expires: Some("7200".into()),
            ..Default::default()
        },
    );
    let again = &requests(&out)[0];
    assert_eq!(header(again, "Expires"), Some("7200"));
    assert!(stanzas(&out).is_empty());
}

#[test]
fn pres_5_481_keeps_the_authorization_and_starts_a_new_dialog() {
    let mut t = T::new();
    let sub = granted(&mut t);
    let refresh = requests(&t.advance(3300))[0].clone();
    let out = t.respond(
        refresh.id,
        SipResponseIn {
            code: 481,
            ..Default::default()
        },
    );
    let st = stanzas(&out);
    assert_eq!(
        types(&st),
        vec![Type::Unavailable],
        "contact shown offline meanwhile"
    );
    let new = &requests(&out)[0];
    assert_ne!(new.call_id, sub.call_id);
    assert!(new.initial);
    let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
    assert_eq!(t.e.auth_state(&key), AuthState::Subscribed);
}

#[test]
fn pres_6_unsubscribe_sends_expires_0_then_unsubscribed_and_accepts_final_notify() {
    let mut t = T::new();
    let sub = granted(&mut t);
    let out = t.xmpp(Type::Unsubscribe, JULIET, ROMEO_JID);
    let end = &requests(&out)[0];
    assert_eq!(end.call_id, sub.call_id);
    assert_eq!(header(end, "Expires"), Some("0"));
    assert!(stanzas(&out).is_empty(), "unsubscribed only after the 2xx");
    let out = t.respond(end.id, ok("nt", 0));
    assert_eq!(types(&stanzas(&out)), vec![Type::Unsubscribed]);
    let (r, out) = t.sip(notify_for(&sub, 2, "terminated;reason=timeout", None));
    assert_eq!(r.status.code, 200);
    assert!(
        stanzas(&out).is_empty(),
        "the final NOTIFY is not another stanza"
    );
    assert_eq!(t.e.stats().dialogs, 0);
}

#[test]
fn pres_7_unsubscribe_leaves_the_other_direction_alone() {
    let mut t = T::new();
    let sx = AuthKey::new(JULIET, ROMEO, Direction::SipWatchesXmpp);
    t.e.set_auth_mem(&sx, AuthState::Subscribed);
    granted(&mut t);
    t.xmpp(Type::Unsubscribe, JULIET, ROMEO_JID);
    assert_eq!(t.e.auth_state(&sx), AuthState::Subscribed);
}

#[test]
fn pres_8_terminated_rejected_is_permanent() {
    let mut t = T::new();
    let sub = granted(&mut t);
    let (_, out) = t.sip(notify_for(&sub, 2, "terminated;reason=rejected", None));
    let st = stanzas(&out);
    assert_eq!(types(&st), vec![Type::Unavailable, Type::Unsubscribed]);
    assert!(requests(&out).is_empty());
    assert!(requests(&t.advance(7200)).is_empty());
}

#[test]
fn pres_8_deactivated_resubscribes_at_once_probation_after_retry_after() {
    let mut t = T::new();
    let sub = granted(&mut t);
    let (_, out) = t.sip(notify_for(&sub, 2, "terminated;reason=deactivated", None));
    assert_eq!(types(&stanzas(&out)), vec![Type::Unavailable]);
    let new = requests(&out)[0].clone();
    assert!(new.initial);
    t.respond(new.id, ok("nt", 3600));
    let (_, _) = t.sip(notify_for(&new, 1, "active", Some(PIDF_AWAY)));
    let (_, out) = t.sip(notify_for(
        &new,
        2,
        "terminated;reason=probation;retry-after=120",
        None,
    ));
    assert!(requests(&out).is_empty());
    assert!(requests(&t.advance(100)).is_empty());
    assert_eq!(requests(&t.advance(30)).len(), 1);
    let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
    assert_eq!(t.e.auth_state(&key), AuthState::Subscribed);
}

#[test]
fn pres_8_noresource_and_giveup_retry_later() {
    for reason in ["noresource", "giveup", "timeout"] {
        let mut t = T::new();
        let sub = granted(&mut t);
        let (_, out) = t.sip(notify_for(
            &sub,
            2,
            &format!("terminated;reason={reason}"),
            None,
        ));
        assert_eq!(types(&stanzas(&out)), vec![Type::Unavailable], "{reason}");
        let now = requests(&out).len();
        let later = requests(&t.advance(61)).len();
        assert_eq!(now + later, 1, "{reason}: exactly one new SUBSCRIBE");
    }
}

#[test]
fn pres_20_tuples_become_resources_and_missing_ones_unavailable() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    let two = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:romeo@example.net">
      <tuple id="ID-phone"><status><basic>open</basic></status></tuple>
      <tuple id="ID-desk"><status><basic>open</basic></status></tuple></presence>"#;
    let (_, out) = t.sip(notify_for(&sub, 1, "active", Some(two)));
    assert_eq!(
        types(&stanzas(&out)),
        vec![Type::Subscribed, Type::None, Type::None]
    );
    let (_, out) = t.sip(notify_for(&sub, 2, "active", Some(PIDF_AWAY)));
    let st = stanzas(&out);
    assert_eq!(types(&st), vec![Type::Unavailable, Type::None]);
    assert_eq!(
        st[0].from.as_ref().unwrap().to_string(),
        "romeo@sip.example.com/desk"
    );
}

#[test]
fn pres_21_probe_without_authorization_is_a_one_shot_fetch() {
    let mut t = T::new();
    let out = t.xmpp(Type::Probe, JULIET, ROMEO_JID);
    let fetch = requests(&out)[0].clone();
    assert_eq!(header(&fetch, "Expires"), Some("0"));
    assert!(stores(&out).is_empty(), "a fetch is not persisted");
    t.respond(fetch.id, ok("nt", 0));
    let (_, out) = t.sip(notify_for(
        &fetch,
        1,
        "terminated;reason=timeout",
        Some(PIDF_AWAY),
    ));
    let st = stanzas(&out);
    assert_eq!(types(&st), vec![Type::None]);
    assert_eq!(t.e.stats().dialogs, 0);
}

#[test]
fn pres_4_probe_with_authorization_refreshes_the_dialog() {
    let mut t = T::new();
    let sub = granted(&mut t);
    let out = t.xmpp(Type::Probe, JULIET, ROMEO_JID);
    let r = &requests(&out)[0];
    assert_eq!(r.call_id, sub.call_id);
    assert_eq!(header(r, "Expires"), Some("3600"));
}

#[test]
fn pres_24_foreign_domain_cannot_subscribe() {
    let mut t = T::new();
    let out = t.xmpp(Type::Subscribe, "mallory@evil.example", ROMEO_JID);
    assert!(requests(&out).is_empty());
    let st = stanzas(&out);
    assert_eq!(types(&st), vec![Type::Error]);
    assert_eq!(
        st[0].to.as_ref().unwrap().to_string(),
        "mallory@evil.example"
    );
}

#[test]
fn pres_24_subscription_limits_per_user_and_total() {
    let mut t = T::with(Settings {
        max_per_user: 2,
        max_total: 3,
        ..Settings::default()
    });
    for n in 0..2 {
        let out = t.xmpp(Type::Subscribe, JULIET, &format!("u{n}@sip.example.com"));
        assert_eq!(requests(&out).len(), 1);
    }
    let out = t.xmpp(Type::Subscribe, JULIET, "u9@sip.example.com");
    assert!(requests(&out).is_empty());
    assert_eq!(types(&stanzas(&out)), vec![Type::Error]);
    assert_eq!(
        requests(&t.xmpp(Type::Subscribe, "nurse@example.com", "u1@sip.example.com")).len(),
        1
    );
    let out = t.xmpp(Type::Subscribe, "friar@example.com", "u1@sip.example.com");
    assert_eq!(types(&stanzas(&out)), vec![Type::Error], "total limit");
}

#[test]
fn pres_15_notify_with_bad_pidf_gets_400_and_forwards_nothing() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    for (body, code) in [
        ("<presence", 400),
        (
            r#"<!DOCTYPE x [<!ENTITY a "b">]><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:romeo@example.net"/>"#,
            400,
        ),
        // Speaking for one of the gateway's own XMPP users: a spoof (GEN-5).
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:juliet@example.com"><tuple id="a"><status><basic>open</basic></status></tuple></presence>"#,
            403,
        ),
        // Speaking for another SIP user than the presentity.
        (
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:tybalt@example.net"><tuple id="a"><status><basic>open</basic></status></tuple></presence>"#,
            400,
        ),
    ] {
        let (r, out) = t.sip(notify_for(&sub, 1, "active", Some(body)));
        assert_eq!(r.status.code, code, "{body}");
        assert!(stanzas(&out).is_empty(), "{body}");
    }
    let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
    assert_eq!(
        t.e.auth_state(&key),
        AuthState::Pending,
        "a bad NOTIFY grants nothing"
    );
}

#[test]
fn notify_errors_unknown_dialog_event_state_and_content_type() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    let mut n = notify_for(&sub, 1, "active", None);
    n.to_tag = Some("nope".into());
    assert_eq!(t.sip(n).0.status.code, 481);
    let mut n = notify_for(&sub, 1, "active", None);
    n.event = Some("dialog".into());
    assert_eq!(t.sip(n).0.status.code, 489);
    let n = notify_for(&sub, 1, "bogus", None);
    assert_eq!(t.sip(n).0.status.code, 400);
    let mut n = notify_for(&sub, 1, "active", Some("hi"));
    n.content_type = Some("text/plain".into());
    assert_eq!(t.sip(n).0.status.code, 415);
    let (r, _) = t.sip(notify_for(&sub, 5, "pending", None));
    assert_eq!(r.status.code, 200);
    assert_eq!(
        t.sip(notify_for(&sub, 5, "pending", None)).0.status.code,
        500,
        "CSeq replay"
    );
}

#[test]
fn pres_14_restore_refreshes_stored_subscriber_dialogs() {
    let mut t = T::new();
    let sub = granted(&mut t);
    let ops = t.drain();
    let _ = ops;
    // Rebuild what the store would hold from the outputs so far.
    let auth = Authorization {
        key: AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip),
        state: AuthState::Subscribed,
        updated_at: t.clock.unix,
    };
    let dialog = Dialog {
        key: DialogKey::new(sub.call_id.clone(), sub.local_tag.clone()),
        role: DialogRole::Subscriber,
        auth: auth.key.clone(),
        remote_tag: Some("nt".into()),
        remote_target: "sip:romeo@192.0.2.7:5060".into(),
        route_set: vec!["<sip:proxy.example.net;lr>".into()],
        local_cseq: 7,
        remote_cseq: Some(3),
        expires_at: t.clock.unix + 1000,
        extra: String::new(),
        updated_at: t.clock.unix,
    };
    let mut fresh = T::new();
    fresh.clock = t.clock;
    fresh
        .e
        .restore(fresh.clock, vec![auth.clone()], vec![dialog]);
    fresh.e.handle_timeout(fresh.clock);
    let out = fresh.drain();
    let r = &requests(&out)[0];
    assert_eq!(r.call_id, sub.call_id);
    assert_eq!(r.cseq, 8);
    assert_eq!(r.route_set, vec!["<sip:proxy.example.net;lr>".to_string()]);
    assert_eq!(r.request_uri, "sip:romeo@192.0.2.7:5060");
    assert!(stanzas(&out).is_empty(), "no new subscribe prompt");
    assert_eq!(fresh.e.auth_state(&auth.key), AuthState::Subscribed);
    // The NOTIFY that answers brings the presence back without a new `subscribed`.
    let (_, out) = fresh.sip(notify_for(r, 4, "active", Some(PIDF_AWAY)));
    assert_eq!(types(&stanzas(&out)), vec![Type::None]);
}

#[test]
fn pres_14_restore_drops_expired_dialogs_and_resubscribes() {
    let mut t = T::new();
    let auth = Authorization {
        key: AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip),
        state: AuthState::Subscribed,
        updated_at: 0,
    };
    let dialog = Dialog {
        key: DialogKey::new("old", "tag"),
        role: DialogRole::Subscriber,
        auth: auth.key.clone(),
        remote_tag: Some("nt".into()),
        remote_target: ROMEO.into(),
        route_set: vec![],
        local_cseq: 1,
        remote_cseq: None,
        expires_at: t.clock.unix - 10,
        extra: String::new(),
        updated_at: 0,
    };
    t.e.restore(t.clock, vec![auth], vec![dialog]);
    t.e.handle_timeout(t.clock);
    let out = t.drain();
    assert!(stores(&out).contains(&StoreOp::DeleteDialog(DialogKey::new("old", "tag"))));
    let r = &requests(&out)[0];
    assert!(r.initial && r.call_id != "old");
}

#[test]
fn comp_5_link_up_re_announces_the_last_sip_presence() {
    let mut t = T::new();
    granted(&mut t);
    t.e.handle(t.clock, Input::LinkUp);
    let st = stanzas(&t.drain());
    assert_eq!(types(&st), vec![Type::None]);
    assert_eq!(st[0].show, Some(Show::Away));
}

#[test]
fn pres_8_unreachable_sip_user_is_retried_with_backoff() {
    let mut t = T::new();
    let sub = subscribed_request(&mut t);
    let timeout = || SipResponseIn {
        code: 408,
        ..Default::default()
    };
    t.respond(sub.id, timeout());
    // 60 s, then 120 s, then 240 s.
    let mut waits = Vec::new();
    for _ in 0..3 {
        let mut waited = 0;
        let r = loop {
            waited += 10;
            let out = t.advance(10);
            if let Some(r) = requests(&out).first().cloned() {
                break r;
            }
            assert!(waited < 4000, "no retry");
        };
        waits.push(waited);
        t.respond(r.id, timeout());
    }
    assert_eq!(waits, vec![60, 120, 240]);
    let key = AuthKey::new(JULIET, ROMEO, Direction::XmppWatchesSip);
    assert_eq!(
        t.e.auth_state(&key),
        AuthState::Pending,
        "kept while retrying"
    );
}
