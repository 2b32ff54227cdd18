//! Findings of an independent review of main after the issue-14 fixes (R1, R2, R4; R3 is in
//! src/fhir/ids.rs's unit tests). Each test asserts the secure behaviour; each failed on the code the review
//! found. Same demo set-up as `authz.rs`, plus an administrator of another organisation.

use serde_json::{json, Value};

use crate::helpers::{example, get, put, read_json, repo_file, spawn_app_with, token, TestApp};

const PROVIDER: &str = "11112222";
const OTHER_ORG: &str = "55556666";
const OTHER_ADMIN: &str = "900000950";
const GP_URA: &str = "87654321";
const BSN: &str = "999911120";
const OTHER_BSN: &str = "999911144";
const TEAM: &str = "zuid-999911120-2026";
const LEAD: &str = "900000101";

async fn review_app() -> TestApp {
    spawn_app_with(|s| {
        s.policy.agreements_dir = Some(crate::helpers::open_ended_example_agreements(&s.data_dir));
        s.policy.demo_examples = true;
        s.policy.admins = vec![format!("{OTHER_ORG}:{OTHER_ADMIN}")];
    })
    .await
}

/// The GP hands the example record over to Zorggroep Zuid, with `bsn` for the patient.
async fn gp_handover(app: &TestApp, bsn: &str) -> Value {
    let body = String::from_utf8(example()).expect("utf8").replace(BSN, bsn);
    let r = app
        .client
        .post(app.url(&format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=group-frail")))
        .bearer_auth(token(app, "900012345", "01.015", GP_URA))
        .header("Content-Type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json().await.expect("summary")
}

fn everything(summary: &Value) -> String {
    let pid = summary["patient"].as_str().expect("patient").trim_start_matches("Patient/");
    format!("/fhir/Patient/{pid}/$everything")
}

/// R1 (critical): the lead of patient A's team changed the team's subject to patient B and
/// so read B's whole dossier.
#[tokio::test]
async fn review_lead_moves_team_to_another_patient() {
    let app = review_app().await;
    let b = gp_handover(&app, OTHER_BSN).await;
    let lead = token(&app, LEAD, "01.047", PROVIDER);
    assert_eq!(get(&app, &everything(&b), &lead).await.status(), 404);
    let mut moved = read_json("examples/care-teams/frail-elderly-group-care.json");
    moved["subject"]["identifier"]["value"] = json!(OTHER_BSN);
    let r = put(&app, &format!("/fhir/CareTeam/{TEAM}"), &lead, &moved).await;
    assert_eq!(r.status(), 403, "the lead moved patient A's team to patient B");
    assert_eq!(get(&app, &everything(&b), &lead).await.status(), 404);
    let rules: Vec<String> = overdracht::audit::search(&app.store, &Default::default())
        .await
        .expect("audit")
        .into_iter()
        .filter_map(|e| e.entry.rule)
        .collect();
    assert!(rules.iter().any(|r| r == "team.write.other-patient"), "{rules:?}");
}

/// R2 (high): an organisation with no part in an agreement recorded the patient's explicit
/// consent for it, and so opened the transfer Amalia -> Zorggroep Zuid.
#[tokio::test]
async fn review_non_party_records_consent_for_an_agreement() {
    const NEW_BSN: &str = "999911156";
    let app = review_app().await;
    let flat = std::fs::read_to_string(repo_file("examples/records/paediatrician-young-adult.flat.json"))
        .expect("flat")
        .replace("999911132", NEW_BSN);
    let send = || async {
        app.client
            .post(app.url(&format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=individual-avg")))
            .bearer_auth(token(&app, "900003333", "01.019", "12345678"))
            .header("Content-Type", "application/json")
            .body(flat.clone())
            .send()
            .await
            .expect("post")
            .status()
    };
    assert_eq!(send().await, 403);
    let admin = token(&app, OTHER_ADMIN, "01.047", OTHER_ORG);
    let mut team = read_json("examples/care-teams/young-adult-avg-individual.json");
    let text = team.to_string().replace(PROVIDER, OTHER_ORG).replace("999911132", NEW_BSN);
    team = serde_json::from_str(&text).expect("json");
    team["id"] = json!("other-org-team");
    let r = put(&app, "/fhir/CareTeam/other-org-team", &admin, &team).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let mut consent = read_json("examples/consents/consent-amalia-agreement.json");
    let text = consent.to_string().replace("999911132", NEW_BSN);
    consent = serde_json::from_str(&text).expect("json");
    consent["id"] = json!("forged-consent");
    // Recorded by the outsider (the custodian defaults to its URA) ...
    consent.as_object_mut().expect("object").remove("organization");
    let r = put(&app, "/fhir/Consent/forged-consent", &admin, &consent).await;
    let forged = r.status();
    // ... or naming a party of the agreement after itself.
    consent["organization"] = json!([
        {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": OTHER_ORG}},
        {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": PROVIDER}}
    ]);
    let named = put(&app, "/fhir/Consent/forged-consent", &admin, &consent).await.status();
    assert_eq!(
        (forged.as_u16(), named.as_u16(), send().await.as_u16()),
        (403, 403, 403),
        "a non-party organisation's consent opened the Amalia -> Zorggroep Zuid transfer"
    );
    let rules: Vec<String> = overdracht::audit::search(&app.store, &Default::default())
        .await
        .expect("audit")
        .into_iter()
        .filter_map(|e| e.entry.rule)
        .collect();
    assert!(rules.iter().any(|r| r == "consent.write.not-agreement-party"), "{rules:?}");
}

/// R4 (medium): any staff member of the receiving organisation (any UZI role, in no team)
/// read the patient's whole audit trail, other organisations' entries included.
#[tokio::test]
async fn review_any_receiver_staff_reads_the_whole_trail() {
    let app = review_app().await;
    let a = gp_handover(&app, BSN).await;
    let lead = token(&app, LEAD, "01.047", PROVIDER);
    assert_eq!(get(&app, &everything(&a), &lead).await.status(), 200);
    let receptionist = token(&app, "900000777", "99.999", PROVIDER);
    let r = get(&app, &format!("/patients/{BSN}/access-log"), &receptionist).await;
    let status = r.status();
    let text = r.text().await.expect("body");
    assert!(
        status == 403 || !(text.contains(LEAD) || text.contains("900012345")),
        "a receptionist in no team read the patient's trail: {status} {}",
        &text[..text.len().min(300)]
    );
    // The patient's team member at the receiving organisation still reads it, limited to
    // that organisation's entries.
    let r = get(&app, &format!("/patients/{BSN}/access-log"), &lead).await;
    assert_eq!(r.status(), 200);
    let rules: Vec<String> = overdracht::audit::search(&app.store, &Default::default())
        .await
        .expect("audit")
        .into_iter()
        .filter_map(|e| e.entry.rule)
        .collect();
    assert!(rules.iter().any(|r| r == "audit-view/not-in-team"), "{rules:?}");
}
