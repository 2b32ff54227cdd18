//! One record through the pipeline: source → model → FHIR (→ validate).
//!
//! This is the library call that the command line and the HTTP API share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostics::{Issue, IssueCode, Leftover, Outcome, Severity};
use crate::fhir::{self, Emitted, FhirOptions, RefStyle};
use crate::model::{Coverage, Dossier, Identifier};
use crate::source::{self, Format, SourceError};
use crate::terminology::{uri, Terminology};
use crate::validate::Validator;

/// How the output is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputKind {
    /// A FHIR transaction Bundle of `PUT Type/id` entries per dossier.
    Bundle,
    /// One resource per line, with relative `Type/id` references.
    Ndjson,
}

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Force an input format instead of detecting it.
    pub format: Option<Format>,
    /// The sender's identity for resource ids (e.g. `agb-z|01990140`); by default taken
    /// from the record (the authoring organisation), else `unknown-sender`.
    pub sender: Option<String>,
    pub output: OutputKind,
    /// Most issues the conversion's outcome keeps (the rest are counted); `None`: all.
    pub max_issues: Option<usize>,
    /// Stops the conversion between its steps once set (the request it served timed out).
    pub cancel: Option<Cancel>,
    /// Reject a record that leaves clinical source elements unmapped (`--strict`).
    pub strict: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: None,
            sender: None,
            output: OutputKind::Bundle,
            max_issues: None,
            cancel: None,
            strict: false,
        }
    }
}

/// A flag that stops a conversion at its next step: parsing, reading the source, emitting,
/// and validating each emitted resource. Work on a blocking thread is not cancelled when
/// the request that started it is dropped (conversion went on after the 408),
/// so the request sets this flag when it goes away.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn check(opts: &ConvertOptions) -> Result<(), ConvertError> {
    match &opts.cancel {
        Some(c) if c.is_cancelled() => Err(ConvertError::Cancelled),
        _ => Ok(()),
    }
}

/// A converted record.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub format: Format,
    pub sender: String,
    pub resources: Vec<Emitted>,
    /// Everything the conversion has to say: unmapped source elements, unresolved
    /// references, validation warnings. Never contains errors (those reject the record).
    pub outcome: Outcome,
    /// How much of the source was mapped.
    pub coverage: Coverage,
    /// The message the record came in (the Bundle's identifier and timestamp).
    pub message: Option<crate::model::SourceMessage>,
}

/// Why a record was not converted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the output of mapping {mapping} (from {source_path}) is not valid FHIR: {}", first_error(.outcome))]
    InvalidOutput { mapping: String, source_path: String, outcome: Outcome },
    /// A resource id of this record was already written for another patient in the same
    /// run (see `fhir::ids::Bindings`); nothing of the record is written.
    #[error("{resource} was already written for another patient; this record is not written (two patients' records never share a resource)")]
    BoundToAnotherPatient { resource: String },
    /// Stopped through [`ConvertOptions::cancel`].
    #[error("the conversion was stopped (its request timed out or went away)")]
    Cancelled,
    /// `strict`: clinical source elements were not mapped.
    #[error("{} clinical source element(s) not mapped (strict), the first: {}", .outcome.issues.len(), first_issue(.outcome))]
    ClinicalLeftovers { outcome: Outcome },
}

fn first_issue(o: &Outcome) -> String {
    o.issues.first().map(|i| i.to_string()).unwrap_or_default()
}

fn first_error(o: &Outcome) -> String {
    o.issues.iter().find(|i| i.severity.is_error()).map(|i| i.to_string()).unwrap_or_default()
}

impl ConvertError {
    pub fn to_outcome(&self) -> Outcome {
        match self {
            ConvertError::Source(e) => e.to_outcome(),
            ConvertError::InvalidOutput { mapping, outcome, .. } => {
                let mut o = Outcome::new();
                o.push(Issue::error(
                    IssueCode::Exception,
                    format!(
                        "conversion defect: mapping {mapping} produced invalid output; please report it with the input"
                    ),
                ));
                o.extend(outcome.clone());
                o
            }
            ConvertError::BoundToAnotherPatient { resource } => {
                Issue::error(IssueCode::Conflict, self.to_string()).at(resource.clone()).into()
            }
            ConvertError::Cancelled => Issue::error(IssueCode::Timeout, self.to_string()).into(),
            ConvertError::ClinicalLeftovers { outcome } => {
                let mut o = Outcome::new();
                o.push(Issue::error(
                    IssueCode::Incomplete,
                    format!(
                        "strict conversion: {} clinical source element(s) would not be in the output; map them or convert without strict",
                        outcome.issues.len()
                    ),
                ));
                o.extend(outcome.clone());
                o
            }
        }
    }
}

impl Conversion {
    /// The id of the Patient resource, if the record has one.
    pub fn patient_id(&self) -> Option<&str> {
        self.resources.iter().find(|r| r.resource_type == "Patient").map(|r| r.id.as_str())
    }

    /// The transaction Bundle.
    pub fn bundle(&self) -> Value {
        fhir::bundle::transaction(&self.resources, self.message.as_ref())
    }

    /// The transaction Bundle as compact JSON bytes (faster than serialising [`Self::bundle`]).
    pub fn bundle_bytes(&self) -> Vec<u8> {
        self.bundle_bytes_with_spans().0
    }

    /// [`Self::bundle_bytes`], and where in them each resource's own JSON is (in the order
    /// of `resources`).
    pub fn bundle_bytes_with_spans(&self) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
        let mut out = Vec::with_capacity(self.resources.len() * 1024);
        let spans = fhir::bundle::write_transaction_spans(&self.resources, self.message.as_ref(), &mut out);
        (out, spans)
    }

    /// The resources as NDJSON.
    pub fn ndjson(&self) -> Vec<u8> {
        let mut out = Vec::new();
        fhir::bundle::ndjson(&self.resources, &mut out);
        out
    }

    /// Number of resources per resource type, sorted by type.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut m = std::collections::BTreeMap::new();
        for r in &self.resources {
            *m.entry(r.resource_type.clone()).or_insert(0) += 1;
        }
        m.into_iter().collect()
    }

    pub fn warnings(&self) -> usize {
        self.outcome.count(Severity::Warning)
    }

    /// Unmapped clinical source elements (warnings; `strict` rejects them).
    pub fn clinical_leftovers(&self) -> usize {
        self.outcome.leftovers(Leftover::Clinical)
    }

    /// Unmapped administrative source elements (information).
    pub fn administrative_leftovers(&self) -> usize {
        self.outcome.leftovers(Leftover::Administrative)
    }

    /// The coverage figures as JSON (the API summary).
    pub fn coverage_json(&self) -> Value {
        serde_json::json!({
            "sourceElements": self.coverage.source_elements,
            "mappedElements": self.coverage.mapped_elements(),
            "share": (self.coverage.share() * 10000.0).round() / 10000.0,
            "clinicalLeftovers": self.clinical_leftovers(),
            "administrativeLeftovers": self.administrative_leftovers(),
        })
    }
}

/// Builds every embedded table a conversion uses (the validation definitions, the
/// terminology, the leftover classes, the flat format's schema, the FHIR XML element tables)
/// now rather than on the first record. `serve` calls it before it listens: built on the first
/// handover (about 100 ms on a 2-core machine), they made that handover and every request that
/// arrived meanwhile wait, which under load meant 503s from the per-caller limit.
pub fn prepare() {
    crate::validate::Validator::embedded();
    crate::terminology::Terminology::embedded();
    crate::source::prepare();
}

/// Converts one record (a file's bytes).
pub fn convert(bytes: &[u8], opts: &ConvertOptions) -> Result<Conversion, ConvertError> {
    // JSON is parsed once, both to detect its format and to read it.
    check(opts)?;
    let is_xml = match opts.format {
        Some(f) => f.is_xml(),
        None => source::sniff(bytes)? == source::Syntax::Xml,
    };
    if is_xml {
        let (dossier, format) = match opts.format {
            Some(Format::Hl7v3Ps) => (source::read(bytes, Format::Hl7v3Ps)?, Format::Hl7v3Ps),
            None if source::hl7v3::is_professional_summary(bytes) => {
                (source::read(bytes, Format::Hl7v3Ps)?, Format::Hl7v3Ps)
            }
            forced => source::read_xml(bytes, forced)?,
        };
        return finish(dossier, format, opts);
    }
    let v: Value = serde_json::from_slice(source::without_bom(bytes)).map_err(|e| SourceError::json(&e))?;
    convert_json(v, opts)
}

/// Converts one already parsed JSON record (an NDJSON line).
pub fn convert_json(v: Value, opts: &ConvertOptions) -> Result<Conversion, ConvertError> {
    check(opts)?;
    let format = opts.format.unwrap_or_else(|| source::detect_json(&v));
    let dossier = source::read_json(v, format)?;
    finish(dossier, format, opts)
}

/// The sender part of resource ids: the explicit option, else the record's authoring
/// organisation.
fn sender_of(dossier: &Dossier, explicit: &Option<String>) -> String {
    if let Some(s) = explicit {
        return s.clone();
    }
    match &dossier.author_organization {
        Some(Identifier { system: Some(s), value }) => {
            let system = Terminology::embedded().system_uri(s);
            let short = match system.as_str() {
                uri::AGB => "agb-z",
                uri::URA => "ura",
                other => other,
            };
            format!("{short}|{value}")
        }
        Some(Identifier { system: None, value }) => value.clone(),
        None => "unknown-sender".to_owned(),
    }
}

fn finish(dossier: Dossier, format: Format, opts: &ConvertOptions) -> Result<Conversion, ConvertError> {
    check(opts)?;
    let sender = sender_of(&dossier, &opts.sender);
    let ref_style = match opts.output {
        OutputKind::Bundle => RefStyle::Urn,
        OutputKind::Ndjson => RefStyle::Relative,
    };
    let out = fhir::emit(&dossier, &FhirOptions { sender: sender.clone(), ref_style });
    let coverage = dossier.coverage;
    let message = dossier.message;
    let mut outcome = dossier.outcome;
    if let Some(max) = opts.max_issues {
        outcome.limit(max);
    }
    outcome.extend(out.outcome);
    if opts.strict && outcome.leftovers(Leftover::Clinical) > 0 {
        let clinical = outcome.issues.into_iter().filter(|i| i.leftover == Some(Leftover::Clinical)).collect();
        return Err(ConvertError::ClinicalLeftovers { outcome: Outcome { issues: clinical, ..Default::default() } });
    }
    // Everything we emit is validated before anyone sees it. An error is a defect of the
    // mapping that produced the resource, never something to pass on as if valid.
    let validator = Validator::embedded();
    for r in &out.resources {
        check(opts)?;
        let checked = validator.validate(&r.resource);
        if checked.has_errors() {
            return Err(ConvertError::InvalidOutput {
                mapping: r.mapping.to_owned(),
                source_path: r.source_path.clone(),
                outcome: checked,
            });
        }
        // Warnings are worth knowing; "profile not known locally" notes are not repeated
        // for every resource.
        outcome.issues.extend(checked.issues.into_iter().filter(|i| i.severity == Severity::Warning));
    }
    Ok(Conversion { format, sender, resources: out.resources, outcome, coverage, message })
}
