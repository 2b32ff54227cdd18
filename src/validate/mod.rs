//! Output validation and OperationOutcome building.
//!
//! Everything overdracht emits passes through here before it leaves the process.
pub mod outcome;

pub use outcome::{Issue, IssueCode, Outcome, Severity};
