//! What every handler can reach: the store, the token verifier, metrics, the validator.

use std::sync::Arc;

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
}
