//! `GET /report`: the contracting evidence report ([`crate::report`]) of the caller's
//! organisation, as JSON or as a self-contained HTML page.
//!
//! Deny by default: the provider is the caller's organisation (token URA), and only its
//! administrators (`policy.admins`) and privacy officers (`audit.privacy_officer_roles`) may
//! see it. Every request, permitted, denied or malformed, is one `report` audit entry,
//! written before the answer; if it cannot be written, nothing is answered.

use axum::extract::{RawQuery, State};
use axum::http::{header as h, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::audit as audit_api;
use super::auth::Caller;
use super::error::ApiError;
use super::input;
use super::state::AppState;
use crate::audit::{self, AuditOutcome};
use crate::report::{self, Period, Sources};

#[utoipa::path(
    get,
    path = "/report",
    tag = "report",
    params(
        ("from" = Option<String>, Query, description = "First day (YYYY-MM-DD, Europe/Amsterdam), inclusive; default: twelve months before `to`"),
        ("to" = Option<String>, Query, description = "Last day (YYYY-MM-DD), inclusive; default: today"),
        ("format" = Option<String>, Query, description = "html or json (default: html when Accept asks for text/html, else json)"),
    ),
    responses(
        (status = 200, description = "The contracting evidence report of the caller's organisation: JSON (docs/report.md) or a self-contained HTML page", content_type = "application/json"),
        (status = 400, description = "A malformed parameter"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Not an administrator or privacy officer of the organisation in the token"),
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = input::query_pairs(raw.as_deref());
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let today = crate::policy::today();
    let provider = caller.ura.clone();
    let decision = crate::policy::report_view::decide_report_view(
        &state.access.actor(&caller),
        &provider,
        &state.audit.privacy_officer_roles,
    );
    let format_param = input::format_param(&pairs);
    let html = input::wants_html(&headers, format_param);
    let checked = Period::parse(get("from"), get("to"), today).map_err(|e| e.to_string()).and_then(|p| {
        match pairs.iter().find(|(k, _)| !matches!(k.as_str(), "from" | "to" | "format" | "_format")) {
            Some((k, _)) => Err(format!("unsupported parameter {k:?}; supported: from, to, format")),
            None => match format_param {
                Some("html" | "text/html" | "json" | "application/json") | None => Ok(p),
                Some(f) => Err(format!("format {f:?} is not supported; use html or json")),
            },
        }
    });
    let period = checked.as_ref().copied().unwrap_or_else(|_| Period::last_year(today));
    let mut entry =
        report::audit_entry(&decision, report::audit_object(&provider, &period, if html { "html" } else { "json" }));
    let draft = audit_api::draft(entry.action, &caller, &headers);
    entry.user = draft.user;
    entry.client = draft.client;
    entry.purpose = draft.purpose;
    entry.request_id = draft.request_id;
    if let Err(message) = &checked {
        if decision.permit {
            entry.outcome = AuditOutcome::Invalid;
            entry.reason = Some(format!("HTTP 400: {message}"));
        }
    }
    audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
    if !decision.permit {
        return Err(ApiError::forbidden(format!("you may not see this report: {}", decision.reason)));
    }
    let period = checked.map_err(|m| ApiError::bad_request("from", m))?;
    let sources =
        Sources { store: &state.store, agreements: state.access.agreements.as_slice(), policy: &state.access.engine };
    let r = report::gather(sources, &provider, period, today).await.map_err(ApiError::internal)?;
    if html {
        let mut resp = (StatusCode::OK, report::html::render(&r)).into_response();
        page_headers(resp.headers_mut());
        return Ok(resp);
    }
    let mut resp = (StatusCode::OK, axum::Json(&r)).into_response();
    resp.headers_mut().insert(h::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The headers of an HTML page of ours: its policy, no MIME sniffing, not cached.
pub fn page_headers(hs: &mut HeaderMap) {
    hs.insert(h::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    hs.insert(h::CONTENT_SECURITY_POLICY, HeaderValue::from_static(report::html::CSP_HEADER));
    hs.insert(h::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    hs.insert(h::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
