//! Read-only aggregation for the contracting evidence report ([`crate::report`]).
//!
//! Every figure is counted by the database (`GROUP BY`), never by loading the rows: a
//! year's audit trail of a busy provider is hundreds of thousands of entries. Times are
//! grouped per UTC hour (`substr(recorded_at, 1, 13)`), which the report turns into
//! Europe/Amsterdam months (offsets are whole hours, so an hour lies in one local month).
//!
//! The audit entry's facts are read from its search columns (`rule`, `user_role`,
//! `team_roles`, `holder_ura`, `handover_id`, `replay`, `reviewed_id`; copies of the typed
//! content that `audit verify` checks), never from the JSON content with string
//! conventions. Only the few break-the-glass and review rows are read as content, in Rust.
//! The categories removed from a handover are the one JSON read (`json_elements` of
//! [`super::Backend`]) of the handover's own summary.
//!
//! "Of the provider" means: handovers whose receiver is the provider (`handovers.receiver`,
//! joined through the entry's `handover_id`); refusals that named the provider as
//! receiver (`holder_ura`); reads and denials by the provider's own staff (`user_ura`) or
//! of the provider's copy of a patient's data (`holder_ura`, named by the facade). Not:
//! accesses by other organisations to their own copy of a patient the provider also
//! received.

use super::{Store, StoreError};

/// Handovers received per UTC hour and sender.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceivedRow {
    /// `YYYY-MM-DDTHH` (UTC).
    pub hour: String,
    /// As stored: `agb-z|01234567` or `ura|87654321`.
    pub sender: String,
    pub count: i64,
    /// Of which the same record received again (idempotent replays).
    pub again: i64,
}

/// Refused handovers per UTC hour, sending organisation (the token's URA) and rule.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusedRow {
    pub hour: String,
    pub sender_ura: Option<String>,
    #[sqlx(rename = "refusal")]
    pub rule: Option<String>,
    pub count: i64,
}

/// Categories removed from accepted handovers (the handover summary's `transfer.removed`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RemovedRow {
    pub sender: String,
    pub category: String,
    /// Handovers from which it was removed.
    pub handovers: i64,
    /// Resources removed.
    pub resources: i64,
    /// One of the recorded reasons (the alphabetically first).
    pub reason: Option<String>,
}

/// Read-type requests (read, search, export, break-glass) per UZI role, action and outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReadRow {
    pub uzi_role: Option<String>,
    pub action: String,
    pub outcome: String,
    pub count: i64,
}

/// Permitted reads, searches and exports per set of care-team roles the reader held (the
/// entry's `team_roles` column: role keys, space-separated and space-framed; `None` when the
/// entry records none).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamReadRow {
    pub team_roles: Option<String>,
    pub action: String,
    pub count: i64,
}

/// Requests refused by policy (handovers excepted), per action and rule.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DenialRow {
    pub hour: String,
    pub action: String,
    pub rule: Option<String>,
    pub count: i64,
}

/// One break-the-glass entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BreakGlassRow {
    pub seq: i64,
    pub id: String,
    pub recorded_at: String,
    pub user_uzi: Option<String>,
    pub uzi_role: Option<String>,
    pub user_ura: Option<String>,
    /// Whether the user stated a reason for the emergency access.
    #[sqlx(skip)]
    pub reason_stated: bool,
    pub outcome: String,
}

/// One review entry and the entry it reviews.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewRow {
    pub seq: i64,
    pub id: String,
    pub recorded_at: String,
    pub user_uzi: Option<String>,
    pub reviewed_id: String,
    #[sqlx(skip)]
    pub conclusion: Option<String>,
    pub outcome: String,
}

/// A row and the entry's content, for the few facts that are not search columns.
#[derive(sqlx::FromRow)]
struct WithContent<T> {
    #[sqlx(flatten)]
    row: T,
    content: String,
}

impl<T> WithContent<T> {
    /// The entry, typed; `None` for content that does not read (a tampered row states
    /// nothing here, and the report's chain status shows the tampering).
    fn entry(&self) -> Option<crate::audit::AuditEntry> {
        crate::audit::Content::from_stored(&self.content).ok().map(|c| c.entry)
    }
}

/// The period as RFC 3339 UTC texts, `[from, to)`, and the provider's URA.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub ura: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

impl Scope<'_> {
    fn receiver(&self) -> String {
        format!("ura|{}", self.ura)
    }
}

/// Reads and denials of the provider: by its staff (`$1` its URA), or of its copy of a
/// patient's data.
const OF_PROVIDER: &str = "(a.user_ura = $1 OR a.holder_ura = $1)";

impl Store {
    /// Runs `sql` (built from fixed fragments, with [`OF_PROVIDER`], and an integer limit at
    /// most) with `$1` = `first` (the provider's URA, or the receiver as stored) and `$2`/`$3`
    /// the period; the rows as `T`, whose fields are the columns' names.
    async fn scoped<T>(&self, sql: String, first: &str, s: Scope<'_>) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, super::DbRow> + Send + Unpin,
    {
        // Safe: the callers build `sql` from fixed fragments only; every value is bound here.
        Ok(sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql))
            .bind(first.to_owned())
            .bind(s.from.to_owned())
            .bind(s.to.to_owned())
            .fetch_all(self.pool())
            .await?)
    }

    pub async fn report_received(&self, s: Scope<'_>) -> Result<Vec<ReceivedRow>, StoreError> {
        let sql = "SELECT substr(a.recorded_at, 1, 13) AS hour, h.sender AS sender, COUNT(*) AS count, \
             COALESCE(CAST(SUM(a.replay) AS BIGINT), 0) AS again \
             FROM audit_entries a JOIN handovers h ON h.id = a.handover_id \
             WHERE a.action = 'handover-received' AND a.outcome = 'success' AND h.receiver = $1 \
             AND a.recorded_at >= $2 AND a.recorded_at < $3 \
             GROUP BY hour, h.sender ORDER BY hour, h.sender";
        self.scoped(sql.to_owned(), &s.receiver(), s).await
    }

    pub async fn report_refused(&self, s: Scope<'_>) -> Result<Vec<RefusedRow>, StoreError> {
        // The refusal's rule is not called `rule`: PostgreSQL would group by the column.
        let sql = "SELECT substr(a.recorded_at, 1, 13) AS hour, a.user_ura AS sender_ura, \
             COALESCE(a.rule, CASE a.outcome WHEN 'invalid' THEN 'request.invalid' END) AS refusal, COUNT(*) AS count \
             FROM audit_entries a \
             WHERE a.action = 'handover-refused' AND a.outcome IN ('denied', 'invalid') \
             AND a.recorded_at >= $2 AND a.recorded_at < $3 AND a.holder_ura = $1 \
             GROUP BY hour, sender_ura, refusal ORDER BY hour, sender_ura, refusal";
        self.scoped(sql.to_owned(), s.ura, s).await
    }

    pub async fn report_removed(&self, s: Scope<'_>) -> Result<Vec<RemovedRow>, StoreError> {
        let b = self.backend();
        let removed = b.json_elements(&b.json_doc("h.summary"), &["transfer", "removed"], "r");
        let item = b.element_doc("r");
        let (category, resources, reason) =
            (b.json_text(&item, &["category"]), b.json_text(&item, &["resources"]), b.json_text(&item, &["reason"]));
        let sql = format!(
            "SELECT h.sender AS sender, COALESCE({category}, '') AS category, COUNT(*) AS handovers, \
             CAST(SUM(COALESCE(CAST({resources} AS BIGINT), 0)) AS BIGINT) AS resources, \
             MIN({reason}) AS reason \
             FROM handovers h, {removed} \
             WHERE h.receiver = $1 AND h.created_at >= $2 AND h.created_at < $3 \
             GROUP BY h.sender, {category} ORDER BY h.sender, {category}"
        );
        self.scoped(sql, &s.receiver(), s).await
    }

    pub async fn report_team_reads(&self, s: Scope<'_>) -> Result<Vec<TeamReadRow>, StoreError> {
        let sql = format!(
            "SELECT a.team_roles AS team_roles, a.action AS action, COUNT(*) AS count \
             FROM audit_entries a WHERE a.action IN ('read', 'search', 'export') AND a.outcome = 'success' \
             AND a.recorded_at >= $2 AND a.recorded_at < $3 AND {OF_PROVIDER} \
             GROUP BY a.team_roles, a.action ORDER BY a.team_roles, a.action"
        );
        self.scoped(sql, s.ura, s).await
    }

    pub async fn report_reads(&self, s: Scope<'_>) -> Result<Vec<ReadRow>, StoreError> {
        let sql = format!(
            "SELECT a.user_role AS uzi_role, a.action AS action, a.outcome AS outcome, \
             COUNT(*) AS count FROM audit_entries a \
             WHERE a.action IN ('read', 'search', 'export', 'break-glass') AND a.outcome IN ('success', 'denied') \
             AND a.recorded_at >= $2 AND a.recorded_at < $3 AND {OF_PROVIDER} \
             GROUP BY a.user_role, a.action, a.outcome ORDER BY a.user_role, a.action, a.outcome"
        );
        self.scoped(sql, s.ura, s).await
    }

    pub async fn report_denials(&self, s: Scope<'_>) -> Result<Vec<DenialRow>, StoreError> {
        let sql = format!(
            "SELECT substr(a.recorded_at, 1, 13) AS hour, a.action AS action, \
             a.rule AS rule, COUNT(*) AS count FROM audit_entries a \
             WHERE a.outcome = 'denied' AND a.action <> 'handover-refused' \
             AND a.recorded_at >= $2 AND a.recorded_at < $3 AND {OF_PROVIDER} \
             GROUP BY hour, a.action, a.rule ORDER BY hour, a.action, a.rule"
        );
        self.scoped(sql, s.ura, s).await
    }

    /// `(seq, id)` of every break-the-glass entry of the period, oldest first: for the counts
    /// (the list of [`Store::report_break_glass`] is limited).
    pub async fn report_break_glass_ids(&self, s: Scope<'_>) -> Result<Vec<(i64, String)>, StoreError> {
        let sql = format!(
            "SELECT a.seq AS seq, a.id AS id FROM audit_entries a WHERE a.action = 'break-glass' \
             AND a.recorded_at >= $2 AND a.recorded_at < $3 AND {OF_PROVIDER} ORDER BY a.seq"
        );
        self.scoped(sql, s.ura, s).await
    }

    /// The break-the-glass entries of the period (oldest first), at most `limit`.
    pub async fn report_break_glass(&self, s: Scope<'_>, limit: i64) -> Result<Vec<BreakGlassRow>, StoreError> {
        let sql = format!(
            "SELECT a.seq AS seq, a.id AS id, a.recorded_at AS recorded_at, a.user_uzi AS user_uzi, \
             a.user_role AS uzi_role, a.user_ura AS user_ura, a.outcome AS outcome, a.content AS content \
             FROM audit_entries a \
             WHERE a.action = 'break-glass' AND a.recorded_at >= $2 AND a.recorded_at < $3 AND {OF_PROVIDER} \
             ORDER BY a.seq LIMIT {}",
            limit.max(0)
        );
        let rows: Vec<WithContent<BreakGlassRow>> = self.scoped(sql, s.ura, s).await?;
        Ok(rows
            .into_iter()
            .map(|r| BreakGlassRow {
                // The stated reason is a typed field of the content (not searched; few rows).
                reason_stated: r.entry().and_then(|e| e.break_glass_reason).is_some_and(|t| !t.trim().is_empty()),
                ..r.row
            })
            .collect())
    }

    /// Every review entry (any time: a review may come after the period), with the entry
    /// it names, oldest first.
    pub async fn report_reviews(&self) -> Result<Vec<ReviewRow>, StoreError> {
        let rows: Vec<WithContent<ReviewRow>> = sqlx::query_as(
            "SELECT a.seq AS seq, a.id AS id, a.recorded_at AS recorded_at, a.user_uzi AS user_uzi, \
             a.reviewed_id AS reviewed_id, a.outcome AS outcome, a.content AS content \
             FROM audit_entries a WHERE a.action = 'review' AND a.reviewed_id IS NOT NULL ORDER BY a.seq",
        )
        .fetch_all(self.pool())
        .await?;
        // The conclusion is the review's reason (a typed read of the content).
        Ok(rows.into_iter().map(|r| ReviewRow { conclusion: r.entry().and_then(|e| e.reason), ..r.row }).collect())
    }

    /// The care teams the provider manages (FHIR JSON as stored), by id.
    pub async fn report_care_teams(&self, ura: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT resource FROM care_teams WHERE organisation_ura = $1 ORDER BY id")
            .bind(ura)
            .fetch_all(self.pool())
            .await?)
    }
}
