//! Delivery to receiving FHIR servers: the client (wiremock on the far side), `overdracht deliver`, the outbox of `serve`, and a real FHIR server (Medplum).
//!
//! One test binary per area (linking is the slow part of a build on few cores); each file
//! is a module of it.

#[path = "../common/database.rs"]
mod database;
mod service;
mod support;

mod cli;
mod client;
mod external;
mod instances;
mod outbox;
