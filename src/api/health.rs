//! Liveness and readiness for orchestrators and load balancers.
//!
//! Live means the process answers; ready means it can do its work, which needs the
//! database. Neither needs a token or says anything about patients. Ready also says which
//! evaluator decides access (`policy.evaluator`: `native` or `rego`, and why), as the start-up
//! log does.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;
use axum::response::IntoResponse;

#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process answers")))]
pub async fn live() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "live"}))).into_response()
}

/// The diagnostics of `/health/ready` while the service shuts down.
pub const DRAINING: &str = "draining: the service is shutting down; send requests to another instance";

#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "The database answers; `database` names its engine (sqlite, postgresql)"),
              (status = 503, description = "Not ready (OperationOutcome): shutting down (diagnostics start with `draining`), or the database does not answer")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return ApiError::unavailable(DRAINING).into_response();
    }
    match state.store.ping().await {
        Ok(()) => {
            let path = state.access.engine.path();
            let policy = json!({"evaluator": path.evaluator(), "why": path.why()});
            let body = json!({"status": "ready", "database": state.store.backend().name(), "policy": policy});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::unavailable("the database does not answer").into_response()
        }
    }
}
