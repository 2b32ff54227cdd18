//! Fuzzes the FHIR XML reader: whatever the bytes, the XML → JSON step and the conversion
//! return (an error is fine), never panic, never hang. The corpus in `fuzz/corpus/fhir-xml/`
//! is also replayed by `tests/convert/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overdracht::convert::{convert, ConvertOptions};
use overdracht::source::{fhir_xml, Format};

fuzz_target!(|data: &[u8]| {
    let _ = fhir_xml::is_fhir_xml(data);
    let _ = fhir_xml::to_json(data, fhir_xml::Version::Stu3);
    let _ = fhir_xml::to_json(data, fhir_xml::Version::R4);
    let _ = convert(data, &ConvertOptions { format: Some(Format::FhirStu3Xml), ..Default::default() });
});
