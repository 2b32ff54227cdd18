//! Replays the corpora of the conversion and validation fuzz targets (`fuzz/corpus/convert/`,
//! `fuzz/corpus/validate/`) as ordinary tests, so every input the fuzzers found interesting
//! keeps being checked on the stable toolchain and in CI; likewise the FHIR XML reader's corpus
//! (`fuzz/corpus/fhir-xml/`). (The Professional Summary corpus has its own replay in
//! `tests/convert/hl7v3_fuzz_corpus.rs`.)

use crate::oracle::convert;
use overdracht::convert::ConvertOptions;
use overdracht::source::{fhir_xml, Format};
use overdracht::validate::Validator;

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("corpus directory").filter_map(Result::ok).collect();
    files.sort_by_key(|e| e.file_name());
    files.into_iter().map(|e| (e.path().display().to_string(), std::fs::read(e.path()).expect("readable"))).collect()
}

#[test]
fn conversion_never_panics_on_the_fuzz_corpus() {
    let files = corpus("convert");
    assert!(files.len() >= 5, "the corpus has its seeds");
    for (name, bytes) in files {
        let r = std::panic::catch_unwind(|| convert(&bytes, &ConvertOptions::default()).map(|c| c.resources.len()));
        assert!(r.is_ok(), "conversion panicked on {name}");
    }
}

#[test]
fn validation_never_panics_on_the_fuzz_corpus() {
    let files = corpus("validate");
    assert!(files.len() >= 3, "the corpus has its seeds");
    for (name, bytes) in files {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let r = std::panic::catch_unwind(|| Validator::embedded().validate(&v).issues.len());
        assert!(r.is_ok(), "validation panicked on {name}");
    }
}

#[test]
fn the_fhir_xml_reader_never_panics_on_its_fuzz_corpus() {
    let files = corpus("fhir-xml");
    assert!(files.len() >= 5, "the corpus has its seeds");
    for (name, bytes) in files {
        let r = std::panic::catch_unwind(|| {
            let _ = fhir_xml::is_fhir_xml(&bytes);
            let _ = fhir_xml::to_json(&bytes, fhir_xml::Version::Stu3);
            let _ = fhir_xml::to_json(&bytes, fhir_xml::Version::R4);
            let _ = convert(&bytes, &ConvertOptions::default());
            convert(&bytes, &ConvertOptions { format: Some(Format::FhirR4Xml), ..Default::default() })
                .map(|c| c.resources.len())
        });
        assert!(r.is_ok(), "the FHIR XML reader panicked on {name}");
    }
}
