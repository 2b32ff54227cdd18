//! Conversion throughput against a serde_json baseline measured in the same run.
//!
//! For each dossier of a generated corpus (20–200 resources, see bench/corpus.rs) we time
//! (a) the whole conversion: parse, map, emit, assemble and serialise the Bundle, and
//! (b) baselines: `serde_json` parsing the same input bytes and serialising the same
//! output Bundle (the minimum any converter must do), and a parse + serialise round trip
//! of both the input and the output bytes (the wording). Rounds interleave the
//! measurements so that machine noise hits all of them; figures are ratios of medians.
//! The conversion includes validating every emitted resource.

#[path = "../bench/corpus.rs"]
mod corpus;

use std::hint::black_box;
use std::time::{Duration, Instant};

use overdracht::convert::{convert, ConvertOptions};

/// The same allocator as the `overdracht` binary, so the figures are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let n_dossiers: u64 = std::env::var("CORPUS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let inputs: Vec<Vec<u8>> = (0..n_dossiers)
        .map(|i| serde_json::to_vec(&corpus::dossier(i, corpus::size_of(i))).expect("serialise"))
        .collect();
    let opts = ConvertOptions::default();
    let outputs: Vec<Vec<u8>> = inputs
        .iter()
        .map(|b| serde_json::to_vec(&convert(b, &opts).expect("corpus converts").bundle()).expect("serialise"))
        .collect();
    let in_bytes: usize = inputs.iter().map(Vec::len).sum();
    let out_bytes: usize = outputs.iter().map(Vec::len).sum();
    let resources: usize = inputs.iter().map(|b| convert(b, &opts).map(|c| c.resources.len()).unwrap_or(0)).sum();

    let mut conv = vec![];
    let mut base = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        for b in &inputs {
            let c = convert(black_box(b), &opts).expect("converts");
            black_box(c.bundle_bytes());
        }
        conv.push(t.elapsed());
        let t = Instant::now();
        for (i, o) in inputs.iter().zip(&outputs) {
            let v: serde_json::Value = serde_json::from_slice(black_box(i)).expect("parse");
            black_box(&v);
            let w: serde_json::Value = serde_json::from_slice(black_box(o)).expect("parse");
            black_box(serde_json::to_vec(&w).expect("serialise"));
        }
        base.push(t.elapsed());
    }
    // The baseline parses the output once more than a converter must (to have a Value to
    // serialise); time that parse alone and take it off, so the baseline is
    // "parse input + serialise output".
    let mut out_parse = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        for o in &outputs {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(o)).expect("parse"));
        }
        out_parse.push(t.elapsed());
    }
    // The issue's wording, "a serde_json parse + serialise of the same input and output
    // bytes", read literally: a round trip of the input and a round trip of the output.
    let mut round_trips = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        for (i, o) in inputs.iter().zip(&outputs) {
            let v: serde_json::Value = serde_json::from_slice(black_box(i)).expect("parse");
            black_box(serde_json::to_vec(&v).expect("serialise"));
            let w: serde_json::Value = serde_json::from_slice(black_box(o)).expect("parse");
            black_box(serde_json::to_vec(&w).expect("serialise"));
        }
        round_trips.push(t.elapsed());
    }
    let c = median(conv);
    let b = median(base).saturating_sub(median(out_parse));
    let rt = median(round_trips);
    let secs = c.as_secs_f64();
    println!(
        "corpus: {n_dossiers} dossiers, {resources} output resources, {:.1} MB in, {:.1} MB out",
        in_bytes as f64 / 1e6,
        out_bytes as f64 / 1e6
    );
    println!(
        "conversion:           {:>8.1} ms  ({:.0} dossiers/s, {:.0} resources/s, {:.1} MB/s in)",
        secs * 1e3,
        n_dossiers as f64 / secs,
        resources as f64 / secs,
        in_bytes as f64 / 1e6 / secs
    );
    println!("serde_json baseline:  {:>8.1} ms  (parse input + serialise output)", b.as_secs_f64() * 1e3);
    println!(
        "serde_json round trips: {:>8.1} ms  (parse + serialise of the input and of the output)",
        rt.as_secs_f64() * 1e3
    );
    println!("ratio conversion / minimal baseline (parse input + serialise output): {:.2}x", secs / b.as_secs_f64());
    println!(
        "ratio conversion / round-trip baseline (the issue's wording):        {:.2}x  (target <= 3x)",
        secs / rt.as_secs_f64()
    );
}
