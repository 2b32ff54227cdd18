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
        let done = sqlx::query(
            "INSERT INTO handovers (id, created_at, status, sender, receiver, lead_practitioner, \
             referral_reason, care_form, patient_bsn, patient_resource_id, source_format, \
             source_media_type, source_sha256, source_size, output_bundle, \
             resource_count, summary, submitted_by_uzi, submitted_by_role, submitted_by_ura) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&h.row.id)
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
