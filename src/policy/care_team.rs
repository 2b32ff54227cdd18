//! Care teams (nl-core-CareTeam) and the GZSP rules checked when a team is saved.
//!
//! A [`CareTeam`] is one patient's multidisciplinary team at one GZSP provider: who is the
//! [`LeadPractitioner`] (regiebehandelaar, participant role `RESP`), who are co-practitioners
//! and supporting disciplines, for which periods, whether the treatment is active or ended
//! (and why), which form of care it is, and when the plan is next evaluated. Access
//! decisions ([`crate::policy::team_access`]) are made from this model, so it is parsed strictly:
//! a team the rules reject is never stored.
//!
//! FHIR representation (what `PUT /fhir/CareTeam` accepts and `GET` returns):
//!
//! | concept | element |
//! |---|---|
//! | patient | `subject.identifier` (BSN) |
//! | provider | `managingOrganization[0].identifier` (URA) |
//! | treatment period | `period` (dates) |
//! | treatment state | `status` `active` or `inactive` (ended) + extension [`EXT_EXIT_REASON`] |
//! | care form | `category` coding in [`CARE_FORM_SYSTEM`] |
//! | next six-monthly evaluation | extension [`EXT_NEXT_EVALUATION`] (`valueDate`) |
//! | member | `participant`: `member.identifier` (UZI number), `member.display`, `onBehalfOf.identifier` (URA), `period` |
//! | member role | `participant.role`: one coding `RESP` (v3 ParticipationType) or [`ROLE_SYSTEM`] `co-practitioner` / `supporting-discipline`, and one coding in the UZI role-code system |
//! | BIG number | extension [`EXT_BIG`] on the participant (`valueIdentifier`) |
//!
//! Why our own codes for co-practitioner and supporting discipline: v3 ParticipationType has
//! no code that separates an independently qualified co-practitioner (medebehandelaar) from
//! a supporting discipline deployed on the lead's indication (SPRF and ATND both fit either),
//! and the access matrix depends on exactly that difference.
//!
//! Participants that are not health professionals (the patient, a contact person) may be
//! present and are kept out of the member list: they never get access through a team.

use chrono::{Months, NaiveDate};
use serde_json::{json, Map, Value};

use super::consent::day_prefix;
use super::roles;
use super::{array, resource_id, DayPeriod};
use crate::diagnostics::{Issue, IssueCode, Outcome, Severity};
use crate::model::Bsn;
use crate::model::{Ura, Uzi, UziRoleCode};
use crate::terminology::uri;

pub const CARE_TEAM_PROFILE: &str = "http://nictiz.nl/fhir/StructureDefinition/nl-core-CareTeam";
/// v3 ParticipationType: `RESP` marks the lead practitioner.
pub const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// Our code system for the two other member roles (`profiles/CodeSystem-care-team-role.json`).
pub const ROLE_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/care-team-role";
/// Our code system of GZSP exit criteria (`profiles/CodeSystem-gzsp-exit-reason.json`).
pub const EXIT_REASON_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/gzsp-exit-reason";
/// Our code system of GZSP care forms (`profiles/CodeSystem-gzsp-care-form.json`).
pub const CARE_FORM_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/gzsp-care-form";
pub const EXT_EXIT_REASON: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/care-team-exit-reason";
pub const EXT_NEXT_EVALUATION: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/care-team-next-evaluation";
pub const EXT_BIG: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/care-team-participant-big";

/// The role of a member in the team; it decides the member's column in the access matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberRole {
    /// Regiebehandelaar: directs the plan; `RESP`.
    LeadPractitioner,
    /// Medebehandelaar: independently qualified for their part of the plan.
    CoPractitioner,
    /// Ondersteunende discipline: deployed on the lead's indication.
    SupportingDiscipline,
}

impl MemberRole {
    pub const ALL: [MemberRole; 3] =
        [MemberRole::LeadPractitioner, MemberRole::CoPractitioner, MemberRole::SupportingDiscipline];

    /// The key of this role in the access matrix (`policies/access-config.json`).
    pub fn key(self) -> &'static str {
        match self {
            MemberRole::LeadPractitioner => "lead-practitioner",
            MemberRole::CoPractitioner => "co-practitioner",
            MemberRole::SupportingDiscipline => "supporting-discipline",
        }
    }

    /// `(system, code)` of the role coding.
    pub fn coding(self) -> (&'static str, &'static str) {
        match self {
            MemberRole::LeadPractitioner => (PARTICIPATION_TYPE, "RESP"),
            MemberRole::CoPractitioner => (ROLE_SYSTEM, "co-practitioner"),
            MemberRole::SupportingDiscipline => (ROLE_SYSTEM, "supporting-discipline"),
        }
    }

    /// The role of a matrix key (`lead-practitioner`, ...).
    pub fn from_key(key: &str) -> Option<MemberRole> {
        MemberRole::ALL.into_iter().find(|r| r.key() == key)
    }

    fn from_coding(system: &str, code: &str) -> Option<MemberRole> {
        MemberRole::ALL.into_iter().find(|r| r.coding() == (system, code))
    }
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $( $variant:ident => $code:literal, $display:literal ;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $variant, )* }
        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];
            pub fn code(self) -> &'static str { match self { $( $name::$variant => $code, )* } }
            pub fn display(self) -> &'static str { match self { $( $name::$variant => $display, )* } }
            pub fn from_code(code: &str) -> Option<$name> {
                match code { $( $code => Some($name::$variant), )* _ => None }
            }
        }
    };
}

code_enum! {
    /// Why a GZSP treatment ended: the exit criteria of the insurers' principles (DOMAIN.md).
    ExitReason {
        GoalReached => "goal-reached", "Treatment goal reached, no follow-up goal";
        RegularFirstLine => "regular-first-line", "Care can move to regular first-line care";
        GoalNotReached => "goal-not-reached", "Treatment goal is not being reached (e.g. decline)";
        CannotFunctionInGroup => "cannot-function-in-group", "Patient can no longer function in a group";
        ParticipationTooBurdensome => "participation-too-burdensome", "Participation is too burdensome";
        CannotTravelSafely => "cannot-travel-safely", "Patient can no longer travel safely";
        SafetyAtRisk => "safety-at-risk", "Safety is at risk";
        ClinicalAdmission => "clinical-admission", "Clinical admission";
        TwentyFourHourCare => "24-hour-care", "24-hour care or supervision needed";
        NoSelfDirection => "no-self-direction", "No longer able to direct own life (eigen regie)";
        WlzIndication => "wlz-indication", "Long-term care (Wlz) indication";
    }
}

code_enum! {
    /// The form of GZSP care (DOMAIN.md, "Forms of care"), one set of codes for the care team
    /// (`CareTeam.category`) and the handover (`care-form`): individual care by discipline, or
    /// group care in one of its four forms. `individual` is individual care without the
    /// discipline (the code care teams used first; it is kept so that they stay valid). SGLVG
    /// matters for the psychiatrist rule, individual care for the evaluation rule.
    CareForm {
        Individual => "individual", "Individual care (discipline not stated)";
        IndividualSo => "individual-so", "Individual care by a specialist in geriatric medicine (SO)";
        IndividualAvg => "individual-avg", "Individual care by a physician for people with intellectual disabilities (AVG)";
        IndividualBehavioural => "individual-behavioural", "Individual care by a behavioural scientist";
        IndividualAlliedHealth => "individual-allied-health", "Individual care by an allied health professional";
        GroupFrail => "group-frail", "Group care for frail patients";
        GroupLgNah => "group-lg-nah", "Group care for physical disability or acquired brain injury (LG/NAH)";
        GroupHuntington => "group-huntington", "Group care for Huntington's disease";
        GroupSglvg => "group-sglvg", "Group care for severe behavioural problems with a mild intellectual disability (SGLVG)";
    }
}

impl CareForm {
    pub fn is_group(self) -> bool {
        !self.is_individual()
    }

    pub fn is_individual(self) -> bool {
        matches!(
            self,
            CareForm::Individual
                | CareForm::IndividualSo
                | CareForm::IndividualAvg
                | CareForm::IndividualBehavioural
                | CareForm::IndividualAlliedHealth
        )
    }
}

/// Whether the treatment runs or has ended, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreatmentState {
    Active,
    /// Ended on the team's `period.end` for this reason.
    Ended {
        reason: ExitReason,
    },
}

/// One health professional in the team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub role: MemberRole,
    /// UZI number of the person (`uzi-nr-pers`).
    pub uzi: Uzi,
    /// UZI role code (`01.047`, ...), the profession as the UZI register states it.
    pub uzi_role: UziRoleCode,
    pub big: Option<String>,
    /// URA of the organisation the member acts for.
    pub organisation_ura: Ura,
    pub name: Option<String>,
    pub period: DayPeriod,
    /// Position in `CareTeam.participant`, for error paths.
    pub participant_index: usize,
}

impl TeamMember {
    fn path(&self) -> String {
        format!("CareTeam.participant[{}]", self.participant_index)
    }
}

/// The lead practitioner (regiebehandelaar) of a team: a view on the member with role `RESP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadPractitioner<'a>(pub &'a TeamMember);

impl std::ops::Deref for LeadPractitioner<'_> {
    type Target = TeamMember;
    fn deref(&self) -> &TeamMember {
        self.0
    }
}

/// A patient's multidisciplinary team at one GZSP provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareTeam {
    pub id: String,
    pub name: Option<String>,
    pub patient: Bsn,
    /// URA of the GZSP provider that manages the team (the receiver of the handovers).
    pub organisation_ura: Ura,
    pub period: DayPeriod,
    pub state: TreatmentState,
    pub care_form: CareForm,
    pub next_evaluation: Option<NaiveDate>,
    pub members: Vec<TeamMember>,
}

impl CareTeam {
    /// The lead practitioner on `day`, if exactly one lead's membership covers that day.
    pub fn lead_practitioner(&self, day: NaiveDate) -> Option<LeadPractitioner<'_>> {
        let mut leads =
            self.members.iter().filter(|m| m.role == MemberRole::LeadPractitioner && m.period.contains(day));
        match (leads.next(), leads.next()) {
            (Some(one), None) => Some(LeadPractitioner(one)),
            _ => None,
        }
    }

    /// The day the treatment ended, if it has.
    pub fn ended_on(&self) -> Option<NaiveDate> {
        match self.state {
            TreatmentState::Active => None,
            TreatmentState::Ended { .. } => self.period.end,
        }
    }

    /// Reads a FHIR R4 CareTeam. Structural problems come back as issues with FHIRPath
    /// expressions; the GZSP rules are [`CareTeam::check`].
    pub fn from_fhir(v: &Value) -> Result<CareTeam, Outcome> {
        let mut out = Outcome::new();
        let Some(id) = resource_id(v, "CareTeam", &mut out) else {
            return Err(out);
        };
        let mut err = |path: &str, code: IssueCode, msg: String| {
            out.push(Issue::error(code, msg).at(path));
        };
        if !array(&v["meta"]["profile"]).iter().any(|p| p == CARE_TEAM_PROFILE) {
            err("CareTeam.meta.profile", IssueCode::Required, format!("claim the profile {CARE_TEAM_PROFILE}"));
        }
        let patient = match identifier_value(&v["subject"], uri::BSN) {
            Some(s) => Bsn::parse(s)
                .map_err(|e| err("CareTeam.subject.identifier.value", IssueCode::Value, e.to_string()))
                .ok(),
            None => {
                err(
                    "CareTeam.subject.identifier",
                    IssueCode::Required,
                    format!("the patient is identified by BSN ({})", uri::BSN),
                );
                None
            }
        };
        let organisation_ura =
            match array(&v["managingOrganization"]).first().and_then(|o| identifier_value(o, uri::URA)) {
                Some(u) if Ura::parse(u).is_ok_and(|p| p == u) => Ura::parse(u).ok(),
                _ => {
                    err(
                        "CareTeam.managingOrganization[0].identifier",
                        IssueCode::Required,
                        format!("the managing GZSP provider is identified by its eight-digit URA ({})", uri::URA),
                    );
                    None
                }
            };
        let period = read_period(&v["period"], "CareTeam.period", true, &mut err);
        let exit = extension(v, EXT_EXIT_REASON).map(|e| {
            let c = &e["valueCoding"];
            match (c["system"].as_str(), c["code"].as_str().and_then(ExitReason::from_code)) {
                (Some(EXIT_REASON_SYSTEM), Some(r)) => Some(r),
                _ => {
                    err(
                        "CareTeam.extension('care-team-exit-reason').valueCoding",
                        IssueCode::CodeInvalid,
                        format!(
                            "the exit reason is a code of {EXIT_REASON_SYSTEM}: {}",
                            codes(ExitReason::ALL.iter().map(|r| r.code()))
                        ),
                    );
                    None
                }
            }
        });
        let state = match (v["status"].as_str(), exit) {
            (Some("active"), None) => Some(TreatmentState::Active),
            (Some("active"), Some(_)) => {
                err(
                    "CareTeam.extension('care-team-exit-reason')",
                    IssueCode::Invariant,
                    "an active team has no exit reason; set status to 'inactive' to end the treatment [team.ended]"
                        .into(),
                );
                None
            }
            (Some("inactive"), Some(Some(reason))) => Some(TreatmentState::Ended { reason }),
            (Some("inactive"), Some(None)) => None,
            (Some("inactive"), None) => {
                err(
                    "CareTeam.extension('care-team-exit-reason')",
                    IssueCode::Required,
                    "an ended treatment states its exit reason [team.ended]".into(),
                );
                None
            }
            (other, _) => {
                err(
                    "CareTeam.status",
                    IssueCode::Value,
                    format!("status is 'active' (treatment runs) or 'inactive' (treatment ended), not {other:?}"),
                );
                None
            }
        };
        if let (Some(TreatmentState::Ended { .. }), Some(p)) = (state, period) {
            if p.end.is_none() {
                err(
                    "CareTeam.period.end",
                    IssueCode::Required,
                    "an ended treatment has an end date [team.ended]".into(),
                );
            }
        }
        let care_forms: Vec<Option<CareForm>> = array(&v["category"])
            .iter()
            .flat_map(|c| array(&c["coding"]))
            .filter(|c| c["system"] == CARE_FORM_SYSTEM)
            .map(|c| c["code"].as_str().and_then(CareForm::from_code))
            .collect();
        let care_form = match care_forms.as_slice() {
            [Some(f)] => Some(*f),
            _ => {
                err(
                    "CareTeam.category",
                    IssueCode::Required,
                    format!(
                        "exactly one care form of {CARE_FORM_SYSTEM}: {}",
                        codes(CareForm::ALL.iter().map(|f| f.code()))
                    ),
                );
                None
            }
        };
        let next_evaluation = match extension(v, EXT_NEXT_EVALUATION) {
            None => None,
            Some(e) => match e["valueDate"].as_str().and_then(|d| d.parse::<NaiveDate>().ok()) {
                Some(d) => Some(d),
                None => {
                    err(
                        "CareTeam.extension('care-team-next-evaluation').valueDate",
                        IssueCode::Value,
                        "the next evaluation is a full date (YYYY-MM-DD)".into(),
                    );
                    None
                }
            },
        };
        let mut members = Vec::new();
        for (i, p) in array(&v["participant"]).iter().enumerate() {
            if let Some(m) = read_member(i, p, &mut err) {
                members.push(m);
            }
        }
        match (patient, period, state, care_form, organisation_ura, out.has_errors()) {
            (Some(patient), Some(period), Some(state), Some(care_form), Some(organisation_ura), false) => {
                Ok(CareTeam {
                    id,
                    name: v["name"].as_str().map(str::to_owned),
                    patient,
                    organisation_ura,
                    period,
                    state,
                    care_form,
                    next_evaluation,
                    members,
                })
            }
            _ => Err(out),
        }
    }

    /// This team as a FHIR R4 nl-core-CareTeam.
    pub fn to_fhir(&self) -> Value {
        let mut v = json!({
            "resourceType": "CareTeam",
            "id": self.id,
            "meta": {"profile": [CARE_TEAM_PROFILE]},
        });
        let mut ext = Vec::new();
        if let TreatmentState::Ended { reason } = self.state {
            ext.push(json!({"url": EXT_EXIT_REASON, "valueCoding": {"system": EXIT_REASON_SYSTEM, "code": reason.code(), "display": reason.display()}}));
        }
        if let Some(d) = self.next_evaluation {
            ext.push(json!({"url": EXT_NEXT_EVALUATION, "valueDate": d.to_string()}));
        }
        if !ext.is_empty() {
            v["extension"] = Value::Array(ext);
        }
        v["status"] = json!(match self.state {
            TreatmentState::Active => "active",
            TreatmentState::Ended { .. } => "inactive",
        });
        v["category"] = json!([{"coding": [{"system": CARE_FORM_SYSTEM, "code": self.care_form.code(), "display": self.care_form.display()}]}]);
        if let Some(n) = &self.name {
            v["name"] = json!(n);
        }
        v["subject"] = json!({"type": "Patient", "identifier": {"system": uri::BSN, "value": self.patient.as_str()}});
        v["period"] = period_json(&self.period);
        v["participant"] = self
            .members
            .iter()
            .map(|m| {
                let (system, code) = m.role.coding();
                let mut member =
                    json!({"type": "PractitionerRole", "identifier": {"system": uri::UZI_PERSON, "value": m.uzi}});
                if let Some(n) = &m.name {
                    member["display"] = json!(n);
                }
                let mut p = Map::new();
                if let Some(big) = &m.big {
                    p.insert(
                        "extension".into(),
                        json!([{"url": EXT_BIG, "valueIdentifier": {"system": uri::BIG, "value": big}}]),
                    );
                }
                p.insert(
                    "role".into(),
                    json!([
                        {"coding": [{"system": system, "code": code}]},
                        {"coding": [{"system": uri::UZI_ROLE, "code": m.uzi_role, "display": roles::name(&m.uzi_role)}]}
                    ]),
                );
                p.insert("member".into(), member);
                p.insert(
                    "onBehalfOf".into(),
                    json!({"type": "Organization", "identifier": {"system": uri::URA, "value": m.organisation_ura}}),
                );
                p.insert("period".into(), period_json(&m.period));
                Value::Object(p)
            })
            .collect();
        v["managingOrganization"] =
            json!([{"type": "Organization", "identifier": {"system": uri::URA, "value": self.organisation_ura}}]);
        v
    }

    /// Whether `m` may be this team's lead practitioner by profession (rule
    /// `team.lead-eligible`, DOMAIN.md): `Ok` with why, or `Err` with why not.
    pub fn lead_eligibility(&self, m: &TeamMember) -> Result<String, String> {
        if roles::ELIGIBLE_LEADS.contains(&m.uzi_role.as_str()) {
            Ok(format!("a {} (UZI role {}) may be lead practitioner", roles::name(&m.uzi_role), m.uzi_role))
        } else if m.uzi_role == roles::PSYCHIATRIST && self.care_form == CareForm::GroupSglvg {
            Ok("a psychiatrist may be lead practitioner in SGLVG group care".to_owned())
        } else if m.uzi_role == roles::PSYCHIATRIST {
            Err(format!(
                "a psychiatrist is lead practitioner only in SGLVG group care; this team's care form is '{}'",
                self.care_form.code()
            ))
        } else {
            Err(format!("a {} (UZI role {}) cannot be lead practitioner; eligible: SO 01.047, AVG 01.056, GZ-psycholoog 25.000, klinisch psycholoog 25.061, klinisch neuropsycholoog 25.063, orthopedagoog-generalist 31.000, and psychiatrist 01.035 for SGLVG", roles::name(&m.uzi_role), m.uzi_role))
        }
    }

    /// Whether the six-monthly evaluation rule does not apply: individual care led by an SO
    /// or AVG (DOMAIN.md; rule `team.evaluation`).
    pub fn evaluation_exempt(&self, today: NaiveDate) -> bool {
        self.care_form.is_individual()
            && self.lead_practitioner(today).is_some_and(|l| roles::is_so_or_avg(&l.uzi_role))
    }

    /// The GZSP rules, as they stand on `today`. Each issue names its rule id in brackets
    /// and points at the participant or element concerned.
    pub fn check(&self, today: NaiveDate) -> Outcome {
        let mut out = Outcome::new();
        let rule = |sev: Severity, code: IssueCode, at: String, id: &str, msg: String| {
            Issue::new(sev, code, format!("{msg} [{id}]")).at(at)
        };
        let active = self.state == TreatmentState::Active;
        let leads: Vec<&TeamMember> = self.members.iter().filter(|m| m.role == MemberRole::LeadPractitioner).collect();

        // team.lead-count: exactly one lead practitioner while the treatment is active.
        if active {
            let current: Vec<&&TeamMember> = leads.iter().filter(|m| m.period.contains(today)).collect();
            match current.len() {
                1 => {}
                0 => out.push(rule(Severity::Error, IssueCode::BusinessRule, "CareTeam.participant".into(), "team.lead-count",
                    format!("an active team has exactly one lead practitioner (participant role RESP) on {today}; it has none"))),
                n => out.push(rule(Severity::Error, IssueCode::BusinessRule, current[1].path(), "team.lead-count",
                    format!("an active team has exactly one lead practitioner on {today}; it has {n}"))),
            }
        }
        for (i, a) in leads.iter().enumerate() {
            for b in &leads[i + 1..] {
                if a.period.overlaps(&b.period) {
                    out.push(rule(Severity::Error, IssueCode::BusinessRule, format!("{}.period", b.path()), "team.lead-count",
                        format!("lead practitioners {} and {} overlap in time; a handover of the lead role ends one membership before the next starts", a.uzi, b.uzi)));
                }
            }
        }

        // team.lead-eligible: the lead's profession, by UZI role code.
        for m in &leads {
            if let Err(why) = self.lead_eligibility(m) {
                out.push(rule(
                    Severity::Error,
                    IssueCode::BusinessRule,
                    format!("{}.role", m.path()),
                    "team.lead-eligible",
                    why,
                ));
            }
        }

        // team.supervision: a VS or PA works under a supervising SO or AVG in the team.
        for m in self.members.iter().filter(|m| roles::needs_supervision(&m.uzi_role)) {
            let supervisors: Vec<&TeamMember> =
                self.members.iter().filter(|s| roles::is_so_or_avg(&s.uzi_role) && s.uzi != m.uzi).collect();
            let overlapping = supervisors.iter().any(|s| s.period.overlaps(&m.period));
            let now_ok = !(active && m.period.contains(today)) || supervisors.iter().any(|s| s.period.contains(today));
            if !overlapping || !now_ok {
                out.push(rule(Severity::Error, IssueCode::BusinessRule, format!("{}.role", m.path()), "team.supervision",
                    format!("a {} delivers SO/AVG care only under the supervision of an SO (01.047) or AVG (01.056) in the same team and period; add one", roles::name(&m.uzi_role))));
            }
        }

        // team.evaluation: the plan states its next multidisciplinary evaluation, at most
        // six months ahead (individual SO/AVG care excepted).
        if active {
            let so_avg_individual = self.evaluation_exempt(today);
            match self.next_evaluation {
                None if !so_avg_individual => out.push(rule(Severity::Error, IssueCode::Required, "CareTeam.extension('care-team-next-evaluation')".into(), "team.evaluation",
                    "the plan is evaluated at least every six months; state the date of the next evaluation (only individual SO/AVG care is excepted)".into())),
                None => {}
                Some(d) => {
                    let limit = today.checked_add_months(Months::new(6)).unwrap_or(NaiveDate::MAX);
                    if d > limit && !so_avg_individual {
                        out.push(rule(Severity::Error, IssueCode::BusinessRule, "CareTeam.extension('care-team-next-evaluation').valueDate".into(), "team.evaluation",
                            format!("the next evaluation ({d}) is more than six months away (latest {limit})")));
                    } else if d < today {
                        out.push(rule(Severity::Warning, IssueCode::BusinessRule, "CareTeam.extension('care-team-next-evaluation').valueDate".into(), "team.evaluation",
                            format!("the evaluation planned for {d} is overdue; record it and set the next date")));
                    }
                }
            }
        }

        // team.individual-plan: behavioural scientists and allied professionals in
        // individual care work within a plan under an SO or AVG (or a recognised programme).
        if self.care_form.is_individual() {
            if let Some(lead) = self.lead_practitioner(today) {
                if !roles::is_so_or_avg(&lead.uzi_role)
                    && !self.members.iter().any(|m| roles::is_so_or_avg(&m.uzi_role))
                {
                    out.push(rule(Severity::Warning, IssueCode::BusinessRule, format!("{}.role", lead.path()), "team.individual-plan",
                        "individual care by a behavioural scientist is GZSP only within a multidisciplinary plan under an SO or AVG, or a recognised programme (Hersenz, FACT-LVB, young people with dementia)".into()));
                }
            }
        }

        // member.period: memberships lie within the team's period.
        for m in &self.members {
            if !self.period.covers(&m.period) {
                out.push(rule(
                    Severity::Error,
                    IssueCode::BusinessRule,
                    format!("{}.period", m.path()),
                    "member.period",
                    format!(
                        "member {}'s period lies outside the team's period ({} to {})",
                        m.uzi,
                        self.period.start,
                        self.period.end.map_or("open".to_owned(), |e| e.to_string())
                    ),
                ));
            }
        }

        // member.duplicate: one person, one membership at a time.
        for (i, a) in self.members.iter().enumerate() {
            if let Some(b) = self.members[i + 1..].iter().find(|b| b.uzi == a.uzi && b.period.overlaps(&a.period)) {
                out.push(rule(
                    Severity::Error,
                    IssueCode::Duplicate,
                    b.path(),
                    "member.duplicate",
                    format!(
                        "UZI {} is a member twice in overlapping periods; one person has one role at a time",
                        a.uzi
                    ),
                ));
            }
        }

        // team.ended: an active team whose period is over must be ended with a reason.
        if let (true, Some(end)) = (active, self.period.end) {
            if end < today {
                out.push(rule(Severity::Error, IssueCode::BusinessRule, "CareTeam.status".into(), "team.ended",
                    format!("the treatment period ended on {end} but the team is still active; set status 'inactive' with an exit reason")));
            }
        }
        out
    }
}

/// Reads a CareTeam and applies the GZSP rules: `Ok` with the team and its warnings, or
/// `Err` with every structural and rule error (the team must then not be saved).
pub fn check_care_team(v: &Value, today: NaiveDate) -> Result<(CareTeam, Outcome), Outcome> {
    let team = CareTeam::from_fhir(v)?;
    let outcome = team.check(today);
    if outcome.has_errors() {
        Err(outcome)
    } else {
        Ok((team, outcome))
    }
}

fn read_member(i: usize, p: &Value, err: &mut impl FnMut(&str, IssueCode, String)) -> Option<TeamMember> {
    let path = format!("CareTeam.participant[{i}]");
    let uzi = identifier_value(&p["member"], uri::UZI_PERSON);
    let member_type = p["member"]["type"].as_str().unwrap_or_default();
    if uzi.is_none() && matches!(member_type, "Patient" | "RelatedPerson") {
        return None; // not a health professional: never a member for access
    }
    let role_codings: Vec<(&str, &str)> = array(&p["role"])
        .iter()
        .flat_map(|r| array(&r["coding"]))
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?)))
        .collect();
    let roles_found: Vec<MemberRole> = role_codings.iter().filter_map(|(s, c)| MemberRole::from_coding(s, c)).collect();
    let uzi_roles: Vec<&str> = role_codings.iter().filter(|(s, _)| *s == uri::UZI_ROLE).map(|(_, c)| *c).collect();
    let mut ok = true;
    let mut fail = |at: &str, code: IssueCode, msg: String| {
        ok = false;
        err(at, code, msg);
    };
    let uzi = match uzi {
        Some(u) if Uzi::parse(u).is_ok() => Uzi::parse(u).ok(),
        _ => {
            fail(
                &format!("{path}.member.identifier"),
                IssueCode::Required,
                format!("a member is identified by UZI number ({}), digits only", uri::UZI_PERSON),
            );
            None
        }
    };
    let role = match roles_found.as_slice() {
        [r] => Some(*r),
        _ => {
            fail(&format!("{path}.role"), IssueCode::Required,
                format!("a member has exactly one team role: RESP ({PARTICIPATION_TYPE}) for the lead practitioner, or co-practitioner / supporting-discipline ({ROLE_SYSTEM})"));
            None
        }
    };
    let uzi_role = match uzi_roles.as_slice() {
        [c] if roles::is_well_formed(c) => UziRoleCode::parse(c).ok(),
        _ => {
            fail(
                &format!("{path}.role"),
                IssueCode::Required,
                format!("a member has exactly one UZI role code ({}), e.g. 01.047", uri::UZI_ROLE),
            );
            None
        }
    };
    let big = match extension(p, EXT_BIG) {
        None => None,
        Some(e) => match e["valueIdentifier"]["value"].as_str() {
            Some(b) if b.len() == 11 && b.bytes().all(|c| c.is_ascii_digit()) => Some(b.to_owned()),
            _ => {
                fail(
                    &format!("{path}.extension('care-team-participant-big')"),
                    IssueCode::Value,
                    "a BIG number has eleven digits".into(),
                );
                None
            }
        },
    };
    let organisation_ura = match identifier_value(&p["onBehalfOf"], uri::URA) {
        Some(u) if Ura::parse(u).is_ok_and(|p| p == u) => Ura::parse(u).ok(),
        _ => {
            fail(
                &format!("{path}.onBehalfOf.identifier"),
                IssueCode::Required,
                format!("a member acts for an organisation identified by its eight-digit URA ({})", uri::URA),
            );
            None
        }
    };
    let period = read_period(&p["period"], &format!("{path}.period"), true, &mut fail);
    match (ok, role, period, uzi, uzi_role, organisation_ura) {
        (true, Some(role), Some(period), Some(uzi), Some(uzi_role), Some(organisation_ura)) => Some(TeamMember {
            role,
            uzi,
            uzi_role,
            big,
            organisation_ura,
            name: p["member"]["display"].as_str().map(str::to_owned),
            period,
            participant_index: i,
        }),
        _ => None,
    }
}

fn read_period(
    v: &Value,
    path: &str,
    start_required: bool,
    err: &mut impl FnMut(&str, IssueCode, String),
) -> Option<DayPeriod> {
    let start = v["start"].as_str().and_then(day_prefix);
    let end = match v["end"].as_str() {
        None => Ok(None),
        Some(s) => day_prefix(s).map(Some).ok_or(()),
    };
    match (start, end) {
        (Some(s), Ok(Some(e))) if e < s => {
            err(&format!("{path}.end"), IssueCode::Value, format!("the period ends ({e}) before it starts ({s})"));
            None
        }
        (Some(s), Ok(e)) => Some(DayPeriod::new(s, e)),
        (_, Err(())) => {
            err(&format!("{path}.end"), IssueCode::Value, "the end is a date (YYYY-MM-DD)".into());
            None
        }
        (None, _) => {
            if start_required {
                err(&format!("{path}.start"), IssueCode::Required, "the period has a start date (YYYY-MM-DD)".into());
            }
            None
        }
    }
}

fn period_json(p: &DayPeriod) -> Value {
    let mut v = json!({"start": p.start.to_string()});
    if let Some(e) = p.end {
        v["end"] = json!(e.to_string());
    }
    v
}

fn extension<'a>(v: &'a Value, url: &str) -> Option<&'a Value> {
    array(&v["extension"]).iter().find(|e| e["url"] == url)
}

/// `reference.identifier.value` when its system is `system`.
fn identifier_value<'a>(reference: &'a Value, system: &str) -> Option<&'a str> {
    let i = &reference["identifier"];
    (i["system"] == system).then(|| i["value"].as_str()).flatten()
}

fn codes<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}
