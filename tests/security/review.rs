//! Findings of the independent review of main after issue 14 (`/work/notes/review-security.md`,
//! R1, R2, R4). Each test asserts the secure behaviour; each failed on the code the review
//! found. Same demo set-up as `authz.rs`, plus an administrator of another organisation.

use serde_json::{json, Value};

use crate::helpers::{example, repo_file, spawn_app_with, TestApp};

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
        let dir = s.data_dir.join("example-agreements");
        std::fs::create_dir_all(&dir).expect("dir");
        for f in ["de-linde-to-zorggroep-zuid.json", "amalia-paediatrics-to-zorggroep-zuid.json"] {
            let mut a = read_json(&format!("examples/agreements/{f}"));
            a["valid"].as_object_mut().expect("valid").remove("end");
            std::fs::write(dir.join(f), a.to_string()).expect("write");
        }
        s.policy.agreements_dir = Some(dir);
        s.policy.demo_examples = true;
        s.policy.admins = vec![format!("{OTHER_ORG}:{OTHER_ADMIN}")];
    })
    .await
}

fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo_file(rel)).expect("file")).expect("json")
}

fn token(app: &TestApp, uzi: &str, role: &str, ura: &str) -> String {
    app.token_with(|c| {
        c.uzi = uzi.to_owned();
        c.sub = uzi.to_owned();
        c.uzi_role = role.to_owned();
        c.ura = ura.to_owned();
    })
}

async fn put(app: &TestApp, path: &str, tok: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(tok)
        .header("Content-Type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("put")
}

async fn get(app: &TestApp, path: &str, tok: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(tok).send().await.expect("get")
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
