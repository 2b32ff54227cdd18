//! Every conversion of this test binary is checked a second time, independently: its Bundle
//! (entry by entry) and its OperationOutcome must deserialise into fhirbolt's typed R4 model
//! and serialise back to the same JSON (tests/common/fhirbolt.rs). The modules here call
//! [`convert`] and [`convert_json`] instead of the library's.

use crate::common;

use overdracht::convert::{Conversion, ConvertError, ConvertOptions};
use serde_json::Value;

/// Checks a conversion's output against fhirbolt's R4 model (fails the test if it disagrees).
pub fn check(c: &Conversion) {
    common::fhirbolt::assert_round_trips("conversion bundle", &c.bundle());
    common::fhirbolt::assert_round_trips("conversion outcome", &c.outcome.to_fhir());
}

/// [`overdracht::convert::convert`], its output checked by [`check`].
pub fn convert(bytes: &[u8], opts: &ConvertOptions) -> Result<Conversion, ConvertError> {
    let c = overdracht::convert::convert(bytes, opts)?;
    check(&c);
    Ok(c)
}

/// [`overdracht::convert::convert_json`], its output checked by [`check`].
pub fn convert_json(v: Value, opts: &ConvertOptions) -> Result<Conversion, ConvertError> {
    let c = overdracht::convert::convert_json(v, opts)?;
    check(&c);
    Ok(c)
}

/// Every golden output (the examples, the fixtures, the CGM samples, the Professional Summary):
/// its Bundle and its OperationOutcome.
#[test]
fn fhirbolt_reads_every_golden_output_back_unchanged() {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("golden folder") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().and_then(|e| e.to_str()) == Some("json") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    files(&common::root().join("tests/golden"), &mut paths);
    paths.sort();
    let before = common::fhirbolt::CHECKED.load(std::sync::atomic::Ordering::Relaxed);
    let mut problems = Vec::new();
    let mut resources = 0;
    for p in &paths {
        let text = std::fs::read_to_string(p).expect("read golden file");
        let doc: Value = serde_json::from_str(&text).expect("golden file is JSON");
        let name = p.strip_prefix(common::root()).unwrap_or(p).display().to_string();
        let mut found = false;
        for key in ["bundle", "outcome"] {
            if let Some(v) = doc.get(key) {
                found = true;
                resources += 1 + v.get("entry").and_then(Value::as_array).map_or(0, Vec::len);
                problems.extend(common::fhirbolt::problems(&format!("{name} {key}"), v));
            }
        }
        if !found && doc.get("resourceType").is_some() {
            problems.extend(common::fhirbolt::problems(&name, &doc));
            resources += 1;
        }
    }
    assert!(problems.is_empty(), "fhirbolt's R4 model disagrees:\n  {}", problems.join("\n  "));
    let checked = common::fhirbolt::CHECKED.load(std::sync::atomic::Ordering::Relaxed) - before;
    eprintln!("{} golden files, {resources} resources checked against fhirbolt", paths.len());
    assert!(paths.len() >= 20, "expected the golden files, found {}", paths.len());
    assert!(checked >= resources, "only {checked} of {resources} resources went through fhirbolt");
}

/// The oracle is not vacuous: what fhirbolt's R4 model has no place for is reported.
#[test]
fn fhirbolt_oracle_reports_what_r4_has_no_place_for() {
    let bad = serde_json::json!({"resourceType": "Patient", "id": "p", "shoeSize": 44});
    assert!(!common::fhirbolt::problems("unknown element", &bad).is_empty());
    let bad = serde_json::json!({"resourceType": "Patient", "id": "p", "active": "yes"});
    assert!(!common::fhirbolt::problems("wrong JSON type", &bad).is_empty());
    let bundle = serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Observation", "id": "o1", "valueDecimal": 1}}
    ]});
    let p = common::fhirbolt::problems("nested", &bundle);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("Bundle.entry[1].resource"), "{p:?}");
    // fhirbolt panics on an empty array; the oracle reports it and carries on
    let empty = serde_json::json!({"resourceType": "Patient", "id": "p", "name": []});
    assert!(!common::fhirbolt::problems("empty array", &empty).is_empty());
    // a single value where R4 has a list: fhirbolt reads it and writes a list, which is a difference
    let single = serde_json::json!({"resourceType": "Flag", "status": "active", "code": {"text": "x"},
                                    "subject": {"reference": "Patient/p"}, "category": {"text": "y"}});
    assert!(!common::fhirbolt::problems("single value for a list", &single).is_empty());
    let good = serde_json::json!({"resourceType": "Patient", "id": "p", "birthDate": "1974-12-25"});
    assert!(common::fhirbolt::problems("valid", &good).is_empty());
}
