//! Care teams and patient consents through the API: `PUT/GET /fhir/CareTeam/{id}`,
//! `GET /fhir/CareTeam?patient=…`, `PUT/GET /fhir/Consent/{id}`.
//!
//! A team is stored only when the GZSP rules accept it ([`check_care_team`]): errors are
//! `422` with the OperationOutcome, warnings come back with the stored team.
//!
//! **Who may write, who may read**: decided by [`crate::policy::writes`] (rule ids and
//! their order are documented there): a team is written by its managing organisation's
//! administrators or its lead practitioner, created by an administrator or the patient's
//! current lead, with the writer's profession as the token states it, one active team per
//! patient and organisation; a consent is changed only by the organisation that recorded it
//! (or one the patient designated in `Consent.organization`), and an objection is withdrawn
//! only with the patient's recorded statement (`Consent.sourceAttachment` or
//! `sourceReference`). Every write, refused or not, is audited (a stored one in the
//! transaction of the write).
//!
//! A team is read by its members (acting for the organisation and with the profession of
//! their membership) and the administrators of its organisation, for a purpose of use the
//! access policy accepts; for anyone else it does not exist (404). A consent: whoever may
//! change it. Search results are filtered item by item.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::access_control::{self, rule_day};
use super::audit as audit_api;
use super::audit_hook;
use super::auth::Caller;
use super::error::{fhir_response, ApiError};
use super::facade::{self, is_id};
use super::state::AppState;
use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::model::Ura;
use crate::policy::consent;
use crate::policy::writes::{self, ConsentWrite, StoredConsent, StoredTeam, TeamWrite};
use crate::policy::{check_care_team, rules, CareTeam, ConsentKind, Decision, MemberRole, PatientConsent};
use crate::store::{StoredPolicyResource, Tx, Writer};
use crate::validate::{Issue, IssueCode, Outcome, Severity};

/// The start of a team or consent write: its audit entry (`action` on `ty/id`) and the body,
/// checked before any policy decision: the purpose of use allows care, the body is JSON
/// whose id is the one in the URL, and `parse` (the domain type's reader) accepts it (422
/// with its outcome otherwise). A write refused here is recorded before the error returns.
async fn written<T>(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    action: AuditAction,
    (ty, id): (&str, &str),
    body: &Bytes,
    parse: impl FnOnce(&Value) -> Result<T, Outcome>,
) -> Result<(AuditEntry, Value, T), ApiError> {
    let mut entry = audit_api::draft(action, caller, headers);
    entry.objects = vec![format!("{ty}/{id}")];
    match checked_body(caller, body, ty, id, parse) {
        Ok((v, t)) => Ok((entry, v, t)),
        Err(e) => Err(refuse(state, entry, e).await),
    }
}

fn checked_body<T>(
    caller: &Caller,
    body: &Bytes,
    ty: &str,
    id: &str,
    parse: impl FnOnce(&Value) -> Result<T, Outcome>,
) -> Result<(Value, T), ApiError> {
    caller.require_treatment_purpose()?;
    super::input::require_body(body)?;
    let v = super::input::json_body(body)?;
    check_id(&v, ty, id)?;
    let t = parse(&v).map_err(|o| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, o))?;
    Ok((v, t))
}

/// Ends a permitted write: its audit entry in the write's transaction, the commit, and the
/// access decisions' cache invalidated (teams and consents are what they read).
async fn commit_write(state: &AppState, mut tx: Tx, entry: &AuditEntry) -> Result<(), ApiError> {
    audit_hook::audit_in(&mut tx, entry).await?;
    tx.commit().await?;
    state.access.invalidate();
    Ok(())
}

/// The resource as stored (the server's `meta.versionId`/`lastUpdated` removed: the store
/// keeps the version) and the time of the write.
fn stored_form(v: &mut Value) -> Result<(String, String), ApiError> {
    if let Some(m) = v.get_mut("meta").and_then(Value::as_object_mut) {
        m.remove("versionId");
        m.remove("lastUpdated");
    }
    let text = serde_json::to_string(v).map_err(ApiError::internal)?;
    Ok((text, chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
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

/// The policy's decision on reading `team` ([`writes::decide_team_read`]).
fn team_read(state: &AppState, team: &CareTeam, caller: &Caller) -> Decision {
    let actor = state.access.actor(caller);
    writes::decide_team_read(&actor, &caller.purpose_of_use, &state.access.engine.config().purposes_of_use, team)
}

fn stored_team(row: &StoredPolicyResource) -> Option<CareTeam> {
    access_control::parse_teams(std::slice::from_ref(row)).into_iter().next()
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

/// A `PUT` of a team or consent: the authenticated caller, the headers, the id in the URL
/// and the body, extracted in that order (as the handlers named them before), so that a
/// request wrong in several ways gets the same answer.
pub struct ResourcePut {
    caller: Caller,
    headers: HeaderMap,
    id: String,
    body: Bytes,
}

impl FromRequest<AppState> for ResourcePut {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let Path(id) =
            Path::<String>::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let body =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        Ok(ResourcePut { caller, headers, id, body })
    }
}

/// `PUT /fhir/CareTeam/{id}`.
pub async fn put_team(State(state): State<AppState>, put: ResourcePut) -> Result<Response, ApiError> {
    let ResourcePut { caller, headers, id, body } = put;
    let today = crate::policy::today();
    let (mut entry, mut v, (team, warnings)) =
        written(&state, &caller, &headers, AuditAction::CareTeamChange, ("CareTeam", &id), &body, |v| {
            check_care_team(v, rule_day(v, today))
        })
        .await?;
    entry.patient_bsn = Some(team.patient.as_str().to_owned());
    let existing = state.store.care_team(&id).await?;
    let old = existing.as_ref().and_then(stored_team);
    let patient_teams = access_control::parse_teams(&state.store.care_teams_of(team.patient.as_str()).await?);
    let actor = state.access.actor(&caller);
    let decision = writes::decide_team_write(&TeamWrite {
        actor: &actor,
        team: &team,
        stored: existing.as_ref().map(|e| StoredTeam {
            organisation_ura: &e.organisation_ura,
            patient_bsn: &e.patient_bsn,
            team: old.as_ref(),
        }),
        patient_teams: &patient_teams,
        day: today,
    });
    if !decision.permit {
        return Err(refuse_team(&state, entry, &decision).await);
    }
    let (text, now) = stored_form(&mut v)?;
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
    // Again under the write lock the write took: two parallel creations of an active team
    // for one patient cannot both pass `team.one-active`.
    let now_stored = access_control::parse_teams(&tx.care_teams_of(team.patient.as_str()).await?);
    if let Some(conflict) = writes::one_active_conflict(&team, &now_stored) {
        drop(tx);
        return Err(refuse_team(&state, entry, &conflict).await);
    }
    entry.rule = Some(decision.rule.to_owned());
    entry.reason = Some(format!("{}; {}", decision.reason, team_summary(&team, version)));
    commit_write(&state, tx, &entry).await?;
    // No id in the log: clients choose team ids and may put a BSN in them.
    tracing::info!(version, "care team stored");
    Ok(write_response(version == 1, "CareTeam", &id, version, v, warnings, &headers))
}

/// Records a refused team write with the policy's rule and returns the error: `409` for a
/// second active team, `403` otherwise.
async fn refuse_team(state: &AppState, mut entry: AuditEntry, d: &Decision) -> ApiError {
    entry.rule = Some(d.rule.to_owned());
    let e = if d.rule == rules::TEAM_ONE_ACTIVE {
        ApiError::new(StatusCode::CONFLICT, Issue::error(IssueCode::Conflict, d.reason.clone()))
    } else {
        ApiError::forbidden(d.reason.clone())
    };
    refuse(state, entry, e).await
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
    let decision = match row.as_ref().and_then(stored_team) {
        Some(t) => team_read(&state, &t, &caller),
        None => Decision::deny(rules::TEAM_READ_NOT_VISIBLE, "no such team"),
    };
    let mut entry = audit_api::draft(AuditAction::Read, &caller, &headers);
    entry.objects = vec![format!("CareTeam/{id}")];
    entry.patient_bsn = row.as_ref().map(|r| r.patient_bsn.clone());
    let o = if decision.permit { AuditOutcome::Success } else { AuditOutcome::Denied };
    audit_hook::outcome(&mut entry, o, decision.rule, &decision.reason);
    audit_hook::audit_decision(&state, &entry).await?;
    match row.filter(|_| decision.permit) {
        Some(r) => Ok(fhir_response(StatusCode::OK, &with_version(&r)?)),
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
    // The rule recorded: the first permit, else the first denial (as the facade does).
    let mut recorded: Option<Decision> = None;
    for r in &rows {
        let Some(t) = stored_team(r) else { continue };
        let d = team_read(&state, &t, &caller);
        if d.permit {
            hits.push((r.id.clone(), serde_json::to_string(&with_version(r)?).map_err(ApiError::internal)?));
        }
        if recorded.as_ref().is_none_or(|x| !x.permit && d.permit) {
            recorded = Some(d);
        }
    }
    let mut entry = audit_api::draft(AuditAction::Search, &caller, &headers);
    entry.patient_bsn = bsn.clone();
    entry.objects = hits.iter().map(|(id, _)| format!("CareTeam/{id}")).collect();
    let o = if hits.is_empty() { AuditOutcome::Denied } else { AuditOutcome::Success };
    let rule = recorded.as_ref().map_or(rules::TEAM_SEARCH, |d| d.rule);
    let why = recorded.as_ref().map_or("no team", |d| d.reason.as_str());
    audit_hook::outcome(&mut entry, o, rule, &format!("{} of {} teams visible; {why}", hits.len(), rows.len()));
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

/// The custodians of a stored consent (`Consent.organization`, recording organisation
/// first); for a consent stored before consents named them, the organisation that wrote it.
async fn stored_custodians(state: &AppState, row: &StoredPolicyResource) -> Result<Vec<Ura>, ApiError> {
    let v: Value = serde_json::from_str(&row.resource).map_err(ApiError::internal)?;
    let named = consent::custodians(&v);
    if !named.is_empty() {
        return Ok(named);
    }
    Ok(state.store.consent_written_by_ura(&row.id).await?.into_iter().collect())
}

/// The policy's decision on reading stored consent `row` ([`writes::decide_consent_read`]).
async fn consent_read(state: &AppState, caller: &Caller, row: &StoredPolicyResource) -> Result<Decision, ApiError> {
    let teams = access_control::parse_teams(&state.store.care_teams_of(&row.patient_bsn).await?);
    let custodians = stored_custodians(state, row).await?;
    Ok(writes::decide_consent_read(&state.access.actor(caller), &custodians, &teams, crate::policy::today()))
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
    for row in state.store.consents_of(&bsn).await? {
        if only_id.is_some_and(|id| id != row.id) || !consent_read(state, caller, &row).await?.permit {
            continue;
        }
        out.push(crate::store::FacadeResource {
            holder_ura: caller.ura.to_string(),
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
pub async fn put_consent(State(state): State<AppState>, put: ResourcePut) -> Result<Response, ApiError> {
    let ResourcePut { caller, headers, id, body } = put;
    let (mut entry, mut v, consent) = written(
        &state,
        &caller,
        &headers,
        AuditAction::ConsentChange,
        ("Consent", &id),
        &body,
        PatientConsent::from_fhir,
    )
    .await?;
    let bsn = consent.patient.as_str().to_owned();
    entry.patient_bsn = Some(bsn.clone());
    entry.consent = Some(format!("Consent/{id}"));
    let existing = state.store.consent(&id).await?;
    let stored = match &existing {
        Some(row) => {
            let v: Value = serde_json::from_str(&row.resource).map_err(ApiError::internal)?;
            let c =
                PatientConsent::from_fhir(&v).map_err(|_| ApiError::internal("a stored consent no longer parses"))?;
            Some((c, stored_custodians(&state, row).await?))
        }
        None => None,
    };
    // The custodians of the new version: as written, else those of the stored version, else
    // the writer's organisation (recorded in the resource, so that the rule can be read there).
    let mut custodians = consent::custodians(&v);
    if custodians.is_empty() {
        custodians = stored.as_ref().map(|(_, c)| c.clone()).unwrap_or_else(|| vec![caller.ura.clone()]);
        v["organization"] = consent::custodians_json(&custodians);
    }
    let statement = consent::patient_statement(&v);
    let teams = access_control::parse_teams(&state.store.care_teams_of(&bsn).await?);
    let actor = state.access.actor(&caller);
    let decision = writes::decide_consent_write(&ConsentWrite {
        actor: &actor,
        consent: &consent,
        custodians: &custodians,
        statement: statement.as_deref(),
        stored: stored.as_ref().map(|(c, u)| StoredConsent { consent: c, custodians: u }),
        patient_teams: &teams,
        agreements: &state.access.agreements,
        day: crate::policy::today(),
    });
    if !decision.permit {
        entry.rule = Some(decision.rule.to_owned());
        let e = if decision.rule == rules::CONSENT_WITHDRAW_NO_STATEMENT {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Issue::error(IssueCode::BusinessRule, decision.reason))
        } else {
            ApiError::forbidden(decision.reason)
        };
        return Err(refuse(&state, entry, e).await);
    }
    let (text, now) = stored_form(&mut v)?;
    let mut tx = state.store.begin().await?;
    let version = tx.put_consent(&id, &bsn, &text, &Writer { uzi: &caller.uzi, ura: &caller.ura, at: &now }).await?;
    entry.rule = Some(decision.rule.to_owned());
    entry.reason = Some(format!("{}; {}", consent_summary(&consent, version), decision.reason));
    if let ConsentKind::Objection { categories: Some(c), .. } = &consent.kind {
        entry.categories = c.iter().map(|c| c.code().to_owned()).collect();
    }
    commit_write(&state, tx, &entry).await?;
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
            let decision = consent_read(&state, &caller, &row).await?;
            if decision.permit {
                let mut entry = audit_api::draft(AuditAction::Read, &caller, &headers);
                entry.objects = vec![format!("Consent/{id}")];
                entry.patient_bsn = Some(row.patient_bsn.clone());
                audit_hook::outcome(&mut entry, AuditOutcome::Success, decision.rule, &decision.reason);
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
