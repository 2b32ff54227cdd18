//! Loading FHIR packages (an IG such as nictiz.fhir.nl.r4.nl-core) from disk.
//!
//! Accepted, for every configured path: a package `.tgz` as published on a registry; an unpacked
//! package folder (`package/*.json`, or the JSON files directly); or a folder holding several of
//! those (such as a `~/.fhir/packages` cache). Only StructureDefinitions with a snapshot,
//! ValueSets and CodeSystems are used; other files are skipped without complaint, so pointing at
//! a whole package is always fine.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::registry::{DefinitionError, Registry};

/// Errors while loading packages; each names the file so that a user can fix or remove it.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: {source}")]
    Definition { path: PathBuf, source: DefinitionError },
    #[error("{path}: neither a folder nor a .tgz FHIR package")]
    NotAPackage { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ValidateError + '_ {
    move |source| ValidateError::Io { path: path.to_path_buf(), source }
}

/// Whether a JSON file is worth parsing: conformance resources only (cheap test on the name
/// first, as package folders also hold examples and indexes).
fn wanted_name(name: &str) -> bool {
    name.ends_with(".json")
        && !name.starts_with('.')
        && !matches!(name, "package.json" | ".index.json")
        && (name.starts_with("StructureDefinition")
            || name.starts_with("ValueSet")
            || name.starts_with("CodeSystem")
            || !name.contains('-'))
}

fn add_json(reg: &mut Registry, path: &Path, bytes: &[u8]) -> Result<usize, ValidateError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|source| ValidateError::Json { path: path.to_path_buf(), source })?;
    let items: Vec<Value> = match v.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => v
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("resource").cloned())
            .collect(),
        _ => vec![v],
    };
    let mut used = 0;
    for item in items {
        if reg.add_resource(item).map_err(|source| ValidateError::Definition { path: path.to_path_buf(), source })? {
            used += 1;
        }
    }
    Ok(used)
}

fn load_tgz(reg: &mut Registry, path: &Path) -> Result<usize, ValidateError> {
    let file = fs::File::open(path).map_err(io(path))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut used = 0;
    for entry in archive.entries().map_err(io(path))? {
        let mut entry = entry.map_err(io(path))?;
        let name = entry.path().map_err(io(path))?.to_path_buf();
        let file_name = name.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Only the package's own folder; `package/examples/` and others are not definitions.
        let in_package_root = name.parent().is_some_and(|p| p == Path::new("package"));
        if !in_package_root || !wanted_name(file_name) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(io(path))?;
        used += add_json(reg, &path.join(&name), &bytes)?;
    }
    Ok(used)
}

fn load_dir(reg: &mut Registry, dir: &Path, depth: u32) -> Result<usize, ValidateError> {
    let pkg = dir.join("package");
    if pkg.is_dir() {
        return load_dir(reg, &pkg, depth);
    }
    let mut entries: Vec<PathBuf> =
        fs::read_dir(dir).map_err(io(dir))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let mut used = 0;
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if p.is_dir() && depth < 3 && !name.starts_with('.') && name != "examples" && name != "other" {
            used += load_dir(reg, &p, depth + 1)?;
        } else if name.ends_with(".tgz") {
            used += load_tgz(reg, &p)?;
        } else if p.is_file() && wanted_name(&name) {
            let bytes = fs::read(&p).map_err(io(&p))?;
            used += add_json(reg, &p, &bytes)?;
        }
    }
    Ok(used)
}

/// Add every package under `path` to `reg`; returns how many definitions were used.
pub(crate) fn load(reg: &mut Registry, path: &Path) -> Result<usize, ValidateError> {
    if path.is_dir() {
        load_dir(reg, path, 0)
    } else if path.extension().is_some_and(|e| e == "tgz") || path.to_string_lossy().ends_with(".tar.gz") {
        load_tgz(reg, path)
    } else if path.exists() {
        Err(ValidateError::NotAPackage { path: path.to_path_buf() })
    } else {
        Err(ValidateError::Io { path: path.to_path_buf(), source: std::io::Error::from(std::io::ErrorKind::NotFound) })
    }
}
