//! Validating files, for `overdracht validate <files|dirs>`.
//!
//! Kept in the library so that the command line stays a thin shell: it expands its arguments
//! with `batch::expand_inputs` (the one place that knows how inputs are found), passes the files
//! here, prints what comes back and picks the exit code. A file that is not FHIR JSON is an
//! invalid input (a `fatal` issue in its outcome), not an error of the command; a file that cannot
//! be read is.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::package::ValidateError;
use super::Validator;
use crate::diagnostics::{Issue, IssueCode, Outcome, Severity};

/// The outcome for one file, or for one line of an NDJSON file.
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    /// 1-based line number within an NDJSON file.
    pub line: Option<usize>,
    pub outcome: Outcome,
}

impl FileOutcome {
    /// `path` or `path:line`, for messages.
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

fn fatal(msg: String) -> Outcome {
    Outcome::from(Issue::new(Severity::Fatal, IssueCode::Structure, msg))
}

fn one(v: &Validator, text: &[u8], profile: Option<&str>) -> Outcome {
    match serde_json::from_slice::<Value>(crate::source::without_bom(text)) {
        Ok(resource) => match profile {
            Some(url) => v.validate_against(&resource, url),
            None => v.validate(&resource),
        },
        Err(e) => fatal(format!("not valid JSON: {e}")),
    }
}

fn is_ndjson(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("ndjson" | "jsonl"))
}

/// Validate files (`-` is standard input): `*.json` hold one resource or Bundle, `*.ndjson` and
/// `*.jsonl` one resource per line. Each is checked against base R4, the profiles it claims, and
/// `profile` if given.
pub fn validate_files(
    v: &Validator,
    files: &[PathBuf],
    profile: Option<&str>,
) -> Result<Vec<FileOutcome>, ValidateError> {
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let io = |source| ValidateError::Io { path: path.clone(), source };
        let bytes = if path.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::stdin().read_to_end(&mut b).map_err(io)?;
            b
        } else {
            std::fs::read(path).map_err(io)?
        };
        if path.extension().is_some_and(|e| e == "xml") {
            let msg = "only FHIR JSON can be validated; convert the XML first (overdracht convert)".to_string();
            out.push(FileOutcome { path: path.clone(), line: None, outcome: fatal(msg) });
        } else if is_ndjson(path) {
            for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                out.push(FileOutcome { path: path.clone(), line: Some(i + 1), outcome: one(v, line, profile) });
            }
        } else {
            out.push(FileOutcome { path: path.clone(), line: None, outcome: one(v, &bytes, profile) });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ndjson_xml_and_broken_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| tmp.path().join(n);
        std::fs::write(p("a.json"), br#"{"resourceType": "Patient", "gender": "male"}"#).expect("write");
        std::fs::write(
            p("b.ndjson"),
            b"{\"resourceType\": \"Patient\"}\n\n{\"resourceType\": \"Patient\", \"gender\": \"banana\"}\n",
        )
        .expect("write");
        std::fs::write(p("c.json"), b"{oops").expect("write");
        std::fs::write(p("d.xml"), b"<Patient/>").expect("write");
        let v = Validator::embedded();
        let files = [p("a.json"), p("b.ndjson"), p("c.json"), p("d.xml")];
        let r = validate_files(v, &files, None).expect("readable");
        let summary: Vec<(String, bool)> = r
            .iter()
            .map(|f| (f.location().rsplit('/').next().unwrap_or("").to_string(), f.outcome.has_errors()))
            .collect();
        let expected =
            [("a.json", false), ("b.ndjson:1", false), ("b.ndjson:3", true), ("c.json", true), ("d.xml", true)];
        assert_eq!(summary, expected.map(|(a, b)| (a.to_string(), b)));
        assert!(validate_files(v, &[p("missing.json")], None).is_err());
    }
}
