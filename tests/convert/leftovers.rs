//! Leftovers classified (clinical vs administrative), the coverage figure and `--strict`.

use crate::common;

use std::process::Command;

use crate::oracle::convert;
use common::*;
use overdracht::convert::{ConvertError, ConvertOptions};
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
    std::fs::write(&input, patient_with(json!({"extension": [{"url": "http://example.org/x", "valueString": "?"}]})))
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

fn clinical(c: &overdracht::convert::Conversion) -> Vec<String> {
    c.outcome.issues.iter().filter(|i| i.leftover == Some(Leftover::Clinical)).map(ToString::to_string).collect()
}

fn resource<'a>(bundle: &'a serde_json::Value, ty: &str) -> &'a serde_json::Value {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in the output"))
}

#[test]
fn gp_clinical_details_are_mapped() {
    let bytes = std::fs::read(root().join("tests/fixtures/stu3-gp-clinical-details.json")).expect("fixture");
    let c = convert(&bytes, &ConvertOptions { strict: true, ..Default::default() }).expect("nothing clinical left");
    assert!(clinical(&c).is_empty());
    let b = c.bundle();
    // ICPC on the journal line (component) → SOAPLine code extension; the line keeps its id.
    let line = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["meta"]["profile"][0].as_str().is_some_and(|p| p.ends_with("SOAPReport.SOAPLine")))
        .expect("a SOAP line");
    assert_eq!(line["identifier"][0]["value"], "55501");
    let code_ext = line["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["url"].as_str().is_some_and(|u| u.ends_with("ext-SOAPReport.SOAPLineCode")))
        .expect("the line's code");
    assert_eq!(code_ext["valueCodeableConcept"]["coding"][0]["code"], "K77");
    let comp = resource(&b, "Composition");
    assert!(comp["title"].as_str().expect("title").contains("Decompensatio cordis"), "{}", comp["title"]);
    // The directive's exception is a nested provision.
    let consent = resource(&b, "Consent");
    assert_eq!(consent["provision"]["type"], "permit");
    assert_eq!(consent["provision"]["provision"][0]["type"], "deny");
    assert_eq!(consent["provision"]["provision"][0]["code"][0]["coding"][0]["code"], "89666000");
    // Episode first/last encounter dates.
    let ep = resource(&b, "EpisodeOfCare");
    let urls: Vec<&str> = ep["extension"].as_array().expect("ext").iter().filter_map(|x| x["url"].as_str()).collect();
    assert!(urls.iter().any(|u| u.ends_with("EpisodeOfCare-DateFirstEncounter")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with("EpisodeOfCare-DateLastEncounter")), "{urls:?}");
    // Recorder and dispense request on the agreement.
    let mr = resource(&b, "MedicationRequest");
    assert!(mr["recorder"]["reference"].is_string(), "{mr}");
    assert_eq!(mr["dispenseRequest"]["numberOfRepeatsAllowed"], 3);
    assert_eq!(mr["dispenseRequest"]["quantity"]["value"], 90);
    // Practitioner qualification and birth date.
    let pr = resource(&b, "Practitioner");
    assert_eq!(pr["birthDate"], "1970-02-03");
    assert_eq!(pr["qualification"][0]["identifier"][0]["value"], "19012345601");
    // References by fullUrl (urn:uuid, absolute URL) resolve.
    assert!(line["subject"]["reference"].as_str().is_some_and(|r| r.starts_with("urn:uuid:")), "{line}");
    assert!(line["performer"][0]["reference"].is_string(), "{line}");
}

/// The deliberate test cases of the Professional Summary fixture: an unknown future section
/// and an episode listing an act id that is in no contact. Both must stay reported.
const DELIBERATE: &[&str] = &["/PrimaryCareProvision/component9", "/episodOfCare/component[2]"];

#[test]
fn the_examples_and_fixtures_leave_nothing_clinical_behind() {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/fixtures"))
        .expect("fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    files.extend(
        std::fs::read_dir(root().join("tests/fixtures/xml")).expect("xml").filter_map(Result::ok).map(|e| e.path()),
    );
    files.push(root().join("tests/fixtures/hl7v3/professional-summary.xml"));
    files.push(root().join("examples/records/gp-frail-elderly.stu3.json"));
    files.push(root().join("examples/records/paediatrician-young-adult.flat.json"));
    for f in files {
        let c = convert(&std::fs::read(&f).expect("read"), &ConvertOptions::default()).expect("converts");
        let left: Vec<String> =
            clinical(&c).into_iter().filter(|i| !DELIBERATE.iter().any(|d| i.contains(d))).collect();
        assert!(left.is_empty(), "{}: {left:#?}", f.display());
    }
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_samples_leave_nothing_clinical_behind() {
    let refdir = require_reference();
    let mut files = vec![
        refdir.join("professionele-samenvatting/QUPC_IN990002NL_01.xml"),
        refdir.join("professionele-samenvatting/nictiz-stu3-conversion.xml"),
    ];
    for dir in ["zorgviewer-ig/examples", "nl-core-r4/examples"] {
        files.extend(std::fs::read_dir(refdir.join(dir)).expect("examples").filter_map(Result::ok).map(|e| e.path()));
    }
    let mut n = 0;
    for f in files {
        let c = convert(&std::fs::read(&f).expect("read"), &ConvertOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(clinical(&c).is_empty(), "{}: {:#?}", f.display(), clinical(&c));
        n += 1;
    }
    assert!(n > 100, "{n}");
}

#[test]
fn every_mapping_decision_is_in_the_docs() {
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("mappings/element-map.json")).expect("data"))
            .expect("json");
    let doc = std::fs::read_to_string(root().join("docs/mappings.md")).expect("docs/mappings.md");
    let mut n = 0;
    for p in data["profiles"].as_array().expect("profiles") {
        assert!(doc.contains(p["source"].as_str().expect("source")), "{}", p["source"]);
        for e in p["elements"].as_array().expect("elements") {
            for k in ["from", "to"] {
                let text = e[k].as_str().expect("text").replace('|', "\\|");
                assert!(doc.contains(&text), "docs/mappings.md lacks {text:?}: run scripts/gen-mappings-doc.py");
            }
            n += 1;
        }
    }
    assert!(n > 30, "{n}");
}
