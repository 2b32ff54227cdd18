//! Leftovers classified (clinical vs administrative), the coverage figure and `--strict`.

mod common;

use std::process::Command;

use common::*;
use overdracht::convert::{convert, ConvertError, ConvertOptions};
use overdracht::validate::Leftover;
use serde_json::json;

fn patient_with(extra: serde_json::Value) -> Vec<u8> {
    let mut p = json!({
        "resourceType": "Patient", "id": "p",
        "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/nl-core-patient"], "security": [{"code": "N"}]},
        "text": {"status": "extensions", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
        "name": [{"family": "Jansen"}],
        "birthDate": "1950-01-01"
    });
    if let (Some(o), Some(x)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            o.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&p).expect("json")
}

#[test]
fn administrative_leftovers_are_information_and_pass_strict() {
    let input = patient_with(json!({}));
    let c = convert(&input, &ConvertOptions::default()).expect("converts");
    assert_eq!(c.clinical_leftovers(), 0, "{:?}", c.outcome);
    assert!(c.administrative_leftovers() >= 2, "meta.security and the narrative: {:?}", c.outcome);
    for i in c.outcome.issues.iter().filter(|i| i.leftover == Some(Leftover::Administrative)) {
        assert_eq!(i.severity, overdracht::validate::Severity::Information);
        assert_eq!(i.to_fhir()["details"]["coding"][0]["code"], "administrative");
    }
    let strict = ConvertOptions { strict: true, ..Default::default() };
    assert!(convert(&input, &strict).is_ok());
    // Coverage: everything but the leftovers is mapped.
    assert!(c.coverage.source_elements >= 8, "{:?}", c.coverage);
    assert!(c.coverage.unmapped_elements >= 2 && c.coverage.unmapped_elements < c.coverage.source_elements);
    assert!(c.coverage.share() > 0.5 && c.coverage.share() < 1.0);
}

#[test]
fn clinical_leftovers_are_warnings_and_strict_rejects_them() {
    let input = patient_with(json!({
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/blood-group", "valueString": "A+"}],
        "photo": [{"contentType": "image/png", "data": "AAAA"}]
    }));
    let c = convert(&input, &ConvertOptions::default()).expect("converts");
    assert_eq!(c.clinical_leftovers(), 2, "{:?}", c.outcome);
    let clinical: Vec<_> = c.outcome.issues.iter().filter(|i| i.leftover == Some(Leftover::Clinical)).collect();
    assert!(clinical.iter().all(|i| i.severity == overdracht::validate::Severity::Warning));
    assert_eq!(clinical[0].to_fhir()["details"]["coding"][0]["code"], "clinical");
    let strict = ConvertOptions { strict: true, ..Default::default() };
    match convert(&input, &strict) {
        Err(e @ ConvertError::ClinicalLeftovers { .. }) => {
            let o = e.to_outcome();
            assert!(o.has_errors());
            assert_eq!(o.issues.len(), 3, "the error and the two leftovers: {o:?}");
        }
        other => panic!("strict must reject: {other:?}"),
    }
    let figures = c.coverage_json();
    assert_eq!(figures["clinicalLeftovers"], 2);
    assert!(figures["share"].as_f64().expect("share") < 1.0);
    assert_eq!(
        figures["sourceElements"].as_u64().expect("n") - figures["mappedElements"].as_u64().expect("n"),
        c.coverage.unmapped_elements as u64
    );
}

#[test]
fn hl7v3_coverage_counts_attributes_and_texts() {
    let bytes = std::fs::read(root().join("tests/fixtures/hl7v3/professional-summary.xml")).expect("fixture");
    let c = convert(&bytes, &ConvertOptions::default()).expect("converts");
    assert!(c.coverage.source_elements > 50, "{:?}", c.coverage);
    assert!(c.coverage.share() > 0.5, "{:?}", c.coverage);
    assert_eq!(c.coverage.unmapped_elements == 0, c.clinical_leftovers() + c.administrative_leftovers() == 0);
}

#[test]
fn the_cli_prints_coverage_and_strict_rejects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("p.json");
    std::fs::write(
        &input,
        patient_with(json!({"extension": [{"url": "http://example.org/x", "valueString": "?"}]})),
    )
    .expect("write");
    let run = |strict: bool| {
        let mut args = vec![
            "convert".to_owned(),
            input.display().to_string(),
            "--out".into(),
            format!("{}/", dir.path().join("out").display()),
            "--rejects".into(),
            dir.path().join("rej.ndjson").display().to_string(),
        ];
        if strict {
            args.push("--strict".into());
        }
        Command::new(env!("CARGO_BIN_EXE_overdracht")).args(&args).output().expect("run")
    };
    let o = run(false);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("clinical leftovers 1"), "{stderr}");
    assert!(stderr.contains("CLINICAL warning at Patient.extension[0]"), "shown without --verbose: {stderr}");
    assert!(stderr.contains("coverage "), "{stderr}");
    let o = run(true);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("strict"), "{stderr}");
}
