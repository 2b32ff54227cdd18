//! Access decisions for the FHIR read facade: who in the team may read which categories.
//!
//! The rules are not in this file. They are the Rego policy `policies/access.rego` with the
//! access matrix as data in `policies/access-config.json`, so that a provider can read
//! them, adapt them, and reuse them with the Dutch infrastructure that also speaks Rego
//! (VWS generic functions, Nuts). This file only
//!
//! 1. gathers the facts into the policy's input document (the requester's memberships, the
//!    patient's teams, the agreements and consents, the day), see [`PolicyEngine::input`];
//! 2. evaluates `data.overdracht.access.decision` with `regorus`, in-process;
//! 3. turns the result into an [`AccessDecision`]. Anything unexpected denies: an engine error
//!    or a malformed result is a denial with rule `engine.error`, never a permit.
//!
//! The policy is parsed and compiled once, when a [`PolicyEngine`] is made at start-up.
//! Evaluating it with regorus' interpreter costs about 0.3 ms, above the target of p99 ≤
//! 100 µs, so while the Rego source is the shipped one, decisions take a hand-compiled copy
//! of it ([`crate::policy::native`], a few µs) that reads the same configuration data and is
//! tested cell by cell against the Rego. An adapted policy is always evaluated as Rego.
//! [`PolicyEngine`] is `Send + Sync` and cheap to clone.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use regorus::Value as R;
use serde::{Deserialize, Serialize};

use super::agreement::{Agreement, LegalBasis};
use super::care_team::{CareTeam, MemberRole};
use super::consent::{ConsentKind, PatientConsent};
use super::{rules, Decision};
use crate::model::{Bsn, DataCategory};

const EMBEDDED_POLICY: &str = include_str!("../../policies/access.rego");
const EMBEDDED_CONFIG: &str = include_str!("../../policies/access-config.json");
/// The rule the engine evaluates.
pub const DECISION_RULE: &str = "data.overdracht.access.decision";
/// The matrix key of break-the-glass access, next to the [`MemberRole`] keys.
pub const BREAK_GLASS_KEY: &str = "break-glass";

/// Who asks, as the bearer token states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// UZI number of the person.
    pub uzi: crate::model::Uzi,
    /// UZI role code (profession).
    pub uzi_role: crate::model::UziRoleCode,
    /// URA of the organisation the person acts for.
    pub ura: crate::model::Ura,
    /// Purpose of use, a v3 ActReason code (`TREAT`, `ETREAT`, ...).
    pub purpose_of_use: String,
    /// A stated reason for emergency (break-the-glass) access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_reason: Option<String>,
}

/// Which categories the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    All,
    Only(BTreeSet<DataCategory>),
}

/// Everything a decision depends on. The caller passes the patient's teams, the agreements
/// under which the patient's data arrived (or all agreements of the provider), and the
/// patient's consents; items for other patients are ignored.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    pub requester: &'a Requester,
    pub patient: &'a Bsn,
    pub teams: &'a [CareTeam],
    pub agreements: &'a [Agreement],
    pub consents: &'a [PatientConsent],
    /// The Europe/Amsterdam calendar day of the request ([`crate::policy::day_of`]).
    pub day: NaiveDate,
    pub requested: &'a Requested,
}

/// The answer, handed to the facade's filter and to the audit trail: the [`Decision`]
/// (permit, rule id, reason) and what a permit allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessDecision {
    /// Permit or deny; the id of the rule that decided (`access.member`,
    /// `consent.member-objection`, ...); the reason, for the audit trail and the patient's
    /// list of who saw what.
    #[serde(flatten)]
    pub decision: Decision,
    /// What may be shown; empty when denied.
    pub allowed_categories: BTreeSet<DataCategory>,
    /// Permitted by break-the-glass.
    pub break_glass: bool,
    /// Someone must look at this access afterwards (every break-the-glass attempt).
    pub flag_for_review: bool,
    /// The care-team roles under which a member was permitted (`MemberRole` keys, sorted:
    /// `lead-practitioner`, `co-practitioner`, ...); empty for other decisions.
    pub team_roles: Vec<String>,
}

impl std::ops::Deref for AccessDecision {
    type Target = Decision;

    fn deref(&self) -> &Decision {
        &self.decision
    }
}

impl AccessDecision {
    /// A denial (no categories); `flag_for_review` when break-the-glass was asked for.
    pub fn deny(rule: &'static str, reason: impl Into<String>, flag_for_review: bool) -> AccessDecision {
        AccessDecision {
            decision: Decision::deny(rule, reason),
            allowed_categories: BTreeSet::new(),
            break_glass: false,
            flag_for_review,
            team_roles: Vec::new(),
        }
    }

    fn engine_error(message: impl std::fmt::Display) -> AccessDecision {
        AccessDecision::deny(
            rules::ENGINE_ERROR,
            format!("the access policy could not decide ({message}); denied"),
            true,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("policy configuration {file}: {message}")]
    Config { file: String, message: String },
    #[error("the access policy does not compile: {0}")]
    Rego(String),
}

/// The settings of the default policy, checked when the engine is made so that a typing
/// error in the matrix is an error at start-up instead of silent denials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessConfig {
    pub purposes_of_use: Vec<String>,
    pub grace_period_days: u32,
    pub grace_period_roles: Vec<String>,
    pub break_glass: BreakGlassConfig,
    pub matrix: std::collections::BTreeMap<String, MatrixEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BreakGlassConfig {
    pub enabled: bool,
    pub overrides_objection: bool,
    /// UZI role codes that may break the glass. The shipped list: the
    /// BIG-registered professions of DOMAIN.md (physicians, behavioural scientists, nurse
    /// practitioners 30.065–30.076, PA, physiotherapist, psychotherapist); a nurse (30.000)
    /// or any other role is refused (`break-glass.profession`), and the attempt flagged.
    pub professions: Vec<String>,
}

/// One column of the access matrix: a list of categories, or all but a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum MatrixEntry {
    #[serde(rename = "only")]
    Only(BTreeSet<DataCategory>),
    #[serde(rename = "all_except")]
    AllExcept(BTreeSet<DataCategory>),
}

impl MatrixEntry {
    pub fn allows(&self, c: DataCategory) -> bool {
        match self {
            MatrixEntry::Only(set) => set.contains(&c),
            MatrixEntry::AllExcept(set) => !set.contains(&c),
        }
    }
}

fn bad_profession(file: &str, code: &str) -> PolicyError {
    PolicyError::Config {
        file: file.to_owned(),
        message: format!("overdracht.config.break_glass.professions: {code:?} is not a UZI role code (NN.NNN)"),
    }
}

impl AccessConfig {
    fn parse(text: &str, file: &str) -> Result<(AccessConfig, serde_json::Value), PolicyError> {
        let bad = |message: String| PolicyError::Config { file: file.to_owned(), message };
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let config: AccessConfig = serde_path_to_error::deserialize(&doc["overdracht"]["config"])
            .map_err(|e| bad(format!("overdracht.config.{}: {}", e.path(), e.inner())))?;
        if let Some(bad) = config.break_glass.professions.iter().find(|c| !super::roles::is_well_formed(c)) {
            return Err(bad_profession(file, bad));
        }
        let roles = MemberRole::ALL.map(MemberRole::key);
        for key in roles.iter().chain([&BREAK_GLASS_KEY]) {
            if !config.matrix.contains_key(*key) {
                return Err(bad(format!("overdracht.config.matrix lacks the column `{key}`")));
            }
        }
        for key in config.matrix.keys().chain(&config.grace_period_roles) {
            if !roles.contains(&key.as_str()) && key != BREAK_GLASS_KEY {
                return Err(bad(format!("`{key}` is not a role; roles are {}", roles.join(", "))));
            }
        }
        if config.purposes_of_use.is_empty() {
            return Err(bad("overdracht.config.purposes_of_use is empty: nobody could ever read".into()));
        }
        Ok((config, doc))
    }
}

/// Which evaluator decides, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPath {
    /// The shipped Rego and the shipped configuration: the native fast path, held to the
    /// Rego by the test suite.
    Native,
    /// The shipped Rego with an adapted configuration, not proven yet
    /// ([`PolicyEngine::prove`]): the Rego decides meanwhile.
    Proving,
    /// The shipped Rego with an adapted configuration: the native fast path, after it
    /// decided every cell of the decision table as the Rego did ([`super::parity::prove`]).
    NativeProven { cells: usize },
    /// The shipped Rego with an adapted configuration on which the native fast path does
    /// not decide as the Rego (`cell`: the number of the first cell that differs): the Rego
    /// decides.
    RegoParityFailed { cell: usize, example: String },
    /// An adapted Rego policy: the Rego decides.
    RegoAdapted,
}

impl PolicyPath {
    /// `native` or `rego`.
    pub fn evaluator(&self) -> &'static str {
        match self {
            PolicyPath::Native | PolicyPath::NativeProven { .. } => "native",
            PolicyPath::Proving | PolicyPath::RegoParityFailed { .. } | PolicyPath::RegoAdapted => "rego",
        }
    }

    /// Why this evaluator, in a sentence (for the log and `/health/ready`).
    pub fn why(&self) -> String {
        match self {
            PolicyPath::Native => "the shipped policy and configuration".to_owned(),
            PolicyPath::Proving => "an adapted access-config.json with the shipped Rego; the Rego decides while the native engine is proven on the decision table".to_owned(),
            PolicyPath::NativeProven { cells } => format!(
                "an adapted access-config.json with the shipped Rego; the native engine decided all {cells} cells of the decision table as the Rego did"
            ),
            PolicyPath::RegoParityFailed { cell, .. } => format!(
                "an adapted access-config.json on which the native engine differs from the Rego (cell {cell} of the decision table); the Rego decides"
            ),
            PolicyPath::RegoAdapted => "an adapted Rego policy".to_owned(),
        }
    }
}

/// The compiled access policy. Make one at start-up; share it (it is `Send + Sync`) or clone it.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    compiled: regorus::CompiledPolicy,
    config: AccessConfig,
    /// Whether the hand-compiled copy decides ([`crate::policy::native`]): the Rego source
    /// is the shipped one, and the configuration is the shipped one or proven on it. Set
    /// once; shared by the clones, so that a proof made in the background serves them all.
    path: std::sync::Arc<std::sync::OnceLock<PolicyPath>>,
    /// Rule ids an adapted policy spells out that overdracht does not ship ([`rules`]), so
    /// that its decisions keep them; the shipped policy has none.
    own_rules: std::sync::Arc<[&'static str]>,
}

impl PolicyEngine {
    /// The policy and configuration shipped in `policies/` (embedded at build time).
    pub fn embedded() -> Result<PolicyEngine, PolicyError> {
        Self::from_sources(&[("policies/access.rego", EMBEDDED_POLICY)], EMBEDDED_CONFIG, "policies/access-config.json")
    }

    /// A provider's adapted policy: every `*.rego` file in `dir` and its `access-config.json`.
    pub fn from_dir(dir: &Path) -> Result<PolicyEngine, PolicyError> {
        Self::from_dir_with(dir, str::to_owned)
    }

    /// As [`PolicyEngine::from_dir`], with the text of `access-config.json` adapted first
    /// (the `policy.grace_period_days` setting overrides the file's grace period).
    pub fn from_dir_with(dir: &Path, adapt_config: impl FnOnce(&str) -> String) -> Result<PolicyEngine, PolicyError> {
        let io = |file: &Path| {
            let file = file.display().to_string();
            move |source| PolicyError::Io { file, source }
        };
        let mut rego_files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rego"))
            .collect();
        rego_files.sort();
        let mut sources = Vec::new();
        for p in &rego_files {
            sources.push((p.display().to_string(), std::fs::read_to_string(p).map_err(io(p))?));
        }
        let config_path = dir.join("access-config.json");
        let config = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
        let borrowed: Vec<(&str, &str)> = sources.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        Self::from_sources(&borrowed, &adapt_config(&config), &config_path.display().to_string())
    }

    /// Compiles Rego modules with a configuration document.
    pub fn from_sources(
        rego: &[(&str, &str)],
        config_json: &str,
        config_name: &str,
    ) -> Result<PolicyEngine, PolicyError> {
        let (config, mut doc) = AccessConfig::parse(config_json, config_name)?;
        // The list of categories is ours, not the provider's: it comes from DataCategory.
        doc["overdracht"]["categories"] = DataCategory::ALL.iter().map(|c| c.code()).collect();
        let rego_err = |e: anyhow::Error| PolicyError::Rego(format!("{e:#}"));
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for (name, text) in rego {
            engine.add_policy((*name).to_owned(), (*text).to_owned()).map_err(rego_err)?;
        }
        let shipped_config = same_document(&doc, EMBEDDED_CONFIG);
        engine.add_data(R::from(doc)).map_err(rego_err)?;
        let compiled = engine.compile_with_entrypoint(&DECISION_RULE.into()).map_err(rego_err)?;
        let shipped_rego = rego.len() == 1 && rego[0].1 == EMBEDDED_POLICY;
        // Leaked once per engine, bounded by the size of the policy's source; the shipped
        // policy's ids are all declared, so nothing is leaked for it.
        let mut own: Vec<&'static str> = Vec::new();
        for (_, text) in rego {
            for id in rules::ids_in_rego(text) {
                if rules::known(id).is_none() && !own.contains(&id) {
                    own.push(Box::leak(id.to_owned().into_boxed_str()));
                }
            }
        }
        let engine = PolicyEngine { compiled, config, path: Default::default(), own_rules: own.into() };
        match (shipped_rego, shipped_config) {
            (false, _) => engine.settle(PolicyPath::RegoAdapted),
            (true, true) => engine.settle(PolicyPath::Native),
            (true, false) => {
                tracing::info!(policy = "rego", why = %PolicyPath::Proving.why(), "access policy evaluator");
            }
        }
        Ok(engine)
    }

    fn settle(&self, path: PolicyPath) {
        match &path {
            PolicyPath::RegoParityFailed { example, .. } => {
                tracing::warn!(policy = "rego", why = %path.why(), example = %example, "access policy evaluator")
            }
            path => tracing::info!(policy = path.evaluator(), why = %path.why(), "access policy evaluator"),
        }
        let _ = self.path.set(path);
    }

    /// For the shipped Rego with an adapted configuration: runs the decision table through
    /// both evaluators ([`super::parity`]) and lets the native engine decide only when they
    /// agree on every cell. Until then (and after a difference) the Rego decides. Blocking
    /// (about 15,000 Rego evaluations: seconds); the service runs it in the background at
    /// start. Does nothing when the evaluator is settled already.
    pub fn prove(&self) -> PolicyPath {
        if self.path.get().is_none() {
            let started = std::time::Instant::now();
            let proof = super::parity::prove(self);
            tracing::debug!(
                cells = proof.cells,
                ms = started.elapsed().as_millis() as u64,
                "native policy parity proof"
            );
            self.settle(match proof.first_difference {
                None if proof.cells > 0 => PolicyPath::NativeProven { cells: proof.cells },
                None => PolicyPath::RegoParityFailed { cell: 0, example: "an empty table".into() },
                Some((cell, example)) => PolicyPath::RegoParityFailed { cell, example },
            });
        }
        self.path()
    }

    /// Which evaluator decides, and why.
    pub fn path(&self) -> PolicyPath {
        self.path.get().cloned().unwrap_or(PolicyPath::Proving)
    }

    /// The configuration in force (grace period, matrix, ...).
    pub fn config(&self) -> &AccessConfig {
        &self.config
    }

    /// Whether decisions take the fast path (the Rego source is the shipped one, and the
    /// configuration the shipped one or proven on the decision table).
    pub fn is_native(&self) -> bool {
        self.path.get().is_some_and(|p| p.evaluator() == "native")
    }

    /// Whether the Rego source is the shipped one (whatever the configuration).
    pub fn is_shipped_rego(&self) -> bool {
        self.path.get() != Some(&PolicyPath::RegoAdapted)
    }

    /// Decides a request. Never panics and never permits on an error.
    pub fn decide(&self, req: &AccessRequest<'_>) -> AccessDecision {
        if self.is_native() {
            self.decide_native(req)
        } else {
            self.decide_rego(req)
        }
    }

    /// Decides a request with the native engine and this configuration (meaningful only for
    /// the shipped Rego source; [`PolicyEngine::decide`] chooses).
    pub fn decide_native(&self, req: &AccessRequest<'_>) -> AccessDecision {
        super::native::decide(&self.config, req)
    }

    /// Decides a request by evaluating the Rego policy, whatever its source.
    pub fn decide_rego(&self, req: &AccessRequest<'_>) -> AccessDecision {
        self.decide_input(Self::input(req))
    }

    /// Evaluates a prepared input document (see [`PolicyEngine::input`]) with the Rego policy.
    pub fn decide_input(&self, input: R) -> AccessDecision {
        match self.compiled.eval_with_input(input) {
            Ok(v) => parse_decision(&v, &self.own_rules).unwrap_or_else(AccessDecision::engine_error),
            Err(e) => AccessDecision::engine_error(e),
        }
    }

    /// The policy's input document for a request (documented at the top of `access.rego`).
    pub fn input(req: &AccessRequest<'_>) -> R {
        let r = req.requester;
        let day = |d: NaiveDate| R::from(i64::from(d.num_days_from_ce()));
        let opt_day = |d: Option<NaiveDate>| d.map_or(R::Null, day);
        let teams: Vec<&CareTeam> = req.teams.iter().filter(|t| t.patient == *req.patient).collect();
        let mut memberships = Vec::new();
        for t in &teams {
            for m in t.members.iter().filter(|m| m.uzi == r.uzi) {
                memberships.push(obj([
                    ("team", R::from(t.id.as_str())),
                    ("role", R::from(m.role.key())),
                    ("uzi_role", R::from(m.uzi_role.as_str())),
                    ("ura", R::from(m.organisation_ura.as_str())),
                    ("start", day(m.period.start)),
                    ("end", opt_day(m.period.end)),
                    ("team_ura", R::from(t.organisation_ura.as_str())),
                    ("team_ended", opt_day(t.ended_on())),
                ]));
            }
        }
        let team_values: Vec<R> = teams
            .iter()
            .map(|t| {
                obj([
                    ("id", R::from(t.id.as_str())),
                    ("ura", R::from(t.organisation_ura.as_str())),
                    ("ended", opt_day(t.ended_on())),
                ])
            })
            .collect();
        let agreements: Vec<R> = req
            .agreements
            .iter()
            .filter(|a| a.receiver.ura.as_deref().is_some_and(|u| teams.iter().any(|t| t.organisation_ura == u)))
            .map(|a| {
                obj([
                    ("id", R::from(a.id.as_str())),
                    ("receivers", R::from(a.receiver.ura.iter().map(|u| R::from(u.as_str())).collect::<Vec<_>>())),
                    ("categories", categories(a.categories.iter().copied())),
                    ("start", day(a.valid.start)),
                    ("end", opt_day(a.valid.end)),
                    ("needs_consent", R::from(a.legal_basis == LegalBasis::ExplicitConsent)),
                ])
            })
            .collect();
        let mut agreement_consents = Vec::new();
        let mut objections = Vec::new();
        for c in req.consents.iter().filter(|c| c.active && c.patient == *req.patient) {
            match &c.kind {
                // Only a consent recorded by a party to the agreement counts (as in
                // `Agreement::counts_consent`, review R2).
                ConsentKind::AgreementConsent { .. } if !req.agreements.iter().any(|a| a.counts_consent(c)) => {}
                ConsentKind::AgreementConsent { agreement_id } => agreement_consents.push(obj([
                    ("agreement", R::from(agreement_id.as_str())),
                    ("start", day(c.period.start)),
                    ("end", opt_day(c.period.end)),
                ])),
                ConsentKind::Objection { categories: cats, members } => objections.push(obj([
                    ("id", R::from(c.id.as_str())),
                    ("members", R::from(members.iter().map(|m| R::from(m.as_str())).collect::<Vec<_>>())),
                    ("categories", cats.as_ref().map_or(R::Null, |s| categories(s.iter().copied()))),
                    ("start", day(c.period.start)),
                    ("end", opt_day(c.period.end)),
                ])),
            }
        }
        let (requested_all, requested) = match req.requested {
            Requested::All => (true, R::from(Vec::new())),
            Requested::Only(set) => (false, categories(set.iter().copied())),
        };
        obj([
            ("now", day(req.day)),
            (
                "requester",
                obj([
                    ("uzi", R::from(r.uzi.as_str())),
                    ("uzi_role", R::from(r.uzi_role.as_str())),
                    ("ura", R::from(r.ura.as_str())),
                    ("purpose_of_use", R::from(r.purpose_of_use.as_str())),
                    ("break_glass_reason", R::from(r.break_glass_reason.as_deref().map_or("", str::trim))),
                ]),
            ),
            ("requested_all", R::from(requested_all)),
            ("requested", requested),
            ("memberships", R::from(memberships)),
            ("teams", R::from(team_values)),
            ("agreements", R::from(agreements)),
            ("agreement_consents", R::from(agreement_consents)),
            ("objections", R::from(objections)),
        ])
    }
}

/// Whether a configuration document is the shipped one (as JSON, whatever the layout).
fn same_document(doc: &serde_json::Value, shipped: &str) -> bool {
    let mut doc = doc.clone();
    if let Some(o) = doc["overdracht"].as_object_mut() {
        o.remove("categories");
    }
    serde_json::from_str::<serde_json::Value>(shipped).is_ok_and(|s| s == doc)
}

fn obj<const N: usize>(fields: [(&str, R); N]) -> R {
    R::from(fields.into_iter().map(|(k, v)| (R::from(k), v)).collect::<std::collections::BTreeMap<R, R>>())
}

fn categories(it: impl Iterator<Item = DataCategory>) -> R {
    R::from(it.map(|c| R::from(c.code())).collect::<Vec<_>>())
}

/// Reads the policy's result; `Err` names what was wrong with it. The rule id is one
/// declared in [`rules`] or one the policy's source spells out (`own_rules`); any other
/// (computed by an adapted policy) is recorded as `policy.unlisted-rule` with the id in the
/// reason.
fn parse_decision(v: &R, own_rules: &[&'static str]) -> Result<AccessDecision, String> {
    let flag = |k: &str| v[k].as_bool().copied().map_err(|_| format!("`{k}` is not a boolean"));
    let text = |k: &str| v[k].as_string().map(|s| s.to_string()).map_err(|_| format!("`{k}` is not a string"));
    let permit = flag("permit")?;
    let mut allowed_categories = BTreeSet::new();
    for c in v["categories"].as_array().map_err(|_| "`categories` is not an array".to_owned())?.iter() {
        let code = c.as_string().map_err(|_| "a category is not a string".to_owned())?;
        allowed_categories.insert(DataCategory::from_code(code).ok_or_else(|| format!("unknown category '{code}'"))?);
    }
    let id = text("rule")?;
    let mut reason = text("reason")?;
    let rule = match rules::known(&id).or_else(|| own_rules.iter().copied().find(|r| *r == id)) {
        Some(rule) => rule,
        None => {
            reason = format!("{reason} [rule {}]", id.chars().take(100).collect::<String>());
            rules::POLICY_UNLISTED_RULE
        }
    };
    let decision = AccessDecision {
        decision: Decision { permit, rule, reason },
        allowed_categories,
        break_glass: flag("break_glass")?,
        flag_for_review: flag("flag_for_review")?,
        team_roles: match &v["roles"] {
            R::Undefined => Vec::new(),
            roles => roles
                .as_array()
                .map_err(|_| "`roles` is not an array".to_owned())?
                .iter()
                .map(|r| r.as_string().map(|s| s.to_string()).map_err(|_| "a role is not a string".to_owned()))
                .collect::<Result<_, _>>()?,
        },
    };
    if decision.permit && decision.allowed_categories.is_empty() {
        return Err("a permit without categories".into());
    }
    if !decision.permit && !decision.allowed_categories.is_empty() {
        return Err("a denial with categories".into());
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<PolicyEngine>();
    }

    #[test]
    fn the_embedded_policy_compiles() {
        let e = PolicyEngine::embedded().expect("embedded policy");
        assert_eq!(e.config().grace_period_days, 30);
    }

    #[test]
    fn a_malformed_result_denies() {
        let v = R::from_json_str(r#"{"permit": true, "rule": "x", "reason": "y", "categories": ["banana"], "break_glass": false, "flag_for_review": false}"#).expect("json");
        assert!(parse_decision(&v, &[]).is_err());
        let v = R::from_json_str(r#"{"permit": true, "rule": "x", "reason": "y", "categories": [], "break_glass": false, "flag_for_review": false}"#).expect("json");
        assert!(parse_decision(&v, &[]).is_err());
        assert!(parse_decision(&R::Undefined, &[]).is_err());
    }

    #[test]
    fn rule_ids_are_declared_or_the_policys_own() {
        let v = R::from_json_str(r#"{"permit": false, "rule": "mine.custom", "reason": "y", "categories": [], "break_glass": false, "flag_for_review": false}"#).expect("json");
        let d = parse_decision(&v, &["mine.custom"]).expect("own rule");
        assert_eq!(d.rule, "mine.custom");
        let d = parse_decision(&v, &[]).expect("unlisted rule");
        assert_eq!((d.rule, d.reason.as_str()), (rules::POLICY_UNLISTED_RULE, "y [rule mine.custom]"));
        let v = R::from_json_str(r#"{"permit": false, "rule": "treatment.ended", "reason": "y", "categories": [], "break_glass": false, "flag_for_review": false}"#).expect("json");
        assert_eq!(parse_decision(&v, &[]).expect("declared").rule, rules::TREATMENT_ENDED);
    }

    #[test]
    fn config_errors_name_the_field() {
        let text = EMBEDDED_CONFIG.replace("\"journal\"", "\"jornal\"");
        let e = AccessConfig::parse(&text, "c.json").expect_err("typo");
        assert!(e.to_string().contains("matrix"), "{e}");
        let text = EMBEDDED_CONFIG.replace("\"co-practitioner\": {", "\"co-practioner\": {");
        let e = AccessConfig::parse(&text, "c.json").expect_err("typo");
        assert!(e.to_string().contains("co-practitioner"), "{e}");
    }
}
