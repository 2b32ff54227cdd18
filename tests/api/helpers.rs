//! One helper to start the service for a test, as zero2prod does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use overdracht::api::auth::{Claims, DemoKey};
use overdracht::api::Application;
use overdracht::config::{Settings, DEMO_ISSUER};
use overdracht::store::Store;
use serde_json::Value;

/// Everything any test in this binary logged (one global subscriber per process).
pub fn captured_logs() -> String {
    let buf = log_buffer().lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&buf).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = log_buffer().lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Verbose on purpose: the BSN must not appear at any level we emit.
        overdracht::telemetry::init(
            "debug,hyper=info,hyper_util=info,reqwest=info,h2=info",
            overdracht::config::LogFormat::Text,
            || Capture,
        );
    });
}

pub struct TestApp {
    pub address: String,
    /// The app's database (SQLite file or PostgreSQL database, see `crate::database`).
    pub database_url: String,
    pub store: Store,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data_dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.policy.agreements_dir = Some(test_agreements(data_dir.path()));
    settings.auth.insecure_trust_demo_key = true;
    configure(&mut settings);
    if crate::database::on_postgres() && settings.database_url.is_none() {
        settings.database_url = Some(crate::database::database_url(&settings.data_dir).await);
    }
    let database_url = settings.database_url();
    let app = Application::build(&settings).await.expect("app builds");
    let address = format!("http://{}", app.addr());
    let store = app.store();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp { address, database_url, store, data_dir, client: reqwest::Client::new(), shutdown: Some(tx), server }
}

/// Agreements covering every category from the example records' senders (and the test
/// token's organisation) to the test receivers, so that tests about other things are not
/// refused for want of an agreement. Access tests use `examples/agreements`.
fn test_agreements(data_dir: &Path) -> PathBuf {
    let dir = data_dir.join("test-agreements");
    std::fs::create_dir_all(&dir).expect("agreements dir");
    let categories: Vec<&str> = overdracht::model::DataCategory::ALL.iter().map(|c| c.code()).collect();
    let senders = [("agb", "01234567"), ("agb", "06010101"), ("ura", SENDER_URA)];
    for (i, (kind, sender)) in senders.iter().enumerate() {
        for receiver in [RECEIVER_URA, "99998888"] {
            let a = serde_json::json!({
                "format": "overdracht-agreement/1",
                "id": format!("test-{i}-{receiver}"),
                "version": "1",
                "title": "test agreement",
                "sender": {"name": "sender", "kind": "gp-practice", *kind: sender},
                "receiver": {"name": "receiver", "kind": "gzsp-provider", "ura": receiver},
                "categories": categories,
                "valid": {"start": "2000-01-01"},
                "legal_basis": "treatment-relationship",
                "purpose": "tests",
                "retention": "P20Y"
            });
            std::fs::write(dir.join(format!("test-{i}-{receiver}.json")), a.to_string()).expect("write agreement");
        }
    }
    dir
}

pub const SENDER_URA: &str = "00001234";
pub const RECEIVER_URA: &str = "87654321";
/// The example's patient BSN (a test BSN that passes the eleven test).
pub const EXAMPLE_BSN: &str = "999911120";

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn example() -> Vec<u8> {
    std::fs::read(repo_file("examples/records/gp-frail-elderly.stu3.json")).expect("example")
}

/// Claims of the demo GP practice's HIS, valid for an hour.
pub fn claims() -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: DEMO_ISSUER.to_owned(),
        sub: "900012345".to_owned(),
        aud: "overdracht".to_owned(),
        exp: now + 3600,
        nbf: now - 5,
        iat: now,
        uzi: "900012345".to_owned(),
        uzi_role: "01.015".to_owned(),
        ura: SENDER_URA.to_owned(),
        purpose_of_use: "TREAT".to_owned(),
    }
}

impl TestApp {
    /// A connection to the app's database of its own (to change what the app cannot).
    pub async fn database(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url).await.expect("connect to the database")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A token signed with this app's demo key.
    pub fn token(&self) -> String {
        self.token_with(|_| {})
    }

    pub fn token_with(&self, f: impl FnOnce(&mut Claims)) -> String {
        let mut c = claims();
        f(&mut c);
        DemoKey::load_or_create(self.data_dir.path()).expect("demo key").sign(&c).expect("sign")
    }

    /// `POST /handovers?<query>` with the demo token.
    pub async fn post_handover(&self, query: &str, body: Vec<u8>) -> reqwest::Response {
        self.post(&format!("/handovers?{query}"), self.token(), "application/fhir+json", body).await
    }

    /// `POST <path>` with a token and a media type.
    pub async fn post(
        &self,
        path: &str,
        token: String,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// `n` identical handovers of the example at once; their responses.
    pub async fn parallel_handovers(&self, n: usize) -> Vec<reqwest::Response> {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let client = self.client.clone();
            let url = self.url(&format!("/handovers?{}", receiver_query()));
            let token = self.token();
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("Content-Type", "application/fhir+json")
                    .body(example())
                    .send()
                    .await
                    .expect("request")
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn receiver_query() -> String {
    format!("receiver=ura%7C{RECEIVER_URA}")
}

/// Asserts an OperationOutcome body with the FHIR media type; returns it.
pub async fn assert_outcome(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(ct.starts_with("application/fhir+json"), "content type {ct}");
    let v: Value = r.json().await.expect("json body");
    crate::fhirbolt::assert_round_trips("API OperationOutcome", &v);
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    assert!(v["issue"][0]["diagnostics"].as_str().is_some_and(|d| !d.is_empty()));
    v
}

/// Stores (directly, no API call and no audit entry) the example care team for `bsn` at
/// organisation `ura`, led by `uzi` with `uzi_role`: for tests whose caller must be in the
/// patient's team (the audit views since review R4).
pub async fn store_team_led_by(app: &TestApp, uzi: &str, uzi_role: &str, ura: &str, bsn: &str) {
    let text = std::fs::read_to_string(repo_file("examples/care-teams/frail-elderly-group-care.json")).expect("team");
    let mut t: Value = serde_json::from_str(&text.replace(EXAMPLE_BSN, bsn)).expect("json");
    let id = format!("test-team-{ura}-{uzi}");
    t["id"] = Value::from(id.clone());
    let mut lead = t["participant"][0].clone();
    lead["member"]["identifier"]["value"] = Value::from(uzi);
    lead["role"][1]["coding"][0]["code"] = Value::from(uzi_role);
    lead["onBehalfOf"]["identifier"]["value"] = Value::from(ura);
    t["participant"] = Value::Array(vec![lead]);
    t["managingOrganization"][0]["identifier"]["value"] = Value::from(ura);
    let mut tx = app.store.begin().await.expect("begin");
    let by = overdracht::store::Writer { uzi, ura, at: "2026-01-01T00:00:00Z" };
    tx.put_care_team(&id, bsn, ura, &t.to_string(), &by).await.expect("team");
    tx.commit().await.expect("commit");
}

// ---------------------------------------------------------------------------------------
// Shared by the access, security and report tests: tokens of any practitioner, JSON files
// of the repository, PUT/GET with a token, and the example agreements made open-ended.

/// A JSON file of the repository.
pub fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo_file(rel)).expect("file")).expect("json")
}

/// A token of this app's demo key for practitioner `uzi` with `role` at organisation `ura`.
pub fn token(app: &TestApp, uzi: &str, role: &str, ura: &str) -> String {
    app.token_with(|c| {
        c.uzi = uzi.to_owned();
        c.sub = uzi.to_owned();
        c.uzi_role = role.to_owned();
        c.ura = ura.to_owned();
    })
}

/// `PUT <path>` of a FHIR JSON body with a token.
pub async fn put(app: &TestApp, path: &str, tok: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(tok)
        .header("Content-Type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("put")
}

/// `GET <path>` with a token.
pub async fn get(app: &TestApp, path: &str, tok: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(tok).send().await.expect("get")
}

/// The example agreements (`examples/agreements`) without their end date, so that tests do
/// not expire, in a folder of `data_dir`; set it as `policy.agreements_dir`.
pub fn open_ended_example_agreements(data_dir: &Path) -> PathBuf {
    let dir = data_dir.join("example-agreements");
    std::fs::create_dir_all(&dir).expect("dir");
    for f in ["de-linde-to-zorggroep-zuid.json", "amalia-paediatrics-to-zorggroep-zuid.json"] {
        let mut a = read_json(&format!("examples/agreements/{f}"));
        a["valid"].as_object_mut().expect("valid").remove("end");
        std::fs::write(dir.join(f), a.to_string()).expect("write");
    }
    dir
}
