//! Through the API: transfer under agreements, care teams, consents and the FHIR read
//! facade, with the example agreements, teams and consents of `examples/`.

use std::collections::BTreeSet;

use overdracht::audit::{AuditAction, AuditSearch};
use serde_json::{json, Value};

use crate::helpers::{assert_outcome, example, get, put, read_json, repo_file, spawn_app_with, token, TestApp};

const PROVIDER: &str = "11112222";
const GP_URA: &str = "87654321";
const AMALIA_URA: &str = "12345678";
const BSN: &str = "999911120";
const YOUNG_BSN: &str = "999911132";
const LEAD: &str = "900000101";
const VS: &str = "900000103";
const PHYSIO: &str = "900000102";
const SUPPORT: &str = "900000104";
const ADMIN: &str = "900000900";
const TEAM: &str = "zuid-999911120-2026";
const SUPPORT_CATEGORIES: &[&str] = &["alerts", "allergies", "contact-persons", "directives", "care-plan"];

/// The app with the example agreements (made open-ended, so the tests do not expire) and
/// one administrator of Zorggroep Zuid.
async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.policy.agreements_dir = Some(crate::helpers::open_ended_example_agreements(&s.data_dir));
        s.policy.admins = vec![format!("{PROVIDER}:{ADMIN}")];
    })
    .await
}

fn lead(app: &TestApp) -> String {
    token(app, LEAD, "01.047", PROVIDER)
}

fn admin(app: &TestApp) -> String {
    token(app, ADMIN, "01.047", PROVIDER)
}

async fn get_json(app: &TestApp, path: &str, tok: &str) -> Value {
    let r = get(app, path, tok).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

/// Stores the frail-elderly team (by the administrator: nobody names themselves into a new
/// team) and hands the GP record over; returns the handover summary.
async fn gp_scenario(app: &TestApp) -> Value {
    let team = read_json("examples/care-teams/frail-elderly-group-care.json");
    let r = put(app, &format!("/fhir/CareTeam/{TEAM}"), &admin(app), &team).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    handover_gp(app, PROVIDER).await
}

async fn handover_gp(app: &TestApp, receiver: &str) -> Value {
    let r = app
        .post(
            &format!("/handovers?receiver=ura%7C{receiver}"),
            token(app, "900012345", "01.015", GP_URA),
            "application/fhir+json",
            example(),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.expect("summary")
}

fn patient_id(summary: &Value) -> String {
    summary["patient"].as_str().expect("patient").trim_start_matches("Patient/").to_owned()
}

fn categories(bundle: &Value) -> BTreeSet<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .flat_map(|e| e["resource"]["meta"]["security"].as_array().cloned().unwrap_or_default())
                .filter_map(|s| s["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn entries(bundle: &Value) -> usize {
    bundle["entry"].as_array().map_or(0, Vec::len)
}

async fn audit(app: &TestApp, actions: Vec<AuditAction>) -> Vec<overdracht::audit::AuditEntry> {
    overdracht::audit::search(&app.store, &AuditSearch { actions, oldest_first: true, ..Default::default() })
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.entry)
        .collect()
}

#[tokio::test]
async fn lead_reads_everything_supporting_member_its_categories_outsider_nothing() {
    let app = app().await;
    let summary = gp_scenario(&app).await;
    let pid = patient_id(&summary);
    let total = summary["resources"]["total"].as_u64().expect("total");
    let everything = format!("/fhir/Patient/{pid}/$everything");

    // The lead practitioner: the whole dossier.
    let all = get_json(&app, &everything, &lead(&app)).await;
    assert_eq!(all["total"].as_u64(), Some(total));
    assert_eq!(entries(&all) as u64, total);
    assert!(categories(&all).contains("journal") && categories(&all).contains("problems"));

    // The supporting discipline: only its five categories.
    let support = token(&app, SUPPORT, "30.000", PROVIDER);
    let some = get_json(&app, &everything, &support).await;
    let seen = categories(&some);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|c| SUPPORT_CATEGORIES.contains(&c.as_str())), "{seen:?}");
    assert_eq!(some["total"].as_u64(), Some(entries(&some) as u64));

    // A resource outside its categories is invisible (404), not forbidden.
    let condition = all["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Condition")
        .expect("c")["resource"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(get(&app, &format!("/fhir/Condition/{condition}"), &lead(&app)).await.status(), 200);
    assert_outcome(get(&app, &format!("/fhir/Condition/{condition}"), &support).await, 404).await;
    assert_outcome(get(&app, "/fhir/Condition/no-such-id", &support).await, 404).await;

    // Search: filtered before counting and paging.
    let s = get_json(&app, &format!("/fhir/Condition?patient={pid}"), &support).await;
    assert_eq!((s["total"].as_u64(), entries(&s)), (Some(0), 0));
    assert!(!s["link"].to_string().contains("next"));
    let page = get_json(&app, &format!("/fhir/Observation?patient=Patient/{pid}&_count=3"), &lead(&app)).await;
    assert!(page["total"].as_u64().expect("total") > 3);
    assert_eq!(entries(&page), 3);
    assert!(page["link"].to_string().contains("\"next\""));
    let r = get(&app, &format!("/fhir/Observation?patient={pid}&_include=Observation:subject"), &lead(&app)).await;
    assert_outcome(r, 400).await;

    // Outsiders: a colleague outside the team, and another organisation: nothing at all.
    for outsider in [token(&app, "900000999", "01.047", PROVIDER), token(&app, LEAD, "01.047", "55556666")] {
        assert_outcome(get(&app, &everything, &outsider).await, 404).await;
        let s = get_json(&app, &format!("/fhir/Condition?patient={pid}"), &outsider).await;
        assert_eq!(s["total"], 0);
        assert_outcome(get(&app, &format!("/fhir/Condition/{condition}"), &outsider).await, 404).await;
    }

    // Every decision is audited, one entry per request, permits and denials.
    let reads = audit(&app, vec![AuditAction::Export, AuditAction::Read, AuditAction::Search]).await;
    let exports: Vec<_> = reads.iter().filter(|e| e.action == AuditAction::Export).collect();
    assert_eq!(exports.len(), 4);
    assert_eq!(exports[0].rule.as_deref(), Some("access.member"));
    assert_eq!(exports[0].patient_bsn.as_deref(), Some(BSN));
    assert_eq!(exports[2].outcome, overdracht::audit::AuditOutcome::Denied);
    assert_eq!(exports[2].rule.as_deref(), Some("default.not-a-member"));
    // The team role under which each member was permitted is recorded; denials have none.
    assert_eq!(exports[0].team_roles, vec!["lead-practitioner".to_owned()]);
    assert_eq!(exports[1].team_roles, vec!["supporting-discipline".to_owned()]);
    assert!(exports[2].team_roles.is_empty());
    assert!(reads.len() >= 12);
}

#[tokio::test]
async fn break_the_glass_needs_a_reason_and_is_flagged() {
    let app = app().await;
    let pid = patient_id(&gp_scenario(&app).await);
    let outsider = token(&app, "900000999", "01.047", PROVIDER);
    let path = format!("/fhir/Patient/{pid}/$everything");
    let r = app
        .client
        .get(app.url(&path))
        .bearer_auth(&outsider)
        .header("X-Break-Glass-Reason", "patient%20collapsed%2C%20lead%20unreachable")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["total"].as_u64().expect("total") > 0);
    let bg = audit(&app, vec![AuditAction::BreakGlass]).await;
    assert_eq!(bg.len(), 1);
    assert!(bg[0].emergency && bg[0].flag_for_review);
    assert!(bg[0].reason.as_deref().is_some_and(|r| r.contains("patient collapsed")), "{:?}", bg[0].reason);
    // Another organisation cannot break the glass.
    let other = token(&app, "900000999", "01.047", "55556666");
    let r = app
        .client
        .get(app.url(&path))
        .bearer_auth(&other)
        .header("X-Break-Glass-Reason", "curious")
        .send()
        .await
        .expect("req");
    assert_outcome(r, 404).await;
}

#[tokio::test]
async fn objections_are_honoured() {
    let app = app().await;
    let summary = gp_scenario(&app).await;
    let pid = patient_id(&summary);
    let lifestyle = format!("/fhir/Observation?patient={pid}");
    let before = get_json(&app, &lifestyle, &lead(&app)).await;
    assert!(categories(&before).contains("lifestyle"));

    // The patient objects to sharing lifestyle with anyone: gone for the lead too.
    let objection = read_json("examples/consents/objection-lifestyle.json");
    let id = objection["id"].as_str().expect("id").to_owned();
    let r = put(&app, &format!("/fhir/Consent/{id}"), &lead(&app), &objection).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let after = get_json(&app, &lifestyle, &lead(&app)).await;
    assert!(!categories(&after).contains("lifestyle"));
    assert_eq!(after["total"].as_u64(), Some(entries(&before) as u64 - 1));

    // The patient objects to the physiotherapist seeing problems.
    let physio = token(&app, PHYSIO, "04.000", "44443333");
    let conditions = format!("/fhir/Condition?patient={pid}");
    assert!(get_json(&app, &conditions, &physio).await["total"].as_u64().expect("n") > 0);
    let objection = read_json("examples/consents/objection-member.json");
    let id = objection["id"].as_str().expect("id").to_owned();
    // Only the lead or an administrator records it.
    assert_outcome(put(&app, &format!("/fhir/Consent/{id}"), &physio, &objection).await, 403).await;
    assert_eq!(put(&app, &format!("/fhir/Consent/{id}"), &admin(&app), &objection).await.status(), 201);
    assert_eq!(get_json(&app, &conditions, &physio).await["total"], 0);
    assert!(get_json(&app, &format!("/fhir/Observation?patient={pid}"), &physio).await["total"].as_u64() > Some(0));
    // The sharing consent reads back for the lead.
    let c = get_json(&app, &format!("/fhir/Consent/{id}"), &lead(&app)).await;
    assert_eq!(c["meta"]["versionId"], "1");
    // Searching Consent: the sharing consents for the lead, only the directives for others.
    let ids = |b: &Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .map_or(vec![], |es| es.iter().filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned)).collect())
    };
    let consents = format!("/fhir/Consent?patient={pid}");
    let for_lead = ids(&get_json(&app, &consents, &lead(&app)).await);
    assert!(for_lead.contains(&id) && for_lead.len() == 3, "{for_lead:?}");
    let for_physio = ids(&get_json(&app, &consents, &physio).await);
    assert_eq!(for_physio.len(), 1, "the directive only: {for_physio:?}");
    let changes = audit(&app, vec![AuditAction::ConsentChange]).await;
    assert_eq!(changes.len(), 3, "two stored, one refused");
}

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

#[tokio::test]
async fn membership_period_and_ended_treatment() {
    let app = app().await;
    let pid = patient_id(&gp_scenario(&app).await);
    let everything = format!("/fhir/Patient/{pid}/$everything");
    let support = token(&app, SUPPORT, "30.000", PROVIDER);
    let vs = token(&app, VS, "30.070", PROVIDER);
    assert_eq!(get(&app, &everything, &support).await.status(), 200);

    // The supporting member's membership ended yesterday: nothing.
    let mut team = read_json("examples/care-teams/frail-elderly-group-care.json");
    team["participant"][3]["period"]["end"] = json!(day(-1));
    assert_eq!(put(&app, &format!("/fhir/CareTeam/{TEAM}"), &lead(&app), &team).await.status(), 200);
    assert_outcome(get(&app, &everything, &support).await, 404).await;

    // The treatment ended ten days ago: the lead keeps access for the closing letter (grace
    // period 30 days), the co-practitioner does not.
    let mut ended = read_json("examples/care-teams/frail-elderly-group-care.json");
    ended["status"] = json!("inactive");
    ended["period"]["end"] = json!(day(-10));
    ended["extension"] = json!([{
        "url": "https://w3id.org/overdracht/fhir/StructureDefinition/care-team-exit-reason",
        "valueCoding": {"system": "https://w3id.org/overdracht/fhir/CodeSystem/gzsp-exit-reason", "code": "goal-reached"}
    }]);
    for p in ended["participant"].as_array_mut().expect("participants") {
        p["period"]["end"] = json!(day(-10));
    }
    let r = put(&app, &format!("/fhir/CareTeam/{TEAM}"), &lead(&app), &ended).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(get(&app, &everything, &lead(&app)).await.status(), 200);
    assert_outcome(get(&app, &everything, &vs).await, 404).await;

    // Ended 40 days ago: beyond the grace period, nobody. (The lead is no longer lead today,
    // so the administrator records it.)
    for p in ended["participant"].as_array_mut().expect("participants") {
        p["period"]["end"] = json!(day(-40));
    }
    ended["period"]["end"] = json!(day(-40));
    assert_outcome(put(&app, &format!("/fhir/CareTeam/{TEAM}"), &lead(&app), &ended).await, 403).await;
    assert_eq!(put(&app, &format!("/fhir/CareTeam/{TEAM}"), &admin(&app), &ended).await.status(), 200);
    assert_outcome(get(&app, &everything, &lead(&app)).await, 404).await;
    let denied = audit(&app, vec![AuditAction::Export]).await;
    assert_eq!(denied.last().and_then(|e| e.rule.as_deref()), Some("treatment.ended"));

    // A membership that starts tomorrow gives nothing today.
    let mut future = read_json("examples/care-teams/frail-elderly-group-care.json");
    future["id"] = json!("zuid-future");
    future["participant"][3]["period"]["start"] = json!(day(1));
    assert_eq!(put(&app, "/fhir/CareTeam/zuid-future", &admin(&app), &future).await.status(), 201);
    assert_outcome(get(&app, &everything, &support).await, 404).await;
}

#[tokio::test]
async fn handover_without_agreement_is_refused_and_audited() {
    let app = app().await;
    let r = app
        .post(
            "/handovers?receiver=ura%7C99998888",
            token(&app, "900012345", "01.015", GP_URA),
            "application/fhir+json",
            example(),
        )
        .await;
    let v = assert_outcome(r, 403).await;
    assert!(v["issue"][0]["diagnostics"].as_str().expect("d").contains("transfer.no-agreement"), "{v}");
    assert_eq!(app.store.handover_count().await.expect("count"), 0);
    let refused = audit(&app, vec![AuditAction::HandoverRefused]).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].rule.as_deref(), Some("transfer.no-agreement"));
    assert_eq!(refused[0].patient_bsn.as_deref(), Some(BSN));
}

#[tokio::test]
async fn paediatric_handover_needs_consent_and_loses_vital_signs() {
    let app = app().await;
    let flat = std::fs::read(repo_file("examples/records/paediatrician-young-adult.flat.json")).expect("flat");
    let path = format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=individual-avg");
    let send = || app.post(&path, token(&app, "900003333", "01.019", AMALIA_URA), "application/json", flat.clone());
    // The agreement's legal basis is explicit consent: none recorded yet.
    let v = assert_outcome(send().await, 403).await;
    assert!(v.to_string().contains("transfer.no-consent"), "{v}");

    // The team (planned from the 18th birthday) and the patient's consent, by the administrator.
    let team = read_json("examples/care-teams/young-adult-avg-individual.json");
    let id = team["id"].as_str().expect("id").to_owned();
    let r = put(&app, &format!("/fhir/CareTeam/{id}"), &admin(&app), &team).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let consent = read_json("examples/consents/consent-amalia-agreement.json");
    let cid = consent["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &format!("/fhir/Consent/{cid}"), &admin(&app), &consent).await.status(), 201);

    let r = send().await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("summary");
    assert_eq!(s["transfer"]["agreements"], json!(["amalia-paediatrics-to-zorggroep-zuid@2.1"]));
    let removed = s["transfer"]["removed"].as_array().expect("removed");
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["category"], "vital-signs");
    assert_eq!(removed[0]["resources"], 6);
    assert!(removed[0]["reason"].as_str().expect("reason").contains("not covered by agreement"));

    // Nothing of it was stored: not in the output Bundle, not in the facade.
    let handover_id = s["id"].as_str().expect("id");
    let bundle = app.store.handover_output(handover_id).await.expect("output").expect("stored");
    assert!(!bundle.contains("vital-signs"));
    let bundle: Value = serde_json::from_str(&bundle).expect("bundle");
    assert_eq!(entries(&bundle) as u64, s["resources"]["total"].as_u64().expect("total"));
    let received = audit(&app, vec![AuditAction::HandoverReceived]).await;
    assert!(received[0].reason.as_deref().is_some_and(|r| r.contains("removed vital-signs")), "{:?}", received[0]);
    assert_eq!(received[0].patient_bsn.as_deref(), Some(YOUNG_BSN));
}

#[tokio::test]
async fn care_team_rules_and_writers() {
    let app = app().await;
    let path = format!("/fhir/CareTeam/{TEAM}");
    let team = read_json("examples/care-teams/frail-elderly-group-care.json");

    // An ineligible lead practitioner (a physiotherapist): 422 naming the rule.
    let mut bad = team.clone();
    bad["participant"][0]["role"][1]["coding"][0]["code"] = json!("04.000");
    let v = assert_outcome(put(&app, &path, &admin(&app), &bad).await, 422).await;
    assert!(v.to_string().contains("team.lead-eligible"), "{v}");

    // A VS without a supervising SO/AVG (the lead is a GZ-psycholoog): 422.
    let mut bad = team.clone();
    bad["participant"][0]["role"][1]["coding"][0]["code"] = json!("25.000");
    let v = assert_outcome(put(&app, &path, &admin(&app), &bad).await, 422).await;
    assert!(v.to_string().contains("team.supervision"), "{v}");

    // Writers: not a member, not the lead, another organisation: 403.
    let support = token(&app, SUPPORT, "30.000", PROVIDER);
    assert_outcome(put(&app, &path, &support, &team).await, 403).await;
    assert_outcome(put(&app, &path, &token(&app, LEAD, "01.047", "55556666"), &team).await, 403).await;
    // The lead it names may not create it (nobody names themselves into a team
    // that does not exist yet); an administrator does; the answer carries the rules'
    // warnings, if any.
    assert_outcome(put(&app, &path, &lead(&app), &team).await, 403).await;
    let r = put(&app, &path, &admin(&app), &team).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    let o: Value = r.json().await.expect("outcome");
    assert_eq!(o["resourceType"], "OperationOutcome");
    // Nobody takes a team over by naming themselves lead.
    let mut takeover = team.clone();
    takeover["participant"][0]["member"]["identifier"]["value"] = json!("900000999");
    let r = put(&app, &path, &token(&app, "900000999", "01.047", PROVIDER), &takeover).await;
    assert_outcome(r, 403).await;

    // Reading: members and administrators; others do not learn it exists.
    assert_eq!(get_json(&app, &path, &support).await["id"], TEAM);
    assert_eq!(get_json(&app, &path, &admin(&app)).await["meta"]["versionId"], "1");
    assert_outcome(get(&app, &path, &token(&app, "900000999", "01.047", PROVIDER)).await, 404).await;
    let search = format!("/fhir/CareTeam?patient:identifier=http://fhir.nl/fhir/NamingSystem/bsn%7C{BSN}");
    assert_eq!(get_json(&app, &search, &support).await["total"], 1);
    assert_eq!(get_json(&app, &search, &token(&app, "900000999", "01.047", PROVIDER)).await["total"], 0);

    let changes = audit(&app, vec![AuditAction::CareTeamChange]).await;
    assert_eq!(changes.iter().filter(|e| e.outcome == overdracht::audit::AuditOutcome::Success).count(), 1);
    assert!(changes.len() >= 6, "refusals are audited too");
}

/// A record whose resources carry no ids (as collection Bundles with `urn:uuid` fullUrls,
/// per-export numbering or flat items often do), for patient `bsn`.
fn id_less_record(bsn: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&example()).expect("json");
    for e in v["entry"].as_array_mut().expect("entries") {
        let e = e.as_object_mut().expect("entry");
        e.remove("fullUrl");
        e.get_mut("resource").and_then(Value::as_object_mut).expect("resource").remove("id");
    }
    // Nothing has an id, so nothing is referred to by one.
    fn drop_references(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("reference").is_some_and(Value::is_string) {
                    m.remove("reference");
                    m.entry("display").or_insert(json!("(no id)"));
                }
                m.values_mut().for_each(drop_references);
            }
            Value::Array(a) => a.iter_mut().for_each(drop_references),
            _ => {}
        }
    }
    drop_references(&mut v);
    v.to_string().replace(BSN, bsn).into_bytes()
}

/// Two patients' id-less records from one GP: both stored (201), each lead sees only their
/// own patient, complete, and nothing of the first was overwritten.
#[tokio::test]
async fn two_patients_id_less_records_stay_apart() {
    const OTHER_BSN: &str = "999911144";
    const OTHER_LEAD: &str = "900000111";
    let app = app().await;
    let team = read_json("examples/care-teams/frail-elderly-group-care.json");
    assert_eq!(put(&app, &format!("/fhir/CareTeam/{TEAM}"), &admin(&app), &team).await.status(), 201);
    let other_team: Value = serde_json::from_str(
        &team.to_string().replace(TEAM, "zuid-other-2026").replace(BSN, OTHER_BSN).replace(LEAD, OTHER_LEAD),
    )
    .expect("json");
    let r = put(&app, "/fhir/CareTeam/zuid-other-2026", &admin(&app), &other_team).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    let gp = token(&app, "900012345", "01.015", GP_URA);
    let query = format!("/handovers?receiver=ura%7C{PROVIDER}");
    let first = app.post(&query, gp.clone(), "application/fhir+json", id_less_record(BSN)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("summary");
    let second = app.post(&query, gp, "application/fhir+json", id_less_record(OTHER_BSN)).await;
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.expect("summary");
    let (pa, pb) = (patient_id(&first), patient_id(&second));
    assert_ne!(pa, pb, "two patients, two Patient resources");

    let other_lead = token(&app, OTHER_LEAD, "01.047", PROVIDER);
    let a = get_json(&app, &format!("/fhir/Patient/{pa}/$everything"), &lead(&app)).await;
    let b = get_json(&app, &format!("/fhir/Patient/{pb}/$everything"), &other_lead).await;
    assert_eq!(a["total"], first["resources"]["total"], "the first patient's dossier is complete");
    assert_eq!(b["total"], second["resources"]["total"]);
    let bsns = |bundle: &Value| -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for e in bundle["entry"].as_array().expect("entries") {
            for i in e["resource"]["identifier"].as_array().into_iter().flatten() {
                if i["system"] == "http://fhir.nl/fhir/NamingSystem/bsn" {
                    found.insert(i["value"].as_str().unwrap_or("").to_owned());
                }
            }
        }
        found
    };
    assert_eq!(bsns(&a), BTreeSet::from([BSN.to_owned()]));
    assert_eq!(bsns(&b), BTreeSet::from([OTHER_BSN.to_owned()]));
    // Each lead sees only their own patient.
    assert_outcome(get(&app, &format!("/fhir/Patient/{pb}"), &lead(&app)).await, 404).await;
    assert_outcome(get(&app, &format!("/fhir/Patient/{pa}"), &other_lead).await, 404).await;
}

/// The store never rebinds an id held for one patient to another: the write is refused
/// (409), audited, and nothing of the handover is stored.
#[tokio::test]
async fn an_id_bound_to_another_patient_is_refused_and_audited() {
    const OTHER_BSN: &str = "999911144";
    let app = app().await;
    let summary = gp_scenario(&app).await;
    let pid = patient_id(&summary);
    let condition = {
        let all = get_json(&app, &format!("/fhir/Patient/{pid}/$everything"), &lead(&app)).await;
        all["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Condition")
            .expect("a Condition")["resource"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };

    // Through the store: the Condition's id cannot be written for another patient.
    let row = overdracht::store::access_facts::FacadeResource {
        holder_ura: PROVIDER.to_owned(),
        resource_type: "Condition".to_owned(),
        resource_id: condition.clone(),
        patient_bsn: OTHER_BSN.to_owned(),
        patient_resource_id: None,
        category: "problems".to_owned(),
        resource: "{}".to_owned(),
    };
    let mut tx = app.store.begin().await.expect("tx");
    let written = tx
        .put_facade_resources(&[row], summary["id"].as_str().expect("handover id"), "2026-12-01T00:00:00Z")
        .await
        .expect("statement runs");
    assert_eq!(written, Err(format!("Condition/{condition}")), "the store refuses to write the id for another patient");
    tx.commit().await.expect("commit");
    assert_eq!(get_json(&app, &format!("/fhir/Condition/{condition}"), &lead(&app)).await["id"], condition.as_str());

    // Through the API: a foreign writer (or old data) has bound this patient's Patient id to
    // another BSN; the GP's next record for the patient is refused whole and audited.
    let mut conn = app.database().await;
    sqlx::query("UPDATE facade_resources SET patient_bsn = $1 WHERE resource_type = 'Patient' AND resource_id = $2")
        .bind(OTHER_BSN)
        .bind(&pid)
        .execute(&mut conn)
        .await
        .expect("rebind");
    let handovers_before = app.store.handover_count().await.expect("count");
    let refused_before = audit(&app, vec![AuditAction::HandoverRefused]).await.len();
    let mut changed: Value = serde_json::from_slice(&example()).expect("json");
    changed["meta"] = json!({"lastUpdated": "2026-12-03T10:00:00+01:00"});
    let r = app
        .post(
            &format!("/handovers?receiver=ura%7C{PROVIDER}"),
            token(&app, "900012345", "01.015", GP_URA),
            "application/fhir+json",
            changed.to_string(),
        )
        .await;
    let outcome = assert_outcome(r, 409).await;
    assert!(outcome["issue"][0]["diagnostics"].as_str().unwrap_or("").contains("another patient"), "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], format!("Patient/{pid}"));
    assert_eq!(app.store.handover_count().await.expect("count"), handovers_before, "nothing stored");
    let refused = audit(&app, vec![AuditAction::HandoverRefused]).await;
    assert_eq!(refused.len(), refused_before + 1, "the refusal is audited");
    assert!(
        refused.last().and_then(|e| e.reason.as_deref()).is_some_and(|r| r.contains("409")),
        "{:?}",
        refused.last()
    );
}

/// Resources beyond one insert statement's rows are all written, and the patient guard holds
/// in every statement (a refused row in the last chunk still refuses the whole write).
#[tokio::test]
async fn facade_rows_over_several_statements() {
    let app = app().await;
    let summary = gp_scenario(&app).await;
    let handover = summary["id"].as_str().expect("handover id").to_owned();
    let n = overdracht::store::access_facts::FACADE_ROWS_PER_STATEMENT * 2 + 1;
    let row = |i: usize, bsn: &str| overdracht::store::access_facts::FacadeResource {
        holder_ura: PROVIDER.to_owned(),
        resource_type: "Observation".to_owned(),
        resource_id: format!("obs-{i}"),
        patient_bsn: bsn.to_owned(),
        patient_resource_id: Some("p-many".to_owned()),
        category: "vital-signs".to_owned(),
        resource: format!("{{\"resourceType\":\"Observation\",\"id\":\"obs-{i}\"}}"),
    };
    let rows: Vec<_> = (0..n).map(|i| row(i, "999911144")).collect();
    let mut tx = app.store.begin().await.expect("tx");
    assert_eq!(tx.put_facade_resources(&rows, &handover, "2026-12-01T00:00:00Z").await.expect("runs"), Ok(()));
    tx.commit().await.expect("commit");
    let held = app.store.facade_resources_of_patient("p-many", None).await.expect("read");
    assert_eq!(held.len(), n);

    // Another patient's rows, the last of which takes an id of the first patient.
    let mut other: Vec<_> = (n..2 * n).map(|i| row(i, "999911156")).collect();
    other.push(row(n - 1, "999911156"));
    let mut tx = app.store.begin().await.expect("tx");
    let refused = tx.put_facade_resources(&other, &handover, "2026-12-01T00:00:00Z").await.expect("runs");
    assert_eq!(refused, Err(format!("Observation/obs-{}", n - 1)));
}

/// Several instances on one PostgreSQL database: an objection recorded through one instance
/// applies to reads through another at once (the database's access generation), not after
/// the other's cached access facts expire.
#[tokio::test]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_DATABASE=postgres and OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_a_change_through_one_instance_applies_on_another_at_once() {
    assert!(crate::database::on_postgres(), "run with OVERDRACHT_TEST_DATABASE=postgres");
    let a = app().await;
    let shared = a.database_url.clone();
    let b = spawn_app_with(|s| {
        s.policy.agreements_dir = Some(crate::helpers::open_ended_example_agreements(&s.data_dir));
        s.policy.admins = vec![format!("{PROVIDER}:{ADMIN}")];
        s.database_url = Some(shared);
    })
    .await;
    let pid = patient_id(&gp_scenario(&a).await);
    let lifestyle = format!("/fhir/Observation?patient={pid}");
    // Instance B reads (and caches the patient's access facts).
    assert!(categories(&get_json(&b, &lifestyle, &lead(&b)).await).contains("lifestyle"));
    assert!(categories(&get_json(&b, &lifestyle, &lead(&b)).await).contains("lifestyle"));
    // The objection goes through instance A.
    let objection = read_json("examples/consents/objection-lifestyle.json");
    let id = objection["id"].as_str().expect("id").to_owned();
    let r = put(&a, &format!("/fhir/Consent/{id}"), &lead(&a), &objection).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let after = get_json(&b, &lifestyle, &lead(&b)).await;
    assert!(!categories(&after).contains("lifestyle"), "instance B answered from stale access facts");
}
