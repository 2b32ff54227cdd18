//! Is an unmapped source element clinical or administrative? One home for that decision.
//!
//! The rules are data (`mappings/leftover-classes.json`, embedded): a short list of what is
//! administrative (transport wrappers, the sender's narrative and meta, vendor extensions
//! without clinical meaning, resource types that are not part of a handover). Everything
//! else is clinical, so that an element nobody has classified is never waved through.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

pub use crate::diagnostics::Leftover;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FhirRules {
    administrative_elements: HashMap<String, String>,
    administrative_extensions: HashMap<String, String>,
    administrative_resource_types: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hl7v3Rules {
    clinical_parts: Vec<String>,
    #[serde(default)]
    administrative_parts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Rules {
    fhir: FhirRules,
    hl7v3: Hl7v3Rules,
}

/// Reads the embedded rules now (see [`crate::convert::prepare`]).
pub(crate) fn prepare() {
    rules();
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    // Embedded data; the unit tests below read it, so a broken file fails the build's tests.
    RULES.get_or_init(|| serde_json::from_str(include_str!("../../mappings/leftover-classes.json")).unwrap_or_default())
}

/// The class of an unmapped FHIR element at `path` (FHIRPath with indices), given the
/// extension url when the element is an extension.
pub fn fhir(path: &str, extension_url: Option<&str>) -> Leftover {
    let r = &rules().fhir;
    if let Some(url) = extension_url {
        return if r.administrative_extensions.contains_key(url) {
            Leftover::Administrative
        } else {
            Leftover::Clinical
        };
    }
    // Bundle-level elements (outside an entry's resource) are the transport wrapper.
    if path.starts_with("Bundle.") && !path.contains(".resource") {
        return Leftover::Administrative;
    }
    let steps = path.split('.').map(|s| s.split('[').next().unwrap_or(s).trim_start_matches('_'));
    if steps.skip(1).any(|s| s == "meta") {
        return Leftover::Administrative;
    }
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last).trim_start_matches('_');
    if r.administrative_elements.contains_key(last) {
        Leftover::Administrative
    } else {
        Leftover::Clinical
    }
}

/// The class of a resource of `resource_type` that is not converted at all.
pub fn resource_type(resource_type: &str) -> Leftover {
    if rules().fhir.administrative_resource_types.contains_key(resource_type) {
        Leftover::Administrative
    } else {
        Leftover::Clinical
    }
}

/// The class of an unmapped part of a Professional Summary at `xpath`.
pub fn hl7v3(xpath: &str) -> Leftover {
    let r = &rules().hl7v3;
    if r.administrative_parts.iter().any(|p| xpath.contains(p.as_str())) {
        return Leftover::Administrative;
    }
    if r.clinical_parts.iter().any(|p| xpath.contains(p.as_str())) {
        Leftover::Clinical
    } else {
        Leftover::Administrative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_load_and_classify() {
        assert!(!rules().fhir.administrative_elements.is_empty(), "mappings/leftover-classes.json is read");
        assert_eq!(fhir("Bundle.entry[0].resource.meta.security", None), Leftover::Administrative);
        assert_eq!(fhir("Patient.text", None), Leftover::Administrative);
        assert_eq!(fhir("Bundle.signature", None), Leftover::Administrative);
        assert_eq!(fhir("Bundle.entry[2].resource.except", None), Leftover::Clinical);
        assert_eq!(fhir("MedicationRequest.recorder", None), Leftover::Clinical);
        assert_eq!(fhir("Patient.telecom[0]._system", None), Leftover::Clinical);
        assert_eq!(fhir("Patient.extension[0]", Some("http://example.org/unknown")), Leftover::Clinical);
        assert_eq!(
            fhir("Patient.extension[0]", Some("http://hl7.org/fhir/StructureDefinition/rendered-value")),
            Leftover::Administrative
        );
        assert_eq!(resource_type("AuditEvent"), Leftover::Administrative);
        assert_eq!(resource_type("Basic"), Leftover::Clinical);
        assert_eq!(hl7v3("/QUPC_IN990002NL/id"), Leftover::Administrative);
        assert_eq!(
            hl7v3("/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/component1[1]/encounter/component[3]/Prescription/directTarget/prescribedMedication/therapeuticAgentOf/medicationAdministrationRequest/id"),
            Leftover::Administrative
        );
        assert_eq!(
            hl7v3("/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/component9"),
            Leftover::Clinical
        );
    }
}
