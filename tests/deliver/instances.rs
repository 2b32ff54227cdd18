//! Several `serve` processes on one PostgreSQL database: concurrent handovers of one patient
//! through both.

use crate::database;
use crate::service::*;
use crate::support::*;

use std::collections::HashSet;

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
