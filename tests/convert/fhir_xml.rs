//! FHIR XML input: XML twins of our JSON inputs convert to the same output.
//!
//! The twins are written by a small JSON → XML writer below (the official rules, in the
//! direction the reader does not go: it needs no table of what repeats, because JSON says).
//! A reader mistake about which elements repeat or which primitives are numbers would show
//! here as a difference. A few twins are also committed (`tests/fixtures/xml/`), so that the
//! files a reviewer can open are tested too.

use crate::common;

use std::path::Path;

use crate::oracle::convert;
use common::*;
use overdracht::convert::{Conversion, ConvertOptions};
use overdracht::source::{self, Format};
use serde_json::{Map, Value};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One resource as FHIR XML (the root carries the namespace).
pub fn to_xml(resource: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_resource(resource, true, &mut out);
    out
}

fn write_resource(r: &Value, root: bool, out: &mut String) {
    let rt = r["resourceType"].as_str().expect("resourceType");
    out.push_str(&format!("<{rt}{}>", if root { " xmlns=\"http://hl7.org/fhir\"" } else { "" }));
    if let Some(m) = r.as_object() {
        write_members(m, true, false, out);
    }
    out.push_str(&format!("</{rt}>"));
}

fn write_members(m: &Map<String, Value>, is_resource: bool, is_extension: bool, out: &mut String) {
    for (k, v) in m {
        if k == "resourceType" || (!is_resource && k == "id") || (is_extension && k == "url") {
            continue; // attributes, or the element name itself
        }
        if let Some(base) = k.strip_prefix('_') {
            if !m.contains_key(base) {
                write_element(base, &Value::Null, Some(v), out);
            }
            continue;
        }
        write_element(k, v, m.get(&format!("_{k}")), out);
    }
}

fn write_element(name: &str, v: &Value, twin: Option<&Value>, out: &mut String) {
    if name == "div" {
        out.push_str(v.as_str().expect("div is a string"));
        return;
    }
    match v {
        Value::Array(items) => {
            let twins = twin.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                write_one(name, item, twins.and_then(|t| t.get(i)), out);
            }
        }
        Value::Null => {
            if let Some(Value::Array(ts)) = twin {
                for t in ts {
                    write_one(name, &Value::Null, Some(t), out);
                }
            } else {
                write_one(name, v, twin, out);
            }
        }
        _ => write_one(name, v, twin, out),
    }
}

fn write_one(name: &str, v: &Value, twin: Option<&Value>, out: &mut String) {
    match v {
        Value::Object(m) if m.contains_key("resourceType") => {
            out.push_str(&format!("<{name}>"));
            write_resource(v, false, out);
            out.push_str(&format!("</{name}>"));
        }
        Value::Object(m) => {
            let is_ext = name == "extension" || name == "modifierExtension";
            out.push_str(&format!("<{name}"));
            if let Some(id) = m.get("id").and_then(Value::as_str) {
                out.push_str(&format!(" id=\"{}\"", esc(id)));
            }
            if is_ext {
                if let Some(u) = m.get("url").and_then(Value::as_str) {
                    out.push_str(&format!(" url=\"{}\"", esc(u)));
                }
            }
            out.push('>');
            write_members(m, false, is_ext, out);
            out.push_str(&format!("</{name}>"));
        }
        _ => {
            let t = twin.and_then(Value::as_object);
            out.push_str(&format!("<{name}"));
            if let Some(id) = t.and_then(|t| t.get("id")).and_then(Value::as_str) {
                out.push_str(&format!(" id=\"{}\"", esc(id)));
            }
            if let Some(s) = scalar(v) {
                out.push_str(&format!(" value=\"{}\"", esc(&s)));
            }
            match t {
                Some(t) if t.keys().any(|k| k != "id") => {
                    out.push('>');
                    write_members(t, false, false, out);
                    out.push_str(&format!("</{name}>"));
                }
                _ => out.push_str("/>"),
            }
        }
    }
}

fn sorted_issues(c: &Conversion) -> Vec<String> {
    let mut v: Vec<String> = c.outcome.issues.iter().map(|i| i.to_string()).collect();
    v.sort();
    v
}

/// Converts `json` and its XML twin and asserts the same output; returns the XML format read.
fn assert_twins(name: &str, json: &[u8]) -> Format {
    let v: Value = serde_json::from_slice(json).expect("json");
    let xml = to_xml(&v);
    let opts = ConvertOptions::default();
    let from_json = convert(json, &opts).unwrap_or_else(|e| panic!("{name}: JSON does not convert: {e}"));
    let from_xml = convert(xml.as_bytes(), &opts).unwrap_or_else(|e| panic!("{name}: XML twin does not convert: {e}"));
    let expected = match from_json.format {
        Format::FhirStu3 => Format::FhirStu3Xml,
        Format::FhirR4 => Format::FhirR4Xml,
        other => panic!("{name}: not a FHIR JSON input ({other})"),
    };
    assert_eq!(from_xml.format, expected, "{name}: version detected from the XML");
    assert_eq!(from_xml.bundle(), from_json.bundle(), "{name}: the XML twin converts to a different Bundle");
    assert_eq!(sorted_issues(&from_xml), sorted_issues(&from_json), "{name}: different conversion outcome");
    // The JSON shape of the XML is the JSON itself (up to member order).
    let forced =
        if expected == Format::FhirR4Xml { source::fhir_xml::Version::R4 } else { source::fhir_xml::Version::Stu3 };
    let back = source::fhir_xml::to_json(xml.as_bytes(), forced).expect("reads back");
    assert_eq!(back, v, "{name}: XML → JSON is not the original JSON");
    expected
}

fn json_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    files.sort();
    files
}

#[test]
fn xml_twins_of_the_fixtures_and_the_example_convert_alike() {
    let mut files = json_files(&root().join("tests/fixtures"));
    files.push(root().join("examples/records/gp-frail-elderly.stu3.json"));
    assert!(files.len() >= 10);
    for f in files {
        assert_twins(&f.display().to_string(), &std::fs::read(&f).expect("read"));
    }
}

#[test]
fn committed_xml_twins_convert_like_their_json() {
    let dir = root().join("tests/fixtures/xml");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fixtures/xml") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name").to_owned();
        let json = std::fs::read(root().join(format!("tests/fixtures/{stem}.json"))).expect("the JSON twin");
        let xml = std::fs::read(&path).expect("read");
        let opts = ConvertOptions::default();
        let a = convert(&json, &opts).expect("json converts");
        let b = convert(&xml, &opts).expect("xml converts");
        assert_eq!(b.format, Format::FhirStu3Xml, "{stem}");
        assert_eq!(a.bundle(), b.bundle(), "{stem}");
        assert_eq!(sorted_issues(&a), sorted_issues(&b), "{stem}");
        // Forcing the format gives the same.
        let forced =
            convert(&xml, &ConvertOptions { format: Some(Format::FhirStu3Xml), ..Default::default() }).expect("forced");
        assert_eq!(forced.bundle(), b.bundle());
        n += 1;
    }
    assert!(n >= 3, "expected committed XML twins, found {n}");
}

#[test]
fn r4_xml_is_read_as_r4() {
    let json = serde_json::json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {
            "resourceType": "Patient", "id": "p1",
            "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"]},
            "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
            "name": [{"family": "Jansen", "given": ["Jan", "Kees"]}],
            "birthDate": "1950-03-01"
        }}, {"resource": {
            "resourceType": "Flag", "id": "f1", "subject": {"reference": "Patient/p1"},
            "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Alert"]},
            "status": "active",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "55607006", "display": "Problem"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "293586001", "display": "allergie voor penicilline"}]}
        }}]
    });
    let bytes = serde_json::to_vec(&json).expect("bytes");
    assert_eq!(assert_twins("r4 flag", &bytes), Format::FhirR4Xml);
}

#[test]
fn xml_that_is_neither_fhir_nor_a_summary_is_refused() {
    let e = convert(b"<html><body/></html>", &ConvertOptions::default()).expect_err("refused");
    assert!(e.to_string().contains("FHIR XML"), "{e}");
    let e = convert(
        b"<Patient xmlns=\"http://hl7.org/fhir\"><birthDate value=\"1950-01-01\"/>",
        &ConvertOptions::default(),
    )
    .expect_err("unclosed");
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_xml_twins_of_the_cgm_and_nl_core_samples_convert_alike() {
    let refdir = require_reference();
    let mut n = 0;
    for f in json_files(&refdir.join("zorgviewer-ig/examples")) {
        let name = f.file_name().and_then(|s| s.to_str()).unwrap_or("").to_owned();
        if !name.ends_with("-CGM.json") {
            continue;
        }
        assert_twins(&name, &std::fs::read(&f).expect("read"));
        n += 1;
    }
    for f in json_files(&refdir.join("nl-core-r4/examples")) {
        let bytes = std::fs::read(&f).expect("read");
        // Only what converts as JSON is compared (some examples are fragments).
        if convert(&bytes, &ConvertOptions::default()).is_err() {
            continue;
        }
        assert_twins(&f.display().to_string(), &bytes);
        n += 1;
    }
    assert!(n >= 50, "expected the CGM and nl-core samples, found {n}");
}

/// Writes the committed twins (run by hand with `WRITE_XML_TWINS=1`; reviewed before committing).
#[test]
fn write_committed_twins_when_asked() {
    if std::env::var_os("WRITE_XML_TWINS").is_none() {
        return;
    }
    for stem in ["stu3-patient", "stu3-laboratory-result", "stu3-treatment-directive", "stu3-substance-use-searchset"] {
        let v: Value = serde_json::from_slice(
            &std::fs::read(root().join(format!("tests/fixtures/{stem}.json"))).expect("fixture"),
        )
        .expect("json");
        std::fs::create_dir_all(root().join("tests/fixtures/xml")).expect("dir");
        std::fs::write(root().join(format!("tests/fixtures/xml/{stem}.xml")), to_xml(&v)).expect("write");
    }
}
