//! Authorisation findings of the security review: who may write the facts the access engine decides on
//! (teams, consents, the sender of a handover), and rights that were not scoped to an
//! organisation. Each test reproduces its finding against the demo set-up (the example
//! agreements, teams and consents that `serve --demo` loads) with tokens as
//! `overdracht token` mints them.

use overdracht::audit::{AuditAction, AuditOutcome, AuditSearch};
use serde_json::{json, Value};

use crate::helpers::{example, get, put, read_json, spawn_app_with, token, TestApp};

const PROVIDER: &str = "11112222";
const OTHER_ORG: &str = "55556666";
const GP_URA: &str = "87654321";
const GP_AGB: &str = "01234567";
const BSN: &str = "999911120";
const TEAM: &str = "zuid-999911120-2026";
const LEAD: &str = "900000101";
const VS: &str = "900000103";
const NURSE: &str = "900000104";
const OUTSIDER: &str = "900000999";
const ADMIN: &str = "900000900";
const OTHER_LEAD: &str = "900000501";
const OFFICER_ROLE: &str = "99.998";
const OBJECTION: &str = "objection-999911120-lifestyle";

/// `serve --demo`'s data (teams and consents stored at start), the example agreements made
/// open-ended, the demo administrator of Zorggroep Zuid, De Linde's AGB as an identity of its
/// URA, and a privacy-officer role.
async fn demo_app() -> TestApp {
    spawn_app_with(|s| {
        s.policy.agreements_dir = Some(crate::helpers::open_ended_example_agreements(&s.data_dir));
        s.policy.demo_examples = true;
        s.policy.admins = vec![format!("{PROVIDER}:{ADMIN}")];
        s.policy.agb_codes.insert(GP_URA.to_owned(), vec![GP_AGB.to_owned()]);
        s.audit.privacy_officer_roles = vec![OFFICER_ROLE.to_owned()];
    })
    .await
}

fn gp(app: &TestApp) -> String {
    token(app, "900012345", "01.015", GP_URA)
}

fn lead(app: &TestApp) -> String {
    token(app, LEAD, "01.047", PROVIDER)
}

fn admin(app: &TestApp) -> String {
    token(app, ADMIN, "01.047", PROVIDER)
}

async fn break_glass(app: &TestApp, path: &str, tok: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(tok).header("X-Break-Glass-Reason", "x").send().await.expect("get")
}

/// The GP hands the example over to Zorggroep Zuid (with a referral question); the summary.
async fn gp_handover(app: &TestApp) -> Value {
    let r = app
        .client
        .post(app.url(&format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=group-frail")))
        .bearer_auth(gp(app))
        .header("Content-Type", "application/fhir+json")
        .header("Referral-Reason", "falls%20at%20home%2C%20memory%20decline")
        .body(example())
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

async fn total(r: reqwest::Response) -> Option<u64> {
    if r.status() != 200 {
        return None;
    }
    r.json::<Value>().await.ok().and_then(|v| v["total"].as_u64())
}

async fn entries(app: &TestApp, actions: Vec<AuditAction>) -> Vec<overdracht::audit::AuditEntry> {
    overdracht::audit::search(&app.store, &AuditSearch { actions, oldest_first: true, ..Default::default() })
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.entry)
        .collect()
}

/// The example team with only one participant (the lead), as `uzi` with `uzi_role`.
fn team_led_by(id: &str, uzi: &str, uzi_role: &str, ura: &str) -> Value {
    let mut t = read_json("examples/care-teams/frail-elderly-group-care.json");
    t["id"] = json!(id);
    let mut lead = t["participant"][0].clone();
    lead["member"]["identifier"]["value"] = json!(uzi);
    lead["role"][1]["coding"][0]["code"] = json!(uzi_role);
    lead["onBehalfOf"]["identifier"]["value"] = json!(ura);
    t["participant"] = json!([lead]);
    t["managingOrganization"][0]["identifier"]["value"] = json!(ura);
    t
}

/// Finding 1 (critical): creating a care team only required that the caller is the lead it
/// names, and the UZI role in the body was never compared with the token.
#[tokio::test]
async fn self_made_teams() {
    let app = demo_app().await;
    let dossier = everything(&gp_handover(&app).await);
    let outsider = token(&app, OUTSIDER, "01.047", PROVIDER);
    let nurse = token(&app, NURSE, "30.000", PROVIDER);
    assert_eq!(total(get(&app, &dossier, &outsider).await).await, None, "the outsider starts with nothing");

    // The outsider names himself lead of a new team for the patient: refused, and still nothing.
    let own = team_led_by("outsider-team", OUTSIDER, "01.047", PROVIDER);
    let r = put(&app, "/fhir/CareTeam/outsider-team", &outsider, &own).await;
    assert_eq!(r.status(), 403, "the outsider made himself lead: {:?}", r.text().await);
    assert_eq!(total(get(&app, &dossier, &outsider).await).await, None);

    // The nurse (token role 30.000) writes herself in as SO (01.047): refused.
    let fake = team_led_by("nurse-team", NURSE, "01.047", PROVIDER);
    let r = put(&app, "/fhir/CareTeam/nurse-team", &nurse, &fake).await;
    assert_eq!(r.status(), 403, "the nurse made herself SO lead: {:?}", r.text().await);
    let all = get(&app, &dossier, &lead(&app)).await.json::<Value>().await.expect("bundle")["total"].clone();
    assert_ne!(get(&app, &dossier, &nurse).await.json::<Value>().await.expect("bundle")["total"], all);

    // The lead may not claim another profession for herself in her own team.
    let mut team = read_json("examples/care-teams/frail-elderly-group-care.json");
    team["participant"][0]["role"][1]["coding"][0]["code"] = json!("01.056");
    assert_eq!(put(&app, &format!("/fhir/CareTeam/{TEAM}"), &lead(&app), &team).await.status(), 403);

    // The body alone does not make a profession: an administrator records the nurse as a
    // co-practitioner with the SO role code; when she acts, her token says 30.000, and the
    // membership does not count.
    let mut team = read_json("examples/care-teams/frail-elderly-group-care.json");
    team["participant"][3]["role"][0]["coding"][0]["code"] = json!("co-practitioner");
    team["participant"][3]["role"][1]["coding"][0]["code"] = json!("01.047");
    let r = put(&app, &format!("/fhir/CareTeam/{TEAM}"), &admin(&app), &team).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(total(get(&app, &dossier, &nurse).await).await, None, "the claimed role is not hers");
    let vs = token(&app, VS, "30.070", PROVIDER);
    assert!(total(get(&app, &dossier, &vs).await).await.is_some(), "a member whose token matches still reads");

    // One active team per patient and organisation, even for an administrator.
    let second = team_led_by("second-team", LEAD, "01.047", PROVIDER);
    let r = put(&app, "/fhir/CareTeam/second-team", &admin(&app), &second).await;
    assert_eq!(r.status(), 409, "{:?}", r.text().await);
    // The patient's current lead may plan the follow-up team after the current one.
    let mut next = team_led_by("next-team", LEAD, "01.047", PROVIDER);
    let later = (chrono::Utc::now().date_naive() + chrono::Duration::days(400)).to_string();
    let evaluation = (chrono::Utc::now().date_naive() + chrono::Duration::days(500)).to_string();
    next["period"]["start"] = json!(later);
    next["participant"][0]["period"]["start"] = json!(later);
    next["extension"][0]["valueDate"] = json!(evaluation);
    let mut current = read_json("examples/care-teams/frail-elderly-group-care.json");
    let end = (chrono::Utc::now().date_naive() + chrono::Duration::days(399)).to_string();
    current["period"]["end"] = json!(end);
    for p in current["participant"].as_array_mut().expect("participants") {
        p["period"]["end"] = json!(end);
    }
    let r = put(&app, &format!("/fhir/CareTeam/{TEAM}"), &lead(&app), &current).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = put(&app, "/fhir/CareTeam/next-team", &lead(&app), &next).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);

    // Every write decision is audited with the rule that made it.
    let changes = entries(&app, vec![AuditAction::CareTeamChange]).await;
    let rules: Vec<&str> = changes.iter().filter_map(|e| e.rule.as_deref()).collect();
    for rule in ["team.create.not-allowed", "team.member.role-mismatch", "team.one-active"] {
        assert!(rules.contains(&rule), "{rule} in {rules:?}");
    }
    let nurse_read = entries(&app, vec![AuditAction::Export]).await;
    assert!(nurse_read.iter().any(|e| e.rule.as_deref() == Some("membership.role-mismatch")));
}

/// Finding 2 (critical): another organisation with a team for the same BSN could PUT the
/// patient's objection back to inactive.
#[tokio::test]
async fn consent_takeover() {
    let app = demo_app().await;
    // Another organisation has its own team for the patient (however it got there).
    let theirs = team_led_by("other-org-team", OTHER_LEAD, "01.047", OTHER_ORG);
    let now = chrono::Utc::now().to_rfc3339();
    let mut tx = app.store.begin().await.expect("tx");
    let by = overdracht::store::Writer { uzi: "0", ura: OTHER_ORG, at: &now };
    tx.put_care_team("other-org-team", BSN, OTHER_ORG, &theirs.to_string(), &by).await.expect("team");
    tx.commit().await.expect("commit");

    let path = format!("/fhir/Consent/{OBJECTION}");
    let mut withdrawn = read_json(&format!("examples/consents/{}.json", "objection-lifestyle"));
    withdrawn["status"] = json!("inactive");
    // Their lead may not change the objection Zorggroep Zuid recorded.
    let other_lead = token(&app, OTHER_LEAD, "01.047", OTHER_ORG);
    let r = put(&app, &path, &other_lead, &withdrawn).await;
    assert_eq!(r.status(), 403, "another organisation withdrew the objection: {:?}", r.text().await);
    // Nor read it.
    assert_eq!(get(&app, &path, &other_lead).await.status(), 404);

    // Zorggroep Zuid's lead may not withdraw it without the patient's recorded statement ...
    let r = put(&app, &path, &lead(&app), &withdrawn).await;
    assert_eq!(r.status(), 422, "{:?}", r.text().await);
    // ... and the GP's next handover still leaves the lifestyle data out.
    let summary = gp_handover(&app).await;
    let removed: Vec<&str> = summary["transfer"]["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .filter_map(|r| r["category"].as_str())
        .collect();
    assert!(removed.contains(&"lifestyle"), "{removed:?}");
    // With the statement (a Consent.sourceAttachment), it may.
    withdrawn["sourceAttachment"] = json!({
        "contentType": "application/pdf",
        "title": "Patient withdraws the objection to sharing lifestyle data",
        "creation": "2026-12-01",
        "url": "https://dms.zorggroepzuid.example.org/statements/123"
    });
    let r = put(&app, &path, &lead(&app), &withdrawn).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);

    let changes = entries(&app, vec![AuditAction::ConsentChange]).await;
    let rules: Vec<(&str, bool)> =
        changes.iter().filter_map(|e| e.rule.as_deref().map(|r| (r, e.outcome == AuditOutcome::Success))).collect();
    assert!(rules.contains(&("consent.write.other-organisation", false)), "{rules:?}");
    assert!(rules.contains(&("consent.withdraw.no-statement", false)), "{rules:?}");
    assert!(rules.contains(&("consent.withdraw.with-statement", true)), "{rules:?}");
}

/// Finding 3 (high): the sender was not bound to the token; a sender also saw the receiver's
/// whole access log of the patient.
#[tokio::test]
async fn sender_not_bound_to_the_token() {
    let app = demo_app().await;
    let other = token(&app, "900066666", "01.015", OTHER_ORG);
    let to_provider = format!("/handovers?receiver=ura%7C{PROVIDER}");
    // Another organisation hands over as De Linde by its AGB, or by the record's author.
    for query in [format!("{to_provider}&sender=agb-z%7C{GP_AGB}"), to_provider.clone()] {
        let r = app.post(&query, other.clone(), "application/fhir+json", example()).await;
        assert_eq!(r.status(), 403, "{query}: {:?}", r.text().await);
    }
    // De Linde itself may use its AGB, configured as an identity of its URA.
    let r =
        app.post(&format!("{to_provider}&sender=agb-z%7C{GP_AGB}"), gp(&app), "application/fhir+json", example()).await;
    assert_eq!(r.status(), 201);
    let summary: Value = r.json().await.expect("summary");
    assert_eq!(summary["sender"], format!("agb-z|{GP_AGB}"));
    let refused = entries(&app, vec![AuditAction::HandoverRefused]).await;
    assert!(refused.iter().any(|e| e.rule.as_deref() == Some("handover.sender.not-token-organisation")), "{refused:?}");

    // The lead reads; the GP (the sender) sees what it did itself, not who read at the receiver.
    assert_eq!(get(&app, &everything(&summary), &lead(&app)).await.status(), 200);
    let log: Value = get(&app, &format!("/patients/{BSN}/access-log"), &gp(&app)).await.json().await.expect("log");
    let log_text = log.to_string();
    assert!(!log_text.contains(LEAD), "the sender sees the receiver's reads: {log_text}");
    assert!(log["entries"].as_array().is_some_and(|e| !e.is_empty()), "{log}");
    let events: Value =
        get(&app, &format!("/fhir/AuditEvent?patient={BSN}"), &gp(&app)).await.json().await.expect("events");
    assert!(!events.to_string().contains(LEAD), "the sender sees the receiver's reads");
    // The receiver still sees the whole log.
    let log = get(&app, &format!("/patients/{BSN}/access-log"), &lead(&app)).await.text().await.expect("log");
    assert!(log.contains(LEAD) && log.contains("900012345"));
}

/// Finding 4 (high): privacy officers, administrators and report rights were not scoped to
/// the organisation in the token.
#[tokio::test]
async fn officers_and_admins_unscoped() {
    let app = demo_app().await;
    let dossier = everything(&gp_handover(&app).await);
    let outsider = token(&app, OUTSIDER, "01.047", PROVIDER);
    assert_eq!(break_glass(&app, &dossier, &outsider).await.status(), 200);
    let flagged_id = overdracht::audit::search(
        &app.store,
        &AuditSearch { actions: vec![AuditAction::BreakGlass], ..Default::default() },
    )
    .await
    .expect("search")[0]
        .id
        .clone();

    // An officer of an unrelated organisation: nothing of Zorggroep Zuid's trail.
    let stranger = token(&app, "900088888", OFFICER_ROLE, OTHER_ORG);
    let r = get(&app, "/fhir/AuditEvent", &stranger).await;
    let text = r.text().await.expect("body");
    assert!(!text.contains(BSN), "another organisation's officer reads the trail: {}", &text[..text.len().min(300)]);
    let r = get(&app, "/audit/flagged", &stranger).await;
    let text = r.text().await.expect("body");
    assert!(!text.contains(&flagged_id), "another organisation's officer lists the flagged entries");
    let review = json!({"entry": flagged_id, "conclusion": "justified"});
    let r = app.client.post(app.url("/audit/reviews")).bearer_auth(&stranger).json(&review).send().await.expect("post");
    assert_ne!(r.status(), 201, "another organisation's officer closed the review");

    // The demo administrator acting for another organisation is not an administrator there.
    let elsewhere = token(&app, ADMIN, "01.047", OTHER_ORG);
    assert_eq!(get(&app, "/report", &elsewhere).await.status(), 403);

    // Zorggroep Zuid's own officer sees and reviews it.
    let officer = token(&app, "900000800", OFFICER_ROLE, PROVIDER);
    let text = get(&app, "/audit/flagged", &officer).await.text().await.expect("body");
    assert!(text.contains(&flagged_id), "{text}");
    let events = get(&app, "/fhir/AuditEvent", &officer).await.text().await.expect("body");
    assert!(events.contains(BSN));
    let r = app.client.post(app.url("/audit/reviews")).bearer_auth(&officer).json(&review).send().await.expect("post");
    assert_eq!(r.status(), 201);
    assert_eq!(get(&app, "/report", &admin(&app)).await.status(), 200);
    let queries = entries(&app, vec![AuditAction::Review]).await;
    assert!(queries.iter().any(|e| e.rule.as_deref() == Some("audit-review/other-organisation")), "{queries:?}");
}

/// Finding 5 (medium): break-the-glass for any profession of the receiving organisation.
#[tokio::test]
async fn break_the_glass_for_any_profession() {
    let app = demo_app().await;
    let dossier = everything(&gp_handover(&app).await);
    for role in ["99.999", "30.000"] {
        let t = token(&app, "900000998", role, PROVIDER);
        let r = break_glass(&app, &dossier, &t).await;
        assert_eq!(r.status(), 404, "{role} broke the glass");
    }
    // A BIG-registered profession still may, flagged for review.
    let so = token(&app, OUTSIDER, "01.047", PROVIDER);
    assert_eq!(break_glass(&app, &dossier, &so).await.status(), 200);
    let bg = entries(&app, vec![AuditAction::BreakGlass, AuditAction::Export]).await;
    let denied: Vec<_> = bg.iter().filter(|e| e.rule.as_deref() == Some("break-glass.profession")).collect();
    assert_eq!(denied.len(), 2, "{bg:?}");
    assert!(denied.iter().all(|e| e.flag_for_review && e.outcome == AuditOutcome::Denied));
}

/// Finding 6 (medium): anyone at the receiving organisation read a handover's referral reason.
#[tokio::test]
async fn referral_reason_visible_to_the_whole_receiver() {
    let app = demo_app().await;
    let summary = gp_handover(&app).await;
    let path = format!("/handovers/{}", summary["id"].as_str().expect("id"));
    let outsider = token(&app, OUTSIDER, "01.047", PROVIDER);
    let v: Value = get(&app, &path, &outsider).await.json().await.expect("json");
    assert!(v["referralReason"].is_null(), "an outsider at the receiver reads the referral reason: {v}");
    for who in [lead(&app), gp(&app)] {
        let v: Value = get(&app, &path, &who).await.json().await.expect("json");
        assert_eq!(v["referralReason"], "falls at home, memory decline");
    }
    let reads = entries(&app, vec![AuditAction::Read]).await;
    let rules: Vec<&str> = reads.iter().filter_map(|e| e.rule.as_deref()).collect();
    assert!(rules.contains(&"handover.referral-reason.hidden"), "{rules:?}");
}

/// Finding 7 (low): `GET /fhir/CareTeam` ignored the purpose of use.
#[tokio::test]
async fn care_team_reads_ignore_purpose_of_use() {
    let app = demo_app().await;
    let research = app.token_with(|c| {
        c.uzi = LEAD.into();
        c.sub = LEAD.into();
        c.uzi_role = "01.047".into();
        c.ura = PROVIDER.into();
        c.purpose_of_use = "HRESCH".into();
    });
    let search = format!("/fhir/CareTeam?patient:identifier=http://fhir.nl/fhir/NamingSystem/bsn%7C{BSN}");
    let v: Value = get(&app, &search, &research).await.json().await.expect("json");
    assert_eq!(v["total"], 0, "a research purpose lists the team");
    assert_eq!(get(&app, &format!("/fhir/CareTeam/{TEAM}"), &research).await.status(), 404);
    // For treatment it is there.
    let v: Value = get(&app, &search, &lead(&app)).await.json().await.expect("json");
    assert!(v["total"].as_u64() > Some(0));
    let reads = entries(&app, vec![AuditAction::Read, AuditAction::Search]).await;
    assert!(reads.iter().any(|e| e.rule.as_deref() == Some("purpose.not-permitted")), "{reads:?}");
}
