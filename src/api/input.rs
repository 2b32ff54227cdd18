//! What a request says about its body and its parties, parsed into types.
//!
//! The input format comes from `?format=` (wins) or the Content-Type; without either we
//! detect it from the bytes, as the command line does. Party identifiers are written
//! `system|value` with short system names (`ura|12345678`, `agb-z|01234567`, `uzi|…`,
//! `big|…`), the same notation as the `--sender` option of `overdracht convert`.

use axum::http::{header, HeaderMap};

use super::error::ApiError;
use crate::source::Format;

/// The input format and the media type it came with.
#[derive(Debug, Clone)]
pub struct BodyKind {
    /// Forced format; `None` means detect from the bytes.
    pub format: Option<Format>,
    pub media_type: Option<String>,
}

/// Reads `?format=` and `Content-Type`; 400 for an unknown format name, 415 for a media
/// type we do not read.
pub fn body_kind(headers: &HeaderMap, format_param: Option<&str>) -> Result<BodyKind, ApiError> {
    let media_type = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    let forced = match format_param {
        Some(name) => Some(Format::from_name(name).ok_or_else(|| {
            ApiError::bad_request(
                "format",
                format!(
                    "unknown format {name:?}; use one of fhir-stu3, fhir-r4, flat, hl7v3-ps, fhir-stu3-xml, fhir-r4-xml"
                ),
            )
        })?),
        None => None,
    };
    let from_media = match &media_type {
        None => None,
        Some(mt) => format_of_media_type(mt)?,
    };
    Ok(BodyKind { format: forced.or(from_media), media_type })
}

fn format_of_media_type(mt: &str) -> Result<Option<Format>, ApiError> {
    let mut parts = mt.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let fhir_version = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("fhirVersion").then(|| v.trim().trim_matches('"').to_owned())
    });
    match essence.as_str() {
        "application/fhir+json" => match fhir_version.as_deref() {
            None => Ok(None),
            Some(v) if v.starts_with("3.0") => Ok(Some(Format::FhirStu3)),
            Some(v) if v.starts_with("4.0") => Ok(Some(Format::FhirR4)),
            Some(v) => Err(ApiError::unsupported_media_type(format!(
                "fhirVersion {v} is not read; send FHIR 3.0 (STU3) or 4.0 (R4)"
            ))),
        },
        "application/json" | "application/x-ndjson" => Ok(None),
        "application/hl7-v3+xml" => Ok(Some(Format::Hl7v3Ps)),
        // A Professional Summary or FHIR XML: the root element says which.
        "application/xml" | "text/xml" => Ok(None),
        "application/fhir+xml" => match fhir_version.as_deref() {
            None => Ok(None),
            Some(v) if v.starts_with("3.0") => Ok(Some(Format::FhirStu3Xml)),
            Some(v) if v.starts_with("4.0") => Ok(Some(Format::FhirR4Xml)),
            Some(v) => Err(ApiError::unsupported_media_type(format!(
                "fhirVersion {v} is not read; send FHIR 3.0 (STU3) or 4.0 (R4)"
            ))),
        },
        _ => Err(ApiError::unsupported_media_type(format!(
            "media type {essence:?} is not read; send application/fhir+json, application/fhir+xml, application/json or application/xml"
        ))),
    }
}

/// 400 for an empty body.
pub fn require_body(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("body", "the request body is empty; send the patient record"));
    }
    Ok(())
}

/// A party identifier, normalised to `system|value` with a short system name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyId {
    pub system: &'static str,
    pub value: String,
}

impl PartyId {
    /// Parses `system|value`; `allowed` lists the systems that make sense for the parameter.
    pub fn parse(param: &str, s: &str, allowed: &[&'static str]) -> Result<PartyId, ApiError> {
        let bad = |m: String| ApiError::bad_request(param, m);
        let (system, value) = s.split_once('|').ok_or_else(|| {
            bad(format!(
                "{param} must be written system|value, e.g. {}|12345678",
                allowed.first().copied().unwrap_or("ura")
            ))
        })?;
        let system = match system.trim() {
            "ura" | crate::terminology::uri::URA => "ura",
            "agb-z" | "agb" | crate::terminology::uri::AGB => "agb-z",
            "uzi" | crate::terminology::uri::UZI_PERSON => "uzi",
            "big" | crate::terminology::uri::BIG => "big",
            other => {
                return Err(bad(format!("unknown identifier system {other:?}; use one of {}", allowed.join(", "))))
            }
        };
        if !allowed.contains(&system) {
            return Err(bad(format!("{param} cannot be a {system} identifier; use one of {}", allowed.join(", "))));
        }
        let value = value.trim();
        let len_ok = match system {
            "ura" | "agb-z" => value.len() == 8,
            "big" => value.len() == 11,
            _ => (1..=12).contains(&value.len()),
        };
        if !len_ok || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("{value:?} is not a valid {system} number")));
        }
        Ok(PartyId { system, value: value.to_owned() })
    }
}

impl std::fmt::Display for PartyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.system, self.value)
    }
}

/// The GZSP care forms (DOMAIN.md, "Forms of care").
pub const CARE_FORMS: &[&str] = &[
    "individual-so",
    "individual-avg",
    "individual-behavioural",
    "individual-allied-health",
    "group-frail",
    "group-lg-nah",
    "group-huntington",
    "group-sglvg",
];

pub fn care_form(s: &str) -> Result<String, ApiError> {
    if CARE_FORMS.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::bad_request(
            "care-form",
            format!("unknown care form {s:?}; use one of {}", CARE_FORMS.join(", ")),
        ))
    }
}

/// A free-text header value, percent-decoded (UTF-8), at most `max` bytes.
pub fn text_header(headers: &HeaderMap, name: &'static str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let decoded = percent_encoding::percent_decode(v.as_bytes())
        .decode_utf8()
        .map_err(|_| ApiError::bad_request(name, format!("header {name} must be UTF-8, percent-encoded")))?;
    let text = decoded.trim();
    if text.len() > max {
        return Err(ApiError::bad_request(name, format!("header {name} is longer than {max} bytes")));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("ascii"));
        h
    }

    #[test]
    fn media_types() {
        let k = body_kind(&headers("application/fhir+json; fhirVersion=3.0"), None).expect("ok");
        assert_eq!(k.format, Some(Format::FhirStu3));
        let k = body_kind(&headers("application/json"), Some("flat")).expect("ok");
        assert_eq!(k.format, Some(Format::Flat));
        let e = body_kind(&headers("text/plain"), None).expect_err("415");
        assert_eq!(e.status, 415);
        let e = body_kind(&headers("application/json"), Some("pdf")).expect_err("400");
        assert_eq!(e.status, 400);
    }

    #[test]
    fn parties() {
        let p = PartyId::parse("receiver", "ura|12345678", &["ura"]).expect("ok");
        assert_eq!(p.to_string(), "ura|12345678");
        assert!(PartyId::parse("receiver", "agb-z|01234567", &["ura"]).is_err());
        assert!(PartyId::parse("receiver", "ura|1234", &["ura"]).is_err());
        assert!(PartyId::parse("receiver", "12345678", &["ura"]).is_err());
    }
}
