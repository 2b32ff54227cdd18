//! The export of the audit trail (NEN 7513: a patient's or an inspector's request for who saw
//! what): the entries of a period, optionally of one patient, as FHIR AuditEvents, one JSON
//! line each, oldest first.
//!
//! The export is itself an action on patient data, so it is recorded first; the entries
//! written are those before its own, so that two exports of the same period agree.

use std::io::Write;

use super::{record_alone, search, AuditAction, AuditEntry, AuditError, AuditOutcome, AuditSearch};
use crate::store::Store;

/// Which entries to export, and who asks.
#[derive(Debug, Clone, Default)]
pub struct Export {
    /// Inclusive lower and exclusive upper bound on `recorded_at` (RFC 3339 UTC text, see
    /// [`super::query::time_bound`]).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only the entries about this patient.
    pub patient_bsn: Option<String>,
    /// The access point that asks, as recorded in the export's own entry.
    pub client: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Records the export, then writes the entries before it to `sink`; returns how many.
pub async fn export(store: &Store, x: &Export, sink: &mut dyn Write) -> Result<u64, ExportError> {
    let mut entry = AuditEntry::new(AuditAction::Export, AuditOutcome::Success);
    entry.client = Some(x.client.clone());
    entry.patient_bsn = x.patient_bsn.clone();
    entry.objects =
        vec![format!("AuditEvent?from={}&to={}", x.from.as_deref().unwrap_or(""), x.to.as_deref().unwrap_or(""))];
    let mark = record_alone(store, &entry).await?;
    let mut q = AuditSearch {
        patient_bsn: x.patient_bsn.clone(),
        from: x.from.clone(),
        to: x.to.clone(),
        limit: Some(1000),
        oldest_first: true,
        ..Default::default()
    };
    let mut n = 0u64;
    loop {
        let page = search(store, &q).await?;
        let Some(last) = page.last() else { break };
        q.after_seq = Some(last.seq);
        for e in page.iter().filter(|e| e.seq < mark.seq) {
            serde_json::to_writer(&mut *sink, &super::event::audit_event(e)).map_err(std::io::Error::other)?;
            sink.write_all(b"\n")?;
            n += 1;
        }
    }
    sink.flush()?;
    Ok(n)
}
