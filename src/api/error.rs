//! Every error the API returns is a FHIR `OperationOutcome` with the right HTTP status.
//!
//! Handlers return [`ApiError`]. Errors raised outside the handlers (no route, wrong method,
//! a body over the limit in a layer, a timeout, overload, a panic) are turned into
//! OperationOutcomes by [`outcome_for_bare_errors`] and the layers in `startup`, so a client
//! never has to parse anything but FHIR.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::validate::{Issue, IssueCode, Outcome};

/// The FHIR JSON media type of every response body we produce (except metrics).
pub const FHIR_JSON: &str = "application/fhir+json";

/// An error answer: status, OperationOutcome and optional extra headers.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub outcome: Outcome,
    /// `WWW-Authenticate` for 401.
    pub www_authenticate: Option<String>,
    /// `Retry-After` (seconds) for 503 and 429.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, outcome: impl Into<Outcome>) -> Self {
        ApiError { status, outcome: outcome.into(), www_authenticate: None, retry_after: None }
    }

    /// 400 with one issue at `expression` (a parameter, header or path in the body).
    pub fn bad_request(expression: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Issue::error(IssueCode::Invalid, message).at(expression))
    }

    /// 401: no usable token. `error` is an RFC 6750 error code, absent when no token came.
    pub fn unauthorized(error: Option<&str>, message: impl Into<String>) -> Self {
        let message = message.into();
        let challenge = match error {
            Some(code) => format!(
                "Bearer realm=\"overdracht\", error=\"{code}\", error_description=\"{}\"",
                message.replace('"', "'")
            ),
            None => "Bearer realm=\"overdracht\"".to_owned(),
        };
        let mut e = Self::new(StatusCode::UNAUTHORIZED, Issue::error(IssueCode::Login, message));
        e.www_authenticate = Some(challenge);
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, Issue::error(IssueCode::Forbidden, message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Issue::error(IssueCode::NotFound, message))
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, Issue::error(IssueCode::NotSupported, message).at("Content-Type"))
    }

    /// 500 for our own faults. The detail goes to the log (with the request id), not to the
    /// client; callers must not put patient data in `detail`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Issue::error(
                IssueCode::Exception,
                "internal error; the request id in the x-request-id header finds it in the log",
            ),
        )
    }

    /// 429 with `Retry-After` (seconds).
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, Issue::error(IssueCode::Throttled, message));
        e.retry_after = Some(u32::try_from(retry_after_seconds).unwrap_or(u32::MAX));
        e
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, Issue::error(IssueCode::Transient, message));
        e.retry_after = Some(1);
        e
    }
}

/// Maps a conversion failure: unreadable input is 400, input that breaks a rule (a BSN
/// failing the eleven test) 422, a defect of our own mapping 500, an id held for another
/// patient 409, a cancelled conversion 408.
pub fn convert_error(e: &crate::convert::ConvertError) -> ApiError {
    use crate::convert::ConvertError;
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

/// A handover that was not received: 403 for the sender or the agreements, 422 for a record
/// without BSN or a reused `Idempotency-Key`, the conversion's own statuses, 500 for faults.
impl From<crate::handover::HandoverError> for ApiError {
    fn from(e: crate::handover::HandoverError) -> Self {
        use crate::handover::HandoverError as H;
        match e {
            H::SenderRefused { reason, .. } => ApiError::forbidden(reason),
            H::Conversion(c) | H::BoundToAnotherPatient(c) => convert_error(&c),
            H::NoBsn => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Issue::error(IssueCode::BusinessRule, e.to_string()))
            }
            H::TransferRefused { outcome, .. } => ApiError::new(StatusCode::FORBIDDEN, outcome),
            H::IdempotencyKeyReused => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, crate::handover::idempotency_issue())
            }
            H::Store(_) | H::Audit(_) | H::Internal(_) => ApiError::internal(e),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = fhir_response(self.status, &self.outcome.to_fhir());
        if let Some(c) = self.www_authenticate.and_then(|c| HeaderValue::from_str(&c).ok()) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// A JSON body with the FHIR media type.
pub fn fhir_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

/// Middleware: an error response that is not yet FHIR (axum's own rejections, 404 for
/// unknown routes, 405, a 413 from a layer) gets an OperationOutcome body. The original
/// plain-text reason, which names the problem but never echoes the body, is kept as
/// diagnostics.
pub async fn outcome_for_bare_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_fhir =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(FHIR_JSON));
    if is_fhir {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty());
    let code = match status {
        StatusCode::NOT_FOUND => IssueCode::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => IssueCode::TooLong,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::METHOD_NOT_ALLOWED => IssueCode::NotSupported,
        StatusCode::REQUEST_TIMEOUT => IssueCode::Timeout,
        s if s.is_server_error() => IssueCode::Exception,
        _ => IssueCode::Invalid,
    };
    let message = match (status, text) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => {
            "the request body is larger than this server accepts (limits.body_limit_bytes)".to_owned()
        }
        (_, Some(t)) => t,
        (s, None) => s.canonical_reason().unwrap_or("request not processed").to_owned(),
    };
    let mut r = ApiError::new(status, Issue::error(code, message)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            r.headers_mut().insert(name.clone(), value.clone());
        }
    }
    r
}
