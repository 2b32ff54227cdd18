//! Helpers for the delivery tests: Bundles to send, quick targets, and a fake FHIR
//! server (a wiremock responder) that stores what it is sent and can be told to fail.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use overdracht::convert::{convert, ConvertOptions};
use overdracht::deliver::{Backoff, Target};
use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

/// The example records converted to transaction Bundles.
pub fn example_bundles() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/records");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("examples/records").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).expect("example record");
            convert(&bytes, &ConvertOptions::default()).expect("example converts").bundle()
        })
        .collect()
}

/// A two-entry transaction: a Patient and an Observation that refers to it by `urn:uuid:`.
pub fn small_bundle() -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b6c1d2e-0000-5000-8000-000000000001",
         "resource": {"resourceType": "Patient", "id": "0b6c1d2e-0000-5000-8000-000000000001"},
         "request": {"method": "PUT", "url": "Patient/0b6c1d2e-0000-5000-8000-000000000001"}},
        {"fullUrl": "urn:uuid:0b6c1d2e-0000-5000-8000-000000000002",
         "resource": {"resourceType": "Observation", "id": "0b6c1d2e-0000-5000-8000-000000000002", "status": "final",
                      "code": {"text": "weight"}, "subject": {"reference": "urn:uuid:0b6c1d2e-0000-5000-8000-000000000001"}},
         "request": {"method": "PUT", "url": "Observation/0b6c1d2e-0000-5000-8000-000000000002"}}
    ]})
}

/// A target with millisecond backoff, so that retry tests stay fast.
pub fn quick_target(base_url: &str) -> Target {
    let mut t = Target::default_for(base_url);
    t.backoff = Backoff { initial_ms: 5, max_ms: 40, multiplier: 2.0 };
    t.max_attempts = 5;
    t.request_timeout_ms = 2_000;
    t.connect_timeout_ms = 500;
    t
}

pub fn fhir_json(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(serde_json::to_vec(&body).expect("json"), "application/fhir+json")
}

pub fn outcome(code: &str, diagnostics: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]})
}

/// A response Bundle with one entry per status.
pub fn response_bundle(kind: &str, statuses: &[u16]) -> Value {
    let entries: Vec<Value> = statuses
        .iter()
        .map(|s| {
            let mut r = json!({"status": s.to_string()});
            if *s >= 300 {
                r["outcome"] = outcome("processing", &format!("entry failed with {s}"));
            }
            json!({"response": r})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

/// The request body as JSON.
pub fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// What a fake server does with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Store the entries and answer properly.
    None,
    /// Answer with this status (and `Retry-After: 0` for 429/503), storing nothing.
    Status(u16),
    /// Answer with this status and an OperationOutcome saying this, storing nothing.
    Saying(u16, &'static str),
    /// Store the entries, then answer too late (the client times out): the answer is lost,
    /// not the data.
    SlowAfterStoring(Duration),
    /// Store the entries, then answer 200 with something that is not a Bundle.
    MalformedAfterStoring,
    /// 501 to transactions (the server only does batches).
    RefuseTransactions,
}

/// Picks the fault of the n-th request (0-based) from its number and body.
type Plan = dyn Fn(u64, &Value) -> Fault + Send + Sync;

/// A FHIR server in memory: `PUT`s counted by `Type/id`, faults chosen per request.
#[derive(Clone)]
pub struct FakeFhir {
    pub state: Arc<Mutex<State>>,
    plan: Arc<Plan>,
}

#[derive(Default, Debug)]
pub struct State {
    /// `Type/id` → number of times it was written.
    pub writes: HashMap<String, u32>,
    pub requests: u64,
}

impl FakeFhir {
    /// `plan(n, body)` picks the fault of the n-th request (0-based).
    pub fn new(plan: impl Fn(u64, &Value) -> Fault + Send + Sync + 'static) -> FakeFhir {
        FakeFhir { state: Arc::default(), plan: Arc::new(plan) }
    }

    pub fn stored(&self) -> usize {
        self.state.lock().expect("lock").writes.len()
    }

    pub fn writes(&self) -> HashMap<String, u32> {
        self.state.lock().expect("lock").writes.clone()
    }

    pub fn requests(&self) -> u64 {
        self.state.lock().expect("lock").requests
    }

    fn store(&self, b: &Value) -> Value {
        let kind = if b["type"] == "batch" { "batch-response" } else { "transaction-response" };
        let entries = b["entry"].as_array().cloned().unwrap_or_default();
        let mut st = self.state.lock().expect("lock");
        let mut out = vec![];
        for e in &entries {
            let url = e["request"]["url"].as_str().unwrap_or("?").to_owned();
            let n = st.writes.entry(url.clone()).or_insert(0);
            *n += 1;
            out.push(json!({"response": {"status": if *n == 1 { "201 Created" } else { "200 OK" }, "location": url}}));
        }
        json!({"resourceType": "Bundle", "type": kind, "entry": out})
    }
}

impl Respond for FakeFhir {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let b = body(request);
        let n = {
            let mut st = self.state.lock().expect("lock");
            st.requests += 1;
            st.requests - 1
        };
        match (self.plan)(n, &b) {
            Fault::None => fhir_json(200, self.store(&b)),
            Fault::RefuseTransactions if b["type"] == "transaction" => {
                fhir_json(501, outcome("not-supported", "transactions are not supported"))
            }
            Fault::RefuseTransactions => fhir_json(200, self.store(&b)),
            Fault::Status(s) => {
                let t = fhir_json(s, outcome("transient", "try again"));
                if s == 429 || s == 503 {
                    t.insert_header("Retry-After", "0")
                } else {
                    t
                }
            }
            Fault::Saying(s, text) => fhir_json(s, outcome("processing", text)),
            Fault::SlowAfterStoring(d) => fhir_json(200, self.store(&b)).set_delay(d),
            Fault::MalformedAfterStoring => {
                self.store(&b);
                ResponseTemplate::new(200).set_body_string("<html>OK</html>")
            }
        }
    }
}
