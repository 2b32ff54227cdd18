//! The audit trail: its hash chain and tamper detection.
//!
//! One test binary per area (linking is the slow part of a build on few cores); each file
//! is a module of it.

mod chain;
mod tamper;
