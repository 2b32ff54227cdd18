//! Who may look at the audit trail (`GET /fhir/AuditEvent`, the patient access log).
//!
//! A simple, documented rule until the access policy covers it:
//! - a **privacy officer** (a caller whose UZI role code is in the configured list,
//!   `audit.privacy_officer_roles`, environment `OVERDRACHT_AUDIT_PRIVACY_OFFICER_ROLES`,
//!   comma-separated) may search the whole trail and review flagged entries;
//! - anyone else must name one patient, and their organisation (the token's URA) must be
//!   the receiving or the sending organisation of a handover of that patient; they then see
//!   every entry about that patient (who saw what is the patient's business and that of
//!   the organisations treating them);
//! - everything else is denied (deny by default). Every decision is itself audited.

use sqlx::Row;

use super::AuditError;
use crate::store::Store;

/// Rule ids, as recorded in the AuditQuery entries.
pub const RULE_PRIVACY_OFFICER: &str = "audit-view/privacy-officer";
pub const RULE_TREATING_ORGANISATION: &str = "audit-view/treating-organisation";
pub const RULE_DEFAULT_DENY: &str = "audit-view/deny";

/// The decision on one view request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDecision {
    pub permit: bool,
    pub rule: &'static str,
    pub reason: String,
}

/// Decides whether a caller (URA, UZI role) may view audit entries of `patient_bsn`
/// (`None`: the whole trail).
pub async fn decide(
    store: &Store,
    ura: &str,
    uzi_role: &str,
    patient_bsn: Option<&str>,
    officer_roles: &[String],
) -> Result<ViewDecision, AuditError> {
    if officer_roles.iter().any(|r| r == uzi_role) {
        return Ok(ViewDecision {
            permit: true,
            rule: RULE_PRIVACY_OFFICER,
            reason: format!("UZI role {uzi_role} is a configured privacy-officer role"),
        });
    }
    let Some(bsn) = patient_bsn else {
        return Ok(ViewDecision {
            permit: false,
            rule: RULE_DEFAULT_DENY,
            reason: "only a privacy officer may search the audit trail without naming a patient".to_owned(),
        });
    };
    let org = format!("ura|{ura}");
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM handovers WHERE patient_bsn = $1 AND (receiver = $2 OR sender = $2 OR submitted_by_ura = $3)",
    )
    .bind(bsn)
    .bind(&org)
    .bind(ura)
    .fetch_one(store.pool())
    .await?;
    let n: i64 = row.try_get("n")?;
    Ok(if n > 0 {
        ViewDecision {
            permit: true,
            rule: RULE_TREATING_ORGANISATION,
            reason: format!("organisation {org} sent or received a handover of this patient"),
        }
    } else {
        ViewDecision {
            permit: false,
            rule: RULE_DEFAULT_DENY,
            reason: format!("organisation {org} neither sent nor received a handover of this patient"),
        }
    })
}
