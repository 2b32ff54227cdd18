//! Validation time per resource, for every profile overdracht emits, against the `jsonschema`
//! crate validating the same resource with the official R4 JSON Schema, in the same run.
//!
//! Plain std timing (no harness): rounds interleave the two validators so that machine noise hits
//! both alike; each figure is the median over the rounds. The JSON Schema baseline reads
//! ../shared/reference/fhir-r4/fhir.schema.json and is skipped, with a message, when it is absent.
//!
//! Run: `bench/validate.sh` (or `cargo bench --bench validate`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use overdracht::validate::Validator;
use serde_json::{json, Value};

const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Mean time of one call, measured over enough calls to last about `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget || n < 3 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/validate exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            let v = serde_json::from_str(&std::fs::read_to_string(&p).expect("readable")).expect("json");
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

struct Baseline {
    per_type: HashMap<String, jsonschema::Validator>,
}

impl Baseline {
    fn load(types: &[&str]) -> Option<Baseline> {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/fhir-r4/fhir.schema.json"));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                println!(
                    "baseline skipped: {} not readable ({e}); only overdracht's own timings follow",
                    path.display()
                );
                return None;
            }
        };
        let schema: Value = serde_json::from_str(&text).expect("fhir.schema.json is JSON");
        let start = Instant::now();
        let mut per_type = HashMap::new();
        for t in types {
            // Dispatch on resourceType to a per-type root, as DESIGN.md describes.
            let root = json!({"$schema": "http://json-schema.org/draft-06/schema#", "$ref": format!("#/definitions/{t}"), "definitions": schema["definitions"]});
            let v = jsonschema::validator_for(&root).expect("R4 schema compiles");
            per_type.insert((*t).to_string(), v);
        }
        println!(
            "jsonschema: compiled {} per-type roots of the R4 schema in {:.2} s",
            per_type.len(),
            start.elapsed().as_secs_f64()
        );
        Some(Baseline { per_type })
    }

    fn errors(&self, r: &Value) -> usize {
        let t = r["resourceType"].as_str().unwrap_or("");
        if t == "Bundle" {
            // entries one by one, as DESIGN.md recommends for precise paths
            return r["entry"].as_array().into_iter().flatten().map(|e| self.errors(&e["resource"])).sum();
        }
        self.per_type.get(t).map_or(0, |v| v.iter_errors(r).count())
    }
}

fn main() {
    let t0 = Instant::now();
    let v = Validator::embedded();
    println!(
        "overdracht: embedded tables loaded and compiled in {:.1} ms (once per process)",
        t0.elapsed().as_secs_f64() * 1e3
    );

    let fixtures = fixtures();
    let entries: Vec<Value> = fixtures
        .iter()
        .map(|(n, r)| json!({"fullUrl": format!("urn:uuid:{n}"), "resource": r, "request": {"method": "PUT", "url": format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""))}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let mut cases = fixtures.clone();
    cases.push((format!("Bundle ({} entries)", fixtures.len()), bundle));

    let mut types: Vec<&str> = fixtures.iter().filter_map(|(_, r)| r["resourceType"].as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let baseline = Baseline::load(&types);

    // sanity: both validators accept every fixture
    for (name, r) in &cases {
        assert!(!v.validate(r).has_errors(), "{name} is not valid for overdracht");
        if let Some(b) = &baseline {
            assert_eq!(b.errors(r), 0, "{name} is not valid for the R4 JSON Schema");
        }
    }

    let budget = Duration::from_millis(20);
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, r)) in cases.iter().enumerate() {
            ours[i].push(time_per_call(budget, || {
                std::hint::black_box(v.validate(std::hint::black_box(r)));
            }));
            if let Some(b) = &baseline {
                theirs[i].push(time_per_call(budget, || {
                    std::hint::black_box(b.errors(std::hint::black_box(r)));
                }));
            }
        }
    }

    println!();
    println!("{:<45} {:>12} {:>14} {:>8}", "resource (profile)", "overdracht", "jsonschema", "ratio");
    let mut single_ours = Vec::new();
    let mut single_ratio = Vec::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let o = median(ours[i].clone()) * 1e6;
        let is_bundle = i == cases.len() - 1;
        if !is_bundle {
            single_ours.push(o);
        }
        if baseline.is_some() {
            let t = median(theirs[i].clone()) * 1e6;
            if !is_bundle {
                single_ratio.push(o / t);
            }
            println!("{name:<45} {o:>9.1} µs {t:>11.1} µs {:>7.1}x", o / t);
        } else {
            println!("{name:<45} {o:>9.1} µs {:>14} {:>8}", "-", "-");
        }
    }
    println!();
    let worst = single_ours.iter().copied().fold(0.0, f64::max);
    println!(
        "per resource: median {:.1} µs, worst {:.1} µs (target ≤ 1000 µs){}",
        median(single_ours.clone()),
        worst,
        if baseline.is_some() {
            format!("; median ratio to jsonschema {:.1}x", median(single_ratio))
        } else {
            String::new()
        }
    );
    println!("({ROUNDS} interleaved rounds, each figure the median of per-call means over ~{} ms)", budget.as_millis());
}
