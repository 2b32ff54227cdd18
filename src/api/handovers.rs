//! `POST /handovers` and `GET /handovers/{id}`: a sender hands a patient record over to a
//! receiving GZSP provider and its lead practitioner.
//!
//! `POST` parses the request, calls [`crate::handover::receive`] (which decides, converts,
//! minimises and stores the handover with its audit entry and outbox row in one
//! transaction) and renders the receipt: `201 Created` for a new handover, `200 OK` (as
//! FHIR's conditional create does) when the same record or the same `Idempotency-Key` was
//! handed over before, an OperationOutcome for a [`crate::handover::HandoverError`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit as audit_api;
use super::auth::Caller;
use super::error::ApiError;
use super::guard::PermitSlot;
use super::input::{self, RecordRequest};
use super::state::AppState;
use crate::audit::{self, AuditAction, AuditEntry, AuditOutcome};
use crate::convert::{Conversion, ConvertOptions};
use crate::handover::{self, Submission, Submitter};
use crate::model::PartyId;

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
    lead_practitioner: Option<input::PersonId>,
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
        p.lead_practitioner.as_deref().map(|s| input::PersonId::parse("lead-practitioner", s)).transpose()?;
    let care_form = p.care_form.as_deref().map(input::care_form).transpose()?;
    let referral_reason = input::text_header(headers, REFERRAL_REASON_HEADER, 4000)?;
    Ok(Parties { receiver, sender, lead_practitioner, care_form, referral_reason })
}

/// Converts on the blocking pool ([`handover::convert_blocking`]), the request's permits
/// going with the work.
pub async fn convert_blocking(body: Bytes, opts: ConvertOptions, permits: PermitSlot) -> Result<Conversion, ApiError> {
    Ok(handover::convert_blocking(body, opts, permits).await?)
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
    request: RecordRequest<HandoverParams>,
) -> Result<Response, ApiError> {
    // One audit entry per request: the handler fills in what it learns and appends it in
    // the handover's transaction; a refused request is recorded here, on its own.
    let mut entry = request.draft(AuditAction::HandoverReceived);
    let result = create_handover(&state, request, &mut entry).await;
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
    request: RecordRequest<HandoverParams>,
    entry: &mut AuditEntry,
) -> Result<Response, ApiError> {
    let RecordRequest { caller, permits, params, headers, body } = request;
    caller.require_treatment_purpose()?;
    let parties = parties(&params, &headers)?;
    // The intended receiver, so that a refusal counts for that provider (the evidence
    // report); receive() replaces it with the handover and its resources once stored.
    entry.objects.clear();
    entry.name_holder(parties.receiver.value());
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
    // `input::party` with only `ura` allowed gives a URA.
    let receiver_ura = parties
        .receiver
        .ura()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("receiver", "the receiver must be written ura|<URA>"))?;
    if let Err(e) = input::check_work(&body, state.limits.max_json_values) {
        state.metrics.handover("rejected");
        return Err(e);
    }
    let submission = Submission {
        body,
        format: kind.format,
        media_type: kind.media_type,
        requested_format: params.format,
        receiver_ura,
        sender: parties.sender.as_ref().map(ToString::to_string),
        lead_practitioner: parties.lead_practitioner.as_ref().map(ToString::to_string),
        care_form: parties.care_form,
        referral_reason: parties.referral_reason,
        idempotency_key,
        submitter: Submitter { uzi: caller.uzi.clone(), role: caller.uzi_role.clone(), ura: caller.ura.clone() },
    };
    let ctx = handover::Context {
        store: &state.store,
        agreements: &state.access.agreements,
        senders: &state.access.senders,
        max_issues: state.limits.max_issues,
    };
    let receipt = match handover::receive(ctx, &submission, entry, permits).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(counter) = e.counted_as() {
                state.metrics.handover(counter);
            }
            return Err(e.into());
        }
    };
    if receipt.stored {
        // New facade rows and agreements for the patient: cached access facts are stale.
        state.access.invalidate();
    }
    let location = format!("/handovers/{}", receipt.id);
    if receipt.created {
        state.metrics.handover("created");
        Ok(summary_response(StatusCode::CREATED, &location, receipt.summary))
    } else {
        state.metrics.handover("duplicate");
        Ok(summary_response(StatusCode::OK, &location, receipt.summary))
    }
}

/// The stored summary as it is: it was serialised once, when the handover was received.
fn summary_response(status: StatusCode, location: &str, summary: String) -> Response {
    let mut r =
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], summary).into_response();
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
    entry.name_handover(&id.chars().take(64).collect::<String>());
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
        Some(bsn) => super::access_control::parse_teams(&state.store.care_teams_of(bsn).await?),
        None => Vec::new(),
    };
    let parties = HandoverParties { submitted_by_ura: &h.submitted_by_ura, receiver: &h.receiver };
    match decide_handover_read(&caller.uzi, &caller.uzi_role, &caller.ura, parties, &teams, crate::policy::today()) {
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
