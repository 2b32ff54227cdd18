//! Outside input → model. One module per input format; none of them emits FHIR R4.
//!
//! A source reads bytes into a [`Dossier`]. What it cannot map it reports in
//! `Dossier::outcome` (information/warning issues with a path into the source), so
//! nothing disappears silently. Input that cannot be read at all, or that breaks a
//! rule the model enforces (a BSN failing the eleven test), is a [`SourceError`].

pub mod consume;
pub mod fhir_types;
pub mod fhir_xml;
pub mod flat;
pub mod hl7v3;
pub mod leftover;
pub mod r4;
pub(crate) mod safe_xml;
pub mod stu3;

use crate::diagnostics::{Issue, IssueCode, Outcome};
use crate::model::Dossier;

/// The input formats overdracht reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// FHIR STU3 JSON as GP systems deliver it (MedMij `gp-*`, zib2017 / BgZ 2017).
    #[value(name = "fhir-stu3")]
    FhirStu3,
    /// FHIR R4 JSON (hospital BgZ, nl-core).
    #[value(name = "fhir-r4")]
    FhirR4,
    /// The flat JSON dossier described by `profiles/flat-dossier.schema.json`.
    #[value(name = "flat")]
    Flat,
    /// The NHG Professional Summary, HL7v3 XML (QUPC_IN990002NL).
    #[value(name = "hl7v3-ps")]
    Hl7v3Ps,
    /// FHIR STU3 XML (as Nictiz publishes its examples; GP systems, LSP bridges).
    #[value(name = "fhir-stu3-xml")]
    FhirStu3Xml,
    /// FHIR R4 XML.
    #[value(name = "fhir-r4-xml")]
    FhirR4Xml,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::FhirStu3 => "fhir-stu3",
            Format::FhirR4 => "fhir-r4",
            Format::Flat => "flat",
            Format::Hl7v3Ps => "hl7v3-ps",
            Format::FhirStu3Xml => "fhir-stu3-xml",
            Format::FhirR4Xml => "fhir-r4-xml",
        }
    }

    /// True for the XML formats (HL7v3 and FHIR XML).
    pub fn is_xml(self) -> bool {
        matches!(self, Format::Hl7v3Ps | Format::FhirStu3Xml | Format::FhirR4Xml)
    }

    pub fn from_name(s: &str) -> Option<Format> {
        [Format::FhirStu3, Format::FhirR4, Format::Flat, Format::Hl7v3Ps, Format::FhirStu3Xml, Format::FhirR4Xml]
            .into_iter()
            .find(|f| f.name() == s)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an input could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("input format not recognised: {0}")]
    UnknownFormat(String),
    #[error("malformed {format} at line {line}, column {column}: {message}")]
    Syntax { format: &'static str, line: usize, column: usize, message: String },
    #[error("{}", summarise(.0))]
    Invalid(Outcome),
}

fn summarise(o: &Outcome) -> String {
    let errors: Vec<&Issue> = o.issues.iter().filter(|i| i.severity.is_error()).collect();
    match errors.as_slice() {
        [] => "the input is not valid".to_owned(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more error(s))", rest.len()),
    }
}

impl SourceError {
    /// One invalid-input error at `expression`.
    pub fn invalid(expression: impl Into<String>, message: impl Into<String>) -> SourceError {
        SourceError::Invalid(Issue::error(IssueCode::Invalid, message).at(expression).into())
    }

    /// The error as an OperationOutcome (for the API and the rejects file).
    pub fn to_outcome(&self) -> Outcome {
        match self {
            SourceError::Invalid(o) => o.clone(),
            SourceError::UnknownFormat(_) => Issue::error(IssueCode::NotSupported, self.to_string()).into(),
            SourceError::Syntax { line, column, .. } => {
                Issue::error(IssueCode::Structure, self.to_string()).at(format!("line {line}, column {column}")).into()
            }
        }
    }

    pub fn json(e: &serde_json::Error) -> SourceError {
        SourceError::Syntax { format: "JSON", line: e.line(), column: e.column(), message: e.to_string() }
    }
}

/// Builds the sources' embedded tables now instead of on the first record that needs them
/// (see [`crate::convert::prepare`]).
pub(crate) fn prepare() {
    flat::validator();
    leftover::prepare();
    fhir_xml::table_size(fhir_xml::Version::Stu3);
    fhir_xml::table_size(fhir_xml::Version::R4);
}

/// `bytes` without a leading UTF-8 byte-order mark. JSON must not start with one (RFC 8259
/// section 8.1), but parsers may ignore it and Windows tools write it, so every place that parses
/// JSON from outside (convert, validate, the API) reads it through here.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// What the first bytes of an input say: XML (a Professional Summary or FHIR XML) or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Xml,
    Json,
}

/// Looks at the first bytes only: a Professional Summary's or FHIR XML, or a JSON object.
pub fn sniff(bytes: &[u8]) -> Result<Syntax, SourceError> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    match start.map(|i| bytes[i]) {
        None => Err(SourceError::UnknownFormat("the input is empty".into())),
        Some(b'<') if hl7v3::is_professional_summary(bytes) || fhir_xml::is_fhir_xml(bytes) => Ok(Syntax::Xml),
        Some(b'<') => Err(SourceError::UnknownFormat(
            "XML input, but not an NHG Professional Summary (root element QUPC_IN990002NL) and not FHIR XML (namespace http://hl7.org/fhir)".into(),
        )),
        Some(b'{') => Ok(Syntax::Json),
        Some(_) => Err(SourceError::UnknownFormat(
            "expected JSON (FHIR or flat dossier) or XML (FHIR or Professional Summary); use --from to force a format"
                .into(),
        )),
    }
}

/// Recognises the format of an input by looking at it: XML with a Professional Summary
/// root, or FHIR XML (STU3 or R4 by the same profiles and shapes as JSON); JSON with a `resourceType` (FHIR, STU3 or R4 by its profiles and shapes); or JSON
/// without one (the flat dossier). JSON is parsed to decide; [`crate::convert::convert`]
/// avoids parsing twice by using [`sniff`] and [`detect_json`].
pub fn detect(bytes: &[u8]) -> Result<Format, SourceError> {
    match sniff(bytes)? {
        Syntax::Xml if hl7v3::is_professional_summary(bytes) => Ok(Format::Hl7v3Ps),
        Syntax::Xml => Ok(read_xml(bytes, None)?.1),
        Syntax::Json => {
            let v: serde_json::Value = serde_json::from_slice(without_bom(bytes)).map_err(|e| SourceError::json(&e))?;
            Ok(detect_json(&v))
        }
    }
}

/// Decides between STU3, R4 and flat for a parsed JSON document.
pub fn detect_json(v: &serde_json::Value) -> Format {
    if v.get("resourceType").is_none() {
        return Format::Flat;
    }
    if r4::looks_like_r4(v) {
        Format::FhirR4
    } else {
        Format::FhirStu3
    }
}

/// Reads one input in `format` into a dossier.
pub fn read(bytes: &[u8], format: Format) -> Result<Dossier, SourceError> {
    match format {
        Format::Hl7v3Ps => hl7v3::read(bytes),
        Format::FhirStu3Xml | Format::FhirR4Xml => Ok(read_xml(bytes, Some(format))?.0),
        json_format => {
            let v: serde_json::Value = serde_json::from_slice(without_bom(bytes)).map_err(|e| SourceError::json(&e))?;
            read_json(v, json_format)
        }
    }
}

/// Reads an already parsed JSON document (NDJSON streams parse line by line).
pub fn read_json(v: serde_json::Value, format: Format) -> Result<Dossier, SourceError> {
    match format {
        Format::FhirStu3 => stu3::read(v),
        Format::FhirR4 => r4::read(v),
        Format::Flat => flat::read(v),
        Format::Hl7v3Ps | Format::FhirStu3Xml | Format::FhirR4Xml => {
            Err(SourceError::UnknownFormat(format!("{format} is XML, not JSON")))
        }
    }
}

/// The keys of one record's items, and the stable key of an item that has no source id.
///
/// An item without an id is keyed by its type and a hash of its own content (canonical
/// JSON: object keys sorted), never by its position: the same item sent again, alone or
/// in a reordered Bundle, gets the same key, and the patient's part of its resource id is
/// added later (`fhir::ids`). A second item with identical content in the same record
/// gets `#2`, and so on.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    seen: std::collections::HashSet<crate::model::Key>,
}

impl Keys {
    /// The content key of an id-less item of `kind` whose content is `content` (not claimed).
    pub(crate) fn of_content(kind: &str, content: &[u8]) -> crate::model::Key {
        use sha2::{Digest, Sha256};
        format!("{kind}/#{}", hex::encode(&Sha256::digest(content)[..16]))
    }

    /// The content key of an id-less JSON item (not claimed).
    pub(crate) fn of_json(kind: &str, v: &serde_json::Value) -> crate::model::Key {
        let mut text = String::new();
        canonical_json(v, &mut text);
        Keys::of_content(kind, text.as_bytes())
    }

    /// Whether `key` was made from content (and so may need [`Keys::claim`] to stay unique).
    pub(crate) fn is_content_key(key: &str) -> bool {
        key.contains("/#")
    }

    /// `key` if it is still free, else `key#2`, `key#3`, …
    pub(crate) fn claim(&mut self, key: crate::model::Key) -> crate::model::Key {
        if self.seen.insert(key.clone()) {
            return key;
        }
        let mut n = 2;
        loop {
            let k = format!("{key}#{n}");
            if self.seen.insert(k.clone()) {
                return k;
            }
            n += 1;
        }
    }
}

/// JSON with object keys sorted, no white space: one text per content.
pub(crate) fn canonical_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Reads FHIR XML: to the FHIR JSON shape, then through the STU3 or R4 reader. The version
/// is `format`'s, or detected (see [`fhir_xml::to_json_detect`]); the format read is returned.
pub fn read_xml(bytes: &[u8], format: Option<Format>) -> Result<(Dossier, Format), SourceError> {
    let (v, version) = match format {
        Some(Format::FhirR4Xml) => (fhir_xml::to_json(bytes, fhir_xml::Version::R4)?, fhir_xml::Version::R4),
        Some(Format::FhirStu3Xml) => (fhir_xml::to_json(bytes, fhir_xml::Version::Stu3)?, fhir_xml::Version::Stu3),
        _ => fhir_xml::to_json_detect(bytes)?,
    };
    Ok(match version {
        fhir_xml::Version::Stu3 => (stu3::read(v)?, Format::FhirStu3Xml),
        fhir_xml::Version::R4 => (r4::read(v)?, Format::FhirR4Xml),
    })
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_keys_ignore_key_order_and_count_duplicates() {
        let mut k = Keys::default();
        let a = k.claim(Keys::of_json("Condition", &json!({"code": {"text": "x"}, "onsetDateTime": "2020"})));
        let b = k.claim(Keys::of_json("Condition", &json!({"onsetDateTime": "2020", "code": {"text": "x"}})));
        assert_eq!(b, format!("{a}#2"));
        let c = Keys::of_json("Condition", &json!({"onsetDateTime": "2021", "code": {"text": "x"}}));
        assert_ne!(a, c);
        assert!(a.starts_with("Condition/#") && Keys::is_content_key(&a));
    }
}
