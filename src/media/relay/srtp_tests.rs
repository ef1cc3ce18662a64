//! The SRTP context against libsrtp's output for the same key and packets (known answers
//! made once with libsrtp 2 through pylibsrtp, the library aiortc and most phones use), and
//! the receive-side rules: tags, replays, rollover, MKI, the bounded SSRC table.

use super::*;

/// key || salt = 01 02 .. 1e.
fn key() -> MasterKey {
    let mut k = [0u8; 30];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    MasterKey(k)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RTP version 2, PCMU, timestamp 1000, SSRC 0x12345678, payload 00..13; with `csrc_ext`
/// two CSRCs and a one-word RFC 8285 extension.
fn rtp(seq: u16, csrc_ext: bool) -> Vec<u8> {
    let mut p = vec![if csrc_ext { 0x92 } else { 0x80 }, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1000u32.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    if csrc_ext {
        p.extend_from_slice(&hex("abc00000abc00001bede000110aa0000"));
    }
    p.extend(0..20u8);
    p
}

/// libsrtp's SRTP for seq 65534, 65535, 0, 1 (the rollover: ROC 1 from seq 0) and seq 2 with
/// CSRCs and an extension, AES_CM_128_HMAC_SHA1_80.
const LIBSRTP_80: [&str; 5] = [
    "8000fffe000003e81234567889f444c110d051e48e2475ef0ddfd574b48414c4bdc59195d43939fd1583",
    "8000ffff000003e8123456783806deb8030eff06c1039534708903c316beaf69765a2f0bc956f666ea5d",
    "80000000000003e812345678baed86994538fbcebc067d957f2e50d0445ae54e5658ea97ad9feb43c5cd",
    "80000001000003e81234567856a04523b2e9417f58e81679a0719bb152bceb4555139a34e42304342414",
    "92000002000003e812345678abc00000abc00001bede000110aa00007361de506125a38197fbdfd7bec6d70a2f888578ea79277d98255f9146e0",
];

fn plain_packets() -> Vec<Vec<u8>> {
    vec![
        rtp(65534, false),
        rtp(65535, false),
        rtp(0, false),
        rtp(1, false),
        rtp(2, true),
    ]
}

#[test]
fn protect_matches_libsrtp_80_across_the_rollover() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_80, 0);
    for (p, want) in plain_packets().iter().zip(LIBSRTP_80) {
        assert_eq!(tx.protect(p).unwrap(), hex(want));
    }
}

#[test]
fn protect_matches_libsrtp_32() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_32, 0);
    for (p, want) in plain_packets().iter().zip(LIBSRTP_80) {
        // The _32 suite is the same packet with the tag's first 4 bytes (libsrtp agrees).
        let want = hex(want);
        assert_eq!(tx.protect(p).unwrap(), want[..want.len() - 6]);
    }
}

#[test]
fn unprotect_reads_libsrtp_packets() {
    let mut rx = Srtp::new(&key(), Suite::Sha1_80, 0);
    for (p, srtp) in plain_packets().iter().zip(LIBSRTP_80) {
        assert_eq!(rx.unprotect(&hex(srtp)).unwrap(), *p);
    }
}

#[test]
fn a_replayed_or_too_old_packet_is_refused() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let mut rx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let first = tx.protect(&rtp(10, false)).unwrap();
    assert!(rx.unprotect(&first).is_ok());
    assert_eq!(rx.unprotect(&first), Err(SrtpError::Replay));
    // 100 packets later, seq 10's neighbours are out of the 64-packet window.
    let late = tx.protect(&rtp(11, false)).unwrap();
    for seq in 12..112 {
        rx.unprotect(&tx.protect(&rtp(seq, false)).unwrap())
            .unwrap();
    }
    assert_eq!(rx.unprotect(&late), Err(SrtpError::Replay));
}

#[test]
fn a_reordered_packet_within_the_window_is_taken_once() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let mut rx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let a = tx.protect(&rtp(5, false)).unwrap();
    let b = tx.protect(&rtp(6, false)).unwrap();
    let c = tx.protect(&rtp(7, false)).unwrap();
    rx.unprotect(&a).unwrap();
    rx.unprotect(&c).unwrap();
    assert_eq!(rx.unprotect(&b).unwrap(), rtp(6, false));
    assert_eq!(rx.unprotect(&b), Err(SrtpError::Replay));
}

#[test]
fn a_forged_or_truncated_packet_is_refused_and_changes_nothing() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let mut rx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let good = tx.protect(&rtp(300, false)).unwrap();
    let mut bad = good.clone();
    bad[15] ^= 1;
    assert_eq!(rx.unprotect(&bad), Err(SrtpError::Auth));
    // Under another key: the tag fails too.
    let mut other = Srtp::new(&MasterKey([7; 30]), Suite::Sha1_80, 0);
    assert_eq!(other.unprotect(&good), Err(SrtpError::Auth));
    for n in [0, 5, 12, 21] {
        assert_eq!(
            rx.unprotect(&good[..n]),
            Err(SrtpError::Malformed),
            "{n} bytes"
        );
    }
    // The forgeries took no place in the table: the real packet is still new.
    assert_eq!(rx.unprotect(&good).unwrap(), rtp(300, false));
}

#[test]
fn the_mki_before_the_tag_is_skipped() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let mut rx = Srtp::new(&key(), Suite::Sha1_80, 4);
    let p = tx.protect(&rtp(1, false)).unwrap();
    let (body, tag) = p.split_at(p.len() - 10);
    let with_mki = [body, &[0, 0, 0, 1], tag].concat();
    assert_eq!(rx.unprotect(&with_mki).unwrap(), rtp(1, false));
}

#[test]
fn many_ssrcs_keep_the_table_bounded() {
    let mut tx = Srtp::new(&key(), Suite::Sha1_80, 0);
    let mut rx = Srtp::new(&key(), Suite::Sha1_80, 0);
    for ssrc in 0..100u32 {
        let mut p = rtp(1, false);
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        rx.unprotect(&tx.protect(&p).unwrap()).unwrap();
    }
    assert_eq!(tx.streams.len(), MAX_STREAMS);
    assert_eq!(rx.streams.len(), MAX_STREAMS);
}

#[test]
fn index_estimation_follows_rfc_3711_appendix_a() {
    assert_eq!(estimate(0, 100, 101), Some(101));
    assert_eq!(estimate(0, 65535, 3), Some(0x1_0003));
    assert_eq!(estimate(1, 2, 65533), Some(65533));
    // Before the first packet of the stream: no index.
    assert_eq!(estimate(0, 2, 65533), None);
}

#[test]
fn sdes_lines_are_read_or_passed_over() {
    let params = key().key_params();
    let k = sdes_key(1, "AES_CM_128_HMAC_SHA1_80", &params, None).unwrap();
    assert_eq!((k.tag, k.suite, k.mki_len), (1, Suite::Sha1_80, 0));
    assert_eq!(k.key, key());
    let with = format!("{params}|2^20|1:4");
    let k = sdes_key(2, "AES_CM_128_HMAC_SHA1_32", &with, None).unwrap();
    assert_eq!((k.suite, k.mki_len), (Suite::Sha1_32, 4));
    assert_eq!(k.key, key());
    for (suite, p, session) in [
        ("AEAD_AES_256_GCM", params.as_str(), None),
        ("AES_CM_128_HMAC_SHA1_80", "inline:AAAA", None),
        ("AES_CM_128_HMAC_SHA1_80", "uri:x", None),
        ("AES_CM_128_HMAC_SHA1_80", "inline:!!!", None),
        (
            "AES_CM_128_HMAC_SHA1_80",
            params.as_str(),
            Some("UNENCRYPTED_SRTP"),
        ),
        ("AES_CM_128_HMAC_SHA1_80", &format!("{params}|1:0"), None),
    ] {
        assert_eq!(
            sdes_key(1, suite, p, session),
            None,
            "{suite} {p} {session:?}"
        );
    }
    assert_eq!(format!("{:?}", key()), "MasterKey(..)");
}

/// libsrtp's SRTCP of the same RR twice (indexes 1 and 2) under the test key.
#[test]
fn srtcp_matches_libsrtp() {
    let rr = hex("81c9000712345678deadbeef0100000200010005000000070000000000000000");
    let mut tx = Srtcp::new(&key());
    assert_eq!(
        tx.protect(&rr).unwrap(),
        hex("81c9000712345678961f39c5cb0e8f5453b4e9af4f79f511646ce64161df758880000001d6bc06d277c52e87b383")
    );
    assert_eq!(
        tx.protect(&rr).unwrap(),
        hex("81c9000712345678ad6d14ed1810da36a74b302fd07f8cde243ca11fd92b10db80000002e41f43f3cb0c4a9ec080")
    );
    assert_eq!(tx.protect(&rr[..7]), Err(SrtpError::Malformed));
}

/// libsrtp's two SRTCP packets above, received: the RR comes back; a replay, a flipped bit
/// and a truncated packet do not; an unencrypted one (E = 0) and an MKI are read.
#[test]
fn srtcp_from_libsrtp_is_received() {
    let rr = hex("81c9000712345678deadbeef0100000200010005000000070000000000000000");
    let one = hex("81c9000712345678961f39c5cb0e8f5453b4e9af4f79f511646ce64161df758880000001d6bc06d277c52e87b383");
    let two = hex("81c9000712345678ad6d14ed1810da36a74b302fd07f8cde243ca11fd92b10db80000002e41f43f3cb0c4a9ec080");
    let mut rx = Srtcp::receiver(&key(), 0);
    assert_eq!(rx.unprotect(&two).unwrap(), rr);
    assert_eq!(
        rx.unprotect(&one).unwrap(),
        rr,
        "an older index inside the window"
    );
    assert_eq!(rx.unprotect(&one), Err(SrtpError::Replay));
    assert_eq!(rx.unprotect(&two), Err(SrtpError::Replay));
    let mut forged = two.clone();
    forged[10] ^= 1;
    assert_eq!(
        Srtcp::receiver(&key(), 0).unprotect(&forged),
        Err(SrtpError::Auth)
    );
    for n in 0..21 {
        assert_eq!(
            Srtcp::receiver(&key(), 0).unprotect(&two[..n]),
            Err(SrtpError::Malformed),
            "{n} bytes"
        );
    }
    // What our own sender makes, with E = 0 (unencrypted) and with a 4-byte MKI spliced in
    // before the tag (the tag does not cover it).
    let mut tx = Srtcp::new(&key());
    let mut sent = tx.protect(&rr).unwrap();
    let mut with_mki = sent.clone();
    with_mki.splice(sent.len() - 10..sent.len() - 10, [0, 0, 0, 1]);
    assert_eq!(Srtcp::receiver(&key(), 4).unprotect(&with_mki).unwrap(), rr);
    let at = sent.len() - 14;
    sent[at] &= 0x7f;
    let plain_at = rr.len();
    sent[8..plain_at].copy_from_slice(&rr[8..]);
    let tag = provider()
        .sha1_hmac_provider
        .sha1_hmac(&tx.auth, &[&sent[..plain_at + 4]]);
    sent[plain_at + 4..].copy_from_slice(&tag[..10]);
    assert_eq!(Srtcp::receiver(&key(), 0).unprotect(&sent).unwrap(), rr);
}
