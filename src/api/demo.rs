//! The example agreements, care teams and consents of `examples/`, built into the binary so
//! that `serve --demo` shows access control from any working directory.
//!
//! Agreements are loaded when no agreements directory is configured; teams and consents are
//! stored at start unless a team or consent with the same id exists (a restart keeps edits).

use super::access_control::rule_day;
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
    let today = crate::policy::today();
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

/// The demo identities (see `examples/`): De Linde's HIS sends to Zorggroep Zuid, whose team
/// for the patient has a lead practitioner (SO) and a supporting discipline (nurse); the
/// outsider is a colleague at Zorggroep Zuid who is not in the team.
/// (variable, who, UZI, UZI role code, URA)
const IDENTITIES: &[(&str, &str, &str, &str, &str)] = &[
    ("GP", "GP practice De Linde's HIS", "900012345", "01.015", GP_URA),
    ("LEAD", "lead practitioner drs. A. Visser (SO)", "900000101", "01.047", PROVIDER_URA),
    ("SUPPORT", "supporting discipline R. Bos (nurse)", "900000104", "30.000", PROVIDER_URA),
    ("OUTSIDER", "SO at Zorggroep Zuid, not in the team", "900000999", "01.047", PROVIDER_URA),
    (
        "ADMIN",
        "administrator of Zorggroep Zuid (policy.admins), for the evidence report",
        ADMIN_UZI,
        "01.047",
        PROVIDER_URA,
    ),
];

/// The demo administrator (`serve --demo` makes this UZI number the only administrator when
/// none is configured).
pub const ADMIN_UZI: &str = "900000900";

/// What `serve --demo` changes in the settings: the example agreements, teams and consents
/// built into the binary (unless an agreements directory is configured), tokens of the
/// demo key trusted, and the demo administrator when none is configured (only with the
/// demo key: never when real token issuers are configured).
pub fn configure(settings: &mut crate::config::Settings) {
    if settings.policy.agreements_dir.is_none() {
        settings.policy.demo_examples = true;
    }
    settings.auth.insecure_trust_demo_key = true;
    if settings.policy.admins.is_empty() && settings.demo_auth() {
        settings.policy.admins = vec![format!("{PROVIDER_URA}:{ADMIN_UZI}")];
    }
}

/// The walkthrough `serve --demo` prints: a token per demo identity and the requests that
/// show a handover, team access, break-the-glass and the evidence report.
pub fn walkthrough(settings: &crate::config::Settings, addr: std::net::SocketAddr) -> Result<String, String> {
    use super::auth::{mint_demo_token, TokenRequest};
    use std::fmt::Write as _;
    let host = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    let mut o = String::from("Demo tokens (valid 8 hours, purpose TREAT):\n\n");
    for (var, who, uzi, role, ura) in IDENTITIES {
        let req = TokenRequest {
            uzi: (*uzi).to_owned(),
            uzi_role: (*role).to_owned(),
            ura: (*ura).to_owned(),
            purpose_of_use: "TREAT".to_owned(),
            ttl_seconds: 8 * 3600,
        };
        let t = mint_demo_token(settings, &req).map_err(|e| e.to_string())?;
        let _ = writeln!(o, "# {who}: UZI {uzi}, role {role}, URA {ura}\nexport {var}={t}\n");
    }
    let example = "examples/records/gp-frail-elderly.stu3.json";
    let _ = writeln!(
        o,
        "1. The GP hands the example record over to Zorggroep Zuid (URA {PROVIDER_URA}) under agreement de-linde-to-zorggroep-zuid@1.0 (201 Created):\n"
    );
    let _ = writeln!(
        o,
        "curl -i -X POST 'http://{host}/handovers?receiver=ura%7C{PROVIDER_URA}&care-form=group-frail' -H \"Authorization: Bearer $GP\" -H 'Content-Type: application/fhir+json' --data-binary @{example}\n"
    );
    if !std::path::Path::new(example).exists() {
        let _ = writeln!(o, "(run it from the root of the overdracht repository, where {example} is)\n");
    }
    let Some(pid) = gp_patient_id() else { return Ok(o) };
    let everything = format!("http://{host}/fhir/Patient/{pid}/$everything");
    let _ = writeln!(
        o,
        "2. The lead practitioner reads the whole dossier (except lifestyle: the patient objected, examples/consents):\n"
    );
    let _ = writeln!(
        o,
        "curl -s '{everything}' -H \"Authorization: Bearer $LEAD\" | jq '.total, [.entry[].resource.resourceType]'\n"
    );
    let _ = writeln!(
        o,
        "3. The supporting discipline sees only alerts, allergies, contact persons, directives and care plan:\n"
    );
    let _ = writeln!(
        o,
        "curl -s '{everything}' -H \"Authorization: Bearer $SUPPORT\" | jq '.total, [.entry[].resource.resourceType]'\n"
    );
    let _ = writeln!(
        o,
        "4. The outsider sees nothing (404, as for an unknown patient); with a stated reason, break-the-glass (flagged for review):\n"
    );
    let _ = writeln!(
        o,
        "curl -s -o /dev/null -w '%{{http_code}}\\n' '{everything}' -H \"Authorization: Bearer $OUTSIDER\""
    );
    let _ = writeln!(
        o,
        "curl -s '{everything}' -H \"Authorization: Bearer $OUTSIDER\" -H 'X-Break-Glass-Reason: patient%20collapsed%2C%20lead%20unreachable' | jq .total\n"
    );
    let _ = writeln!(o, "5. The care team (visible to its members and the organisation's administrators only):\n");
    let _ = writeln!(
        o,
        "curl -s 'http://{host}/fhir/CareTeam/zuid-999911120-2026' -H \"Authorization: Bearer $LEAD\" | jq '.participant | length'\n"
    );
    let _ = writeln!(
        o,
        "6. The contracting evidence report for the health insurer (agreements, team access, handovers, reads, denials, emergency access, audit trail); open it in a browser:\n"
    );
    let _ = writeln!(
        o,
        "curl -s 'http://{host}/report?format=html' -H \"Authorization: Bearer $ADMIN\" -o overdracht-report.html\n"
    );
    let _ = writeln!(o, "(scripts/demo-report.sh makes a few more handovers and reads first.)\n");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_configures_its_examples_and_prints_a_token_per_identity() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = crate::config::Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
        configure(&mut s);
        assert!(s.policy.demo_examples && s.auth.insecure_trust_demo_key);
        assert_eq!(s.policy.admins, vec![format!("{PROVIDER_URA}:{ADMIN_UZI}")]);
        let text = walkthrough(&s, "0.0.0.0:8080".parse().expect("addr")).expect("walkthrough");
        for (var, ..) in IDENTITIES {
            assert!(text.contains(&format!("export {var}=ey")), "{var}: {text}");
        }
        assert!(text.contains("http://127.0.0.1:8080/handovers?receiver=ura%7C11112222"), "{text}");
    }

    #[test]
    fn the_demo_administrator_is_not_added_beside_configured_administrators() {
        let mut s = crate::config::Settings::default();
        s.policy.admins = vec!["55556666:1".into()];
        configure(&mut s);
        assert_eq!(s.policy.admins, vec!["55556666:1".to_owned()]);
    }
}
