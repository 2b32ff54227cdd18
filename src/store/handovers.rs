//! The `handovers` and `idempotency_keys` tables.
//!
//! A handover's id is derived from what it is (sender, receiver, the source bytes), so
//! "store it unless it is already there" is one `INSERT ... ON CONFLICT DO NOTHING`: many
//! parallel deliveries of the same record race on the primary key and exactly one row
//! wins, without a read-then-write window.

use sqlx::Row;

use super::access_facts::{facade_upsert, facade_values, FacadeResource, FACADE_ROWS_PER_STATEMENT};
use super::{add, placeholders, with_texts, Backend, Insert, Store, StoreError, Tx};

/// A handover to store. The caller has converted the record already.
#[derive(Debug, Clone)]
pub struct NewHandover {
    /// What the status page shows of it; read back as it is ([`Store::handover`]).
    pub row: HandoverRow,
    pub source_media_type: Option<String>,
    /// The transaction Bundle as passed on (after minimisation), serialised.
    pub output_bundle: String,
    pub submitted_by_uzi: String,
    pub submitted_by_role: String,
}

/// A stored handover as `GET /handovers/{id}` shows it (without the output Bundle), and the
/// part of a [`NewHandover`] that is read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HandoverRow {
    pub id: String,
    pub created_at: String,
    pub status: String,
    pub sender: String,
    pub receiver: String,
    pub lead_practitioner: Option<String>,
    pub referral_reason: Option<String>,
    pub care_form: Option<String>,
    pub patient_resource_id: Option<String>,
    pub source_format: String,
    /// SHA-256 (hex) and size of the original record. The record itself is not kept: it
    /// may hold categories the agreement or an objection removed; only what was
    /// passed on (`output_bundle`) is stored.
    pub source_sha256: String,
    pub source_size: i64,
    pub resource_count: i64,
    /// The summary returned to the caller (JSON).
    pub summary: String,
    pub submitted_by_ura: String,
    /// The patient's BSN (for the audit entry of a read; never shown in the summary).
    pub patient_bsn: Option<String>,
}

/// The insert of a handover: placeholders from `$1` (PostgreSQL) or anonymous (SQLite), the
/// values added by [`bind_handover_args`].
fn insert_handover_sql(backend: Backend) -> String {
    format!(
        "INSERT INTO handovers ({HANDOVER_COLUMNS}) VALUES ({}) ON CONFLICT (id) DO NOTHING",
        placeholders(backend, 1, 20)
    )
}

/// A received handover to store, with what is written with it ([`Tx::store_handover`]).
pub struct HandoverWrite<'a> {
    pub handover: &'a NewHandover,
    /// `(id, version)` of the agreements it came under.
    pub agreements: &'a [(String, String)],
    /// When its delivery is queued.
    pub queued_at: &'a str,
    /// Its resources in the read facade.
    pub facade: &'a [FacadeResource],
    /// The row that records the new handover (its audit entry), written with it in the
    /// same round trip; `None`: the caller records it afterwards.
    pub recorded_by: Option<&'a dyn Insert>,
}

/// What [`Tx::store_handover`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// Inserted, with its agreement links, facade rows and `recorded_by` row; its delivery
    /// queued.
    New,
    /// A handover with its id was stored before: nothing was written but its delivery,
    /// queued again unless queued.
    Existing,
    /// A resource id is held for another patient (`Type/id`): the caller rolls the
    /// transaction back, which holds part of the handover's writes.
    BoundToAnotherPatient(String),
}

/// The insert of an outbox row around its values: handover, receiver, state, attempts, and
/// the time as next attempt, creation and update.
const QUEUE_DELIVERY_WITH: &str =
    "INSERT INTO outbox (handover_id, receiver, state, attempts, next_attempt_at, created_at, updated_at) VALUES";
const QUEUE_DELIVERY_END: &str = "ON CONFLICT (handover_id) DO NOTHING";

/// The columns of a handover's insert, in the order of [`bind_handover_args`].
const HANDOVER_COLUMNS: &str = "id, created_at, status, sender, receiver, lead_practitioner, \
     referral_reason, care_form, patient_bsn, patient_resource_id, source_format, \
     source_media_type, source_sha256, source_size, output_bundle, \
     resource_count, summary, submitted_by_uzi, submitted_by_role, submitted_by_ura";

/// Adds the 20 values of [`HANDOVER_COLUMNS`].
fn bind_handover_args(args: &mut super::Args, h: &NewHandover) -> Result<(), StoreError> {
    let r = &h.row;
    for v in [&r.id, &r.created_at, &r.status, &r.sender, &r.receiver] {
        add(args, v)?;
    }
    for v in [&r.lead_practitioner, &r.referral_reason, &r.care_form, &r.patient_bsn, &r.patient_resource_id] {
        add(args, v)?;
    }
    add(args, &r.source_format)?;
    add(args, &h.source_media_type)?;
    add(args, &r.source_sha256)?;
    add(args, r.source_size)?;
    add(args, &h.output_bundle)?;
    add(args, r.resource_count)?;
    add(args, &r.summary)?;
    add(args, &h.submitted_by_uzi)?;
    add(args, &h.submitted_by_role)?;
    add(args, &r.submitted_by_ura)
}

/// The result of recording an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// First use of the key.
    New,
    /// The key was used before for the same request, for this handover.
    Replay { handover_id: String },
    /// The key was used before for a different request.
    Mismatch,
}

impl Tx {
    /// Inserts the handover unless one with the same id exists. True when inserted.
    pub async fn insert_handover(&mut self, h: &NewHandover) -> Result<bool, StoreError> {
        let mut args = super::Args::default();
        bind_handover_args(&mut args, h)?;
        let sql = insert_handover_sql(self.backend());
        // Safe: fixed fragments and placeholders only; every value is bound.
        let done = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(self.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a received handover: inserts it unless one with its id exists; when inserted,
    /// links it to its agreements, writes its facade rows (never a resource id held for
    /// another patient, see [`Tx::put_facade_resources`]) and the `recorded_by` row; and
    /// queues its delivery at `queued_at` unless queued (a replay finds its delivery queued).
    ///
    /// The group writer runs its statements one after the other, and each is a round trip
    /// to the database (PostgreSQL: the server; SQLite: sqlx's thread of the connection).
    /// So this is one round trip when there is a `recorded_by` row and up to
    /// [`FACADE_ROWS_PER_STATEMENT`] facade rows: on PostgreSQL one statement
    /// (data-modifying common tables, each conditional on the handover's insert); on
    /// SQLite one command of several statements, where the later ones are conditional on
    /// the `recorded_by` row, itself written only when the handover insert just before it
    /// changed a row. Without a `recorded_by` row SQLite runs one statement each.
    pub async fn store_handover(&mut self, w: &HandoverWrite<'_>) -> Result<Stored, StoreError> {
        let (first, rest) = w.facade.split_at(w.facade.len().min(FACADE_ROWS_PER_STATEMENT));
        let stored = match (self.backend(), w.recorded_by) {
            (Backend::Postgres, _) => self.store_handover_postgres(w, first).await?,
            (Backend::Sqlite, Some(row)) => self.store_handover_sqlite(w, first, row).await?,
            (Backend::Sqlite, None) => {
                let h = w.handover;
                let inserted = self.insert_handover(h).await?;
                if inserted {
                    for (agreement, version) in w.agreements {
                        self.insert_handover_agreement(&h.row.id, agreement, version).await?;
                    }
                }
                self.queue_delivery(&h.row.id, &h.row.receiver, w.queued_at).await?;
                if !inserted {
                    return Ok(Stored::Existing);
                }
                // All of the facade rows, in statements of their own.
                return Ok(match self.put_facade_resources(w.facade, &h.row.id, &h.row.created_at).await? {
                    Ok(()) => Stored::New,
                    Err(resource) => Stored::BoundToAnotherPatient(resource),
                });
            }
        };
        if stored == Stored::New && !rest.is_empty() {
            let h = &w.handover.row;
            if let Err(resource) = self.put_facade_resources(rest, &h.id, &h.created_at).await? {
                return Ok(Stored::BoundToAnotherPatient(resource));
            }
        }
        Ok(stored)
    }

    /// [`Tx::store_handover`] on PostgreSQL: one statement.
    async fn store_handover_postgres(
        &mut self,
        w: &HandoverWrite<'_>,
        facade: &[FacadeResource],
    ) -> Result<Stored, StoreError> {
        let h = w.handover;
        let mut args = super::Args::default();
        bind_handover_args(&mut args, h)?;
        add(&mut args, w.queued_at)?;
        let mut n = 22;
        let mut sql = format!("WITH h AS ({} RETURNING id)", insert_handover_sql(Backend::Postgres));
        if !w.agreements.is_empty() {
            sql.push_str(
                ", a AS (INSERT INTO handover_agreements (handover_id, agreement_id, agreement_version) \
                 SELECT h.id, v.agreement_id, v.agreement_version FROM h, (VALUES ",
            );
            for (i, (agreement, version)) in w.agreements.iter().enumerate() {
                sql.push_str(&format!("{}(${n}, ${})", if i == 0 { "" } else { ", " }, n + 1));
                add(&mut args, agreement)?;
                add(&mut args, version)?;
                n += 2;
            }
            sql.push_str(
                ") AS v (agreement_id, agreement_version) \
                 ON CONFLICT (handover_id, agreement_id, agreement_version) DO NOTHING)",
            );
        }
        // The outbox row refers to the handover inserted by `h`: foreign keys are checked at
        // the end of the statement.
        sql.push_str(&format!(
            ", o AS ({QUEUE_DELIVERY_WITH} ($1, $5, 'queued', 0, $21, $21, $21) {QUEUE_DELIVERY_END})"
        ));
        let mut facade_count = "0";
        if !facade.is_empty() {
            let values = facade_values(Backend::Postgres, n, facade, &h.row.id, &h.row.created_at, &mut args)?;
            n += facade.len() * 10;
            sql.push_str(&format!(", {values}, f AS ({} RETURNING 1)", facade_upsert("EXISTS (SELECT 1 FROM h) AND ")));
            facade_count = "(SELECT COUNT(*) FROM f)";
        }
        if let Some(row) = w.recorded_by {
            let width = row.columns().len();
            sql.push_str(&format!(
                ", r AS (INSERT INTO {} ({}) SELECT * FROM (VALUES ({})) AS r WHERE EXISTS (SELECT 1 FROM h))",
                row.table(),
                row.columns().join(", "),
                placeholders(Backend::Postgres, n, width)
            ));
            row.add_values(&mut args)?;
        }
        sql.push_str(&format!(" SELECT (SELECT COUNT(*) FROM h) AS inserted, {facade_count} AS facade"));
        // Safe: fixed fragments, the row's own table and columns, numbered placeholders
        // only; every value is bound.
        let r = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch_one(self.conn()).await?;
        let (inserted, written): (i64, i64) = (r.try_get("inserted")?, r.try_get("facade")?);
        self.stored(inserted == 1, written, facade).await
    }

    /// [`Tx::store_handover`] on SQLite: one command of several statements.
    async fn store_handover_sqlite(
        &mut self,
        w: &HandoverWrite<'_>,
        facade: &[FacadeResource],
        row: &dyn Insert,
    ) -> Result<Stored, StoreError> {
        let h = w.handover;
        let mut args = super::Args::default();
        // 1. The handover; 2. the row recording it, when 1 changed a row (`changes()`
        // counts the last statement that completed); later statements: when 2 is written.
        bind_handover_args(&mut args, h)?;
        let mut sql = format!(
            "{}; INSERT INTO {} ({}) SELECT {} WHERE changes() = 1;",
            insert_handover_sql(Backend::Sqlite),
            row.table(),
            row.columns().join(", "),
            placeholders(Backend::Sqlite, 1, row.columns().len())
        );
        row.add_values(&mut args)?;
        let written = row.written();
        // Statements so far (their changes are read back by position), and the facade's.
        let mut statements = 2;
        let mut facade_statement = None;
        if !w.agreements.is_empty() {
            sql.push_str(&format!(
                " INSERT INTO handover_agreements (handover_id, agreement_id, agreement_version) \
                 SELECT ?, column1, column2 FROM (VALUES {}) WHERE {written} \
                 ON CONFLICT (handover_id, agreement_id, agreement_version) DO NOTHING;",
                vec!["(?, ?)"; w.agreements.len()].join(", ")
            ));
            add(&mut args, &h.row.id)?;
            for (agreement, version) in w.agreements {
                add(&mut args, agreement)?;
                add(&mut args, version)?;
            }
            row.add_written_values(&mut args)?;
            statements += 1;
        }
        if !facade.is_empty() {
            let values = facade_values(Backend::Sqlite, 1, facade, &h.row.id, &h.row.created_at, &mut args)?;
            sql.push_str(&format!(" WITH {values} {};", facade_upsert(&format!("{written} AND "))));
            row.add_written_values(&mut args)?;
            facade_statement = Some(statements);
        }
        sql.push_str(&format!(" {QUEUE_DELIVERY_WITH} (?, ?, 'queued', 0, ?, ?, ?) {QUEUE_DELIVERY_END}"));
        for v in [&h.row.id, &h.row.receiver] {
            add(&mut args, v)?;
        }
        for _ in 0..3 {
            add(&mut args, w.queued_at)?;
        }
        // Several statements in one query string: sqlx runs them one after the other on
        // the connection's thread and reports each one's changes. (sqlx deprecates this
        // as SQLite-only; it is used on SQLite only.)
        let mut changes = Vec::with_capacity(5);
        #[allow(deprecated)]
        let mut results = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).fetch_many(self.conn());
        while let Some(r) = futures_util::TryStreamExt::try_next(&mut results).await? {
            if let sqlx::Either::Left(done) = r {
                changes.push(done.rows_affected());
            }
        }
        drop(results);
        let inserted = changes.first() == Some(&1);
        if inserted && changes.get(1) != Some(&1) {
            // Everything after it depends on it: without it the handover would be kept
            // without its record (and its facade rows taken for a refusal).
            return Err(StoreError::Corrupt(format!("the row recording a new handover was not written ({changes:?})")));
        }
        let facade_written = facade_statement.and_then(|i| changes.get(i)).copied().unwrap_or(0);
        self.stored(inserted, i64::try_from(facade_written).unwrap_or(i64::MAX), facade).await
    }

    /// What a handover's write did: inserted or not, and whether all of `facade` was written.
    async fn stored(&mut self, inserted: bool, written: i64, facade: &[FacadeResource]) -> Result<Stored, StoreError> {
        if !inserted {
            return Ok(Stored::Existing);
        }
        if written != facade.len() as i64 {
            let resource = self.bound_elsewhere(facade).await?.unwrap_or_else(|| "a resource".to_owned());
            return Ok(Stored::BoundToAnotherPatient(resource));
        }
        Ok(Stored::New)
    }

    /// Queues the delivery of handover `handover_id` to `receiver` at `at`, unless it is queued.
    /// True when queued now. (The outbox's `queued` history line is written by a trigger.)
    pub async fn queue_delivery(&mut self, handover_id: &str, receiver: &str, at: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{QUEUE_DELIVERY_WITH} ($1, $2, 'queued', 0, $3, $3, $3) {QUEUE_DELIVERY_END}"
        )))
        .bind(handover_id)
        .bind(receiver)
        .bind(at)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records `key` of client `client_ura` for this request and handover, or reports how
    /// it was used before. Call after [`Tx::insert_handover`] (the key refers to it).
    pub async fn claim_idempotency_key(
        &mut self,
        client_ura: &str,
        key: &str,
        request_sha256: &str,
        handover_id: &str,
        now: &str,
    ) -> Result<IdempotencyClaim, StoreError> {
        const CLAIM: &str = "INSERT INTO idempotency_keys (client_ura, idempotency_key, request_sha256, \
             handover_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (client_ura, idempotency_key) DO NOTHING";
        let done = with_texts(CLAIM, &[client_ura, key, request_sha256, handover_id, now]).execute(self.conn()).await?;
        if done.rows_affected() == 1 {
            return Ok(IdempotencyClaim::New);
        }
        const EARLIER: &str =
            "SELECT request_sha256, handover_id FROM idempotency_keys WHERE client_ura = $1 AND idempotency_key = $2";
        let row = with_texts(EARLIER, &[client_ura, key]).fetch_one(self.conn()).await?;
        let stored: String = row.try_get("request_sha256")?;
        if stored == request_sha256 {
            Ok(IdempotencyClaim::Replay { handover_id: row.try_get("handover_id")? })
        } else {
            Ok(IdempotencyClaim::Mismatch)
        }
    }
}

impl Store {
    /// One handover, without its source and output.
    pub async fn handover(&self, id: &str) -> Result<Option<HandoverRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, created_at, status, sender, receiver, lead_practitioner, referral_reason, \
             care_form, patient_resource_id, source_format, source_sha256, source_size, \
             resource_count, summary, submitted_by_ura, patient_bsn FROM handovers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn handover_count(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM handovers").fetch_one(self.pool()).await?;
        Ok(r.try_get("n")?)
    }
}
