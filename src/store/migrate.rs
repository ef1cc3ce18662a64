//! Versioned schema migrations for the SQLite store (PRES-14), embedded in the binary.
//!
//! The SQL lives in `migrations/NNNN_name.sql` and is compiled in with `include_str!`. sqlx's
//! migrator applies them in order and records each one (version, checksum) in its
//! `_sqlx_migrations` table, so a second run is a no-op, an edited migration is refused, and a
//! database migrated by a newer binary is detected. We hand the list to the migrator through
//! a small [`MigrationSource`] instead of the `sqlx::migrate!` macro, which would need sqlx's
//! proc-macro crate (a longer build) for no benefit.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// One migration compiled into the binary.
#[derive(Debug)]
pub(crate) struct EmbeddedMigration {
    /// Its version; versions increase by one from 1.
    pub(crate) version: i64,
    /// Short name, recorded by the migrator.
    pub(crate) description: &'static str,
    /// The SQL, run in one transaction.
    pub(crate) sql: &'static str,
}

/// Every migration, oldest first. Append only; never edit one that was released.
pub(crate) const MIGRATIONS: &[EmbeddedMigration] = &[EmbeddedMigration {
    version: 1,
    description: "presence",
    sql: include_str!("migrations/0001_presence.sql"),
}];

/// The schema version this binary creates and understands (the last migration's version).
pub const SCHEMA_VERSION: i64 = 1;

/// Hands a slice of [`MIGRATIONS`] to sqlx's migrator.
#[derive(Debug)]
struct Embedded(&'static [EmbeddedMigration]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let migrations = self
            .0
            .iter()
            .map(|m| {
                Migration::new(
                    m.version,
                    Cow::Borrowed(m.description),
                    MigrationType::Simple,
                    Cow::Borrowed(m.sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// A migrator for `migrations` (normally all of [`MIGRATIONS`]; tests pass a prefix to build
/// an older schema).
pub(crate) async fn migrator(
    migrations: &'static [EmbeddedMigration],
) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(migrations)).await
}
