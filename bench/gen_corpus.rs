//! Writes a generated corpus of GP dossiers as NDJSON to standard output.
//! Usage: gen-corpus COUNT [FIRST]
//! (`cargo build --release --example gen-corpus`; used by bench/convert.sh)

#[path = "corpus.rs"]
mod corpus;

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let out = std::io::stdout();
    let mut w = BufWriter::new(out.lock());
    for i in first..first + count {
        serde_json::to_writer(&mut w, &corpus::dossier(i, corpus::size_of(i)))?;
        w.write_all(b"\n")?;
    }
    w.flush()
}
