//! `receive` without HTTP: a real store in a temporary directory, agreements built here.

use std::collections::BTreeMap;

use super::*;
use crate::audit::{AuditAction, AuditOutcome};
use crate::model::DataCategory;
use crate::policy::parties::SenderIdentities;

const SENDER_URA: &str = "00001234";
const RECEIVER_URA: &str = "87654321";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    agreements: Vec<Agreement>,
    senders: SenderIdentities,
}

impl Fixture {
    async fn new(categories: &[DataCategory]) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/overdracht.db?mode=rwc", dir.path().display());
        let store = Store::open(&url, 2).await.expect("store");
        let agreements = if categories.is_empty() {
            Vec::new()
        } else {
            let codes: Vec<&str> = categories.iter().map(|c| c.code()).collect();
            let a = json!({
                "format": "overdracht-agreement/1", "id": "unit", "version": "1", "title": "unit test",
                "sender": {"name": "sender", "kind": "gp-practice", "ura": SENDER_URA},
                "receiver": {"name": "receiver", "kind": "gzsp-provider", "ura": RECEIVER_URA},
                "categories": codes, "valid": {"start": "2000-01-01"},
                "legal_basis": "treatment-relationship", "purpose": "tests", "retention": "P20Y"
            });
            vec![Agreement::from_json(&a.to_string(), "unit.json").expect("agreement")]
        };
        let senders = SenderIdentities::parse(&BTreeMap::new()).expect("no AGB codes");
        Fixture { _dir: dir, store, agreements, senders }
    }

    fn ctx(&self) -> Context<'_> {
        Context { store: &self.store, agreements: &self.agreements, senders: &self.senders, max_issues: 100 }
    }

    async fn count(&self, table: &'static str) -> i64 {
        use sqlx::Row;
        let sql = match table {
            "handovers" => "SELECT COUNT(*) AS n FROM handovers",
            "audit_entries" => "SELECT COUNT(*) AS n FROM audit_entries",
            "outbox" => "SELECT COUNT(*) AS n FROM outbox",
            "facade_resources" => "SELECT COUNT(*) AS n FROM facade_resources",
            "handover_agreements" => "SELECT COUNT(*) AS n FROM handover_agreements",
            other => panic!("no count for {other}"),
        };
        let r = sqlx::query(sql).fetch_one(self.store.pool()).await.expect("count");
        r.try_get("n").expect("n")
    }
}

fn submission(body: &[u8]) -> Submission {
    Submission {
        body: Bytes::copy_from_slice(body),
        format: None,
        media_type: Some("application/fhir+json".to_owned()),
        requested_format: None,
        receiver_ura: crate::model::Ura::parse(RECEIVER_URA).expect("URA"),
        sender: None,
        lead_practitioner: None,
        care_form: None,
        referral_reason: None,
        idempotency_key: None,
        submitter: Submitter {
            uzi: crate::model::Uzi::parse("900012345").expect("UZI"),
            role: crate::model::UziRoleCode::parse("01.015").expect("role"),
            ura: crate::model::Ura::parse(SENDER_URA).expect("URA"),
        },
    }
}

fn example() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/records/gp-frail-elderly.stu3.json");
    std::fs::read(path).expect("example record")
}

fn entry() -> AuditEntry {
    AuditEntry::new(AuditAction::HandoverReceived, AuditOutcome::Success)
}

#[tokio::test]
async fn a_new_handover_is_stored_with_its_audit_entry_and_outbox_row() {
    let f = Fixture::new(DataCategory::ALL).await;
    let mut e = entry();
    let r = receive(f.ctx(), &submission(&example()), &mut e, ()).await.expect("received");
    assert!(r.created && r.stored);
    assert!(r.resource_count > 0);
    let summary: Value = serde_json::from_str(&r.summary).expect("summary is JSON");
    assert_eq!(summary["id"], r.id.as_str());
    assert_eq!(summary["receiver"], format!("ura|{RECEIVER_URA}"));
    assert_eq!(summary["sender"], format!("ura|{SENDER_URA}"));
    assert_eq!(summary["transfer"]["agreements"][0], "unit@1");
    assert_eq!(e.rule.as_deref(), Some("transfer.permitted"));
    assert_eq!(e.objects[0], format!("Handover/{}", r.id));
    assert_eq!(e.objects.len() as i64, r.resource_count + 1);
    assert!(e.patient_bsn.is_some());
    assert_eq!(f.count("handovers").await, 1);
    assert_eq!(f.count("audit_entries").await, 1);
    assert_eq!(f.count("outbox").await, 1);
    assert_eq!(f.count("facade_resources").await, r.resource_count);
    assert_eq!(f.count("handover_agreements").await, 1);
}

#[tokio::test]
async fn the_same_record_again_returns_the_stored_handover() {
    let f = Fixture::new(DataCategory::ALL).await;
    let first = receive(f.ctx(), &submission(&example()), &mut entry(), ()).await.expect("first");
    let mut e = entry();
    let again = receive(f.ctx(), &submission(&example()), &mut e, ()).await.expect("again");
    assert!(!again.created && !again.stored);
    assert_eq!(again.id, first.id);
    assert_eq!(again.summary, first.summary, "the stored summary, not a new one");
    assert!(e.reason.as_deref().is_some_and(|r| r.starts_with("received again")));
    assert_eq!(f.count("handovers").await, 1);
    assert_eq!(f.count("audit_entries").await, 2, "the replay is recorded too");
    assert_eq!(f.count("outbox").await, 1);
}

#[tokio::test]
async fn without_an_agreement_nothing_is_stored() {
    let f = Fixture::new(&[]).await;
    let mut e = entry();
    let err = receive(f.ctx(), &submission(&example()), &mut e, ()).await.expect_err("refused");
    assert!(matches!(err, HandoverError::TransferRefused { .. }), "{err:?}");
    assert_eq!(err.counted_as(), Some("refused"));
    assert!(e.rule.is_some() && e.reason.as_deref().is_some_and(|r| r.starts_with("HTTP 403")));
    assert_eq!(e.objects, vec![format!("Organization/ura-{RECEIVER_URA}")]);
    assert_eq!(f.count("handovers").await, 0);
    assert_eq!(f.count("audit_entries").await, 0, "the caller records the refusal");
    assert_eq!(f.count("outbox").await, 0);
}

#[tokio::test]
async fn a_sender_other_than_the_token_organisation_is_refused_before_conversion() {
    let f = Fixture::new(DataCategory::ALL).await;
    let mut s = submission(b"not even a record");
    s.sender = Some("ura|11112222".to_owned());
    let mut e = entry();
    let err = receive(f.ctx(), &s, &mut e, ()).await.expect_err("refused");
    assert!(matches!(err, HandoverError::SenderRefused { .. }), "{err:?}");
    assert_eq!(err.counted_as(), Some("rejected"));
    assert_eq!(e.rule.as_deref(), Some(crate::policy::rules::SENDER_NOT_TOKEN_ORGANISATION));
}

#[tokio::test]
async fn an_unreadable_record_is_a_conversion_error() {
    let f = Fixture::new(DataCategory::ALL).await;
    let err = receive(f.ctx(), &submission(b"{\"resourceType\": "), &mut entry(), ()).await.expect_err("rejected");
    assert!(matches!(err, HandoverError::Conversion(_)), "{err:?}");
    assert_eq!(f.count("handovers").await, 0);
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_stores_nothing_of_it() {
    let f = Fixture::new(DataCategory::ALL).await;
    let mut s = submission(&example());
    s.idempotency_key = Some("key-1".to_owned());
    let first = receive(f.ctx(), &s, &mut entry(), ()).await.expect("first");
    // The same key and request: the same handover.
    let replay = receive(f.ctx(), &s, &mut entry(), ()).await.expect("replay");
    assert_eq!(replay.id, first.id);
    assert!(!replay.created);
    // The same key, another request (a referral question added).
    s.referral_reason = Some("another question".to_owned());
    let err = receive(f.ctx(), &s, &mut entry(), ()).await.expect_err("mismatch");
    assert!(matches!(err, HandoverError::IdempotencyKeyReused), "{err:?}");
    assert_eq!(f.count("handovers").await, 1);
    assert_eq!(f.count("audit_entries").await, 2);
}

#[tokio::test]
async fn categories_outside_the_agreement_never_reach_the_store() {
    let kept: Vec<DataCategory> =
        DataCategory::ALL.iter().copied().filter(|c| *c != DataCategory::Medication).collect();
    let f = Fixture::new(&kept).await;
    let mut e = entry();
    let r = receive(f.ctx(), &submission(&example()), &mut e, ()).await.expect("received");
    let summary: Value = serde_json::from_str(&r.summary).expect("summary");
    assert_eq!(summary["transfer"]["removed"][0]["category"], "medication", "{summary}");
    assert!(summary["transfer"]["removed"][0]["resources"].as_u64().is_some_and(|n| n > 0));
    assert!(!e.categories.iter().any(|c| c == "medication"));
    use sqlx::Row;
    let bundle: String = sqlx::query("SELECT output_bundle FROM handovers")
        .fetch_one(f.store.pool())
        .await
        .expect("row")
        .try_get("output_bundle")
        .expect("bundle");
    assert!(!bundle.contains("\"MedicationStatement\""), "the stored bundle holds no medication");
    let medication: i64 = sqlx::query("SELECT COUNT(*) AS n FROM facade_resources WHERE category = 'medication'")
        .fetch_one(f.store.pool())
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
    assert_eq!(medication, 0);
}
