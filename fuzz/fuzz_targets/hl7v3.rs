//! Fuzzes the Professional Summary reader: whatever the bytes, `read` and
//! `is_professional_summary` return (an error is fine), never panic, never hang.
//! The corpus in `fuzz/corpus/hl7v3/` is also replayed by `tests/convert/hl7v3_fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overdracht::source::hl7v3;

fuzz_target!(|data: &[u8]| {
    let _ = hl7v3::is_professional_summary(data);
    let _ = hl7v3::read(data);
});
