//! The `handovers` and `idempotency_keys` tables.
//!
//! A handover's id is derived from what it is (sender, receiver, the source bytes), so
//! "store it unless it is already there" is one `INSERT ... ON CONFLICT DO NOTHING`: many
//! parallel deliveries of the same record race on the primary key and exactly one row
//! wins, without a read-then-write window.

use sqlx::Row;

use super::{with_texts, Store, StoreError, Tx};

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

/// The insert of a handover, `$1` to `$20` ([`bind_handover`]).
const INSERT_HANDOVER: &str = "INSERT INTO handovers (id, created_at, status, sender, receiver, lead_practitioner, \
     referral_reason, care_form, patient_bsn, patient_resource_id, source_format, \
     source_media_type, source_sha256, source_size, output_bundle, \
     resource_count, summary, submitted_by_uzi, submitted_by_role, submitted_by_ura) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20) ON CONFLICT (id) DO NOTHING";

/// The insert of an outbox row around its values: handover, receiver, state, attempts, and
/// the time as next attempt, creation and update.
const QUEUE_DELIVERY_WITH: &str =
    "INSERT INTO outbox (handover_id, receiver, state, attempts, next_attempt_at, created_at, updated_at) VALUES";
const QUEUE_DELIVERY_END: &str = "ON CONFLICT (handover_id) DO NOTHING";

type Query<'q> = sqlx::query::Query<'q, super::Db, <super::Db as sqlx::Database>::Arguments>;

/// Binds `$1` to `$20` of [`INSERT_HANDOVER`].
fn bind_handover<'q>(q: Query<'q>, h: &'q NewHandover) -> Query<'q> {
    q.bind(&h.row.id)
        .bind(&h.row.created_at)
        .bind(&h.row.status)
        .bind(&h.row.sender)
        .bind(&h.row.receiver)
        .bind(&h.row.lead_practitioner)
        .bind(&h.row.referral_reason)
        .bind(&h.row.care_form)
        .bind(&h.row.patient_bsn)
        .bind(&h.row.patient_resource_id)
        .bind(&h.row.source_format)
        .bind(&h.source_media_type)
        .bind(&h.row.source_sha256)
        .bind(h.row.source_size)
        .bind(&h.output_bundle)
        .bind(h.row.resource_count)
        .bind(&h.row.summary)
        .bind(&h.submitted_by_uzi)
        .bind(&h.submitted_by_role)
        .bind(&h.row.submitted_by_ura)
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
        let done = bind_handover(sqlx::query(INSERT_HANDOVER), h).execute(self.conn()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a received handover: inserts it unless one with its id exists; when inserted,
    /// links it to the agreements it came under (`(id, version)`); and queues its delivery to
    /// its receiver at `queued_at` unless queued already (a replay finds its delivery
    /// queued). True when the handover was inserted.
    ///
    /// PostgreSQL: one statement (data-modifying CTEs), because the group writer runs its
    /// statements one after the other and each is a round trip to the server. SQLite: one
    /// statement each, calls into this process.
    pub async fn store_handover(
        &mut self,
        h: &NewHandover,
        agreements: &[(String, String)],
        queued_at: &str,
    ) -> Result<bool, StoreError> {
        if self.backend() == super::Backend::Sqlite {
            let inserted = self.insert_handover(h).await?;
            if inserted {
                for (agreement, version) in agreements {
                    self.insert_handover_agreement(&h.row.id, agreement, version).await?;
                }
            }
            self.queue_delivery(&h.row.id, &h.row.receiver, queued_at).await?;
            return Ok(inserted);
        }
        let mut sql = format!("WITH h AS ({INSERT_HANDOVER} RETURNING id)");
        if !agreements.is_empty() {
            sql.push_str(
                ", a AS (INSERT INTO handover_agreements (handover_id, agreement_id, agreement_version) \
                 SELECT h.id, v.agreement_id, v.agreement_version FROM h, (VALUES ",
            );
            for i in 0..agreements.len() {
                let n = 22 + 2 * i;
                sql.push_str(&format!("{}(${n}, ${})", if i == 0 { "" } else { ", " }, n + 1));
            }
            sql.push_str(
                ") AS v (agreement_id, agreement_version) \
                 ON CONFLICT (handover_id, agreement_id, agreement_version) DO NOTHING)",
            );
        }
        // The outbox row refers to the handover inserted by `h`: foreign keys are checked at
        // the end of the statement.
        sql.push_str(&format!(
            ", o AS ({QUEUE_DELIVERY_WITH} ($1, $5, 'queued', 0, $21, $21, $21) {QUEUE_DELIVERY_END}) \
             SELECT COUNT(*) AS inserted FROM h"
        ));
        let mut q = bind_handover(sqlx::query(sqlx::AssertSqlSafe(sql)), h).bind(queued_at);
        for (agreement, version) in agreements {
            q = q.bind(agreement).bind(version);
        }
        // Safe: fixed fragments and numbered placeholders only; every value is bound.
        let inserted: i64 = q.fetch_one(self.conn()).await?.try_get("inserted")?;
        Ok(inserted == 1)
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
