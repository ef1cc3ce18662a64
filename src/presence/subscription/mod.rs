//! Presence authorizations and notification dialogs of RFC 8048 §5 and §7 (checklist
//! PRES-1..PRES-14, PRES-21..PRES-25), as one sans-IO state machine: [`Engine`].
//!
//! The engine plays both RFC 6665 roles: *subscriber* for XMPP users watching SIP users
//! (X->S, §5.2) and *notifier* for SIP users watching XMPP users (S->X, §5.3). It holds every
//! authorization and dialog in memory, mirrors each change to the store as an
//! [`Output::Store`] operation (PRES-14), and is driven by the router with
//! [`Engine::handle`] / [`Engine::poll_output`] / [`Engine::poll_timeout`]. It never reads a
//! clock: every call gets a [`Clock`].
//!
//! Why not ezk's `Dialog`/`Usage`: ezk keeps dialogs in a crate-private table that a restarted
//! process cannot refill, and its usages are async callbacks, not a state machine a test can
//! step. A presence dialog needs exactly what RFC 3261 §12 lists (Call-ID, tags, remote target,
//! route set, CSeqs), which the store persists and this module keeps; ezk still carries every
//! request and response (transactions, retransmissions, transports).
//!
//! Files: `from_xmpp` (presence stanzas in), `from_sip` (SUBSCRIBE/NOTIFY in), `responses`
//! (answers to our requests), `outgoing` (requests, stanzas and dialog timers out), `recovery`
//! (restart and reconnect), `wire` (the SIP shapes shared with the adapter).
//!
//! | event | engine does | checklist |
//! |---|---|---|
//! | XMPP `subscribe` to a SIP JID | new dialog, SUBSCRIBE Expires N, authorization pending | PRES-1, PRES-24 |
//! | NOTIFY `pending` | 200, nothing to XMPP | PRES-2 |
//! | first NOTIFY `active` | 200, `subscribed`, availability per tuple | PRES-3, PRES-20 |
//! | refresh timer, user online | SUBSCRIBE in the dialog before expiry | PRES-4 |
//! | XMPP user offline (last resource unavailable) | SUBSCRIBE Expires 0, authorization kept | PRES-4 |
//! | 403/489/603, `terminated;reason=rejected` | `unsubscribed`, authorization removed | PRES-5, PRES-8 |
//! | 423 | SUBSCRIBE again with Min-Expires | PRES-5 |
//! | 481, `deactivated`/`timeout` | `unavailable`, new dialog at once | PRES-5, PRES-8 |
//! | `probation`/`giveup`/`noresource`, 408, 5xx | `unavailable`, new dialog after retry-after (default 60 s) | PRES-8 |
//! | XMPP `unsubscribe` | SUBSCRIBE Expires 0, `unsubscribed` after its response | PRES-6, PRES-7 |
//! | XMPP `probe` | refresh (authorized) or one-shot fetch (Expires 0) | PRES-4, PRES-21 |
//! | SIP SUBSCRIBE | 200, NOTIFY pending, `subscribe` to XMPP (or active if authorized) | PRES-9 |
//! | XMPP `subscribed` / `unsubscribed` | NOTIFY active / `terminated;reason=rejected` | PRES-10, PRES-11 |
//! | XMPP available/unavailable to a SIP JID | NOTIFY with a full-state PIDF to that SIP user only | PRES-15..19, PRES-25 |
//! | SIP refresh | 200, NOTIFY with current state | PRES-12 |
//! | SIP Expires 0 or dialog expiry | NOTIFY closed + `terminated;reason=timeout`, `unavailable` to XMPP | PRES-13 |
//! | SIP fetch (Expires 0, new dialog) | 200, probe if nothing cached, NOTIFY terminated with state | PRES-22 |
//! | restart ([`Engine::restore`]) | refresh every stored subscriber dialog; probe watched users when the link is up | PRES-14, COMP-5 |

mod from_sip;
mod from_xmpp;
mod outgoing;
mod recovery;
mod responses;
pub mod wire;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sip;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use xmpp_parsers::presence::Presence;

use super::translate::ResourcePresence;
use crate::addr::AddressMap;
use crate::store::{AuthKey, AuthState, Authorization, Dialog, DialogKey, DialogRole, Direction};
pub use wire::{OutMethod, OutRequest, ReqId, Respond, SipRequestIn, SipResponseIn, TxId};

/// The time, twice: monotonic for timers, unix seconds for stored rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Monotonic now.
    pub now: Instant,
    /// Wall-clock now, unix seconds.
    pub unix: i64,
}

impl Clock {
    /// The same clock `d` later.
    pub fn after(self, d: Duration) -> Clock {
        Clock {
            now: self.now + d,
            unix: self.unix + d.as_secs() as i64,
        }
    }
}

/// Tunables (config `[presence]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `Expires` the gateway asks for and grants (RFC 3856 §6.4 default 3600).
    pub expires: u32,
    /// Shortest inbound SUBSCRIBE interval accepted; shorter ones get 423 (RFC 6665 §4.2.1.1).
    pub min_expires: u32,
    /// Longest interval granted to SIP subscribers.
    pub max_expires: u32,
    /// Authorizations (pending or granted) one watcher may hold (PRES-24).
    pub max_per_user: usize,
    /// Authorizations in total (PRES-24).
    pub max_total: usize,
    /// Wait before a new dialog after a transient failure without `retry-after`.
    pub retry: Duration,
    /// How long a SIP fetch waits for the XMPP server's answer to our probe (PRES-22).
    pub fetch_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expires: 3600,
            min_expires: 60,
            max_expires: 86_400,
            max_per_user: 1000,
            max_total: 100_000,
            retry: Duration::from_secs(60),
            fetch_wait: Duration::from_secs(2),
        }
    }
}

/// What the engine reacts to.
#[derive(Debug)]
pub enum Input {
    /// A presence stanza from the XMPP server, parsed; `lang` is the stanza's `xml:lang`.
    Presence {
        /// The stanza.
        presence: Box<Presence>,
        /// Its `xml:lang`.
        lang: Option<String>,
    },
    /// An inbound SUBSCRIBE or NOTIFY; answer with [`Output::Respond`] carrying `tx`.
    Request {
        /// Transaction handle.
        tx: TxId,
        /// The request.
        req: Box<SipRequestIn>,
    },
    /// The final response to an [`OutRequest`].
    Response {
        /// Which request.
        id: ReqId,
        /// The response.
        resp: SipResponseIn,
    },
    /// The XMPP link came up (again): probe watched users to refill the presence cache.
    LinkUp,
}

/// A store write, in the order the engine made the change (PRES-14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert or replace an authorization.
    PutAuth(Authorization),
    /// Remove an authorization.
    DeleteAuth(AuthKey),
    /// Insert or replace a dialog.
    PutDialog(Dialog),
    /// Remove a dialog.
    DeleteDialog(DialogKey),
}

/// What the adapters must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this presence stanza to the XMPP server.
    Stanza(Presence),
    /// Send this SIP request.
    Request(OutRequest),
    /// Answer a held SIP transaction.
    Respond(Respond),
    /// Persist.
    Store(StoreOp),
}

/// Engine counters (for logs and the benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Authorizations held (pending or granted).
    pub authorizations: usize,
    /// Live SIP dialogs.
    pub dialogs: usize,
    /// Pending timers.
    pub timers: usize,
}

type DKey = (String, String);

/// A PIDF document and its `Content-Language`, or no body.
type NotifyBody = Option<(String, Option<String>)>;

/// Why a dialog is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The XMPP user unsubscribed: send `unsubscribed` after the response (PRES-6).
    Unsubscribe,
    /// The XMPP user went offline; the authorization stays.
    Offline,
    /// One-shot fetch (PRES-21, PRES-22).
    Fetch,
}

/// Last known `Subscription-State` of a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Subscriber: SUBSCRIBE sent, nothing back yet.
    Sent,
    /// Pending (subscriber: 2xx or pending NOTIFY seen; notifier: pending NOTIFY sent).
    Pending,
    /// Active.
    Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    /// Subscriber: refresh before expiry.
    Refresh,
    /// The dialog's time is up: drop it (notifier: PRES-13).
    Expire,
    /// Notifier fetch: answer now, with whatever the probe brought.
    FetchReply,
}

#[derive(Debug, Clone)]
struct Dlg {
    role: DialogRole,
    auth: AuthKey,
    local_uri: String,
    local_tag: String,
    remote_uri: String,
    remote_tag: Option<String>,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    expires_at: Instant,
    expires_unix: i64,
    phase: Phase,
    closing: Option<Closing>,
    /// Subscriber: resources last reported available to the XMPP user.
    reported: Vec<String>,
    /// Subscriber: the available presences last sent, re-sent when the XMPP link comes back
    /// (COMP-5), since stanzas sent while it was down are lost.
    last_sent: Vec<Presence>,
    /// Has a request in flight (subscriber SUBSCRIBE).
    inflight: Option<ReqId>,
    /// Notifier: the NOTIFY in flight. The next one waits for its response (RFC 6665 §4.2.2:
    /// NOTIFYs of a dialog must arrive in CSeq order, and a UA answers an overtaken one with 500).
    notify_inflight: Option<ReqId>,
    /// Notifier: the newest state waiting for the NOTIFY in flight. Bodies are full state, so
    /// a newer one replaces an older one.
    queued: Option<(wire::SubState, NotifyBody)>,
    timer: Option<(Instant, TimerKind)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    /// A SUBSCRIBE asking for this many seconds.
    Subscribe(u32),
    /// A NOTIFY.
    Notify,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Dialog(String, String),
    /// X->S: start a new dialog for this authorization.
    Resubscribe(String, String),
}

/// Whether an XMPP user is online, as far as the gateway can tell (PRES-4).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Online {
    /// Known resources (possibly empty after a bare probe, which still means online).
    Yes(HashSet<String>),
    /// The last known resource went unavailable.
    No,
}

/// The presence state machine (see the module docs).
#[derive(Debug)]
pub struct Engine {
    map: AddressMap,
    settings: Settings,
    auths: HashMap<AuthKey, AuthState>,
    /// Authorizations per watcher (X->S: the JID; S->X: the AOR), for PRES-24.
    per_watcher: HashMap<(Direction, String), usize>,
    total: usize,
    dialogs: HashMap<DKey, Dlg>,
    by_pair: HashMap<AuthKey, Vec<DKey>>,
    requests: HashMap<ReqId, (DKey, ReqKind)>,
    timers: BTreeSet<(Instant, TimerRef)>,
    resubscribe_at: HashMap<(String, String), Instant>,
    /// X->S: consecutive failed SUBSCRIBEs per pair, for the retry backoff.
    failures: HashMap<(String, String), u32>,
    online: HashMap<String, Online>,
    /// XMPP presence per (XMPP user, SIP watcher AOR): what that watcher was sent (PRES-25).
    xmpp_cache: HashMap<(String, String), Vec<ResourcePresence>>,
    /// S->X fetches waiting for the probe's answer, by pair.
    out: VecDeque<Output>,
    next_req: ReqId,
}

impl Engine {
    /// An engine with nothing stored.
    pub fn new(map: AddressMap, settings: Settings) -> Engine {
        Engine {
            map,
            settings,
            auths: HashMap::new(),
            per_watcher: HashMap::new(),
            total: 0,
            dialogs: HashMap::new(),
            by_pair: HashMap::new(),
            requests: HashMap::new(),
            timers: BTreeSet::new(),
            resubscribe_at: HashMap::new(),
            failures: HashMap::new(),
            online: HashMap::new(),
            xmpp_cache: HashMap::new(),
            out: VecDeque::new(),
            next_req: 1,
        }
    }

    /// Feed one input.
    pub fn handle(&mut self, clock: Clock, input: Input) {
        match input {
            Input::Presence { presence, lang } => self.on_presence(clock, *presence, lang),
            Input::Request { tx, req } => self.on_request(clock, tx, *req),
            Input::Response { id, resp } => self.on_response(clock, id, resp),
            Input::LinkUp => self.on_link_up(),
        }
    }

    /// Next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Fire every timer due at `clock.now`.
    pub fn handle_timeout(&mut self, clock: Clock) {
        while let Some((at, r)) = self.timers.first().cloned() {
            if at > clock.now {
                break;
            }
            self.timers.pop_first();
            match r {
                TimerRef::Dialog(c, t) => {
                    let dk = (c, t);
                    let Some(d) = self.dialogs.get_mut(&dk) else {
                        continue;
                    };
                    let Some((when, kind)) = d.timer else {
                        continue;
                    };
                    if when != at {
                        continue;
                    }
                    d.timer = None;
                    self.on_dialog_timer(clock, dk, kind);
                }
                TimerRef::Resubscribe(jid, aor) => {
                    let key = (jid, aor);
                    if self.resubscribe_at.get(&key) != Some(&at) {
                        continue;
                    }
                    self.resubscribe_at.remove(&key);
                    let auth = AuthKey::new(key.0, key.1, Direction::XmppWatchesSip);
                    self.resubscribe(clock, &auth);
                }
            }
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            authorizations: self.total,
            dialogs: self.dialogs.len(),
            timers: self.timers.len(),
        }
    }

    /// Change the tunables (configuration reload). Existing dialogs keep their expiry; the
    /// limits apply to the next request.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The authorizations that involve `who` (a bare JID or a SIP AOR), with whether a SIP
    /// dialog currently carries them: `(xmpp_jid, sip_aor, direction, state, dialogs)`.
    pub fn subscriptions_of(
        &self,
        who: &str,
    ) -> Vec<(String, String, Direction, AuthState, usize)> {
        let mut v: Vec<_> = self
            .auths
            .iter()
            .filter(|(k, s)| {
                **s != AuthState::None
                    && (k.xmpp_jid.eq_ignore_ascii_case(who) || k.sip_aor.eq_ignore_ascii_case(who))
            })
            .map(|(k, s)| {
                let dialogs = self.by_pair.get(k).map_or(0, Vec::len);
                (
                    k.xmpp_jid.clone(),
                    k.sip_aor.clone(),
                    k.direction,
                    *s,
                    dialogs,
                )
            })
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v
    }

    /// The authorization state of a key (tests, logs).
    pub fn auth_state(&self, key: &AuthKey) -> AuthState {
        self.auths.get(key).copied().unwrap_or(AuthState::None)
    }

    // ---- shared helpers -------------------------------------------------------------

    fn fresh_req(&mut self) -> ReqId {
        let id = self.next_req;
        self.next_req += 1;
        id
    }

    fn set_auth_mem(&mut self, key: &AuthKey, state: AuthState) {
        let had = self.auths.get(key).is_some_and(|s| *s != AuthState::None);
        let has = state != AuthState::None;
        let w = watcher_of(key);
        match (had, has) {
            (false, true) => {
                *self.per_watcher.entry(w).or_default() += 1;
                self.total += 1;
            }
            (true, false) => {
                if let Some(n) = self.per_watcher.get_mut(&w) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_watcher.remove(&w);
                    }
                }
                self.total = self.total.saturating_sub(1);
            }
            _ => {}
        }
        if has {
            self.auths.insert(key.clone(), state);
        } else {
            self.auths.remove(key);
        }
    }

    /// Change an authorization and persist the change.
    fn set_auth(&mut self, clock: Clock, key: &AuthKey, state: AuthState) {
        if self.auths.get(key).copied().unwrap_or(AuthState::None) == state {
            return;
        }
        self.set_auth_mem(key, state);
        let op = if state == AuthState::None {
            StoreOp::DeleteAuth(key.clone())
        } else {
            StoreOp::PutAuth(Authorization {
                key: key.clone(),
                state,
                updated_at: clock.unix,
            })
        };
        self.out.push_back(Output::Store(op));
    }

    /// PRES-24: may this watcher hold one more authorization?
    fn within_limits(&self, key: &AuthKey) -> bool {
        if self.auths.contains_key(key) {
            return true;
        }
        let n = self.per_watcher.get(&watcher_of(key)).copied().unwrap_or(0);
        n < self.settings.max_per_user && self.total < self.settings.max_total
    }

    fn insert_dialog(&mut self, dk: DKey, d: Dlg) {
        self.by_pair
            .entry(d.auth.clone())
            .or_default()
            .push(dk.clone());
        self.dialogs.insert(dk, d);
    }

    fn remove_dialog(&mut self, dk: &DKey) -> Option<Dlg> {
        let d = self.dialogs.remove(dk)?;
        if let Some(v) = self.by_pair.get_mut(&d.auth) {
            v.retain(|k| k != dk);
            if v.is_empty() {
                self.by_pair.remove(&d.auth);
            }
        }
        if let Some(id) = d.inflight {
            self.requests.remove(&id);
        }
        if let Some((at, _)) = d.timer {
            self.timers
                .remove(&(at, TimerRef::Dialog(dk.0.clone(), dk.1.clone())));
        }
        self.out
            .push_back(Output::Store(StoreOp::DeleteDialog(DialogKey::new(
                dk.0.clone(),
                dk.1.clone(),
            ))));
        Some(d)
    }

    fn dialogs_of(&self, key: &AuthKey) -> Vec<DKey> {
        self.by_pair.get(key).cloned().unwrap_or_default()
    }

    fn set_timer(&mut self, dk: &DKey, at: Instant, kind: TimerKind) {
        let Some(d) = self.dialogs.get_mut(dk) else {
            return;
        };
        if let Some((old, _)) = d.timer.take() {
            self.timers
                .remove(&(old, TimerRef::Dialog(dk.0.clone(), dk.1.clone())));
        }
        d.timer = Some((at, kind));
        self.timers
            .insert((at, TimerRef::Dialog(dk.0.clone(), dk.1.clone())));
    }

    fn schedule_resubscribe(&mut self, key: &AuthKey, at: Instant) {
        let k = (key.xmpp_jid.clone(), key.sip_aor.clone());
        if let Some(old) = self.resubscribe_at.insert(k.clone(), at) {
            self.timers
                .remove(&(old, TimerRef::Resubscribe(k.0.clone(), k.1.clone())));
        }
        self.timers.insert((at, TimerRef::Resubscribe(k.0, k.1)));
    }

    fn cancel_resubscribe(&mut self, key: &AuthKey) {
        let k = (key.xmpp_jid.clone(), key.sip_aor.clone());
        if let Some(old) = self.resubscribe_at.remove(&k) {
            self.timers.remove(&(old, TimerRef::Resubscribe(k.0, k.1)));
        }
    }

    /// Persist the dialog's current state.
    fn persist(&mut self, clock: Clock, dk: &DKey) {
        let Some(d) = self.dialogs.get(dk) else {
            return;
        };
        if d.closing == Some(Closing::Fetch) {
            // One-shot: nothing to resume after a restart.
            return;
        }
        let row = Dialog {
            key: DialogKey::new(dk.0.clone(), dk.1.clone()),
            role: d.role,
            auth: d.auth.clone(),
            remote_tag: d.remote_tag.clone(),
            remote_target: d.remote_target.clone(),
            route_set: d.route_set.clone(),
            local_cseq: d.local_cseq,
            remote_cseq: d.remote_cseq,
            expires_at: d.expires_unix,
            extra: String::new(),
            updated_at: clock.unix,
        };
        self.out.push_back(Output::Store(StoreOp::PutDialog(row)));
    }

    /// Is the XMPP user online as far as we know? Unknown (e.g. after a restart) counts as
    /// online, so a restart never silently drops a subscription.
    fn user_online(&self, jid: &str) -> bool {
        !matches!(self.online.get(jid), Some(Online::No))
    }
}

/// Who a PRES-24 limit is counted against: the watcher.
fn watcher_of(key: &AuthKey) -> (Direction, String) {
    match key.direction {
        Direction::XmppWatchesSip => (key.direction, key.xmpp_jid.clone()),
        Direction::SipWatchesXmpp => (key.direction, key.sip_aor.clone()),
    }
}

/// The SIP URI of the XMPP user of an authorization (`sip:juliet@example.com`).
fn xmpp_side_uri(map: &AddressMap, key: &AuthKey) -> String {
    key.xmpp_jid
        .parse::<xmpp_parsers::jid::Jid>()
        .ok()
        .and_then(|j| map.jid_to_sip(&j).ok())
        .map(|a| a.aor())
        .unwrap_or_else(|| format!("sip:{}", key.xmpp_jid))
}

/// Wait before the next SUBSCRIBE after `failures` consecutive failures: `base`, doubling,
/// at most an hour, so an unreachable SIP user costs one request an hour, not one a minute.
fn backoff(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1 << failures.min(6))
        .min(Duration::from_secs(3600))
}

/// When to refresh a subscription granted for `secs`: a tenth (at least 5 s, at most half)
/// before it runs out, so one lost request still leaves time for a retransmission.
fn refresh_after(secs: u32) -> Duration {
    let margin = (secs / 10).max(5).min(secs / 2);
    Duration::from_secs(u64::from(secs - margin))
}
