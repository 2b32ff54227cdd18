//! The FHIR read facade: team members read what handovers brought, as far as the access
//! policy lets them.
//!
//! `GET /fhir/{type}/{id}`, `GET /fhir/{type}?patient=…` and `GET /fhir/Patient/{id}/$everything`
//! serve the resources of stored handovers (the `facade_resources` index, filled in the
//! handover's transaction). Every request:
//!
//! 1. builds a [`crate::policy::Requester`] from the token (UZI, role, URA,
//!    purpose) and the optional `X-Break-Glass-Reason` header;
//! 2. decides per patient and holder (the provider that received the data) with the
//!    [`crate::policy::PolicyEngine`]: the provider's teams for the patient,
//!    the agreements under which the patient's data arrived there, the patient's consents,
//!    today's date. Deny by default;
//! 3. filters item by item on each resource's data category (`meta.security`) *before*
//!    counting and paging, so `total`, page sizes and `next` links say nothing about what is
//!    hidden; `_include`/`_revinclude` are refused, not ignored;
//! 4. answers a resource the caller may not see exactly as one that does not exist (404):
//!    never a 403 that confirms it exists;
//! 5. writes one audit entry for the request (not one per hit), flagged for review on
//!    break-the-glass.
//!
//! Bundles are assembled from the stored JSON text without parsing it (the filter needs only
//! the category column), which keeps the facade's cost close to an unfiltered read.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::access_control;
use super::audit_hook;
use super::auth::Caller;
use super::error::{ApiError, FHIR_JSON};
use super::state::AppState;
use crate::audit::AuditAction;
use crate::policy::{AccessDecision, Requester};
use crate::store::FacadeResource;

/// Search parameters the facade understands (anything else is refused with 400).
pub const SEARCH_PARAMS: &[&str] = &["patient", "_id", "_count", "_offset"];
/// Default and largest page size.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 500;
/// Largest `_offset`: beyond any patient's number of resources, and far from overflow.
pub const MAX_OFFSET: usize = 1_000_000;

/// The resource types handovers produce (R4 pass-through may bring others, which are served
/// the same way).
pub const SERVED_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "Composition",
    "Condition",
    "Consent",
    "DocumentReference",
    "Encounter",
    "EpisodeOfCare",
    "Flag",
    "Immunization",
    "Medication",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "ServiceRequest",
];

fn not_found(ty: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("{ty}/{id} is not known, or not visible to you"))
}

/// A FHIR resource type name (what may follow `/fhir/`).
pub fn is_type_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.len() <= 64 && b[0].is_ascii_uppercase() && b.iter().all(u8::is_ascii_alphanumeric)
}

/// A FHIR id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Decisions for the (patient, holder) pairs of a request, made once each.
pub(crate) struct Decisions<'a> {
    state: &'a AppState,
    requester: &'a Requester,
    day: chrono::NaiveDate,
    decided: BTreeMap<(String, String), AccessDecision>,
}

impl<'a> Decisions<'a> {
    pub(crate) fn new(state: &'a AppState, requester: &'a Requester) -> Self {
        Decisions { state, requester, day: crate::policy::today(), decided: BTreeMap::new() }
    }

    /// The decision for this patient's data at this holder.
    pub(crate) async fn decide(&mut self, bsn: &str, holder: &str) -> Result<&AccessDecision, ApiError> {
        let key = (bsn.to_owned(), holder.to_owned());
        if !self.decided.contains_key(&key) {
            let d = match self.state.access.facts(&self.state.store, bsn, holder).await? {
                Some(f) => self.state.access.decide(self.requester, &f, self.day),
                None => AccessDecision::deny(
                    crate::policy::rules::DEFAULT_NO_PATIENT,
                    "the stored patient has no valid BSN",
                    false,
                ),
            };
            self.decided.insert(key.clone(), d);
        }
        self.decided.get(&key).ok_or_else(|| ApiError::internal("decision vanished"))
    }

    /// Whether a stored resource may be shown.
    pub(crate) async fn visible(&mut self, r: &FacadeResource) -> Result<bool, ApiError> {
        let d = self.decide(&r.patient_bsn, &r.holder_ura).await?;
        Ok(access_control::allows(d, &r.category))
    }

    /// The decisions made, `(patient BSN, holder URA, decision)`, for the audit entry.
    pub(crate) fn made(&self) -> Vec<(&str, &str, &AccessDecision)> {
        self.decided.iter().map(|((bsn, holder), d)| (bsn.as_str(), holder.as_str(), d)).collect()
    }
}

/// `GET /fhir/{type}/{id}`.
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((ty, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let requester = access_control::requester(&caller, &headers)?;
    if !is_type_name(&ty) || !is_id(&id) {
        return Err(not_found(&ty, &id));
    }
    let rows = state.store.facade_resource(&ty, &id).await?;
    let mut decisions = Decisions::new(&state, &requester);
    let mut shown = None;
    for r in &rows {
        if decisions.visible(r).await? {
            shown = Some(r);
            break;
        }
    }
    let object = format!("{ty}/{id}");
    let categories: Vec<String> = shown.iter().map(|r| r.category.clone()).collect();
    let mut entry = audit_hook::draft(AuditAction::Read, &caller, &requester, &headers);
    entry.objects = vec![object];
    entry.categories = categories;
    audit_hook::decisions(&mut entry, &decisions.made(), shown.is_some());
    audit_hook::audit_decision(&state, &entry).await?;
    match shown {
        Some(r) => Ok(resource_response(&r.resource)),
        None => Err(not_found(&ty, &id)),
    }
}

#[derive(Debug, Default)]
pub struct SearchQuery {
    pub patient: Option<String>,
    pub id: Option<String>,
    pub count: usize,
    pub offset: usize,
}

/// Reads the query string strictly: unknown parameters (`_include`, `_revinclude`, `_has`,
/// `_total`, ...) are refused, so nothing the caller asks for is silently ignored.
pub fn parse_search(ty: &str, params: &[(String, String)]) -> Result<SearchQuery, ApiError> {
    let mut q = SearchQuery { count: DEFAULT_COUNT, ..Default::default() };
    for (k, v) in params {
        let number = |name: &str| {
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(name, format!("{name} must be a non-negative whole number")))
        };
        match k.as_str() {
            "patient" if ty != "Patient" => {
                let id = v.strip_prefix("Patient/").unwrap_or(v);
                if !is_id(id) {
                    return Err(ApiError::bad_request("patient", "patient is a Patient id or Patient/<id>"));
                }
                q.patient = Some(id.to_owned());
            }
            "_id" => {
                if !is_id(v) {
                    return Err(ApiError::bad_request("_id", "_id is a resource id"));
                }
                q.id = Some(v.clone());
            }
            "_count" => q.count = number("_count")?.min(MAX_COUNT),
            "_offset" => {
                q.offset = number("_offset")?;
                if q.offset > MAX_OFFSET {
                    return Err(ApiError::bad_request(
                        "_offset",
                        format!("_offset must be 0 to {MAX_OFFSET}; follow the Bundle's next links"),
                    ));
                }
            }
            "_format" if v.contains("json") => {}
            other => {
                return Err(ApiError::bad_request(
                    other,
                    format!(
                        "search parameter {other:?} is not supported on {ty}; supported: {} (see /fhir/metadata)",
                        if ty == "Patient" { "_id, _count, _offset" } else { "patient, _id, _count, _offset" }
                    ),
                ))
            }
        }
    }
    if ty == "Patient" {
        if q.id.is_none() {
            return Err(ApiError::bad_request("_id", "a Patient search names the patient: ?_id=<Patient id>"));
        }
        q.patient = q.id.clone();
    } else if q.patient.is_none() {
        return Err(ApiError::bad_request(
            "patient",
            format!("a {ty} search is for one patient: ?patient=<Patient id>"),
        ));
    }
    Ok(q)
}

/// `GET /fhir/{type}?patient=…`.
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(ty): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let requester = access_control::requester(&caller, &headers)?;
    if !is_type_name(&ty) {
        return Err(ApiError::not_found(format!("no resource type {ty:?}")));
    }
    let q = parse_search(&ty, &params)?;
    let patient = q.patient.clone().unwrap_or_default();
    let rows = state.store.facade_resources_of_patient(&patient, Some(&ty)).await?;
    let mut decisions = Decisions::new(&state, &requester);
    if rows.is_empty() {
        // Still decide (and audit) for the patient, if it exists at all.
        for p in state.store.facade_resource("Patient", &patient).await? {
            decisions.decide(&p.patient_bsn, &p.holder_ura).await?;
        }
    }
    // Consent: the patient's own objections and consents come first, for those who may
    // handle them (see `care_team`), then the treatment directives handovers brought.
    let sharing = if ty == "Consent" {
        super::care_team::sharing_consents(&state, &caller, &patient, q.id.as_deref()).await?
    } else {
        Vec::new()
    };
    let mut hits: Vec<&FacadeResource> = sharing.iter().collect();
    for r in &rows {
        if q.id.as_ref().is_some_and(|id| *id != r.resource_id) {
            continue;
        }
        if decisions.visible(r).await? {
            hits.push(r);
        }
    }
    let seen: BTreeSet<String> = hits.iter().skip(sharing.len()).map(|r| r.category.clone()).collect();
    let page: Vec<&FacadeResource> = hits.iter().skip(q.offset).take(q.count).copied().collect();
    let mut entry = audit_hook::draft(AuditAction::Search, &caller, &requester, &headers);
    entry.objects = vec![format!("Patient/{patient}"), ty.clone()];
    entry.categories = seen.into_iter().collect();
    audit_hook::decisions(&mut entry, &decisions.made(), !hits.is_empty());
    audit_hook::audit_decision(&state, &entry).await?;
    let base = base_url(&headers);
    let links = page_links(&base, &ty, &q, hits.len());
    Ok(bundle_response(&base, hits.len(), &links, &page))
}

/// `GET /fhir/Patient/{id}/$everything`: every resource of the patient the caller may see;
/// 404 (as for an unknown patient) when the caller may see none.
pub async fn everything(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let requester = access_control::requester(&caller, &headers)?;
    if !is_id(&id) {
        return Err(not_found("Patient", &id));
    }
    let rows = state.store.facade_resources_of_patient(&id, None).await?;
    let mut decisions = Decisions::new(&state, &requester);
    let mut hits = Vec::new();
    for r in &rows {
        if decisions.visible(r).await? {
            hits.push(r);
        }
    }
    let seen: BTreeSet<String> = hits.iter().map(|r| r.category.clone()).collect();
    let mut entry = audit_hook::draft(AuditAction::Export, &caller, &requester, &headers);
    entry.objects = vec![format!("Patient/{id}")];
    entry.categories = seen.into_iter().collect();
    audit_hook::decisions(&mut entry, &decisions.made(), !hits.is_empty());
    audit_hook::audit_decision(&state, &entry).await?;
    if hits.is_empty() {
        return Err(not_found("Patient", &id));
    }
    let base = base_url(&headers);
    Ok(bundle_response(&base, hits.len(), &[], &hits))
}

/// `http://host` from the Host header, for `fullUrl` and links.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

fn page_links(base: &str, ty: &str, q: &SearchQuery, total: usize) -> Vec<(&'static str, String)> {
    let mut query = String::new();
    if ty != "Patient" {
        if let Some(p) = &q.patient {
            query.push_str(&format!("patient={p}&"));
        }
    }
    if let Some(id) = &q.id {
        query.push_str(&format!("_id={id}&"));
    }
    let url = |offset: usize| format!("{base}/{ty}?{query}_count={}&_offset={offset}", q.count);
    let mut links = vec![("self", url(q.offset))];
    // Checked: offset and count come from the caller (bounded by parse_search, and checked
    // here again so that no bound elsewhere is needed for this to be right).
    if let Some(next) = q.offset.checked_add(q.count).filter(|n| *n < total && q.count > 0) {
        links.push(("next", url(next)));
    }
    if q.offset > 0 {
        links.push(("previous", url(q.offset.saturating_sub(q.count))));
    }
    links
}

/// A searchset Bundle written around the stored JSON (no parse, no intermediate document).
pub fn bundle_response(base: &str, total: usize, links: &[(&str, String)], hits: &[&FacadeResource]) -> Response {
    let mut out = Vec::with_capacity(hits.iter().map(|r| r.resource.len() + 128).sum::<usize>() + 256);
    write_searchset(
        &mut out,
        base,
        total,
        links,
        hits.iter().map(|r| (&*r.resource_type, &*r.resource_id, &*r.resource)),
    );
    fhir_bytes(StatusCode::OK, out)
}

/// Writes a searchset Bundle of `(type, id, json)` entries.
pub fn write_searchset<'r>(
    out: &mut Vec<u8>,
    base: &str,
    total: usize,
    links: &[(&str, String)],
    entries: impl Iterator<Item = (&'r str, &'r str, &'r str)>,
) {
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":"searchset","total":"#);
    out.extend_from_slice(total.to_string().as_bytes());
    if !links.is_empty() {
        out.extend_from_slice(br#","link":["#);
        for (i, (rel, url)) in links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"relation":"#);
            out.extend_from_slice(serde_json::Value::from(*rel).to_string().as_bytes());
            out.extend_from_slice(br#","url":"#);
            out.extend_from_slice(serde_json::Value::from(url.as_str()).to_string().as_bytes());
            out.push(b'}');
        }
        out.push(b']');
    }
    let mut first = true;
    for (ty, id, json) in entries {
        out.extend_from_slice(if first { br#","entry":["# } else { b"," });
        first = false;
        // Types and ids are checked names ([A-Za-z0-9.-]): no escaping needed.
        out.extend_from_slice(br#"{"fullUrl":""#);
        out.extend_from_slice(base.as_bytes());
        out.push(b'/');
        out.extend_from_slice(ty.as_bytes());
        out.push(b'/');
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(br#"","resource":"#);
        out.extend_from_slice(json.as_bytes());
        out.extend_from_slice(br#","search":{"mode":"match"}}"#);
    }
    if !first {
        out.push(b']');
    }
    out.push(b'}');
}

fn resource_response(json: &str) -> Response {
    fhir_bytes(StatusCode::OK, json.as_bytes().to_vec())
}

fn fhir_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn search_parameters_are_strict() {
        assert!(parse_search("Condition", &p(&[("patient", "Patient/abc")])).is_ok());
        assert!(parse_search("Condition", &p(&[])).is_err(), "a patient is required");
        assert!(parse_search("Condition", &p(&[("patient", "a"), ("_include", "Condition:subject")])).is_err());
        assert!(parse_search("Condition", &p(&[("patient", "a"), ("_count", "x")])).is_err());
        assert!(parse_search("Condition", &p(&[("patient", "a"), ("_offset", "18446744073709551615")])).is_err());
        assert!(parse_search("Condition", &p(&[("patient", "a"), ("_offset", "1000000")])).is_ok());
        assert!(parse_search("Patient", &p(&[("_id", "a")])).is_ok());
        assert!(parse_search("Patient", &p(&[("patient", "a")])).is_err());
    }

    #[test]
    fn searchset_is_valid_json() {
        let mut out = Vec::new();
        write_searchset(
            &mut out,
            "http://h/fhir",
            1,
            &[("self", "http://h/fhir/Flag?patient=p".to_owned())],
            [("Flag", "f1", r#"{"resourceType":"Flag","id":"f1"}"#)].into_iter(),
        );
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["entry"][0]["fullUrl"], "http://h/fhir/Flag/f1");
        assert_eq!(v["total"], 1);
        let mut empty = Vec::new();
        write_searchset(&mut empty, "http://h/fhir", 0, &[], std::iter::empty());
        let v: serde_json::Value = serde_json::from_slice(&empty).expect("json");
        assert!(v.get("entry").is_none());
    }
}
