//! The sections of the report, each built from the rows the store aggregated and the
//! loaded agreements and policy: pure functions, tested in `tests.rs`.

use super::*;

/// The status of an agreement on `today`, and the days left when it ends.
pub fn agreement_status(a: &Agreement, today: NaiveDate) -> (&'static str, Option<i64>) {
    if a.valid.start > today {
        return ("not-yet-in-force", None);
    }
    match a.valid.end {
        Some(end) if end < today => ("expired", None),
        Some(end) => {
            let left = (end - today).num_days();
            (if left <= EXPIRING_SOON_DAYS { "expiring-soon" } else { "in-force" }, Some(left))
        }
        None => ("in-force", None),
    }
}

pub(super) fn category(c: DataCategory) -> CategoryOut {
    CategoryOut { code: c.code().to_owned(), display: c.display().to_owned() }
}

pub(super) fn party(p: &Party) -> PartyOut {
    PartyOut {
        name: p.name.clone(),
        kind: match p.kind {
            PartyKind::GpPractice => "gp-practice",
            PartyKind::HospitalDepartment => "hospital-department",
            PartyKind::GzspProvider => "gzsp-provider",
        },
        department: p.department.clone(),
        agb: p.agb.as_ref().map(ToString::to_string),
        ura: p.ura.as_ref().map(ToString::to_string),
    }
}

pub(super) fn agreements_section(ours: &[&Agreement], today: NaiveDate) -> AgreementsSection {
    let mut in_force = Vec::new();
    let mut not_in_force = Vec::new();
    let mut expiring_soon = Vec::new();
    let mut senders = BTreeSet::new();
    for a in ours {
        let (status, days_left) = agreement_status(a, today);
        let out = AgreementOut {
            id: a.id.clone(),
            version: a.version.clone(),
            label: a.label(),
            title: a.title.clone(),
            sender: party(&a.sender),
            categories: a.categories.iter().copied().map(category).collect(),
            valid_from: a.valid.start.to_string(),
            valid_to: a.valid.end.map(|d| d.to_string()),
            status,
            days_left,
            legal_basis: match a.legal_basis {
                LegalBasis::ExplicitConsent => "explicit-consent",
                LegalBasis::TreatmentRelationship => "treatment-relationship",
            },
            legal_basis_text: match a.legal_basis {
                LegalBasis::ExplicitConsent => {
                    "the patient's explicit consent (AVG art. 9(2)(a)); in force per patient once the consent is recorded"
                }
                LegalBasis::TreatmentRelationship => {
                    "the treatment relationship (WGBO; AVG art. 9(2)(h)): the provider treats the patient on referral"
                }
            },
            purpose: a.purpose.clone(),
            retention: a.retention.to_string(),
        };
        match status {
            "in-force" | "expiring-soon" => {
                if status == "expiring-soon" {
                    expiring_soon.push(a.label());
                }
                senders.insert(a.sender.name.clone());
                in_force.push(out);
            }
            _ => not_in_force.push(out),
        }
    }
    AgreementsSection {
        expiring_soon_days: EXPIRING_SOON_DAYS,
        in_force,
        expiring_soon,
        not_in_force,
        senders_in_force: senders.into_iter().collect(),
    }
}

pub(super) fn role_who(key: &str) -> String {
    match key {
        "lead-practitioner" => "Lead practitioner (regiebehandelaar)".to_owned(),
        "co-practitioner" => "Co-practitioner (medebehandelaar)".to_owned(),
        "supporting-discipline" => "Supporting discipline (ondersteunende discipline)".to_owned(),
        BREAK_GLASS_KEY => "Break-the-glass (emergency access by anyone else at the provider)".to_owned(),
        other => other.to_owned(),
    }
}

pub(super) fn list_words(cats: &BTreeSet<DataCategory>) -> String {
    let names: Vec<&str> = cats.iter().map(|c| c.display()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The access matrix and the policy settings in words, generated from the configuration.
pub fn access_arrangement(engine: &PolicyEngine) -> AccessArrangement {
    let config: &AccessConfig = engine.config();
    let mut rules = Vec::new();
    let keys = MemberRole::ALL.iter().map(|r| r.key()).chain([BREAK_GLASS_KEY]);
    for key in keys {
        let Some(entry) = config.matrix.get(key) else { continue };
        let who = role_who(key);
        let (scope, cats, text) = match entry {
            MatrixEntry::AllExcept(set) if set.is_empty() => {
                ("all", set, format!("{who}: every data category the agreements brought"))
            }
            MatrixEntry::AllExcept(set) => (
                "all-except",
                set,
                format!("{who}: every data category the agreements brought except {}", list_words(set)),
            ),
            MatrixEntry::Only(set) if set.is_empty() => ("only", set, format!("{who}: nothing")),
            MatrixEntry::Only(set) => ("only", set, format!("{who}: only {}", list_words(set))),
        };
        rules.push(AccessRuleOut {
            key: key.to_owned(),
            who,
            scope,
            categories: cats.iter().copied().map(category).collect(),
            text,
        });
    }
    let mut statements: Vec<String> =
        rules.iter().filter(|r| r.key != BREAK_GLASS_KEY).map(|r| r.text.clone()).collect();
    statements.push(
        "Nobody outside the patient's care team at this provider has access; access is denied unless a rule permits it."
            .into(),
    );
    statements.push(
        "A member reads only while their membership and the treatment run, only categories that an agreement in \
         force brought for this patient, and never what the patient objected to."
            .into(),
    );
    statements.push(format!(
        "Access is only for the purpose of use {}.",
        config.purposes_of_use.iter().map(String::as_str).collect::<Vec<_>>().join(" or ")
    ));
    if config.grace_period_days > 0 && !config.grace_period_roles.is_empty() {
        let who: Vec<String> = config.grace_period_roles.iter().map(|k| role_who(k)).collect();
        statements.push(format!(
            "After a treatment ends, the {} keeps access for {} days (the closing letter); everyone else loses it on the last day.",
            who.join(" and ").to_lowercase(),
            config.grace_period_days
        ));
    } else {
        statements.push("When a treatment ends, every member loses access on the last day.".into());
    }
    if config.break_glass.enabled {
        let scope = rules.iter().find(|r| r.key == BREAK_GLASS_KEY).map(|r| r.text.clone()).unwrap_or_default();
        statements.push(format!(
            "Emergency access (break-the-glass) needs a stated reason, is open to {} UZI role(s) only (by default \
             the BIG-registered professions), is always audited and flagged for review by the privacy officer; {}. {}",
            config.break_glass.professions.len(),
            scope.split_once(": ").map_or(scope.as_str(), |(_, s)| s),
            if config.break_glass.overrides_objection {
                "It overrides the patient's objections."
            } else {
                "The patient's objections still apply."
            }
        ));
    } else {
        statements.push("Emergency access (break-the-glass) is switched off.".into());
    }
    if !engine.is_shipped_rego() {
        statements.push(
            "This provider runs an adapted access policy: these sentences describe its configuration; its rules \
             (the Rego files) may differ from the shipped policy."
                .into(),
        );
    }
    AccessArrangement {
        policy: if engine.is_shipped_rego() { "shipped" } else { "adapted" },
        rules,
        statements,
        purposes_of_use: config.purposes_of_use.clone(),
        grace_period_days: config.grace_period_days,
        grace_period_roles: config.grace_period_roles.clone(),
        break_glass_enabled: config.break_glass.enabled,
        break_glass_overrides_objection: config.break_glass.overrides_objection,
    }
}

/// The evaluation state of a team on `today` (`next_evaluation` per the plan).
pub fn evaluation_state(active: bool, exempt: bool, next: Option<NaiveDate>, today: NaiveDate) -> &'static str {
    if !active {
        return "not-applicable";
    }
    match next {
        None if exempt => "not-required",
        None => "not-planned",
        // Individual SO/AVG care need not be evaluated six-monthly: a past date is no omission.
        Some(d) if d < today && exempt => "not-required",
        Some(d) if d < today => "overdue",
        Some(d) if (d - today).num_days() <= EVALUATION_DUE_DAYS => "due",
        Some(_) => "planned",
    }
}

/// Replaces every run of exactly nine digits that passes the BSN eleven test with asterisks:
/// free texts from the trail (reasons, consent and team ids) may name a patient by BSN.
pub fn mask_bsn_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 9 && crate::model::Bsn::parse(run).is_ok() {
            out.push_str("*********");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

pub(super) fn teams_section(rows: &[String], today: NaiveDate) -> TeamsSection {
    let mut teams = Vec::new();
    let mut unreadable = 0;
    for text in rows {
        let team = serde_json::from_str::<serde_json::Value>(text).ok().and_then(|v| CareTeam::from_fhir(&v).ok());
        match team {
            Some(t) => teams.push(team_out(&t, today)),
            None => unreadable += 1,
        }
    }
    TeamsSection {
        count: teams.len(),
        active: teams.iter().filter(|t| t.state == "active").count(),
        leads_not_eligible: teams.iter().filter(|t| t.lead.is_some() && !t.lead_eligible).count(),
        without_lead: teams.iter().filter(|t| t.state == "active" && t.lead.is_none()).count(),
        evaluations_due: teams.iter().filter(|t| t.evaluation == "due").count(),
        evaluations_overdue: teams.iter().filter(|t| matches!(t.evaluation, "overdue" | "not-planned")).count(),
        evaluation_due_days: EVALUATION_DUE_DAYS,
        teams,
        unreadable,
    }
}

pub(super) fn team_out(t: &CareTeam, today: NaiveDate) -> TeamOut {
    let active = t.state == TreatmentState::Active;
    // A team planned to start later (a patient's 18th birthday) is judged on its first day,
    // as when it was stored.
    let today = today.max(t.period.start);
    // The lead today; for an ended team the most recent lead. An active team whose lead's
    // membership has ended has no lead (and counts as a team without one).
    let lead = t.lead_practitioner(today).map(|l| l.0).or_else(|| {
        (!active)
            .then(|| t.members.iter().filter(|m| m.role == MemberRole::LeadPractitioner).max_by_key(|m| m.period.start))
            .flatten()
    });
    let eligibility = lead.map(|m| t.lead_eligibility(m));
    let findings = t
        .check(today)
        .issues
        .iter()
        .filter(|i| !matches!(i.severity, crate::diagnostics::Severity::Information))
        .map(|i| mask_bsn_like(&i.diagnostics))
        .collect();
    TeamOut {
        id: mask_bsn_like(&t.id),
        name: t.name.as_deref().map(mask_bsn_like),
        care_form: t.care_form.code(),
        care_form_text: t.care_form.display(),
        state: if active { "active" } else { "ended" },
        exit_reason: match t.state {
            TreatmentState::Ended { reason } => Some(reason.display()),
            TreatmentState::Active => None,
        },
        lead: lead.map(|m| LeadOut {
            uzi: m.uzi.to_string(),
            name: m.name.clone(),
            uzi_role: m.uzi_role.to_string(),
            role_name: roles::name(&m.uzi_role),
            big: m.big.clone(),
        }),
        lead_eligible: matches!(eligibility, Some(Ok(_))),
        lead_eligibility: match eligibility {
            Some(Ok(why) | Err(why)) => why,
            None => "no lead practitioner on this day".to_owned(),
        },
        next_evaluation: t.next_evaluation.map(|d| d.to_string()),
        evaluation: evaluation_state(active, t.evaluation_exempt(today), t.next_evaluation, today),
        members: t.members.len(),
        findings,
    }
}

/// Names senders by the agreements: `agb-z|…` / `ura|…` / a bare URA → the party's name.
pub(super) struct SenderNames<'a> {
    agreements: &'a [&'a Agreement],
}

impl<'a> SenderNames<'a> {
    pub(super) fn new(agreements: &'a [&'a Agreement]) -> Self {
        SenderNames { agreements }
    }

    /// `(display name, identifier text, has an agreement)`.
    fn name(&self, raw: &str) -> (String, String, bool) {
        let (kind, value) = match raw.split_once('|') {
            Some(("agb-z" | "agb", v)) => ("AGB", v),
            Some(("ura", v)) => ("URA", v),
            Some((_, v)) => ("", v),
            None => ("URA", raw),
        };
        let id = if kind.is_empty() { raw.to_owned() } else { format!("{kind} {value}") };
        let found = self.agreements.iter().find(|a| match kind {
            "AGB" => a.sender.agb.as_deref() == Some(value),
            "URA" => a.sender.ura.as_deref() == Some(value),
            _ => false,
        });
        match found {
            Some(a) => (a.sender.name.clone(), id, true),
            None => (id.clone(), id, false),
        }
    }
}

pub(super) fn handovers_section(
    names: &SenderNames<'_>,
    months: &[String],
    received: &[crate::store::report::ReceivedRow],
    refused: &[crate::store::report::RefusedRow],
    removed: &[crate::store::report::RemovedRow],
) -> HandoversSection {
    let mut per_sender: BTreeMap<String, SenderOut> = BTreeMap::new();
    fn sender_entry<'m>(
        per_sender: &'m mut BTreeMap<String, SenderOut>,
        names: &SenderNames<'_>,
        raw: &str,
    ) -> &'m mut SenderOut {
        let (name, id, has) = names.name(raw);
        let e = per_sender.entry(name.clone()).or_insert_with(|| SenderOut {
            sender: name,
            ids: Vec::new(),
            has_agreement: has,
            received: 0,
            received_again: 0,
            refused: 0,
        });
        if !e.ids.contains(&id) {
            e.ids.push(id);
        }
        e
    }
    let mut recv_rows = Vec::new();
    for r in received {
        let e = sender_entry(&mut per_sender, names, &r.sender);
        e.received += r.count;
        e.received_again += r.again;
        recv_rows.push((r.hour.clone(), e.sender.clone(), r.count));
    }
    let mut ref_rows = Vec::new();
    let mut by_rule: BTreeMap<String, i64> = BTreeMap::new();
    for r in refused {
        let raw = r.sender_ura.clone().unwrap_or_else(|| "unknown".to_owned());
        let e = sender_entry(&mut per_sender, names, &raw);
        e.refused += r.count;
        ref_rows.push((r.hour.clone(), e.sender.clone(), r.count));
        *by_rule.entry(r.rule.clone().unwrap_or_else(|| "(no rule recorded)".into())).or_insert(0) += r.count;
    }
    let recv_months = bucket_months(recv_rows);
    let ref_months = bucket_months(ref_rows);
    let mut per_month = Vec::new();
    let keys: BTreeSet<&(String, String)> = recv_months.keys().chain(ref_months.keys()).collect();
    // Every month of the period for every sender with figures (zeros included), so the chart
    // and the table show quiet months too.
    let senders: BTreeSet<&String> = keys.iter().map(|(_, s)| s).collect();
    let mut all_months: Vec<String> = months.to_vec();
    for (m, _) in &keys {
        if !all_months.contains(m) {
            all_months.push(m.clone());
        }
    }
    for m in &all_months {
        for s in &senders {
            let k = (m.clone(), (*s).clone());
            per_month.push(HandoverMonth {
                month: m.clone(),
                sender: (*s).clone(),
                received: recv_months.get(&k).copied().unwrap_or(0),
                refused: ref_months.get(&k).copied().unwrap_or(0),
            });
        }
    }
    let removed_categories = removed
        .iter()
        .map(|r| RemovedOut {
            sender: names.name(&r.sender).0,
            category: r.category.clone(),
            display: DataCategory::from_code(&r.category).map_or(r.category.clone(), |c| c.display().to_owned()),
            handovers: r.handovers,
            resources: r.resources,
            reason: r.reason.as_deref().map(mask_bsn_like),
        })
        .collect();
    HandoversSection {
        received: received.iter().map(|r| r.count).sum(),
        received_again: received.iter().map(|r| r.again).sum(),
        refused: refused.iter().map(|r| r.count).sum(),
        per_month,
        per_sender: per_sender.into_values().collect(),
        refused_by_rule: by_rule.into_iter().map(|(rule, count)| RuleCount { rule, count }).collect(),
        removed_categories,
    }
}

pub(super) fn reads_section(
    rows: &[crate::store::report::ReadRow],
    team: &[crate::store::report::TeamReadRow],
) -> ReadsSection {
    let mut by_role: BTreeMap<String, RoleReads> = BTreeMap::new();
    for r in rows {
        let role = r.uzi_role.clone().unwrap_or_else(|| "unknown".to_owned());
        let e = by_role.entry(role.clone()).or_insert_with(|| RoleReads {
            role_name: roles::name(&role),
            uzi_role: role,
            read: 0,
            search: 0,
            export: 0,
            break_glass: 0,
            permitted: 0,
            denied: 0,
        });
        if r.outcome == AuditOutcome::Denied.code() {
            e.denied += r.count;
            continue;
        }
        e.permitted += r.count;
        match r.action.as_str() {
            "read" => e.read += r.count,
            "search" => e.search += r.count,
            "export" => e.export += r.count,
            _ => e.break_glass += r.count,
        }
    }
    let by_role: Vec<RoleReads> = by_role.into_values().collect();
    let permitted = by_role.iter().map(|r| r.permitted).sum();
    let denied = by_role.iter().map(|r| r.denied).sum();
    ReadsSection { requests: permitted + denied, permitted, denied, by_role, by_team_role: team_role_reads(team) }
}

/// Reads per care-team role; the recorded role keys (`" a b "`) become `a+b`.
pub(super) fn team_role_reads(rows: &[crate::store::report::TeamReadRow]) -> Vec<TeamRoleReads> {
    let mut out: BTreeMap<String, TeamRoleReads> = BTreeMap::new();
    for r in rows {
        let keys: Vec<&str> = r.team_roles.as_deref().map(|t| t.split_whitespace().collect()).unwrap_or_default();
        let key = if keys.is_empty() { "none".to_owned() } else { keys.join("+") };
        let e = out.entry(key.clone()).or_insert_with(|| TeamRoleReads {
            role_name: if keys.is_empty() {
                "No team role (the handover's sender or receiver)".to_owned()
            } else {
                keys.iter().map(|k| role_who(k)).collect::<Vec<_>>().join(" and ")
            },
            team_role: key,
            read: 0,
            search: 0,
            export: 0,
            total: 0,
        });
        match r.action.as_str() {
            "read" => e.read += r.count,
            "search" => e.search += r.count,
            _ => e.export += r.count,
        }
        e.total += r.count;
    }
    // Team roles in the matrix's order (lead first), then combinations, `none` last.
    let rank = |k: &str| match k {
        "lead-practitioner" => 0,
        "co-practitioner" => 1,
        "supporting-discipline" => 2,
        "none" => 4,
        _ => 3,
    };
    let mut v: Vec<TeamRoleReads> = out.into_values().collect();
    v.sort_by_key(|x| (rank(&x.team_role), x.team_role.clone()));
    v
}

pub(super) fn denials_section(months: &[String], rows: &[crate::store::report::DenialRow]) -> DenialsSection {
    let mut by_rule: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_action: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows {
        *by_rule.entry(r.rule.clone().unwrap_or_else(|| "(no rule recorded)".into())).or_insert(0) += r.count;
        *by_action.entry(r.action.clone()).or_insert(0) += r.count;
    }
    let buckets = bucket_months(rows.iter().map(|r| (r.hour.clone(), (), r.count)));
    let mut per_month: Vec<MonthCount> = months
        .iter()
        .map(|m| MonthCount { month: m.clone(), count: buckets.get(&(m.clone(), ())).copied().unwrap_or(0) })
        .collect();
    for ((m, ()), n) in &buckets {
        if !months.contains(m) {
            per_month.push(MonthCount { month: m.clone(), count: *n });
        }
    }
    let mut by_rule: Vec<RuleCount> = by_rule.into_iter().map(|(rule, count)| RuleCount { rule, count }).collect();
    by_rule.sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
    let mut by_action: Vec<RuleCount> = by_action.into_iter().map(|(rule, count)| RuleCount { rule, count }).collect();
    by_action.sort_by(|a, b| b.count.cmp(&a.count).then(a.rule.cmp(&b.rule)));
    DenialsSection { total: rows.iter().map(|r| r.count).sum(), by_rule, by_action, per_month }
}

pub(super) fn break_glass_section(
    mut rows: Vec<crate::store::report::BreakGlassRow>,
    all: &[(i64, String)],
    reviews: &[crate::store::report::ReviewRow],
) -> BreakGlassSection {
    // Counted over every event of the period; reviewed = a later successful review naming it.
    let is_reviewed =
        |seq: i64, id: &str| reviews.iter().any(|r| r.reviewed_id == id && r.seq > seq && r.outcome == "success");
    let count = all.len();
    let reviewed_count = all.iter().filter(|(seq, id)| is_reviewed(*seq, id)).count();
    let truncated = i64::try_from(rows.len()).unwrap_or(i64::MAX) > BREAK_GLASS_LIST_MAX;
    rows.truncate(usize::try_from(BREAK_GLASS_LIST_MAX).unwrap_or(usize::MAX));
    let events: Vec<BreakGlassEvent> = rows
        .into_iter()
        .map(|b| {
            // The first later review entry naming this entry (a review never precedes it).
            let review = reviews.iter().find(|r| r.reviewed_id == b.id && r.seq > b.seq && r.outcome == "success");
            BreakGlassEvent {
                role_name: b.uzi_role.as_deref().map(roles::name),
                id: b.id,
                recorded: b.recorded_at,
                user_uzi: b.user_uzi,
                uzi_role: b.uzi_role,
                user_ura: b.user_ura,
                reason_stated: b.reason_stated,
                reviewed: review.is_some(),
                review: review.map(|r| ReviewOut {
                    id: r.id.clone(),
                    recorded: r.recorded_at.clone(),
                    reviewer_uzi: r.user_uzi.clone(),
                    conclusion: conclusion_code(r.conclusion.as_deref()),
                }),
            }
        })
        .collect();
    BreakGlassSection { count, reviewed: reviewed_count, not_reviewed: count - reviewed_count, events, truncated }
}

/// The conclusion code of a review entry's reason, without the note; `recorded` when it has
/// none.
pub(super) fn conclusion_code(reason: Option<&str>) -> &'static str {
    reason.and_then(crate::audit::review::Conclusion::of_review_reason).map_or("recorded", |c| c.code())
}

// ---------------------------------------------------------------------------------------
// Who may see it, and its audit entry
