//! Row decoding and error classification for the SQLite store (PRES-14).
//!
//! Everything read from the file is checked (unknown enum text, out-of-range CSeq, bad JSON)
//! and turned into [`StoreError::BadRow`]: a damaged or foreign row never panics the gateway.

use std::path::Path;

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{
    AuthKey, AuthState, Authorization, Dialog, DialogKey, DialogRole, Direction, Result, StoreError,
};

// Primary SQLite result codes (https://www.sqlite.org/rescode.html).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_READONLY: i32 = 8;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_NOTADB: i32 = 26;

/// Turns a sqlx error into the [`StoreError`] an operator can act on.
pub(crate) fn classify(path: &Path, op: &'static str, err: sqlx::Error) -> StoreError {
    let path_buf = path.to_path_buf();
    match err {
        sqlx::Error::Database(db) => {
            // sqlx reports the extended result code as a decimal string; the low byte is the
            // primary code.
            let code = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            match code {
                Some(SQLITE_BUSY | SQLITE_LOCKED) => StoreError::Locked { path: path_buf },
                Some(SQLITE_CORRUPT | SQLITE_NOTADB) => StoreError::Corrupt {
                    path: path_buf,
                    detail: db.message().to_owned(),
                },
                Some(SQLITE_READONLY | SQLITE_CANTOPEN) => StoreError::Unwritable {
                    path: path_buf,
                    reason: db.message().to_owned(),
                },
                Some(SQLITE_FULL) => StoreError::Full { path: path_buf },
                _ => StoreError::Backend {
                    path: path_buf,
                    op,
                    source: Box::new(sqlx::Error::Database(db)),
                },
            }
        }
        sqlx::Error::PoolClosed => StoreError::Closed { path: path_buf },
        other => StoreError::Backend {
            path: path_buf,
            op,
            source: Box::new(other),
        },
    }
}

fn bad_row(path: &Path, table: &'static str, detail: String) -> StoreError {
    StoreError::BadRow {
        path: path.to_path_buf(),
        table,
        detail,
    }
}

/// Reads column `col` as `T`, or a [`StoreError::BadRow`] naming it.
fn col<'r, T>(path: &Path, table: &'static str, row: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get::<T, _>(col)
        .map_err(|e| bad_row(path, table, format!("column {col}: {e}")))
}

fn direction(path: &Path, table: &'static str, row: &SqliteRow) -> Result<Direction> {
    let text: String = col(path, table, row, "direction")?;
    Direction::parse(&text).ok_or_else(|| bad_row(path, table, format!("direction {text:?}")))
}

fn cseq(path: &Path, table: &'static str, name: &str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| bad_row(path, table, format!("{name} {value} out of range")))
}

const AUTH: &str = "presence_authorization";
const DIALOG: &str = "sip_subscription_dialog";

pub(crate) fn auth_from_row(path: &Path, row: &SqliteRow) -> Result<Authorization> {
    let state: String = col(path, AUTH, row, "state")?;
    Ok(Authorization {
        key: AuthKey {
            xmpp_jid: col(path, AUTH, row, "xmpp_jid")?,
            sip_aor: col(path, AUTH, row, "sip_aor")?,
            direction: direction(path, AUTH, row)?,
        },
        state: AuthState::parse(&state)
            .ok_or_else(|| bad_row(path, AUTH, format!("state {state:?}")))?,
        updated_at: col(path, AUTH, row, "updated_at")?,
    })
}

pub(crate) fn dialog_from_row(path: &Path, row: &SqliteRow) -> Result<Dialog> {
    let role: String = col(path, DIALOG, row, "role")?;
    let route_set: String = col(path, DIALOG, row, "route_set")?;
    let local_cseq: i64 = col(path, DIALOG, row, "local_cseq")?;
    let remote_cseq: Option<i64> = col(path, DIALOG, row, "remote_cseq")?;
    Ok(Dialog {
        key: DialogKey {
            call_id: col(path, DIALOG, row, "call_id")?,
            local_tag: col(path, DIALOG, row, "local_tag")?,
        },
        role: DialogRole::parse(&role)
            .ok_or_else(|| bad_row(path, DIALOG, format!("role {role:?}")))?,
        auth: AuthKey {
            xmpp_jid: col(path, DIALOG, row, "xmpp_jid")?,
            sip_aor: col(path, DIALOG, row, "sip_aor")?,
            direction: direction(path, DIALOG, row)?,
        },
        remote_tag: col(path, DIALOG, row, "remote_tag")?,
        remote_target: col(path, DIALOG, row, "remote_target")?,
        route_set: serde_json::from_str(&route_set).map_err(|e| {
            bad_row(
                path,
                DIALOG,
                format!("route_set is not a JSON string array: {e}"),
            )
        })?,
        local_cseq: cseq(path, DIALOG, "local_cseq", local_cseq)?,
        remote_cseq: remote_cseq
            .map(|v| cseq(path, DIALOG, "remote_cseq", v))
            .transpose()?,
        expires_at: col(path, DIALOG, row, "expires_at")?,
        extra: col(path, DIALOG, row, "extra")?,
        updated_at: col(path, DIALOG, row, "updated_at")?,
    })
}

/// The route set as stored: a JSON array of strings.
pub(crate) fn encode_route_set(path: &Path, routes: &[String]) -> Result<String> {
    serde_json::to_string(routes).map_err(|e| StoreError::Backend {
        path: path.to_path_buf(),
        op: "encode route set",
        source: Box::new(e),
    })
}
