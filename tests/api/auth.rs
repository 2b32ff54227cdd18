use crate::helpers::{assert_outcome, example, receiver_query, spawn_app, spawn_app_with, RECEIVER_URA};
use overdracht::api::auth::DemoKey;
use overdracht::config::IssuerSettings;

async fn post_with(app: &crate::helpers::TestApp, token: Option<String>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/handovers?{}", receiver_query())))
        .header("Content-Type", "application/fhir+json")
        .body(example());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

async fn assert_401(r: reqwest::Response, expect: &str) {
    let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(challenge.starts_with("Bearer"), "challenge {challenge:?}");
    let v = assert_outcome(r, 401).await;
    assert_eq!(v["issue"][0]["code"], "login");
    let d = v["issue"][0]["diagnostics"].as_str().unwrap_or("");
    assert!(d.contains(expect), "{d:?} should mention {expect:?}");
}

#[tokio::test]
async fn every_patient_endpoint_needs_a_token() {
    let app = spawn_app().await;
    for (method, path) in [
        ("POST", format!("/handovers?{}", receiver_query())),
        ("GET", "/handovers/0d0c6f2e-7a5f-5d3c-9e57-3d2b6c1b0a11".to_owned()),
        ("POST", "/fhir/$convert".to_owned()),
        ("POST", "/fhir/$validate".to_owned()),
    ] {
        let req = match method {
            "POST" => app.client.post(app.url(&path)).body(example()),
            _ => app.client.get(app.url(&path)),
        };
        let r = req.send().await.expect("req");
        assert_401(r, "bearer token").await;
    }
}

#[tokio::test]
async fn invalid_tokens_are_401() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(String, &str)> = vec![
        ("not-a-jwt".to_owned(), "well-formed"),
        (
            app.token_with(|c| {
                c.exp = now - 3600;
                c.nbf = now - 7200
            }),
            "expired",
        ),
        (app.token_with(|c| c.nbf = now + 3600), "not valid yet"),
        (app.token_with(|c| c.iss = "https://evil.example".to_owned()), "issuer"),
        (app.token_with(|c| c.aud = "someone-else".to_owned()), "audience"),
        (app.token_with(|c| c.ura = "123".to_owned()), "ura"),
        (app.token_with(|c| c.uzi_role = "huisarts".to_owned()), "uzi_role"),
    ];
    for (token, expect) in cases {
        assert_401(post_with(&app, Some(token)).await, expect).await;
    }
    // Signed by a key the service does not trust.
    let other = tempfile::tempdir().expect("dir");
    let foreign = DemoKey::load_or_create(other.path()).expect("key").sign(&crate::helpers::claims()).expect("sign");
    assert_401(post_with(&app, Some(foreign)).await, "trusted").await;
    // Not a Bearer scheme.
    let r = app
        .client
        .post(app.url(&format!("/handovers?{}", receiver_query())))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .body(example())
        .send()
        .await
        .expect("req");
    assert_401(r, "Bearer").await;
}

#[tokio::test]
async fn valid_token_without_a_care_purpose_is_403() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c.purpose_of_use = "HPAYMT".to_owned());
    let v = assert_outcome(post_with(&app, Some(token)).await, 403).await;
    assert_eq!(v["issue"][0]["code"], "forbidden");
    assert_eq!(app.store.handover_count().await.expect("count"), 0);
}

#[tokio::test]
async fn sending_for_another_organisation_is_403() {
    let app = spawn_app().await;
    let r = app.post_handover(&format!("{}&sender=ura%7C11112222", receiver_query()), example()).await;
    assert_outcome(r, 403).await;
}

#[tokio::test]
async fn real_issuer_replaces_the_demo_key() {
    // An identity provider's key pair, its public key as PEM.
    let idp = tempfile::tempdir().expect("dir");
    let idp_key = DemoKey::load_or_create(idp.path()).expect("key");
    let pem = idp.path().join("keys/demo-public-key.pem");
    let app = spawn_app_with(|s| {
        s.auth.issuers = vec![IssuerSettings {
            issuer: "https://idp.example".to_owned(),
            public_key_file: Some(pem),
            jwks_file: None,
            jwks_url: None,
            discovery: false,
        }]
    })
    .await;
    let mut claims = crate::helpers::claims();
    claims.iss = "https://idp.example".to_owned();
    let token = idp_key.sign(&claims).expect("sign");
    let r = post_with(&app, Some(token)).await;
    assert_eq!(r.status(), 201);
    // The local demo key is not trusted any more, and none was generated.
    assert!(!app.data_dir.path().join("keys/demo-signing-key.pem").exists());
    let demo = app.token();
    assert_401(post_with(&app, Some(demo)).await, "").await;
    let _ = RECEIVER_URA;
}
