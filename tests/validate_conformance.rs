//! Conformance with the HL7 reference validator on base R4 (issue 18): for each rule a valid
//! and an invalid fixture of our own (tests/fixtures/validate/conformance/). The invalid fixture
//! must be reported at exactly the expression the reference validator uses, with the severity it
//! uses; its valid twin must have no issue of that severity or worse.

use std::path::PathBuf;

use overdracht::validate::{Outcome, Severity, Validator};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validate/conformance")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A rule, the fixture pair that shows it, and what must be reported for the invalid one.
struct Case {
    rule: &'static str,
    valid: &'static str,
    invalid: &'static str,
    expression: &'static str,
    severity: Severity,
    says: &'static str,
}

const fn case(
    rule: &'static str,
    valid: &'static str,
    invalid: &'static str,
    expression: &'static str,
    says: &'static str,
) -> Case {
    Case { rule, valid, invalid, expression, severity: Severity::Error, says }
}

const fn warning(
    rule: &'static str,
    valid: &'static str,
    invalid: &'static str,
    expression: &'static str,
    says: &'static str,
) -> Case {
    Case { rule, valid, invalid, expression, severity: Severity::Warning, says }
}

fn cases() -> Vec<Case> {
    vec![
        // 1. the R4 id datatype
        case("id: Resource.id", "id.valid", "id.invalid", "Patient.id", "not a valid id"),
        case("id: Resource.id length", "id.valid", "id-length.invalid", "Patient.id", "not a valid id"),
        case("id: element of type id", "id.valid", "id-element.invalid", "Patient.meta.versionId", "not a valid id"),
        case("id: in a Bundle entry", "bundle.valid", "id-bundle.invalid", "Bundle.entry[1].resource.id", "not a valid id"),
    ]
}

fn show(o: &Outcome) -> String {
    o.issues.iter().map(|i| format!("\n  {i}")).collect()
}

fn at_least(s: Severity, min: Severity) -> bool {
    match min {
        Severity::Warning => s == Severity::Warning || s.is_error(),
        _ => s.is_error(),
    }
}

#[test]
fn every_rule_rejects_its_invalid_fixture_at_the_expression() {
    let v = Validator::embedded();
    let mut failures = Vec::new();
    for c in cases() {
        let o = v.validate(&fixture(c.invalid));
        let hit = o.issues.iter().any(|i| {
            i.severity == c.severity && i.expression.as_deref() == Some(c.expression) && i.diagnostics.contains(c.says)
        });
        if !hit {
            failures.push(format!(
                "{}: {} not reported at {} ({:?}, '{}'):{}",
                c.rule,
                c.invalid,
                c.expression,
                c.severity,
                c.says,
                show(&o)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_accepts_its_valid_fixture() {
    let v = Validator::embedded();
    let mut failures = Vec::new();
    for c in cases() {
        let o = v.validate(&fixture(c.valid));
        if o.issues.iter().any(|i| at_least(i.severity, c.severity)) {
            failures.push(format!("{}: {} is reported:{}", c.rule, c.valid, show(&o)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rules_covered() {
    let rules: std::collections::BTreeSet<&str> =
        cases().iter().map(|c| c.rule.split(':').next().unwrap_or(c.rule)).collect();
    let n = cases().len();
    eprintln!("{n} conformance cases over {} rule groups: {rules:?}", rules.len());
    assert!(n >= 4);
}
