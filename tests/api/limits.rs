//! Bad input and protection of the service: every error is an OperationOutcome with the
//! right status, never a 500.

use crate::helpers::{assert_outcome, example, receiver_query, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_json_is_400_pointing_at_the_problem() {
    let app = spawn_app().await;
    let r = app.post_handover(&receiver_query(), b"{\"resourceType\": \"Bundle\",\n \"entry\": [}".to_vec()).await;
    let v = assert_outcome(r, 400).await;
    let at = v["issue"][0]["expression"][0].as_str().expect("expression");
    assert!(at.contains("line 2"), "{at}");
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, param) in [
        ("care-form=group-frail".to_owned(), "receiver"),
        ("receiver=12345678".to_owned(), "receiver"),
        ("receiver=agb-z%7C01234567".to_owned(), "receiver"),
        (format!("{}&format=pdf", receiver_query()), "format"),
        (format!("{}&care-form=spa", receiver_query()), "care-form"),
        (format!("{}&lead-practitioner=ura%7C12345678", receiver_query()), "lead-practitioner"),
    ] {
        let r = app.post_handover(&query, example()).await;
        let v = assert_outcome(r, 400).await;
        assert_eq!(v["issue"][0]["expression"][0], param, "{query}");
    }
    let r = app.post_handover(&receiver_query(), Vec::new()).await;
    assert_outcome(r, 400).await;
}

#[tokio::test]
async fn invalid_bsn_is_422() {
    let app = spawn_app().await;
    let body = String::from_utf8(example()).expect("utf8").replace(crate::helpers::EXAMPLE_BSN, "123456789");
    let r = app.post_handover(&receiver_query(), body.into_bytes()).await;
    let v = assert_outcome(r, 422).await;
    assert!(v.to_string().contains("BSN"), "{v}");
}

#[tokio::test]
async fn unsupported_media_type_is_415() {
    let app = spawn_app().await;
    for ct in ["text/plain", "application/pdf", "application/x-www-form-urlencoded"] {
        let r = app.post(&format!("/handovers?{}", receiver_query()), app.token(), ct, example()).await;
        assert_outcome(r, 415).await;
    }
}

#[tokio::test]
async fn too_large_body_is_413() {
    let app = spawn_app_with(|s| s.limits.body_limit_bytes = 1024).await;
    let r = app.post_handover(&receiver_query(), example()).await;
    let v = assert_outcome(r, 413).await;
    assert_eq!(v["issue"][0]["code"], "too-long");
}

#[tokio::test]
async fn slow_request_is_408() {
    let app = spawn_app_with(|s| s.limits.request_timeout_ms = 1).await;
    let r = app.post_handover(&receiver_query(), example()).await;
    let v = assert_outcome(r, 408).await;
    assert_eq!(v["issue"][0]["code"], "timeout");
}

#[tokio::test]
async fn overload_is_503_with_retry_after() {
    let app = spawn_app_with(|s| s.limits.concurrency_limit = 1).await;
    let mut refused = 0;
    for r in app.parallel_handovers(12).await {
        match r.status().as_u16() {
            200 | 201 => {}
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                assert_outcome(r, 503).await;
                refused += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(refused > 0, "some requests must be refused at concurrency 1");
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_outcomes() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/nope")).send().await.expect("req");
    assert_outcome(r, 404).await;
    let r = app.client.delete(app.url("/handovers")).send().await.expect("req");
    assert!(r.headers().contains_key("allow"));
    assert_outcome(r, 405).await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut app = spawn_app().await;
    // A request that is surely in flight when shutdown starts: its headers and half its
    // body are sent on an open connection, the rest only after the shutdown was triggered.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://").to_owned();
    let body = example();
    let head = format!(
        "POST /handovers?{} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        receiver_query(),
        app.token(),
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let half = body.len() / 2;
    conn.write_all(head.as_bytes()).await.expect("headers");
    conn.write_all(&body[..half]).await.expect("first half");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    app.trigger_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    conn.write_all(&body[half..]).await.expect("second half");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{}", answer.lines().next().unwrap_or_default());
    let _ = (&mut app.server).await;
    // Stopped: new connections are refused.
    assert!(app.client.get(app.url("/health/live")).send().await.is_err());
}
