//! What access decisions read and the read facade serves: the agreements recorded with each
//! handover, the index of stored resources, care teams and patient consents.
//!
//! The facade index holds each resource's JSON next to the columns the policy filters on
//! (holder, patient, data category), so a read is one indexed query and filtering never
//! parses a resource. Teams and consents are kept as the FHIR the client sent (after the
//! policy library accepted it) and parsed again when a decision needs them.

use sqlx::Row;

use super::{with_texts, Store, StoreError, Tx};
use crate::model::Ura;

/// One resource of a handover as the facade serves it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FacadeResource {
    pub holder_ura: String,
    pub resource_type: String,
    pub resource_id: String,
    pub patient_bsn: String,
    pub patient_resource_id: Option<String>,
    /// The data category code (`meta.security`).
    pub category: String,
    /// The resource, compact JSON.
    pub resource: String,
}

/// Rows of one facade insert statement: 10 values a row, well under SQLite's 32,766 bound
/// values per statement.
pub const FACADE_ROWS_PER_STATEMENT: usize = 500;

/// A stored team or consent: its FHIR JSON and who wrote it last.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPolicyResource {
    pub id: String,
    pub patient_bsn: String,
    /// The managing organisation (teams only; empty for consents).
    pub organisation_ura: String,
    pub version: i64,
    pub resource: String,
}

/// Who wrote a team or consent, and when.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub uzi: &'a str,
    pub ura: &'a str,
    pub at: &'a str,
}

/// An agreement as the service last loaded it: `(id, version, sha256)`.
pub type LoadedAgreement = (String, String, String);

impl Tx {
    /// The agreements the service last ran with. Takes the audit chain head's lock first
    /// (a write: SQLite's write lock, PostgreSQL's row lock), so that instances starting
    /// together record each change once: the second waits for the first's commit and then
    /// finds the agreements recorded.
    pub async fn loaded_agreements(&mut self) -> Result<Vec<LoadedAgreement>, StoreError> {
        sqlx::query("UPDATE audit_chain_head SET seq = seq WHERE id = 1").execute(self.conn()).await?;
        let rows =
            sqlx::query("SELECT agreement_id, version, sha256 FROM agreements_loaded ORDER BY agreement_id, version")
                .fetch_all(self.conn())
                .await?;
        rows.iter().map(|r| Ok((r.try_get("agreement_id")?, r.try_get("version")?, r.try_get("sha256")?))).collect()
    }

    /// Records that agreement `id@version` with this content hash is loaded.
    pub async fn mark_agreement_loaded(
        &mut self,
        id: &str,
        version: &str,
        sha256: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO agreements_loaded (agreement_id, version, sha256, loaded_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (agreement_id, version) \
             DO UPDATE SET sha256 = excluded.sha256, loaded_at = excluded.loaded_at";
        with_texts(SQL, &[id, version, sha256, at]).execute(self.conn()).await?;
        Ok(())
    }

    /// Records that agreement `id@version` is no longer loaded.
    pub async fn forget_loaded_agreement(&mut self, id: &str, version: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM agreements_loaded WHERE agreement_id = $1 AND version = $2";
        with_texts(SQL, &[id, version]).execute(self.conn()).await?;
        Ok(())
    }

    /// Records that handover `handover_id` was accepted under agreement `id@version`.
    pub async fn insert_handover_agreement(
        &mut self,
        handover_id: &str,
        agreement_id: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO handover_agreements (handover_id, agreement_id, agreement_version) \
             VALUES ($1, $2, $3) ON CONFLICT (handover_id, agreement_id, agreement_version) DO NOTHING";
        with_texts(SQL, &[handover_id, agreement_id, version]).execute(self.conn()).await?;
        Ok(())
    }

    /// Stores (or replaces) a handover's resources in the facade index: one statement per
    /// [`FACADE_ROWS_PER_STATEMENT`] rows, not one per resource.
    ///
    /// A resource bound to a patient (every type but the shared ones, see
    /// [`crate::fhir::ids::is_patient_bound`]) is never written for another patient: when
    /// its type and id are held for a different BSN (by any holder), that row is not
    /// written, and the answer names it (`Err("Type/id")`); the caller then drops the
    /// transaction, so nothing of the handover is kept. The check is part of each insert
    /// statement itself, so no other writer can slip in between a check and the write.
    /// Shared resources are held once per patient.
    pub async fn put_facade_resources(
        &mut self,
        rows: &[FacadeResource],
        handover_id: &str,
        now: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let backend = self.backend();
        for chunk in rows.chunks(FACADE_ROWS_PER_STATEMENT) {
            let mut args = super::Args::default();
            let values = facade_values(backend, 1, chunk, handover_id, now, &mut args)?;
            let sql = format!("WITH {values} {}", facade_upsert(""));
            // Safe: fixed fragments and placeholders only; every value is bound.
            let done = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(self.conn()).await?;
            if done.rows_affected() != chunk.len() as u64 {
                return Ok(Err(self.bound_elsewhere(chunk).await?.unwrap_or_else(|| "a resource".to_owned())));
            }
        }
        Ok(Ok(()))
    }

    /// The first of `rows` whose id is held for another patient (the refusal's message).
    pub(crate) async fn bound_elsewhere(&mut self, rows: &[FacadeResource]) -> Result<Option<String>, StoreError> {
        for r in rows.iter().filter(|r| crate::fhir::ids::is_patient_bound(&r.resource_type)) {
            let other = sqlx::query(
                "SELECT 1 FROM facade_resources WHERE resource_type = $1 AND resource_id = $2 AND patient_bsn <> $3 LIMIT 1",
            )
            .bind(&r.resource_type)
            .bind(&r.resource_id)
            .bind(&r.patient_bsn)
            .fetch_optional(self.conn())
            .await?;
            if other.is_some() {
                return Ok(Some(format!("{}/{}", r.resource_type, r.resource_id)));
            }
        }
        Ok(None)
    }

    /// Creates or replaces a care team; returns its new version (1 for a new team).
    pub async fn put_care_team(
        &mut self,
        id: &str,
        patient_bsn: &str,
        organisation_ura: &str,
        resource: &str,
        by: &Writer<'_>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO care_teams (id, patient_bsn, organisation_ura, version, updated_at, \
             updated_by_uzi, updated_by_ura, resource) VALUES ($1, $2, $3, 1, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET patient_bsn = excluded.patient_bsn, \
             organisation_ura = excluded.organisation_ura, version = care_teams.version + 1, \
             updated_at = excluded.updated_at, updated_by_uzi = excluded.updated_by_uzi, \
             updated_by_ura = excluded.updated_by_ura, resource = excluded.resource RETURNING version";
        let values = [id, patient_bsn, organisation_ura, by.at, by.uzi, by.ura, resource];
        Ok(with_texts(SQL, &values).fetch_one(self.conn()).await?.try_get("version")?)
    }

    /// Creates or replaces a patient consent; returns its new version.
    pub async fn put_consent(
        &mut self,
        id: &str,
        patient_bsn: &str,
        resource: &str,
        by: &Writer<'_>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO patient_consents (id, patient_bsn, version, updated_at, updated_by_uzi, \
             updated_by_ura, resource) VALUES ($1, $2, 1, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET patient_bsn = excluded.patient_bsn, \
             version = patient_consents.version + 1, updated_at = excluded.updated_at, \
             updated_by_uzi = excluded.updated_by_uzi, updated_by_ura = excluded.updated_by_ura, \
             resource = excluded.resource RETURNING version";
        let values = [id, patient_bsn, by.at, by.uzi, by.ura, resource];
        Ok(with_texts(SQL, &values).fetch_one(self.conn()).await?.try_get("version")?)
    }

    /// A team inside this transaction (to check the writer against the stored version).
    pub async fn care_team(&mut self, id: &str) -> Result<Option<StoredPolicyResource>, StoreError> {
        one(self.conn(), TEAMS_BY_ID, id).await
    }

    pub async fn consent(&mut self, id: &str) -> Result<Option<StoredPolicyResource>, StoreError> {
        one(self.conn(), CONSENTS_BY_ID, id).await
    }

    /// The patient's teams, inside this transaction.
    pub async fn care_teams_of(&mut self, patient_bsn: &str) -> Result<Vec<StoredPolicyResource>, StoreError> {
        all(self.conn(), TEAMS_OF_PATIENT, patient_bsn).await
    }

    /// The patient's consents, inside this transaction.
    pub async fn consents_of(&mut self, patient_bsn: &str) -> Result<Vec<StoredPolicyResource>, StoreError> {
        all(self.conn(), CONSENTS_OF_PATIENT, patient_bsn).await
    }
}

/// The stored teams and consents, read the same way inside a transaction and outside one
/// (a consent has no managing organisation: `''`).
const TEAMS_BY_ID: &str = "SELECT id, patient_bsn, organisation_ura, version, resource FROM care_teams WHERE id = $1";
const TEAMS_OF_PATIENT: &str =
    "SELECT id, patient_bsn, organisation_ura, version, resource FROM care_teams WHERE patient_bsn = $1 ORDER BY id";
const CONSENTS_BY_ID: &str =
    "SELECT id, patient_bsn, '' AS organisation_ura, version, resource FROM patient_consents WHERE id = $1";
const CONSENTS_OF_PATIENT: &str = "SELECT id, patient_bsn, '' AS organisation_ura, version, resource \
     FROM patient_consents WHERE patient_bsn = $1 ORDER BY id";

async fn one<'e, E>(e: E, sql: &'static str, key: &str) -> Result<Option<StoredPolicyResource>, StoreError>
where
    E: sqlx::Executor<'e, Database = super::Db>,
{
    Ok(sqlx::query_as(sql).bind(key.to_owned()).fetch_optional(e).await?)
}

async fn all<'e, E>(e: E, sql: &'static str, key: &str) -> Result<Vec<StoredPolicyResource>, StoreError>
where
    E: sqlx::Executor<'e, Database = super::Db>,
{
    Ok(sqlx::query_as(sql).bind(key.to_owned()).fetch_all(e).await?)
}

/// The facade rows `chunk` of handover `handover_id` as the common table `v` of
/// [`facade_upsert`] (`v (columns) AS (VALUES ...)`), their values added to `args`;
/// placeholders numbered from `$first` on PostgreSQL.
pub(crate) fn facade_values(
    backend: super::Backend,
    first: usize,
    chunk: &[FacadeResource],
    handover_id: &str,
    now: &str,
    args: &mut super::Args,
) -> Result<String, StoreError> {
    let mut sql = String::from(
        "v (holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id, category, \
         handover_id, updated_at, resource, bound) AS (VALUES ",
    );
    for (i, r) in chunk.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        sql.push_str(&super::placeholders(backend, first + i * 10, 10));
        sql.push(')');
        add(args, &r.holder_ura)?;
        add(args, &r.resource_type)?;
        add(args, &r.resource_id)?;
        add(args, &r.patient_bsn)?;
        add(args, &r.patient_resource_id)?;
        add(args, &r.category)?;
        add(args, handover_id)?;
        add(args, now)?;
        add(args, &r.resource)?;
        add(args, crate::fhir::ids::is_patient_bound(&r.resource_type))?;
    }
    sql.push(')');
    Ok(sql)
}

/// The upsert of the facade rows in `v` ([`facade_values`]), when `condition` (SQL ending
/// in `AND `, or empty) holds. A row bound to a patient whose type and id are held for
/// another BSN is not written: the number of rows written tells.
pub(crate) fn facade_upsert(condition: &str) -> String {
    format!(
        "INSERT INTO facade_resources (holder_ura, resource_type, resource_id, patient_bsn, \
         patient_resource_id, category, handover_id, updated_at, resource) \
         SELECT holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id, category, \
         handover_id, updated_at, resource FROM v \
         WHERE {condition}NOT (v.bound AND EXISTS (SELECT 1 FROM facade_resources f \
             WHERE f.resource_type = v.resource_type AND f.resource_id = v.resource_id \
             AND f.patient_bsn <> v.patient_bsn)) \
         ON CONFLICT (holder_ura, resource_type, resource_id, patient_bsn) DO UPDATE SET \
         patient_resource_id = excluded.patient_resource_id, \
         category = excluded.category, handover_id = excluded.handover_id, \
         updated_at = excluded.updated_at, resource = excluded.resource"
    )
}

use super::add;

/// The columns of a [`FacadeResource`], as a literal (sqlx takes static SQL only).
macro_rules! facade_select {
    ($rest:literal) => {
        concat!(
            "SELECT holder_ura, resource_type, resource_id, patient_bsn, patient_resource_id, category, resource \
             FROM facade_resources ",
            $rest
        )
    };
}

impl Store {
    /// The access generation of the database: moved (by triggers, in the writing
    /// transaction) by every change to care teams, consents and the agreements a handover
    /// arrived under, made by any instance. `None` where one instance owns the database
    /// (SQLite): its own writes invalidate its cache, and no query is spent.
    pub async fn access_generation(&self) -> Result<Option<i64>, StoreError> {
        if self.backend().single_instance() {
            return Ok(None);
        }
        let r = sqlx::query("SELECT generation FROM access_generation WHERE id = 1").fetch_one(self.pool()).await?;
        Ok(Some(r.try_get("generation")?))
    }

    /// The organisation (URA) that last wrote consent `id`: the custodian of a consent stored
    /// before consents named their custodians (`Consent.organization`). `None` also when the
    /// stored writer is not a URA.
    pub async fn consent_written_by_ura(&self, id: &str) -> Result<Option<Ura>, StoreError> {
        let ura =
            self.text_of("SELECT updated_by_ura FROM patient_consents WHERE id = $1", id, "updated_by_ura").await?;
        Ok(ura.and_then(|u| Ura::parse(&u).ok()))
    }

    /// Every held copy of `Type/id` (one per holder; usually one).
    pub async fn facade_resource(&self, resource_type: &str, id: &str) -> Result<Vec<FacadeResource>, StoreError> {
        Ok(sqlx::query_as(facade_select!("WHERE resource_type = $1 AND resource_id = $2 ORDER BY holder_ura"))
            .bind(resource_type)
            .bind(id)
            .fetch_all(self.pool())
            .await?)
    }

    /// The resources that belong to Patient `patient_id` (the Patient itself included), of one
    /// type or of all, in a stable order.
    pub async fn facade_resources_of_patient(
        &self,
        patient_id: &str,
        resource_type: Option<&str>,
    ) -> Result<Vec<FacadeResource>, StoreError> {
        Ok(match resource_type {
            Some(t) => {
                sqlx::query_as(facade_select!(
                    "WHERE patient_resource_id = $1 AND resource_type = $2 \
                     ORDER BY holder_ura, resource_type, resource_id"
                ))
                .bind(patient_id)
                .bind(t)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(facade_select!(
                    "WHERE patient_resource_id = $1 ORDER BY holder_ura, resource_type, resource_id"
                ))
                .bind(patient_id)
                .fetch_all(self.pool())
                .await?
            }
        })
    }

    /// The agreements (`(id, version)`) under which this patient's data arrived at `holder_ura`.
    pub async fn agreements_of_patient(
        &self,
        patient_bsn: &str,
        holder_ura: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT a.agreement_id, a.agreement_version FROM handover_agreements a \
             JOIN handovers h ON h.id = a.handover_id WHERE h.patient_bsn = $1 AND h.receiver = $2 \
             ORDER BY a.agreement_id, a.agreement_version",
        )
        .bind(patient_bsn)
        .bind(format!("ura|{holder_ura}"))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get("agreement_id")?, r.try_get("agreement_version")?))).collect()
    }

    /// The agreements recorded with one handover, as `id@version`.
    pub async fn handover_agreements(&self, handover_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT agreement_id, agreement_version FROM handover_agreements WHERE handover_id = $1 \
             ORDER BY agreement_id, agreement_version",
        )
        .bind(handover_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("agreement_id")?;
                let v: String = r.try_get("agreement_version")?;
                Ok(format!("{id}@{v}"))
            })
            .collect()
    }

    pub async fn care_team(&self, id: &str) -> Result<Option<StoredPolicyResource>, StoreError> {
        one(self.pool(), TEAMS_BY_ID, id).await
    }

    /// The patient's teams.
    pub async fn care_teams_of(&self, patient_bsn: &str) -> Result<Vec<StoredPolicyResource>, StoreError> {
        all(self.pool(), TEAMS_OF_PATIENT, patient_bsn).await
    }

    pub async fn consent(&self, id: &str) -> Result<Option<StoredPolicyResource>, StoreError> {
        one(self.pool(), CONSENTS_BY_ID, id).await
    }

    /// The patient's consents and objections.
    pub async fn consents_of(&self, patient_bsn: &str) -> Result<Vec<StoredPolicyResource>, StoreError> {
        all(self.pool(), CONSENTS_OF_PATIENT, patient_bsn).await
    }

    /// The stored output Bundle of a handover (after minimisation).
    pub async fn handover_output(&self, handover_id: &str) -> Result<Option<String>, StoreError> {
        self.text_of("SELECT output_bundle FROM handovers WHERE id = $1", handover_id, "output_bundle").await
    }

    /// The BSN behind a Patient resource id, if any handover stored it.
    pub async fn patient_bsn_of(&self, patient_id: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str =
            "SELECT patient_bsn FROM facade_resources WHERE resource_type = 'Patient' AND resource_id = $1 LIMIT 1";
        self.text_of(SQL, patient_id, "patient_bsn").await
    }

    /// The text column `column` of the first row that `sql` finds for `key` (`$1`), if any.
    async fn text_of(&self, sql: &'static str, key: &str, column: &str) -> Result<Option<String>, StoreError> {
        let row = with_texts(sql, &[key]).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| r.try_get(column)).transpose()?)
    }
}
