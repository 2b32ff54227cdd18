//! The audit trail as a library: entries in the action's transaction, a linear hash chain
//! under concurrent writers, and `verify` on an intact chain.

use overdracht::audit::{self, Actor, AuditAction, AuditEntry, AuditOutcome, AuditSearch};
use overdracht::store::Store;

use crate::database;

async fn store(dir: &tempfile::TempDir) -> Store {
    let url = database::database_url(dir.path()).await;
    Store::open(&url, 4).await.expect("open store")
}

fn entry(action: AuditAction) -> AuditEntry {
    let mut e = AuditEntry::new(action, AuditOutcome::Success);
    e.user = Some(Actor { uzi: "900012345".into(), uzi_role: "01.047".into(), ura: "87654321".into() });
    e.patient_bsn = Some("999911120".into());
    e.objects = vec!["Condition/c1".into(), "Patient/p1".into()];
    e
}

#[tokio::test]
async fn entries_chain_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let empty = audit::verify(&s, &[]).await.unwrap();
    assert!(empty.problem.is_none());
    assert_eq!(empty.head.count, 0);
    let a = audit::record_alone(&s, &entry(AuditAction::Read)).await.unwrap();
    let b = audit::record_alone(&s, &entry(AuditAction::Search)).await.unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    let r = audit::verify(&s, &[]).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!(r.checked, 2);
    assert_eq!(r.head.hash, b.hash);
    let found =
        audit::search(&s, &AuditSearch { entity_type: Some("Condition".into()), ..Default::default() }).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].entry, entry(AuditAction::Search));
}

/// The entity-type search matches a resource type exactly, case included, on every backend
/// (SQLite's `LIKE` ignores case, PostgreSQL's does not): a code is case-sensitive, and
/// `Medication` is not `MedicationRequest`.
#[tokio::test]
async fn entity_type_search_is_exact_and_case_sensitive() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    audit::record_alone(&s, &entry(AuditAction::Read)).await.unwrap();
    let mut e = entry(AuditAction::Read);
    e.objects = vec!["MedicationRequest/m1".into(), "Patient/p1".into()];
    audit::record_alone(&s, &e).await.unwrap();
    let found = |t: &str| {
        let s = s.clone();
        let q = AuditSearch { entity_type: Some(t.to_owned()), ..Default::default() };
        async move { audit::search(&s, &q).await.unwrap().len() }
    };
    assert_eq!(found("Condition").await, 1);
    assert_eq!(found("Patient").await, 2);
    assert_eq!(found("MedicationRequest").await, 1);
    assert_eq!(found("Medication").await, 0);
    assert_eq!(found("condition").await, 0, "case matters");
    assert_eq!(found("PATIENT").await, 0, "case matters");
}

#[tokio::test]
async fn rolled_back_action_leaves_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let mut tx = s.begin().await.unwrap();
    audit::record(&mut tx, &entry(AuditAction::HandoverReceived)).await.unwrap();
    drop(tx); // the action failed after its entry was written: both roll back
    assert_eq!(audit::query::count(&s).await.unwrap(), 0);
    assert_eq!(audit::head(&s).await.unwrap().count, 0);
    let mut tx = s.begin().await.unwrap();
    audit::record(&mut tx, &entry(AuditAction::HandoverReceived)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(audit::query::count(&s).await.unwrap(), 1);
    assert!(audit::verify(&s, &[]).await.unwrap().problem.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_the_chain_linear() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let a = if i % 2 == 0 { AuditAction::Read } else { AuditAction::Search };
            audit::record_alone(&s, &entry(a)).await.unwrap().seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<i64>>());
    let r = audit::verify(&s, &[]).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!(r.head.count, 40);
}

/// Two handles on one database (as two processes: `serve` and a CLI command) writing lone
/// entries and entries inside transactions, some of which roll back: every lone writer's
/// cached head goes stale again and again, and the database refuses each stale entry until
/// it is rebuilt on the actual head. The chain ends linear, gap-free and intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lone_and_transactional_writers_of_two_processes_keep_the_chain_linear() {
    let dir = tempfile::tempdir().unwrap();
    let (s1, s2) = (store(&dir).await, store(&dir).await);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let s = if i % 3 == 0 { s2.clone() } else { s1.clone() };
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => {
                    let mut tx = s.begin().await.unwrap();
                    let id = audit::record(&mut tx, &entry(AuditAction::CareTeamChange)).await.unwrap();
                    if i % 8 == 0 {
                        drop(tx); // rolled back: its entry never existed
                        None
                    } else {
                        tx.commit().await.unwrap();
                        Some(id.seq)
                    }
                }
                _ => Some(audit::record_alone(&s, &entry(AuditAction::Read)).await.unwrap().seq),
            }
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort_unstable();
    let n = i64::try_from(seqs.len()).unwrap();
    assert_eq!(seqs, (1..=n).collect::<Vec<i64>>(), "committed entries are numbered 1..=n without gaps");
    let r = audit::verify(&s1, &[]).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!((r.checked, r.head.count), (n, n));
}

/// The database itself keeps the trail append-only and linear: rows cannot be updated or
/// deleted, and an entry that does not extend the head is refused.
#[tokio::test]
async fn the_database_refuses_updates_deletes_and_entries_off_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let url = database::database_url(dir.path()).await;
    let s = Store::open(&url, 4).await.expect("open store");
    audit::record_alone(&s, &entry(AuditAction::Read)).await.unwrap();
    audit::record_alone(&s, &entry(AuditAction::Read)).await.unwrap();
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    for (sql, why) in [
        ("UPDATE audit_entries SET outcome = 'denied' WHERE seq = 1", "append-only"),
        ("DELETE FROM audit_entries WHERE seq = 2", "append-only"),
        (
            "INSERT INTO audit_entries (seq, id, recorded_at, action, outcome, entity_types, content, prev_hash, \
             hash) SELECT 3, 'x', recorded_at, action, outcome, entity_types, content, prev_hash, hash \
             FROM audit_entries WHERE seq = 2",
            "head moved",
        ),
        (
            "INSERT INTO audit_entries (seq, id, recorded_at, action, outcome, entity_types, content, prev_hash, \
             hash) SELECT 2, 'x', recorded_at, action, outcome, entity_types, content, prev_hash, hash \
             FROM audit_entries WHERE seq = 2",
            "head moved",
        ),
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.expect_err(sql);
        assert!(e.to_string().contains(why), "{sql}: {e}");
    }
    let r = audit::verify(&s, &[]).await.unwrap();
    assert!(r.problem.is_none(), "{:?}", r.problem);
    assert_eq!(r.head.count, 2);
}

/// The access rule of the audit views, rule by rule.
#[tokio::test]
async fn view_access_rule() {
    use overdracht::audit::view_facts::{
        decide, RULE_DEFAULT_DENY, RULE_PRIVACY_OFFICER, RULE_SENDER_OWN_ENTRIES, RULE_TREATING_ORGANISATION,
    };
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let officers = vec!["99.999".to_owned()];
    let bsn = Some("999911120");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    // The caller's identifiers, typed as the token gives them.
    let ura_of = |s: &str| overdracht::model::Ura::parse(s).unwrap();
    let uzi_of = |s: &str| overdracht::model::Uzi::parse(s).unwrap();
    let role_of = |s: &str| overdracht::model::UziRoleCode::parse(s).unwrap();
    // No handover of the patient yet: denied, with or without naming the patient.
    let d =
        decide(&s, &ura_of("87654321"), &uzi_of("900054321"), &role_of("01.047"), bsn, &officers, day).await.unwrap();
    assert_eq!((d.permit, d.rule), (false, RULE_DEFAULT_DENY));
    let d =
        decide(&s, &ura_of("87654321"), &uzi_of("900054321"), &role_of("01.047"), None, &officers, day).await.unwrap();
    assert_eq!((d.permit, d.rule), (false, RULE_DEFAULT_DENY));
    // A privacy officer may search the trail of their own organisation.
    let d =
        decide(&s, &ura_of("11112222"), &uzi_of("900054321"), &role_of("99.999"), None, &officers, day).await.unwrap();
    assert_eq!((d.permit, d.rule), (true, RULE_PRIVACY_OFFICER));
    assert_eq!(d.scope, Some(overdracht::policy::audit_view::ViewScope::Organisation("11112222".into())));
    // ...but only when the role is configured.
    let d = decide(&s, &ura_of("11112222"), &uzi_of("900054321"), &role_of("99.999"), None, &[], day).await.unwrap();
    assert!(!d.permit);

    let mut tx = s.begin().await.unwrap();
    tx.insert_handover(&overdracht::store::NewHandover {
        row: overdracht::store::HandoverRow {
            id: "h1".into(),
            created_at: "2026-11-23T10:00:00.000Z".into(),
            status: "accepted".into(),
            sender: "agb-z|01990140".into(),
            receiver: "ura|87654321".into(),
            lead_practitioner: None,
            referral_reason: None,
            care_form: None,
            patient_bsn: Some("999911120".into()),
            patient_resource_id: None,
            source_format: "flat".into(),
            source_sha256: "00".into(),
            source_size: 2,
            resource_count: 0,
            summary: "{}".into(),
            submitted_by_ura: "00001234".into(),
        },
        source_media_type: None,
        output_bundle: "{}".into(),
        submitted_by_uzi: "900012345".into(),
        submitted_by_role: "01.015".into(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Review R4: at the receiver, not for staff outside the patient's team there ...
    let d = decide(&s, &ura_of("87654321"), &uzi_of("900054321"), &role_of("01.047"), bsn, &[], day).await.unwrap();
    assert_eq!((d.permit, d.rule), (false, overdracht::policy::rules::AUDIT_VIEW_NOT_IN_TEAM));
    // ... but for the team's lead (the example team, led by 900054321 at the receiver).
    let team = std::fs::read_to_string("examples/care-teams/frail-elderly-group-care.json")
        .unwrap()
        .replace("11112222", "87654321")
        .replace("900000101", "900054321");
    let mut tx = s.begin().await.unwrap();
    let by = overdracht::store::Writer { uzi: "0", ura: "87654321", at: "2026-11-23T10:00:00.000Z" };
    tx.put_care_team("t1", "999911120", "87654321", &team, &by).await.unwrap();
    tx.commit().await.unwrap();
    // Receiver and submitting organisation: permitted for this patient only; the sender
    // sees its own entries only.
    for (ura, rule) in [("87654321", RULE_TREATING_ORGANISATION), ("00001234", RULE_SENDER_OWN_ENTRIES)] {
        let d = decide(&s, &ura_of(ura), &uzi_of("900054321"), &role_of("01.047"), bsn, &[], day).await.unwrap();
        assert_eq!((d.permit, d.rule), (true, rule), "{ura}");
        let d = decide(&s, &ura_of(ura), &uzi_of("900054321"), &role_of("01.047"), Some("123456782"), &[], day)
            .await
            .unwrap();
        assert!(!d.permit, "{ura}: another patient");
        let d = decide(&s, &ura_of(ura), &uzi_of("900054321"), &role_of("01.047"), None, &[], day).await.unwrap();
        assert!(!d.permit, "{ura}: the whole trail");
    }
    let d = decide(&s, &ura_of("11112222"), &uzi_of("900054321"), &role_of("01.047"), bsn, &[], day).await.unwrap();
    assert_eq!((d.permit, d.rule), (false, RULE_DEFAULT_DENY));
}

/// `verify` on a live trail: entries appended while it walks (a running service) are
/// neither seen nor taken for rows inserted behind the head's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_is_intact_while_entries_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let mut tx = s.begin().await.unwrap();
    for _ in 0..4500 {
        audit::record(&mut tx, &entry(AuditAction::Read)).await.unwrap();
    }
    tx.commit().await.unwrap();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..300 {
                audit::record_alone(&s, &entry(AuditAction::Search)).await.unwrap();
            }
        })
    };
    let mut walks = 0;
    while !writer.is_finished() {
        let r = audit::verify(&s, &[]).await.unwrap();
        assert!(r.problem.is_none(), "a live trail verified as {:?}", r.problem);
        assert_eq!(r.checked, r.head.count);
        walks += 1;
    }
    writer.await.unwrap();
    assert!(walks > 0);
    assert_eq!(audit::verify(&s, &[]).await.unwrap().head.count, 4800);
}
