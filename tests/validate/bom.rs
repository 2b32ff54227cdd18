//! A UTF-8 byte-order mark before a JSON document (Windows tools write one) is tolerated wherever
//! we read JSON from outside: validate (files, NDJSON), convert (detection and reading). The API's
//! `$validate` and `$convert` are covered in tests/api/fhir.rs.

use overdracht::convert::{convert, ConvertOptions};
use overdracht::source::{detect, Format};
use overdracht::validate::{validate_files, Validator};

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn with_bom(text: &[u8]) -> Vec<u8> {
    [BOM, text].concat()
}

#[test]
fn validate_reads_json_and_ndjson_after_a_bom() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let json = tmp.path().join("bom.json");
    let ndjson = tmp.path().join("bom.ndjson");
    std::fs::write(&json, with_bom(br#"{"resourceType": "Patient", "gender": "male"}"#)).expect("write");
    std::fs::write(&ndjson, with_bom(b"{\"resourceType\": \"Patient\"}\n{\"resourceType\": \"Patient\"}\n"))
        .expect("write");
    let r = validate_files(Validator::embedded(), &[json, ndjson], None).expect("readable");
    assert_eq!(r.len(), 3);
    for f in &r {
        assert!(!f.outcome.has_errors(), "{}: {:?}", f.location(), f.outcome.issues);
    }
}

#[test]
fn a_bom_elsewhere_is_still_not_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("inside.json");
    std::fs::write(&p, [b"{".as_slice(), BOM, b"\"resourceType\": \"Patient\"}"].concat()).expect("write");
    let r = validate_files(Validator::embedded(), &[p], None).expect("readable");
    assert!(r[0].outcome.has_errors());
}

#[test]
fn convert_detects_and_reads_json_after_a_bom() {
    let record = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/records/gp-frail-elderly.stu3.json"))
        .expect("example record");
    let plain = convert(&record, &ConvertOptions::default()).expect("converts");
    let bom = convert(&with_bom(&record), &ConvertOptions::default()).expect("converts after a BOM");
    assert_eq!(plain.resources.len(), bom.resources.len());
    assert_eq!(plain.format, bom.format);
    assert_eq!(detect(&with_bom(&record)).expect("detected"), Format::FhirStu3);
    let forced = ConvertOptions { format: Some(Format::FhirStu3), ..ConvertOptions::default() };
    assert!(convert(&with_bom(&record), &forced).is_ok());
}
