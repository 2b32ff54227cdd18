//! `overdracht deliver`: many Bundles from files and NDJSON streams to one target.
//!
//! Input is read by [`crate::batch::read_records`] (one Bundle per file, or one per line
//! of NDJSON: the output of `overdracht convert`) on a blocking thread, and up to `jobs`
//! deliveries run at once. Nothing is lost: every Bundle that is not delivered, or cannot
//! be read as one, goes to the dead-letter file with its reason.

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

impl PushSummary {
    /// The closing line of `deliver`.
    pub fn line(&self, elapsed: std::time::Duration) -> String {
        format!(
            "delivered {}, not delivered {}, resources {}, retries {}, time {:.2} s",
            self.delivered,
            self.failed,
            self.resources,
            self.retries,
            elapsed.as_secs_f64()
        )
    }
}

/// Told about each Bundle as it is done, and once at the end.
pub trait PushProgress {
    fn done(&mut self, origin: &Origin, delivery: &Delivery);
    fn finish(&mut self, summary: &PushSummary, elapsed: Duration);
}

/// The dead-letter file of `deliver`: each Bundle not delivered (or not readable as one),
/// byte for byte, with the reason, the failure and the number of attempts; a
/// [`batch::Kept`] file like the rejects of `convert`, so that both read alike.
pub struct DeadLetters(batch::Kept);

impl DeadLetters {
    pub fn new(path: PathBuf) -> DeadLetters {
        DeadLetters(batch::Kept::new(path))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn used(&self) -> bool {
        self.0.used()
    }

    pub fn write(
        &mut self,
        origin: &Origin,
        failure: &Failure,
        attempts: u32,
        record: &[u8],
    ) -> Result<(), BatchError> {
        let mut details = serde_json::Map::new();
        details.insert("failure".into(), json!(failure));
        details.insert("attempts".into(), json!(attempts));
        self.0.keep(origin, record, &failure.reason, details)
    }

    pub fn flush(&mut self) -> Result<(), BatchError> {
        self.0.flush()
    }
}

/// A Bundle that would write an id already written for another patient in this run is not
/// sent: it becomes a dead letter with the reason (see `fhir::ids::Bindings`).
fn guard_identity(bindings: &mut crate::fhir::ids::Bindings, v: Value) -> Result<Value, String> {
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
            Err(reason)
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
    let mut running: JoinSet<(Origin, Vec<u8>, usize, Delivery)> = JoinSet::new();
    let mut input_done = false;
    while !input_done || !running.is_empty() {
        tokio::select! {
            r = rx.recv(), if !input_done && running.len() < jobs => match r {
                None => input_done = true,
                Some(record) => {
                    let client = client.clone();
                    let parsed: Result<Value, String> = serde_json::from_slice(crate::source::without_bom(&record.bytes))
                        .map_err(|e| format!("not JSON: {e}"))
                        .and_then(|v| bundle::check(&v).map(|()| v))
                        .and_then(|v| guard_identity(&mut bindings, v));
                    running.spawn(async move {
                        match parsed {
                            Ok(v) => {
                                let entries = bundle::entries(&v).len();
                                let d = client.deliver(v).await;
                                (record.origin, record.bytes, entries, d)
                            }
                            Err(reason) => {
                                let failure = Failure { kind: FailureKind::Rejected, status: None, reason, outcome: None, entries: vec![] };
                                let d = Delivery { result: Err(failure), attempts: 0, elapsed: Duration::ZERO };
                                (record.origin, record.bytes, 0, d)
                            }
                        }
                    });
                }
            },
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (origin, raw, entries, d) = joined.map_err(|e| BatchError::Usage(format!("a delivery task failed: {e}")))?;
                summary.retries += u64::from(d.attempts.saturating_sub(1));
                match &d.result {
                    Ok(_) => {
                        summary.delivered += 1;
                        summary.resources += entries;
                    }
                    Err(f) => {
                        summary.failed += 1;
                        dead.write(&origin, f, d.attempts, &raw)?;
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
