//! # overdracht
//!
//! Medical-data handover for Dutch GZSP care: records from a patient's GP or
//! paediatrician become FHIR R4 nl-core resources for the lead practitioner.
//!
//! Data moves one way through the stages of this crate:
//!
//! ```text
//! outside input ──► source::<format> ──► model (zib concepts, tagged by data category) ──► fhir (R4 nl-core)
//!       ──► validate ──► policy (agreement + team + consent) ──► store + audit ──► deliver (outbox)
//! ```
//!
//! Each stage has one home (a module) and a narrow, typed interface; no stage reaches
//! back into an earlier one. The command line (`src/main.rs`) and the HTTP API are thin
//! shells over the same library calls, chiefly [`convert::convert`].

pub mod api;
pub mod audit;
pub mod batch;
pub mod config;
pub mod convert;
pub mod deliver;
pub mod diagnostics;
pub mod fhir;
pub mod handover;
pub mod model;
pub mod policy;
pub mod report;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod terminology;
pub mod validate;
