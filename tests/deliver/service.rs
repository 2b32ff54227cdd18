//! The real `overdracht serve` for delivery tests: start it on a data directory with a
//! delivery target, post handovers, read their delivery state, run `overdracht outbox`.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Zorggroep Zuid: the receiver of the example agreement with GP practice De Linde, the sender
/// of the example record (handovers without an agreement in force are refused).
pub const RECEIVER: &str = "11112222";

pub fn overdracht() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_overdracht"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OVERDRACHT_") {
            c.env_remove(k);
        }
    }
    c
}

/// A service process on a data directory; killed (SIGKILL) when dropped.
pub struct Service {
    child: Child,
    pub base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill");
        assert!(sent.success(), "SIGTERM could not be sent");
    }

    /// Waits for the process to end (at most `within`); its exit status.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the service did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The configuration of a test service: a target with quick retries on `fhir_base`.
pub fn write_config(dir: &Path, fhir_base: &str) -> PathBuf {
    write_config_with(dir, fhir_base, 3, 10_000)
}

pub fn write_config_with(dir: &Path, fhir_base: &str, max_attempts: u32, request_timeout_ms: u64) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agreements");
    write_config_with_agreements(dir, fhir_base, max_attempts, request_timeout_ms, &examples)
}

/// Agreements for senders AGB 10000000 + i (i < n) with the receiver, like the example agreement
/// of GP practice De Linde: runs that hand over from many senders need one each.
pub fn many_sender_agreements(dir: &Path, n: usize) -> PathBuf {
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agreements/de-linde-to-zorggroep-zuid.json"),
        )
        .expect("example agreement"),
    )
    .expect("agreement JSON");
    let out = dir.join("agreements");
    std::fs::create_dir_all(&out).expect("agreements dir");
    for i in 0..n {
        let agb = format!("{:08}", 10_000_000 + i);
        let mut a = template.clone();
        a["id"] = Value::String(format!("sender-{agb}"));
        a["sender"] = serde_json::json!({"name": format!("GP practice {agb}"), "kind": "gp-practice", "agb": agb});
        std::fs::write(out.join(format!("sender-{agb}.json")), a.to_string()).expect("write agreement");
    }
    out
}

pub fn write_config_with_agreements(
    dir: &Path,
    fhir_base: &str,
    max_attempts: u32,
    request_timeout_ms: u64,
    agreements: &Path,
) -> PathBuf {
    let path = dir.join("overdracht.toml");
    // The sender is the organisation in the token: the test token is De Linde's
    // (URA 87654321), and the AGB codes the agreements name are configured as its identities.
    let mut agbs: Vec<String> = std::fs::read_dir(agreements)
        .expect("agreements dir")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|a| a["sender"]["agb"].as_str().map(|s| format!("\"{s}\"")))
        .collect();
    agbs.sort();
    let text = format!(
        r#"log = "overdracht=debug,info"
[auth]
insecure_trust_demo_key = true
[policy]
agreements_dir = "{agreements}"
[policy.agb_codes]
"{GP_URA}" = [{agbs}]
[delivery]
concurrency = 4
poll_interval_ms = 1000
lease_grace_ms = 1000
[[delivery.targets]]
receiver = "{RECEIVER}"
base_url = "{fhir_base}"
request_timeout_ms = {request_timeout_ms}
max_attempts = {max_attempts}
backoff = {{ initial_ms = 50, max_ms = 200, multiplier = 2.0 }}
"#,
        agreements = agreements.display(),
        agbs = agbs.join(", ")
    );
    std::fs::write(&path, text).expect("config");
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The database of the service whose data directory is `data_dir` (see
/// `tests/common/database.rs`: a SQLite file there, or the PostgreSQL database made for it).
pub async fn database_url(data_dir: &Path) -> String {
    crate::database::database_url(data_dir).await
}

/// `overdracht` for the data directory: on PostgreSQL with its database's URL.
pub fn overdracht_for(data_dir: &Path) -> Command {
    let mut c = overdracht();
    if let Ok(url) = std::fs::read_to_string(data_dir.join("postgres-database-url")) {
        c.env("OVERDRACHT_DATABASE_URL", url);
    }
    c
}

/// A connection to the service's database of its own.
pub async fn database(data_dir: &Path) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = database_url(data_dir).await;
    <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("database")
}

pub async fn start(data_dir: &Path, config: &Path, port: u16) -> Service {
    let _ = database_url(data_dir).await;
    let child = overdracht_for(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("serve.log")).expect("log file"),
        ))
        .spawn()
        .expect("serve starts");
    let service = Service { child, base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::get(format!("{}/health/live", service.base)).await.is_ok_and(|r| r.status().is_success()) {
            return service;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not come up on port {port}");
}

/// De Linde GP practice (URA), whose HIS the test token is.
pub const GP_URA: &str = "87654321";

pub fn token(data_dir: &Path) -> String {
    let out = overdracht()
        .args(["token", "--uzi", "900012345", "--role", "01.015", "--ura", GP_URA, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn example_record() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/records/gp-frail-elderly.stu3.json"))
        .expect("example")
}

/// `POST /handovers?receiver=...&<query>`; the new handover's id.
pub async fn post_handover(s: &Service, token: &str, query: &str, body: Vec<u8>) -> String {
    post_handover_answered(s, token, query, body, &[201]).await
}

/// `POST /handovers?receiver=...&<query>` answered with one of `statuses` (200: the same
/// record was already stored); the handover's id.
pub async fn post_handover_answered(s: &Service, token: &str, query: &str, body: Vec<u8>, statuses: &[u16]) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}/handovers?receiver=ura%7C{RECEIVER}{query}", s.base))
        .bearer_auth(token)
        .header("Content-Type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    assert!(statuses.contains(&status), "{status}: {}", r.text().await.unwrap_or_default());
    let v: Value = r.json().await.expect("json");
    v["id"].as_str().expect("id").to_owned()
}

/// `n` different handovers of the example record (the bytes differ by trailing spaces, so
/// each is a handover of its own; their resources are the same ones).
pub async fn post_handovers(s: &Service, token: &str, n: usize) -> Vec<String> {
    let example = example_record();
    let mut ids = vec![];
    for i in 0..n {
        let mut body = example.clone();
        body.extend(std::iter::repeat_n(b' ', i));
        ids.push(post_handover(s, token, "", body).await);
    }
    ids
}

pub async fn delivery(s: &Service, token: &str, id: &str) -> Value {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/handovers/{id}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    v["delivery"].clone()
}

/// Waits until every handover's delivery is in `state`.
pub async fn wait_for(s: &Service, token: &str, ids: &[String], state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut states = vec![];
        for id in ids {
            states.push(delivery(s, token, id).await["state"].as_str().unwrap_or("none").to_owned());
        }
        if states.iter().all(|x| x == state) {
            return;
        }
        assert!(Instant::now() < deadline, "not all {state}: {states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `Type/id` of every entry of every stored handover's Bundle, read from the database.
pub async fn stored_entry_urls(data_dir: &Path) -> HashSet<String> {
    let mut db = database(data_dir).await;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT output_bundle FROM handovers").fetch_all(&mut db).await.expect("query");
    let _ = sqlx::Connection::close(db).await;
    let mut urls = HashSet::new();
    for (b,) in rows {
        let v: Value = serde_json::from_str(&b).expect("bundle");
        for e in v["entry"].as_array().expect("entries") {
            urls.insert(e["request"]["url"].as_str().expect("url").to_owned());
        }
    }
    urls
}

pub fn outbox_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    overdracht_for(data_dir).arg("outbox").args(args).arg("--data-dir").arg(data_dir).output().expect("outbox")
}

/// Waits until `overdracht outbox list` reports `n` delivered and nothing else; its summary.
pub fn wait_all_delivered(data_dir: &Path, n: usize, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let want = format!("queued 0, in-flight 0, retrying 0, delivered {n}, dead-letter 0");
    loop {
        let out = outbox_cli(data_dir, &["list"]);
        let summary = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if summary.contains(&want) {
            return summary;
        }
        assert!(Instant::now() < deadline, "not all delivered: {summary}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
