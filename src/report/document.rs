//! The report's shape: its serde form is the JSON of `GET /report` and `overdracht report
//! --format json`, documented field by field in docs/report.md.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    /// When the report was made (RFC 3339 UTC).
    pub generated: String,
    /// The day the states (in force, due, overdue) are judged on.
    pub today: String,
    pub provider: Provider,
    pub period: PeriodOut,
    pub agreements: AgreementsSection,
    pub access: AccessArrangement,
    pub teams: TeamsSection,
    pub handovers: HandoversSection,
    pub reads: ReadsSection,
    pub denials: DenialsSection,
    pub break_glass: BreakGlassSection,
    pub audit_chain: ChainStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provider {
    pub ura: String,
    /// The name in the agreements (receiver), if any names it.
    pub name: Option<String>,
    pub agb: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodOut {
    pub from: String,
    pub to: String,
    pub months: Vec<String>,
    pub time_zone: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementsSection {
    pub expiring_soon_days: i64,
    /// Agreements with this provider as receiver that are in force today.
    pub in_force: Vec<AgreementOut>,
    /// Labels (`id@version`) of agreements in force whose last day is near.
    pub expiring_soon: Vec<String>,
    /// Agreements with this provider that are not in force today (expired or future).
    pub not_in_force: Vec<AgreementOut>,
    /// Sender names with an agreement in force (one line each).
    pub senders_in_force: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementOut {
    pub id: String,
    pub version: String,
    pub label: String,
    pub title: String,
    pub sender: PartyOut,
    pub categories: Vec<CategoryOut>,
    pub valid_from: String,
    pub valid_to: Option<String>,
    /// `in-force`, `expiring-soon`, `not-yet-in-force` or `expired`.
    pub status: &'static str,
    /// Days from today to the last day (in force only, with an end).
    pub days_left: Option<i64>,
    pub legal_basis: &'static str,
    pub legal_basis_text: &'static str,
    pub purpose: String,
    pub retention: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartyOut {
    pub name: String,
    pub kind: &'static str,
    pub department: Option<String>,
    pub agb: Option<String>,
    pub ura: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryOut {
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessArrangement {
    /// `shipped` (policies/access.rego as released) or `adapted` (the provider's own Rego).
    pub policy: &'static str,
    /// One rule per column of the access matrix.
    pub rules: Vec<AccessRuleOut>,
    /// The arrangement in words, one sentence each, generated from the configuration.
    pub statements: Vec<String>,
    pub purposes_of_use: Vec<String>,
    pub grace_period_days: u32,
    pub grace_period_roles: Vec<String>,
    pub break_glass_enabled: bool,
    pub break_glass_overrides_objection: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessRuleOut {
    /// The matrix key: `lead-practitioner`, `co-practitioner`, `supporting-discipline`, `break-glass`.
    pub key: String,
    pub who: String,
    /// `all`, `all-except` or `only`.
    pub scope: &'static str,
    /// The categories excepted (`all-except`) or allowed (`only`).
    pub categories: Vec<CategoryOut>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamsSection {
    pub count: usize,
    pub active: usize,
    pub leads_not_eligible: usize,
    pub without_lead: usize,
    pub evaluations_due: usize,
    pub evaluations_overdue: usize,
    pub evaluation_due_days: i64,
    pub teams: Vec<TeamOut>,
    /// Stored teams that no longer parse (left out of the list).
    pub unreadable: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamOut {
    /// The team id, with any nine-digit number (possibly a BSN) masked.
    pub id: String,
    pub name: Option<String>,
    pub care_form: &'static str,
    pub care_form_text: &'static str,
    /// `active` or `ended`.
    pub state: &'static str,
    pub exit_reason: Option<&'static str>,
    pub lead: Option<LeadOut>,
    pub lead_eligible: bool,
    pub lead_eligibility: String,
    pub next_evaluation: Option<String>,
    /// `planned`, `due`, `overdue`, `not-planned`, `not-required` or `not-applicable`.
    pub evaluation: &'static str,
    pub members: usize,
    /// The GZSP rule findings of today (`CareTeam::check`), errors and warnings.
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeadOut {
    pub uzi: String,
    pub name: Option<String>,
    pub uzi_role: String,
    pub role_name: &'static str,
    pub big: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandoversSection {
    /// Accepted handover requests (replays of the same record included).
    pub received: i64,
    /// Of `received`, the same record sent again (idempotent, stored once).
    pub received_again: i64,
    pub refused: i64,
    pub per_month: Vec<HandoverMonth>,
    pub per_sender: Vec<SenderOut>,
    pub refused_by_rule: Vec<RuleCount>,
    pub removed_categories: Vec<RemovedOut>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoverMonth {
    pub month: String,
    pub sender: String,
    pub received: i64,
    pub refused: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderOut {
    /// The sender's name from an agreement, or its identifier.
    pub sender: String,
    /// The identifiers seen (`AGB 01234567`, `URA 87654321`).
    pub ids: Vec<String>,
    pub has_agreement: bool,
    pub received: i64,
    pub received_again: i64,
    pub refused: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedOut {
    pub sender: String,
    pub category: String,
    pub display: String,
    pub handovers: i64,
    pub resources: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadsSection {
    /// Read-type requests: read, search, export (`$everything`), break-glass.
    pub requests: i64,
    pub permitted: i64,
    pub denied: i64,
    pub by_role: Vec<RoleReads>,
    /// Permitted reads, searches and exports per care-team role of the reader.
    pub by_team_role: Vec<TeamRoleReads>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamRoleReads {
    /// The care-team role(s) under which the reader was permitted, joined with `+`
    /// (`lead-practitioner`, `co-practitioner`, `supporting-discipline`); `none` when the
    /// entry records no team role: a handover's status read by its sender or receiver, or
    /// an entry from before team roles were recorded.
    pub team_role: String,
    pub role_name: String,
    pub read: i64,
    pub search: i64,
    pub export: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleReads {
    pub uzi_role: String,
    pub role_name: &'static str,
    pub read: i64,
    pub search: i64,
    pub export: i64,
    pub break_glass: i64,
    pub permitted: i64,
    pub denied: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DenialsSection {
    /// Every request refused by policy, handovers excepted (those are under `handovers`).
    pub total: i64,
    pub by_rule: Vec<RuleCount>,
    pub by_action: Vec<RuleCount>,
    pub per_month: Vec<MonthCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthCount {
    pub month: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakGlassSection {
    pub count: usize,
    pub reviewed: usize,
    pub not_reviewed: usize,
    pub events: Vec<BreakGlassEvent>,
    /// More events than [`BREAK_GLASS_LIST_MAX`]; only the first are listed (all are counted).
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakGlassEvent {
    /// The audit entry's id (`AuditEvent/<id>`).
    pub id: String,
    pub recorded: String,
    pub user_uzi: Option<String>,
    pub uzi_role: Option<String>,
    pub role_name: Option<&'static str>,
    pub user_ura: Option<String>,
    /// Whether a reason was stated. The text itself may describe the patient's condition and
    /// stays in the audit trail (the privacy officer's views); the insurer's report has no
    /// clinical content.
    pub reason_stated: bool,
    pub reviewed: bool,
    pub review: Option<ReviewOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewOut {
    pub id: String,
    pub recorded: String,
    pub reviewer_uzi: Option<String>,
    /// `justified` or `not-justified` (the officer's note stays in the audit trail);
    /// `recorded` for a review entry without one of these codes.
    pub conclusion: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainStatus {
    pub intact: bool,
    /// `intact`, or the first problem in words.
    pub status: String,
    pub entries: i64,
    pub checked: i64,
    pub head_hash: String,
    pub head_time: Option<String>,
}
