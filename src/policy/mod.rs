//! Policy: data-transfer agreements, care teams, patient consent and access decisions.
//!
//! Insurers contract a GZSP provider only when it has agreements on the transfer of medical
//! data from the GP or paediatrician, and on access to that data inside the multidisciplinary
//! team (DOMAIN.md). This module makes both executable:
//!
//! - [`agreement`]: the versioned [`Agreement`] file format and [`decide_transfer`], which
//!   refuses a handover without an agreement in force and removes the categories it does not
//!   cover (data minimisation that can be shown).
//! - [`care_team`]: the typed nl-core-CareTeam ([`CareTeam`], its [`LeadPractitioner`]) and the
//!   GZSP rules checked when a team is saved ([`check_care_team`]).
//! - [`consent`]: the patient's objections and explicit consents as FHIR Consent ([`PatientConsent`]).
//! - [`team_access`]: the read facade's engine. [`PolicyEngine`] evaluates the Rego policy in
//!   `policies/` in-process (crate `regorus`) with the access matrix as data, and returns an
//!   [`AccessDecision`]. Deny by default. `native` is the shipped policy compiled by hand,
//!   the fast path while the policy is not adapted.
//! - [`roles`]: the UZI role codes the GZSP rules depend on, in one place.
//! - [`writes`]: who may write (and read) teams and consents; [`parties`]: the sender of a
//!   handover and who reads it; [`audit_view`]: who sees which part of the audit trail;
//!   [`report_view`]: who sees the evidence report; [`purpose`]: which purposes of use may
//!   send or convert patient data. These decisions are made in Rust.
//! - [`rules`]: every rule id (engine and Rust), each declared once with its words.
//!
//! Every decision is a [`Decision`] (permit, rule id, reason), alone or inside the richer
//! [`AccessDecision`] of the facade.
//!
//! All dates here are calendar days (`chrono::NaiveDate`, inclusive periods): agreements,
//! memberships and consents are stated in days, and an instant is first turned into the
//! Europe/Amsterdam calendar day ([`day_of`]).

pub mod agreement;
pub mod audit_view;
pub mod care_team;
pub mod consent;
pub mod loaded;
mod native;
pub mod parity;
pub mod parties;
pub mod purpose;
pub mod report_view;
pub mod roles;
pub mod rules;
pub mod team_access;
pub mod writes;

use chrono::{DateTime, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};

/// The one party identifier (`ura|…`, `agb-z|…`), at home with the other identifiers.
pub use crate::model::types::PartyId;
pub use agreement::{decide_transfer, Agreement, AgreementError, TransferDecision, TransferRequest};
pub use care_team::{check_care_team, CareTeam, LeadPractitioner, MemberRole, TreatmentState};
pub use consent::{ConsentKind, PatientConsent};
pub use team_access::{AccessDecision, AccessRequest, PolicyEngine, PolicyError, PolicyPath, Requested, Requester};

/// Who acts, as the verified token states it, and whether the configuration makes that
/// person an administrator of the organisation in the token ([`Admins`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    pub uzi: &'a crate::model::Uzi,
    pub uzi_role: &'a crate::model::UziRoleCode,
    pub ura: &'a crate::model::Ura,
    pub admin: bool,
}

/// An authorisation decision: permit or deny, the rule id ([`rules`]) and a reason for the
/// audit trail. Every decision has this type: those made in Rust (team and consent writes,
/// audit views, the report, handover parties, the purpose of use) are one, and the
/// facade's [`AccessDecision`] and the audit view's [`audit_view::ViewDecision`] carry one
/// with what the permit allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub permit: bool,
    pub rule: &'static str,
    pub reason: String,
}

impl Decision {
    pub fn permit(rule: &'static str, reason: impl Into<String>) -> Decision {
        Decision { permit: true, rule, reason: reason.into() }
    }

    pub fn deny(rule: &'static str, reason: impl Into<String>) -> Decision {
        Decision { permit: false, rule, reason: reason.into() }
    }
}

/// Administrators (`policy.admins`): each a UZI number *at one organisation*, written
/// `URA:UZI`. An administrator writes the teams and consents of that organisation and sees
/// its evidence report, and only when the token names that organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admins(std::collections::BTreeSet<(String, String)>);

/// A `policy.admins` entry that is not `URA:UZI`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminsError {
    #[error("policy.admins entry {0:?} is a UZI number without its organisation; an administrator is now written URA:UZI (e.g. 11112222:{0}) for the organisation they administer (docs/configuration.md, \"policy.admins\")")]
    WithoutOrganisation(String),
    #[error("policy.admins entry {0:?} is not URA:UZI (an eight-digit URA, a colon, the UZI number's digits)")]
    Malformed(String),
}

impl Admins {
    /// Parses `URA:UZI` entries; a bare UZI number (the form of earlier versions) is refused with
    /// an error that says how to write it now.
    pub fn parse(entries: &[String]) -> Result<Admins, AdminsError> {
        use crate::model::{Ura, Uzi};
        let mut set = std::collections::BTreeSet::new();
        for e in entries {
            let e = e.trim();
            match e.split_once(':').map(|(ura, uzi)| (Ura::parse(ura), Uzi::parse(uzi))) {
                Some((Ok(ura), Ok(uzi))) => {
                    set.insert((ura.as_str().to_owned(), uzi.as_str().to_owned()));
                }
                None if Uzi::parse(e).is_ok() => return Err(AdminsError::WithoutOrganisation(e.to_owned())),
                _ => return Err(AdminsError::Malformed(e.to_owned())),
            }
        }
        Ok(Admins(set))
    }

    /// Whether UZI `uzi` is an administrator of organisation `ura`.
    pub fn is_admin(&self, ura: &str, uzi: &str) -> bool {
        self.0.iter().any(|(u, z)| u == ura && z == uzi)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An inclusive period of calendar days; an absent end is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayPeriod {
    #[serde(with = "day_serde")]
    pub start: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "day_serde::option")]
    pub end: Option<NaiveDate>,
}

/// `YYYY-MM-DD` in JSON (chrono's serde feature is not enabled in this crate).
mod day_serde {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| serde::de::Error::custom(format!("'{s}' is not a date; write YYYY-MM-DD")))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

impl DayPeriod {
    pub fn new(start: NaiveDate, end: Option<NaiveDate>) -> Self {
        DayPeriod { start, end }
    }

    /// Whether `day` lies in the period (both ends inclusive).
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && self.end.is_none_or(|e| day <= e)
    }

    /// Whether `inner` lies entirely inside this period.
    pub fn covers(&self, inner: &DayPeriod) -> bool {
        self.start <= inner.start
            && match (self.end, inner.end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(e), Some(ie)) => ie <= e,
            }
    }

    /// Whether the two periods share at least one day.
    pub fn overlaps(&self, other: &DayPeriod) -> bool {
        self.end.is_none_or(|e| other.start <= e) && other.end.is_none_or(|oe| self.start <= oe)
    }
}

/// The Europe/Amsterdam calendar day of an instant: periods in agreements, teams and consents
/// are Dutch calendar days.
pub fn day_of<Tz: TimeZone>(at: &DateTime<Tz>) -> NaiveDate {
    at.with_timezone(&chrono_tz::Europe::Amsterdam).date_naive()
}

/// Today, as the policy counts days ([`day_of`] now).
pub fn today() -> NaiveDate {
    day_of(&chrono::Utc::now())
}

/// Checks `resourceType` and returns the resource id; `None` (with the issue recorded) when
/// the document is not a `resource_type` at all, `Some("")` when only the id is missing.
pub(crate) fn resource_id(
    v: &serde_json::Value,
    resource_type: &str,
    out: &mut crate::diagnostics::Outcome,
) -> Option<String> {
    use crate::diagnostics::{Issue, IssueCode};
    if v["resourceType"] != resource_type {
        out.push(Issue::error(IssueCode::Structure, format!("expected a {resource_type} resource")).at(resource_type));
        return None;
    }
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    if id.is_empty() {
        out.push(
            Issue::error(IssueCode::Required, format!("a {resource_type} needs an id"))
                .at(format!("{resource_type}.id")),
        );
    }
    Some(id)
}

/// A JSON array's elements; nothing for anything else.
pub(crate) fn array(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn periods_are_inclusive_and_open_ended() {
        let p = DayPeriod::new(d("2025-01-01"), Some(d("2025-06-30")));
        assert!(p.contains(d("2025-01-01")) && p.contains(d("2025-06-30")));
        assert!(!p.contains(d("2024-12-31")) && !p.contains(d("2025-07-01")));
        let open = DayPeriod::new(d("2025-01-01"), None);
        assert!(open.contains(d("2099-01-01")));
        assert!(open.covers(&p) && !p.covers(&open));
        assert!(p.overlaps(&DayPeriod::new(d("2025-06-30"), None)));
        assert!(!p.overlaps(&DayPeriod::new(d("2025-07-01"), None)));
    }

    #[test]
    fn administrators_are_scoped_to_an_organisation() {
        let a = Admins::parse(&["11112222:900000900".into(), " 55556666 : 1 ".into()]).expect("admins");
        assert!(a.is_admin("11112222", "900000900") && a.is_admin("55556666", "1"));
        assert!(!a.is_admin("55556666", "900000900"), "not an administrator of another organisation");
        let e = Admins::parse(&["900000900".into()]).expect_err("old form");
        assert!(e.to_string().contains("11112222:900000900"), "{e}");
        assert!(matches!(Admins::parse(&["1111:900".into()]), Err(AdminsError::Malformed(_))));
    }

    #[test]
    fn an_instant_is_judged_on_the_dutch_calendar_day() {
        let late: DateTime<chrono::Utc> = "2025-03-31T22:30:00Z".parse().expect("instant");
        assert_eq!(day_of(&late), d("2025-04-01"));
    }
}
