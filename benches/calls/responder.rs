//! The XMPP side of the call benchmark: answers every call stox rings, on the fake XEP-0114
//! server, the way a Jingle client would (XEP-0353 then XEP-0166/0167 with XEP-0177 Raw-UDP):
//!
//! - `<message><propose id=S/>` to `uN@example.com` -> `<proceed id=S/>` from `uN@example.com/bench`;
//! - `session-initiate` -> IQ result, then `session-accept` (PCMU, one Raw-UDP candidate);
//! - stox's result to that `session-accept` (sent with the 200) -> the call counts as set up;
//! - `session-terminate` (the caller's BYE) and any other IQ set -> IQ result.
//!
//! The server's parsed elements are read without keeping them (`seen` is cleared as we go).

use super::support::xmpp::{Ev, FakeServer};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_xmpp::minidom::Element;

const NS_JMI: &str = "urn:xmpp:jingle-message:0";
const NS_JINGLE: &str = "urn:xmpp:jingle:1";

/// Counters of the responder, read by the benchmark while it runs.
#[derive(Default)]
pub struct Stats {
    /// `<propose>`s received (calls stox rang).
    pub proposed: AtomicU64,
    /// `session-initiate`s received.
    pub initiated: AtomicU64,
    /// `session-accept`s stox acknowledged: calls set up (the 200 went with it).
    pub accepted: AtomicU64,
    /// `session-terminate`s received (calls hung up).
    pub terminated: AtomicU64,
    /// Error stanzas from stox.
    pub errors: AtomicU64,
    /// Per set-up call: from the `<propose>`'s arrival to the `session-accept` result's
    /// (stox's share of INVITE -> 200 plus this responder's), microseconds.
    pub latency_us: Mutex<Vec<u32>>,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Serve the component stream until the server's channel closes; returns nothing.
pub async fn run(mut xmpp: FakeServer, stats: Arc<Stats>) {
    // propose arrival per call id (sid)
    let mut rung: HashMap<String, Instant> = HashMap::new();
    let mut out = String::new();
    loop {
        let ev = xmpp
            .try_wait_for(Duration::from_secs(3600), |e| {
                matches!(e, Ev::Stanza { .. } | Ev::Closed { .. })
            })
            .await;
        xmpp.seen.clear();
        let el = match ev {
            Some(Ev::Stanza { el, .. }) => el,
            _ => return,
        };
        out.clear();
        handle(&el, &stats, &mut rung, &mut out);
        if !out.is_empty() {
            xmpp.send(&out);
        }
    }
}

fn handle(el: &Element, stats: &Stats, rung: &mut HashMap<String, Instant>, out: &mut String) {
    let from = el.attr("from").unwrap_or("");
    let to = el.attr("to").unwrap_or("");
    let typ = el.attr("type").unwrap_or("");
    if typ == "error" {
        bump(&stats.errors);
        if Stats::get(&stats.errors) <= 3 {
            eprintln!("  responder: error stanza from stox: {}", String::from(el));
        }
        return;
    }
    match el.name() {
        "message" => {
            let Some(p) = el.get_child("propose", NS_JMI) else {
                return;
            };
            let sid = p.attr("id").unwrap_or("");
            bump(&stats.proposed);
            rung.insert(sid.to_string(), Instant::now());
            let _ = write!(
                out,
                "<message from='{to}/bench' to='{from}' type='chat' id='p-{sid}'>\
                 <proceed xmlns='{NS_JMI}' id='{sid}'/></message>"
            );
        }
        "iq" if typ == "set" => {
            let id = el.attr("id").unwrap_or("");
            let _ = write!(out, "<iq type='result' id='{id}' from='{to}' to='{from}'/>");
            let Some(j) = el.get_child("jingle", NS_JINGLE) else {
                return;
            };
            let sid = j.attr("sid").unwrap_or("");
            match j.attr("action") {
                Some("session-initiate") => {
                    bump(&stats.initiated);
                    let mut contents = String::new();
                    for c in j.children().filter(|c| c.name() == "content") {
                        let _ = write!(
                            contents,
                            "<content creator='{}' name='{}' senders='both'>\
                             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
                             <payload-type id='0' name='PCMU' clockrate='8000'/></description>\
                             <transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'>\
                             <candidate id='c1' component='1' generation='0' ip='192.0.2.77' port='7000'/>\
                             </transport></content>",
                            c.attr("creator").unwrap_or("initiator"),
                            c.attr("name").unwrap_or("audio"),
                        );
                    }
                    let _ = write!(
                        out,
                        "<iq type='set' id='acc-{sid}' from='{to}' to='{from}'>\
                         <jingle xmlns='{NS_JINGLE}' action='session-accept' sid='{sid}' responder='{to}'>\
                         {contents}</jingle></iq>"
                    );
                }
                Some("session-terminate") => {
                    bump(&stats.terminated);
                    rung.remove(sid);
                }
                _ => {}
            }
        }
        "iq" if typ == "result" => {
            let Some(sid) = el.attr("id").and_then(|i| i.strip_prefix("acc-")) else {
                return;
            };
            bump(&stats.accepted);
            if let Some(t) = rung.remove(sid) {
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                stats.latency_us.lock().unwrap().push(us);
            }
        }
        _ => {}
    }
}
