//! Multi-user chat benchmark: SIP users in an XMPP MUC room (RFC 7702 §6). Issue: "a
//! benchmark reports message fan-out latency and memory for a room of 500 occupants with 50
//! SIP participants". Not a test: it prints figures to compare between builds.
//!
//!     cargo bench --bench muc                                  # 500 occupants, 50 of them SIP
//!     STOX_BENCH_MSGS=1000 STOX_BENCH_WINDOW=32 cargo bench --bench muc
//!     STOX_BENCH_OCCUPANTS=200 STOX_BENCH_SIP=20 cargo bench --bench muc
//!
//! The release `stox` binary runs as its own process. This process plays the XMPP server
//! (the fake XEP-0114 server of the tests) and, on that stream, the MUC service
//! `conference.bench` with the room `room@conference.bench`: OCCUPANTS - SIP simulated XMPP
//! occupants plus the SIP participants.
//!
//! Each SIP participant is a task here with one SIP connection over TCP (the full roster of a
//! 500-occupant room is a NOTIFY of about 200 KB, far over what UDP carries) and one MSRP
//! connection. It INVITEs `sip:room@conference.bench` with an MSRP offer (`message/cpim`,
//! `a=chatroom`); stox sends the occupant's join presence; the fake MUC answers, as XEP-0045
//! §7.2.3 orders it, with the new occupant's presence to the occupants already there, every
//! occupant's presence to the newcomer, its self-presence (status 110) and the subject; stox
//! answers the INVITE 200; the participant ACKs, connects to the gateway's `a=path`, sends a
//! bodiless SEND and SUBSCRIBEs to the conference package in the dialog (the first NOTIFY is
//! the full roster; later ones are answered 200 and counted). Participants join one at a time.
//!
//! Measured:
//! - **fan-out**: for each room message the fake MUC writes one groupchat `<message/>` per
//!   SIP occupant (one TCP write for all of them), as a MUC does; latency runs from that write
//!   to each participant's reading of the MSRP SEND, per delivery. Two runs: one room message
//!   at a time (the latency without queueing), then WINDOW room messages in flight (the rate).
//! - **SIP -> room**: a participant's CPIM SEND to the room until the groupchat stanza
//!   reaches the fake server, one at a time.
//! - **join**: INVITE -> 200 per participant, and the roster size of its first NOTIFY
//!   against the room's (a membership's router queue holds 256 stanzas; a join burst larger
//!   than that may lose presences: the `muc_member_queue` limit counter of the metrics
//!   endpoint says how many).
//! - **memory**: stox's RSS and glibc's in-use heap (gdb), idle, with the memberships, after
//!   the fan-out and after STOX_BENCH_SETTLE_SECS (ezk's INVITE transactions gone).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it is a quick smoke run: a room
//! of 23 with 3 SIP participants and a few messages, failing when anything is refused or lost.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

// The shared helpers: this benchmark starts stox with `start_stox_on` only.
#[allow(dead_code)]
mod common;
use common::{in_use, kib, rss_kib, Gw};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stox::chat::msrp::{Decoder, Flag, Frame, MsrpUri};
use support::sip::{request, token, uri_of, SipMsg};
use support::xmpp::{Ev, FakeServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use tokio_xmpp::minidom::Element;

const SECRET: &str = "bench-secret";
const SERVICE: &str = "conference.bench";
const ROOM: &str = "room@conference.bench";
const ROOM_URI: &str = "sip:room@conference.bench";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// How long one step may take before the benchmark says what is missing and moves on.
const STEP: Duration = Duration::from_secs(15);
/// How long a fan-out run waits for the next delivery before it counts the rest as lost.
const STALL: Duration = Duration::from_secs(3);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Params {
    /// Occupants of the room, SIP participants included.
    occupants: usize,
    /// SIP participants.
    sip: usize,
    /// Room messages per fan-out run.
    msgs: usize,
    /// Room messages in flight in the rate run.
    window: usize,
    /// Messages SIP -> room.
    reverse: usize,
    /// Room messages written at once in the burst run (0: no burst run).
    burst: usize,
    /// Wait before the last memory reading.
    settle: Duration,
    /// Panic at the end if anything was lost or refused (the smoke run under `cargo test`).
    strict: bool,
}

// ------------------------------------------------------------------------------------ SIP side

/// A message MSRP brought to a participant: room message `seq`, read at `at`.
struct Delivery {
    seq: usize,
    at: Instant,
}

/// Counters of all participants.
#[derive(Default)]
struct Stats {
    notifies: AtomicUsize,
    notify_bytes: AtomicUsize,
    byes: AtomicUsize,
    msrp_errors: AtomicUsize,
}

/// A participant in the room.
struct Joined {
    join_time: Duration,
    /// Users in the first (full) NOTIFY.
    roster: Option<usize>,
    /// SUBSCRIBE written -> its 200 read.
    sub_time: Duration,
    /// SUBSCRIBE written -> first NOTIFY read.
    roster_time: Option<Duration>,
    msrp: Arc<Mutex<OwnedWriteHalf>>,
    ours: MsrpUri,
    theirs: MsrpUri,
    /// The SIP connection's writer: kept so the connection stays open.
    _sip: Arc<Mutex<OwnedWriteHalf>>,
}

/// A request over our TCP connection (Via added).
#[allow(clippy::too_many_arguments)]
fn sip_request(
    method: &str,
    ruri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    local: SocketAddr,
    extra: &[(&str, &str)],
    body: &[u8],
) -> SipMsg {
    let cseq = format!("{cseq} {method}");
    let mut headers: Vec<(&str, &str)> = vec![("Call-ID", call_id), ("CSeq", &cseq)];
    headers.extend_from_slice(extra);
    let mut m = request(method, ruri, from, to, &headers, body);
    let via = format!("SIP/2.0/TCP {local};branch=z9hG4bK{}", token());
    m.headers.insert(0, ("Via".into(), via));
    m
}

/// Read the SIP connection: requests (NOTIFY, BYE) are answered 200 here and handed to
/// `requests`; responses go to `responses`.
async fn sip_reader(
    mut rd: OwnedReadHalf,
    w: Arc<Mutex<OwnedWriteHalf>>,
    responses: mpsc::UnboundedSender<SipMsg>,
    requests: mpsc::UnboundedSender<SipMsg>,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        while let Some(m) = SipMsg::take_from_stream(&mut buf) {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("muc bench: unparsable SIP from stox: {e}");
                    return;
                }
            };
            if m.method().is_some() {
                if m.method() != Some("ACK") {
                    out.extend(m.response(200, "OK", &[]).to_bytes());
                }
                let _ = requests.send(m);
            } else {
                let _ = responses.send(m);
            }
        }
        if !out.is_empty() && w.lock().await.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn final_response(rx: &mut mpsc::UnboundedReceiver<SipMsg>, method: &str) -> SipMsg {
    loop {
        let m = tokio::time::timeout(STEP, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no final response to {method} within {STEP:?}"))
            .expect("SIP connection closed");
        let ours = m
            .header("cseq")
            .is_some_and(|c| c.split_whitespace().nth(1) == Some(method));
        if ours && m.code().is_some_and(|c| c >= 200) {
            return m;
        }
    }
}

/// Read the MSRP connection: SENDs are answered 200 and the room messages among them
/// (body `fan:N ...`) reported; responses (to our SENDs) are dropped.
async fn msrp_reader(
    mut rd: OwnedReadHalf,
    w: Arc<Mutex<OwnedWriteHalf>>,
    ours: MsrpUri,
    deliveries: mpsc::UnboundedSender<Delivery>,
    stats: Arc<Stats>,
) {
    let mut d = Decoder::new(1 << 20);
    let mut buf = vec![0u8; 65536];
    let from_path = ours.to_string();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = Instant::now();
        d.extend(&buf[..n]);
        let mut out = Vec::new();
        loop {
            let f = match d.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("muc bench: bad MSRP from stox: {e}");
                    return;
                }
            };
            if f.method() != Some("SEND") {
                if let stox::chat::msrp::StartLine::Response(code, _) = f.start {
                    if code != 200 {
                        stats.msrp_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
            if f.header("Failure-Report") != Some("no") {
                let resp = Frame::response(f.tid.clone(), 200, Some("OK"))
                    .with("To-Path", f.header("From-Path").unwrap_or_default())
                    .with("From-Path", from_path.clone());
                resp.encode(&mut out);
            }
            let seq = f.body.as_ref().and_then(|b| {
                let i = b.windows(4).position(|w| w == b"fan:")?;
                let digits: String = b[i + 4..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .map(|&c| c as char)
                    .collect();
                digits.parse().ok()
            });
            if let Some(seq) = seq {
                let _ = deliveries.send(Delivery { seq, at });
            }
        }
        if !out.is_empty() && w.lock().await.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn msrp_send(ours: &MsrpUri, theirs: &MsrpUri, tid: &str, ct: &str, body: &[u8]) -> Vec<u8> {
    let mut f = Frame::request(tid, "SEND")
        .with("To-Path", theirs.to_string())
        .with("From-Path", ours.to_string())
        .with("Message-ID", format!("m{tid}"));
    if body.is_empty() {
        f = f.with("Byte-Range", "1-0/0");
    } else {
        f = f
            .with("Byte-Range", format!("1-{}/{}", body.len(), body.len()))
            .with("Content-Type", ct);
        f.body = Some(bytes::Bytes::copy_from_slice(body));
    }
    f.flag = Flag::End;
    f.to_bytes()
}

/// Participant `k`: join the room through stox, connect MSRP, subscribe to the roster.
async fn participant(
    k: usize,
    gw: SocketAddr,
    deliveries: mpsc::UnboundedSender<Delivery>,
    stats: Arc<Stats>,
) -> Result<Joined, String> {
    let stream = TcpStream::connect(gw)
        .await
        .map_err(|e| format!("SIP connect: {e}"))?;
    stream.set_nodelay(true).unwrap();
    let local = stream.local_addr().unwrap();
    let (rd, w) = stream.into_split();
    let w = Arc::new(Mutex::new(w));
    let (resp_tx, mut resp_rx) = mpsc::unbounded_channel();
    let (req_tx, mut req_rx) = mpsc::unbounded_channel();
    tokio::spawn(sip_reader(rd, w.clone(), resp_tx, req_tx));

    let ours = MsrpUri::local("127.0.0.1", local.port());
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message {} TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
         a=accept-wrapped-types:text/plain\r\na=path:{ours}\r\n\
         a=chatroom:nickname private-messages\r\n",
        local.port()
    );
    let from = format!("\"sip{k}\" <sip:user{k}@example.net>;tag={}", token());
    let contact = format!("<sip:user{k}@{local};transport=tcp>");
    let call_id = format!("{}@bench", token());
    let invite = sip_request(
        "INVITE",
        ROOM_URI,
        &from,
        &format!("<{ROOM_URI}>"),
        &call_id,
        1,
        local,
        &[("Contact", &contact), ("Content-Type", "application/sdp")],
        sdp.as_bytes(),
    );
    let t0 = Instant::now();
    w.lock().await.write_all(&invite.to_bytes()).await.unwrap();
    let resp = final_response(&mut resp_rx, "INVITE").await;
    let join_time = t0.elapsed();
    if resp.code() != Some(200) {
        // RFC 3261 §17.1.1.3: the ACK of a non-2xx goes in the INVITE's transaction.
        let ack = support::sip::ack_for(&invite, &resp);
        let _ = w.lock().await.write_all(&ack.to_bytes()).await;
        return Err(format!("INVITE answered {}", resp.start));
    }
    let to = resp.header("to").unwrap_or_default().to_string();
    let target = uri_of(resp.header("contact").unwrap_or(ROOM_URI));
    // RFC 3261 §13.2.2.4: the ACK of a 2xx is a transaction of its own, to the Contact.
    let ack = sip_request("ACK", &target, &from, &to, &call_id, 1, local, &[], b"");
    w.lock().await.write_all(&ack.to_bytes()).await.unwrap();

    let answer = stox::chat::sdp::parse(&resp.body).map_err(|e| format!("SDP answer: {e:?}"))?;
    let theirs = answer.path.last().cloned().ok_or("no a=path")?;
    let ms = TcpStream::connect(theirs.authority())
        .await
        .map_err(|e| format!("MSRP connect: {e}"))?;
    ms.set_nodelay(true).unwrap();
    let (mrd, mw) = ms.into_split();
    let mw = Arc::new(Mutex::new(mw));
    tokio::spawn(msrp_reader(
        mrd,
        mw.clone(),
        ours.clone(),
        deliveries,
        stats.clone(),
    ));
    let bodiless = msrp_send(&ours, &theirs, &format!("bodiless{k:06}"), "", b"");
    mw.lock().await.write_all(&bodiless).await.unwrap();

    // RFC 7702 §6.2: the roster, in the INVITE dialog.
    let sub = sip_request(
        "SUBSCRIBE",
        &target,
        &from,
        &to,
        &call_id,
        2,
        local,
        &[
            ("Contact", &contact),
            ("Event", "conference"),
            ("Expires", "3600"),
            ("Accept", "application/conference-info+xml"),
        ],
        b"",
    );
    let t1 = Instant::now();
    w.lock().await.write_all(&sub.to_bytes()).await.unwrap();
    let sub_resp = final_response(&mut resp_rx, "SUBSCRIBE").await;
    let sub_time = t1.elapsed();
    if sub_resp.code() != Some(200) {
        return Err(format!("SUBSCRIBE answered {}", sub_resp.start));
    }
    let mut roster = None;
    let mut roster_time = None;
    let deadline = tokio::time::Instant::now() + STEP;
    while roster.is_none() {
        let Ok(Some(req)) = tokio::time::timeout_at(deadline, req_rx.recv()).await else {
            break;
        };
        count(&stats, &req);
        if req.method() == Some("NOTIFY") {
            let body = String::from_utf8_lossy(&req.body);
            roster = Some(body.matches("<user ").count());
            roster_time = Some(t1.elapsed());
        }
    }
    // Later NOTIFYs (partial rosters as others join) and a BYE, if any: counted.
    let s = stats.clone();
    tokio::spawn(async move {
        while let Some(req) = req_rx.recv().await {
            count(&s, &req);
        }
    });
    Ok(Joined {
        join_time,
        roster,
        sub_time,
        roster_time,
        msrp: mw,
        ours,
        theirs,
        _sip: w,
    })
}

fn count(stats: &Stats, req: &SipMsg) {
    match req.method() {
        Some("NOTIFY") => {
            stats.notifies.fetch_add(1, Ordering::Relaxed);
            stats
                .notify_bytes
                .fetch_add(req.body.len(), Ordering::Relaxed);
        }
        Some("BYE") => {
            stats.byes.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

// ------------------------------------------------------------------------------ the fake MUC

/// The MUC service: the room's SIP occupants (their nickname and occupant JID) and the
/// arrival of groupchat messages the SIP side sent (body `rev:N`).
struct Muc {
    xmpp_occupants: usize,
    sip: Vec<(String, String)>,
    rev_arrived: Vec<Option<Instant>>,
    /// Stanzas of the join bursts.
    join_stanzas: usize,
    /// Occupants the last newcomer was shown, itself included.
    last_burst_room: usize,
}

fn occupant_presence(nick: &str, to: &str, self_jid: Option<&str>) -> String {
    match self_jid {
        None => format!(
            "<presence from='{ROOM}/{nick}' to='{to}'><x xmlns='{NS_MUC_USER}'>\
             <item affiliation='none' role='participant'/></x></presence>"
        ),
        Some(jid) => format!(
            "<presence from='{ROOM}/{nick}' to='{to}'><x xmlns='{NS_MUC_USER}'>\
             <item affiliation='none' role='participant' jid='{jid}'/>\
             <status code='110'/></x></presence>"
        ),
    }
}

impl Muc {
    fn on_stanza(&mut self, xmpp: &FakeServer, el: &Element) {
        let from = el.attr("from").unwrap_or_default().to_string();
        let to = el.attr("to").unwrap_or_default();
        match el.name() {
            "presence" => {
                let Some(nick) = to.strip_prefix(ROOM).and_then(|r| r.strip_prefix('/')) else {
                    return;
                };
                if el.attr("type") == Some("unavailable") {
                    self.sip.retain(|(_, j)| *j != from);
                    return;
                }
                if self.sip.iter().any(|(_, j)| *j == from) {
                    return;
                }
                // XEP-0045 §7.2.3: the newcomer's presence to the occupants already there,
                // then every occupant's to the newcomer, its own last (status 110), then
                // the subject (§7.2.15).
                let mut out = String::new();
                let mut n = 0;
                for (_, jid) in &self.sip {
                    out.push_str(&occupant_presence(nick, jid, None));
                    n += 1;
                }
                for i in 0..self.xmpp_occupants {
                    out.push_str(&occupant_presence(&format!("occ{i}"), &from, None));
                    n += 1;
                }
                for (other, _) in &self.sip {
                    out.push_str(&occupant_presence(other, &from, None));
                    n += 1;
                }
                out.push_str(&occupant_presence(nick, &from, Some(&from)));
                out.push_str(&format!(
                    "<message type='groupchat' from='{ROOM}/occ0' to='{from}'>\
                     <subject>fan-out benchmark</subject></message>"
                ));
                self.join_stanzas += n + 2;
                self.last_burst_room = self.xmpp_occupants + self.sip.len() + 1;
                xmpp.send(&out);
                self.sip.push((nick.to_string(), from));
            }
            "message" if el.attr("type") == Some("groupchat") && to == ROOM => {
                let body = el
                    .get_child("body", "jabber:component:accept")
                    .map(|b| b.text())
                    .unwrap_or_default();
                if let Some(i) = body
                    .strip_prefix("rev:")
                    .and_then(|v| v.split(' ').next()?.parse::<usize>().ok())
                {
                    if let Some(slot) = self.rev_arrived.get_mut(i) {
                        slot.get_or_insert_with(Instant::now);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Serve the MUC until `fut` completes.
async fn serve_until<F: std::future::Future>(
    xmpp: &mut FakeServer,
    muc: &mut Muc,
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    loop {
        let ev = tokio::select! {
            out = &mut fut => return out,
            ev = xmpp.try_wait_for(Duration::from_secs(3600), |e| matches!(e, Ev::Stanza { .. })) => ev,
        };
        if let Some(Ev::Stanza { el, .. }) = ev {
            muc.on_stanza(xmpp, &el);
        }
        xmpp.seen.clear();
    }
}

// ------------------------------------------------------------------------------ measurements

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// CPU time (user + system) of process `pid` so far, in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(&v, 0.5)),
        ms(pct(&v, 0.9)),
        ms(pct(&v, 0.99)),
        ms(v.last().copied().unwrap_or_default())
    )
}

/// A counter of stox's metrics endpoint (0 when it has not been touched yet).
async fn metric(port: u16, name: &str) -> u64 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return 0;
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

struct FanOut {
    msgs: usize,
    deliveries: usize,
    expected: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
    /// stox's CPU time during the run, clock ticks.
    cpu: u64,
}

/// `msgs` room messages (numbered from `base`), at most `window` of them not yet delivered
/// to every SIP occupant.
async fn fan_out(
    xmpp: &mut FakeServer,
    muc: &mut Muc,
    rx: &mut mpsc::UnboundedReceiver<Delivery>,
    base: usize,
    msgs: usize,
    window: usize,
    pid: u32,
) -> FanOut {
    let targets: Vec<String> = muc.sip.iter().map(|(_, j)| j.clone()).collect();
    let per = targets.len();
    let pad = "x".repeat(80);
    let mut sent_at: Vec<Option<Instant>> = vec![None; msgs];
    let mut got = vec![0usize; msgs];
    let mut lat = Vec::with_capacity(msgs * per);
    let (mut next, mut complete, mut delivered) = (0, 0, 0);
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut last = t0;
    while complete < msgs {
        while next < msgs && next - complete < window {
            let seq = base + next;
            let from = format!("{ROOM}/occ{}", next % muc.xmpp_occupants.max(1));
            let mut out = String::with_capacity(per * 300);
            for to in &targets {
                out.push_str(&format!(
                    "<message type='groupchat' from='{from}' to='{to}' id='f{seq}'>\
                     <body>fan:{seq} {pad}</body></message>"
                ));
            }
            sent_at[next] = Some(Instant::now());
            xmpp.send(&out);
            next += 1;
        }
        let d = serve_until(xmpp, muc, tokio::time::timeout(STALL, rx.recv())).await;
        let Ok(Some(d)) = d else {
            println!(
                "  !! fan-out: nothing more for {} s: {delivered} of {} deliveries, {complete} of {msgs} room messages complete",
                STALL.as_secs(),
                msgs * per,
            );
            break;
        };
        let Some(i) = d.seq.checked_sub(base).filter(|&i| i < msgs) else {
            continue;
        };
        let Some(at) = sent_at[i] else { continue };
        lat.push(d.at.duration_since(at));
        last = last.max(d.at);
        delivered += 1;
        got[i] += 1;
        if got[i] == per {
            complete += 1;
        }
    }
    FanOut {
        msgs: complete,
        deliveries: delivered,
        expected: msgs * per,
        elapsed: last.duration_since(t0),
        lat,
        cpu: cpu_ticks(pid) - cpu0,
    }
}

fn print_fan_out(label: &str, f: &FanOut) {
    println!(
        "  {label}: {} room messages complete, {} of {} MSRP SENDs in {:.2} s (to the last) = {:.0} room msgs/s, {:.0} deliveries/s",
        f.msgs,
        f.deliveries,
        f.expected,
        f.elapsed.as_secs_f64(),
        f.msgs as f64 / f.elapsed.as_secs_f64(),
        f.deliveries as f64 / f.elapsed.as_secs_f64()
    );
    println!(
        "      stanza written -> SEND read: {}; stox CPU {:.1} us per delivery",
        quantiles(f.lat.clone()),
        f.cpu as f64 * 10_000.0 / f.deliveries.max(1) as f64
    );
}

fn memory_line(
    label: &str,
    gw: &Gw,
    rss0: u64,
    heap0: Option<u64>,
    members: usize,
) -> (u64, Option<u64>) {
    let pid = gw.child.id();
    let rss = rss_kib(Some(pid));
    let heap = in_use(pid, &gw.stderr);
    let per_rss = rss.saturating_sub(rss0) as f64 / members.max(1) as f64;
    let per_heap = match (heap0, heap) {
        (Some(a), Some(b)) => format!(
            "{:.1} KiB",
            b.saturating_sub(a) as f64 / 1024.0 / members.max(1) as f64
        ),
        _ => "n/a (no gdb)".into(),
    };
    println!(
        "  {label}: RSS {rss} KiB ({per_rss:.1} KiB per membership over idle), live heap {} ({per_heap} per membership)",
        kib(heap)
    );
    (rss, heap)
}

async fn bench(p: Params) {
    let mut xmpp = FakeServer::start(SECRET).await;
    let metrics_port = support::free_udp_tcp_port();
    let gw = common::start_stox_on(
        env!("CARGO_BIN_EXE_stox"),
        xmpp.addr,
        SECRET,
        &["udp", "tcp"],
        &format!(
            "[chat]\nmode = \"session\"\nmsrp_listen = \"127.0.0.1:0\"\n\
             [muc]\nservices = [\"{SERVICE}\"]\nmax_members = {}\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
            p.sip + 10
        ),
    );
    xmpp.wait_online(Duration::from_secs(20)).await;
    let pid = gw.child.id();
    let xmpp_occupants = p.occupants.saturating_sub(p.sip).max(1);
    let mut muc = Muc {
        xmpp_occupants,
        sip: Vec::new(),
        rev_arrived: vec![None; p.reverse],
        join_stanzas: 0,
        last_burst_room: 0,
    };
    println!(
        "muc: stox process, room {ROOM} of {} occupants ({xmpp_occupants} XMPP + {} SIP over TCP, MSRP over TCP), loopback",
        xmpp_occupants + p.sip,
        p.sip
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss0 = rss_kib(Some(pid));
    let heap0 = in_use(pid, &gw.stderr);
    println!("  idle: RSS {rss0} KiB, live heap {}", kib(heap0));

    // Joins, one at a time.
    let stats = Arc::new(Stats::default());
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let mut joined: Vec<Joined> = Vec::new();
    let mut short_rosters = Vec::new();
    let mut failures = Vec::new();
    let t = Instant::now();
    let queue_drops = "stox_limit_hits_total{limit=\"muc_member_queue\"}";
    let mut drops_before = 0;
    for k in 0..p.sip {
        let h = tokio::spawn(participant(k, gw.sip, dtx.clone(), stats.clone()));
        let t0 = Instant::now();
        let r = serve_until(&mut xmpp, &mut muc, h).await;
        let drops = metric(metrics_port, queue_drops).await;
        let lost = drops - drops_before.min(drops);
        drops_before = drops;
        // The room as the newcomer was shown it: everyone, itself included.
        let want = muc.last_burst_room;
        match r {
            Ok(Ok(j)) => {
                if j.roster != Some(want) || lost > 0 {
                    short_rosters.push((k, j.roster, want, lost));
                }
                joined.push(j);
            }
            Ok(Err(e)) => failures.push((
                k,
                format!(
                    "{e} after {:.1} s; {lost} stanzas of its join burst of {} dropped (muc_member_queue)",
                    t0.elapsed().as_secs_f64(),
                    want + 1
                ),
            )),
            Err(e) => failures.push((k, format!("panicked: {e}"))),
        }
    }
    let setup = t.elapsed();
    let n = joined.len();
    serve_until(
        &mut xmpp,
        &mut muc,
        tokio::time::sleep(Duration::from_secs(1)),
    )
    .await;
    let dropped = metric(metrics_port, queue_drops).await;
    let join_times: Vec<Duration> = joined.iter().map(|j| j.join_time).collect();
    println!(
        "  joins: {n} of {} in {:.2} s ({:.1}/s, one at a time, each with its SUBSCRIBE and first NOTIFY); INVITE -> 200 {}",
        p.sip,
        setup.as_secs_f64(),
        n as f64 / setup.as_secs_f64(),
        quantiles(join_times)
    );
    println!(
        "      SUBSCRIBE -> 200 read: {}",
        quantiles(joined.iter().map(|j| j.sub_time).collect())
    );
    println!(
        "      SUBSCRIBE -> first NOTIFY (the full roster) read: {}",
        quantiles(joined.iter().filter_map(|j| j.roster_time).collect())
    );
    println!(
        "      join bursts: {} stanzas from the MUC; first NOTIFY {} users for the last participant; {} NOTIFYs ({} KiB) in all",
        muc.join_stanzas,
        joined
            .last()
            .and_then(|j| j.roster)
            .map_or("none".into(), |r| r.to_string()),
        stats.notifies.load(Ordering::Relaxed),
        stats.notify_bytes.load(Ordering::Relaxed) / 1024
    );
    for (k, e) in &failures {
        println!("  !! participant {k} did not join: {e}");
    }
    if !short_rosters.is_empty() {
        let missing: usize = short_rosters
            .iter()
            .map(|(_, got, want, _)| want - got.unwrap_or(0).min(*want))
            .sum();
        println!(
            "  !! {} of {n} participants in the room got a short first roster or lost stanzas ({missing} occupants missing in all); stox counted {dropped} stanzas dropped at a full membership queue (muc_member_queue)",
            short_rosters.len()
        );
        for (k, got, want, lost) in short_rosters.iter().take(5) {
            println!(
                "      participant {k}: first NOTIFY {got:?} users, room has {want}; {lost} stanzas dropped"
            );
        }
    } else {
        println!(
            "      every first roster of a complete join complete; muc_member_queue drops: {dropped}"
        );
    }
    memory_line(&format!("{n} memberships"), &gw, rss0, heap0, n);

    if n == 0 {
        println!("  no participant in the room: nothing to measure");
        assert!(!p.strict, "smoke run: no SIP participant joined");
        return;
    }
    // Fan-out: one room message at a time, then a window of them.
    let one = fan_out(&mut xmpp, &mut muc, &mut drx, 0, p.msgs, 1, pid).await;
    print_fan_out("fan-out, 1 room message at a time", &one);
    let many = fan_out(&mut xmpp, &mut muc, &mut drx, p.msgs, p.msgs, p.window, pid).await;
    print_fan_out(
        &format!("fan-out, {} room messages in flight", p.window),
        &many,
    );

    // SIP -> room, one at a time, from each participant in turn.
    let mut rev_lat = Vec::with_capacity(p.reverse);
    let t = Instant::now();
    for i in 0..p.reverse {
        let j = &joined[i % n];
        let cpim = format!(
            "From: <sip:user{}@example.net>\r\nTo: <{ROOM_URI}>\r\n\r\n\
             Content-Type: text/plain;charset=UTF-8\r\n\r\nrev:{i} {}",
            i % n,
            "y".repeat(80)
        );
        let frame = msrp_send(
            &j.ours,
            &j.theirs,
            &format!("rev{i:09}"),
            "message/cpim",
            cpim.as_bytes(),
        );
        let t0 = Instant::now();
        j.msrp.lock().await.write_all(&frame).await.unwrap();
        let deadline = tokio::time::Instant::now() + STEP;
        while muc.rev_arrived[i].is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = xmpp
                .try_wait_for(left, |e| matches!(e, Ev::Stanza { .. }))
                .await;
            let Some(Ev::Stanza { el, .. }) = ev else {
                break;
            };
            muc.on_stanza(&xmpp, &el);
            xmpp.seen.clear();
        }
        match muc.rev_arrived[i] {
            Some(at) => rev_lat.push(at.duration_since(t0)),
            None => {
                println!("  !! SIP -> room message {i} never reached the MUC");
                break;
            }
        }
    }
    let rev_time = t.elapsed();
    let rev_lost = p.reverse - rev_lat.len();
    println!(
        "  SIP -> room: {} CPIM SENDs, one at a time, in {:.2} s; SEND written -> groupchat stanza read: {}",
        rev_lat.len(),
        rev_time.as_secs_f64(),
        quantiles(rev_lat)
    );
    let dropped_after = metric(metrics_port, queue_drops).await;
    println!(
        "      BYEs from stox: {}, MSRP error responses: {}, muc_member_queue drops in all: {dropped_after}",
        stats.byes.load(Ordering::Relaxed),
        stats.msrp_errors.load(Ordering::Relaxed)
    );
    let mut lost = one.expected - one.deliveries + many.expected - many.deliveries;
    if p.burst > 0 {
        // What a MUC does when its XMPP occupants send faster than stox forwards: every
        // room message at once, no window.
        let before = metric(metrics_port, queue_drops).await;
        let b = fan_out(
            &mut xmpp,
            &mut muc,
            &mut drx,
            2 * p.msgs,
            p.burst,
            p.burst,
            pid,
        )
        .await;
        let after = metric(metrics_port, queue_drops).await;
        print_fan_out(
            &format!("burst, {} room messages written at once", p.burst),
            &b,
        );
        lost += b.expected - b.deliveries;
        println!(
            "      {} deliveries lost; muc_member_queue drops during the burst: {}",
            b.expected - b.deliveries,
            after - before.min(after)
        );
    }
    memory_line("after the messages", &gw, rss0, heap0, n);
    if p.settle > Duration::ZERO {
        serve_until(&mut xmpp, &mut muc, tokio::time::sleep(p.settle)).await;
        memory_line(
            &format!("{} s later", p.settle.as_secs()),
            &gw,
            rss0,
            heap0,
            n,
        );
    }
    drop(joined);
    let byes = stats.byes.load(Ordering::Relaxed);
    let msrp_errors = stats.msrp_errors.load(Ordering::Relaxed);
    let clean = failures.is_empty()
        && short_rosters.is_empty()
        && lost == 0
        && rev_lost == 0
        && byes == 0
        && msrp_errors == 0;
    assert!(
        clean || !p.strict,
        "smoke run: {} failed joins, {} short rosters, {lost} fan-out deliveries lost, \
         {rev_lost} SIP -> room messages lost, {byes} BYEs, {msrp_errors} MSRP errors",
        failures.len(),
        short_rosters.len()
    );
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` it is a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let p = if full {
        Params {
            occupants: env("STOX_BENCH_OCCUPANTS", 500),
            sip: env("STOX_BENCH_SIP", 50),
            msgs: env("STOX_BENCH_MSGS", 1000),
            window: env("STOX_BENCH_WINDOW", 16).max(1),
            reverse: env("STOX_BENCH_REVERSE", 200),
            burst: env("STOX_BENCH_BURST", 300),
            settle: Duration::from_secs(env("STOX_BENCH_SETTLE_SECS", 35) as u64),
            strict: false,
        }
    } else {
        Params {
            occupants: 23,
            sip: 3,
            msgs: 10,
            window: 4,
            reverse: 5,
            burst: 20,
            settle: Duration::ZERO,
            strict: true,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(p));
}
