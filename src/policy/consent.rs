//! The patient's say: objections to sharing and explicit consents, as FHIR Consent.
//!
//! Two kinds are understood (anything else is rejected with a clear issue rather than
//! half-understood, because a misread objection would leak data):
//!
//! - an **objection** (`provision.type = deny`, `policyRule` OPTOUT): to sharing some data
//!   categories (`provision.securityLabel`, codes of our data-category system; none listed =
//!   all data), with everyone or only with particular team members (`provision.actor`, by
//!   UZI number);
//! - an **explicit consent for an agreement** whose legal basis is consent
//!   (`provision.type = permit`, `policyRule` OPTIN, `policy.uri` = the agreement's URI
//!   [`AGREEMENT_URI_BASE`]`<id>`).
//!
//! Periods are calendar days (`provision.period`, or from `dateTime` when absent).
//!
//! Who may change a recorded consent ([`crate::policy::writes`]) is read from the resource
//! too:
//!
//! - its **custodians**, `Consent.organization` (by URA identifier): the recording
//!   organisation first, then any organisation the patient designated to manage it. A
//!   consent written without them gets the writer's organisation ([`custodians`]);
//! - the **patient's statement** that withdraws or narrows an objection:
//!   `Consent.sourceAttachment` (the signed statement or a note of the conversation, with its
//!   `creation` date and a `url` or inline `data`) or `Consent.sourceReference` (a
//!   `reference` or `identifier` of the document or QuestionnaireResponse that holds it)
//!   ([`patient_statement`]). Without one, an objection in force cannot be withdrawn.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::{array, resource_id, DayPeriod};
use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::{Bsn, DataCategory, DATA_CATEGORY_SYSTEM};
use crate::terminology::uri;

/// Profile claimed by the Consent resources we read and write.
pub const CONSENT_PROFILE: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/sharing-consent";
/// `Consent.policy.uri` of an explicit consent for an agreement: this base plus the agreement id.
pub const AGREEMENT_URI_BASE: &str = "https://w3id.org/overdracht/agreement/";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// A patient's objection or explicit consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientConsent {
    pub id: String,
    pub patient: Bsn,
    /// Only an `active` Consent is in force; other statuses are kept but ignored.
    pub active: bool,
    pub period: DayPeriod,
    pub kind: ConsentKind,
    /// The organisations that recorded it or that the patient designated
    /// (`Consent.organization`, recording organisation first; see [`custodians`]). A consent
    /// for an agreement counts only when one of them is a party to the agreement, an
    /// objection binds a handover only when one of them is its sender or receiver.
    pub custodians: Vec<crate::model::Ura>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentKind {
    /// Do not share `categories` (`None` = all data) with `members` (UZI numbers; empty = anyone).
    Objection { categories: Option<BTreeSet<DataCategory>>, members: BTreeSet<String> },
    /// Explicit consent for transfer under the agreement with this id.
    AgreementConsent { agreement_id: String },
}

/// The consents of a patient as stored (FHIR Consent JSON texts, already checked when they
/// were written). A text that no longer parses is a defect of the store, not the caller's.
pub fn parse_stored<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Vec<PatientConsent>, &'static str> {
    texts
        .into_iter()
        .map(|t| {
            let v: serde_json::Value = serde_json::from_str(t).map_err(|_| "a stored consent is not JSON")?;
            PatientConsent::from_fhir(&v).map_err(|_| "a stored consent no longer parses")
        })
        .collect()
}

impl PatientConsent {
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.active && self.period.contains(day)
    }

    /// Reads a FHIR R4 Consent. Problems come back as issues with FHIRPath expressions.
    pub fn from_fhir(v: &Value) -> Result<PatientConsent, Outcome> {
        let mut out = Outcome::new();
        let Some(id) = resource_id(v, "Consent", &mut out) else {
            return Err(out);
        };
        let mut fail = |path: &str, code: IssueCode, msg: String| {
            out.push(Issue::error(code, msg).at(path));
        };
        let patient = match v["patient"]["identifier"].as_object() {
            Some(i) if i.get("system").and_then(Value::as_str) == Some(uri::BSN) => {
                match Bsn::parse(i.get("value").and_then(Value::as_str).unwrap_or_default()) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        fail("Consent.patient.identifier.value", IssueCode::Value, e.to_string());
                        None
                    }
                }
            }
            _ => {
                fail(
                    "Consent.patient.identifier",
                    IssueCode::Required,
                    format!("the patient is identified by BSN ({})", uri::BSN),
                );
                None
            }
        };
        let active = match v["status"].as_str() {
            Some("active") => true,
            Some("draft" | "proposed" | "rejected" | "inactive" | "entered-in-error") => false,
            other => {
                fail("Consent.status", IssueCode::Value, format!("unknown status {other:?}"));
                false
            }
        };
        let provision = &v["provision"];
        let date_time = v["dateTime"].as_str().and_then(day_prefix);
        let start = match provision["period"]["start"].as_str() {
            Some(s) => day_prefix(s),
            None => date_time,
        };
        let end = provision["period"]["end"].as_str().map(day_prefix);
        let period = match (start, end) {
            (Some(start), None) => Some(DayPeriod::new(start, None)),
            (Some(start), Some(Some(end))) if end >= start => Some(DayPeriod::new(start, Some(end))),
            (Some(_), Some(_)) => {
                fail(
                    "Consent.provision.period.end",
                    IssueCode::Value,
                    "the end is not a date on or after the start".into(),
                );
                None
            }
            (None, _) => {
                fail(
                    "Consent.provision.period.start",
                    IssueCode::Required,
                    "give provision.period.start (or dateTime) as a date".into(),
                );
                None
            }
        };
        let kind = match provision["type"].as_str() {
            Some("deny") => {
                let mut categories = BTreeSet::new();
                for (i, label) in array(&provision["securityLabel"]).iter().enumerate() {
                    let code = label["code"].as_str().unwrap_or_default();
                    match (label["system"].as_str(), DataCategory::from_code(code)) {
                        (Some(DATA_CATEGORY_SYSTEM), Some(c)) => {
                            categories.insert(c);
                        }
                        _ => fail(
                            &format!("Consent.provision.securityLabel[{i}]"),
                            IssueCode::CodeInvalid,
                            format!(
                                "an objection names data categories of {DATA_CATEGORY_SYSTEM}; '{code}' is not one"
                            ),
                        ),
                    }
                }
                let mut members = BTreeSet::new();
                for (i, actor) in array(&provision["actor"]).iter().enumerate() {
                    let ident = &actor["reference"]["identifier"];
                    match (ident["system"].as_str(), ident["value"].as_str()) {
                        (Some(uri::UZI_PERSON), Some(v)) if !v.trim().is_empty() => {
                            members.insert(v.trim().to_owned());
                        }
                        _ => fail(
                            &format!("Consent.provision.actor[{i}].reference.identifier"),
                            IssueCode::Required,
                            format!("a member is named by UZI number ({})", uri::UZI_PERSON),
                        ),
                    }
                }
                Some(ConsentKind::Objection { categories: (!categories.is_empty()).then_some(categories), members })
            }
            Some("permit") => {
                let agreement = array(&v["policy"]).iter().find_map(|p| {
                    p["uri"]
                        .as_str()
                        .and_then(|u| u.strip_prefix(AGREEMENT_URI_BASE))
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                });
                match agreement {
                    Some(agreement_id) => Some(ConsentKind::AgreementConsent { agreement_id }),
                    None => {
                        fail(
                            "Consent.policy",
                            IssueCode::Required,
                            format!("an explicit consent names its agreement as policy.uri {AGREEMENT_URI_BASE}<id>"),
                        );
                        None
                    }
                }
            }
            other => {
                fail(
                    "Consent.provision.type",
                    IssueCode::NotSupported,
                    format!("expected 'deny' (an objection) or 'permit' (consent for an agreement), got {other:?}"),
                );
                None
            }
        };
        match (patient, period, kind, out.has_errors()) {
            (Some(patient), Some(period), Some(kind), false) => {
                Ok(PatientConsent { id, patient, active, period, kind, custodians: custodians(v) })
            }
            _ => Err(out),
        }
    }

    /// This consent as a FHIR R4 Consent resource.
    pub fn to_fhir(&self) -> Value {
        let mut period = json!({"start": self.period.start.to_string()});
        if let Some(end) = self.period.end {
            period["end"] = json!(end.to_string());
        }
        let (rule, provision, policy) = match &self.kind {
            ConsentKind::Objection { categories, members } => {
                let mut p = json!({"type": "deny", "period": period});
                if let Some(cats) = categories {
                    p["securityLabel"] = cats
                        .iter()
                        .map(|c| json!({"system": DATA_CATEGORY_SYSTEM, "code": c.code(), "display": c.display()}))
                        .collect();
                }
                if !members.is_empty() {
                    p["actor"] = members
                        .iter()
                        .map(|m| json!({
                            "role": {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
                            "reference": {"identifier": {"system": uri::UZI_PERSON, "value": m}}
                        }))
                        .collect();
                }
                ("OPTOUT", p, None)
            }
            ConsentKind::AgreementConsent { agreement_id } => (
                "OPTIN",
                json!({"type": "permit", "period": period}),
                Some(json!([{"uri": format!("{AGREEMENT_URI_BASE}{agreement_id}")}])),
            ),
        };
        let mut v = json!({
            "resourceType": "Consent",
            "id": self.id,
            "meta": {"profile": [CONSENT_PROFILE]},
            "status": if self.active { "active" } else { "inactive" },
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": uri::LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
            "patient": {"identifier": {"system": uri::BSN, "value": self.patient.as_str()}},
            "dateTime": self.period.start.to_string(),
            "policyRule": {"coding": [{"system": ACT_CODE, "code": rule}]},
        });
        if !self.custodians.is_empty() {
            v["organization"] = custodians_json(&self.custodians);
        }
        if let Some(p) = policy {
            v["policy"] = p;
        }
        v["provision"] = provision;
        v
    }
}

/// The custodians of a Consent: the URAs of `Consent.organization[].identifier`, in order
/// (the recording organisation first); malformed entries are left out.
pub fn custodians(v: &Value) -> Vec<crate::model::Ura> {
    let mut out: Vec<crate::model::Ura> = Vec::new();
    for o in array(&v["organization"]) {
        let i = &o["identifier"];
        if let (Some(uri::URA), Some(u)) = (i["system"].as_str(), i["value"].as_str()) {
            if let Ok(u) = crate::model::Ura::parse(u) {
                if !out.contains(&u) {
                    out.push(u);
                }
            }
        }
    }
    out
}

/// `Consent.organization` naming these custodians (URAs).
pub fn custodians_json(uras: &[crate::model::Ura]) -> Value {
    uras.iter().map(|u| json!({"type": "Organization", "identifier": {"system": uri::URA, "value": u}})).collect()
}

/// The patient's recorded statement on a Consent, described for the audit trail (no free
/// text from the resource): `sourceAttachment` with a `creation` date and a `url` or `data`,
/// or `sourceReference` with a `reference` or an `identifier`. `None` when there is none.
pub fn patient_statement(v: &Value) -> Option<String> {
    let a = &v["sourceAttachment"];
    if a.is_object() {
        let created = a["creation"].as_str().and_then(day_prefix);
        let content = a["url"].as_str().is_some_and(|u| !u.trim().is_empty())
            || a["data"].as_str().is_some_and(|d| !d.trim().is_empty());
        if let (Some(day), true) = (created, content) {
            return Some(format!("Consent.sourceAttachment created {day}"));
        }
    }
    let r = &v["sourceReference"];
    if r["reference"].as_str().is_some_and(|s| !s.trim().is_empty())
        || r["identifier"]["value"].as_str().is_some_and(|s| !s.trim().is_empty())
    {
        return Some("Consent.sourceReference".to_owned());
    }
    None
}

/// The calendar day of a FHIR date or dateTime (`2025-03-01`, `2025-03-01T10:00:00+01:00`).
pub(crate) fn day_prefix(s: &str) -> Option<NaiveDate> {
    s.get(..10).and_then(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custodians_and_the_patients_statement_are_read_from_the_consent() {
        let v = json!({
            "organization": [
                {"identifier": {"system": uri::URA, "value": "11112222"}},
                {"identifier": {"system": uri::URA, "value": "11112222"}},
                {"identifier": {"system": uri::AGB, "value": "01234567"}},
                {"identifier": {"system": uri::URA, "value": "5555"}},
                {"identifier": {"system": uri::URA, "value": "55556666"}}
            ]
        });
        assert_eq!(custodians(&v), ["11112222", "55556666"]);
        assert_eq!(custodians(&json!({"organization": custodians_json(&custodians(&v))})), custodians(&v));
        assert_eq!(patient_statement(&json!({})), None);
        let no_date = json!({"sourceAttachment": {"url": "https://dms.example/1"}});
        assert_eq!(patient_statement(&no_date), None, "a statement has a creation date");
        let a = json!({"sourceAttachment": {"creation": "2026-12-01T10:00:00+01:00", "data": "SGk="}});
        assert_eq!(patient_statement(&a).as_deref(), Some("Consent.sourceAttachment created 2026-12-01"));
        let r = json!({"sourceReference": {"reference": "DocumentReference/abc"}});
        assert_eq!(patient_statement(&r).as_deref(), Some("Consent.sourceReference"));
    }
}
