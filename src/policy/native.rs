//! The default access policy (`policies/access.rego`) compiled by hand: the fast path.
//!
//! Why it exists: evaluating the Rego policy with regorus' interpreter takes about 0.3 ms
//! per decision (p99 several ms) on this machine, above the facade's target of p99 ≤ 100 µs;
//! regorus' bytecode VM (feature `rvm`, 0.14.1) was faster but decided 2,958 of the 13,608
//! cells of our decision table wrongly, so it is not used. This function computes the same
//! decision directly, reading the same configuration data (matrix, grace period, purposes,
//! break-the-glass settings), so a provider who only changes `access-config.json` keeps the
//! fast path.
//!
//! [`crate::policy::PolicyEngine`] uses it only while the Rego source is the shipped one,
//! byte for byte; an adapted policy is evaluated as Rego. The tests hold the two together:
//! the decision table runs every cell through both, and a property test compares them on
//! random teams, agreements and consents. Keep the order of the rules here the order of the
//! `else` chain in `access.rego`.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};

use super::care_team::{CareTeam, TeamMember};
use super::consent::ConsentKind;
use super::rules::*;
use super::team_access::{AccessConfig, AccessDecision, AccessRequest, Requested, BREAK_GLASS_KEY};
use super::Decision;
use crate::model::DataCategory;

type Set = BTreeSet<DataCategory>;

pub(crate) fn decide(cfg: &AccessConfig, req: &AccessRequest<'_>) -> AccessDecision {
    let r = req.requester;
    let now = req.day;
    let bg_reason = r.break_glass_reason.as_deref().map_or("", str::trim);
    let bg_requested = !bg_reason.is_empty();
    let deny = |rule: &'static str, reason: String| AccessDecision::deny(rule, reason, bg_requested);
    if !cfg.purposes_of_use.contains(&r.purpose_of_use) {
        return deny(
            PURPOSE_NOT_PERMITTED,
            format!("purpose of use '{}' is not one of {:?}", r.purpose_of_use, cfg.purposes_of_use),
        );
    }
    let teams: Vec<&CareTeam> = req.teams.iter().filter(|t| t.patient == *req.patient).collect();
    let memberships: Vec<(&CareTeam, &TeamMember)> =
        teams.iter().flat_map(|t| t.members.iter().filter(|m| m.uzi == r.uzi).map(move |m| (*t, m))).collect();
    // A membership counts for the organisation in the token, and only with the profession
    // the token states: the team's UZI role code is a claim until the member acts.
    let own: Vec<(&CareTeam, &TeamMember)> =
        memberships.iter().copied().filter(|(_, m)| m.organisation_ura == r.ura && m.uzi_role == r.uzi_role).collect();
    let role_mismatch = memberships.iter().any(|(_, m)| m.organisation_ura == r.ura && m.uzi_role != r.uzi_role);
    let grace = Days::new(u64::from(cfg.grace_period_days));
    let current: Vec<(&CareTeam, &TeamMember)> = own
        .iter()
        .copied()
        .filter(|(t, m)| match t.ended_on() {
            Some(end) if end < now => {
                end.checked_add_days(grace).is_some_and(|g| now <= g)
                    && cfg.grace_period_roles.iter().any(|k| k == m.role.key())
                    && m.period.contains(end)
            }
            _ => m.period.contains(now),
        })
        .collect();

    let agreed = |ura: &str| -> Set {
        req.agreements
            .iter()
            .filter(|a| a.receiver.ura.as_deref() == Some(ura) && a.in_force_for(now, req.patient, req.consents))
            .flat_map(|a| a.categories.iter().copied())
            .collect()
    };
    let mut objected = Set::new();
    let mut member_objection = false;
    for c in req.consents.iter().filter(|c| c.patient == *req.patient && c.in_force(now)) {
        if let ConsentKind::Objection { categories, members } = &c.kind {
            let named = members.contains(r.uzi.as_str());
            if members.is_empty() || named {
                match categories {
                    Some(set) => objected.extend(set.iter().copied()),
                    None => objected.extend(DataCategory::ALL.iter().copied()),
                }
            }
            member_objection |= named && categories.is_none();
        }
    }
    let wanted = |c: &DataCategory| match req.requested {
        Requested::All => true,
        Requested::Only(set) => set.contains(c),
    };
    let matrix_allows = |key: &str, c: DataCategory| cfg.matrix.get(key).is_some_and(|e| e.allows(c));

    let bg_teams: Vec<&CareTeam> = teams.iter().copied().filter(|t| t.organisation_ura == r.ura).collect();
    let bg_profession = cfg.break_glass.professions.iter().any(|p| *p == r.uzi_role);
    let bg_allowed = cfg.break_glass.enabled && bg_requested && !bg_teams.is_empty() && bg_profession;
    let overridden = bg_allowed && cfg.break_glass.overrides_objection;

    if member_objection && !overridden {
        return deny(CONSENT_MEMBER_OBJECTION, "the patient objects to this person seeing their data".into());
    }

    let mut member_agreed = Set::new();
    let mut member_grants = Set::new();
    for (t, m) in &current {
        for c in agreed(&t.organisation_ura) {
            member_agreed.insert(c);
            if matrix_allows(m.role.key(), c) {
                member_grants.insert(c);
            }
        }
    }
    let member_unobjected: Set = member_grants.difference(&objected).copied().collect();
    let member_final: Set = member_unobjected.iter().copied().filter(wanted).collect();
    if !member_final.is_empty() {
        let roles: BTreeSet<&str> = current.iter().map(|(_, m)| m.role.key()).collect();
        let team_roles: Vec<String> = roles.into_iter().map(str::to_owned).collect();
        return AccessDecision {
            decision: Decision::permit(
                ACCESS_MEMBER,
                format!("member of the care team as {}", team_roles.join(" and ")),
            ),
            allowed_categories: member_final,
            break_glass: false,
            flag_for_review: false,
            team_roles,
        };
    }

    let bg_agreed: Set = bg_teams.iter().flat_map(|t| agreed(&t.organisation_ura)).collect();
    let bg_grants: Set = bg_agreed.iter().copied().filter(|c| matrix_allows(BREAK_GLASS_KEY, *c)).collect();
    let bg_unobjected: Set = if cfg.break_glass.overrides_objection {
        bg_grants.clone()
    } else {
        bg_grants.difference(&objected).copied().collect()
    };
    let bg_final: Set = bg_unobjected.iter().copied().filter(wanted).collect();
    if bg_allowed && !bg_final.is_empty() {
        return AccessDecision {
            decision: Decision::permit(
                ACCESS_BREAK_GLASS,
                format!("break-the-glass by a member of the provider (URA {}): {}", r.ura, bg_reason),
            ),
            allowed_categories: bg_final,
            break_glass: true,
            flag_for_review: true,
            team_roles: Vec::new(),
        };
    }

    let shortfall = |who: &str, agreed: &Set, grants: &Set, unobjected: &Set| {
        if agreed.is_empty() {
            deny(
                AGREEMENT_NONE_IN_FORCE,
                format!("{who}, but no data-transfer agreement in force brought data to this provider"),
            )
        } else if !grants.iter().any(wanted) {
            // Sorted by code, as Rego's `sort` does.
            let mut allowed: Vec<&str> = unobjected.iter().map(|c| c.code()).collect();
            allowed.sort_unstable();
            deny(
                CATEGORY_NOT_ALLOWED,
                format!(
                    "{who}, but none of the requested categories is allowed for this role (allowed: {})",
                    allowed.join(", ")
                ),
            )
        } else {
            deny(
                CONSENT_CATEGORY_OBJECTION,
                format!("{who}, but the patient objects to sharing the requested categories"),
            )
        }
    };
    if !current.is_empty() {
        return shortfall("member of the care team", &member_agreed, &member_grants, &member_unobjected);
    }
    if bg_requested && !cfg.break_glass.enabled {
        return deny(BREAK_GLASS_DISABLED, "break-the-glass is not enabled at this provider".into());
    }
    if bg_allowed {
        return shortfall("break-the-glass", &bg_agreed, &bg_grants, &bg_unobjected);
    }
    if bg_requested && !bg_teams.is_empty() {
        return deny(
            BREAK_GLASS_PROFESSION,
            format!(
                "break-the-glass is for the professions the policy names (break_glass.professions); UZI role {} is not one",
                r.uzi_role
            ),
        );
    }
    if bg_requested {
        return deny(
            BREAK_GLASS_OTHER_ORGANISATION,
            format!(
                "break-the-glass is for members of the provider that manages the patient's team; URA {} does not",
                r.ura
            ),
        );
    }
    not_a_member(&own, role_mismatch, !memberships.is_empty(), now, deny)
}

fn not_a_member(
    own: &[(&CareTeam, &TeamMember)],
    role_mismatch: bool,
    any_membership: bool,
    now: NaiveDate,
    deny: impl Fn(&'static str, String) -> AccessDecision,
) -> AccessDecision {
    if own.iter().any(|(_, m)| now < m.period.start) {
        deny(MEMBERSHIP_NOT_STARTED, "the requester's membership of the care team has not started yet".into())
    } else if own.iter().any(|(t, _)| t.ended_on().is_some_and(|e| e < now)) {
        deny(TREATMENT_ENDED, "the treatment has ended (and any grace period for the closing letter has passed)".into())
    } else if !own.is_empty() {
        deny(MEMBERSHIP_ENDED, "the requester's membership of the care team has ended".into())
    } else if role_mismatch {
        deny(
            MEMBERSHIP_ROLE_MISMATCH,
            "the care team records another profession (UZI role) for the requester than the token states".into(),
        )
    } else if any_membership {
        deny(
            MEMBERSHIP_OTHER_ORGANISATION,
            "the requester is a member of the care team for another organisation than the one in the token".into(),
        )
    } else {
        deny(DEFAULT_NOT_A_MEMBER, "the requester is not a member of any of the patient's care teams".into())
    }
}
