//! Property tests: conversion never panics and always answers with a Bundle or a clear
//! error; mappings keep what they are given.

mod common;

use overdracht::convert::{convert, convert_json, ConvertOptions};
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
    fn ids_depend_on_sender_and_source_identity_only(id in "[a-z0-9-]{1,20}", sender in "[a-z0-9|]{1,16}") {
        let v = json!({"resourceType": "Condition", "id": id, "code": {"text": "x"}});
        let opts = ConvertOptions { sender: Some(sender.clone()), ..ConvertOptions::default() };
        let a = convert_json(v.clone(), &opts).expect("converts");
        let b = convert_json(v, &opts).expect("converts");
        prop_assert_eq!(&a.resources[0].id, &b.resources[0].id);
        prop_assert_eq!(&a.resources[0].id, &overdracht::fhir::resource_id(&sender, "Condition", &format!("Condition/{id}")));
    }
}
