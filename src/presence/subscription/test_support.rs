//! The test harness of the engine tests: an engine with a hand-advanced clock that answers
//! its NOTIFYs like a well-behaved watcher, and helpers to pick outputs apart.

use super::wire::*;
use super::*;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::presence::{Presence, Type};

pub(super) const PIDF_AWAY: &str = r#"<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:romeo@example.net">
  <tuple id="ID-phone"><status><basic>open</basic><show xmlns="jabber:client">away</show></status>
  <note>at lunch</note></tuple>
</presence>"#;

pub(super) const PIDF_CLOSED: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:romeo@example.net">
  <tuple id="ID-phone"><status><basic>closed</basic></status></tuple></presence>"#;

pub(super) struct T {
    pub e: Engine,
    pub clock: Clock,
    pub next_tx: TxId,
    /// Answer every NOTIFY the engine sends with 200 at once (a well-behaved watcher).
    pub auto_ok_notify: bool,
}

pub(super) const JULIET: &str = "juliet@example.com";
pub(super) const ROMEO_JID: &str = "romeo@sip.example.com";
pub(super) const ROMEO: &str = "sip:romeo@example.net";

impl T {
    pub fn new() -> T {
        Self::with(Settings::default())
    }

    pub fn with(settings: Settings) -> T {
        let map = AddressMap::new("sip.example.com", &["example.com".into()], "example.net");
        T {
            e: Engine::new(map, settings),
            clock: Clock {
                now: Instant::now(),
                unix: 1_700_000_000,
            },
            next_tx: 0,
            auto_ok_notify: true,
        }
    }

    pub fn advance(&mut self, secs: u64) -> Vec<Output> {
        self.clock = self.clock.after(Duration::from_secs(secs));
        self.e.handle_timeout(self.clock);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Output> {
        let mut all = Vec::new();
        loop {
            let out: Vec<Output> = std::iter::from_fn(|| self.e.poll_output()).collect();
            if out.is_empty() {
                return all;
            }
            let notifies: Vec<ReqId> = requests(&out)
                .iter()
                .filter(|r| r.method == OutMethod::Notify)
                .map(|r| r.id)
                .collect();
            all.extend(out);
            if !self.auto_ok_notify {
                return all;
            }
            for id in notifies {
                let resp = SipResponseIn {
                    code: 200,
                    ..Default::default()
                };
                self.e.handle(self.clock, Input::Response { id, resp });
            }
        }
    }

    pub fn xmpp(&mut self, t: Type, from: &str, to: &str) -> Vec<Output> {
        let mut p = Presence::new(t);
        p.from = Some(Jid::new(from).unwrap());
        p.to = Some(Jid::new(to).unwrap());
        self.xmpp_p(p)
    }

    pub fn xmpp_p(&mut self, p: Presence) -> Vec<Output> {
        self.e.handle(
            self.clock,
            Input::Presence {
                presence: Box::new(p),
                lang: None,
            },
        );
        self.drain()
    }

    pub fn sip(&mut self, req: SipRequestIn) -> (Respond, Vec<Output>) {
        self.next_tx += 1;
        let tx = self.next_tx;
        self.e.handle(
            self.clock,
            Input::Request {
                tx,
                req: Box::new(req),
            },
        );
        let out = self.drain();
        let resp = responds(&out)
            .into_iter()
            .find(|r| r.tx == tx)
            .expect("every request is answered");
        (resp, out)
    }

    pub fn respond(&mut self, id: ReqId, resp: SipResponseIn) -> Vec<Output> {
        self.e.handle(self.clock, Input::Response { id, resp });
        self.drain()
    }
}

pub(super) fn stanzas(out: &[Output]) -> Vec<Presence> {
    out.iter()
        .filter_map(|o| match o {
            Output::Stanza(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn requests(out: &[Output]) -> Vec<OutRequest> {
    out.iter()
        .filter_map(|o| match o {
            Output::Request(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn responds(out: &[Output]) -> Vec<Respond> {
    out.iter()
        .filter_map(|o| match o {
            Output::Respond(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn stores(out: &[Output]) -> Vec<StoreOp> {
    out.iter()
        .filter_map(|o| match o {
            Output::Store(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn header<'a>(r: &'a OutRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(super) fn ok(tag: &str, expires: u32) -> SipResponseIn {
    SipResponseIn {
        code: 200,
        to_tag: Some(tag.into()),
        contact: Some("sip:romeo@192.0.2.7:5060".into()),
        expires: Some(expires.to_string()),
        ..Default::default()
    }
}

pub(super) fn notify_for(
    r: &OutRequest,
    cseq: u32,
    state: &str,
    body: Option<&str>,
) -> SipRequestIn {
    SipRequestIn {
        method: "NOTIFY".into(),
        request_uri: "sip:juliet@192.0.2.1:5070".into(),
        from_uri: ROMEO.into(),
        from_tag: Some("nt".into()),
        to_uri: r.local_uri.clone(),
        to_tag: Some(r.local_tag.clone()),
        call_id: r.call_id.clone(),
        cseq,
        contact: Some("sip:romeo@192.0.2.7:5060".into()),
        event: Some("presence".into()),
        subscription_state: Some(state.into()),
        content_type: body.map(|_| "application/pidf+xml".into()),
        body: body.map(|b| b.as_bytes().to_vec()).unwrap_or_default(),
        ..Default::default()
    }
}
