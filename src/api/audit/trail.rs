//! `GET /fhir/AuditEvent`: the audit trail as FHIR AuditEvents, for privacy officers and the
//! organisations of a handover (decided by `policy::audit_view`), each search itself audited.

use axum::extract::{RawQuery, State};
use axum::http::{header as h, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::super::auth::Caller;
use super::super::error::{ApiError, FHIR_JSON};
use super::super::input;
use super::super::state::AppState;
use super::*;
use crate::audit::view_facts::{self, ViewDecision};
use crate::audit::{event, AuditAction, AuditOutcome, AuditSearch};
use crate::model::types::Bsn;
use crate::policy::audit_view::ViewScope;

pub const MAX_COUNT: i64 = 1000;
pub(super) const DEFAULT_COUNT: i64 = 100;

/// A BSN from `999911120` or `http://fhir.nl/fhir/NamingSystem/bsn|999911120`.
pub(super) fn parse_patient(name: &str, v: &str) -> Result<String, ApiError> {
    let value = match v.split_once('|') {
        Some((system, value)) if system == crate::terminology::uri::BSN || system.is_empty() => value,
        Some(_) => {
            return Err(ApiError::bad_request(
                name,
                "patient must be a BSN: 999911120 or http://fhir.nl/fhir/NamingSystem/bsn|999911120",
            ))
        }
        None => v,
    };
    Bsn::parse(value).map(|b| b.as_str().to_owned()).map_err(|e| ApiError::bad_request(name, format!("patient: {e}")))
}

/// `date` bounds: `[ge|gt|le|lt|eq]YYYY-MM-DD` or a full date-time with offset, to a
/// half-open UTC range `[from, to)` of RFC 3339 texts comparable with `recorded_at`.
pub(super) fn date_bounds(v: &str, from: &mut Option<String>, to: &mut Option<String>) -> Result<(), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "date",
            "date must be [ge|gt|le|lt|eq]YYYY-MM-DD or a date-time with offset, e.g. ge2026-01-01 or lt2026-02-01T00:00:00+01:00",
        )
    };
    let (prefix, value) = match v.get(..2) {
        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &v[2..]),
        _ => ("eq", v),
    };
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (start, end) = if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let s = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
        (s, s + chrono::Duration::days(1))
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        let s = t.with_timezone(&chrono::Utc);
        (s, s + chrono::Duration::milliseconds(1))
    } else {
        return Err(bad());
    };
    let tighten_from = |f: &mut Option<String>, v: String| {
        if f.as_ref().is_none_or(|old| v > *old) {
            *f = Some(v);
        }
    };
    let tighten_to = |t: &mut Option<String>, v: String| {
        if t.as_ref().is_none_or(|old| v < *old) {
            *t = Some(v);
        }
    };
    match prefix {
        "ge" => tighten_from(from, fmt(start)),
        "gt" => tighten_from(from, fmt(end)),
        "le" => tighten_to(to, fmt(end)),
        "lt" => tighten_to(to, fmt(start)),
        _ => {
            tighten_from(from, fmt(start));
            tighten_to(to, fmt(end));
        }
    }
    Ok(())
}

/// Decides access to audit entries of `patient` (None: all), records the AuditQuery entry
/// (permitted or denied) and returns the 403 on denial, or the search limited to the
/// entries the permit covers. The entry is written before any data is returned; if it
/// cannot be written, nothing is returned.
pub(super) async fn guard_view(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    patient: Option<&str>,
    query: String,
    search: &mut AuditSearch,
) -> Result<(), ApiError> {
    let decision: ViewDecision = view_facts::decide(
        &state.store,
        &caller.ura,
        &caller.uzi,
        &caller.uzi_role,
        patient,
        &state.audit.privacy_officer_roles,
        crate::policy::today(),
    )
    .await
    .map_err(ApiError::internal)?;
    let mut entry = draft(AuditAction::AuditQuery, caller, headers);
    entry.patient_bsn = patient.map(str::to_owned);
    entry.objects = vec![query];
    entry.rule = Some(decision.rule.to_owned());
    entry.reason = Some(decision.reason.clone());
    if !decision.permit {
        entry.outcome = AuditOutcome::Denied;
    }
    crate::audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
    if decision.permit {
        match decision.scope {
            Some(ViewScope::Organisation(ura)) => search.of_organisation = Some(ura),
            Some(ViewScope::OwnEntries(ura)) => search.by_organisation = Some(ura),
            Some(ViewScope::Patient) => {}
            None => return Err(ApiError::internal("a permitted audit view without a scope")),
        }
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("you may not view this audit information: {}", decision.reason)))
    }
}

pub(super) fn fhir_json(body: &Value) -> Response {
    let mut r = (StatusCode::OK, axum::Json(body)).into_response();
    r.headers_mut().insert(h::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

#[utoipa::path(
    get,
    path = "/fhir/AuditEvent",
    tag = "audit",
    params(
        ("patient" = Option<String>, Query, description = "The patient's BSN (999911120 or http://fhir.nl/fhir/NamingSystem/bsn|999911120); required unless you are a privacy officer"),
        ("date" = Option<String>, Query, description = "Repeatable: [ge|gt|le|lt|eq]YYYY-MM-DD or a date-time with offset (UTC days)"),
        ("agent" = Option<String>, Query, description = "The acting user's UZI number or organisation's URA (system|value accepted)"),
        ("entity-type" = Option<String>, Query, description = "A resource type among the entry's objects, e.g. Condition, Handover; exact, case included"),
        ("subtype" = Option<String>, Query, description = "An overdracht audit action code, e.g. read, handover-received (comma-separated for several)"),
        ("_count" = Option<i64>, Query, description = "At most this many, newest first (default 100, max 1000)"),
    ),
    responses(
        (status = 200, description = "A searchset Bundle of AuditEvents (IHE BALP shape)", content_type = "application/fhir+json"),
        (status = 400, description = "A malformed parameter"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Not a privacy officer, and not the sending or receiving organisation of a handover of this patient (a sender sees its own entries only; an officer those of their organisation)"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = AuditSearch { limit: Some(DEFAULT_COUNT + 1), ..Default::default() };
    let mut count = DEFAULT_COUNT;
    for (k, v) in input::query_pairs(raw.as_deref()) {
        match k.as_str() {
            "patient" | "patient.identifier" => q.patient_bsn = Some(parse_patient(&k, &v)?),
            "date" => date_bounds(&v, &mut q.from, &mut q.to)?,
            "agent" | "agent.identifier" => {
                let value = v.rsplit('|').next().unwrap_or(&v);
                // A UZI number, or a URA (eight digits, a UZI-like number).
                if crate::model::Uzi::parse(value).map_or(true, |u| u.as_str() != value) {
                    return Err(ApiError::bad_request("agent", "agent must be a UZI or URA number"));
                }
                q.agent = Some(value.to_owned());
            }
            "entity-type" => {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(ApiError::bad_request("entity-type", "entity-type must be a resource type, e.g. Condition"));
                }
                q.entity_type = Some(v);
            }
            "subtype" => {
                for code in v.split(',') {
                    let code = code.rsplit('|').next().unwrap_or(code);
                    let a = AuditAction::from_code(code).ok_or_else(|| {
                        ApiError::bad_request("subtype", format!("unknown audit action {code:?}; see CodeSystem audit-action"))
                    })?;
                    q.actions.push(a);
                }
            }
            "_count" => {
                count = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=MAX_COUNT).contains(n))
                    .ok_or_else(|| ApiError::bad_request("_count", format!("_count must be 0 to {MAX_COUNT}")))?;
                q.limit = Some(count + 1);
            }
            "_format" => {}
            other => {
                return Err(ApiError::bad_request(
                    other,
                    format!("unsupported search parameter {other:?}; supported: patient, date, agent, entity-type, subtype, _count"),
                ))
            }
        }
    }
    let query = format!("AuditEvent?{}", raw.as_deref().unwrap_or(""));
    let patient = q.patient_bsn.clone();
    guard_view(&state, &caller, &headers, patient.as_deref(), query, &mut q).await?;
    let mut found = crate::audit::search(&state.store, &q).await.map_err(ApiError::internal)?;
    let more = i64::try_from(found.len()).unwrap_or(i64::MAX) > count;
    found.truncate(usize::try_from(count).unwrap_or(0));
    let entries: Vec<Value> = found
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("urn:uuid:{}", s.id),
                "resource": event::audit_event(s),
                "search": { "mode": "match" },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if !more {
        bundle["total"] = json!(entries.len());
    }
    bundle["entry"] = Value::Array(entries);
    Ok(fhir_json(&bundle))
}
