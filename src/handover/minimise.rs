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

/// Rewrites `urn:uuid:<id>` references to `Type/id` (what a reader of the facade resolves).
fn relative_references(v: &mut Value, types: &HashMap<String, String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("reference") {
                if let Some(id) = r.strip_prefix("urn:uuid:") {
                    if let Some(t) = types.get(id) {
                        *r = format!("{t}/{id}");
                    }
                }
            }
            for (_, child) in m.iter_mut() {
                relative_references(child, types);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| relative_references(x, types)),
        _ => {}
    }
}

/// The facade rows of a (minimised) conversion.
pub fn facade_rows(
    c: &Conversion,
    holder_ura: &str,
    patient_bsn: &str,
    patient_resource_id: Option<&str>,
) -> Vec<FacadeResource> {
    let types: HashMap<String, String> = c.resources.iter().map(|r| (r.id.clone(), r.resource_type.clone())).collect();
    c.resources
        .iter()
        .map(|r| {
            let mut v = r.resource.clone();
            relative_references(&mut v, &types);
            FacadeResource {
                holder_ura: holder_ura.to_owned(),
                resource_type: r.resource_type.clone(),
                resource_id: r.id.clone(),
                patient_bsn: patient_bsn.to_owned(),
                patient_resource_id: patient_resource_id.map(str::to_owned),
                category: r.category.code().to_owned(),
                resource: v.to_string(),
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
        let types: HashMap<String, String> = [("p".to_owned(), "Patient".to_owned())].into();
        relative_references(&mut v, &types);
        assert_eq!(v["subject"]["reference"], "Patient/p");
    }
}
