//! Audit-trail overhead (issue 7): what writing the audit entry adds to a handover and to a
//! read, against the request itself, measured in one run with the baselines interleaved.
//!
//! - handover: the store transaction of a handover without its entry (`insert + commit`,
//!   the baseline) and with it (`insert + audit::record + commit`), taking turns; the
//!   difference is set against the whole `POST /handovers` request time (the real service
//!   in-process, real HTTP, the example record), which includes the entry.
//! - read: `audit::record_alone` of a typical read entry against the lightest read request
//!   of the facade (`GET /fhir/Patient/{id}` by the lead practitioner: token, policy
//!   decision, one row, and its own entry), taking turns.
//! - concurrency: entries per second from 8 concurrent `record_alone` writers (the chain
//!   serialises writers).
//! - verify: entries per second of `audit::verify`.
//!
//! Run with `bench/audit.sh` (release). Each figure is the median of per-call times.
//! `OVERDRACHT_BENCH_QUICK=1` makes a few rounds only (a check that it runs). With
//! `OVERDRACHT_BENCH_DATABASE_URL=postgres://…/EMPTY_DB` it runs on PostgreSQL instead of a
//! SQLite file (`bench/audit.sh --postgres` starts a throw-away server for it).

use std::time::{Duration, Instant};

use overdracht::audit::{self, Actor, AuditAction, AuditEntry, AuditOutcome};
use overdracht::store::{NewHandover, Store};

/// Rounds (the first is a warm-up) and calls per round; entries per concurrent writer.
fn sizes() -> (usize, usize, u32) {
    if std::env::var_os("OVERDRACHT_BENCH_QUICK").is_some() {
        (2, 3, 20)
    } else {
        (10, 30, 250)
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn actor() -> Actor {
    Actor { uzi: "900012345".into(), uzi_role: "01.015".into(), ura: "00001234".into() }
}

fn handover_entry(id: &str, objects: usize) -> AuditEntry {
    let mut e = AuditEntry::new(AuditAction::HandoverReceived, AuditOutcome::Success);
    e.user = Some(actor());
    e.client = Some("bench/1.0".into());
    e.patient_bsn = Some("999911120".into());
    e.objects = std::iter::once(format!("Handover/{id}"))
        .chain((0..objects).map(|i| format!("Observation/{:08x}-0000-5000-8000-{i:012x}", i)))
        .collect();
    e.categories = ["identification", "problems", "medication", "allergies", "lab-results"].map(String::from).to_vec();
    e.purpose = Some("TREAT".into());
    e.request_id = Some("7c9e6679-7425-40de-944b-e07fc1f90ae7".into());
    e
}

fn read_entry() -> AuditEntry {
    let mut e = AuditEntry::new(AuditAction::Read, AuditOutcome::Success);
    e.user = Some(Actor { uzi: "900054321".into(), uzi_role: "01.047".into(), ura: "87654321".into() });
    e.client = Some("bench/1.0".into());
    e.patient_bsn = Some("999911120".into());
    e.objects = vec!["Condition/c86d6d49-fa09-57c3-905b-50b2516b0c7e".into()];
    e.categories = vec!["problems".into()];
    e.rule = Some("lead-practitioner".into());
    e.reason = Some("member of the care team as lead practitioner".into());
    e.consent = Some("no-objection".into());
    e.purpose = Some("TREAT".into());
    e.request_id = Some("7c9e6679-7425-40de-944b-e07fc1f90ae7".into());
    e
}

fn new_handover(n: usize, bundle: &str, source: &[u8], resources: i64) -> NewHandover {
    NewHandover {
        row: overdracht::store::HandoverRow {
            id: format!("00000000-0000-5000-8000-{n:012}"),
            created_at: "2026-11-23T10:00:00.000Z".into(),
            status: "accepted".into(),
            sender: "ura|00001234".into(),
            receiver: "ura|87654321".into(),
            lead_practitioner: None,
            referral_reason: None,
            care_form: None,
            patient_bsn: Some("999911120".into()),
            patient_resource_id: Some("p".into()),
            source_format: "fhir-stu3".into(),
            source_sha256: format!("{n:064}"),
            source_size: i64::try_from(source.len()).unwrap_or(0),
            resource_count: resources,
            summary: "{}".into(),
            submitted_by_ura: "00001234".into(),
        },
        source_media_type: Some("application/fhir+json".into()),
        output_bundle: bundle.to_owned(),
        submitted_by_uzi: "900012345".into(),
        submitted_by_role: "01.015".into(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let source = std::fs::read("examples/records/gp-frail-elderly.stu3.json").expect("run from the repository root");
    let conversion = overdracht::convert::convert(&source, &overdracht::convert::ConvertOptions::default())
        .expect("example converts");
    let bundle = serde_json::to_string(&conversion.bundle()).expect("bundle");
    let objects = conversion.resources.len();
    let resources = i64::try_from(objects).unwrap_or(0);

    // The service, in-process, on a temporary data directory.
    let dir = tempfile::tempdir().expect("temp dir");
    // The demo's agreements, care team and consents: the GP of De Linde hands over to
    // Zorggroep Zuid, whose lead practitioner reads.
    let mut settings = overdracht::config::Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    settings.policy.demo_examples = true;
    settings.auth.insecure_trust_demo_key = true;
    settings.database_url = std::env::var("OVERDRACHT_BENCH_DATABASE_URL").ok();
    let app = overdracht::api::Application::build(&settings).await.expect("service");
    println!("database: {}", app.store().backend().name());
    let base = format!("http://{}", app.addr());
    let store: Store = app.store();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let token = |uzi: &str, role: &str, ura: &str| {
        let req = overdracht::api::auth::TokenRequest {
            uzi: uzi.into(),
            uzi_role: role.into(),
            ura: ura.into(),
            purpose_of_use: "TREAT".into(),
            ttl_seconds: 3600,
        };
        overdracht::api::auth::mint_demo_token(&settings, &req).expect("token")
    };
    let gp = token("900012345", "01.015", overdracht::api::demo::GP_URA);
    let lead = token("900000101", "01.047", overdracht::api::demo::PROVIDER_URA);
    let patient = overdracht::api::demo::gp_patient_id().expect("patient id");
    let client = reqwest::Client::new();

    let (mut tx_base, mut tx_audit, mut post, mut read_req, mut read_audit, mut empty_tx, mut status_req) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (rounds, per_round, per_writer) = sizes();
    let mut n = 0usize;
    for round in 0..rounds {
        for i in 0..per_round {
            // Store transaction without and with the entry, taking turns.
            for with_audit in [false, true] {
                n += 1;
                let h = new_handover(n, &bundle, &source, resources);
                let entry = handover_entry(&h.row.id, objects);
                let t = Instant::now();
                let mut tx = store.begin().await.expect("begin");
                tx.insert_handover(&h).await.expect("insert");
                if with_audit {
                    audit::record(&mut tx, &entry).await.expect("audit");
                }
                tx.commit().await.expect("commit");
                let d = t.elapsed();
                if round > 0 {
                    if with_audit {
                        tx_audit.push(d)
                    } else {
                        tx_base.push(d)
                    }
                }
            }
            // The whole request (a distinct body each time, so each one is stored).
            let mut body = source.clone();
            body.extend(std::iter::repeat_n(b' ', 1 + round * per_round + i));
            let t = Instant::now();
            let r = client
                .post(format!(
                    "{base}/handovers?receiver=ura%7C{}&care-form=group-frail",
                    overdracht::api::demo::PROVIDER_URA
                ))
                .bearer_auth(&gp)
                .header("Content-Type", "application/fhir+json")
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 201);
            let v: serde_json::Value = r.json().await.expect("summary");
            let last_id = v["id"].as_str().expect("id").to_owned();
            let d = t.elapsed();
            if round > 0 {
                post.push(d);
            }
            // The lightest facade read (it writes its own entry), and the entry alone, taking turns.
            let t = Instant::now();
            let r = client.get(format!("{base}/fhir/Patient/{patient}")).bearer_auth(&lead).send().await.expect("get");
            assert_eq!(r.status().as_u16(), 200);
            let _ = r.bytes().await.expect("body");
            let d = t.elapsed();
            let t = Instant::now();
            audit::record_alone(&store, &read_entry()).await.expect("audit");
            let a = t.elapsed();
            // The status of a handover (a small row and its delivery state; also audited).
            let t = Instant::now();
            let r = client.get(format!("{base}/handovers/{last_id}")).bearer_auth(&gp).send().await.expect("get");
            assert_eq!(r.status().as_u16(), 200);
            let _ = r.bytes().await.expect("body");
            let h = t.elapsed();
            // The floor of a write in a transaction of its own: an empty write transaction.
            let t = Instant::now();
            let mut tx = store.begin().await.expect("begin");
            sqlx::query("UPDATE audit_chain_head SET seq = seq WHERE id = 1").execute(tx.conn()).await.expect("noop");
            tx.commit().await.expect("commit");
            let e = t.elapsed();
            if round > 0 {
                read_req.push(d);
                status_req.push(h);
                read_audit.push(a);
                empty_tx.push(e);
            }
        }
    }
    let (b, a, p) = (median(&mut tx_base), median(&mut tx_audit), median(&mut post));
    let extra = a.saturating_sub(b);
    println!("handover ({objects} objects in the entry; medians of {} each)", post.len());
    println!("  store tx without entry   {:>9.1} µs   (baseline)", us(b));
    println!("  store tx with entry      {:>9.1} µs", us(a));
    println!("  entry adds               {:>9.1} µs", us(extra));
    println!("  POST /handovers          {:>9.1} µs   (includes the entry)", us(p));
    println!("  overhead                 {:>9.1} %    of the request (target <= 10 %)", 100.0 * us(extra) / us(p));
    let (rq, ra) = (median(&mut read_req), median(&mut read_audit));
    println!("read");
    println!("  GET /fhir/Patient/{{id}}   {:>9.1} µs   (includes its entry)", us(rq));
    println!("  record_alone (read)      {:>9.1} µs", us(ra));
    println!(
        "  empty write transaction  {:>9.1} µs   (begin, one write, commit: what record_alone used to cost at least)",
        us(median(&mut empty_tx))
    );
    println!("  overhead                 {:>9.1} %    of the read request (target <= 10 %)", 100.0 * us(ra) / us(rq));
    let hs = median(&mut status_req);
    println!("  GET /handovers/{{id}}      {:>9.1} µs   (handover status, includes its entry)", us(hs));
    println!("  overhead                 {:>9.1} %    of the status request", 100.0 * us(ra) / us(hs));

    // Concurrent writers.
    let writers = 8;
    let per = per_writer;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                audit::record_alone(&s, &read_entry()).await.expect("audit");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let secs = t.elapsed().as_secs_f64();
    println!("concurrency: {writers} writers x {per} read entries: {:.0} entries/s", f64::from(writers * per) / secs);

    let t = Instant::now();
    let report = audit::verify(&store, &[]).await.expect("verify");
    let secs = t.elapsed().as_secs_f64();
    assert!(report.problem.is_none());
    println!("verify: {} entries in {:.2} s ({:.0} entries/s)", report.checked, secs, report.checked as f64 / secs);

    let _ = stop.send(());
    let _ = server.await;
}
