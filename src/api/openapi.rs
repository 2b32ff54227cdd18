//! `GET /openapi.json`, generated from the handlers' annotations (utoipa), so the
//! description cannot drift from the code. No UI is bundled.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, fhir, handovers, health, report};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "overdracht",
        description = "Medical-data handover for Dutch GZSP care. Every error is a FHIR OperationOutcome (application/fhir+json). Tokens: bearer JWT with the claims uzi, uzi_role, ura, purpose_of_use."
    ),
    paths(
        handovers::create,
        handovers::get,
        fhir::convert,
        fhir::validate,
        fhir::metadata,
        audit::search,
        audit::access_log,
        audit::flagged,
        audit::create_review,
        report::report,
        health::live,
        health::ready,
        metrics_doc,
        facade_read_doc,
        facade_search_doc,
        everything_doc,
        care_team_put_doc,
        care_team_get_doc,
        care_team_search_doc,
        consent_put_doc,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "handovers", description = "A sender hands a patient record over to a GZSP provider"),
        (name = "fhir", description = "FHIR operations and the CapabilityStatement"),
        (name = "audit", description = "The NEN 7513 audit trail: AuditEvents and the patient's access log"),
        (name = "facade", description = "The FHIR read facade for care-team members, decided by the access policy; CareTeam and Consent management"),
        (name = "report", description = "The contracting evidence report: agreements, team access, and how they were enforced"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Documentation only: `GET /metrics` is served by `metrics::metrics`.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text")))]
#[allow(dead_code)]
fn metrics_doc() {}

// Documentation only: the facade's handlers take `Query<Vec<_>>` and raw bodies, so they
// are described here (served by `facade` and `care_team`).
#[utoipa::path(get, path = "/fhir/{type}/{id}", tag = "facade",
    params(("type" = String, Path, description = "FHIR resource type"), ("id" = String, Path, description = "resource id"),
        ("x-break-glass-reason" = Option<String>, Header, description = "Break-the-glass: a stated reason, percent-encoded; audited and flagged for review")),
    responses((status = 200, description = "The resource", content_type = "application/fhir+json"),
        (status = 401, description = "No valid bearer token"),
        (status = 404, description = "Unknown, or not visible to the caller (the same answer)")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn facade_read_doc() {}

#[utoipa::path(get, path = "/fhir/{type}", tag = "facade",
    params(("type" = String, Path, description = "FHIR resource type"),
        ("patient" = Option<String>, Query, description = "Required except for Patient: Patient/<id> or <id>"),
        ("_id" = Option<String>, Query, description = "Resource id (required for Patient)"),
        ("_count" = Option<u32>, Query, description = "Page size (default 50, max 500)"),
        ("_offset" = Option<u32>, Query, description = "First result (paging over the filtered results; at most 1000000)"),
        ("x-break-glass-reason" = Option<String>, Header, description = "Break-the-glass reason, percent-encoded")),
    responses((status = 200, description = "searchset Bundle, filtered item by item before total and paging", content_type = "application/fhir+json"),
        (status = 400, description = "Unsupported parameter (_include, _revinclude, ...) or no patient")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn facade_search_doc() {}

#[utoipa::path(get, path = "/fhir/Patient/{id}/$everything", tag = "facade",
    params(("id" = String, Path, description = "Patient id"),
        ("x-break-glass-reason" = Option<String>, Header, description = "Break-the-glass reason, percent-encoded")),
    responses((status = 200, description = "searchset Bundle of what the caller may see", content_type = "application/fhir+json"),
        (status = 404, description = "Unknown patient, or nothing visible to the caller")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn everything_doc() {}

#[utoipa::path(put, path = "/fhir/CareTeam/{id}", tag = "facade",
    params(("id" = String, Path, description = "CareTeam id (equal to the body's id)"),
        ("prefer" = Option<String>, Header, description = "return=representation for the stored team; default an OperationOutcome with the warnings")),
    request_body(content = String, description = "nl-core-CareTeam", content_type = "application/fhir+json"),
    responses((status = 201, description = "Created"), (status = 200, description = "Updated"),
        (status = 403, description = "Not the team's lead practitioner or an administrator of its managing organisation"),
        (status = 422, description = "The GZSP rules reject the team (OperationOutcome names the rule)")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn care_team_put_doc() {}

#[utoipa::path(get, path = "/fhir/CareTeam/{id}", tag = "facade",
    params(("id" = String, Path, description = "CareTeam id")),
    responses((status = 200, description = "The team (members and administrators)", content_type = "application/fhir+json"),
        (status = 404, description = "Unknown or not visible")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn care_team_get_doc() {}

#[utoipa::path(get, path = "/fhir/CareTeam", tag = "facade",
    params(("patient" = Option<String>, Query, description = "Patient/<id>"),
        ("patient:identifier" = Option<String>, Query, description = "http://fhir.nl/fhir/NamingSystem/bsn|<BSN>")),
    responses((status = 200, description = "searchset Bundle of the teams visible to the caller", content_type = "application/fhir+json")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn care_team_search_doc() {}

#[utoipa::path(put, path = "/fhir/Consent/{id}", tag = "facade",
    params(("id" = String, Path, description = "Consent id (equal to the body's id)")),
    request_body(content = String, description = "A patient's objection or explicit consent (FHIR Consent)", content_type = "application/fhir+json"),
    responses((status = 201, description = "Created"), (status = 200, description = "Updated"),
        (status = 403, description = "Not a lead practitioner of the patient's team or an administrator"),
        (status = 422, description = "Not an objection or consent overdracht understands")),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn consent_put_doc() {}

pub async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(s) => ([(axum::http::header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}
