//! A second, independent check of our FHIR output: every resource must deserialise into
//! fhirbolt's typed R4 model (types generated from the specification) and serialise back to the
//! same JSON.
//!
//! fhirbolt runs in a helper binary of its own (tests/fhirbolt-oracle, built here on first use,
//! into `<target dir>/fhirbolt-oracle`): it needs serde_json's `arbitrary_precision`, which, as a
//! dev-dependency, would be switched on in the library under test too.
//!
//! Resources are sent one by one: fhirbolt 0.4 fails on a typed resource that holds other
//! resources after the first of them, so a Bundle's entry resources, `contained` resources and
//! `Parameters` resources are taken out and checked on their own, and the rest of their parent
//! is checked without them.
//!
//! The comparison is plain `serde_json::Value` equality (key order aside), without any
//! normalisation: on every golden output fhirbolt gives back the same JSON, numbers with the
//! same text included.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// The repository root (this file is also a module of test binaries without `common`).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// How many resources this test process has sent through fhirbolt (so a test can tell that
/// the oracle looked at something).
pub static CHECKED: AtomicUsize = AtomicUsize::new(0);

fn oracle_binary() -> PathBuf {
    let manifest = root().join("tests/fhirbolt-oracle/Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("fhirbolt-oracle");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("run cargo to build tests/fhirbolt-oracle");
    assert!(status.success(), "tests/fhirbolt-oracle does not build");
    target.join("debug").join(format!("fhirbolt-oracle{}", std::env::consts::EXE_SUFFIX))
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let mut child = Command::new(oracle_binary())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fhirbolt-oracle");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Mutex::new(Oracle { _child: child, stdin, stdout })
    })
}

/// One resource through fhirbolt and back: its JSON, or fhirbolt's error.
pub fn round_trip(resource: &Value) -> Result<Value, String> {
    let line = serde_json::to_string(resource).expect("serialise");
    let answer = {
        let mut o = oracle().lock().unwrap_or_else(|e| e.into_inner());
        writeln!(o.stdin, "{line}").expect("write to fhirbolt-oracle");
        o.stdin.flush().expect("flush to fhirbolt-oracle");
        let mut answer = String::new();
        o.stdout.read_line(&mut answer).expect("read from fhirbolt-oracle");
        answer
    };
    CHECKED.fetch_add(1, Ordering::Relaxed);
    let v: Value = serde_json::from_str(&answer).map_err(|e| format!("fhirbolt-oracle answered no JSON: {e}"))?;
    match v.get("oracle-error").and_then(Value::as_str) {
        Some(e) => Err(e.to_string()),
        None => Ok(v),
    }
}

/// Splits a resource into the parts fhirbolt can take one at a time: the resource without its
/// nested resources, then each nested resource (recursively), with the FHIRPath of each.
fn parts(path: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    let mut shell = v.clone();
    let mut nested: Vec<(String, Value)> = Vec::new();
    if let Some(obj) = shell.as_object_mut() {
        if let Some(Value::Array(items)) = obj.get_mut("contained") {
            for (i, r) in items.drain(..).enumerate() {
                nested.push((format!("{path}.contained[{i}]"), r));
            }
            obj.remove("contained");
        }
        let rt = obj.get("resourceType").and_then(Value::as_str).unwrap_or("").to_string();
        if rt == "Bundle" {
            for (i, e) in obj.get_mut("entry").and_then(Value::as_array_mut).into_iter().flatten().enumerate() {
                let Some(e) = e.as_object_mut() else { continue };
                if let Some(r) = e.remove("resource") {
                    nested.push((format!("{path}.entry[{i}].resource"), r));
                }
                if let Some(r) = e.get_mut("response").and_then(Value::as_object_mut).and_then(|r| r.remove("outcome"))
                {
                    nested.push((format!("{path}.entry[{i}].response.outcome"), r));
                }
            }
        }
        if rt == "Parameters" {
            fn params(prefix: &str, ps: &mut Value, nested: &mut Vec<(String, Value)>) {
                for (i, p) in ps.as_array_mut().into_iter().flatten().enumerate() {
                    let Some(p) = p.as_object_mut() else { continue };
                    if let Some(r) = p.remove("resource") {
                        nested.push((format!("{prefix}[{i}].resource"), r));
                    }
                    if let Some(part) = p.get_mut("part") {
                        params(&format!("{prefix}[{i}].part"), part, nested);
                    }
                }
            }
            if let Some(ps) = obj.get_mut("parameter") {
                params(&format!("{path}.parameter"), ps, &mut nested);
            }
        }
    }
    out.push((path.to_string(), shell));
    for (p, r) in nested {
        parts(&p, &r, out);
    }
}

/// The differences between our JSON and fhirbolt's, as `path: ours → theirs` lines.
fn differences(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, x) in a {
                match b.get(k) {
                    Some(y) => differences(&format!("{path}.{k}"), x, y, out),
                    None => out.push(format!("{path}.{k}: dropped by fhirbolt ({x})")),
                }
            }
            for (k, y) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: added by fhirbolt ({y})"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} → {b}")),
    }
}

/// Checks one resource (a Bundle with all its entries, contained resources included): every
/// part deserialises into fhirbolt's R4 model and comes back equal. Returns the problems.
pub fn problems(what: &str, resource: &Value) -> Vec<String> {
    let root_path = resource.get("resourceType").and_then(Value::as_str).unwrap_or("$this").to_string();
    let mut all = Vec::new();
    parts(&root_path, resource, &mut all);
    let mut out = Vec::new();
    for (path, part) in all {
        match round_trip(&part) {
            Err(e) => out.push(format!("{what}: {path} does not deserialise into fhirbolt's R4 model: {e}")),
            Ok(back) => {
                let mut d = Vec::new();
                differences(&path, &part, &back, &mut d);
                out.extend(d.into_iter().map(|d| format!("{what}: {d}")));
            }
        }
    }
    out
}

/// [`problems`], failing the test if there are any.
pub fn assert_round_trips(what: &str, resource: &Value) {
    let p = problems(what, resource);
    assert!(p.is_empty(), "fhirbolt's R4 model disagrees with our output:\n  {}", p.join("\n  "));
}
