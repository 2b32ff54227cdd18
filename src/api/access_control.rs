//! What the API needs to make access decisions: the policy as loaded at start
//! ([`crate::policy::loaded`]: engine, agreements in force, administrators, AGB codes), and the
//! facts of one patient at one provider (teams, the agreements under which the patient's data
//! arrived there, consents), gathered from the store and cached. The decisions themselves are
//! policy/'s; the record of changed agreements is the audit trail's
//! ([`crate::audit::agreements`]).
//!
//! A decision is always about one patient's data held by one provider (the *holder*: the
//! receiver of the handovers). The teams are those that provider manages for the patient;
//! the agreements are those recorded with the patient's handovers to it (not every agreement
//! the provider signed: a GP agreement does not open data that came from the paediatrician).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::NaiveDate;

use super::auth::Caller;
use super::error::ApiError;
use super::input;
use crate::config::PolicySettings;
use crate::model::{Bsn, DataCategory};
use crate::policy::{
    AccessDecision, AccessRequest, Agreement, CareTeam, PatientConsent, PolicyEngine, Requested, Requester,
};
use crate::store::{Store, StoredPolicyResource};

/// The header carrying the stated reason for break-the-glass access (percent-encoded UTF-8).
pub const BREAK_GLASS_HEADER: &str = "x-break-glass-reason";

/// The access-control state of the service, built once at start.
#[derive(Debug, Clone)]
pub struct AccessControl {
    pub engine: PolicyEngine,
    pub agreements: Arc<Vec<Agreement>>,
    pub admins: Arc<crate::policy::Admins>,
    /// AGB codes configured as identities of organisations (`policy.agb_codes`).
    pub senders: Arc<crate::policy::parties::SenderIdentities>,
    cache: Arc<FactsCache>,
}

impl AccessControl {
    /// The access control of a service with these settings: the policy loaded
    /// ([`crate::policy::loaded::Loaded`]; the demo's example agreements with
    /// `policy.demo_examples`) and an empty cache of facts.
    pub fn from_settings(p: &PolicySettings) -> Result<AccessControl, crate::policy::loaded::SetupError> {
        let loaded = crate::policy::loaded::Loaded::from_settings(p, super::demo::agreements)?;
        Ok(AccessControl {
            engine: loaded.engine,
            agreements: Arc::new(loaded.agreements),
            admins: Arc::new(loaded.admins),
            senders: Arc::new(loaded.senders),
            cache: Arc::default(),
        })
    }

    /// Records the agreements that came into use, changed or are no longer loaded since the
    /// service last ran ([`crate::audit::agreements::record_changes`]).
    pub async fn record_agreement_changes(&self, store: &Store, source: &str) -> Result<usize, String> {
        crate::audit::agreements::record_changes(store, &self.agreements, source).await
    }

    /// The loaded agreements named `(id, version)`; versions no longer loaded are left out
    /// (data that arrived under them is then not readable: deny by default).
    pub fn agreements_named(&self, names: &[(String, String)]) -> Vec<Agreement> {
        self.agreements.iter().filter(|a| names.iter().any(|(id, v)| *id == a.id && *v == a.version)).cloned().collect()
    }

    /// Whether the caller is an administrator of the organisation in the token.
    pub fn is_admin(&self, caller: &Caller) -> bool {
        self.admins.is_admin(&caller.ura, &caller.uzi)
    }

    /// The caller as the policy's [`crate::policy::Actor`].
    pub fn actor<'a>(&self, caller: &'a Caller) -> crate::policy::Actor<'a> {
        crate::policy::Actor {
            uzi: &caller.uzi,
            uzi_role: &caller.uzi_role,
            ura: &caller.ura,
            admin: self.is_admin(caller),
        }
    }
}

/// The requester of a facade request: the token's claims plus the optional stated
/// break-the-glass reason.
pub fn requester(caller: &Caller, headers: &HeaderMap) -> Result<Requester, ApiError> {
    let reason = input::text_header(headers, BREAK_GLASS_HEADER, 1000)?.filter(|r| !r.trim().is_empty());
    Ok(Requester {
        uzi: caller.uzi.clone(),
        uzi_role: caller.uzi_role.clone(),
        ura: caller.ura.clone(),
        purpose_of_use: caller.purpose_of_use.clone(),
        break_glass_reason: reason,
    })
}

/// The day on which a team's GZSP rules are checked: today, or the team's first day when it
/// starts later (a team planned from a patient's 18th birthday has no lead today yet).
pub fn rule_day(team: &serde_json::Value, today: NaiveDate) -> NaiveDate {
    team["period"]["start"]
        .as_str()
        .and_then(|s| s.get(..10))
        .and_then(|s| s.parse::<NaiveDate>().ok())
        .map_or(today, |start| start.max(today))
}

/// Parses stored teams; a stored team that no longer parses is left out (and logged), which
/// can only take access away.
pub fn parse_teams(rows: &[StoredPolicyResource]) -> Vec<CareTeam> {
    rows.iter()
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.resource).ok()?;
            match CareTeam::from_fhir(&v) {
                Ok(t) => Some(t),
                Err(_) => {
                    // No id in the log: clients choose team ids and may put a BSN in them.
                    tracing::error!("a stored care team no longer parses; ignored");
                    None
                }
            }
        })
        .collect()
}

/// Parses stored consents. A consent that no longer parses is an error: ignoring an
/// objection would leak data.
pub fn parse_consents(rows: &[StoredPolicyResource]) -> Result<Vec<PatientConsent>, ApiError> {
    crate::policy::consent::parse_stored(rows.iter().map(|r| r.resource.as_str())).map_err(ApiError::internal)
}

/// What a decision about one patient's data at one holder depends on, besides the
/// requester and the day.
#[derive(Debug)]
pub struct HolderFacts {
    pub bsn: Bsn,
    /// The patient's teams managed by the holder.
    pub teams: Vec<CareTeam>,
    pub consents: Vec<PatientConsent>,
    /// The agreements under which the patient's data arrived at the holder (loaded versions).
    pub agreements: Vec<Agreement>,
}

/// Parsed facts per (patient, holder), so that a read does not query and parse teams,
/// consents and agreements every time.
///
/// Correctness: every write of a team, consent or handover bumps the generation after its
/// commit ([`AccessControl::invalidate`]), and a reader notes the generation *before* it
/// loads, so an entry can only be used when nothing was committed since it was loaded. With
/// several instances (PostgreSQL) the database's access generation ([`Store::access_generation`],
/// moved in the writing transaction by any instance) is read the same way before every use,
/// so another instance's change takes effect at once. On SQLite an entry is also dropped
/// after [`FACTS_TTL`], which bounds staleness should another process ever write the same
/// database (not a supported set-up with SQLite).
#[derive(Debug, Default)]
pub struct FactsCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<(String, String), CachedFacts>>,
}

/// Generations (this process's, the database's) and time of loading, and the facts.
type CachedFacts = ((u64, Option<i64>), Instant, Arc<HolderFacts>);

/// Longest time cached facts are used.
pub const FACTS_TTL: Duration = Duration::from_secs(5);
const FACTS_CACHE_MAX: usize = 10_000;

impl AccessControl {
    /// Forget every cached fact: call after committing a change to teams, consents or handovers.
    pub fn invalidate(&self) {
        self.cache.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The facts of this patient's data at this holder; `None` when the BSN is not valid.
    pub async fn facts(&self, store: &Store, bsn: &str, holder: &str) -> Result<Option<Arc<HolderFacts>>, ApiError> {
        let key = (bsn.to_owned(), holder.to_owned());
        let generation = (self.cache.generation.load(Ordering::SeqCst), store.access_generation().await?);
        if let Ok(map) = self.cache.entries.lock() {
            if let Some((g, at, f)) = map.get(&key) {
                if *g == generation && (generation.1.is_some() || at.elapsed() < FACTS_TTL) {
                    return Ok(Some(f.clone()));
                }
            }
        }
        let Ok(parsed) = Bsn::parse(bsn) else { return Ok(None) };
        let (teams, consents, names) = tokio::try_join!(
            store.care_teams_of(bsn),
            store.consents_of(bsn),
            store.agreements_of_patient(bsn, holder)
        )?;
        let facts = Arc::new(HolderFacts {
            bsn: parsed,
            teams: parse_teams(&teams).into_iter().filter(|t| t.organisation_ura == holder).collect(),
            consents: parse_consents(&consents)?,
            agreements: self.agreements_named(&names),
        });
        if let Ok(mut map) = self.cache.entries.lock() {
            if map.len() >= FACTS_CACHE_MAX {
                map.clear();
            }
            map.insert(key, (generation, Instant::now(), facts.clone()));
        }
        Ok(Some(facts))
    }

    /// Decides whether `requester` may read the patient's data described by `facts`.
    pub fn decide(&self, requester: &Requester, facts: &HolderFacts, day: NaiveDate) -> AccessDecision {
        self.engine.decide(&AccessRequest {
            requester,
            patient: &facts.bsn,
            teams: &facts.teams,
            agreements: &facts.agreements,
            consents: &facts.consents,
            day,
            requested: &Requested::All,
        })
    }
}

/// Whether a decision lets this category through.
pub fn allows(d: &AccessDecision, category: &str) -> bool {
    d.permit && DataCategory::from_code(category).is_some_and(|c| d.allowed_categories.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_setting_keeps_the_shipped_rego_and_asks_for_a_proof() {
        let p = PolicySettings { grace_period_days: Some(10), ..PolicySettings::default() };
        let ac = AccessControl::from_settings(&p).expect("access control");
        assert_eq!(ac.engine.config().grace_period_days, 10);
        assert!(ac.engine.is_shipped_rego(), "only the data changed, not the Rego");
        // The native engine decides once proven on the decision table (tests/policy_access.rs).
        assert_eq!(ac.engine.path(), crate::policy::PolicyPath::Proving);
        assert!(ac.agreements.is_empty(), "no agreements configured: every handover is refused");
    }

    #[test]
    fn demo_examples_bring_the_example_agreements() {
        let p = PolicySettings { demo_examples: true, ..PolicySettings::default() };
        let ac = AccessControl::from_settings(&p).expect("access control");
        let labels: Vec<String> = ac.agreements.iter().map(Agreement::label).collect();
        assert_eq!(labels, ["de-linde-to-zorggroep-zuid@1.0", "amalia-paediatrics-to-zorggroep-zuid@2.1"]);
    }

    #[test]
    fn teams_are_checked_on_their_first_day_when_they_start_later() {
        let today: NaiveDate = "2026-11-23".parse().expect("day");
        let later = serde_json::json!({"period": {"start": "2026-12-05"}});
        assert_eq!(rule_day(&later, today).to_string(), "2026-12-05");
        let earlier = serde_json::json!({"period": {"start": "2026-09-01"}});
        assert_eq!(rule_day(&earlier, today), today);
    }
}
