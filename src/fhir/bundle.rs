//! Assembling emitted resources into a transaction Bundle (or NDJSON lines).
//!
//! Resources are serialised one by one and the Bundle is written around them (the fast
//! path: no intermediate document is built); the entries are `PUT Type/id` with the
//! deterministic ids, so that sending the same record twice changes nothing on the
//! receiving server.

use std::io::Write;

use serde_json::{json, Map, Value};

use super::Emitted;

/// A FHIR transaction Bundle of `PUT Type/id` entries, as a JSON value.
pub fn transaction(resources: &[Emitted]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            let mut e = Map::with_capacity(3);
            e.insert("fullUrl".into(), Value::String(format!("urn:uuid:{}", r.id)));
            e.insert("resource".into(), r.resource.clone());
            e.insert("request".into(), json!({"method": "PUT", "url": format!("{}/{}", r.resource_type, r.id)}));
            Value::Object(e)
        })
        .collect();
    let mut b = Map::with_capacity(3);
    b.insert("resourceType".into(), json!("Bundle"));
    b.insert("type".into(), json!("transaction"));
    // FHIR JSON has no empty arrays: a record with nothing to pass on has no entries.
    if !entries.is_empty() {
        b.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(b)
}

/// Writes the transaction Bundle as compact JSON, byte for byte what serialising
/// [`transaction`] gives, without building it first.
pub fn write_transaction(resources: &[Emitted], out: &mut Vec<u8>) {
    if resources.is_empty() {
        out.extend_from_slice(br#"{"resourceType":"Bundle","type":"transaction"}"#);
        return;
    }
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":"transaction","entry":["#);
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // ids and resource types are ASCII without quotes (UUIDs, FHIR type names)
        let _ = write!(out, r#"{{"fullUrl":"urn:uuid:{}","resource":"#, r.id);
        // Serialising a serde_json::Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &r.resource);
        let _ = write!(out, r#","request":{{"method":"PUT","url":"{}/{}"}}}}"#, r.resource_type, r.id);
    }
    out.extend_from_slice(b"]}");
}

/// Writes the resources as NDJSON: one resource per line.
pub fn ndjson(resources: &[Emitted], out: &mut Vec<u8>) {
    for r in resources {
        // Serialising a serde_json::Value into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, &r.resource).is_ok() {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DataCategory;

    #[test]
    fn written_bundle_equals_the_serialised_value() {
        let rs = vec![
            Emitted {
                resource_type: "Patient".into(),
                id: "a".into(),
                category: DataCategory::Identification,
                mapping: "Patient",
                source_path: "Patient".into(),
                resource: json!({"resourceType": "Patient", "id": "a", "name": [{"text": "Ä \"q\""}]}),
            },
            Emitted {
                resource_type: "Condition".into(),
                id: "b".into(),
                category: DataCategory::Problems,
                mapping: "Problem",
                source_path: "Condition".into(),
                resource: json!({"resourceType": "Condition", "id": "b"}),
            },
        ];
        let mut out = vec![];
        write_transaction(&rs, &mut out);
        assert_eq!(out, serde_json::to_vec(&transaction(&rs)).expect("serialise"));
        let mut empty = vec![];
        write_transaction(&[], &mut empty);
        assert_eq!(empty, serde_json::to_vec(&transaction(&[])).expect("serialise"));
    }
}
