//! Delivery to a receiving FHIR server, one test per behaviour, with wiremock as the
//! server. Backoff is milliseconds here (see `support::quick_target`).

use crate::support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use overdracht::deliver::{Auth, FailureKind, FhirClient, Mode, Target};
use serde_json::{json, Value};
use support::*;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn client(t: &Target) -> FhirClient {
    FhirClient::new(t).expect("client")
}

/// The next POST gets `response`; later ones fall through to the mocks mounted after this.
async fn once(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST")).respond_with(response).up_to_n_times(1).expect(1).mount(server).await;
}

/// Every POST not taken by an earlier mock gets `response`; `expected` of them should come.
async fn always(server: &MockServer, response: ResponseTemplate, expected: u64) {
    Mock::given(method("POST")).respond_with(response).expect(expected).mount(server).await;
}

/// Success for [`small_bundle`]: both entries stored.
fn ok_both() -> ResponseTemplate {
    fhir_json(200, response_bundle("transaction-response", &[200, 200]))
}

#[tokio::test]
async fn transaction_200_is_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("content-type", "application/fhir+json"))
        .and(body_partial_json(json!({"resourceType": "Bundle", "type": "transaction"})))
        .respond_with(fhir_json(200, response_bundle("transaction-response", &[200, 201])))
        .expect(1)
        .mount(&server)
        .await;
    let d = client(&quick_target(&server.uri())).deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Transaction));
    assert_eq!(d.attempts, 1);
}

#[tokio::test]
async fn transaction_201_with_every_example_is_delivered() {
    let server = MockServer::start().await;
    let fake = FakeFhir::new(|_, _| Fault::None);
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&server).await;
    let c = client(&quick_target(&server.uri()));
    let mut expected = 0;
    for b in example_bundles() {
        expected += b["entry"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(c.deliver(b).await.result, Ok(Mode::Transaction));
    }
    assert_eq!(fake.stored(), expected);
}

#[tokio::test]
async fn bad_request_400_is_dead_lettered_with_the_servers_reason() {
    let server = MockServer::start().await;
    let oo = outcome("invalid", "Observation.status: value 'banana' is not in the value set");
    Mock::given(method("POST")).respond_with(fhir_json(400, oo.clone())).expect(1).mount(&server).await;
    let d = client(&quick_target(&server.uri())).deliver(small_bundle()).await;
    let f = d.result.expect_err("refused");
    assert_eq!(f.kind, FailureKind::Rejected);
    assert_eq!(f.status, Some(400));
    assert!(f.reason.contains("is not in the value set"), "{}", f.reason);
    assert_eq!(f.outcome, Some(oo));
    assert_eq!(d.attempts, 1, "a permanent failure is not retried");
}

#[tokio::test]
async fn unauthorized_401_fetches_a_new_token_once_and_succeeds() {
    let server = MockServer::start().await;
    let issued = Arc::new(AtomicU32::new(0));
    let counter = issued.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(form_contains("grant_type=client_credentials"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(json!({"access_token": format!("token-{n}"), "expires_in": 3600}))
        })
        .expect(2)
        .mount(&server)
        .await;
    // The first token was revoked before its expiry: the server refuses it.
    Mock::given(method("POST"))
        .and(path("/fhir"))
        .and(header("authorization", "Bearer token-1"))
        .respond_with(fhir_json(401, outcome("login", "token revoked")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/fhir"))
        .and(header("authorization", "Bearer token-2"))
        .respond_with(fhir_json(200, response_bundle("transaction-response", &[201, 201])))
        .expect(2)
        .mount(&server)
        .await;
    let mut t = quick_target(&format!("{}/fhir", server.uri()));
    t.auth = Auth::Oauth2 {
        token_url: format!("{}/token", server.uri()),
        client_id: "overdracht".into(),
        client_secret: Some("s3cret".into()),
        client_secret_env: None,
        scope: Some("system/*.write".into()),
        client_auth: Default::default(),
    };
    let c = client(&t);
    let d = c.deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Transaction));
    assert_eq!(d.attempts, 1, "the repeat after a token refresh is part of the same attempt");
    // The refreshed token is cached: the next delivery fetches none.
    assert_eq!(c.deliver(small_bundle()).await.result, Ok(Mode::Transaction));
    assert_eq!(issued.load(Ordering::SeqCst), 2);
}

/// Matches a form body containing `needle`.
fn form_contains(needle: &'static str) -> impl wiremock::Match {
    move |r: &Request| String::from_utf8_lossy(&r.body).contains(needle)
}

#[tokio::test]
async fn unauthorized_401_with_a_static_token_is_a_failed_attempt() {
    let server = MockServer::start().await;
    always(&server, fhir_json(401, outcome("login", "bad token")), 2).await;
    let mut t = quick_target(&server.uri());
    t.auth = Auth::Bearer { token: Some("wrong".into()), token_env: None };
    t.max_attempts = 2;
    let d = client(&t).deliver(small_bundle()).await;
    let f = d.result.expect_err("not authorised");
    assert_eq!((f.kind, f.status), (FailureKind::Exhausted, Some(401)));
}

#[tokio::test]
async fn too_many_requests_429_waits_for_retry_after() {
    let server = MockServer::start().await;
    once(&server, fhir_json(429, outcome("throttled", "slow down")).insert_header("Retry-After", "1")).await;
    always(&server, ok_both(), 1).await;
    let mut t = quick_target(&server.uri());
    // Backoff alone would retry after milliseconds; only Retry-After explains a 1 s wait.
    t.backoff.initial_ms = 1;
    let started = Instant::now();
    let d = client(&t).deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Transaction));
    assert_eq!(d.attempts, 2);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn server_errors_500_and_503_are_retried_until_success() {
    let server = MockServer::start().await;
    for status in [500, 503] {
        once(&server, ResponseTemplate::new(status).set_body_string("<html>Bad Gateway</html>")).await;
    }
    always(&server, ok_both(), 1).await;
    let d = client(&quick_target(&server.uri())).deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Transaction));
    assert_eq!(d.attempts, 3);
}

#[tokio::test]
async fn server_errors_until_max_attempts_are_dead_lettered() {
    let server = MockServer::start().await;
    always(&server, fhir_json(503, outcome("transient", "maintenance")), 3).await;
    let mut t = quick_target(&server.uri());
    t.max_attempts = 3;
    let d = client(&t).deliver(small_bundle()).await;
    let f = d.result.expect_err("gave up");
    assert_eq!((f.kind, f.status, d.attempts), (FailureKind::Exhausted, Some(503), 3));
    assert!(f.reason.contains("maintenance"), "{}", f.reason);
}

#[tokio::test]
async fn timeout_is_retried() {
    let server = MockServer::start().await;
    once(&server, ok_both().set_delay(Duration::from_secs(3))).await;
    always(&server, ok_both(), 1).await;
    let mut t = quick_target(&server.uri());
    t.request_timeout_ms = 300;
    let d = client(&t).deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Transaction));
    assert_eq!(d.attempts, 2);
}

#[tokio::test]
async fn timeouts_until_max_attempts_say_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let mut t = quick_target(&server.uri());
    t.request_timeout_ms = 200;
    t.max_attempts = 2;
    let f = client(&t).deliver(small_bundle()).await.result.expect_err("timed out");
    assert_eq!(f.kind, FailureKind::Exhausted);
    assert!(f.reason.contains("timed out"), "{}", f.reason);
}

#[tokio::test]
async fn connection_refused_is_retried_then_given_up() {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut t = quick_target(&format!("http://127.0.0.1:{port}/fhir"));
    t.max_attempts = 3;
    let d = client(&t).deliver(small_bundle()).await;
    let f = d.result.expect_err("nobody listens");
    assert_eq!((f.kind, f.status, d.attempts), (FailureKind::Exhausted, None, 3));
    assert!(f.reason.contains("could not connect"), "{}", f.reason);
}

#[tokio::test]
async fn malformed_response_is_retried() {
    let server = MockServer::start().await;
    once(&server, ResponseTemplate::new(200).set_body_string("<html><body>Welcome to nginx!</body></html>")).await;
    // Valid JSON, but not a transaction-response with one entry per request entry.
    once(&server, fhir_json(200, response_bundle("transaction-response", &[200]))).await;
    always(&server, ok_both(), 1).await;
    let d = client(&quick_target(&server.uri())).deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Transaction));
    assert_eq!(d.attempts, 3);
}

#[tokio::test]
async fn transaction_refused_falls_back_to_batch_and_retries_only_failed_entries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"type": "transaction"})))
        .respond_with(fhir_json(501, outcome("not-supported", "transactions are not supported")))
        .expect(1)
        .mount(&server)
        .await;
    // The first batch: the Patient is stored, the Observation hits a transient error.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"type": "batch"})))
        .respond_with(fhir_json(200, response_bundle("batch-response", &[201, 503])))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"type": "batch"})))
        .respond_with(|r: &Request| {
            let b = body(r);
            let n = b["entry"].as_array().map(Vec::len).unwrap_or(0);
            fhir_json(200, response_bundle("batch-response", &vec![201; n]))
        })
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&quick_target(&server.uri()));
    let d = c.deliver(small_bundle()).await;
    assert_eq!(d.result, Ok(Mode::Batch));
    assert_eq!(d.attempts, 2);

    let requests = server.received_requests().await.expect("recorded");
    let second_batch = body(&requests[2]);
    let entries = second_batch["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "only the failed entry is sent again");
    assert_eq!(entries[0]["request"]["url"], "Observation/0b6c1d2e-0000-5000-8000-000000000002");
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"], "Patient/0b6c1d2e-0000-5000-8000-000000000001",
        "a batch resolves no urn:uuid references: they are rewritten to Type/id"
    );

    // The client remembers: the next delivery goes as a batch at once.
    assert_eq!(c.deliver(small_bundle()).await.result, Ok(Mode::Batch));
    assert_eq!(server.received_requests().await.expect("recorded").len(), 4);
}

#[tokio::test]
async fn batch_with_a_refused_entry_dead_letters_that_entry_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"type": "transaction"})))
        .respond_with(fhir_json(405, outcome("not-supported", "POST / is not allowed")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"type": "batch"})))
        .respond_with(fhir_json(200, response_bundle("batch-response", &[200, 422])))
        .expect(1)
        .mount(&server)
        .await;
    let d = client(&quick_target(&server.uri())).deliver(small_bundle()).await;
    let f = d.result.expect_err("one entry refused");
    assert_eq!(f.kind, FailureKind::Rejected);
    assert_eq!(f.entries.len(), 1);
    assert_eq!(f.entries[0].url, "Observation/0b6c1d2e-0000-5000-8000-000000000002");
    assert_eq!(f.entries[0].status, 422);
    assert!(f.entries[0].reason.contains("entry failed with 422"), "{}", f.entries[0].reason);
}

/// Every fault at once, many deliveries in parallel: all arrive, none is lost, and the
/// server holds every resource once whatever was repeated.
#[tokio::test]
async fn fault_mix_delivers_everything_exactly_once() {
    let server = MockServer::start().await;
    let fake = FakeFhir::new(|n, _| match n % 7 {
        1 => Fault::Status(503),
        2 => Fault::Status(429),
        3 => Fault::MalformedAfterStoring,
        4 => Fault::Status(500),
        5 => Fault::SlowAfterStoring(Duration::from_millis(600)),
        _ => Fault::None,
    });
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&server).await;
    let mut t = quick_target(&server.uri());
    t.request_timeout_ms = 300;
    t.max_attempts = 20;
    let c = Arc::new(client(&t));
    let bundles: Vec<Value> = (0..40).map(numbered_bundle).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for b in bundles {
        let c = c.clone();
        tasks.spawn(async move { c.deliver(b).await });
    }
    let mut attempts = 0;
    while let Some(d) = tasks.join_next().await {
        let d = d.expect("task");
        assert!(d.result.is_ok(), "{:?}", d.result);
        attempts += d.attempts;
    }
    assert_eq!(fake.stored(), 80, "every resource arrived");
    assert!(attempts > 40, "faults caused retries ({attempts} attempts)");
}

/// Bundle `i` of a fault run: its own Patient and Observation.
fn numbered_bundle(i: usize) -> Value {
    let text = serde_json::to_string(&small_bundle())
        .expect("json")
        .replace("0b6c1d2e-0000-5000-8000", &format!("0b6c1d2e-{i:04}-5000-8000"));
    serde_json::from_str(&text).expect("json")
}
