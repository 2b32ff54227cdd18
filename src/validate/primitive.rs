//! Primitive values: JSON type, the R4 regex of the type, and the calendar.
//!
//! The regexes come from the R4 definitions (in the embedded tables); they check the shape of a
//! value but not the calendar (`2023-02-30` matches the `date` regex), so dates get a second look.

use serde_json::Value;

/// What JSON type a FHIR primitive is written as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Boolean,
    Integer,
    Number,
    String,
}

/// The R4 primitive types (their names begin with a lower-case letter; `xhtml` is left out:
/// it is not a choice type).
pub(crate) const TYPES: [&str; 19] = [
    "base64Binary",
    "boolean",
    "canonical",
    "code",
    "date",
    "dateTime",
    "decimal",
    "id",
    "instant",
    "integer",
    "markdown",
    "oid",
    "positiveInt",
    "string",
    "time",
    "unsignedInt",
    "uri",
    "url",
    "uuid",
];

/// Whether `fhir_type` is an R4 primitive type ([`TYPES`]).
pub(crate) fn is_primitive(fhir_type: &str) -> bool {
    TYPES.contains(&fhir_type)
}

pub(crate) fn json_kind(fhir_type: &str) -> JsonKind {
    match fhir_type {
        "boolean" => JsonKind::Boolean,
        "integer" | "positiveInt" | "unsignedInt" => JsonKind::Integer,
        "decimal" => JsonKind::Number,
        _ => JsonKind::String,
    }
}

pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A problem with a primitive value, as a message; `None` when the JSON type is right
/// (the regex is checked separately).
pub(crate) fn check_json_type(fhir_type: &str, v: &Value) -> Option<String> {
    let ok = match json_kind(fhir_type) {
        JsonKind::Boolean => v.is_boolean(),
        JsonKind::Integer => match v.as_i64() {
            Some(i) => match fhir_type {
                "positiveInt" => i >= 1 && i <= i64::from(i32::MAX),
                "unsignedInt" => i >= 0 && i <= i64::from(i32::MAX),
                _ => i >= i64::from(i32::MIN) && i <= i64::from(i32::MAX),
            },
            None => false,
        },
        JsonKind::Number => v.is_number(),
        JsonKind::String => v.is_string(),
    };
    if ok {
        return None;
    }
    let expected = match json_kind(fhir_type) {
        JsonKind::Boolean => "a JSON boolean (true or false, without quotes)".to_string(),
        JsonKind::Integer => {
            format!("a JSON integer in the range of {fhir_type} (32-bit, without quotes)")
        }
        JsonKind::Number => "a JSON number (without quotes)".to_string(),
        JsonKind::String => "a JSON string".to_string(),
    };
    Some(format!("a FHIR {fhir_type} must be {expected}, found {}", describe(v)))
}

/// The R4 regexes of the string-like types, as plain code: these run on nearly every value, and a
/// character loop is several times faster than a regex engine for them. `None` for types that
/// use the regex (dates, numbers, oids, uuids, ...). Equivalence is unit-tested against the
/// regexes from the tables.
pub(crate) fn fast_format(fhir_type: &str, s: &str) -> Option<bool> {
    match fhir_type {
        // [ \r\n\t\S]+
        "string" | "markdown" => {
            Some(!s.is_empty() && s.chars().all(|c| matches!(c, ' ' | '\r' | '\n' | '\t') || !c.is_whitespace()))
        }
        // \S*
        "uri" | "url" | "canonical" => Some(!s.chars().any(char::is_whitespace)),
        // [^\s]+(\s[^\s]+)*
        "code" => {
            let mut prev_ws = true; // no leading whitespace
            for c in s.chars() {
                let ws = c.is_whitespace();
                if ws && prev_ws {
                    return Some(false);
                }
                prev_ws = ws;
            }
            Some(!s.is_empty() && !prev_ws)
        }
        // [A-Za-z0-9\-\.]{1,64}: every resource has one
        "id" => {
            Some((1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        }
        _ => None,
    }
}

/// How a value of this type should look, for messages.
pub(crate) fn format_hint(fhir_type: &str) -> &'static str {
    match fhir_type {
        "date" => " (expected YYYY, YYYY-MM or YYYY-MM-DD)",
        "dateTime" => " (expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz with an offset)",
        "instant" => " (expected YYYY-MM-DDThh:mm:ss(.sss)+zz:zz, with seconds and an offset)",
        "time" => " (expected hh:mm:ss)",
        "id" => " (1-64 characters: A-Z a-z 0-9 - .)",
        "code" => " (no leading, trailing or double whitespace)",
        "oid" => " (expected urn:oid:1.2.3)",
        "uuid" => " (expected urn:uuid: and a lowercase UUID)",
        "string" | "markdown" => " (must not be empty)",
        _ => "",
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

/// Calendar check for date, dateTime and instant values that passed the regex: the day must exist.
pub(crate) fn check_calendar(s: &str) -> Option<String> {
    let year: u32 = s.get(0..4)?.parse().ok()?;
    let month: u32 = s.get(5..7)?.parse().ok()?;
    let day: u32 = s.get(8..10)?.parse().ok()?;
    let days = match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (day > days).then(|| format!("{year:04}-{month:02} has no day {day}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_types() {
        assert!(check_json_type("boolean", &json!("true")).is_some());
        assert!(check_json_type("boolean", &json!(true)).is_none());
        assert!(check_json_type("positiveInt", &json!(0)).is_some());
        assert!(check_json_type("unsignedInt", &json!(0)).is_none());
        assert!(check_json_type("integer", &json!(1.5)).is_some());
        assert!(check_json_type("decimal", &json!("1.5")).is_some());
        assert!(check_json_type("date", &json!(2020)).is_some());
    }

    #[test]
    fn fast_formats_agree_with_the_r4_regexes() {
        let v = crate::validate::Validator::embedded();
        let samples = [
            "",
            " ",
            "a",
            "a b",
            "a  b",
            " a",
            "a ",
            "a\tb",
            "a\u{a0}b",
            "line\nbreak",
            "x\u{b}y",
            "http://x.org/a b",
            "urn:oid:1.2",
            "ÄÖü",
            "\u{2003}",
            "a\r\nb",
            "a_b",
            "a/b",
            "a=b",
            "Patient-1.2",
            "0123456789012345678901234567890123456789012345678901234567890123",
            "01234567890123456789012345678901234567890123456789012345678901234",
            "één",
        ];
        for ty in ["string", "markdown", "uri", "url", "canonical", "code", "id"] {
            for s in samples {
                let by_regex = v.primitive_regex_matches(ty, s);
                assert_eq!(fast_format(ty, s), by_regex, "{ty} {s:?}");
            }
        }
    }

    #[test]
    fn calendar() {
        assert!(check_calendar("2023-02-29").is_some());
        assert!(check_calendar("2024-02-29").is_none());
        assert!(check_calendar("2024-04-31T10:00:00Z").is_some());
        assert!(check_calendar("2024").is_none());
    }
}
