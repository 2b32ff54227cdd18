//! The adapter between `POST /fhir/$validate` and the validator stage.
//!
//! [`Embedded`] calls [`crate::validate::Validator::embedded`]: base R4 structure plus the
//! nl-core profiles shipped with overdracht. The trait keeps the endpoint independent of
//! how validation is configured (a validator with extra packages can be slotted in), and
//! [`StructuralOnly`] remains for tests of the endpoint that must not depend on it.

use std::sync::Arc;

use serde_json::Value;

use crate::validate::{Issue, IssueCode, Outcome, Settings, Validator};

/// Validates one FHIR R4 resource, optionally against a profile, keeping at most
/// `max_issues` issues (the rest are counted in the outcome).
pub trait ResourceValidator: Send + Sync {
    fn validate(&self, resource: &Value, profile: Option<&str>, max_issues: usize) -> Outcome;
    /// Short description for the CapabilityStatement.
    fn description(&self) -> &'static str;
}

/// The validator the service uses.
pub fn default_validator() -> Arc<dyn ResourceValidator> {
    Arc::new(Embedded::default())
}

/// The validator the service uses, with the configured settings (`validation` in the config).
pub fn configured_validator(settings: &crate::config::ValidationSettings) -> Arc<dyn ResourceValidator> {
    Arc::new(Embedded { settings: Settings { unknown_extensions: settings.unknown_extensions } })
}

/// The shipped validator (base R4 and the nl-core profiles in `profiles/`).
#[derive(Default)]
pub struct Embedded {
    pub settings: Settings,
}

impl ResourceValidator for Embedded {
    fn validate(&self, resource: &Value, profile: Option<&str>, max_issues: usize) -> Outcome {
        let v = Validator::embedded().with_settings(self.settings);
        match profile {
            None => v.validate_limited(resource, max_issues),
            Some(url) if v.knows_profile(url) => v.validate_against_limited(resource, url, max_issues),
            Some(url) => Issue::error(
                IssueCode::NotSupported,
                format!("profile {url} is not known to this server; validate against a profile listed in profiles/ or omit it"),
            )
            .at("profile")
            .into(),
        }
    }

    fn description(&self) -> &'static str {
        "FHIR R4 structure and the nl-core profiles shipped with overdracht (meta.profile, or the profile parameter)"
    }
}

/// A JSON object with a well-formed `resourceType`, nothing more, and a warning that says so.
pub struct StructuralOnly;

impl ResourceValidator for StructuralOnly {
    fn validate(&self, resource: &Value, profile: Option<&str>, _max_issues: usize) -> Outcome {
        let mut o = Outcome::new();
        match resource.get("resourceType").and_then(Value::as_str) {
            None => o.push(Issue::error(IssueCode::Required, "the resource has no resourceType").at("resourceType")),
            Some(t) if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphabetic()) => o.push(
                Issue::error(IssueCode::Value, "resourceType is not a FHIR resource type name").at("resourceType"),
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
        "resourceType check only"
    }
}

/// The OperationOutcome of `outcome` in at most `max_bytes` (when it can be): issues are
/// left out from the end, and counted in the closing "N more issues" issue, until it fits.
pub fn bounded_outcome(mut outcome: Outcome, max_bytes: usize) -> Vec<u8> {
    loop {
        let bytes = serde_json::to_vec(&outcome.to_fhir()).unwrap_or_default();
        if bytes.len() <= max_bytes || outcome.issues.is_empty() {
            return bytes;
        }
        let keep = outcome.issues.len() / 2;
        outcome.limit(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::IssueCode;

    #[test]
    fn an_answer_is_cut_to_its_size_limit() {
        let mut o = Outcome::new();
        for n in 0..1000 {
            o.push(Issue::warning(IssueCode::Value, format!("issue {n} {}", "x".repeat(100))));
        }
        let bytes = bounded_outcome(o, 10_000);
        assert!(bytes.len() <= 10_000, "{}", bytes.len());
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        let last = v["issue"].as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
        assert_eq!(last["code"], "too-costly");
    }
}
