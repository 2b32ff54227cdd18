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

/// A resource serialised with its `urn:uuid:<id>` references rewritten to `Type/id` (what a
/// reader of the facade resolves), written straight from the conversion's value: no copy
/// of the resource is made to rewrite it.
struct Relative<'a> {
    v: &'a Value,
    types: &'a HashMap<&'a str, &'a str>,
}

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

/// The facade rows of a (minimised) conversion.
pub fn facade_rows(
    c: &Conversion,
    holder_ura: &str,
    patient_bsn: &str,
    patient_resource_id: Option<&str>,
) -> Vec<FacadeResource> {
    let types: HashMap<&str, &str> = c.resources.iter().map(|r| (r.id.as_str(), r.resource_type.as_str())).collect();
    c.resources
        .iter()
        .map(|r| FacadeResource {
            holder_ura: holder_ura.to_owned(),
            resource_type: r.resource_type.clone(),
            resource_id: r.id.clone(),
            patient_bsn: patient_bsn.to_owned(),
            patient_resource_id: patient_resource_id.map(str::to_owned),
            category: r.category.code().to_owned(),
            // Serialising a Value (strings as keys) cannot fail.
            resource: serde_json::to_string(&Relative { v: &r.resource, types: &types }).unwrap_or_default(),
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
