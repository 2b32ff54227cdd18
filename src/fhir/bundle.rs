//! Assembling emitted resources into a transaction Bundle (or NDJSON lines).
//!
//! Resources are serialised one by one and the Bundle is assembled around them; the
//! entries are `PUT Type/id` with the deterministic ids, so that sending the same record
//! twice changes nothing on the receiving server.

use serde_json::{json, Value};

use super::Emitted;

/// A FHIR transaction Bundle of `PUT Type/id` entries.
pub fn transaction(resources: &[Emitted]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            json!({
                "fullUrl": format!("urn:uuid:{}", r.id),
                "resource": r.resource,
                "request": {"method": "PUT", "url": format!("{}/{}", r.resource_type, r.id)},
            })
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Writes the resources as NDJSON: one resource per line.
pub fn ndjson(resources: &[Emitted], out: &mut Vec<u8>) {
    for r in resources {
        // Serialising a serde_json::Value cannot fail.
        if serde_json::to_writer(&mut *out, &r.resource).is_ok() {
            out.push(b'\n');
        }
    }
}
