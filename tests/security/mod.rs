//! The security test suite (issue 14): one test per finding of the independent review,
//! compiled into the api test binary (see `tests/api/main.rs`).

pub mod limits;
