//! Several instances on one PostgreSQL database: what one process on SQLite gets for free
//! must hold across processes. Each "instance" here is a `Store` of its own (its own pool and
//! audit lone writer), as a second `serve` process would have.
//!
//! These tests need a PostgreSQL server (`OVERDRACHT_TEST_POSTGRES_URL`, see
//! `tests/common/database.rs`); they are `#[ignore]`d without one and `.ci/run` runs them
//! with `--ignored postgres_` against a throw-away server (`scripts/with-postgres.sh`).

#[path = "common/database.rs"]
mod database;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use overdracht::audit::{self, Actor, AuditAction, AuditEntry, AuditOutcome};
use overdracht::deliver::outbox::{self, DeliverySettings, NoMetrics, Worker};
use overdracht::deliver::Target;
use overdracht::store::{NewHandover, Store, Writer};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn fresh() -> String {
    database::fresh_postgres_database().await
}

async fn open(url: &str) -> Store {
    Store::open(url, 8).await.expect("open store")
}

fn entry(action: AuditAction) -> AuditEntry {
    let mut e = AuditEntry::new(action, AuditOutcome::Success);
    e.user = Some(Actor { uzi: "900012345".into(), uzi_role: "01.047".into(), ura: "87654321".into() });
    e.patient_bsn = Some("999911120".into());
    e.objects = vec!["Condition/c1".into(), "Patient/p1".into()];
    e
}

/// Instances started at once apply each migration once (sqlx's advisory lock around the
/// migrations), and all of them come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_instances_starting_together_migrate_once() {
    let url = fresh().await;
    let opened = futures_join_all((0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { Store::open(&url, 2).await })
    }))
    .await;
    for s in &opened {
        assert!(s.is_ok(), "{:?}", s.as_ref().err());
    }
    let s = open(&url).await;
    let n = overdracht::store::POSTGRES_MIGRATOR.iter().count();
    let mut c = database_conn(&url).await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut c)
        .await
        .expect("migrations table");
    assert_eq!(applied, i64::try_from(n).unwrap());
    assert_eq!(audit::head(&s).await.unwrap().count, 0, "the chain head row exists once");
}

/// Two instances, eight writers each, lone entries (the fast path with a cached head) and
/// entries in transactions (some rolled back): one linear, gap-free chain that verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_audit_chain_is_linear_across_instances() {
    let url = fresh().await;
    let (a, b) = (open(&url).await, open(&url).await);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..16usize {
        let s = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for i in 0..25usize {
                if (w + i) % 5 == 0 {
                    let mut tx = s.begin().await.unwrap();
                    let id = audit::record(&mut tx, &entry(AuditAction::CareTeamChange)).await.unwrap();
                    if i % 10 == 0 {
                        drop(tx); // rolled back: its entry never existed
                    } else {
                        tx.commit().await.unwrap();
                        committed.push(id.seq);
                    }
                } else {
                    committed.push(audit::record_alone(&s, &entry(AuditAction::Read)).await.unwrap().seq);
                }
            }
            committed
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    seqs.sort_unstable();
    let n = i64::try_from(seqs.len()).unwrap();
    assert_eq!(seqs, (1..=n).collect::<Vec<i64>>(), "committed entries are numbered 1..=n without gaps");
    let r = audit::verify(&b, &[]).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!((r.checked, r.head.count), (n, n));
    eprintln!("{n} entries by 16 writers on 2 instances in {elapsed:?}");
}

/// A change to a care team or consent, or a handover's agreements, through one instance
/// moves the database's access generation that every other instance reads before it uses
/// its cached access facts.
#[tokio::test]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_access_changes_move_the_generation_every_instance_reads() {
    let url = fresh().await;
    let (a, b) = (open(&url).await, open(&url).await);
    let g0 = b.access_generation().await.unwrap().expect("PostgreSQL has a generation");
    let by = Writer { uzi: "900012345", ura: "87654321", at: "2026-12-01T00:00:00.000Z" };
    let mut tx = a.begin().await.unwrap();
    tx.put_care_team("team-1", "999911120", "87654321", "{}", &by).await.unwrap();
    assert_eq!(b.access_generation().await.unwrap(), Some(g0), "not before the commit");
    tx.commit().await.unwrap();
    let g1 = b.access_generation().await.unwrap().unwrap();
    assert!(g1 > g0);
    let mut tx = a.begin().await.unwrap();
    tx.put_consent("consent-1", "999911120", "{}", &by).await.unwrap();
    tx.commit().await.unwrap();
    let g2 = b.access_generation().await.unwrap().unwrap();
    assert!(g2 > g1);
    let mut tx = a.begin().await.unwrap();
    tx.insert_handover(&handover("h-1")).await.unwrap();
    tx.insert_handover_agreement("h-1", "agreement", "1").await.unwrap();
    tx.commit().await.unwrap();
    assert!(b.access_generation().await.unwrap().unwrap() > g2);
    // A rolled-back change moves nothing.
    let g3 = b.access_generation().await.unwrap();
    let mut tx = a.begin().await.unwrap();
    tx.put_care_team("team-1", "999911120", "87654321", "{}", &by).await.unwrap();
    drop(tx);
    assert_eq!(b.access_generation().await.unwrap(), g3);
}

fn handover(id: &str) -> NewHandover {
    NewHandover {
        row: overdracht::store::HandoverRow {
            id: id.to_owned(),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            status: "accepted".into(),
            sender: "agb|01234567".into(),
            receiver: "ura|87654321".into(),
            lead_practitioner: None,
            referral_reason: None,
            care_form: None,
            patient_bsn: Some("999911120".into()),
            patient_resource_id: None,
            source_format: "flat".into(),
            source_sha256: "00".into(),
            source_size: 0,
            resource_count: 0,
            summary: "{}".into(),
            submitted_by_ura: "00001234".into(),
        },
        source_media_type: None,
        output_bundle: r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#.into(),
        submitted_by_uzi: "900012345".into(),
        submitted_by_role: "01.015".into(),
    }
}

async fn queue(store: &Store, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("handover-{i:03}");
        let mut tx = store.begin().await.unwrap();
        tx.insert_handover(&handover(&id)).await.unwrap();
        outbox::enqueue(&mut tx, &id, "ura|87654321").await.unwrap();
        tx.commit().await.unwrap();
        ids.push(id);
    }
    ids
}

fn settings(base: &str, request_timeout_ms: u64, lease_grace_ms: u64) -> DeliverySettings {
    let mut t = Target::default_for(base);
    t.receiver = "87654321".into();
    t.request_timeout_ms = request_timeout_ms;
    t.connect_timeout_ms = 500;
    t.max_attempts = 20;
    t.backoff = overdracht::deliver::Backoff { initial_ms: 20, max_ms: 100, multiplier: 2.0 };
    DeliverySettings { targets: vec![t], poll_interval_ms: 50, lease_grace_ms, ..DeliverySettings::default() }
}

/// Two instances' workers on one outbox: every delivery is made once (a row one worker
/// claims is skipped or left by the other), and nothing is left pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_two_workers_deliver_each_handover_once() {
    let url = fresh().await;
    let (a, b) = (open(&url).await, open(&url).await);
    let server = MockServer::start().await;
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(move |_: &wiremock::Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_delay(Duration::from_millis(30)).set_body_raw(
                r#"{"resourceType":"Bundle","type":"transaction-response","entry":[]}"#,
                "application/fhir+json",
            )
        })
        .mount(&server)
        .await;
    let ids = queue(&a, 40).await;
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut workers = Vec::new();
    for s in [a.clone(), b.clone()] {
        let w = Worker::new(s, settings(&format!("{}/fhir", server.uri()), 5_000, 30_000), Arc::new(NoMetrics))
            .expect("worker");
        let mut stop = stop_tx.subscribe();
        workers.push(tokio::spawn(w.run(async move {
            let _ = stop.recv().await;
        })));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = outbox::counts(&a).await.unwrap();
        if counts.get(&outbox::State::Delivered).copied() == Some(40) {
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    for w in workers {
        let _ = w.await;
    }
    assert_eq!(requests.load(Ordering::SeqCst), ids.len(), "each handover delivered once");
    for id in &ids {
        let (_, history) = outbox::get(&a, id).await.unwrap().expect("row");
        let attempts = history.iter().filter(|e| e.event == "delivered").count();
        assert_eq!(attempts, 1, "{id}: {history:?}");
    }
    let r = audit::verify(&a, &[]).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!(r.head.count, 40, "one delivery entry per handover");
}

/// An instance that dies during an attempt leaves its claim; another instance claims the
/// delivery again when the lease runs out, and delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_an_expired_lease_is_taken_over_by_another_instance() {
    let url = fresh().await;
    let (a, b) = (open(&url).await, open(&url).await);
    // The first attempt stalls (the instance is "killed" during it); later ones succeed.
    let stalled = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&stalled)
        .await;
    let ok = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"resourceType":"Bundle","type":"transaction-response","entry":[]}"#,
            "application/fhir+json",
        ))
        .expect(1)
        .mount(&ok)
        .await;
    let ids = queue(&a, 1).await;
    // The dying instance runs on a runtime of its own, dropped at once when it is "killed":
    // its delivery task and connections end mid-attempt, as with kill -9.
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let (url2, stalled_base) = (url.clone(), format!("{}/fhir", stalled.uri()));
    let dying = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.spawn(async move {
            let store = Store::open(&url2, 2).await.expect("open");
            let w = Worker::new(store, settings(&stalled_base, 1_000, 500), Arc::new(NoMetrics)).expect("worker");
            w.run(std::future::pending()).await;
        });
        let _ = kill_rx.recv();
        rt.shutdown_background();
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox::counts(&a).await.unwrap().get(&outbox::State::InFlight).copied() != Some(1) {
        assert!(Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_tx.send(()).unwrap();
    dying.join().unwrap();
    let survivor = Worker::new(b.clone(), settings(&format!("{}/fhir", ok.uri()), 1_000, 500), Arc::new(NoMetrics))
        .expect("worker");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let survivor = tokio::spawn(survivor.run(async move {
        let _ = stop_rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (e, history) = outbox::get(&b, &ids[0]).await.unwrap().expect("row");
        if e.state == outbox::State::Delivered {
            assert!(history.iter().any(|h| h.event == "lease-expired"), "{history:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not taken over: {history:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    let _ = survivor.await;
}

/// Instances starting together with the same agreements record each agreement change once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: OVERDRACHT_TEST_POSTGRES_URL"]
async fn postgres_agreement_changes_are_recorded_once_by_instances_starting_together() {
    let url = fresh().await;
    let agreements = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agreements");
    let loaded = std::fs::read_dir(&agreements)
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))
        .count();
    // Migrated before, so that the instances do not queue for the migrations' lock and reach
    // the agreements at the same time.
    open(&url).await.close().await;
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut starts = Vec::new();
    for d in &dirs {
        let mut s = overdracht::config::Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: d.path().to_path_buf(),
            database_url: Some(url.clone()),
            ..overdracht::config::Settings::default()
        };
        s.policy.agreements_dir = Some(agreements.clone());
        s.auth.insecure_trust_demo_key = true;
        starts.push(tokio::spawn(async move { overdracht::api::Application::build(&s).await.map(|a| a.store()) }));
    }
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("instance starts"));
    }
    let q = audit::AuditSearch { actions: vec![AuditAction::AgreementChange], ..Default::default() };
    let changes = audit::search(&stores[0], &q).await.unwrap();
    assert_eq!(changes.len(), loaded, "one entry per agreement, not one per instance");
    assert!(audit::verify(&stores[2], &[]).await.unwrap().problem.is_none());
}

async fn database_conn(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.expect("connect")
}

async fn futures_join_all<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.expect("task"));
    }
    out
}
