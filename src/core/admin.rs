//! Admin ad-hoc commands (XEP-0050) on the component JID, and configuration reload.
//!
//! Only the bare JIDs in `[admin] jids` may list or run commands; the `from` of an IQ is
//! stamped by the XMPP server, so it can be trusted here. Others see an empty command list
//! and get `forbidden` (XEP-0050 §4.4 leaves the list to the responder's policy).

use super::Router;
use crate::config::Config;
use crate::errmap::{DefinedCondition, XmppError};
use crate::ops::reload::Plan;
use crate::xmpp::adhoc::{self, Action, Input, Request, NS_COMMANDS};
use crate::xmpp::service;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_xmpp::minidom::Element;
use tracing::{info, warn};

/// The commands: node, name shown in clients.
const COMMANDS: &[(&str, &str)] = &[
    ("status", "Show status and counters"),
    ("sessions", "List a user's sessions"),
    ("end-session", "End a chat session"),
    ("reload", "Reload the configuration"),
    ("translate", "Translate a SIP URI or JID"),
];

const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// What the router needs to operate itself.
#[derive(Debug, Clone)]
pub struct Ops {
    /// The settings in effect: the start-up file with every reload's reloadable parts.
    pub effective: Arc<Config>,
    /// Where reloads read from (`None`: started from a config in memory).
    pub config_path: Option<PathBuf>,
    /// Process start, for uptime.
    pub started: Instant,
    /// The SIP access gate the SIP layer consults; reloads swap its content.
    pub gate: crate::sip::gate::GateCell,
    /// SIP over TLS: the listener's certificate and the outbound trust roots, re-read on reload.
    pub tls: Option<Arc<crate::sip::tls::Tls>>,
}

impl Ops {
    /// Ops for a gateway started from `cfg`, read from `path`, with the SIP layer's `gate`.
    pub fn new(cfg: &Config, path: Option<PathBuf>, gate: crate::sip::gate::GateCell) -> Ops {
        Ops {
            effective: Arc::new(cfg.clone()),
            config_path: path,
            started: Instant::now(),
            gate,
            tls: None,
        }
    }

    /// The same, with the TLS state reloads refresh.
    pub fn with_tls(mut self, tls: Arc<crate::sip::tls::Tls>) -> Ops {
        self.tls = Some(tls);
        self
    }
}

/// The outcome of a reload, for SIGHUP's log line and the command's note.
pub type ReloadResult = Result<Plan, String>;

impl Router {
    fn is_admin(&self, iq: &Element) -> bool {
        let Some(from) = iq.attr("from") else {
            return false;
        };
        let bare = from.split('/').next().unwrap_or("");
        self.ops
            .effective
            .admin
            .jids
            .iter()
            .any(|a| a.eq_ignore_ascii_case(bare))
    }

    /// Answer the IQ if it is about commands. `false`: not ours, the IQ service answers.
    pub(super) async fn admin_iq(&mut self, iq: &Element) -> bool {
        let to_component = iq
            .attr("to")
            .is_some_and(|t| t.eq_ignore_ascii_case(self.cfg.map.component()));
        if !to_component {
            return false;
        }
        let mut children = iq.children();
        let (Some(payload), None) = (children.next(), children.next()) else {
            return false;
        };
        let typ = iq.attr("type").unwrap_or("");
        let reply = if typ == "get"
            && payload.is("query", NS_DISCO_ITEMS)
            && payload.attr("node") == Some(NS_COMMANDS)
        {
            let list: &[(&str, &str)] = if self.is_admin(iq) { COMMANDS } else { &[] };
            Ok(Some(adhoc::items(self.cfg.map.component(), list)))
        } else if typ == "set" && payload.is("command", NS_COMMANDS) {
            if self.is_admin(iq) {
                self.command(payload).await
            } else {
                warn!(
                    from = iq.attr("from"),
                    "admin command refused: not an admin"
                );
                Err(XmppError::new(DefinedCondition::Forbidden)
                    .with_text("admin commands are for the JIDs in [admin] jids"))
            }
        } else {
            return false;
        };
        let component = self.cfg.map.component().to_string();
        let el = match reply {
            Ok(p) => service::result_reply(iq, p, &component),
            Err(e) => service::error_reply(iq, e, &component),
        };
        let _ = self.xmpp.send(el).await;
        true
    }

    async fn command(&mut self, payload: &Element) -> Result<Option<Element>, XmppError> {
        let req = adhoc::parse(payload)
            .map_err(|t| XmppError::new(DefinedCondition::BadRequest).with_text(t))?;
        if !COMMANDS.iter().any(|(n, _)| *n == req.node) {
            return Err(XmppError::new(DefinedCondition::ItemNotFound).with_text("no such command"));
        }
        if req.action == Action::Cancel {
            return Ok(Some(adhoc::canceled(&req)));
        }
        info!(node = %req.node, "admin command");
        let input = |var, label| Input {
            var,
            label,
            required: true,
        };
        let el = match req.node.as_str() {
            "status" => adhoc::completed(&req, None, "stox status", &self.status_rows()),
            "reload" => {
                let (kind, text) = match self.reload() {
                    Ok(plan) => ("info", plan.summary()),
                    Err(e) => ("error", e),
                };
                adhoc::completed(&req, Some((kind, &text)), "", &[])
            }
            "translate" => match req.field("address") {
                None => ask(
                    &req,
                    "Translate an address",
                    &[input("address", "SIP URI or JID")],
                ),
                Some(a) => match self.cfg.map.translate(a) {
                    Ok(t) => adhoc::completed(&req, None, "Translation", &[(a.to_string(), t)]),
                    Err(e) => adhoc::completed(&req, Some(("error", &e.to_string())), "", &[]),
                },
            },
            "sessions" => match req.field("user") {
                None => ask(&req, "List sessions", &[input("user", "JID or SIP URI")]),
                Some(u) => adhoc::completed(&req, None, "Sessions", &self.session_rows(u.trim())),
            },
            _ => match req.field("session") {
                None => ask(
                    &req,
                    "End a chat session",
                    &[input("session", "Session id")],
                ),
                Some(s) => {
                    let ended = match s.trim().parse::<u64>() {
                        Ok(id) => self.chat.end(id).await,
                        Err(_) => false,
                    };
                    let note = if ended {
                        ("info", format!("session {} is ending", s.trim()))
                    } else {
                        ("error", format!("no chat session {:?}", s.trim()))
                    };
                    adhoc::completed(&req, Some((note.0, &note.1)), "", &[])
                }
            },
        };
        Ok(Some(el))
    }

    fn status_rows(&self) -> Vec<(String, String)> {
        let stats = self.presence.stats();
        let mut rows = vec![
            ("version".into(), env!("CARGO_PKG_VERSION").to_string()),
            (
                "uptime_seconds".into(),
                self.ops.started.elapsed().as_secs().to_string(),
            ),
            ("component_link_up".into(), self.xmpp.is_up().to_string()),
            (
                "presence_authorizations".into(),
                stats.authorizations.to_string(),
            ),
            ("presence_dialogs".into(), stats.dialogs.to_string()),
            ("chat_sessions".into(), self.chat.len().to_string()),
            (
                "message_conversations".into(),
                self.conversations.len().to_string(),
            ),
        ];
        rows.extend(crate::ops::metrics::get().samples());
        rows
    }

    fn session_rows(&self, who: &str) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        for (id, jid, aor) in self.chat.sessions_of(who) {
            rows.push((format!("chat session {id}"), format!("{jid} <-> {aor}")));
        }
        for (jid, aor, dir, state, dialogs) in self.presence.subscriptions_of(who) {
            let arrow = match dir {
                crate::store::Direction::XmppWatchesSip => "watches",
                crate::store::Direction::SipWatchesXmpp => "is watched by",
            };
            rows.push((
                "presence".into(),
                format!("{jid} {arrow} {aor}: {state:?}, {dialogs} SIP dialog(s)"),
            ));
        }
        if rows.is_empty() {
            rows.push(("none".into(), format!("no sessions for {who}")));
        }
        rows
    }

    /// Re-read the config file and apply what can change while running.
    pub(super) fn reload(&mut self) -> ReloadResult {
        let result = self.try_reload();
        match &result {
            Ok(plan) => {
                crate::ops::metrics::get().reload("applied");
                info!(summary = %plan.summary(), "configuration reloaded");
            }
            Err(e) => {
                crate::ops::metrics::get().reload("rejected");
                warn!(error = %e, "configuration reload refused; the running settings stay");
            }
        }
        result
    }

    fn try_reload(&mut self) -> ReloadResult {
        let path = self
            .ops
            .config_path
            .clone()
            .ok_or("this gateway was not started from a file")?;
        let new = Config::load(&path)?;
        let problems = new.validate();
        if !problems.is_empty() {
            return Err(format!("invalid configuration: {}", problems.join("; ")));
        }
        let mut plan = crate::ops::reload::plan(&self.ops.effective, &new);
        // Certificate files are read again on every reload (a renewed certificate keeps its
        // path); loaded before anything changes, installed last.
        let tls = match &self.ops.tls {
            Some(t) => Some((t.clone(), t.prepare(&new.sip.tls)?)),
            None => None,
        };
        if plan.applied.contains(&"log.level") {
            // Validation parsed the directive, so the only refusal left is RUST_LOG pinning the
            // level: the rest of the reload still applies.
            if let Err(e) = crate::ops::log::set_level(&new.log.level) {
                warn!(error = %e, "log.level not changed");
                plan.applied.retain(|k| *k != "log.level");
                plan.restart_needed.push("log.level (RUST_LOG is set)");
            }
        }
        let mut eff = (*self.ops.effective).clone();
        eff.sip.routes = new.sip.routes.clone();
        eff.sip.outbound_proxy = new.sip.outbound_proxy.clone();
        eff.messages.inbound_type = new.messages.inbound_type;
        eff.messages.max_body_bytes = new.messages.max_body_bytes;
        let p = &new.presence;
        eff.presence.expires_secs = p.expires_secs;
        eff.presence.min_expires_secs = p.min_expires_secs;
        eff.presence.max_expires_secs = p.max_expires_secs;
        eff.presence.max_subscriptions_per_user = p.max_subscriptions_per_user;
        eff.presence.max_subscriptions_total = p.max_subscriptions_total;
        eff.chat.mode = new.chat.mode;
        eff.chat.domains = new.chat.domains.clone();
        eff.chat.peer_memory_secs = new.chat.peer_memory_secs;
        eff.chat.max_sessions = new.chat.max_sessions;
        eff.chat.max_sessions_per_user = new.chat.max_sessions_per_user;
        eff.admin = new.admin.clone();
        if plan.applied.contains(&"log.level") {
            eff.log.level = new.log.level.clone();
        }
        eff.limits = new.limits.clone();
        // Read when a call or a room membership starts: the new values apply to new ones.
        // (`calls` and `muc` were reported as applied before without being copied here.)
        eff.calls = new.calls.clone();
        eff.muc = new.muc.clone();
        eff.media = new.media.clone();
        let access_changed = plan.applied.iter().any(|k| k.starts_with("access.sip"))
            || plan.applied.contains(&"access.nonce_lifetime_secs");
        if access_changed || new.access.sip_credentials_file.is_some() {
            // The credentials file is read again on every reload: adding a user is a file
            // edit and a SIGHUP, with nothing in the config changed.
            let old = self
                .ops
                .gate
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let gate = old.reconfigured(&new.access, &eff.component.jid)?;
            *self.ops.gate.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(gate);
        }
        let federated = eff.access.federated_xmpp_domains.clone();
        eff.access = new.access.clone();
        eff.access.federated_xmpp_domains = federated;
        // Everything the running parts read per request.
        self.sip
            .set_routes(eff.sip.routes.clone(), eff.sip.outbound_proxy.clone());
        self.cfg.inbound_type = eff.messages.inbound_type;
        self.cfg.limits.max_body_bytes = eff.messages.max_body_bytes;
        self.cfg.presence = eff.presence_settings();
        self.presence.set_settings(eff.presence_settings());
        self.chat.set_config(eff.chat.clone());
        self.rate.set_rate(eff.limits.messages_per_minute);
        self.sub_rate.set_rate(eff.limits.subscriptions_per_minute);
        eff.sip.tls = new.sip.tls.clone();
        if let Some((t, prepared)) = tls {
            if t.commit(prepared) && !plan.applied.iter().any(|k| k.starts_with("sip.tls")) {
                plan.applied.push("sip.tls certificate (file content)");
            }
        }
        self.ops.effective = Arc::new(eff);
        Ok(plan)
    }
}

impl Router {
    /// Take a rate-limit token for an XMPP message with a body (chat states and receipts
    /// are free: they are not what floods a SIP user).
    pub(super) fn rate_check(
        &mut self,
        msg: &xmpp_parsers::message::Message,
    ) -> Result<(), std::time::Duration> {
        if msg.bodies.is_empty() {
            return Ok(());
        }
        let sender = msg
            .from
            .as_ref()
            .map(|f| f.to_bare().to_string())
            .unwrap_or_default();
        self.rate.check(&sender, Instant::now())
    }

    /// Publish the sizes the metrics endpoint shows.
    pub(super) fn gauges(&self, inbox: usize) {
        let m = crate::ops::metrics::get();
        let stats = self.presence.stats();
        m.set_sessions("presence_subscriptions", stats.authorizations);
        m.set_sessions("presence_dialogs", stats.dialogs);
        m.set_sessions("msrp", self.chat.len());
        m.set_sessions("muc_members", self.rooms.len());
        m.set_sessions("muc_guests", self.guests.len());
        m.set_sessions("calls", self.calls.len());
        m.set_sessions("media_relays", crate::media::relay::forward::live());
        m.set_sessions("message_conversations", self.conversations.len());
        m.set_queue("router", inbox);
        m.set_queue("presence_held", self.presence_outbox.len());
        m.set_queue("bounce_window", self.bounce.len());
    }
}

fn ask(req: &Request, title: &str, inputs: &[Input]) -> Element {
    let sid = req.sessionid.clone().unwrap_or_else(adhoc::new_sessionid);
    adhoc::form(req, &sid, title, inputs)
}
