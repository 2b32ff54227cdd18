//! Break-the-glass review by the privacy officer: the flagged entries (`GET /audit/flagged`)
//! and a review of one (`POST /audit/reviews`), itself an audit entry.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::super::auth::Caller;
use super::super::error::ApiError;
use super::super::state::AppState;
use super::*;
use crate::audit::review::{self, Conclusion, NewReview, ReviewError};
use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::policy::audit_view::{self};

/// The privacy-officer check of the review endpoints ([`audit_view::decide_review`]); the
/// entry records the decision.
pub(super) fn officer_decision(state: &AppState, caller: &Caller, entry: &mut AuditEntry) -> bool {
    let d = audit_view::decide_review(&caller.uzi_role, &caller.ura, &state.audit.privacy_officer_roles, None);
    entry.rule = Some(d.rule.to_owned());
    if !d.permit {
        entry.outcome = AuditOutcome::Denied;
        entry.reason = Some(d.reason);
    }
    d.permit
}

pub(super) fn not_an_officer() -> ApiError {
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
            audit_view::entry_is_of(
                s.entry.user.as_ref().map(|u| u.ura.as_str()),
                s.entry.holder_ura.as_deref(),
                &caller.ura,
            )
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
                "reason": s.entry.shown_reason(),
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
    entry.name_reviewed(&req.entry.chars().take(64).collect::<String>());
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
        let d = audit_view::decide_review(
            role,
            ura,
            officers,
            Some((e.user.as_ref().map(|u| u.ura.as_str()), e.holder_ura.as_deref())),
        );
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
