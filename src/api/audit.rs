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
/// both are marked "claimed", stripped of control characters and bounded (issue 14); only
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

use axum::extract::{Path, RawQuery, State};
use axum::http::{header as h, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::error::FHIR_JSON;
use super::state::AppState;
use crate::audit::access::{self, ViewDecision};
use crate::audit::{event, AuditSearch, StoredEntry};
use crate::model::category::DataCategory;
use crate::model::types::Bsn;
use crate::policy::audit_view::{self, ViewScope};
use crate::policy::rules;
use crate::report::html::esc;

/// Most entries one request returns.
pub const MAX_COUNT: i64 = 1000;
const DEFAULT_COUNT: i64 = 100;

/// Decodes `a=b&c=d` (percent-decoding, `+` as space), keeping repeats.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// A BSN from `999911120` or `http://fhir.nl/fhir/NamingSystem/bsn|999911120`.
fn parse_patient(name: &str, v: &str) -> Result<String, ApiError> {
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
fn date_bounds(v: &str, from: &mut Option<String>, to: &mut Option<String>) -> Result<(), ApiError> {
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
async fn guard_view(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    patient: Option<&str>,
    query: String,
    search: &mut AuditSearch,
) -> Result<(), ApiError> {
    let decision: ViewDecision = access::decide(
        &state.store,
        &caller.ura,
        &caller.uzi,
        &caller.uzi_role,
        patient,
        &state.audit.privacy_officer_roles,
        super::access::today(),
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

fn fhir_json(body: &Value) -> Response {
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
        ("entity-type" = Option<String>, Query, description = "A resource type among the entry's objects, e.g. Condition, Handover"),
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
    for (k, v) in query_pairs(raw.as_deref()) {
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

/// Wording of the access log, in English and Dutch.
struct Words {
    title: &'static str,
    intro: &'static str,
    when: &'static str,
    who: &'static str,
    what: &'static str,
    data: &'static str,
    result: &'static str,
    none: &'static str,
    emergency: &'static str,
}

const EN: Words = Words {
    title: "Who saw your data",
    intro: "Every time someone opened, received or looked for your medical data through overdracht, it is listed here.",
    when: "When",
    who: "Who",
    what: "What happened",
    data: "Which data",
    result: "Result",
    none: "Nobody has looked at your data yet.",
    emergency: "Emergency access",
};

const NL: Words = Words {
    title: "Wie uw gegevens heeft ingezien",
    intro: "Elke keer dat iemand via overdracht uw medische gegevens opende, ontving of zocht, staat hier.",
    when: "Wanneer",
    who: "Wie",
    what: "Wat er gebeurde",
    data: "Welke gegevens",
    result: "Resultaat",
    none: "Nog niemand heeft uw gegevens ingezien.",
    emergency: "Noodtoegang",
};

fn action_words(a: AuditAction, nl: bool) -> &'static str {
    match (a, nl) {
        (AuditAction::HandoverReceived, false) => "handed your record over to your care provider",
        (AuditAction::HandoverReceived, true) => "droeg uw dossier over aan uw zorgaanbieder",
        (AuditAction::HandoverRefused, false) => "tried to hand over your record (refused)",
        (AuditAction::HandoverRefused, true) => "probeerde uw dossier over te dragen (geweigerd)",
        (AuditAction::Conversion, false) => "converted your record",
        (AuditAction::Conversion, true) => "zette uw dossier om",
        (AuditAction::Validation, false) => "checked a record's form (nothing stored)",
        (AuditAction::Validation, true) => "controleerde de vorm van een dossier (niets bewaard)",
        (AuditAction::Read, false) => "looked at your data",
        (AuditAction::Read, true) => "bekeek uw gegevens",
        (AuditAction::Search, false) => "searched your data",
        (AuditAction::Search, true) => "zocht in uw gegevens",
        (AuditAction::Denied, false) => "was refused access to your data",
        (AuditAction::Denied, true) => "kreeg geen toegang tot uw gegevens",
        (AuditAction::BreakGlass, false) => "looked at your data in an emergency",
        (AuditAction::BreakGlass, true) => "bekeek uw gegevens in een noodsituatie",
        (AuditAction::AgreementChange, false) => "changed an agreement about your data",
        (AuditAction::AgreementChange, true) => "wijzigde een afspraak over uw gegevens",
        (AuditAction::CareTeamChange, false) => "changed your care team",
        (AuditAction::CareTeamChange, true) => "wijzigde uw behandelteam",
        (AuditAction::ConsentChange, false) => "recorded your consent or objection",
        (AuditAction::ConsentChange, true) => "legde uw toestemming of bezwaar vast",
        (AuditAction::Delivery, false) => "sent your data on to the care provider's system",
        (AuditAction::Delivery, true) => "stuurde uw gegevens door naar het systeem van de zorgaanbieder",
        (AuditAction::OutboxDrop, false) => "could not send your data on",
        (AuditAction::OutboxDrop, true) => "kon uw gegevens niet doorsturen",
        (AuditAction::Export, false) => "exported your data",
        (AuditAction::Export, true) => "exporteerde uw gegevens",
        (AuditAction::AuditQuery, false) => "looked at this list",
        (AuditAction::AuditQuery, true) => "bekeek deze lijst",
        (AuditAction::Review, false) => "checked an emergency access to your data",
        (AuditAction::Review, true) => "controleerde een noodtoegang tot uw gegevens",
        (AuditAction::Report, false) => "counted this access in a report (no data shown)",
        (AuditAction::Report, true) => "telde deze toegang mee in een rapportage (zonder gegevens)",
    }
}

fn outcome_words(o: AuditOutcome, nl: bool) -> &'static str {
    match (o, nl) {
        (AuditOutcome::Success, false) => "done",
        (AuditOutcome::Success, true) => "gelukt",
        (AuditOutcome::Denied, false) => "refused",
        (AuditOutcome::Denied, true) => "geweigerd",
        (AuditOutcome::Invalid, false) => "not accepted",
        (AuditOutcome::Invalid, true) => "niet geaccepteerd",
        (AuditOutcome::Failure, false) => "failed",
        (AuditOutcome::Failure, true) => "mislukt",
    }
}

fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono_tz::Europe::Amsterdam).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

fn access_log_item(s: &StoredEntry, nl: bool) -> Value {
    let e = &s.entry;
    let who = e.user.as_ref().map(|u| {
        json!({
            "uzi": u.uzi,
            "role": u.uzi_role,
            "roleName": crate::policy::roles::name(&u.uzi_role),
            "organisation": format!("ura|{}", u.ura),
        })
    });
    let categories: Vec<Value> = e
        .categories
        .iter()
        .map(|c| json!({ "code": c, "display": DataCategory::from_code(c).map_or(c.as_str(), |d| d.display()) }))
        .collect();
    json!({
        "id": s.id,
        "when": s.recorded,
        "whenLocal": local_time(&s.recorded),
        "action": e.action.code(),
        "summary": action_words(e.action, nl),
        "who": who,
        "onBehalfOf": e.on_behalf_of.as_ref().map(|u| json!({ "uzi": u.uzi, "role": u.uzi_role, "organisation": format!("ura|{}", u.ura) })),
        "categories": categories,
        "outcome": e.outcome.code(),
        "outcomeText": outcome_words(e.outcome, nl),
        "rule": e.rule,
        "ruleText": e.rule.as_deref().map(|r| if nl { rules::words_nl(r) } else { rules::words(r) }).filter(|w| !w.is_empty()),
        "emergency": e.emergency,
        "reason": e.reason,
    })
}

fn access_log_html(items: &[Value], nl: bool) -> String {
    let w = if nl { &NL } else { &EN };
    let lang = if nl { "nl" } else { "en" };
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;width:100%}}\
         th,td{{text-align:left;border-bottom:1px solid #ccc;padding:.4em}}.nood{{color:#a00;font-weight:bold}}</style></head>\n\
         <body>\n<h1>{t}</h1>\n<p>{i}</p>\n",
        t = w.title,
        i = w.intro
    );
    if items.is_empty() {
        html.push_str(&format!("<p>{}</p>\n", w.none));
    } else {
        html.push_str(&format!(
            "<table>\n<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\n",
            w.when, w.who, w.what, w.data, w.result
        ));
        for it in items {
            let who = match &it["who"] {
                Value::Null => "-".to_owned(),
                who => format!(
                    "{} (UZI {}), {} {}",
                    who["roleName"].as_str().unwrap_or(""),
                    who["uzi"].as_str().unwrap_or(""),
                    if nl { "organisatie" } else { "organisation" },
                    who["organisation"].as_str().unwrap_or("").trim_start_matches("ura|")
                ),
            };
            let data: Vec<&str> = it["categories"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["display"].as_str()).collect())
                .unwrap_or_default();
            let mut what = esc(it["summary"].as_str().unwrap_or(""));
            if it["emergency"] == json!(true) {
                what.push_str(&format!(
                    " <span class=\"nood\">{}</span>: {}",
                    w.emergency,
                    esc(it["reason"].as_str().unwrap_or(""))
                ));
            }
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(it["whenLocal"].as_str().unwrap_or("")),
                esc(&who),
                what,
                esc(&data.join(", ")),
                match it["ruleText"].as_str() {
                    // Why, in the reader's language, for what was refused or flagged.
                    Some(why) if it["outcome"] != json!("success") || it["emergency"] == json!(true) => {
                        format!("{} ({})", esc(it["outcomeText"].as_str().unwrap_or("")), esc(why))
                    }
                    _ => esc(it["outcomeText"].as_str().unwrap_or("")),
                }
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn wants_html(headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    if let Some((_, f)) = pairs.iter().find(|(k, _)| k == "format" || k == "_format") {
        return f == "html" || f == "text/html";
    }
    headers
        .get(h::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html") && !a.starts_with("application/json"))
}

fn wants_dutch(headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    if let Some((_, l)) = pairs.iter().find(|(k, _)| k == "lang") {
        return l.starts_with("nl");
    }
    headers.get(h::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).is_some_and(|l| l.trim_start().starts_with("nl"))
}

#[utoipa::path(
    get,
    path = "/patients/{bsn}/access-log",
    tag = "audit",
    params(
        ("bsn" = String, Path, description = "The patient's BSN"),
        ("format" = Option<String>, Query, description = "html for a readable page (or Accept: text/html); JSON otherwise"),
        ("lang" = Option<String>, Query, description = "nl or en (default from Accept-Language, else en)"),
    ),
    responses(
        (status = 200, description = "Who saw which categories of this patient's data, when (newest first)", content_type = "application/json"),
        (status = 400, description = "Not a valid BSN"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Not a privacy officer, and not the sending or receiving organisation of a handover of this patient (a sender sees its own entries only; an officer those of their organisation)"),
    ),
    security(("bearer" = []))
)]
pub async fn access_log(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(bsn): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let bsn = parse_patient("bsn", &bsn)?;
    let pairs = query_pairs(raw.as_deref());
    let mut q = AuditSearch { patient_bsn: Some(bsn.clone()), limit: Some(MAX_COUNT), ..Default::default() };
    guard_view(&state, &caller, &headers, Some(&bsn), "AccessLog?patient=(path)".to_owned(), &mut q).await?;
    let found = crate::audit::search(&state.store, &q).await.map_err(ApiError::internal)?;
    let nl = wants_dutch(&headers, &pairs);
    let items: Vec<Value> = found.iter().map(|s| access_log_item(s, nl)).collect();
    if wants_html(&headers, &pairs) {
        let mut r = (StatusCode::OK, access_log_html(&items, nl)).into_response();
        super::report::page_headers(r.headers_mut());
        return Ok(r);
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "patient": bsn,
            "generated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "entries": items,
        })),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Reviews of flagged entries (break-the-glass), by privacy officers

use crate::audit::review::{self, Conclusion, NewReview, ReviewError};

/// The privacy-officer check of the review endpoints ([`audit_view::decide_review`]); the
/// entry records the decision.
fn officer_decision(state: &AppState, caller: &Caller, entry: &mut AuditEntry) -> bool {
    let d = audit_view::decide_review(&caller.uzi_role, &caller.ura, &state.audit.privacy_officer_roles, None);
    entry.rule = Some(d.rule.to_owned());
    if !d.permit {
        entry.outcome = AuditOutcome::Denied;
        entry.reason = Some(d.reason);
    }
    d.permit
}

fn not_an_officer() -> ApiError {
    ApiError::forbidden("only privacy officers (audit.privacy_officer_roles) review flagged audit entries")
}

/// The body of `POST /audit/reviews`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// The id of the flagged entry (its AuditEvent id).
    pub entry: String,
    /// `justified` or `not-justified`.
    pub conclusion: String,
    /// What was found (no clinical content; at most 1000 characters are kept).
    pub note: Option<String>,
}

#[utoipa::path(
    get,
    path = "/audit/flagged",
    tag = "audit",
    responses(
        (status = 200, description = "Flagged entries (break-the-glass) not reviewed yet, oldest first", content_type = "application/json"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Not a privacy officer"),
    ),
    security(("bearer" = []))
)]
pub async fn flagged(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    let mut entry = draft(AuditAction::AuditQuery, &caller, &headers);
    entry.objects = vec!["AuditEvent?flagged=true&reviewed=false".to_owned()];
    let officer = officer_decision(&state, &caller, &mut entry);
    if officer {
        entry.reason = Some("privacy officer lists the flagged entries to review".to_owned());
    }
    crate::audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
    if !officer {
        return Err(not_an_officer());
    }
    // Only the entries of the officer's own organisation.
    let pending = review::pending(&state.store).await.map_err(ApiError::internal)?;
    let items: Vec<Value> = pending
        .iter()
        .filter(|s| {
            audit_view::entry_is_of(s.entry.user.as_ref().map(|u| u.ura.as_str()), &s.entry.objects, &caller.ura)
        })
        .map(|s| {
            json!({
                "id": s.id,
                "seq": s.seq,
                "recorded": s.recorded,
                "action": s.entry.action.code(),
                "outcome": s.entry.outcome.code(),
                "user": s.entry.user,
                "patient": s.entry.patient_bsn,
                "objects": s.entry.objects,
                "reason": s.entry.reason,
            })
        })
        .collect();
    Ok((StatusCode::OK, axum::Json(json!({ "total": items.len(), "entries": items }))).into_response())
}

#[utoipa::path(
    post,
    path = "/audit/reviews",
    tag = "audit",
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "The review was recorded as an audit entry of its own", content_type = "application/json"),
        (status = 400, description = "Malformed body or unknown conclusion"),
        (status = 401, description = "No valid bearer token"),
        (status = 403, description = "Not a privacy officer"),
        (status = 404, description = "No such audit entry"),
        (status = 409, description = "Already reviewed"),
        (status = 422, description = "The entry is not flagged for review"),
    ),
    security(("bearer" = []))
)]
pub async fn create_review(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut entry = draft(AuditAction::Review, &caller, &headers);
    if !officer_decision(&state, &caller, &mut entry) {
        crate::audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
        return Err(not_an_officer());
    }
    let store = &state.store;
    let refuse = |mut entry: AuditEntry, e: ApiError| async move {
        entry = refusal(entry, AuditAction::Review, &e);
        crate::audit::record_alone(store, &entry).await.map_err(ApiError::internal)?;
        Err::<Response, ApiError>(e)
    };
    let req: ReviewRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                entry,
                ApiError::bad_request("$", format!("the body must be {{\"entry\", \"conclusion\", \"note\"}}: {e}")),
            )
            .await
        }
    };
    let conclusion: Conclusion = match req.conclusion.parse() {
        Ok(c) => c,
        Err(e) => return refuse(entry, ApiError::bad_request("conclusion", e)).await,
    };
    entry.objects = vec![format!("AuditEvent/{}", req.entry.chars().take(64).collect::<String>())];
    let new = NewReview {
        entry_id: &req.entry,
        conclusion,
        note: req.note.as_deref(),
        reviewer: entry.user.clone(),
        client: entry.client.clone(),
        request_id: entry.request_id.clone(),
    };
    // The review entry is the audit entry of this request (written in the review's own
    // transaction); a refused review is recorded as such.
    let (role, ura, officers) = (&caller.uzi_role, &caller.ura, &state.audit.privacy_officer_roles);
    let authorise = |e: &AuditEntry| {
        let d =
            audit_view::decide_review(role, ura, officers, Some((e.user.as_ref().map(|u| u.ura.as_str()), &e.objects)));
        if d.permit {
            Ok(())
        } else {
            Err(d)
        }
    };
    match review::review_scoped(&state.store, &new, authorise).await {
        Ok(id) => Ok((
            StatusCode::CREATED,
            axum::Json(json!({ "review": id.id, "entry": req.entry, "conclusion": conclusion.code() })),
        )
            .into_response()),
        Err(ReviewError::Audit(e)) => Err(ApiError::internal(e)),
        Err(e @ ReviewError::NotFound(_)) => refuse(entry, ApiError::not_found(e.to_string())).await,
        Err(ReviewError::Refused(d)) => {
            // Answered as unknown (another organisation's officer does not learn what the
            // entry is), recorded as the denial it is.
            let e = ApiError::not_found(format!("no audit entry {} is visible to your organisation", req.entry));
            let mut entry = refusal(entry, AuditAction::Review, &e);
            entry.outcome = AuditOutcome::Denied;
            entry.rule = Some(d.rule.to_owned());
            entry.reason = Some(d.reason);
            crate::audit::record_alone(store, &entry).await.map_err(ApiError::internal)?;
            Err(e)
        }
        Err(e @ ReviewError::AlreadyReviewed { .. }) => {
            let issue = crate::validate::Issue::error(crate::validate::IssueCode::Conflict, e.to_string());
            refuse(entry, ApiError::new(StatusCode::CONFLICT, issue)).await
        }
        Err(e @ ReviewError::NotFlagged(_)) => {
            let issue = crate::validate::Issue::error(crate::validate::IssueCode::BusinessRule, e.to_string());
            refuse(entry, ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, issue)).await
        }
    }
}
