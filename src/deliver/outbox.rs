//! The durable outbox: every accepted handover is delivered, even across restarts and
//! `kill -9`.
//!
//! The outbox row is inserted by [`enqueue`] through the handover's own [`Tx`], so a
//! handover exists if and only if its delivery is queued. A [`Worker`] (started by
//! `overdracht serve`) claims due rows, makes one attempt each with the target's
//! [`FhirClient`], and writes the outcome back. Claiming is itself a committed write
//! (state `in-flight`, a lease, the attempt counted), so a process that dies during a
//! request leaves a row whose lease runs out and which is then claimed again: delivery is
//! at least once, and because the Bundle is `PUT Type/id` with fixed ids, a repeat
//! changes nothing on the server: the effect is exactly once.
//!
//! States: `queued` → `in-flight` → `delivered`, or → `retrying` (with `next_attempt_at`)
//! → `in-flight` → ..., or → `dead-letter` (refused by the server, or out of attempts).
//! Operators move a dead letter back with `overdracht outbox retry` or remove it with
//! `overdracht outbox drop`; both are recorded in `outbox_events`, the delivery history
//! (which `GET /handovers/{id}` shows). A delivery, a dead letter and a drop also write an
//! audit entry (`delivery`, `outbox-drop`) in the same transaction as the state change.
//!
//! Rows of receivers without a configured target stay `queued` (nothing is lost); the
//! worker names them in a warning at start and `outbox list` shows them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, Row};

use super::client::{FhirClient, Pending, Step};
use super::target::{Target, Targets};
use super::DeliverError;
use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::store::{Store, StoreError, Tx};

/// Delivery settings of the service (`[delivery]` in the configuration file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// A delivery targets file (see `examples/delivery-targets.json`).
    pub targets_file: Option<PathBuf>,
    /// Targets given inline, in addition to the file.
    pub targets: Vec<Target>,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How often the worker looks for due deliveries when it has not been woken, in ms.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery stays claimed beyond the target's request timeout, in ms:
    /// when an instance dies during an attempt, another instance (PostgreSQL) claims the
    /// delivery again this long after the attempt's timeout.
    pub lease_grace_ms: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            targets_file: None,
            targets: vec![],
            concurrency: 4,
            poll_interval_ms: 1_000,
            lease_grace_ms: 30_000,
        }
    }
}

impl DeliverySettings {
    /// The inline targets and those of the file.
    pub fn load_targets(&self) -> Result<Targets, DeliverError> {
        for t in &self.targets {
            t.check()?;
        }
        let mut all = Targets { targets: self.targets.clone() };
        if let Some(f) = &self.targets_file {
            all.targets.extend(Targets::load(f)?.targets);
        }
        Ok(all)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Queued,
    InFlight,
    Retrying,
    Delivered,
    DeadLetter,
}

impl State {
    pub const ALL: [State; 5] = [State::Queued, State::InFlight, State::Retrying, State::Delivered, State::DeadLetter];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::InFlight => "in-flight",
            State::Retrying => "retrying",
            State::Delivered => "delivered",
            State::DeadLetter => "dead-letter",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still to be delivered.
    pub fn pending(self) -> bool {
        matches!(self, State::Queued | State::InFlight | State::Retrying)
    }

    /// The states `outbox list` shows: none (no filter) for `all`, else those `named`, else
    /// the deliveries still to be made and the dead letters.
    pub fn selection(named: &[String], all: bool) -> Result<Vec<State>, String> {
        let mut wanted = vec![];
        for s in named {
            wanted.push(
                State::parse(s).ok_or_else(|| {
                    format!("unknown state {s}: queued, in-flight, retrying, delivered or dead-letter")
                })?,
            );
        }
        if all {
            return Ok(vec![]);
        }
        if wanted.is_empty() {
            wanted = State::ALL.into_iter().filter(|s| s.pending() || *s == State::DeadLetter).collect();
        }
        Ok(wanted)
    }
}

/// The operator of a retry or drop as recorded in the delivery history: the one named
/// (`--actor`), else the OS user, else `operator`.
pub fn operator(named: Option<&str>) -> String {
    named.map(str::to_owned).or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into())
}

/// `queued N, in-flight N, …`: the [`counts`] of every state, in order.
pub fn counts_line(counts: &HashMap<State, i64>) -> String {
    let summary: Vec<String> =
        State::ALL.iter().map(|s| format!("{} {}", s.as_str(), counts.get(s).copied().unwrap_or(0))).collect();
    summary.join(", ")
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub handover_id: String,
    pub receiver: String,
    pub state: State,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub delivered_at: Option<String>,
}

impl Entry {
    /// The entry as one line for a terminal (`overdracht outbox list`). The last error is the
    /// receiving server's text: control characters in it are shown escaped
    /// ([`crate::diagnostics::printable`]), not obeyed by the terminal.
    pub fn line(&self) -> String {
        crate::diagnostics::printable(&format!(
            "{}  {:<11} attempts {:<3} next {:<24} {}  {}",
            self.handover_id,
            self.state.as_str(),
            self.attempts,
            self.next_attempt_at.as_deref().unwrap_or("-"),
            self.receiver,
            self.last_error.as_deref().unwrap_or("")
        ))
    }
}

/// One line of a delivery's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at: String,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Timestamps as stored: RFC 3339 in UTC with milliseconds, so that text order is time order.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn now() -> String {
    timestamp(chrono::Utc::now())
}

fn later(d: Duration) -> String {
    timestamp(chrono::Utc::now() + chrono::Duration::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)))
}

/// Queues the delivery of a handover, in the handover's transaction. Queuing an already
/// queued handover (a resubmission) changes nothing. The history line `queued` is written
/// by the database with the row (the trigger of `migrations/*/0019_outbox_queued_event.sql`).
pub async fn enqueue(tx: &mut Tx, handover_id: &str, receiver: &str) -> Result<bool, StoreError> {
    tx.queue_delivery(handover_id, receiver, &now()).await
}

#[allow(clippy::too_many_arguments)]
async fn event(
    conn: &mut crate::store::Conn,
    handover_id: &str,
    at: &str,
    what: &str,
    attempt: Option<i64>,
    status: Option<i64>,
    detail: Option<&str>,
    actor: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox_events (handover_id, at, event, attempt, status, detail, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(handover_id)
    .bind(at)
    .bind(what)
    .bind(attempt)
    .bind(status)
    .bind(detail)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "handover_id, receiver, state, attempts, next_attempt_at, last_status, last_error, \
                       created_at, updated_at, delivered_at";

fn entry(r: &crate::store::DbRow) -> Result<Entry, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(Entry {
        handover_id: r.try_get("handover_id")?,
        receiver: r.try_get("receiver")?,
        state: State::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("outbox state {state}")))?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

/// The outbox rows in `states` (all if empty), oldest first.
pub async fn list(store: &Store, states: &[State]) -> Result<Vec<Entry>, StoreError> {
    let rows = // Safe: built from constants only.
    sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM outbox ORDER BY created_at, handover_id")))
        .fetch_all(store.pool())
        .await?;
    let mut out = vec![];
    for r in &rows {
        let e = entry(r)?;
        if states.is_empty() || states.contains(&e.state) {
            out.push(e);
        }
    }
    Ok(out)
}

/// One handover's delivery and its history.
pub async fn get(store: &Store, handover_id: &str) -> Result<Option<(Entry, Vec<Event>)>, StoreError> {
    let Some(r) = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM outbox WHERE handover_id = $1")))
        .bind(handover_id)
        .fetch_optional(store.pool())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((entry(&r)?, history(store, handover_id).await?)))
}

/// The history of a delivery, oldest first.
pub async fn history(store: &Store, handover_id: &str) -> Result<Vec<Event>, StoreError> {
    let rows = sqlx::query(
        "SELECT at, event, attempt, status, detail, actor FROM outbox_events WHERE handover_id = $1 ORDER BY at",
    )
    .bind(handover_id)
    .fetch_all(store.pool())
    .await?;
    let mut events = vec![];
    for e in &rows {
        events.push(Event {
            at: e.try_get("at")?,
            event: e.try_get("event")?,
            attempt: e.try_get("attempt")?,
            status: e.try_get("status")?,
            detail: e.try_get("detail")?,
            actor: e.try_get("actor")?,
        });
    }
    Ok(events)
}

/// The `delivery` member of `GET /handovers/{id}`: state and history; `dropped` with the
/// history when an operator dropped it; null when there never was a delivery.
pub async fn delivery_json(store: &Store, handover_id: &str) -> Result<Value, StoreError> {
    Ok(match get(store, handover_id).await? {
        Some((e, history)) => {
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            v["history"] = serde_json::to_value(&history).unwrap_or(Value::Null);
            v
        }
        None => {
            let history = history(store, handover_id).await?;
            if history.is_empty() {
                Value::Null
            } else {
                json!({"handoverId": handover_id, "state": "dropped", "history": history})
            }
        }
    })
}

/// Appends the audit entry of a delivery step in its transaction: the handover and its
/// patient (the categories it carries are in the handover's own entry).
async fn audit_delivery(tx: &mut Tx, handover_id: &str, mut e: AuditEntry) -> Result<(), StoreError> {
    e.patient_bsn = sqlx::query_scalar("SELECT patient_bsn FROM handovers WHERE id = $1")
        .bind(handover_id)
        .fetch_optional(tx.conn())
        .await?
        .flatten();
    e.objects.clear();
    e.name_handover(handover_id);
    crate::audit::record(tx, &e).await.map(|_| ()).map_err(|err| match err {
        crate::audit::AuditError::Database(d) => StoreError::Database(d),
        other => StoreError::Corrupt(other.to_string()),
    })
}

/// Puts a dead letter (or a waiting delivery) back in the queue, due now, with a fresh
/// count of attempts. False if there is no such row or it was delivered.
pub async fn retry(store: &Store, handover_id: &str, actor: &str) -> Result<bool, StoreError> {
    let at = now();
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $2, updated_at = $2 \
         WHERE handover_id = $1 AND state IN ('dead-letter', 'retrying', 'queued')",
    )
    .bind(handover_id)
    .bind(&at)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 1 {
        event(tx.conn(), handover_id, &at, "retried-by-operator", None, None, None, Some(actor)).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a delivery that will not be made (e.g. the receiver got the data another way).
/// The row goes; the history stays and records who dropped it and why.
pub async fn drop(store: &Store, handover_id: &str, actor: &str, reason: &str) -> Result<bool, StoreError> {
    let at = now();
    let mut tx = store.begin().await?;
    let done = sqlx::query("DELETE FROM outbox WHERE handover_id = $1 AND state <> 'in-flight'")
        .bind(handover_id)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 1 {
        event(tx.conn(), handover_id, &at, "dropped-by-operator", None, None, Some(reason), Some(actor)).await?;
        let mut e = AuditEntry::new(AuditAction::OutboxDrop, AuditOutcome::Success);
        e.client = Some(format!("overdracht outbox drop (operator {})", actor.chars().take(100).collect::<String>()));
        e.reason = Some(format!("delivery given up by the operator: {}", reason.chars().take(500).collect::<String>()));
        audit_delivery(&mut tx, handover_id, e).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Number of rows per state (for metrics and `outbox list`).
pub async fn counts(store: &Store) -> Result<HashMap<State, i64>, StoreError> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state").fetch_all(store.pool()).await?;
    let mut out = HashMap::new();
    for r in &rows {
        let s: String = r.try_get("state")?;
        if let Some(st) = State::parse(&s) {
            out.insert(st, r.try_get("n")?);
        }
    }
    Ok(out)
}

/// A due delivery, claimed by this worker.
struct Claimed {
    handover_id: String,
    /// The lease this worker took: the outcome is written only while it still holds it.
    lease: String,
    receiver: String,
    attempts: u32,
    bundle: String,
}

/// Counters and gauges of delivery, for `GET /metrics`.
pub trait DeliveryMetrics: Send + Sync {
    /// A delivery finished: `delivered` or `dead-letter`, after `latency` since it was queued.
    fn finished(&self, result: &'static str, latency: Duration);
    /// An attempt failed and will be retried.
    fn retried(&self);
    /// The number of rows per state.
    fn states(&self, counts: &HashMap<State, i64>);
}

/// Metrics that go nowhere (the command line, tests).
pub struct NoMetrics;

impl DeliveryMetrics for NoMetrics {
    fn finished(&self, _: &'static str, _: Duration) {}
    fn retried(&self) {}
    fn states(&self, _: &HashMap<State, i64>) {}
}

fn lock(leases: &Leases) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
    // A panicked delivery task leaves the map as it was: still usable.
    leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Wakes the worker before its next poll: [`wake`] after committing a transaction that
/// queued a delivery, and each finished delivery (its permit frees room for another).
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tells the worker that a delivery was queued (call after the commit): it is attempted at
/// once instead of at the next poll. Spurious wake-ups are harmless.
pub fn wake() {
    WAKE.notify_one();
}

/// The background deliverer.
pub struct Worker {
    store: Store,
    clients: HashMap<String, Arc<FhirClient>>,
    settings: DeliverySettings,
    metrics: Arc<dyn DeliveryMetrics>,
    /// How long deliveries in flight may go on after the shutdown signal.
    shutdown_grace: Duration,
}

/// The leases this worker holds (handover id → lease), so that a stop can hand them back.
type Leases = Arc<std::sync::Mutex<HashMap<String, String>>>;

/// The receiver key of a target: handovers name receivers as `ura|<number>`.
fn receiver_key(ura: &str) -> String {
    if ura.contains('|') {
        ura.to_owned()
    } else {
        format!("ura|{ura}")
    }
}

impl Worker {
    pub fn new(
        store: Store,
        settings: DeliverySettings,
        metrics: Arc<dyn DeliveryMetrics>,
    ) -> Result<Worker, DeliverError> {
        let mut clients = HashMap::new();
        for t in settings.load_targets()?.targets {
            clients.insert(receiver_key(&t.receiver), Arc::new(FhirClient::new(&t)?));
        }
        Ok(Worker { store, clients, settings, metrics, shutdown_grace: Duration::from_secs(30) })
    }

    /// How long deliveries in flight may go on after the shutdown signal (30 s unless set).
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Worker {
        self.shutdown_grace = grace;
        self
    }

    /// Delivers until `shutdown` completes. Then it claims nothing more, gives the
    /// deliveries in flight the shutdown grace to finish, cancels the rest and releases
    /// their leases: they are due again at once, for another instance or the next start
    /// (a process killed without this leaves its leases to run out).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        if self.clients.is_empty() {
            tracing::info!("no delivery targets configured: handovers stay queued in the outbox");
        }
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "outbox: cannot requeue interrupted deliveries");
        }
        self.warn_unconfigured().await;
        let this = Arc::new(self);
        let limit = Arc::new(tokio::sync::Semaphore::new(this.settings.concurrency.max(1)));
        let poll = Duration::from_millis(this.settings.poll_interval_ms.max(10));
        let leases: Leases = Arc::default();
        let mut in_flight = tokio::task::JoinSet::new();
        // The gauges per state count the whole outbox: refreshed once per poll interval, not
        // on every wake (every stored handover wakes the worker).
        let mut counted: Option<Instant> = None;
        loop {
            while in_flight.try_join_next().is_some() {}
            let free = limit.available_permits();
            if free > 0 {
                match this.claim(free).await {
                    Ok(claimed) => {
                        for c in claimed {
                            let (this, limit, leases) = (this.clone(), limit.clone(), leases.clone());
                            let Ok(permit) = limit.acquire_owned().await else { return };
                            lock(&leases).insert(c.handover_id.clone(), c.lease.clone());
                            in_flight.spawn(async move {
                                let _permit = permit;
                                let id = c.handover_id.clone();
                                this.deliver(c).await;
                                lock(&leases).remove(&id);
                                WAKE.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "outbox: cannot claim deliveries"),
                }
            }
            if counted.is_none_or(|at| at.elapsed() >= poll) {
                if let Ok(counts) = counts(&this.store).await {
                    this.metrics.states(&counts);
                }
                counted = Some(Instant::now());
            }
            // Sleep until the next retry is due, the poll interval at most. Rows due already
            // wait for a free permit (a finished delivery wakes us) or for a target (poll).
            // Without targets nothing is ever due.
            let next = if this.clients.is_empty() { None } else { this.next_due().await };
            let nap = match next {
                Some(d) if !d.is_zero() => d.clamp(Duration::from_millis(10), poll),
                _ => poll,
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = WAKE.notified() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
        this.stop(in_flight, &leases).await;
    }

    /// The end of [`Worker::run`]: deliveries in flight get the shutdown grace, then are
    /// cancelled and their leases released.
    async fn stop(&self, mut in_flight: tokio::task::JoinSet<()>, leases: &Leases) {
        if !in_flight.is_empty() {
            tracing::info!(deliveries = in_flight.len(), "outbox: stopping; waiting for the deliveries in flight");
        }
        let finished =
            tokio::time::timeout(self.shutdown_grace, async { while in_flight.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            in_flight.abort_all();
            while in_flight.join_next().await.is_some() {}
        }
        let held: Vec<(String, String)> = lock(leases).drain().collect();
        if held.is_empty() {
            return;
        }
        match self.release(&held).await {
            Ok(n) => tracing::info!(deliveries = n, "outbox: released the deliveries cut off by the stop"),
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot release deliveries at stop; their leases will run out")
            }
        }
    }

    /// Hands back the leases `held` (handover id, lease): each delivery still in flight under
    /// it is due again at once (`released` in its history). Returns how many were released.
    async fn release(&self, held: &[(String, String)]) -> Result<usize, StoreError> {
        let at = now();
        let mut tx = self.store.begin().await?;
        let mut released = 0;
        for (id, lease) in held {
            let row = sqlx::query(
                "UPDATE outbox SET state = 'retrying', next_attempt_at = $3, lease_until = NULL, updated_at = $3 \
                 WHERE handover_id = $1 AND state = 'in-flight' AND lease_until = $2 RETURNING attempts",
            )
            .bind(id)
            .bind(lease)
            .bind(&at)
            .fetch_optional(tx.conn())
            .await?;
            if let Some(r) = row {
                let attempt: i64 = r.try_get("attempts")?;
                let why = Some("the service stopped during the attempt; due again at once");
                event(tx.conn(), id, &at, "released", Some(attempt), None, why, None).await?;
                released += 1;
            }
        }
        tx.commit().await?;
        Ok(released)
    }

    /// Time until the earliest waiting delivery is due (`None`: nothing waits).
    async fn next_due(&self) -> Option<Duration> {
        // One MIN per state: each is answered from the end of the `(state, next_attempt_at)`
        // index; `state IN (…)` would read every waiting row.
        let row = sqlx::query(
            "SELECT MIN(due) AS due FROM (\
             SELECT MIN(next_attempt_at) AS due FROM outbox WHERE state = 'queued' \
             UNION ALL SELECT MIN(next_attempt_at) AS due FROM outbox WHERE state = 'retrying') d",
        )
        .fetch_one(self.store.pool())
        .await
        .ok()?;
        let due: Option<String> = row.try_get("due").ok()?;
        let due = chrono::DateTime::parse_from_rfc3339(&due?).ok()?;
        Some((due.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    /// Deliveries left in flight by a process that stopped (or was killed) during an
    /// attempt are due again at once. Only where one instance owns the database (SQLite):
    /// with several instances (PostgreSQL) a row in flight may be another instance's live
    /// delivery, and a dead instance's rows are claimed again when their lease runs out.
    async fn recover(&self) -> Result<(), StoreError> {
        if !self.store.backend().single_instance() {
            return Ok(());
        }
        let at = now();
        let mut tx = self.store.begin().await?;
        let rows = sqlx::query(
            "UPDATE outbox SET state = 'retrying', next_attempt_at = $1, lease_until = NULL, updated_at = $1 \
             WHERE state = 'in-flight' RETURNING handover_id, attempts",
        )
        .bind(&at)
        .fetch_all(tx.conn())
        .await?;
        for r in &rows {
            let id: String = r.try_get("handover_id")?;
            let attempt: i64 = r.try_get("attempts")?;
            let why = Some("the service stopped during the attempt");
            event(tx.conn(), &id, &at, "interrupted", Some(attempt), None, why, None).await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            tracing::info!(deliveries = rows.len(), "requeued deliveries interrupted by a stop");
        }
        Ok(())
    }

    async fn warn_unconfigured(&self) {
        let Ok(pending) = list(&self.store, &[State::Queued, State::Retrying, State::InFlight]).await else { return };
        let mut missing: Vec<&str> =
            pending.iter().map(|e| e.receiver.as_str()).filter(|r| !self.clients.contains_key(*r)).collect();
        missing.sort_unstable();
        missing.dedup();
        for r in missing {
            tracing::warn!(receiver = r, "deliveries are waiting for a receiver without a delivery target");
        }
    }

    /// Claims up to `n` due rows of configured receivers: marks them in flight with a lease
    /// and counts the attempt, in one committed transaction.
    async fn claim(&self, n: usize) -> Result<Vec<Claimed>, StoreError> {
        if self.clients.is_empty() {
            return Ok(vec![]);
        }
        let at = now();
        let mut tx = self.store.begin().await?;
        // Write first (see Store::begin): this no-op takes SQLite's write lock, so the
        // read below and the updates after it cannot be overtaken by another writer. On
        // PostgreSQL the read locks the rows it claims and skips those another instance is
        // claiming ([`crate::store::Backend::claim_rows`]).
        sqlx::query("UPDATE outbox SET state = state WHERE 1 = 0").execute(tx.conn()).await?;
        let receivers: Vec<&String> = self.clients.keys().collect();
        let placeholders: Vec<String> = (0..receivers.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT handover_id, receiver, attempts, state FROM outbox \
             WHERE ((state IN ('queued', 'retrying') AND next_attempt_at <= $1) \
                OR (state = 'in-flight' AND lease_until <= $1)) AND receiver IN ({}) \
             ORDER BY next_attempt_at LIMIT $2{}",
            placeholders.join(", "),
            self.store.backend().claim_rows()
        );
        // Safe: constants and numbered placeholders only; the receivers are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&at).bind(i64::try_from(n).unwrap_or(i64::MAX));
        for r in receivers {
            q = q.bind(r);
        }
        let rows = q.fetch_all(tx.conn()).await?;
        let mut claimed = vec![];
        for r in &rows {
            if claimed.len() >= n {
                break;
            }
            let id: String = r.try_get("handover_id")?;
            let receiver: String = r.try_get("receiver")?;
            let Some(client) = self.clients.get(&receiver) else { continue };
            let attempts: i64 = r.try_get("attempts")?;
            let was: String = r.try_get("state")?;
            let lease = later(client.target().request_timeout() + Duration::from_millis(self.settings.lease_grace_ms));
            let done = sqlx::query(
                "UPDATE outbox SET state = 'in-flight', attempts = attempts + 1, lease_until = $2, updated_at = $3 \
                 WHERE handover_id = $1 AND state = $4",
            )
            .bind(&id)
            .bind(&lease)
            .bind(&at)
            .bind(&was)
            .execute(tx.conn())
            .await?;
            if done.rows_affected() != 1 {
                continue;
            }
            if was == "in-flight" {
                event(
                    tx.conn(),
                    &id,
                    &at,
                    "lease-expired",
                    Some(attempts),
                    None,
                    Some("the process stopped during the attempt"),
                    None,
                )
                .await?;
            }
            let bundle: String = sqlx::query("SELECT output_bundle FROM handovers WHERE id = $1")
                .bind(&id)
                .fetch_one(tx.conn())
                .await?
                .try_get("output_bundle")?;
            claimed.push(Claimed {
                handover_id: id,
                lease,
                receiver,
                attempts: u32::try_from(attempts).unwrap_or(0),
                bundle,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// One attempt at a claimed delivery; the outcome is written back.
    async fn deliver(&self, c: Claimed) {
        let Some(client) = self.clients.get(&c.receiver) else { return };
        let started = Instant::now();
        let step = match serde_json::from_str::<Value>(&c.bundle) {
            Ok(bundle) => {
                let mut p = Pending::resume(bundle, c.attempts);
                let step = client.attempt(&mut p).await;
                match step {
                    Step::Retry { status, reason, after } => match client.give_up(&p, status, &reason) {
                        Some(f) => Step::Failed(f),
                        None => Step::Retry { status, reason, after: Some(client.next_delay(p.attempts(), after)) },
                    },
                    other => other,
                }
            }
            Err(e) => Step::Failed(super::Failure {
                kind: super::FailureKind::Rejected,
                status: None,
                reason: format!("the stored Bundle is not JSON: {e}"),
                outcome: None,
                entries: vec![],
            }),
        };
        if let Err(e) = self.record(&c, &step).await {
            // The row stays in flight; its lease runs out and the delivery is made again.
            tracing::error!(handover = %c.handover_id, error = %e, "outbox: cannot record a delivery attempt");
            return;
        }
        let attempt = c.attempts + 1;
        match &step {
            Step::Delivered { mode } => {
                tracing::info!(handover = %c.handover_id, attempt, mode = mode.as_str(), ms = started.elapsed().as_millis() as u64, "handover delivered");
            }
            Step::Retry { status, after, .. } => {
                self.metrics.retried();
                tracing::info!(handover = %c.handover_id, attempt, status, retry_in_ms = after.map(|d| d.as_millis() as u64), "delivery will be retried");
            }
            Step::Failed(f) => {
                tracing::warn!(handover = %c.handover_id, attempt, status = f.status, kind = ?f.kind, "delivery dead-lettered");
            }
        }
    }

    async fn record(&self, c: &Claimed, step: &Step) -> Result<(), StoreError> {
        let at = now();
        let attempt = i64::from(c.attempts) + 1;
        // (state, next attempt, last status, last error, history event, history detail)
        let (state, next, status, error, what, detail) = match step {
            Step::Delivered { mode } => (State::Delivered, None, None, None, "delivered", mode.as_str().to_owned()),
            Step::Retry { status, reason, after } => (
                State::Retrying,
                Some(later(after.unwrap_or_default())),
                status.map(i64::from),
                Some(reason.clone()),
                "attempt-failed",
                reason.clone(),
            ),
            Step::Failed(f) => (
                State::DeadLetter,
                None,
                f.status.map(i64::from),
                Some(f.reason.clone()),
                "dead-lettered",
                serde_json::to_string(
                    &json!({"reason": f.reason, "kind": f.kind, "outcome": f.outcome, "entries": f.entries}),
                )
                .unwrap_or_else(|_| f.reason.clone()),
            ),
        };
        let delivered_at = (state == State::Delivered).then(|| at.clone());
        let mut tx = self.store.begin().await?;
        // Only while the claim holds: a lease that ran out (a stalled attempt) may have been
        // claimed again by another worker, whose outcome is the one to keep.
        let done = sqlx::query(
            "UPDATE outbox SET state = $2, next_attempt_at = $3, last_status = $4, last_error = $5, \
             delivered_at = $6, updated_at = $7, lease_until = NULL \
             WHERE handover_id = $1 AND state = 'in-flight' AND lease_until = $8",
        )
        .bind(&c.handover_id)
        .bind(state.as_str())
        .bind(&next)
        .bind(status)
        .bind(&error)
        .bind(&delivered_at)
        .bind(&at)
        .bind(&c.lease)
        .execute(tx.conn())
        .await?;
        if done.rows_affected() != 1 {
            tracing::warn!(handover = %c.handover_id, "outbox: the lease ran out during the attempt; another attempt owns the delivery now");
            return Ok(());
        }
        event(tx.conn(), &c.handover_id, &at, what, Some(attempt), status, Some(&detail), None).await?;
        // The audit trail records where the data went (delivered) or that it did not get
        // there (dead letter); attempts that will be retried are in the history only.
        let audited = match step {
            Step::Delivered { mode } => Some((
                AuditOutcome::Success,
                format!("delivered to the FHIR server of ura|{} ({}), attempt {attempt}", c.receiver, mode.as_str()),
            )),
            Step::Failed(f) => Some((
                AuditOutcome::Failure,
                format!(
                    "not delivered to the FHIR server of ura|{} after {attempt} attempts (dead letter): {}",
                    c.receiver,
                    f.reason.chars().take(300).collect::<String>()
                ),
            )),
            Step::Retry { .. } => None,
        };
        if let Some((outcome, reason)) = audited {
            let mut e = AuditEntry::new(AuditAction::Delivery, outcome);
            e.client = Some("overdracht outbox worker".to_owned());
            e.reason = Some(reason);
            audit_delivery(&mut tx, &c.handover_id, e).await?;
        }
        let created: String = sqlx::query("SELECT created_at FROM outbox WHERE handover_id = $1")
            .bind(&c.handover_id)
            .fetch_one(tx.conn())
            .await?
            .try_get("created_at")?;
        tx.commit().await?;
        let latency = chrono::DateTime::parse_from_rfc3339(&created)
            .ok()
            .and_then(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().ok())
            .unwrap_or_default();
        match step {
            Step::Delivered { .. } => self.metrics.finished("delivered", latency),
            Step::Failed(_) => self.metrics.finished("dead-letter", latency),
            Step::Retry { .. } => {}
        }
        Ok(())
    }
}
