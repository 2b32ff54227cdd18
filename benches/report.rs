//! The evidence report over a large audit trail (issue 9): how long `report::gather` takes on
//! 100,000 entries, against `audit::verify` of the same trail in the same run (the report
//! includes a full verification, so it can never be faster than that), and the SQL
//! aggregation alone (gather minus verify), plus rendering the HTML page.
//!
//! The trail is written with the library (`audit::record`, 1,000 entries per transaction) in
//! a realistic mix for one provider over a year of handovers and reads: 2 % handovers received
//! (each with its handover row, two senders, a removed category in a third of them), 0.5 %
//! refused, 80 % reads/searches/exports by three professions, 8 % denials, 0.2 % break-the-glass
//! with half of them reviewed, the rest team and consent changes and audit views.
//!
//! Run with `bench/report.sh` (release). Each figure is the median of 5 interleaved runs.
//! `ENTRIES=N` changes the trail size.

use std::time::{Duration, Instant};

use overdracht::audit::{self, Actor, AuditAction, AuditEntry, AuditOutcome};
use overdracht::policy::{Agreement, PolicyEngine};
use overdracht::report::{self, Period, Sources};
use overdracht::store::{NewHandover, Store};

const PROVIDER: &str = "11112222";

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bsn(p: usize) -> String {
    // Nine digits passing the eleven test: vary the first eight, fix the check digit.
    for last in 0..10u32 {
        let s = format!("{:08}{last}", 10_000_000 + p);
        let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: i64 = (0..8).map(|i| i64::from(d[i]) * (9 - i as i64)).sum::<i64>() - i64::from(d[8]);
        if sum % 11 == 0 {
            return s;
        }
    }
    "999911120".to_owned()
}

fn entry(action: AuditAction, outcome: AuditOutcome, who: (&str, &str, &str), patient: &str) -> AuditEntry {
    let mut e = AuditEntry::new(action, outcome);
    e.user = Some(Actor { uzi: who.0.into(), uzi_role: who.1.into(), ura: who.2.into() });
    e.client = Some("bench/1.0".into());
    e.patient_bsn = Some(patient.to_owned());
    e.purpose = Some("TREAT".into());
    e.request_id = Some("7c9e6679-7425-40de-944b-e07fc1f90ae7".into());
    e
}

async fn fill(store: &Store, total: usize) {
    let senders = [
        ("agb-z|01234567", ("900012345", "01.015", "87654321")),
        ("ura|12345678", ("900003333", "01.019", "12345678")),
    ];
    let roles = [("900000101", "01.047"), ("900000103", "30.070"), ("900000104", "30.000")];
    let mut tx = store.begin().await.expect("tx");
    let mut bg_ids: Vec<String> = Vec::new();
    for i in 0..total {
        let patient = bsn(i % 500);
        let r = i % 1000;
        let e = if r < 20 {
            let (sender, who) = senders[i % 2];
            let id = format!("00000000-0000-5000-8000-{i:012}");
            let removed = if i % 3 == 0 {
                r#"[{"category":"vital-signs","reason":"not covered by agreement x@1","resources":6}]"#
            } else {
                "[]"
            };
            let h = NewHandover {
                row: overdracht::store::HandoverRow {
                    id: id.clone(),
                    created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    status: "accepted".into(),
                    sender: sender.into(),
                    receiver: format!("ura|{PROVIDER}"),
                    lead_practitioner: None,
                    referral_reason: None,
                    care_form: None,
                    patient_bsn: Some(patient.clone()),
                    patient_resource_id: Some(format!("p{i}")),
                    source_format: "fhir-stu3".into(),
                    source_sha256: format!("{i:064}"),
                    source_size: 2,
                    resource_count: 20,
                    summary: format!(r#"{{"transfer":{{"agreements":["x@1"],"removed":{removed}}}}}"#),
                    submitted_by_ura: who.2.into(),
                },
                source_media_type: Some("application/fhir+json".into()),
                output_bundle: "{}".into(),
                submitted_by_uzi: who.0.into(),
                submitted_by_role: who.1.into(),
            };
            tx.insert_handover(&h).await.expect("handover");
            let mut e = entry(AuditAction::HandoverReceived, AuditOutcome::Success, who, &patient);
            e.objects = std::iter::once(format!("Handover/{id}"))
                .chain((0..20).map(|k| format!("Observation/{i:08x}-0000-5000-8000-{k:012x}")))
                .collect();
            e.reason = Some("under x@1".into());
            e
        } else if r < 25 {
            let mut e = entry(
                AuditAction::HandoverRefused,
                AuditOutcome::Denied,
                ("900077777", "01.015", "55556666"),
                &patient,
            );
            e.objects = vec![format!("Organization/ura-{PROVIDER}")];
            e.rule = Some("transfer.no-agreement".into());
            e
        } else if r < 825 {
            let (uzi, role) = roles[i % 3];
            let action = [AuditAction::Read, AuditAction::Search, AuditAction::Export][i % 3];
            let mut e = entry(action, AuditOutcome::Success, (uzi, role, PROVIDER), &patient);
            e.objects = vec!["Condition/c86d6d49-fa09-57c3-905b-50b2516b0c7e".into()];
            e.rule = Some("access.member".into());
            e.reason = Some("member of the care team".into());
            e.categories = vec!["problems".into()];
            e
        } else if r < 905 {
            let mut e = entry(AuditAction::Export, AuditOutcome::Denied, ("900000999", "01.047", PROVIDER), &patient);
            e.rule = Some("default.not-a-member".into());
            e.reason = Some("not a member".into());
            e
        } else if r < 907 {
            let mut e =
                entry(AuditAction::BreakGlass, AuditOutcome::Success, ("900000999", "01.047", PROVIDER), &patient);
            e.emergency = true;
            e.flag_for_review = true;
            e.reason = Some("break-the-glass reason: patient collapsed".into());
            e
        } else if r < 908 && !bg_ids.is_empty() {
            let mut e = entry(AuditAction::Review, AuditOutcome::Success, ("900000800", "99.001", PROVIDER), &patient);
            e.objects = vec![format!("AuditEvent/{}", bg_ids.remove(0))];
            e.reason = Some("justified".into());
            e
        } else {
            let mut e =
                entry(AuditAction::CareTeamChange, AuditOutcome::Success, ("900000101", "01.047", PROVIDER), &patient);
            e.objects = vec!["CareTeam/t1".into()];
            e
        };
        let id = audit::record(&mut tx, &e).await.expect("record");
        if e.action == AuditAction::BreakGlass && i % 2 == 0 {
            bg_ids.push(id.id);
        }
        if i % 1000 == 999 {
            tx.commit().await.expect("commit");
            tx = store.begin().await.expect("tx");
        }
    }
    tx.commit().await.expect("commit");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::var("ENTRIES").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&format!("sqlite://{}/bench.db", dir.path().display()), 4).await.expect("store");
    let t = Instant::now();
    fill(&store, total).await;
    eprintln!("wrote {total} entries in {:.1} s", t.elapsed().as_secs_f64());
    let agreements: Vec<Agreement> = overdracht::api::demo::agreements().expect("agreements");
    let policy = PolicyEngine::embedded().expect("policy");
    let today = overdracht::policy::today();
    let period = Period::last_year(today);
    let sources = Sources { store: &store, agreements: &agreements, policy: &policy };
    let (mut verify, mut gather, mut render) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..5 {
        let t = Instant::now();
        let v = audit::verify(&store, &[]).await.expect("verify");
        verify.push(t.elapsed());
        assert!(v.problem.is_none());
        let t = Instant::now();
        let r = report::gather(sources, PROVIDER, period, today).await.expect("report");
        gather.push(t.elapsed());
        let t = Instant::now();
        let html = report::html::render(&r);
        render.push(t.elapsed());
        last = Some((r, html.len()));
    }
    let (r, html_len) = last.expect("ran");
    let (v, g, h) = (median(&mut verify), median(&mut gather), median(&mut render));
    println!("audit trail: {} entries (head {})", r.audit_chain.entries, &r.audit_chain.head_hash[..12]);
    println!(
        "figures: {} handovers received, {} refused, {} reads, {} denials, {} break-the-glass ({} reviewed)",
        r.handovers.received,
        r.handovers.refused,
        r.reads.requests,
        r.denials.total,
        r.break_glass.count,
        r.break_glass.reviewed
    );
    println!("audit verify            {:>9.1} ms  ({:.0} entries/s)", ms(v), total as f64 / v.as_secs_f64());
    println!("report gather (all)     {:>9.1} ms  = {:.2} x verify", ms(g), g.as_secs_f64() / v.as_secs_f64());
    println!("  of which aggregation  {:>9.1} ms  (gather - verify)", ms(g.saturating_sub(v)));
    println!("render HTML             {:>9.1} ms  ({} KB)", ms(h), html_len / 1024);
    store.close().await;
}
