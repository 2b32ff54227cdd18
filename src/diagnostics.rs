//! Diagnostics: the one shape in which every stage reports problems (OperationOutcome).
//!
//! A leaf module: it depends on no other stage, so source, model, fhir, policy and validate
//! may all report through it without depending on one another.
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
    Throttled,
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
            IssueCode::Throttled => "throttled",
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
///
/// An outcome may be limited ([`Outcome::limit`]): beyond the limit issues are only counted,
/// and the FHIR form ends with one issue saying how many more there were. A document with
/// millions of faults would otherwise make an answer (and the memory behind it) of its own
/// size several times over (5 M empty names gave an 889 MB answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub issues: Vec<Issue>,
    /// Most issues kept; `None`: all.
    #[serde(skip)]
    pub(crate) max: Option<usize>,
    /// Issues counted but not kept, and whether any of them was an error.
    #[serde(skip)]
    pub(crate) omitted: usize,
    #[serde(skip)]
    pub(crate) omitted_errors: bool,
}

impl Outcome {
    pub fn new() -> Self {
        Self::default()
    }
    /// An outcome built from issues (no limit).
    pub fn of(issues: Vec<Issue>) -> Self {
        Outcome { issues, ..Self::default() }
    }
    /// Keeps at most `max` issues from now on (drops those beyond it already kept); the
    /// rest are counted ([`Outcome::omitted`]).
    pub fn limit(&mut self, max: usize) {
        self.max = Some(max);
        if self.issues.len() > max {
            for i in self.issues.drain(max..) {
                self.omitted += 1;
                self.omitted_errors |= i.severity.is_error();
            }
        }
    }
    /// Issues counted beyond the limit and not kept.
    pub fn omitted(&self) -> usize {
        self.omitted
    }
    pub fn push(&mut self, issue: Issue) {
        if self.max.is_some_and(|m| self.issues.len() >= m) {
            self.omitted += 1;
            self.omitted_errors |= issue.severity.is_error();
        } else {
            self.issues.push(issue);
        }
    }
    pub fn extend(&mut self, other: Outcome) {
        self.omitted += other.omitted;
        self.omitted_errors |= other.omitted_errors;
        for i in other.issues {
            self.push(i);
        }
    }
    pub fn has_errors(&self) -> bool {
        self.omitted_errors || self.issues.iter().any(|i| i.severity.is_error())
    }
    /// The closing issue of a limited outcome: how many more issues there were.
    pub fn omitted_issue(&self) -> Option<Issue> {
        (self.omitted > 0).then(|| {
            let severity = if self.omitted_errors { Severity::Error } else { Severity::Warning };
            Issue::new(
                severity,
                IssueCode::TooCostly,
                format!(
                    "{} more issues not shown (at most {} are reported; fix these and validate again)",
                    self.omitted,
                    self.issues.len()
                ),
            )
        })
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
        let mut issues: Vec<Value> = self.issues.iter().map(Issue::to_fhir).collect();
        issues.extend(self.omitted_issue().map(|i| i.to_fhir()));
        if issues.is_empty() {
            issues.push(json!({"severity": "information", "code": "informational", "diagnostics": "No issues found."}));
        }
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

impl From<Issue> for Outcome {
    fn from(issue: Issue) -> Self {
        Outcome::of(vec![issue])
    }
}

/// `s` for a terminal: control characters (escape sequences, line breaks, BEL) and Unicode
/// direction overrides are shown as `\u{..}` escapes instead of acting on the screen. For every
/// line a command prints that holds text from outside: a record's element names and values, a
/// receiving server's reasons, the audit trail's reasons and access points.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hidden = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
        if c.is_control() || hidden {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_act_on_no_screen() {
        assert_eq!(printable("ok\u{1b}[2J\r\nfine\u{202e}"), "ok\\u{1b}[2J\\u{d}\\u{a}fine\\u{202e}");
        assert_eq!(printable("gewoon één reden"), "gewoon één reden");
    }

    #[test]
    fn empty_outcome_is_still_valid_fhir() {
        let v = Outcome::new().to_fhir();
        assert_eq!(v["issue"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["issue"][0]["severity"], "information");
    }

    #[test]
    fn a_limited_outcome_counts_what_it_does_not_keep() {
        let mut o = Outcome::new();
        o.push(Issue::warning(IssueCode::Value, "w0"));
        o.push(Issue::error(IssueCode::Value, "e1"));
        o.limit(1);
        for n in 2..10 {
            o.push(Issue::warning(IssueCode::Value, format!("w{n}")));
        }
        assert_eq!((o.issues.len(), o.omitted()), (1, 9));
        assert!(o.has_errors(), "an omitted error still makes the outcome invalid");
        let v = o.to_fhir();
        let issues = v["issue"].as_array().expect("issues");
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[1]["code"], "too-costly");
        assert_eq!(issues[1]["severity"], "error");
        assert!(issues[1]["diagnostics"].as_str().is_some_and(|d| d.starts_with("9 more issues")));
    }

    #[test]
    fn issue_carries_expression_as_list() {
        let i = Issue::error(IssueCode::Required, "Patient.identifier is missing").at("Patient.identifier");
        assert_eq!(i.to_fhir()["expression"], json!(["Patient.identifier"]));
        assert!(Outcome::from(i).has_errors());
    }
}
