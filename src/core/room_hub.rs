//! The router's side of SIP users in XMPP MUC rooms (RFC 7702 §6): which INVITEs are joins,
//! the limits, and which XMPP stanzas go to which membership.
//!
//! # Addressing (MUC-18)
//!
//! A room `room@<service>` of a MUC service listed in `[muc] services` is reached from SIP
//! as `sip:room@<service>` (the SIP network routes the service's domain to the gateway) or,
//! through the gateway's own domain, as `sip:room%40<service>@<component>`. The INVITE must
//! offer MSRP; the SIP user becomes the occupant `<user's JID>/muc-<token>`, a resource of
//! its own per membership so the MUC's stanzas find their membership by `to` alone.

use super::room_session::{self, Cmd, Start};
use super::Router;
use crate::addr::{BareJid, FullJid, SipAddr};
use crate::chat::sdp;
use crate::errmap::SipStatus;
use crate::im::SipMessageIn;
use crate::muc::bridge::Membership;
use crate::sip::invite::PendingInvite;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_xmpp::minidom::Element;
use tracing::info;

/// Stanzas queued for one membership before the router gives up on it.
const MEMBER_QUEUE: usize = 4096;

/// The memberships, by occupant full JID.
#[derive(Default)]
pub struct Rooms {
    members: HashMap<String, Entry>,
    next_id: u64,
}

struct Entry {
    tx: mpsc::Sender<Cmd>,
    /// Set when a stanza for the membership could not be queued: its view of the room is
    /// wrong from then on, so it ends rather than go on silently wrong.
    lost: Arc<AtomicBool>,
    id: u64,
    /// (room, SIP user's AOR): one membership per pair.
    pair: (String, String),
}

impl Rooms {
    /// Memberships running.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }
}

/// The room an INVITE's Request-URI names, when it names one on a configured service.
pub fn room_of(
    request_uri: &str,
    component: &str,
    services: &crate::config::MucConfig,
) -> Option<BareJid> {
    let addr = SipAddr::parse(request_uri).ok()?;
    let user = addr.user.as_deref()?;
    let (node, domain) = if services.is_service(&addr.host) {
        (user, addr.host.as_str())
    } else if addr.host.eq_ignore_ascii_case(component) {
        let (node, domain) = user.rsplit_once('@')?;
        if !services.is_service(domain) {
            return None;
        }
        (node, domain)
    } else {
        return None;
    };
    BareJid::new(&format!("{node}@{domain}"))
        .ok()
        .filter(|j| j.node().is_some())
}

/// A display name from a `From` header (`"Romeo" <sip:…>` or `Romeo <sip:…>`), if any.
fn display_name(from: &str) -> Option<String> {
    let from = from.trim();
    let name = if let Some(rest) = from.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        loop {
            match chars.next()? {
                '\\' => out.push(chars.next()?),
                '"' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        from.split_once('<')?.0.trim().to_owned()
    };
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim().to_owned();
    (!name.is_empty()).then_some(name)
}

fn reject_later(pending: PendingInvite, status: SipStatus) {
    tokio::spawn(async move { pending.reject(&status).await });
}

impl Router {
    /// The room this INVITE joins, if it is a join.
    pub(super) fn room_invite_target(&self, msg: &SipMessageIn) -> Option<BareJid> {
        let muc = &self.ops.effective.muc;
        if muc.services.is_empty() {
            return None;
        }
        room_of(&msg.request_uri, self.cfg.map.component(), muc)
    }

    /// MUC-18: a SIP user asks to join `room`.
    pub(super) async fn room_invite(
        &mut self,
        room: BareJid,
        msg: SipMessageIn,
        pending: PendingInvite,
    ) {
        if !self.xmpp.is_up() {
            reject_later(
                pending,
                SipStatus::with_reason(503, "XMPP Service Unavailable"),
            );
            return;
        }
        let Ok(mut from_addr) = SipAddr::parse(&msg.from) else {
            reject_later(pending, SipStatus::with_reason(400, "Bad From"));
            return;
        };
        from_addr.gr = None;
        let user_jid = match self.cfg.map.sip_to_jid(&from_addr) {
            Ok(j) if self.cfg.map.is_component_jid(&j) => j.to_bare(),
            // GEN-5: an XMPP user of ours does not come in through SIP.
            _ => {
                reject_later(
                    pending,
                    SipStatus::with_reason(403, "Forbidden (From is not a SIP user)"),
                );
                return;
            }
        };
        let is_sdp = msg
            .content_type
            .as_deref()
            .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
        let offer = match is_sdp.then(|| sdp::parse(&msg.body)) {
            Some(Ok(o)) => o,
            _ => {
                // RFC 7702 §6.1: a room is joined with an MSRP session.
                reject_later(
                    pending,
                    SipStatus::with_reason(488, "Not Acceptable Here (rooms take MSRP only)"),
                );
                return;
            }
        };
        if offer.tls && !self.chat.ctx().transport.tls() {
            reject_later(
                pending,
                SipStatus::with_reason(488, "Not Acceptable Here (no MSRP over TLS)"),
            );
            return;
        }
        let muc = self.ops.effective.muc.clone();
        if self.rooms.members.len() >= muc.max_members {
            crate::ops::metrics::get().limit_hit("muc_max_members");
            reject_later(
                pending,
                SipStatus::with_reason(503, "Too Many Room Members"),
            );
            return;
        }
        let pair = (room.to_string(), from_addr.aor());
        if self.rooms.members.values().any(|e| e.pair == pair) {
            reject_later(pending, SipStatus::with_reason(486, "Already In This Room"));
            return;
        }
        let resource = format!("muc-{}", &crate::sip::inbound::random_token()[..12]);
        let Ok(occupant) = user_jid.with_resource_str(&resource) else {
            reject_later(pending, SipStatus::new(500));
            return;
        };
        let nick = display_name(&msg.from)
            .filter(|n| room.with_resource_str(n).is_ok())
            .or_else(|| from_addr.user.clone())
            .unwrap_or_else(|| "sip".into());
        let room_uri = SipAddr::parse(&msg.request_uri)
            .map(|mut a| {
                a.gr = None;
                a.port = None;
                a
            })
            .unwrap_or_else(|_| from_addr.clone());
        let membership = Membership {
            room: room.clone(),
            room_uri,
            occupant: occupant.clone(),
            user_uri: from_addr.to_uri(),
            nick,
        };
        let contact = self
            .sip
            .contact_uri(room.node().map_or("room", |n| n.as_str()), None);
        info!(call_id = %msg.call_id, %room, occupant = %occupant, "SIP user joins an XMPP room (MUC-18)");
        self.room_spawn(
            occupant,
            pair,
            Start {
                pending,
                offer,
                contact,
                call_id: msg.call_id.clone(),
                membership,
                join_timeout: Duration::from_secs(muc.join_timeout_secs),
            },
        );
    }

    fn room_spawn(&mut self, occupant: FullJid, pair: (String, String), start: Start) {
        self.rooms.next_id += 1;
        let id = self.rooms.next_id;
        let key = occupant.to_string();
        // The MUC sends one presence per occupant on join (hundreds in a big room), then one
        // stanza at a time; the queue holds the burst of rooms of a few thousand (the channel
        // allocates as it fills, so an idle membership costs none of it).
        let (tx, rx) = mpsc::channel(MEMBER_QUEUE);
        let lost = Arc::new(AtomicBool::new(false));
        let fut = room_session::run(
            self.chat.ctx().clone(),
            key.clone(),
            id,
            start,
            rx,
            lost.clone(),
        );
        room_session::spawn_supervised(fut, self.chat.ctx().router.clone(), key.clone(), id);
        self.rooms.members.insert(key, Entry { tx, lost, id, pair });
    }

    /// A presence or message for a membership's occupant JID: handed to it (`true`), without
    /// waiting on it. A membership whose queue is full loses the stanza and is told so: it
    /// ends (503 while joining, BYE after) rather than show the SIP user a wrong room.
    pub(super) fn room_stanza(&mut self, el: &Element) -> bool {
        if !matches!(el.name(), "presence" | "message") {
            return false;
        }
        let Some(to) = el.attr("to") else {
            return false;
        };
        let Some(e) = self.rooms.members.get(to) else {
            return false;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = e.tx.try_send(Cmd::Stanza(el.clone())) {
            crate::ops::metrics::get().limit_hit("muc_member_queue");
            if !e.lost.swap(true, Ordering::Relaxed) {
                info!(
                    to,
                    "membership queue full: a stanza is lost, the membership ends"
                );
            }
        }
        true
    }

    /// A membership ended.
    pub(super) fn on_room_ended(&mut self, key: String, id: u64) {
        if self.rooms.members.get(&key).is_some_and(|e| e.id == id) {
            self.rooms.members.remove(&key);
        }
    }

    /// The XMPP link went down: every membership ends with BYE (the MUC lost the occupant
    /// with the stream; the SIP user can join again once the link is back).
    pub(super) fn room_link_lost(&mut self) {
        for e in self.rooms.members.values() {
            if e.tx.try_send(Cmd::LinkLost).is_err() {
                e.lost.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Stop every membership (shutdown): each leaves its room and sends BYE.
    pub(super) async fn room_stop_all(&mut self) {
        for e in self.rooms.members.values() {
            let _ = e.tx.send(Cmd::Stop).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muc_18_room_addresses() {
        let muc: crate::config::MucConfig =
            toml::from_str("services = [\"conference.example.com\"]").unwrap();
        let c = "sip.example.com";
        let table: &[(&str, Option<&str>)] = &[
            (
                "sip:coven@conference.example.com",
                Some("coven@conference.example.com"),
            ),
            (
                "sip:Coven@Conference.Example.com;transport=tcp",
                Some("coven@conference.example.com"),
            ),
            (
                "sip:coven%40conference.example.com@sip.example.com",
                Some("coven@conference.example.com"),
            ),
            ("sip:coven%40elsewhere.org@sip.example.com", None),
            ("sip:coven@other.example.com", None),
            ("sip:conference.example.com", None),
            ("sip:romeo@sip.example.com", None),
        ];
        for (uri, want) in table {
            assert_eq!(
                room_of(uri, c, &muc).map(|j| j.to_string()).as_deref(),
                *want,
                "{uri}"
            );
        }
    }

    #[test]
    fn muc_19_display_names() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "\"Romeo M.\" <sip:romeo@example.net>;tag=1",
                Some("Romeo M."),
            ),
            ("Romeo <sip:romeo@example.net>", Some("Romeo")),
            ("<sip:romeo@example.net>", None),
            ("sip:romeo@example.net", None),
            ("\"a\\\"b\" <sip:x@y>", Some("a\"b")),
            ("\"\u{7}\" <sip:x@y>", None),
            ("\"unterminated <sip:x@y>", None),
        ];
        for (from, want) in table {
            assert_eq!(display_name(from).as_deref(), *want, "{from}");
        }
    }
}
