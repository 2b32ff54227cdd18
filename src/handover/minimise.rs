//! Data minimisation of a handover: what the transfer decision removed never reaches the
//! store, and what remains is still a valid Bundle.
//!
//! Resources whose data category (`meta.security`) the agreement does not cover are dropped.
//! A reference to a dropped resource becomes display-only (the `reference` is removed, a
//! `display` says why), so nothing points into the void; a resource that is no longer valid
//! after that is dropped too (and counted), until the set is stable. The kept resources are
//! then indexed for the read facade with references rewritten from `urn:uuid:` to `Type/id`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::convert::Conversion;
use crate::model::DataCategory;
use crate::store::FacadeResource;
use crate::validate::Validator;

/// What minimisation did: resources removed per category, and resources removed because
/// they could not stand without a removed one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Minimised {
    pub removed: BTreeMap<DataCategory, usize>,
    pub dependent: BTreeMap<DataCategory, usize>,
    /// Resources whose references were made display-only.
    pub references_cut: usize,
}

const CUT_DISPLAY: &str = "not passed on: outside the data-transfer agreement";

/// Drops the resources of the `removed` categories and cuts references to them.
pub fn minimise(c: &mut Conversion, removed: &BTreeSet<DataCategory>) -> Minimised {
    let mut out = Minimised::default();
    if removed.is_empty() {
        return out;
    }
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    c.resources.retain(|r| {
        if removed.contains(&r.category) {
            *out.removed.entry(r.category).or_insert(0) += 1;
            dropped.insert(format!("urn:uuid:{}", r.id));
            false
        } else {
            true
        }
    });
    let validator = Validator::embedded();
    loop {
        let mut newly = BTreeSet::new();
        for r in &mut c.resources {
            if cut_references(&mut r.resource, &dropped) {
                out.references_cut += 1;
                if validator.validate(&r.resource).has_errors() {
                    newly.insert(r.id.clone());
                }
            }
        }
        if newly.is_empty() {
            break;
        }
        c.resources.retain(|r| {
            if newly.contains(&r.id) {
                *out.dependent.entry(r.category).or_insert(0) += 1;
                dropped.insert(format!("urn:uuid:{}", r.id));
                false
            } else {
                true
            }
        });
    }
    out
}

/// Makes references to `dropped` display-only; true when anything changed.
fn cut_references(v: &mut Value, dropped: &BTreeSet<String>) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = false;
            if m.get("reference").and_then(Value::as_str).is_some_and(|r| dropped.contains(r)) {
                m.remove("reference");
                m.remove("type");
                if !m.contains_key("display") {
                    m.insert("display".into(), Value::from(CUT_DISPLAY));
                }
                changed = true;
            }
            for (_, child) in m.iter_mut() {
                changed |= cut_references(child, dropped);
            }
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |acc, x| cut_references(x, dropped) | acc),
        _ => false,
    }
}

/// A resource's compact JSON (as serde_json writes it) with its `urn:uuid:<id>` references
/// to the handover's own resources rewritten to `Type/id` (what a reader of the facade
/// resolves); every other byte is kept. The JSON is the resource's span of the output
/// Bundle, already written: the facade copy costs a scan of it, not a second serialisation
/// of the resource (which cost as much as writing the whole Bundle).
///
/// A match is exact: in compact JSON a key starts right after `{` or `,`, and the needle's
/// `":"` cannot occur inside a string (a quote in a string is escaped), so what is found is
/// a member named `reference` whose value is a string starting with `urn:uuid:`; its id
/// runs to the closing quote (ids are UUIDs, without escapes; an id that is not one of the
/// handover's resources is left as it is).
fn relative_json(json: &str, types: &HashMap<&str, &str>) -> String {
    const NEEDLE: &str = "\"reference\":\"urn:uuid:";
    let finder = memchr::memmem::Finder::new(NEEDLE);
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    for at in finder.find_iter(bytes) {
        let after_key_start = at > 0 && matches!(bytes[at - 1], b'{' | b',');
        let id_start = at + NEEDLE.len();
        let Some(id_len) = memchr::memchr(b'"', &bytes[id_start..]) else { break };
        let id = &json[id_start..id_start + id_len];
        if let (true, Some(t)) = (after_key_start, types.get(id)) {
            out.push_str(&json[copied..at]);
            out.push_str("\"reference\":\"");
            out.push_str(t);
            out.push('/');
            out.push_str(id);
            copied = id_start + id_len;
        }
    }
    out.push_str(&json[copied..]);
    out
}

/// A resource serialised with its `urn:uuid:<id>` references rewritten to `Type/id`, from
/// its value: what [`relative_json`] must give (the facade copy before it, kept as the
/// tests' oracle).
#[cfg(test)]
struct Relative<'a> {
    v: &'a Value,
    types: &'a HashMap<&'a str, &'a str>,
}

#[cfg(test)]
impl serde::Serialize for Relative<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.v {
            Value::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    if k == "reference" {
                        let target = v
                            .as_str()
                            .and_then(|r| r.strip_prefix("urn:uuid:"))
                            .and_then(|id| self.types.get(id).map(|t| (*t, id)));
                        if let Some((t, id)) = target {
                            map.serialize_entry(k, &format_args!("{t}/{id}"))?;
                            continue;
                        }
                    }
                    map.serialize_entry(k, &Relative { v, types: self.types })?;
                }
                map.end()
            }
            Value::Array(a) => s.collect_seq(a.iter().map(|v| Relative { v, types: self.types })),
            other => serde::Serialize::serialize(other, s),
        }
    }
}

/// The facade rows of a (minimised) conversion, from its output Bundle: `bundle` as
/// [`Conversion::bundle_bytes_with_spans`] wrote it, `spans` where each resource is in it.
pub fn facade_rows(
    c: &Conversion,
    (bundle, spans): (&str, &[std::ops::Range<usize>]),
    holder_ura: &str,
    patient_bsn: &str,
    patient_resource_id: Option<&str>,
) -> Vec<FacadeResource> {
    let types: HashMap<&str, &str> = c.resources.iter().map(|r| (r.id.as_str(), r.resource_type.as_str())).collect();
    let mut spans = spans.iter();
    c.resources
        .iter()
        .map(|r| {
            // A span of the Bundle is a whole resource (it starts and ends on a character).
            // Without one (a Bundle not written from these resources: a defect) the resource
            // is serialised here, never stored empty.
            let resource = match spans.next().and_then(|span| bundle.get(span.clone())) {
                Some(json) => relative_json(json, &types),
                None => relative_json(&r.resource.to_string(), &types),
            };
            FacadeResource {
                holder_ura: holder_ura.to_owned(),
                resource_type: r.resource_type.clone(),
                resource_id: r.id.clone(),
                patient_bsn: patient_bsn.to_owned(),
                patient_resource_id: patient_resource_id.map(str::to_owned),
                category: r.category.code().to_owned(),
                resource,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_to_dropped_resources_become_display_only() {
        let dropped: BTreeSet<String> = ["urn:uuid:a".to_owned()].into();
        let mut v = json!({"encounter": {"reference": "urn:uuid:a", "type": "Encounter"}, "subject": {"reference": "urn:uuid:p"}});
        assert!(cut_references(&mut v, &dropped));
        assert_eq!(v["encounter"], json!({"display": CUT_DISPLAY}));
        assert_eq!(v["subject"]["reference"], "urn:uuid:p");
        let types: HashMap<&str, &str> = [("p", "Patient")].into();
        let written = serde_json::to_string(&Relative { v: &v, types: &types }).expect("serialise");
        let v: Value = serde_json::from_str(&written).expect("JSON");
        assert_eq!(v["subject"]["reference"], "Patient/p");
    }

    /// The facade copy written from the Bundle's bytes is, for every resource of every
    /// example record, what serialising the resource with its references rewritten gives.
    #[test]
    fn facade_copies_from_the_bundle_equal_the_rewritten_resources() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/records");
        let mut checked = 0;
        for file in std::fs::read_dir(dir).expect("examples") {
            let bytes = std::fs::read(file.expect("entry").path()).expect("read");
            let c = crate::convert::convert(&bytes, &Default::default()).expect("convert");
            let (bundle, spans) = c.bundle_bytes_with_spans();
            let bundle = String::from_utf8(bundle).expect("UTF-8");
            let rows = facade_rows(&c, (&bundle, &spans), "87654321", "999911120", c.patient_id());
            let types: HashMap<&str, &str> =
                c.resources.iter().map(|r| (r.id.as_str(), r.resource_type.as_str())).collect();
            assert_eq!(rows.len(), c.resources.len());
            for (row, r) in rows.iter().zip(&c.resources) {
                let expected = serde_json::to_string(&Relative { v: &r.resource, types: &types }).expect("serialise");
                assert_eq!(row.resource, expected, "{}/{}", r.resource_type, r.id);
                assert!(!row.resource.contains("\"reference\":\"urn:uuid:"), "{}", row.resource);
                checked += 1;
            }
            // Without the Bundle's spans, the same rows.
            let without = facade_rows(&c, ("", &[]), "87654321", "999911120", c.patient_id());
            let texts = |rows: &[FacadeResource]| rows.iter().map(|r| r.resource.clone()).collect::<Vec<_>>();
            assert_eq!(texts(&rows), texts(&without));
        }
        assert!(checked > 40, "{checked} resources checked");
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            // Known, unknown and look-alike references, and strings that hold the needle.
            prop_oneof![
                Just("urn:uuid:p"),
                Just("urn:uuid:q"),
                Just("urn:uuid:unknown"),
                Just("Patient/p"),
                Just("\"reference\":\"urn:uuid:p"),
                Just("x\\"),
                Just("urn:uuid:p\""),
            ]
            .prop_map(Value::from),
            "[a-z:\"\\\\ ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("reference".to_owned()),
                            Just("a\"reference".to_owned()),
                            Just("reference\"".to_owned()),
                            "[a-z]{1,3}"
                        ],
                        inner
                    ),
                    0..4
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any JSON, with keys and strings built to look like references: the byte rewrite
        /// and the rewriting serialiser agree.
        #[test]
        fn the_byte_rewrite_equals_the_rewriting_serialiser(v in arb_value()) {
            let types: HashMap<&str, &str> = [("p", "Patient"), ("q", "Practitioner")].into();
            let expected = serde_json::to_string(&Relative { v: &v, types: &types }).expect("serialise");
            let written = relative_json(&v.to_string(), &types);
            proptest::prop_assert_eq!(written, expected);
        }
    }

    /// The facade copy is the resource with only its resolvable references rewritten, in
    /// the same key order (what the former clone-and-rewrite produced).
    #[test]
    fn relative_references_are_the_only_change() {
        let v = json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "urn:uuid:p", "display": "x"},
            "performer": [{"reference": "urn:uuid:unknown"}, {"reference": "Practitioner/q"}], "note": [{"text": "urn:uuid:p \"q\""}],
            "valueQuantity": {"value": 1.5}});
        let types: HashMap<&str, &str> = [("p", "Patient")].into();
        let written = serde_json::to_string(&Relative { v: &v, types: &types }).expect("serialise");
        let mut expected = v.clone();
        expected["subject"]["reference"] = json!("Patient/p");
        assert_eq!(written, expected.to_string());
    }
}
