//! The security suite: one test per finding of the independent review, each
//! written to fail on the code the review found and to pass since the fix. Compiled into the
//! `api` test binary (`tests/api/main.rs`), with its `TestApp` helpers.

pub mod authz;
pub mod limits;
pub mod review;
