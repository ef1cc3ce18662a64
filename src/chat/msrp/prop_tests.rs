//! Properties of the MSRP codec and session: frames split anywhere parse the same, chunked
//! equals unchunked, arbitrary bytes never panic the decoder.

use super::chunk::Budget;
use super::tests::{decode_all, drain, me, peer, send_frame, session, RFC_OK};
use super::*;
use proptest::prelude::*;
use std::time::Instant;

proptest! {
    /// Frames split at any byte boundaries parse to the same frames.
    #[test]
    fn split_anywhere_parses_the_same(body in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(0usize..800, 0..12)) {
        let mut f = send_frame("tid0abcd", "mid12345", "1-*/*", &body, Flag::End);
        f.headers[3].1 = format!("1-{}/{}", body.len(), body.len());
        let mut wire = f.to_bytes();
        wire.extend_from_slice(RFC_OK.as_bytes());
        let whole = decode_all(&wire).unwrap();
        let mut cuts = cuts;
        cuts.retain(|c| *c < wire.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut d = Decoder::new(1 << 20);
        let mut got = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([wire.len()]) {
            d.extend(&wire[prev..c]);
            prev = c;
            while let Some(fr) = d.next_frame().unwrap() {
                got.push(fr);
            }
        }
        prop_assert_eq!(got, whole);
    }

    /// A message sent in chunks of any size arrives as the unchunked message.
    #[test]
    fn chunked_equals_unchunked(body in proptest::collection::vec(any::<u8>(), 1..6000), chunk in 1usize..3000) {
        let settings = Settings { chunk_size: chunk, accept_types: vec!["*".into()], ..Settings::default() };
        let mut tx = Session::new(peer(), vec![me()], settings, Budget::new(1 << 24));
        let mut rx = session();
        let now = Instant::now();
        tx.send(now, 1, "text/plain", &body, false);
        // Run the two ends against each other over bytes until nothing moves.
        let (mut sent, mut got, mut tx_events) = (0, Vec::new(), Vec::new());
        loop {
            let (frames, ev) = drain(&mut tx);
            tx_events.extend(ev);
            if frames.is_empty() { break; }
            sent += frames.len();
            let mut wire = Vec::new();
            for f in &frames { wire.extend(f.to_bytes()); }
            for f in decode_all(&wire).unwrap() { rx.handle_frame(now, f); }
            let (responses, ev) = drain(&mut rx);
            got.extend(ev);
            for r in responses { tx.handle_frame(now, r); }
        }
        prop_assert_eq!(sent, body.len().div_ceil(chunk));
        prop_assert_eq!(got.len(), 1);
        let Event::Message(m) = &got[0] else { panic!() };
        prop_assert_eq!(&m.body, &body);
        prop_assert_eq!(tx_events, vec![Event::Sent(1)]);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut d = Decoder::new(100);
        d.extend(&data);
        while let Ok(Some(_)) = d.next_frame() {}
    }
}
