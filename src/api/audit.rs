//! The audit trail in the API: helpers that fill an [`AuditEntry`] from the request, and
//! the two views of the trail (`GET /fhir/AuditEvent`, `GET /patients/{bsn}/access-log`).
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
        Actor { uzi: c.uzi.clone(), uzi_role: c.uzi_role.clone(), ura: c.ura.clone() }
    }
}

/// An entry for `action` by `caller`, successful until told otherwise: user, access point
/// (User-Agent and forwarded address), purpose of use and request id filled in.
pub fn draft(action: AuditAction, caller: &Caller, headers: &HeaderMap) -> AuditEntry {
    let mut e = AuditEntry::new(action, AuditOutcome::Success);
    e.user = Some(caller.into());
    e.client = access_point(headers);
    e.purpose = Some(caller.purpose_of_use.clone());
    e.request_id = header(headers, "x-request-id", 200);
    e
}

/// The access point: the client application (User-Agent) and, behind a proxy, the
/// address it forwarded (`X-Forwarded-For`, first hop).
pub fn access_point(headers: &HeaderMap) -> Option<String> {
    let agent = header(headers, "user-agent", 200);
    let addr = header(headers, "x-forwarded-for", 200)
        .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty());
    match (agent, addr) {
        (Some(a), Some(ip)) => Some(format!("{a} @ {ip}")),
        (Some(a), None) => Some(a),
        (None, Some(ip)) => Some(format!("@ {ip}")),
        (None, None) => None,
    }
}

fn header(headers: &HeaderMap, name: &str, max: usize) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    if v.is_empty() {
        return None;
    }
    Some(v.chars().take(max).collect())
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
