//! Assembling emitted resources into a transaction Bundle (or NDJSON lines).
//!
//! Resources are serialised one by one and the Bundle is written around them (the fast
//! path: no intermediate document is built); the entries are `PUT Type/id` with the
//! deterministic ids, so that sending the same record twice changes nothing on the
//! receiving server.

use std::io::Write;

use serde_json::{json, Map, Value};

use super::{datatypes, Emitted};
use crate::model::{SourceMessage, When};

/// The Bundle's `identifier` and `timestamp` from the message the record came in. The
/// timestamp is an `instant`: only a creation time with a time of day gives one.
fn message_fields(message: Option<&SourceMessage>) -> (Option<Value>, Option<Value>) {
    let Some(m) = message else {
        return (None, None);
    };
    let identifier = m.identifier.as_ref().map(datatypes::identifier);
    let timestamp = match &m.created {
        Some(w @ When::DateTime(..)) => Some(Value::String(w.to_fhir())),
        _ => None,
    };
    (identifier, timestamp)
}

/// A FHIR transaction Bundle of `PUT Type/id` entries, as a JSON value.
pub fn transaction(resources: &[Emitted], message: Option<&SourceMessage>) -> Value {
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
    let (identifier, timestamp) = message_fields(message);
    if let Some(i) = identifier {
        b.insert("identifier".into(), i);
    }
    if let Some(t) = timestamp {
        b.insert("timestamp".into(), t);
    }
    // FHIR JSON has no empty arrays: a record with nothing to pass on has no entries.
    if !entries.is_empty() {
        b.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(b)
}

/// Writes the transaction Bundle as compact JSON, byte for byte what serialising
/// [`transaction`] gives, without building it first.
pub fn write_transaction(resources: &[Emitted], message: Option<&SourceMessage>, out: &mut Vec<u8>) {
    write_transaction_spans(resources, message, out);
}

/// [`write_transaction`], returning where in `out` each resource's JSON was written (one
/// range per resource, in order): the compact JSON of that resource alone, which a caller
/// that needs it again (the read facade's copy, see `handover::minimise`) takes from here
/// instead of serialising the resource a second time.
pub fn write_transaction_spans(
    resources: &[Emitted],
    message: Option<&SourceMessage>,
    out: &mut Vec<u8>,
) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::with_capacity(resources.len());
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":"transaction""#);
    let (identifier, timestamp) = message_fields(message);
    for (key, v) in [("identifier", identifier), ("timestamp", timestamp)] {
        if let Some(v) = v {
            let _ = write!(out, r#","{key}":"#);
            // Serialising a serde_json::Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &v);
        }
    }
    if resources.is_empty() {
        out.push(b'}');
        return spans;
    }
    out.extend_from_slice(br#","entry":["#);
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // ids and resource types are ASCII without quotes (UUIDs, FHIR type names)
        let _ = write!(out, r#"{{"fullUrl":"urn:uuid:{}","resource":"#, r.id);
        let start = out.len();
        // Serialising a serde_json::Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &r.resource);
        spans.push(start..out.len());
        let _ = write!(out, r#","request":{{"method":"PUT","url":"{}/{}"}}}}"#, r.resource_type, r.id);
    }
    out.extend_from_slice(b"]}");
    spans
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
        let message = SourceMessage {
            identifier: Some(crate::model::Identifier { system: Some("urn:oid:1.2.3".into()), value: "m-1".into() }),
            created: When::parse("2017-06-21T12:17:35+02:00").ok(),
        };
        for m in [None, Some(&message)] {
            let mut out = vec![];
            let spans = write_transaction_spans(&rs, m, &mut out);
            assert_eq!(out, serde_json::to_vec(&transaction(&rs, m)).expect("serialise"));
            assert_eq!(spans.len(), rs.len());
            for (span, r) in spans.iter().zip(&rs) {
                assert_eq!(out[span.clone()], serde_json::to_vec(&r.resource).expect("serialise"));
            }
            let mut empty = vec![];
            write_transaction(&[], m, &mut empty);
            assert_eq!(empty, serde_json::to_vec(&transaction(&[], m)).expect("serialise"));
        }
        let b = transaction(&rs, Some(&message));
        assert_eq!(b["identifier"], json!({"system": "urn:oid:1.2.3", "value": "m-1"}));
        assert_eq!(b["timestamp"], json!("2017-06-21T12:17:35+02:00"));
        // a creation day without a time is no instant
        let day = SourceMessage { identifier: None, created: When::parse("2017-06-21").ok() };
        assert!(transaction(&rs, Some(&day)).get("timestamp").is_none());
    }
}
