//! `overdracht deliver`: exit status, summary and the dead-letter file.

use crate::support;

use std::process::Command;

use serde_json::{json, Value};
use support::*;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer};

fn overdracht() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_overdracht"));
    c.env_remove("OVERDRACHT_DELIVER_TOKEN");
    c
}

/// The examples as one NDJSON file, the output shape of `overdracht convert`.
fn ndjson_input(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("bundles.ndjson");
    let lines: Vec<String> = example_bundles().iter().map(|b| serde_json::to_string(b).expect("json")).collect();
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    path
}

/// `overdracht deliver --target URL --rejects FILE ARGS... INPUT`.
fn deliver(target: &str, rejects: &std::path::Path, args: &[&str], input: &std::path::Path) -> std::process::Output {
    overdracht()
        .args(["deliver", "--target", target, "--rejects"])
        .arg(rejects)
        .args(args)
        .arg(input)
        .output()
        .expect("runs")
}

#[tokio::test]
async fn all_delivered_exits_0_with_a_summary() {
    let server = MockServer::start().await;
    let fake = FakeFhir::new(|n, _| if n == 0 { Fault::Status(503) } else { Fault::None });
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&server).await;
    let dir = tempfile::tempdir().expect("tmp");
    let input = ndjson_input(dir.path());
    let rejects = dir.path().join("rejects.ndjson");
    let out = overdracht()
        .args([
            "deliver",
            "--jobs",
            "1",
            "--backoff-ms",
            "5",
            "--target",
            &server.uri(),
            "--token",
            "t0k3n",
            "--rejects",
        ])
        .arg(&rejects)
        .arg(&input)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("delivered 2, not delivered 0, resources 79, retries 1"), "{stderr}");
    assert!(!rejects.exists(), "no dead letters, no file");
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests[0].headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer t0k3n"));
}

#[tokio::test]
async fn a_refused_bundle_exits_1_and_is_kept_with_the_reason() {
    let server = MockServer::start().await;
    // The paediatrician's record is refused; the GP record goes through.
    let patient_of_second = example_bundles()[1]["entry"][0]["request"]["url"].as_str().expect("url").to_owned();
    Mock::given(method("POST"))
        .and(body_string_contains(patient_of_second.as_str()))
        .respond_with(fhir_json(422, outcome("business-rule", "the receiving EHR does not know this practitioner")))
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(FakeFhir::new(|_, _| Fault::None)).mount(&server).await;
    let dir = tempfile::tempdir().expect("tmp");
    let input = ndjson_input(dir.path());
    let rejects = dir.path().join("rejects.ndjson");
    let out = deliver(&server.uri(), &rejects, &[], &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("delivered 1, not delivered 1"), "{stderr}");
    let text = std::fs::read_to_string(&rejects).expect("dead letters");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["line"], json!(2));
    assert_eq!(lines[0]["failure"]["status"], json!(422));
    assert!(lines[0]["failure"]["reason"].as_str().unwrap_or("").contains("does not know this practitioner"));
    let kept: Value = serde_json::from_str(lines[0]["record"].as_str().expect("record kept as text")).expect("JSON");
    assert_eq!(kept, example_bundles()[1], "the Bundle is kept whole, to deliver again later");
}

#[test]
fn usage_errors_exit_2() {
    let out =
        overdracht().args(["deliver", "nothing-here.ndjson", "--target", "http://127.0.0.1:9"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = overdracht().args(["deliver", "x.ndjson"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "neither --target nor --targets");
    let targets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/delivery-targets.json");
    let out = overdracht()
        .args(["deliver", "Cargo.toml", "--receiver", "99999999", "--targets"])
        .arg(&targets)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no target for receiver 99999999"));
}

#[tokio::test]
async fn input_that_is_not_a_bundle_is_a_dead_letter_too() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("patient.json");
    std::fs::write(&input, r#"{"resourceType": "Patient"}"#).expect("write");
    let rejects = dir.path().join("rejects.ndjson");
    let out = deliver(&server.uri(), &rejects, &[], &input);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&rejects).expect("dead letters");
    assert!(text.contains("not a Bundle") && text.contains(r#"\"resourceType\": \"Patient\""#), "{text}");
}

/// Input that is not UTF-8 is kept byte for byte (base64), not "repaired".
#[tokio::test]
async fn bytes_that_are_not_utf8_are_kept_exactly() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("latin1.json");
    let bytes = b"{\"resourceType\": \"Bundle\", \"naam\": \"Ren\xe9\"}".to_vec();
    std::fs::write(&input, &bytes).expect("write");
    let rejects = dir.path().join("rejects.ndjson");
    let out = deliver(&server.uri(), &rejects, &[], &input);
    assert_eq!(out.status.code(), Some(1));
    let line: Value =
        serde_json::from_str(std::fs::read_to_string(&rejects).expect("dead letters").trim()).expect("JSON");
    assert!(line["record"].is_null(), "{line}");
    let kept = base64::engine::general_purpose::STANDARD
        .decode(line["recordBase64"].as_str().expect("recordBase64"))
        .expect("base64");
    assert_eq!(kept, bytes);
    assert!(line["reason"].as_str().unwrap_or("").starts_with("not JSON"), "{line}");
    assert_eq!(line["input"], json!(input.display().to_string()));
}

/// Two Bundles for two patients that name the same Condition id (as a foreign converter or
/// an old id scheme could): the first is delivered, the second is not sent but kept as a
/// dead letter with the reason; the receiving server never sees the id rebound.
#[tokio::test]
async fn a_bundle_that_reuses_another_patients_id_is_a_dead_letter() {
    let server = MockServer::start().await;
    let fake = FakeFhir::new(|_, _| Fault::None);
    Mock::given(method("POST")).respond_with(fake.clone()).mount(&server).await;
    let [first, second] = [0, 1].map(|i| example_bundles()[i].clone());
    let condition = |b: &Value| -> Value {
        b["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Condition")
            .cloned()
            .expect("a Condition")
    };
    let mut second = second;
    // The second patient's Bundle carries the first patient's Condition id.
    let taken = condition(&first)["resource"]["id"].clone();
    let mine = second["entry"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .find(|e| e["resource"]["resourceType"] == "Condition")
        .expect("a Condition");
    mine["resource"]["id"] = taken.clone();
    mine["request"]["url"] = json!(format!("Condition/{}", taken.as_str().expect("id")));
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("bundles.ndjson");
    std::fs::write(&input, format!("{first}\n{second}\n")).expect("write");
    let rejects = dir.path().join("rejects.ndjson");
    let out = deliver(&server.uri(), &rejects, &["--jobs", "1"], &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("delivered 1, not delivered 1"), "{stderr}");
    assert_eq!(server.received_requests().await.expect("requests").len(), 1, "the second Bundle is never sent");
    let text = std::fs::read_to_string(&rejects).expect("dead letters");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["line"], json!(2));
    let reason = lines[0]["failure"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("another patient") && reason.contains(taken.as_str().expect("id")), "{reason}");
    let kept: Value = serde_json::from_str(lines[0]["record"].as_str().expect("record kept as text")).expect("JSON");
    assert_eq!(kept, second, "the Bundle is kept whole");
}
