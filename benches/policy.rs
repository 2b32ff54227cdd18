//! Access-decision time: the distribution (p50, p99) of `PolicyEngine::decide` (what ships:
//! the shipped policy's fast path) for realistic requests, with two other figures measured in
//! the same run, interleaved, so that they can be read as ratios:
//!
//! - `input`: building the Rego input document alone (a lower bound for any Rego evaluation);
//! - `rego`: `PolicyEngine::decide_rego`, the same decision by regorus' interpreter (what an
//!   adapted policy costs).
//!
//! Run with `bench/policy.sh` (release). Every call is timed on its own with `Instant`; the
//! variants take turns in rounds so that noise from the shared machine hits them alike.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use overdracht::model::{Bsn, DataCategory};
use overdracht::policy::{AccessRequest, Agreement, CareTeam, PatientConsent, PolicyEngine, Requested, Requester};

const ROUNDS: usize = 20;
const PER_ROUND: usize = 200;

struct Data {
    teams: Vec<CareTeam>,
    agreements: Vec<Agreement>,
    consents: Vec<PatientConsent>,
    patient: Bsn,
}

fn load(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn data() -> Data {
    let teams = ["frail-elderly-group-care.json", "frail-elderly-ended.json", "young-adult-avg-individual.json"]
        .iter()
        .map(|f| {
            CareTeam::from_fhir(&load(&format!("examples/care-teams/{f}"))).unwrap_or_else(|o| panic!("{f}: {o:?}"))
        })
        .collect();
    let consents = ["objection-lifestyle.json", "objection-member.json", "consent-amalia-agreement.json"]
        .iter()
        .map(|f| {
            PatientConsent::from_fhir(&load(&format!("examples/consents/{f}"))).unwrap_or_else(|o| panic!("{f}: {o:?}"))
        })
        .collect();
    Data {
        teams,
        agreements: Agreement::load_dir(Path::new("examples/agreements")).unwrap_or_else(|e| panic!("{e}")),
        consents,
        patient: Bsn::parse("999911120").unwrap_or_else(|e| panic!("{e}")),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let engine = PolicyEngine::embedded().unwrap_or_else(|e| panic!("{e}"));
    let data = data();
    let day: NaiveDate = "2026-11-23".parse().unwrap_or_else(|e| panic!("{e}"));
    let who = |uzi: &str, role: &str, ura: &str, bg: Option<&str>| Requester {
        uzi: uzi.parse().expect("UZI"),
        uzi_role: role.parse().expect("UZI role code"),
        ura: ura.parse().expect("URA"),
        purpose_of_use: "TREAT".into(),
        break_glass_reason: bg.map(str::to_owned),
    };
    let all = Requested::All;
    let one = Requested::Only([DataCategory::Allergies].into());
    let scenarios: Vec<(&str, Requester, &Requested)> = vec![
        ("lead, all categories", who("900000101", "01.047", "11112222", None), &all),
        ("co-practitioner, all", who("900000102", "04.000", "44443333", None), &all),
        ("supporting, one category", who("900000104", "30.000", "11112222", None), &one),
        ("outsider (deny)", who("900099999", "01.015", "55556666", None), &all),
        ("break-the-glass", who("900000777", "01.047", "11112222", Some("night shift, acute")), &all),
    ];
    assert!(engine.is_native());
    // Warm up, and check that both evaluators agree on these requests.
    for (name, r, q) in &scenarios {
        let req = AccessRequest {
            requester: r,
            patient: &data.patient,
            teams: &data.teams,
            agreements: &data.agreements,
            consents: &data.consents,
            day,
            requested: q,
        };
        assert_eq!(engine.decide(&req), engine.decide_rego(&req), "{name}");
        for _ in 0..200 {
            black_box(engine.decide(&req));
            black_box(engine.decide_rego(&req));
        }
    }
    const VARIANTS: [&str; 3] = ["decide", "input", "rego"];
    let mut samples: Vec<[Vec<Duration>; 3]> = scenarios.iter().map(|_| [Vec::new(), Vec::new(), Vec::new()]).collect();
    for _ in 0..ROUNDS {
        for (s, (_, r, q)) in scenarios.iter().enumerate() {
            let req = AccessRequest {
                requester: r,
                patient: &data.patient,
                teams: &data.teams,
                agreements: &data.agreements,
                consents: &data.consents,
                day,
                requested: q,
            };
            for (v, samples) in samples[s].iter_mut().enumerate() {
                for _ in 0..PER_ROUND {
                    let t = Instant::now();
                    match v {
                        0 => {
                            black_box(engine.decide(black_box(&req)));
                        }
                        1 => {
                            black_box(PolicyEngine::input(black_box(&req)));
                        }
                        _ => {
                            black_box(engine.decide_rego(black_box(&req)));
                        }
                    }
                    samples.push(t.elapsed());
                }
            }
        }
    }
    println!(
        "access decisions: {} calls per variant and scenario ({ROUNDS} interleaved rounds of {PER_ROUND}); times in µs",
        ROUNDS * PER_ROUND
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>13} {:>13}",
        "scenario", "decide50", "decide99", "input50", "input99", "rego50", "rego99", "rego/decide", "input/decide"
    );
    let mut worst_p99 = Duration::ZERO;
    for (s, (name, _, _)) in scenarios.iter().enumerate() {
        let mut p = [[Duration::ZERO; 2]; 3];
        for v in 0..VARIANTS.len() {
            let mut xs = samples[s][v].clone();
            xs.sort();
            p[v] = [percentile(&xs, 0.50), percentile(&xs, 0.99)];
        }
        worst_p99 = worst_p99.max(p[0][1]);
        println!(
            "{:<26} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.1} {:>9.1} {:>12.0}x {:>12.1}x",
            name,
            us(p[0][0]),
            us(p[0][1]),
            us(p[1][0]),
            us(p[1][1]),
            us(p[2][0]),
            us(p[2][1]),
            us(p[2][0]) / us(p[0][0]).max(1e-3),
            us(p[1][0]) / us(p[0][0]).max(1e-3),
        );
    }
    println!(
        "worst decide p99 (fast path): {:.1} µs (target ≤ 100 µs: {})",
        us(worst_p99),
        if worst_p99 <= Duration::from_micros(100) { "met" } else { "NOT met" }
    );
}
