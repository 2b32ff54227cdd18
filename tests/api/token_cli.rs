//! `overdracht token`: mints with the demo key of a data directory, refuses with real issuers.

use std::process::Command;

use crate::helpers::{example, receiver_query, spawn_app};

fn overdracht() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_overdracht"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OVERDRACHT_") {
            c.env_remove(k);
        }
    }
    c
}

/// `overdracht token` for the demo GP with `role`, in `dir`, with extra environment.
fn mint(dir: &std::path::Path, role: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = overdracht();
    c.args(["token", "--uzi", "900012345", "--role", role, "--ura", "00001234", "--data-dir"]).arg(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run")
}

#[tokio::test]
async fn minted_token_is_accepted_by_the_service() {
    let app = spawn_app().await;
    let out = mint(app.data_dir.path(), "01.015", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf8").trim().to_owned();
    let r = app.post(&format!("/handovers?{}", receiver_query()), token, "application/fhir+json", example()).await;
    assert_eq!(r.status(), 201);
}

#[test]
fn token_refuses_with_real_issuers_and_bad_claims() {
    let dir = tempfile::tempdir().expect("dir");
    let out = mint(
        dir.path(),
        "01.015",
        &[("OVERDRACHT_ISSUER", "https://idp.example"), ("OVERDRACHT_ISSUER_JWKS_FILE", "/nonexistent/jwks.json")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("real token issuers"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(!dir.path().join("keys").exists(), "no demo key is created");

    let out = mint(dir.path(), "GP", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("uzi_role"));
}
