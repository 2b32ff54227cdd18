//! Every nl-core example in ../shared/reference validates against the profiles it claims.
//!
//! The reference folder is not part of the repository, so these tests are ignored by default;
//! CI runs them with `cargo test -- --ignored reference_` when the folder exists. They fail
//! (never pass silently) when run without it.

use std::path::PathBuf;

use overdracht::validate::{Severity, Validator};
use serde_json::Value;

/// ../shared/reference, or `OVERDRACHT_REFERENCE_DIR` (as tests/common does).
fn reference() -> PathBuf {
    std::env::var_os("OVERDRACHT_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference")))
}

fn examples() -> Vec<(String, Value)> {
    let dir = reference().join("nl-core-r4/examples");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run only where ../shared/reference exists)", dir.display()));
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        let text = std::fs::read_to_string(&path).expect("readable example");
        let v: Value = serde_json::from_str(&text).expect("example is JSON");
        out.push((path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(), v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Known, explained exceptions: (file, substring of the expected error).
const EXCEPTIONS: &[(&str, &str)] = &[];

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_nl_core_examples_validate() {
    let v = Validator::embedded();
    let all = examples();
    assert!(all.len() >= 100, "expected the 107 nl-core examples, found {}", all.len());
    let mut failures = Vec::new();
    let mut profiled = 0;
    for (name, ex) in &all {
        let claims_known = ex
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().filter_map(Value::as_str).any(|p| v.knows_profile(p)));
        if claims_known {
            profiled += 1;
        }
        let o = v.validate(ex);
        if std::env::var_os("SHOW_ISSUES").is_some() {
            for i in &o.issues {
                eprintln!("{name}: {i}");
            }
        }
        for issue in o.issues.iter().filter(|i| i.severity.is_error()) {
            let text = issue.to_string();
            if EXCEPTIONS.iter().any(|(f, s)| f == name && text.contains(s)) {
                continue;
            }
            failures.push(format!("{name}: {text}"));
        }
    }
    eprintln!("{} examples, {profiled} against a locally known profile", all.len());
    assert!(failures.is_empty(), "{} errors:\n{}", failures.len(), failures.join("\n"));
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_unknown_profiles_are_information_only() {
    let v = Validator::embedded();
    for (name, ex) in examples() {
        let o = v.validate(&ex);
        for i in o.issues.iter().filter(|i| i.diagnostics.contains("not known locally")) {
            assert_eq!(i.severity, Severity::Information, "{name}: {i}");
        }
    }
}

/// How many of the official R4 error invariants the validator evaluates, computed from
/// the official definitions (not from our tables), so the number in the notes is not hand-written.
#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_r4_error_invariant_coverage() {
    let dir = reference().join("fhir-r4");
    let defs: Vec<Value> = ["profiles-types.json", "profiles-resources.json"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            serde_json::from_str(&text).expect("JSON")
        })
        .collect();
    let (covered, missing) = overdracht::validate::invariant_coverage(&defs);
    let total = covered.len() + missing.len();
    eprintln!("R4 error invariants evaluated: {} of {total}", covered.len());
    eprintln!("not evaluated ({}): {}", missing.len(), missing.join(" "));
    assert!(total >= 200, "{total}");
    assert!(missing.is_empty(), "{} of {total} evaluated; not: {}", covered.len(), missing.join(" "));
}

/// The conformance-resource rules reject nothing official: every nl-core profile,
/// every R4 constraint profile and every R4 search parameter passes them, and so do the
/// definitions we publish in profiles/.
#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_conformance_resources_pass_the_conformance_rules() {
    let v = Validator::embedded();
    let load = |p: PathBuf| -> Value {
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).expect("JSON")
    };
    let mut resources: Vec<(String, Value)> = Vec::new();
    for name in ["profiles-types.json", "profiles-resources.json", "search-parameters.json"] {
        let bundle = load(reference().join("fhir-r4").join(name));
        for e in bundle["entry"].as_array().expect("entries") {
            let r = &e["resource"];
            let rt = r["resourceType"].as_str().unwrap_or_default();
            let constraint = r["derivation"] == "constraint";
            if rt == "SearchParameter" || (rt == "StructureDefinition" && constraint) {
                resources.push((format!("{name}: {}", r["url"].as_str().unwrap_or_default()), r.clone()));
            }
        }
    }
    let dirs =
        [reference().join("nl-core-r4/profiles"), PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles"))];
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).expect("profiles folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                let r = load(path.clone());
                if r["resourceType"] == "StructureDefinition" || r["resourceType"] == "SearchParameter" {
                    resources.push((path.display().to_string(), r));
                }
            }
        }
    }
    let mut judged = 0;
    let mut failures = Vec::new();
    for (name, r) in &resources {
        let o = v.validate(r);
        judged += 1;
        for i in o.issues.iter().filter(|i| i.severity == Severity::Error) {
            let ours = ["is not an element of", "search parameter", "a base of this search parameter"];
            if ours.iter().any(|m| i.diagnostics.contains(m)) {
                failures.push(format!("{name}: {i}"));
            }
        }
    }
    eprintln!("{judged} conformance resources checked");
    assert!(judged > 1000, "{judged}");
    assert!(failures.is_empty(), "{} false rejects:\n{}", failures.len(), failures.join("\n"));
}
