//! Group commit: the write transactions of concurrent callers share one database
//! transaction.
//!
//! Transactions that write take the database's write lock (SQLite: the file's; PostgreSQL: the
//! audit chain head's row) and so run one after another anyway. Each one alone pays its
//! BEGIN, its lock of the audit chain head and its COMMIT (a WAL write of every page it
//! touched, the shared pages of the tables' indexes and of the chain head included). Here one
//! writer task per store takes the callers' work in arrival order: whatever arrived while the
//! previous transaction ran is done in the next one, one after the other, and committed
//! together. Durability is that of any transaction (the same settings); a caller hears back
//! only after the commit that holds its work.
//!
//! A work that fails, or asks not to be committed (a refusal found inside the transaction),
//! must not fail the others: the shared transaction is then rolled back and every work of it
//! is done again alone, in a transaction of its own, as without grouping. So a work runs on a
//! transaction that may be rolled back and must be repeatable: it keeps its result where its
//! caller reads it ([`Group::run`]) and overwrites it when it runs again.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{Store, StoreError, Tx};

/// Works done in one transaction at most.
const MAX_BATCH: usize = 64;

/// A work on a transaction: `true` when its writes may be committed; `false` when its
/// transaction must be rolled back (it found a refusal, or a statement failed).
pub type Work = Box<dyn for<'t> FnMut(&'t mut Tx) -> Pin<Box<dyn Future<Output = bool> + Send + 't>> + Send>;

struct Job {
    work: Work,
    done: oneshot::Sender<Result<(), StoreError>>,
    /// The caller's span: the statements of its work are logged under its request.
    span: tracing::Span,
}

impl Job {
    /// Tells the caller how its transaction ended, after dropping the work: what the work
    /// shares with its caller is the caller's alone again when it hears back.
    fn answer(self, r: Result<(), StoreError>) {
        let Job { work, done, .. } = self;
        drop(work);
        let _ = done.send(r);
    }
}

/// The writer of one store, started at its first use.
#[derive(Default)]
pub(crate) struct Group {
    writer: OnceLock<mpsc::UnboundedSender<Job>>,
    /// Set by each commit of the writer, taken by the checkpointer (see
    /// `store::spawn_checkpointer`): it runs when something was written.
    pub(crate) committed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Group")
    }
}

impl Store {
    /// Runs `work` in a write transaction, shared with the works of other callers that wait
    /// meanwhile (see the module docs), and returns after its transaction ended: committed
    /// if the work said `true` the last time it ran, rolled back if `false`. An error: the
    /// database failed around the work (begin or commit); the work's writes are not kept.
    pub async fn grouped(&self, work: Work) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let job = Job { work, done, span: tracing::Span::current() };
        let writer = self.group.writer.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(self.clone(), rx));
            tx
        });
        // No answer: the writer is gone (its runtime stopped) or a work of the batch panicked.
        writer.send(job).map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?;
        wait.await.map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?
    }
}

/// The writer task: one transaction per batch of waiting works. Each batch runs in a task of
/// its own, so that a work that panics fails its batch (whose callers hear of it), not the
/// writer.
async fn writer(store: Store, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let _ = tokio::spawn(run_batch(store.clone(), batch)).await;
    }
}

/// One batch: together if it has several works and they all succeed, else each alone. Its
/// size and time are logged at debug level (`overdracht::store::group=debug`), for finding
/// out whether the writer is what limits the handover rate (they name no handover).
async fn run_batch(store: Store, mut batch: Vec<Job>) {
    let (works, started) = (batch.len(), std::time::Instant::now());
    if works > 1 && together(&store, &mut batch).await {
        for j in batch {
            j.answer(Ok(()));
        }
        tracing::debug!(works, together = true, micros = started.elapsed().as_micros() as u64, "write batch");
        return;
    }
    for mut j in batch {
        let r = alone(&store, &mut j).await;
        j.answer(r);
    }
    tracing::debug!(works, together = false, micros = started.elapsed().as_micros() as u64, "write batch");
}

/// All works of the batch in one transaction; false (rolled back) unless every work may be
/// committed and the commit succeeded.
async fn together(store: &Store, batch: &mut [Job]) -> bool {
    let span = batch[0].span.clone();
    let Ok(mut tx) = store.begin_grouped().instrument(span.clone()).await else { return false };
    for j in batch.iter_mut() {
        if !(j.work)(&mut tx).instrument(j.span.clone()).await {
            return false;
        }
    }
    let committed = tx.commit().instrument(span).await.is_ok();
    if committed {
        store.group.committed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    committed
}

/// One work in a transaction of its own.
async fn alone(store: &Store, j: &mut Job) -> Result<(), StoreError> {
    let mut tx = store.begin_grouped().instrument(j.span.clone()).await?;
    if (j.work)(&mut tx).instrument(j.span.clone()).await {
        tx.commit().instrument(j.span.clone()).await?;
        store.group.committed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::audit::{AuditAction, AuditEntry, AuditOutcome};

    /// Runs the work of [`work`] had, and how many of them found an audit entry of an
    /// earlier work in their transaction.
    static AFTER_ANOTHER: AtomicUsize = AtomicUsize::new(0);

    /// A work that appends an audit entry with `reason` and asks for its commit (`keep`),
    /// counting its runs.
    fn work(reason: String, keep: bool, runs: Arc<AtomicUsize>, pause: std::time::Duration) -> Work {
        Box::new(move |tx| {
            let (reason, runs) = (reason.clone(), runs.clone());
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                if tx.audit_head().is_some() && reason == "counted" {
                    AFTER_ANOTHER.fetch_add(1, Ordering::SeqCst);
                }
                let mut e = AuditEntry::new(AuditAction::Conversion, AuditOutcome::Success);
                e.reason = Some(reason);
                let ok = crate::audit::record(tx, &e).await.is_ok();
                tokio::time::sleep(pause).await;
                ok && keep
            })
        })
    }

    #[tokio::test]
    async fn waiting_works_share_a_transaction_and_one_refusal_fails_none_of_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}/g.db?mode=rwc", dir.path().display()), 2).await.expect("store");
        // The first work holds the writer while the others queue: they form the next batch.
        let first = Arc::new(AtomicUsize::new(0));
        let slow = tokio::spawn({
            let (store, runs) = (store.clone(), first.clone());
            async move { store.grouped(work("first".into(), true, runs, std::time::Duration::from_millis(300))).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut tasks = vec![];
        let mut runs = vec![];
        for i in 0..5 {
            let n = Arc::new(AtomicUsize::new(0));
            runs.push(n.clone());
            let store = store.clone();
            // The third asks for a rollback.
            let keep = i != 2;
            tasks.push(tokio::spawn(async move {
                store.grouped(work(format!("work {i}"), keep, n, std::time::Duration::ZERO)).await
            }));
        }
        slow.await.expect("join").expect("first");
        for t in tasks {
            t.await.expect("join").expect("grouped");
        }
        assert_eq!(first.load(Ordering::SeqCst), 1);
        // The shared transaction ran up to the refusal and was rolled back; then each work
        // ran alone (those after the refusal for the first time).
        let runs: Vec<usize> = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, vec![2, 2, 2, 1, 1], "together up to the refusal, then each alone");
        let report = crate::audit::verify(&store, &[]).await.expect("verify");
        assert!(report.problem.is_none(), "{:?}", report.problem);
        assert_eq!(report.checked, 5, "the first and the four kept");
        let all = crate::audit::search(&store, &Default::default()).await.expect("search");
        let reasons: Vec<String> = all.iter().filter_map(|e| e.entry.reason.clone()).collect();
        assert!(!reasons.contains(&"work 2".to_owned()), "{reasons:?}");
        assert!(reasons.contains(&"work 4".to_owned()), "{reasons:?}");
    }

    #[tokio::test]
    async fn a_work_that_panics_fails_its_caller_and_not_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}/g.db?mode=rwc", dir.path().display()), 2).await.expect("store");
        let panics: Work = Box::new(|_tx| Box::pin(async { panic!("a defect in a work") }));
        assert!(store.grouped(panics).await.is_err());
        let runs = Arc::new(AtomicUsize::new(0));
        store.grouped(work("after".into(), true, runs.clone(), std::time::Duration::ZERO)).await.expect("grouped");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(crate::audit::verify(&store, &[]).await.expect("verify").checked, 1);
    }

    /// A caller may take back what its work shared with it as soon as it hears back (the
    /// handover takes its write out of an `Arc`): the work must be dropped by then, also
    /// when the writer runs on another thread. Failed first: the answer was sent before the
    /// job was dropped (500 "the write is still shared" under load, a few in 1,250).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_hears_back_after_its_work_is_dropped() {
        struct SlowDrop {
            _shared: Arc<()>,
        }
        impl Drop for SlowDrop {
            fn drop(&mut self) {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}/g.db?mode=rwc", dir.path().display()), 2).await.expect("store");
        for together in [false, true] {
            let shared = Arc::new(());
            let held = SlowDrop { _shared: shared.clone() };
            let work: Work = Box::new(move |_tx| {
                let _ = &held;
                Box::pin(async { true })
            });
            if together {
                // Held up behind a slow work, it is batched with another one.
                let slow = tokio::spawn({
                    let (store, runs) = (store.clone(), Arc::new(AtomicUsize::new(0)));
                    async move { store.grouped(work_pausing(runs)).await }
                });
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let other = tokio::spawn({
                    let store = store.clone();
                    async move { store.grouped(Box::new(|_tx| Box::pin(async { true }))).await }
                });
                store.grouped(work).await.expect("grouped");
                slow.await.expect("join").expect("slow");
                other.await.expect("join").expect("other");
            } else {
                store.grouped(work).await.expect("grouped");
            }
            assert_eq!(Arc::strong_count(&shared), 1, "the work was dropped before its caller heard back");
        }
    }

    fn work_pausing(runs: Arc<AtomicUsize>) -> Work {
        work("first".into(), true, runs, std::time::Duration::from_millis(300))
    }

    #[tokio::test]
    async fn works_that_all_succeed_are_committed_together_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}/g.db?mode=rwc", dir.path().display()), 2).await.expect("store");
        let slow = tokio::spawn({
            let store = store.clone();
            let runs = Arc::new(AtomicUsize::new(0));
            async move { store.grouped(work("first".into(), true, runs, std::time::Duration::from_millis(300))).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|i: usize| {
                let (store, runs) = (store.clone(), runs.clone());
                tokio::spawn(async move {
                    let _ = i;
                    store.grouped(work("counted".to_owned(), true, runs, std::time::Duration::ZERO)).await
                })
            })
            .collect();
        slow.await.expect("join").expect("first");
        for t in tasks {
            t.await.expect("join").expect("grouped");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 8, "each ran once");
        // One transaction for the eight: all but the first found the chain head locked and
        // moved by an earlier work of the same transaction.
        assert_eq!(AFTER_ANOTHER.load(Ordering::SeqCst), 7);
        let report = crate::audit::verify(&store, &[]).await.expect("verify");
        assert!(report.problem.is_none(), "{:?}", report.problem);
        assert_eq!(report.checked, 9);
    }
}
