//! Trusted issuers' keys from a JWKS URL (and OpenID Connect discovery), with wiremock as
//! the identity provider: rotation, a flood of unknown kids, an issuer that is down.

use overdracht::api::auth::DemoKey;
use overdracht::config::IssuerSettings;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{spawn_app_with, TestApp};

const ISS: &str = "https://idp.example";

/// A fresh Ed25519 key pair of the identity provider (its kid follows from the key).
fn idp_key() -> (tempfile::TempDir, DemoKey) {
    let dir = tempfile::tempdir().expect("dir");
    let key = DemoKey::load_or_create(dir.path()).expect("key");
    (dir, key)
}

/// A token of `iss` signed with `key`; each call a different one (its `nbf` a second
/// earlier than the last one's), so that each is checked against the keys in force: the
/// service remembers a token it verified ([`overdracht::api::auth::Verifier::verify`]).
fn token(key: &DemoKey, iss: &str) -> String {
    static CALLS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let mut claims = crate::helpers::claims();
    claims.iss = iss.to_owned();
    claims.nbf -= CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    key.sign(&claims).expect("sign")
}

async fn serve_jwks(server: &MockServer, keys: &[&DemoKey]) {
    server.reset().await;
    let jwks = json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()});
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
        .mount(server)
        .await;
}

async fn issuer_down(server: &MockServer) {
    server.reset().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).mount(server).await;
}

async fn fetches(server: &MockServer, of: &str) -> usize {
    server.received_requests().await.unwrap_or_default().iter().filter(|r| r.url.path() == of).count()
}

async fn app(issuer: IssuerSettings, refresh: u64, min_interval: u64) -> TestApp {
    spawn_app_with(move |s| {
        s.auth.issuers = vec![issuer];
        s.auth.jwks_refresh_seconds = refresh;
        s.auth.jwks_min_refresh_seconds = min_interval;
    })
    .await
}

fn by_url(url: String) -> IssuerSettings {
    IssuerSettings {
        issuer: ISS.to_owned(),
        public_key_file: None,
        jwks_file: None,
        jwks_url: Some(url),
        discovery: false,
    }
}

/// The status of an authenticated request: 404 (no such handover) once the token is
/// accepted, 401 when it is not, 503 when the issuer's keys could never be fetched.
async fn status(app: &TestApp, token: &str) -> (u16, String) {
    let r = app
        .client
        .get(app.url("/handovers/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_new_kid_is_accepted_after_one_refresh() {
    let server = MockServer::start().await;
    let (_d1, k1) = idp_key();
    let (_d2, k2) = idp_key();
    serve_jwks(&server, &[&k1]).await;
    let app = app(by_url(format!("{}/jwks", server.uri())), 3600, 0).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404, "a key of the JWKS");
    assert_eq!(fetches(&server, "/jwks").await, 1, "fetched at start, then cached");
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    assert_eq!(fetches(&server, "/jwks").await, 1, "cached");
    // The provider rotates: k2 appears (serve_jwks resets the request log).
    serve_jwks(&server, &[&k1, &k2]).await;
    assert_eq!(status(&app, &token(&k2, ISS)).await.0, 404, "accepted after a refresh on the unknown kid");
    assert_eq!(fetches(&server, "/jwks").await, 1);
    // Another issuer's token does not make this issuer's keys be fetched.
    let (code, _) = status(&app, &token(&k2, "https://other.example")).await;
    assert_eq!((code, fetches(&server, "/jwks").await), (401, 1));
}

#[tokio::test]
async fn a_flood_of_unknown_kids_makes_bounded_fetches() {
    let server = MockServer::start().await;
    let (_d1, k1) = idp_key();
    serve_jwks(&server, &[&k1]).await;
    let app = app(by_url(format!("{}/jwks", server.uri())), 3600, 60).await;
    let strangers: Vec<_> = (0..12).map(|_| idp_key()).collect();
    let tokens: Vec<String> = strangers.iter().map(|(_, k)| token(k, ISS)).collect();
    let answers = futures_join(&app, &tokens).await;
    assert!(answers.iter().all(|(s, _)| *s == 401), "{answers:?}");
    // One fetch at start; the unknown kids came within the minimum interval: none more.
    assert_eq!(fetches(&server, "/jwks").await, 1);
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404, "the known key still works");
}

async fn futures_join(app: &TestApp, tokens: &[String]) -> Vec<(u16, String)> {
    let mut set = tokio::task::JoinSet::new();
    for t in tokens {
        let (client, url, t) =
            (app.client.clone(), app.url("/handovers/00000000-0000-0000-0000-000000000000"), t.clone());
        set.spawn(async move {
            let r = client.get(url).bearer_auth(t).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("task"));
    }
    out
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let server = MockServer::start().await;
    let (_d1, k1) = idp_key();
    let (_d2, k2) = idp_key();
    serve_jwks(&server, &[&k1]).await;
    // Keys always stale: every token tries a refresh.
    let app = app(by_url(format!("{}/jwks", server.uri())), 0, 0).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    issuer_down(&server).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404, "the cached key works while the issuer is down");
    assert!(fetches(&server, "/jwks").await >= 1, "a refresh was tried");
    let (code, body) = status(&app, &token(&k2, ISS)).await;
    assert_eq!(code, 401, "an unknown key stays unknown: {body}");
}

#[tokio::test]
async fn an_issuer_never_reached_is_a_clear_503() {
    let server = MockServer::start().await;
    issuer_down(&server).await;
    let (_d1, k1) = idp_key();
    let app = app(by_url(format!("{}/jwks", server.uri())), 3600, 0).await;
    let (code, body) = status(&app, &token(&k1, ISS)).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("could not be fetched") && body.contains("HTTP 500"), "{body}");
    // It comes back: the next token fetches and is accepted.
    serve_jwks(&server, &[&k1]).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
}

#[tokio::test]
async fn openid_connect_discovery_finds_the_jwks() {
    let server = MockServer::start().await;
    let (_d1, k1) = idp_key();
    serve_jwks(&server, &[&k1]).await;
    let issuer = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})),
        )
        .mount(&server)
        .await;
    let settings = IssuerSettings {
        issuer: issuer.clone(),
        public_key_file: None,
        jwks_file: None,
        jwks_url: None,
        discovery: true,
    };
    let app = app(settings, 3600, 0).await;
    assert_eq!(status(&app, &token(&k1, &issuer)).await.0, 404);
    assert_eq!(fetches(&server, "/.well-known/openid-configuration").await, 1);

    // A discovery document that names another issuer is not followed.
    let other = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"issuer": "https://evil.example", "jwks_uri": format!("{issuer}/jwks")})),
        )
        .mount(&other)
        .await;
    let settings =
        IssuerSettings { issuer: other.uri(), public_key_file: None, jwks_file: None, jwks_url: None, discovery: true };
    let app = crate::jwks::app(settings, 3600, 0).await;
    let (code, body) = status(&app, &token(&k1, &other.uri())).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("another issuer"), "{body}");
}

async fn serve_jwks_cached(server: &MockServer, keys: &[&DemoKey], cache_control: &str) {
    server.reset().await;
    let jwks = json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()});
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks).insert_header("cache-control", cache_control))
        .mount(server)
        .await;
}

/// The JWKS answer's `Cache-Control: max-age` says how long the keys stay fresh, not the
/// configured refresh period (here an hour): after three seconds they are fetched again.
#[tokio::test]
async fn keys_are_refreshed_after_the_answers_max_age() {
    let server = MockServer::start().await;
    let (_d1, k1) = idp_key();
    serve_jwks_cached(&server, &[&k1], "public, max-age=3").await;
    let app = app(by_url(format!("{}/jwks", server.uri())), 3600, 0).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    assert_eq!(fetches(&server, "/jwks").await, 1, "fresh for three seconds");
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    assert_eq!(fetches(&server, "/jwks").await, 2, "stale after max-age, although the refresh period is an hour");
}

/// A `max-age` is bounded: not beyond `auth.jwks_max_refresh_seconds` (here 3 s, for a
/// day's max-age), and within it the keys are fresh although the refresh period (0) would
/// make every token fetch them.
#[tokio::test]
async fn a_max_age_is_bounded_by_the_configured_maximum() {
    let server = MockServer::start().await;
    let (_d1, k1) = idp_key();
    serve_jwks_cached(&server, &[&k1], "max-age=86400").await;
    let app = spawn_app_with({
        let issuer = by_url(format!("{}/jwks", server.uri()));
        move |s| {
            s.auth.issuers = vec![issuer];
            s.auth.jwks_refresh_seconds = 0;
            s.auth.jwks_min_refresh_seconds = 0;
            s.auth.jwks_max_refresh_seconds = 3;
        }
    })
    .await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    assert_eq!(fetches(&server, "/jwks").await, 1, "fresh within the max-age");
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert_eq!(status(&app, &token(&k1, ISS)).await.0, 404);
    assert_eq!(fetches(&server, "/jwks").await, 2, "the max-age is cut to the configured maximum");
}
