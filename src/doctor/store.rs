//! The state directory (`presence.state_dir`) and its database.
//!
//! Doctor leaves no trace: a missing directory is created only to prove it can be and is
//! removed again, a missing database is not created, and a database at an older schema is
//! not migrated (the next `stox run` does that) because a running older gateway may still
//! use it. Only a database at this binary's schema goes through the gateway's own open
//! path (integrity check, write-lock probe), whose errors already say what to do.

use super::procfs;
use super::{Check, Level};
use crate::store::{SqliteOptions, SqliteStore, Store, StoreError, DB_FILE_NAME, SCHEMA_VERSION};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::time::Duration;

const AREA: &str = "store";

/// Directory and database checks; `busy` bounds the wait for a lock held elsewhere.
pub async fn check_store(dir: &Path, busy: Duration) -> Vec<Check> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return vec![fail(format!(
                "state_dir {shown} is not a directory: point presence.state_dir at a directory"
            ))]
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return vec![try_create(dir)],
        Err(e) => {
            return vec![fail(format!(
                "state_dir {shown} cannot be examined ({e}): a path component is a file, or \
                 the gateway's user may not traverse a parent directory"
            ))]
        }
    }
    // Permission bits do not tell (root ignores them, ACLs and read-only mounts add to
    // them): write a file and remove it.
    let probe = dir.join(format!(".stox-doctor-probe-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe)) {
        let _ = std::fs::remove_file(&probe);
        return vec![fail(format!(
            "state_dir {shown} is not writable ({e}): give the gateway's user write access \
             (SQLite creates -wal and -shm files beside the database)"
        ))];
    }
    let mut out = vec![Check::new(
        Level::Ok,
        AREA,
        format!("state_dir {shown} is a writable directory"),
    )];
    out.extend(check_database(dir, busy).await);
    out
}

fn fail(m: String) -> Check {
    Check::new(Level::Fail, AREA, m)
}

/// A missing state_dir is fine if stox can create it: prove it by creating it (and any
/// missing parents), then remove what was created.
fn try_create(dir: &Path) -> Check {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
        .map(Path::to_path_buf)
        .collect();
    match std::fs::create_dir_all(dir) {
        Ok(()) => {
            for d in &missing {
                let _ = std::fs::remove_dir(d);
            }
            Check::new(
                Level::Ok,
                AREA,
                format!(
                    "state_dir {} does not exist yet; stox creates it on first start (doctor \
                     created and removed it)",
                    dir.display()
                ),
            )
        }
        Err(e) => {
            // create_dir_all may have made some parents before failing.
            for d in &missing {
                let _ = std::fs::remove_dir(d);
            }
            fail(format!(
                "state_dir {} does not exist and cannot be created ({e}): create it, owned by \
                 the gateway's user, or fix presence.state_dir",
                dir.display()
            ))
        }
    }
}

async fn check_database(dir: &Path, busy: Duration) -> Vec<Check> {
    let path = dir.join(DB_FILE_NAME);
    let shown = path.display();
    if std::fs::symlink_metadata(&path).is_err() {
        return vec![Check::new(
            Level::Ok,
            AREA,
            format!("no database yet: stox creates {shown} on first start"),
        )];
    }
    let mut out = Vec::new();
    let holders = procfs::file_holders(&path);
    if !holders.is_empty() {
        // A running gateway keeps the file open (WAL mode lets doctor read it meanwhile).
        out.push(Check::new(
            Level::Info,
            AREA,
            format!(
                "{shown} is open in {}: a gateway runs on this state_dir; never start a \
                 second one on the same directory",
                procfs::by(&holders).trim_start_matches(" by ")
            ),
        ));
    }
    match schema_version(&path, busy).await {
        Some(v) if v < SCHEMA_VERSION => {
            out.push(Check::new(
                Level::Ok,
                AREA,
                if v == 0 {
                    format!("{shown} holds no stox tables yet; stox creates them on its next start")
                } else {
                    format!(
                        "{shown} is at schema {v}; stox migrates it to {SCHEMA_VERSION} on its \
                         next start (doctor does not)"
                    )
                },
            ));
            return out;
        }
        Some(v) if v > SCHEMA_VERSION => {
            out.push(fail(
                StoreError::SchemaTooNew {
                    path: path.clone(),
                    found: v,
                    known: SCHEMA_VERSION,
                }
                .to_string(),
            ));
            return out;
        }
        // At this schema, or unreadable: the gateway's open path checks and explains.
        _ => {}
    }
    let options = SqliteOptions {
        busy_timeout: busy,
        max_connections: 1,
    };
    match SqliteStore::open_with(dir, options).await {
        Ok(store) => {
            store.close().await;
            out.push(Check::new(
                Level::Ok,
                AREA,
                format!("{shown} opens (schema {SCHEMA_VERSION}, integrity ok, writable)"),
            ));
        }
        Err(e) => {
            let who = match &e {
                StoreError::Locked { .. } if !holders.is_empty() => {
                    format!(
                        " (open in {})",
                        procfs::by(&holders).trim_start_matches(" by ")
                    )
                }
                _ => String::new(),
            };
            out.push(fail(format!("{e}{who}")));
        }
    }
    out
}

/// The newest migration applied, read without creating or changing anything; 0 for a file
/// without stox tables; `None` when it cannot be read (the full open then says why).
async fn schema_version(path: &Path, busy: Duration) -> Option<i64> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(busy)
        .connect()
        .await
        .ok()?;
    let v = sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await;
    let v = match v {
        Ok(v) => Some(v.unwrap_or(0)),
        Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => Some(0),
        Err(_) => None,
    };
    let _ = conn.close().await;
    v
}
