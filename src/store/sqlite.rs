//! The default [`Store`]: one SQLite database file under the gateway's state directory
//! (PRES-14, COMP-5).
//!
//! Why sqlx (SQLite bundled, no query macros) rather than rusqlite + `spawn_blocking`: the
//! PostgreSQL implementation planned for several gateway instances can use the same crate,
//! pool, migrator and row-decoding style; sqlx already runs each SQLite connection on its own
//! worker thread, so no blocking call reaches the tokio runtime. Without the `macros` feature
//! no `DATABASE_URL` or offline query data is needed to build.
//!
//! Opening ([`SqliteStore::open`]) checks the directory, creates the file on first run,
//! switches it to WAL (readers never wait for the writer; `synchronous = NORMAL`, the setting
//! SQLite recommends with WAL: a power cut can lose the last commits, never corrupt the file),
//! runs `PRAGMA quick_check`, proves it can take the write lock, and applies the embedded
//! migrations. Each of those failures is a typed [`StoreError`] naming the path.
//!
//! Writes are single statements (upserts, `UPDATE ... RETURNING`), so concurrent writers
//! serialize on SQLite's write lock, waiting up to the busy timeout, and never lose updates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite};

use super::migrate::{migrator, EmbeddedMigration, MIGRATIONS};
use super::sqlite_rows::{auth_from_row, classify, dialog_from_row, encode_route_set};
use super::{
    AuthKey, AuthState, Authorization, Counts, Dialog, DialogKey, Filter, Result, Store, StoreError,
};

/// Name of the database file inside the state directory (with `-wal` and `-shm` beside it).
pub const DB_FILE_NAME: &str = "stox.sqlite3";

/// Tuning for [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a statement waits for a lock held by another connection before failing with
    /// [`StoreError::Locked`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Connections in the pool (one writer at a time, the others read). Default 4.
    pub max_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            max_connections: 4,
        }
    }
}

/// The SQLite [`Store`]. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: Arc<PathBuf>,
}

const AUTH_COLUMNS: &str = "xmpp_jid, sip_aor, direction, state, updated_at";
const DIALOG_COLUMNS: &str = "call_id, local_tag, role, xmpp_jid, sip_aor, direction, \
     remote_tag, remote_target, route_set, local_cseq, remote_cseq, expires_at, extra, updated_at";

impl SqliteStore {
    /// Opens (creating on first run) `state_dir/stox.sqlite3` with default options.
    pub async fn open(state_dir: &Path) -> Result<Self> {
        Self::open_with(state_dir, SqliteOptions::default()).await
    }

    /// Opens (creating on first run) `state_dir/stox.sqlite3`, migrated to
    /// [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
    ///
    /// The directory must exist and be writable; it is not created here.
    pub async fn open_with(state_dir: &Path, options: SqliteOptions) -> Result<Self> {
        check_state_dir(state_dir).await?;
        let path = state_dir.join(DB_FILE_NAME);
        let connect = connect_options(&path, &options);

        // One connection does the checks and the migration before the pool exists, so a bad
        // file fails here, once, with the error that explains it.
        let mut conn = connect
            .connect()
            .await
            .map_err(|e| classify(&path, "open", e))?;
        let prepared = prepare(&mut conn, &path).await;
        let closed = conn.close().await.map_err(|e| classify(&path, "open", e));
        prepared?;
        closed?;

        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| classify(&path, "open", e))?;
        Ok(SqliteStore {
            pool,
            path: Arc::new(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest migration applied to the file (equals
    /// [`SCHEMA_VERSION`](super::SCHEMA_VERSION) after open).
    pub async fn schema_version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err("schema_version", e))?;
        row.try_get::<i64, _>(0)
            .map_err(|e| self.err("schema_version", e))
    }

    fn err(&self, op: &'static str, e: sqlx::Error) -> StoreError {
        classify(&self.path, op, e)
    }

    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

pub(crate) fn connect_options(path: &Path, options: &SqliteOptions) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true)
}

/// Missing, not-a-directory and unwritable directories get their own errors; SQLite would
/// report all three as "unable to open database file".
async fn check_state_dir(dir: &Path) -> Result<()> {
    match tokio::fs::metadata(dir).await {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::MissingDir {
                path: dir.to_path_buf(),
            })
        }
        // ENOTDIR: a component of the path is a file (`io::ErrorKind::NotADirectory` needs a
        // newer Rust than the crate's MSRV, so look at the ancestors instead).
        Err(_) if dir.ancestors().skip(1).any(Path::is_file) => {
            return Err(StoreError::NotADirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(StoreError::Unwritable {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })
        }
    }
    // SQLite creates the -wal and -shm files next to the database: the directory itself must
    // be writable, not only the file. Permission bits do not tell (root ignores them), so try.
    let probe = dir.join(format!(".{DB_FILE_NAME}.probe-{}", std::process::id()));
    let unwritable = |e: std::io::Error| StoreError::Unwritable {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    tokio::fs::write(&probe, b"").await.map_err(unwritable)?;
    tokio::fs::remove_file(&probe).await.map_err(unwritable)
}

/// Integrity check, write-lock probe and migrations on the first connection.
async fn prepare(conn: &mut SqliteConnection, path: &Path) -> Result<()> {
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| classify(path, "integrity check", e))?;
    if problems.iter().any(|p| p != "ok") {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("quick_check: {}", problems.join("; ")),
        });
    }

    // Take the write lock once: a lock held elsewhere or a read-only file shows up now rather
    // than at the first presence change.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(|e| classify(path, "write-lock probe", e))?;
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .map_err(|e| classify(path, "write-lock probe", e))?;

    run_migrations(conn, path, MIGRATIONS).await
}

/// Applies `migrations` (a prefix of [`MIGRATIONS`] in tests) that are not applied yet.
pub(crate) async fn run_migrations(
    conn: &mut SqliteConnection,
    path: &Path,
    migrations: &'static [EmbeddedMigration],
) -> Result<()> {
    use sqlx::migrate::MigrateError;
    let known = migrations.last().map_or(0, |m| m.version);
    let migration_err = |e: MigrateError| match e {
        MigrateError::VersionMissing(found) if found > known => StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known,
        },
        MigrateError::Execute(e) => match classify(path, "migration", e) {
            StoreError::Backend { source, .. } => StoreError::Migration {
                path: path.to_path_buf(),
                detail: source.to_string(),
            },
            other => other,
        },
        other => StoreError::Migration {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    };
    let migrator = migrator(migrations).await.map_err(migration_err)?;
    migrator.run(conn).await.map_err(migration_err)
}

/// Appends ` WHERE ...` for `filter` (columns xmpp_jid, sip_aor, direction).
fn push_filter<'a>(qb: &mut QueryBuilder<'a, Sqlite>, filter: &'a Filter) {
    qb.push(" WHERE 1 = 1");
    if let Some(jid) = &filter.xmpp_jid {
        qb.push(" AND xmpp_jid = ").push_bind(jid.as_str());
    }
    if let Some(aor) = &filter.sip_aor {
        qb.push(" AND sip_aor = ").push_bind(aor.as_str());
    }
    if let Some(direction) = filter.direction {
        qb.push(" AND direction = ").push_bind(direction.as_str());
    }
}

fn to_u64(n: i64) -> u64 {
    // COUNT(*) is never negative.
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_authorization(&self, auth: &Authorization) -> Result<()> {
        sqlx::query(
            "INSERT INTO presence_authorization (xmpp_jid, sip_aor, direction, state, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (xmpp_jid, sip_aor, direction)
             DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(&auth.key.xmpp_jid)
        .bind(&auth.key.sip_aor)
        .bind(auth.key.direction.as_str())
        .bind(auth.state.as_str())
        .bind(auth.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err("upsert_authorization", e))?;
        Ok(())
    }

    async fn get_authorization(&self, key: &AuthKey) -> Result<Option<Authorization>> {
        let sql = format!(
            "SELECT {AUTH_COLUMNS} FROM presence_authorization
             WHERE xmpp_jid = ?1 AND sip_aor = ?2 AND direction = ?3"
        );
        let row = sqlx::query(&sql)
            .bind(&key.xmpp_jid)
            .bind(&key.sip_aor)
            .bind(key.direction.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err("get_authorization", e))?;
        row.map(|r| auth_from_row(&self.path, &r)).transpose()
    }

    async fn delete_authorization(&self, key: &AuthKey) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM presence_authorization
             WHERE xmpp_jid = ?1 AND sip_aor = ?2 AND direction = ?3",
        )
        .bind(&key.xmpp_jid)
        .bind(&key.sip_aor)
        .bind(key.direction.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err("delete_authorization", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_authorizations(
        &self,
        filter: &Filter,
        state: Option<AuthState>,
    ) -> Result<Vec<Authorization>> {
        let mut qb =
            QueryBuilder::new(format!("SELECT {AUTH_COLUMNS} FROM presence_authorization"));
        push_filter(&mut qb, filter);
        if let Some(state) = state {
            qb.push(" AND state = ").push_bind(state.as_str());
        }
        qb.push(" ORDER BY xmpp_jid, sip_aor, direction");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("list_authorizations", e))?;
        rows.iter().map(|r| auth_from_row(&self.path, r)).collect()
    }

    async fn upsert_dialog(&self, d: &Dialog) -> Result<()> {
        let route_set = encode_route_set(&self.path, &d.route_set)?;
        let sql = format!(
            "INSERT INTO sip_subscription_dialog ({DIALOG_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (call_id, local_tag) DO UPDATE SET
                role = excluded.role, xmpp_jid = excluded.xmpp_jid, sip_aor = excluded.sip_aor,
                direction = excluded.direction, remote_tag = excluded.remote_tag,
                remote_target = excluded.remote_target, route_set = excluded.route_set,
                local_cseq = excluded.local_cseq, remote_cseq = excluded.remote_cseq,
                expires_at = excluded.expires_at, extra = excluded.extra,
                updated_at = excluded.updated_at"
        );
        sqlx::query(&sql)
            .bind(&d.key.call_id)
            .bind(&d.key.local_tag)
            .bind(d.role.as_str())
            .bind(&d.auth.xmpp_jid)
            .bind(&d.auth.sip_aor)
            .bind(d.auth.direction.as_str())
            .bind(d.remote_tag.as_deref())
            .bind(&d.remote_target)
            .bind(route_set)
            .bind(i64::from(d.local_cseq))
            .bind(d.remote_cseq.map(i64::from))
            .bind(d.expires_at)
            .bind(&d.extra)
            .bind(d.updated_at)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err("upsert_dialog", e))?;
        Ok(())
    }

    async fn get_dialog(&self, key: &DialogKey) -> Result<Option<Dialog>> {
        let sql = format!(
            "SELECT {DIALOG_COLUMNS} FROM sip_subscription_dialog
             WHERE call_id = ?1 AND local_tag = ?2"
        );
        let row = sqlx::query(&sql)
            .bind(&key.call_id)
            .bind(&key.local_tag)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err("get_dialog", e))?;
        row.map(|r| dialog_from_row(&self.path, &r)).transpose()
    }

    async fn delete_dialog(&self, key: &DialogKey) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM sip_subscription_dialog WHERE call_id = ?1 AND local_tag = ?2",
        )
        .bind(&key.call_id)
        .bind(&key.local_tag)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err("delete_dialog", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_dialogs(&self, filter: &Filter) -> Result<Vec<Dialog>> {
        let mut qb = QueryBuilder::new(format!(
            "SELECT {DIALOG_COLUMNS} FROM sip_subscription_dialog"
        ));
        push_filter(&mut qb, filter);
        qb.push(" ORDER BY call_id, local_tag");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("list_dialogs", e))?;
        rows.iter()
            .map(|r| dialog_from_row(&self.path, r))
            .collect()
    }

    async fn dialogs_expiring_before(&self, unix_secs: i64) -> Result<Vec<Dialog>> {
        let sql = format!(
            "SELECT {DIALOG_COLUMNS} FROM sip_subscription_dialog
             WHERE expires_at < ?1 ORDER BY expires_at, call_id, local_tag"
        );
        let rows = sqlx::query(&sql)
            .bind(unix_secs)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err("dialogs_expiring_before", e))?;
        rows.iter()
            .map(|r| dialog_from_row(&self.path, r))
            .collect()
    }

    async fn next_local_cseq(&self, key: &DialogKey, updated_at: i64) -> Result<Option<u32>> {
        // One statement: the increment and the read happen under the same write lock.
        let row = sqlx::query(
            "UPDATE sip_subscription_dialog SET local_cseq = local_cseq + 1, updated_at = ?3
             WHERE call_id = ?1 AND local_tag = ?2 RETURNING local_cseq",
        )
        .bind(&key.call_id)
        .bind(&key.local_tag)
        .bind(updated_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err("next_local_cseq", e))?;
        let Some(row) = row else { return Ok(None) };
        let cseq: i64 = row.try_get(0).map_err(|e| self.err("next_local_cseq", e))?;
        u32::try_from(cseq)
            .map(Some)
            .map_err(|_| StoreError::BadRow {
                path: self.path.to_path_buf(),
                table: "sip_subscription_dialog",
                detail: format!("local_cseq {cseq} out of range"),
            })
    }

    async fn counts(&self, filter: &Filter) -> Result<Counts> {
        // One statement, so the three numbers come from the same snapshot.
        let mut qb = QueryBuilder::new("SELECT (SELECT COUNT(*) FROM presence_authorization");
        push_filter(&mut qb, filter);
        qb.push(" AND state = 'pending'), (SELECT COUNT(*) FROM presence_authorization");
        push_filter(&mut qb, filter);
        qb.push(" AND state = 'subscribed'), (SELECT COUNT(*) FROM sip_subscription_dialog");
        push_filter(&mut qb, filter);
        qb.push(")");
        let row = qb
            .build()
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err("counts", e))?;
        let get = |i: usize| {
            row.try_get::<i64, _>(i)
                .map(to_u64)
                .map_err(|e| self.err("counts", e))
        };
        Ok(Counts {
            pending: get(0)?,
            subscribed: get(1)?,
            dialogs: get(2)?,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
