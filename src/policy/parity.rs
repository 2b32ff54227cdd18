//! The decision table of the access policy, and the proof that the native fast path
//! decides every cell of it as the Rego policy does.
//!
//! The native engine ([`super::native`]) is the shipped Rego policy compiled by hand; it
//! reads the same configuration (`access-config.json`). The shipped configuration is held to
//! the Rego by the test suite. A provider who adapts only the configuration keeps the shipped
//! Rego, but the tests never saw that configuration: so at start the engine runs the whole
//! table below through both evaluators with the configuration in force ([`prove`]) and uses
//! the fast path only when every cell agrees; otherwise it decides with Rego and says so
//! ([`super::team_access::PolicyPath`]).
//!
//! The table: who asks (lead practitioner, co-practitioner, supporting discipline, not a
//! member) × every data category × the membership (not started, current, ended) × the
//! treatment (active, ended within the grace period, ended after it) × the patient's
//! consent (none, objection to two categories, objection to the requester) × the agreement
//! (in force, expired, absent) × break-the-glass (no, with a reason). [`prove`] adds cells
//! for every purpose of use (configured or not) and for break-the-glass by a profession the
//! shipped policy does not name.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};

use super::agreement::Agreement;
use super::care_team::{CareForm, CareTeam, ExitReason, MemberRole, TeamMember, TreatmentState};
use super::consent::{ConsentKind, PatientConsent};
use super::team_access::{AccessDecision, AccessRequest, PolicyEngine, Requested, Requester};
use super::DayPeriod;
use crate::model::{Bsn, DataCategory, Ura, Uzi, UziRoleCode};

/// The organisation of the table's team and requester.
pub const PROVIDER: &str = "11112222";
/// The day every cell is decided on.
pub const DAY: &str = "2026-06-15";
/// The requester's UZI number.
pub const REQUESTER_UZI: &str = "900000001";
/// The table's patient.
pub const PATIENT_BSN: &str = "999911120";
/// The categories the table's patient objects to (in the ObjectionToCategories column).
pub const OBJECTED: [DataCategory; 2] = [DataCategory::Alerts, DataCategory::Lifestyle];
/// The table's agreement covers every category except this one.
pub const NOT_AGREED: DataCategory = DataCategory::Appointments;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Lead,
    Co,
    Supporting,
    NotMember,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Before,
    During,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    Active,
    EndedWithinGrace,
    EndedPastGrace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    None,
    ObjectionToCategories,
    ObjectionToMember,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementState {
    Valid,
    Expired,
    Absent,
}

/// One cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub role: Role,
    pub category: DataCategory,
    pub membership: Membership,
    pub treatment: Treatment,
    pub consent: Consent,
    pub agreement: AgreementState,
    pub break_glass: bool,
    /// The UZI role code in the token (and recorded in the team for the requester).
    pub token_role: &'static str,
}

/// Every cell of the table (4 × categories × 3 × 3 × 3 × 3 × 2).
pub fn all_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for role in [Role::Lead, Role::Co, Role::Supporting, Role::NotMember] {
        for &category in DataCategory::ALL {
            for membership in [Membership::Before, Membership::During, Membership::After] {
                for treatment in [Treatment::Active, Treatment::EndedWithinGrace, Treatment::EndedPastGrace] {
                    for consent in [Consent::None, Consent::ObjectionToCategories, Consent::ObjectionToMember] {
                        for agreement in [AgreementState::Valid, AgreementState::Expired, AgreementState::Absent] {
                            for break_glass in [false, true] {
                                cells.push(Cell {
                                    role,
                                    category,
                                    membership,
                                    treatment,
                                    consent,
                                    agreement,
                                    break_glass,
                                    token_role: "01.047",
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    cells
}

/// The facts of one cell: the patient's team, agreements and consents, and the requester.
#[derive(Debug, Clone)]
pub struct Case {
    pub patient: Bsn,
    pub team: CareTeam,
    pub agreements: Vec<Agreement>,
    pub consents: Vec<PatientConsent>,
    pub requester: Requester,
    pub requested: Requested,
    pub day: NaiveDate,
}

impl Case {
    pub fn request(&self) -> AccessRequest<'_> {
        AccessRequest {
            requester: &self.requester,
            patient: &self.patient,
            teams: std::slice::from_ref(&self.team),
            agreements: &self.agreements,
            consents: &self.consents,
            day: self.day,
            requested: &self.requested,
        }
    }
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_default()
}

/// The facts of cell `c` under a grace period of `grace_days` (the treatment ended 10 days
/// before the day, or half the grace period when that is shorter; or 10 days after the
/// grace period ran out). `purpose` is the requester's purpose of use.
pub fn case(c: &Cell, grace_days: u32, purpose: &str) -> Result<Case, String> {
    let today = day(DAY);
    let minus = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(NaiveDate::MIN);
    let plus = |n: u64| today.checked_add_days(Days::new(n)).unwrap_or(NaiveDate::MAX);
    let grace = u64::from(grace_days);
    let team_end = match c.treatment {
        Treatment::Active => None,
        Treatment::EndedWithinGrace => Some(minus(grace.min(20) / 2)),
        // Long before the day when the grace period reaches further back than the calendar.
        Treatment::EndedPastGrace => Some(minus(grace + 10)),
    };
    let team_start = day("2026-01-01").min(team_end.unwrap_or(NaiveDate::MAX));
    let period = match c.membership {
        Membership::Before => DayPeriod::new(plus(5), None),
        Membership::During => DayPeriod::new(team_start, team_end),
        Membership::After => DayPeriod::new(
            team_start,
            Some(match team_end {
                Some(e) if e < minus(20) => e.checked_sub_days(Days::new(5)).unwrap_or(e).max(team_start),
                _ => minus(20),
            }),
        ),
    };
    let id = |e: crate::model::IdError| e.to_string();
    let provider = Ura::parse(PROVIDER).map_err(id)?;
    let (own_uzi, lead_uzi) = (Uzi::parse(REQUESTER_UZI).map_err(id)?, Uzi::parse("900000002").map_err(id)?);
    let (token_role, avg) = (UziRoleCode::parse(c.token_role).map_err(id)?, UziRoleCode::parse("01.056").map_err(id)?);
    let member = |uzi: &Uzi, role: MemberRole, uzi_role: &UziRoleCode, period: DayPeriod, i: usize| TeamMember {
        role,
        uzi: uzi.clone(),
        uzi_role: uzi_role.clone(),
        big: None,
        organisation_ura: provider.clone(),
        name: None,
        period,
        participant_index: i,
    };
    let mut members = vec![];
    // A membership counts only with the profession the token states: every own membership
    // records the token's role.
    let own_role = match c.role {
        Role::Lead => Some(MemberRole::LeadPractitioner),
        Role::Co => Some(MemberRole::CoPractitioner),
        Role::Supporting => Some(MemberRole::SupportingDiscipline),
        Role::NotMember => None,
    };
    if let Some(role) = own_role {
        members.push(member(&own_uzi, role, &token_role, period, 0));
    }
    if c.role != Role::Lead {
        members.push(member(&lead_uzi, MemberRole::LeadPractitioner, &avg, DayPeriod::new(team_start, team_end), 1));
    }
    let patient = Bsn::parse(PATIENT_BSN).map_err(|e| e.to_string())?;
    let team = CareTeam {
        id: "table".into(),
        name: None,
        patient: patient.clone(),
        organisation_ura: provider.clone(),
        period: DayPeriod::new(team_start, team_end),
        state: match team_end {
            None => TreatmentState::Active,
            Some(_) => TreatmentState::Ended { reason: ExitReason::GoalReached },
        },
        care_form: CareForm::GroupFrail,
        next_evaluation: Some(day("2026-07-01")),
        members,
    };
    let agreements = match c.agreement {
        AgreementState::Absent => vec![],
        state => {
            let (start, end) = match state {
                AgreementState::Valid => ("2026-01-01", "2026-12-31"),
                _ => ("2025-01-01", "2025-12-31"),
            };
            let categories: Vec<&str> =
                DataCategory::ALL.iter().filter(|c| **c != NOT_AGREED).map(|c| c.code()).collect();
            let doc = serde_json::json!({
                "format": "overdracht-agreement/1", "id": "table", "version": "1", "title": "t",
                "sender": {"name": "GP", "kind": "gp-practice", "agb": "01234567"},
                "receiver": {"name": "GZSP", "kind": "gzsp-provider", "ura": PROVIDER},
                "categories": categories, "valid": {"start": start, "end": end},
                "legal_basis": "treatment-relationship", "purpose": "p", "retention": "P20Y"
            });
            vec![Agreement::from_json(&doc.to_string(), "table").map_err(|e| e.to_string())?]
        }
    };
    let provider = Ura::parse(PROVIDER).map_err(id)?;
    let objection = |categories: Option<BTreeSet<DataCategory>>, members: BTreeSet<String>| PatientConsent {
        id: "o".into(),
        patient: patient.clone(),
        active: true,
        period: DayPeriod::new(day("2026-01-01"), None),
        kind: ConsentKind::Objection { categories, members },
        custodians: vec![provider.clone()],
    };
    let consents = match c.consent {
        Consent::None => vec![],
        Consent::ObjectionToCategories => vec![objection(Some(OBJECTED.into()), BTreeSet::new())],
        Consent::ObjectionToMember => vec![objection(None, [REQUESTER_UZI.to_owned()].into())],
    };
    let requester = Requester {
        uzi: Uzi::parse(REQUESTER_UZI).map_err(id)?,
        uzi_role: token_role.clone(),
        ura: Ura::parse(PROVIDER).map_err(id)?,
        purpose_of_use: purpose.into(),
        break_glass_reason: c.break_glass.then(|| "acute deterioration at night".to_owned()),
    };
    Ok(Case {
        patient,
        team,
        agreements,
        consents,
        requester,
        requested: Requested::Only([c.category].into()),
        day: today,
    })
}

/// Whether two decisions are the same decision. The reason of `purpose.not-permitted` quotes
/// the configured list, which each side formats in its own way; every other reason is
/// compared too.
pub fn same(native: &AccessDecision, rego: &AccessDecision) -> bool {
    if rego.rule == super::rules::PURPOSE_NOT_PERMITTED {
        (native.permit, native.rule, native.flag_for_review) == (rego.permit, rego.rule, rego.flag_for_review)
            && native.allowed_categories.is_empty()
    } else {
        native == rego
    }
}

/// The outcome of a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// Cells decided by both evaluators.
    pub cells: usize,
    /// The first cell where they differ (its number, and what each decided); the proof stops
    /// there.
    pub first_difference: Option<(usize, String)>,
}

/// Runs the whole table, plus the purpose and profession cells, through the native engine
/// and through Rego with `engine`'s configuration, until the first difference.
pub fn prove(engine: &PolicyEngine) -> Proof {
    let cfg = engine.config();
    let grace = cfg.grace_period_days;
    let first_purpose = cfg.purposes_of_use.first().cloned().unwrap_or_default();
    let mut cases: Vec<(Cell, String)> = all_cells().into_iter().map(|c| (c, first_purpose.clone())).collect();
    // Break-the-glass by a profession the shipped policy does not name (a nurse), member or not.
    let nurse: Vec<Cell> = all_cells()
        .into_iter()
        .filter(|c| c.break_glass && matches!(c.role, Role::NotMember | Role::Co))
        .map(|c| Cell { token_role: "30.000", ..c })
        .collect();
    cases.extend(nurse.into_iter().map(|c| (c, first_purpose.clone())));
    // Every purpose of use, configured or not, for a current lead and a stranger.
    let mut purposes: Vec<String> = cfg.purposes_of_use.clone();
    purposes.extend(["TREAT", "ETREAT", "COC", "HPAYMT", ""].map(str::to_owned));
    for p in purposes {
        for c in all_cells().into_iter().filter(|c| {
            c.membership == Membership::During
                && c.consent == Consent::None
                && c.agreement == AgreementState::Valid
                && matches!(c.role, Role::Lead | Role::NotMember)
        }) {
            cases.push((c, p.clone()));
        }
    }
    let mut cells = 0;
    for (c, purpose) in &cases {
        cells += 1;
        let differs = match case(c, grace, purpose) {
            Ok(case) => {
                let req = case.request();
                let (native, rego) = (engine.decide_native(&req), engine.decide_rego(&req));
                (!same(&native, &rego)).then(|| format!("{c:?} purpose {purpose:?}: native {native:?}, rego {rego:?}"))
            }
            Err(e) => Some(format!("{c:?}: the cell cannot be built ({e})")),
        };
        if let Some(d) = differs {
            return Proof { cells, first_difference: Some((cells, d)) };
        }
    }
    Proof { cells, first_difference: None }
}
