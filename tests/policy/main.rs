//! The access policy, agreements and care-team rules (native engine and Rego, property tests).
//!
//! One test binary per area (linking is the slow part of a build on few cores); each file
//! is a module of it.

mod access;
mod agreements;
mod care_team;
