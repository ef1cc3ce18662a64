//! Persistence for presence state (RFC 8048): PRES-14 and COMP-5 of the conformance checklist.
//!
//! The XMPP server keeps no roster for the component's JIDs and the SIP side keeps none for
//! gateway-originated dialogs, so the gateway persists (PRES-14):
//!
//! - **presence authorizations** ([`Authorization`]), the long-lived RFC 8048 "presence
//!   authorization", one row per direction of a (bare JID, SIP AOR) pair, so that after a
//!   restart refreshes and probes resume without new subscribe prompts and presence can be
//!   re-announced to every authorized XMPP watcher (COMP-5);
//! - **SIP subscription dialogs** ([`Dialog`]), the short-lived RFC 8048 "notification
//!   dialog" (RFC 6665), with what is needed to refresh a subscription or answer in it after a
//!   restart (Call-ID, tags, remote target, route set, CSeqs, expiry).
//!
//! [`Store`] is the small async interface the gateway uses; [`SqliteStore`] is the default
//! implementation (one embedded database file under the configured state directory). A
//! PostgreSQL implementation for several gateway instances can implement the same trait.
//! [`Store::counts`] feeds the per-user and total subscription limits that bound
//! amplification (PRES-24).
//!
//! Time is handed in by the caller as unix seconds (`updated_at`, `expires_at`): the store
//! never reads the clock, so tests can drive it with a paused clock.
//!
//! The store is a keyed table: it does not decide who is told what. Each row names exactly
//! one watcher and one contact, so whatever is sent from it has one addressee (PRES-25); the
//! lists serve restart recovery (COMP-5) and limits (PRES-24).

use std::fmt;

use async_trait::async_trait;

mod error;
mod migrate;
mod sqlite;
mod sqlite_rows;

pub use error::{BoxError, StoreError};
pub use migrate::SCHEMA_VERSION;
pub use sqlite::{SqliteOptions, SqliteStore, DB_FILE_NAME};

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

/// Result type of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which way presence flows under an authorization (RFC 8048 §5.2 and §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The XMPP user receives the SIP contact's presence (RFC 8048 §5.2, X->S): the gateway is
    /// the SIP *subscriber* of the notification dialog.
    XmppWatchesSip,
    /// The SIP user receives the XMPP contact's presence (RFC 8048 §5.3, S->X): the gateway is
    /// the SIP *notifier* of the notification dialog.
    SipWatchesXmpp,
}

impl Direction {
    /// The role the gateway plays in the SIP notification dialogs of this direction.
    pub fn gateway_role(self) -> DialogRole {
        match self {
            Direction::XmppWatchesSip => DialogRole::Subscriber,
            Direction::SipWatchesXmpp => DialogRole::Notifier,
        }
    }

    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::XmppWatchesSip => "xmpp_watches_sip",
            Direction::SipWatchesXmpp => "sip_watches_xmpp",
        }
    }

    /// Parses [`Direction::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "xmpp_watches_sip" => Some(Direction::XmppWatchesSip),
            "sip_watches_xmpp" => Some(Direction::SipWatchesXmpp),
            _ => None,
        }
    }
}

/// State of one direction of a presence authorization: RFC 6121 §3 subscription states,
/// split per direction.
///
/// RFC 6121 names the combined state of a roster item ("None + Pending Out", "From", "Both",
/// ...). The gateway keeps one row per direction instead, so the combined state is the product
/// of two of these values; [`roster_view`] recombines them. "Pending Out" and "Pending In" are
/// the same thing seen from the two ends (the watcher asked, the contact has not answered), so
/// with the direction in the key both are [`AuthState::Pending`]. RFC 6121 §3.4 pre-approval
/// needs no state here: only the XMPP server can hold it (a SIP user cannot pre-approve).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthState {
    /// No authorization and no open request (RFC 6121 "None"); kept, rather than deleted, when
    /// the caller wants to remember when a request was denied or revoked (PRES-5, PRES-11).
    None,
    /// The watcher asked, the contact has not answered. X->S: SUBSCRIBE sent, no NOTIFY with
    /// `Subscription-State: active` yet (PRES-1, PRES-2). S->X: `<presence type='subscribe'/>`
    /// sent to the XMPP user, no `subscribed`/`unsubscribed` yet (PRES-9).
    Pending,
    /// The contact approved (RFC 6121 "To" for the watcher, "From" for the contact). Survives
    /// the end of any notification dialog (PRES-7, PRES-8, PRES-13).
    Subscribed,
}

impl AuthState {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthState::None => "none",
            AuthState::Pending => "pending",
            AuthState::Subscribed => "subscribed",
        }
    }

    /// Parses [`AuthState::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(AuthState::None),
            "pending" => Some(AuthState::Pending),
            "subscribed" => Some(AuthState::Subscribed),
            _ => None,
        }
    }
}

/// The RFC 6121 `subscription` attribute of a roster item (§2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// Neither side receives the other's presence.
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    /// Both directions.
    Both,
}

/// An RFC 6121 roster item state for one pair, seen from the XMPP user's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterView {
    /// The `subscription` attribute.
    pub subscription: Subscription,
    /// The XMPP user asked for the SIP contact's presence and is waiting ("Pending Out",
    /// `ask='subscribe'`).
    pub pending_out: bool,
    /// The SIP user asked for the XMPP user's presence and is waiting ("Pending In").
    pub pending_in: bool,
}

/// Recombines the two directions of a pair into the RFC 6121 §3 state of the XMPP user's
/// roster item for the SIP contact (e.g. to answer a probe or to log).
pub fn roster_view(xmpp_watches_sip: AuthState, sip_watches_xmpp: AuthState) -> RosterView {
    let to = xmpp_watches_sip == AuthState::Subscribed;
    let from = sip_watches_xmpp == AuthState::Subscribed;
    let subscription = match (to, from) {
        (false, false) => Subscription::None,
        (true, false) => Subscription::To,
        (false, true) => Subscription::From,
        (true, true) => Subscription::Both,
    };
    RosterView {
        subscription,
        pending_out: xmpp_watches_sip == AuthState::Pending,
        pending_in: sip_watches_xmpp == AuthState::Pending,
    }
}

/// Key of a presence authorization: one direction of one (XMPP user, SIP user) pair.
///
/// Both addresses are compared byte for byte, so callers store them canonical: the bare JID
/// in escaped form (COMP-11) and the AOR as `sip:user@host` without parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthKey {
    /// The XMPP user's bare JID (`juliet@example.com`).
    pub xmpp_jid: String,
    /// The SIP user's address of record (`sip:romeo@example.net`).
    pub sip_aor: String,
    /// Who watches whom.
    pub direction: Direction,
}

impl AuthKey {
    /// Builds a key.
    pub fn new(
        xmpp_jid: impl Into<String>,
        sip_aor: impl Into<String>,
        direction: Direction,
    ) -> Self {
        AuthKey {
            xmpp_jid: xmpp_jid.into(),
            sip_aor: sip_aor.into(),
            direction,
        }
    }
}

impl fmt::Display for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.xmpp_jid,
            self.direction.as_str(),
            self.sip_aor
        )
    }
}

/// One direction of a presence authorization and its state (PRES-14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Which pair and direction.
    pub key: AuthKey,
    /// Where the subscription handshake stands.
    pub state: AuthState,
    /// When the caller last changed it, unix seconds.
    pub updated_at: i64,
}

/// The gateway's role in a SIP notification dialog (RFC 6665 §4.1 / §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogRole {
    /// The gateway sent the SUBSCRIBE and refreshes it (X->S, PRES-4).
    Subscriber,
    /// The gateway received the SUBSCRIBE and sends the NOTIFYs (S->X, PRES-10..13).
    Notifier,
}

impl DialogRole {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DialogRole::Subscriber => "subscriber",
            DialogRole::Notifier => "notifier",
        }
    }

    /// Parses [`DialogRole::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subscriber" => Some(DialogRole::Subscriber),
            "notifier" => Some(DialogRole::Notifier),
            _ => None,
        }
    }
}

/// Key of a SIP dialog as the gateway sees it: Call-ID and the gateway's own tag
/// (RFC 3261 §12; the local tag alone is unique per Call-ID on our side).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogKey {
    /// The Call-ID header value.
    pub call_id: String,
    /// The tag the gateway put in its From (subscriber) or To (notifier).
    pub local_tag: String,
}

impl DialogKey {
    /// Builds a key.
    pub fn new(call_id: impl Into<String>, local_tag: impl Into<String>) -> Self {
        DialogKey {
            call_id: call_id.into(),
            local_tag: local_tag.into(),
        }
    }
}

/// A SIP subscription (notification) dialog, with what a restarted gateway needs to refresh it
/// (subscriber) or to send a NOTIFY in it (notifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID + local tag.
    pub key: DialogKey,
    /// Subscriber or notifier (normally `auth.direction.gateway_role()`).
    pub role: DialogRole,
    /// The authorization this dialog carries. A one-shot fetch (PRES-21, PRES-22) may point at
    /// a pair that has no authorization row; the store does not enforce the link.
    pub auth: AuthKey,
    /// The peer's tag; `None` while a SUBSCRIBE is unanswered (no 2xx or NOTIFY yet).
    pub remote_tag: Option<String>,
    /// Where in-dialog requests go (the peer's Contact URI, RFC 3261 §12.1).
    pub remote_target: String,
    /// Route set from Record-Route, in the order used for requests (RFC 3261 §12.1).
    pub route_set: Vec<String>,
    /// CSeq number of the last request the gateway sent in this dialog.
    pub local_cseq: u32,
    /// CSeq number of the last request received in this dialog, if any.
    pub remote_cseq: Option<u32>,
    /// When the subscription expires, unix seconds.
    pub expires_at: i64,
    /// Opaque state for later designs (JSON recommended); stored and returned unchanged.
    pub extra: String,
    /// When the caller last changed it, unix seconds.
    pub updated_at: i64,
}

/// Selects rows by user, pair or direction; every `None` field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only rows of this XMPP bare JID.
    pub xmpp_jid: Option<String>,
    /// Only rows of this SIP AOR.
    pub sip_aor: Option<String>,
    /// Only rows of this direction.
    pub direction: Option<Direction>,
}

impl Filter {
    /// Matches every row.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Rows of one XMPP user.
    pub fn xmpp(jid: impl Into<String>) -> Self {
        Filter {
            xmpp_jid: Some(jid.into()),
            ..Filter::default()
        }
    }

    /// Rows of one SIP user.
    pub fn sip(aor: impl Into<String>) -> Self {
        Filter {
            sip_aor: Some(aor.into()),
            ..Filter::default()
        }
    }

    /// Rows of exactly one authorization key (for dialogs: those carrying it).
    pub fn auth(key: &AuthKey) -> Self {
        Filter {
            xmpp_jid: Some(key.xmpp_jid.clone()),
            sip_aor: Some(key.sip_aor.clone()),
            direction: Some(key.direction),
        }
    }

    /// Narrows the filter to one direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = Some(direction);
        self
    }
}

/// Row counts for subscription limits (PRES-24).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Authorizations in [`AuthState::Pending`].
    pub pending: u64,
    /// Authorizations in [`AuthState::Subscribed`].
    pub subscribed: u64,
    /// SIP subscription dialogs.
    pub dialogs: u64,
}

impl Counts {
    /// Authorizations that hold something (pending or subscribed; `None` rows are not counted).
    pub fn authorizations(&self) -> u64 {
        self.pending + self.subscribed
    }
}

/// The gateway's persistence interface (PRES-14). Every write is durable when it returns `Ok`
/// (up to the backend's sync policy); every failure is returned, never swallowed.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Inserts or replaces the authorization with this key.
    async fn upsert_authorization(&self, auth: &Authorization) -> Result<()>;
    /// The authorization with this key, if stored.
    async fn get_authorization(&self, key: &AuthKey) -> Result<Option<Authorization>>;
    /// Deletes it; `true` if a row was deleted. Dialogs that carry it are kept: end them on
    /// the wire, then delete them.
    async fn delete_authorization(&self, key: &AuthKey) -> Result<bool>;
    /// Authorizations matching `filter` (and `state` if given), ordered by key.
    async fn list_authorizations(
        &self,
        filter: &Filter,
        state: Option<AuthState>,
    ) -> Result<Vec<Authorization>>;

    /// Inserts or replaces the dialog with this key.
    async fn upsert_dialog(&self, dialog: &Dialog) -> Result<()>;
    /// The dialog with this key, if stored.
    async fn get_dialog(&self, key: &DialogKey) -> Result<Option<Dialog>>;
    /// Deletes it; `true` if a row was deleted.
    async fn delete_dialog(&self, key: &DialogKey) -> Result<bool>;
    /// Dialogs whose authorization key matches `filter`, ordered by key.
    async fn list_dialogs(&self, filter: &Filter) -> Result<Vec<Dialog>>;
    /// Dialogs with `expires_at < unix_secs`, soonest first (refresh and expiry scans).
    async fn dialogs_expiring_before(&self, unix_secs: i64) -> Result<Vec<Dialog>>;
    /// Atomically increments the dialog's local CSeq and returns the new value, to number the
    /// next request sent in it; `None` if there is no such dialog. Concurrent callers never
    /// get the same number. Fails rather than wrap past `u32::MAX`.
    async fn next_local_cseq(&self, key: &DialogKey, updated_at: i64) -> Result<Option<u32>>;

    /// Row counts of the rows matching `filter` (`Filter::all()` for totals).
    async fn counts(&self, filter: &Filter) -> Result<Counts>;

    /// Waits for in-flight operations and releases the backend (file handles, connections).
    /// Later calls fail.
    async fn close(&self);
}
