//! `GET /openapi.json`, generated from the handlers' annotations (utoipa), so the
//! description cannot drift from the code. No UI is bundled.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, fhir, handovers, health};

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
        health::live,
        health::ready,
        metrics_doc,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "handovers", description = "A sender hands a patient record over to a GZSP provider"),
        (name = "fhir", description = "FHIR operations and the CapabilityStatement"),
        (name = "audit", description = "The NEN 7513 audit trail: AuditEvents and the patient's access log"),
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

pub async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(s) => ([(axum::http::header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}
