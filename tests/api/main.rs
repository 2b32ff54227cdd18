//! API tests: the real service on 127.0.0.1:0 with a temporary data directory, one
//! `TestApp` per test (see `helpers`).

mod access;
mod audit;
mod auth;
#[path = "../common/database.rs"]
mod database;
mod fhir;
#[path = "../common/fhirbolt.rs"]
mod fhirbolt;
mod handovers;
mod health;
mod helpers;
mod jwks;
mod limits;
mod logs;
mod report;
#[path = "../security/mod.rs"]
mod security;
mod token_cli;
