//! End to end: the Professional Summary fixture (and, with `--ignored`, the real NHG sample)
//! through `convert` into a transaction Bundle of nl-core resources.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::oracle::convert;
use overdracht::convert::ConvertOptions;
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
    // SOAP lines and results are Observations: 6 lines + 3 results at least; the CT is a
    // text result (DiagnosticReport nl-core-TextResult), not a laboratory result.
    assert!(counts.get("Observation").copied().unwrap_or(0) >= 9, "{counts:?}");
    assert_eq!(counts.get("DiagnosticReport").copied(), Some(1), "{counts:?}");
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

fn resources<'a>(bundle: &'a Value, rt: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == rt)
        .collect()
}

/// What the fixture says beyond codes: the message's identity, the zib alert type, the
/// care provision's author, the MP9 agreement shape, the CT as a text result.
#[test]
fn message_alerts_authors_agreements_and_text_results_are_carried_as_nl_core_expects() {
    let c = convert(FIXTURE, &ConvertOptions::default()).expect("converts");
    let bundle = c.bundle();
    // the message id and creation time identify the Bundle
    assert_eq!(
        bundle["identifier"],
        serde_json::json!({"system": "urn:oid:2.16.840.1.113883.2.4.6.6.99999999.1", "value": "0f4c2a52-5a0e-4f41-9d1e-000000000001"})
    );
    assert_eq!(bundle["timestamp"], "2024-03-15T09:30:00+01:00");
    // the GP of the care provision (contextControlCode AP)
    let gp_role = resources(&bundle, "PractitionerRole")[0]["id"].as_str().expect("role id").to_owned();
    let gp = format!("urn:uuid:{gp_role}");
    // every alert has a zib alert type (LOINC 74018-3), never the HL7v3 act code (CI, ATT)
    let flags = resources(&bundle, "Flag");
    assert_eq!(flags.len(), 3);
    for f in &flags {
        assert_eq!(
            f["category"],
            serde_json::json!([{"coding": [{"system": "http://loinc.org", "code": "74018-3", "display": "Alert"}]}]),
            "{f}"
        );
        assert_eq!(f["author"]["reference"], gp.as_str(), "{f}");
        // zib-Alert-2: an alert about a concern is coded not-applicable, with its text
        if f.get("extension").is_some() {
            assert_eq!(f["code"]["coding"][0]["code"], "not-applicable", "{f}");
            assert_eq!(f["code"]["coding"].as_array().map(Vec::len), Some(1), "{f}");
            assert!(f["code"]["text"].is_string(), "{f}");
        }
    }
    // problems, episodes, results and the allergy are the provision author's
    for c in resources(&bundle, "Condition") {
        assert_eq!(c["asserter"]["reference"], gp.as_str(), "{c}");
    }
    for e in resources(&bundle, "EpisodeOfCare") {
        assert_eq!(e["careManager"]["reference"], gp.as_str(), "{e}");
    }
    for a in resources(&bundle, "AllergyIntolerance") {
        assert_eq!(a["recorder"]["reference"], gp.as_str(), "{a}");
    }
    // the CT: nl-core-TextResult with the report text as conclusion
    let ct = resources(&bundle, "DiagnosticReport")[0];
    assert_eq!(ct["meta"]["profile"][0], "http://nictiz.nl/fhir/StructureDefinition/nl-core-TextResult");
    assert_eq!(ct["code"]["coding"][0]["code"], "2283");
    assert!(ct["conclusion"].is_string(), "{ct}");
    assert!(resources(&bundle, "Observation").iter().all(|o| o["code"]["coding"][0]["code"] != "2283"));
    // MP9 agreements: the agreement code, the period of use as ext-TimeInterval.Period, a
    // pharmaceutical treatment each, and no two agreements sharing an identifier
    let agreements = resources(&bundle, "MedicationRequest");
    let mut ids = HashSet::new();
    let mut treatments = HashSet::new();
    for m in &agreements {
        assert_eq!(m["category"][0]["coding"][0]["code"], "33633005", "{m}");
        let ext = |url: &str| {
            m["extension"].as_array().into_iter().flatten().find(|x| x["url"] == url).cloned().unwrap_or_default()
        };
        let period = ext("http://nictiz.nl/fhir/StructureDefinition/ext-TimeInterval.Period");
        assert!(period["valuePeriod"]["start"].is_string(), "{m}");
        let treatment = ext("http://nictiz.nl/fhir/StructureDefinition/ext-PharmaceuticalTreatment.Identifier");
        assert!(treatments.insert(treatment["valueIdentifier"]["value"].to_string()), "{m}");
        for i in m["identifier"].as_array().into_iter().flatten() {
            assert!(ids.insert(i.to_string()), "two agreements share {i}");
        }
        // the period of use is not repeated as the dosage's bounds
        assert!(m.pointer("/dosageInstruction/0/timing/repeat/boundsPeriod").is_none(), "{m}");
    }
    assert_eq!(agreements.len(), 2);
    // the same record gives the same treatment identifiers
    let again = convert(FIXTURE, &ConvertOptions::default()).expect("converts").bundle();
    assert_eq!(bundle, again);
}
