//! The FHIR client of one target: one attempt ([`FhirClient::attempt`]) and a whole
//! delivery with retries ([`FhirClient::deliver`]).
//!
//! The two are apart because their callers wait differently. The command line sleeps
//! between attempts in the process; the outbox stores the time of the next attempt in the
//! database, so that a restart (or `kill -9`) loses no wait and no delivery. Both use the
//! same rules (see [`super::response`]) and the same backoff.
//!
//! Logs name the target, the Bundle id, statuses and counts, never the Bundle's content
//! nor the server's diagnostics (which may quote it): those go to the dead letter only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use serde_json::Value;

use super::auth::TokenSource;
use super::bundle;
use super::response::{classify, Answer, EntryResult, Mode};
use super::target::Target;
use super::DeliverError;

const FHIR_JSON: &str = "application/fhir+json";

/// A client for one delivery target. Cheap to share (`Arc`); deliveries may run
/// concurrently and share one connection pool and one OAuth2 token.
#[derive(Debug)]
pub struct FhirClient {
    http: reqwest::Client,
    target: Target,
    tokens: TokenSource,
    /// Set once the server refused a transaction: later deliveries go as batches at once.
    batch_only: AtomicBool,
}

/// A delivery in progress: the Bundle, the entries still to send and what went wrong.
#[derive(Debug, Clone)]
pub struct Pending {
    bundle: Value,
    /// `None`: everything, as a transaction. `Some`: these entries, as a batch.
    remaining: Option<Vec<usize>>,
    rejected: Vec<EntryFailure>,
    attempts: u32,
}

impl Pending {
    pub fn new(bundle: Value) -> Pending {
        Pending::resume(bundle, 0)
    }

    /// A delivery that already made `attempts` attempts (the outbox after a restart). It
    /// starts again with the whole Bundle: repeating a `PUT` that succeeded changes nothing.
    pub fn resume(bundle: Value, attempts: u32) -> Pending {
        Pending { bundle, remaining: None, rejected: vec![], attempts }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn bundle(&self) -> &Value {
        &self.bundle
    }

    fn id(&self) -> &str {
        self.bundle["id"].as_str().unwrap_or("-")
    }
}

/// One entry a server refused in a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryFailure {
    /// The entry's `request.url` (`Type/id`).
    pub url: String,
    pub status: u16,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
}

/// Why a delivery failed for good.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// The HTTP status of the last answer, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The server's reason (its OperationOutcome's issues) or the transport error.
    pub reason: String,
    /// The server's OperationOutcome, as it sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    /// Entries refused one by one (batch mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The server refused the Bundle or some of its entries: retrying cannot help.
    Rejected,
    /// Every attempt failed in a way that might have passed (timeouts, 5xx, ...).
    Exhausted,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Delivered {
        mode: Mode,
    },
    /// Try again, after `after` if the server said so (`Retry-After`), else after backoff.
    Retry {
        status: Option<u16>,
        reason: String,
        after: Option<Duration>,
    },
    Failed(Failure),
}

/// The result of a whole delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub result: Result<Mode, Failure>,
    pub attempts: u32,
    pub elapsed: Duration,
}

impl FhirClient {
    pub fn new(target: &Target) -> Result<FhirClient, DeliverError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(target.connect_timeout())
            .timeout(target.request_timeout())
            // A redirected POST may turn into a GET elsewhere: never follow, report instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("overdracht/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = &target.tls {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| DeliverError::Config(format!("cannot read {}: {e}", p.display())))
            };
            match (&tls.client_cert_pem, &tls.client_key_pem) {
                (Some(cert), Some(key)) => {
                    let mut pem = read(cert)?;
                    pem.push(b'\n');
                    pem.extend(read(key)?);
                    let id = reqwest::Identity::from_pem(&pem)
                        .map_err(|e| DeliverError::Config(format!("TLS client certificate: {e}")))?;
                    builder = builder.identity(id);
                }
                (None, None) => {}
                _ => {
                    return Err(DeliverError::Config(
                        "tls: give both client_cert_pem and client_key_pem, or neither".into(),
                    ))
                }
            }
            if let Some(ca) = &tls.ca_pem {
                for c in reqwest::Certificate::from_pem_bundle(&read(ca)?)
                    .map_err(|e| DeliverError::Config(format!("{}: {e}", ca.display())))?
                {
                    builder = builder.add_root_certificate(c);
                }
            }
        }
        let http = builder.build().map_err(|e| DeliverError::Config(format!("HTTP client: {e}")))?;
        Ok(FhirClient {
            http,
            target: target.clone(),
            tokens: TokenSource::new(&target.auth)?,
            batch_only: AtomicBool::new(false),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Delivers a Bundle, retrying as the rules say, sleeping in between.
    pub async fn deliver(&self, bundle: Value) -> Delivery {
        let started = Instant::now();
        let mut p = Pending::new(bundle);
        let result = loop {
            match self.attempt(&mut p).await {
                Step::Delivered { mode } => break Ok(mode),
                Step::Failed(f) => break Err(f),
                Step::Retry { status, reason, after } => match self.give_up(&p, status, &reason) {
                    Some(f) => break Err(f),
                    None => tokio::time::sleep(self.next_delay(p.attempts, after)).await,
                },
            }
        };
        Delivery { result, attempts: p.attempts, elapsed: started.elapsed() }
    }

    /// The failure to record when a retryable attempt was the last one allowed.
    pub fn give_up(&self, p: &Pending, status: Option<u16>, reason: &str) -> Option<Failure> {
        (p.attempts >= self.target.max_attempts).then(|| Failure {
            kind: FailureKind::Exhausted,
            status,
            reason: format!("gave up after {} attempts; the last: {reason}", p.attempts),
            outcome: None,
            entries: p.rejected.clone(),
        })
    }

    /// How long to wait after the `attempt`-th attempt failed: what the server asked for,
    /// else the backoff with jitter.
    pub fn next_delay(&self, attempt: u32, after: Option<Duration>) -> Duration {
        after.unwrap_or_else(|| self.target.backoff.delay(attempt))
    }

    /// One attempt: a request, plus at most one repeat after a token refresh (401) and one
    /// as a batch after a refused transaction.
    pub async fn attempt(&self, p: &mut Pending) -> Step {
        p.attempts += 1;
        let mut refreshed = false;
        let mut failed_token: Option<String> = None;
        loop {
            let as_batch =
                p.remaining.is_some() || self.batch_only.load(Ordering::Relaxed) || p.bundle["type"] == "batch";
            let mode = if as_batch { Mode::Batch } else { Mode::Transaction };
            let indices: Vec<usize> = match &p.remaining {
                Some(r) => r.clone(),
                None => (0..bundle::entries(&p.bundle).len()).collect(),
            };
            let body = match mode {
                Mode::Transaction => serde_json::to_vec(&p.bundle),
                Mode::Batch => serde_json::to_vec(&bundle::to_batch(&p.bundle, &indices)),
            };
            let body = match body {
                Ok(b) => b,
                Err(e) => return Step::Failed(rejected(None, format!("cannot serialise the Bundle: {e}"), None)),
            };
            let token = if refreshed {
                self.tokens.refresh(&self.http, failed_token.as_deref()).await
            } else {
                self.tokens.token(&self.http).await
            };
            let token = match token {
                Ok(t) => t,
                Err(e) => return self.retry(p, None, e.to_string(), None),
            };
            let mut req = self
                .http
                .post(&self.target.base_url)
                .header(CONTENT_TYPE, FHIR_JSON)
                .header(ACCEPT, FHIR_JSON)
                .header("Prefer", "return=minimal")
                .body(body);
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let started = Instant::now();
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return self.retry(p, None, transport_reason(&e), None),
            };
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => return self.retry(p, Some(status), transport_reason(&e), None),
            };
            tracing::debug!(
                target_label = self.target.label(),
                bundle = p.id(),
                mode = mode.as_str(),
                status,
                entries = indices.len(),
                ms = started.elapsed().as_millis() as u64,
                "delivery request answered"
            );
            match classify(mode, indices.len(), status, retry_after.as_deref(), &bytes) {
                Answer::Delivered => return Step::Delivered { mode },
                Answer::Unauthorized if self.tokens.refreshable() && !refreshed => {
                    refreshed = true;
                    failed_token = token;
                }
                Answer::Unauthorized => {
                    let why = if refreshed { " (also with a new token)" } else { "" };
                    return self.retry(p, Some(401), format!("HTTP 401: not authorised{why}"), None);
                }
                Answer::TransactionRefused(_) if mode == Mode::Transaction => {
                    tracing::info!(
                        target_label = self.target.label(),
                        status,
                        "the server refuses transactions; sending batches"
                    );
                    self.batch_only.store(true, Ordering::Relaxed);
                }
                Answer::TransactionRefused(reason) => return Step::Failed(rejected(Some(status), reason, None)),
                Answer::Retry { status, reason, after } => return self.retry(p, status, reason, after),
                Answer::Reject { status, reason, outcome } => {
                    tracing::warn!(
                        target_label = self.target.label(),
                        bundle = p.id(),
                        status,
                        "the server rejected the delivery"
                    );
                    return Step::Failed(rejected(Some(status), reason, outcome));
                }
                Answer::Entries(results) => return self.entries(p, &indices, results),
            }
        }
    }

    fn retry(&self, p: &Pending, status: Option<u16>, reason: String, after: Option<Duration>) -> Step {
        tracing::warn!(
            target_label = self.target.label(),
            bundle = p.id(),
            attempt = p.attempts,
            status,
            after_ms = after.map(|d| d.as_millis() as u64),
            "delivery attempt failed"
        );
        Step::Retry { status, reason, after }
    }

    /// A batch answer: entries that passed are done; the retryable rest is tried again;
    /// refused entries are kept for the dead letter.
    fn entries(&self, p: &mut Pending, indices: &[usize], results: Vec<EntryResult>) -> Step {
        let mut again = vec![];
        let mut last_retry: Option<(u16, String)> = None;
        for (&i, r) in indices.iter().zip(results) {
            match r {
                EntryResult::Ok => {}
                EntryResult::Retry { status, reason } => {
                    again.push(i);
                    last_retry = Some((status, reason));
                }
                EntryResult::Reject { status, reason, outcome } => {
                    p.rejected.push(EntryFailure { url: bundle::entry_url(&p.bundle, i), status, reason, outcome })
                }
            }
        }
        if let Some((status, reason)) = last_retry {
            let n = again.len();
            p.remaining = Some(again);
            return self.retry(
                p,
                Some(status),
                format!("{n} of {} batch entries failed; the last: {reason}", indices.len()),
                None,
            );
        }
        p.remaining = Some(vec![]);
        if p.rejected.is_empty() {
            return Step::Delivered { mode: Mode::Batch };
        }
        let list: Vec<String> = p.rejected.iter().map(|e| format!("{}: {}", e.url, e.reason)).collect();
        tracing::warn!(
            target_label = self.target.label(),
            bundle = p.id(),
            refused = p.rejected.len(),
            "the server refused batch entries"
        );
        Step::Failed(Failure {
            kind: FailureKind::Rejected,
            status: p.rejected.first().map(|e| e.status),
            reason: format!("{} entries refused: {}", p.rejected.len(), list.join("; ")),
            outcome: None,
            entries: p.rejected.clone(),
        })
    }
}

fn rejected(status: Option<u16>, reason: String, outcome: Option<Value>) -> Failure {
    Failure { kind: FailureKind::Rejected, status, reason, outcome, entries: vec![] }
}

/// A transport error in words: what failed and its root cause.
pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    format!("{what}: {root}")
}
