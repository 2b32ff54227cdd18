//! Delivery: handovers to the receiving provider's FHIR server, nothing lost and nothing
//! duplicated.
//!
//! A handover becomes a FHIR transaction Bundle of `PUT Type/id` entries whose ids are
//! derived from the sender, the patient and the source identifiers (UUID v5, see
//! [`crate::fhir::ids`]). That makes delivery
//! *idempotent*: sending the same Bundle twice leaves the server as sending it once. So
//! the delivery side never has to know whether an attempt that timed out arrived; it sends
//! again. At-least-once delivery plus idempotent writes gives an exactly-once effect.
//!
//! - [`target`]: where each receiver's server is, how to authenticate, timeouts, attempts
//!   and backoff (a JSON file, see `examples/delivery-targets.json`).
//! - [`client`]: one target's HTTP client: an attempt, and a delivery with retries.
//! - [`response`]: what each answer means (delivered, retry, refused for good), as
//!   unit-tested pure functions; the rules are tabled there.
//! - [`bundle`]: checking what is sent, and the batch a server gets when it refuses
//!   transactions.
//! - [`push`]: `overdracht deliver`, many Bundles from files to one target.

mod auth;
pub mod bundle;
pub mod client;
pub mod metrics;
pub mod outbox;
pub mod push;
pub mod response;
pub mod target;

pub use auth::TokenError;
pub use client::{Delivery, EntryFailure, Failure, FailureKind, FhirClient, Pending, Step};
pub use response::Mode;
pub use target::{Auth, Backoff, Target, Targets, Tls};

/// Why delivery could not even start: configuration that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliverError {
    #[error("{0}")]
    Config(String),
}
