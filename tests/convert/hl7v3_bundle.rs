//! End to end: the Professional Summary fixture (and, with `--ignored`, the real NHG sample)
//! through `convert` into a transaction Bundle of nl-core resources.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use overdracht::convert::{convert, ConvertOptions};
use serde_json::Value;

const FIXTURE: &[u8] = include_bytes!("../fixtures/hl7v3/professional-summary.xml");
/// The NHG sample (`OVERDRACHT_REFERENCE_DIR` overrides ../shared/reference).
fn sample() -> std::path::PathBuf {
    let dir = std::env::var_os("OVERDRACHT_REFERENCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    dir.join("professionele-samenvatting/QUPC_IN990002NL_01.xml")
}
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/hl7v3-professional-summary.bundle.json");

/// Resources per type, after checking every entry: a profile, an id, a resolvable reference.
fn check(bundle: &Value) -> BTreeMap<String, usize> {
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().expect("entries");
    let full_urls: HashSet<&str> = entries.iter().filter_map(|e| e["fullUrl"].as_str()).collect();
    let mut counts = BTreeMap::new();
    for e in entries {
        let r = &e["resource"];
        let rt = r["resourceType"].as_str().expect("resourceType").to_owned();
        let profile = r["meta"]["profile"][0].as_str().unwrap_or_default();
        assert!(
            profile.starts_with("http://nictiz.nl/fhir/StructureDefinition/nl-core-")
                || profile.starts_with("http://nictiz.nl/fhir/StructureDefinition/mp-"),
            "{rt} has profile {profile:?}"
        );
        assert!(r["id"].is_string(), "{rt} has an id");
        assert_eq!(e["request"]["method"], "PUT");
        let mut refs = Vec::new();
        collect_refs(r, &mut refs);
        for reference in refs {
            if reference.starts_with("urn:uuid:") {
                assert!(
                    full_urls.contains(reference.as_str()),
                    "{rt} refers to {reference}, which is not in the Bundle"
                );
            }
        }
        *counts.entry(rt).or_insert(0) += 1;
    }
    counts
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_fixture_becomes_a_bundle_of_nl_core_resources() {
    let c = convert(FIXTURE, &ConvertOptions::default()).expect("converts");
    assert_eq!(c.sender, "ura|99990001");
    let bundle = c.bundle();
    let counts = check(&bundle);
    println!("resources per type: {counts:#?}");
    for (rt, n) in [
        ("Patient", 1),
        ("Practitioner", 1),
        ("PractitionerRole", 1),
        ("Organization", 1),
        ("EpisodeOfCare", 2),
        ("Condition", 2),
        ("Encounter", 2),
        ("Composition", 3),
        ("Medication", 1),
        ("MedicationRequest", 2),
        ("AllergyIntolerance", 1),
        // a contra-indication, an attention annotation, and the LOINC 74018-3 alert on an episode
        ("Flag", 3),
    ] {
        assert_eq!(counts.get(rt).copied(), Some(n), "{rt}: {counts:?}");
    }
    // SOAP lines and results are Observations: 6 lines + 4 results at least.
    assert!(counts.get("Observation").copied().unwrap_or(0) >= 10, "{counts:?}");
    // Deterministic: the same input gives the same Bundle.
    let again = convert(FIXTURE, &ConvertOptions::default()).expect("converts").bundle();
    assert_eq!(bundle, again);
}

#[test]
fn golden_hl7v3_professional_summary() {
    let c = convert(FIXTURE, &ConvertOptions::default()).expect("converts");
    let doc = serde_json::json!({"outcome": c.outcome.to_fhir(), "bundle": c.bundle()});
    let mut actual = serde_json::to_string_pretty(&doc).expect("serialise");
    actual.push('\n');
    let path = Path::new(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("folder")).expect("create folder");
        std::fs::write(path, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).map_or(0, |l| l + 1);
        panic!("output differs from {} at line {line}; review and run with UPDATE_GOLDEN=1 to accept", path.display());
    }
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_professional_summary_bundle() {
    let bytes = std::fs::read(sample()).expect("the sample message is in ../shared/reference");
    let c = convert(&bytes, &ConvertOptions::default()).expect("the sample converts");
    let counts = check(&c.bundle());
    println!("resources per type: {counts:#?}");
    println!("outcome: {} warning(s), {} issue(s)", c.warnings(), c.outcome.issues.len());
    for rt in [
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "EpisodeOfCare",
        "Condition",
        "Encounter",
        "Composition",
        "Observation",
        "Medication",
        "MedicationRequest",
        "AllergyIntolerance",
        "Flag",
    ] {
        assert!(counts.get(rt).copied().unwrap_or(0) > 0, "no {rt}: {counts:?}");
    }
}
