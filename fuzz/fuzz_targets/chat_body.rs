//! Page-mode chat bodies from SIP (RFC 7573 §6 CHAT-13, `stox::chat::page`): isComposing
//! documents (RFC 3994, `stox::chat::iscomposing`), CPIM-wrapped IMDN requests and
//! `message/imdn+xml` notifications (RFC 5438), and the documents the gateway writes for them.
//!
//! Input: the first line is the MESSAGE's `Content-Type`, the rest its body.
//!
//! Invariants:
//! * `classify`, `imdn_request` and `iscomposing::parse` never panic; `classify` agrees with
//!   `iscomposing::parse` for an isComposing body.
//! * isComposing: the state maps to a chat state and back (Tables C1/C2), and the document we
//!   build for it parses back to the same state (with our refresh for `active`), bare and
//!   CPIM-wrapped.
//! * IMDN: for every notification a request asks for, the notification we write
//!   (`page::notification`) is a CPIM body that `classify` reads back as a positive
//!   notification of that kind about that Message-ID; a notification we parse has a trimmed
//!   Message-ID.
//! * Our request wrapper (`page::wrap_request`) around the body text reads back as an IMDN
//!   request with our id and dispositions, with the text as the CPIM content, and is not
//!   mistaken for an isComposing document or a notification.
//! * `datetime` writes an RFC 3339 UTC timestamp for any time from 1970 to 9999.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::chat::iscomposing::{self, IsComposing};
use stox::chat::page::{self, Disposition, ImdnRequest, Special};

const FROM: &str = "sip:juliet@example.com";
const TO: &str = "sip:romeo@example.net";

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let content_type = String::from_utf8_lossy(first);
    let content_type = content_type.trim_end_matches('\r');
    let special = page::classify(content_type, body);
    let request = page::imdn_request(content_type, body);
    let composing = iscomposing::parse(body);
    if stox_fuzz::debug() {
        eprintln!("{special:?}\n{request:?}\n{composing:?}");
    }
    if stox::im::translate::media_type(content_type) == iscomposing::CONTENT_TYPE {
        assert_eq!(
            special,
            composing.clone().map(Special::Composing),
            "classify and iscomposing::parse disagree"
        );
    }
    if let Some(c) = &composing {
        composing_round_trip(c);
    }
    if let Some(Special::Composing(c)) = &special {
        composing_round_trip(c);
    }
    if let Some(Special::Notification { message_id, .. }) = &special {
        assert_eq!(
            message_id.trim(),
            message_id,
            "notification Message-ID not trimmed"
        );
    }
    if let Some(req) = &request {
        notifications_round_trip(req, data);
    }
    wrap_round_trip(body, data);
});

fn composing_round_trip(c: &IsComposing) {
    let state = iscomposing::to_chat_state(c);
    assert_eq!(
        iscomposing::from_chat_state(&state),
        Some(c.active),
        "chat state {state:?} does not map back to active={}",
        c.active
    );
    let refresh = c.refresh.unwrap_or(60);
    let doc = iscomposing::build(c.active, refresh);
    let want = IsComposing {
        active: c.active,
        refresh: c.active.then_some(refresh),
    };
    assert_eq!(
        iscomposing::parse(doc.as_bytes()),
        Some(want.clone()),
        "our isComposing document does not parse back:\n{doc}"
    );
    let wrapped = format!(
        "From: <{FROM}>\r\nTo: <{TO}>\r\n\r\nContent-Type: {}\r\n\r\n{doc}",
        iscomposing::CONTENT_TYPE
    );
    assert_eq!(
        page::classify("message/cpim", wrapped.as_bytes()),
        Some(Special::Composing(want)),
        "our CPIM-wrapped isComposing document is not read back:\n{wrapped}"
    );
}

fn notifications_round_trip(req: &ImdnRequest, data: &[u8]) {
    assert!(req.delivery || req.display, "request asks for nothing");
    assert!(!req.message_id.is_empty(), "request without Message-ID");
    let unix = seed_time(data);
    for (asked, kind) in [
        (req.delivery, Disposition::Delivered),
        (req.display, Disposition::Displayed),
    ] {
        if !asked {
            continue;
        }
        let body = page::notification(FROM, TO, "n1", &req.message_id, kind, unix);
        assert_eq!(
            page::classify("message/cpim", body.as_bytes()),
            Some(Special::Notification {
                message_id: req.message_id.clone(),
                kind,
                ok: true
            }),
            "our {kind:?} notification for Message-ID {:?} does not read back:\n{body}",
            req.message_id
        );
    }
}

fn wrap_round_trip(body: &[u8], data: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let id = format!("m{}", data.len());
    let display = data.first().is_some_and(|b| b & 1 == 1);
    let wrapped = page::wrap_request(FROM, TO, &id, display, seed_time(data), &text);
    assert_eq!(
        page::imdn_request("message/cpim", wrapped.as_bytes()),
        Some(ImdnRequest {
            message_id: id,
            delivery: true,
            display
        }),
        "our IMDN request is not read back:\n{wrapped}"
    );
    let inner = stox::im::cpim::unwrap(wrapped.as_bytes()).expect("our CPIM body unwraps");
    assert_eq!(
        inner.body,
        text.as_bytes(),
        "the text changed inside our CPIM wrapper"
    );
    assert_eq!(
        page::classify("message/cpim", wrapped.as_bytes()),
        None,
        "a text message is classified as something else"
    );
}

/// A time from the input, 1970..=9999, whose `datetime` must have the RFC 3339 shape.
fn seed_time(data: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().rev().take(8).enumerate() {
        b[i] = *x;
    }
    let unix = i64::from_le_bytes(b).rem_euclid(253_402_300_800);
    let t = page::datetime(unix);
    let bytes = t.as_bytes();
    let shape_ok = bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape_ok, "datetime({unix}) = {t:?}");
    let num = |r: std::ops::Range<usize>| t[r].parse::<u32>().unwrap();
    assert!((1..=12).contains(&num(5..7)), "datetime({unix}) = {t}");
    assert!((1..=31).contains(&num(8..10)), "datetime({unix}) = {t}");
    assert!(num(11..13) < 24 && num(14..16) < 60 && num(17..19) < 60);
    unix
}
