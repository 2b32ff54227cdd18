//! "Take what you map, report what is left": the mechanism behind lossless-or-reported.
//!
//! A source mapping works on its JSON input and *takes* every element it maps: the taken
//! value is replaced by a `null` tombstone, so that array indices stay those of the source
//! and a container that was not touched at all has no tombstone inside. When the mapping
//! is done, [`leftovers`] reports each unmapped element once, at the highest path that was
//! not touched. (No copy of the original is needed: the tombstones are the record. FHIR
//! JSON cannot contain `null`, so a tombstone is never confused with data.)

use serde_json::Value;

use crate::diagnostics::{Issue, Outcome};

/// Takes member `key` of an object, leaving a tombstone (None if absent, already taken,
/// or `v` is not an object).
pub fn take(v: &mut Value, key: &str) -> Option<Value> {
    let slot = v.as_object_mut()?.get_mut(key)?;
    let old = std::mem::take(slot);
    (!old.is_null()).then_some(old)
}

/// Takes a string member. A member of another JSON type is left in place (and so reported).
pub fn take_str(v: &mut Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(_)) => match take(v, key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

pub fn take_bool(v: &mut Value, key: &str) -> Option<bool> {
    let b = v.get(key)?.as_bool()?;
    take(v, key);
    Some(b)
}

pub fn take_i64(v: &mut Value, key: &str) -> Option<i64> {
    let n = v.get(key)?.as_i64()?;
    take(v, key);
    Some(n)
}

/// A number member as its decimal text.
pub fn take_number(v: &mut Value, key: &str) -> Option<String> {
    let n = match v.get(key)? {
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    take(v, key);
    Some(n)
}

/// Mutable access to a member object (which stays in place for leftover reporting).
pub fn member<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    v.as_object_mut()?.get_mut(key).filter(|m| m.is_object())
}

/// The elements of an array member (or a single object member, as a one-element list),
/// each with its index. Consumed elements (`null`) are skipped.
pub fn elements<'a>(v: &'a mut Value, key: &str) -> Vec<(usize, &'a mut Value)> {
    match v.as_object_mut().and_then(|o| o.get_mut(key)) {
        Some(Value::Array(a)) => a.iter_mut().enumerate().filter(|(_, e)| !e.is_null()).collect(),
        Some(o @ Value::Object(_)) => vec![(0, o)],
        _ => vec![],
    }
}

/// Takes the string elements of an array member.
pub fn take_strings(v: &mut Value, key: &str) -> Vec<String> {
    let mut out = vec![];
    if let Some(Value::Array(a)) = v.as_object_mut().and_then(|o| o.get_mut(key)) {
        for e in a.iter_mut() {
            if let Value::String(s) = e {
                out.push(std::mem::take(s));
                *e = Value::Null;
            }
        }
    }
    out
}

/// Takes the first extension with `url` from `v.extension` (or `v.modifierExtension`
/// when `modifier`), returning the extension object without its url.
pub fn take_extension(v: &mut Value, url: &str) -> Option<Value> {
    take_extension_in(v, "extension", url)
}

pub fn take_modifier_extension(v: &mut Value, url: &str) -> Option<Value> {
    take_extension_in(v, "modifierExtension", url)
}

fn take_extension_in(v: &mut Value, list: &str, url: &str) -> Option<Value> {
    let arr = v.as_object_mut()?.get_mut(list)?.as_array_mut()?;
    let e = arr.iter_mut().find(|e| e.get("url").and_then(Value::as_str) == Some(url))?;
    let mut ext = std::mem::take(e);
    take(&mut ext, "url");
    Some(ext)
}

/// Takes every extension with `url`.
pub fn take_extensions(v: &mut Value, url: &str) -> Vec<Value> {
    let mut out = vec![];
    while let Some(e) = take_extension(v, url) {
        out.push(e);
    }
    out
}

/// Marks a whole member as mapped (for elements that carry no information of their own
/// in the target, like a narrative that is generated from the structured data).
pub fn consume(v: &mut Value, key: &str) {
    take(v, key);
}

/// The number of source elements (primitive values) in `v`; tombstones are not counted.
/// Before mapping this is the record's size; after, what is left of it (the unmapped part).
pub fn count_elements(v: &Value) -> usize {
    match v {
        Value::Null => 0,
        Value::Object(o) => o.values().map(count_elements).sum(),
        Value::Array(a) => a.iter().map(count_elements).sum(),
        _ => 1,
    }
}

/// True if nothing is left: only tombstones (and empty containers).
fn is_spent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.values().all(is_spent),
        Value::Array(a) => a.iter().all(is_spent),
        _ => false,
    }
}

/// True if something inside was taken.
fn is_touched(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.values().any(is_touched),
        Value::Array(a) => a.iter().any(is_touched),
        _ => false,
    }
}

/// Reports what is left of `remaining` as warning/information issues with FHIRPath-like
/// expressions rooted at `root`.
pub fn leftovers(root: &str, remaining: &Value, out: &mut Outcome) {
    if is_spent(remaining) {
        return;
    }
    walk(root, remaining, out);
}

fn walk(path: &str, v: &Value, out: &mut Outcome) {
    if is_spent(v) {
        return;
    }
    if !is_touched(v) {
        report(path, v, out);
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                walk(&format!("{path}.{k}"), c, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                walk(&format!("{path}[{i}]"), c, out);
            }
        }
        _ => report(path, v, out),
    }
}

fn report(path: &str, left: &Value, out: &mut Outcome) {
    // A list of extensions is reported extension by extension, so that each url is named.
    if let Value::Array(items) = left {
        if !items.is_empty() && items.iter().all(|e| e.is_null() || e.get("url").is_some()) {
            for (i, e) in items.iter().enumerate().filter(|(_, e)| !e.is_null()) {
                report(&format!("{path}[{i}]"), e, out);
            }
            return;
        }
    }
    // Name the extension, never the value (values may be patient data).
    let what = match left.get("url").and_then(Value::as_str) {
        Some(url) => format!("extension {url}"),
        None => "element".to_owned(),
    };
    let class = super::leftover::fhir(path, left.get("url").and_then(Value::as_str));
    out.push(Issue::leftover(class, format!("{what} not mapped: it is not in the output")).at(path));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_only_what_was_not_taken_with_source_indices() {
        let original = json!({
            "resourceType": "Patient",
            "name": [{"family": "Jansen", "given": ["Jan"], "suffix": ["jr"]}],
            "extension": [{"url": "http://a", "valueString": "x"}, {"url": "http://b", "valueString": "y"}],
            "photo": [{"contentType": "image/png"}]
        });
        let mut v = original.clone();
        take(&mut v, "resourceType");
        for (_, n) in elements(&mut v, "name") {
            take_str(n, "family");
            take_strings(n, "given");
        }
        take_extension(&mut v, "http://a");
        let mut out = Outcome::new();
        leftovers("Patient", &v, &mut out);
        let paths: Vec<&str> = out.issues.iter().filter_map(|i| i.expression.as_deref()).collect();
        assert_eq!(paths, vec!["Patient.name[0].suffix", "Patient.extension[1]", "Patient.photo"]);
        assert!(out.issues[1].diagnostics.contains("http://b"));
        assert!(!out.issues.iter().any(|i| i.diagnostics.contains('y')), "values are never echoed");
    }

    #[test]
    fn fully_taken_input_reports_nothing() {
        let original = json!({"a": [{"b": 1}], "c": "d"});
        let mut v = original.clone();
        for (_, e) in elements(&mut v, "a") {
            take_i64(e, "b");
        }
        take_str(&mut v, "c");
        let mut out = Outcome::new();
        leftovers("X", &v, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn wrong_json_types_are_left_and_reported() {
        let original = json!({"family": 12});
        let mut v = original.clone();
        assert_eq!(take_str(&mut v, "family"), None);
        let mut out = Outcome::new();
        leftovers("HumanName", &v, &mut out);
        assert_eq!(out.issues.len(), 1);
    }
}
