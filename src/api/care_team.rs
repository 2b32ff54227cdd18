//! Care teams and patient consents through the API: `PUT/GET /fhir/CareTeam/{id}`,
//! `GET /fhir/CareTeam?patient=…`, `PUT/GET /fhir/Consent/{id}`.
//!
//! A team is stored only when the GZSP rules accept it ([`check_care_team`]): errors are
//! `422` with the OperationOutcome, warnings come back with the stored team.
//!
//! **Who may write.** A care team is written by its organisation: the token's URA must be
//! the team's managing organisation (and, for a change, the stored team's), and the person
//! must be
//! - the team's lead practitioner on that day (for a new team: the lead it names; for a
//!   change: the lead of the stored team, so nobody takes a team over by naming themselves), or
//! - an administrator of the organisation (`policy.admins`, UZI numbers).
//!
//! A patient's consent or objection is written by the lead practitioner of one of the
//! patient's teams at the caller's organisation, or by an administrator of an organisation
//! that manages a team for the patient. Every write, refused or not, is audited in the
//! transaction of the write.
//!
//! **Who may read.** A team: its members (acting for the organisation they are a member
//! for) and the administrators of its organisation; for anyone else it does not exist (404).
//! A consent: whoever may write it. Search results are filtered item by item.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::access::{self, rule_day};
use super::audit as audit_api;
use super::audit_hook;
use super::auth::Caller;
use super::error::{fhir_response, ApiError};
use super::facade::{self, is_id};
use super::state::AppState;
use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::policy::{check_care_team, CareTeam, ConsentKind, MemberRole, PatientConsent};
use crate::store::{StoredPolicyResource, Writer};
use crate::validate::{Issue, IssueCode, Outcome, Severity};

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    super::input::require_body(body)?;
    serde_json::from_slice(crate::source::without_bom(body)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Issue::error(IssueCode::Structure, format!("not JSON: {e}")).at(format!(
                "line {}, column {}",
                e.line(),
                e.column()
            )),
        )
    })
}

fn check_id(v: &Value, ty: &str, id: &str) -> Result<(), ApiError> {
    if !is_id(id) {
        return Err(ApiError::bad_request("id", format!("{id:?} is not a FHIR id")));
    }
    if v["id"].as_str() != Some(id) {
        return Err(ApiError::bad_request(
            &format!("{ty}.id"),
            format!("the {ty}'s id must equal the id in the URL ({id})"),
        ));
    }
    Ok(())
}

/// The caller is the lead practitioner of `team` today, acting for the team's organisation.
fn is_lead(team: &CareTeam, caller: &Caller, today: chrono::NaiveDate) -> bool {
    team.organisation_ura == caller.ura
        && team.lead_practitioner(today).is_some_and(|l| l.uzi == caller.uzi && l.organisation_ura == caller.ura)
}

/// The caller may read `team`: a member acting for the organisation of their membership,
/// or an administrator of the managing organisation.
fn may_read_team(state: &AppState, team: &CareTeam, caller: &Caller) -> bool {
    team.members.iter().any(|m| m.uzi == caller.uzi && m.organisation_ura == caller.ura)
        || (state.access.is_admin(caller) && team.organisation_ura == caller.ura)
}

fn stored_team(row: &StoredPolicyResource) -> Option<CareTeam> {
    access::parse_teams(std::slice::from_ref(row)).into_iter().next()
}

/// The stored JSON with `meta.versionId` (and the stored time is not tracked per version).
fn with_version(row: &StoredPolicyResource) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_str(&row.resource).map_err(ApiError::internal)?;
    v["meta"]["versionId"] = json!(row.version.to_string());
    Ok(v)
}

fn write_response(
    created: bool,
    ty: &str,
    id: &str,
    version: i64,
    resource: Value,
    warnings: Outcome,
    headers: &HeaderMap,
) -> Response {
    let representation =
        headers.get("prefer").and_then(|v| v.to_str().ok()).is_some_and(|p| p.contains("return=representation"));
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut r = if representation {
        let mut resource = resource;
        resource["meta"]["versionId"] = json!(version.to_string());
        fhir_response(status, &resource)
    } else {
        let mut o = Outcome::new();
        o.push(Issue::new(
            Severity::Information,
            IssueCode::Informational,
            format!("{ty}/{id} stored as version {version}"),
        ));
        o.extend(warnings);
        fhir_response(status, &o.to_fhir())
    };
    if let Ok(v) = HeaderValue::from_str(&format!("/fhir/{ty}/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Records a refused write and returns the error.
async fn refuse(state: &AppState, mut entry: AuditEntry, e: ApiError) -> ApiError {
    let action = entry.action;
    entry = audit_api::refusal(entry, action, &e);
    match crate::audit::record_alone(&state.store, &entry).await {
        Ok(_) => e,
        Err(a) => ApiError::internal(a),
    }
}

/// `PUT /fhir/CareTeam/{id}`.
pub async fn put_team(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut entry = audit_api::draft(AuditAction::CareTeamChange, &caller, &headers);
    entry.objects = vec![format!("CareTeam/{id}")];
    let today = access::today();
    let checked = async {
        caller.require_treatment_purpose()?;
        let v = parse_body(&body)?;
        check_id(&v, "CareTeam", &id)?;
        check_care_team(&v, rule_day(&v, today))
            .map(|(team, warnings)| (v, team, warnings))
            .map_err(|o| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, o))
    }
    .await;
    let (mut v, team, warnings) = match checked {
        Ok(x) => x,
        Err(e) => return Err(refuse(&state, entry, e).await),
    };
    entry.patient_bsn = Some(team.patient.as_str().to_owned());
    let existing = state.store.care_team(&id).await?;
    let old = existing.as_ref().and_then(stored_team);
    let admin = state.access.is_admin(&caller);
    let denied = if team.organisation_ura != caller.ura
        || existing.as_ref().is_some_and(|e| e.organisation_ura != caller.ura)
    {
        Some(("team.write.organisation", "a care team is written by its managing organisation: the token's URA is not the team's managing organisation"))
    } else if admin {
        None
    } else if let Some(old) = &old {
        (!is_lead(old, &caller, today)).then_some((
            "team.write.not-lead",
            "only the team's lead practitioner or an administrator of the organisation may change a care team",
        ))
    } else if existing.is_some() {
        Some(("team.write.not-lead", "the stored team cannot be read; only an administrator may replace it"))
    } else {
        (!is_lead(&team, &caller, today)).then_some((
            "team.write.not-lead",
            "a new care team is created by the lead practitioner it names, or by an administrator of the organisation",
        ))
    };
    if let Some((rule, reason)) = denied {
        entry.rule = Some(rule.to_owned());
        return Err(refuse(&state, entry, ApiError::forbidden(reason)).await);
    }
    if let Some(m) = v.get_mut("meta").and_then(Value::as_object_mut) {
        m.remove("versionId");
        m.remove("lastUpdated");
    }
    let text = serde_json::to_string(&v).map_err(ApiError::internal)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut tx = state.store.begin().await?;
    let version = tx
        .put_care_team(
            &id,
            team.patient.as_str(),
            &team.organisation_ura,
            &text,
            &Writer { uzi: &caller.uzi, ura: &caller.ura, at: &now },
        )
        .await?;
    entry.rule = Some(if admin { "team.write.admin" } else { "team.write.lead" }.to_owned());
    entry.reason = Some(team_summary(&team, version));
    audit_hook::audit_in(&mut tx, &entry).await?;
    tx.commit().await?;
    state.access.invalidate();
    // No id in the log: clients choose team ids and may put a BSN in them.
    tracing::info!(version, "care team stored");
    Ok(write_response(version == 1, "CareTeam", &id, version, v, warnings, &headers))
}

/// What changed, for the audit trail: state, members and roles (no names).
fn team_summary(t: &CareTeam, version: i64) -> String {
    let members: Vec<String> = t
        .members
        .iter()
        .map(|m| {
            let end = m.period.end.map(|e| e.to_string()).unwrap_or_default();
            format!("{} {} ({}) {}..{}", m.role.key(), m.uzi, m.uzi_role, m.period.start, end)
        })
        .collect();
    let state = match t.state {
        crate::policy::TreatmentState::Active => "active".to_owned(),
        crate::policy::TreatmentState::Ended { .. } => {
            format!("ended {}", t.period.end.map(|e| e.to_string()).unwrap_or_default())
        }
    };
    format!("version {version}; treatment {state}; members: {}", members.join("; "))
}

/// `GET /fhir/CareTeam/{id}`.
pub async fn get_team(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("CareTeam/{id} is not known, or not visible to you"));
    let row = if is_id(&id) { state.store.care_team(&id).await? } else { None };
    let visible =
        row.as_ref().and_then(|r| stored_team(r).map(|t| (r, t))).filter(|(_, t)| may_read_team(&state, t, &caller));
    let mut entry = audit_api::draft(AuditAction::Read, &caller, &headers);
    entry.objects = vec![format!("CareTeam/{id}")];
    match &visible {
        Some((r, _)) => {
            entry.patient_bsn = Some(r.patient_bsn.clone());
            audit_hook::outcome(&mut entry, AuditOutcome::Success, "team.read", "member or administrator of the team");
        }
        None => {
            entry.patient_bsn = row.as_ref().map(|r| r.patient_bsn.clone());
            audit_hook::outcome(&mut entry, AuditOutcome::Denied, "team.read.not-visible", "not a member of the team");
        }
    }
    audit_hook::audit_decision(&state, &entry).await?;
    match visible {
        Some((r, _)) => Ok(fhir_response(StatusCode::OK, &with_version(r)?)),
        None => Err(not_found()),
    }
}

/// The patient of a CareTeam/Consent search: `patient=<Patient id>` (a Patient a handover
/// brought) or `patient:identifier=http://fhir.nl/fhir/NamingSystem/bsn|<BSN>`.
async fn patient_param(state: &AppState, params: &[(String, String)]) -> Result<Option<String>, ApiError> {
    let mut bsn = None;
    for (k, v) in params {
        match k.as_str() {
            "patient" | "subject" => {
                let pid = v.strip_prefix("Patient/").unwrap_or(v);
                if !is_id(pid) {
                    return Err(ApiError::bad_request(k, "patient is a Patient id or Patient/<id>"));
                }
                bsn = state.store.patient_bsn_of(pid).await?;
            }
            "patient:identifier" | "subject:identifier" => {
                let value = v.strip_prefix(&format!("{}|", crate::terminology::uri::BSN)).unwrap_or(v);
                bsn = Some(value.to_owned());
            }
            "_count" | "_format" => {}
            other => {
                return Err(ApiError::bad_request(
                    other,
                    format!("search parameter {other:?} is not supported here; use patient or patient:identifier"),
                ))
            }
        }
    }
    Ok(bsn)
}

/// `GET /fhir/CareTeam?patient=…`.
pub async fn search_teams(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    if !params.iter().any(|(k, _)| k.starts_with("patient") || k.starts_with("subject")) {
        return Err(ApiError::bad_request("patient", "a CareTeam search is for one patient: ?patient=<Patient id>"));
    }
    let bsn = patient_param(&state, &params).await?;
    let rows = match &bsn {
        Some(b) => state.store.care_teams_of(b).await?,
        None => Vec::new(),
    };
    let mut hits = Vec::new();
    for r in &rows {
        if stored_team(r).is_some_and(|t| may_read_team(&state, &t, &caller)) {
            hits.push((r.id.clone(), serde_json::to_string(&with_version(r)?).map_err(ApiError::internal)?));
        }
    }
    let mut entry = audit_api::draft(AuditAction::Search, &caller, &headers);
    entry.patient_bsn = bsn.clone();
    entry.objects = hits.iter().map(|(id, _)| format!("CareTeam/{id}")).collect();
    let o = if hits.is_empty() { AuditOutcome::Denied } else { AuditOutcome::Success };
    audit_hook::outcome(&mut entry, o, "team.search", &format!("{} of {} teams visible", hits.len(), rows.len()));
    audit_hook::audit_decision(&state, &entry).await?;
    let base = facade::base_url(&headers);
    let mut out = Vec::new();
    facade::write_searchset(
        &mut out,
        &base,
        hits.len(),
        &[],
        hits.iter().map(|(id, json)| ("CareTeam", id.as_str(), json.as_str())),
    );
    let mut r = (StatusCode::OK, out).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(super::error::FHIR_JSON));
    Ok(r)
}

/// The caller may write or read consents of this patient: lead practitioner of one of the
/// patient's teams at the caller's organisation, or administrator of an organisation that
/// manages a team for the patient.
async fn may_handle_consents(state: &AppState, caller: &Caller, bsn: &str) -> Result<bool, ApiError> {
    let today = access::today();
    let teams = access::parse_teams(&state.store.care_teams_of(bsn).await?);
    let admin = state.access.is_admin(caller);
    Ok(teams.iter().any(|t| is_lead(t, caller, today) || (admin && t.organisation_ura == caller.ura)))
}

/// The sharing consents of the patient behind Patient `patient_id`, as facade rows, for a
/// caller who may handle them (none otherwise). Their category column is empty: they are
/// not clinical data and not subject to the access matrix.
pub async fn sharing_consents(
    state: &AppState,
    caller: &Caller,
    patient_id: &str,
    only_id: Option<&str>,
) -> Result<Vec<crate::store::FacadeResource>, ApiError> {
    let mut out = Vec::new();
    let Some(bsn) = state.store.patient_bsn_of(patient_id).await? else { return Ok(out) };
    if !may_handle_consents(state, caller, &bsn).await? {
        return Ok(out);
    }
    for row in state.store.consents_of(&bsn).await? {
        if only_id.is_some_and(|id| id != row.id) {
            continue;
        }
        out.push(crate::store::FacadeResource {
            holder_ura: caller.ura.clone(),
            resource_type: "Consent".to_owned(),
            resource_id: row.id.clone(),
            patient_bsn: bsn.clone(),
            patient_resource_id: Some(patient_id.to_owned()),
            category: String::new(),
            resource: with_version(&row)?.to_string(),
        });
    }
    Ok(out)
}

/// `PUT /fhir/Consent/{id}`.
pub async fn put_consent(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut entry = audit_api::draft(AuditAction::ConsentChange, &caller, &headers);
    entry.objects = vec![format!("Consent/{id}")];
    let checked = async {
        caller.require_treatment_purpose()?;
        let v = parse_body(&body)?;
        check_id(&v, "Consent", &id)?;
        PatientConsent::from_fhir(&v).map(|c| (v, c)).map_err(|o| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, o))
    }
    .await;
    let (mut v, consent) = match checked {
        Ok(x) => x,
        Err(e) => return Err(refuse(&state, entry, e).await),
    };
    let bsn = consent.patient.as_str().to_owned();
    entry.patient_bsn = Some(bsn.clone());
    entry.consent = Some(format!("Consent/{id}"));
    let existing = state.store.consent(&id).await?;
    let mut allowed = may_handle_consents(&state, &caller, &bsn).await?;
    if let Some(e) = existing.as_ref().filter(|e| e.patient_bsn != bsn) {
        allowed &= may_handle_consents(&state, &caller, &e.patient_bsn).await?;
    }
    if !allowed {
        entry.rule = Some("consent.write.not-allowed".to_owned());
        return Err(refuse(
            &state,
            entry,
            ApiError::forbidden(
                "a patient's consent is recorded by the lead practitioner of one of the patient's care teams, or by an administrator of its organisation",
            ),
        )
        .await);
    }
    if let Some(m) = v.get_mut("meta").and_then(Value::as_object_mut) {
        m.remove("versionId");
        m.remove("lastUpdated");
    }
    let text = serde_json::to_string(&v).map_err(ApiError::internal)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut tx = state.store.begin().await?;
    let version = tx.put_consent(&id, &bsn, &text, &Writer { uzi: &caller.uzi, ura: &caller.ura, at: &now }).await?;
    entry.rule = Some("consent.write".to_owned());
    entry.reason = Some(consent_summary(&consent, version));
    if let ConsentKind::Objection { categories: Some(c), .. } = &consent.kind {
        entry.categories = c.iter().map(|c| c.code().to_owned()).collect();
    }
    audit_hook::audit_in(&mut tx, &entry).await?;
    tx.commit().await?;
    state.access.invalidate();
    Ok(write_response(version == 1, "Consent", &id, version, v, Outcome::new(), &headers))
}

fn consent_summary(c: &PatientConsent, version: i64) -> String {
    let what = match &c.kind {
        ConsentKind::AgreementConsent { agreement_id } => format!("explicit consent for agreement {agreement_id}"),
        ConsentKind::Objection { categories, members } => format!(
            "objection to sharing {} with {}",
            categories.as_ref().map_or("all data".to_owned(), |s| s
                .iter()
                .map(|c| c.code())
                .collect::<Vec<_>>()
                .join(", ")),
            if members.is_empty() {
                "anyone".to_owned()
            } else {
                members.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        ),
    };
    let end = c.period.end.map(|e| e.to_string()).unwrap_or_default();
    format!("version {version}; {what}; {}..{end}; {}", c.period.start, if c.active { "active" } else { "not active" })
}

/// `GET /fhir/Consent/{id}`: a patient's sharing consent for those who may handle it;
/// otherwise the facade's Consent (treatment directives that handovers brought).
pub async fn get_consent(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if is_id(&id) {
        if let Some(row) = state.store.consent(&id).await? {
            if may_handle_consents(&state, &caller, &row.patient_bsn).await? {
                let mut entry = audit_api::draft(AuditAction::Read, &caller, &headers);
                entry.objects = vec![format!("Consent/{id}")];
                entry.patient_bsn = Some(row.patient_bsn.clone());
                audit_hook::outcome(
                    &mut entry,
                    AuditOutcome::Success,
                    "consent.read",
                    "lead practitioner or administrator",
                );
                audit_hook::audit_decision(&state, &entry).await?;
                return Ok(fhir_response(StatusCode::OK, &with_version(&row)?));
            }
        }
    }
    facade::read(State(state), caller, headers, Path(("Consent".to_owned(), id))).await
}

/// The member roles' keys, for documentation and the CapabilityStatement.
pub fn member_roles() -> Vec<&'static str> {
    MemberRole::ALL.iter().map(|r| r.key()).collect()
}
