//! Store errors (PRES-14 persistence). Every message names the file or directory concerned
//! and what the operator can do, because most of them end up in a startup log.

use std::path::PathBuf;

/// A boxed backend error kept as the `source` of [`StoreError::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The configured state directory does not exist (it is not created implicitly, so a typo
    /// in the config cannot silently start with an empty state).
    #[error(
        "state directory {path} does not exist: create it (e.g. `mkdir -p {path}` owned by the \
         gateway's user) or fix the state directory in the config"
    )]
    MissingDir {
        /// The configured directory.
        path: PathBuf,
    },

    /// The configured state directory path names something that is not a directory.
    #[error(
        "state directory {path} is not a directory: point the state directory in the config at \
         a directory"
    )]
    NotADirectory {
        /// The configured directory.
        path: PathBuf,
    },

    /// The gateway cannot create or write files there (permissions, read-only filesystem).
    #[error(
        "{path} is not writable ({reason}): give the gateway's user write access to the state \
         directory and the database files in it (SQLite creates -wal and -shm files beside the \
         database)"
    )]
    Unwritable {
        /// The directory or database file.
        path: PathBuf,
        /// What the operating system or SQLite said.
        reason: String,
    },

    /// The file is not a database, or the database is damaged.
    #[error(
        "{path} is not a usable stox database ({detail}): stop the gateway, move the file (and \
         its -wal/-shm files) aside and restore a backup, or start without it to begin with an \
         empty state (all users will be asked to subscribe again)"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },

    /// Another connection or process held a lock for longer than the busy timeout.
    #[error(
        "database {path} is locked by another process or connection: make sure only one gateway \
         instance uses this state directory and no tool (e.g. an sqlite3 shell) keeps a \
         transaction open, then retry"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
    },

    /// The disk or the database reached its size limit.
    #[error("database {path} is full: free disk space on its filesystem, then retry")]
    Full {
        /// The database file.
        path: PathBuf,
    },

    /// The database was migrated by a newer gateway version than this binary.
    #[error(
        "database {path} has schema version {found}, newer than this binary's {known}: run the \
         newer gateway version, or restore a backup taken before the upgrade"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The unknown version found applied.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },

    /// A schema migration failed (including a migration edited after it was applied).
    #[error(
        "migrating database {path} failed ({detail}): the database is left at its previous \
         version; restore a backup or report this as a bug"
    )]
    Migration {
        /// The database file.
        path: PathBuf,
        /// What the migrator said.
        detail: String,
    },

    /// A stored row cannot be decoded (unknown enum value, out-of-range number, bad JSON).
    #[error(
        "database {path} holds an invalid row in {table} ({detail}): it was written by another \
         program or version; fix or delete that row"
    )]
    BadRow {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },

    /// The store was closed with [`Store::close`](super::Store::close).
    #[error("database {path} is closed")]
    Closed {
        /// The database file.
        path: PathBuf,
    },

    /// Any other backend failure (I/O error, constraint violation, ...).
    #[error("database {path}: {op} failed: {source}")]
    Backend {
        /// The database file.
        path: PathBuf,
        /// The store operation that failed.
        op: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// `true` if retrying the same operation later may succeed (a lock held elsewhere, a full
    /// disk being cleaned up); `false` for errors that need an operator.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Locked { .. } | StoreError::Full { .. })
    }
}
