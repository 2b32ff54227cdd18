//! Facade read overhead against an unfiltered read of the same data (target ≤ 10 %).
//!
//! Starts the service with the demo examples (agreements, teams, consents), hands the GP
//! example over, then times, interleaved in the same run, for `Patient/{id}/$everything` as
//! the lead practitioner (who sees every stored resource, so both produce the same bytes):
//!
//! - **baseline**: the unfiltered read: the patient's rows from the facade index, written as
//!   a searchset Bundle;
//! - **facade**: the same plus what the facade adds: the patient's teams and consents, the
//!   agreements the data arrived under, the policy decision, the per-item filter;
//! - **facade, cold**: the same right after a change (cached facts reloaded from the store);
//! - **facade + audit**: plus the audit entry (in its own transaction), for reference;
//! - **HTTP**: the whole request through the real endpoint (token, routing, audit), absolute.
//!
//! Run: `bench/facade_read.sh` (release build).

use std::time::{Duration, Instant};

use overdracht::api::access_control::{self, AccessControl};
use overdracht::api::auth::{Claims, DemoKey};
use overdracht::api::{demo, facade, Application};
use overdracht::audit::{AuditAction, AuditEntry, AuditOutcome};
use overdracht::config::{Settings, DEMO_ISSUER};
use overdracht::policy::Requester;

fn token(dir: &std::path::Path, uzi: &str, role: &str, ura: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let c = Claims {
        iss: DEMO_ISSUER.to_owned(),
        sub: uzi.to_owned(),
        aud: "overdracht".to_owned(),
        exp: now + 3600,
        nbf: now - 5,
        iat: now,
        uzi: uzi.to_owned(),
        uzi_role: role.to_owned(),
        ura: ura.to_owned(),
        purpose_of_use: "TREAT".to_owned(),
    };
    DemoKey::load_or_create(dir).expect("key").sign(&c).expect("sign")
}

fn stats(name: &str, mut v: Vec<Duration>) -> f64 {
    v.sort();
    let n = v.len();
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64;
    let p = |q: f64| v[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e6;
    println!("{name:<16} mean {:>8.1} µs   p50 {:>8.1} µs   p99 {:>8.1} µs   (n={n})", mean * 1e6, p(0.5), p(0.99));
    p(0.5)
}

#[tokio::main]
async fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.policy.demo_examples = true;
    settings.auth.insecure_trust_demo_key = true;
    let app = Application::build(&settings).await.expect("app");
    let base = format!("http://{}", app.addr());
    let store = app.store();
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/handovers?receiver=ura%7C{}", demo::PROVIDER_URA))
        .bearer_auth(token(dir.path(), "900012345", "01.015", demo::GP_URA))
        .header("Content-Type", "application/fhir+json")
        .body(demo::GP_RECORD)
        .send()
        .await
        .expect("handover");
    assert_eq!(r.status(), 201);
    let pid = demo::gp_patient_id().expect("patient id");

    let ac = AccessControl::from_settings(&settings.policy).expect("access control");
    let requester = Requester {
        uzi: "900000101".parse().expect("UZI"),
        uzi_role: "01.047".parse().expect("UZI role code"),
        ura: demo::PROVIDER_URA.parse().expect("URA"),
        purpose_of_use: "TREAT".into(),
        break_glass_reason: None,
    };
    let web = "http://bench/fhir";

    let baseline = || async {
        let rows = store.facade_resources_of_patient(&pid, None).await.expect("rows");
        let hits: Vec<_> = rows.iter().collect();
        let mut out = Vec::new();
        facade::write_searchset(
            &mut out,
            web,
            hits.len(),
            &[],
            hits.iter().map(|r| (&*r.resource_type, &*r.resource_id, &*r.resource)),
        );
        out.len()
    };
    let filtered = || async {
        let rows = store.facade_resources_of_patient(&pid, None).await.expect("rows");
        let bsn = rows[0].patient_bsn.clone();
        let facts = ac.facts(&store, &bsn, &rows[0].holder_ura).await.expect("facts").expect("bsn");
        let d = ac.decide(&requester, &facts, overdracht::policy::today());
        let hits: Vec<_> = rows.iter().filter(|r| access_control::allows(&d, &r.category)).collect();
        let mut out = Vec::new();
        facade::write_searchset(
            &mut out,
            web,
            hits.len(),
            &[],
            hits.iter().map(|r| (&*r.resource_type, &*r.resource_id, &*r.resource)),
        );
        (out.len(), d)
    };
    let (a, b) = (baseline().await, filtered().await.0);
    assert_eq!(a, b, "the lead sees everything: the same bytes");
    println!("$everything of the GP example as the lead practitioner: {a} bytes\n");

    let (mut tb, mut tf, mut ta, mut tc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations + 200 {
        let t = Instant::now();
        std::hint::black_box(baseline().await);
        let b = t.elapsed();
        let t = Instant::now();
        std::hint::black_box(filtered().await);
        let f = t.elapsed();
        let t = Instant::now();
        let (_, d) = filtered().await;
        let mut e = AuditEntry::new(AuditAction::Export, AuditOutcome::Success);
        e.rule = Some(d.rule.to_owned());
        overdracht::audit::record_alone(&store, &e).await.expect("audit");
        let a = t.elapsed();
        // Cold: as after a team, consent or handover change (the cached facts are reloaded).
        ac.invalidate();
        let t = Instant::now();
        std::hint::black_box(filtered().await);
        let c = t.elapsed();
        if i >= 200 {
            tb.push(b);
            tf.push(f);
            ta.push(a);
            tc.push(c);
        }
    }
    let b = stats("baseline", tb);
    let f = stats("facade", tf);
    let c = stats("facade, cold", tc);
    let a = stats("facade + audit", ta);
    println!(
        "\nfacade overhead (p50): {:+.1} %   cold facts: {:+.1} %   with the audit entry: {:+.1} %",
        (f / b - 1.0) * 100.0,
        (c / b - 1.0) * 100.0,
        (a / b - 1.0) * 100.0
    );

    let lead = token(dir.path(), "900000101", "01.047", demo::PROVIDER_URA);
    let url = format!("{base}/fhir/Patient/{pid}/$everything");
    let mut th = Vec::new();
    for i in 0..(iterations / 3).max(100) + 50 {
        let t = Instant::now();
        let r = client.get(&url).bearer_auth(&lead).send().await.expect("get");
        let _ = r.bytes().await.expect("body");
        if i >= 50 {
            th.push(t.elapsed());
        }
    }
    stats("HTTP end-to-end", th);
}
