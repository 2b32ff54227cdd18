//! Many records at once: reading files, directories and NDJSON streams, converting
//! in parallel, writing results in input order, and keeping every rejected record.
//!
//! The work is a bounded pipeline (reader → N workers → ordered writer), so memory stays
//! flat however long the stream is: at most `2 × jobs` records are in flight.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::convert::{convert, convert_json, Conversion, ConvertError, ConvertOptions, OutputKind};

/// Where a record came from, for messages and the rejects file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based line number for NDJSON streams.
    pub line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// One record to convert.
pub struct Record {
    pub origin: Origin,
    pub bytes: Vec<u8>,
    /// Output name stem for per-record output files.
    pub stem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("{0}")]
    Usage(String),
}

/// The inputs of a batch: paths (files or directories) or `-` for standard input.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, BatchError> {
    let mut files = vec![];
    for p in inputs {
        if p.as_os_str() == "-" {
            files.push(p.clone());
        } else if p.is_dir() {
            let mut found = vec![];
            walk(p, &mut found).map_err(|e| BatchError::Read { path: p.display().to_string(), source: e })?;
            found.sort();
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(BatchError::Usage(format!("{}: no such file or directory", p.display())));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "xml" | "ndjson" | "jsonl")) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_ndjson_name(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("ndjson" | "jsonl"))
}

/// Sends the records of every input to `send`, in order. NDJSON files (by extension,
/// or standard input whose first line is a complete JSON value) are read line by line.
pub fn read_records(files: &[PathBuf], mut send: impl FnMut(Record) -> bool) -> Result<(), BatchError> {
    for path in files {
        let name = if path.as_os_str() == "-" { "<stdin>".to_owned() } else { path.display().to_string() };
        let rerr = |e| BatchError::Read { path: name.clone(), source: e };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("stdin").to_owned();
        let mut reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(BufReader::new(io::stdin()))
        } else {
            Box::new(BufReader::new(File::open(path).map_err(rerr)?))
        };
        // Standard input is NDJSON when its first line is a complete JSON value on its own
        // (a pretty-printed document's first line never is). The line read to find out is
        // replayed in front of the rest.
        let mut first = Vec::new();
        let stdin = path.as_os_str() == "-";
        if stdin {
            reader.read_until(b'\n', &mut first).map_err(rerr)?;
        }
        let ndjson = is_ndjson_name(path)
            || (stdin
                && !first.iter().all(u8::is_ascii_whitespace)
                && serde_json::from_slice::<serde::de::IgnoredAny>(crate::source::without_bom(&first)).is_ok());
        let mut reader: Box<dyn BufRead> = Box::new(io::Cursor::new(first).chain(reader));
        if ndjson {
            let mut line = Vec::new();
            let mut n = 0;
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).map_err(rerr)? == 0 {
                    break;
                }
                n += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let record = Record {
                    origin: Origin { file: name.clone(), line: Some(n) },
                    bytes: line.clone(),
                    stem: format!("{stem}-{n}"),
                };
                if !send(record) {
                    return Ok(());
                }
            }
        } else {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(rerr)?;
            if !send(Record { origin: Origin { file: name, line: None }, bytes, stem }) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Where converted output goes.
pub enum Sink {
    /// One stream: each Bundle on one line, or the resources of every record as NDJSON.
    Stream(Box<dyn Write + Send>),
    /// A directory: one file per record (`<stem>.bundle.json` or `<stem>.ndjson`).
    Directory(PathBuf),
}

impl Sink {
    /// Where `convert --out` writes: a directory (one that exists, or a path ending in `/`,
    /// created) gets one file per record; another path is a file; none, standard output.
    pub fn for_out(out: Option<&Path>) -> std::io::Result<Sink> {
        Ok(match out {
            Some(p) if p.is_dir() || p.to_string_lossy().ends_with('/') => {
                std::fs::create_dir_all(p)?;
                Sink::Directory(p.to_path_buf())
            }
            Some(p) => Sink::Stream(Box::new(std::io::BufWriter::new(std::fs::File::create(p)?))),
            None => Sink::Stream(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        })
    }
}

/// The number of records converted at once unless told: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// What happened to one record.
pub enum Outcome {
    Converted(Box<Converted>),
    Rejected(ConvertError),
}

impl Outcome {
    /// What `convert` tells about one record as it is done, one line each: a rejection;
    /// the warnings of a converted record when `verbose`, else its clinical leftovers only
    /// (clinical content that is not in the output is always shown).
    pub fn lines(&self, origin: &Origin, verbose: bool) -> Vec<String> {
        match self {
            Outcome::Rejected(e) => vec![format!("rejected {origin}: {e}")],
            Outcome::Converted(c) if verbose => c.outcome.issues.iter().map(|i| format!("{origin}: {i}")).collect(),
            Outcome::Converted(c) => c
                .outcome
                .issues
                .iter()
                .filter(|i| i.leftover == Some(crate::validate::Leftover::Clinical))
                .map(|i| format!("{origin}: CLINICAL {i}"))
                .collect(),
        }
    }
}

/// A converted record, rendered: its output bytes and what the summary needs. The worker
/// renders and drops the resources, so that the ordered writer only writes.
pub struct Converted {
    pub outcome: crate::validate::Outcome,
    pub resources: usize,
    pub warnings: usize,
    /// Unmapped clinical / administrative source elements.
    pub clinical: usize,
    pub administrative: usize,
    pub coverage: crate::model::Coverage,
    bytes: Vec<u8>,
    extension: &'static str,
    /// The Patient resource's id and every `(type, id)` written, for the identity guard.
    patient: Option<String>,
    ids: Vec<(String, String)>,
}

/// How workers render output.
#[derive(Clone, Copy)]
struct Render {
    kind: OutputKind,
    pretty: bool,
}

fn render(c: Conversion, how: Render) -> Converted {
    let (mut bytes, extension) = match how.kind {
        OutputKind::Bundle if how.pretty => {
            // A serde_json::Value always serialises.
            (serde_json::to_vec_pretty(&c.bundle()).unwrap_or_default(), "bundle.json")
        }
        OutputKind::Bundle => (c.bundle_bytes(), "bundle.json"),
        OutputKind::Ndjson => (c.ndjson(), "ndjson"),
    };
    if how.kind == OutputKind::Bundle {
        bytes.push(b'\n');
    }
    let patient = c.patient_id().map(str::to_owned);
    let ids = c.resources.iter().map(|r| (r.resource_type.clone(), r.id.clone())).collect();
    Converted {
        warnings: c.warnings(),
        resources: c.resources.len(),
        clinical: c.clinical_leftovers(),
        administrative: c.administrative_leftovers(),
        coverage: c.coverage,
        outcome: c.outcome,
        bytes,
        extension,
        patient,
        ids,
    }
}

/// Totals of a batch run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub converted: usize,
    pub rejected: usize,
    pub warnings: usize,
    pub resources: usize,
    /// Unmapped clinical / administrative source elements over the converted records.
    pub clinical_leftovers: usize,
    pub administrative_leftovers: usize,
    /// Source elements of the converted records, and how many were mapped.
    pub coverage: crate::model::Coverage,
}

impl Summary {
    /// The closing line of `convert`; `verbose` when every warning was listed already.
    pub fn line(&self, elapsed: Duration, verbose: bool) -> String {
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { (self.converted + self.rejected) as f64 / secs } else { 0.0 };
        let hint = if self.warnings > 0 && !verbose { " (use --verbose to list the warnings)" } else { "" };
        format!(
            "converted {}, rejected {}, resources {}, clinical leftovers {}, administrative leftovers {}, coverage {:.1}% ({} of {} source elements mapped), warnings {}{hint}, time {:.2} s ({:.0} records/s)",
            self.converted,
            self.rejected,
            self.resources,
            self.clinical_leftovers,
            self.administrative_leftovers,
            self.coverage.share() * 100.0,
            self.coverage.mapped_elements(),
            self.coverage.source_elements,
            self.warnings,
            secs,
            rate
        )
    }
}

/// Something to tell the user while the batch runs.
pub trait Progress: Send {
    fn record_done(&mut self, origin: &Origin, result: &Outcome);
    fn finish(&mut self, summary: &Summary, elapsed: Duration);
}

/// A file of records kept with the reason they were not processed: one NDJSON line per
/// record, created only when the first one comes. The rejects of `convert` and the dead
/// letters of `deliver` are both such files, with the same fields:
///
/// - `input` (the file), `line` (its line, for NDJSON input), `reason` (one readable line);
/// - what the stage adds: `outcome` (an OperationOutcome) for a reject, `failure` and
///   `attempts` for a dead letter;
/// - the record itself, byte for byte: `record` when it is UTF-8 text, `recordBase64`
///   otherwise. Nothing is trimmed or replaced, so the record can be processed again once
///   the cause is fixed (`jq -c '.record | fromjson' FILE` gives one record per line).
pub struct Kept {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Kept {
    pub fn new(path: PathBuf) -> Self {
        Kept { path, out: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether anything was kept (the file exists).
    pub fn used(&self) -> bool {
        self.out.is_some()
    }

    /// Keeps `record` with its `reason` and the stage's own `details` (object fields).
    pub fn keep(
        &mut self,
        origin: &Origin,
        record: &[u8],
        reason: &str,
        details: serde_json::Map<String, Value>,
    ) -> Result<(), BatchError> {
        let path = self.path.display().to_string();
        let werr = |e| BatchError::Write { path: path.clone(), source: e };
        let out = match &mut self.out {
            Some(o) => o,
            None => self.out.insert(BufWriter::new(File::create(&self.path).map_err(werr)?)),
        };
        let mut line = serde_json::Map::new();
        line.insert("input".into(), json!(origin.file));
        if let Some(l) = origin.line {
            line.insert("line".into(), json!(l));
        }
        line.insert("reason".into(), json!(reason));
        line.extend(details);
        match std::str::from_utf8(record) {
            Ok(s) => line.insert("record".into(), json!(s)),
            Err(_) => {
                line.insert("recordBase64".into(), json!(base64::engine::general_purpose::STANDARD.encode(record)))
            }
        };
        serde_json::to_writer(&mut *out, &line).map_err(|e| werr(io::Error::other(e)))?;
        out.write_all(b"\n").map_err(werr)
    }

    pub fn flush(&mut self) -> Result<(), BatchError> {
        if let Some(o) = self.out.as_mut() {
            o.flush().map_err(|e| BatchError::Write { path: self.path.display().to_string(), source: e })?;
        }
        Ok(())
    }
}

/// The rejects file of `convert`: each rejected record with the reason as text and as an
/// OperationOutcome.
pub struct Rejects(Kept);

impl Rejects {
    pub fn new(path: PathBuf) -> Self {
        Rejects(Kept::new(path))
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
    pub fn write(&mut self, origin: &Origin, record: &[u8], error: &ConvertError) -> Result<(), BatchError> {
        let mut details = serde_json::Map::new();
        details.insert("outcome".into(), error.to_outcome().to_fhir());
        self.0.keep(origin, record, &error.to_string(), details)
    }
    pub fn flush(&mut self) -> Result<(), BatchError> {
        self.0.flush()
    }
    pub fn used(&self) -> bool {
        self.0.used()
    }
}

fn convert_record(r: &Record, opts: &ConvertOptions, how: Render) -> Outcome {
    let result = if r.origin.line.is_some() {
        match serde_json::from_slice::<Value>(crate::source::without_bom(&r.bytes)) {
            Ok(v) => convert_json(v, opts),
            Err(e) => Err(ConvertError::Source(crate::source::SourceError::Syntax {
                format: "JSON",
                line: r.origin.line.unwrap_or(0),
                column: e.column(),
                message: e.to_string(),
            })),
        }
    } else {
        convert(&r.bytes, opts)
    };
    match result.map(|c| render(c, how)) {
        Ok(c) => Outcome::Converted(Box::new(c)),
        Err(e) => Outcome::Rejected(e),
    }
}

/// Runs a batch: every record of `files` is converted with `jobs` workers; results are
/// written to `sink` in input order; rejected records go to `rejects`.
pub fn run(
    files: &[PathBuf],
    opts: &ConvertOptions,
    jobs: usize,
    mut sink: Sink,
    rejects: &mut Rejects,
    pretty: bool,
    progress: &mut dyn Progress,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    let jobs = jobs.max(1);
    let (work_tx, work_rx) = sync_channel::<(usize, Record)>(jobs * 2);
    let (done_tx, done_rx) = sync_channel::<(usize, Record, Outcome)>(jobs * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let mut summary = Summary::default();
    let mut write_error: Option<BatchError> = None;
    // Which patient each written id belongs to: a record that would write another
    // patient's id is rejected, not written.
    let mut bindings = crate::fhir::ids::Bindings::default();

    // Files in a directory are for people to read; streams are one Bundle per line.
    let how = Render { kind: opts.output, pretty: pretty || matches!(sink, Sink::Directory(_)) };
    let read_result = std::thread::scope(|s| {
        for _ in 0..jobs {
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            s.spawn(move || worker(&rx, &tx, opts, how));
        }
        drop(done_tx);
        let reader = s.spawn(move || {
            let mut seq = 0usize;
            read_records(files, |r| {
                let ok = work_tx.send((seq, r)).is_ok();
                seq += 1;
                ok
            })
        });
        // The writer: reorder, then write.
        let mut pending: BTreeMap<usize, (Record, Outcome)> = BTreeMap::new();
        let mut next = 0usize;
        for (seq, record, outcome) in done_rx.iter() {
            pending.insert(seq, (record, outcome));
            while let Some((record, outcome)) = pending.remove(&next) {
                next += 1;
                if write_error.is_some() {
                    continue;
                }
                let outcome = guard_identity(&mut bindings, outcome);
                progress.record_done(&record.origin, &outcome);
                if let Err(e) = write_one(&mut sink, rejects, &record, &outcome, &mut summary) {
                    write_error = Some(e);
                }
            }
        }
        reader.join().unwrap_or_else(|_| Err(BatchError::Usage("the input reader stopped unexpectedly".into())))
    });
    read_result?;
    if let Some(e) = write_error {
        return Err(e);
    }
    if let Sink::Stream(w) = &mut sink {
        w.flush().map_err(|e| BatchError::Write { path: "output".into(), source: e })?;
    }
    rejects.flush()?;
    progress.finish(&summary, started.elapsed());
    Ok(summary)
}

fn worker(
    rx: &Mutex<Receiver<(usize, Record)>>,
    tx: &std::sync::mpsc::SyncSender<(usize, Record, Outcome)>,
    opts: &ConvertOptions,
    how: Render,
) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok((seq, record)) = next else { return };
        let outcome = convert_record(&record, opts, how);
        if tx.send((seq, record, outcome)).is_err() {
            return;
        }
    }
}

/// A converted record whose ids are already bound to another patient becomes a reject.
fn guard_identity(bindings: &mut crate::fhir::ids::Bindings, outcome: Outcome) -> Outcome {
    let Outcome::Converted(c) = &outcome else { return outcome };
    let Some(patient) = &c.patient else { return outcome };
    match bindings.bind(patient, c.ids.iter().map(|(t, id)| (t.as_str(), id.as_str()))) {
        Ok(()) => outcome,
        Err(resource) => Outcome::Rejected(ConvertError::BoundToAnotherPatient { resource }),
    }
}

fn write_one(
    sink: &mut Sink,
    rejects: &mut Rejects,
    record: &Record,
    outcome: &Outcome,
    summary: &mut Summary,
) -> Result<(), BatchError> {
    match outcome {
        Outcome::Rejected(e) => {
            summary.rejected += 1;
            rejects.write(&record.origin, &record.bytes, e)
        }
        Outcome::Converted(c) => {
            summary.converted += 1;
            summary.warnings += c.warnings;
            summary.resources += c.resources;
            summary.clinical_leftovers += c.clinical;
            summary.administrative_leftovers += c.administrative;
            summary.coverage.add(c.coverage);
            match sink {
                Sink::Stream(w) => {
                    w.write_all(&c.bytes).map_err(|e| BatchError::Write { path: "output".into(), source: e })
                }
                Sink::Directory(dir) => {
                    let path = dir.join(format!("{}.{}", record.stem, c.extension));
                    std::fs::write(&path, &c.bytes)
                        .map_err(|e| BatchError::Write { path: path.display().to_string(), source: e })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_records_come_back_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("kept.ndjson");
        let mut kept = Kept::new(path.clone());
        assert!(!kept.used() && !path.exists(), "no file until something is kept");
        let text = b"{\"a\": 1}\r\n\n".to_vec();
        let binary = vec![0xff, 0xfe, b'{', 0x00];
        let origin = Origin { file: "in.ndjson".into(), line: Some(3) };
        kept.keep(&origin, &text, "first", serde_json::Map::new()).expect("kept");
        kept.keep(&origin, &binary, "second", serde_json::Map::new()).expect("kept");
        kept.flush().expect("flushed");
        let lines: Vec<Value> = std::fs::read_to_string(&path)
            .expect("file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["record"].as_str().map(str::as_bytes), Some(&text[..]), "not trimmed");
        assert_eq!((lines[0]["input"].as_str(), lines[0]["line"].as_u64()), (Some("in.ndjson"), Some(3)));
        assert_eq!(lines[0]["reason"], "first");
        let b = base64::engine::general_purpose::STANDARD
            .decode(lines[1]["recordBase64"].as_str().expect("base64"))
            .expect("decodes");
        assert_eq!(b, binary);
    }

    fn converted(patient: &str, ids: &[(&str, &str)]) -> Outcome {
        Outcome::Converted(Box::new(Converted {
            outcome: crate::validate::Outcome::new(),
            resources: ids.len(),
            warnings: 0,
            clinical: 0,
            administrative: 0,
            coverage: Default::default(),
            bytes: vec![],
            extension: "ndjson",
            patient: Some(patient.to_owned()),
            ids: ids.iter().map(|(t, id)| ((*t).to_owned(), (*id).to_owned())).collect(),
        }))
    }

    /// A record that would write an id already written for another patient in this run is
    /// rejected with the reason; the same patient's record again is not.
    #[test]
    fn a_record_reusing_another_patients_id_is_rejected() {
        let mut b = crate::fhir::ids::Bindings::default();
        let first = converted("pa", &[("Patient", "pa"), ("Condition", "c1"), ("Organization", "o")]);
        assert!(matches!(guard_identity(&mut b, first), Outcome::Converted(_)));
        let again = converted("pa", &[("Patient", "pa"), ("Condition", "c1")]);
        assert!(matches!(guard_identity(&mut b, again), Outcome::Converted(_)));
        let other = converted("pb", &[("Patient", "pb"), ("Organization", "o"), ("Condition", "c1")]);
        match guard_identity(&mut b, other) {
            Outcome::Rejected(e @ ConvertError::BoundToAnotherPatient { .. }) => {
                assert!(e.to_string().contains("Condition/c1"));
                assert!(e.to_outcome().has_errors());
            }
            _ => panic!("rejected"),
        }
    }
}
