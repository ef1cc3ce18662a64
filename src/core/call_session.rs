//! One call's task: the thin loop around [`media::call::Call`](crate::media::call::Call).
//! It carries out the machine's outputs (stanzas to the XMPP link, actions on the SIP
//! dialog, timers) and feeds it what arrives: Jingle and XEP-0353 stanzas the router hands
//! over, the dialog's events, fired timers. Everything it decides comes from the machine.
//!
//! The SIP dialog is behind [`SipLeg`] (and [`Dialer`] for the INVITE of a call the XMPP
//! side places), so the loop is tested here with scripted legs; the ezk adapter implements
//! them for real calls.

use crate::media::call::{Call, Input, Output, SipIn, SipOut, Timer};
use crate::media::reason::Reason;
use crate::media::relay::forward::Relay;
use crate::media::relay::{MediaOut, Side};
use crate::xmpp::XmppHandle;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

/// The SIP dialog of one call.
#[async_trait::async_trait]
pub trait SipLeg: Send {
    /// The next event of the dialog; `None` once the dialog is gone. Must be cancel-safe:
    /// the task waits on it next to its other inputs.
    async fn next(&mut self) -> Option<SipIn>;
    /// Carry out one action. An event it causes at once comes back (the answer to our
    /// re-INVITE, or the failure of an action that ends the call).
    async fn act(&mut self, action: SipOut) -> Option<SipIn>;
    /// The IP the SIP party signals from, when known: a relayed call accepts its media
    /// from there too (NAT latching).
    fn signalling_ip(&self) -> Option<std::net::IpAddr> {
        None
    }
}

/// Places the INVITE of a call the XMPP side starts.
#[async_trait::async_trait]
pub trait Dialer: Send + Sync {
    /// Send the INVITE with this offer; the status code when it could not be sent.
    async fn dial(&self, offer: Vec<u8>) -> Result<Box<dyn SipLeg>, u16>;
}

/// Run `call` until it ends; `first` are the outputs of its creation. `leg` is the dialog
/// when the SIP side called (the INVITE is already here); `dialer` places the INVITE when
/// the XMPP side called. When `inputs` closes (the router stops), the call is shut down
/// on both sides. `relay` carries the media of an anchored call; it is dropped (and its
/// ports released) when the call goes direct or ends. Returns how the call ended.
pub async fn run(
    mut call: Call,
    first: Vec<Output>,
    mut leg: Option<Box<dyn SipLeg>>,
    dialer: Option<Arc<dyn Dialer>>,
    mut inputs: mpsc::Receiver<Input>,
    xmpp: XmppHandle,
    mut relay: Option<Relay>,
) -> Reason {
    let mut outputs = first;
    let mut queue: VecDeque<Input> = VecDeque::new();
    let mut timers: Vec<(Timer, Instant)> = Vec::new();
    let mut router_gone = false;
    loop {
        let mut ended = None;
        for o in std::mem::take(&mut outputs) {
            match o {
                Output::Xmpp(el) => {
                    if xmpp.send(el).await.is_err() {
                        debug!(sid = call.sid(), "XMPP link down: call stanza lost");
                    }
                }
                Output::Sip(action) if !matches!(action, SipOut::Invite(_)) && leg.is_some() => {
                    trace_sdp("->", &action);
                    debug!(
                        sid = call.sid(),
                        action = action_name(&action),
                        "SIP action"
                    );
                    if let Some(l) = leg.as_mut() {
                        if let Some(ev) = l.act(action).await {
                            queue.push_back(Input::Sip(ev));
                        }
                    }
                }
                Output::Sip(SipOut::Invite(offer)) => match &dialer {
                    Some(d) => match d.dial(offer).await {
                        Ok(l) => {
                            if let (Some(r), Some(ip)) = (&relay, l.signalling_ip()) {
                                r.allow(Side::S, ip);
                            }
                            leg = Some(l);
                        }
                        Err(code) => queue.push_back(Input::Sip(SipIn::Failed { code })),
                    },
                    None => queue.push_back(Input::Sip(SipIn::Failed { code: 500 })),
                },
                Output::Sip(action) => match leg.as_mut() {
                    Some(l) => {
                        if let Some(ev) = l.act(action).await {
                            queue.push_back(Input::Sip(ev));
                        }
                    }
                    None => debug!(sid = call.sid(), ?action, "no SIP dialog for this action"),
                },
                Output::Start(t, d) => {
                    timers.retain(|(k, _)| *k != t);
                    timers.push((t, Instant::now() + d));
                }
                Output::Media(MediaOut::Direct) => relay = None,
                Output::Media(m) => {
                    if let Some(r) = &relay {
                        r.update(m);
                    }
                }
                Output::Ended(r) => ended = Some(r),
            }
        }
        if let Some(r) = ended {
            if let Some(relay) = &relay {
                let st = relay.stats();
                let n =
                    |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
                info!(
                    sid = call.sid(),
                    x_to_s = n(&st.x_to_s),
                    s_to_x = n(&st.s_to_x),
                    dropped = n(&st.dropped),
                    "relayed media"
                );
            }
            return r;
        }
        if let Some(i) = queue.pop_front() {
            outputs = call.handle(i);
            continue;
        }
        let next_timer = timers.iter().min_by_key(|(_, at)| *at).copied();
        let input = tokio::select! {
            i = inputs.recv(), if !router_gone => match i {
                Some(i) => i,
                None => {
                    router_gone = true;
                    Input::Shutdown
                }
            },
            ev = next_event(&mut leg) => match ev {
                Some(ev) => {
                    debug!(sid = call.sid(), event = ?EventName(&ev), "SIP event");
                    Input::Sip(ev)
                }
                None => {
                    // The adapter gave the dialog up (e.g. no ACK for our 2xx): for the
                    // call that is the SIP side hanging up.
                    leg = None;
                    Input::Sip(SipIn::Bye)
                }
            },
            _ = media_timed_out(&mut relay) => Input::MediaTimeout,
            _ = sleep_until(next_timer.map(|(_, at)| at)) => {
                let Some((t, _)) = next_timer else { continue };
                timers.retain(|(k, _)| *k != t);
                Input::Timer(t)
            }
        };
        outputs = call.handle(input);
    }
}

/// SDP bodies at trace level (`wire::sdp`), for debugging interop.
fn trace_sdp(dir: &str, action: &SipOut) {
    if let SipOut::Invite(b)
    | SipOut::Answer(b)
    | SipOut::ReInvite(b)
    | SipOut::AnswerReInvite(Ok(b)) = action
    {
        tracing::trace!(target: "wire::sdp", "{dir} {}", String::from_utf8_lossy(b));
    }
}

fn action_name(a: &SipOut) -> &'static str {
    match a {
        SipOut::Invite(_) => "INVITE",
        SipOut::Ringing => "180",
        SipOut::Answer(_) => "200",
        SipOut::Reject(_) => "reject",
        SipOut::Cancel => "CANCEL",
        SipOut::Ack => "ACK",
        SipOut::Bye => "BYE",
        SipOut::ReInvite(_) => "re-INVITE",
        SipOut::AnswerReInvite(_) => "re-INVITE answer",
    }
}

/// A SIP event for the debug log, with SDP bodies at trace level.
struct EventName<'a>(&'a SipIn);

impl std::fmt::Debug for EventName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, body) = match self.0 {
            SipIn::Provisional { code, sdp, .. } => (format!("{code}"), sdp.as_deref()),
            SipIn::Answered { sdp } => ("2xx".into(), Some(sdp.as_slice())),
            SipIn::Failed { code } => (format!("failed {code}"), None),
            SipIn::Bye => ("BYE".into(), None),
            SipIn::Cancelled => ("CANCEL".into(), None),
            SipIn::ReInvite { sdp } => ("re-INVITE".into(), Some(sdp.as_slice())),
            SipIn::ReInviteAnswer(r) => (
                "re-INVITE answer".into(),
                r.as_ref().ok().map(Vec::as_slice),
            ),
        };
        if let Some(b) = body {
            tracing::trace!(target: "wire::sdp", "<- {}", String::from_utf8_lossy(b));
        }
        f.write_str(&name)
    }
}

/// The leg's next event; never resolves without a leg.
async fn next_event(leg: &mut Option<Box<dyn SipLeg>>) -> Option<SipIn> {
    match leg {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the relay saw no media for its timeout; never without a relay.
async fn media_timed_out(relay: &mut Option<Relay>) {
    match relay {
        Some(r) => r.timed_out().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "call_session_tests.rs"]
mod tests;
