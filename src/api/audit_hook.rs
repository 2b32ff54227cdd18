//! Access decisions into the audit trail: the one place where the facade, the
//! team and consent endpoints and the handover's transfer decision describe what was
//! decided.
//!
//! Every facade request makes one entry (not one per search hit) carrying the decision
//! that let data through, or the first denial, and appends it with [`audit_decision`]
//! before answering: a read whose entry cannot be written is not answered. Changes append
//! theirs with [`audit_in`] inside the transaction of the change itself.

use axum::http::HeaderMap;

use super::audit as audit_api;
use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::audit::{self, AuditAction, AuditEntry, AuditOutcome};
use crate::policy::{rules, AccessDecision, Requester};
use crate::store::Tx;

/// An entry for a facade request: who, from where, why, and the stated break-the-glass
/// reason (recorded whatever the decision).
pub fn draft(action: AuditAction, caller: &Caller, requester: &Requester, headers: &HeaderMap) -> AuditEntry {
    let mut e = audit_api::draft(action, caller, headers);
    e.break_glass_reason = requester.break_glass_reason.as_ref().map(|r| r.chars().take(1000).collect());
    e
}

/// Sets outcome, rule and reason.
pub fn outcome(e: &mut AuditEntry, outcome: AuditOutcome, rule: &str, reason: &str) {
    e.outcome = outcome;
    e.rule = Some(rule.to_owned());
    e.reason = Some(reason.to_owned());
}

/// Fills in the decisions of a facade request (one per patient and holder; usually one):
/// the decision that let data through, else the first denial. The holder (the provider
/// whose copy of the data was asked for) is named ([`AuditEntry::name_holder`]), so that
/// each provider's evidence report counts the accesses to its own data only.
/// Break-the-glass turns the action into `break-glass`, always flagged for review.
pub fn decisions(e: &mut AuditEntry, made: &[(&str, &str, &AccessDecision)], shown: bool) {
    let chosen = made.iter().find(|(_, _, d)| d.permit).or_else(|| made.first());
    match chosen {
        Some((bsn, holder, d)) => {
            e.patient_bsn = Some((*bsn).to_owned());
            e.team_roles = d.team_roles.clone();
            let o = if shown || d.permit { AuditOutcome::Success } else { AuditOutcome::Denied };
            outcome(e, o, d.rule, &d.reason);
            if d.permit && !shown {
                let r = e.reason.take().unwrap_or_default();
                e.reason = Some(format!("{r}; nothing matched in the permitted categories"));
            }
            e.name_holder(holder);
        }
        None => outcome(e, AuditOutcome::Denied, rules::FACADE_NOT_FOUND, "no stored data matches the request"),
    }
    if made.iter().any(|(_, _, d)| d.break_glass && d.permit) {
        e.action = AuditAction::BreakGlass;
        e.emergency = true;
    }
    e.flag_for_review |= made.iter().any(|(_, _, d)| d.flag_for_review);
}

/// THE single call site for a facade request's decision: appends the entry in a
/// transaction of its own before the answer is sent.
pub async fn audit_decision(state: &AppState, entry: &AuditEntry) -> Result<(), ApiError> {
    audit::record_alone(&state.store, entry).await.map(|_| ()).map_err(ApiError::internal)
}

/// Appends the entry inside the transaction of the change it records.
pub async fn audit_in(tx: &mut Tx, entry: &AuditEntry) -> Result<(), ApiError> {
    audit::record(tx, entry).await.map(|_| ()).map_err(ApiError::internal)
}
