//! Reads FHIR R4 resources as JSON, one per line, from stdin; writes each back, one per line, after
//! a round trip through fhirbolt's typed model (`fhirbolt::model::r4::Resource`, strict mode:
//! an element the R4 model does not have, or a JSON type it does not expect, is an error).
//! A resource that does not deserialise (or on which fhirbolt panics) is written as
//! `{"oracle-error": "<message>"}`.
//!
//! fhirbolt 0.4 fails on a typed Bundle with entries that hold resources (and on other nested
//! resources inside a typed parent), so callers send a Bundle's entry resources one by one.

use std::io::{BufRead, Write};

use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode, SerializationConfig};

fn round_trip(line: &str) -> Result<String, String> {
    let config = DeserializationConfig { mode: DeserializationMode::Strict };
    let r: Resource = fhirbolt::json::from_str(line, Some(config)).map_err(|e| e.to_string())?;
    fhirbolt::json::to_string(&r, Some(SerializationConfig { always_sort: false })).map_err(|e| e.to_string())
}

fn main() {
    // A panic inside fhirbolt is answered as an error (below), not printed.
    std::panic::set_hook(Box::new(|_| {}));
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("fhirbolt-oracle: cannot read stdin: {e}");
                std::process::exit(2);
            }
        };
        // fhirbolt 0.4 panics on some inputs (an empty array, `"name": []`): an error like any other.
        let result = std::panic::catch_unwind(|| round_trip(&line))
            .unwrap_or_else(|_| Err("fhirbolt panicked on this resource".to_string()));
        let text = match result {
            Ok(json) => json,
            Err(e) => serde_json::json!({ "oracle-error": e }).to_string(),
        };
        // One answer per line, at once: the caller waits for it before sending the next.
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            std::process::exit(2);
        }
    }
    if out.flush().is_err() {
        std::process::exit(2);
    }
}
