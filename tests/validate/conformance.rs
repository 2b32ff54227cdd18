//! Conformance with the HL7 reference validator on base R4: for each rule a valid
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

const fn info(
    rule: &'static str,
    valid: &'static str,
    invalid: &'static str,
    expression: &'static str,
    says: &'static str,
) -> Case {
    Case { rule, valid, invalid, expression, severity: Severity::Information, says }
}

fn cases() -> Vec<Case> {
    vec![
        // 1. the R4 id datatype
        case("id: Resource.id", "id.valid", "id.invalid", "Patient.id", "not a valid id"),
        case("id: Resource.id length", "id.valid", "id-length.invalid", "Patient.id", "not a valid id"),
        case("id: element of type id", "id.valid", "id-element.invalid", "Patient.meta.versionId", "not a valid id"),
        case(
            "id: in a Bundle entry",
            "bundle.valid",
            "id-bundle.invalid",
            "Bundle.entry[1].resource.id",
            "not a valid id",
        ),
        // 3. Bundle rules
        case(
            "bundle: fullUrl absolute",
            "bundle.valid",
            "bundle-fullurl-relative.invalid",
            "Bundle.entry[0].fullUrl",
            "must be an absolute URL",
        ),
        case(
            "bundle: fullUrl agrees with type and id",
            "bundle.valid",
            "bundle-fullurl-id.invalid",
            "Bundle.entry[0].fullUrl",
            "must end with the type and id",
        ),
        case(
            "bundle: link relation once",
            "bundle.valid",
            "bundle-link-twice.invalid",
            "Bundle.link[1].relation",
            "link relation 'self' occurs more than once",
        ),
        case(
            "bundle: document reference resolves",
            "document.valid",
            "document-unresolved.invalid",
            "Bundle.entry[0].resource.subject.reference",
            "does not resolve in this document",
        ),
        case(
            "bundle: versioned reference resolves",
            "document.valid",
            "document-version-unresolved.invalid",
            "Bundle.entry[0].resource.author[0].reference",
            "no entry http://example.org/fhir/Practitioner/pr1 with meta.versionId '3'",
        ),
        case(
            "bundle: reference matches one entry",
            "document.valid",
            "document-version-ambiguous.invalid",
            "Bundle.entry[0].resource.author[0].reference",
            "matches 2 entries",
        ),
        case("bundle: bdl-9", "document.valid", "document-bdl.invalid", "Bundle", "bdl-9"),
        case("bundle: bdl-10", "document.valid", "document-bdl.invalid", "Bundle", "bdl-10"),
        case("bundle: bdl-11", "document.valid", "document-bdl.invalid", "Bundle", "bdl-11"),
        case("bundle: bdl-12", "message.valid", "message-bdl12.invalid", "Bundle", "bdl-12"),
        // 4. narrative XHTML
        case(
            "narrative: entity",
            "narrative.valid",
            "narrative-entity.invalid",
            "Patient.text.div",
            "the entity '&reg;' is not defined",
        ),
        case(
            "narrative: txt-1 element",
            "narrative.valid",
            "narrative-element.invalid",
            "Patient.text.div",
            "txt-1: the element <script>",
        ),
        case(
            "narrative: txt-1 attribute",
            "narrative.valid",
            "narrative-attribute.invalid",
            "Patient.text.div",
            "txt-1: the attribute 'onclick'",
        ),
        case("narrative: txt-2", "narrative.valid", "narrative-empty.invalid", "Patient.text.div", "txt-2"),
        case(
            "narrative: well-formed",
            "narrative.valid",
            "narrative-malformed.invalid",
            "Patient.text.div",
            "not well-formed XHTML",
        ),
        case(
            "narrative: XHTML namespace",
            "narrative.valid",
            "narrative-namespace.invalid",
            "Patient.text.div",
            "XHTML namespace",
        ),
        // 5. extensions (unknown extensions: see unknown_extensions_follow_the_setting)
        case(
            "extension: value type",
            "extension.valid",
            "extension-type.invalid",
            "Observation.extension[0].valueString",
            "type string is not allowed here",
        ),
        case(
            "extension: context",
            "extension.valid",
            "extension-context.invalid",
            "Patient.extension[0]",
            "is not allowed here (Patient); its definition allows it on Observation",
        ),
        info(
            "extension: unknown",
            "extension.valid",
            "extension-unknown.invalid",
            "Patient.extension[0]",
            "unknown extension https://example.net/fhir/StructureDefinition/shoe-size",
        ),
        // 6. core profiles applied by content
        case(
            "vital signs: unit",
            "vitals-bodytemp.valid",
            "vitals-bodytemp-unit.invalid",
            "Observation.valueQuantity.code",
            "ucum-bodytemp",
        ),
        case(
            "vital signs: category",
            "vitals-bodytemp.valid",
            "vitals-bodytemp-category.invalid",
            "Observation.category",
            "profile bodytemp",
        ),
        case(
            "vital signs: subject, whatever is claimed",
            "vitals-bodytemp.valid",
            "vitals-bodytemp-subject.invalid",
            "Observation.subject",
            "profile bodytemp",
        ),
        case(
            "vital signs: UCUM",
            "vitals-bodytemp.valid",
            "vitals-bodytemp-system.invalid",
            "Observation.valueQuantity.system",
            "profile bodytemp",
        ),
        case(
            "vital signs: value type",
            "vitals-bodytemp.valid",
            "vitals-heartrate-type.invalid",
            "Observation.valueString",
            "type string is not allowed here by profile heartrate",
        ),
        case(
            "vital signs: bp components",
            "vitals-bp.valid",
            "vitals-bp-diastolic.invalid",
            "Observation.component",
            "slice 'DiastolicBP'",
        ),
        case(
            "vital signs: vs-1, effectiveDateTime precise to the day",
            "vitals-bodytemp.valid",
            "vitals-vs1.invalid",
            "Observation.effectiveDateTime",
            "vs-1",
        ),
        case(
            "vital signs: category alone",
            "vitals-bodytemp.valid",
            "vitals-category.invalid",
            "Observation.effective",
            "profile vitalsigns",
        ),
        // 7. data consistency
        case(
            "attachment: size",
            "attachment.valid",
            "attachment-size.invalid",
            "Patient.photo[0].size",
            "does not match the data, which has 23 bytes",
        ),
        case(
            "attachment: hash",
            "attachment.valid",
            "attachment-hash.invalid",
            "Patient.photo[0].hash",
            "is not the SHA-1 of the data",
        ),
        // 8. FHIRPath invariants beyond the old subset
        case(
            "invariant: ras-2",
            "invariant-ras.valid",
            "invariant-ras-2.invalid",
            "RiskAssessment.prediction[0]",
            "ras-2",
        ),
        case("invariant: que-2", "invariant-que.valid", "invariant-que-2.invalid", "Questionnaire", "que-2"),
        case("invariant: que-10", "invariant-que.valid", "invariant-que-10.invalid", "Questionnaire.item[0]", "que-10"),
        case(
            "invariant: ref-1 (%rootResource)",
            "invariant-ref.valid",
            "invariant-ref-1.invalid",
            "Patient.generalPractitioner[0]",
            "ref-1",
        ),
        case("invariant: obs-7 (%resource)", "invariant-obs.valid", "invariant-obs-7.invalid", "Observation", "obs-7"),
        // 9. conformance resources: what their invariants do not say
        case(
            "conformance: StructureDefinition paths are elements of the type",
            "sd-paths.valid",
            "sd-paths.invalid",
            "StructureDefinition.differential.element[1].path",
            "the path 'Observation.valueQuantity.amount' is not an element of Observation",
        ),
        case(
            "conformance: SearchParameter base is a resource type",
            "sp.valid",
            "sp-base.invalid",
            "SearchParameter.base[0]",
            "'Patent' is not an R4 resource type",
        ),
        case(
            "conformance: SearchParameter expression starts at a base",
            "sp.valid",
            "sp-expression.invalid",
            "SearchParameter.expression",
            "starts a path at Practitioner, which is not a base",
        ),
        case(
            "conformance: composite SearchParameter has components",
            "sp-composite.valid",
            "sp-composite.invalid",
            "SearchParameter",
            "must list its components",
        ),
        case(
            "conformance: only a composite SearchParameter has components",
            "sp-composite.valid",
            "sp-component.invalid",
            "SearchParameter.component",
            "only a composite search parameter has components",
        ),
        // resolve() across the enclosing Bundle and among contained resources
        case(
            "invariant: ctm-1 (resolve() in the Bundle)",
            "careteam.valid",
            "careteam-ctm-1.invalid",
            "Bundle.entry[0].resource.participant[4]",
            "ctm-1",
        ),
        case(
            "invariant: ctm-1 (resolve() of a contained resource)",
            "careteam.valid",
            "careteam-ctm-1-contained.invalid",
            "Bundle.entry[0].resource.participant[2]",
            "ctm-1",
        ),
        // dom-3: local references by Reference.reference and by canonical, not by any string
        case(
            "invariant: dom-3 (references)",
            "contained.valid",
            "contained-dom-3.invalid",
            "Observation",
            "dom-3: the contained resource 'd1' (contained[4])",
        ),
        case(
            "invariant: dom-3 (canonical)",
            "contained-canonical.valid",
            "contained-canonical-dom-3.invalid",
            "Questionnaire",
            "dom-3: the contained resource 'vs1' (contained[0])",
        ),
        case(
            "conformance: CapabilityStatement searchParam type is its definition's",
            "capability.valid",
            "capability-searchparam-type.invalid",
            "CapabilityStatement.rest[0].resource[0].searchParam[1].type",
            "type 'string' does not match the type 'date' of the search parameter http://hl7.org/fhir/SearchParameter/individual-birthdate",
        ),
        // signatures: what can be checked without the signer's keys
        case(
            "signature: data is base64",
            "signature.valid",
            "signature-base64.invalid",
            "Provenance.signature[0].data",
            "not valid base64",
        ),
        case(
            "signature: sigFormat is a mime type",
            "signature.valid",
            "signature-format.invalid",
            "Provenance.signature[0].sigFormat",
            "'jose' is not a mime type",
        ),
        case(
            "signature: a JOSE signature is a JWS",
            "signature.valid",
            "signature-jws.invalid",
            "Provenance.signature[0].data",
            "not a JWS in compact serialization",
        ),
        // a profile invariant with FHIRPath's extension(url): nl-core-Alert's zib-Alert-2
        case(
            "invariant: zib-Alert-2 (extension(url))",
            "alert.valid",
            "alert-zib-alert-2.invalid",
            "Flag",
            "zib-Alert-2",
        ),
    ]
}

fn show(o: &Outcome) -> String {
    o.issues.iter().map(|i| format!("\n  {i}")).collect()
}

fn at_least(s: Severity, min: Severity) -> bool {
    match min {
        Severity::Information => true,
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

#[test]
fn unknown_extensions_follow_the_setting() {
    use overdracht::validate::{Settings, UnknownExtensions};
    let ext = fixture("extension-unknown.invalid");
    let severity_with = |u: UnknownExtensions| {
        let v = Validator::embedded().with_settings(Settings { unknown_extensions: u });
        let o = v.validate(&ext);
        let at: Vec<Severity> = o
            .issues
            .iter()
            .filter(|i| i.expression.as_deref() == Some("Patient.extension[0]"))
            .map(|i| i.severity)
            .collect();
        at
    };
    assert_eq!(severity_with(UnknownExtensions::default()), vec![Severity::Information]);
    assert_eq!(severity_with(UnknownExtensions::Warning), vec![Severity::Warning]);
    assert_eq!(severity_with(UnknownExtensions::Error), vec![Severity::Error]);
    assert_eq!(severity_with(UnknownExtensions::Ignore), vec![]);
    assert_eq!("error".parse::<UnknownExtensions>(), Ok(UnknownExtensions::Error));
    assert!("loud".parse::<UnknownExtensions>().is_err());
    // A known extension is never "unknown", whatever the setting.
    let v = Validator::embedded().with_settings(Settings { unknown_extensions: UnknownExtensions::Error });
    assert!(!v.validate(&fixture("extension.valid")).has_errors());
}

#[test]
fn strings_longer_than_1_mib_are_refused() {
    let v = Validator::embedded();
    let max = 1024 * 1024;
    let mut p = serde_json::json!({"resourceType": "Patient", "name": [{"text": "é".repeat(max)}]});
    let o = v.validate(&p);
    assert!(!o.has_errors(), "{}", show(&o)); // 1 MiB characters, 2 MiB bytes: allowed
    p["name"][0]["text"] = Value::String("x".repeat(max + 1));
    let o = v.validate(&p);
    assert!(
        o.issues.iter().any(|i| i.severity.is_error()
            && i.expression.as_deref() == Some("Patient.name[0].text")
            && i.diagnostics.contains("at most 1048576 characters")),
        "{}",
        show(&o)
    );
}

#[test]
fn the_command_line_takes_the_unknown_extension_setting() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validate/conformance/extension-unknown.invalid.json");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_overdracht"))
            .arg("validate")
            .args(extra)
            .arg(&file)
            .output()
            .expect("run overdracht")
            .status
            .code()
    };
    assert_eq!(run(&[]), Some(0));
    assert_eq!(run(&["--unknown-extensions", "warning"]), Some(0));
    assert_eq!(run(&["--unknown-extensions", "error"]), Some(1));
    assert_eq!(run(&["--unknown-extensions", "loud"]), Some(2));
}

/// nl-core's zib-NameInformation-1/2 read the extensions of `family`, a primitive: in JSON they
/// are in its `_family` sibling. In nl-core-Patient the invariants sit on the slice
/// `name:nameInformation`, whose discriminating `use` values come from the nl-core-NameInformation
/// datatype profile, which is not in the nl-core snapshots we ship; so the test puts the two
/// invariants, taken unchanged from the shipped nl-core-Patient, on `Patient.name` of a
/// package profile, and checks the fixtures against it.
#[test]
fn zib_name_information_reaches_the_extensions_of_family() {
    let nl_core: Value = serde_json::from_str(include_str!("../../profiles/r4/nl-core.json")).expect("nl-core table");
    let patient = nl_core
        .as_array()
        .expect("definitions")
        .iter()
        .find(|sd| sd["url"] == "http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient")
        .expect("nl-core-Patient");
    let slice = patient["snapshot"]["element"]
        .as_array()
        .expect("elements")
        .iter()
        .find(|e| e["id"] == "Patient.name:nameInformation")
        .expect("the nameInformation slice");
    let constraints: Vec<Value> = slice["constraint"]
        .as_array()
        .expect("constraints")
        .iter()
        .filter(|c| c["key"].as_str().is_some_and(|k| k.starts_with("zib-NameInformation-")))
        .cloned()
        .collect();
    assert_eq!(constraints.len(), 2);
    let url = "http://example.org/fhir/StructureDefinition/name-information-test";
    let sd = serde_json::json!({
        "resourceType": "StructureDefinition", "url": url, "name": "NameInformationTest", "status": "draft",
        "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "snapshot": {"element": [
            {"id": "Patient", "path": "Patient", "min": 0, "max": "*"},
            {"id": "Patient.name", "path": "Patient.name", "min": 0, "max": "*", "type": [{"code": "HumanName"}],
             "constraint": constraints}
        ]}
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("example.names#0.0.1").join("package");
    std::fs::create_dir_all(&dir).expect("package folder");
    let package = serde_json::json!({"name": "example.names", "version": "0.0.1", "fhirVersions": ["4.0.1"]});
    std::fs::write(dir.join("package.json"), package.to_string()).expect("write");
    std::fs::write(dir.join("StructureDefinition-name-information-test.json"), sd.to_string()).expect("write");
    let v = Validator::with_packages(&[tmp.path().join("example.names#0.0.1")]).expect("loads");
    let claiming = |name: &str| {
        let mut f = fixture(name);
        f["meta"]["profile"] = serde_json::json!([url]);
        f
    };
    let errors = |f: &Value| -> Vec<String> {
        v.validate(f)
            .issues
            .iter()
            .filter(|i| i.severity.is_error())
            .map(|i| format!("{} {}", i.expression.as_deref().unwrap_or(""), i.diagnostics))
            .collect()
    };
    assert_eq!(errors(&claiming("name-information.valid")), Vec::<String>::new());
    for (fixture_name, key) in [
        ("name-information-1.invalid", "zib-NameInformation-1"),
        ("name-information-2.invalid", "zib-NameInformation-2"),
    ] {
        let e = errors(&claiming(fixture_name));
        assert!(
            e.iter().any(|m| m.starts_with(&format!("Patient.name[0] {key}:"))),
            "{fixture_name}: {key} not reported at Patient.name[0]: {e:?}"
        );
        assert_eq!(e.len(), 1, "{e:?}");
    }
}
