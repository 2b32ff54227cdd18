//! Tamper evidence: rows of the audit trail edited, deleted, inserted or reordered directly
//! in the SQLite file are found by `overdracht audit verify` (the real binary), which names
//! the first broken entry and exits 1. An intact trail exits 0.

use std::process::Command;

use overdracht::audit::{self, chain, Actor, AuditAction, AuditEntry, AuditOutcome};
use overdracht::store::Store;
use sqlx::Connection;

const ENTRIES: i64 = 6;

/// A data directory with a trail of six entries (the store closed again).
async fn trail() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db_url(&dir), 2).await.unwrap();
    for i in 0..ENTRIES {
        let mut e =
            AuditEntry::new(if i % 2 == 0 { AuditAction::Read } else { AuditAction::Search }, AuditOutcome::Success);
        e.user = Some(Actor { uzi: format!("90001234{i}"), uzi_role: "01.047".into(), ura: "87654321".into() });
        e.patient_bsn = Some("999911120".into());
        e.objects = vec![format!("Condition/c{i}")];
        e.categories = vec!["problems".into()];
        audit::record_alone(&store, &e).await.unwrap();
    }
    store.close().await;
    dir
}

fn db_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/overdracht.db?mode=rwc", dir.path().display())
}

/// Runs SQL directly on the file, as someone with access to the database could: first
/// dropping the guard triggers (append-only, extend-the-head), which such a person can.
async fn tamper(dir: &tempfile::TempDir, statements: &[&str]) {
    let mut c = unguarded(dir).await;
    for s in statements {
        sqlx::query(sqlx::AssertSqlSafe(*s)).execute(&mut c).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    c.close().await.unwrap();
}

/// A direct connection to the file with the guard triggers dropped.
async fn unguarded(dir: &tempfile::TempDir) -> sqlx::SqliteConnection {
    let mut c = sqlx::SqliteConnection::connect(&db_url(dir)).await.unwrap();
    for s in DROP_GUARDS {
        sqlx::query(*s).execute(&mut c).await.unwrap();
    }
    c
}

const DROP_GUARDS: &[&str] = &[
    "DROP TRIGGER audit_entries_extend_head",
    "DROP TRIGGER audit_entries_move_head",
    "DROP TRIGGER audit_entries_no_update",
    "DROP TRIGGER audit_entries_no_delete",
];

fn overdracht(args: &[&str], dir: &tempfile::TempDir) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_overdracht"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("OVERDRACHT_CONFIG")
        .env_remove("OVERDRACHT_DATA_DIR")
        .env_remove("OVERDRACHT_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn verify(dir: &tempfile::TempDir) -> (i32, String) {
    overdracht(&["audit", "verify"], dir)
}

fn assert_tampered(dir: &tempfile::TempDir, expected: &str) -> String {
    let (code, out) = verify(dir);
    assert_eq!(code, 1, "verify must fail: {out}");
    assert!(out.contains("audit trail TAMPERED"), "{out}");
    assert!(out.contains(expected), "expected {expected:?} in: {out}");
    out
}

#[tokio::test]
async fn intact_trail_verifies_and_head_is_printed() {
    let dir = trail().await;
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("audit trail intact: {ENTRIES} entries, head {ENTRIES}:")), "{out}");
    let (code, head) = overdracht(&["audit", "head"], &dir);
    assert_eq!(code, 0);
    let anchor = head.split_whitespace().next().unwrap().to_owned();
    assert!(anchor.starts_with(&format!("{ENTRIES}:")) && anchor.len() == 2 + 64, "{head}");
    let (code, out) = overdracht(&["audit", "verify", "--anchor", &anchor], &dir);
    assert_eq!(code, 0, "{out}");
    let (code, json) = overdracht(&["audit", "head", "--json"], &dir);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["count"], ENTRIES);
}

#[tokio::test]
async fn edited_content_is_found() {
    let dir = trail().await;
    tamper(&dir, &["UPDATE audit_entries SET content = replace(content, '900012342', '900099999') WHERE seq = 3"])
        .await;
    let out = assert_tampered(&dir, "entry 3 (id ");
    assert!(out.contains(": changed: "), "{out}");
    assert!(out.contains("entries 1 to 2 are intact"), "{out}");
}

#[tokio::test]
async fn edited_search_column_is_found() {
    // Hiding an entry from a patient's access log by changing the searchable copy of the BSN.
    let dir = trail().await;
    tamper(&dir, &["UPDATE audit_entries SET patient_bsn = '123456782' WHERE seq = 2"]).await;
    assert_tampered(&dir, "entry 2 (id ");
    assert_tampered(&dir, "changed: column patient_bsn differs from the hashed content");
}

#[tokio::test]
async fn edited_and_rehashed_entry_is_found_by_the_next_link() {
    // Someone who knows the hash function edits entry 3 and recomputes its hash (and the head).
    let dir = trail().await;
    let store = Store::open(&db_url(&dir), 1).await.unwrap();
    let rows = audit::search(&store, &audit::AuditSearch { oldest_first: true, ..Default::default() }).await.unwrap();
    store.close().await;
    let third = &rows[2];
    let mut c = unguarded(&dir).await;
    let content: String =
        sqlx::query_scalar("SELECT content FROM audit_entries WHERE seq = 3").fetch_one(&mut c).await.unwrap();
    let forged = content.replace("900012342", "900099999");
    let hash = chain::entry_hash(3, &third.prev_hash, &forged);
    sqlx::query("UPDATE audit_entries SET content = $1, hash = $2, user_uzi = '900099999' WHERE seq = 3")
        .bind(&forged)
        .bind(&hash)
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    assert_tampered(&dir, "entry 3: changed: entry 3 was changed or replaced");
}

#[tokio::test]
async fn deleted_entries_are_found() {
    let dir = trail().await;
    tamper(&dir, &["DELETE FROM audit_entries WHERE seq = 4"]).await;
    assert_tampered(&dir, "entry 4: removed: entry 4 is missing; the chain jumps from 3 to 5");

    let dir = trail().await;
    tamper(&dir, &["DELETE FROM audit_entries WHERE seq = 1"]).await;
    assert_tampered(&dir, "entry 1: removed: entry 1 is missing");

    // The last entries, without touching the head row.
    let dir = trail().await;
    tamper(&dir, &["DELETE FROM audit_entries WHERE seq >= 5"]).await;
    assert_tampered(&dir, "entry 5: removed: the chain head records 6 entries but the last entry present is 4");

    // Deleted and the later entries renumbered to hide the gap.
    let dir = trail().await;
    tamper(
        &dir,
        &[
            "DELETE FROM audit_entries WHERE seq = 2",
            "UPDATE audit_entries SET seq = seq - 1 WHERE seq > 2",
            "UPDATE audit_chain_head SET seq = seq - 1",
        ],
    )
    .await;
    assert_tampered(&dir, "removed: this row holds entry 3; entry 2 was removed and the later entries renumbered");
}

#[tokio::test]
async fn truncation_with_a_rewritten_head_is_found_by_the_anchor() {
    let dir = trail().await;
    let (_, head) = overdracht(&["audit", "head"], &dir);
    let anchor = head.split_whitespace().next().unwrap().to_owned();
    tamper(
        &dir,
        &[
            "DELETE FROM audit_entries WHERE seq = 6",
            "UPDATE audit_chain_head SET seq = 5, hash = (SELECT hash FROM audit_entries WHERE seq = 5)",
        ],
    )
    .await;
    // Consistent in itself...
    assert_eq!(verify(&dir).0, 0);
    // ...but not with the head anchored outside.
    let (code, out) = overdracht(&["audit", "verify", "--anchor", &anchor], &dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 6: removed: the anchored entry 6 is no longer in the chain"), "{out}");
}

#[tokio::test]
async fn inserted_entries_are_found() {
    // A copy of entry 2 inserted after it, later entries renumbered.
    let dir = trail().await;
    tamper(
        &dir,
        &[
            "UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 3",
            "UPDATE audit_entries SET seq = seq - 99 WHERE seq >= 100",
            "INSERT INTO audit_entries (seq, id, recorded_at, action, outcome, patient_bsn, user_uzi, user_ura, \
             entity_types, content, prev_hash, hash) SELECT 3, 'forged', recorded_at, action, outcome, patient_bsn, \
             user_uzi, user_ura, entity_types, content, prev_hash, hash FROM audit_entries WHERE seq = 2",
            "UPDATE audit_chain_head SET seq = seq + 1",
        ],
    )
    .await;
    assert_tampered(&dir, "entry 3 (id forged): inserted: this row holds entry 2");

    // A new, well-formed entry appended at the end without updating the head.
    let dir = trail().await;
    tamper(
        &dir,
        &["INSERT INTO audit_entries (seq, id, recorded_at, action, outcome, patient_bsn, user_uzi, user_ura, \
           entity_types, content, prev_hash, hash) SELECT 7, 'forged', recorded_at, action, outcome, patient_bsn, \
           user_uzi, user_ura, entity_types, content, hash, hash FROM audit_entries WHERE seq = 6"],
    )
    .await;
    assert_tampered(&dir, "entry 7 (id forged): ");
}

#[tokio::test]
async fn an_inserted_self_consistent_entry_is_found() {
    // The forger computes a correct hash for the inserted entry and renumbers the rest.
    let dir = trail().await;
    let mut c = unguarded(&dir).await;
    let (content, prev): (String, String) =
        sqlx::query_as("SELECT content, hash FROM audit_entries WHERE seq = 2").fetch_one(&mut c).await.unwrap();
    let forged = content.replace("\"seq\":2", "\"seq\":3");
    let hash = chain::entry_hash(3, &prev, &forged);
    for s in [
        "UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_entries SET seq = seq - 99 WHERE seq >= 100",
    ] {
        sqlx::query(s).execute(&mut c).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO audit_entries (seq, id, recorded_at, action, outcome, patient_bsn, user_uzi, user_ura, \
         entity_types, content, prev_hash, hash) SELECT 3, id || 'x', recorded_at, action, outcome, patient_bsn, \
         user_uzi, user_ura, entity_types, $1, $2, $3 FROM audit_entries WHERE seq = 2",
    )
    .bind(&forged)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    // The forged entry's id column no longer matches its content, but the renumbered next
    // entry is found first... either way entry 3 is named.
    let out = assert_tampered(&dir, "entry 3");
    assert!(out.contains("inserted") || out.contains("changed"), "{out}");
}

#[tokio::test]
async fn reordered_entries_are_found() {
    let dir = trail().await;
    tamper(
        &dir,
        &[
            "UPDATE audit_entries SET seq = 100 WHERE seq = 2",
            "UPDATE audit_entries SET seq = 2 WHERE seq = 5",
            "UPDATE audit_entries SET seq = 5 WHERE seq = 100",
        ],
    )
    .await;
    assert_tampered(&dir, "entry 2 (id ");
    assert_tampered(&dir, "reordered: this entry was written as entry 5 and moved to position 2");

    // Neighbours swapped.
    let dir = trail().await;
    tamper(
        &dir,
        &[
            "UPDATE audit_entries SET seq = 100 WHERE seq = 3",
            "UPDATE audit_entries SET seq = 3 WHERE seq = 4",
            "UPDATE audit_entries SET seq = 4 WHERE seq = 100",
        ],
    )
    .await;
    assert_tampered(&dir, "entry 3 (id ");
    assert_tampered(&dir, "reordered: this row holds entry 4 and the next row entry 3: the two were swapped");
}

#[tokio::test]
async fn verify_refuses_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = verify(&dir);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no database at"), "{out}");
    assert!(!dir.path().join("overdracht.db").exists(), "verify must not create a database");
}

#[tokio::test]
async fn export_writes_ndjson_audit_events_and_is_itself_recorded() {
    let dir = trail().await;
    let out_file = dir.path().join("export.ndjson");
    let (code, out) = overdracht(&["audit", "export", "--out", out_file.to_str().unwrap()], &dir);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len() as i64, ENTRIES);
    assert!(events.iter().all(|e| e["resourceType"] == "AuditEvent"));
    for e in &events {
        let o = overdracht::validate::Validator::embedded().validate(e);
        assert!(!o.has_errors(), "{:?}", o.issues);
    }
    // The export is entry 7; the chain still verifies.
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{} entries", ENTRIES + 1)), "{out}");
    // A range that holds nothing.
    let (code, out) = overdracht(&["audit", "export", "--to", "2000-01-01", "--out", out_file.to_str().unwrap()], &dir);
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "");
    let (code, out) = overdracht(&["audit", "export", "--from", "yesterday"], &dir);
    assert_eq!(code, 2, "{out}");
}

/// The privacy officer's command-line workflow: list what is flagged, review it, and the
/// list is empty; a second review is refused (exit 1).
#[tokio::test]
async fn flagged_entries_are_listed_and_reviewed_on_the_command_line() {
    let dir = trail().await;
    let store = Store::open(&db_url(&dir), 1).await.unwrap();
    let mut glass = AuditEntry::new(AuditAction::BreakGlass, AuditOutcome::Success);
    glass.emergency = true;
    glass.flag_for_review = true;
    glass.break_glass_reason = Some("night shift".into());
    let flagged = audit::record_alone(&store, &glass).await.unwrap();
    store.close().await;
    let (code, out) = overdracht(&["audit", "flagged"], &dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&flagged.id) && out.contains("1 flagged entries to review"), "{out}");
    // The listing is itself in the trail, naming the command.
    let store = Store::open(&db_url(&dir), 1).await.unwrap();
    let rows = audit::search(&store, &audit::AuditSearch::default()).await.unwrap();
    store.close().await;
    let listing = rows.iter().find(|r| r.entry.action == AuditAction::AuditQuery).expect("the listing is recorded");
    assert!(listing.entry.client.as_deref().is_some_and(|c| c.starts_with("overdracht audit flagged")), "{listing:?}");
    let (code, out) =
        overdracht(&["audit", "review", &flagged.id, "--conclusion", "not-justified", "--note", "no emergency"], &dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("review recorded: entry {} not-justified", flagged.id)), "{out}");
    let (code, out) = overdracht(&["audit", "flagged"], &dir);
    assert_eq!(code, 0);
    assert!(out.contains("0 flagged entries to review"), "{out}");
    let (code, out) = overdracht(&["audit", "review", &flagged.id, "--conclusion", "justified"], &dir);
    assert_eq!(code, 1);
    assert!(out.contains("already reviewed"), "{out}");
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
}

/// The typed search columns (content version 2) are checked against the content too.
#[tokio::test]
async fn edited_typed_search_column_is_found() {
    let dir = trail().await;
    tamper(&dir, &["UPDATE audit_entries SET holder_ura = '11112222' WHERE seq = 3"]).await;
    assert_tampered(&dir, "changed: column holder_ura differs from the hashed content");
}
