//! Open-loop load generator for `bench/handover_load.sh`.
//!
//! Sends requests at a fixed rate (not "as fast as the server answers", which hides queueing:
//! coordinated omission), and measures each latency from the moment the request was due.
//! `--mode handover` posts a 20-resource dossier cut from `examples/records/gp-frail-elderly.stu3.json`,
//! made unique per request (the Bundle id), so every request stores a new handover;
//! `--mode live` requests `GET /health/live` as the baseline; `--mode dump --rate N`
//! writes N of those unique dossiers as NDJSON to standard output (the CLI's input for the
//! same work). `--expect STATUS` makes the run fail unless every answer had that status, so
//! that a benchmark of refusals or 503s can never pass for one of accepted handovers.
//! `--url` may name several instances, comma-separated: request i goes to the (i mod n)-th.
//! `--concurrency N` measures throughput instead (closed loop): N clients each send their
//! next request when the last was answered, for `--seconds`; `achieved_rate` is then the
//! sustained rate of answers. The first answer body of each unexpected status is printed,
//! to say why. `--token` takes one token or several separated by commas (one per sending
//! organisation); requests take them in turn. `--patients new` gives every request (and every
//! dumped dossier) a patient of its own (a BSN that passes the 11-test, unique in the run):
//! the server then inserts every resource (ids include the patient) instead of overwriting
//! the same patient's resources, as a stream of first handovers does; `same` (the default)
//! sends the example's one patient every time.

use std::time::{Duration, Instant};

use serde_json::Value;

struct Args {
    url: String,
    token: String,
    mode: String,
    rate: u64,
    seconds: u64,
    resources: usize,
    expect: Option<u16>,
    concurrency: usize,
    new_patients: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        token: String::new(),
        mode: "handover".into(),
        rate: 500,
        seconds: 10,
        resources: 20,
        expect: None,
        concurrency: 0,
        new_patients: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--url" => a.url = v,
            "--token" => a.token = v,
            "--mode" => a.mode = v,
            "--rate" => a.rate = v.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => a.seconds = v.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--resources" => a.resources = v.parse().map_err(|e| format!("--resources: {e}"))?,
            "--expect" => a.expect = Some(v.parse().map_err(|e| format!("--expect: {e}"))?),
            "--concurrency" => a.concurrency = v.parse().map_err(|e| format!("--concurrency: {e}"))?,
            "--patients" => {
                a.new_patients = match v.as_str() {
                    "new" => true,
                    "same" => false,
                    _ => return Err(format!("--patients: new or same, not {v}")),
                }
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

/// The example cut to the first entries whose conversion yields `n` resources or more.
fn dossier(n: usize) -> Result<Value, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/records/gp-frail-elderly.stu3.json");
    let full: Value =
        serde_json::from_slice(&std::fs::read(path).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let entries = full["entry"].as_array().cloned().unwrap_or_default();
    for k in 1..=entries.len() {
        let mut b = full.clone();
        b["entry"] = Value::Array(entries[..k].to_vec());
        let bytes = serde_json::to_vec(&b).map_err(|e| e.to_string())?;
        let c = overdracht::convert::convert(&bytes, &Default::default()).map_err(|e| e.to_string())?;
        if c.resources.len() >= n {
            eprintln!("dossier: {k} source entries, {} output resources, {} bytes", c.resources.len(), bytes.len());
            return Ok(b);
        }
    }
    Err("the example has too few resources".into())
}

/// The `n`-th BSN from `from` on: the first 8-digit prefix from there with a last digit that
/// passes the eleven test ([`overdracht::model::Bsn`], the service's own check), so no two
/// `n` share one.
fn bsn(from: u64, n: u64) -> String {
    let mut prefix = 10_000_000 + (from + n * 11) % 89_000_000;
    loop {
        for last in 0..10 {
            let candidate = format!("{prefix:08}{last}");
            if overdracht::model::Bsn::parse(&candidate).is_ok() {
                return candidate;
            }
        }
        prefix += 1;
    }
}

/// Dossier `i` of run `run`: the template with a unique Bundle id and, with `new_patient`,
/// a patient of its own (an error if the template names no patient by BSN: the run would
/// send one patient while saying it sent new ones).
fn unique(t: &Value, run: u128, i: u64, new_patient: bool) -> Result<Value, String> {
    let mut b = t.clone();
    b["id"] = Value::String(format!("load-{run}-{i}"));
    if new_patient {
        let value = bsn((run % 1_000_000_007) as u64, i);
        let mut replaced = 0;
        for e in b["entry"].as_array_mut().into_iter().flatten() {
            if e["resource"]["resourceType"] != "Patient" {
                continue;
            }
            for id in e["resource"]["identifier"].as_array_mut().into_iter().flatten() {
                if id["system"] == "http://fhir.nl/fhir/NamingSystem/bsn" {
                    id["value"] = Value::String(value.clone());
                    replaced += 1;
                }
            }
        }
        if replaced == 0 {
            return Err("--patients new: the dossier has no Patient with a BSN to replace".into());
        }
    }
    Ok(b)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().map_err(|e| e.to_string())?;
    let template = if a.mode == "live" { None } else { Some(dossier(a.resources)?) };
    // Unique per run too: a second run against the same server must not replay the first's.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    if a.mode == "dump" {
        let t = template.as_ref().ok_or("no dossier")?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for i in 0..a.rate {
            let b = unique(t, run, i, a.new_patients)?;
            serde_json::to_writer(&mut out, &b).map_err(|e| e.to_string())?;
            std::io::Write::write_all(&mut out, b"\n").map_err(|e| e.to_string())?;
        }
        return std::io::Write::flush(&mut out).map_err(|e| e.to_string());
    }
    let urls: Vec<String> = a.url.split(',').map(str::to_owned).collect();
    let request = {
        let tokens: Vec<String> = a.token.split(',').map(str::to_owned).collect();
        let (client, urls, new_patients) = (client.clone(), urls.clone(), a.new_patients);
        move |i: u64| -> Result<reqwest::RequestBuilder, String> {
            let url = &urls[(i % urls.len() as u64) as usize];
            Ok(match &template {
                Some(t) => {
                    let b = unique(t, run, i, new_patients)?;
                    client
                        .post(format!("{url}/handovers?receiver=ura%7C87654321"))
                        .bearer_auth(&tokens[(i % tokens.len() as u64) as usize])
                        .header("Content-Type", "application/fhir+json")
                        .body(serde_json::to_vec(&b).map_err(|e| e.to_string())?)
                }
                None => client.get(format!("{url}/health/live")),
            })
        }
    };
    let start = Instant::now();
    // (latency, status, body) of every answer (status 0: no answer; the body is kept only
    // when it is not the expected status).
    let mut answers: Vec<(Duration, u16, bytes::Bytes)> = Vec::new();
    let expect = a.expect;
    let answer = move |r: Result<reqwest::Response, reqwest::Error>| async move {
        match r {
            Ok(r) => {
                let s = r.status().as_u16();
                let body = r.bytes().await.unwrap_or_default();
                (s, if expect == Some(s) { bytes::Bytes::new() } else { body })
            }
            Err(e) => (0, bytes::Bytes::from(e.to_string())),
        }
    };
    if a.concurrency > 0 {
        // Closed loop: each client's next request when its last was answered.
        let request = std::sync::Arc::new(request);
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let deadline = start + Duration::from_secs(a.seconds);
        let mut clients = Vec::new();
        for _ in 0..a.concurrency {
            let (request, next) = (request.clone(), next.clone());
            clients.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let req = request(i)?;
                    let sent = Instant::now();
                    let (status, body) = answer(req.send().await).await;
                    answers.push((sent.elapsed(), status, body));
                }
                Ok::<_, String>(answers)
            }));
        }
        for c in clients {
            answers.extend(c.await.map_err(|e| e.to_string())??);
        }
    } else {
        let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
        let total = a.rate * a.seconds;
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
            let req = request(i)?;
            tasks.push(tokio::spawn(async move {
                let (status, body) = answer(req.send().await).await;
                (due.elapsed(), status, body)
            }));
        }
        for t in tasks {
            answers.push(t.await.map_err(|e| e.to_string())?);
        }
    }
    let mut lat = Vec::with_capacity(answers.len());
    let mut errors = 0u64;
    let mut statuses = std::collections::BTreeMap::new();
    let mut first_body = std::collections::BTreeMap::new();
    for (d, s, body) in answers {
        *statuses.entry(s).or_insert(0u64) += 1;
        if a.expect.is_some_and(|e| e != s) {
            first_body.entry(s).or_insert_with(|| String::from_utf8_lossy(&body).chars().take(300).collect::<String>());
        }
        if !(200..300).contains(&s) {
            errors += 1;
        }
        lat.push(d);
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort();
    println!(
        "mode={} instances={} concurrency={} target_rate={} requests={} achieved_rate={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms errors={} statuses={:?}",
        a.mode,
        urls.len(),
        a.concurrency,
        if a.concurrency > 0 { 0 } else { a.rate },
        lat.len(),
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN),
        errors,
        statuses
    );
    for (s, body) in &first_body {
        println!("  first answer with status {s}: {body}");
    }
    if let Some(expected) = a.expect {
        let wrong: u64 = statuses.iter().filter(|(s, _)| **s != expected).map(|(_, n)| n).sum();
        if wrong > 0 {
            return Err(format!("{wrong} of {} answers were not {expected}: {statuses:?}", lat.len()));
        }
    }
    Ok(())
}
