//! The MSRP codec and session (`stox::chat::msrp`, RFC 4975) on arbitrary bytes.
//!
//! Invariants: the decoder never panics and never errors on a prefix of what it later
//! accepts; feeding the bytes in two pieces (split at a point the input chooses) gives the
//! same frames and the same error as feeding them at once; every decoded frame re-encodes to
//! bytes that decode to the same frame; and every frame passes through a session without a
//! panic, with each transaction response it writes itself decodable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stox::chat::msrp::chunk::Budget;
use stox::chat::msrp::{Decoder, Frame, FrameError, MsrpUri, Output, Session, Settings};

fn decode(pieces: &[&[u8]], max: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut d = Decoder::new(max);
    let mut frames = Vec::new();
    for p in pieces {
        d.extend(p);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let (cut, body) = match data.split_first() {
        Some((c, rest)) => (*c as usize * rest.len() / 256, rest),
        None => return,
    };
    let max = 4096;
    let whole = decode(&[body], max);
    let split = decode(&[&body[..cut], &body[cut..]], max);
    assert_eq!(whole, split, "split at {cut} changed the result");
    for f in &whole.0 {
        if f.oversized {
            continue;
        }
        let again = decode(&[&f.to_bytes()], max);
        assert_eq!(again.1, None, "our encoding of {f:?} does not decode");
        assert_eq!(&again.0, &vec![f.clone()], "round trip changed the frame");
    }
    let me = MsrpUri::parse("msrp://gw.example.com:7654/jshA7weztas;tcp").unwrap();
    let peer = MsrpUri::parse("msrp://ua.example.net:12763/kjhd37s2s20w2a;tcp").unwrap();
    let settings = Settings {
        max_message: 2048,
        max_held: 4096,
        ..Settings::default()
    };
    let mut s = Session::new(me, vec![peer], settings, Budget::new(8192));
    let now = std::time::Instant::now();
    for f in whole.0 {
        s.handle_frame(now, f);
        while let Some(o) = s.poll_output() {
            if let Output::Write(b) = o {
                let (frames, err) = decode(&[&b], max);
                assert!(
                    err.is_none() && frames.len() == 1,
                    "the session wrote a bad frame"
                );
            }
        }
    }
    assert!(s.held() <= 4096, "the session holds more than its limit");
});
