//! Several `serve` processes on one PostgreSQL database (concurrent handovers of one
//! patient, a stopping instance handing its deliveries over), and the graceful stop of one.

use crate::database;
use crate::service::*;
use crate::support::*;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

/// The example record with its entries after the Patient in an order of their own (`variant`
/// picks it) and `variant` trailing spaces (so each variant is a handover of its own). The
/// resources, and so the facade rows a handover writes, are the same for every variant; only
/// the order in which a handover writes them differs.
fn reordered_record(variant: usize) -> Vec<u8> {
    let mut record: serde_json::Value = serde_json::from_slice(&example_record()).expect("example is JSON");
    let entries = record["entry"].as_array_mut().expect("entries");
    let rest = &mut entries[1..];
    match variant % 3 {
        0 => {}
        1 => rest.reverse(),
        _ => rest.rotate_left(rest.len() / 2),
    }
    let mut body = serde_json::to_vec(&record).expect("serialise");
    body.extend(std::iter::repeat_n(b' ', variant));
    body
}

/// Many handovers of the same patient at once through two instances, each record sent to
/// both: every answer is 201 or 200 (none is a database deadlock's 500), and each record is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_DATABASE=postgres and OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_concurrent_handovers_of_one_patient_on_two_instances_never_fail() {
    assert!(database::on_postgres(), "run with OVERDRACHT_TEST_DATABASE=postgres");
    let fhir = MockServer::start().await;
    let fake = FakeFhir::new(|_, _| Fault::None);
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&fhir).await;
    let dir = tempfile::tempdir().expect("tmp");
    let config = write_config(dir.path(), &format!("{}/fhir", fhir.uri()));
    let token = token(dir.path());
    let a = start(dir.path(), &config, free_port()).await;
    let b = start(dir.path(), &config, free_port()).await;

    const RECORDS: usize = 40;
    let client = reqwest::Client::new();
    // Enough at once for each instance's transactions to meet the other's, not so many that
    // a debug build on a small machine times requests out.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(12));
    let mut requests = Vec::new();
    for round in 0..2 {
        for v in 0..RECORDS {
            // Each record once through each instance, the two in opposite order of the rounds.
            let base = if (v + round) % 2 == 0 { &a.base } else { &b.base };
            let send = client
                .post(format!("{base}/handovers?receiver=ura%7C{RECEIVER}"))
                .bearer_auth(&token)
                .header("Content-Type", "application/fhir+json")
                .body(reordered_record(v))
                .send();
            let in_flight = in_flight.clone();
            requests.push(tokio::spawn(async move {
                let _permit = in_flight.acquire_owned().await.expect("semaphore");
                let r = send.await.expect("post");
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (v, status, text)
            }));
        }
    }
    let mut answers = Vec::new();
    for r in requests {
        answers.push(r.await.expect("request task"));
    }
    let failed: Vec<_> = answers.iter().filter(|(_, s, _)| !matches!(s, 200 | 201)).collect();
    assert!(failed.is_empty(), "{} of {} failed: {:?}", failed.len(), answers.len(), failed.first());
    let created = answers.iter().filter(|(_, s, _)| *s == 201).count();
    assert_eq!(created, RECORDS, "each record created once, found again once");
    let mut ids = HashSet::new();
    for (_, _, text) in &answers {
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        ids.insert(v["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids.len(), RECORDS);
    let mut db = database(dir.path()).await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM handovers").fetch_one(&mut db).await.expect("count");
    assert_eq!(stored, i64::try_from(RECORDS).unwrap());
    drop((a, b));
}

/// Appends `[limits]` to a test service's configuration: deliveries and requests get
/// `grace` seconds at shutdown; `/health/ready` says draining for `drain` seconds first.
fn with_shutdown(config: &std::path::Path, grace: u64, drain: u64) {
    let mut text = std::fs::read_to_string(config).expect("config");
    text.push_str(&format!("[limits]\nshutdown_grace_seconds = {grace}\nshutdown_drain_seconds = {drain}\n"));
    std::fs::write(config, text).expect("config");
}

/// The number of `released` events in the delivery history.
async fn released(data_dir: &std::path::Path) -> i64 {
    let mut db = database(data_dir).await;
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events WHERE event = 'released'")
        .fetch_one(&mut db)
        .await
        .expect("events")
}

/// SIGTERM: `/health/ready` says `draining` (503) at once, while requests are still served
/// during the drain; deliveries stalled at the receiver are cut off after the grace period
/// and released (due again at once, not after their lease); the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_releases_deliveries_in_flight_and_exits_0() {
    let fhir = MockServer::start().await;
    let fake = FakeFhir::new(|_, _| Fault::SlowAfterStoring(Duration::from_secs(60)));
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&fhir).await;
    let dir = tempfile::tempdir().expect("tmp");
    let config = write_config_with(dir.path(), &format!("{}/fhir", fhir.uri()), 3, 60_000);
    with_shutdown(&config, 1, 2);
    let token = token(dir.path());
    let mut service = start(dir.path(), &config, free_port()).await;
    let ids = post_handovers(&service, &token, 2).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.requests() < 2 {
        assert!(Instant::now() < deadline, "the deliveries did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    service.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = reqwest::get(format!("{}/health/ready", service.base)).await.expect("still serving while draining");
    assert_eq!(ready.status().as_u16(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert!(body["issue"][0]["diagnostics"].as_str().unwrap_or("").starts_with("draining"), "{body}");
    let status = service.exited(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(15), "stopped in {:?}", signalled.elapsed());
    assert!(reqwest::get(format!("{}/health/live", service.base)).await.is_err(), "no longer accepting");

    assert_eq!(released(dir.path()).await, 2, "both deliveries in flight were released");
    let list = outbox_cli(dir.path(), &["list"]);
    assert!(
        String::from_utf8_lossy(&list.stderr).contains("queued 0, in-flight 0, retrying 2"),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    drop(ids);
}

/// Two instances on one PostgreSQL database: the deliveries the stopping instance had in
/// flight are made by the other one right after the stop, long before their lease (61 s)
/// would have run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_DATABASE=postgres and OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_a_stopping_instance_hands_its_deliveries_to_another_at_once() {
    assert!(database::on_postgres(), "run with OVERDRACHT_TEST_DATABASE=postgres");
    let fhir = MockServer::start().await;
    // The first four requests stall (they are the stopping instance's); the rest are answered.
    let fake = FakeFhir::new(|n, _| if n < 4 { Fault::SlowAfterStoring(Duration::from_secs(60)) } else { Fault::None });
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&fhir).await;
    let dir = tempfile::tempdir().expect("tmp");
    // Lease: the request timeout (60 s) and the lease grace (1 s).
    let config = write_config_with(dir.path(), &format!("{}/fhir", fhir.uri()), 3, 60_000);
    with_shutdown(&config, 1, 0);
    let token = token(dir.path());
    let mut a = start(dir.path(), &config, free_port()).await;
    let ids = post_handovers(&a, &token, 4).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.requests() < 4 {
        assert!(Instant::now() < deadline, "the deliveries did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = start(dir.path(), &config, free_port()).await;

    let signalled = Instant::now();
    a.terminate();
    assert!(a.exited(Duration::from_secs(20)).await.success());
    wait_for(&b, &token, &ids, "delivered").await;
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(20), "delivered {took:?} after the stop");
    assert_eq!(released(dir.path()).await, 4);
    let mut db = database(dir.path()).await;
    let expired: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events WHERE event = 'lease-expired'")
        .fetch_one(&mut db)
        .await
        .expect("events");
    assert_eq!(expired, 0, "no delivery waited for its lease");
    eprintln!("the other instance delivered the released rows {took:?} after SIGTERM");
    drop(b);
}
