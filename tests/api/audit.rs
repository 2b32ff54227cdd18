//! The audit trail through the API: one entry per action with the NEN 7513
//! fields, entries in the action's transaction, BALP-shaped AuditEvents, the access rule
//! of the views and their own audit entries.

use overdracht::audit::{self, AuditAction, AuditOutcome, AuditSearch, StoredEntry};
use serde_json::{json, Value};

use crate::helpers::{
    assert_outcome, example, receiver_query, spawn_app, store_team_led_by, TestApp, EXAMPLE_BSN, RECEIVER_URA,
    SENDER_URA,
};

/// All entries, oldest first, without the `agreement-change` entries every start writes
/// for the test agreements (see `agreement_changes_are_recorded_at_start`).
async fn entries(app: &TestApp) -> Vec<StoredEntry> {
    let all =
        audit::search(&app.store, &AuditSearch { oldest_first: true, ..Default::default() }).await.expect("search");
    all.into_iter().filter(|e| e.entry.action != AuditAction::AgreementChange).collect()
}

/// The receiving GZSP provider's SO (`receiver_token`) leads the patient's team there.
async fn in_team(app: &TestApp) {
    store_team_led_by(app, "900054321", "01.047", RECEIVER_URA, EXAMPLE_BSN).await;
}

/// A token of the receiving GZSP provider's SO.
fn receiver_token(app: &TestApp) -> String {
    app.token_with(|c| {
        c.uzi = "900054321".into();
        c.sub = "900054321".into();
        c.uzi_role = "01.047".into();
        c.ura = RECEIVER_URA.into();
    })
}

fn outsider_token(app: &TestApp) -> String {
    app.token_with(|c| {
        c.uzi = "900099999".into();
        c.ura = "11112222".into();
    })
}

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(token).send().await.expect("request")
}

async fn hand_over(app: &TestApp) -> Value {
    let r = app.post_handover(&receiver_query(), example()).await;
    assert_eq!(r.status().as_u16(), 201);
    r.json().await.expect("summary")
}

#[tokio::test]
async fn a_stored_handover_has_exactly_one_entry_with_the_nen7513_fields() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url(&format!("/handovers?{}", receiver_query())))
        .bearer_auth(app.token())
        .header("Content-Type", "application/fhir+json")
        .header("User-Agent", "test-his/1.0")
        .header("X-Forwarded-For", "192.0.2.7, 10.0.0.1")
        .body(example())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 201);
    let summary: Value = r.json().await.expect("summary");
    let all = entries(&app).await;
    assert_eq!(all.len(), 1, "one entry per handover");
    let e = &all[0].entry;
    assert_eq!(e.action, AuditAction::HandoverReceived);
    assert_eq!(e.outcome, AuditOutcome::Success);
    let user = e.user.as_ref().expect("user");
    assert_eq!((user.uzi.as_str(), user.uzi_role.as_str(), user.ura.as_str()), ("900012345", "01.015", SENDER_URA));
    assert_eq!(e.patient_bsn.as_deref(), Some(EXAMPLE_BSN));
    assert_eq!(e.objects[0], format!("Handover/{}", summary["id"].as_str().unwrap()));
    assert!(e.objects.iter().any(|o| o.starts_with("Patient/")));
    assert!(e.categories.iter().any(|c| c == "medication"), "{:?}", e.categories);
    assert_eq!(e.purpose.as_deref(), Some("TREAT"));
    assert!(e.request_id.as_deref().is_some_and(|r| !r.is_empty()), "request id");
    // The access point: the client application, the TCP peer, and the address a proxy says
    // it forwarded for.
    assert_eq!(
        e.client.as_deref(),
        Some("test-his/1.0 (claimed) @ 127.0.0.1 (forwarded for 192.0.2.7, claimed)"),
        "access point"
    );
    assert!(!e.emergency);

    // Re-sent: the same handover, and one more entry saying so.
    let again = app.post_handover(&receiver_query(), example()).await;
    assert_eq!(again.status().as_u16(), 200);
    let all = entries(&app).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].entry.action, AuditAction::HandoverReceived);
    assert!(all[1].entry.reason.as_deref().is_some_and(|r| r.contains("received again")));
    assert!(audit::verify(&app.store, &[]).await.unwrap().problem.is_none());
}

#[tokio::test]
async fn refused_handovers_have_exactly_one_entry_each() {
    let app = spawn_app().await;
    // Malformed body: 400.
    let r = app.post_handover(&receiver_query(), b"{\"resourceType\":".to_vec()).await;
    assert_outcome(r, 400).await;
    // Wrong purpose of use: 403.
    let token = app.token_with(|c| c.purpose_of_use = "HRESCH".into());
    let r = app.post(&format!("/handovers?{}", receiver_query()), token, "application/fhir+json", example()).await;
    assert_outcome(r, 403).await;
    // Missing receiver: 400.
    let r = app.post_handover("", example()).await;
    assert_outcome(r, 400).await;
    let all = entries(&app).await;
    let got: Vec<(AuditAction, AuditOutcome)> = all.iter().map(|s| (s.entry.action, s.entry.outcome)).collect();
    assert_eq!(
        got,
        vec![
            (AuditAction::HandoverRefused, AuditOutcome::Invalid),
            (AuditAction::HandoverRefused, AuditOutcome::Denied),
            (AuditAction::HandoverRefused, AuditOutcome::Invalid),
        ]
    );
    for s in &all {
        assert!(s.entry.user.is_some());
        assert!(s.entry.reason.as_deref().is_some_and(|r| r.starts_with("HTTP 4")), "{:?}", s.entry.reason);
    }
    assert_eq!(app.store.handover_count().await.unwrap(), 0);
}

/// Crash between action and entry is impossible by construction: when the entry cannot be
/// written, the handover is not stored either (one transaction).
#[tokio::test]
async fn a_handover_whose_entry_cannot_be_written_is_not_stored() {
    let app = spawn_app().await;
    let mut conn = app.database().await;
    let (create, drop): (&[&str], &str) = if crate::database::on_postgres() {
        (
            &[
                "CREATE FUNCTION audit_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
                "CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_fails()",
            ],
            "DROP TRIGGER audit_fails ON audit_entries",
        )
    } else {
        (
            &["CREATE TRIGGER audit_fails BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'disk full'); END"],
            "DROP TRIGGER audit_fails",
        )
    };
    for sql in create {
        sqlx::query(*sql).execute(&mut conn).await.expect("trigger");
    }
    let before = audit::head(&app.store).await.unwrap();
    let r = app.post_handover(&receiver_query(), example()).await;
    assert_outcome(r, 500).await;
    assert_eq!(app.store.handover_count().await.unwrap(), 0, "the handover must roll back with its entry");
    assert_eq!(audit::head(&app.store).await.unwrap(), before, "the chain head rolls back too");

    sqlx::query(drop).execute(&mut conn).await.expect("drop trigger");
    hand_over(&app).await;
    assert_eq!(app.store.handover_count().await.unwrap(), 1);
    assert_eq!(entries(&app).await.len(), 1);
}

#[tokio::test]
async fn audit_events_have_the_balp_shape_and_validate() {
    let app = spawn_app().await;
    hand_over(&app).await;
    // Since review R4 the receiver's view is for the patient's team there: put the SO in it.
    in_team(&app).await;
    let token = receiver_token(&app);
    let r = get(&app, &format!("/fhir/AuditEvent?patient={EXAMPLE_BSN}"), &token).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+json"));
    let bundle: Value = r.json().await.unwrap();
    crate::fhirbolt::assert_round_trips("AuditEvent searchset", &bundle);
    assert_eq!(bundle["type"], "searchset");
    // Newest first: this query itself (recorded before the search runs), then the handover.
    assert_eq!(bundle["total"], 2, "{bundle}");
    assert_eq!(bundle["entry"][0]["resource"]["subtype"][1]["code"], "audit-query");
    let ev = &bundle["entry"][1]["resource"];
    let outcome = overdracht::validate::Validator::embedded().validate(ev);
    assert!(!outcome.has_errors(), "{:?}", outcome.issues);
    assert_eq!(ev["resourceType"], "AuditEvent");
    assert_eq!(ev["type"]["system"], "http://terminology.hl7.org/CodeSystem/audit-event-type");
    assert_eq!(ev["type"]["code"], "rest");
    assert_eq!(ev["subtype"][0]["code"], "create");
    assert_eq!(ev["subtype"][1]["system"], "https://w3id.org/overdracht/fhir/CodeSystem/audit-action");
    assert_eq!(ev["subtype"][1]["code"], "handover-received");
    assert_eq!(ev["action"], "C");
    assert_eq!(ev["outcome"], "0");
    let agents = ev["agent"].as_array().unwrap();
    let requestors: Vec<&Value> = agents.iter().filter(|a| a["requestor"] == true).collect();
    assert_eq!(requestors.len(), 1);
    assert_eq!(requestors[0]["who"]["identifier"]["system"], "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers");
    assert_eq!(requestors[0]["who"]["identifier"]["value"], "900012345");
    assert_eq!(requestors[0]["role"][0]["coding"][0]["code"], "01.015");
    assert!(agents.iter().any(|a| a["who"]["identifier"]["value"] == SENDER_URA), "organisation agent");
    assert!(agents.iter().any(|a| a["type"]["coding"][0]["code"] == "110153"), "client agent");
    assert!(agents.iter().any(|a| a["type"]["coding"][0]["code"] == "110152"), "server agent");
    let entities = ev["entity"].as_array().unwrap();
    let patient: Vec<&Value> = entities.iter().filter(|e| e["role"]["code"] == "1").collect();
    assert_eq!(patient.len(), 1);
    assert_eq!(patient[0]["what"]["identifier"]["value"], EXAMPLE_BSN);
    assert_eq!(patient[0]["type"]["code"], "1");
    assert!(entities.iter().any(|e| e["role"]["code"] == "4" && e["what"]["reference"].is_string()));
    assert!(entities.iter().any(|e| e["type"]["code"] == "XrequestId"));
    let ext: Vec<&str> = ev["extension"].as_array().unwrap().iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert!(ext.contains(&"https://w3id.org/overdracht/fhir/StructureDefinition/audit-emergency-access"));
    assert!(ext.contains(&"https://w3id.org/overdracht/fhir/StructureDefinition/audit-data-category"));
    assert!(ext.contains(&"https://w3id.org/overdracht/fhir/StructureDefinition/audit-chain"));
    // Every extension we emit is declared in profiles/.
    for url in ext {
        let id = url.rsplit('/').next().unwrap();
        let path = crate::helpers::repo_file(&format!("profiles/StructureDefinition-{id}.json"));
        let sd: Value = serde_json::from_slice(&std::fs::read(&path).expect("declared")).unwrap();
        assert_eq!(sd["url"], url);
    }
}

#[tokio::test]
async fn every_action_type_gives_a_valid_audit_event() {
    let app = spawn_app().await;
    for a in AuditAction::ALL {
        let mut e = audit::AuditEntry::new(a, AuditOutcome::Success);
        e.user = Some(audit::Actor { uzi: "900054321".into(), uzi_role: "01.047".into(), ura: RECEIVER_URA.into() });
        e.on_behalf_of =
            Some(audit::Actor { uzi: "900011111".into(), uzi_role: "01.056".into(), ura: RECEIVER_URA.into() });
        e.patient_bsn = Some(EXAMPLE_BSN.into());
        e.objects = vec![
            "Condition/c1".into(),
            "Condition?patient=Patient/p1".into(),
            "Handover/h1".into(),
            "Organization/ura-87654321".into(),
        ];
        e.rule = Some("rule-1".into());
        e.reason = Some("because".into());
        e.categories = vec!["problems".into()];
        e.consent = Some("Consent/k1".into());
        e.emergency = a == AuditAction::BreakGlass;
        e.flag_for_review = e.emergency;
        e.purpose = Some("TREAT".into());
        e.request_id = Some("req-1".into());
        e.client = Some("his/1.0 @ 10.0.0.1".into());
        e.team_roles = vec!["lead-practitioner".into()];
        let before = audit::query::count(&app.store).await.unwrap();
        audit::record_alone(&app.store, &e).await.unwrap();
        assert_eq!(audit::query::count(&app.store).await.unwrap(), before + 1, "{a:?}: exactly one entry");
        let stored =
            &audit::search(&app.store, &AuditSearch { limit: Some(1), ..Default::default() }).await.unwrap()[0];
        assert_eq!(stored.entry, e, "{a:?}: stored as given");
        let ev = audit::event::audit_event(stored);
        let outcome = overdracht::validate::Validator::embedded().validate(&ev);
        assert!(!outcome.has_errors(), "{a:?}: {:?}", outcome.issues);
        assert!(ev["agent"].as_array().unwrap().iter().any(|g| g["type"]["coding"][0]["code"] == "RESP"));
        assert!(ev["entity"].as_array().unwrap().iter().any(|g| g["role"]["code"] == "24" && g["query"].is_string()));
        // The team role sits beside the UZI role of the requesting user.
        let requestor = ev["agent"].as_array().unwrap().iter().find(|g| g["requestor"] == true).unwrap().clone();
        assert_eq!(requestor["role"][1]["coding"][0]["code"], "RESP", "{requestor}");
        // An organisation named by URA is shown by identifier, not as a reference to nothing.
        assert!(ev["entity"].as_array().unwrap().iter().any(|g| g["what"]["identifier"]["value"] == "87654321"));
    }
    assert!(audit::verify(&app.store, &[]).await.unwrap().problem.is_none());
}

#[tokio::test]
async fn views_follow_the_access_rule_and_are_audited() {
    let app = spawn_app().await;
    hand_over(&app).await;
    // Since review R4 the receiver's view is for the patient's team there: put the SO in it.
    in_team(&app).await;
    let base = entries(&app).await.len();
    // The receiving and the sending organisation may look.
    for token in [receiver_token(&app), app.token()] {
        let r = get(&app, &format!("/fhir/AuditEvent?patient={EXAMPLE_BSN}"), &token).await;
        assert_eq!(r.status().as_u16(), 200);
        let r = get(&app, &format!("/patients/{EXAMPLE_BSN}/access-log"), &token).await;
        assert_eq!(r.status().as_u16(), 200);
    }
    // An outsider may not, nor may anyone search without a patient (no privacy officer configured).
    let r = get(&app, &format!("/fhir/AuditEvent?patient={EXAMPLE_BSN}"), &outsider_token(&app)).await;
    assert_outcome(r, 403).await;
    let r = get(&app, &format!("/patients/{EXAMPLE_BSN}/access-log"), &outsider_token(&app)).await;
    assert_outcome(r, 403).await;
    let r = get(&app, "/fhir/AuditEvent", &receiver_token(&app)).await;
    assert_outcome(r, 403).await;
    // Without a token: 401, recorded as a denial without a user (the access point and the
    // request line say where it came from).
    let r = app.client.get(app.url("/fhir/AuditEvent")).header("User-Agent", "probe/0.1").send().await.unwrap();
    assert_outcome(r, 401).await;
    // A bad parameter: 400, before any decision.
    let r = get(&app, "/fhir/AuditEvent?patient=123456789", &receiver_token(&app)).await;
    assert_outcome(r, 400).await;

    let all = entries(&app).await;
    let (unauthenticated, queries): (Vec<&StoredEntry>, Vec<&StoredEntry>) =
        all[base..].iter().partition(|q| q.entry.action == AuditAction::Denied);
    assert_eq!(unauthenticated.len(), 1, "the 401 is one denial");
    let u = &unauthenticated[0].entry;
    assert_eq!(
        (u.outcome, u.user.as_ref(), u.rule.as_deref()),
        (AuditOutcome::Denied, None, Some("auth.bearer-token"))
    );
    assert_eq!(u.client.as_deref(), Some("probe/0.1 (claimed) @ 127.0.0.1"));
    assert!(u.reason.as_deref().is_some_and(|r| r.starts_with("HTTP 401 on GET /fhir/AuditEvent: ")), "{u:?}");
    assert_eq!(queries.len(), 7, "one AuditQuery entry per view request");
    assert!(queries.iter().all(|q| q.entry.action == AuditAction::AuditQuery));
    let outcomes: Vec<AuditOutcome> = queries.iter().map(|q| q.entry.outcome).collect();
    use AuditOutcome::{Denied, Success};
    assert_eq!(outcomes, vec![Success, Success, Success, Success, Denied, Denied, Denied]);
    assert_eq!(queries[4].entry.rule.as_deref(), Some("audit-view/deny"));
    assert_eq!(queries[0].entry.rule.as_deref(), Some("audit-view/treating-organisation"));
    assert_eq!(queries[4].entry.user.as_ref().unwrap().ura, "11112222");
}

#[tokio::test]
async fn search_parameters_filter() {
    let app = spawn_app().await;
    hand_over(&app).await;
    // Since review R4 the receiver's view is for the patient's team there: put the SO in it.
    in_team(&app).await;
    let token = receiver_token(&app);
    let total = |v: &Value| v["entry"].as_array().map_or(0, Vec::len);
    let search = |q: String| {
        let (app, token) = (&app, &token);
        async move {
            let r = get(app, &format!("/fhir/AuditEvent?patient={EXAMPLE_BSN}{q}"), token).await;
            assert_eq!(r.status().as_u16(), 200, "{q}");
            r.json::<Value>().await.unwrap()
        }
    };
    // By now: the handover, then each search adds an AuditQuery entry before its answer's next search.
    assert_eq!(total(&search("&entity-type=Condition".into()).await), 1);
    assert_eq!(total(&search("&entity-type=CareTeam".into()).await), 0);
    assert_eq!(total(&search(format!("&agent={SENDER_URA}")).await), 1);
    assert_eq!(total(&search("&agent=http://fhir.nl/fhir/NamingSystem/uzi-nr-pers%7C900054321".into()).await), 4);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(total(&search(format!("&date=ge{today}&subtype=handover-received")).await), 1);
    assert_eq!(total(&search(format!("&date=lt{today}")).await), 0);
    assert_eq!(total(&search("&subtype=audit-query&_count=2".into()).await), 2);
    let r = get(&app, &format!("/fhir/AuditEvent?patient={EXAMPLE_BSN}&date=tomorrow"), &token).await;
    assert_outcome(r, 400).await;
    let r = get(&app, &format!("/fhir/AuditEvent?patient={EXAMPLE_BSN}&_sort=date"), &token).await;
    assert_outcome(r, 400).await;
}

#[tokio::test]
async fn the_access_log_is_readable_json_and_html() {
    let app = spawn_app().await;
    hand_over(&app).await;
    // Since review R4 the receiver's view is for the patient's team there: put the SO in it.
    in_team(&app).await;
    let token = receiver_token(&app);
    let r = get(&app, &format!("/patients/{EXAMPLE_BSN}/access-log"), &token).await;
    assert_eq!(r.status().as_u16(), 200);
    let log: Value = r.json().await.unwrap();
    assert_eq!(log["patient"], EXAMPLE_BSN);
    let items = log["entries"].as_array().unwrap();
    // Newest first: this view itself, then the handover.
    assert_eq!(items[0]["action"], "audit-query");
    let handover = &items[1];
    assert_eq!(handover["action"], "handover-received");
    assert_eq!(handover["who"]["uzi"], "900012345");
    assert_eq!(handover["who"]["roleName"], "general practitioner");
    assert!(handover["categories"].as_array().unwrap().iter().any(|c| c["code"] == "medication"));
    assert!(handover["summary"].as_str().unwrap().contains("record"));
    // The rule in words (policy::rules), in the reader's language.
    assert_eq!(
        (&handover["rule"], &handover["ruleText"]),
        (&json!("transfer.permitted"), &json!("handover under an agreement in force"))
    );

    for (path, accept) in [
        (format!("/patients/{EXAMPLE_BSN}/access-log?format=html&lang=nl"), "*/*"),
        (format!("/patients/{EXAMPLE_BSN}/access-log"), "text/html,application/xhtml+xml"),
    ] {
        let r = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .header("Accept", accept)
            .header("Accept-Language", "nl-NL")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(html.contains("Wie uw gegevens heeft ingezien"), "{html}");
        assert!(html.contains("droeg uw dossier over"), "{html}");
        assert!(html.contains("Medication"), "{html}");
    }
}

#[tokio::test]
async fn reading_a_handover_is_recorded_permitted_or_not() {
    let app = spawn_app().await;
    let summary = hand_over(&app).await;
    let id = summary["id"].as_str().unwrap();
    let base = entries(&app).await.len();
    // The sender and the receiver read it; an outsider is told it does not exist; an id
    // that is not a handover is an invalid request.
    assert_eq!(get(&app, &format!("/handovers/{id}"), &app.token()).await.status().as_u16(), 200);
    assert_eq!(get(&app, &format!("/handovers/{id}"), &receiver_token(&app)).await.status().as_u16(), 200);
    assert_outcome(get(&app, &format!("/handovers/{id}"), &outsider_token(&app)).await, 404).await;
    assert_outcome(get(&app, "/handovers/not-a-uuid", &app.token()).await, 404).await;
    let all = entries(&app).await;
    let reads: Vec<_> = all[base..].iter().map(|s| &s.entry).collect();
    assert_eq!(reads.len(), 4, "one entry per request");
    assert!(reads.iter().all(|e| e.action == AuditAction::Read));
    let rules: Vec<_> = reads.iter().map(|e| (e.outcome, e.rule.as_deref().unwrap_or_default())).collect();
    use AuditOutcome::{Denied, Invalid, Success};
    assert_eq!(
        rules,
        vec![
            (Success, "handover.sender"),
            // The receiving organisation, outside the patient's team: no referral reason.
            (Success, "handover.referral-reason.hidden"),
            (Denied, "handover.not-a-party"),
            (Invalid, "handover.unknown")
        ]
    );
    for e in &reads[..3] {
        assert_eq!(e.patient_bsn.as_deref(), Some(EXAMPLE_BSN));
        assert_eq!(e.objects, vec![format!("Handover/{id}")]);
    }
    assert_eq!(reads[2].user.as_ref().unwrap().uzi, "900099999");
    assert_eq!(reads[3].patient_bsn, None, "an unknown id names no patient");
}

#[tokio::test]
async fn a_conversion_is_recorded_with_its_patient_and_categories() {
    let app = spawn_app().await;
    let convert = |body: Vec<u8>| {
        app.client
            .post(app.url("/fhir/$convert"))
            .bearer_auth(app.token())
            .header("Content-Type", "application/fhir+json")
            .body(body)
            .send()
    };
    assert_eq!(convert(example()).await.unwrap().status().as_u16(), 200);
    assert_outcome(convert(b"{\"resourceType\": ".to_vec()).await.unwrap(), 400).await;
    let all = entries(&app).await;
    assert_eq!(all.len(), 2);
    let (ok, bad) = (&all[0].entry, &all[1].entry);
    assert_eq!((ok.action, ok.outcome), (AuditAction::Conversion, AuditOutcome::Success));
    assert_eq!(ok.patient_bsn.as_deref(), Some(EXAMPLE_BSN));
    assert!(ok.categories.iter().any(|c| c == "medication"), "{:?}", ok.categories);
    assert!(ok.objects.is_empty(), "nothing is stored, so no objects");
    assert!(ok.reason.as_deref().is_some_and(|r| r.ends_with("nothing stored")));
    assert_eq!((bad.action, bad.outcome), (AuditAction::Conversion, AuditOutcome::Invalid));
    assert!(bad.reason.as_deref().is_some_and(|r| r.starts_with("HTTP 400")), "{bad:?}");
}

#[tokio::test]
async fn the_capability_statement_declares_the_audit_event_search() {
    let app = spawn_app().await;
    let cs: Value = app.client.get(app.url("/fhir/metadata")).send().await.unwrap().json().await.unwrap();
    crate::fhirbolt::assert_round_trips("CapabilityStatement", &cs);
    let o = overdracht::validate::Validator::embedded().validate(&cs);
    assert!(!o.has_errors(), "{:?}", o.issues);
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let ae = resources.iter().find(|r| r["type"] == "AuditEvent").expect("AuditEvent declared");
    assert_eq!(ae["profile"], audit::event::PROFILE);
    let params: Vec<&str> = ae["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for p in ["patient", "date", "agent", "entity-type", "subtype", "_count"] {
        assert!(params.contains(&p), "{p} in {params:?}");
    }
}

/// A privacy officer lists the flagged entries and reviews them; each review is an entry
/// of its own, refusals are recorded too, and nobody else may review.
#[tokio::test]
async fn privacy_officers_review_flagged_entries() {
    let app = crate::helpers::spawn_app_with(|s| s.audit.privacy_officer_roles = vec!["99.999".into()]).await;
    let officer = app.token_with(|c| {
        c.uzi = "900077777".into();
        c.sub = "900077777".into();
        c.uzi_role = "99.999".into();
        c.ura = RECEIVER_URA.into();
    });
    let mut glass = audit::AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
    glass.patient_bsn = Some(EXAMPLE_BSN.into());
    // An access to the officer's own organisation's data (officers are scoped to it).
    glass.name_holder(RECEIVER_URA);
    glass.emergency = true;
    glass.flag_for_review = true;
    glass.break_glass_reason = Some("patient collapsed".into());
    let flagged = audit::record_alone(&app.store, &glass).await.unwrap();
    let mut plain = audit::AuditEntry::new(AuditAction::Read, AuditOutcome::Success);
    plain.name_holder(RECEIVER_URA);
    let plain = audit::record_alone(&app.store, &plain).await.unwrap();
    let base = entries(&app).await.len();

    let post =
        |token: String, body: Value| app.client.post(app.url("/audit/reviews")).bearer_auth(token).json(&body).send();
    // Not an officer: 403.
    let r = post(receiver_token(&app), serde_json::json!({"entry": flagged.id, "conclusion": "justified"})).await;
    assert_outcome(r.unwrap(), 403).await;
    assert_outcome(get(&app, "/audit/flagged", &receiver_token(&app)).await, 403).await;
    // The officer sees the one flagged entry.
    let list: Value = get(&app, "/audit/flagged", &officer).await.json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["entries"][0]["id"], flagged.id.as_str());
    // Refusals: unknown conclusion, unknown entry, an entry that is not flagged.
    let r = post(officer.clone(), serde_json::json!({"entry": flagged.id, "conclusion": "fine"})).await;
    assert_outcome(r.unwrap(), 400).await;
    let r = post(officer.clone(), serde_json::json!({"entry": "nope", "conclusion": "justified"})).await;
    assert_outcome(r.unwrap(), 404).await;
    let r = post(officer.clone(), serde_json::json!({"entry": plain.id, "conclusion": "justified"})).await;
    assert_outcome(r.unwrap(), 422).await;
    // The review, once.
    let body = serde_json::json!({"entry": flagged.id, "conclusion": "justified", "note": "lead unreachable, checked with the team"});
    let r = post(officer.clone(), body.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    assert_outcome(post(officer.clone(), body).await.unwrap(), 409).await;
    let list: Value = get(&app, "/audit/flagged", &officer).await.json().await.unwrap();
    assert_eq!(list["total"], 0);

    let all = entries(&app).await;
    let new: Vec<_> = all[base..].iter().map(|s| &s.entry).collect();
    // 2 refused (not an officer), 2 lists, 4 refused reviews, 1 review, 1 list.
    let summary: Vec<(AuditAction, AuditOutcome)> = new.iter().map(|e| (e.action, e.outcome)).collect();
    use AuditAction::{AuditQuery, Review};
    use AuditOutcome::{Denied, Invalid, Success};
    assert_eq!(
        summary,
        vec![
            (Review, Denied),
            (AuditQuery, Denied),
            (AuditQuery, Success),
            (Review, Invalid),
            (Review, Invalid),
            (Review, Invalid),
            (Review, Success),
            (Review, Invalid),
            (AuditQuery, Success)
        ]
    );
    let review = all.iter().find(|s| s.id == created["review"].as_str().unwrap()).expect("the review entry");
    assert_eq!(review.entry.objects, vec![format!("AuditEvent/{}", flagged.id)]);
    assert_eq!(review.entry.patient_bsn.as_deref(), Some(EXAMPLE_BSN));
    assert_eq!(review.entry.reason.as_deref(), Some("justified: lead unreachable, checked with the team"));
    assert_eq!(review.entry.user.as_ref().unwrap().uzi, "900077777");
}

/// The agreements a service starts with are recorded: each that came into use, changed or
/// is no longer loaded gets one `agreement-change` entry; an unchanged restart none.
#[tokio::test]
async fn agreement_changes_are_recorded_at_start() {
    let changes = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            let q =
                AuditSearch { actions: vec![AuditAction::AgreementChange], oldest_first: true, ..Default::default() };
            audit::search(&store, &q).await.unwrap()
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let agreements = dir.path().join("agreements");
    std::fs::create_dir_all(&agreements).unwrap();
    for f in ["de-linde-to-zorggroep-zuid.json", "amalia-paediatrics-to-zorggroep-zuid.json"] {
        std::fs::copy(crate::helpers::repo_file(&format!("examples/agreements/{f}")), agreements.join(f)).unwrap();
    }
    let data = dir.path().join("data");
    let start = |agreements: std::path::PathBuf, data: std::path::PathBuf| {
        crate::helpers::spawn_app_with(move |s| {
            s.policy.agreements_dir = Some(agreements);
            s.data_dir = data;
        })
    };
    let app = start(agreements.clone(), data.clone()).await;
    let first = changes(&app).await;
    assert_eq!(first.len(), 2, "two agreements came into use");
    assert!(first.iter().all(|e| e
        .entry
        .reason
        .as_deref()
        .unwrap()
        .contains(" came into use; source: policy.agreements_dir ")));
    assert!(first.iter().any(|e| e.entry.objects == vec!["Agreement/de-linde-to-zorggroep-zuid@1.0".to_owned()]));
    app.store.close().await;
    drop(app);

    // Unchanged restart: nothing new.
    let app = start(agreements.clone(), data.clone()).await;
    assert_eq!(changes(&app).await.len(), 2);
    app.store.close().await;
    drop(app);

    // One agreement edited without a new version, the other removed.
    let f = agreements.join("de-linde-to-zorggroep-zuid.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v["purpose"] = Value::String("changed purpose".into());
    std::fs::write(&f, v.to_string()).unwrap();
    std::fs::remove_file(agreements.join("amalia-paediatrics-to-zorggroep-zuid.json")).unwrap();
    let app = start(agreements.clone(), data.clone()).await;
    let all = changes(&app).await;
    let reasons: Vec<&str> = all[2..].iter().map(|e| e.entry.reason.as_deref().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].starts_with("agreement de-linde-to-zorggroep-zuid@1.0 changed (same version, other content)"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("is no longer loaded"), "{reasons:?}");
    assert!(audit::verify(&app.store, &[]).await.unwrap().problem.is_none());
}
