//! Validating files and folders, for `overdracht validate <files|dirs>`.
//!
//! Kept in the library so that the command line stays a thin shell: it prints what this returns
//! and picks the exit code. A file that is not JSON is an invalid input (a `fatal` issue in its
//! outcome), not an I/O error; a path that cannot be read is an error of the command.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::outcome::{Issue, IssueCode, Outcome, Severity};
use super::package::ValidateError;
use super::Validator;

/// The outcome for one file.
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub outcome: Outcome,
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), ValidateError> {
    let io = |source| ValidateError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden && (p.is_dir() || p.extension().is_some_and(|e| e == "json")) {
                collect(&p, out)?;
            }
        }
        Ok(())
    } else if path.is_file() {
        out.push(path.to_path_buf());
        Ok(())
    } else {
        Err(io(std::io::Error::from(std::io::ErrorKind::NotFound)))
    }
}

/// Validate every given file, and every `*.json` below every given folder (sorted, hidden
/// entries skipped), against base R4, the profiles each resource claims, and `profile` if given.
pub fn validate_paths(
    v: &Validator,
    paths: &[PathBuf],
    profile: Option<&str>,
) -> Result<Vec<FileOutcome>, ValidateError> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let bytes = std::fs::read(&path).map_err(|source| ValidateError::Io {
            path: path.clone(),
            source,
        })?;
        let outcome = match serde_json::from_slice::<Value>(&bytes) {
            Ok(resource) => match profile {
                Some(url) => v.validate_against(&resource, url),
                None => v.validate(&resource),
            },
            Err(e) => Outcome::from(Issue::new(
                Severity::Fatal,
                IssueCode::Structure,
                format!("not valid JSON: {e}"),
            )),
        };
        out.push(FileOutcome { path, outcome });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_files_and_broken_json() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sub = tmp.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(
            tmp.path().join("a.json"),
            br#"{"resourceType": "Patient", "gender": "male"}"#,
        )
        .expect("write");
        std::fs::write(
            sub.join("b.json"),
            br#"{"resourceType": "Patient", "gender": "banana"}"#,
        )
        .expect("write");
        std::fs::write(sub.join("c.json"), b"{oops").expect("write");
        std::fs::write(sub.join("notes.txt"), b"ignored").expect("write");
        let v = Validator::embedded();
        let r = validate_paths(v, &[tmp.path().to_path_buf()], None).expect("readable");
        let names: Vec<String> = r
            .iter()
            .map(|f| {
                f.path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a.json", "b.json", "c.json"]);
        assert!(!r[0].outcome.has_errors());
        assert!(r[1].outcome.has_errors());
        assert_eq!(r[2].outcome.count(Severity::Fatal), 1);
        assert!(validate_paths(v, &[tmp.path().join("missing.json")], None).is_err());
    }
}
