//! Loading FHIR packages: a folder in the standard layout and the same package as a .tgz.

use std::io::Write;
use std::path::{Path, PathBuf};

use overdracht::validate::{Severity, Validator};
use serde_json::{json, Value};

const PROFILE: &str = "http://example.org/fhir/StructureDefinition/test-patient";

/// A tiny IG: a Patient profile that requires birthDate and binds a local code system.
fn package_files() -> Vec<(&'static str, Value)> {
    vec![
        ("package.json", json!({"name": "example.test", "version": "0.0.1", "fhirVersions": ["4.0.1"]})),
        (
            "StructureDefinition-test-patient.json",
            json!({
                "resourceType": "StructureDefinition", "url": PROFILE, "name": "TestPatient", "status": "draft",
                "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
                "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
                "snapshot": {"element": [
                    {"id": "Patient", "path": "Patient", "min": 0, "max": "*"},
                    {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1, "max": "1", "type": [{"code": "date"}]},
                    {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus", "min": 0, "max": "1",
                     "type": [{"code": "CodeableConcept"}],
                     "binding": {"strength": "required", "valueSet": "http://example.org/fhir/ValueSet/test"}}
                ]}
            }),
        ),
        (
            "ValueSet-test.json",
            json!({"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/test", "status": "active",
                   "compose": {"include": [{"system": "http://example.org/fhir/CodeSystem/test"}]}}),
        ),
        (
            "CodeSystem-test.json",
            json!({"resourceType": "CodeSystem", "url": "http://example.org/fhir/CodeSystem/test", "status": "active",
                   "content": "complete", "concept": [{"code": "a"}, {"code": "b", "concept": [{"code": "b1"}]}]}),
        ),
    ]
}

fn write_folder(root: &Path) -> PathBuf {
    let dir = root.join("example.test#0.0.1").join("package");
    std::fs::create_dir_all(&dir).expect("create package folder");
    for (name, v) in package_files() {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&v).expect("json")).expect("write");
    }
    root.join("example.test#0.0.1")
}

fn write_tgz(root: &Path) -> PathBuf {
    let path = root.join("example.test-0.0.1.tgz");
    let file = std::fs::File::create(&path).expect("create tgz");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, v) in package_files() {
        let bytes = serde_json::to_vec(&v).expect("json");
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("package/{name}"), bytes.as_slice()).expect("append");
    }
    tar.into_inner().expect("tar").finish().expect("gzip").flush().expect("flush");
    path
}

fn check(v: &Validator) {
    assert!(v.knows_profile(PROFILE));
    let ok = json!({"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "birthDate": "2001-01-01",
                    "maritalStatus": {"coding": [{"system": "http://example.org/fhir/CodeSystem/test", "code": "b1"}]}});
    let o = v.validate(&ok);
    assert!(o.is_empty(), "{:?}", o.issues);
    let bad = json!({"resourceType": "Patient", "meta": {"profile": [PROFILE]},
                     "maritalStatus": {"coding": [{"system": "http://example.org/fhir/CodeSystem/test", "code": "c"}]}});
    let o = v.validate(&bad);
    let at: Vec<(&str, Severity)> =
        o.issues.iter().map(|i| (i.expression.as_deref().unwrap_or(""), i.severity)).collect();
    assert!(at.contains(&("Patient.birthDate", Severity::Error)), "{:?}", o.issues);
    assert!(at.contains(&("Patient.maritalStatus", Severity::Error)), "{:?}", o.issues);
    assert!(at.contains(&("Patient.maritalStatus.coding[0].code", Severity::Error)), "{:?}", o.issues);
    // validate_against applies a profile the resource does not claim
    let plain = json!({"resourceType": "Patient"});
    assert!(!v.validate(&plain).has_errors());
    assert!(v.validate_against(&plain, PROFILE).has_errors());
}

#[test]
fn loads_a_package_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = write_folder(tmp.path());
    check(&Validator::with_packages(&[dir]).expect("loads"));
    // a folder of packages (a package cache) works too
    check(&Validator::with_packages(&[tmp.path().to_path_buf()]).expect("loads"));
}

#[test]
fn loads_a_package_tgz() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tgz = write_tgz(tmp.path());
    check(&Validator::with_packages(&[tgz]).expect("loads"));
}

#[test]
fn bad_package_paths_are_errors_that_name_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("nope");
    let e = Validator::with_packages(std::slice::from_ref(&missing)).expect_err("missing path");
    assert!(e.to_string().contains("nope"), "{e}");
    let dir = write_folder(tmp.path());
    let broken = dir.join("package").join("StructureDefinition-broken.json");
    std::fs::write(&broken, b"{not json").expect("write");
    let e = Validator::with_packages(&[dir]).expect_err("broken json");
    assert!(e.to_string().contains("StructureDefinition-broken.json"), "{e}");
}
