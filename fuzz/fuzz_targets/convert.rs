//! Fuzzes the whole conversion of JSON input: format detection, the STU3, R4 and flat
//! sources, the FHIR stage and the output validation. Whatever the bytes, `convert`
//! returns (a clear error is fine), never panics, never hangs.
//! The corpus in `fuzz/corpus/convert/` is also replayed by `tests/convert/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overdracht::convert::{convert, ConvertOptions};

fuzz_target!(|data: &[u8]| {
    let _ = convert(data, &ConvertOptions::default());
});
