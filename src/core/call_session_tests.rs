//! The call task with scripted SIP legs and a detached XMPP handle: it must carry out the
//! machine's outputs in order, feed back what the leg and the timers produce, and end.

use super::*;
use crate::media::call::Settings;
use crate::media::tests::{fixture, xml};
use std::sync::Mutex;
use std::time::Duration;
use tokio_xmpp::minidom::Element;

const X: &str = "juliet@example.com/balcony";
const S: &str = "romeo@sip.example.com/dr4hcr0st3lup4c";

/// A leg that yields scripted events and records the actions it is asked for.
struct Scripted {
    events: mpsc::UnboundedReceiver<SipIn>,
    acts: Arc<Mutex<Vec<SipOut>>>,
}

#[async_trait::async_trait]
impl SipLeg for Scripted {
    async fn next(&mut self) -> Option<SipIn> {
        self.events.recv().await
    }
    async fn act(&mut self, action: SipOut) -> Option<SipIn> {
        let answer = matches!(action, SipOut::ReInvite(_)).then(|| SipIn::ReInviteAnswer(Err(488)));
        self.acts.lock().unwrap().push(action);
        answer
    }
}

struct OneDialer {
    leg: Mutex<Option<Scripted>>,
    offers: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl Dialer for OneDialer {
    async fn dial(&self, offer: Vec<u8>) -> Result<Box<dyn SipLeg>, u16> {
        self.offers.lock().unwrap().push(offer);
        match self.leg.lock().unwrap().take() {
            Some(l) => Ok(Box::new(l)),
            None => Err(503),
        }
    }
}

fn settings() -> Settings {
    Settings {
        gather: Duration::from_millis(500),
        ring: Duration::from_secs(60),
        origin: "192.0.2.1".parse().unwrap(),
        anchor: None,
    }
}

fn action(el: &Element) -> String {
    match el.children().next() {
        Some(c) if c.name() == "jingle" => c.attr("action").unwrap_or("").to_owned(),
        Some(c) if el.name() == "message" => c.name().to_owned(),
        _ => format!("iq-{}", el.attr("type").unwrap_or("")),
    }
}

/// X calls S: the INVITE goes through the dialer, ringing and the answer come back as
/// stanzas, the ACK waits for the session-accept's result (fed in as the router would),
/// and S's BYE ends the task with success.
#[tokio::test]
async fn x_calls_s_through_the_task() {
    let (xmpp, mut sent, _up) = XmppHandle::detached(true);
    let (ev_tx, events) = mpsc::unbounded_channel();
    let acts = Arc::new(Mutex::new(Vec::new()));
    let offers = Arc::new(Mutex::new(Vec::new()));
    let dialer = Arc::new(OneDialer {
        leg: Mutex::new(Some(Scripted {
            events,
            acts: acts.clone(),
        })),
        offers: offers.clone(),
    });
    let (call, first) = Call::from_jingle(
        settings(),
        "i1",
        X,
        S,
        &xml("draft-m1-session-initiate.xml"),
    );
    let (in_tx, inputs) = mpsc::channel(8);
    let task = tokio::spawn(run(call, first, None, Some(dialer), inputs, xmpp, None));
    assert_eq!(action(&sent.recv().await.unwrap()), "iq-result");
    ev_tx
        .send(SipIn::Provisional {
            code: 180,
            sdp: None,
            reliable: false,
        })
        .unwrap();
    assert_eq!(action(&sent.recv().await.unwrap()), "session-info");
    ev_tx
        .send(SipIn::Answered {
            sdp: fixture("draft-m3-answer.sdp"),
        })
        .unwrap();
    let accept = sent.recv().await.unwrap();
    assert_eq!(action(&accept), "session-accept");
    assert!(acts.lock().unwrap().is_empty(), "no ACK before the result");
    let id = accept.attr("id").unwrap().to_owned();
    in_tx
        .send(Input::IqResponse { id, ok: true })
        .await
        .unwrap();
    ev_tx.send(SipIn::Bye).unwrap();
    assert_eq!(action(&sent.recv().await.unwrap()), "session-terminate");
    assert_eq!(task.await.unwrap(), Reason::Success);
    assert_eq!(*acts.lock().unwrap(), [SipOut::Ack]);
    assert!(String::from_utf8_lossy(&offers.lock().unwrap()[0]).contains("m=audio 49172"));
}

/// The gather timer fires inside the task (paused clock) and the INVITE goes out; a
/// dialer that cannot send ends the call with the mapped reason.
#[tokio::test(start_paused = true)]
async fn gather_timer_and_failed_dial() {
    let (xmpp, mut sent, _up) = XmppHandle::detached(true);
    let offers = Arc::new(Mutex::new(Vec::new()));
    let dialer = Arc::new(OneDialer {
        leg: Mutex::new(None),
        offers: offers.clone(),
    });
    let from = "romeo@example.net/phone";
    let (call, first) = Call::from_jingle(
        settings(),
        "i1",
        from,
        S,
        &xml("webrtc-session-initiate.xml"),
    );
    let (in_tx, inputs) = mpsc::channel(8);
    let task = tokio::spawn(run(call, first, None, Some(dialer), inputs, xmpp, None));
    assert_eq!(action(&sent.recv().await.unwrap()), "iq-result");
    let ti = xml("webrtc-transport-info.xml");
    in_tx
        .send(Input::Jingle {
            id: "t".into(),
            from: from.into(),
            jingle: ti,
        })
        .await
        .unwrap();
    assert_eq!(action(&sent.recv().await.unwrap()), "iq-result");
    tokio::time::advance(Duration::from_millis(600)).await;
    let term = sent.recv().await.unwrap();
    assert_eq!(action(&term), "session-terminate");
    assert_eq!(
        task.await.unwrap(),
        Reason::GeneralError,
        "503 maps to general-error"
    );
    assert_eq!(offers.lock().unwrap().len(), 1);
}

/// S calls X and the router goes away while it rings: the task retracts the propose and
/// refuses the INVITE with 503.
#[tokio::test]
async fn router_gone_shuts_the_call() {
    let (xmpp, mut sent, _up) = XmppHandle::detached(true);
    let (_ev_tx, events) = mpsc::unbounded_channel();
    let acts = Arc::new(Mutex::new(Vec::new()));
    let leg: Box<dyn SipLeg> = Box::new(Scripted {
        events,
        acts: acts.clone(),
    });
    let (call, first) = Call::from_invite(
        settings(),
        "s1",
        S,
        "juliet@example.com",
        &fixture("baresip-1.0.0-offer.sdp"),
    );
    let (in_tx, inputs) = mpsc::channel(8);
    let task = tokio::spawn(run(call, first, Some(leg), None, inputs, xmpp, None));
    assert_eq!(action(&sent.recv().await.unwrap()), "propose");
    drop(in_tx);
    assert_eq!(action(&sent.recv().await.unwrap()), "retract");
    assert_eq!(task.await.unwrap(), Reason::GeneralError);
    assert_eq!(
        *acts.lock().unwrap(),
        [SipOut::Ringing, SipOut::Reject(503)]
    );
}
