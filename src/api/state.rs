//! What every handler can reach: the store, the token verifier, metrics, the validator,
//! access control.

use std::sync::Arc;

use super::access_control::AccessControl;
use super::auth::Verifier;
use super::metrics::Metrics;
use super::validate::ResourceValidator;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub verifier: Arc<Verifier>,
    pub metrics: Arc<Metrics>,
    pub validator: Arc<dyn ResourceValidator>,
    /// The access policy, the agreements in force and the administrators.
    pub access: AccessControl,
    /// Who may see the whole audit trail and review flagged entries.
    pub audit: Arc<crate::config::AuditSettings>,
    /// Protection of the service itself (caps per request).
    pub limits: Arc<crate::config::Limits>,
    /// Concurrency permits and the rate limit of requests without a valid token.
    pub guard: Arc<super::guard::Guard>,
    /// Set at the shutdown signal: `/health/ready` answers 503 `draining` from then on.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}
