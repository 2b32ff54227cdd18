//! Property tests: conversion never panics and always answers with a Bundle or a clear
//! error; mappings keep what they are given.

use crate::common;

use crate::oracle::{convert, convert_json};
use overdracht::convert::ConvertOptions;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9 /:._-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("Patient"),
            Just("Bundle"),
            Just("Condition"),
            Just("Observation"),
            Just("2020-01-01"),
            Just("999911120")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("resourceType".to_owned()),
                    Just("entry".to_owned()),
                    Just("resource".to_owned()),
                    Just("identifier".to_owned()),
                    Just("code".to_owned()),
                    Just("coding".to_owned()),
                    Just("subject".to_owned()),
                    Just("patient".to_owned()),
                    Just("format".to_owned()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_gives_a_bundle_or_a_clear_error(v in arb_json()) {
        match convert_json(v, &ConvertOptions::default()) {
            Ok(c) => {
                let b = c.bundle();
                prop_assert_eq!(&b["resourceType"], "Bundle");
                prop_assert!(!c.outcome.has_errors(), "a converted record carries no errors");
            }
            Err(e) => {
                let o = e.to_outcome();
                prop_assert!(o.has_errors());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = convert(&bytes, &ConvertOptions::default());
    }

    #[test]
    fn every_flat_problem_becomes_one_condition_with_its_code(codes in prop::collection::vec("[A-Z][0-9]{2}", 1..12)) {
        let problems: Vec<Value> = codes.iter().enumerate().map(|(i, c)| json!({"id": format!("p{i}"), "code": {"system": "icpc", "code": c}})).collect();
        let v = json!({"format": "overdracht-flat/1", "patient": {"bsn": "999911120"}, "problems": problems});
        let c = convert_json(v, &ConvertOptions::default()).expect("valid dossier converts");
        let conditions: Vec<&Value> = c.resources.iter().filter(|r| r.resource_type == "Condition").map(|r| &r.resource).collect();
        prop_assert_eq!(conditions.len(), codes.len());
        for (cond, code) in conditions.iter().zip(&codes) {
            prop_assert_eq!(&cond["code"]["coding"][0]["code"], &json!(code));
            prop_assert_eq!(&cond["code"]["coding"][0]["system"], "http://hl7.org/fhir/sid/icpc-1-nl");
        }
        common::check_bundle(&c.bundle());
    }

    #[test]
    fn ids_depend_on_sender_patient_and_source_identity(
        id in "[a-z0-9-]{1,20}",
        other_id in "[a-z0-9-]{1,20}",
        sender in "ura[|][0-9]{8}",
        other_sender in "agb-z[|][0-9]{8}",
        (bsn, other_bsn) in two_bsns(),
    ) {
        prop_assume!(id != other_id);
        let record = |bsn: &str, id: &str| json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p", "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}]}},
            {"resource": {"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/p"}, "code": {"text": "x"}}}]});
        let condition_id = |v: Value, sender: &str| {
            let opts = ConvertOptions { sender: Some(sender.to_owned()), ..ConvertOptions::default() };
            let c = convert_json(v, &opts).expect("converts");
            c.resources.iter().find(|r| r.resource_type == "Condition").expect("a Condition").id.clone()
        };
        let base = condition_id(record(&bsn, &id), &sender);
        prop_assert_eq!(&base, &condition_id(record(&bsn, &id), &sender), "the same record gives the same id");
        prop_assert_ne!(&base, &condition_id(record(&bsn, &id), &other_sender), "another sender");
        prop_assert_ne!(&base, &condition_id(record(&other_bsn, &id), &sender), "another patient");
        prop_assert_ne!(&base, &condition_id(record(&bsn, &other_id), &sender), "another source id");
    }
}

// ---------------------------------------------------------------------------------------
// Patient-safe identity (src/fhir/ids.rs): two patients' records never share a resource id,
// whatever their source ids, in every input format; re-sending gives identical output.

/// A valid BSN (eleven test) from eight digits, if one exists.
fn bsn_from(digits: [u8; 8]) -> Option<String> {
    let sum: u32 = digits.iter().enumerate().map(|(i, d)| u32::from(*d) * (9 - i as u32)).sum();
    let check = sum % 11;
    (check < 10 && !(sum == 0 && check == 0)).then(|| {
        let mut s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        s.push(char::from(b'0' + check as u8));
        s
    })
}

fn a_bsn() -> impl Strategy<Value = String> {
    prop::array::uniform8(0u8..10).prop_filter_map("eleven test", bsn_from)
}

fn two_bsns() -> impl Strategy<Value = (String, String)> {
    (a_bsn(), a_bsn()).prop_filter("two patients", |(a, b)| a != b)
}

/// The same record for another patient: every occurrence of the BSN replaced.
fn for_patient(record: &str, from: &str, to: &str) -> Vec<u8> {
    assert!(record.contains(from), "the record names BSN {from}");
    record.replace(from, to).into_bytes()
}

fn stu3_record() -> String {
    std::fs::read_to_string(common::root().join("examples/records/gp-frail-elderly.stu3.json")).expect("example")
}

/// The STU3 example with every resource id and fullUrl removed, and its source ids
/// replaced by `ids` (cycled), as exports that number their resources per export do.
fn stu3_with_ids(ids: Option<&[String]>) -> String {
    let mut v: Value = serde_json::from_str(&stu3_record()).expect("JSON");
    let mut renamed = std::collections::HashMap::new();
    for (n, e) in v["entry"].as_array_mut().expect("entries").iter_mut().enumerate() {
        let e = e.as_object_mut().expect("entry");
        e.remove("fullUrl");
        let r = e.get_mut("resource").and_then(Value::as_object_mut).expect("resource");
        let old = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r.get("id").and_then(Value::as_str).unwrap_or("")
        );
        match ids {
            Some(ids) => {
                // Short ids that every export reuses (a0, b1, ...), unique within the record.
                let new = format!("{}{n}", ids[n % ids.len()]);
                renamed.insert(old, format!("{}/{new}", r["resourceType"].as_str().unwrap_or("")));
                r.insert("id".into(), json!(new));
            }
            None => {
                r.remove("id");
            }
        }
    }
    match ids {
        Some(_) => rename_references(&mut v, &renamed),
        // Nothing has an id, so nothing can be referred to by one: keep display texts only.
        None => drop_references(&mut v),
    }
    v.to_string()
}

fn rename_references(v: &mut Value, renamed: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("reference") {
                if let Some(new) = renamed.get(r.as_str()) {
                    *r = new.clone();
                }
            }
            m.values_mut().for_each(|x| rename_references(x, renamed));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_references(x, renamed)),
        _ => {}
    }
}

fn drop_references(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("reference").is_some_and(Value::is_string) {
                m.remove("reference");
                m.entry("display").or_insert(json!("(no id)"));
            }
            m.values_mut().for_each(drop_references);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_references),
        _ => {}
    }
}

fn r4_record(bsn: &str, ids: &[String]) -> String {
    let id = |i: usize| ids.get(i).map(|s| json!(s));
    let mut entries = vec![
        json!({"resource": {"resourceType": "Patient", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"]},
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}], "name": [{"family": "Jansen"}], "birthDate": "1940-02-03"}}),
    ];
    for (i, code) in ["K86", "T90", "R95"].iter().enumerate() {
        let mut c = json!({"resourceType": "Condition", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Problem"]},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icpc-1-nl", "code": code}]}, "subject": {"display": "patient"}});
        if let Some(id) = id(i) {
            c["id"] = id;
        }
        entries.push(json!({"resource": c}));
    }
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries}).to_string()
}

fn convert_as(bytes: &[u8], format: Option<overdracht::source::Format>) -> overdracht::convert::Conversion {
    let opts = ConvertOptions { format, sender: Some("ura|00001111".into()), ..ConvertOptions::default() };
    convert(bytes, &opts).unwrap_or_else(|e| panic!("converts: {e}"))
}

/// The patient-bound ids of a conversion (shared Organization/Practitioner/Medication left out).
fn bound_ids(c: &overdracht::convert::Conversion) -> std::collections::BTreeSet<String> {
    c.resources
        .iter()
        .filter(|r| overdracht::fhir::ids::is_patient_bound(&r.resource_type))
        .map(|r| format!("{}/{}", r.resource_type, r.id))
        .collect()
}

fn assert_apart(a: &overdracht::convert::Conversion, b: &overdracht::convert::Conversion) -> Result<(), TestCaseError> {
    let (ia, ib) = (bound_ids(a), bound_ids(b));
    prop_assert!(ia.len() > 1 && ib.len() > 1, "both records have patient data");
    let shared: Vec<&String> = ia.intersection(&ib).collect();
    prop_assert!(shared.is_empty(), "two patients share {:?}", shared);
    // And no id at all is shared but those of shared types.
    let all_a: std::collections::BTreeSet<&str> = a.resources.iter().map(|r| r.id.as_str()).collect();
    for r in &b.resources {
        if all_a.contains(r.id.as_str()) {
            prop_assert!(!overdracht::fhir::ids::is_patient_bound(&r.resource_type), "{} shared", r.resource_type);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn two_patients_never_share_an_id_stu3_with_or_without_source_ids(
        (a, b) in two_bsns(),
        ids in prop::option::of(prop::collection::vec("[a-z0-9]{1,3}", 1..6)),
    ) {
        let record = stu3_with_ids(ids.as_deref());
        let ca = convert_as(&for_patient(&record, "999911120", &a), None);
        let cb = convert_as(&for_patient(&record, "999911120", &b), None);
        assert_apart(&ca, &cb)?;
        prop_assert_eq!(ca.bundle_bytes(), convert_as(&for_patient(&record, "999911120", &a), None).bundle_bytes());
    }

    #[test]
    fn two_patients_never_share_an_id_r4(
        (a, b) in two_bsns(),
        ids in prop::collection::vec("[a-z0-9]{1,3}", 0..3),
    ) {
        let f = Some(overdracht::source::Format::FhirR4);
        let ca = convert_as(r4_record(&a, &ids).as_bytes(), f);
        let cb = convert_as(r4_record(&b, &ids).as_bytes(), f);
        assert_apart(&ca, &cb)?;
        prop_assert_eq!(ca.bundle_bytes(), convert_as(r4_record(&a, &ids).as_bytes(), f).bundle_bytes());
    }

    #[test]
    fn two_patients_never_share_an_id_flat((a, b) in two_bsns()) {
        let record = std::fs::read_to_string(common::root().join("examples/records/paediatrician-young-adult.flat.json")).expect("example");
        let ca = convert_as(&for_patient(&record, "999911132", &a), None);
        let cb = convert_as(&for_patient(&record, "999911132", &b), None);
        assert_apart(&ca, &cb)?;
        prop_assert_eq!(ca.bundle_bytes(), convert_as(&for_patient(&record, "999911132", &a), None).bundle_bytes());
    }

    #[test]
    fn two_patients_never_share_an_id_hl7v3((a, b) in two_bsns()) {
        let record = std::fs::read_to_string(common::root().join("tests/fixtures/hl7v3/professional-summary.xml")).expect("fixture");
        let ca = convert_as(&for_patient(&record, "999911120", &a), None);
        let cb = convert_as(&for_patient(&record, "999911120", &b), None);
        assert_apart(&ca, &cb)?;
        prop_assert_eq!(ca.bundle_bytes(), convert_as(&for_patient(&record, "999911120", &a), None).bundle_bytes());
    }
}

/// Ids of id-less resources come from their content, not their place in the Bundle.
#[test]
fn id_less_resources_keep_their_ids_when_the_bundle_is_reordered() {
    let record = stu3_with_ids(None);
    let mut v: Value = serde_json::from_str(&record).expect("JSON");
    v["entry"].as_array_mut().expect("entries").reverse();
    let ids = |c: &overdracht::convert::Conversion| {
        c.resources.iter().map(|r| format!("{}/{}", r.resource_type, r.id)).collect::<std::collections::BTreeSet<_>>()
    };
    let a = convert_as(record.as_bytes(), None);
    let b = convert_as(v.to_string().as_bytes(), None);
    assert!(a.resources.len() > 10);
    assert_eq!(ids(&a), ids(&b));
}
