//! Session behaviours added on top of the codec: the body validator, refusal while the
//! XMPP side is unavailable, paced chunks, failure REPORTs for bounced messages.

use super::chunk::Budget;
use super::tests::{drain, me, peer, send_frame, session};
use super::*;
use std::time::Instant;

#[test]
fn validator_refuses_bad_bodies_with_its_code() {
    fn v(_: &str, b: &[u8]) -> Result<(), u16> {
        std::str::from_utf8(b).map(|_| ()).map_err(|_| 415)
    }
    let settings = Settings {
        validate: Some(v),
        ..Settings::default()
    };
    let mut s = Session::new(me(), vec![peer()], settings, Budget::new(1 << 20));
    let now = Instant::now();
    s.handle_frame(
        now,
        send_frame("tid00001", "m1234", "1-2/2", &[0xff, 0xfe], Flag::End),
    );
    let (frames, events) = drain(&mut s);
    assert!(events.is_empty());
    assert!(matches!(frames[0].start, StartLine::Response(415, _)));
}

/// A message that cannot be delivered now is refused, never answered 200 and dropped.
#[test]
fn unavailable_session_refuses_complete_messages() {
    let mut s = session();
    let now = Instant::now();
    s.set_unavailable(true);
    s.handle_frame(
        now,
        send_frame("tid00001", "m1234", "1-2/2", b"hi", Flag::End),
    );
    let (frames, events) = drain(&mut s);
    assert!(events.is_empty());
    assert!(matches!(frames[0].start, StartLine::Response(503, _)));
    s.set_unavailable(false);
    s.handle_frame(
        now,
        send_frame("tid00002", "m1235", "1-2/2", b"hi", Flag::End),
    );
    assert_eq!(drain(&mut s).1.len(), 1);
}

/// §7.1.1 / §10.5: a long message goes out a few chunks at a time; a 413 stops the rest.
#[test]
fn long_message_is_paced_and_a_413_stops_it() {
    let settings = Settings {
        chunk_size: 100,
        ..Settings::default()
    };
    let mut s = Session::new(me(), vec![peer()], settings, Budget::new(1 << 20));
    let now = Instant::now();
    s.send(now, 9, "text/plain", &[b'z'; 2000], false);
    let (first, _) = drain(&mut s);
    assert_eq!(first.len(), 4, "a window of chunks, not all 20");
    // A short message interleaves with the long one.
    s.send(now, 10, "text/plain", b"short", false);
    assert_eq!(drain(&mut s).0.len(), 1);
    s.handle_frame(now, Frame::response(first[0].tid.clone(), 200, None));
    let (more, _) = drain(&mut s);
    assert_eq!(more.len(), 1, "one more chunk per 200");
    assert_eq!(more[0].header("Byte-Range"), Some("401-500/2000"));
    s.handle_frame(now, Frame::response(first[1].tid.clone(), 413, None));
    let (after, events) = drain(&mut s);
    assert!(after.is_empty(), "nothing more of a refused message");
    assert_eq!(
        events,
        vec![Event::Failed {
            token: 9,
            code: 413
        }]
    );
}

/// A message the XMPP server bounced after its 200: a failure REPORT to the sender with
/// the mapped code, once; none for `Failure-Report: no`.
#[test]
fn bounced_message_gets_a_failure_report() {
    let mut s = session();
    let now = Instant::now();
    s.handle_frame(
        now,
        send_frame("tid00001", "m1234", "1-2/2", b"hi", Flag::End),
    );
    let (_, events) = drain(&mut s);
    assert_eq!(events.len(), 1);
    assert!(s.report_failed("tid00001", 404));
    let (frames, _) = drain(&mut s);
    assert_eq!(frames[0].method(), Some("REPORT"));
    assert_eq!(frames[0].header("Message-ID"), Some("m1234"));
    assert!(frames[0].header("Status").unwrap().starts_with("000 404"));
    assert_eq!(
        frames[0].header("To-Path"),
        Some(peer().to_string().as_str())
    );
    assert!(!s.report_failed("tid00001", 404), "once");
    let quiet =
        send_frame("tid00002", "m1235", "1-2/2", b"hi", Flag::End).with("Failure-Report", "no");
    s.handle_frame(now, quiet);
    drain(&mut s);
    assert!(
        !s.report_failed("tid00002", 404),
        "the sender asked for no failure reports"
    );
}

/// Chunks scattered through a message (one byte every other byte) are refused once they
/// leave too many gaps, and the memory they held is released.
#[test]
fn scattered_chunks_are_refused() {
    let mut s = session();
    let now = Instant::now();
    let mut codes = Vec::new();
    for i in 0..100u64 {
        let at = 2 * i + 1;
        let f = send_frame(
            "tid00001",
            "mscat",
            &format!("{at}-{at}/1000"),
            b"x",
            Flag::More,
        );
        s.handle_frame(now, f);
        codes.extend(drain(&mut s).0.into_iter().map(|f| f.start));
    }
    assert!(
        codes
            .iter()
            .any(|c| matches!(c, StartLine::Response(400, _))),
        "{codes:?}"
    );
    assert_eq!(s.held(), 0);
}
