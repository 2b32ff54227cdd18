//! Conversion: the command line, golden outputs, the HL7v3 and FHIR XML readers, leftovers, cross-route agreement, property and fuzz-corpus tests.
//!
//! One test binary per area (linking is the slow part of a build on few cores); each file
//! is a module of it.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod cross_route;
mod fhir_xml;
mod fuzz_corpus;
mod golden;
mod hl7v3;
mod hl7v3_bundle;
mod hl7v3_fuzz_corpus;
mod hl7v3_reference;
mod leftovers;
mod oracle;
mod properties;
