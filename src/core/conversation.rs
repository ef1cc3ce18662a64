//! One XMPP -> SIP conversation (an XMPP sender and a SIP target): sends its MESSAGEs in
//! arrival order and turns each failure into the XMPP error of RFC 7247 §7.2 (IM-3),
//! addressed back to the sender with the original id.

use crate::addr::{AddressMap, SipAddr};
use crate::errmap::{self, DefinedCondition, XmppError};
use crate::im::SipMessageOut;
use crate::sip::{SendFailure, SipClient};
use crate::xmpp::{service, XmppHandle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_xmpp::minidom::Element;
use tracing::debug;

/// A message to send: the original stanza (for the error reply) and its translation.
#[derive(Debug)]
pub struct Outbound {
    /// The XMPP stanza as received.
    pub stanza: Element,
    /// The MESSAGE to send.
    pub out: SipMessageOut,
    /// A chat state or notification: a failure is logged, not answered with an error
    /// stanza (the XMPP user sent no message that could fail).
    pub quiet: bool,
}

/// The conversation task.
pub struct Conversation {
    sip: SipClient,
    xmpp: XmppHandle,
    map: AddressMap,
    in_flight: Arc<AtomicUsize>,
}

/// A conversation with nothing to send for this long ends; the next message starts a new one.
const IDLE: Duration = Duration::from_secs(60);

impl Conversation {
    /// A conversation over the two adapters.
    pub fn new(
        sip: SipClient,
        xmpp: XmppHandle,
        map: AddressMap,
        in_flight: Arc<AtomicUsize>,
    ) -> Self {
        Conversation {
            sip,
            xmpp,
            map,
            in_flight,
        }
    }

    /// Send queued messages in order until idle.
    pub async fn run(self, mut rx: mpsc::Receiver<Outbound>) {
        loop {
            let item = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(item)) => item,
                _ => return,
            };
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let started = self.sip.start_message(&item.out).await;
            let xmpp = self.xmpp.clone();
            let map = self.map.clone();
            let in_flight = self.in_flight.clone();
            // The request is on the wire; its final response is awaited apart so the next
            // message does not wait for this one's round trip.
            tokio::spawn(async move {
                let result = match started {
                    Ok(pending) => pending.finish().await,
                    Err(e) => Err(e),
                };
                if let Err(failure) = result {
                    debug!(?failure, "MESSAGE failed");
                    if item.quiet {
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                    let err = failure_to_xmpp(&failure, &map);
                    let _ = xmpp
                        .send(service::error_reply(&item.stanza, err, map.component()))
                        .await;
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }
}

/// RFC 7247 §7.2 (Table E2) for a failed MESSAGE, with the 301 new address mapped to an
/// `xmpp:` URI (ERR-9).
pub fn failure_to_xmpp(f: &SendFailure, map: &AddressMap) -> XmppError {
    match f {
        SendFailure::Response { status, contact } => {
            let moved = if status.code == 301 {
                contact
                    .as_deref()
                    .and_then(|c| SipAddr::parse(c).ok())
                    .and_then(|a| map.sip_to_jid(&a).ok())
                    .map(|j| format!("xmpp:{}", j.to_string().replace('\\', "%5C")))
            } else {
                None
            };
            errmap::sip_to_xmpp(status.code, Some(&status.reason), moved.as_deref())
        }
        // ERR-6 / Table E2 408: no final answer in time.
        SendFailure::Timeout => errmap::sip_to_xmpp(408, Some("Request Timeout"), None),
        SendFailure::Unreachable(why) => {
            XmppError::new(DefinedCondition::RemoteServerNotFound).with_text(why.clone())
        }
    }
}
