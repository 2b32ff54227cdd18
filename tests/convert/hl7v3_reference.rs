//! The real NHG sample message (from ../shared/reference; not part of the repository).

use std::collections::BTreeMap;

use overdracht::model::ItemConcept;
use overdracht::source::hl7v3;

/// The NHG sample (`OVERDRACHT_REFERENCE_DIR` overrides ../shared/reference).
fn sample() -> std::path::PathBuf {
    let dir = std::env::var_os("OVERDRACHT_REFERENCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"));
    dir.join("professionele-samenvatting/QUPC_IN990002NL_01.xml")
}

#[test]
#[ignore = "reads ../shared/reference; run with --ignored"]
fn reference_professional_summary() {
    let bytes = std::fs::read(sample()).expect("the sample message is in ../shared/reference");
    assert!(hl7v3::is_professional_summary(&bytes));
    let dossier = hl7v3::read(&bytes).expect("the sample converts");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &dossier.items {
        *counts.entry(item.concept.name()).or_default() += 1;
    }
    println!("items per concept: {counts:#?}");
    for issue in &dossier.outcome.issues {
        println!("{issue}");
    }
    let patient = dossier.patient.as_ref().expect("a patient");
    assert!(patient.bsn.is_some());
    assert!(dossier.author_organization.is_some());
    // Every clinical section of the message yields items.
    for concept in [
        "EpisodeOfCare",
        "Problem",
        "Encounter",
        "SOAPReport",
        "LaboratoryTestResult",
        "BodyTemperature",
        "PharmaceuticalProduct",
        "MedicationAgreement",
        "AllergyIntolerance",
        "Alert",
        "HealthProfessional",
        "HealthProfessionalRole",
        "HealthcareProvider",
    ] {
        assert!(counts.get(concept).copied().unwrap_or(0) > 0, "no {concept} items");
    }
    assert_eq!(counts["EpisodeOfCare"], 6);
    assert_eq!(counts["Encounter"], 13);
    assert_eq!(counts["MedicationAgreement"], 2);
    assert_eq!(counts["AllergyIntolerance"], 1);
    // the contra-indication and attention annotations (3), and the two LOINC 74018-3 alerts on episodes
    assert_eq!(counts["Alert"], 5);
    // Journal entries point to their episode where the message links them.
    let linked = dossier
        .items
        .iter()
        .filter(|i| matches!(&i.concept, ItemConcept::JournalEntry(j) if j.episode.is_some()))
        .count();
    assert!(linked > 0, "no journal entry is linked to an episode");
    let attention = dossier
        .items
        .iter()
        .filter(|i| matches!(&i.concept, ItemConcept::Episode(e) if e.attention == Some(true)))
        .count();
    assert_eq!(attention, 2);
    // Nothing unexpected is left unmapped in the clinical part without being reported.
    assert!(!dossier.outcome.has_errors());
    // Every clinical element of the sample is mapped.
    let clinical: Vec<_> = dossier
        .outcome
        .issues
        .iter()
        .filter(|i| i.leftover == Some(overdracht::validate::Leftover::Clinical))
        .map(ToString::to_string)
        .collect();
    assert!(clinical.is_empty(), "clinical leftovers: {clinical:#?}");
    assert!(dossier.coverage.share() > 0.9, "{:?}", dossier.coverage);
}
