//! The contracting evidence report (`GET /report`), on the real service with the
//! demo examples (`serve --demo`: the example agreements, teams and consents).
//!
//! A scripted scenario (handovers from two senders, re-sends, refusals, reads by the lead, a
//! co-practitioner and a supporting member, denials of an outsider, two break-the-glass
//! reads of which one is reviewed) is checked twice: every figure of the JSON report equals
//! the scripted number, and equals a count made here, independently, from the audit trail
//! (`audit::search`, not the report's SQL). The browser test loads the HTML page in Debian's
//! chromium and is run by `.ci/run` (`--ignored browser_`).

use std::collections::{BTreeMap, BTreeSet};

use overdracht::audit::{self, Actor, AuditAction, AuditEntry, AuditOutcome, AuditSearch, StoredEntry};
use serde_json::Value;

use crate::helpers::{assert_outcome, example, repo_file, spawn_app_with, token, TestApp};

const PROVIDER: &str = "11112222";
const GP_URA: &str = "87654321";
const AMALIA_URA: &str = "12345678";
const STRANGER_URA: &str = "55556666";
const LEAD: &str = "900000101";
const VS: &str = "900000103";
const SUPPORT: &str = "900000104";
const OUTSIDER: &str = "900000999";
const ADMIN: &str = "900000900";
const OFFICER_ROLE: &str = "99.001";

/// What the scenario does, and so what the report must say.
const GP_NEW: i64 = 3;
const GP_AGAIN: i64 = 1;
const AMALIA_NEW: i64 = 2;
const REFUSED_HERE: i64 = 2;
const INVALID_HERE: i64 = 1;
const LEAD_EXPORTS: i64 = 2;
const LEAD_READS: i64 = 1;
const VS_SEARCHES: i64 = 2;
const SUPPORT_EXPORTS: i64 = 1;
const OUTSIDER_DENIED: i64 = 3;
const BREAK_GLASS: i64 = 2;

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.policy.agreements_dir = None;
        s.policy.demo_examples = true;
        // Administrators are per organisation: the same person administers
        // Zorggroep Zuid and, for the test of another organisation's report, 44443333.
        s.policy.admins = vec![format!("{PROVIDER}:{ADMIN}"), format!("44443333:{ADMIN}")];
        s.audit.privacy_officer_roles = vec![OFFICER_ROLE.to_owned()];
    })
    .await
}

async fn get(app: &TestApp, path: &str, tok: &str, break_glass: Option<&str>) -> reqwest::Response {
    let mut r = app.client.get(app.url(path)).bearer_auth(tok);
    if let Some(reason) = break_glass {
        r = r.header("X-Break-Glass-Reason", reason);
    }
    r.send().await.expect("get")
}

/// The same record made a different handover: different bytes (trailing newlines), same content.
fn variant(body: &[u8], n: usize) -> Vec<u8> {
    let mut b = body.to_vec();
    b.extend(std::iter::repeat_n(b'\n', n));
    b
}

struct Scenario {
    patient_id: String,
    break_glass_ids: Vec<String>,
}

/// The scripted scenario. Returns what later steps need.
async fn scenario(app: &TestApp) -> Scenario {
    let gp = token(app, "900012345", "01.015", GP_URA);
    let to_provider = format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=group-frail");
    let mut patient_id = String::new();
    for i in 0..GP_NEW {
        let r = app.post(&to_provider, gp.clone(), "application/fhir+json", variant(&example(), i as usize)).await;
        assert_eq!(r.status(), 201, "GP handover {i}");
        let v: Value = r.json().await.expect("summary");
        patient_id = v["patient"].as_str().expect("patient").trim_start_matches("Patient/").to_owned();
    }
    for _ in 0..GP_AGAIN {
        let r = app.post(&to_provider, gp.clone(), "application/fhir+json", example()).await;
        assert_eq!(r.status(), 200, "the same record again");
    }
    // Amalia's paediatrics: the agreement leaves out vital signs (removed before storage).
    let flat = std::fs::read(repo_file("examples/records/paediatrician-young-adult.flat.json")).expect("flat");
    let amalia = token(app, "900003333", "01.019", AMALIA_URA);
    for i in 0..AMALIA_NEW {
        let path = format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=individual-avg");
        let r = app.post(&path, amalia.clone(), "application/json", variant(&flat, i as usize)).await;
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }
    // Refused: a practice without an agreement (twice); and a handover to another provider,
    // which is not this provider's business and must not be counted.
    let stranger = token(app, "900077777", "01.015", STRANGER_URA);
    for _ in 0..REFUSED_HERE {
        let path = format!("/handovers?receiver=ura%7C{PROVIDER}&sender=ura%7C{STRANGER_URA}");
        assert_outcome(app.post(&path, stranger.clone(), "application/fhir+json", example()).await, 403).await;
    }
    // A record that cannot be read: refused as invalid (counted, rule `request.invalid`).
    for _ in 0..INVALID_HERE {
        let path = format!("/handovers?receiver=ura%7C{PROVIDER}&sender=ura%7C{STRANGER_URA}");
        let r = app.post(&path, stranger.clone(), "application/fhir+json", b"{\"resourceType\": 42}".to_vec()).await;
        assert!(r.status().is_client_error() && r.status() != 403, "{}", r.status());
    }
    assert_outcome(
        app.post("/handovers?receiver=ura%7C99998888", gp.clone(), "application/fhir+json", example()).await,
        403,
    )
    .await;

    // Reads. The lead practitioner (SO): the whole record twice and one Condition.
    let everything = format!("/fhir/Patient/{patient_id}/$everything");
    let lead = token(app, LEAD, "01.047", PROVIDER);
    let mut condition = String::new();
    for _ in 0..LEAD_EXPORTS {
        let r = get(app, &everything, &lead, None).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("bundle");
        crate::fhirbolt::assert_round_trips("$everything Bundle", &v);
        condition = v["entry"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["resource"]["resourceType"] == "Condition"))
            .and_then(|e| e["resource"]["id"].as_str())
            .expect("a condition")
            .to_owned();
    }
    for _ in 0..LEAD_READS {
        assert_eq!(get(app, &format!("/fhir/Condition/{condition}"), &lead, None).await.status(), 200);
    }
    // A co-practitioner (the nurse practitioner, VS): searches.
    let vs = token(app, VS, "30.070", PROVIDER);
    for _ in 0..VS_SEARCHES {
        assert_eq!(get(app, &format!("/fhir/Condition?patient={patient_id}"), &vs, None).await.status(), 200);
    }
    // The supporting discipline: its categories of the whole record.
    let support = token(app, SUPPORT, "30.000", PROVIDER);
    for _ in 0..SUPPORT_EXPORTS {
        assert_eq!(get(app, &everything, &support, None).await.status(), 200);
    }
    // An outsider at the provider: denied twice the whole record, once a Condition.
    let outsider = token(app, OUTSIDER, "01.047", PROVIDER);
    assert_outcome(get(app, &everything, &outsider, None).await, 404).await;
    assert_outcome(get(app, &everything, &outsider, None).await, 404).await;
    assert_outcome(get(app, &format!("/fhir/Condition/{condition}"), &outsider, None).await, 404).await;
    // ... and breaks the glass twice, with a stated reason.
    for _ in 0..BREAK_GLASS {
        let r = get(app, &everything, &outsider, Some("patient%20collapsed%2C%20lead%20unreachable")).await;
        assert_eq!(r.status(), 200);
    }
    let bg = entries(app, vec![AuditAction::BreakGlass]).await;
    assert_eq!(bg.len() as i64, BREAK_GLASS);
    // The privacy officer reviews the first (as the review endpoint will record it).
    let mut review = AuditEntry::new(AuditAction::Review, AuditOutcome::Success);
    review.user = Some(Actor { uzi: "900000800".into(), uzi_role: OFFICER_ROLE.into(), ura: PROVIDER.into() });
    review.name_reviewed(&bg[0].id);
    review.reason = Some("justified: the lead was unreachable during a fall at home".into());
    audit::record_alone(&app.store, &review).await.expect("review");
    Scenario { patient_id, break_glass_ids: bg.iter().map(|e| e.id.clone()).collect() }
}

async fn entries(app: &TestApp, actions: Vec<AuditAction>) -> Vec<StoredEntry> {
    audit::search(&app.store, &AuditSearch { actions, oldest_first: true, ..Default::default() }).await.expect("audit")
}

async fn report_json(app: &TestApp, tok: &str) -> Value {
    let r = get(app, "/report?format=json", tok, None).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    r.json().await.expect("json")
}

fn admin(app: &TestApp) -> String {
    token(app, ADMIN, "01.047", PROVIDER)
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn sender_name(raw: &str) -> &'static str {
    match raw {
        "agb-z|01234567" | "ura|87654321" | "87654321" => "Huisartsenpraktijk De Linde",
        "agb-z|06010101" | "ura|12345678" | "12345678" => "Radboudumc Amalia kinderziekenhuis",
        "55556666" => "URA 55556666",
        other => panic!("unexpected sender {other}"),
    }
}

/// The figures, counted here from the audit trail and the handovers table, independently
/// of the report's SQL.
#[derive(Debug, Default, PartialEq, Eq)]
struct Independent {
    received: BTreeMap<String, i64>,
    again: i64,
    refused: BTreeMap<(String, String), i64>,
    removed: BTreeMap<String, (i64, i64)>,
    reads: BTreeMap<String, [i64; 5]>,
    denials: BTreeMap<String, i64>,
    break_glass: Vec<(String, bool)>,
    months: BTreeSet<String>,
}

async fn independent(app: &TestApp) -> Independent {
    let mut out = Independent::default();
    let all = audit::search(&app.store, &AuditSearch { oldest_first: true, ..Default::default() }).await.expect("all");
    let month = |recorded: &str| {
        let t = chrono::DateTime::parse_from_rfc3339(recorded).expect("time");
        t.with_timezone(&chrono_tz::Europe::Amsterdam).format("%Y-%m").to_string()
    };
    for e in &all {
        let x = &e.entry;
        if x.action == AuditAction::HandoverReceived && x.outcome == AuditOutcome::Success {
            let id = x.handover_id.as_deref().expect("a received handover names its handover");
            let h = app.store.handover(id).await.expect("db").expect("stored handover");
            if h.receiver != format!("ura|{PROVIDER}") {
                continue;
            }
            *out.received.entry(sender_name(&h.sender).to_owned()).or_insert(0) += 1;
            if x.replay {
                out.again += 1;
            }
            out.months.insert(month(&e.recorded));
        }
        if x.action == AuditAction::HandoverRefused
            && matches!(x.outcome, AuditOutcome::Denied | AuditOutcome::Invalid)
            && x.holder_ura.as_deref() == Some(PROVIDER)
        {
            let sender = x.user.as_ref().map(|u| u.ura.clone()).unwrap_or_default();
            // A refusal without a rule is a malformed request or record (documented as `request.invalid`).
            let rule = match (&x.rule, x.outcome) {
                (Some(r), _) => r.clone(),
                (None, AuditOutcome::Invalid) => "request.invalid".to_owned(),
                (None, _) => String::new(),
            };
            let key = (sender_name(&sender).to_owned(), rule);
            *out.refused.entry(key).or_insert(0) += 1;
        }
    }
    // Removed categories: from the summaries of the stored handovers.
    let mut seen = BTreeSet::new();
    for e in all.iter().filter(|e| e.entry.action == AuditAction::HandoverReceived) {
        let id = e.entry.handover_id.clone().expect("a received handover names its handover");
        if !seen.insert(id.clone()) {
            continue;
        }
        let h = app.store.handover(&id).await.expect("db").expect("stored");
        let summary: Value = serde_json::from_str(&h.summary).expect("summary");
        for r in summary["transfer"]["removed"].as_array().into_iter().flatten() {
            let key = format!("{} / {}", sender_name(&h.sender), r["category"].as_str().expect("category"));
            let c = out.removed.entry(key).or_insert((0, 0));
            c.0 += 1;
            c.1 += n(&r["resources"]);
        }
    }
    // The provider's own staff, or the provider's copy of the data (the holder).
    let of_provider = |x: &AuditEntry| {
        x.user.as_ref().is_some_and(|u| u.ura == PROVIDER) || x.holder_ura.as_deref() == Some(PROVIDER)
    };
    for e in &all {
        let x = &e.entry;
        if !of_provider(x) {
            continue;
        }
        let role = x.user.as_ref().map(|u| u.uzi_role.clone()).unwrap_or_default();
        let slot = match x.action {
            AuditAction::Read => Some(0),
            AuditAction::Search => Some(1),
            AuditAction::Export => Some(2),
            AuditAction::BreakGlass => Some(3),
            _ => None,
        };
        // Failed requests (invalid, server errors) are neither permitted nor denied reads.
        let slot = slot.filter(|_| matches!(x.outcome, AuditOutcome::Success | AuditOutcome::Denied));
        if let Some(i) = slot {
            let c = out.reads.entry(role).or_insert([0; 5]);
            if x.outcome == AuditOutcome::Denied {
                c[4] += 1;
            } else {
                c[i] += 1;
            }
        }
        if x.outcome == AuditOutcome::Denied && x.action != AuditAction::HandoverRefused {
            *out.denials.entry(x.rule.clone().unwrap_or_default()).or_insert(0) += 1;
        }
        if x.action == AuditAction::BreakGlass {
            let reviewed = all.iter().any(|r| {
                r.entry.action == AuditAction::Review
                    && r.seq > e.seq
                    && r.entry.reviewed_entry.as_deref() == Some(e.id.as_str())
            });
            out.break_glass.push((e.id.clone(), reviewed));
        }
    }
    out
}

/// The same figures, read from the JSON report.
fn from_report(r: &Value) -> Independent {
    let mut out = Independent::default();
    let h = &r["handovers"];
    for s in h["per_sender"].as_array().expect("per_sender") {
        if n(&s["received"]) > 0 {
            out.received.insert(s["sender"].as_str().expect("s").to_owned(), n(&s["received"]));
        }
    }
    out.again = n(&h["received_again"]);
    for m in h["per_month"].as_array().expect("per_month") {
        if n(&m["received"]) > 0 {
            out.months.insert(m["month"].as_str().expect("m").to_owned());
        }
    }
    // Refusals per sender and rule: the report has them per sender and per rule; with one
    // refusing sender here, the pairs follow.
    let senders: Vec<&Value> = h["per_sender"].as_array().expect("s").iter().filter(|s| n(&s["refused"]) > 0).collect();
    assert!(senders.len() <= 1, "one refusing sender in the scenario");
    for rr in h["refused_by_rule"].as_array().expect("refused_by_rule") {
        let sender = senders.first().map_or("", |s| s["sender"].as_str().expect("s"));
        out.refused.insert((sender.to_owned(), rr["rule"].as_str().expect("rule").to_owned()), n(&rr["count"]));
    }
    for x in h["removed_categories"].as_array().expect("removed") {
        out.removed.insert(
            format!("{} / {}", x["sender"].as_str().expect("s"), x["category"].as_str().expect("c")),
            (n(&x["handovers"]), n(&x["resources"])),
        );
    }
    for x in r["reads"]["by_role"].as_array().expect("by_role") {
        out.reads.insert(
            x["uzi_role"].as_str().expect("role").to_owned(),
            [n(&x["read"]), n(&x["search"]), n(&x["export"]), n(&x["break_glass"]), n(&x["denied"])],
        );
    }
    for x in r["denials"]["by_rule"].as_array().expect("denials") {
        out.denials.insert(x["rule"].as_str().expect("rule").to_owned(), n(&x["count"]));
    }
    for e in r["break_glass"]["events"].as_array().expect("events") {
        out.break_glass.push((e["id"].as_str().expect("id").to_owned(), e["reviewed"].as_bool().expect("b")));
    }
    out
}

#[tokio::test]
async fn report_figures_match_the_audit_trail_and_the_script() {
    let app = app().await;
    let sc = scenario(&app).await;

    // Not entitled: the lead practitioner (403), no token (401). Each refused request is one
    // `report` entry; a request without a token never reaches the handler: the
    // authentication layer records it as a `denied` entry without a user.
    let before = entries(&app, vec![AuditAction::Report]).await.len();
    let v = assert_outcome(get(&app, "/report", &token(&app, LEAD, "01.047", PROVIDER), None).await, 403).await;
    assert!(v.to_string().contains("administrators"), "{v}");
    let r = app.client.get(app.url("/report")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    let reports = entries(&app, vec![AuditAction::Report]).await;
    assert_eq!(reports.len(), before + 1, "one report entry for the refused request, none for 401");
    let denied = entries(&app, vec![AuditAction::Denied]).await;
    assert!(
        denied.iter().any(|d| d.entry.user.is_none()
            && d.entry.reason.as_deref().is_some_and(|r| r.starts_with("HTTP 401 on GET /report"))),
        "the 401 is recorded by the authentication layer"
    );
    assert_eq!(reports[before].entry.outcome, AuditOutcome::Denied);
    assert_eq!(reports[before].entry.rule.as_deref(), Some("report/deny"));

    // The report is always that of the caller's own organisation: an administrator acting for
    // another organisation sees that organisation's (empty) report, nothing of this provider.
    let other = report_json(&app, &token(&app, ADMIN, "01.047", "44443333")).await;
    assert_eq!(other["provider"]["ura"], "44443333");
    assert_eq!(other["provider"]["name"], Value::Null);
    for (section, field) in
        [("handovers", "received"), ("handovers", "refused"), ("reads", "requests"), ("break_glass", "count")]
    {
        assert_eq!(n(&other[section][field]), 0, "{section}.{field} of another organisation");
    }
    assert_eq!(other["agreements"]["in_force"], serde_json::json!([]));
    assert_eq!(n(&other["teams"]["count"]), 0);

    // Noise that must not count for this provider: another organisation reading (and being
    // refused) its own copy of this provider's patient, a failed read by this provider's
    // staff, and a handover refusal that failed on the server's side.
    let other_org = Actor { uzi: "900055555".into(), uzi_role: "01.047".into(), ura: "44443333".into() };
    for (outcome, action) in [(AuditOutcome::Success, AuditAction::Export), (AuditOutcome::Denied, AuditAction::Read)] {
        let mut e = AuditEntry::new(action, outcome);
        e.user = Some(other_org.clone());
        e.patient_bsn = Some("999911120".into());
        e.objects = vec!["Patient/p".into()];
        e.name_holder("44443333");
        e.rule = Some("access.member".into());
        audit::record_alone(&app.store, &e).await.expect("audit");
    }
    let mut failed = AuditEntry::new(AuditAction::Read, AuditOutcome::Invalid);
    failed.user = Some(Actor { uzi: LEAD.into(), uzi_role: "01.047".into(), ura: PROVIDER.into() });
    failed.objects = vec!["Handover/not-a-uuid".into()];
    failed.rule = Some("handover.unknown".into());
    audit::record_alone(&app.store, &failed).await.expect("audit");
    let mut crashed = AuditEntry::new(AuditAction::HandoverRefused, AuditOutcome::Failure);
    crashed.user = Some(Actor { uzi: "900012345".into(), uzi_role: "01.015".into(), ura: "55556666".into() });
    crashed.name_holder(PROVIDER);
    audit::record_alone(&app.store, &crashed).await.expect("audit");
    // And one that must: another organisation refused access to this provider's copy.
    let mut theirs = AuditEntry::new(AuditAction::Read, AuditOutcome::Denied);
    theirs.user = Some(Actor { uzi: "900066666".into(), uzi_role: "01.015".into(), ura: "44443333".into() });
    theirs.patient_bsn = Some("999911120".into());
    theirs.objects = vec!["Condition/c".into()];
    theirs.name_holder(PROVIDER);
    theirs.rule = Some("default.not-a-member".into());
    audit::record_alone(&app.store, &theirs).await.expect("audit");

    // The administrator's report.
    let report = report_json(&app, &admin(&app)).await;
    let reports = entries(&app, vec![AuditAction::Report]).await;
    assert_eq!(reports.len(), before + 3, "exactly one entry per permitted request");
    let last = &reports[before + 2].entry;
    assert_eq!((last.outcome, last.rule.as_deref()), (AuditOutcome::Success, Some("report/administrator")));
    assert!(last.objects[0].starts_with(&format!("Report?provider={PROVIDER}&from=")), "{:?}", last.objects);
    assert_eq!(last.user.as_ref().map(|u| u.uzi.as_str()), Some(ADMIN));

    // 1. Every figure equals an independent count from the trail.
    let counted = independent(&app).await;
    let reported = from_report(&report);
    assert_eq!(reported, counted, "report vs independent count");

    // 2. ... and the script.
    assert_eq!(report["format"], "overdracht-report/1");
    assert_eq!(report["provider"]["ura"], PROVIDER);
    assert_eq!(report["provider"]["name"], "Zorggroep Zuid");
    let h = &report["handovers"];
    assert_eq!(n(&h["received"]), GP_NEW + GP_AGAIN + AMALIA_NEW);
    assert_eq!(n(&h["received_again"]), GP_AGAIN);
    assert_eq!(n(&h["refused"]), REFUSED_HERE + INVALID_HERE, "the refusal for another receiver is not counted");
    assert_eq!(counted.received["Huisartsenpraktijk De Linde"], GP_NEW + GP_AGAIN);
    assert_eq!(counted.received["Radboudumc Amalia kinderziekenhuis"], AMALIA_NEW);
    assert_eq!(counted.refused[&("URA 55556666".to_owned(), "transfer.no-agreement".to_owned())], REFUSED_HERE);
    assert_eq!(counted.refused[&("URA 55556666".to_owned(), "request.invalid".to_owned())], INVALID_HERE);
    let this_month = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Amsterdam).format("%Y-%m").to_string();
    assert_eq!(counted.months, BTreeSet::from([this_month.clone()]));
    let month_total: i64 = h["per_month"]
        .as_array()
        .expect("m")
        .iter()
        .filter(|m| m["month"] == this_month.as_str())
        .map(|m| n(&m["received"]))
        .sum();
    assert_eq!(month_total, GP_NEW + GP_AGAIN + AMALIA_NEW);
    assert_eq!(report["period"]["months"].as_array().expect("months").len(), 13);
    // Vital signs are never passed on from Amalia: 6 resources per handover (stored ones only).
    assert_eq!(counted.removed["Radboudumc Amalia kinderziekenhuis / vital-signs"], (AMALIA_NEW, 6 * AMALIA_NEW));
    let per_sender = h["per_sender"].as_array().expect("per_sender");
    assert!(per_sender.iter().any(|s| s["sender"] == "URA 55556666" && s["has_agreement"] == false));

    let reads = &report["reads"];
    let so = counted.reads.get("01.047").expect("SO reads");
    assert_eq!(*so, [LEAD_READS, 0, LEAD_EXPORTS, BREAK_GLASS, OUTSIDER_DENIED], "lead and outsider are both SOs");
    assert_eq!(counted.reads["30.070"], [0, VS_SEARCHES, 0, 0, 0]);
    assert_eq!(counted.reads["30.000"], [0, 0, SUPPORT_EXPORTS, 0, 0]);
    assert_eq!(
        n(&reads["requests"]),
        LEAD_EXPORTS + LEAD_READS + VS_SEARCHES + SUPPORT_EXPORTS + OUTSIDER_DENIED + BREAK_GLASS + 1
    );
    assert_eq!(n(&reads["denied"]), OUTSIDER_DENIED + 1, "with the other organisation refused this provider's copy");
    assert_eq!(counted.reads["01.015"], [0, 0, 0, 0, 1], "another organisation, refused this provider's copy");
    let role_names: Vec<&str> =
        reads["by_role"].as_array().expect("r").iter().map(|r| r["role_name"].as_str().expect("n")).collect();
    assert!(
        role_names.contains(&"nurse practitioner (VS)") && role_names.contains(&"nurse (verpleegkundige)"),
        "{role_names:?}"
    );
    // Per care-team role: counted from the entries' recorded team roles (not the report's
    // SQL), and as scripted: the lead reads and exports, the VS (co-practitioner) searches,
    // the nurse (supporting discipline) exports; break-the-glass has no team role.
    let mut by_team: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    for e in entries(&app, vec![AuditAction::Read, AuditAction::Search, AuditAction::Export]).await {
        let x = &e.entry;
        if x.outcome != AuditOutcome::Success || x.user.as_ref().is_none_or(|u| u.ura != PROVIDER) {
            continue;
        }
        let key = if x.team_roles.is_empty() { "none".to_owned() } else { x.team_roles.join("+") };
        let slot = match x.action {
            AuditAction::Read => 0,
            AuditAction::Search => 1,
            _ => 2,
        };
        by_team.entry(key).or_insert([0; 3])[slot] += 1;
    }
    let reported: BTreeMap<String, [i64; 3]> = reads["by_team_role"]
        .as_array()
        .expect("by_team_role")
        .iter()
        .map(|x| (x["team_role"].as_str().expect("k").to_owned(), [n(&x["read"]), n(&x["search"]), n(&x["export"])]))
        .collect();
    assert_eq!(reported, by_team, "the report's team-role figures are the audit trail's");
    assert_eq!(by_team["lead-practitioner"], [LEAD_READS, 0, LEAD_EXPORTS]);
    assert_eq!(by_team["co-practitioner"], [0, VS_SEARCHES, 0]);
    assert_eq!(by_team["supporting-discipline"], [0, 0, SUPPORT_EXPORTS]);
    // Denials: the outsider's three reads and the refused report request.
    assert_eq!(counted.denials["default.not-a-member"], OUTSIDER_DENIED + 1);
    assert_eq!(counted.denials["report/deny"], 1);
    assert_eq!(n(&report["denials"]["total"]), OUTSIDER_DENIED + 1 + 1);

    let bg = &report["break_glass"];
    assert_eq!((n(&bg["count"]), n(&bg["reviewed"]), n(&bg["not_reviewed"])), (BREAK_GLASS, 1, BREAK_GLASS - 1));
    assert_eq!(
        counted.break_glass,
        vec![(sc.break_glass_ids[0].clone(), true), (sc.break_glass_ids[1].clone(), false)]
    );
    let first = &bg["events"][0];
    // A reason was stated; its text (which may describe the patient) stays in the audit trail,
    // as does the officer's note: the insurer's report has the conclusion code only.
    assert_eq!(first["reason_stated"], true);
    assert_eq!(first["review"]["conclusion"], "justified");
    let text = report.to_string();
    assert!(!text.contains("patient collapsed") && !text.contains("during a fall"), "no clinical free text");
    assert_eq!(first["user_uzi"], OUTSIDER);

    // Agreements, access arrangement, teams.
    let ag = &report["agreements"];
    let labels: Vec<&str> =
        ag["in_force"].as_array().expect("in force").iter().map(|a| a["label"].as_str().expect("l")).collect();
    assert_eq!(labels, ["de-linde-to-zorggroep-zuid@1.0", "amalia-paediatrics-to-zorggroep-zuid@2.1"]);
    assert_eq!(ag["in_force"][1]["legal_basis"], "explicit-consent");
    let statements = report["access"]["statements"].as_array().expect("statements");
    assert!(
        statements.iter().any(|s| s.as_str().expect("s").contains("except Contacts and journal (SOAP) entries")),
        "{statements:?}"
    );
    let teams = &report["teams"];
    assert_eq!(n(&teams["count"]), 3, "the three example teams of Zorggroep Zuid");
    for t in teams["teams"].as_array().expect("teams") {
        assert!(!t["id"].as_str().expect("id").contains("999911"), "no BSN in the report: {}", t["id"]);
        if t["state"] == "active" {
            assert!(t["lead"].is_object(), "{t}");
        }
    }
    let frail = teams["teams"]
        .as_array()
        .expect("t")
        .iter()
        .find(|t| t["care_form"] == "group-frail" && t["state"] == "active")
        .expect("frail");
    assert_eq!(frail["lead"]["uzi"], LEAD);
    assert_eq!(frail["lead_eligible"], true);
    let text = report.to_string();
    assert!(
        !text.contains("999911120"),
        "no BSN anywhere in the report: {}",
        &text[text.find("999911120").unwrap_or(0).saturating_sub(300)..]
    );

    // The chain: intact, and the head is the report's own entry (recorded before gathering).
    let chain = &report["audit_chain"];
    assert_eq!(chain["intact"], true);
    assert_eq!(chain["status"], "intact");
    let head = audit::head(&app.store).await.expect("head");
    assert_eq!((n(&chain["entries"]), chain["head_hash"].as_str()), (head.count, Some(head.hash.as_str())));
    assert_eq!(head.count, audit::query::count(&app.store).await.expect("count"));
    let _ = sc.patient_id;
}

#[tokio::test]
async fn report_period_and_formats() {
    let app = app().await;
    let tok = admin(&app);
    // An empty period: zeros, not errors; the months of the period listed.
    let r = get(&app, "/report?from=2020-01-01&to=2020-03-31", &tok, None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["period"]["months"], serde_json::json!(["2020-01", "2020-02", "2020-03"]));
    assert_eq!(n(&v["handovers"]["received"]), 0);
    // HTML by Accept or ?format=html, with its CSP header.
    let r =
        app.client.get(app.url("/report")).bearer_auth(&tok).header("Accept", "text/html").send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
    assert!(r.headers()["content-security-policy"].to_str().expect("csp").contains("default-src 'none'"));
    let page = r.text().await.expect("page");
    assert!(page.contains("Zorggroep Zuid") && page.contains("<svg") && !page.contains("<script"));
    // Malformed: 400, and still one entry each.
    let before = entries(&app, vec![AuditAction::Report]).await.len();
    assert_outcome(get(&app, "/report?from=2020-13-01", &tok, None).await, 400).await;
    assert_outcome(get(&app, "/report?from=2021-01-01&to=2020-01-01", &tok, None).await, 400).await;
    assert_outcome(get(&app, "/report?format=pdf", &tok, None).await, 400).await;
    assert_outcome(get(&app, "/report?provider=123", &tok, None).await, 400).await;
    let after = entries(&app, vec![AuditAction::Report]).await;
    assert_eq!(after.len(), before + 4);
    assert!(after[before..].iter().all(|e| e.entry.outcome == AuditOutcome::Invalid));
    // A privacy officer may see it too.
    let officer = token(&app, "900000800", OFFICER_ROLE, PROVIDER);
    assert_eq!(get(&app, "/report", &officer, None).await.status(), 200);
}

/// Builds the HTML page of the scenario, loads it in Debian's chromium (headless, through
/// playwright-core: tests/browser/check-page.mjs), and checks the rendered text and that
/// there is no console error, page error, CSP violation or failed request. Also proves the
/// checker catches errors: a page with a deliberate script error must fail it. Writes a
/// screenshot (path printed). Needs /usr/bin/chromium and `npm ci --prefix tests/browser`.
#[tokio::test]
#[ignore = "needs Debian's chromium and tests/browser/node_modules; run by .ci/run with --ignored browser_"]
async fn browser_report_renders_without_console_errors() {
    let app = app().await;
    scenario(&app).await;
    let r = app.client.get(app.url("/report?format=html")).bearer_auth(admin(&app)).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("page");
    let dir = tempfile::tempdir().expect("dir");
    let html = dir.path().join("report.html");
    std::fs::write(&html, &page).expect("write page");
    let out_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| repo_file("target"));
    std::fs::create_dir_all(&out_dir).expect("target dir");
    let shot = out_dir.join("report-screenshot.png");
    let pdf = out_dir.join("report.pdf");
    let _ = std::fs::remove_file(&shot);

    let result = check_page(&html, Some(&shot), Some(&pdf));
    assert!(result["errors"].as_array().expect("errors").is_empty(), "console errors: {}", result["errors"]);
    let text = result["text"].as_str().expect("text");
    for needle in [
        "Agreements on data transfer and team access: in place and enforced",
        "Zorggroep Zuid",
        "1. Agreements on data transfer",
        "Huisartsenpraktijk De Linde",
        "Radboudumc Amalia kinderziekenhuis",
        "2. Access within the teams",
        "Co-practitioner (medebehandelaar): every data category the agreements brought except Contacts and journal (SOAP) entries",
        "3. Teams and lead practitioners",
        "drs. A. Visser",
        "4. Handovers",
        "6 handover(s) received (1 of them the same record sent again, stored once) and 3 refused",
        "5. Reads and denials",
        "Permitted reads per team role",
        "Lead practitioner (regiebehandelaar)",
        "6. Emergency access (break-the-glass)",
        "2 emergency access(es) in the period; 1 reviewed by the privacy officer, 1 not (yet) reviewed",
        "7. The audit trail",
        "Intact.",
    ] {
        assert!(text.contains(needle), "the rendered page lacks {needle:?}");
    }
    assert_eq!(result["svgs"].as_u64(), Some(4), "four charts rendered");
    assert!(result["width"].as_u64().expect("width") <= 1280, "no horizontal overflow: {}", result["width"]);
    assert!(std::fs::metadata(&shot).expect("screenshot written").len() > 10_000);
    assert!(std::fs::metadata(&pdf).expect("pdf written").len() > 10_000);
    println!("screenshot of the report: {}", shot.display());
    println!("the report printed to PDF (A4): {}", pdf.display());

    // The checker itself: a deliberate script error, and a resource the CSP blocks, fail it.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"></head>\
             <body><p>x</p><img src=\"http://127.0.0.1:9/x.png\"></body></html>",
            overdracht::report::html::CSP
        ),
    )
    .expect("write");
    let result = check_page(&bad, None, None);
    assert!(!result["errors"].as_array().expect("errors").is_empty(), "a CSP violation must be caught");
    let js = dir.path().join("js.html");
    std::fs::write(&js, "<!DOCTYPE html><html><body><script>undefinedFunction()</script></body></html>")
        .expect("write");
    let result = check_page(&js, None, None);
    let errors = result["errors"].to_string();
    assert!(errors.contains("undefinedFunction"), "a script error must be caught: {errors}");
}

/// Runs tests/browser/check-page.mjs on a file; its JSON result.
fn check_page(file: &std::path::Path, shot: Option<&std::path::Path>, pdf: Option<&std::path::Path>) -> Value {
    let script = repo_file("tests/browser/check-page.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(script).arg(file);
    cmd.arg(shot.map_or_else(|| "-".into(), |p| p.as_os_str().to_owned()));
    cmd.arg(pdf.map_or_else(|| "-".into(), |p| p.as_os_str().to_owned()));
    let out = cmd.output().expect("node runs (install node and run npm ci --prefix tests/browser)");
    assert!(
        out.status.success(),
        "check-page.mjs failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check-page.mjs prints JSON")
}

/// `overdracht report` on the service's database: the same figures as `GET /report`, one
/// `report` entry naming the operator and the command line, HTML with `--out x.html`.
#[tokio::test]
async fn report_on_the_command_line_matches_the_api() {
    let app = app().await;
    scenario(&app).await;
    let api = report_json(&app, &admin(&app)).await;
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_overdracht"));
        c.arg("report").args(args).arg("--data-dir").arg(app.data_dir.path());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OVERDRACHT_")) {
            c.env_remove(k);
        }
        c.env("USER", "contract-manager");
        c.env("OVERDRACHT_DATABASE_URL", &app.database_url);
        c.output().expect("runs")
    };
    let out = run(&["--demo", "--format", "json", "--operator", "900000800"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    for section in ["handovers", "reads", "denials", "agreements", "teams", "access"] {
        // Both report requests were permitted, so they add nothing to these sections.
        assert_eq!(cli[section], api[section], "{section}");
    }
    let last = entries(&app, vec![AuditAction::Report]).await.pop().expect("entry").entry;
    assert_eq!(last.rule.as_deref(), Some("report/local-operator"));
    assert_eq!(last.user.as_ref().map(|u| u.uzi.as_str()), Some("900000800"));
    assert!(
        last.client.as_deref().is_some_and(|c| c.contains("command line, user contract-manager")),
        "{:?}",
        last.client
    );
    assert_eq!(n(&cli["audit_chain"]["entries"]), audit::head(&app.store).await.expect("head").count);

    let html = app.data_dir.path().join("report.html");
    let out = run(&["--demo", "--out", html.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&html).expect("page").starts_with("<!DOCTYPE html>"));
    // Without agreements the provider must be named; a bad period is a usage error (exit 2).
    let out = run(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--provider"));
    let out = run(&["--demo", "--from", "2026-02-30"]);
    assert_eq!(out.status.code(), Some(2));
}

/// More break-the-glass events than the page lists: all are counted, and a review of one
/// beyond the list counts as reviewed.
#[tokio::test]
async fn every_break_the_glass_event_is_counted_beyond_the_list() {
    let app = app().await;
    let n_events = overdracht::report::BREAK_GLASS_LIST_MAX + 2;
    let mut tx = app.store.begin().await.expect("tx");
    let mut last = None;
    for _ in 0..n_events {
        let mut e = AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
        e.user = Some(Actor { uzi: OUTSIDER.into(), uzi_role: "01.047".into(), ura: PROVIDER.into() });
        e.objects = vec!["Patient/p".into()];
        e.name_holder(PROVIDER);
        e.emergency = true;
        e.flag_for_review = true;
        last = Some(audit::record(&mut tx, &e).await.expect("entry"));
    }
    tx.commit().await.expect("commit");
    let last = last.expect("events");
    let mut review = AuditEntry::new(AuditAction::Review, AuditOutcome::Success);
    review.name_reviewed(&last.id);
    review.reason = Some("not-justified: no emergency".into());
    audit::record_alone(&app.store, &review).await.expect("review");
    let report = report_json(&app, &admin(&app)).await;
    let bg = &report["break_glass"];
    assert_eq!(n(&bg["count"]), n_events);
    assert_eq!(
        (n(&bg["reviewed"]), n(&bg["not_reviewed"])),
        (1, n_events - 1),
        "the newest, beyond the list, was reviewed"
    );
    assert_eq!(bg["truncated"], true);
    assert_eq!(bg["events"].as_array().expect("events").len() as i64, overdracht::report::BREAK_GLASS_LIST_MAX);
}

/// A tampered trail whose content is no longer JSON: the report is still made (counting by
/// the search columns where the content cannot be read) and says the trail is broken,
/// instead of failing with a 500.
#[tokio::test]
async fn a_report_on_a_tampered_trail_says_so() {
    let app = app().await;
    let mut e = AuditEntry::new(AuditAction::Read, AuditOutcome::Success);
    e.user = Some(Actor { uzi: LEAD.into(), uzi_role: "01.047".into(), ura: PROVIDER.into() });
    e.objects = vec!["Patient/p".into()];
    e.name_holder(PROVIDER);
    let id = audit::record_alone(&app.store, &e).await.expect("entry");
    audit::record_alone(&app.store, &e).await.expect("entry");
    let mut conn = app.database().await;
    let drop_guard = if crate::database::on_postgres() {
        "DROP TRIGGER audit_entries_no_update ON audit_entries"
    } else {
        "DROP TRIGGER audit_entries_no_update"
    };
    sqlx::query(drop_guard).execute(&mut conn).await.expect(drop_guard);
    let sql = "UPDATE audit_entries SET content = '{not json' WHERE seq = $1";
    sqlx::query(sql).bind(id.seq).execute(&mut conn).await.expect(sql);
    let report = report_json(&app, &admin(&app)).await;
    assert_eq!(report["audit_chain"]["intact"], false, "{}", report["audit_chain"]);
    assert_eq!(n(&report["reads"]["permitted"]), 2, "both reads, by their search columns");
}
