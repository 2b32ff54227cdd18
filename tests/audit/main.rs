//! The audit trail: its hash chain and tamper detection.
//!
//! One test binary per area (linking is the slow part of a build on few cores); each file
//! is a module of it.

#[path = "../common/database.rs"]
mod database;

mod chain;
mod tamper;
mod upgrade;
