//! The export of the audit trail (NEN 7513: a patient's or an inspector's request for who saw
//! what): the entries of a period, optionally of one patient, as FHIR AuditEvents, one JSON
//! line each, oldest first.
//!
//! The export is itself an action on patient data, so it is recorded first; the entries
//! written are those before its own, so that two exports of the same period agree.

use std::io::Write;

use super::{record_alone, search, AuditAction, AuditEntry, AuditError, AuditOutcome, AuditSearch};
use crate::model::Bsn;
use crate::store::Store;

/// Which entries to export, and who asks.
#[derive(Debug, Clone, Default)]
pub struct Export {
    /// Inclusive lower and exclusive upper bound on `recorded_at` (RFC 3339 UTC text, see
    /// [`super::query::time_bound`]).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only the entries about this patient.
    pub patient_bsn: Option<Bsn>,
    /// The access point that asks, as recorded in the export's own entry.
    pub client: String,
}

impl Export {
    /// The export the command line asks for: `from` and `to` as dates or date-times
    /// ([`super::query::time_bound`]), `patient` a BSN; `client` is the access point.
    pub fn of_options(
        from: Option<&str>,
        to: Option<&str>,
        patient: Option<&str>,
        client: String,
    ) -> Result<Export, String> {
        let bound = |s: Option<&str>| s.map(super::query::time_bound).transpose();
        let (from, to) = (bound(from)?, bound(to)?);
        let patient_bsn = patient.map(Bsn::parse).transpose().map_err(|e| format!("--patient: {e}"))?;
        Ok(Export { from, to, patient_bsn, client })
    }
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
    // As stored and searched: the BSN's digits (the audit content is unchanged).
    entry.patient_bsn = x.patient_bsn.as_ref().map(|b| b.as_str().to_owned());
    entry.objects =
        vec![format!("AuditEvent?from={}&to={}", x.from.as_deref().unwrap_or(""), x.to.as_deref().unwrap_or(""))];
    let mark = record_alone(store, &entry).await?;
    let mut q = AuditSearch {
        patient_bsn: entry.patient_bsn.clone(),
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
