//! The database of a test: a SQLite file in the test's directory (the default), or, with
//! `OVERDRACHT_TEST_DATABASE=postgres`, a fresh PostgreSQL database of its own (random
//! name) on the server `OVERDRACHT_TEST_POSTGRES_URL` names (a URL with a database the
//! test may connect to for `CREATE DATABASE`, e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
//! `.ci/run` starts such a server and runs the store, API, audit and delivery suites on both.
#![allow(dead_code)]

use std::path::Path;

/// True when the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    match std::env::var("OVERDRACHT_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("OVERDRACHT_TEST_DATABASE={other}: use sqlite or postgres"),
    }
}

/// The PostgreSQL server for tests that need one, or a loud panic saying how to give one.
pub fn postgres_server() -> String {
    std::env::var("OVERDRACHT_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("this test needs PostgreSQL: set OVERDRACHT_TEST_POSTGRES_URL=postgres://user@host:port/postgres (.ci/run does)")
    })
}

/// A fresh, empty PostgreSQL database; its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::{Connection, Executor};
    let server = postgres_server();
    let (base, _) = server.rsplit_once('/').expect("OVERDRACHT_TEST_POSTGRES_URL names a database");
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let name = format!("overdracht_test_{}", hex::encode(b));
    let mut c = sqlx::PgConnection::connect(&server).await.expect("connect to OVERDRACHT_TEST_POSTGRES_URL");
    // Safe: a generated name of hex digits.
    c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    let _ = c.close().await;
    format!("{base}/{name}")
}

/// The database URL of a test whose files live in `dir`. On PostgreSQL one database per
/// directory: opened again on the same directory (a restart, a second process), it is the
/// same database.
pub async fn database_url(dir: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}?mode=rwc", dir.join("overdracht.db").display());
    }
    let marker = dir.join("postgres-database-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    let url = fresh_postgres_database().await;
    std::fs::create_dir_all(dir).expect("test directory");
    std::fs::write(&marker, &url).expect("remember the database");
    url
}

/// Says loudly that a test does not apply to PostgreSQL (it works on the SQLite file
/// itself); true when the caller should return.
pub fn skip_on_postgres(why: &str) -> bool {
    if on_postgres() {
        eprintln!("SKIPPED on PostgreSQL: {why}");
    }
    on_postgres()
}
