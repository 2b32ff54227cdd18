//! `POST /handovers` and `GET /handovers/{id}`: a sender hands a patient record over to a
//! receiving GZSP provider and its lead practitioner.
//!
//! The handover's id is a UUID v5 of sender, receiver and the SHA-256 of the source bytes,
//! so the same record sent again is the same handover: the insert is
//! `ON CONFLICT DO NOTHING` and the second caller gets the stored handover back with
//! `200 OK` (as FHIR's conditional create does) instead of `201 Created`. An
//! `Idempotency-Key` (scoped to the caller's URA) additionally pins a key to one request:
//! the same key with the same request replays the handover; with a different request it
//! is refused with `422` (the rule of the IETF Idempotency-Key draft). The whole decision
//! is one database transaction, so parallel identical requests store one handover.
//!
//! Conversion runs on the blocking pool: it is CPU work, and the async workers must keep
//! answering health checks and other requests meanwhile.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::audit as audit_api;
use super::auth::Caller;
use super::error::ApiError;
use super::guard::PermitSlot;
use super::input::{self, BodyKind, PersonId};
use super::state::AppState;
use crate::audit::{self, AuditAction, AuditEntry, AuditOutcome};
use crate::convert::{self, Conversion, ConvertError, ConvertOptions, OutputKind};
use crate::model::PartyId;
use crate::policy::parties::{decide_sender, Sender};
use crate::policy::Decision;
use crate::store::{IdempotencyClaim, NewHandover};
use crate::validate::Severity;

/// Namespace of handover ids (UUID v5).
const HANDOVER_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f76_6572_6472_4854_8000_0000_0000_0001);

/// Header carrying the referral question (free text, percent-encoded UTF-8). A header, not
/// a query parameter, because query strings end up in proxies' access logs.
pub const REFERRAL_REASON_HEADER: &str = "referral-reason";
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Query parameters of `POST /handovers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HandoverParams {
    /// The receiving GZSP provider, `ura|<8 digits>` (required).
    pub receiver: Option<String>,
    /// The sending organisation: always the organisation in the token. `ura|<token URA>`,
    /// or `agb-z|<8 digits>` when that code is configured as an AGB code of the token's URA
    /// (`policy.agb_codes`); anything else is refused (403). Default: the record's author
    /// when it is such a configured AGB code, else `ura|<token URA>`.
    pub sender: Option<String>,
    /// The lead practitioner (regiebehandelaar) at the receiver, `uzi|<number>` or
    /// `big|<11 digits>`.
    #[serde(rename = "lead-practitioner")]
    #[param(rename = "lead-practitioner")]
    pub lead_practitioner: Option<String>,
    /// The form of GZSP care: individual-so, individual-avg, individual-behavioural,
    /// individual-allied-health, group-frail, group-lg-nah, group-huntington, group-sglvg.
    #[serde(rename = "care-form")]
    #[param(rename = "care-form")]
    pub care_form: Option<String>,
    /// Force the input format: fhir-stu3, fhir-r4, flat, hl7v3-ps (default: from the
    /// Content-Type, else detected).
    pub format: Option<String>,
}

/// The parsed, checked parameters.
struct Parties {
    receiver: PartyId,
    sender: Option<PartyId>,
    lead_practitioner: Option<PersonId>,
    care_form: Option<String>,
    referral_reason: Option<String>,
}

fn parties(p: &HandoverParams, headers: &HeaderMap) -> Result<Parties, ApiError> {
    let receiver = match &p.receiver {
        Some(r) => input::party("receiver", r, &["ura"])?,
        None => {
            return Err(ApiError::bad_request(
                "receiver",
                "the receiving GZSP provider is required: ?receiver=ura|<URA>",
            ))
        }
    };
    let sender = p.sender.as_deref().map(|s| input::party("sender", s, &["agb-z", "ura"])).transpose()?;
    let lead_practitioner =
        p.lead_practitioner.as_deref().map(|s| PersonId::parse("lead-practitioner", s)).transpose()?;
    let care_form = p.care_form.as_deref().map(input::care_form).transpose()?;
    let referral_reason = input::text_header(headers, REFERRAL_REASON_HEADER, 4000)?;
    Ok(Parties { receiver, sender, lead_practitioner, care_form, referral_reason })
}

/// Maps a conversion failure: unreadable input is 400, input that breaks a rule (a BSN
/// failing the eleven test) 422, a defect of our own mapping 500.
pub fn convert_error(e: &ConvertError) -> ApiError {
    use crate::source::SourceError;
    let status = match e {
        ConvertError::Source(SourceError::Syntax { .. } | SourceError::UnknownFormat(_)) => StatusCode::BAD_REQUEST,
        ConvertError::Source(SourceError::Invalid(_)) | ConvertError::ClinicalLeftovers { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ConvertError::InvalidOutput { mapping, .. } => {
            tracing::error!(mapping = %mapping, "conversion produced invalid output");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ConvertError::BoundToAnotherPatient { .. } => StatusCode::CONFLICT,
        ConvertError::Cancelled => StatusCode::REQUEST_TIMEOUT,
    };
    ApiError::new(status, e.to_outcome())
}

/// Converts on the blocking pool. The request's permits go with the work (its memory is in
/// use until the conversion ends), and the conversion is cancelled when this future is
/// dropped, as the timeout does (work on the blocking pool is not cancelled by itself).
pub async fn convert_blocking(
    body: Bytes,
    mut opts: ConvertOptions,
    permits: PermitSlot,
) -> Result<Conversion, ApiError> {
    struct CancelOnDrop(convert::Cancel);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let cancel = convert::Cancel::new();
    opts.cancel = Some(cancel.clone());
    let _cancel_on_drop = CancelOnDrop(cancel);
    tokio::task::spawn_blocking(move || {
        let r = convert::convert(&body, &opts);
        drop(permits);
        r
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| convert_error(&e))
}

#[utoipa::path(
    post,
    path = "/handovers",
    tag = "handovers",
    params(
        HandoverParams,
        ("referral-reason" = Option<String>, Header, description = "The referral question, percent-encoded UTF-8 (max 4000 bytes)"),
        ("idempotency-key" = Option<String>, Header, description = "Client-chosen key; the same key with a different request is refused with 422"),
    ),
    request_body(content = String, description = "The patient record: FHIR STU3/R4 JSON, flat JSON or NHG Professional Summary XML", content_type = "application/fhir+json"),
    responses(
        (status = 201, description = "Handover stored; Location names it; body is the summary", content_type = "application/json"),
        (status = 200, description = "The same record was handed over before: the stored handover", content_type = "application/json"),
        (status = 400, description = "Malformed input or parameters (OperationOutcome)"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Valid token, not allowed (purpose of use, sender)"),
        (status = 413, description = "Body too large"),
        (status = 415, description = "Unsupported media type"),
        (status = 422, description = "Record breaks a rule, or Idempotency-Key reused for another request"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    axum::Extension(permits): axum::Extension<PermitSlot>,
    Query(params): Query<HandoverParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // One audit entry per request: the handler fills in what it learns and appends it in
    // the handover's transaction; a refused request is recorded here, on its own.
    let mut entry = audit_api::draft(AuditAction::HandoverReceived, &caller, &headers);
    let result = create_handover(&state, caller, params, headers, body, permits, &mut entry).await;
    if let Err(e) = &result {
        let refused = audit_api::refusal(entry, AuditAction::HandoverRefused, e);
        if let Err(audit_error) = audit::record_alone(&state.store, &refused).await {
            return Err(ApiError::internal(audit_error));
        }
    }
    result
}

async fn create_handover(
    state: &AppState,
    caller: Caller,
    params: HandoverParams,
    headers: HeaderMap,
    body: Bytes,
    permits: PermitSlot,
    entry: &mut AuditEntry,
) -> Result<Response, ApiError> {
    caller.require_treatment_purpose()?;
    let parties = parties(&params, &headers)?;
    // The intended receiver, so that a refusal counts for that provider (the evidence
    // report); a stored handover replaces the objects with the handover and its resources.
    entry.objects = vec![format!("Organization/ura-{}", parties.receiver.value())];
    let kind = input::body_kind(&headers, params.format.as_deref())?;
    input::require_body(&body)?;
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_owned()),
            _ => {
                return Err(ApiError::bad_request(
                    "Idempotency-Key",
                    "the Idempotency-Key must be 1 to 255 visible ASCII characters",
                ))
            }
        },
    };

    let source_sha256 = hex::encode(Sha256::digest(&body));
    let conversion = convert_for_handover(state, &body, &kind, &parties, &caller, entry, permits).await;
    let (mut conversion, sender_decision) = match conversion {
        Ok(c) => c,
        Err(e) => {
            state.metrics.handover("rejected");
            return Err(e);
        }
    };
    let sender = sender_decision.0.id.clone();
    // Read before minimisation: the patient stays the handover's patient even if the
    // agreement does not pass the Patient resource on.
    let (patient_resource_id, patient_bsn) = patient_of(&conversion);
    // The agreement decides before anything is stored: refused without one in force,
    // otherwise the categories it does not cover are removed (issue 6).
    let transfer = match decide_transfer(state, &sender_decision.0.identities, &parties, &mut conversion, entry).await {
        Ok(t) => t,
        Err(e) => {
            state.metrics.handover("refused");
            return Err(e);
        }
    };
    let sender_rule = sender_decision.1;
    entry.reason = Some(match entry.reason.take() {
        Some(r) => format!("{r}; {} [{}]", sender_rule.reason, sender_rule.rule),
        None => format!("{} [{}]", sender_rule.reason, sender_rule.rule),
    });
    let id =
        uuid::Uuid::new_v5(&HANDOVER_NAMESPACE, format!("{sender}\n{}\n{source_sha256}", parties.receiver).as_bytes())
            .to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut summary = summary(&id, &now, &sender, &parties, &conversion);
    summary["transfer"] = transfer.summary.clone();
    entry.patient_bsn = patient_bsn.clone();
    entry.objects = std::iter::once(format!("Handover/{id}"))
        .chain(conversion.resources.iter().map(|r| format!("{}/{}", r.resource_type, r.id)))
        .collect();
    entry.categories = categories_of(&conversion);
    let bundle = conversion.bundle();
    let new = NewHandover {
        id: id.clone(),
        created_at: now.clone(),
        status: "accepted".to_owned(),
        sender,
        receiver: parties.receiver.to_string(),
        lead_practitioner: parties.lead_practitioner.as_ref().map(ToString::to_string),
        referral_reason: parties.referral_reason.clone(),
        care_form: parties.care_form.clone(),
        patient_bsn,
        patient_resource_id,
        source_format: conversion.format.name().to_owned(),
        source_media_type: kind.media_type.clone(),
        source_sha256,
        source_size: i64::try_from(body.len()).unwrap_or(i64::MAX),
        output_bundle: serde_json::to_string(&bundle).map_err(ApiError::internal)?,
        resource_count: i64::try_from(conversion.resources.len()).unwrap_or(i64::MAX),
        summary: serde_json::to_string(&summary).map_err(ApiError::internal)?,
        submitted_by_uzi: caller.uzi.to_string(),
        submitted_by_role: caller.uzi_role.to_string(),
        submitted_by_ura: caller.ura.to_string(),
    };

    let mut tx = state.store.begin().await?;
    let inserted = tx.insert_handover(&new).await?;
    if inserted {
        for (agreement, version) in &transfer.agreements {
            tx.insert_handover_agreement(&new.id, agreement, version).await?;
        }
        let rows = super::transfer::facade_rows(
            &conversion,
            parties.receiver.value(),
            &transfer.bsn,
            new.patient_resource_id.as_deref(),
        );
        if let Err(resource) = tx.put_facade_resources(&rows, &new.id, &now).await? {
            // An id bound to another patient: nothing of this handover is written.
            drop(tx);
            state.metrics.handover("refused");
            let e = convert_error(&ConvertError::BoundToAnotherPatient { resource });
            entry.rule = Some(crate::policy::rules::IDENTITY_BOUND_TO_ANOTHER_PATIENT.to_owned());
            entry.reason = e.outcome.issues.first().map(|i| format!("HTTP 409: {}", i.diagnostics));
            return Err(e);
        }
    }
    let mut handover_id = id;
    if let Some(key) = &idempotency_key {
        let fingerprint = request_fingerprint(&params, &parties, &kind, &body);
        match tx.claim_idempotency_key(&caller.ura, key, &fingerprint, &handover_id, &now).await? {
            IdempotencyClaim::New => {}
            IdempotencyClaim::Replay { handover_id: h } => handover_id = h,
            IdempotencyClaim::Mismatch => {
                drop(tx);
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    crate::validate::Issue::error(
                        crate::validate::IssueCode::BusinessRule,
                        "this Idempotency-Key was used before for a different request; use a new key for a new request",
                    )
                    .at("Idempotency-Key"),
                ));
            }
        }
    }
    // The audit entry and the outbox row are written in the handover's transaction: a stored
    // handover always has both (a replay finds its delivery queued).
    if !(inserted && handover_id == new.id) {
        entry.reason = Some(format!("received again; the stored handover {handover_id} is returned"));
        if handover_id != new.id {
            entry.objects[0] = format!("Handover/{handover_id}");
        }
    }
    audit::record(&mut tx, entry).await.map_err(ApiError::internal)?;
    crate::deliver::outbox::enqueue(&mut tx, &new.id, &new.receiver).await?;
    tx.commit().await?;
    crate::deliver::outbox::wake();
    if inserted {
        // New facade rows and agreements for the patient: cached access facts are stale.
        state.access.invalidate();
    }

    let location = format!("/handovers/{handover_id}");
    if inserted && handover_id == new.id {
        state.metrics.handover("created");
        tracing::info!(handover = %handover_id, resources = new.resource_count, "handover stored");
        Ok(summary_response(StatusCode::CREATED, &location, summary))
    } else {
        state.metrics.handover("duplicate");
        tracing::info!(handover = %handover_id, "handover received again; returning the stored one");
        let stored = state
            .store
            .handover(&handover_id)
            .await?
            .ok_or_else(|| ApiError::internal("idempotent handover vanished"))?;
        let body: Value = serde_json::from_str(&stored.summary).map_err(ApiError::internal)?;
        Ok(summary_response(StatusCode::OK, &location, body))
    }
}

/// Decides the sender ([`crate::policy::parties::decide_sender`]: the organisation in the
/// token, or one of its configured AGB codes) and converts with it, so that resource ids
/// are those of the real sender. The record's author is only consulted (one extra
/// conversion at most) when the token's organisation has configured AGB codes and no
/// sender was named.
async fn convert_for_handover(
    state: &AppState,
    body: &Bytes,
    kind: &BodyKind,
    parties: &Parties,
    caller: &Caller,
    entry: &mut AuditEntry,
    permits: PermitSlot,
) -> Result<(Conversion, (Sender, Decision)), ApiError> {
    input::check_work(body, state.limits.max_json_values)?;
    let senders = &state.access.senders;
    let claimed = parties.sender.as_ref().map(|s| (s.code(), s.value()));
    let mut decide = |author: Option<&str>| {
        decide_sender(&caller.ura, claimed, author, senders).map_err(|d| {
            entry.rule = Some(d.rule.to_owned());
            entry.reason = Some(format!("HTTP 403: {}", d.reason));
            ApiError::forbidden(d.reason)
        })
    };
    let opts = |sender: Option<String>| ConvertOptions {
        format: kind.format,
        sender,
        output: OutputKind::Bundle,
        max_issues: Some(state.limits.max_issues),
        cancel: None,
        strict: false,
    };
    if claimed.is_some() || senders.agb_codes(&caller.ura).next().is_none() {
        let decided = decide(None)?;
        let conversion = convert_blocking(body.clone(), opts(Some(decided.0.id.clone())), permits).await?;
        return Ok((conversion, decided));
    }
    let conversion = convert_blocking(body.clone(), opts(None), permits.clone()).await?;
    let decided = decide(Some(&conversion.sender))?;
    if decided.0.id == conversion.sender {
        return Ok((conversion, decided));
    }
    let conversion = convert_blocking(body.clone(), opts(Some(decided.0.id.clone())), permits).await?;
    Ok((conversion, decided))
}

/// What identifies a request for the Idempotency-Key rule.
fn request_fingerprint(p: &HandoverParams, parties: &Parties, kind: &BodyKind, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [
        Some(parties.receiver.to_string()),
        parties.sender.as_ref().map(ToString::to_string),
        parties.lead_practitioner.as_ref().map(ToString::to_string),
        parties.care_form.clone(),
        parties.referral_reason.clone(),
        p.format.clone(),
        kind.media_type.clone(),
    ] {
        h.update(part.unwrap_or_default().as_bytes());
        h.update([0u8]);
    }
    h.update(body);
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
/// minimises the conversion in place. A refusal is `403` with the rule and reason, and the
/// audit entry says which rule refused; a permit records in the entry which categories were
/// removed and why.
async fn decide_transfer(
    state: &AppState,
    senders: &[crate::policy::PartyId],
    parties: &Parties,
    conversion: &mut Conversion,
    entry: &mut AuditEntry,
) -> Result<Transfer, ApiError> {
    use crate::policy::{TransferDecision, TransferRequest};
    let (_, bsn) = patient_of(conversion);
    entry.patient_bsn = bsn.clone();
    let Some(bsn) = bsn.and_then(|b| crate::model::Bsn::parse(&b).ok()) else {
        entry.rule = Some("transfer.no-bsn".to_owned());
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::validate::Issue::error(
                crate::validate::IssueCode::BusinessRule,
                "the record does not identify the patient by BSN; a handover under an agreement needs it (consent and access are per patient)",
            ),
        ));
    };
    let receiver = [parties.receiver.clone()];
    let categories: std::collections::BTreeSet<_> = conversion.resources.iter().map(|r| r.category).collect();
    let consents = super::access::parse_consents(&state.store.consents_of(bsn.as_str()).await?)?;
    let decision = crate::policy::decide_transfer(
        &state.access.agreements,
        &TransferRequest {
            senders,
            receiver: &receiver,
            patient: &bsn,
            day: super::access::today(),
            categories: &categories,
            consents: &consents,
        },
    );
    match decision {
        TransferDecision::Refused { rule, ref reason } => {
            entry.rule = Some(rule.to_owned());
            entry.reason = Some(format!("HTTP 403: {reason}"));
            Err(ApiError::new(StatusCode::FORBIDDEN, decision.to_outcome()))
        }
        TransferDecision::Permitted { ref agreements, ref removed, .. } => {
            let gone: std::collections::BTreeSet<_> = removed.keys().copied().collect();
            let done = super::transfer::minimise(conversion, &gone);
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
            summary["outcome"] = decision.to_outcome().to_fhir();
            entry.rule = Some("transfer.permitted".to_owned());
            let mut reason = format!("under {}", agreements.join(", "));
            for (c, why) in removed {
                reason.push_str(&format!("; removed {c}: {why}"));
            }
            entry.reason = Some(reason);
            let agreements = state
                .access
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
pub(super) fn categories_of(c: &Conversion) -> Vec<String> {
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
pub(super) fn patient_of(c: &Conversion) -> (Option<String>, Option<String>) {
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
fn summary(id: &str, now: &str, sender: &str, parties: &Parties, c: &Conversion) -> Value {
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
        "receiver": parties.receiver.to_string(),
        "leadPractitioner": parties.lead_practitioner.as_ref().map(ToString::to_string),
        "careForm": parties.care_form,
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
        crate::validate::Outcome { issues, ..Default::default() }.to_fhir()
    }
}

fn summary_response(status: StatusCode, location: &str, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[utoipa::path(
    get,
    path = "/handovers/{id}",
    tag = "handovers",
    params(("id" = String, Path, description = "The handover id (UUID)")),
    responses(
        (status = 200, description = "The handover's status and summary", content_type = "application/json"),
        (status = 401, description = "No valid bearer token"),
        (status = 404, description = "No such handover visible to the caller's organisation"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // One entry per request, permitted or not, written before the answer is sent.
    let mut entry = audit_api::draft(AuditAction::Read, &caller, &headers);
    entry.objects = vec![format!("Handover/{}", id.chars().take(64).collect::<String>())];
    let (h, show_reason) = match visible_handover(&state, &caller, &id, &mut entry).await {
        Ok(h) => h,
        Err(e) => {
            if entry.outcome == AuditOutcome::Success {
                entry = audit_api::refusal(entry, AuditAction::Read, &e);
            }
            audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
            return Err(e);
        }
    };
    // Permitted: the entry is written while the delivery state is read (two connections),
    // and the answer waits for both.
    let (delivery, recorded) = tokio::join!(
        crate::deliver::outbox::delivery_json(&state.store, &id),
        audit::record_alone(&state.store, &entry)
    );
    recorded.map_err(ApiError::internal)?;
    let mut body: Value = serde_json::from_str(&h.summary).map_err(ApiError::internal)?;
    body["status"] = json!(h.status);
    // The referral question is for the patient's team and the sender only.
    body["referralReason"] = if show_reason { json!(h.referral_reason) } else { Value::Null };
    body["source"] = json!({
        "format": h.source_format,
        "sha256": h.source_sha256,
        "size": h.source_size,
    });
    body["submittedBy"] = json!({ "ura": h.submitted_by_ura });
    body["delivery"] = delivery?;
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// The handover if the caller's organisation sent or received it, and whether the caller
/// may see its referral reason ([`crate::policy::parties::decide_handover_read`]); the
/// decision goes into `entry`.
async fn visible_handover(
    state: &AppState,
    caller: &Caller,
    id: &str,
    entry: &mut AuditEntry,
) -> Result<(crate::store::HandoverRow, bool), ApiError> {
    use crate::policy::parties::{decide_handover_read, HandoverParties};
    let not_found = || ApiError::not_found(format!("no handover {id} is visible to your organisation"));
    if uuid::Uuid::parse_str(id).is_err() {
        entry.rule = Some(crate::policy::rules::HANDOVER_UNKNOWN.to_owned());
        return Err(not_found());
    }
    let Some(h) = state.store.handover(id).await? else {
        entry.rule = Some(crate::policy::rules::HANDOVER_UNKNOWN.to_owned());
        return Err(not_found());
    };
    entry.patient_bsn = h.patient_bsn.clone();
    let teams = match &h.patient_bsn {
        Some(bsn) => super::access::parse_teams(&state.store.care_teams_of(bsn).await?),
        None => Vec::new(),
    };
    let parties = HandoverParties { submitted_by_ura: &h.submitted_by_ura, receiver: &h.receiver };
    match decide_handover_read(&caller.uzi, &caller.uzi_role, &caller.ura, parties, &teams, super::access::today()) {
        Ok((d, show_reason)) => {
            entry.rule = Some(d.rule.to_owned());
            entry.reason = Some(d.reason);
            Ok((h, show_reason))
        }
        Err(d) => {
            // Anyone else does not learn that it exists (404, recorded as a denial).
            entry.rule = Some(d.rule.to_owned());
            entry.reason = Some(d.reason);
            entry.outcome = AuditOutcome::Denied;
            Err(not_found())
        }
    }
}
