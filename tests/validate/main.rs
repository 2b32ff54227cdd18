//! The validator: golden outputs, mutations, conformance with the reference validator, packages, robustness, reference data.
//!
//! One test binary per area (linking is the slow part of a build on few cores); each file
//! is a module of it.

mod bom;
mod conformance;
mod golden;
mod mutations;
mod packages;
mod reference;
mod robustness;
