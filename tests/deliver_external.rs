//! Delivery to a real FHIR server: Medplum's FHIR router over its in-memory repository,
//! run by `tests/fhir-server/medplum/server.js`. Needs Node.js and
//! `npm ci --prefix tests/fhir-server/medplum`; `.ci/run` does both and runs these with
//! `cargo test --test deliver_external -- --ignored external_`.
//!
//! `EXTERNAL_FAULT_RUN_N` sets the number of handovers of the client fault run (default
//! 200), `EXTERNAL_OUTBOX_RUN_N` that of the service's outbox fault run (default 200).

#[path = "common/database.rs"]
mod database;
#[path = "deliver/service.rs"]
mod service;
#[path = "deliver/support.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use overdracht::deliver::{FhirClient, Mode};
use serde_json::Value;
use support::*;

const NEEDS: &str = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)";

/// The server process; killed when dropped.
struct Medplum {
    child: Child,
    base: String,
}

impl Drop for Medplum {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_medplum(env: &[(&str, &str)]) -> Medplum {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fhir-server/medplum");
    assert!(
        dir.join("node_modules/@medplum/fhir-router").is_dir(),
        "{} has no node_modules: run `npm ci --prefix {}` first",
        dir.display(),
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg("server.js").current_dir(&dir).env("PORT", "0").stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("node is installed and on PATH");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("server announces its address");
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected: {line}")).to_owned();
    Medplum { child, base }
}

/// `Type/id` of every entry.
fn entry_urls(b: &Value) -> Vec<String> {
    b["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["request"]["url"].as_str().map(str::to_owned))
        .collect()
}

/// The ids the server holds for a resource type, every page of the search.
async fn ids_on_server(http: &reqwest::Client, base: &str, rtype: &str) -> Vec<String> {
    let mut ids = vec![];
    let mut offset = 0;
    loop {
        let url = format!("{base}/{rtype}?_count=1000&_offset={offset}&_elements=id");
        let page: Value = http.get(&url).send().await.expect("search").json().await.expect("searchset");
        let entries = page["entry"].as_array().cloned().unwrap_or_default();
        ids.extend(entries.iter().filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned)));
        if entries.len() < 1000 {
            return ids;
        }
        offset += 1000;
    }
}

/// Asserts that the server holds each of `urls` exactly once, and nothing else of those types.
async fn assert_each_once(base: &str, urls: &[String]) {
    let http = reqwest::Client::new();
    let mut by_type: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for u in urls {
        let (t, id) = u.split_once('/').expect("Type/id");
        by_type.entry(t).or_default().insert(id);
    }
    for (t, expected) in &by_type {
        let found = ids_on_server(&http, base, t).await;
        let distinct: HashSet<&str> = found.iter().map(String::as_str).collect();
        assert_eq!(found.len(), distinct.len(), "{t}: a resource is on the server twice");
        assert_eq!(&distinct, expected, "{t}: the server holds other {t} resources than were delivered");
    }
}

async fn deliver_examples_twice(env: &[(&str, &str)], mode: Mode) {
    let server = start_medplum(env);
    let client = FhirClient::new(&quick_target(&server.base)).expect("client");
    let bundles = example_bundles();
    let mut urls = vec![];
    for b in &bundles {
        urls.extend(entry_urls(b));
    }
    for round in 0..2 {
        for b in &bundles {
            let d = client.deliver(b.clone()).await;
            assert_eq!(d.result, Ok(mode), "round {round}");
        }
    }
    // One by one as well: a search by _id finds exactly one.
    let http = reqwest::Client::new();
    for u in &urls {
        let (t, id) = u.split_once('/').expect("Type/id");
        let found: Value =
            http.get(format!("{}/{t}?_id={id}", server.base)).send().await.expect("search").json().await.expect("json");
        assert_eq!(found["entry"].as_array().map(Vec::len), Some(1), "{u}");
    }
    assert_each_once(&server.base, &urls).await;
}

#[tokio::test]
#[ignore = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)"]
async fn external_medplum_examples_delivered_twice_exist_once() {
    deliver_examples_twice(&[], Mode::Transaction).await;
}

#[tokio::test]
#[ignore = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)"]
async fn external_medplum_without_transactions_gets_batches() {
    deliver_examples_twice(&[("NO_TRANSACTIONS", "1")], Mode::Batch).await;
}

/// Copy `i` of a Bundle with its own ids: the first 8 hex digits of every entry id become `i`.
fn renumbered(b: &Value, i: usize) -> Value {
    let mut text = serde_json::to_string(b).expect("json");
    for u in entry_urls(b) {
        if let Some((_, id)) = u.split_once('/') {
            if id.len() > 8 && id.is_char_boundary(8) {
                text = text.replace(id, &format!("{i:08x}{}", &id[8..]));
            }
        }
    }
    serde_json::from_str(&text).expect("json")
}

/// The fault run: N handovers through a flaky Medplum (30% of requests fail: 500, 503 and
/// 429 before storing; a late answer, a malformed answer or a dropped connection after
/// storing), 8 at a time. Every resource must be on the server exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)"]
async fn external_medplum_fault_run() {
    let _ = NEEDS;
    let n: usize = std::env::var("EXTERNAL_FAULT_RUN_N").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let server = start_medplum(&[("FAULT_RATE", "0.3"), ("FAULT_SEED", "8"), ("FAULT_SLOW_MS", "1500")]);
    let mut target = quick_target(&server.base);
    target.request_timeout_ms = 1_000;
    target.max_attempts = 30;
    let client = Arc::new(FhirClient::new(&target).expect("client"));
    let examples = example_bundles();
    let bundles: Vec<Value> = (0..n).map(|i| renumbered(&examples[i % examples.len()], i)).collect();
    let mut urls = vec![];
    for b in &bundles {
        urls.extend(entry_urls(b));
    }
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for b in bundles {
        let (client, semaphore) = (client.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("semaphore");
            client.deliver(b).await
        });
    }
    let (mut attempts, mut delivered) = (0u32, 0usize);
    while let Some(d) = tasks.join_next().await {
        let d = d.expect("task");
        assert!(d.result.is_ok(), "{:?}", d.result);
        delivered += 1;
        attempts += d.attempts;
    }
    let elapsed = started.elapsed();
    let faults: Value =
        reqwest::get(format!("{}/$faults", server.base)).await.expect("faults").json().await.expect("json");
    assert_each_once(&server.base, &urls).await;
    println!(
        "fault run: {n} handovers, {} resources, {delivered} delivered, {attempts} attempts ({} retries), \
         {:.1} s; injected faults {faults}",
        urls.len(),
        attempts as usize - n,
        elapsed.as_secs_f64()
    );
    assert!(elapsed < Duration::from_secs(600));
}

/// The service's outbox under faults: N handovers (each from another sender, so each with
/// resources of its own) posted to `overdracht serve`, delivered in the background to the
/// flaky Medplum; half-way the service is killed with SIGKILL and started again. Every
/// resource of every handover must end up on the server exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)"]
async fn external_medplum_outbox_fault_run_with_kill_9() {
    use service::*;
    let n: usize = std::env::var("EXTERNAL_OUTBOX_RUN_N").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let server = start_medplum(&[("FAULT_RATE", "0.3"), ("FAULT_SEED", "9"), ("FAULT_SLOW_MS", "1500")]);
    let dir = tempfile::tempdir().expect("tmp");
    let agreements = many_sender_agreements(dir.path(), n);
    let config = write_config_with_agreements(dir.path(), &server.base, 30, 1_000, &agreements);
    let port = free_port();
    let token = token(dir.path());
    let example = example_record();
    let started = Instant::now();
    let mut service = start(dir.path(), &config, port).await;
    for i in 0..n {
        if i == n / 2 {
            drop(service); // SIGKILL, with deliveries under way
            service = start(dir.path(), &config, port).await;
        }
        post_handover(&service, &token, &format!("&sender=agb-z%7C{:08}", 10_000_000 + i), example.clone()).await;
    }
    let summary = tokio::task::block_in_place(|| wait_all_delivered(dir.path(), n, Duration::from_secs(600)));
    let elapsed = started.elapsed();
    let urls: Vec<String> = stored_entry_urls(dir.path()).await.into_iter().collect();
    assert_each_once(&server.base, &urls).await;
    let listed = outbox_cli(dir.path(), &["list", "--all", "--json"]);
    let attempts: i64 = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["attempts"].as_i64())
        .sum();
    let faults: Value =
        reqwest::get(format!("{}/$faults", server.base)).await.expect("faults").json().await.expect("json");
    println!(
        "outbox fault run: {n} handovers, {} resources, kill -9 once, {attempts} attempts, {:.1} s; {summary}; \
         injected faults {faults}",
        urls.len(),
        elapsed.as_secs_f64()
    );
    drop(service);
}

/// A test PKI made with the `openssl` command: a CA, a server certificate for 127.0.0.1 and
/// a client certificate, as PEM files in `dir`.
fn make_pki(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Test CA"]]
        .concat());
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for who in ["server", "client"] {
        let (key, csr, pem, ext) =
            (format!("{who}.key"), format!("{who}.csr"), format!("{who}.pem"), format!("{who}.ext"));
        run(&[&["req"][..], &ec, &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={who}")]].concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "1",
            "-extfile",
            &ext,
        ]);
    }
}

/// A server that requires a TLS client certificate (mutual TLS, as with UZI server
/// certificates): delivery works with the target's `tls` settings and fails without.
#[tokio::test]
#[ignore = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)"]
async fn external_medplum_tls_client_certificate() {
    use overdracht::deliver::{FailureKind, Tls};
    let pki = tempfile::tempdir().expect("tmp");
    make_pki(pki.path());
    let p = |f: &str| pki.path().join(f);
    let (cert, key, ca) = (p("server.pem"), p("server.key"), p("ca.pem"));
    let server = start_medplum(&[
        ("TLS_CERT", cert.to_str().expect("utf-8")),
        ("TLS_KEY", key.to_str().expect("utf-8")),
        ("TLS_CA", ca.to_str().expect("utf-8")),
    ]);
    assert!(server.base.starts_with("https://"));
    let mut target = quick_target(&server.base);
    target.max_attempts = 1;
    target.tls = Some(Tls { client_cert_pem: None, client_key_pem: None, ca_pem: Some(p("ca.pem")) });
    let without = FhirClient::new(&target).expect("client").deliver(small_bundle()).await;
    assert_eq!(without.result.expect_err("no client certificate").kind, FailureKind::Exhausted);

    target.tls = Some(Tls {
        client_cert_pem: Some(p("client.pem")),
        client_key_pem: Some(p("client.key")),
        ca_pem: Some(p("ca.pem")),
    });
    let with = FhirClient::new(&target).expect("client").deliver(small_bundle()).await;
    assert_eq!(with.result, Ok(Mode::Transaction));
}

/// The example GP record for patient `bsn`, with no resource ids, no fullUrls and no
/// references (as id-less exports are): before patient-scoped ids, two such records of one
/// GP got the same ids and the second overwrote the first on the receiving server.
fn id_less_record(bsn: &str) -> Vec<u8> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("reference").is_some_and(Value::is_string) {
                    m.remove("reference");
                    m.entry("display").or_insert(Value::String("(no id)".into()));
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/records/gp-frail-elderly.stu3.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).expect("example")).expect("json");
    for e in v["entry"].as_array_mut().expect("entries") {
        let e = e.as_object_mut().expect("entry");
        e.remove("fullUrl");
        e.get_mut("resource").and_then(Value::as_object_mut).expect("resource").remove("id");
    }
    strip(&mut v);
    v.to_string().replace("999911120", bsn).into_bytes()
}

/// Two patients' id-less records from one GP, delivered to a real server: every resource
/// of each is on the server as delivered, and each patient's resources point to their own
/// Patient, which carries their own BSN.
#[tokio::test]
#[ignore = "needs node + npm ci --prefix tests/fhir-server/medplum (run by .ci/run)"]
async fn external_medplum_two_patients_id_less_records_stay_apart() {
    use overdracht::convert::{convert, ConvertOptions};
    let server = start_medplum(&[]);
    let client = FhirClient::new(&quick_target(&server.base)).expect("client");
    let bundles: Vec<Value> = ["999911120", "999911144"]
        .iter()
        .map(|bsn| convert(&id_less_record(bsn), &ConvertOptions::default()).expect("converts").bundle())
        .collect();
    for b in &bundles {
        assert_eq!(client.deliver(b.clone()).await.result, Ok(Mode::Transaction));
    }
    let http = reqwest::Client::new();
    for (b, bsn) in bundles.iter().zip(["999911120", "999911144"]) {
        let entries = b["entry"].as_array().expect("entries");
        let patient = entries.iter().find(|e| e["resource"]["resourceType"] == "Patient").expect("Patient");
        let patient_id = patient["resource"]["id"].as_str().expect("id");
        for e in entries {
            let (t, id) =
                (e["resource"]["resourceType"].as_str().expect("type"), e["resource"]["id"].as_str().expect("id"));
            let held: Value =
                http.get(format!("{}/{t}/{id}", server.base)).send().await.expect("read").json().await.expect("json");
            assert_eq!(held["id"], id, "{t}/{id} is on the server");
            if t == "Patient" {
                assert_eq!(held["identifier"][0]["value"], bsn, "the Patient keeps its own BSN");
            }
            for field in ["subject", "patient"] {
                if let Some(r) = held[field]["reference"].as_str() {
                    assert_eq!(r, format!("Patient/{patient_id}"), "{t}/{id}.{field} points to its own patient");
                }
            }
            // What the server holds is what this patient's Bundle delivered (not overwritten).
            for k in ["code", "valueQuantity", "note", "effectiveDateTime"] {
                assert_eq!(held[k], e["resource"][k], "{t}/{id}.{k}");
            }
        }
    }
    let patients = ids_on_server(&http, &server.base, "Patient").await;
    assert_eq!(patients.len(), 2, "two patients, two Patient resources");
}
