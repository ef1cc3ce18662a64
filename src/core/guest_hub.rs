//! The router's side of XMPP users in SIP/MSRP chat rooms (RFC 7702 §5): which stanzas are
//! joins and which belong to a guest.
//!
//! # Addressing (MUC-1)
//!
//! A SIP room `sip:room@host` has the JID the address plan gives any SIP URI
//! (`room@<component>` for the default SIP domain, `room\40host@<component>` otherwise). A
//! presence to an occupant JID of it (`<room JID>/nick`) carrying
//! `<x xmlns='http://jabber.org/protocol/muc'/>` is a join (XEP-0045 §7.2.2); then every
//! presence and message from that user's full JID to the room or its occupants belongs to the
//! guest, keyed by (user's full JID, room JID).

use super::guest_session::{self, Cmd, Start};
use super::Router;
use crate::addr::Jid;
use crate::errmap::{DefinedCondition, XmppError};
use crate::muc::guest::Guest;
use crate::sip::invite::InviteOut;
use crate::xmpp::service;
use crate::xmpp::xml::BuilderExt;
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio_xmpp::minidom::Element;
use tracing::{debug, info};

/// XEP-0045's join marker.
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// disco#info of a SIP room (XEP-0045 §6.4): a text conference that is open, public and
/// non-anonymous as far as the gateway can tell (RFC 7702 maps no room configuration).
fn room_info(query: &Element) -> Element {
    let mut b = Element::builder("query", NS_DISCO_INFO).a("node", query.attr("node"));
    b = b.append(
        Element::builder("identity", NS_DISCO_INFO)
            .a("category", "conference")
            .a("type", "text")
            .a("name", "SIP chat room")
            .build(),
    );
    for f in [
        NS_DISCO_INFO,
        NS_MUC,
        "muc_open",
        "muc_public",
        "muc_unmoderated",
        "muc_semianonymous",
    ] {
        b = b.append(
            Element::builder("feature", NS_DISCO_INFO)
                .a("var", f)
                .build(),
        );
    }
    b.build()
}

/// The guests, by (user's full JID, room JID).
#[derive(Default)]
pub struct Guests {
    guests: HashMap<(String, String), Entry>,
    next_id: u64,
}

struct Entry {
    tx: mpsc::Sender<Cmd>,
    id: u64,
}

impl Guests {
    /// Guests running.
    pub(super) fn len(&self) -> usize {
        self.guests.len()
    }
}

impl Router {
    /// A presence or message of an XMPP user for a SIP room: handed to its guest, or a join
    /// that starts one (`true`: taken).
    pub(super) async fn guest_stanza(&mut self, el: &Element) -> bool {
        if !matches!(el.name(), "presence" | "message") || el.attr("type") == Some("error") {
            return false;
        }
        let (Some(Ok(from)), Some(Ok(to))) =
            (el.attr("from").map(Jid::new), el.attr("to").map(Jid::new))
        else {
            return false;
        };
        if !self.cfg.map.is_component_jid(&to) || to.node().is_none() || from.resource().is_none() {
            return false;
        }
        let key = (from.to_string(), to.to_bare().to_string());
        if let Some(e) = self.guests.guests.get(&key) {
            if let Err(mpsc::error::TrySendError::Full(_)) = e.tx.try_send(Cmd::Stanza(el.clone()))
            {
                crate::ops::metrics::get().limit_hit("muc_guest_queue");
                let err = XmppError::new(DefinedCondition::ResourceConstraint)
                    .with_text("too many stanzas in flight to this room");
                self.reply_error(el, err).await;
            }
            return true;
        }
        let is_join = el.name() == "presence"
            && el.attr("type").is_none()
            && to.resource().is_some()
            && el.get_child("x", NS_MUC).is_some();
        if !is_join {
            return false;
        }
        self.guest_join(el, from, to, key).await;
        true
    }

    async fn guest_join(&mut self, el: &Element, from: Jid, to: Jid, key: (String, String)) {
        let muc = &self.ops.effective.muc;
        if self.guests.guests.len() >= muc.max_members {
            crate::ops::metrics::get().limit_hit("muc_max_members");
            let err = XmppError::new(DefinedCondition::ServiceUnavailable)
                .with_text("too many room members through this gateway");
            self.reply_error(el, err).await;
            return;
        }
        let room_addr = match self.cfg.map.jid_to_sip(&Jid::from(to.to_bare())) {
            Ok(a) => a,
            Err(e) => {
                let err = XmppError::new(DefinedCondition::ItemNotFound).with_text(e.to_string());
                self.reply_error(el, err).await;
                return;
            }
        };
        let user_addr = match self.cfg.map.jid_to_sip(&from) {
            Ok(a) => a,
            Err(e) => {
                let err = XmppError::new(DefinedCondition::Forbidden).with_text(e.to_string());
                self.reply_error(el, err).await;
                return;
            }
        };
        let nick = to
            .resource()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        let invite = InviteOut {
            request_uri: room_addr.to_uri(),
            from: user_addr.aor(),
            contact: self.sip.contact_uri(
                user_addr.user.as_deref().unwrap_or(""),
                user_addr.gr.as_deref(),
            ),
            subject: None,
            sdp: Vec::new(),
        };
        let guest = Guest {
            room: to.to_bare(),
            room_uri: room_addr,
            user: from,
            // The AOR, as in the INVITE's From: the switch checks CPIM From against it.
            user_uri: user_addr.aor(),
            nick,
        };
        info!(xmpp = %key.0, room = %key.1, "XMPP user joins a SIP room (MUC-1)");
        self.guests.next_id += 1;
        let id = self.guests.next_id;
        let (tx, rx) = mpsc::channel(64);
        let ctx = self.chat.ctx().clone();
        let router = ctx.router.clone();
        let fut = guest_session::run(ctx, key.clone(), id, Start { guest, invite }, rx);
        guest_session::spawn_supervised(fut, router, key.clone(), id);
        self.guests.guests.insert(key, Entry { tx, id });
    }

    /// An IQ for a SIP room (a JID of a `[muc] sip_room_domains` domain, or a room a guest
    /// is in): disco#info says it is a room; room administration is not mapped (MUC-32).
    /// `true` when answered.
    pub(super) async fn room_iq(&mut self, el: &Element) -> bool {
        if el.name() != "iq" || !matches!(el.attr("type"), Some("get" | "set")) {
            return false;
        }
        let Some(Ok(to)) = el.attr("to").map(Jid::new) else {
            return false;
        };
        if to.resource().is_some() || !self.cfg.map.is_component_jid(&to) {
            return false;
        }
        let listed = self.cfg.map.jid_to_sip(&to).is_ok_and(|a| {
            self.ops
                .effective
                .muc
                .sip_room_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&a.host))
        });
        let room = to.to_string();
        let in_use = self.guests.guests.keys().any(|(_, r)| *r == room);
        if !listed && !in_use {
            return false;
        }
        let Some(query) = el.children().next() else {
            return false;
        };
        let component = self.cfg.map.component().to_owned();
        let reply = match (el.attr("type"), query.name(), query.ns().as_str()) {
            (Some("get"), "query", NS_DISCO_INFO) => {
                service::result_reply(el, Some(room_info(query)), &component)
            }
            (_, "query", NS_MUC_ADMIN | NS_MUC_OWNER) => service::error_reply(
                el,
                XmppError::new(DefinedCondition::FeatureNotImplemented)
                    .with_text("room administration is not available through the SIP gateway"),
                &component,
            ),
            _ => return false,
        };
        let _ = self.xmpp.send(reply).await;
        true
    }

    /// A guest ended.
    pub(super) fn on_guest_ended(&mut self, key: (String, String), id: u64) {
        if self.guests.guests.get(&key).is_some_and(|e| e.id == id) {
            debug!(xmpp = %key.0, room = %key.1, "guest gone");
            self.guests.guests.remove(&key);
        }
    }

    /// The XMPP link went down: every guest leaves its SIP room (BYE); its user can join
    /// again once the link is back.
    pub(super) fn guest_link_lost(&mut self) {
        for e in self.guests.guests.values() {
            let _ = e.tx.try_send(Cmd::LinkLost);
        }
    }

    /// Stop every guest (shutdown): each sends BYE and tells its user it left.
    pub(super) async fn guest_stop_all(&mut self) {
        for e in self.guests.guests.values() {
            let _ = e.tx.send(Cmd::Stop).await;
        }
    }
}
