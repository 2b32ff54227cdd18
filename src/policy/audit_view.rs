//! Who sees which part of the audit trail (`GET /fhir/AuditEvent`, the patient's access
//! log, the flagged entries and their reviews).
//!
//! Every right here is scoped to the organisation in the token:
//! - at the **receiving (treating) organisation** of a handover of the patient, the members
//!   of the patient's care team there see the entries *of that organisation* about the
//!   patient (`audit-view/treating-organisation`); its other staff do not
//!   (`audit-view/not-in-team`, review R4): who saw what is the business of the patient and
//!   of those treating them, and other organisations' entries are theirs;
//! - a **privacy officer** (a UZI role in `audit.privacy_officer_roles`) sees the entries *of
//!   their organisation*: by its staff, or about the data it holds (the facade names the
//!   holder of the data), or handovers it received; with or without naming a
//!   patient (`audit-view/privacy-officer`). Reviews of flagged entries likewise: only of
//!   their organisation's entries (`audit-review/other-organisation` otherwise);
//! - the **sending organisation** sees only the entries of its own staff about the patient
//!   (what it did itself), not who read at the receiver (`audit-view/sender-own-entries`);
//! - anyone else: denied (`audit-view/deny`). Every decision is itself audited.

use super::rules::*;
use super::Decision;
use crate::model::{Ura, UziRoleCode};

/// Which entries a permitted view may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewScope {
    /// Every entry about the patient named.
    Patient,
    /// Entries of this organisation (URA): by its staff, about data it holds, or handovers it
    /// received ([`entry_is_of`] and the same condition in SQL).
    Organisation(String),
    /// Entries by this organisation's staff only.
    OwnEntries(String),
}

/// What a view decision depends on, gathered by the caller.
#[derive(Debug, Clone, Copy)]
pub struct ViewFacts<'a> {
    pub ura: &'a Ura,
    pub uzi_role: &'a UziRoleCode,
    pub officer_roles: &'a [String],
    /// The patient named (`None`: the whole trail).
    pub patient: Option<&'a str>,
    /// The organisation received a handover of the patient.
    pub received: bool,
    /// The organisation sent a handover of the patient.
    pub sent: bool,
    /// The caller is a current member of the patient's care team at the organisation in the
    /// token, with the profession of the token ([`super::parties::in_patient_team`]).
    pub team_member: bool,
}

/// A decision on a view of the audit trail, and the entries a permit is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDecision {
    pub decision: Decision,
    /// `Some` exactly when permitted.
    pub scope: Option<ViewScope>,
}

impl std::ops::Deref for ViewDecision {
    type Target = Decision;

    fn deref(&self) -> &Decision {
        &self.decision
    }
}

/// Decides a view of the audit trail; a permit comes with the scope the answer is limited to.
pub fn decide_audit_view(f: &ViewFacts<'_>) -> ViewDecision {
    let (decision, scope) = decide(f);
    ViewDecision { decision, scope }
}

fn decide(f: &ViewFacts<'_>) -> (Decision, Option<ViewScope>) {
    let officer = f.officer_roles.iter().any(|r| *r == *f.uzi_role);
    if f.patient.is_some() && f.received && f.team_member {
        let d = Decision::permit(
            AUDIT_VIEW_TREATING_ORGANISATION,
            format!(
                "member of the patient's care team at organisation ura|{}, which received a handover of this patient; entries of that organisation",
                f.ura
            ),
        );
        return (d, Some(ViewScope::Organisation(f.ura.to_string())));
    }
    if officer {
        let d = Decision::permit(
            AUDIT_VIEW_PRIVACY_OFFICER,
            format!(
                "UZI role {} is a configured privacy-officer role; entries of organisation ura|{}",
                f.uzi_role, f.ura
            ),
        );
        return (d, Some(ViewScope::Organisation(f.ura.to_string())));
    }
    let Some(_) = f.patient else {
        return (
            Decision::deny(
                AUDIT_VIEW_DENY,
                "only a privacy officer may search the audit trail without naming a patient",
            ),
            None,
        );
    };
    if f.sent {
        let d = Decision::permit(
            AUDIT_VIEW_SENDER_OWN_ENTRIES,
            format!("organisation ura|{} sent a handover of this patient: its own entries only", f.ura),
        );
        return (d, Some(ViewScope::OwnEntries(f.ura.to_string())));
    }
    if f.received {
        return (
            Decision::deny(
                AUDIT_VIEW_NOT_IN_TEAM,
                format!(
                    "organisation ura|{} received a handover of this patient, but the caller is not a member of the patient's care team there nor a privacy officer",
                    f.ura
                ),
            ),
            None,
        );
    }
    (
        Decision::deny(
            AUDIT_VIEW_DENY,
            format!("organisation ura|{} neither sent nor received a handover of this patient", f.ura),
        ),
        None,
    )
}

/// Whether an entry is of organisation `ura` as far as its own fields tell: made by its
/// staff, or naming it as the holder of the data (the entry's `holder_ura`). (Handovers it
/// received are found through the handover table, in SQL.)
pub fn entry_is_of(user_ura: Option<&str>, holder_ura: Option<&str>, ura: &str) -> bool {
    user_ura == Some(ura) || holder_ura == Some(ura)
}

/// Decides a privacy officer's review of a flagged entry (or the listing of flagged entries,
/// with `entry` `None`).
pub fn decide_review(
    uzi_role: &UziRoleCode,
    ura: &Ura,
    officer_roles: &[String],
    entry: Option<(Option<&str>, Option<&str>)>,
) -> Decision {
    if !officer_roles.iter().any(|r| *r == *uzi_role) {
        return Decision::deny(
            AUDIT_REVIEW_NOT_OFFICER,
            format!("UZI role {uzi_role} is not a configured privacy-officer role"),
        );
    }
    match entry {
        Some((user_ura, holder_ura)) if !entry_is_of(user_ura, holder_ura, ura.as_str()) => Decision::deny(
            AUDIT_REVIEW_OTHER_ORGANISATION,
            format!("the entry is not one of organisation ura|{ura}; its own privacy officer reviews it"),
        ),
        _ => Decision::permit(AUDIT_REVIEW_OFFICER, format!("privacy officer of organisation ura|{ura}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typed identifier that lives as long as the test run (test data only).
    fn kept<T>(t: T) -> &'static T {
        Box::leak(Box::new(t))
    }

    fn facts<'a>(
        officers: &'a [String],
        role: &str,
        patient: Option<&'a str>,
        received: bool,
        sent: bool,
    ) -> ViewFacts<'a> {
        ViewFacts {
            ura: kept(Ura::parse("11112222").expect("a URA")),
            uzi_role: kept(UziRoleCode::parse(role).expect("a UZI role code")),
            officer_roles: officers,
            patient,
            received,
            sent,
            team_member: true,
        }
    }

    #[test]
    fn views_are_scoped_to_the_organisation_in_the_token() {
        let officers = vec!["99.998".to_owned()];
        let (d, s) = decide(&facts(&officers, "99.998", None, false, false));
        assert_eq!((d.rule, s), (AUDIT_VIEW_PRIVACY_OFFICER, Some(ViewScope::Organisation("11112222".into()))));
        let (d, s) = decide(&facts(&officers, "01.047", Some("999911120"), true, true));
        assert_eq!((d.rule, s), (AUDIT_VIEW_TREATING_ORGANISATION, Some(ViewScope::Organisation("11112222".into()))));
        // Review R4: staff of the receiving organisation outside the patient's team.
        let outside = ViewFacts { team_member: false, ..facts(&officers, "99.999", Some("999911120"), true, false) };
        assert_eq!(decide_audit_view(&outside).rule, AUDIT_VIEW_NOT_IN_TEAM);
        let officer = ViewFacts { team_member: false, ..facts(&officers, "99.998", Some("999911120"), true, false) };
        assert_eq!(decide_audit_view(&officer).scope, Some(ViewScope::Organisation("11112222".into())));
        assert_eq!(decide_audit_view(&officer).rule, AUDIT_VIEW_PRIVACY_OFFICER);
        let (d, s) = decide(&facts(&officers, "01.015", Some("999911120"), false, true));
        assert_eq!((d.rule, s), (AUDIT_VIEW_SENDER_OWN_ENTRIES, Some(ViewScope::OwnEntries("11112222".into()))));
        let d = decide_audit_view(&facts(&officers, "01.047", None, true, true));
        assert!(!d.permit && d.scope.is_none());
        let (d, _) = decide(&facts(&officers, "01.047", Some("999911120"), false, false));
        assert_eq!((d.permit, d.rule), (false, AUDIT_VIEW_DENY));
    }

    #[test]
    fn reviews_are_of_the_officers_organisation() {
        let officers = vec!["99.998".to_owned()];
        let holder = Some("11112222");
        let role = |s: &str| UziRoleCode::parse(s).expect("a UZI role code");
        let ura = |s: &str| Ura::parse(s).expect("a URA");
        assert!(decide_review(&role("99.998"), &ura("11112222"), &officers, Some((None, holder))).permit);
        assert!(decide_review(&role("99.998"), &ura("11112222"), &officers, Some((Some("11112222"), None))).permit);
        let d = decide_review(&role("99.998"), &ura("55556666"), &officers, Some((Some("11112222"), holder)));
        assert_eq!(d.rule, AUDIT_REVIEW_OTHER_ORGANISATION);
        assert_eq!(decide_review(&role("01.047"), &ura("11112222"), &officers, None).rule, AUDIT_REVIEW_NOT_OFFICER);
    }
}
