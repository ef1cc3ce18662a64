//! The dialog usage of chat and chat-room INVITE dialogs: which in-dialog requests are
//! answered here (BYE, OPTIONS, re-INVITE refused; in a chat room's dialog the conference
//! package's SUBSCRIBE and NOTIFY and REFER, RFC 7702 §5.3, §6.1, §6.5) and what the session
//! task is told.

use super::InDialog;
use ezk_sip_core::{Endpoint, IncomingRequest, MayTake};
use ezk_sip_types::{Method, Name, StatusCode};
use ezk_sip_ua::dialog::Usage;
use tokio::sync::mpsc;
use tracing::debug;

/// Our dialog usage: answers BYE, refuses re-INVITE and forwards what the session needs.
pub(super) struct ChatUsage {
    pub(super) events: mpsc::Sender<InDialog>,
    /// A chat room's dialog: the conference event package is served in it (MUC-20).
    pub(super) conference: bool,
}

/// A NOTIFY in a chat room's dialog: its response code and what the session is told.
fn conference_notify(req: &IncomingRequest) -> (u16, Option<InDialog>) {
    let is_conference = req
        .headers
        .get_named::<ezk_sip_types::header::typed::Event>()
        .ok()
        .is_some_and(|e| {
            e.0.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("conference")
        });
    if !is_conference {
        // The implicit subscription of our REFER (RFC 3515 §2.4.4, MUC-16): its progress is
        // taken and not followed (XMPP has nothing to carry it); other packages are 489.
        let is_refer = req
            .headers
            .get_named::<ezk_sip_types::header::typed::Event>()
            .ok()
            .is_some_and(|e| e.0.split(';').next().unwrap_or("").trim() == "refer");
        return (if is_refer { 200 } else { 489 }, None);
    }
    let terminated = req
        .headers
        .get_raw(&Name::SUBSCRIPTION_STATE)
        .next()
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("terminated"));
    if req.body.is_empty() {
        // RFC 6665 §4.2.2: a NOTIFY may come without a body (a final one, typically).
        let ev = InDialog::ConferenceNotify {
            body: None,
            terminated,
        };
        return (200, terminated.then_some(ev));
    }
    match crate::muc::confinfo::parse(&req.body) {
        Ok(_) => (
            200,
            Some(InDialog::ConferenceNotify {
                body: Some(req.body.clone()),
                terminated,
            }),
        ),
        Err(e) => (
            e.rejection().sip.code,
            Some(InDialog::ConferenceNotify {
                body: None,
                terminated,
            }),
        ),
    }
}

/// Longest conference subscription granted (RFC 6665 §4.2.1.1: the notifier may shorten
/// what the subscriber asks for); without `Expires`, RFC 4575 §3.6 suggests one hour.
const CONFERENCE_EXPIRES: u32 = 3600;

/// The answer to an in-dialog SUBSCRIBE: the response code and the granted expiry. Only the
/// conference package of a chat room's dialog is served; any other package is 489.
fn subscribe_answer(conference: bool, req: &IncomingRequest) -> (u16, Option<u32>) {
    let event = req
        .headers
        .get_named::<ezk_sip_types::header::typed::Event>()
        .ok()
        .map(|e| e.0.to_string());
    let is_conference = event.as_deref().is_some_and(|e| {
        e.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("conference")
    });
    if !conference || !is_conference {
        return (489, None);
    }
    let asked = req
        .headers
        .get_named::<ezk_sip_types::header::typed::Expires>()
        .ok()
        .map(|e| e.0);
    let granted = asked.map_or(CONFERENCE_EXPIRES, |a| a.min(CONFERENCE_EXPIRES));
    (200, Some(granted))
}

#[async_trait::async_trait]
impl Usage for ChatUsage {
    fn name(&self) -> &'static str {
        "stox-chat"
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        let method = request.line.method.clone();
        if method == Method::ACK {
            request.take();
            let _ = self.events.try_send(InDialog::Ack);
            return;
        }
        let mut expires = None;
        let (code, event) = if method == Method::BYE {
            (200, Some(InDialog::Bye))
        } else if method == Method::REFER && self.conference {
            match request.headers.get_raw(&Name::REFER_TO).next() {
                Some(to) => (200, Some(InDialog::Refer(to.to_string()))),
                None => (400, None),
            }
        } else if method == Method::NOTIFY && self.conference {
            let (code, ev) = conference_notify(&request);
            (code, ev)
        } else if method == Method::SUBSCRIBE {
            let (code, granted) = subscribe_answer(self.conference, &request);
            expires = granted;
            (code, granted.map(InDialog::Subscribe))
        } else if method == Method::INVITE || method == Method::UPDATE {
            // A session change (e.g. a new a=path) is not supported: the session stays as
            // it is (RFC 3261 §14.2: 488 leaves it unchanged).
            (488, None)
        } else if method == Method::OPTIONS {
            (200, None)
        } else {
            (405, None)
        };
        let mut req = request.take();
        let mut resp = endpoint.create_response(&req, StatusCode::from(code), None);
        if let Some(e) = expires {
            resp.msg.headers.insert(Name::EXPIRES, e.to_string());
        }
        if code == 489 {
            resp.msg.headers.insert(Name::ALLOW_EVENTS, "conference");
        }
        let result = if method == Method::INVITE {
            endpoint
                .create_server_inv_tsx(&mut req)
                .respond_failure(resp)
                .await
        } else {
            endpoint.create_server_tsx(&mut req).respond(resp).await
        };
        if let Err(e) = result {
            debug!(error = ?e, "in-dialog response failed");
        }
        if let Some(ev) = event {
            // The session task may be gone already; then there is nothing left to end.
            let _ = self.events.send(ev).await;
        }
    }
}
