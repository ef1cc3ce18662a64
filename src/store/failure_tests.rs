//! Failure behaviour of the SQLite store: every bad state directory or file is a typed error
//! naming the path at open, and every failed write reaches the caller.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use super::test_util::{auth, TempDir};
use super::*;

/// Short lock waits so the lock tests take a fraction of a second.
fn quick() -> SqliteOptions {
    SqliteOptions {
        busy_timeout: Duration::from_millis(200),
        ..SqliteOptions::default()
    }
}

/// The message names the path; shown with `--nocapture` to review the wording.
fn assert_names(err: &StoreError, path: &Path) {
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
}

#[tokio::test]
async fn missing_dir_is_typed_error() {
    let dir = TempDir::new("missing");
    let missing = dir.path().join("not-there");
    let err = SqliteStore::open(&missing).await.unwrap_err();
    assert!(matches!(err, StoreError::MissingDir { .. }), "{err}");
    assert_names(&err, &missing);
    assert!(!missing.exists(), "open must not create the directory");
}

#[tokio::test]
async fn dir_that_is_a_file_is_typed_error() {
    let dir = TempDir::new("not-dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    for path in [file.clone(), file.join("state")] {
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NotADirectory { .. }),
            "{path:?}: {err}"
        );
        assert_names(&err, &path);
    }
}

/// A directory whose permission bits forbid writing. Tests run as root, and root ignores
/// permission bits; in that case use a directory the kernel refuses files in even for root
/// (`/sys` answers EACCES, `/proc` ENOENT).
fn unwritable_dir(scratch: &TempDir) -> Option<PathBuf> {
    let ro = scratch.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let refuses = |dir: &Path| {
        let probe = dir.join("stox-probe");
        match std::fs::write(&probe, b"") {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
                false
            }
            Err(_) => true,
        }
    };
    if refuses(&ro) {
        return Some(ro);
    }
    // Root: chmod did not stop the write. Give the directory its bits back for cleanup.
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    ["/sys", "/proc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir() && refuses(p))
}

#[tokio::test]
async fn unwritable_dir_is_typed_error() {
    let scratch = TempDir::new("unwritable");
    let Some(dir) = unwritable_dir(&scratch) else {
        panic!("no directory refuses writes to this user (root without /sys and /proc)");
    };
    let err = SqliteStore::open(&dir).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unwritable { .. }),
        "{}: {err}",
        dir.display()
    );
    assert_names(&err, &dir);
    assert!(!dir.join(DB_FILE_NAME).exists());
}

#[tokio::test]
async fn garbage_file_is_corrupt_error() {
    let dir = TempDir::new("garbage");
    let db = dir.path().join(DB_FILE_NAME);
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();

    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_names(&err, &db);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "the file is left untouched"
    );
}

#[tokio::test]
async fn damaged_database_is_corrupt_error() {
    let dir = TempDir::new("damaged");
    let store = SqliteStore::open(dir.path()).await.unwrap();
    for i in 0..2000 {
        store
            .upsert_authorization(&auth(
                i,
                i,
                Direction::XmppWatchesSip,
                AuthState::Subscribed,
            ))
            .await
            .unwrap();
    }
    store.close().await; // the last connection checkpoints the WAL into the file

    // Keep the header and the first pages (schema), scribble over the table pages.
    let db = dir.path().join(DB_FILE_NAME);
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());
    for (i, b) in bytes[16 * 1024..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();

    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_names(&err, &db);
}

/// A second connection takes SQLite's exclusive lock on an existing database and keeps it.
async fn hold_exclusive_lock(db: &Path) -> sqlx::SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .locking_mode(sqlx::sqlite::SqliteLockingMode::Exclusive)
        .connect()
        .await
        .unwrap();
    conn.execute("BEGIN EXCLUSIVE").await.unwrap();
    conn.execute("DELETE FROM presence_authorization")
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn locked_database_is_typed_error_at_open() {
    let dir = TempDir::new("locked");
    let db = dir.path().join(DB_FILE_NAME);
    SqliteStore::open(dir.path()).await.unwrap().close().await;

    let mut holder = hold_exclusive_lock(&db).await;
    let started = Instant::now();
    let err = SqliteStore::open_with(dir.path(), quick())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.is_transient());
    assert_names(&err, &db);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    holder.execute("ROLLBACK").await.unwrap();
    holder.close().await.unwrap();
    SqliteStore::open_with(dir.path(), quick())
        .await
        .expect("opens once the lock is gone");
}

/// The same with a real second process (the sqlite3 shell; test.sh installs it).
#[tokio::test]
async fn database_locked_by_other_process_is_typed_error() {
    let dir = TempDir::new("locked-process");
    let db = dir.path().join(DB_FILE_NAME);
    SqliteStore::open(dir.path()).await.unwrap().close().await;

    let Some(holder) = Sqlite3Lock::take(&db) else {
        panic!("no sqlite3 shell on PATH: install it (apt-get install sqlite3; ./test.sh does)");
    };
    let err = SqliteStore::open_with(dir.path(), quick())
        .await
        .unwrap_err();
    drop(holder);
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_names(&err, &db);
    SqliteStore::open_with(dir.path(), quick())
        .await
        .expect("opens once the shell is gone");
}

/// A `sqlite3` shell process holding the exclusive lock of a database until dropped.
struct Sqlite3Lock {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Sqlite3Lock {
    /// Starts `sqlite3 db`, takes the exclusive lock and returns once the shell holds it
    /// (it keeps the transaction while its stdin stays open). `None` without a sqlite3 shell.
    fn take(db: &Path) -> Option<Self> {
        let child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut lock = Sqlite3Lock { child, stdin: None };
        let mut stdin = lock.child.stdin.take().expect("piped stdin");
        stdin
            .write_all(
                b"PRAGMA locking_mode=EXCLUSIVE;\nBEGIN EXCLUSIVE;\n\
                  DELETE FROM presence_authorization;\nSELECT 'holding';\n",
            )
            .expect("write to sqlite3");
        stdin.flush().expect("flush to sqlite3");
        lock.stdin = Some(stdin);
        // The shell echoes the pragma's result ("exclusive") first.
        let mut out = BufReader::new(lock.child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        while line.trim() != "holding" {
            line.clear();
            let n = out.read_line(&mut line).expect("read from sqlite3");
            assert!(n > 0, "sqlite3 exited before taking the lock");
        }
        Some(lock)
    }
}

impl Drop for Sqlite3Lock {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the shell rolls back and exits
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A write that cannot take the lock fails with `Locked`; reads still work (WAL).
#[tokio::test]
async fn write_failure_under_lock_is_returned() {
    let dir = TempDir::new("write-locked");
    let store = SqliteStore::open_with(dir.path(), quick()).await.unwrap();
    let a = auth(1, 1, Direction::XmppWatchesSip, AuthState::Pending);
    store.upsert_authorization(&a).await.unwrap();

    let mut writer = SqliteConnectOptions::new()
        .filename(store.path())
        .connect()
        .await
        .unwrap();
    writer.execute("BEGIN IMMEDIATE").await.unwrap();

    let changed = Authorization {
        state: AuthState::Subscribed,
        ..a.clone()
    };
    let err = store.upsert_authorization(&changed).await.unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let d = test_util::dialog("c", a.key.clone(), 9);
    let err = store.upsert_dialog(&d).await.unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_eq!(
        store.get_authorization(&a.key).await.unwrap(),
        Some(a.clone())
    );

    writer.execute("ROLLBACK").await.unwrap();
    store.upsert_authorization(&changed).await.unwrap();
    assert_eq!(
        store.get_authorization(&a.key).await.unwrap(),
        Some(changed)
    );
}

/// Any other failed write (here injected with a trigger) is returned with the operation name.
#[tokio::test]
async fn injected_write_failure_is_returned() {
    let dir = TempDir::new("write-fails");
    let store = SqliteStore::open(dir.path()).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER fail_writes BEFORE INSERT ON presence_authorization
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(store.pool())
    .await
    .unwrap();

    let a = auth(1, 1, Direction::SipWatchesXmpp, AuthState::Pending);
    let err = store.upsert_authorization(&a).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Backend {
                op: "upsert_authorization",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_names(&err, store.path());
    assert_eq!(store.get_authorization(&a.key).await.unwrap(), None);
}

#[tokio::test]
async fn stale_probe_file_does_not_block_open() {
    let dir = TempDir::new("stale-probe");
    let probe = dir
        .path()
        .join(format!(".{DB_FILE_NAME}.probe-{}", std::process::id()));
    std::fs::write(&probe, b"left over").unwrap();
    SqliteStore::open(dir.path()).await.unwrap();
    assert!(!probe.exists());
}
