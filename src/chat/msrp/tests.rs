//! Codec and session tests: RFC 4975 examples, split-at-every-byte and chunked = unchunked
//! properties, the malformed-frame corpus, and session scenarios (CHAT-6, 9, 17, 20..22).

use super::chunk::Budget;
use super::*;
use std::time::{Duration, Instant};

/// RFC 4975 §4 (first example), as written on the wire.
const RFC_SEND: &str = "MSRP a786hjs2 SEND\r\n\
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
Message-ID: 87652491\r\n\
Byte-Range: 1-25/25\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hey Bob, are you there?\r\n\
-------a786hjs2$\r\n";

pub(super) const RFC_OK: &str = "MSRP a786hjs2 200 OK\r\n\
To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
-------a786hjs2$\r\n";

pub(super) fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut d = Decoder::new(1 << 20);
    d.extend(bytes);
    let mut v = Vec::new();
    while let Some(f) = d.next_frame()? {
        v.push(f);
    }
    Ok(v)
}

#[test]
fn rfc_send_example_parses() {
    let f = decode_all(RFC_SEND.as_bytes()).unwrap();
    assert_eq!(f.len(), 1);
    let f = &f[0];
    assert_eq!(f.tid, "a786hjs2");
    assert_eq!(f.method(), Some("SEND"));
    assert_eq!(f.header("message-id"), Some("87652491"));
    // The RFC's own example says 1-25/25 for a 23-byte body (an erratum); we take the bytes.
    assert_eq!(f.body.as_deref(), Some(&b"Hey Bob, are you there?"[..]));
    assert_eq!(f.flag, Flag::End);
}

#[test]
fn rfc_response_parses_and_round_trips() {
    let f = decode_all(RFC_OK.as_bytes()).unwrap().remove(0);
    assert_eq!(f.start, StartLine::Response(200, Some("OK".into())));
    assert_eq!(f.body, None);
    assert_eq!(f.to_bytes(), RFC_OK.as_bytes());
}

#[test]
fn send_round_trips_byte_for_byte() {
    let f = decode_all(RFC_SEND.as_bytes()).unwrap().remove(0);
    assert_eq!(f.to_bytes(), RFC_SEND.as_bytes());
}

#[test]
fn partial_frame_is_not_an_error() {
    let mut d = Decoder::new(1 << 20);
    d.extend(&RFC_SEND.as_bytes()[..100]);
    assert_eq!(d.next_frame(), Ok(None));
    d.extend(&RFC_SEND.as_bytes()[100..]);
    assert!(d.next_frame().unwrap().is_some());
    assert_eq!(d.next_frame(), Ok(None));
}

#[test]
fn body_containing_a_foreign_end_line_is_kept() {
    let body = "x\r\n-------other$\r\ny";
    let f = Frame::request("abcd1234", "SEND")
        .with("To-Path", "msrp://a:1/s;tcp")
        .with("From-Path", "msrp://b:2/t;tcp")
        .with("Content-Type", "text/plain");
    let mut f = f;
    f.body = Some(bytes::Bytes::from(body));
    let back = decode_all(&f.to_bytes()).unwrap().remove(0);
    assert_eq!(back.body.as_deref(), Some(body.as_bytes()));
}

#[test]
fn interrupted_and_continued_flags_parse() {
    for (c, flag) in [('+', Flag::More), ('#', Flag::Abort), ('$', Flag::End)] {
        let raw = RFC_SEND.replace("a786hjs2$", &format!("a786hjs2{c}"));
        assert_eq!(decode_all(raw.as_bytes()).unwrap()[0].flag, flag);
    }
}

#[test]
fn empty_body_without_data_crlf_is_accepted() {
    let raw = "MSRP abcd1234 SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:2/t;tcp\r\nMessage-ID: m1234\r\nContent-Type: text/plain\r\n\r\n-------abcd1234$\r\n";
    let f = decode_all(raw.as_bytes()).unwrap().remove(0);
    assert_eq!(f.body.as_deref(), Some(&b""[..]));
}

#[test]
fn oversized_chunk_is_skipped_not_held() {
    let mut d = Decoder::new(1000);
    let mut f = Frame::request("big12345", "SEND").with("To-Path", "msrp://a:1/s;tcp");
    f.body = Some(bytes::Bytes::from(vec![b'a'; 50_000]));
    let wire = f.to_bytes();
    let mut held_max = 0;
    let mut got = None;
    for part in wire.chunks(4096) {
        d.extend(part);
        if let Some(fr) = d.next_frame().unwrap() {
            got = Some(fr);
        }
        held_max = held_max.max(d.buffered());
    }
    let got = got.expect("frame ends");
    assert!(got.oversized);
    assert!(held_max < 1000 + 8192, "held {held_max} bytes");
    // The stream stays in sync: a following frame parses.
    d.extend(RFC_OK.as_bytes());
    assert!(d.next_frame().unwrap().is_some());
}

#[test]
fn chat_22_oversized_chunk_in_one_read_is_oversized_too() {
    // fuzz/regressions/msrp/oversized-body-in-one-read (F12): the limit was only applied
    // while the body was still arriving, so a chunk read in one piece came through whole.
    let mut f = Frame::request("big12345", "SEND").with("To-Path", "msrp://a:1/s;tcp");
    f.body = Some(bytes::Bytes::from(vec![b'a'; 1001]));
    let wire = f.to_bytes();
    for split in [0, 500, wire.len() - 20, wire.len() - 3, wire.len()] {
        let mut d = Decoder::new(1000);
        d.extend(&wire[..split]);
        let mut got = d.next_frame().unwrap();
        d.extend(&wire[split..]);
        if got.is_none() {
            got = d.next_frame().unwrap();
        }
        let got = got.expect("frame ends");
        assert!(got.oversized, "split at {split}");
        assert_eq!(got.body.as_deref(), Some(&b""[..]), "split at {split}");
    }
    // Exactly at the limit is not oversized, however it is split.
    f.body = Some(bytes::Bytes::from(vec![b'a'; 1000]));
    let wire = f.to_bytes();
    for split in 0..=wire.len() {
        let mut d = Decoder::new(1000);
        d.extend(&wire[..split]);
        let mut got = d.next_frame().unwrap();
        d.extend(&wire[split..]);
        if got.is_none() {
            got = d.next_frame().unwrap();
        }
        assert!(!got.expect("frame ends").oversized, "split at {split}");
    }
}

/// The malformed-frame corpus: each is an error or a partial frame, never a panic, and the
/// fatal ones say why.
#[test]
fn malformed_corpus_never_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/msrp");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("tests/corpus/msrp") {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let r = decode_all(&bytes);
        if name.starts_with("bad-") {
            assert!(r.is_err(), "{name} should be refused, got {r:?}");
        }
        // Whatever parsed must also pass through a session without a panic.
        if let Ok(frames) = r {
            let mut s = session();
            for f in frames {
                s.handle_frame(Instant::now(), f);
            }
            while s.poll_output().is_some() {}
        }
        n += 1;
    }
    assert!(n >= 10, "corpus has {n} files");
}

#[test]
fn uri_rules() {
    let u = MsrpUri::parse("msrp://Gw.Example.com:7654/jshA7weztas;tcp").unwrap();
    assert_eq!(u.port, Some(7654));
    assert!(u.same(&MsrpUri::parse("MSRP://gw.example.com:7654/jshA7weztas;TCP").unwrap()));
    assert!(!u.same(&MsrpUri::parse("msrp://gw.example.com:7654/JSHA7weztas;tcp").unwrap()));
    assert!(
        MsrpUri::parse("msrp://gw.example.com:7654/x").is_none(),
        "transport required"
    );
    assert!(MsrpUri::parse("msrp://[::1]:99/x;tcp").is_some());
    assert!(MsrpUri::parse("msrp://h:99999/x;tcp").is_none());
    assert!(MsrpUri::parse("http://h:1/x;tcp").is_none());
    // CHAT-9: ours have an explicit port and >= 80 bits of randomness.
    let l = MsrpUri::local("gw.example.com", 2855);
    assert!(l.to_string().starts_with("msrp://gw.example.com:2855/"));
    assert!(l.session_id.as_ref().unwrap().len() * 5 >= 80);
    assert_ne!(
        l.session_id,
        MsrpUri::local("gw.example.com", 2855).session_id
    );
}

#[test]
fn byte_range_rules() {
    assert_eq!(
        ByteRange::parse("1-*/*"),
        Some(ByteRange {
            start: 1,
            end: None,
            total: None
        })
    );
    assert!(ByteRange::parse("0-5/5").is_none());
    assert!(ByteRange::parse("5-3/9").is_none());
    assert!(ByteRange::parse("1-9/5").is_none());
    assert!(ByteRange::parse("1-99999999999999999999999/5").is_none());
}

pub(super) fn me() -> MsrpUri {
    MsrpUri::parse("msrp://gw.example.com:7654/jshA7weztas;tcp").unwrap()
}

pub(super) fn peer() -> MsrpUri {
    MsrpUri::parse("msrp://ua.example.net:12763/kjhd37s2s20w2a;tcp").unwrap()
}

pub(super) fn session() -> Session {
    Session::new(
        me(),
        vec![peer()],
        Settings::default(),
        Budget::new(1 << 24),
    )
}

pub(super) fn drain(s: &mut Session) -> (Vec<Frame>, Vec<Event>) {
    let mut frames = Vec::new();
    let mut events = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            Output::Write(b) => frames.extend(decode_all(&b).unwrap()),
            Output::Event(e) => events.push(e),
        }
    }
    (frames, events)
}

pub(super) fn send_frame(tid: &str, mid: &str, range: &str, body: &[u8], flag: Flag) -> Frame {
    let mut f = Frame::request(tid, "SEND")
        .with("To-Path", me().to_string())
        .with("From-Path", peer().to_string())
        .with("Message-ID", mid)
        .with("Byte-Range", range)
        .with("Content-Type", "text/plain");
    f.body = Some(bytes::Bytes::copy_from_slice(body));
    f.flag = flag;
    f
}

/// CHAT-6: one SEND, octet Byte-Range, our path, a fresh Message-ID.
#[test]
fn outgoing_message_frame() {
    let mut s = session();
    let now = Instant::now();
    let mid = s.send(
        now,
        7,
        "text/plain",
        "Art thou not Romeo? ☺".as_bytes(),
        true,
    );
    let (frames, _) = drain(&mut s);
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f.header("To-Path"), Some(peer().to_string().as_str()));
    assert_eq!(f.header("From-Path"), Some(me().to_string().as_str()));
    assert_eq!(f.header("Message-ID"), Some(mid.as_str()));
    assert_eq!(
        f.header("Byte-Range"),
        Some("1-23/23"),
        "octets, not characters"
    );
    assert_eq!(f.header("Success-Report"), Some("yes"));
    // The 200 alone is not a delivery receipt; the REPORT is (CHAT-17).
    let ok = Frame::response(f.tid.clone(), 200, Some("OK"))
        .with("To-Path", me().to_string())
        .with("From-Path", peer().to_string());
    s.handle_frame(now, ok);
    assert_eq!(drain(&mut s).1, vec![Event::Sent(7)]);
    let report = Frame::request("rep12345", "REPORT")
        .with("To-Path", me().to_string())
        .with("From-Path", peer().to_string())
        .with("Message-ID", mid.clone())
        .with("Byte-Range", "1-23/23")
        .with("Status", "000 200 OK");
    s.handle_frame(now, report);
    let (frames, events) = drain(&mut s);
    assert!(frames.is_empty(), "a REPORT gets no response");
    assert_eq!(events, vec![Event::Delivered(7)]);
}

#[test]
fn large_message_is_chunked_and_failure_is_reported_once() {
    let mut s = session();
    let now = Instant::now();
    let body = vec![b'x'; 5000];
    s.send(now, 1, "text/plain", &body, false);
    let (frames, _) = drain(&mut s);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].header("Byte-Range"), Some("1-2048/5000"));
    assert_eq!(frames[2].header("Byte-Range"), Some("4097-5000/5000"));
    assert_eq!(frames[0].flag, Flag::More);
    assert_eq!(frames[2].flag, Flag::End);
    assert!(frames
        .iter()
        .all(|f| f.header("Content-Type") == Some("text/plain")));
    for f in &frames {
        s.handle_frame(now, Frame::response(f.tid.clone(), 413, None));
    }
    assert_eq!(
        drain(&mut s).1,
        vec![Event::Failed {
            token: 1,
            code: 413
        }]
    );
}

#[test]
fn transaction_timeout_is_408() {
    let mut s = session();
    let now = Instant::now();
    s.send(now, 3, "text/plain", b"hi", false);
    drain(&mut s);
    let t = s.poll_timeout().unwrap();
    assert_eq!(t, now + Duration::from_secs(30));
    s.handle_timeout(t);
    assert_eq!(
        drain(&mut s).1,
        vec![Event::Failed {
            token: 3,
            code: 408
        }]
    );
}

/// CHAT-20: chunks reassemble into one message; CHAT-7 takes the first tid.
#[test]
fn incoming_chunks_reassemble() {
    let mut s = session();
    let now = Instant::now();
    s.handle_frame(
        now,
        send_frame("tid00001", "m1234", "1-5/10", b"hello", Flag::More),
    );
    s.handle_frame(
        now,
        send_frame("tid00002", "m1234", "6-10/10", b"world", Flag::End),
    );
    let (frames, events) = drain(&mut s);
    assert_eq!(frames.len(), 2);
    assert!(frames
        .iter()
        .all(|f| f.start == StartLine::Response(200, Some("OK".into()))));
    // §7.2: the response goes to the previous hop.
    assert_eq!(
        frames[0].header("To-Path"),
        Some(peer().to_string().as_str())
    );
    match &events[..] {
        [Event::Message(m)] => {
            assert_eq!(m.body, b"helloworld");
            assert_eq!(m.tid, "tid00001");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.held(), 0);
}

#[test]
fn aborted_message_is_dropped() {
    let mut s = session();
    let now = Instant::now();
    s.handle_frame(
        now,
        send_frame("tid00001", "m1234", "1-5/10", b"hello", Flag::More),
    );
    s.handle_frame(
        now,
        send_frame("tid00002", "m1234", "6-10/10", b"wor", Flag::Abort),
    );
    let (_, events) = drain(&mut s);
    assert!(events.is_empty());
    assert_eq!(s.held(), 0);
    // A new message after the interruption goes through.
    s.handle_frame(
        now,
        send_frame("tid00003", "m5678", "1-2/2", b"ok", Flag::End),
    );
    assert_eq!(drain(&mut s).1.len(), 1);
}

/// CHAT-22 / C6: the first chunk that shows the size over the limit gets 413; later chunks
/// of the same message too; nothing is delivered.
#[test]
fn oversized_message_gets_413() {
    let mut s = session();
    let now = Instant::now();
    s.handle_frame(
        now,
        send_frame(
            "tid00001",
            "mbig1",
            "1-2048/300000",
            &[b'a'; 2048],
            Flag::More,
        ),
    );
    s.handle_frame(
        now,
        send_frame(
            "tid00002",
            "mbig1",
            "2049-4096/300000",
            &[b'a'; 2048],
            Flag::More,
        ),
    );
    let (frames, events) = drain(&mut s);
    assert!(events.is_empty());
    let codes: Vec<_> = frames.iter().map(|f| f.start.clone()).collect();
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, StartLine::Response(413, _))),
        "{codes:?}"
    );
    // Unknown total: refused when the running size passes the limit.
    let mut s = session();
    let mut start = 1;
    let mut last = None;
    while start < 70_000 {
        let f = send_frame(
            "tid00003",
            "mbig2",
            &format!("{start}-{}/*", start + 2047),
            &[b'b'; 2048],
            Flag::More,
        );
        s.handle_frame(now, f);
        last = drain(&mut s).0.pop();
        start += 2048;
    }
    assert!(matches!(last.unwrap().start, StartLine::Response(413, _)));
    assert_eq!(s.held(), 0);
}

/// §7.3: a SEND for another session gets 481; Failure-Report: no silences the 200.
#[test]
fn to_path_and_failure_report_rules() {
    let mut s = session();
    let now = Instant::now();
    let mut f = send_frame("tid00001", "m1234", "1-2/2", b"hi", Flag::End);
    f.headers[0].1 = "msrp://gw.example.com:7654/other;tcp".into();
    s.handle_frame(now, f);
    let (frames, events) = drain(&mut s);
    assert!(events.is_empty());
    assert!(matches!(frames[0].start, StartLine::Response(481, _)));
    let f = send_frame("tid00002", "m1235", "1-2/2", b"hi", Flag::End).with("Failure-Report", "no");
    s.handle_frame(now, f);
    let (frames, events) = drain(&mut s);
    assert!(frames.is_empty());
    assert_eq!(events.len(), 1);
}

#[test]
fn unacceptable_type_is_415_and_unknown_method_501() {
    let mut s = session();
    let now = Instant::now();
    let mut f = send_frame("tid00001", "m1234", "1-2/2", b"hi", Flag::End);
    f.headers.retain(|(n, _)| n != "Content-Type");
    f.headers.push(("Content-Type".into(), "image/png".into()));
    s.handle_frame(now, f);
    s.handle_frame(
        now,
        Frame::request("tid00002", "NICKNAME")
            .with("To-Path", me().to_string())
            .with("From-Path", peer().to_string()),
    );
    let codes: Vec<_> = drain(&mut s).0.into_iter().map(|f| f.start).collect();
    assert!(matches!(codes[0], StartLine::Response(415, _)));
    assert!(matches!(codes[1], StartLine::Response(501, _)));
}

/// CHAT-18: the XMPP receipt becomes a REPORT along the sender's From-Path.
#[test]
fn report_for_received_message() {
    let mut s = session();
    let now = Instant::now();
    let f =
        send_frame("tid00001", "m1234", "1-2/2", b"hi", Flag::End).with("Success-Report", "yes");
    s.handle_frame(now, f);
    let (_, events) = drain(&mut s);
    let Event::Message(m) = &events[0] else {
        panic!()
    };
    assert!(m.success_report);
    assert!(s.report_delivered("m1234"));
    let (frames, _) = drain(&mut s);
    let r = &frames[0];
    assert_eq!(r.method(), Some("REPORT"));
    assert_eq!(r.header("Status"), Some("000 200 OK"));
    assert_eq!(r.header("Byte-Range"), Some("1-2/2"));
    assert!(!s.report_delivered("m1234"), "only once");
}

#[test]
fn global_budget_bounds_all_sessions() {
    let budget = Budget::new(3000);
    let mut a = Session::new(me(), vec![peer()], Settings::default(), budget.clone());
    let mut b = Session::new(me(), vec![peer()], Settings::default(), budget.clone());
    let now = Instant::now();
    a.handle_frame(
        now,
        send_frame(
            "tid00001",
            "ma111",
            "1-2000/9000",
            &[b'a'; 2000],
            Flag::More,
        ),
    );
    b.handle_frame(
        now,
        send_frame(
            "tid00002",
            "mb111",
            "1-2000/9000",
            &[b'a'; 2000],
            Flag::More,
        ),
    );
    assert!(matches!(
        drain(&mut a).0[0].start,
        StartLine::Response(200, _)
    ));
    assert!(matches!(
        drain(&mut b).0[0].start,
        StartLine::Response(413, _)
    ));
    assert_eq!(budget.used(), 2000);
    drop(a);
    assert_eq!(budget.used(), 0);
}
