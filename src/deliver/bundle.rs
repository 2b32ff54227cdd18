//! The Bundle as sent: checked once, and re-shaped into a batch when a server refuses
//! transactions.
//!
//! A batch is not a transaction with another `type`: the server handles each entry on its
//! own and resolves no `urn:uuid:` references between entries. Because every entry is a
//! `PUT Type/id` with an id fixed in advance, each such reference can be rewritten to the
//! `Type/id` it stands for, so that the batch stores exactly what the transaction would have.

use std::collections::HashMap;

use serde_json::{json, Value};

/// Checks that `v` is something to deliver: a Bundle of type `transaction` (or `batch`)
/// whose entries all have a request.
pub fn check(v: &Value) -> Result<(), String> {
    if v["resourceType"] != "Bundle" {
        return Err(format!("not a Bundle (resourceType {})", v["resourceType"]));
    }
    if !matches!(v["type"].as_str(), Some("transaction" | "batch")) {
        return Err(format!("a Bundle of type {} (expected transaction)", v["type"]));
    }
    let entries = v["entry"].as_array().ok_or("a Bundle without entries")?;
    if entries.is_empty() {
        return Err("a Bundle without entries".into());
    }
    for (i, e) in entries.iter().enumerate() {
        if !e["request"]["method"].is_string() || !e["request"]["url"].is_string() {
            return Err(format!("Bundle.entry[{i}] has no request.method and request.url"));
        }
    }
    Ok(())
}

pub fn entries(v: &Value) -> &[Value] {
    v["entry"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// `request.url` of entry `i` (`Type/id`): names an entry in reports without its content.
pub fn entry_url(v: &Value, i: usize) -> String {
    entries(v).get(i).and_then(|e| e["request"]["url"].as_str()).unwrap_or("?").to_owned()
}

/// A batch of the entries `indices` of `bundle`, with `urn:uuid:` references between
/// entries rewritten to `Type/id`.
pub fn to_batch(bundle: &Value, indices: &[usize]) -> Value {
    let all = entries(bundle);
    let mut targets: HashMap<&str, String> = HashMap::new();
    for e in all {
        if let (Some(full), Some("PUT"), Some(url)) =
            (e["fullUrl"].as_str(), e["request"]["method"].as_str(), e["request"]["url"].as_str())
        {
            targets.insert(full, url.split('?').next().unwrap_or(url).to_owned());
        }
    }
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        if let Some(e) = all.get(i) {
            let mut e = e.clone();
            if let Some(r) = e.get_mut("resource") {
                rewrite_references(r, &targets);
            }
            out.push(e);
        }
    }
    let mut batch = json!({"resourceType": "Bundle", "type": "batch", "entry": out});
    if let Some(id) = bundle.get("id") {
        batch["id"] = id.clone();
    }
    batch
}

fn rewrite_references(v: &mut Value, targets: &HashMap<&str, String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "reference" {
                    if let Some(t) = child.as_str().and_then(|s| targets.get(s)) {
                        *child = Value::String(t.clone());
                        continue;
                    }
                }
                rewrite_references(child, targets);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite_references(c, targets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_rewrites_references_between_entries() {
        let t = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"},
             "request": {"method": "PUT", "url": "Patient/p"}},
            {"fullUrl": "urn:uuid:o", "resource": {"resourceType": "Observation", "id": "o",
              "subject": {"reference": "urn:uuid:p"}, "performer": [{"reference": "Practitioner/x"}]},
             "request": {"method": "PUT", "url": "Observation/o"}}
        ]});
        assert!(check(&t).is_ok());
        let b = to_batch(&t, &[1]);
        assert_eq!(b["type"], "batch");
        assert_eq!(entries(&b).len(), 1);
        assert_eq!(b["entry"][0]["resource"]["subject"]["reference"], "Patient/p");
        assert_eq!(b["entry"][0]["resource"]["performer"][0]["reference"], "Practitioner/x");
        assert_eq!(entry_url(&t, 1), "Observation/o");
    }

    #[test]
    fn check_refuses_what_cannot_be_delivered() {
        assert!(check(&json!({"resourceType": "Patient"})).is_err());
        assert!(check(&json!({"resourceType": "Bundle", "type": "searchset", "entry": []})).is_err());
        assert!(check(&json!({"resourceType": "Bundle", "type": "transaction", "entry": [{}]})).is_err());
    }
}
