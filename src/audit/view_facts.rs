//! Who may look at the audit trail (`GET /fhir/AuditEvent`, the patient access log): the
//! facts from the store, the decision by [`crate::policy::audit_view`] (the rules and their
//! ids are documented there). Every decision is itself audited by the caller.

use chrono::NaiveDate;
use sqlx::Row;

use super::AuditError;
use crate::model::{Ura, Uzi, UziRoleCode};
pub use crate::policy::audit_view::ViewDecision;
use crate::policy::audit_view::{decide_audit_view, ViewFacts};
use crate::policy::care_team::CareTeam;
use crate::policy::parties::in_patient_team;
use crate::policy::rules;
use crate::store::Store;

/// Rule ids, as recorded in the AuditQuery entries.
pub const RULE_PRIVACY_OFFICER: &str = rules::AUDIT_VIEW_PRIVACY_OFFICER;
pub const RULE_TREATING_ORGANISATION: &str = rules::AUDIT_VIEW_TREATING_ORGANISATION;
pub const RULE_SENDER_OWN_ENTRIES: &str = rules::AUDIT_VIEW_SENDER_OWN_ENTRIES;
pub const RULE_DEFAULT_DENY: &str = rules::AUDIT_VIEW_DENY;

/// Decides whether a caller (URA, UZI number and role, as the token states them) may view
/// audit entries of `patient_bsn` (`None`: the whole trail), and which.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    store: &Store,
    ura: &Ura,
    uzi: &Uzi,
    uzi_role: &UziRoleCode,
    patient_bsn: Option<&str>,
    officer_roles: &[String],
    day: NaiveDate,
) -> Result<ViewDecision, AuditError> {
    let (mut received, mut sent, mut team_member) = (false, false, false);
    if let Some(bsn) = patient_bsn {
        let org = format!("ura|{ura}");
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN receiver = $2 THEN 1 ELSE 0 END), 0) AS received, \
             COALESCE(SUM(CASE WHEN sender = $2 OR submitted_by_ura = $3 THEN 1 ELSE 0 END), 0) AS sent \
             FROM handovers WHERE patient_bsn = $1",
        )
        .bind(bsn)
        .bind(&org)
        .bind(ura.as_str())
        .fetch_one(store.pool())
        .await?;
        received = row.try_get::<i64, _>("received")? > 0;
        sent = row.try_get::<i64, _>("sent")? > 0;
        if received {
            // A team that no longer parses counts for nobody (deny by default).
            let teams: Vec<CareTeam> = store
                .care_teams_of(bsn)
                .await?
                .iter()
                .filter_map(|r| serde_json::from_str(&r.resource).ok())
                .filter_map(|v| CareTeam::from_fhir(&v).ok())
                .collect();
            team_member = in_patient_team(uzi, uzi_role, ura, &teams, day);
        }
    }
    Ok(decide_audit_view(&ViewFacts {
        ura,
        uzi_role,
        officer_roles,
        patient: patient_bsn,
        received,
        sent,
        team_member,
    }))
}
