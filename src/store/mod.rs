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
/// A connection of the database in use: what the queries of other modules (audit, outbox)
/// run on, through [`Tx::conn`] or [`Connector::connect`]. Nothing outside `store/` names
/// a driver, so another backend changes this module only.
pub type Conn = <Db as sqlx::Database>::Connection;
/// A result row of the database in use.
pub type DbRow = <Db as sqlx::Database>::Row;

/// Opens single connections outside the pool, set up as the pool's are (the audit trail's
/// lone writer keeps one of its own).
#[derive(Clone, Debug)]
pub struct Connector {
    options: sqlx::sqlite::SqliteConnectOptions,
}

impl Connector {
    pub async fn connect(&self) -> Result<Conn, sqlx::Error> {
        sqlx::ConnectOptions::connect(&self.options).await
    }
}

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
    #[error("cannot make the database file {path} private (mode 0600): {source}")]
    Permissions { path: std::path::PathBuf, source: std::io::Error },
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
        let file =
            (!url.contains(":memory:") && !url.contains("mode=memory")).then(|| options.get_filename().to_path_buf());
        if let Some(f) = &file {
            private_database_files(f)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A local file does not go away between uses: no ping before every acquire (a
            // round trip to the SQLite worker thread that every request would pay).
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        if let Some(f) = &file {
            // The WAL and shared-memory files exist now; SQLite gives them the database
            // file's mode, this makes sure of it (and of files left by older versions).
            private_database_files(f)?;
        }
        Ok(Store { pool, audit_writer: std::sync::Arc::new(crate::audit::LoneWriter::new(Connector { options })) })
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

/// The database file and its companions (`-wal`, `-shm`, `-journal`) readable and writable
/// by the service's user only (issue 14: they were 0644, holding every handover). The file
/// is created with mode 0600 before SQLite opens it, so the umask cannot widen it, and
/// SQLite creates the companions with the database file's mode; existing files are
/// narrowed.
fn private_database_files(db: &std::path::Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Permissions { path, source }
        };
        if !db.exists() {
            if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(err(dir))?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(db)
                .map_err(err(db))?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let p = std::path::PathBuf::from(name);
            match std::fs::metadata(&p) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(err(&p))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(&p)(e)),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
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
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.inner
    }
}
