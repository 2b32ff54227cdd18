//! The example agreements, care teams and consents of `examples/`, built into the binary so
//! that `serve --demo` shows access control from any working directory.
//!
//! Agreements are loaded when no agreements directory is configured; teams and consents are
//! stored at start unless a team or consent with the same id exists (a restart keeps edits).

use super::access::rule_day;
use crate::audit::{self, AuditAction, AuditEntry, AuditOutcome};
use crate::policy::{check_care_team, Agreement, AgreementError, PatientConsent};
use crate::store::{Store, Writer};

const AGREEMENTS: &[(&str, &str)] = &[
    (
        "examples/agreements/de-linde-to-zorggroep-zuid.json",
        include_str!("../../examples/agreements/de-linde-to-zorggroep-zuid.json"),
    ),
    (
        "examples/agreements/amalia-paediatrics-to-zorggroep-zuid.json",
        include_str!("../../examples/agreements/amalia-paediatrics-to-zorggroep-zuid.json"),
    ),
];

const TEAMS: &[&str] = &[
    include_str!("../../examples/care-teams/frail-elderly-group-care.json"),
    include_str!("../../examples/care-teams/young-adult-avg-individual.json"),
    include_str!("../../examples/care-teams/frail-elderly-ended.json"),
];

const CONSENTS: &[&str] = &[
    include_str!("../../examples/consents/consent-amalia-agreement.json"),
    include_str!("../../examples/consents/objection-lifestyle.json"),
    include_str!("../../examples/consents/objection-member.json"),
];

/// The receiving GZSP provider of the examples (Zorggroep Zuid).
pub const PROVIDER_URA: &str = "11112222";
/// De Linde GP practice (URA), sender of `examples/records/gp-frail-elderly.stu3.json`.
pub const GP_URA: &str = "87654321";

pub fn agreements() -> Result<Vec<Agreement>, AgreementError> {
    AGREEMENTS.iter().map(|(file, text)| Agreement::from_json(text, file)).collect()
}

/// Stores the example teams and consents that are not there yet.
pub async fn seed(store: &Store) -> Result<(), String> {
    let today = super::access::today();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let by = Writer { uzi: "0", ura: PROVIDER_URA, at: &now };
    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
    for text in TEAMS {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let (team, _) =
            check_care_team(&v, rule_day(&v, today)).map_err(|o| format!("example team: {:?}", o.issues.first()))?;
        if tx.care_team(&team.id).await.map_err(|e| e.to_string())?.is_some() {
            continue;
        }
        tx.put_care_team(&team.id, team.patient.as_str(), &team.organisation_ura, &v.to_string(), &by)
            .await
            .map_err(|e| e.to_string())?;
        record(&mut tx, AuditAction::CareTeamChange, &format!("CareTeam/{}", team.id), team.patient.as_str()).await?;
    }
    for text in CONSENTS {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let c = PatientConsent::from_fhir(&v).map_err(|o| format!("example consent: {:?}", o.issues.first()))?;
        if tx.consent(&c.id).await.map_err(|e| e.to_string())?.is_some() {
            continue;
        }
        tx.put_consent(&c.id, c.patient.as_str(), &v.to_string(), &by).await.map_err(|e| e.to_string())?;
        record(&mut tx, AuditAction::ConsentChange, &format!("Consent/{}", c.id), c.patient.as_str()).await?;
    }
    tx.commit().await.map_err(|e| e.to_string())
}

async fn record(tx: &mut crate::store::Tx, action: AuditAction, object: &str, bsn: &str) -> Result<(), String> {
    let mut e = AuditEntry::new(action, AuditOutcome::Success);
    e.objects = vec![object.to_owned()];
    e.patient_bsn = Some(bsn.to_owned());
    e.reason = Some("example data loaded by `serve --demo`".to_owned());
    audit::record(tx, &e).await.map(|_| ()).map_err(|e| e.to_string())
}

/// The GP example record (`examples/records/gp-frail-elderly.stu3.json`).
pub const GP_RECORD: &[u8] = include_bytes!("../../examples/records/gp-frail-elderly.stu3.json");

/// The id of the Patient resource the GP example becomes when De Linde's HIS hands it over
/// (ids are deterministic, and the sender is the organisation in the token: `ura|87654321`).
pub fn gp_patient_id() -> Option<String> {
    let opts = crate::convert::ConvertOptions { sender: Some(format!("ura|{GP_URA}")), ..Default::default() };
    let c = crate::convert::convert(GP_RECORD, &opts).ok()?;
    c.resources.iter().find(|r| r.resource_type == "Patient").map(|r| r.id.clone())
}
