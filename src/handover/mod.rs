//! Receiving a handover: a sender hands a patient record over to a receiving GZSP provider
//! and its lead practitioner.
//!
//! [`receive`] is the whole of it, for the HTTP API and any other caller: decide the sender,
//! convert (on the blocking pool), decide the transfer under the agreements in force,
//! minimise ([`minimise`]), then store the handover, its agreements, its facade rows, the
//! `Idempotency-Key`, the audit entry and the outbox row in **one transaction** (which
//! handovers arriving together share, one after the other: group commit, see
//! [`crate::store::group`]; a refusal or failure of one does not fail the others). The answer
//! is a [`Receipt`] or a typed [`HandoverError`]; the caller renders either (the API as
//! HTTP + OperationOutcome, see `api::error`).
//!
//! The handover's id is a UUID v5 of sender, receiver and the SHA-256 of the source bytes,
//! so the same record sent again is the same handover: the insert is
//! `ON CONFLICT DO NOTHING` and the second caller gets the stored handover back
//! (`created == false`). An `Idempotency-Key` (scoped to the submitter's URA) additionally
//! pins a key to one request: the same key with the same request replays the handover; with
//! a different request it is refused ([`HandoverError::IdempotencyKeyReused`], the rule of
//! the IETF Idempotency-Key draft). The whole decision is one database transaction, so
//! parallel identical requests store one handover.

pub mod minimise;

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, AuditEntry};
use crate::convert::{self, Conversion, ConvertError, ConvertOptions, OutputKind};
use crate::diagnostics::{Issue, IssueCode, Outcome, Severity};
use crate::policy::parties::{decide_sender, Sender, SenderIdentities};
use crate::policy::{Agreement, Decision, TransferDecision};
use crate::source::Format;
use crate::store::{IdempotencyClaim, NewHandover, Store, StoreError, Stored};

/// Namespace of handover ids (UUID v5).
const HANDOVER_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f76_6572_6472_4854_8000_0000_0000_0001);

/// What a handover is received with: the store and the access facts of the service.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub store: &'a Store,
    /// The agreements in force (loaded at start).
    pub agreements: &'a [Agreement],
    /// AGB codes configured as identities of organisations (`policy.agb_codes`).
    pub senders: &'a SenderIdentities,
    /// Most issues a conversion's outcome keeps (`limits.max_issues`).
    pub max_issues: usize,
}

/// Who submitted the handover (from the authenticated token).
#[derive(Debug, Clone)]
pub struct Submitter {
    pub uzi: crate::model::Uzi,
    pub role: crate::model::UziRoleCode,
    /// The organisation in the token: the sender, or the owner of the sender's AGB code.
    pub ura: crate::model::Ura,
}

/// One handover as submitted; identifiers already checked for form by the caller.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The record as received.
    pub body: Bytes,
    /// Forced input format; `None`: detect from the bytes.
    pub format: Option<Format>,
    /// The media type the record came with.
    pub media_type: Option<String>,
    /// The format as requested (`?format=`), part of the request's identity for the
    /// `Idempotency-Key` rule.
    pub requested_format: Option<String>,
    /// The receiving GZSP provider's URA.
    pub receiver_ura: crate::model::Ura,
    /// The sender named by the submitter (`ura|…` or `agb-z|…`); `None`: the token's
    /// organisation, or the record's author when that is one of its configured AGB codes.
    pub sender: Option<String>,
    /// The lead practitioner at the receiver (`uzi|…` or `big|…`).
    pub lead_practitioner: Option<String>,
    pub care_form: Option<String>,
    /// The referral question (free text).
    pub referral_reason: Option<String>,
    pub idempotency_key: Option<String>,
    pub submitter: Submitter,
}

impl Submission {
    fn receiver(&self) -> String {
        format!("ura|{}", self.receiver_ura)
    }
}

/// A received handover.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The handover's id (for a replay: the stored handover's).
    pub id: String,
    /// True for a new handover; false when the same record (or the same `Idempotency-Key`)
    /// was handed over before and the stored handover is returned.
    pub created: bool,
    /// True when this call stored new facade rows and agreements (cached access facts of
    /// the patient are stale).
    pub stored: bool,
    /// The summary (JSON): counts, parties, transfer and what was not mapped. It names no
    /// patient data beyond the Patient resource id.
    pub summary: String,
    /// Resources passed on.
    pub resource_count: i64,
}

/// Why a handover was not received. Each refusal has recorded its rule and reason in the
/// audit entry given to [`receive`].
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// The named sender is not the organisation in the token nor one of its AGB codes.
    #[error("{reason}")]
    SenderRefused { rule: &'static str, reason: String },
    /// The record could not be converted.
    #[error(transparent)]
    Conversion(#[from] ConvertError),
    /// The record does not identify the patient by BSN.
    #[error("the record does not identify the patient by BSN; a handover under an agreement needs it (consent and access are per patient)")]
    NoBsn,
    /// No agreement in force lets the record pass (or consent forbids it).
    #[error("{reason} [{rule}]")]
    TransferRefused { rule: &'static str, reason: String, outcome: Outcome },
    /// A resource id of the record is held for another patient; nothing was stored.
    #[error("{} was already written for another patient", .0)]
    BoundToAnotherPatient(ConvertError),
    /// The `Idempotency-Key` was used before for a different request.
    #[error("this Idempotency-Key was used before for a different request; use a new key for a new request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit trail: {0}")]
    Audit(#[from] audit::AuditError),
    /// A defect of our own (a stored consent that no longer parses, a panicked conversion).
    #[error("{0}")]
    Internal(String),
}

impl HandoverError {
    /// The handover counter this error counts under: `rejected` (the record or its sender),
    /// `refused` (the agreements, consent, another patient's id), none for faults.
    pub fn counted_as(&self) -> Option<&'static str> {
        match self {
            HandoverError::SenderRefused { .. } | HandoverError::Conversion(_) => Some("rejected"),
            HandoverError::NoBsn | HandoverError::TransferRefused { .. } | HandoverError::BoundToAnotherPatient(_) => {
                Some("refused")
            }
            _ => None,
        }
    }

    /// True when the database aborted the handover's transaction to break a deadlock or a
    /// serialisation conflict with a concurrent one; running it again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            HandoverError::Store(e) | HandoverError::Audit(audit::AuditError::Store(e)) => e.is_transient(),
            HandoverError::Audit(audit::AuditError::Database(e)) => crate::store::aborted_for_concurrency(e),
            _ => false,
        }
    }
}

/// Receives one handover (see the module docs). `entry` is the request's audit entry: this
/// fills in what it learns (patient, objects, categories, rule and reason) and, when the
/// handover is stored, appends it in the handover's transaction; on an error the caller
/// records it as a refusal. `keep` is held until the conversion ends (the API's permits:
/// the request's memory is in use until then).
pub async fn receive<K: Clone + Send + 'static>(
    ctx: Context<'_>,
    sub: &Submission,
    entry: &mut AuditEntry,
    keep: K,
) -> Result<Receipt, HandoverError> {
    // The intended receiver, so that a refusal counts for that provider (the evidence
    // report); a stored handover replaces the objects with the handover and its resources.
    entry.objects.clear();
    entry.name_holder(sub.receiver_ura.as_str());
    let source_sha256 = hex::encode(Sha256::digest(&sub.body));
    let (mut conversion, (sender, sender_rule)) = convert_for_handover(ctx, sub, entry, keep).await?;
    // Read before minimisation: the patient stays the handover's patient even if the
    // agreement does not pass the Patient resource on.
    let (patient_resource_id, patient_bsn) = patient_of(&conversion);
    // The agreement decides before anything is stored: refused without one in force,
    // otherwise the categories it does not cover are removed.
    let transfer = decide_transfer(ctx, &sender.identities, sub, &mut conversion, entry).await?;
    entry.reason = Some(match entry.reason.take() {
        Some(r) => format!("{r}; {} [{}]", sender_rule.reason, sender_rule.rule),
        None => format!("{} [{}]", sender_rule.reason, sender_rule.rule),
    });
    let sender = sender.id;
    let receiver = sub.receiver();
    let id = uuid::Uuid::new_v5(&HANDOVER_NAMESPACE, format!("{sender}\n{receiver}\n{source_sha256}").as_bytes())
        .to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut summary = summary(&id, &now, &sender, sub, &conversion);
    summary["transfer"] = transfer.summary;
    entry.patient_bsn = patient_bsn.clone();
    entry.objects = conversion.resources.iter().map(|r| format!("{}/{}", r.resource_type, r.id)).collect();
    entry.name_handover(&id);
    entry.categories = categories_of(&conversion);
    // Written straight from the resources (byte for byte what serialising
    // `Conversion::bundle` gives), not through a copy of every resource in a Value.
    let (output_bundle, spans) = conversion.bundle_bytes_with_spans();
    let output_bundle = String::from_utf8(output_bundle).map_err(internal)?;
    let new = NewHandover {
        row: crate::store::HandoverRow {
            id: id.clone(),
            created_at: now.clone(),
            status: "accepted".to_owned(),
            sender,
            receiver,
            lead_practitioner: sub.lead_practitioner.clone(),
            referral_reason: sub.referral_reason.clone(),
            care_form: sub.care_form.clone(),
            patient_resource_id,
            source_format: conversion.format.name().to_owned(),
            source_sha256,
            source_size: i64::try_from(sub.body.len()).unwrap_or(i64::MAX),
            resource_count: i64::try_from(conversion.resources.len()).unwrap_or(i64::MAX),
            summary: serde_json::to_string(&summary).map_err(internal)?,
            submitted_by_ura: sub.submitter.ura.to_string(),
            patient_bsn,
        },
        source_media_type: sub.media_type.clone(),
        output_bundle,
        submitted_by_uzi: sub.submitter.uzi.to_string(),
        submitted_by_role: sub.submitter.role.to_string(),
    };

    // Prepared before the handover's turn at the database: its facade rows (a replay
    // writes none; it is rare) and the request's fingerprint.
    let rows = minimise::facade_rows(
        &conversion,
        (&new.output_bundle, &spans),
        sub.receiver_ura.as_str(),
        &transfer.bsn,
        new.row.patient_resource_id.as_deref(),
    );
    let key = sub
        .idempotency_key
        .as_ref()
        .map(|k| (sub.submitter.ura.as_str().to_owned(), k.clone(), request_fingerprint(sub)));
    drop(conversion);
    let write = std::sync::Arc::new(Write { new, agreements: transfer.agreements, rows, key, entry: entry.clone() });
    // The transaction is run again when the database aborted it to break a deadlock or a
    // serialisation conflict with another instance's transaction: it is idempotent, and
    // each attempt starts from the entry as the decisions left it (`write.entry`).
    let mut attempt = 1;
    let written = loop {
        match store(ctx.store, write.clone()).await {
            Err(e) if attempt < STORE_ATTEMPTS && e.is_transient() => {
                tracing::warn!(handover = %write.new.row.id, attempt, error = %e, "handover transaction aborted by the database; trying again");
                tokio::time::sleep(retry_pause(attempt)).await;
                attempt += 1;
            }
            done => break done?,
        }
    };
    let Write { new, .. } = std::sync::Arc::try_unwrap(write).map_err(|_| internal("the write is still shared"))?;
    let (handover_id, inserted) = match written {
        Written::Stored { handover_id, inserted, entry: stored } => {
            *entry = *stored;
            (handover_id, inserted)
        }
        Written::BoundToAnotherPatient(resource) => {
            // An id bound to another patient: nothing of this handover was written.
            let e = ConvertError::BoundToAnotherPatient { resource };
            entry.rule = Some(crate::policy::rules::IDENTITY_BOUND_TO_ANOTHER_PATIENT.to_owned());
            entry.reason = Some(format!("HTTP 409: {}", e.to_outcome().issues.first().map_or("", |i| &i.diagnostics)));
            return Err(HandoverError::BoundToAnotherPatient(e));
        }
        Written::KeyReused => return Err(HandoverError::IdempotencyKeyReused),
    };
    crate::deliver::outbox::wake();

    let created = inserted && handover_id == new.row.id;
    if created {
        tracing::info!(handover = %handover_id, resources = new.row.resource_count, "handover stored");
        Ok(Receipt {
            id: handover_id,
            created,
            stored: inserted,
            summary: new.row.summary,
            resource_count: new.row.resource_count,
        })
    } else {
        tracing::info!(handover = %handover_id, "handover received again; returning the stored one");
        let stored = ctx
            .store
            .handover(&handover_id)
            .await?
            .ok_or_else(|| HandoverError::Internal("idempotent handover vanished".to_owned()))?;
        Ok(Receipt {
            id: handover_id,
            created,
            stored: inserted,
            summary: stored.summary,
            resource_count: stored.resource_count,
        })
    }
}

/// How often [`receive`] runs the handover transaction when the database keeps aborting it
/// (deadlock or serialisation failure).
const STORE_ATTEMPTS: u32 = 5;

/// The pause before attempt `attempt + 1`: growing, with jitter, so that the transactions
/// that met do not meet again.
fn retry_pause(attempt: u32) -> std::time::Duration {
    let ceiling = 20u64 << attempt.min(6);
    std::time::Duration::from_millis(rand::random_range(ceiling / 4..=ceiling))
}

/// What a handover writes, prepared before its transaction.
struct Write {
    new: NewHandover,
    /// `(id, version)` of the agreements it came under.
    agreements: Vec<(String, String)>,
    rows: Vec<crate::store::FacadeResource>,
    /// The `Idempotency-Key`: the client's URA, the key and the request's fingerprint.
    key: Option<(String, String, String)>,
    /// The request's audit entry as the decisions left it.
    entry: AuditEntry,
}

/// What the handover's transaction did.
enum Written {
    /// Committed: the handover (new, or the stored one for a replay) and its audit entry
    /// as written.
    Stored { handover_id: String, inserted: bool, entry: Box<AuditEntry> },
    /// Rolled back: a resource id is held for another patient.
    BoundToAnotherPatient(String),
    /// Rolled back: the `Idempotency-Key` was used for a different request.
    KeyReused,
}

/// Stores the handover, its agreements, its facade rows, the `Idempotency-Key`, the audit
/// entry and the outbox row in one transaction, which it may share with other handovers
/// waiting at the same time ([`Store::grouped`]): each is written after the other, as in
/// transactions of their own, and the commit is shared. A refusal or a failure of one
/// rolls it back alone.
async fn store(store: &Store, write: std::sync::Arc<Write>) -> Result<Written, HandoverError> {
    type Slot = std::sync::Arc<std::sync::Mutex<Option<Result<Written, HandoverError>>>>;
    let slot: Slot = Default::default();
    let result = slot.clone();
    let work: crate::store::group::Work = Box::new(move |tx| {
        let (write, slot) = (write.clone(), slot.clone());
        Box::pin(async move {
            let r = write_in(tx, &write).await;
            let commit = matches!(r, Ok(Written::Stored { .. }));
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
            commit
        })
    });
    store.grouped(work).await?;
    let r = result.lock().ok().and_then(|mut s| s.take());
    r.unwrap_or_else(|| Err(internal("the handover's transaction gave no result")))
}

/// The writes of one handover in `tx` (see [`store`]).
async fn write_in(tx: &mut crate::store::Tx, w: &Write) -> Result<Written, HandoverError> {
    let new = &w.new.row;
    // The handover, its agreements, its facade rows and its outbox row (a replay finds its
    // delivery queued): a stored handover always has its delivery queued. Without an
    // `Idempotency-Key`, its audit entry is written with it, in one round trip to the
    // database; with one, the entry says what the key found, so it is written after.
    let queued_at = crate::deliver::outbox::timestamp(chrono::Utc::now());
    let entry_of_new = match w.key {
        None => Some(audit::Prepared::on(&audit::chain_head(tx).await?, &w.entry)?),
        Some(_) => None,
    };
    let write = crate::store::HandoverWrite {
        handover: &w.new,
        agreements: &w.agreements,
        queued_at: &queued_at,
        facade: &w.rows,
        recorded_by: entry_of_new.as_ref().map(|p| p as &dyn crate::store::Insert),
    };
    let inserted = match tx.store_handover(&write).await? {
        Stored::BoundToAnotherPatient(resource) => return Ok(Written::BoundToAnotherPatient(resource)),
        Stored::New => true,
        Stored::Existing => false,
    };
    if let (true, Some(p)) = (inserted, &entry_of_new) {
        *tx.audit_head() = Some(p.moved_to());
        return Ok(Written::Stored { handover_id: new.id.clone(), inserted, entry: Box::new(w.entry.clone()) });
    }
    let mut handover_id = new.id.clone();
    if let Some((client, key, fingerprint)) = &w.key {
        match tx.claim_idempotency_key(client, key, fingerprint, &handover_id, &new.created_at).await? {
            IdempotencyClaim::New => {}
            IdempotencyClaim::Replay { handover_id: h } => handover_id = h,
            IdempotencyClaim::Mismatch => return Ok(Written::KeyReused),
        }
    }
    // The audit entry is written in the handover's transaction: a stored handover always has
    // one (and its outbox row, written with it above).
    let mut entry = w.entry.clone();
    if !(inserted && handover_id == new.id) {
        entry.reason = Some(format!("received again; the stored handover {handover_id} is returned"));
        entry.replay = true;
        entry.name_handover(&handover_id);
    }
    audit::record(tx, &entry).await?;
    Ok(Written::Stored { handover_id, inserted, entry: Box::new(entry) })
}

fn internal(e: impl std::fmt::Display) -> HandoverError {
    HandoverError::Internal(e.to_string())
}

/// Records up to this size are converted on the async worker that received them, larger
/// ones on the blocking pool (see [`convert_blocking`]).
pub const INLINE_CONVERSION_BYTES: usize = 32 * 1024;

/// Converts a record. A large one on the blocking pool: it is CPU work, and the async
/// workers must keep answering health checks and other requests meanwhile; `keep` goes with
/// the work (the API's permits: its memory is in use until the conversion ends), and the
/// conversion is cancelled when this future is dropped, as a request timeout does (work on
/// the blocking pool is not cancelled by itself).
///
/// A record of at most [`INLINE_CONVERSION_BYTES`] is converted right here, on the async
/// worker, holding up that worker's other tasks meanwhile: 0.88 ms of CPU for the 17.7 KB
/// benchmark dossier on the machine of the README's first load figures, 1.3–1.8 ms on the
/// slower one of the later figures (the CLI's figure in bench/handover_load.sh), growing with
/// the size.
/// The trip to the blocking pool and back (waking a pool thread, then the worker) cost 0.09 to
/// 0.57 ms of CPU per handover (median 0.24 ms) in six paired runs at 250/s, with the p99 of
/// the two in the same range (README, Load).
pub async fn convert_blocking<K: Send + 'static>(
    body: Bytes,
    mut opts: ConvertOptions,
    keep: K,
) -> Result<Conversion, HandoverError> {
    struct CancelOnDrop(convert::Cancel);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    if body.len() <= INLINE_CONVERSION_BYTES {
        let converted = convert::convert(&body, &opts);
        drop(keep);
        return converted.map_err(HandoverError::Conversion);
    }
    let cancel = convert::Cancel::new();
    opts.cancel = Some(cancel.clone());
    let _cancel_on_drop = CancelOnDrop(cancel);
    tokio::task::spawn_blocking(move || {
        let r = convert::convert(&body, &opts);
        drop(keep);
        r
    })
    .await
    .map_err(internal)?
    .map_err(HandoverError::Conversion)
}

/// Decides the sender ([`crate::policy::parties::decide_sender`]: the organisation in the
/// token, or one of its configured AGB codes) and converts with it, so that resource ids
/// are those of the real sender. The record's author is only consulted (one extra
/// conversion at most) when the token's organisation has configured AGB codes and no
/// sender was named.
async fn convert_for_handover<K: Clone + Send + 'static>(
    ctx: Context<'_>,
    sub: &Submission,
    entry: &mut AuditEntry,
    keep: K,
) -> Result<(Conversion, (Sender, Decision)), HandoverError> {
    let token_ura = &sub.submitter.ura;
    let claimed = sub.sender.as_deref().and_then(|s| s.split_once('|'));
    let mut decide = |author: Option<&str>| {
        decide_sender(token_ura, claimed, author, ctx.senders).map_err(|d| {
            entry.rule = Some(d.rule.to_owned());
            entry.reason = Some(format!("HTTP 403: {}", d.reason));
            HandoverError::SenderRefused { rule: d.rule, reason: d.reason }
        })
    };
    let opts = |sender: Option<String>| ConvertOptions {
        format: sub.format,
        sender,
        output: OutputKind::Bundle,
        max_issues: Some(ctx.max_issues),
        cancel: None,
        strict: false,
    };
    if claimed.is_some() || ctx.senders.agb_codes(token_ura).next().is_none() {
        let decided = decide(None)?;
        let conversion = convert_blocking(sub.body.clone(), opts(Some(decided.0.id.clone())), keep).await?;
        return Ok((conversion, decided));
    }
    let conversion = convert_blocking(sub.body.clone(), opts(None), keep.clone()).await?;
    let decided = decide(Some(&conversion.sender))?;
    if decided.0.id == conversion.sender {
        return Ok((conversion, decided));
    }
    let conversion = convert_blocking(sub.body.clone(), opts(Some(decided.0.id.clone())), keep).await?;
    Ok((conversion, decided))
}

/// What identifies a request for the `Idempotency-Key` rule.
fn request_fingerprint(sub: &Submission) -> String {
    let mut h = Sha256::new();
    for part in [
        Some(sub.receiver()),
        sub.sender.clone(),
        sub.lead_practitioner.clone(),
        sub.care_form.clone(),
        sub.referral_reason.clone(),
        sub.requested_format.clone(),
        sub.media_type.clone(),
    ] {
        h.update(part.unwrap_or_default().as_bytes());
        h.update([0u8]);
    }
    h.update(&sub.body);
    hex::encode(h.finalize())
}

/// What the transfer decision let through.
struct Transfer {
    bsn: String,
    /// `(id, version)` of the agreements in force that cover the handover.
    agreements: Vec<(String, String)>,
    /// For the summary: agreements, removed categories and why.
    summary: Value,
}

/// Decides the handover under the agreements ([`crate::policy::decide_transfer`]) and
/// minimises the conversion in place. A refusal records in the audit entry which rule
/// refused; a permit records which categories were removed and why.
async fn decide_transfer(
    ctx: Context<'_>,
    senders: &[crate::policy::PartyId],
    sub: &Submission,
    conversion: &mut Conversion,
    entry: &mut AuditEntry,
) -> Result<Transfer, HandoverError> {
    use crate::policy::{PartyId as Party, TransferRequest};
    let (_, bsn) = patient_of(conversion);
    entry.patient_bsn = bsn.clone();
    let Some(bsn) = bsn.and_then(|b| crate::model::Bsn::parse(&b).ok()) else {
        entry.rule = Some("transfer.no-bsn".to_owned());
        return Err(HandoverError::NoBsn);
    };
    let receiver = [Party::Ura(sub.receiver_ura.clone())];
    let categories: BTreeSet<_> = conversion.resources.iter().map(|r| r.category).collect();
    let stored = ctx.store.consents_of(bsn.as_str()).await?;
    let consents =
        crate::policy::consent::parse_stored(stored.iter().map(|r| r.resource.as_str())).map_err(internal)?;
    let decision = crate::policy::decide_transfer(
        ctx.agreements,
        &TransferRequest {
            senders,
            receiver: &receiver,
            patient: &bsn,
            day: crate::policy::day_of(&chrono::Utc::now()),
            categories: &categories,
            consents: &consents,
        },
    );
    let outcome = decision.to_outcome();
    match decision {
        TransferDecision::Refused { rule, reason } => {
            entry.rule = Some(rule.to_owned());
            entry.reason = Some(format!("HTTP 403: {reason}"));
            Err(HandoverError::TransferRefused { rule, reason, outcome })
        }
        TransferDecision::Permitted { agreements, removed, .. } => {
            let gone: BTreeSet<_> = removed.keys().copied().collect();
            let done = minimise::minimise(conversion, &gone);
            let removed_json: Vec<Value> = removed
                .iter()
                .map(|(c, why)| {
                    json!({
                        "category": c.code(),
                        "reason": why,
                        "resources": done.removed.get(c).copied().unwrap_or(0),
                    })
                })
                .collect();
            let mut summary = json!({ "agreements": agreements, "removed": removed_json });
            if !done.dependent.is_empty() {
                summary["removedAsDependent"] =
                    done.dependent.iter().map(|(c, n)| json!({"category": c.code(), "resources": n})).collect();
            }
            if done.references_cut > 0 {
                summary["referencesMadeDisplayOnly"] = json!(done.references_cut);
            }
            summary["outcome"] = outcome.to_fhir();
            entry.rule = Some("transfer.permitted".to_owned());
            let mut reason = format!("under {}", agreements.join(", "));
            for (c, why) in &removed {
                reason.push_str(&format!("; removed {c}: {why}"));
            }
            entry.reason = Some(reason);
            let agreements = ctx
                .agreements
                .iter()
                .filter(|a| agreements.contains(&a.label()))
                .map(|a| (a.id.clone(), a.version.clone()))
                .collect();
            Ok(Transfer { bsn: bsn.as_str().to_owned(), agreements, summary })
        }
    }
}

/// The data categories of the output, each once, in order of first appearance.
pub fn categories_of(c: &Conversion) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &c.resources {
        let code = r.category.code();
        if !out.iter().any(|c| c == code) {
            out.push(code.to_owned());
        }
    }
    out
}

/// The Patient resource's id and BSN, from the output.
pub fn patient_of(c: &Conversion) -> (Option<String>, Option<String>) {
    let Some(p) = c.resources.iter().find(|r| r.resource_type == "Patient") else {
        return (None, None);
    };
    let bsn = p.resource["identifier"].as_array().and_then(|ids| {
        ids.iter()
            .find(|i| i["system"] == crate::terminology::uri::BSN)
            .and_then(|i| i["value"].as_str())
            .map(str::to_owned)
    });
    (Some(p.id.clone()), bsn)
}

/// The summary returned (and stored): counts, parties and what was not mapped. It names
/// no patient data beyond the Patient resource id.
fn summary(id: &str, now: &str, sender: &str, sub: &Submission, c: &Conversion) -> Value {
    let by_type: serde_json::Map<String, Value> = c.counts().into_iter().map(|(t, n)| (t, json!(n))).collect();
    // Issues beyond the limit are counted too (a conversion outcome never holds errors).
    let unmapped =
        c.outcome.issues.iter().filter(|i| matches!(i.severity, Severity::Warning | Severity::Information)).count()
            + c.outcome.omitted();
    let patient = c.resources.iter().find(|r| r.resource_type == "Patient").map(|p| format!("Patient/{}", p.id));
    json!({
        "id": id,
        "status": "accepted",
        "created": now,
        "sender": sender,
        "receiver": sub.receiver(),
        "leadPractitioner": sub.lead_practitioner,
        "careForm": sub.care_form,
        "format": c.format.name(),
        "patient": patient,
        "resources": { "total": c.resources.len(), "byType": by_type },
        // Clinical leftovers first and on their own: they are what a lead practitioner
        // would miss; administrative ones are information.
        "coverage": c.coverage_json(),
        "clinicalLeftovers": clinical_outcome(c),
        "unmapped": { "count": unmapped, "outcome": c.outcome.to_fhir() },
    })
}

/// The clinical leftovers as an OperationOutcome of their own (null when there are none).
fn clinical_outcome(c: &Conversion) -> Value {
    let issues: Vec<_> =
        c.outcome.issues.iter().filter(|i| i.leftover == Some(crate::validate::Leftover::Clinical)).cloned().collect();
    if issues.is_empty() {
        Value::Null
    } else {
        Outcome { issues, ..Default::default() }.to_fhir()
    }
}

/// The OperationOutcome issue of a refused `Idempotency-Key`.
pub fn idempotency_issue() -> Issue {
    Issue::error(IssueCode::BusinessRule, HandoverError::IdempotencyKeyReused.to_string()).at("Idempotency-Key")
}

#[cfg(test)]
mod tests;
