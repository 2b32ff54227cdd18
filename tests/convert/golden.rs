//! Golden tests: reviewed expected output for the examples, our own fixtures and (as
//! `reference_*` tests) every CGM sample in ../shared/reference.

use crate::common;

use std::path::Path;

use crate::oracle::convert;
use common::*;
use overdracht::convert::ConvertOptions;

fn golden_text(input: &Path) -> String {
    let bytes = std::fs::read(input).expect("read input");
    let c = convert(&bytes, &ConvertOptions::default())
        .unwrap_or_else(|e| panic!("{} does not convert: {e}", input.display()));
    let bundle = c.bundle();
    check_bundle(&bundle);
    let doc = serde_json::json!({"outcome": c.outcome.to_fhir(), "bundle": bundle});
    let mut s = serde_json::to_string_pretty(&doc).expect("serialise");
    s.push('\n');
    s
}

#[test]
fn golden_gp_frail_elderly() {
    let input = root().join("examples/records/gp-frail-elderly.stu3.json");
    assert_golden(&root().join("tests/golden/gp-frail-elderly.json"), &golden_text(&input));
}

#[test]
fn golden_paediatrician_young_adult() {
    let input = root().join("examples/records/paediatrician-young-adult.flat.json");
    assert_golden(&root().join("tests/golden/paediatrician-young-adult.json"), &golden_text(&input));
}

#[test]
fn golden_fixtures() {
    let dir = root().join("tests/fixtures");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures folder") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name").to_owned();
        assert_golden(&root().join(format!("tests/golden/fixtures/{stem}.json")), &golden_text(&path));
        n += 1;
    }
    assert!(n >= 5, "expected the STU3 fixtures in tests/fixtures, found {n}");
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_cgm_samples_golden() {
    let dir = require_reference().join("zorgviewer-ig/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("").to_owned();
        if !name.ends_with("-CGM.json") {
            continue;
        }
        let stem = name.trim_end_matches(".json");
        let text = golden_text(&path);
        // Every converted resource claims an nl-core or MP9 profile.
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        for e in v["bundle"]["entry"].as_array().into_iter().flatten() {
            let p = e["resource"]["meta"]["profile"][0].as_str().expect("profile");
            assert!(
                p.starts_with("http://nictiz.nl/fhir/StructureDefinition/nl-core-")
                    || p.starts_with("http://nictiz.nl/fhir/StructureDefinition/mp-")
                    || p.starts_with("https://w3id.org/overdracht/fhir/StructureDefinition/"),
                "{name}: unexpected profile {p}"
            );
        }
        assert_golden(&root().join(format!("tests/golden/cgm/{stem}.json")), &text);
        n += 1;
    }
    assert!(n >= 14, "expected the 14 CGM samples, found {n}");
}

#[test]
fn conversion_is_byte_identical_when_repeated() {
    let input = root().join("examples/records/gp-frail-elderly.stu3.json");
    assert_eq!(golden_text(&input), golden_text(&input));
}
