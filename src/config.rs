//! All settings of the service in one typed struct.
//!
//! Settings come, in increasing order of precedence, from built-in defaults (which run
//! everything embedded: a SQLite file and a demo signing key in the data directory), an
//! optional file (TOML, or JSON when the name ends in `.json`), environment variables
//! (`OVERDRACHT_*`) and finally command-line flags, which `main.rs` applies on top.
//! Every key is documented in `docs/configuration.md`; keep the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default listen address: loopback only, so that a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "overdracht-data";
/// Issuer of tokens signed with the local demo key.
pub const DEMO_ISSUER: &str = "urn:overdracht:demo";
/// Default audience every token must name.
pub const DEFAULT_AUDIENCE: &str = "overdracht";

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {message}")]
    Env { name: &'static str, value: String, message: String },
    #[error("no database at {}; pass --data-dir DIR (the directory `serve` uses)", file.display())]
    NoDatabase { file: PathBuf },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the demo signing key.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://…` (default `sqlite://<data_dir>/overdracht.db`, one instance)
    /// or `postgres://…` (any number of instances sharing the database).
    pub database_url: Option<String>,
    /// Maximum number of database connections (per instance).
    pub database_max_connections: u32,
    /// How long a request waits for a free database connection, in ms.
    pub database_acquire_timeout_ms: u64,
    pub auth: AuthSettings,
    pub limits: Limits,
    pub policy: PolicySettings,
    /// `tracing` filter directive, e.g. `info` or `overdracht=debug,info`.
    pub log: String,
    /// Log format: `text` (human) or `json` (one object per line).
    pub log_format: LogFormat,
    /// Delivery to the receivers' FHIR servers (the outbox worker).
    pub delivery: crate::deliver::outbox::DeliverySettings,
    /// Who may see the whole audit trail and review flagged entries.
    pub audit: AuditSettings,
    /// What `$validate` reports.
    pub validation: ValidationSettings,
}

/// What `POST /fhir/$validate` reports (the `validate` command has the same as flags).
#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// An extension whose definition is not loaded: `information` (the HL7 reference validator's
    /// default), `warning`, `error` or `ignore`. A conversion's check of its own output always
    /// uses `information`: our output carries nl-core extensions whose definitions are not
    /// embedded.
    pub unknown_extensions: crate::validate::UnknownExtensions,
}

/// The audit trail's own access rules.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// UZI role codes of privacy officers: they may search the whole audit trail and
    /// review flagged entries (break-the-glass). Empty: nobody (deny by default).
    pub privacy_officer_roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Token verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The `aud` every token must carry.
    pub audience: String,
    /// Trusted token issuers. Empty: the local demo key (in the data directory) is the only
    /// issuer and `overdracht token` may mint tokens. Non-empty: the demo key is not trusted.
    pub issuers: Vec<IssuerSettings>,
    /// Clock skew tolerated for `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Trust the local demo key although no issuer is configured. Without issuers and
    /// without this (or `serve --demo`), the service refuses to start: anyone who can read
    /// the data directory could otherwise mint tokens for any organisation.
    pub insecure_trust_demo_key: bool,
    /// Keys fetched from an issuer's `jwks_url` (or by `discovery`) are fetched again when a
    /// token of that issuer arrives and they are older than this (seconds), unless the JWKS
    /// answer said how long it may be cached (`Cache-Control: max-age`).
    pub jwks_refresh_seconds: u64,
    /// The longest a JWKS answer's `Cache-Control: max-age` keeps keys without a refresh
    /// (seconds); the shortest is `jwks_min_refresh_seconds`.
    pub jwks_max_refresh_seconds: u64,
    /// At most one fetch of an issuer's keys per this many seconds, whatever the reason (a
    /// token with an unknown `kid`, stale keys, an issuer that is down).
    pub jwks_min_refresh_seconds: u64,
    /// Time allowed for one fetch of a JWKS or discovery document (seconds).
    pub jwks_timeout_seconds: u64,
}

/// One trusted issuer and where its public key(s) are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The `iss` value.
    pub issuer: String,
    /// A PEM public key (RSA, EC P-256/P-384 or Ed25519).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// A JWKS document (JSON); keys are selected by `kid`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL (`https`; `http` only on a loopback address), fetched at start and
    /// refreshed (cached, rotation on an unknown `kid`, rate-limited; see `api::jwks`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// OpenID Connect discovery: the keys are at the `jwks_uri` of
    /// `<issuer>/.well-known/openid-configuration` (instead of `jwks_url`).
    #[serde(default)]
    pub discovery: bool,
}

/// Agreements and access control.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Directory of the data-transfer agreements (`*.json`, format `overdracht-agreement/1`).
    /// None: no agreement is in force and every handover is refused (deny by default).
    pub agreements_dir: Option<PathBuf>,
    /// Directory of an adapted access policy (`*.rego` and `access-config.json`); None: the
    /// policy shipped in `policies/`.
    pub dir: Option<PathBuf>,
    /// Overrides `grace_period_days` of the policy's configuration: days after the end of a
    /// treatment in which the roles of `grace_period_roles` may still read (closing letter).
    pub grace_period_days: Option<u32>,
    /// Administrators, each `URA:UZI` (the organisation they administer and their UZI
    /// number): they may write the care teams and consents of that organisation, besides the
    /// teams' lead practitioners, and see its evidence report — only with a token for that
    /// organisation. A bare UZI number (the form of earlier versions) is refused at start.
    pub admins: Vec<String>,
    /// AGB codes that are additional identities of an organisation, by URA
    /// (`"87654321" = ["01234567"]`): a token of that URA may send a handover as
    /// `sender=agb-z|<code>`, and agreements naming the code cover it. The sender is otherwise
    /// always the URA in the token.
    pub agb_codes: std::collections::BTreeMap<String, Vec<String>>,
    /// Load the example agreements, care teams and consents built into the binary (set by
    /// `serve --demo` when no agreements directory is configured; not a file key).
    #[serde(skip)]
    pub demo_examples: bool,
}

/// Protection of the service itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body, in bytes (413 above).
    pub body_limit_bytes: usize,
    /// Time a request may take before it is answered with 408, in milliseconds.
    pub request_timeout_ms: u64,
    /// Authenticated requests processed at once; further requests are refused with 503 at
    /// once. Health, metrics, metadata and OpenAPI requests do not count.
    pub concurrency_limit: usize,
    /// Authenticated requests of one organisation (token issuer and URA) processed at once.
    pub per_caller_concurrency: usize,
    /// Requests without a valid token one address may make per window; more: 429.
    pub unauthenticated_per_window: u32,
    /// The window of `unauthenticated_per_window` and of the audit summary of requests
    /// without a valid token, in milliseconds.
    pub unauthenticated_window_ms: u64,
    /// Time a client has to send a request's headers, in milliseconds (slowloris).
    pub header_read_timeout_ms: u64,
    /// Memory all requests in progress may use together, in bytes: each authenticated
    /// request reserves `memory_per_body_byte` times its body size (Content-Length, or
    /// `body_limit_bytes` when it is not given) before its body is read; a request that
    /// does not fit is refused with 503 (413 when it could never fit).
    pub memory_budget_bytes: u64,
    /// Working memory per byte of request body (parsed JSON, model, FHIR output, answer);
    /// measured at about 74 for a 9.8 MB STU3 Bundle to `$convert`.
    pub memory_per_body_byte: u64,
    /// How long graceful shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_seconds: u64,
    /// Time between the shutdown signal and closing the listener, in seconds: requests are
    /// still served while `/health/ready` says `draining`, so that a load balancer stops
    /// sending before connections are refused.
    pub shutdown_drain_seconds: u64,
    /// Most issues one `$validate` answer or conversion outcome lists; the rest are counted
    /// in a closing "N more issues" issue.
    pub max_issues: usize,
    /// Most JSON values (objects, arrays, strings, numbers, ...) or XML elements in one
    /// request body: the work one request may cause (422 too-costly above; counted before
    /// the body is parsed).
    pub max_json_values: usize,
    /// Largest `$validate` answer, in bytes: issues are left out (and counted) until the
    /// OperationOutcome fits.
    pub max_response_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            database_max_connections: 8,
            database_acquire_timeout_ms: 10_000,
            auth: AuthSettings::default(),
            limits: Limits::default(),
            policy: PolicySettings::default(),
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            delivery: Default::default(),
            audit: AuditSettings::default(),
            validation: ValidationSettings::default(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            audience: DEFAULT_AUDIENCE.to_owned(),
            issuers: Vec::new(),
            leeway_seconds: 30,
            insecure_trust_demo_key: false,
            jwks_refresh_seconds: 3600,
            jwks_min_refresh_seconds: 30,
            jwks_max_refresh_seconds: 86_400,
            jwks_timeout_seconds: 5,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_limit_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            concurrency_limit: 256,
            per_caller_concurrency: 32,
            unauthenticated_per_window: 120,
            unauthenticated_window_ms: 60_000,
            header_read_timeout_ms: 10_000,
            memory_budget_bytes: 2 * 1024 * 1024 * 1024,
            memory_per_body_byte: 80,
            shutdown_grace_seconds: 30,
            shutdown_drain_seconds: 0,
            max_issues: 1000,
            max_json_values: 2_000_000,
            max_response_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.max(1))
    }
}

impl Settings {
    /// Defaults, then the file (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, |name| std::env::var(name).ok())
    }

    /// The settings of a command that works on the data of `serve` ([`Settings::load`]), with
    /// its `--data-dir` winning.
    pub fn load_with_data_dir(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut s = Self::load(file)?;
        if let Some(d) = data_dir {
            s.data_dir = d.to_path_buf();
        }
        Ok(s)
    }

    /// As [`Settings::load`], with the environment given as a function (for tests).
    pub fn load_from(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let file = file.map(Path::to_path_buf).or_else(|| env("OVERDRACHT_CONFIG").map(PathBuf::from));
        let mut s = match file {
            Some(path) => Self::from_file(&path)?,
            None => Settings::default(),
        };
        s.apply_env(env)?;
        Ok(s)
    }

    fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env { name, message: e.to_string(), value })
        }
        if let Some(v) = env("OVERDRACHT_LISTEN") {
            self.listen = parse("OVERDRACHT_LISTEN", v)?;
        }
        if let Some(v) = env("OVERDRACHT_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("OVERDRACHT_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = env("OVERDRACHT_DATABASE_MAX_CONNECTIONS") {
            self.database_max_connections = parse("OVERDRACHT_DATABASE_MAX_CONNECTIONS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_DATABASE_ACQUIRE_TIMEOUT_MS") {
            self.database_acquire_timeout_ms = parse("OVERDRACHT_DATABASE_ACQUIRE_TIMEOUT_MS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_AUDIENCE") {
            self.auth.audience = v;
        }
        if let Some(issuer) = env("OVERDRACHT_ISSUER") {
            let public_key_file = env("OVERDRACHT_ISSUER_PUBLIC_KEY_FILE").map(PathBuf::from);
            let jwks_file = env("OVERDRACHT_ISSUER_JWKS_FILE").map(PathBuf::from);
            let jwks_url = env("OVERDRACHT_ISSUER_JWKS_URL");
            let discovery = match env("OVERDRACHT_ISSUER_DISCOVERY") {
                Some(v) => parse("OVERDRACHT_ISSUER_DISCOVERY", v)?,
                None => false,
            };
            if public_key_file.is_none() && jwks_file.is_none() && jwks_url.is_none() && !discovery {
                return Err(ConfigError::Env {
                    name: "OVERDRACHT_ISSUER",
                    value: issuer,
                    message: "set OVERDRACHT_ISSUER_PUBLIC_KEY_FILE, OVERDRACHT_ISSUER_JWKS_FILE, OVERDRACHT_ISSUER_JWKS_URL or OVERDRACHT_ISSUER_DISCOVERY=true too".to_owned(),
                });
            }
            self.auth.issuers.push(IssuerSettings { issuer, public_key_file, jwks_file, jwks_url, discovery });
        }
        for (name, field) in [
            ("OVERDRACHT_JWKS_REFRESH_SECONDS", &mut self.auth.jwks_refresh_seconds),
            ("OVERDRACHT_JWKS_MIN_REFRESH_SECONDS", &mut self.auth.jwks_min_refresh_seconds),
            ("OVERDRACHT_JWKS_MAX_REFRESH_SECONDS", &mut self.auth.jwks_max_refresh_seconds),
            ("OVERDRACHT_JWKS_TIMEOUT_SECONDS", &mut self.auth.jwks_timeout_seconds),
        ] {
            if let Some(v) = env(name) {
                *field = parse(name, v)?;
            }
        }
        if let Some(v) = env("OVERDRACHT_AUTH_LEEWAY_SECONDS") {
            self.auth.leeway_seconds = parse("OVERDRACHT_AUTH_LEEWAY_SECONDS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_INSECURE_TRUST_DEMO_KEY") {
            self.auth.insecure_trust_demo_key = parse("OVERDRACHT_INSECURE_TRUST_DEMO_KEY", v)?;
        }
        if let Some(v) = env("OVERDRACHT_UNKNOWN_EXTENSIONS") {
            self.validation.unknown_extensions = parse("OVERDRACHT_UNKNOWN_EXTENSIONS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_BODY_LIMIT_BYTES") {
            self.limits.body_limit_bytes = parse("OVERDRACHT_BODY_LIMIT_BYTES", v)?;
        }
        if let Some(v) = env("OVERDRACHT_REQUEST_TIMEOUT_MS") {
            self.limits.request_timeout_ms = parse("OVERDRACHT_REQUEST_TIMEOUT_MS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_CONCURRENCY_LIMIT") {
            self.limits.concurrency_limit = parse("OVERDRACHT_CONCURRENCY_LIMIT", v)?;
        }
        if let Some(v) = env("OVERDRACHT_PER_CALLER_CONCURRENCY") {
            self.limits.per_caller_concurrency = parse("OVERDRACHT_PER_CALLER_CONCURRENCY", v)?;
        }
        if let Some(v) = env("OVERDRACHT_UNAUTHENTICATED_PER_WINDOW") {
            self.limits.unauthenticated_per_window = parse("OVERDRACHT_UNAUTHENTICATED_PER_WINDOW", v)?;
        }
        if let Some(v) = env("OVERDRACHT_UNAUTHENTICATED_WINDOW_MS") {
            self.limits.unauthenticated_window_ms = parse("OVERDRACHT_UNAUTHENTICATED_WINDOW_MS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_HEADER_READ_TIMEOUT_MS") {
            self.limits.header_read_timeout_ms = parse("OVERDRACHT_HEADER_READ_TIMEOUT_MS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_MEMORY_BUDGET_BYTES") {
            self.limits.memory_budget_bytes = parse("OVERDRACHT_MEMORY_BUDGET_BYTES", v)?;
        }
        if let Some(v) = env("OVERDRACHT_MEMORY_PER_BODY_BYTE") {
            self.limits.memory_per_body_byte = parse("OVERDRACHT_MEMORY_PER_BODY_BYTE", v)?;
        }
        if let Some(v) = env("OVERDRACHT_SHUTDOWN_GRACE_SECONDS") {
            self.limits.shutdown_grace_seconds = parse("OVERDRACHT_SHUTDOWN_GRACE_SECONDS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_SHUTDOWN_DRAIN_SECONDS") {
            self.limits.shutdown_drain_seconds = parse("OVERDRACHT_SHUTDOWN_DRAIN_SECONDS", v)?;
        }
        if let Some(v) = env("OVERDRACHT_MAX_ISSUES") {
            self.limits.max_issues = parse("OVERDRACHT_MAX_ISSUES", v)?;
        }
        if let Some(v) = env("OVERDRACHT_MAX_JSON_VALUES") {
            self.limits.max_json_values = parse("OVERDRACHT_MAX_JSON_VALUES", v)?;
        }
        if let Some(v) = env("OVERDRACHT_MAX_RESPONSE_BYTES") {
            self.limits.max_response_bytes = parse("OVERDRACHT_MAX_RESPONSE_BYTES", v)?;
        }
        if let Some(v) = env("OVERDRACHT_DELIVERY_TARGETS") {
            self.delivery.targets_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("OVERDRACHT_AGREEMENTS_DIR") {
            self.policy.agreements_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("OVERDRACHT_POLICY_DIR") {
            self.policy.dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("OVERDRACHT_GRACE_PERIOD_DAYS") {
            self.policy.grace_period_days = Some(parse("OVERDRACHT_GRACE_PERIOD_DAYS", v)?);
        }
        if let Some(v) = env("OVERDRACHT_ADMINS") {
            self.policy.admins = split_list(&v);
        }
        if let Some(v) = env("OVERDRACHT_AGB_CODES") {
            let mut map = std::collections::BTreeMap::<String, Vec<String>>::new();
            for pair in split_list(&v) {
                let Some((ura, agb)) = pair.split_once(':') else {
                    return Err(ConfigError::Env {
                        name: "OVERDRACHT_AGB_CODES",
                        value: v.clone(),
                        message: "expected URA:AGB pairs, comma-separated".to_owned(),
                    });
                };
                map.entry(ura.trim().to_owned()).or_default().push(agb.trim().to_owned());
            }
            self.policy.agb_codes = map;
        }
        if let Some(v) = env("OVERDRACHT_AUDIT_PRIVACY_OFFICER_ROLES") {
            self.audit.privacy_officer_roles = split_list(&v);
        }
        if let Some(v) = env("OVERDRACHT_LOG") {
            self.log = v;
        }
        if let Some(v) = env("OVERDRACHT_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "OVERDRACHT_LOG_FORMAT",
                        value: v,
                        message: "expected text or json".to_owned(),
                    })
                }
            };
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    /// The SQLite file of the default database.
    fn database_file(&self) -> PathBuf {
        self.data_dir.join("overdracht.db")
    }

    /// [`Settings::database_url`] when that database exists: the commands that read the
    /// data of `serve` never create one (verifying an empty, new database would wrongly
    /// report an intact trail).
    pub fn existing_database_url(&self) -> Result<String, ConfigError> {
        if self.database_url.is_none() {
            let file = self.database_file();
            if !file.exists() {
                return Err(ConfigError::NoDatabase { file });
            }
        }
        Ok(self.database_url())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}?mode=rwc", self.database_file().display()),
        }
    }

    /// The database pool's settings.
    pub fn database_pool(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: std::time::Duration::from_millis(self.database_acquire_timeout_ms.max(1)),
        }
    }

    /// True when only the local demo key is trusted (no real issuer configured).
    pub fn demo_auth(&self) -> bool {
        self.auth.issuers.is_empty()
    }
}

/// A comma-separated list from an environment variable.
fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_run_embedded() {
        let s = Settings::load_from(None, env(&[])).expect("defaults");
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert!(s.demo_auth());
        assert!(s.database_url().starts_with("sqlite://overdracht-data/"));
    }

    #[test]
    fn environment_overrides() {
        let s = Settings::load_from(
            None,
            env(&[
                ("OVERDRACHT_LISTEN", "0.0.0.0:9000"),
                ("OVERDRACHT_BODY_LIMIT_BYTES", "1000"),
                ("OVERDRACHT_ISSUER", "https://idp.example"),
                ("OVERDRACHT_ISSUER_JWKS_FILE", "/etc/jwks.json"),
            ]),
        )
        .expect("env");
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.limits.body_limit_bytes, 1000);
        assert!(!s.demo_auth());
    }

    #[test]
    fn policy_settings_from_the_environment() {
        let s = Settings::load_from(
            None,
            env(&[
                ("OVERDRACHT_AGREEMENTS_DIR", "/etc/overdracht/agreements"),
                ("OVERDRACHT_GRACE_PERIOD_DAYS", "14"),
                ("OVERDRACHT_ADMINS", "11112222:900000900, 11112222:900000901"),
                ("OVERDRACHT_AGB_CODES", "87654321:01234567, 87654321:01234568"),
            ]),
        )
        .expect("env");
        assert_eq!(s.policy.agreements_dir.as_deref(), Some(Path::new("/etc/overdracht/agreements")));
        assert_eq!(s.policy.grace_period_days, Some(14));
        assert_eq!(s.policy.admins, ["11112222:900000900", "11112222:900000901"]);
        assert_eq!(s.policy.agb_codes["87654321"], ["01234567", "01234568"]);
        assert!(!s.policy.demo_examples, "not settable from outside");
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let e = Settings::load_from(None, env(&[("OVERDRACHT_CONCURRENCY_LIMIT", "many")])).expect_err("must fail");
        assert!(e.to_string().contains("OVERDRACHT_CONCURRENCY_LIMIT"));
    }

    #[test]
    fn toml_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("o.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:1\"\n[limits]\nconcurrency_limit = 3\n[[auth.issuers]]\nissuer = \"x\"\npublic_key_file = \"k.pem\"\n",
        )
        .expect("write");
        let s = Settings::load_from(Some(&p), env(&[])).expect("file");
        assert_eq!(s.limits.concurrency_limit, 3);
        assert_eq!(s.auth.issuers.len(), 1);
        assert_eq!(s.limits.body_limit_bytes, Limits::default().body_limit_bytes);
    }

    #[test]
    fn unknown_extensions_setting_from_file_and_environment() {
        use crate::validate::UnknownExtensions;
        assert_eq!(
            Settings::load_from(None, env(&[])).expect("defaults").validation.unknown_extensions,
            UnknownExtensions::Information
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("o.toml");
        std::fs::write(&p, "[validation]\nunknown_extensions = \"warning\"\n").expect("write");
        let s = Settings::load_from(Some(&p), env(&[])).expect("file");
        assert_eq!(s.validation.unknown_extensions, UnknownExtensions::Warning);
        let s = Settings::load_from(Some(&p), env(&[("OVERDRACHT_UNKNOWN_EXTENSIONS", "error")])).expect("env");
        assert_eq!(s.validation.unknown_extensions, UnknownExtensions::Error);
        std::fs::write(&p, "[validation]\nunknown_extensions = \"loud\"\n").expect("write");
        assert!(Settings::load_from(Some(&p), env(&[])).is_err());
        let e = Settings::load_from(None, env(&[("OVERDRACHT_UNKNOWN_EXTENSIONS", "loud")])).expect_err("must fail");
        assert!(e.to_string().contains("OVERDRACHT_UNKNOWN_EXTENSIONS"));
    }
}
