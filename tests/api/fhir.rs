use serde_json::{json, Value};

use crate::helpers::{assert_outcome, example, spawn_app};

#[tokio::test]
async fn convert_returns_a_transaction_bundle_and_stores_nothing() {
    let app = spawn_app().await;
    let r = app.post("/fhir/$convert", app.token(), "application/fhir+json", example()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("application/fhir+json"));
    let b: Value = r.json().await.expect("json");
    crate::fhirbolt::assert_round_trips("$convert Bundle", &b);
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "transaction");
    assert!(b["entry"].as_array().is_some_and(|e| e.len() > 10));
    assert_eq!(app.store.handover_count().await.expect("count"), 0);
}

#[tokio::test]
async fn convert_to_ndjson() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/fhir/$convert?_output=ndjson&format=fhir-stu3"))
        .bearer_auth(app.token())
        .body(example())
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/fhir+ndjson");
    let text = r.text().await.expect("text");
    assert!(text.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    for l in text.lines() {
        crate::fhirbolt::assert_round_trips("$convert ndjson", &serde_json::from_str(l).expect("json"));
    }
}

async fn validate(app: &crate::helpers::TestApp, body: Value) -> Value {
    let r = app.post("/fhir/$validate", app.token(), "application/fhir+json", body.to_string()).await;
    assert_eq!(r.status(), 200);
    let o: Value = r.json().await.expect("json");
    crate::fhirbolt::assert_round_trips("$validate OperationOutcome", &o);
    o
}

/// `validation.unknown_extensions` decides how `$validate` reports an extension it has no
/// definition of (default: information, as the HL7 reference validator).
#[tokio::test]
async fn validate_reports_unknown_extensions_as_configured() {
    use overdracht::validate::UnknownExtensions;
    let patient = json!({"resourceType": "Patient", "extension": [{"url": "http://example.org/fhir/StructureDefinition/x", "valueString": "y"}]});
    let at = |o: &Value| -> Vec<String> {
        o["issue"]
            .as_array()
            .expect("issues")
            .iter()
            .filter(|i| i["expression"][0] == "Patient.extension[0]")
            .map(|i| i["severity"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let default = spawn_app().await;
    assert_eq!(at(&validate(&default, patient.clone()).await), vec!["information"]);
    let strict = crate::helpers::spawn_app_with(|s| s.validation.unknown_extensions = UnknownExtensions::Error).await;
    assert_eq!(at(&validate(&strict, patient).await), vec!["error"]);
}

#[tokio::test]
async fn validate_answers_with_an_operation_outcome() {
    let app = spawn_app().await;
    let ok = validate(&app, json!({"resourceType": "Patient", "gender": "female"})).await;
    assert_eq!(ok["resourceType"], "OperationOutcome");
    assert!(!ok["issue"].as_array().expect("issues").iter().any(|i| i["severity"] == "error"), "{ok}");
    let bad = validate(&app, json!({"resourceType": "Patient", "gender": "banana", "birthDate": "1974-13-45"})).await;
    let errors = bad["issue"].as_array().expect("issues").iter().filter(|i| i["severity"] == "error").count();
    assert!(errors >= 2, "{bad}");
    let no_type = validate(&app, json!({"gender": "female"})).await;
    assert!(no_type["issue"].as_array().expect("issues").iter().any(|i| i["severity"] == "error"));
    let params = validate(
        &app,
        json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]}),
    )
    .await;
    assert_eq!(params["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn validate_rejects_non_json() {
    let app = spawn_app().await;
    let r = app.post("/fhir/$validate", app.token(), "application/fhir+json", "{oops").await;
    assert_outcome(r, 400).await;
    let r = app.post("/fhir/$validate", app.token(), "application/xml", "<Patient/>").await;
    assert_outcome(r, 415).await;
}

#[tokio::test]
async fn a_utf8_byte_order_mark_before_json_is_tolerated() {
    let app = spawn_app().await;
    let bom = |text: &str| [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
    let r =
        app.post("/fhir/$validate", app.token(), "application/fhir+json", bom(r#"{"resourceType": "Patient"}"#)).await;
    assert_eq!(r.status(), 200);
    let o: Value = r.json().await.expect("json");
    assert!(!o["issue"].as_array().expect("issues").iter().any(|i| i["severity"] == "error"), "{o}");
    let body = [b"\xEF\xBB\xBF".as_slice(), &example()].concat();
    let r = app.post("/fhir/$convert", app.token(), "application/fhir+json", body).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn convert_reads_fhir_xml() {
    let app = spawn_app().await;
    let xml = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xml/stu3-patient.xml")).expect("twin");
    let json = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stu3-patient.json")).expect("json");
    let from_xml = app.post("/fhir/$convert", app.token(), "application/fhir+xml", xml.clone()).await;
    assert_eq!(from_xml.status(), 200);
    let from_json = app.post("/fhir/$convert", app.token(), "application/fhir+json", json).await;
    let (a, b): (Value, Value) = (from_xml.json().await.expect("json"), from_json.json().await.expect("json"));
    assert_eq!(a, b, "the XML twin converts like its JSON");
    // Forced by the format parameter, and by fhirVersion on the media type.
    let forced = app
        .client
        .post(app.url("/fhir/$convert?format=fhir-stu3-xml"))
        .bearer_auth(app.token())
        .header("content-type", "application/fhir+xml; fhirVersion=3.0")
        .body(xml)
        .send()
        .await
        .expect("req");
    assert_eq!(forced.status(), 200);
}
