//! `GET /patients/{bsn}/access-log`: who saw which categories of a patient's data, when;
//! JSON or a readable page, in English or Dutch.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::super::auth::Caller;
use super::super::error::ApiError;
use super::super::input;
use super::super::state::AppState;
use super::*;
use crate::audit::{AuditAction, AuditOutcome, AuditSearch, StoredEntry};
use crate::model::category::DataCategory;
use crate::policy::rules;
use crate::report::html::esc;

/// Wording of the access log, in English and Dutch.
pub(super) struct Words {
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

pub(super) const EN: Words = Words {
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

pub(super) const NL: Words = Words {
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

pub(super) fn action_words(a: AuditAction, nl: bool) -> &'static str {
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

pub(super) fn outcome_words(o: AuditOutcome, nl: bool) -> &'static str {
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

pub(super) fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono_tz::Europe::Amsterdam).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

pub(super) fn access_log_item(s: &StoredEntry, nl: bool) -> Value {
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
        "reason": e.shown_reason(),
    })
}

pub(super) fn access_log_html(items: &[Value], nl: bool) -> String {
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
    let pairs = input::query_pairs(raw.as_deref());
    let mut q =
        AuditSearch { patient_bsn: Some(bsn.clone()), limit: Some(super::trail::MAX_COUNT), ..Default::default() };
    guard_view(&state, &caller, &headers, Some(&bsn), "AccessLog?patient=(path)".to_owned(), &mut q).await?;
    let found = crate::audit::search(&state.store, &q).await.map_err(ApiError::internal)?;
    let nl = input::wants_dutch(&headers, &pairs);
    let items: Vec<Value> = found.iter().map(|s| access_log_item(s, nl)).collect();
    if input::wants_html(&headers, input::format_param(&pairs)) {
        let mut r = (StatusCode::OK, access_log_html(&items, nl)).into_response();
        super::super::report::page_headers(r.headers_mut());
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
