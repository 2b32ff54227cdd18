//! The HTTP API for HIS and EHR systems (axum).
//!
//! A sender's HIS posts a patient record to `/handovers`; overdracht converts it with the
//! same library call as the command line ([`crate::convert::convert`]), stores source,
//! output and parties in one transaction, and answers with a summary. `/fhir/$convert`
//! and `/fhir/$validate` are the stateless operations. Every endpoint that takes or shows
//! patient data needs a bearer token ([`auth`]); every error is a FHIR OperationOutcome
//! ([`error`]).
//!
//! Modules: [`startup`] builds the app (routes and layers), [`auth`] verifies and mints
//! tokens, [`input`] parses media types and party identifiers, [`handovers`] and [`fhir`]
//! are the endpoints, [`health`], [`metrics`] and [`openapi`] serve operators, and
//! [`validate`] adapts the validator stage.

pub mod audit;
pub mod auth;
pub mod error;
pub mod fhir;
pub mod handovers;
pub mod health;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod startup;
pub mod state;
pub mod validate;

pub use startup::{Application, StartupError};
