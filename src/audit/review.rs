//! Reviews of flagged entries: a privacy officer looks at every emergency access
//! (break-the-glass) and concludes whether it was justified.
//!
//! Entries are never changed, so a review is an entry of its own ([`AuditAction::Review`])
//! naming the reviewed entry as `AuditEvent/<id>` in its objects, with the conclusion and a
//! note in its reason. An entry is reviewed when such an entry exists; it is reviewed once.
//! [`pending`] lists the flagged entries nobody has reviewed yet; the contracting report
//! counts them.

use std::fmt;
use std::str::FromStr;

use sqlx::Row;

use super::query::StoredEntry;
use super::{record, Actor, AuditAction, AuditEntry, AuditError, AuditId, AuditOutcome, Content};
use crate::store::Store;

/// The rule recorded on a review entry.
pub const RULE: &str = crate::policy::rules::AUDIT_REVIEW_OFFICER;

/// The privacy officer's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    /// The emergency access was justified.
    Justified,
    /// It was not; follow-up is the organisation's (the note says what).
    NotJustified,
}

impl Conclusion {
    /// The conclusion of a review entry's reason (`<code>: <note>`, as [`review`] writes it).
    pub fn of_review_reason(reason: &str) -> Option<Conclusion> {
        reason.split(':').next()?.trim().parse().ok()
    }

    pub fn code(self) -> &'static str {
        match self {
            Conclusion::Justified => "justified",
            Conclusion::NotJustified => "not-justified",
        }
    }
}

impl FromStr for Conclusion {
    type Err = String;
    fn from_str(s: &str) -> Result<Conclusion, String> {
        match s {
            "justified" => Ok(Conclusion::Justified),
            "not-justified" => Ok(Conclusion::NotJustified),
            other => Err(format!("unknown conclusion {other:?}; use justified or not-justified")),
        }
    }
}

impl fmt::Display for Conclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a review was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no audit entry has the id {0}")]
    NotFound(String),
    #[error("audit entry {0} is not flagged for review")]
    NotFlagged(String),
    #[error("audit entry {id} was already reviewed (review entry {by})")]
    AlreadyReviewed { id: String, by: String },
    /// The policy refused this reviewer this entry (another organisation's entry).
    #[error("{}", .0.reason)]
    Refused(crate::policy::Decision),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        ReviewError::Audit(AuditError::Database(e))
    }
}

impl From<crate::store::StoreError> for ReviewError {
    fn from(e: crate::store::StoreError) -> Self {
        ReviewError::Audit(AuditError::Store(e))
    }
}

/// A review to record.
#[derive(Debug, Clone)]
pub struct NewReview<'a> {
    /// The id of the flagged entry (the AuditEvent id).
    pub entry_id: &'a str,
    pub conclusion: Conclusion,
    /// What the officer found (no clinical content); at most 1000 characters are kept.
    pub note: Option<&'a str>,
    /// The reviewer (from the token), or `None` on the command line.
    pub reviewer: Option<Actor>,
    /// The access point (API client, or the command line and OS user).
    pub client: Option<String>,
    pub request_id: Option<String>,
}

/// The review entry for `r`, about the reviewed entry.
fn review_entry(r: &NewReview<'_>, reviewed: &AuditEntry) -> AuditEntry {
    let mut e = AuditEntry::new(AuditAction::Review, AuditOutcome::Success);
    e.user = r.reviewer.clone();
    e.client = r.client.clone();
    e.patient_bsn = reviewed.patient_bsn.clone();
    e.name_reviewed(r.entry_id);
    e.rule = Some(RULE.to_owned());
    let note: Option<String> = r.note.map(|n| n.chars().take(1000).collect());
    e.reason = Some(match note {
        Some(n) if !n.trim().is_empty() => format!("{}: {}", r.conclusion, n.trim()),
        _ => r.conclusion.to_string(),
    });
    e.request_id = r.request_id.clone();
    e
}

/// Records the review of a flagged entry, in one transaction with the checks (the entry
/// exists, is flagged, and is not reviewed yet). For the command line (an operator with
/// access to the database); the API uses [`review_scoped`].
pub async fn review(store: &Store, r: &NewReview<'_>) -> Result<AuditId, ReviewError> {
    review_scoped(store, r, |_| Ok(())).await
}

/// [`review`], with `authorise` deciding on the reviewed entry (before anything else about
/// it is told): the privacy officer reviews only their own organisation's entries
/// ([`crate::policy::audit_view::decide_review`]).
pub async fn review_scoped(
    store: &Store,
    r: &NewReview<'_>,
    authorise: impl FnOnce(&AuditEntry) -> Result<(), crate::policy::Decision>,
) -> Result<AuditId, ReviewError> {
    let mut tx = store.begin().await?;
    // Lock the chain head first, so that two reviews of one entry cannot both pass the check.
    sqlx::query("UPDATE audit_chain_head SET seq = seq WHERE id = 1").execute(tx.conn()).await?;
    let row = sqlx::query("SELECT content FROM audit_entries WHERE id = $1")
        .bind(r.entry_id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| ReviewError::NotFound(r.entry_id.to_owned()))?;
    let content: String = row.try_get("content")?;
    let reviewed = Content::from_stored(&content).map_err(AuditError::from)?;
    authorise(&reviewed.entry).map_err(ReviewError::Refused)?;
    if !reviewed.entry.flag_for_review {
        return Err(ReviewError::NotFlagged(r.entry_id.to_owned()));
    }
    if let Some(by) = reviews_of(tx.conn(), r.entry_id).await?.into_iter().next() {
        return Err(ReviewError::AlreadyReviewed { id: r.entry_id.to_owned(), by });
    }
    let id = record(&mut tx, &review_entry(r, &reviewed.entry)).await?;
    tx.commit().await?;
    Ok(id)
}

/// The ids of the recorded reviews of entry `id` (a refused attempt names the entry too,
/// and does not count).
async fn reviews_of(conn: &mut crate::store::Conn, id: &str) -> Result<Vec<String>, ReviewError> {
    let rows = sqlx::query(
        "SELECT id FROM audit_entries WHERE reviewed_id = $1 AND action = 'review' AND outcome = 'success' \
         ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
}

/// The flagged entries nobody has reviewed yet, oldest first.
pub async fn pending(store: &Store) -> Result<Vec<StoredEntry>, AuditError> {
    // Only a review that was recorded takes an entry off the list: a refused review (another
    // organisation's officer, a conflict) names the entry too.
    let flagged = sqlx::query(
        "SELECT seq, content, hash, prev_hash FROM audit_entries a WHERE a.flagged = 1 \
         AND NOT EXISTS (SELECT 1 FROM audit_entries r WHERE r.reviewed_id = a.id \
         AND r.action = 'review' AND r.outcome = 'success') ORDER BY a.seq",
    )
    .fetch_all(store.pool())
    .await?;
    flagged.iter().map(super::query::stored_entry).collect()
}

/// The flagged entries nobody has reviewed yet, listed on the command line by `client` (the
/// command and the OS user): the listing is recorded in the trail (an audit query) before
/// anything is read, as every view of the trail is.
pub async fn pending_listed_by(store: &Store, client: String) -> Result<Vec<StoredEntry>, AuditError> {
    let mut entry = AuditEntry::new(AuditAction::AuditQuery, AuditOutcome::Success);
    entry.client = Some(client);
    entry.objects = vec!["AuditEvent?flagged=true&reviewed=false".to_owned()];
    entry.reason = Some("flagged entries listed on the command line".to_owned());
    super::record_alone(store, &entry).await?;
    pending(store).await
}

/// One flagged entry as `overdracht audit flagged` lists it: id, time, action, who, reason.
/// Every field is made printable: a reason is the caller's text.
pub fn pending_line(p: &StoredEntry) -> String {
    use crate::diagnostics::printable;
    let who = p.entry.user.as_ref().map(|u| format!("UZI {} ({}, URA {})", u.uzi, u.uzi_role, u.ura));
    format!(
        "{}  {}  {}  {}  {}",
        printable(&p.id),
        printable(&p.recorded),
        p.entry.action.code(),
        printable(who.as_deref().unwrap_or("-")),
        printable(p.entry.reason.as_deref().unwrap_or("-"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conclusions_parse_and_print() {
        for c in [Conclusion::Justified, Conclusion::NotJustified] {
            assert_eq!(c.code().parse::<Conclusion>(), Ok(c));
        }
        assert!("maybe".parse::<Conclusion>().is_err());
        assert_eq!(Conclusion::of_review_reason("not-justified: no emergency"), Some(Conclusion::NotJustified));
        assert_eq!(Conclusion::of_review_reason("justified"), Some(Conclusion::Justified));
    }

    #[test]
    fn the_review_entry_names_the_reviewed_entry_and_keeps_the_note_short() {
        let mut reviewed = AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
        reviewed.patient_bsn = Some("999911120".into());
        let long = "x".repeat(5000);
        let r = NewReview {
            entry_id: "abc",
            conclusion: Conclusion::NotJustified,
            note: Some(&long),
            reviewer: None,
            client: None,
            request_id: None,
        };
        let e = review_entry(&r, &reviewed);
        assert_eq!(e.objects, vec!["AuditEvent/abc".to_owned()]);
        assert_eq!(e.reviewed_entry.as_deref(), Some("abc"));
        assert_eq!(e.patient_bsn.as_deref(), Some("999911120"));
        assert_eq!(e.reason.as_deref().map(|s| s.chars().count()), Some("not-justified: ".len() + 1000));
    }
}
