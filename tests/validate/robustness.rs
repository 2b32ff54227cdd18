//! Arbitrary input never panics the validator: random JSON shaped like FHIR, and fixtures with a
//! random part replaced by random JSON.

use overdracht::validate::Validator;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const NAMES: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "profile",
    "security",
    "extension",
    "url",
    "valueString",
    "valueQuantity",
    "_birthDate",
    "birthDate",
    "identifier",
    "system",
    "value",
    "code",
    "coding",
    "status",
    "subject",
    "reference",
    "entry",
    "resource",
    "fullUrl",
    "request",
    "contained",
    "component",
    "category",
    "effectiveDateTime",
    "name",
    "given",
    "_given",
    "telecom",
];
const TYPES: &[&str] =
    &["Patient", "Observation", "Bundle", "Condition", "Extension", "Nope", "Parameters", "Composition"];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(TYPES).prop_map(|s| json!(s)),
        Just(json!("http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient")),
        Just(json!("2024-02-30")),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(NAMES), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = Validator::embedded().validate(&v);
    }

    #[test]
    fn arbitrary_resources_never_panic(rt in prop::sample::select(TYPES), body in arb_json(), profile in prop::sample::select(&[
        "http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient",
        "http://nictiz.nl/fhir/StructureDefinition/nl-core-BloodPressure",
        "https://w3id.org/overdracht/fhir/StructureDefinition/Referral",
    ][..])) {
        let mut r = match body { Value::Object(o) => Value::Object(o), other => json!({"x": other}) };
        r["resourceType"] = json!(rt);
        r["meta"] = json!({"profile": [profile]});
        let v = Validator::embedded();
        let _ = v.validate(&r);
        let _ = v.validate_against(&r, profile);
    }

    #[test]
    fn damaged_fixtures_never_panic(which in 0usize..3, key in prop::sample::select(NAMES), junk in arb_json()) {
        let name = ["nl-core-Patient", "nl-core-BloodPressure", "Referral"][which];
        let path = format!("{}/tests/fixtures/validate/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let mut r: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        r[key] = junk;
        let _ = Validator::embedded().validate(&r);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    // Validation runs on a 2 MiB stack, as a tokio worker or test thread has.
    let handle = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut v = json!({"resourceType": "Patient"});
            for _ in 0..300 {
                v = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": v}]});
            }
            let inner = std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn_scoped(s, || Validator::embedded().validate(&v).has_errors())
                    .expect("spawn")
                    .join()
                    .expect("validation did not overflow")
            });
            // serde_json's Drop of deeply nested values is itself recursive: hence the big outer stack.
            drop(v);
            inner
        })
        .expect("spawn");
    assert!(handle.join().expect("join"));
}
