//! The agreements a service runs with, in the audit trail: which came into use, changed or
//! are no longer loaded since the service last ran (each an `agreement-change` entry).

use sha2::Digest;

use super::{AuditAction, AuditEntry, AuditOutcome};
use crate::audit;
use crate::policy::Agreement;
use crate::store::Store;

/// Compares the loaded agreements with those the service last ran with and records each
/// that came into use, changed or is no longer loaded: the table and one
/// `agreement-change` audit entry per agreement, in one transaction. Returns the number
/// of changes. `source` says where the agreements came from (for the entries).
pub async fn record_changes(store: &Store, agreements: &[Agreement], source: &str) -> Result<usize, String> {
    let err = |e: &dyn std::fmt::Display| format!("recording the loaded agreements: {e}");
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut tx = store.begin().await.map_err(|e| err(&e))?;
    let before = tx.loaded_agreements().await.map_err(|e| err(&e))?;
    let mut changes: Vec<(String, String, String)> = Vec::new(); // (id, version, what)
    for a in agreements.iter() {
        let text = serde_json::to_string(a).map_err(|e| err(&e))?;
        let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        let what = match before.iter().find(|(id, v, _)| *id == a.id && *v == a.version) {
            None => "came into use",
            Some((_, _, old)) if *old != sha => "changed (same version, other content)",
            Some(_) => continue,
        };
        tx.mark_agreement_loaded(&a.id, &a.version, &sha, &at).await.map_err(|e| err(&e))?;
        changes.push((a.id.clone(), a.version.clone(), what.to_owned()));
    }
    for (id, version, _) in &before {
        if !agreements.iter().any(|a| a.id == *id && a.version == *version) {
            tx.forget_loaded_agreement(id, version).await.map_err(|e| err(&e))?;
            changes.push((id.clone(), version.clone(), "is no longer loaded".to_owned()));
        }
    }
    for (id, version, what) in &changes {
        let mut e = AuditEntry::new(AuditAction::AgreementChange, AuditOutcome::Success);
        e.client = Some("overdracht serve (agreements loaded at start)".to_owned());
        e.objects = vec![format!("Agreement/{id}@{version}")];
        e.rule = Some(crate::policy::rules::AGREEMENTS_LOADED_AT_START.to_owned());
        e.reason = Some(format!("agreement {id}@{version} {what}; source: {source}"));
        if let Some(a) = agreements.iter().find(|a| a.id == *id && a.version == *version) {
            e.categories = a.categories.iter().map(|c| c.code().to_owned()).collect();
        }
        audit::record(&mut tx, &e).await.map_err(|e| err(&e))?;
    }
    tx.commit().await.map_err(|e| err(&e))?;
    Ok(changes.len())
}
