//! Calls in the router (draft-ietf-stox-media, MEDIA-7, 8, 25, 26): which stanzas and
//! INVITEs belong to a call, and one [`call_session`](super::call_session) task per call.
//!
//! - A Jingle IQ to a SIP user's JID: `session-initiate` starts a call (X calls S); any
//!   other action goes to the call of its (sender, sid), or gets `unknown-session`.
//! - The result or error of an IQ a call sent: its id is `<sid>-<n>`.
//! - XEP-0353 messages: a `propose` to a SIP user is answered `proceed` at once from the
//!   user's call JID (the SIP side rings when the INVITE goes); `proceed`/`reject` for a
//!   call S placed go to that call; the rest (`retract`, `accept`, `finish`, `ringing`) end
//!   here, never in page mode.
//! - An INVITE whose SDP offers audio or video (and no MSRP) is a call (S calls X).
//!
//! SIP users take part in calls as `<user>@<component>/<CALL_RESOURCE>` unless they have a
//! GRUU: one stable full JID per user, which disco#info answers with the Jingle features
//! (MEDIA-26).

use super::call_leg::{Leg, SipDialer};
use super::call_session;
use super::stun_watch::StunWatch;
use super::{Event, Router};
use crate::config::{MediaMode, SipSrtp, XmppTransport};
use crate::errmap::{DefinedCondition, SipStatus, XmppError};
use crate::im::SipMessageIn;
use crate::media::call::{stanza, Call, Input, Settings};
use crate::media::relay::forward::Relay;
use crate::media::relay::ports::{CallPorts, PortPool};
use crate::media::relay::{Anchor, LocalIce};
use crate::sip::invite::{InviteOut, PendingInvite};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info, info_span, Instrument};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::ns;

/// The resource of a SIP user's JID in calls when the user has no GRUU.
pub const CALL_RESOURCE: &str = "sip";

impl Calls {
    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no call is in progress.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// The calls the router knows, by (X's bare JID, sid).
#[derive(Default)]
pub struct Calls {
    tasks: HashMap<(String, String), mpsc::Sender<Input>>,
    /// The relay's port range (`[media] mode = "relay"`), made at the first relayed call and
    /// again when a reload changes it.
    ports: Option<Arc<PortPool>>,
    /// The STUN task of `media.stun_server`, for the relay address it asks about.
    stun: Option<StunWatch>,
}

/// A new call's media relay: its ports, and the addresses the call machine writes.
struct RelaySlot {
    ports: CallPorts,
    anchor: Anchor,
}

/// Does this INVITE offer a call (RTP audio or video) rather than an MSRP session?
pub fn is_call_offer(msg: &SipMessageIn) -> bool {
    let sdp = msg
        .content_type
        .as_deref()
        .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
    if !sdp {
        return false;
    }
    let body = String::from_utf8_lossy(&msg.body);
    let media = |m: &str| body.lines().any(|l| l.trim_start().starts_with(m));
    (media("m=audio") || media("m=video")) && !media("m=message")
}

/// The Request-URI of a call to a SIP user's full JID: the synthetic [`CALL_RESOURCE`] we
/// answer calls from is not a GRUU, so it must not become `;gr=sip` (a registrar looks such a
/// URI up as a GRUU and answers 404); any other resource is one (ADDR-8) and stays.
fn call_target(mut uri: crate::addr::SipAddr) -> crate::addr::SipAddr {
    if uri.gr.as_deref() == Some(CALL_RESOURCE) {
        uri.gr = None;
    }
    uri
}

fn reject_later(pending: PendingInvite, status: SipStatus) {
    tokio::spawn(async move { pending.reject(&status).await });
}

fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

impl Router {
    /// Ports for a new call's relay: `Ok(None)` when media goes direct, `Err` when the
    /// range has no room left (the call is refused rather than set up without audio).
    fn call_relay(&mut self, origin: std::net::IpAddr) -> Result<Option<RelaySlot>, ()> {
        // The Arc, not a borrow of self: `stun_address` below needs `&mut self`.
        let eff = self.ops.effective.clone();
        let m = &eff.media;
        if m.mode == MediaMode::Direct {
            return Ok(None);
        }
        let Some(ip) = m
            .relay_address
            .or(Some(origin).filter(|o| !o.is_unspecified()))
        else {
            tracing::warn!(
                "media.mode = relay, but the SIP contact host is no IP address and \
                 media.relay_address is not set: media goes direct"
            );
            return Ok(None);
        };
        let (min, max) = (m.port_min, m.port_max);
        let pool = match &self.calls.ports {
            Some(p) if p.is(ip, min, max) => p.clone(),
            _ => {
                let p = Arc::new(PortPool::new(ip, min, max));
                self.calls.ports = Some(p.clone());
                p
            }
        };
        let Some(ports) = pool.allocate() else {
            tracing::warn!(%ip, min, max, "media relay: no free ports left in the range");
            crate::ops::metrics::get().limit_hit("media_ports");
            return Err(());
        };
        let anchor = Anchor {
            // Behind a 1:1 NAT the parties are told the public address; the sockets bind
            // the private one. The ICE leg needs no change: STUN carries no address of the
            // agent's own, and the NAT delivers to the bound socket.
            ip: m
                .public_address
                .or_else(|| self.stun_address(ip))
                .unwrap_or(ip),
            x_port: ports.x_port(),
            s_port: ports.s_port(),
            ice: crate::media::relay::ice::identity().map(|id| LocalIce {
                ufrag: crate::sip::inbound::random_token()[..8].to_owned(),
                pwd: crate::sip::inbound::random_token() + &crate::sip::inbound::random_token(),
                fingerprint: id.fingerprint.clone(),
            }),
            offer_ice: m.xmpp_transport == XmppTransport::IceUdp,
            auto: m.mode == MediaMode::Auto,
            sdes: crate::media::relay::srtp::MasterKey::random(),
            offer_sdes: m.sip_srtp == SipSrtp::Sdes,
        };
        Ok(Some(RelaySlot { ports, anchor }))
    }

    /// The address `media.stun_server` reported for the relay address `bind`. `None` without
    /// a server or before its first answer.
    fn stun_address(&mut self, bind: std::net::IpAddr) -> Option<std::net::IpAddr> {
        let server = self.ops.effective.media.stun_server.clone()?;
        let found = self.stun_watch(&server, bind).address();
        if found.is_none() {
            tracing::warn!(%bind, stun_server = %server,
                           "media relay: no answer from the STUN server yet; this call announces the relay's own address");
        }
        found
    }

    /// The task asking `server` about `bind`, started (or restarted, the settings changed).
    fn stun_watch(&mut self, server: &str, bind: std::net::IpAddr) -> &StunWatch {
        if !self.calls.stun.as_ref().is_some_and(|w| w.is(server, bind)) {
            self.calls.stun = Some(StunWatch::start(server, bind));
        }
        self.calls.stun.as_ref().expect("set just above")
    }

    /// Ask `media.stun_server` now (at start and after a reload), so the first relayed call
    /// already has the answer; stop asking when the setting or relaying is gone.
    pub(super) fn stun_refresh(&mut self) {
        let m = self.ops.effective.media.clone();
        let bind = m
            .relay_address
            .or(Some(self.call_settings().origin).filter(|o| !o.is_unspecified()));
        match (m.mode, m.stun_server, bind) {
            (MediaMode::Direct, _, _) | (_, None, _) | (_, _, None) => self.calls.stun = None,
            (_, Some(server), Some(bind)) => {
                self.stun_watch(&server, bind);
            }
        }
    }

    fn call_settings(&self) -> Settings {
        let host = self.sip.contact_host();
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let origin = host
            .trim_matches(['[', ']'])
            .parse()
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        let c = &self.ops.effective.calls;
        Settings {
            gather: Duration::from_millis(c.gather_ms),
            ring: Duration::from_secs(c.ring_timeout_secs),
            origin,
            anchor: None,
        }
    }

    fn call_key(from: &str, sid: &str) -> (String, String) {
        (bare(from).to_owned(), sid.to_owned())
    }

    /// The `from` of our answer to `stanza`: its `to` when that is a JID, else the component
    /// (an empty or invalid `from` would make the server drop the link).
    fn call_from_attr(&self, stanza: &Element) -> String {
        stanza
            .attr("to")
            .filter(|t| Jid::new(t).is_ok())
            .unwrap_or(self.cfg.map.component())
            .to_owned()
    }

    /// A stanza that belongs to calls; `true` when it was taken.
    pub(super) async fn call_stanza(&mut self, el: &Element) -> bool {
        match el.name() {
            "iq" => self.call_iq(el).await,
            "message" => match el.children().find(|c| c.ns() == ns::JINGLE_MESSAGE) {
                Some(jmi) if el.attr("type") != Some("error") => {
                    self.call_jmi(el, jmi).await;
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    async fn call_iq(&mut self, el: &Element) -> bool {
        let from = el.attr("from").unwrap_or("");
        let id = el.attr("id").unwrap_or("");
        match el.attr("type") {
            Some("result" | "error") => {
                let Some((sid, _)) = id.rsplit_once('-') else {
                    return false;
                };
                let key = Self::call_key(from, sid);
                let Some(tx) = self.calls.tasks.get(&key) else {
                    return false;
                };
                let ok = el.attr("type") == Some("result");
                let input = Input::IqResponse {
                    id: id.to_owned(),
                    ok,
                };
                // Never wait on a call's queue: one stuck call must not hold up the router.
                if tx.try_send(input).is_err() {
                    debug!(%from, "call busy or gone: IQ response dropped");
                }
                true
            }
            Some("set") => {
                let Some(j) = el.get_child("jingle", ns::JINGLE) else {
                    return false;
                };
                let sid = j.attr("sid").unwrap_or("");
                let key = Self::call_key(from, sid);
                if let Some(tx) = self.calls.tasks.get(&key) {
                    let input = Input::Jingle {
                        id: id.to_owned(),
                        from: from.to_owned(),
                        jingle: j.clone(),
                    };
                    match tx.try_send(input) {
                        Ok(()) => return true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            // The call's queue is full (a flood, or the task waits for an ACK):
                            // the sender may retry; the router goes on.
                            let err = XmppError::new(DefinedCondition::ResourceConstraint);
                            let from_us = self.call_from_attr(el);
                            let _ = self
                                .xmpp
                                .send(stanza::iq_error(&from_us, from, id, err, None))
                                .await;
                            return true;
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            self.calls.tasks.remove(&key);
                        }
                    }
                }
                if j.attr("action") == Some("session-initiate") {
                    self.call_from_xmpp(el, j.clone(), key).await;
                } else {
                    let err = stanza::iq_error(
                        &self.call_from_attr(el),
                        from,
                        id,
                        XmppError::new(DefinedCondition::ItemNotFound),
                        Some("unknown-session"),
                    );
                    let _ = self.xmpp.send(err).await;
                }
                true
            }
            _ => false,
        }
    }

    /// X calls S: a session-initiate to a SIP user's JID.
    async fn call_from_xmpp(&mut self, iq: &Element, j: Element, key: (String, String)) {
        let (from, to, id) = (
            iq.attr("from").unwrap_or(""),
            iq.attr("to").unwrap_or(""),
            iq.attr("id").unwrap_or(""),
        );
        let parsed = (Jid::new(from), Jid::new(to));
        let addrs =
            match parsed {
                (Ok(f), Ok(t)) if f.resource().is_some() && t.resource().is_some() => {
                    crate::im::translate::xmpp_addresses(
                        &f,
                        &t,
                        &self.cfg.map,
                        crate::errmap::Target::Full,
                    )
                    .map_err(|r| r.xmpp)
                }
                _ => Err(XmppError::new(DefinedCondition::BadRequest)
                    .with_text("Jingle needs full JIDs")),
            };
        let addrs = match addrs {
            Ok(_) if self.calls.tasks.len() >= self.ops.effective.calls.max_calls => {
                Err(XmppError::new(DefinedCondition::ResourceConstraint)
                    .with_text("too many calls"))
            }
            other => other,
        };
        let mut settings = self.call_settings();
        let slot = match addrs {
            Ok(_) => self.call_relay(settings.origin),
            Err(_) => Ok(None),
        };
        let addrs = match (addrs, slot) {
            (Ok(_), Err(())) => Err(XmppError::new(DefinedCondition::ResourceConstraint)
                .with_text("no media relay ports left")),
            (Ok(a), Ok(slot)) => Ok((a, slot)),
            (Err(e), _) => Err(e),
        };
        let ((request_uri, sender, contact, _), slot) = match addrs {
            Ok(a) => a,
            Err(e) => {
                debug!(%from, %to, "session-initiate refused");
                let _ = self
                    .xmpp
                    .send(stanza::iq_error(
                        &self.call_from_attr(iq),
                        from,
                        id,
                        e,
                        None,
                    ))
                    .await;
                return;
            }
        };
        let invite = InviteOut {
            request_uri: call_target(request_uri).to_uri(),
            from: sender.aor(),
            contact: self
                .sip
                .contact_uri(contact.user.as_deref().unwrap_or(""), contact.gr.as_deref()),
            subject: None,
            sdp: Vec::new(),
        };
        info!(xmpp = %from, sip = %invite.request_uri, sid = %key.1, "call from XMPP");
        let relay = slot.and_then(|s| self.relay_spawn(s, None));
        settings.anchor = relay.as_ref().map(|r| r.1.clone());
        let relay = relay.map(|r| r.0);
        let (call, first) = Call::from_jingle(settings, id, from, to, &j);
        let dialer: Arc<dyn call_session::Dialer> = Arc::new(SipDialer {
            sip: self.sip.clone(),
            invite,
        });
        self.call_spawn(key, call, first, None, Some(dialer), relay);
    }

    /// XEP-0353 messages.
    async fn call_jmi(&mut self, el: &Element, jmi: &Element) {
        let from = el.attr("from").unwrap_or("");
        let to = el.attr("to").unwrap_or("");
        let id = jmi.attr("id").unwrap_or("");
        match jmi.name() {
            "propose" => {
                // X calls S: proceed at once from S's call JID; the INVITE (and the SIP
                // side's ringing) follows X's session-initiate (MEDIA-25, "by policy").
                let Ok(to_jid) = Jid::new(to) else { return };
                if !self.cfg.map.is_component_jid(&to_jid)
                    || to_jid.node().is_none()
                    || id.is_empty()
                {
                    return;
                }
                let me = match to_jid.resource() {
                    Some(_) => to.to_owned(),
                    None => format!("{to}/{CALL_RESOURCE}"),
                };
                let _ = self
                    .xmpp
                    .send(stanza::jmi("proceed", id, &me, from, vec![]))
                    .await;
            }
            "proceed" | "reject" => {
                let key = Self::call_key(from, id);
                if let Some(tx) = self.calls.tasks.get(&key) {
                    let input = Input::Jmi {
                        from: from.to_owned(),
                        el: jmi.clone(),
                    };
                    if tx.try_send(input).is_err() {
                        debug!(%from, "call busy or gone: JMI message dropped");
                    }
                }
            }
            _ => {}
        }
    }

    /// S calls X: an INVITE offering audio or video.
    pub(super) async fn call_invite(&mut self, msg: SipMessageIn, pending: PendingInvite) {
        if !self.xmpp.is_up() {
            reject_later(
                pending,
                SipStatus::with_reason(503, "XMPP Service Unavailable"),
            );
            return;
        }
        if self.calls.tasks.len() >= self.ops.effective.calls.max_calls {
            reject_later(pending, SipStatus::with_reason(503, "Too Many Calls"));
            return;
        }
        let (to, from) = match crate::im::translate::sip_addresses(&msg, &self.cfg.map) {
            Ok(v) => v,
            Err(rej) => {
                debug!(sip = %rej.sip.code, "call refused");
                reject_later(pending, rej.sip);
                return;
            }
        };
        let x_bare = to.to_bare().to_string();
        let s_jid = match from.resource() {
            Some(_) => from.to_string(),
            None => format!("{}/{CALL_RESOURCE}", from.to_bare()),
        };
        let user = self
            .cfg
            .map
            .jid_to_sip(&Jid::from(to.to_bare()))
            .ok()
            .and_then(|a| a.user)
            .unwrap_or_default();
        let contact = self.sip.contact_uri(&user, None);
        let sid = crate::sip::inbound::random_token();
        let key = (x_bare.clone(), sid.clone());
        let mut settings = self.call_settings();
        let Ok(slot) = self.call_relay(settings.origin) else {
            reject_later(pending, SipStatus::with_reason(503, "No Media Ports"));
            return;
        };
        let relay = slot.and_then(|s| self.relay_spawn(s, Some(pending.source().ip())));
        settings.anchor = relay.as_ref().map(|r| r.1.clone());
        let relay = relay.map(|r| r.0);
        let Some(leg) = Leg::incoming(pending, &contact).await else {
            return;
        };
        info!(call_id = %msg.call_id, xmpp = %x_bare, sip = %s_jid, %sid, "call from SIP");
        let (call, first) = Call::from_invite(settings, &sid, &s_jid, &x_bare, &msg.body);
        self.call_spawn(key, call, first, Some(Box::new(leg)), None, relay);
    }

    /// Start the relay task of a call. `s_source`: where the SIP party's INVITE came from,
    /// from where its media may also come (NAT latching).
    /// The call then goes direct when the task cannot start.
    fn relay_spawn(
        &self,
        slot: RelaySlot,
        s_source: Option<std::net::IpAddr>,
    ) -> Option<(Relay, Anchor)> {
        let secs = self.ops.effective.media.timeout_secs;
        let timeout = (secs > 0).then(|| Duration::from_secs(secs));
        match Relay::spawn(slot.ports, None, s_source, timeout, slot.anchor.ice.clone()) {
            Ok(r) => Some((r, slot.anchor)),
            Err(e) => {
                tracing::warn!(error = %e, "media relay could not start: media goes direct");
                None
            }
        }
    }

    fn call_spawn(
        &mut self,
        key: (String, String),
        call: Call,
        first: Vec<crate::media::call::Output>,
        leg: Option<Box<dyn call_session::SipLeg>>,
        dialer: Option<Arc<dyn call_session::Dialer>>,
        relay: Option<Relay>,
    ) {
        let (tx, rx) = mpsc::channel(32);
        let xmpp = self.xmpp.clone();
        let inbox = self.inbox.clone();
        let span = info_span!("call", xmpp = %key.0, sid = %key.1);
        let k = key.clone();
        tokio::spawn(
            async move {
                let reason = call_session::run(call, first, leg, dialer, rx, xmpp, relay).await;
                info!(reason = reason.name(), "call ended");
                let _ = inbox.send(Event::CallEnded { key: k }).await;
            }
            .instrument(span),
        );
        self.calls.tasks.insert(key, tx);
    }

    /// A call task ended.
    pub(super) fn on_call_ended(&mut self, key: (String, String)) {
        if self.calls.tasks.get(&key).is_some_and(|tx| tx.is_closed()) {
            self.calls.tasks.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::SipAddr;

    /// MEDIA-26: `bob@sip.example.com/sip` is called at `sip:bob@example.net`, a GRUU
    /// resource at the GRUU.
    #[test]
    fn media_26_call_resource_is_not_a_gruu() {
        let aor = SipAddr::parse("sip:bob@example.net").unwrap();
        let mut synthetic = aor.clone();
        synthetic.gr = Some(CALL_RESOURCE.to_owned());
        assert_eq!(call_target(synthetic).to_uri(), aor.to_uri());
        let mut gruu = aor.clone();
        gruu.gr = Some("dr4hcr0st3lup4c".to_owned());
        assert_eq!(call_target(gruu.clone()).to_uri(), gruu.to_uri());
        assert!(call_target(gruu).to_uri().contains(";gr=dr4hcr0st3lup4c"));
    }
}
