//! The Professional Summary source on our own fictitious fixture, and on hostile input.

use std::collections::BTreeMap;

use overdracht::model::{
    Dossier, Gender, GivenKind, ItemConcept, MedicationRef, ObsValue, ObservationKind, SoapKind, When,
};
use overdracht::source::{self, hl7v3, Format, SourceError};
use overdracht::terminology::uri;
use overdracht::validate::{IssueCode, Severity};

const FIXTURE: &[u8] = include_bytes!("../fixtures/hl7v3/professional-summary.xml");

fn fixture() -> Dossier {
    hl7v3::read(FIXTURE).expect("the fixture converts")
}

fn counts(d: &Dossier) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    for i in &d.items {
        *c.entry(i.concept.name()).or_default() += 1;
    }
    c
}

/// The one item whose key starts with `prefix` and ends with `suffix`.
fn find<'a>(d: &'a Dossier, prefix: &str, suffix: &str) -> &'a ItemConcept {
    let hits: Vec<_> = d.items.iter().filter(|i| i.key.starts_with(prefix) && i.key.ends_with(suffix)).collect();
    assert_eq!(hits.len(), 1, "expected one item with key {prefix}…{suffix}: {hits:?}");
    &hits[0].concept
}

#[test]
fn the_fixture_is_detected_and_converts() {
    assert_eq!(source::detect(FIXTURE).ok(), Some(Format::Hl7v3Ps));
    let d = fixture();
    let expected: BTreeMap<&str, usize> = [
        ("Alert", 3), // contra-indication, attention annotation, the 74018-3 alert on an episode
        ("AllergyIntolerance", 1),
        ("BodyTemperature", 1),
        ("BodyWeight", 1),
        ("Encounter", 2),
        ("EpisodeOfCare", 2),
        ("HealthProfessional", 1),
        ("HealthProfessionalRole", 1),
        ("HealthcareProvider", 1),
        ("LaboratoryTestResult", 1),
        ("MedicationAgreement", 2),
        ("PharmaceuticalProduct", 1),
        ("Problem", 2),
        ("SOAPReport", 3),
        // the CT (NHG table 45 code 2283) is a text result, not a laboratory result
        ("TextResult", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts(&d), expected);
    // keys are unique
    let mut keys: Vec<_> = d.items.iter().map(|i| &i.key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), d.items.len());
    assert!(!d.outcome.has_errors());
}

#[test]
fn patient_and_sender() {
    let d = fixture();
    let p = d.patient.as_ref().expect("patient");
    assert_eq!(p.bsn.as_ref().map(|b| b.as_str()), Some("999911120"));
    assert_eq!(p.gender, Some(Gender::Female));
    assert_eq!(p.gender_code.as_ref().and_then(|c| c.code.as_deref()), Some("F"));
    assert_eq!(p.birth_date.map(|w| w.to_fhir()), Some("1938-02-14".into()));
    let name = &p.names[0];
    assert_eq!(name.use_.as_deref(), Some("official"));
    assert_eq!((name.own_prefix.as_deref(), name.own_name.as_deref()), (Some("de"), Some("Vries")));
    assert_eq!((name.partner_prefix.as_deref(), name.partner_name.as_deref()), (Some("van"), Some("Dam")));
    assert_eq!(name.given.iter().map(|g| g.kind).collect::<Vec<_>>(), vec![GivenKind::Call, GivenKind::Initial]);
    let a = &p.addresses[0];
    assert_eq!(
        (a.street.as_deref(), a.house_number.as_deref(), a.house_number_addition.as_deref(), a.use_.as_deref()),
        (Some("Lindelaan"), Some("7"), Some("bis"), Some("home"))
    );
    assert_eq!(p.telecoms.iter().map(|t| t.system.as_str()).collect::<Vec<_>>(), vec!["phone", "email"]);
    assert_eq!(p.telecoms[0].value, "+31000000001");
    // the sender: the practice's URA
    let org = d.author_organization.as_ref().expect("author organisation");
    assert_eq!((org.system.as_deref(), org.value.as_str()), (Some(uri::URA), "99990001"));
    assert_eq!(p.general_practitioner.len(), 1);
    assert!(p.managing_organization.is_some());
    // the GP: one person however often mentioned, with UZI, AGB and role code
    let ItemConcept::HealthProfessional(gp) = find(&d, "Practitioner/", "|999999991") else {
        panic!("not a professional")
    };
    assert!(gp.identifiers.iter().any(|i| i.system.as_deref() == Some(uri::UZI_PERSON) && i.value == "999999991"));
    assert!(gp.identifiers.iter().any(|i| i.system.as_deref() == Some(uri::AGB) && i.value == "01999991"));
    let ItemConcept::ProfessionalRole(role) = find(&d, "Practitioner/", "ura|99990001") else { panic!("not a role") };
    assert!(role.roles[0].has(uri::UZI_ROLE, "01.015"));
    let ItemConcept::HealthcareProvider(practice) = find(&d, "Organization/", "") else {
        panic!("not an organisation")
    };
    assert_eq!(practice.name.as_deref(), Some("Huisartsenpraktijk De Linde"));
    assert_eq!(practice.identifiers.len(), 2);
}

#[test]
fn episodes_journal_and_links() {
    let d = fixture();
    let ItemConcept::Episode(dm) = find(&d, "EpisodeOfCare/", "|101") else { panic!("not an episode") };
    assert!(dm.code.as_ref().is_some_and(|c| c.has(uri::ICPC, "T90.02")));
    assert_eq!(dm.title.as_deref(), Some("Diabetes mellitus type 2"));
    assert_eq!(dm.attention, Some(true));
    assert_eq!(dm.status.as_deref(), Some("active"));
    assert_eq!(dm.period.start.map(|w| w.to_fhir()), Some("2015-03-10".into()));
    assert_eq!(dm.diagnoses.len(), 1);
    let ItemConcept::Episode(p20) = find(&d, "EpisodeOfCare/", "|102") else { panic!("not an episode") };
    assert_eq!(p20.period.start, Some(When::YearMonth(2023, 11)));
    assert_eq!(p20.attention, None);

    // contact 9001 has two parts: DM (S, E + ICPC) and memory (O, P + ICPC on a made E line)
    let entries: Vec<_> = d
        .items
        .iter()
        .filter_map(|i| match &i.concept {
            ItemConcept::JournalEntry(j) if i.key.contains("|9001/") => Some(j),
            _ => None,
        })
        .collect();
    assert_eq!(entries.len(), 2);
    let first = entries[0];
    assert_eq!(
        first.lines.iter().map(|l| l.kind).collect::<Vec<_>>(),
        vec![SoapKind::Subjective, SoapKind::Evaluation]
    );
    assert_eq!(first.lines[0].text, "Controle DM. Voelt zich goed, dorst & plassen normaal.");
    assert!(first.lines[1].code.as_ref().is_some_and(|c| c.has(uri::ICPC, "T90.02")));
    let episode_key = |r: &Option<overdracht::model::Ref>| r.as_ref().and_then(|r| r.key.clone()).unwrap_or_default();
    assert!(episode_key(&first.episode).starts_with("EpisodeOfCare/") && episode_key(&first.episode).ends_with("|101"));
    assert!(first.encounter.as_ref().and_then(|r| r.key.as_deref()).is_some_and(|k| k.ends_with("|9001")));
    assert_eq!(first.date.map(|w| w.to_fhir()), Some("2024-03-01T10:15:00+01:00".into()));
    let second = entries[1];
    assert_eq!(
        second.lines.iter().map(|l| l.kind).collect::<Vec<_>>(),
        vec![SoapKind::Objective, SoapKind::Plan, SoapKind::Evaluation]
    );
    assert!(second.lines[2].code.as_ref().is_some_and(|c| c.has(uri::ICPC, "P20")));
    assert!(second.episode.as_ref().and_then(|r| r.key.as_deref()).is_some_and(|k| k.ends_with("|102")));
    let ItemConcept::Contact(c) = find(&d, "Encounter/", "|9001") else { panic!("not a contact") };
    assert_eq!(c.episodes.len(), 2);
    assert_eq!(c.period.end.map(|w| w.to_fhir()), Some("2024-03-01T10:30:00+01:00".into()));
    assert!(c.types[0].has("https://referentiemodel.nhg.org/tabellen/nhg-tabel-14-contactwijze", "01"));
    // an episode listing an act that is not in the message is reported, not dropped
    assert!(d.outcome.issues.iter().any(|i| i.severity == Severity::Warning
        && i.expression
            .as_deref()
            .is_some_and(|e| e.ends_with("component7[2]/episodeOfCondition/component2/episodOfCare/component[2]"))));
}

#[test]
fn results_medication_allergies_alerts() {
    let d = fixture();
    let obs: Vec<_> = d
        .items
        .iter()
        .filter_map(|i| match &i.concept {
            ItemConcept::Observation(o) => Some(o),
            _ => None,
        })
        .collect();
    let weight = obs.iter().find(|o| o.kind == ObservationKind::BodyWeight).expect("weight");
    match &weight.value {
        Some(ObsValue::Quantity(q)) => {
            assert_eq!(q.value.as_ref().map(|v| v.as_str()), Some("61.5"));
            assert_eq!(q.code.as_deref(), Some("kg"));
            assert_eq!(q.system.as_deref(), Some(uri::UCUM));
        }
        other => panic!("weight value {other:?}"),
    }
    let hba1c = obs.iter().find(|o| o.code.has(uri::NHG_45, "382")).expect("HbA1c");
    assert_eq!(hba1c.kind, ObservationKind::LaboratoryTestResult);
    assert_eq!(hba1c.status.as_deref(), Some("final"));
    assert_eq!(hba1c.interpretation[0].codings[0].code.as_deref(), Some("H"));
    let rr = &hba1c.reference_ranges[0];
    assert_eq!(rr.low.as_ref().and_then(|q| q.value.as_ref()).map(|v| v.as_str()), Some("20"));
    assert_eq!(rr.high.as_ref().and_then(|q| q.value.as_ref()).map(|v| v.as_str()), Some("53"));
    assert!(hba1c.episode.as_ref().and_then(|r| r.key.as_deref()).is_some_and(|k| k.ends_with("|101")));
    let ct = obs.iter().find(|o| o.code.has(uri::NHG_45, "2283")).expect("CT");
    assert_eq!(ct.value, Some(ObsValue::Text("Geen afwijkingen.".into())));
    let temp = obs.iter().find(|o| o.kind == ObservationKind::BodyTemperature).expect("temperature");
    assert_eq!(temp.effective.map(|w| w.to_fhir()), Some("2024-03-08T00:00:00+01:00".into()));

    // one product for two prescriptions of the same GPK
    let ItemConcept::Product(product) = find(&d, "Medication/", "") else { panic!("not a product") };
    assert!(product.code.has(uri::GPK, "12345"));
    let ItemConcept::MedicationAgreement(ma) = find(&d, "MedicationRequest/", "|5001") else {
        panic!("not an agreement")
    };
    assert!(
        matches!(&ma.medication, MedicationRef::Product(r) if r.key.as_deref().is_some_and(|k| k.starts_with("Medication/")))
    );
    assert_eq!(ma.status.as_deref(), Some("active"));
    assert_eq!(ma.authored_on.map(|w| w.to_fhir()), Some("2024-03-01".into()));
    assert_eq!(ma.period_of_use.start.map(|w| w.to_fhir()), Some("2024-03-01".into()));
    assert_eq!(ma.period_of_use.end.map(|w| w.to_fhir()), Some("2024-09-01".into()));
    let dosage = &ma.dosages[0];
    assert_eq!(dosage.text.as_deref(), Some("2 maal per dag 1 tablet"));
    assert_eq!(
        (dosage.frequency, dosage.period.as_ref().map(|p| p.as_str()), dosage.period_unit.as_deref()),
        (Some(1), Some("0.5"), Some("d"))
    );
    assert!(ma.prescriber.is_some());
    assert!(ma.encounter.as_ref().and_then(|r| r.key.as_deref()).is_some_and(|k| k.ends_with("|9001")));
    let ItemConcept::MedicationAgreement(old) = find(&d, "MedicationRequest/", "|5002") else {
        panic!("not an agreement")
    };
    assert_eq!(old.status.as_deref(), Some("completed"));

    let ItemConcept::Allergy(al) = find(&d, "AllergyIntolerance/", "") else { panic!("not an allergy") };
    assert_eq!(al.type_.as_deref(), Some("intolerance"));
    assert_eq!(al.categories, vec!["medication".to_owned()]);
    assert_eq!(al.code.codings[0].code.as_deref(), Some("35"));
    assert_eq!(al.clinical_status.as_deref(), Some("active"));
    assert_eq!(al.notes, vec!["Huiduitslag na amoxicilline".to_owned()]);

    let alerts: Vec<_> = d
        .items
        .iter()
        .filter_map(|i| match &i.concept {
            ItemConcept::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    let ci = alerts
        .iter()
        .find(|a| a.category.as_ref().is_some_and(|c| c.codings[0].code.as_deref() == Some("CI")))
        .expect("CI");
    assert_eq!(ci.code.codings[0].code.as_deref(), Some("1234"));
    assert_eq!(ci.status.as_deref(), Some("active"));
    let att = alerts
        .iter()
        .find(|a| a.category.as_ref().is_some_and(|c| c.codings[0].code.as_deref() == Some("ATT")))
        .expect("ATT");
    assert_eq!(att.code.text.as_deref(), Some("Slechthorend: duidelijk en langzaam spreken."));
}

#[test]
fn what_is_not_mapped_is_reported_once_at_its_top() {
    let d = fixture();
    let at = |suffix: &str| {
        d.outcome.issues.iter().filter(|i| i.expression.as_deref().is_some_and(|e| e.ends_with(suffix))).count()
    };
    // an unknown section is one warning, not one per child
    assert_eq!(at("/PrimaryCareProvision/component9"), 1);
    assert_eq!(
        d.outcome.issues.iter().filter(|i| i.expression.as_deref().is_some_and(|e| e.contains("component9/"))).count(),
        0
    );
    let sec = d
        .outcome
        .issues
        .iter()
        .find(|i| i.expression.as_deref().is_some_and(|e| e.ends_with("component9")))
        .expect("issue");
    assert_eq!((sec.severity, sec.code), (Severity::Warning, IssueCode::Incomplete));
    // transport wrapper: information
    let wrapper = d
        .outcome
        .issues
        .iter()
        .find(|i| i.expression.as_deref() == Some("/QUPC_IN990002NL/interactionId"))
        .expect("wrapper");
    assert_eq!((wrapper.severity, wrapper.code), (Severity::Information, IssueCode::Informational));
    // no patient data in the diagnostics
    for i in &d.outcome.issues {
        assert!(!i.diagnostics.contains("999911120") && !i.diagnostics.contains("Vries"), "{i}");
    }
}

// ---- hostile, broken and incomplete input ----

fn err(bytes: &[u8]) -> SourceError {
    match hl7v3::read(bytes) {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn malformed_xml_has_line_and_column() {
    let broken = String::from_utf8_lossy(FIXTURE).replacen(
        "<birthTime value=\"19380214\"/>",
        "<birthTime value=\"19380214\">",
        1,
    );
    let line = broken.lines().position(|l| l.contains("<birthTime")).expect("line") + 1;
    match err(broken.as_bytes()) {
        SourceError::Syntax { format, line: l, column, message } => {
            assert_eq!(format, "XML");
            assert_eq!(l, line + 1, "the mismatch is the next end tag: {message}");
            assert!(column > 1);
        }
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn truncated_message() {
    let cut = &FIXTURE[..FIXTURE.len() / 2];
    match err(cut) {
        SourceError::Syntax { line, message, .. } => {
            assert!(line > 10);
            assert!(message.contains("not closed") || message.contains("unexpected"), "{message}");
        }
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn external_entities_are_refused() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE QUPC_IN990002NL [ <!ENTITY bsn SYSTEM "file:///etc/passwd"> ]>
<QUPC_IN990002NL xmlns="urn:hl7-org:v3"><id root="1" extension="&bsn;"/></QUPC_IN990002NL>"#;
    let e = err(xxe);
    assert!(matches!(&e, SourceError::Invalid(o) if o.issues[0].code == IssueCode::Security), "{e}");
    assert!(e.to_string().contains("DOCTYPE"));
    assert!(!hl7v3::is_professional_summary(xxe));
}

#[test]
fn billion_laughs_are_refused() {
    let mut lol = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
        lol.push_str(&format!(" <!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10)));
    }
    lol.push_str("]>\n<QUPC_IN990002NL xmlns=\"urn:hl7-org:v3\">&lol9;</QUPC_IN990002NL>");
    let started = std::time::Instant::now();
    let e = err(lol.as_bytes());
    assert!(matches!(&e, SourceError::Invalid(o) if o.issues[0].code == IssueCode::Security), "{e}");
    assert!(started.elapsed().as_secs() < 1);
}

#[test]
fn wrong_namespace_or_root() {
    let wrong = String::from_utf8_lossy(FIXTURE).replacen("xmlns=\"urn:hl7-org:v3\"", "xmlns=\"urn:hl7-org:v2\"", 1);
    assert!(!hl7v3::is_professional_summary(wrong.as_bytes()));
    let e = err(wrong.as_bytes());
    assert!(e.to_string().contains("urn:hl7-org:v3"), "{e}");
    let none = b"<QUPC_IN990002NL><id/></QUPC_IN990002NL>";
    assert!(!hl7v3::is_professional_summary(none));
    assert!(err(none).to_string().contains("without a namespace"));
    let other = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>";
    assert!(!hl7v3::is_professional_summary(other));
    assert!(matches!(err(other), SourceError::Invalid(_)));
    assert!(matches!(source::detect(other), Err(SourceError::UnknownFormat(_))));
}

#[test]
fn detection_skips_bom_declaration_and_comments_and_uses_prefixes_properly() {
    let mut with_bom = vec![0xEF, 0xBB, 0xBF];
    with_bom.extend_from_slice(
        b"<?xml version=\"1.0\"?>\n<!-- hi -->\n<?pi x?>\n<v3:QUPC_IN990002NL xmlns:v3=\"urn:hl7-org:v3\"/>",
    );
    assert!(hl7v3::is_professional_summary(&with_bom));
    assert!(!hl7v3::is_professional_summary(b"<!-- QUPC_IN990002NL --><other xmlns=\"urn:hl7-org:v3\"/>"));
    assert!(!hl7v3::is_professional_summary(b""));
    assert!(!hl7v3::is_professional_summary(b"not xml"));
}

#[test]
fn missing_patient() {
    let text = String::from_utf8_lossy(FIXTURE);
    let start = text.find("<subject contextControlCode=\"AP\">").expect("subject");
    let end = text.find("</subject>\n                <author").expect("end") + "</subject>".len();
    let without = format!("{}{}", &text[..start], &text[end..]);
    let e = err(without.as_bytes());
    match &e {
        SourceError::Invalid(o) => {
            assert!(o.issues[0].diagnostics.contains("no patient"), "{e}");
            assert!(o.issues[0].expression.as_deref().is_some_and(|x| x.ends_with("/PrimaryCareProvision")));
        }
        other => panic!("expected invalid, got {other}"),
    }
    let no_pcp = b"<QUPC_IN990002NL xmlns=\"urn:hl7-org:v3\"><ControlActProcess/></QUPC_IN990002NL>";
    assert!(err(no_pcp).to_string().contains("subject"));
}

#[test]
fn invalid_bsn() {
    let bad = String::from_utf8_lossy(FIXTURE).replacen("999911120", "999911121", 1);
    match err(bad.as_bytes()) {
        SourceError::Invalid(o) => {
            let i = &o.issues[0];
            assert_eq!(
                i.expression.as_deref(),
                Some("/QUPC_IN990002NL/ControlActProcess/subject/PrimaryCareProvision/subject/Patient/id/@extension")
            );
            assert!(i.diagnostics.contains("eleven test"));
            assert!(!i.diagnostics.contains("999911121"), "no BSN in messages");
        }
        other => panic!("expected invalid, got {other}"),
    }
}

#[test]
fn deeply_nested_input() {
    let deep = format!(
        "<QUPC_IN990002NL xmlns=\"urn:hl7-org:v3\">{}{}</QUPC_IN990002NL>",
        "<x>".repeat(100_000),
        "</x>".repeat(100_000)
    );
    assert!(matches!(err(deep.as_bytes()), SourceError::Syntax { .. }));
}

#[test]
fn many_unknown_elements_are_summarised() {
    let many = format!(
        "<QUPC_IN990002NL xmlns=\"urn:hl7-org:v3\">{}<ControlActProcess><subject><PrimaryCareProvision><subject><Patient><id root=\"2.16.840.1.113883.2.4.6.3\" extension=\"999911120\"/></Patient></subject></PrimaryCareProvision></subject></ControlActProcess></QUPC_IN990002NL>",
        "<junk/>".repeat(10_000)
    );
    let d = hl7v3::read(many.as_bytes()).expect("converts");
    assert!(d.outcome.issues.len() <= 501);
    assert!(d.outcome.issues.last().is_some_and(|i| i.diagnostics.contains("more")));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = hl7v3::read(&bytes);
            let _ = hl7v3::is_professional_summary(&bytes);
        }

        #[test]
        fn on_xml_ish_text(s in r#"(<[a-zA-Z:]{1,6}( [a-z:]{1,5}="[^"<]{0,6}")?/?>|</[a-zA-Z]{1,4}>|&[a-z#0-9]{0,4};|<!\[CDATA\[x\]\]>|<!--x-->|<\?x\?>|[ a-z\n]{0,4}){0,40}"#) {
            let doc = format!("<QUPC_IN990002NL xmlns=\"urn:hl7-org:v3\">{s}</QUPC_IN990002NL>");
            let _ = hl7v3::read(doc.as_bytes());
            let _ = hl7v3::read(s.as_bytes());
        }

        #[test]
        fn on_mutilated_fixture(cut in 0usize..FIXTURE.len(), byte in any::<u8>()) {
            let mut m = FIXTURE.to_vec();
            m[cut] = byte;
            let _ = hl7v3::read(&m);
            let _ = hl7v3::read(&FIXTURE[..cut]);
        }
    }
}
