//! `overdracht deliver`: many Bundles from files and NDJSON streams to one target.
//!
//! Input is read by [`crate::batch::read_records`] (one Bundle per file, or one per line
//! of NDJSON: the output of `overdracht convert`) on a blocking thread, and up to `jobs`
//! deliveries run at once. Nothing is lost: every Bundle that is not delivered, or cannot
//! be read as one, goes to the dead-letter file with its reason.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::bundle;
use super::client::{Delivery, Failure, FailureKind, FhirClient};
use crate::batch::{self, BatchError, Origin};

/// Totals of a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub delivered: usize,
    pub failed: usize,
    /// Attempts beyond the first, over all Bundles.
    pub retries: u64,
    /// Entries (resources) in the delivered Bundles.
    pub resources: usize,
}

/// Told about each Bundle as it is done, and once at the end.
pub trait PushProgress {
    fn done(&mut self, origin: &Origin, delivery: &Delivery);
    fn finish(&mut self, summary: &PushSummary, elapsed: Duration);
}

/// The dead-letter file: one NDJSON line per Bundle not delivered, with the reason and the
/// Bundle itself, so that it can be delivered again once the cause is fixed. Created only
/// when needed.
pub struct DeadLetters {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl DeadLetters {
    pub fn new(path: PathBuf) -> DeadLetters {
        DeadLetters { path, out: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn used(&self) -> bool {
        self.out.is_some()
    }

    pub fn write(
        &mut self,
        origin: &Origin,
        failure: &Failure,
        attempts: u32,
        bundle: Option<&Value>,
        raw: &[u8],
    ) -> Result<(), BatchError> {
        let werr = |e| BatchError::Write { path: self.path.display().to_string(), source: e };
        if self.out.is_none() {
            self.out = Some(BufWriter::new(File::create(&self.path).map_err(werr)?));
        }
        let mut line = json!({
            "origin": origin.file,
            "line": origin.line,
            "failure": failure,
            "attempts": attempts,
        });
        match bundle {
            Some(b) => line["bundle"] = b.clone(),
            None => line["raw"] = Value::String(String::from_utf8_lossy(raw).into_owned()),
        }
        let werr = |e| BatchError::Write { path: self.path.display().to_string(), source: e };
        if let Some(out) = self.out.as_mut() {
            serde_json::to_writer(&mut *out, &line).map_err(|e| werr(e.into()))?;
            out.write_all(b"\n").map_err(werr)?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), BatchError> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|e| BatchError::Write { path: self.path.display().to_string(), source: e })?;
        }
        Ok(())
    }
}

/// A Bundle that would write an id already written for another patient in this run is not
/// sent: it becomes a dead letter with the reason (see `fhir::ids::Bindings`).
fn guard_identity(bindings: &mut crate::fhir::ids::Bindings, v: Value) -> Result<Value, (String, Option<Value>)> {
    let entries = bundle::entries(&v);
    let resources: Vec<(&str, &str)> = entries
        .iter()
        .filter_map(|e| {
            let r = e.get("resource")?;
            Some((r.get("resourceType")?.as_str()?, r.get("id")?.as_str()?))
        })
        .collect();
    let Some(patient) = resources.iter().find(|(t, _)| *t == "Patient").map(|(_, id)| *id) else {
        return Ok(v);
    };
    match bindings.bind(patient, resources.iter().copied()) {
        Ok(()) => Ok(v),
        Err(resource) => {
            let reason = format!(
                "{resource} was already delivered for another patient in this run; this Bundle is not sent \
                 (two patients' records never share a resource)"
            );
            Err((reason, Some(v)))
        }
    }
}

/// Delivers every Bundle in `files` through `client`, `jobs` at a time.
pub async fn push(
    files: &[PathBuf],
    client: Arc<FhirClient>,
    jobs: usize,
    dead: &mut DeadLetters,
    progress: &mut dyn PushProgress,
) -> Result<PushSummary, BatchError> {
    let started = Instant::now();
    let jobs = jobs.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<batch::Record>(jobs * 2);
    let files = files.to_vec();
    let reader = tokio::task::spawn_blocking(move || batch::read_records(&files, |r| tx.blocking_send(r).is_ok()));

    let mut summary = PushSummary::default();
    let mut bindings = crate::fhir::ids::Bindings::default();
    let mut running: JoinSet<(Origin, Vec<u8>, Option<Value>, Delivery)> = JoinSet::new();
    let mut input_done = false;
    while !input_done || !running.is_empty() {
        tokio::select! {
            r = rx.recv(), if !input_done && running.len() < jobs => match r {
                None => input_done = true,
                Some(record) => {
                    let client = client.clone();
                    // A refusal keeps the Bundle when there is one, else the raw bytes.
                    let parsed: Result<Value, (String, Option<Value>)> = serde_json::from_slice(crate::source::without_bom(&record.bytes))
                        .map_err(|e| (format!("not JSON: {e}"), None))
                        .and_then(|v| bundle::check(&v).map(|()| v).map_err(|r| (r, None)))
                        .and_then(|v| guard_identity(&mut bindings, v));
                    running.spawn(async move {
                        match parsed {
                            Ok(v) => {
                                let d = client.deliver(v.clone()).await;
                                (record.origin, vec![], Some(v), d)
                            }
                            Err((reason, kept)) => {
                                let failure = Failure { kind: FailureKind::Rejected, status: None, reason, outcome: None, entries: vec![] };
                                let d = Delivery { result: Err(failure), attempts: 0, elapsed: Duration::ZERO };
                                (record.origin, record.bytes, kept, d)
                            }
                        }
                    });
                }
            },
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (origin, raw, bundle, d) = joined.map_err(|e| BatchError::Usage(format!("a delivery task failed: {e}")))?;
                summary.retries += u64::from(d.attempts.saturating_sub(1));
                match &d.result {
                    Ok(_) => {
                        summary.delivered += 1;
                        summary.resources += bundle.as_ref().map(|b| bundle::entries(b).len()).unwrap_or(0);
                    }
                    Err(f) => {
                        summary.failed += 1;
                        dead.write(&origin, f, d.attempts, bundle.as_ref(), &raw)?;
                    }
                }
                progress.done(&origin, &d);
            }
        }
    }
    dead.flush()?;
    reader.await.map_err(|e| BatchError::Usage(format!("the input reader failed: {e}")))??;
    progress.finish(&summary, started.elapsed());
    Ok(summary)
}
