//! OperationOutcome building: the one shape in which every stage reports problems.
//!
//! Conversion reports unmapped source elements here, validation reports profile
//! violations here, and the API turns these into `OperationOutcome` bodies. An
//! [`Issue`] is deliberately close to `OperationOutcome.issue` so that the
//! mapping to FHIR is trivial and lossless.

use serde::Serialize;
use serde_json::{json, Value};

/// `OperationOutcome.issue.severity` (required binding `IssueSeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }

    /// Errors and fatals make a resource invalid; warnings and information do not.
    pub fn is_error(self) -> bool {
        matches!(self, Severity::Fatal | Severity::Error)
    }
}

/// `OperationOutcome.issue.code` (required binding `IssueType`); the subset we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Forbidden,
    Processing,
    NotSupported,
    Duplicate,
    NotFound,
    TooLong,
    CodeInvalid,
    Extension,
    BusinessRule,
    Conflict,
    Transient,
    Exception,
    Timeout,
    TooCostly,
    Incomplete,
    Informational,
    /// Some information was not passed on (data minimisation, consent, policy).
    Suppressed,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Invariant => "invariant",
            IssueCode::Security => "security",
            IssueCode::Login => "login",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Processing => "processing",
            IssueCode::NotSupported => "not-supported",
            IssueCode::Duplicate => "duplicate",
            IssueCode::NotFound => "not-found",
            IssueCode::TooLong => "too-long",
            IssueCode::CodeInvalid => "code-invalid",
            IssueCode::Extension => "extension",
            IssueCode::BusinessRule => "business-rule",
            IssueCode::Conflict => "conflict",
            IssueCode::Transient => "transient",
            IssueCode::Exception => "exception",
            IssueCode::Timeout => "timeout",
            IssueCode::TooCostly => "too-costly",
            IssueCode::Incomplete => "incomplete",
            IssueCode::Informational => "informational",
            IssueCode::Suppressed => "suppressed",
        }
    }
}

/// What an unmapped source element (a "leftover") is: clinical content that the output
/// lacks (a warning; `--strict` rejects the record), or administrative content without
/// clinical meaning (transport wrappers, vendor extensions, narrative; information).
/// The classification rules are data: `mappings/leftover-classes.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Leftover {
    Clinical,
    Administrative,
}

impl Leftover {
    /// Our code system for the class, in `OperationOutcome.issue.details`.
    pub const SYSTEM: &'static str = "https://w3id.org/overdracht/fhir/CodeSystem/leftover-class";

    pub fn code(self) -> &'static str {
        match self {
            Leftover::Clinical => "clinical",
            Leftover::Administrative => "administrative",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Leftover::Clinical => "clinical content not mapped",
            Leftover::Administrative => "administrative content not mapped",
        }
    }
}

/// One problem, with where it is (`expression`, a FHIRPath or JSON-pointer-like path into the
/// document it concerns) and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    pub code: IssueCode,
    /// FHIRPath (for FHIR documents) or an XPath-like location (for XML sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    pub diagnostics: String,
    /// Set when the issue reports an unmapped source element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leftover: Option<Leftover>,
}

impl Issue {
    pub fn new(severity: Severity, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Issue { severity, code, expression: None, diagnostics: diagnostics.into(), leftover: None }
    }
    pub fn error(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, diagnostics)
    }
    pub fn warning(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, diagnostics)
    }
    pub fn information(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self::new(Severity::Information, code, diagnostics)
    }
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    /// An unmapped source element of `class`: a warning if clinical, information if not.
    pub fn leftover(class: Leftover, diagnostics: impl Into<String>) -> Self {
        let mut i = match class {
            Leftover::Clinical => Self::warning(IssueCode::Incomplete, diagnostics),
            Leftover::Administrative => Self::information(IssueCode::Informational, diagnostics),
        };
        i.leftover = Some(class);
        i
    }

    /// This issue as an `OperationOutcome.issue` element.
    pub fn to_fhir(&self) -> Value {
        let mut v = json!({
            "severity": self.severity.as_str(),
            "code": self.code.as_str(),
            "diagnostics": self.diagnostics,
        });
        if let Some(e) = &self.expression {
            v["expression"] = json!([e]);
        }
        if let Some(l) = self.leftover {
            v["details"] = json!({"coding": [{"system": Leftover::SYSTEM, "code": l.code(), "display": l.display()}]});
        }
        v
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.severity.as_str())?;
        if let Some(e) = &self.expression {
            write!(f, " at {e}")?;
        }
        write!(f, ": {}", self.diagnostics)
    }
}

/// A list of issues; becomes one `OperationOutcome`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub issues: Vec<Issue>,
}

impl Outcome {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, issue: Issue) {
        self.issues.push(issue);
    }
    pub fn extend(&mut self, other: Outcome) {
        self.issues.extend(other.issues);
    }
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity.is_error())
    }
    pub fn count(&self, severity: Severity) -> usize {
        self.issues.iter().filter(|i| i.severity == severity).count()
    }
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }
    /// The number of unmapped source elements reported of `class`.
    pub fn leftovers(&self, class: Leftover) -> usize {
        self.issues.iter().filter(|i| i.leftover == Some(class)).count()
    }

    /// The FHIR `OperationOutcome`. An empty outcome states so explicitly, because
    /// `OperationOutcome.issue` is 1..* in R4.
    pub fn to_fhir(&self) -> Value {
        let issues: Vec<Value> = if self.issues.is_empty() {
            vec![json!({"severity": "information", "code": "informational", "diagnostics": "No issues found."})]
        } else {
            self.issues.iter().map(Issue::to_fhir).collect()
        };
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

impl From<Issue> for Outcome {
    fn from(issue: Issue) -> Self {
        Outcome { issues: vec![issue] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_outcome_is_still_valid_fhir() {
        let v = Outcome::new().to_fhir();
        assert_eq!(v["issue"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["issue"][0]["severity"], "information");
    }

    #[test]
    fn issue_carries_expression_as_list() {
        let i = Issue::error(IssueCode::Required, "Patient.identifier is missing").at("Patient.identifier");
        assert_eq!(i.to_fhir()["expression"], json!(["Patient.identifier"]));
        assert!(Outcome::from(i).has_errors());
    }
}
