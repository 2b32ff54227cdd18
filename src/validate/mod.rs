//! Output validation and OperationOutcome building.
//!
//! Everything overdracht emits passes through here before it leaves the process, and the same
//! [`Validator`] is offered on its own (`overdracht validate`). It is table-driven and fast
//! (microseconds per resource, where validators that interpret profiles through a general FHIRPath
//! engine take 0.3–5 s), because all definitions are compiled once into trees with precomputed
//! JSON keys:
//!
//! - **base R4 structure** ([`structure`]): element names, JSON types, primitive formats (the R4
//!   regexes plus a calendar check; `Resource.id` as an `id`), string sizes, arrays vs single
//!   values, cardinality, `_element` twins, `resourceType`, nested resources, required bindings,
//!   codes of known code systems, reference target types, `ele-1`, `ext-1`, narrative XHTML
//!   (`txt-1`, `txt-2`, entities, well-formedness; [`xhtml`]), Attachment size and hash, the Bundle
//!   rules `bdl-1..12` with absolute fullUrls, unique link relations and resolvable references in
//!   documents, and every R4 invariant whose FHIRPath our evaluator handles exactly ([`fhirpath`];
//!   [`invariant_coverage`] says which);
//! - **profiles** ([`profile`]): every profile in `meta.profile` that is known — cardinality, types,
//!   fixed/pattern values, slicing (value/pattern/type discriminators), required bindings,
//!   reference targets and invariants. An unknown profile is an `information` issue, not an error.
//!   The core profiles R4 applies by content (the vital signs profiles, by LOINC code) are
//!   checked whatever the resource claims;
//! - **extensions**: a known extension's value and context; an unknown one as [`Settings`] say.
//!
//! Out of the box it knows R4, the nl-core snapshots and our own definitions, from tables generated
//! into `profiles/r4/` by `scripts/gen-validation-tables.py` and embedded in the binary; more FHIR
//! packages can be added with [`Validator::with_packages`].

mod conformance;
mod fhirpath;
mod files;
mod package;
mod primitive;
mod profile;
mod registry;
mod structure;
mod walker;
mod xhtml;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// The diagnostics types live in [`crate::diagnostics`], a leaf every stage may use; they are
/// re-exported here because a validation result is made of them.
pub use crate::diagnostics::{Issue, IssueCode, Leftover, Outcome, Severity};
pub use files::{validate_files, FileOutcome};
pub use package::ValidateError;
pub use registry::DefinitionError;

use registry::Registry;
use walker::Walker;

/// The definitions shipped in the binary: generated tables first, then our own conformance
/// resources (which need the R4 base and terminology already present).
const EMBEDDED: &[(&str, &str)] = &[
    ("profiles/r4/base.json", include_str!("../../profiles/r4/base.json")),
    ("profiles/r4/terminology.json", include_str!("../../profiles/r4/terminology.json")),
    ("profiles/r4/nl-core.json", include_str!("../../profiles/r4/nl-core.json")),
    ("profiles/r4/vitalsigns.json", include_str!("../../profiles/r4/vitalsigns.json")),
    ("profiles/r4/search-parameters.json", include_str!("../../profiles/r4/search-parameters.json")),
    ("profiles/CodeSystem-data-category.json", include_str!("../../profiles/CodeSystem-data-category.json")),
    ("profiles/ValueSet-data-category.json", include_str!("../../profiles/ValueSet-data-category.json")),
    (
        "profiles/StructureDefinition-overdracht-Referral.json",
        include_str!("../../profiles/StructureDefinition-overdracht-Referral.json"),
    ),
    (
        "profiles/StructureDefinition-overdracht-Document.json",
        include_str!("../../profiles/StructureDefinition-overdracht-Document.json"),
    ),
];

/// Canonical of our own referral profile.
pub const REFERRAL_PROFILE: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/Referral";
/// Canonical of our own document profile.
pub const DOCUMENT_PROFILE: &str = "https://w3id.org/overdracht/fhir/StructureDefinition/Document";
/// The code system of data categories (in `meta.security` of everything we emit).
pub const DATA_CATEGORY_SYSTEM: &str = "https://w3id.org/overdracht/fhir/CodeSystem/data-category";

/// What to report for an extension whose definition is not loaded.
///
/// The HL7 reference validator (`InstanceValidator.checkExtension`) raises an error
/// (`EXTENSION_EXT_UNKNOWN_NOTHERE`) unless unknown extensions are allowed, and then only an
/// information hint (`EXTENSION_EXT_UNKNOWN`); its command line allows them by default
/// (`anyExtensionsAllowed = true`), so its default for base R4 is the hint. We do the same by
/// default: most extensions in real data (the nl-core and HL7 extension packs) are defined in
/// packages that are not embedded, and a warning for each would drown the real ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownExtensions {
    /// Say nothing.
    Ignore,
    /// An information issue (the reference validator's default).
    #[default]
    #[serde(alias = "info")]
    Information,
    /// A warning.
    Warning,
    /// An error (the reference validator without "any extensions allowed").
    Error,
}

impl std::str::FromStr for UnknownExtensions {
    type Err = String;
    /// `information`, `warning`, `error` or `ignore` (for `--unknown-extensions`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "information" | "info" => Ok(UnknownExtensions::Information),
            "warning" => Ok(UnknownExtensions::Warning),
            "error" => Ok(UnknownExtensions::Error),
            "ignore" => Ok(UnknownExtensions::Ignore),
            other => Err(format!("unknown setting {other:?}: use information, warning, error or ignore")),
        }
    }
}

/// Choices that change what is reported, not what is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    pub unknown_extensions: UnknownExtensions,
}

/// Validates FHIR R4 resources and Bundles against the base definitions and known profiles.
#[derive(Debug, Clone)]
pub struct Validator {
    reg: Arc<Registry>,
    settings: Settings,
}

fn load_embedded(reg: &mut Registry) -> Result<(), DefinitionError> {
    for (_name, text) in EMBEDDED {
        let v: Value = serde_json::from_str(text)?;
        match v {
            Value::Array(items) => {
                for item in items {
                    reg.add_resource(item)?;
                }
            }
            other => {
                reg.add_resource(other)?;
            }
        }
    }
    Ok(())
}

/// Which R4 error invariants (severity `error`, with a FHIRPath expression) of the base
/// definitions among `definitions` (StructureDefinitions, or Bundles of them) the validator
/// evaluates: `(covered, not covered)`, keys sorted. Covered means checked in code or compiled
/// from its FHIRPath wherever it occurs.
pub fn invariant_coverage(definitions: &[Value]) -> (Vec<String>, Vec<String>) {
    use std::collections::BTreeMap;
    let mut keys: BTreeMap<String, bool> = BTreeMap::new();
    let mut sds: Vec<&Value> = Vec::new();
    let flat: Vec<&Value> = definitions
        .iter()
        .flat_map(|d| match d {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect();
    for d in flat {
        match d.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => sds.extend(
                d.get("entry").and_then(Value::as_array).into_iter().flatten().filter_map(|e| e.get("resource")),
            ),
            _ => sds.push(d),
        }
    }
    for sd in sds {
        if sd.get("resourceType").and_then(Value::as_str) != Some("StructureDefinition")
            || sd.get("derivation").and_then(Value::as_str) == Some("constraint")
            || sd.get("kind").and_then(Value::as_str) == Some("logical")
        {
            continue;
        }
        let elements = sd.pointer("/snapshot/element").and_then(Value::as_array).into_iter().flatten();
        for c in elements.flat_map(|e| e.get("constraint").and_then(Value::as_array).into_iter().flatten()) {
            let (Some(key), Some("error"), Some(expr)) = (
                c.get("key").and_then(Value::as_str),
                c.get("severity").and_then(Value::as_str),
                c.get("expression").and_then(Value::as_str),
            ) else {
                continue;
            };
            let ok = registry::NATIVE_INVARIANTS.contains(&key) || fhirpath::Expr::parse(expr).is_some();
            let entry = keys.entry(key.to_string()).or_insert(true);
            *entry &= ok;
        }
    }
    let (yes, no): (Vec<_>, Vec<_>) = keys.into_iter().partition(|(_, ok)| *ok);
    (yes.into_iter().map(|(k, _)| k).collect(), no.into_iter().map(|(k, _)| k).collect())
}

impl Validator {
    /// The validator with the shipped definitions only, built once on first use (~tens of ms).
    pub fn embedded() -> &'static Validator {
        static EMBEDDED_VALIDATOR: OnceLock<Validator> = OnceLock::new();
        EMBEDDED_VALIDATOR.get_or_init(|| {
            let mut reg = Registry::default();
            // The tables are generated and tested in this repository; failing here is a build defect.
            load_embedded(&mut reg)
                .expect("embedded validation tables are valid (regenerate with scripts/gen-validation-tables.py)");
            reg.finish();
            Validator { reg: Arc::new(reg), settings: Settings::default() }
        })
    }

    /// The same definitions with other settings (cheap: the definitions are shared).
    pub fn with_settings(&self, settings: Settings) -> Validator {
        Validator { reg: Arc::clone(&self.reg), settings }
    }

    /// The shipped definitions plus the FHIR packages found at `paths` (package folders, `.tgz`
    /// files, or folders holding them). Definitions from packages replace shipped ones with the
    /// same canonical URL.
    pub fn with_packages(paths: &[PathBuf]) -> Result<Validator, ValidateError> {
        let mut reg = Registry::default();
        load_embedded(&mut reg)
            .map_err(|source| ValidateError::Definition { path: PathBuf::from("(embedded)"), source })?;
        for p in paths {
            package::load(&mut reg, p)?;
        }
        reg.finish();
        Ok(Validator { reg: Arc::new(reg), settings: Settings::default() })
    }

    /// Validate a resource or Bundle against base R4 and every profile in its `meta.profile`
    /// (and, for Bundles, every entry against its own). Expressions start with the resource type
    /// (`Patient.identifier[0].system`) or `Bundle.entry[i].resource`.
    pub fn validate(&self, resource: &Value) -> Outcome {
        self.validate_limited(resource, usize::MAX)
    }

    /// [`validate`](Self::validate), keeping at most `max_issues` issues (the rest are
    /// counted): what a service uses for documents from outside.
    pub fn validate_limited(&self, resource: &Value, max_issues: usize) -> Outcome {
        let mut w = Walker::new(&self.reg, self.settings, max_issues);
        w.resource(resource, None, None, None);
        w.finish()
    }

    /// Like [`validate`](Self::validate), and additionally against `profile_url`, whether or not
    /// the resource claims it.
    pub fn validate_against(&self, resource: &Value, profile_url: &str) -> Outcome {
        self.validate_against_limited(resource, profile_url, usize::MAX)
    }

    /// [`validate_against`](Self::validate_against) with at most `max_issues` issues kept.
    pub fn validate_against_limited(&self, resource: &Value, profile_url: &str, max_issues: usize) -> Outcome {
        let mut w = Walker::new(&self.reg, self.settings, max_issues);
        w.resource(resource, None, None, None);
        let claimed = resource
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|p| p.as_str() == Some(profile_url)));
        if let (false, Some(rt)) = (claimed, resource.get("resourceType").and_then(Value::as_str)) {
            w.against(resource, rt, rt, profile_url);
        }
        w.finish()
    }

    /// Whether a profile (or base definition) with this canonical URL is known.
    pub fn knows_profile(&self, url: &str) -> bool {
        self.reg.profile(url).is_some()
    }

    /// Whether `s` matches the R4 regex of primitive type `ty` (None if the type has no regex).
    #[cfg(test)]
    pub(crate) fn primitive_regex_matches(&self, ty: &str, s: &str) -> Option<bool> {
        self.reg.base(ty)?.value_regex().map(|re| re.is_match(s))
    }

    /// Canonical URLs of all known profiles (constraints, not base definitions), sorted.
    pub fn profiles(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.reg.sds.iter().filter(|sd| sd.is_constraint).map(|sd| sd.url.as_str()).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(o: &Outcome) -> Vec<String> {
        o.issues.iter().filter(|i| i.severity.is_error()).map(|i| i.to_string()).collect()
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
            "name": [{"family": "Jansen", "given": ["Jan"]}],
            "gender": "male",
            "birthDate": "1974-12-25"
        })
    }

    #[test]
    fn r4_error_invariant_coverage_is_computed_from_the_definitions() {
        // The embedded table ships every R4 error invariant except ele-1 and ext-1, which the
        // generator strips (they are on every element) and the structure walk checks natively.
        let base: Value = serde_json::from_str(EMBEDDED[0].1).expect("base table");
        let (covered, missing) = invariant_coverage(std::slice::from_ref(&base));
        let covered = covered.len() + 2;
        let total = covered + missing.len();
        eprintln!("R4 error invariants evaluated: {covered} of {total}; not evaluated: {missing:?}");
        assert!(total >= 200, "{total}");
        assert!(covered >= 150, "{covered} of {total}");
        // Compiled ones are really in the registry, not only parseable.
        let reg = &Validator::embedded().reg;
        let compiled: std::collections::BTreeSet<&str> = reg
            .sds
            .iter()
            .filter(|sd| !sd.is_constraint)
            .flat_map(|sd| sd.elements.iter().flat_map(|e| e.invariants.iter().map(|i| i.key.as_str())))
            .collect();
        for key in ["dom-2", "dom-4", "qty-3", "cpt-2", "att-1", "obs-6", "ppc-1", "ras-2", "que-2", "sdf-1"] {
            assert!(compiled.contains(key), "{key}");
        }
    }

    #[test]
    fn known_extensions_are_checked_where_they_occur() {
        let url = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode";
        let mut obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "S"},
            "extension": [{"url": url, "valueCodeableConcept": {"text": "S"}}]});
        assert!(!Validator::embedded().validate(&obs).has_errors());
        obs["extension"][0] = json!({"url": url, "valueString": "S"});
        let o = Validator::embedded().validate(&obs);
        assert!(
            o.issues.iter().any(|i| i.expression.as_deref() == Some("Observation.extension[0].valueString")),
            "{:?}",
            errors(&o)
        );
    }

    #[test]
    fn a_plain_patient_is_valid() {
        let o = Validator::embedded().validate(&patient());
        assert!(!o.has_errors(), "{:?}", errors(&o));
    }

    #[test]
    fn finds_the_classic_mistakes() {
        let mut p = patient();
        p["birthDate"] = json!("1974-13-45");
        p["gender"] = json!("banana");
        p["nickname"] = json!("Jantje");
        p["name"] = json!({"family": "Jansen"});
        let o = Validator::embedded().validate(&p);
        let at: Vec<&str> = o.issues.iter().filter_map(|i| i.expression.as_deref()).collect();
        for e in ["Patient.birthDate", "Patient.gender", "Patient.nickname", "Patient.name"] {
            assert!(at.contains(&e), "{e} not reported: {:?}", errors(&o));
        }
    }

    #[test]
    fn unknown_resource_type_and_unknown_profile() {
        let o = Validator::embedded().validate(&json!({"resourceType": "Patiënt"}));
        assert!(o.has_errors());
        let mut p = patient();
        p["meta"] = json!({"profile": ["http://example.org/fhir/StructureDefinition/unknown"]});
        let o = Validator::embedded().validate(&p);
        assert!(!o.has_errors());
        assert_eq!(o.count(Severity::Information), 1);
    }

    #[test]
    fn bundle_entries_get_prefixed_expressions() {
        let b = json!({
            "resourceType": "Bundle", "type": "transaction",
            "entry": [
                {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "birthDate": "2020-02-30"},
                 "request": {"method": "PUT", "url": "Patient/1"}},
                {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}}
            ]
        });
        let o = Validator::embedded().validate(&b);
        let at: Vec<&str> = o.issues.iter().filter_map(|i| i.expression.as_deref()).collect();
        assert!(at.contains(&"Bundle.entry[0].resource.birthDate"), "{:?}", errors(&o));
        assert!(at.contains(&"Bundle.entry[1]"), "{:?}", errors(&o)); // bdl-3
        assert!(at.contains(&"Bundle.entry[1].fullUrl"), "{:?}", errors(&o)); // bdl-7
    }

    #[test]
    fn nl_core_patient_slices_and_referral() {
        let v = Validator::embedded();
        assert!(v.knows_profile("http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"));
        assert!(v.knows_profile(REFERRAL_PROFILE));
        let r = json!({
            "resourceType": "ServiceRequest",
            "meta": {"profile": [REFERRAL_PROFILE], "security": [{"system": DATA_CATEGORY_SYSTEM, "code": "referral"}]},
            "status": "active", "intent": "order", "subject": {"reference": "Patient/p1"}
        });
        let o = v.validate(&r);
        assert!(errors(&o).iter().any(|e| e.contains("ovd-ref-1")), "{:?}", errors(&o));
        let mut bad = r.clone();
        bad["meta"]["security"][0]["code"] = json!("gossip");
        bad["code"] = json!({"text": "GZSP"});
        let o = v.validate(&bad);
        assert!(errors(&o).iter().any(|e| e.contains("gossip")), "{:?}", errors(&o));
        assert!(!errors(&o).iter().any(|e| e.contains("ovd-ref-1")), "{:?}", errors(&o));
    }
}
