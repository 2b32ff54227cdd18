//! The FHIR side of the API: `$convert`, `$validate` and the CapabilityStatement.
//!
//! Both operations take patient data, so both need a token with a care purpose. The
//! CapabilityStatement lists exactly what this build serves: no resource interactions yet
//! (the read facade is issue 6), two system-level operations.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{fhir_response, ApiError};
use super::handovers::convert_blocking;
use super::input::{self, PartyId};
use super::state::AppState;
use crate::convert::{ConvertOptions, OutputKind};
use crate::validate::{Issue, IssueCode};

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
    caller: Caller,
    Query(params): Query<ConvertParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_treatment_purpose()?;
    let kind = input::body_kind(&headers, params.format.as_deref())?;
    let sender = params
        .sender
        .as_deref()
        .map(|s| PartyId::parse("sender", s, &["agb-z", "ura"]).map(|p| p.to_string()))
        .transpose()?;
    let output = match params.output.as_deref() {
        None | Some("bundle") => OutputKind::Bundle,
        Some("ndjson") => OutputKind::Ndjson,
        Some(other) => {
            return Err(ApiError::bad_request("_output", format!("unknown _output {other:?}; use bundle or ndjson")))
        }
    };
    input::require_body(&body)?;
    let c = convert_blocking(body, ConvertOptions { format: kind.format, sender, output }).await?;
    let unmapped = c.outcome.issues.len().to_string();
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
    caller: Caller,
    Query(params): Query<ValidateParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
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
    let doc: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Issue::error(IssueCode::Structure, format!("not JSON: {e}")).at(format!(
                "line {}, column {}",
                e.line(),
                e.column()
            )),
        )
    })?;
    let (resource, mut profile) = if doc["resourceType"] == "Parameters" {
        let params = doc["parameter"].as_array().cloned().unwrap_or_default();
        let resource = params
            .iter()
            .find(|p| p["name"] == "resource")
            .map(|p| p["resource"].clone())
            .filter(Value::is_object)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "Parameters.parameter",
                    "Parameters must hold a parameter named resource with the resource to validate",
                )
            })?;
        let profile = params
            .iter()
            .find(|p| p["name"] == "profile")
            .and_then(|p| p["valueUri"].as_str().or_else(|| p["valueCanonical"].as_str()).map(str::to_owned));
        (resource, profile)
    } else {
        (doc, None)
    };
    if params.profile.is_some() {
        profile = params.profile;
    }
    let validator = state.validator.clone();
    let outcome = tokio::task::spawn_blocking(move || validator.validate(&resource, profile.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    Ok(fhir_response(StatusCode::OK, &outcome.to_fhir()))
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
            "documentation": "No resource interactions are served yet. Handovers are posted to /handovers (see /openapi.json).",
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
