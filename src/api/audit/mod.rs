//! The audit trail in the API: helpers that fill an [`AuditEntry`] from the request, and
//! the views of the trail: [`trail`] (`GET /fhir/AuditEvent`), [`access_log`]
//! (`GET /patients/{bsn}/access-log`) and [`review`] (break-the-glass review).
//!
//! Handlers start an entry with [`draft`] (who, from where, why, request id), add what they
//! learn (patient, objects, rule, categories) and append it with
//! [`crate::audit::record`] in their transaction, or [`crate::audit::record_alone`] for a
//! read. A failed request is recorded with [`refusal`].

use axum::http::{HeaderMap, StatusCode};

use super::auth::Caller;
use super::error::ApiError;
use crate::audit::{Actor, AuditAction, AuditEntry, AuditOutcome};

impl From<&Caller> for Actor {
    fn from(c: &Caller) -> Actor {
        Actor { uzi: c.uzi.to_string(), uzi_role: c.uzi_role.to_string(), ura: c.ura.to_string() }
    }
}

/// An entry for `action` by `caller`, successful until told otherwise: user, access point
/// (User-Agent and forwarded address), purpose of use and request id filled in.
pub fn draft(action: AuditAction, caller: &Caller, headers: &HeaderMap) -> AuditEntry {
    let mut e = AuditEntry::new(action, AuditOutcome::Success);
    e.user = Some(caller.into());
    e.client = access_point(headers, caller.peer);
    e.purpose = Some(caller.purpose_of_use.clone());
    e.request_id = header(headers, "x-request-id", 200);
    e
}

/// The entry of a request refused for want of a valid token (401): no user, the access
/// point, and the request line without its query (which may hold search values).
pub fn unauthenticated(
    method: &axum::http::Method,
    path: &str,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    e: &ApiError,
) -> AuditEntry {
    let mut entry = AuditEntry::new(AuditAction::Denied, AuditOutcome::Denied);
    entry.client = access_point(headers, peer);
    entry.request_id = header(headers, "x-request-id", 200);
    entry.rule = Some(crate::policy::rules::AUTH_BEARER_TOKEN.to_owned());
    let why = e.outcome.issues.first().map(|i| i.diagnostics.as_str()).unwrap_or("no valid token");
    let path: String = path.chars().take(300).collect();
    entry.reason = Some(format!("HTTP 401 on {method} {path}: {}", why.chars().take(300).collect::<String>()));
    entry
}

/// The access point: the client application (User-Agent) and the address the request came
/// from (the TCP peer); behind a proxy also the address the proxy says it forwarded for
/// (`X-Forwarded-For`, first hop). The caller chooses the User-Agent and X-Forwarded-For, so
/// both are marked "claimed", stripped of control characters and bounded; only
/// the peer address is known.
pub fn access_point(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> Option<String> {
    // " @ " separates application and address in the stored form: not in a claimed value.
    let agent = header(headers, "user-agent", 200).map(|a| format!("{} (claimed)", a.replace(" @ ", " at ")));
    let forwarded = header(headers, "x-forwarded-for", 200)
        .and_then(|v| v.split(',').next().map(|s| s.trim().chars().take(64).collect::<String>()))
        .filter(|s| !s.is_empty());
    let addr = match (peer.map(|p| p.ip().to_string()), forwarded) {
        (Some(p), Some(f)) => Some(format!("{p} (forwarded for {f}, claimed)")),
        (Some(p), None) => Some(p),
        (None, Some(f)) => Some(format!("forwarded for {f}, claimed")),
        (None, None) => None,
    };
    match (agent, addr) {
        (Some(a), Some(ip)) => Some(format!("{a} @ {ip}")),
        (Some(a), None) => Some(a),
        (None, Some(ip)) => Some(format!("@ {ip}")),
        (None, None) => None,
    }
}

/// A header's value as text: control characters dropped, at most `max` characters; bytes
/// that are not ASCII are replaced (header values are not UTF-8 by definition).
fn header(headers: &HeaderMap, name: &str, max: usize) -> Option<String> {
    let raw = String::from_utf8_lossy(headers.get(name)?.as_bytes()).into_owned();
    let v: String = super::input::plain_text(&raw).trim().chars().take(max).collect();
    (!v.is_empty()).then_some(v)
}

/// The outcome an error answer stands for: 401/403 denied, 5xx failure, other 4xx invalid.
pub fn outcome_of(e: &ApiError) -> AuditOutcome {
    match e.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AuditOutcome::Denied,
        s if s.is_server_error() => AuditOutcome::Failure,
        _ => AuditOutcome::Invalid,
    }
}

/// Turns the draft of a failed request into its entry: `action`, the outcome of the error
/// and, unless the handler set one, the error's first message as reason (our messages do
/// not quote patient data).
pub fn refusal(mut entry: AuditEntry, action: AuditAction, e: &ApiError) -> AuditEntry {
    entry.action = action;
    entry.outcome = outcome_of(e);
    if entry.reason.is_none() {
        entry.reason =
            e.outcome.issues.first().map(|i| {
                format!("HTTP {}: {}", e.status.as_u16(), i.diagnostics.chars().take(500).collect::<String>())
            });
    }
    entry
}

// ---------------------------------------------------------------------------------------
// The views

mod access_log;
mod review;
mod trail;

pub use access_log::*;
pub use review::*;
pub use trail::*;

/// Most entries one request returns.
/// Runs a request that writes nothing else and records it as one entry of its own (`entry`,
/// a [`draft`]), before the answer leaves: `run` fills in what it learns (patient, objects, rule, categories); a
/// failed request is recorded as a [`refusal`]. If the entry cannot be written, the answer
/// is a 500 and nothing of the result is returned.
pub async fn recorded_alone(
    state: &super::state::AppState,
    mut entry: AuditEntry,
    run: impl AsyncFnOnce(&mut AuditEntry) -> Result<axum::response::Response, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    let action = entry.action;
    let result = run(&mut entry).await;
    if let Err(e) = &result {
        entry = refusal(entry, action, e);
    }
    crate::audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
    result
}
