//! Persistence: handovers and idempotency keys, the read facade's index, care teams and
//! consents ([`access`]), in SQLite by default.
//!
//! Everything that changes state goes through a [`Tx`], one database transaction. That is
//! the seam for the later stages: the audit entry of an action (issue 7) and the outbox row
//! of a handover (issue 8) are written through the same `Tx` before [`Tx::commit`], so an
//! action and its record either both exist or neither does.
//!
//! The SQL is kept portable (see `migrations/`); the database type is named once, in
//! [`Db`], so that PostgreSQL can follow by changing the driver here, not the queries.
//! Queries are checked at run time (`sqlx::query`), so building needs no database.

pub mod access;
pub mod handovers;
pub mod report;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use access::{FacadeResource, StoredPolicyResource, Writer};
pub use handovers::{HandoverRow, IdempotencyClaim, NewHandover};

/// The database driver in use.
pub type Db = sqlx::Sqlite;
type Pool = sqlx::Pool<Db>;

/// Migrations embedded in the binary, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// The handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// The connection and chain head of lone audit entries (see [`crate::audit::record_alone`]).
    audit_writer: std::sync::Arc<crate::audit::LoneWriter>,
}

impl Store {
    /// Connects (creating the SQLite file if needed) and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets readers go on while one writer commits; NORMAL synchronous is
            // durable across process crashes (not power loss of the last commit) in WAL mode.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A local file does not go away between uses: no ping before every acquire (a
            // round trip to the SQLite worker thread that every request would pay).
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, audit_writer: std::sync::Arc::new(crate::audit::LoneWriter::new(options)) })
    }

    /// Starts a transaction. Write before you read inside it: SQLite then takes the write
    /// lock at the first statement and concurrent transactions queue instead of failing.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx { inner: self.pool.begin().await? })
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; later calls fail. Used at shutdown (and by tests).
    pub async fn close(&self) {
        self.audit_writer.close().await;
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn audit_writer(&self) -> &crate::audit::LoneWriter {
        &self.audit_writer
    }
}

/// One database transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, Db>,
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await?;
        Ok(())
    }

    /// The connection, for the queries of other modules (audit, outbox) that must run in
    /// this transaction.
    pub fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.inner
    }
}
