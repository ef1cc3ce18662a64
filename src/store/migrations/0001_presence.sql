-- stox schema version 1: presence state for RFC 8048 (PRES-14, COMP-5).
-- Applied once by the embedded migrator (recorded in _sqlx_migrations). Never edit a
-- migration after a release: add the next numbered file instead (the migrator checks
-- checksums and refuses a changed migration).
--
-- Enum-like TEXT columns are checked where the set is fixed by the protocol (direction,
-- role). `state` is not checked here so a later version can add a state without rebuilding
-- the table; the Rust code rejects values it does not know.

-- One direction of a presence authorization (RFC 8048 "presence authorization").
CREATE TABLE presence_authorization (
    xmpp_jid   TEXT    NOT NULL,
    sip_aor    TEXT    NOT NULL,
    direction  TEXT    NOT NULL CHECK (direction IN ('xmpp_watches_sip', 'sip_watches_xmpp')),
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (xmpp_jid, sip_aor, direction)
) WITHOUT ROWID;

-- The primary key serves lookups by JID; this one serves lookups by AOR.
CREATE INDEX presence_authorization_by_aor ON presence_authorization (sip_aor, direction);

-- A SIP subscription dialog (RFC 8048 "notification dialog", RFC 6665).
CREATE TABLE sip_subscription_dialog (
    call_id       TEXT    NOT NULL,
    local_tag     TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('subscriber', 'notifier')),
    xmpp_jid      TEXT    NOT NULL,
    sip_aor       TEXT    NOT NULL,
    direction     TEXT    NOT NULL CHECK (direction IN ('xmpp_watches_sip', 'sip_watches_xmpp')),
    remote_tag    TEXT,
    remote_target TEXT    NOT NULL,
    -- JSON array of strings, in request order
    route_set     TEXT    NOT NULL DEFAULT '[]',
    local_cseq    INTEGER NOT NULL CHECK (local_cseq BETWEEN 0 AND 4294967295),
    remote_cseq   INTEGER CHECK (remote_cseq BETWEEN 0 AND 4294967295),
    expires_at    INTEGER NOT NULL,
    -- opaque to the store: state a later design needs, JSON recommended
    extra         TEXT    NOT NULL DEFAULT '',
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (call_id, local_tag)
) WITHOUT ROWID;

CREATE INDEX sip_subscription_dialog_by_jid ON sip_subscription_dialog (xmpp_jid, sip_aor, direction);
CREATE INDEX sip_subscription_dialog_by_aor ON sip_subscription_dialog (sip_aor, direction);
CREATE INDEX sip_subscription_dialog_by_expiry ON sip_subscription_dialog (expires_at);
