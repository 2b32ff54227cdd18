//! The FHIR side of the API: `$convert`, `$validate` and the CapabilityStatement.
//!
//! Both operations take patient data, so both need a token with a care purpose. The
//! CapabilityStatement lists exactly what this build serves: the read facade's types with
//! their search parameters, CareTeam and Consent updates, `Patient/$everything`, and two
//! system-level operations.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::audit as audit_api;
use super::error::{fhir_response, ApiError};
use super::handovers::convert_blocking;
use super::input::{self, RecordRequest};
use super::state::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::convert::{ConvertOptions, OutputKind};

/// Canonical URL of our `$convert` OperationDefinition.
pub const CONVERT_OPERATION: &str = "https://w3id.org/overdracht/fhir/OperationDefinition/convert";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConvertParams {
    /// Force the input format: fhir-stu3, fhir-r4, flat, hl7v3-ps.
    pub format: Option<String>,
    /// The sender identity used in resource ids, `agb-z|…` or `ura|…` (default: from the record).
    pub sender: Option<String>,
    /// `bundle` (default): a transaction Bundle; `ndjson`: one resource per line.
    #[serde(rename = "_output")]
    #[param(rename = "_output")]
    pub output: Option<String>,
}

#[utoipa::path(
    post,
    path = "/fhir/$convert",
    tag = "fhir",
    params(ConvertParams),
    request_body(content = String, description = "A patient record in any supported format", content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "The transaction Bundle (or NDJSON); nothing is stored", content_type = "application/fhir+json"),
        (status = 400, description = "Malformed input (OperationOutcome)"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Purpose of use does not allow it"),
        (status = 415, description = "Unsupported media type"),
        (status = 422, description = "The record breaks a rule"),
    ),
    security(("bearer" = []))
)]
pub async fn convert(
    State(state): State<AppState>,
    request: RecordRequest<ConvertParams>,
) -> Result<Response, ApiError> {
    // A conversion handles patient data even though nothing is stored: one entry per
    // request (patient, categories; no objects, as nothing is kept), before the answer.
    let entry = request.draft(AuditAction::Conversion);
    audit_api::recorded_alone(&state, entry, async |entry| convert_record(&state, request, entry).await).await
}

async fn convert_record(
    state: &AppState,
    request: RecordRequest<ConvertParams>,
    entry: &mut AuditEntry,
) -> Result<Response, ApiError> {
    let RecordRequest { caller, permits, params, headers, body } = request;
    caller.require_treatment_purpose()?;
    let kind = input::body_kind(&headers, params.format.as_deref())?;
    let sender = params
        .sender
        .as_deref()
        .map(|s| input::party("sender", s, &["agb-z", "ura"]).map(|p| p.to_string()))
        .transpose()?;
    let output = match params.output.as_deref() {
        None | Some("bundle") => OutputKind::Bundle,
        Some("ndjson") => OutputKind::Ndjson,
        Some(other) => {
            return Err(ApiError::bad_request("_output", format!("unknown _output {other:?}; use bundle or ndjson")))
        }
    };
    input::require_body(&body)?;
    input::check_work(&body, state.limits.max_json_values)?;
    let opts = ConvertOptions {
        format: kind.format,
        sender,
        output,
        max_issues: Some(state.limits.max_issues),
        cancel: None,
        strict: false,
    };
    let c = convert_blocking(body, opts, permits).await?;
    entry.patient_bsn = crate::handover::patient_of(&c).1;
    entry.categories = crate::handover::categories_of(&c);
    entry.reason = Some(format!("converted {} resources; nothing stored", c.resources.len()));
    let unmapped = (c.outcome.issues.len() + c.outcome.omitted()).to_string();
    let mut r = match output {
        OutputKind::Bundle => fhir_response(StatusCode::OK, &c.bundle()),
        OutputKind::Ndjson => {
            let mut r = c.ndjson().into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+ndjson"));
            r
        }
    };
    if let Ok(v) = HeaderValue::from_str(&unmapped) {
        r.headers_mut().insert("overdracht-conversion-issues", v);
    }
    Ok(r)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateParams {
    /// Validate against this profile (canonical URL) instead of the resource's meta.profile.
    pub profile: Option<String>,
}

#[utoipa::path(
    post,
    path = "/fhir/$validate",
    tag = "fhir",
    params(ValidateParams),
    request_body(content = String, description = "A FHIR R4 resource, or Parameters with `resource` (and optionally `profile`)", content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "OperationOutcome with the validation result (errors included)", content_type = "application/fhir+json"),
        (status = 400, description = "Not JSON (OperationOutcome with line and column)"),
        (status = 401, description = "No valid bearer token"),
        (status = 415, description = "Not FHIR JSON"),
    ),
    security(("bearer" = []))
)]
pub async fn validate(
    State(state): State<AppState>,
    request: RecordRequest<ValidateParams>,
) -> Result<Response, ApiError> {
    // Validation handles a (possibly real) patient's data as $convert does: one entry per
    // request with who, when and the resource type; nothing of the content.
    let entry = request.draft(AuditAction::Validation);
    audit_api::recorded_alone(&state, entry, async |entry| validate_resource(&state, request, entry).await).await
}

/// The resource type named in a document, if it looks like one (for the audit entry).
fn type_name(doc: &Value) -> Option<String> {
    let t = doc.get("resourceType")?.as_str()?;
    (!t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphabetic())).then(|| t.to_owned())
}

async fn validate_resource(
    state: &AppState,
    request: RecordRequest<ValidateParams>,
    entry: &mut AuditEntry,
) -> Result<Response, ApiError> {
    let RecordRequest { caller, permits, params, headers, body } = request;
    caller.require_treatment_purpose()?;
    let media = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    if let Some(m) = &media {
        let essence = m.split(';').next().unwrap_or("").trim();
        if essence != "application/fhir+json" && essence != "application/json" {
            return Err(ApiError::unsupported_media_type(format!(
                "$validate reads FHIR JSON (application/fhir+json), not {essence:?}"
            )));
        }
    }
    input::require_body(&body)?;
    input::check_work(&body, state.limits.max_json_values)?;
    let doc: Value = input::json_body(&body)?;

    drop(body);
    let (resource, mut profile) = if doc["resourceType"] == "Parameters" {
        let mut doc = doc;
        let params = doc["parameter"].as_array_mut().map(std::mem::take).unwrap_or_default();
        let profile = params
            .iter()
            .find(|p| p["name"] == "profile")
            .and_then(|p| p["valueUri"].as_str().or_else(|| p["valueCanonical"].as_str()).map(str::to_owned));
        let resource = params
            .into_iter()
            .find(|p| p["name"] == "resource")
            .map(|mut p| p["resource"].take())
            .filter(Value::is_object)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "Parameters.parameter",
                    "Parameters must hold a parameter named resource with the resource to validate",
                )
            })?;
        (resource, profile)
    } else {
        (doc, None)
    };
    if params.profile.is_some() {
        profile = params.profile;
    }
    entry.objects = type_name(&resource).into_iter().collect();
    let validator = state.validator.clone();
    let (max_issues, max_bytes) = (state.limits.max_issues, state.limits.max_response_bytes);
    let (answer, issues, invalid) = tokio::task::spawn_blocking(move || {
        let outcome = validator.validate(&resource, profile.as_deref(), max_issues);
        drop((resource, permits));
        let counts = (outcome.issues.len() + outcome.omitted(), outcome.has_errors());
        (super::validate::bounded_outcome(outcome, max_bytes), counts.0, counts.1)
    })
    .await
    .map_err(ApiError::internal)?;
    entry.reason =
        Some(format!("validated: {issues} issues, {}; nothing stored", if invalid { "invalid" } else { "valid" }));
    let mut r = Response::new(axum::body::Body::from(answer));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(super::error::FHIR_JSON));
    Ok(r)
}

#[utoipa::path(
    get,
    path = "/fhir/metadata",
    tag = "fhir",
    responses((status = 200, description = "The CapabilityStatement", content_type = "application/fhir+json"))
)]
pub async fn metadata(State(state): State<AppState>) -> Response {
    fhir_response(StatusCode::OK, &capability_statement(state.validator.description()))
}

/// The resource types and their interactions: the facade's types (read, search by
/// patient), CareTeam (read, update, search by patient), Consent (also update: the patient's
/// objections and explicit consents).
fn resources() -> Value {
    let search = |extra: &[(&str, &str, &str)]| -> Value {
        let mut params = vec![
            json!({"name": "_id", "type": "token", "documentation": "the resource id"}),
            json!({"name": "_count", "type": "number", "documentation": "page size (default 50, at most 500)"}),
            json!({"name": "_offset", "type": "number", "documentation": "position of the first result (paging over the filtered results; 0 to 1000000, 400 above)"}),
        ];
        params.extend(extra.iter().map(|(n, t, d)| json!({"name": n, "type": t, "documentation": d})));
        Value::Array(params)
    };
    let patient = [("patient", "reference", "required: Patient/<id> or <id>; one patient per search")];
    let mut out: Vec<Value> = super::facade::SERVED_TYPES
        .iter()
        .filter(|t| **t != "Consent")
        .map(|t| {
            let mut r = json!({
                "type": t,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": if *t == "Patient" { search(&[]) } else { search(&patient) },
                "documentation": "Read-only; filtered by the access policy per resource (data category in meta.security). _include/_revinclude are not supported and refused with 400."
            });
            if *t == "Patient" {
                r["operation"] = json!([{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    "documentation": "GET /fhir/Patient/{id}/$everything: every resource of the patient the caller may see; 404 when none"}]);
                r["documentation"] = json!("Read-only; search needs _id. Filtered by the access policy.");
            }
            r
        })
        .collect();
    out.push(json!({
        "type": "CareTeam",
        "profile": crate::policy::care_team::CARE_TEAM_PROFILE,
        "interaction": [{"code": "read"}, {"code": "update"}, {"code": "search-type"}],
        "updateCreate": true,
        "searchParam": [
            {"name": "patient", "type": "reference", "documentation": "Patient/<id> of a handed-over patient"},
            {"name": "patient:identifier", "type": "token", "documentation": "http://fhir.nl/fhir/NamingSystem/bsn|<BSN>"}
        ],
        "documentation": "GZSP rules checked on update (422 with the rule id; warnings in the OperationOutcome answer, or Prefer: return=representation). Written by the team's lead practitioner or an administrator of its managing organisation; read by its members and administrators."
    }));
    out.push(json!({
        "type": "Consent",
        "interaction": [{"code": "read"}, {"code": "update"}, {"code": "search-type"}],
        "updateCreate": true,
        "searchParam": search(&patient),
        "documentation": "update: a patient's objection or explicit consent (profile https://w3id.org/overdracht/fhir/StructureDefinition/sharing-consent), by the lead practitioner of one of the patient's teams or an administrator. read and search-type: such consents for those who may write them, and the treatment directives handovers brought (facade, by the access policy)."
    }));
    out.push(json!({
        "type": "AuditEvent",
        "profile": crate::audit::event::PROFILE,
        "supportedProfile": ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead", "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientQuery"],
        "interaction": [{"code": "search-type"}],
        "searchParam": [
            {"name": "patient", "type": "reference", "documentation": "the patient's BSN (999911120 or http://fhir.nl/fhir/NamingSystem/bsn|999911120); required unless the caller is a privacy officer"},
            {"name": "date", "type": "date", "documentation": "repeatable: [ge|gt|le|lt|eq]YYYY-MM-DD or a date-time with offset"},
            {"name": "agent", "type": "token", "documentation": "the acting user's UZI number (or organisation URA)"},
            {"name": "entity-type", "type": "token", "documentation": "resource type of an object (e.g. Condition, Handover)"},
            {"name": "subtype", "type": "token", "documentation": "action codes of https://w3id.org/overdracht/fhir/CodeSystem/audit-action, comma-separated"},
            {"name": "_count", "type": "number", "documentation": "page size (default 100, at most 1000)"}
        ],
        "documentation": "The NEN 7513 audit trail as IHE BALP AuditEvents, newest first; append-only and hash-chained (overdracht audit verify). Every search is itself recorded. Who may search: privacy officers (audit.privacy_officer_roles) the entries of their own organisation; otherwise one patient: every entry for the organisation that received that patient's handover, the sender's own entries for the organisation that sent it."
    }));
    Value::Array(out)
}

/// What this build serves, and nothing more.
pub fn capability_statement(validator: &str) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "kind": "instance",
        "software": { "name": "overdracht", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "overdracht: GP and paediatrician records to FHIR R4 nl-core for GZSP care" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "documentation": "The read facade serves what handovers brought, filtered by the access policy (team role, membership period, treatment state, the patient's agreements and consents; deny by default). A resource the caller may not see answers 404 as if absent. Searches are for one patient; results are filtered item by item before total and paging. Break-the-glass: header X-Break-Glass-Reason (percent-encoded), audited and flagged. Handovers are posted to /handovers (see /openapi.json).",
            "resource": resources(),
            "security": {
                "service": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth", "display": "OAuth" }] }],
                "description": "Bearer JWT (RS256, ES256 or EdDSA) from a trusted issuer, with the claims uzi, uzi_role, ura and purpose_of_use; purpose TREAT, COC or ETREAT for patient data."
            },
            "operation": [
                { "name": "convert", "definition": CONVERT_OPERATION,
                  "documentation": "POST /fhir/$convert: a record (FHIR STU3/R4 JSON, flat JSON, NHG Professional Summary XML) to a transaction Bundle of nl-core resources; nothing is stored." },
                { "name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                  "documentation": format!("POST /fhir/$validate at system level: {validator}.") }
            ]
        }]
    })
}
