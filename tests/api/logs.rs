use crate::helpers::{captured_logs, example, receiver_query, spawn_app, EXAMPLE_BSN};

#[tokio::test]
async fn logs_carry_request_ids_but_no_bsn_names_or_clinical_text() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url(&format!("/handovers?{}", receiver_query())))
        .bearer_auth(app.token())
        .header("Content-Type", "application/fhir+json")
        .header("Referral-Reason", "Valrisico%20bij%20parkinsonisme")
        .body(example())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 201);
    let request_id = r.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    // A rejected record too: its error message must not reach the log either.
    let bad = String::from_utf8(example()).expect("utf8").replace(EXAMPLE_BSN, "123456789");
    let _ = app.post_handover(&receiver_query(), bad.into_bytes()).await;
    let logs = captured_logs();
    assert!(logs.contains(&request_id), "request id in the logs");
    assert!(logs.contains("handover stored"));
    for secret in [EXAMPLE_BSN, "123456789", "Hendriks", "Wilhelmina", "Valrisico", "parkinsonisme"] {
        assert!(!logs.contains(secret), "the log contains {secret:?}");
    }
}
