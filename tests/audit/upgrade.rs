//! A trail written before content version 2 upgrades in place: the migration fills the new
//! search columns of the old entries from their version 1 conventions, exactly as the
//! service reads those entries (so `audit verify`, which checks every column against the
//! hashed content, still passes), and the report's and the views' facts come out the same.
//! Runs on both backends (`OVERDRACHT_TEST_DATABASE=postgres` for PostgreSQL).

use std::path::Path;

use overdracht::audit::{self, chain, Actor, AuditAction, AuditEntry, AuditOutcome, AuditSearch, Content};
use overdracht::store::Store;
use sqlx::Row;

const HOLDER: &str = "87654321";
const OUTSIDER: &str = "44443333";
const SENDER: &str = "00001234";
/// The first migration of content version 2.
const TYPED_CONTENT_MIGRATION: i64 = 17;

/// The database as the previous version left it: every migration before the typed content.
async fn previous_schema(url: &str, dir: &Path) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let backend = if crate::database::on_postgres() { "postgres" } else { "sqlite" };
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    let before = dir.join("migrations-before");
    std::fs::create_dir_all(&before).unwrap();
    for f in std::fs::read_dir(&all).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < TYPED_CONTENT_MIGRATION {
            std::fs::copy(f.path(), before.join(&name)).unwrap();
        }
    }
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::migrate::Migrator::new(before.as_path()).await.unwrap().run(&pool).await.unwrap();
    pool
}

fn actor(ura: &str) -> Option<Actor> {
    Some(Actor { uzi: "900054321".into(), uzi_role: "01.047".into(), ura: ura.into() })
}

/// Appends `entry` as the previous version did: content version 1 (the typed fields are
/// empty, so they are not serialised) and the first search columns only.
async fn append_v1(pool: &sqlx::AnyPool, seq: i64, prev: &str, entry: &AuditEntry) -> (String, String) {
    let id = format!("00000000-0000-4000-8000-{seq:012}");
    let recorded = format!("2026-03-0{seq}T10:00:00.000Z");
    let content = Content { v: 1, seq, id: id.clone(), recorded: recorded.clone(), entry: entry.clone() };
    let text = serde_json::to_string(&content).unwrap();
    assert!(!text.contains("holder_ura") && text.starts_with("{\"v\":1,"), "{text}");
    let hash = chain::entry_hash(seq, prev, &text);
    let types: String = entry.entity_types().iter().map(|t| format!("{t} ")).collect();
    sqlx::query(
        "INSERT INTO audit_entries (seq, id, recorded_at, action, outcome, patient_bsn, user_uzi, user_ura, \
         entity_types, content, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(seq)
    .bind(&id)
    .bind(&recorded)
    .bind(entry.action.code())
    .bind(entry.outcome.code())
    .bind(entry.patient_bsn.clone())
    .bind(entry.user.as_ref().map(|u| u.uzi.clone()))
    .bind(entry.user.as_ref().map(|u| u.ura.clone()))
    .bind(format!(" {types}"))
    .bind(&text)
    .bind(prev)
    .bind(&hash)
    .execute(pool)
    .await
    .unwrap();
    (id, hash)
}

#[tokio::test]
async fn a_version_1_trail_upgrades_and_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::database::database_url(dir.path()).await;
    let pool = previous_schema(&url, dir.path()).await;

    // The conventions of version 1, one entry each.
    let mut glass = AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
    glass.user = actor(OUTSIDER);
    glass.patient_bsn = Some("999911120".into());
    glass.objects = vec!["Patient/p".into(), format!("Organization/ura-{HOLDER}")];
    glass.reason = Some("access.break-glass granted; break-the-glass reason: fell at home".into());
    glass.emergency = true;
    glass.flag_for_review = true;
    let mut read = AuditEntry::new(AuditAction::Read, AuditOutcome::Success);
    read.user = actor(HOLDER);
    read.objects = vec!["Condition/c".into(), format!("Organization/ura-{HOLDER}")];
    read.rule = Some("access.member".into());
    read.team_roles = vec!["co-practitioner".into(), "lead-practitioner".into()];
    let mut refused = AuditEntry::new(AuditAction::HandoverRefused, AuditOutcome::Denied);
    refused.user = actor(SENDER);
    refused.objects = vec![format!("Organization/ura-{HOLDER}")];
    refused.rule = Some("agreement.none-in-force".into());
    let mut again = AuditEntry::new(AuditAction::HandoverReceived, AuditOutcome::Success);
    again.user = actor(SENDER);
    again.objects = vec!["Handover/h1".into(), "Patient/p".into()];
    again.reason = Some("received again; the stored handover h1 is returned".into());
    let mut unreviewed = glass.clone();
    unreviewed.reason = Some("access.break-glass granted; break-the-glass reason: night shift".into());

    let mut prev = chain::GENESIS.to_owned();
    let mut ids = Vec::new();
    for (seq, e) in [(1, &glass), (2, &read), (3, &refused), (4, &again), (5, &unreviewed)] {
        let (id, hash) = append_v1(&pool, seq, &prev, e).await;
        ids.push(id);
        prev = hash;
    }
    let mut review = AuditEntry::new(AuditAction::Review, AuditOutcome::Success);
    review.user = actor(HOLDER);
    review.objects = vec![format!("AuditEvent/{}", ids[0])];
    review.reason = Some("justified".into());
    append_v1(&pool, 6, &prev, &review).await;
    pool.close().await;

    // The service opens it: the typed-content migration runs.
    let store = Store::open(&url, 2).await.unwrap();
    let report = audit::verify(&store, &[]).await.unwrap();
    assert_eq!((report.checked, report.problem.as_ref().map(|p| p.detail.clone())), (6, None));
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT holder_ura, handover_id, replay, reviewed_id, flagged, rule, user_role, team_roles \
         FROM audit_entries ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let col = |i: usize, name: &str| rows[i].try_get::<Option<String>, _>(name).unwrap();
    let num = |i: usize, name: &str| rows[i].try_get::<i64, _>(name).unwrap();
    assert_eq!(col(0, "holder_ura").as_deref(), Some(HOLDER));
    assert_eq!((num(0, "flagged"), num(4, "flagged"), num(1, "flagged")), (1, 1, 0));
    assert_eq!(col(1, "team_roles").as_deref(), Some(" co-practitioner lead-practitioner "));
    assert_eq!((col(1, "rule").as_deref(), col(1, "user_role").as_deref()), (Some("access.member"), Some("01.047")));
    assert_eq!(col(2, "holder_ura").as_deref(), Some(HOLDER));
    assert_eq!((col(3, "handover_id").as_deref(), num(3, "replay"), num(2, "replay")), (Some("h1"), 1, 0));
    assert_eq!(col(5, "reviewed_id"), Some(ids[0].clone()));
    assert_eq!(col(3, "holder_ura"), None);

    // The views read the facts through the columns: the flagged entry that was reviewed is
    // off the list, and the holder's privacy officer sees the accesses to its data.
    let pending = audit::review::pending(&store).await.unwrap();
    assert_eq!(pending.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), [ids[4].clone()]);
    assert_eq!(pending[0].entry.break_glass_reason.as_deref(), Some("night shift"));
    let of_holder = audit::search(
        &store,
        &AuditSearch { of_organisation: Some(HOLDER.into()), oldest_first: true, ..Default::default() },
    )
    .await
    .unwrap();
    let seqs: Vec<i64> = of_holder.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 5, 6]);

    // New entries are version 2 and the chain goes on across the versions.
    let mut next = AuditEntry::new(AuditAction::Read, AuditOutcome::Success);
    next.user = actor(OUTSIDER);
    next.name_holder(HOLDER);
    audit::record_alone(&store, &next).await.unwrap();
    let content: String = sqlx::query("SELECT content FROM audit_entries WHERE seq = 7")
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("content")
        .unwrap();
    assert!(content.starts_with("{\"v\":2,") && content.contains("\"holder_ura\":\"87654321\""), "{content}");
    let report = audit::verify(&store, &[]).await.unwrap();
    assert_eq!((report.checked, report.problem.map(|p| p.detail)), (7, None));
    pool.close().await;
    store.close().await;
}
