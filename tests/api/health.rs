use crate::helpers::{example, receiver_query, spawn_app, EXAMPLE_BSN, SENDER_URA};

#[tokio::test]
async fn live_and_ready() {
    let app = spawn_app().await;
    for path in ["/health/live", "/health/ready"] {
        let r = app.client.get(app.url(path)).send().await.expect("req");
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key("x-request-id"));
    }
    let v: serde_json::Value =
        app.client.get(app.url("/health/ready")).send().await.expect("req").json().await.expect("json");
    assert_eq!(v["policy"]["evaluator"], "native", "{v}");
    assert_eq!(v["policy"]["why"], "the shipped policy and configuration", "{v}");
}

/// An adapted access-config.json with the shipped Rego: the Rego decides while the native
/// engine is proven on the decision table at start; it takes over when every cell agrees, and
/// never when one differs. The log and /health/ready say which decides.
#[tokio::test]
async fn ready_says_which_policy_evaluator_decides() {
    let shipped = std::fs::read_to_string(crate::helpers::repo_file("policies/access-config.json")).expect("config");
    // 7 days: a proof that passes; 4e9 days: a grace period past the calendar, which the
    // native engine counts otherwise than the Rego, so the proof fails.
    for (grace, evaluator, why) in [(7_u64, "native", "decided all"), (4_000_000_000, "rego", "differs from the Rego")]
    {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(crate::helpers::repo_file("policies/access.rego"), dir.path().join("access.rego")).expect("copy");
        let mut config: serde_json::Value = serde_json::from_str(&shipped).expect("json");
        config["overdracht"]["config"]["grace_period_days"] = grace.into();
        std::fs::write(dir.path().join("access-config.json"), config.to_string()).expect("write");
        let path = dir.path().to_owned();
        let app = crate::helpers::spawn_app_with(move |s| s.policy.dir = Some(path)).await;
        let mut seen = Vec::new();
        let policy = loop {
            let v: serde_json::Value =
                app.client.get(app.url("/health/ready")).send().await.expect("req").json().await.expect("json");
            let p = v["policy"].clone();
            if p["why"].as_str().is_some_and(|w| !w.contains("while the native engine is proven")) {
                break p;
            }
            assert_eq!(p["evaluator"], "rego", "the Rego decides during the proof: {p}");
            seen.push(p);
            assert!(seen.len() < 1200, "the proof did not end in 10 minutes");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        assert_eq!(policy["evaluator"], evaluator, "grace {grace}: {policy}");
        assert!(policy["why"].as_str().expect("why").contains(why), "grace {grace}: {policy}");
        let logs = crate::helpers::captured_logs();
        assert!(logs.contains("access policy evaluator") && logs.contains(why), "grace {grace}: the log says it");
    }
}

#[tokio::test]
async fn ready_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.store.close().await;
    let r = app.client.get(app.url("/health/ready")).send().await.expect("req");
    assert_eq!(r.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    crate::helpers::assert_outcome(r, 503).await;
    // Liveness does not depend on the database.
    let r = app.client.get(app.url("/health/live")).send().await.expect("req");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app().await;
    let _ = app.client.get(app.url("/health/live")).send().await;
    // A handover first, so that the metrics have had an organisation, a patient and a
    // practitioner pass by: none of them may show up in the labels.
    assert_eq!(app.post_handover(&receiver_query(), example()).await.status(), 201);
    let r = app.client.get(app.url("/metrics")).send().await.expect("req");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(
        text.contains("overdracht_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("overdracht_handovers_total{result=\"created\"} 1"), "{text}");
    for private in [SENDER_URA, EXAMPLE_BSN, "900012345", "Hendriks"] {
        assert!(!text.contains(private), "{private} in the metrics");
    }
}

#[tokio::test]
async fn openapi_describes_the_endpoints() {
    let app = spawn_app().await;
    let v: serde_json::Value =
        app.client.get(app.url("/openapi.json")).send().await.expect("req").json().await.expect("json");
    for p in [
        "/handovers",
        "/handovers/{id}",
        "/fhir/$convert",
        "/fhir/$validate",
        "/fhir/metadata",
        "/health/ready",
        "/metrics",
    ] {
        assert!(v["paths"][p].is_object(), "missing {p}");
    }
    assert_eq!(v["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[tokio::test]
async fn metadata_is_public_and_truthful() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/fhir/metadata")).send().await.expect("req");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["resourceType"], "CapabilityStatement");
    assert_eq!(v["fhirVersion"], "4.0.1");
    let ops: Vec<&str> =
        v["rest"][0]["operation"].as_array().expect("operations").iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(ops, ["convert", "validate"]);
    // The read facade: every type read + search by patient; CareTeam and Consent
    // also update; Patient $everything.
    let resources = v["rest"][0]["resource"].as_array().expect("resources");
    let of = |t: &str| resources.iter().find(|r| r["type"] == t).expect("type listed");
    let codes = |r: &serde_json::Value| -> Vec<String> {
        r["interaction"].as_array().expect("i").iter().filter_map(|i| i["code"].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(codes(of("Condition")), ["read", "search-type"]);
    assert_eq!(codes(of("CareTeam")), ["read", "update", "search-type"]);
    assert!(of("Condition")["searchParam"].to_string().contains("\"patient\""));
    assert_eq!(of("Patient")["operation"][0]["name"], "everything");
}
