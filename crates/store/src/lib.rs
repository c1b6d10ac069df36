//! The metadata store: one SQL schema, versioned migrations and every query
//! Stratus runs, behind one `Store` type.
//!
//! Queries are written once in the dialect SQLite and PostgreSQL share
//! (`$n` placeholders, `ON CONFLICT`, `BIGINT`/`TEXT` columns) and run
//! through `sqlx`'s `Any` driver, so the PostgreSQL back end is a URL away.
//! The store knows rows and transactions, not AWS or OCI wire names.
//!
//! Invariants:
//! - every method that writes more than one row does so in one transaction;
//! - on SQLite, writers are serialised by an in-process lock, so a write
//!   transaction never fails with `SQLITE_BUSY` against another of ours;
//! - nothing is acknowledged before its transaction committed with
//!   `synchronous = FULL` in WAL mode.

mod events;
mod functions;
mod iam;
mod logs;
mod migrate;
mod registry;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard};

pub use events::AsyncEventRow;
pub use functions::FunctionRow;
pub use iam::{
    IamInsert, IamPolicyDelete, IamPolicyRow, IamPolicyVersionRow, IamRoleDelete, IamRoleRow,
    IamRoleWrite,
};
pub use logs::LogRetentionRow;
pub use registry::{
    ImageSummary, ManifestRow, NewManifest, PutManifestError, PutManifestOutcome, RefKind,
    RepositoryRow,
};

/// Errors of the store itself: the database is unreachable, corrupt or a
/// query failed. Domain outcomes (not found, conflict) are `Option`/enum
/// results of the individual methods, never this error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("metadata schema migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("metadata database has schema version {found}, newer than this binary knows ({known}); upgrade stratus")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("cannot open metadata database {path}: {message}")]
    Open { path: String, message: String },
}

/// The metadata store.
pub struct Store {
    pool: AnyPool,
    /// Serialises write transactions on SQLite (single writer by design).
    write_lock: Mutex<()>,
    /// Bumped when a write begins and when it ends: a value read before a
    /// read and still current after it proves no write overlapped it.
    generation: AtomicU64,
}

/// Held for the length of a write transaction.
pub(crate) struct WriteGuard<'a> {
    _lock: MutexGuard<'a, ()>,
    generation: &'a AtomicU64,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// Opens (creating if needed) the embedded SQLite database at `path`
    /// and brings its schema up to date.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        let store = Store {
            pool,
            write_lock: Mutex::new(()),
            generation: AtomicU64::new(0),
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) async fn writer(&self) -> WriteGuard<'_> {
        let lock = self.write_lock.lock().await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        WriteGuard {
            _lock: lock,
            generation: &self.generation,
        }
    }

    /// Changes whenever this store writes. Callers may keep what they read
    /// while the generation they saw before reading is still current
    /// (single-node: writes by other processes are not seen).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Returns the value stored under `key`, or stores `value` and returns
    /// it when there was none (used for server-generated secrets).
    pub async fn setting_get_or_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((v,)) = existing {
            return Ok(v);
        }
        let _w = self.writer().await;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        let row: (String,) = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.0)
    }

    /// Flushes and closes every connection (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
