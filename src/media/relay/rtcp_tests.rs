//! The relay's reports toward the phone, byte by byte (RFC 3550 §6.4.1, §6.4.2, §6.5).

use super::*;
use crate::media::relay::ice::build_rtp;

const PHONE: u32 = 0x0ABC_DEF0;
const CLIENT: u32 = 0x1111_2222;

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn nothing_before_the_interval_then_an_rr_with_a_cname() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 0x5555_6666, 8000);
    assert_eq!(r.poll(t0 + Duration::from_secs(2), SystemTime::now()), None);
    let p = r.poll(t0 + INTERVAL / 2, SystemTime::now()).unwrap();
    // RR without report blocks (nothing received), then SDES CNAME "stox".
    assert_eq!(&p[..8], &[0x80, 201, 0, 1, 0x55, 0x55, 0x66, 0x66]);
    assert_eq!(
        &p[8..],
        &[0x81, 202, 0, 3, 0x55, 0x55, 0x66, 0x66, 1, 4, b's', b't', b'o', b'x', 0, 0]
    );
    assert_eq!(r.due(), t0 + INTERVAL / 2 + INTERVAL);
}

#[test]
fn a_sender_report_counts_what_went_and_reports_the_phones_loss() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 1, 8000);
    for i in 0..3u16 {
        let at = t0 + Duration::from_millis(20 * u64::from(i));
        r.sent(
            at,
            &build_rtp(false, 0, i, 160 * u32::from(i), CLIENT, &[0; 160]),
        );
    }
    // Phone: seq 100..=110 without 105, every 20 ms, timestamps in step (no jitter).
    for seq in (100u16..=110).filter(|s| *s != 105) {
        let n = u32::from(seq - 100);
        let at = t0 + Duration::from_millis(20 * u64::from(n));
        r.received(
            at,
            &build_rtp(false, 0, seq, 1000 + 160 * n, PHONE, &[0; 160]),
        );
    }
    let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let p = r.poll(t0 + INTERVAL, wall).unwrap();
    assert_eq!(&p[..4], &[0x81, 200, 0, 12], "SR with one block");
    assert_eq!(word(&p, 4), CLIENT);
    assert_eq!(word(&p, 8), 1_700_000_000 + 2_208_988_800, "NTP seconds");
    // RTP timestamp of the report's instant: the last packet's (320) plus 4.96 s at 8 kHz.
    assert_eq!(word(&p, 16), 320 + 39_680);
    assert_eq!((word(&p, 20), word(&p, 24)), (3, 480));
    let block = &p[28..52];
    assert_eq!(word(block, 0), PHONE);
    assert_eq!(block[4], 23, "fraction lost: 1 of 11, in 256ths");
    assert_eq!(word(block, 4) & 0xff_ffff, 1, "cumulative lost");
    assert_eq!(word(block, 8), 110, "extended highest sequence number");
    assert_eq!(word(block, 12), 0, "jitter");
    assert_eq!(
        (word(block, 16), word(block, 20)),
        (0, 0),
        "no SR from the phone"
    );
    assert_eq!(&p[52..54], &[0x81, 202]);
    // The next interval has no new loss.
    r.received(
        t0 + INTERVAL,
        &build_rtp(false, 0, 111, 1000 + 160 * 11, PHONE, &[0; 160]),
    );
    let p = r.poll(t0 + 2 * INTERVAL, wall).unwrap();
    assert_eq!(p[28 + 4], 0);
}

#[test]
fn the_sequence_rollover_extends_the_highest_number() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 1, 8000);
    for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
        let at = t0 + Duration::from_millis(20 * i as u64);
        r.received(
            at,
            &build_rtp(false, 0, seq, 160 * i as u32, PHONE, &[0; 20]),
        );
    }
    let p = r.poll(t0 + INTERVAL, SystemTime::now()).unwrap();
    assert_eq!(&p[..2], &[0x81, 201]);
    let block = &p[8..32];
    assert_eq!(word(block, 8), 65_537);
    assert_eq!(word(block, 4), 0, "nothing lost");
}

#[test]
fn the_phones_sender_report_gives_lsr_and_dlsr() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 1, 8000);
    r.received(t0, &build_rtp(false, 0, 1, 0, PHONE, &[0; 20]));
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&PHONE.to_be_bytes());
    sr.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    sr.extend_from_slice(&[0; 12]);
    r.received_rtcp(t0 + Duration::from_secs(4), &sr);
    // Not an SR, or too short: ignored.
    r.received_rtcp(t0 + Duration::from_secs(4), &sr[..20]);
    let p = r.poll(t0 + INTERVAL, SystemTime::now()).unwrap();
    let block = &p[8..32];
    assert_eq!(
        word(block, 16),
        0x3344_5566,
        "the middle 32 bits of its NTP time"
    );
    assert_eq!(word(block, 20), 65_536, "1 s in 1/65536 s");
}

#[test]
fn jitter_follows_appendix_a8() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 1, 8000);
    // Every other packet 10 ms late: transit alternates by 80 timestamp units.
    for i in 0..200u32 {
        let late = if i % 2 == 1 { 10 } else { 0 };
        let at = t0 + Duration::from_millis(20 * u64::from(i) + late);
        r.received(at, &build_rtp(false, 0, i as u16, 160 * i, PHONE, &[0; 20]));
    }
    let p = r.poll(t0 + INTERVAL, SystemTime::now()).unwrap();
    // J converges to 80 (each step's |D| is 80).
    let j = word(&p, 8 + 12);
    assert!((76..=80).contains(&j), "jitter {j}");
}

#[test]
fn garbage_is_ignored() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 7, 0);
    r.sent(t0, &[0x80, 200, 0, 1]);
    r.received(t0, &[1, 2, 3]);
    r.received_rtcp(t0, &[0xff; 40]);
    let p = r.poll(t0 + INTERVAL, SystemTime::now()).unwrap();
    assert_eq!(&p[..4], &[0x80, 201, 0, 1]);
}

/// Timestamps jumping across the whole 32-bit range, for long: no overflow, a bounded report.
#[test]
fn wild_timestamps_do_not_overflow_the_jitter() {
    let t0 = Instant::now();
    let mut r = Reporter::new(t0, 1, 48000);
    for i in 0..2000u32 {
        let ts = if i % 2 == 0 { 0 } else { u32::MAX };
        r.received(
            t0 + Duration::from_millis(u64::from(i)),
            &build_rtp(false, 0, i as u16, ts, PHONE, &[]),
        );
    }
    let p = r.poll(t0 + INTERVAL, SystemTime::now()).unwrap();
    assert!(
        word(&p, 8 + 12) <= u32::MAX >> 4,
        "jitter {}",
        word(&p, 8 + 12)
    );
}
