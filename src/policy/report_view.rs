//! Who may see a provider's evidence report (`GET /report`): deny by default. The caller's
//! organisation must be the provider, and the caller an administrator of it
//! (`policy.admins`) or a privacy officer (`audit.privacy_officer_roles`). The command line
//! makes the report as a local operator with access to the database
//! (`report/local-operator`). Every decision is audited by the caller.

use super::rules::*;
use super::{Actor, Decision};

/// Decides a report request of `actor` for `provider` (a URA).
pub fn decide_report_view(actor: &Actor<'_>, provider: &str, privacy_officer_roles: &[String]) -> Decision {
    if actor.ura != provider {
        return Decision::deny(
            REPORT_OTHER_PROVIDER,
            format!("the report of provider {provider} is for that organisation only (token URA {})", actor.ura),
        );
    }
    if actor.admin {
        return Decision::permit(
            REPORT_ADMIN,
            format!("UZI {} is an administrator of organisation {provider}", actor.uzi),
        );
    }
    if privacy_officer_roles.iter().any(|r| r == actor.uzi_role) {
        return Decision::permit(
            REPORT_PRIVACY_OFFICER,
            format!("UZI role {} is a configured privacy-officer role", actor.uzi_role),
        );
    }
    Decision::deny(
        REPORT_DENY,
        "only the provider's administrators (policy.admins) and privacy officers (audit.privacy_officer_roles) may see the report",
    )
}

/// The decision recorded for a report made on the command line.
pub fn local_operator() -> Decision {
    Decision::permit(REPORT_LOCAL_OPERATOR, "made on the command line by an operator with access to the database")
}
