//! Reading the trail back: searches for the views and the export. Read-only.

use sqlx::Row;

use super::{AuditAction, AuditEntry, AuditError, Content};
use crate::store::Store;

/// An entry as stored.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub seq: i64,
    pub id: String,
    /// RFC 3339 UTC with milliseconds.
    pub recorded: String,
    pub hash: String,
    pub prev_hash: String,
    pub entry: AuditEntry,
}

/// Search criteria; all optional and combined with AND. Times are compared as RFC 3339
/// UTC text (`recorded_at` is always `YYYY-MM-DDTHH:MM:SS.mmmZ`).
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub patient_bsn: Option<String>,
    /// Inclusive lower bound.
    pub from: Option<String>,
    /// Exclusive upper bound.
    pub to: Option<String>,
    /// The acting user's UZI number or organisation's URA.
    pub agent: Option<String>,
    /// Only entries by this organisation's staff (URA): a sender's view.
    pub by_organisation: Option<String>,
    /// Only entries *of* this organisation (URA): by its staff, naming it as the holder of
    /// the data ([`AuditEntry::holder_ura`]), or about handovers it received — a privacy
    /// officer's view ([`crate::policy::audit_view`]).
    pub of_organisation: Option<String>,
    /// A resource type among the entry's objects (`Condition`, `Handover`, ...).
    pub entity_type: Option<String>,
    pub actions: Vec<AuditAction>,
    /// Only entries after this position (for paging and export).
    pub after_seq: Option<i64>,
    /// At most this many (newest first unless `oldest_first`).
    pub limit: Option<i64>,
    pub oldest_first: bool,
}

/// Entries matching `q`.
pub async fn search(store: &Store, q: &AuditSearch) -> Result<Vec<StoredEntry>, AuditError> {
    let mut sql = String::from("SELECT seq, content, hash, prev_hash FROM audit_entries WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    if let Some(p) = &q.patient_bsn {
        param(&mut sql, &mut binds, " AND patient_bsn = ?", p.clone());
    }
    if let Some(f) = &q.from {
        param(&mut sql, &mut binds, " AND recorded_at >= ?", f.clone());
    }
    if let Some(t) = &q.to {
        param(&mut sql, &mut binds, " AND recorded_at < ?", t.clone());
    }
    if let Some(a) = &q.agent {
        param(&mut sql, &mut binds, " AND (user_uzi = ? OR user_ura = ?)", a.clone());
    }
    if let Some(u) = &q.by_organisation {
        param(&mut sql, &mut binds, " AND user_ura = ?", u.clone());
    }
    if let Some(u) = &q.of_organisation {
        binds.push(u.clone());
        let ura = binds.len();
        binds.push(format!("ura|{u}"));
        let receiver = binds.len();
        sql.push_str(&format!(
            " AND (user_ura = ${ura} OR holder_ura = ${ura} \
             OR handover_id IN (SELECT h.id FROM handovers h WHERE h.receiver = ${receiver}))"
        ));
    }
    if let Some(t) = &q.entity_type {
        let clean: String = t.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        // A resource type is a code: matched exactly, case included, on every backend.
        let clause = format!(" AND {}", store.backend().contains_text("entity_types", "?"));
        param(&mut sql, &mut binds, &clause, format!(" {clean} "));
    }
    if !q.actions.is_empty() {
        let mut parts = Vec::new();
        for a in &q.actions {
            binds.push(a.code().to_owned());
            parts.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND action IN ({})", parts.join(", ")));
    }
    if let Some(s) = q.after_seq {
        binds.push(s.to_string());
        sql.push_str(&format!(" AND seq > CAST(${} AS BIGINT)", binds.len()));
    }
    sql.push_str(if q.oldest_first { " ORDER BY seq ASC" } else { " ORDER BY seq DESC" });
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {}", l.max(0)));
    }
    // Safe: `sql` is built only from the fixed fragments above, `$n` placeholders and an
    // integer limit; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in &binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(store.pool()).await?;
    rows.iter().map(stored_entry).collect()
}

/// An entry from a row with the columns `seq, content, hash, prev_hash`.
pub(crate) fn stored_entry(r: &crate::store::DbRow) -> Result<StoredEntry, AuditError> {
    let content: String = r.try_get("content")?;
    let c = Content::from_stored(&content)?;
    Ok(StoredEntry {
        seq: r.try_get("seq")?,
        id: c.id,
        recorded: c.recorded,
        hash: r.try_get("hash")?,
        prev_hash: r.try_get("prev_hash")?,
        entry: c.entry,
    })
}

/// Appends `clause` with every `?` replaced by the placeholder of `value`.
fn param(sql: &mut String, binds: &mut Vec<String>, clause: &str, value: String) {
    binds.push(value);
    sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
}

/// Number of entries (tests, metrics).
pub async fn count(store: &Store) -> Result<i64, AuditError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM audit_entries").fetch_one(store.pool()).await?;
    Ok(r.try_get("n")?)
}

/// A command-line time bound: `YYYY-MM-DD` (start of that UTC day) or an RFC 3339
/// date-time, as the RFC 3339 UTC text `recorded_at` compares with.
pub fn time_bound(s: &str) -> Result<String, String> {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(fmt(t.and_utc()));
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| fmt(t.with_timezone(&chrono::Utc)))
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or a date-time with offset (2026-01-01T00:00:00+01:00)"))
}
