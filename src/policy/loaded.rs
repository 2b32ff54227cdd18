//! The policy a service runs with, loaded once at start from its settings (`[policy]`): the
//! decision engine (the shipped policy, or an adapted directory, with the grace period
//! set), the agreements in force, the administrators and the AGB codes of organisations.

use super::parties::{SenderIdentities, SenderIdentitiesError};
use super::{Admins, AdminsError, Agreement, AgreementError, PolicyEngine, PolicyError};
use crate::config::PolicySettings;

/// The loaded policy.
#[derive(Debug)]
pub struct Loaded {
    pub engine: PolicyEngine,
    pub agreements: Vec<Agreement>,
    pub admins: Admins,
    /// AGB codes configured as identities of organisations (`policy.agb_codes`).
    pub senders: SenderIdentities,
}

/// Why the policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Agreement(#[from] AgreementError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Admins(#[from] AdminsError),
    #[error(transparent)]
    Senders(#[from] SenderIdentitiesError),
}

impl Loaded {
    /// Loads the policy of these settings. `examples` gives the demo's example agreements,
    /// added when `policy.demo_examples` is set and no agreements directory is.
    pub fn from_settings(
        p: &PolicySettings,
        examples: impl FnOnce() -> Result<Vec<Agreement>, AgreementError>,
    ) -> Result<Loaded, SetupError> {
        let engine = match (&p.dir, p.grace_period_days) {
            (None, None) => PolicyEngine::embedded()?,
            (None, Some(days)) => PolicyEngine::from_sources(
                &[("policies/access.rego", SHIPPED_POLICY)],
                &with_grace(SHIPPED_CONFIG, days),
                "policies/access-config.json",
            )?,
            (Some(dir), None) => PolicyEngine::from_dir(dir)?,
            (Some(dir), Some(days)) => PolicyEngine::from_dir_with(dir, |config| with_grace(config, days))?,
        };
        let mut agreements = match &p.agreements_dir {
            Some(dir) => Agreement::load_dir(dir)?,
            None => Vec::new(),
        };
        if p.demo_examples && p.agreements_dir.is_none() {
            agreements.extend(examples()?);
        }
        Ok(Loaded {
            engine,
            agreements,
            admins: Admins::parse(&p.admins)?,
            senders: SenderIdentities::parse(&p.agb_codes)?,
        })
    }
}

// The shipped policy, byte for byte, so an engine with only the grace period changed may keep
// the fast path once proven (`PolicyEngine::prove`).
const SHIPPED_POLICY: &str = include_str!("../../policies/access.rego");
const SHIPPED_CONFIG: &str = include_str!("../../policies/access-config.json");

/// The policy's configuration with the grace period overridden.
fn with_grace(config: &str, days: u32) -> String {
    match serde_json::from_str::<serde_json::Value>(config) {
        Ok(mut v) => {
            v["overdracht"]["config"]["grace_period_days"] = days.into();
            v.to_string()
        }
        // Let the policy loader report the malformed file.
        Err(_) => config.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_setting_overrides_an_adapted_policy_directory() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("access.rego"), SHIPPED_POLICY).expect("rego");
        std::fs::write(dir.path().join("access-config.json"), SHIPPED_CONFIG).expect("config");
        let p = PolicySettings { dir: Some(dir.path().to_owned()), grace_period_days: Some(3), ..Default::default() };
        let ac = Loaded::from_settings(&p, || Ok(vec![])).expect("policy");
        assert_eq!(ac.engine.config().grace_period_days, 3);
        assert!(ac.engine.is_shipped_rego());
        let p = PolicySettings { dir: Some(dir.path().to_owned()), ..Default::default() };
        let ac = Loaded::from_settings(&p, || Ok(vec![])).expect("policy");
        assert_eq!(ac.engine.path(), crate::policy::PolicyPath::Native, "the shipped files, byte for byte");
    }
}
