//! The HTTP API for HIS and EHR systems (axum).
//!
//! A sender's HIS posts a patient record to `/handovers`; the handler hands it to
//! [`crate::handover::receive`] (conversion with the same library call as the command line,
//! the transfer decision, minimisation, storage, audit and outbox in one transaction) and
//! answers with the summary. `/fhir/$convert`
//! and `/fhir/$validate` are the stateless operations. Every endpoint that takes or shows
//! patient data needs a bearer token ([`auth`]); every error is a FHIR OperationOutcome
//! ([`error`]).
//!
//! Modules: [`startup`] builds the app (routes and layers), [`auth`] verifies and mints
//! tokens, [`input`] parses media types and party identifiers, [`handovers`] and [`fhir`]
//! are the endpoints, [`health`], [`metrics`] and [`openapi`] serve operators, and
//! [`validate`] adapts the validator stage. [`access_control`] (policy engine, agreements,
//! a patient's facts), [`facade`] (the FHIR read facade), [`care_team`] (teams and
//! consents), [`audit_hook`] (decisions into
//! the audit trail), [`demo`] (the built-in example agreements, teams and consents).
//! [`report`] (the contracting evidence report).

pub mod access_control;
pub mod audit;
pub mod audit_hook;
pub mod auth;
pub mod care_team;
pub mod demo;
pub mod error;
pub mod facade;
pub mod fhir;
pub mod guard;
pub mod handovers;
pub mod health;
pub mod input;
pub mod jwks;
pub mod metrics;
pub mod openapi;
pub mod report;
pub mod startup;
pub mod state;
pub mod validate;

pub use startup::{Application, StartupError};
