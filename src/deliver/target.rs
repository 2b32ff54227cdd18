//! Delivery targets: where each receiver's FHIR server is and how to talk to it.
//!
//! A target belongs to one receiving care provider, named by its URA number (the same
//! number as `receiver.ura` in an agreement), so that a handover finds its destination
//! through the agreement it was accepted under. The file is JSON; secrets can stay out of
//! it by naming an environment variable instead (`token_env`, `client_secret_env`).
//!
//! ```json
//! {
//!   "targets": [{
//!     "receiver": "11112222",
//!     "name": "Zorggroep Zuid",
//!     "base_url": "https://fhir.zorggroep-zuid.example/r4",
//!     "auth": { "type": "oauth2", "token_url": "https://auth.zorggroep-zuid.example/token",
//!               "client_id": "overdracht", "client_secret_env": "ZORGGROEP_ZUID_SECRET",
//!               "scope": "system/*.write" },
//!     "tls": { "client_cert_pem": "/etc/overdracht/uzi-server.pem",
//!              "client_key_pem": "/etc/overdracht/uzi-server.key" },
//!     "connect_timeout_ms": 5000, "request_timeout_ms": 60000, "max_attempts": 10,
//!     "backoff": { "initial_ms": 1000, "max_ms": 300000, "multiplier": 2.0 }
//!   }]
//! }
//! ```
//!
//! `auth.type` is `none`, `bearer` (`token` or `token_env`) or `oauth2` (client credentials
//! grant; `client_auth` is `basic` (default) or `post`). A TLS client certificate (`tls`)
//! combines with any of them. Every field after `auth` has the default shown in
//! [`Target::default_for`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DeliverError;

/// All configured targets (the file format).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub targets: Vec<Target>,
}

impl Targets {
    /// Reads a targets file.
    pub fn load(path: &Path) -> Result<Targets, DeliverError> {
        let bytes = std::fs::read(path)
            .map_err(|e| DeliverError::Config(format!("cannot read delivery targets {}: {e}", path.display())))?;
        let targets: Targets = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .map_err(|e| DeliverError::Config(format!("{}: {e}", path.display())))?;
        for t in &targets.targets {
            t.check()?;
        }
        Ok(targets)
    }

    /// The target of a receiving provider (URA number).
    pub fn for_receiver(&self, ura: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.receiver == ura)
    }
}

/// One receiving provider's FHIR server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The receiving provider's URA number.
    pub receiver: String,
    /// A name for people (messages, metrics labels).
    #[serde(default)]
    pub name: Option<String>,
    /// The FHIR base URL; the transaction is POSTed to it.
    pub base_url: String,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// For the whole request, response body included.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Attempts before a delivery is dead-lettered (the retried request after a token
    /// refresh is part of the same attempt).
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
}

mod defaults {
    pub fn connect_timeout_ms() -> u64 {
        5_000
    }
    pub fn request_timeout_ms() -> u64 {
        60_000
    }
    pub fn max_attempts() -> u32 {
        10
    }
}

impl Target {
    /// A target with the default settings: no authentication, 5 s connect and 60 s request
    /// timeouts, 10 attempts, backoff from 1 s doubling up to 5 min.
    pub fn default_for(base_url: impl Into<String>) -> Target {
        Target {
            receiver: String::new(),
            name: None,
            base_url: base_url.into(),
            auth: Auth::None,
            tls: None,
            connect_timeout_ms: defaults::connect_timeout_ms(),
            request_timeout_ms: defaults::request_timeout_ms(),
            max_attempts: defaults::max_attempts(),
            backoff: Backoff::default(),
        }
    }

    /// The target `overdracht deliver` names: `--target URL` (with `--token`, a bearer
    /// token), or the receiver's target in a `--targets` file (which names its own
    /// authentication).
    pub fn of_options(
        url: Option<&str>,
        token: Option<&str>,
        targets_file: Option<&Path>,
        receiver: Option<&str>,
    ) -> Result<Target, DeliverError> {
        match (url, targets_file, receiver) {
            (Some(url), None, _) => {
                let mut t = Target::default_for(url);
                if let Some(token) = token {
                    t.auth = Auth::Bearer { token: Some(token.to_owned()), token_env: None };
                }
                Ok(t)
            }
            (None, Some(file), Some(ura)) => {
                if token.is_some() {
                    return Err(DeliverError::Config(
                        "--token goes with --target; a targets file names its own authentication".into(),
                    ));
                }
                Targets::load(file)?
                    .for_receiver(ura)
                    .cloned()
                    .ok_or_else(|| DeliverError::Config(format!("{} has no target for receiver {ura}", file.display())))
            }
            _ => Err(DeliverError::Config("give --target URL, or --targets FILE with --receiver URA".into())),
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// A short label for logs and messages: the name, else the receiver, else the URL.
    pub fn label(&self) -> &str {
        match &self.name {
            Some(n) => n,
            None if !self.receiver.is_empty() => &self.receiver,
            None => &self.base_url,
        }
    }

    /// Refuses settings that cannot work (a base URL that is not http(s), no attempts, ...).
    pub fn check(&self) -> Result<(), DeliverError> {
        let bad = |what: &str| DeliverError::Config(format!("delivery target {}: {what}", self.label()));
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(bad("base_url must start with http:// or https://"));
        }
        if self.max_attempts == 0 {
            return Err(bad("max_attempts must be at least 1"));
        }
        if self.backoff.multiplier < 1.0 || !self.backoff.multiplier.is_finite() {
            return Err(bad("backoff.multiplier must be a number of at least 1"));
        }
        Ok(())
    }
}

/// How requests authenticate (the `Authorization` header).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    #[default]
    None,
    /// A fixed bearer token, inline or from an environment variable.
    Bearer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        token_env: Option<String>,
    },
    /// OAuth2 client credentials grant; the token is cached until shortly before it
    /// expires and fetched again once when the server answers 401.
    Oauth2 {
        token_url: String,
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        client_secret_env: Option<String>,
        #[serde(default)]
        scope: Option<String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// Where the OAuth2 client credentials go (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic authentication (every server must support it).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// TLS settings: a client certificate (e.g. a UZI server certificate) and extra roots.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file with the client certificate (chain).
    #[serde(default)]
    pub client_cert_pem: Option<PathBuf>,
    /// PEM file with the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub client_key_pem: Option<PathBuf>,
    /// PEM file with CA certificates to trust besides the system's.
    #[serde(default)]
    pub ca_pem: Option<PathBuf>,
}

/// Exponential backoff: attempt n waits about `initial × multiplierⁿ⁻¹`, at most `max`,
/// of which a random half (jitter) so that many deliveries failing together do not
/// return together.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub multiplier: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial_ms: 1_000, max_ms: 300_000, multiplier: 2.0 }
    }
}

impl Backoff {
    /// The ceiling of the wait after the `attempt`-th failed attempt (1-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = self.multiplier.powi(attempt.saturating_sub(1).min(64) as i32);
        let ms = (self.initial_ms as f64 * exp).min(self.max_ms as f64);
        Duration::from_millis(ms as u64)
    }

    /// The wait after the `attempt`-th failed attempt: uniformly between half the ceiling
    /// and the ceiling ("equal jitter").
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        let half = ceiling / 2;
        let jitter = if ceiling > half { rand::random_range(0..=ceiling - half) } else { 0 };
        Duration::from_millis(half + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff { initial_ms: 100, max_ms: 1_000, multiplier: 2.0 };
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(400));
        assert_eq!(b.ceiling(30), Duration::from_millis(1_000));
        for n in 1..10 {
            let d = b.delay(n);
            assert!(d >= b.ceiling(n) / 2 && d <= b.ceiling(n), "{d:?}");
        }
    }

    #[test]
    fn example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/delivery-targets.json");
        let t = Targets::load(&path).expect("example loads");
        let zuid = t.for_receiver("11112222").expect("the example receiver");
        assert!(matches!(zuid.auth, Auth::Oauth2 { .. }));
    }

    #[test]
    fn unknown_fields_and_bad_urls_are_refused() {
        let bad: Result<Targets, _> = serde_json::from_str(r#"{"targets":[{"receiver":"1","base_url":"x","tokn":1}]}"#);
        assert!(bad.is_err());
        let t = Target::default_for("ftp://x");
        assert!(t.check().is_err());
    }
}
