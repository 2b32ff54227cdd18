//! Who may write — and read — the facts the access engine decides on: care teams and the
//! patient's consents and objections.
//!
//! The facade's decisions are only as good as the teams and consents they read, so writing
//! them is decided here like every other authorisation, with a rule id per outcome
//! ([`super::rules`]). The API gathers the facts (the token, whether the caller is an
//! administrator of the organisation in the token, the stored version, the patient's other
//! teams) and records the decision in the audit trail, permitted or not.
//!
//! **Care teams** ([`decide_team_write`]):
//! 1. a team is written by its managing organisation (the token's URA) — `team.write.organisation`;
//! 2. a stored team stays with its patient, for everyone (administrators included): a changed
//!    subject would hand the team's access to another patient's dossier — `team.write.other-patient`;
//! 3. the profession a team records for the writer is the one in the writer's token: nobody
//!    writes themselves in as an SO with a nurse's token — `team.member.role-mismatch`. The
//!    professions of the *other* members are checked the same way when they act: the access
//!    engine counts a membership only when the token's UZI role equals the team's
//!    (`membership.role-mismatch`), so a role claimed in the body alone never opens data;
//! 4. a stored team is changed by its lead practitioner or an administrator of the
//!    organisation — `team.write.lead`, `team.write.admin`, `team.write.not-lead`;
//! 5. a new team is created by an administrator of the managing organisation, or by the
//!    patient's current lead practitioner at that organisation (the follow-up team); never
//!    by someone who names themselves into a team that does not exist yet —
//!    `team.create.admin`, `team.create.current-lead`, `team.create.not-allowed`;
//! 6. one active team per patient and organisation at a time — `team.one-active`.
//!
//! **Consents and objections** ([`decide_consent_write`]): recorded by the lead practitioner
//! of one of the patient's teams at the caller's organisation or an administrator of it (as
//! before); changed only by the organisations named on the stored version as its custodians
//! (`Consent.organization`: the recording organisation first, then any organisation the
//! patient designated) — `consent.write.other-organisation`; and an objection in force is
//! withdrawn or narrowed only when the new version carries the patient's recorded statement
//! (`Consent.sourceAttachment` or `Consent.sourceReference`, see
//! [`super::consent::patient_statement`]) — `consent.withdraw.no-statement`. An explicit
//! consent for an agreement is recorded only by the agreement's sender or receiver
//! organisation, for a known agreement — `consent.write.not-agreement-party`,
//! `consent.write.unknown-agreement` (review R2; the transfer decision, too, counts only a
//! consent whose recording organisation is a party, [`super::agreement::Agreement::counts_consent`]).

use chrono::NaiveDate;

use super::agreement::Agreement;
use super::care_team::{CareTeam, TreatmentState};
use super::consent::{ConsentKind, PatientConsent};
use super::rules::*;
use super::{Actor, Decision};
use crate::model::Ura;

/// The actor is the lead practitioner of `team` on `day`, acting for the team's
/// organisation, with the profession the team records for the lead.
pub fn is_lead(team: &CareTeam, actor: &Actor<'_>, day: NaiveDate) -> bool {
    team.organisation_ura == actor.ura
        && team
            .lead_practitioner(day)
            .is_some_and(|l| l.uzi == actor.uzi && l.organisation_ura == actor.ura && l.uzi_role == actor.uzi_role)
}

/// A stored team: its managing organisation and patient (from the stored row, so they hold
/// even when the stored JSON no longer parses), and the team when it still parses.
#[derive(Debug, Clone, Copy)]
pub struct StoredTeam<'a> {
    pub organisation_ura: &'a str,
    pub patient_bsn: &'a str,
    pub team: Option<&'a CareTeam>,
}

/// A `PUT` of a care team.
#[derive(Debug, Clone, Copy)]
pub struct TeamWrite<'a> {
    pub actor: &'a Actor<'a>,
    /// The new version.
    pub team: &'a CareTeam,
    /// The stored version with the same id, if any.
    pub stored: Option<StoredTeam<'a>>,
    /// The patient's stored teams (any organisation; the one being written may be among them).
    pub patient_teams: &'a [CareTeam],
    /// Today (Europe/Amsterdam).
    pub day: NaiveDate,
}

/// Decides a care-team write (the rules in the module documentation, in that order).
pub fn decide_team_write(w: &TeamWrite<'_>) -> Decision {
    let a = w.actor;
    if w.team.organisation_ura != a.ura || w.stored.is_some_and(|s| s.organisation_ura != a.ura) {
        return Decision::deny(
            TEAM_WRITE_ORGANISATION,
            "a care team is written by its managing organisation: the token's URA is not the team's managing organisation",
        );
    }
    if w.stored.is_some_and(|s| s.patient_bsn != w.team.patient.as_str()) {
        return Decision::deny(
            TEAM_WRITE_OTHER_PATIENT,
            "a care team cannot be moved to another patient: the stored team is for another patient; create a new team for that patient",
        );
    }
    if let Some(m) =
        w.team.members.iter().find(|m| m.uzi == a.uzi && m.organisation_ura == a.ura && m.uzi_role != a.uzi_role)
    {
        return Decision::deny(
            TEAM_MEMBER_ROLE_MISMATCH,
            format!(
                "the team records UZI role {} for the writer, the token states {}; a member's profession is the one in their token",
                m.uzi_role, a.uzi_role
            ),
        );
    }
    let permit = match w.stored {
        Some(_) if a.admin => Decision::permit(TEAM_WRITE_ADMIN, "administrator of the managing organisation"),
        Some(StoredTeam { team: Some(old), .. }) if is_lead(old, a, w.day) => {
            Decision::permit(TEAM_WRITE_LEAD, "lead practitioner of the stored team")
        }
        Some(StoredTeam { team: Some(_), .. }) => {
            return Decision::deny(
                TEAM_WRITE_NOT_LEAD,
                "only the team's lead practitioner or an administrator of the organisation may change a care team",
            )
        }
        Some(StoredTeam { team: None, .. }) => {
            return Decision::deny(
                TEAM_WRITE_NOT_LEAD,
                "the stored team cannot be read; only an administrator of the organisation may replace it",
            )
        }
        None if a.admin => Decision::permit(TEAM_CREATE_ADMIN, "administrator of the managing organisation"),
        None if w.patient_teams.iter().any(|t| t.id != w.team.id && t.patient == w.team.patient && is_lead(t, a, w.day)) => {
            Decision::permit(TEAM_CREATE_CURRENT_LEAD, "the patient's current lead practitioner at the organisation")
        }
        None => {
            return Decision::deny(
                TEAM_CREATE_NOT_ALLOWED,
                "a new care team is created by an administrator of the managing organisation or by the patient's current lead practitioner there; nobody names themselves into a team that does not exist yet",
            )
        }
    };
    one_active_conflict(w.team, w.patient_teams).unwrap_or(permit)
}

/// The `team.one-active` denial when `team` is active and another active team of the same
/// patient at the same organisation overlaps its period. The API checks it again inside the
/// write's transaction, so that two parallel creations cannot both pass.
pub fn one_active_conflict(team: &CareTeam, patient_teams: &[CareTeam]) -> Option<Decision> {
    if !matches!(team.state, TreatmentState::Active) {
        return None;
    }
    let other = patient_teams.iter().find(|t| {
        t.id != team.id
            && t.patient == team.patient
            && t.organisation_ura == team.organisation_ura
            && matches!(t.state, TreatmentState::Active)
            && t.period.overlaps(&team.period)
    })?;
    Some(Decision::deny(
        TEAM_ONE_ACTIVE,
        format!(
            "the patient already has an active care team at this organisation in that period (CareTeam/{}); end it, or change that team",
            other.id
        ),
    ))
}

/// Decides a read of a care team: a member (acting for the organisation of the membership,
/// with the profession the team records) or an administrator of the managing organisation,
/// for a purpose of use the access policy accepts.
pub fn decide_team_read(actor: &Actor<'_>, purpose_of_use: &str, purposes: &[String], team: &CareTeam) -> Decision {
    if !purposes.iter().any(|p| p == purpose_of_use) {
        return Decision::deny(
            PURPOSE_NOT_PERMITTED,
            format!("purpose of use '{purpose_of_use}' is not one of {purposes:?}"),
        );
    }
    if team
        .members
        .iter()
        .any(|m| m.uzi == actor.uzi && m.organisation_ura == actor.ura && m.uzi_role == actor.uzi_role)
    {
        return Decision::permit(TEAM_READ, "member of the team");
    }
    if actor.admin && team.organisation_ura == actor.ura {
        return Decision::permit(TEAM_READ_ADMIN, "administrator of the managing organisation");
    }
    Decision::deny(TEAM_READ_NOT_VISIBLE, "not a member of the team")
}

/// The caller may handle this patient's consents at all: lead practitioner of one of the
/// patient's teams at the caller's organisation, or an administrator of an organisation
/// that manages a team for the patient.
fn may_handle(actor: &Actor<'_>, patient_teams: &[CareTeam], day: NaiveDate) -> bool {
    patient_teams.iter().any(|t| is_lead(t, actor, day) || (actor.admin && t.organisation_ura == actor.ura))
}

/// A stored consent and its custodians (URAs; the recording organisation first).
#[derive(Debug, Clone, Copy)]
pub struct StoredConsent<'a> {
    pub consent: &'a PatientConsent,
    pub custodians: &'a [Ura],
}

/// A `PUT` of a patient's consent or objection.
#[derive(Debug, Clone, Copy)]
pub struct ConsentWrite<'a> {
    pub actor: &'a Actor<'a>,
    pub consent: &'a PatientConsent,
    /// The custodians of the new version (`Consent.organization`, recording organisation first).
    pub custodians: &'a [Ura],
    /// The patient's recorded statement on the new version, if any.
    pub statement: Option<&'a str>,
    pub stored: Option<StoredConsent<'a>>,
    /// The patient's stored teams (any organisation).
    pub patient_teams: &'a [CareTeam],
    /// The agreements known to the service (to check who may record a consent for one).
    pub agreements: &'a [Agreement],
    pub day: NaiveDate,
}

/// Decides a consent write (the rules in the module documentation).
pub fn decide_consent_write(w: &ConsentWrite<'_>) -> Decision {
    let a = w.actor;
    if let Some(s) = w.stored {
        if s.consent.patient != w.consent.patient {
            return Decision::deny(CONSENT_WRITE_OTHER_PATIENT, "a consent cannot be moved to another patient");
        }
    }
    if !may_handle(a, w.patient_teams, w.day) {
        return Decision::deny(
            CONSENT_WRITE_NOT_ALLOWED,
            "a patient's consent is recorded by the lead practitioner of one of the patient's care teams, or by an administrator of its organisation",
        );
    }
    if let ConsentKind::AgreementConsent { agreement_id } = &w.consent.kind {
        let named: Vec<&Agreement> = w.agreements.iter().filter(|g| g.id == *agreement_id).collect();
        if named.is_empty() {
            return Decision::deny(
                CONSENT_WRITE_UNKNOWN_AGREEMENT,
                format!("no agreement with id {agreement_id} is known; a consent is recorded for a known agreement"),
            );
        }
        if !named.iter().any(|g| g.is_party(a.ura)) {
            return Decision::deny(
                CONSENT_WRITE_NOT_AGREEMENT_PARTY,
                "a consent for an agreement is recorded by the agreement's sender or receiver organisation only; the token's URA is neither",
            );
        }
    }
    match w.stored {
        Some(s) => {
            if !s.custodians.iter().any(|u| u == a.ura) {
                return Decision::deny(
                    CONSENT_WRITE_OTHER_ORGANISATION,
                    "this consent was recorded by another organisation; only it, or an organisation the patient designated (Consent.organization), changes it",
                );
            }
            if let Some(recorder) = s.custodians.first() {
                if !w.custodians.contains(recorder) {
                    return Decision::deny(
                        CONSENT_WRITE_CUSTODIAN,
                        format!("the recording organisation (URA {recorder}) stays the first Consent.organization"),
                    );
                }
            }
            if weakens(s.consent, w.consent) {
                return match w.statement {
                    Some(st) => Decision::permit(
                        CONSENT_WITHDRAW_WITH_STATEMENT,
                        format!("objection withdrawn or narrowed with the patient's recorded statement ({st})"),
                    ),
                    None => Decision::deny(
                        CONSENT_WITHDRAW_NO_STATEMENT,
                        "an objection is withdrawn or narrowed only with the patient's recorded statement: add Consent.sourceAttachment (creation date and url or data) or Consent.sourceReference",
                    ),
                };
            }
        }
        None => {
            if w.custodians.first() != Some(a.ura) {
                return Decision::deny(
                    CONSENT_WRITE_CUSTODIAN,
                    "a new consent names the recording organisation (the token's URA) as its first Consent.organization",
                );
            }
        }
    }
    Decision::permit(CONSENT_WRITE, "lead practitioner or administrator of the recording organisation")
}

/// Decides a read of a patient's sharing consent: whoever may handle the patient's consents
/// at one of its custodians.
pub fn decide_consent_read(
    actor: &Actor<'_>,
    custodians: &[Ura],
    patient_teams: &[CareTeam],
    day: NaiveDate,
) -> Decision {
    if !may_handle(actor, patient_teams, day) {
        return Decision::deny(CONSENT_WRITE_NOT_ALLOWED, "not the lead practitioner or an administrator");
    }
    if !custodians.iter().any(|u| u == actor.ura) {
        return Decision::deny(CONSENT_READ_OTHER_ORGANISATION, "the consent was recorded by another organisation");
    }
    Decision::permit(CONSENT_READ, "lead practitioner or administrator of the recording organisation")
}

/// Whether `new` takes away anything of the objection `old` that is recorded as active:
/// deactivated, no longer an objection, fewer categories, fewer people it applies to, or a
/// shorter period.
pub fn weakens(old: &PatientConsent, new: &PatientConsent) -> bool {
    let ConsentKind::Objection { categories: oc, members: om } = &old.kind else { return false };
    if !old.active {
        return false;
    }
    let ConsentKind::Objection { categories: nc, members: nm } = &new.kind else { return true };
    let categories_kept = match (oc, nc) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(o), Some(n)) => o.is_subset(n),
    };
    let members_kept = nm.is_empty() || (!om.is_empty() && om.is_subset(nm));
    !(new.active && categories_kept && members_kept && new.period.covers(&old.period))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bsn, DataCategory};
    use crate::policy::DayPeriod;

    fn objection(active: bool, cats: Option<&[DataCategory]>, members: &[&str], end: Option<&str>) -> PatientConsent {
        PatientConsent {
            id: "o".into(),
            patient: Bsn::parse("999911120").expect("bsn"),
            active,
            period: DayPeriod::new("2026-09-01".parse().expect("d"), end.map(|e| e.parse().expect("d"))),
            kind: ConsentKind::Objection {
                categories: cats.map(|c| c.iter().copied().collect()),
                members: members.iter().map(|m| (*m).to_owned()).collect(),
            },
            custodians: vec![id::<Ura>("11112222").clone()],
        }
    }

    fn example_team() -> CareTeam {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/care-teams/frail-elderly-group-care.json"))
                .expect("json");
        CareTeam::from_fhir(&v).expect("team")
    }

    /// A typed identifier that lives as long as the test (the actor borrows it).
    fn id<T: std::str::FromStr>(s: &str) -> &'static T
    where
        T::Err: std::fmt::Debug,
    {
        Box::leak(Box::new(s.parse().expect("identifier")))
    }

    fn actor(uzi: &str, role: &str, admin: bool) -> Actor<'static> {
        Actor { uzi: id(uzi), uzi_role: id(role), ura: id("11112222"), admin }
    }

    const DAY: &str = "2026-12-03";

    #[test]
    fn team_writes_rule_by_rule() {
        let day = DAY.parse().expect("day");
        let team = example_team();
        let stored = [team.clone()];
        let write = |a: &Actor<'_>, stored_team: Option<&CareTeam>, others: &[CareTeam], t: &CareTeam| {
            decide_team_write(&TeamWrite {
                actor: a,
                team: t,
                stored: stored_team.map(|s| StoredTeam {
                    organisation_ura: "11112222",
                    patient_bsn: s.patient.as_str(),
                    team: Some(s),
                }),
                patient_teams: others,
                day,
            })
            .rule
        };
        let lead = actor("900000101", "01.047", false);
        let admin = actor("900000900", "01.047", true);
        let outsider = actor("900000999", "01.047", false);
        // Creating: an administrator, never the lead it names on its own say.
        assert_eq!(write(&admin, None, &[], &team), TEAM_CREATE_ADMIN);
        assert_eq!(write(&lead, None, &[], &team), TEAM_CREATE_NOT_ALLOWED);
        assert_eq!(write(&outsider, None, &[], &team), TEAM_CREATE_NOT_ALLOWED);
        // Changing: the stored team's lead, or an administrator; the lead's profession is the token's.
        assert_eq!(write(&lead, Some(&team), &stored, &team), TEAM_WRITE_LEAD);
        assert_eq!(write(&outsider, Some(&team), &stored, &team), TEAM_WRITE_NOT_LEAD);
        assert_eq!(write(&actor("900000101", "01.056", false), Some(&team), &stored, &team), TEAM_MEMBER_ROLE_MISMATCH);
        assert_eq!(write(&actor("900000104", "01.047", true), Some(&team), &stored, &team), TEAM_MEMBER_ROLE_MISMATCH);
        // Moving a stored team to another patient: refused for everyone, administrators included.
        let mut moved = team.clone();
        moved.patient = crate::model::types::Bsn::parse("999911144").expect("bsn");
        assert_eq!(write(&lead, Some(&team), &stored, &moved), TEAM_WRITE_OTHER_PATIENT);
        assert_eq!(write(&admin, Some(&team), &stored, &moved), TEAM_WRITE_OTHER_PATIENT);
        // A second active team: refused even for an administrator; the current lead may
        // create a team once the other is not active in that period.
        let mut second = team.clone();
        second.id = "second".into();
        assert_eq!(write(&admin, None, &stored, &second), TEAM_ONE_ACTIVE);
        assert_eq!(write(&lead, None, &stored, &second), TEAM_ONE_ACTIVE);
        second.period = DayPeriod::new("2030-01-01".parse().expect("d"), None);
        let mut ending = team.clone();
        ending.period.end = Some("2029-12-31".parse().expect("d"));
        assert_eq!(write(&lead, None, &[ending], &second), TEAM_CREATE_CURRENT_LEAD);
        // Another organisation's token.
        let other = Actor { ura: id("55556666"), ..admin };
        assert_eq!(write(&other, None, &[], &team), TEAM_WRITE_ORGANISATION);
    }

    #[test]
    fn team_reads_need_a_treatment_purpose_and_the_members_profession() {
        let team = example_team();
        let purposes = vec!["TREAT".to_owned(), "ETREAT".to_owned()];
        let nurse = actor("900000104", "30.000", false);
        assert_eq!(decide_team_read(&nurse, "TREAT", &purposes, &team).rule, TEAM_READ);
        assert_eq!(decide_team_read(&nurse, "HRESCH", &purposes, &team).rule, PURPOSE_NOT_PERMITTED);
        assert_eq!(
            decide_team_read(&actor("900000104", "01.047", false), "TREAT", &purposes, &team).rule,
            TEAM_READ_NOT_VISIBLE
        );
        assert_eq!(
            decide_team_read(&actor("900000900", "01.047", true), "TREAT", &purposes, &team).rule,
            TEAM_READ_ADMIN
        );
    }

    #[test]
    fn consent_writes_rule_by_rule() {
        let day = DAY.parse().expect("day");
        let teams = [example_team()];
        let lead = actor("900000101", "01.047", false);
        let old = objection(true, Some(&[DataCategory::Lifestyle]), &[], None);
        let withdrawn = objection(false, Some(&[DataCategory::Lifestyle]), &[], None);
        let ours = [id::<Ura>("11112222").clone()];
        let designated = [id::<Ura>("55556666").clone(), id::<Ura>("11112222").clone()];
        let theirs = [id::<Ura>("55556666").clone()];
        let write =
            |a: &Actor<'_>, new: &PatientConsent, custodians: &[Ura], statement, stored: Option<StoredConsent<'_>>| {
                decide_consent_write(&ConsentWrite {
                    actor: a,
                    consent: new,
                    custodians,
                    statement,
                    stored,
                    patient_teams: &teams,
                    agreements: &[],
                    day,
                })
                .rule
            };
        let stored = |custodians| Some(StoredConsent { consent: &old, custodians });
        // Recording: the lead (or an administrator), naming its organisation first.
        assert_eq!(write(&lead, &old, &ours, None, None), CONSENT_WRITE);
        assert_eq!(write(&lead, &old, &theirs, None, None), CONSENT_WRITE_CUSTODIAN);
        assert_eq!(write(&actor("900000104", "30.000", false), &old, &ours, None, None), CONSENT_WRITE_NOT_ALLOWED);
        // Changing: only a custodian; the recorder stays first among them.
        assert_eq!(write(&lead, &old, &ours, None, stored(&theirs)), CONSENT_WRITE_OTHER_ORGANISATION);
        assert_eq!(write(&lead, &old, &designated, None, stored(&designated)), CONSENT_WRITE);
        assert_eq!(write(&lead, &old, &ours, None, stored(&designated)), CONSENT_WRITE_CUSTODIAN);
        // Withdrawing an objection: only with the patient's statement.
        assert_eq!(write(&lead, &withdrawn, &ours, None, stored(&ours)), CONSENT_WITHDRAW_NO_STATEMENT);
        assert_eq!(
            write(&lead, &withdrawn, &ours, Some("Consent.sourceAttachment created 2026-12-01"), stored(&ours)),
            CONSENT_WITHDRAW_WITH_STATEMENT
        );
        // Reading: the custodians only.
        assert_eq!(decide_consent_read(&lead, &ours, &teams, day).rule, CONSENT_READ);
        assert_eq!(decide_consent_read(&lead, &theirs, &teams, day).rule, CONSENT_READ_OTHER_ORGANISATION);
    }

    #[test]
    fn what_weakens_an_objection() {
        let old = objection(true, Some(&[DataCategory::Lifestyle]), &[], None);
        assert!(!weakens(&old, &old.clone()));
        assert!(weakens(&old, &objection(false, Some(&[DataCategory::Lifestyle]), &[], None)));
        assert!(weakens(&old, &objection(true, Some(&[DataCategory::Alerts]), &[], None)));
        assert!(weakens(&old, &objection(true, Some(&[DataCategory::Lifestyle]), &["1"], None)));
        assert!(weakens(&old, &objection(true, Some(&[DataCategory::Lifestyle]), &[], Some("2027-01-01"))));
        assert!(!weakens(&old, &objection(true, None, &[], None)), "broader is not weaker");
        assert!(!weakens(&old, &objection(true, Some(&[DataCategory::Lifestyle, DataCategory::Alerts]), &[], None)));
        let inactive = objection(false, None, &[], None);
        assert!(!weakens(&inactive, &objection(false, None, &[], None)));
    }
}
