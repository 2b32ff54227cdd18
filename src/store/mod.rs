//! Persistence: handovers and idempotency keys, the read facade's index, care teams and
//! consents ([`access_facts`]), in SQLite (the default, one instance) or PostgreSQL (several
//! instances sharing one database), chosen by the database URL.
//!
//! Everything that changes state goes through a [`Tx`], one database transaction. That is
//! the seam for the later stages: the audit entry of an action and the outbox row of a
//! handover are written through the same `Tx` before [`Tx::commit`], so an action and its
//! record either both exist or neither does.
//!
//! One copy of every query serves both backends: the queries run through sqlx's `Any`
//! driver with `$1, $2, …` placeholders (SQLite binds `$N` by number too). The few places
//! where the dialects differ (JSON functions, row locks, snapshot reads) are small
//! fragments of [`Backend`]; a handover's write is one round trip on each, assembled from the
//! same fragments: one statement of data-modifying common tables on PostgreSQL, which SQLite
//! lacks, and one command of several statements on SQLite ([`Tx::store_handover`]); the schema is kept per backend in `migrations/sqlite` and
//! `migrations/postgres`. Nothing outside `store/` names a driver: other modules use
//! [`Conn`], [`DbRow`] and [`Tx`]. Queries are checked at run time (`sqlx::query`), so
//! building needs no database.

pub mod access_facts;
pub mod group;
pub mod handovers;
pub mod report;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Executor};

pub use access_facts::{FacadeResource, StoredPolicyResource, Writer};
pub use handovers::{HandoverRow, HandoverWrite, IdempotencyClaim, NewHandover, Stored};

/// The database driver in use: sqlx's `Any`, over SQLite or PostgreSQL.
pub type Db = sqlx::Any;
type Pool = sqlx::Pool<Db>;
/// A connection of the database in use: what the queries of other modules (audit, outbox)
/// run on, through [`Tx::conn`] or [`Connector::connect`]. Nothing outside `store/` names
/// a driver, so another backend changes this module only.
pub type Conn = <Db as sqlx::Database>::Connection;
/// A result row of the database in use.
pub type DbRow = <Db as sqlx::Database>::Row;

/// Migrations embedded in the binary, applied at start: the SQLite schema (the files of
/// the versions before PostgreSQL, unchanged, so existing databases keep verifying).
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The same schema for PostgreSQL (same versions; the guards as PL/pgSQL triggers).
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one instance (the default).
    Sqlite,
    /// One database shared by any number of instances.
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// As `/health/ready` and the log name it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }

    /// True when one instance owns the database (SQLite): what is in flight is its own.
    pub fn single_instance(self) -> bool {
        self == Backend::Sqlite
    }

    /// Appended to a `SELECT` that claims rows for work (the outbox): on PostgreSQL the rows
    /// are locked and rows another instance holds are skipped; SQLite has one writer at a
    /// time anyway (the claiming transaction writes first and so holds the write lock).
    pub fn claim_rows(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A JSON document from a text column or expression, as [`Backend::json_text`] and
    /// [`Backend::json_elements`] take it. A text that is not JSON reads as no document
    /// (SQLite's JSON functions and PostgreSQL's cast would fail the whole query).
    pub fn json_doc(self, text: &str) -> String {
        match self {
            Backend::Sqlite => format!("(CASE WHEN json_valid({text}) THEN {text} ELSE '[]' END)"),
            Backend::Postgres => format!("overdracht_jsonb({text})"),
        }
    }

    /// The text at `path` (member names and array indexes) of a document (null if absent).
    /// An object or array comes back as its JSON text.
    pub fn json_text(self, doc: &str, path: &[&str]) -> String {
        match self {
            Backend::Sqlite => {
                let mut p = String::from("$");
                for k in path {
                    if k.bytes().all(|b| b.is_ascii_digit()) {
                        p.push_str(&format!("[{k}]"));
                    } else {
                        p.push('.');
                        p.push_str(k);
                    }
                }
                format!("json_extract({doc}, '{p}')")
            }
            Backend::Postgres => format!("({doc} #>> '{{{}}}')", path.join(",")),
        }
    }

    /// A table source of the elements of the array at `path` of a document, aliased
    /// `alias`, with one column `value`: the element's text for strings, its JSON
    /// otherwise (an object: read its members with [`Backend::json_text`] on
    /// [`Backend::element_doc`]).
    pub fn json_elements(self, doc: &str, path: &[&str], alias: &str) -> String {
        match self {
            Backend::Sqlite => {
                let p: String = path.iter().map(|k| format!(".{k}")).collect();
                format!("json_each({doc}, '${p}') {alias}")
            }
            Backend::Postgres => format!(
                "jsonb_array_elements_text(CASE WHEN jsonb_typeof({doc} #> '{{{p}}}') = 'array' \
                 THEN {doc} #> '{{{p}}}' ELSE '[]'::jsonb END) AS {alias}(value)",
                p = path.join(",")
            ),
        }
    }

    /// True when the text `haystack` contains the text `needle`, byte for byte (so case
    /// matters on both backends: SQLite's `LIKE` ignores the case of ASCII letters,
    /// PostgreSQL's does not).
    pub fn contains_text(self, haystack: &str, needle: &str) -> String {
        match self {
            Backend::Sqlite => format!("instr({haystack}, {needle}) > 0"),
            Backend::Postgres => format!("strpos({haystack}, {needle}) > 0"),
        }
    }

    /// The document of an element of [`Backend::json_elements`] (`alias.value`).
    pub fn element_doc(self, alias: &str) -> String {
        match self {
            Backend::Sqlite => format!("{alias}.value"),
            Backend::Postgres => format!("overdracht_jsonb({alias}.value)"),
        }
    }
}

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
    #[error("unsupported database URL (use sqlite:… or postgres://…)")]
    UnsupportedUrl,
}

impl StoreError {
    /// True when the database aborted the transaction to break a deadlock or a serialisation
    /// conflict with a concurrent one (see [`aborted_for_concurrency`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Database(e) if aborted_for_concurrency(e))
    }
}

/// True for PostgreSQL's "deadlock detected" (SQLSTATE 40P01) and "could not serialize
/// access" (40001): the transaction was rolled back and may be run again as a whole.
pub fn aborted_for_concurrency(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

/// Pool settings (`database_max_connections`, `database_acquire_timeout_ms`).
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a free connection before it fails.
    pub acquire_timeout: Duration,
}

impl PoolSettings {
    pub fn new(max_connections: u32) -> PoolSettings {
        PoolSettings { max_connections, acquire_timeout: Duration::from_secs(10) }
    }
}

/// A pooled PostgreSQL connection idle for less than this is handed out without a ping.
/// sqlx's `test_before_acquire` pings on every acquire: a round trip to the server before
/// each transaction of the group writer and each read, when the connection was in use a
/// moment ago (HikariCP skips its check within 500 ms for the same reason). A connection
/// that died within the window fails its statement, and the request reports a database
/// error and keeps nothing of it; the pool opens a new connection for the next one.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// What a pool checks before it hands out an idle connection: SQLite nothing (a local file
/// does not go away between uses); PostgreSQL a ping when idle for [`PING_WHEN_IDLE_FOR`].
fn checked_before_acquire(options: AnyPoolOptions, backend: Backend) -> AnyPoolOptions {
    let options = options.test_before_acquire(false);
    if backend == Backend::Sqlite {
        return options;
    }
    options.before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for >= PING_WHEN_IDLE_FOR {
                sqlx::Connection::ping(conn).await?;
            }
            Ok(true)
        })
    })
}

/// Opens single connections outside the pool, set up as the pool's are (the audit trail's
/// lone writer keeps one of its own).
#[derive(Clone, Debug)]
pub struct Connector {
    options: AnyConnectOptions,
    backend: Backend,
}

impl Connector {
    pub async fn connect(&self) -> Result<Conn, sqlx::Error> {
        let mut c = self.options.connect().await?;
        setup_connection(&mut c, self.backend).await?;
        Ok(c)
    }
}

/// What every connection gets before its first use. SQLite: durable across process
/// crashes (not power loss of the last commit) in WAL mode without an fsync per commit,
/// and writers wait for each other instead of failing. (WAL itself is a property of the
/// file, set once at open; foreign keys are on by default in sqlx.) A committing
/// connection copies the WAL into the database file only as a backstop, past
/// [`WAL_BACKSTOP_PAGES`]: the [checkpointer](spawn_checkpointer) does it first.
async fn setup_connection(c: &mut Conn, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        c.execute(sqlx::AssertSqlSafe(format!(
            "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES}; PRAGMA journal_size_limit = {WAL_KEPT_BYTES}"
        )))
        .await?;
    }
    Ok(())
}

/// SQLite: the WAL pages past which a committing connection checkpoints itself (SQLite's
/// default is 1,000, which put a checkpoint of ~4 MB into the commit of every ~22nd
/// handover at 250/s). By then the checkpointer has copied all but the last moments' pages,
/// so this checkpoint is short; what it is for is the WAL's start-over: SQLite starts the WAL
/// file over only when a writer finds all of it checkpointed, which under continuous writes
/// the checkpointer's own connection seldom sees. So the WAL file grows to about this size
/// (80 MB; 64-81 MB after 2,500 handovers at 250/s, 4.3-4.5 MB with SQLite's default) and
/// then starts over. With the backstop at SQLite's 1,000 pages (the WAL starting over every
/// 4 MB) the p99 (16 to 39 ms) and the CPU per handover were within the range of SQLite's
/// default (three paired runs at 250/s), not those of the 20,000.
const WAL_BACKSTOP_PAGES: u32 = 20_000;
/// SQLite: the size the WAL file is cut back to when it starts over (it is reused, not
/// shrunk, otherwise).
const WAL_KEPT_BYTES: u64 = 64 * 1024 * 1024;
/// How often the checkpointer runs. Small checkpoints often: at 250 handovers/s the p99
/// grew with the interval (interleaved runs of 10 s: 16.5 to 22 ms at 50 ms, 15 to 33 ms at
/// 100 ms, 27 to 39 ms at 200 ms, 45 to 56 ms at 500 ms, 57 to 61 ms at 2 s; 24 to 39 ms with
/// SQLite's own checkpoints in the commits), and the CPU per handover was below that of the
/// commits' checkpoints in 15 of 18 pairs (3 to 6 % below in the three at 50 ms).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// How often the checkpointer runs when the group writer has committed nothing.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

/// SQLite: copies the WAL's committed pages into the database file every
/// [`CHECKPOINT_EVERY`] after a commit of the group writer, and at least every
/// [`CHECKPOINT_IDLE`] for the other connections' writes (a PASSIVE checkpoint, on a
/// connection of its own: it waits for no reader and no writer, and none waits for it),
/// until the store is dropped (`alive` gone).
///
/// Off the writers' path: the commit that crossed SQLite's threshold used to do it, and
/// its batch of handovers waited for it. A page changed by several handovers meanwhile
/// (an index's last leaf, the audit chain head) is copied once per checkpoint. And it
/// bounds what a power loss can take: with `synchronous = NORMAL` a commit reaches the
/// disk at the next checkpoint's sync, normally within [`CHECKPOINT_EVERY`] (before: after up to
/// 1,000 pages, which at a handover a minute was more than 20 minutes).
fn spawn_checkpointer(connector: Connector, alive: std::sync::Weak<group::Group>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conn: Option<Conn> = None;
        let mut last = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let Some(group) = alive.upgrade() else { break };
            let written = group.committed.swap(false, std::sync::atomic::Ordering::Relaxed);
            drop(group);
            if !written && last.elapsed() < CHECKPOINT_IDLE {
                continue;
            }
            last = tokio::time::Instant::now();
            if conn.is_none() {
                conn = connector
                    .connect()
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "checkpointer: no connection"))
                    .ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            if let Err(e) = c.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                // The backstop checkpoints meanwhile; a new connection at the next tick.
                tracing::warn!(error = %e, "WAL checkpoint failed");
                conn = None;
            }
        }
    });
}

/// The handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// The connection of grouped write transactions ([`Store::grouped`]).
    writes: Pool,
    backend: Backend,
    /// The connection and chain head of lone audit entries (see [`crate::audit::record_alone`]).
    audit_writer: std::sync::Arc<crate::audit::LoneWriter>,
    /// The writer of grouped transactions ([`Store::grouped`]).
    group: std::sync::Arc<group::Group>,
}

impl Store {
    /// Connects (creating the SQLite file if needed) and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::open_with(url, PoolSettings::new(max_connections)).await
    }

    /// [`Store::open`] with pool settings.
    pub async fn open_with(url: &str, pool: PoolSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let acquire_timeout = pool.acquire_timeout;
        let options = AnyConnectOptions::from_str(url)?;
        let pool_options = checked_before_acquire(AnyPoolOptions::new(), backend)
            .max_connections(pool.max_connections.max(1))
            .acquire_timeout(pool.acquire_timeout)
            .after_connect(move |c, _| Box::pin(setup_connection(c, backend)));
        let mut file_backed = false;
        let pool = match backend {
            Backend::Sqlite => {
                let file = prepare_sqlite(url).await?;
                file_backed = file.is_some();
                let pool = pool_options.connect_with(options.clone()).await?;
                if let Some(f) = &file {
                    // The WAL and shared-memory files exist now; SQLite gives them the
                    // database file's mode, this makes sure of it.
                    private_database_files(f)?;
                }
                pool
            }
            Backend::Postgres => {
                // Migrations on a connection of their own, closed afterwards: sqlx takes a
                // session advisory lock around them (instances starting together apply
                // each migration once), and a failed run must not leave the lock held by a
                // pooled connection.
                let single = AnyPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
                let migrated = POSTGRES_MIGRATOR.run(&single).await;
                single.close().await;
                migrated?;
                pool_options.connect_with(options.clone()).await?
            }
        };
        // The group writer's own pool of one connection: every write batch runs on the same
        // connection, whose page cache stays valid from one batch to the next. (A pool
        // connection that another connection's commit has overtaken must drop its cache and
        // read the pages again: 224 KB read per handover at 250/s with the writes spread over
        // the pool of 8, 58 KB on one connection.)
        let writes = checked_before_acquire(AnyPoolOptions::new(), backend)
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .after_connect(move |c, _| Box::pin(setup_connection(c, backend)))
            .connect_with(options.clone())
            .await?;
        let connector = Connector { options, backend };
        let group: std::sync::Arc<group::Group> = Default::default();
        if file_backed {
            spawn_checkpointer(connector.clone(), std::sync::Arc::downgrade(&group));
        }
        Ok(Store {
            pool,
            writes,
            backend,
            audit_writer: std::sync::Arc::new(crate::audit::LoneWriter::new(connector)),
            group,
        })
    }

    /// The database engine in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction. Write before you read inside it: SQLite then takes the write
    /// lock at the first statement and concurrent transactions queue instead of failing.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx { inner: self.pool.begin().await?, audit_head: None })
    }

    /// A write transaction on the group writer's connection ([`group`]).
    pub(crate) async fn begin_grouped(&self) -> Result<Tx, StoreError> {
        Ok(Tx { inner: self.writes.begin().await?, audit_head: None })
    }

    /// A read-only transaction that sees one snapshot of the database for all its
    /// statements (SQLite's read transactions always do; PostgreSQL's default isolation
    /// takes a new snapshot per statement, so it is raised to REPEATABLE READ).
    pub async fn begin_snapshot(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            tx.conn().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
        }
        Ok(tx)
    }

    /// Readiness: the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; later calls fail. Used at shutdown (and by tests).
    pub async fn close(&self) {
        self.audit_writer.close().await;
        self.writes.close().await;
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn audit_writer(&self) -> &crate::audit::LoneWriter {
        &self.audit_writer
    }
}

/// Creates the SQLite file (private), switches it to WAL and applies the migrations, on a
/// native connection of its own. Returns the file (`None` for an in-memory database).
async fn prepare_sqlite(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        // WAL lets readers go on while one writer commits.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let file =
        (!url.contains(":memory:") && !url.contains("mode=memory")).then(|| options.get_filename().to_path_buf());
    if let Some(f) = &file {
        private_database_files(f)?;
    }
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    let migrated = SQLITE_MIGRATOR.run(&pool).await;
    pool.close().await;
    migrated?;
    Ok(file)
}

/// The database file and its companions (`-wal`, `-shm`, `-journal`) readable and writable
/// by the service's user only (they were 0644, holding every handover). The file
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

/// `sql` with `values` bound in order as `$1, $2, …`: most statements take texts only
/// (ids, versions, URAs, times).
pub(crate) fn with_texts<'q>(
    sql: &'static str,
    values: &[&'q str],
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    values.iter().fold(sqlx::query(sql), |q, v| q.bind(*v))
}

/// The values bound to a statement that is built piece by piece ([`Insert`]).
pub type Args = <Db as sqlx::Database>::Arguments;

/// Adds one bound value to `args`.
pub fn add<'q, T>(args: &mut Args, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    sqlx::Arguments::add(args, value).map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

/// A row of another module's table that a store write takes along in its own round trip
/// to the database (the audit entry that records a new handover, see
/// [`Tx::store_handover`]). The module keeps its columns and values; the store writes the
/// statement.
pub trait Insert: Sync {
    /// The table.
    fn table(&self) -> &'static str;
    /// The columns, in the order of [`Insert::add_values`].
    fn columns(&self) -> &'static [&'static str];
    /// Adds the row's values, one per column.
    fn add_values(&self, args: &mut Args) -> Result<(), StoreError>;
    /// A condition that holds once this row is written in the transaction, with `?` for
    /// its values (SQLite, where later statements of the same round trip depend on it),
    /// and the function that adds those values.
    fn written(&self) -> &'static str;
    fn add_written_values(&self, args: &mut Args) -> Result<(), StoreError>;
}

/// `n` placeholders from `$first` (PostgreSQL) or anonymous (`?`, SQLite: for a numbered
/// one sqlx asks SQLite for its name, a linear search per parameter), comma-separated.
pub(crate) fn placeholders(backend: Backend, first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        match backend {
            Backend::Sqlite => s.push('?'),
            Backend::Postgres => {
                s.push('$');
                s.push_str(&(first + i).to_string());
            }
        }
    }
    s
}

/// Writes `row` on its own: one statement.
pub async fn insert(conn: &mut Conn, row: &dyn Insert) -> Result<(), StoreError> {
    let backend = backend_of(conn);
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        row.table(),
        row.columns().join(", "),
        placeholders(backend, 1, row.columns().len())
    );
    let mut args = Args::default();
    row.add_values(&mut args)?;
    // Safe: the table and columns are the module's constants; every value is bound.
    sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(conn).await?;
    Ok(())
}

/// The engine a connection talks to.
fn backend_of(conn: &mut Conn) -> Backend {
    if conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// One database transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, Db>,
    audit_head: Option<(i64, String)>,
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

    /// The database engine this transaction runs on.
    pub(crate) fn backend(&mut self) -> Backend {
        backend_of(self.conn())
    }

    /// The audit chain head (position, hash) as this transaction left it, once it has
    /// locked the head and appended an entry (`None` before): the head cannot move under a
    /// transaction that holds its lock, so its next entry needs no new read.
    pub fn audit_head(&mut self) -> &mut Option<(i64, String)> {
        &mut self.audit_head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, AuditEntry, AuditOutcome};

    /// The lookup of a resource id across holders and patients (the guard that a
    /// patient-bound id is never written for another patient, run for every facade row of
    /// every handover) is a search in the facade's primary key, which starts with
    /// (resource_type, resource_id) since migration 0021; the separate index on those two
    /// columns is gone (one random-keyed index fewer to write per new resource).
    #[tokio::test]
    async fn a_resource_id_is_looked_up_in_the_facade_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}/k.db?mode=rwc", dir.path().display()), 2).await.expect("store");
        let plan = |sql: &'static str| {
            let store = store.clone();
            async move {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(store.pool())
                    .await
                    .expect("plan");
                rows.iter()
                    .map(|r| sqlx::Row::try_get::<String, _>(r, 3).expect("detail"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let guard = plan(
            "SELECT 1 FROM facade_resources WHERE resource_type = 'Condition' AND resource_id = 'x' \
             AND patient_bsn <> '1' LIMIT 1",
        )
        .await;
        assert!(
            guard.starts_with("SEARCH facade_resources USING")
                && guard.contains("INDEX sqlite_autoindex_facade_resources_1 (resource_type=? AND resource_id=?)"),
            "{guard}"
        );
        let read =
            plan("SELECT patient_bsn FROM facade_resources WHERE resource_type = 'Patient' AND resource_id = 'x'")
                .await;
        assert!(
            read.contains("INDEX sqlite_autoindex_facade_resources_1 (resource_type=? AND resource_id=?)"),
            "{read}"
        );
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'facade_resources' ORDER BY name",
        )
        .fetch_all(store.pool())
        .await
        .expect("indexes");
        assert_eq!(
            indexes,
            ["facade_resources_bsn", "facade_resources_patient", "sqlite_autoindex_facade_resources_1"]
        );
    }

    /// What the group writer commits reaches the database file itself within moments, not
    /// when the WAL has grown to the backstop: the checkpointer copies it. (Without it, the
    /// 2 MB written here stay in the WAL: the backstop is 20,000 pages.)
    #[tokio::test]
    async fn the_checkpointer_copies_commits_into_the_database_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display()), 2).await.expect("store");
        tokio::time::sleep(CHECKPOINT_IDLE + CHECKPOINT_EVERY * 4).await;
        let before = std::fs::metadata(&path).expect("file").len();
        for i in 0..20 {
            let work: group::Work = Box::new(move |tx| {
                Box::pin(async move {
                    let mut e = AuditEntry::new(AuditAction::Conversion, AuditOutcome::Success);
                    e.reason = Some(format!("{i} {}", "x".repeat(100_000)));
                    crate::audit::record(tx, &e).await.is_ok()
                })
            });
            store.grouped(work).await.expect("grouped");
        }
        let wal = path.with_extension("db-wal");
        assert!(std::fs::metadata(&wal).expect("WAL").len() > 2_000_000, "the writes went to the WAL");
        // Generous: this shows that it happens, not how fast (a loaded CI machine); without
        // the checkpointer the file does not grow at all.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let grown = std::fs::metadata(&path).expect("file").len() - before;
            if grown > 2_000_000 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the database file grew by {grown} bytes only");
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
        assert_eq!(crate::audit::verify(&store, &[]).await.expect("verify").checked, 20);
    }
}
