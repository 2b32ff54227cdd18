//! The adapter between `POST /fhir/$validate` and the validator stage.
//!
//! The profile validator (`crate::validate::Validator`, issue 4) is being built in
//! parallel. Until it is merged, [`default_validator`] returns [`StructuralOnly`], which
//! checks only what any FHIR resource must satisfy and says plainly that profile
//! validation is not available. Wiring the real validator is the one-line change in
//! [`default_validator`] (see the comment there).

use std::sync::Arc;

use serde_json::Value;

use crate::validate::{Issue, IssueCode, Outcome};

/// Validates one FHIR R4 resource, optionally against a profile.
pub trait ResourceValidator: Send + Sync {
    fn validate(&self, resource: &Value, profile: Option<&str>) -> Outcome;
    /// Short description for the CapabilityStatement.
    fn description(&self) -> &'static str;
}

/// The validator the service uses.
pub fn default_validator() -> Arc<dyn ResourceValidator> {
    // When `crate::validate::Validator` lands: `Arc::new(Embedded)` with
    // `impl ResourceValidator for Embedded` calling `Validator::embedded().validate(..)`
    // or `.validate_against(.., profile)`.
    Arc::new(StructuralOnly)
}

/// Placeholder until the profile validator is merged: a JSON object with a known-looking
/// `resourceType`, nothing more, and a warning that says so.
pub struct StructuralOnly;

impl ResourceValidator for StructuralOnly {
    fn validate(&self, resource: &Value, profile: Option<&str>) -> Outcome {
        let mut o = Outcome::new();
        match resource.get("resourceType").and_then(Value::as_str) {
            None => o.push(
                Issue::error(IssueCode::Required, "the resource has no resourceType")
                    .at("resourceType"),
            ),
            Some(t) if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphabetic()) => o.push(
                Issue::error(
                    IssueCode::Value,
                    "resourceType is not a FHIR resource type name",
                )
                .at("resourceType"),
            ),
            Some(_) => {}
        }
        let what = match profile {
            Some(_) => "validation against the requested profile",
            None => "profile and structure validation",
        };
        o.push(Issue::warning(
            IssueCode::NotSupported,
            format!("{what} is not available in this build; only the resourceType was checked"),
        ));
        o
    }

    fn description(&self) -> &'static str {
        "resourceType check only (profile validator not yet wired)"
    }
}
