//! Replays the fuzz corpus (`fuzz/corpus/hl7v3/`) as an ordinary test, so that every input the
//! fuzzer found interesting keeps being checked on the stable toolchain and in CI.

#[test]
fn the_reader_never_panics_on_the_fuzz_corpus() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/hl7v3");
    let mut files: Vec<_> =
        std::fs::read_dir(dir).expect("the corpus directory exists").filter_map(Result::ok).collect();
    files.sort_by_key(|e| e.file_name());
    assert!(files.len() >= 10, "the corpus has its seed files");
    for entry in files {
        let bytes = std::fs::read(entry.path()).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| {
            let _ = overdracht::source::hl7v3::is_professional_summary(&bytes);
            let _ = overdracht::source::hl7v3::read(&bytes);
        });
        assert!(outcome.is_ok(), "the reader panicked on {}", entry.path().display());
    }
}
