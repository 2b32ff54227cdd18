//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fhirbolt;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/reference`, the public reference data next to the repository (not part of it).
/// Tests that need it are named `reference_*` and `#[ignore]`d; CI runs them with `--ignored`.
/// `OVERDRACHT_REFERENCE_DIR` points elsewhere (a worktree that is not next to shared/).
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("OVERDRACHT_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => root().join("../shared/reference"),
    }
}

/// Reads the reference folder or fails loudly: a `reference_*` test must never pass without it.
pub fn require_reference() -> PathBuf {
    let dir = reference_dir();
    assert!(
        dir.is_dir(),
        "{} is missing: reference tests need the shared reference data next to the repository",
        dir.display()
    );
    dir
}

/// Compares `actual` with the golden file, or rewrites it when `UPDATE_GOLDEN=1`.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden files live in a folder")).expect("create golden folder");
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("cannot read golden file {}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display())
    });
    if expected != actual {
        let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).map(|i| i + 1).unwrap_or(0);
        panic!(
            "output differs from golden file {} (first difference at line {line}); review the change and run with UPDATE_GOLDEN=1 to accept it",
            path.display()
        );
    }
}

/// Every `reference` string in a JSON document.
pub fn references(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("reference") {
                out.push(r.clone());
            }
            m.values().for_each(|x| references(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// Checks the invariants every output Bundle must hold: PUT Type/id entries, meta.profile,
/// exactly one data category, and references that resolve inside the Bundle.
pub fn check_bundle(bundle: &serde_json::Value) {
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    // A record with nothing to pass on has no `entry` (FHIR JSON has no empty arrays).
    let no_entries = vec![];
    let entries = bundle.get("entry").map(|e| e.as_array().expect("entry is an array")).unwrap_or(&no_entries);
    assert!(bundle.get("entry").is_none() || !entries.is_empty(), "no empty entry array");
    let full_urls: Vec<&str> = entries.iter().filter_map(|e| e["fullUrl"].as_str()).collect();
    for e in entries {
        let r = &e["resource"];
        let ty = r["resourceType"].as_str().expect("resourceType");
        let id = r["id"].as_str().expect("id");
        assert_eq!(e["request"]["method"], "PUT");
        assert_eq!(e["request"]["url"], format!("{ty}/{id}"));
        assert_eq!(e["fullUrl"], format!("urn:uuid:{id}"));
        let profiles = r["meta"]["profile"].as_array().expect("meta.profile is always set");
        assert_eq!(profiles.len(), 1, "{ty}/{id} claims one profile");
        let cats: Vec<_> = r["meta"]["security"]
            .as_array()
            .expect("meta.security")
            .iter()
            .filter(|c| c["system"] == overdracht::model::DATA_CATEGORY_SYSTEM)
            .collect();
        assert_eq!(cats.len(), 1, "{ty}/{id} carries exactly one data category");
    }
    let mut refs = vec![];
    references(bundle, &mut refs);
    for r in refs {
        assert!(full_urls.contains(&r.as_str()), "reference {r} does not resolve inside the Bundle");
    }
}
