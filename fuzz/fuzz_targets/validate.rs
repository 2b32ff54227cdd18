//! Fuzzes the validator on arbitrary JSON: `validate` always answers with an outcome.
//! The corpus in `fuzz/corpus/validate/` is also replayed by `tests/convert/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overdracht::validate::Validator;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = Validator::embedded().validate(&v);
    }
});
