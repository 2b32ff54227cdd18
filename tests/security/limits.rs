//! Limits and hardening: one test per finding, each written to fail on the code
//! the review ran against. Heavy cases use small inputs with lowered limits so they stay
//! fast in debug builds.

use std::time::Duration;

use overdracht::audit::{AuditAction, AuditSearch};
use serde_json::{json, Value};

use crate::helpers::{
    assert_outcome, captured_logs, example, put, read_json, receiver_query, repo_file, spawn_app, spawn_app_with,
    token, TestApp, RECEIVER_URA,
};

const PROVIDER: &str = "11112222";
const AMALIA_URA: &str = "12345678";
const ADMIN: &str = "900000900";

/// The app with the example agreements (open-ended) and one administrator of Zorggroep Zuid.
async fn example_app() -> TestApp {
    spawn_app_with(|s| {
        s.policy.agreements_dir = Some(crate::helpers::open_ended_example_agreements(&s.data_dir));
        s.policy.admins = vec![format!("{PROVIDER}:{ADMIN}")];
    })
    .await
}

async fn audit_entries(app: &TestApp, actions: Vec<AuditAction>) -> Vec<overdracht::audit::AuditEntry> {
    overdracht::audit::search(&app.store, &AuditSearch { actions, oldest_first: true, ..Default::default() })
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.entry)
        .collect()
}

async fn validate(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.post("/fhir/$validate", app.token(), "application/fhir+json", body).await
}

/// A Patient with `n` empty names: every one is an issue (ele-1), the shape of the review's
/// 15 MB example.
fn patient_with_empty_names(n: usize) -> String {
    let mut s = String::with_capacity(n * 3 + 64);
    s.push_str("{\"resourceType\":\"Patient\",\"name\":[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{}");
    }
    s.push_str("]}");
    s
}

// ---------------------------------------------------------------------------------------
// 1. High: $validate blow-up

#[tokio::test]
async fn validate_blow_up_is_capped() {
    let app = spawn_app().await;
    let r = validate(&app, patient_with_empty_names(20_000)).await;
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.expect("body");
    assert!(body.len() < 512 * 1024, "response of {} bytes for a 60 kB request", body.len());
    let v: Value = serde_json::from_slice(&body).expect("json");
    let issues = v["issue"].as_array().expect("issues");
    assert!(issues.len() <= 1001, "{} issues", issues.len());
    let last = issues.last().expect("an issue");
    assert_eq!(last["code"], "too-costly", "{last}");
    assert!(last["diagnostics"].as_str().is_some_and(|d| d.contains("more issues")), "{last}");

    // The review's document: 15 MB, 5 M empty names. Refused before it is parsed.
    let started = std::time::Instant::now();
    let r = validate(&app, patient_with_empty_names(5_000_000)).await;
    let v = assert_outcome(r, 422).await;
    assert_eq!(v["issue"][0]["code"], "too-costly");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());

    // Lowered limits: issues, answer size and work per request.
    let app = spawn_app_with(|s| {
        s.limits.max_issues = 5;
        s.limits.max_json_values = 2_000;
        s.limits.max_response_bytes = 600;
    })
    .await;
    let r = validate(&app, patient_with_empty_names(900)).await;
    let body = r.bytes().await.expect("body");
    assert!(body.len() <= 600, "{} bytes", body.len());
    let v: Value = serde_json::from_slice(&body).expect("json");
    let issues = v["issue"].as_array().expect("issues");
    assert!(issues.len() <= 6, "{v}");
    assert_eq!(issues.last().expect("last")["code"], "too-costly");
    assert_eq!(issues.last().expect("last")["severity"], "error", "the omitted issues are errors");
    assert_outcome(validate(&app, patient_with_empty_names(1_100)).await, 422).await;
    // $convert and handovers count their work the same way.
    let r = app.post("/fhir/$convert", app.token(), "application/fhir+json", patient_with_empty_names(1_100)).await;
    assert_outcome(r, 422).await;

    // A conversion outcome keeps at most max_issues issues, and counts the rest.
    let app = spawn_app_with(|s| s.limits.max_issues = 1).await;
    let mut record: Value = serde_json::from_slice(&example()).expect("example");
    for i in 0..4 {
        let appointment =
            json!({"resource": {"resourceType": "Appointment", "id": format!("a{i}"), "status": "booked"}});
        record["entry"].as_array_mut().expect("entries").push(appointment);
    }
    let r = app.post_handover(&receiver_query(), record.to_string().into_bytes()).await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("summary");
    let unmapped = &s["unmapped"];
    let count = unmapped["count"].as_u64().expect("count");
    let shown = unmapped["outcome"]["issue"].as_array().expect("issues");
    assert!(count > 1, "the example has unmapped elements: {unmapped}");
    assert_eq!(shown.len(), 2, "{unmapped}");
    assert!(shown[1]["diagnostics"].as_str().is_some_and(|d| d.starts_with(&format!("{} more issues", count - 1))));
}

// ---------------------------------------------------------------------------------------
// 2. Medium: minimised data kept anyway

#[tokio::test]
async fn minimised_data_is_not_kept() {
    let app = example_app().await;
    let admin = token(&app, ADMIN, "01.047", PROVIDER);
    let team = read_json("examples/care-teams/young-adult-avg-individual.json");
    let id = team["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &format!("/fhir/CareTeam/{id}"), &admin, &team).await.status(), 201);
    let consent = read_json("examples/consents/consent-amalia-agreement.json");
    let cid = consent["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &format!("/fhir/Consent/{cid}"), &admin, &consent).await.status(), 201);
    let flat = std::fs::read(repo_file("examples/records/paediatrician-young-adult.flat.json")).expect("flat");
    let path = format!("/handovers?receiver=ura%7C{PROVIDER}&care-form=individual-avg");
    let send = || app.post(&path, token(&app, "900003333", "01.019", AMALIA_URA), "application/json", flat.clone());
    let r = send().await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("summary");
    assert_eq!(s["transfer"]["removed"][0]["category"], "vital-signs", "{s}");

    // The agreement removed the vital signs: nothing of them may remain in the stored row,
    // in any column, plain or base64.
    let mut pool = app.database().await;
    let rows = sqlx::query("SELECT * FROM handovers").fetch_all(&mut pool).await.expect("rows");
    assert_eq!(rows.len(), 1);
    use base64::Engine as _;
    use sqlx::{Column, Row};
    let mut sha = None;
    for (i, col) in rows[0].columns().iter().enumerate() {
        let Ok(Some(text)) = rows[0].try_get::<Option<String>, _>(i) else { continue };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        for marker in ["HeadCircumference", "BloodPressure", "BodyWeight"] {
            assert!(!text.contains(marker) && !decoded.contains(marker), "{marker} kept in column {}", col.name());
        }
        if col.name() == "source_sha256" {
            sha = Some(text);
        }
    }
    sqlx::Connection::close(pool).await.expect("close");
    // A hash of the original is kept, so the same record sent again is the same handover.
    use sha2::Digest;
    assert_eq!(sha.as_deref(), Some(hex::encode(sha2::Sha256::digest(&flat)).as_str()));
    assert_eq!(send().await.status(), 200, "idempotent");
}

/// A database from before the fix: its handover row keeps the original, which the upgrade
/// removes; the row itself stays readable.
#[tokio::test]
async fn minimised_data_is_not_kept_in_old_rows_either() {
    let dir = tempfile::tempdir().expect("dir");
    let old = dir.path().join("old-migrations");
    std::fs::create_dir_all(&old).expect("dir");
    for f in std::fs::read_dir(repo_file("migrations/sqlite")).expect("migrations") {
        let f = f.expect("entry").path();
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.as_str() < "0011" {
            std::fs::copy(&f, old.join(&name)).expect("copy");
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("overdracht.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
    sqlx::migrate::Migrator::new(old.as_path()).await.expect("migrator").run(&pool).await.expect("old schema");
    sqlx::query(
        "INSERT INTO handovers (id, created_at, status, sender, receiver, source_format, source_sha256, \
         source_size, source_base64, output_bundle, resource_count, summary, submitted_by_uzi, \
         submitted_by_role, submitted_by_ura) VALUES ('h1', '2026-01-01T00:00:00Z', 'accepted', 'ura|1', \
         'ura|2', 'flat', 'abc', 4, 'SGVhZENpcmN1bWZlcmVuY2U=', '{}', 0, '{}', '1', '01.015', '1')",
    )
    .execute(&pool)
    .await
    .expect("old row");
    pool.close().await;

    let store = overdracht::store::Store::open(&url, 1).await.expect("upgraded");
    let row = store.handover("h1").await.expect("read").expect("kept");
    assert_eq!((row.source_sha256.as_str(), row.source_size), ("abc", 4));
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("db");
    let r = sqlx::query("SELECT source_base64 FROM handovers").fetch_all(&pool).await;
    assert!(r.is_err(), "the column with the originals is gone");
}

// ---------------------------------------------------------------------------------------
// 8. Low: crit/jku tokens, demo key without issuers, CSP on the access log, $validate audit

/// A token for the demo key with extra JOSE header parameters.
fn token_with_header(app: &TestApp, extra: Value) -> String {
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key = overdracht::api::auth::DemoKey::load_or_create(app.data_dir.path()).expect("key");
    let mut header = json!({"alg": "EdDSA", "typ": "JWT", "kid": key.kid});
    for (k, v) in extra.as_object().expect("object") {
        header[k] = v.clone();
    }
    let pem = std::fs::read_to_string(app.data_dir.path().join("keys/demo-signing-key.pem")).expect("pem");
    let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("key");
    let claims = serde_json::to_value(crate::helpers::claims()).expect("claims");
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = signing.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

#[tokio::test]
async fn tokens_with_crit_or_jku_are_refused() {
    let app = spawn_app().await;
    let patient = r#"{"resourceType":"Patient","gender":"male"}"#;
    let plain = token_with_header(&app, json!({}));
    let r = app.post("/fhir/$validate", plain, "application/fhir+json", patient).await;
    assert_eq!(r.status(), 200, "the hand-made token itself is fine");
    for extra in [
        json!({"crit": ["exp"]}),
        json!({"crit": ["urn:example:must-understand"], "urn:example:must-understand": true}),
        json!({"jku": "https://attacker.example/jwks.json"}),
        json!({"x5u": "https://attacker.example/cert.pem"}),
        json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}),
    ] {
        let r =
            app.post("/fhir/$validate", token_with_header(&app, extra.clone()), "application/fhir+json", patient).await;
        let v = assert_outcome(r, 401).await;
        assert!(v.to_string().contains("header"), "{extra}: {v}");
    }
}

#[tokio::test]
async fn serve_without_issuers_refuses_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let settings = overdracht::config::Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let e = overdracht::api::Application::build(&settings).await.err().expect("must refuse to start");
    assert!(e.to_string().contains("auth.issuers"), "{e}");
    assert!(!dir.path().join("keys/demo-signing-key.pem").exists(), "no demo key made");
    // Explicitly, loudly, insecure: it starts (as `serve --demo` does).
    let settings = overdracht::config::Settings {
        auth: overdracht::config::AuthSettings { insecure_trust_demo_key: true, ..Default::default() },
        ..settings
    };
    assert!(overdracht::api::Application::build(&settings).await.is_ok());
    // The environment can say so too, and a configured issuer needs no flag.
    let env = |k: &str| (k == "OVERDRACHT_INSECURE_TRUST_DEMO_KEY").then(|| "true".to_owned());
    let s = overdracht::config::Settings::load_from(None, env).expect("settings");
    assert!(s.auth.insecure_trust_demo_key);
}

#[tokio::test]
async fn access_log_page_has_a_strict_csp() {
    let app = spawn_app().await;
    assert_eq!(app.post_handover(&receiver_query(), example()).await.status(), 201);
    // Since review R4 the receiver's access-log view is for the patient's team there.
    crate::helpers::store_team_led_by(&app, "900054321", "01.047", RECEIVER_URA, crate::helpers::EXAMPLE_BSN).await;
    let tok = token(&app, "900054321", "01.047", RECEIVER_URA);
    let r = app
        .client
        .get(app.url(&format!("/patients/{}/access-log?format=html", crate::helpers::EXAMPLE_BSN)))
        .bearer_auth(tok)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
    let csp = r.headers().get("content-security-policy").map(|v| v.to_str().expect("csp").to_owned());
    let csp = csp.expect("a Content-Security-Policy header");
    for directive in ["default-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing in {csp}");
    }
    assert_eq!(r.headers().get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
}

#[tokio::test]
async fn validate_is_audited() {
    let app = spawn_app().await;
    let before = audit_entries(&app, vec![]).await.len();
    let r = validate(&app, r#"{"resourceType":"Patient","gender":"banana","name":[{"family":"Geheim"}]}"#).await;
    assert_eq!(r.status(), 200);
    let after = audit_entries(&app, vec![]).await;
    assert_eq!(after.len(), before + 1, "one entry per $validate");
    let e = after.last().expect("entry");
    assert_eq!(e.action.code(), "validation");
    assert_eq!(e.user.as_ref().map(|u| u.uzi.as_str()), Some("900012345"));
    assert!(e.objects.iter().any(|o| o == "Patient"), "{:?}", e.objects);
    let stored = serde_json::to_string(e).expect("json");
    assert!(!stored.contains("Geheim") && !stored.contains("banana"), "no content stored: {stored}");
}

// ---------------------------------------------------------------------------------------
// 7. Low: paging arithmetic

#[tokio::test]
async fn huge_offset_is_400() {
    let app = spawn_app().await;
    for q in [
        "_offset=18446744073709551615",
        "_offset=18446744073709551615&_count=500",
        "_offset=9223372036854775807",
        "_count=18446744073709551615&_offset=5",
    ] {
        let r = app
            .client
            .get(app.url(&format!("/fhir/Condition?patient=abc&{q}")))
            .bearer_auth(app.token())
            .send()
            .await
            .expect("req");
        let status = r.status().as_u16();
        if q.starts_with("_count") {
            assert_eq!(status, 200, "{q}: an over-large _count is capped");
        } else {
            let v = assert_outcome(r, 400).await;
            assert_eq!(v["issue"][0]["expression"][0], "_offset", "{q}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. Medium: file permissions

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    if crate::database::skip_on_postgres("the database files are SQLite's") {
        return;
    }
    let app = spawn_app_with(|s| s.data_dir = s.data_dir.join("private")).await;
    let r = app.client.get(app.url("/health/ready")).send().await.expect("ready");
    assert_eq!(r.status(), 200);
    let dir = app.data_dir.path().join("private");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data dir");
    let mut checked = 0;
    for f in ["overdracht.db", "overdracht.db-wal", "overdracht.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "the database and its WAL exist");
    assert_eq!(mode(&dir.join("keys")), 0o700, "key dir");
    drop(app);

    // An installation from before: a 0755 directory with a 0644 database is narrowed.
    let app = spawn_app_with(|s| {
        let dir = s.data_dir.join("older");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let db = dir.join("overdracht.db");
        std::fs::write(&db, b"").expect("db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        s.data_dir = dir;
    })
    .await;
    let dir = app.data_dir.path().join("older");
    assert_eq!(mode(&dir), 0o700, "old data dir");
    assert_eq!(mode(&dir.join("overdracht.db")), 0o600, "old database");
    assert_eq!(mode(&dir.join("overdracht.db-wal")), 0o600, "old database's WAL");
}

// ---------------------------------------------------------------------------------------
// 6. Low: untrusted header values

#[tokio::test]
async fn untrusted_header_values_are_sanitised() {
    let app = example_app().await;
    // A team and a handover, then an outsider breaks the glass with a reason that would
    // clear the reviewer's screen and forge a line.
    // A new team is created by an administrator of the organisation (policy::writes).
    let admin = token(&app, ADMIN, "01.047", PROVIDER);
    let team = read_json("examples/care-teams/frail-elderly-group-care.json");
    assert_eq!(put(&app, "/fhir/CareTeam/zuid-999911120-2026", &admin, &team).await.status(), 201);
    let r = app
        .post(
            &format!("/handovers?receiver=ura%7C{PROVIDER}"),
            token(&app, "900012345", "01.015", "87654321"),
            "application/fhir+json",
            example(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("summary");
    let pid = s["patient"].as_str().expect("patient").trim_start_matches("Patient/").to_owned();
    let outsider = token(&app, "900000999", "01.047", PROVIDER);
    let forged_id = "abc request_id=forged-id ura=99999999";
    let r = app
        .client
        .get(app.url(&format!("/fhir/Patient/{pid}/$everything")))
        .bearer_auth(&outsider)
        .header("X-Break-Glass-Reason", "patient%20collapsed%1B%5B2J%1B%5BH%0D%0A2026-01-01%20all%20fine%07")
        .header("User-Agent", "curl/8 (admin console)")
        .header("X-Forwarded-For", "10.9.9.9, 10.0.0.1")
        .header("X-Request-Id", forged_id)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let echoed = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_ne!(echoed, forged_id, "a request id with spaces and '=' is replaced");
    assert!(!captured_logs().contains("request_id=forged-id"), "the text log shows a forged field");

    let bg = audit_entries(&app, vec![AuditAction::BreakGlass]).await;
    assert_eq!(bg.len(), 1);
    let reason = bg[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("patient collapsed"), "{reason}");
    assert!(!reason.chars().any(char::is_control), "control characters kept: {reason:?}");
    let client = bg[0].client.clone().unwrap_or_default();
    assert!(client.contains("claimed"), "User-Agent and X-Forwarded-For are marked as claimed: {client}");
    assert!(bg[0].request_id.as_deref() != Some(forged_id));

    // An entry from before the cleaning (raw escapes in its reason) is escaped when
    // `overdracht audit flagged` prints it.
    let mut old = overdracht::audit::AuditEntry::new(AuditAction::BreakGlass, overdracht::audit::AuditOutcome::Success);
    old.reason = Some("break-glass: x\u{1b}[2J\u{1b}[Hnothing to see\r\n".to_owned());
    old.emergency = true;
    old.flag_for_review = true;
    overdracht::audit::record_alone(&app.store, &old).await.expect("old entry");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_overdracht"))
        .args(["audit", "flagged", "--data-dir"])
        .arg(app.data_dir.path())
        .env("OVERDRACHT_DATABASE_URL", &app.database_url)
        .output()
        .expect("overdracht audit flagged");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("nothing to see"), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\r'), "raw escapes printed: {stdout:?}");
    assert!(stdout.contains("\\u{1b}[2J"), "{stdout}");
}

// ---------------------------------------------------------------------------------------
// 4. Medium: the concurrency permit, slow clients, unauthenticated floods

/// Opens a connection that sends an authenticated request's headers and half its body, and
/// then waits.
async fn slow_upload(app: &TestApp, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let host = app.address.trim_start_matches("http://").to_owned();
    let body = example();
    let head = format!(
        "POST /handovers?{} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n",
        receiver_query(),
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(&host).await.expect("connect");
    conn.write_all(head.as_bytes()).await.expect("headers");
    conn.write_all(&body[..body.len() / 2]).await.expect("half the body");
    conn
}

#[tokio::test]
async fn slow_uploads_do_not_starve_health_checks() {
    let app = spawn_app_with(|s| {
        s.limits.concurrency_limit = 6;
        s.limits.per_caller_concurrency = 3;
    })
    .await;
    let tok = app.token();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(slow_upload(&app, &tok).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app.client.get(app.url("/health/live")).send().await.expect("live");
    assert_eq!(r.status(), 200, "health checks are exempt from the concurrency limit");
    let r = app.client.get(app.url("/health/ready")).send().await.expect("ready");
    assert_eq!(r.status(), 200);

    // The uploader's organisation has its 3 permits in use: its next request waits its turn
    // (503), another organisation's does not.
    let patient = r#"{"resourceType":"Patient","gender":"male"}"#;
    let r = app.post("/fhir/$validate", app.token(), "application/fhir+json", patient).await;
    let v = assert_outcome(r, 503).await;
    assert!(v.to_string().contains("per_caller_concurrency"), "{v}");
    let other = token(&app, "900077777", "01.015", "55556666");
    let r = app.post("/fhir/$validate", other, "application/fhir+json", patient).await;
    assert_eq!(r.status(), 200, "another organisation is served");
    drop(held);
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| s.limits.header_read_timeout_ms = 300).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&host).await.expect("connect");
    conn.write_all(format!("GET /health/live HTTP/1.1\r\nHost: {host}\r\nX-A: ").as_bytes()).await.expect("part");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            // Trickle a byte now and then, as a slowloris client does.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if conn.write_all(b"a").await.is_err() {
                break;
            }
            let mut chunk = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(10), conn.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let answer = String::from_utf8_lossy(&buf);
    assert!(!answer.contains("200 OK"), "{answer}");
    // A normal client is served.
    let r = app.client.get(app.url("/health/live")).send().await.expect("live");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn unauthenticated_requests_are_audited_in_aggregate() {
    let app = spawn_app_with(|s| {
        s.limits.unauthenticated_window_ms = 2_000;
        s.limits.unauthenticated_per_window = 20;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = app.client.get(app.url("/fhir/Condition?patient=abc")).send().await.expect("req");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "rate limited: {statuses:?}");
    // A valid token from the same address is still served.
    let r = app.client.get(app.url("/fhir/Condition?patient=abc")).bearer_auth(app.token()).send().await.expect("req");
    assert_eq!(r.status(), 200);

    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let denied = audit_entries(&app, vec![AuditAction::Denied]).await;
    assert!(denied.len() <= 3, "one audit entry per unauthenticated request ({})", denied.len());
    let individual = denied.iter().filter(|e| e.reason.as_deref().is_some_and(|r| r.starts_with("HTTP 401"))).count();
    let counted: u64 = denied
        .iter()
        .filter_map(|e| e.reason.as_deref()?.split(" requests without a valid token").next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(individual as u64 + counted, 30, "{denied:?}");
    let summary = denied.iter().find(|e| e.reason.as_deref().is_some_and(|r| r.contains("429"))).expect("summary");
    assert!(summary.reason.as_deref().is_some_and(|r| r.contains("10 refused with 429")), "{summary:?}");
}

// ---------------------------------------------------------------------------------------
// 3. Medium: memory per request and in total, work after the timeout

/// The example record with its clinical entries repeated `copies` times (new ids), as a
/// large GP record.
fn big_stu3(copies: usize) -> Vec<u8> {
    let mut record: Value = serde_json::from_slice(&example()).expect("example");
    let shared = ["Patient", "Organization", "Practitioner", "PractitionerRole", "RelatedPerson"];
    let clinical: Vec<Value> = record["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| !shared.contains(&e["resource"]["resourceType"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    let ids: Vec<String> =
        clinical.iter().filter_map(|e| e["resource"]["id"].as_str().map(|i| format!("{i}\""))).collect();
    let entries = record["entry"].as_array_mut().expect("entries");
    for k in 1..copies {
        for e in &clinical {
            let mut text = e.to_string();
            for id in &ids {
                text = text.replace(id.as_str(), &format!("{}-{k}\"", id.trim_end_matches('"')));
            }
            entries.push(serde_json::from_str(&text).expect("entry"));
        }
    }
    record.to_string().into_bytes()
}

#[tokio::test]
async fn memory_is_bounded_per_request_and_in_total() {
    let size = example().len() as u64;
    // Room for one example-sized request at a time (10 bytes of memory per body byte).
    let app = spawn_app_with(|s| {
        s.limits.memory_per_body_byte = 10;
        s.limits.memory_budget_bytes = size * 15;
    })
    .await;
    let held = slow_upload(&app, &app.token()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = token(&app, "900077777", "01.015", "55556666");
    let r = app.post("/fhir/$convert", other.clone(), "application/fhir+json", example()).await;
    let v = assert_outcome(r, 503).await;
    assert!(v.to_string().contains("memory_budget_bytes"), "{v}");
    let r = app.client.get(app.url("/health/live")).send().await.expect("live");
    assert_eq!(r.status(), 200);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app.post("/fhir/$convert", other.clone(), "application/fhir+json", example()).await;
    assert_eq!(r.status(), 200, "the memory is free again");
    // A body that could never fit is refused before it is read.
    let r = app.post("/fhir/$convert", other, "application/fhir+json", vec![b' '; 2 * size as usize]).await;
    assert_outcome(r, 413).await;
}

#[tokio::test]
async fn conversion_stops_after_the_timeout() {
    // The memory budget fits one large conversion. The first times out (408); its memory
    // stays reserved until its conversion ends. Were the conversion to go on after the
    // 408 (as it did), the next one would be refused (503) for seconds.
    // Large enough that a whole conversion takes several times the 300 ms timeout, so that
    // "admitted before a whole conversion could have ended" holds on a loaded machine too.
    let big = big_stu3(150);
    let budget = big.len() as u64 * 15;
    let app = spawn_app_with(|s| {
        s.limits.request_timeout_ms = 300;
        s.limits.memory_per_body_byte = 10;
        s.limits.memory_budget_bytes = budget;
    })
    .await;
    let started = std::time::Instant::now();
    let r = app.post("/fhir/$convert", app.token(), "application/fhir+json", big.clone()).await;
    assert_outcome(r, 408).await;
    let mut statuses = Vec::new();
    let admitted = loop {
        let r = app.post("/fhir/$convert", app.token(), "application/fhir+json", big.clone()).await;
        statuses.push(r.status().as_u16());
        if r.status() != 503 || started.elapsed() > Duration::from_secs(20) {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(statuses.last(), Some(&408), "{statuses:?}");
    // Without cancellation a conversion of this record takes far longer in a debug build.
    let full = {
        let t = std::time::Instant::now();
        let c = overdracht::convert::convert(&big, &Default::default()).expect("converts");
        assert!(c.resources.len() > 100);
        t.elapsed()
    };
    assert!(admitted < full, "admitted after {admitted:?}; a whole conversion takes {full:?}; {statuses:?}");

    // The cancellation itself, in the library.
    let cancel = overdracht::convert::Cancel::new();
    cancel.cancel();
    let opts = overdracht::convert::ConvertOptions { cancel: Some(cancel), ..Default::default() };
    assert!(matches!(overdracht::convert::convert(&big, &opts), Err(overdracht::convert::ConvertError::Cancelled)));
}
