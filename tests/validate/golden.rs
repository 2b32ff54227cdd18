//! The reviewed conversion outputs in tests/golden/ (`{"outcome": ..., "bundle": ...}`) are valid
//! FHIR R4 and conform to the profiles they claim: what overdracht emits passes its own validator.

use std::path::{Path, PathBuf};

use overdracht::validate::{Severity, Validator};
use serde_json::Value;

fn golden_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("tests/golden is readable").filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            golden_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

/// Known defects of the conversion that this validator found, each with the mapping that produces
/// it: (golden file suffix, text in the issue). Remove a line when its mapping is fixed (the test
/// then notes it as stale). Everything else must be valid.
const KNOWN_DEFECTS: &[(&str, &str)] = &[];

#[test]
fn golden_conversion_outputs_validate() {
    let mut files = Vec::new();
    golden_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"), &mut files);
    let v = Validator::embedded();
    let mut problems = Vec::new();
    let mut bundles = 0;
    let mut seen = vec![false; KNOWN_DEFECTS.len()];
    for f in &files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(f).expect("readable")).expect("JSON");
        let Some(bundle) = doc.get("bundle") else {
            continue;
        };
        bundles += 1;
        let o = v.validate(bundle);
        for i in &o.issues {
            if std::env::var_os("SHOW_ISSUES").is_some() {
                eprintln!("{}: {i}", f.display());
            }
            let text = i.to_string();
            let known = KNOWN_DEFECTS.iter().position(|(file, what)| f.ends_with(file) && text.contains(what));
            match known {
                Some(k) => seen[k] = true,
                None if i.severity <= Severity::Warning => problems.push(format!("{}: {text}", f.display())),
                None => {}
            }
        }
    }
    for (k, (file, what)) in KNOWN_DEFECTS.iter().enumerate() {
        if !seen[k] {
            eprintln!("note: known defect no longer found, remove it from KNOWN_DEFECTS: {file}: {what}");
        }
    }
    assert!(bundles >= 3, "expected golden bundles, found {bundles}");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
