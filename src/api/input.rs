//! What a request says about its body and its parties, parsed into types.
//!
//! The input format comes from `?format=` (wins) or the Content-Type; without either we
//! detect it from the bytes, as the command line does. Party identifiers are written
//! `system|value` with short system names (`ura|12345678`, `agb-z|01234567`, `uzi|…`,
//! `big|…`), the same notation as the `--sender` option of `overdracht convert`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use super::guard::PermitSlot;
use super::state::AppState;
use crate::model::{PartyId, Uzi};
use crate::source::Format;
use crate::terminology::uri;

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

/// A request that brings a patient's record or resource in its body (`POST /handovers`,
/// `$convert`, `$validate`): the authenticated caller, the permit the load guard gave it,
/// the query parameters `P`, the headers and the body.
///
/// Extracted in the order in which these handlers named them as separate extractors (the
/// token, then the query, then the body), so that a request wrong in several ways gets the
/// same answer: 401 before 400 for the query before the body's 413.
pub struct RecordRequest<P> {
    pub caller: Caller,
    pub permits: PermitSlot,
    pub params: P,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<P> RecordRequest<P> {
    /// The audit entry of this request for `action` ([`super::audit::draft`]).
    pub fn draft(&self, action: crate::audit::AuditAction) -> crate::audit::AuditEntry {
        super::audit::draft(action, &self.caller, &self.headers)
    }
}

impl<P> FromRequest<AppState> for RecordRequest<P>
where
    P: serde::de::DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let axum::Extension(permits) = axum::Extension::<PermitSlot>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Query(params) =
            Query::<P>::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        Ok(RecordRequest { caller, permits, params, headers, body })
    }
}

/// 400 for an empty body.
pub fn require_body(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("body", "the request body is empty; send the patient record"));
    }
    Ok(())
}

/// 422 (too-costly) when the body holds more than `max` values: the work one request may
/// cause is bounded before anything is parsed (a 15 MB Patient with 5 M empty
/// names kept the server busy for a minute and took 5.7 GB).
pub fn check_work(body: &[u8], max: usize) -> Result<(), ApiError> {
    if structural_tokens(body, max) > max {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            crate::validate::Issue::error(
                crate::validate::IssueCode::TooCostly,
                format!(
                    "the body holds more than {max} values or elements (limits.max_json_values); send a smaller record"
                ),
            )
            .at("body"),
        ));
    }
    Ok(())
}

/// A cheap upper estimate of the values in a JSON document (`{`, `[`, `,` and `:` outside
/// strings) or the elements of an XML one (`<`), counted up to just past `stop_after`.
/// Strings, most of a record's bytes, are skipped with `memchr` to their closing quote (or
/// the next backslash, whose escaped byte is skipped): byte by byte it was 2.4 % of the
/// server's instructions per handover.
fn structural_tokens(body: &[u8], stop_after: usize) -> usize {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
        return memchr::memchr_iter(b'<', body).take(stop_after.saturating_add(1)).count();
    }
    let (mut n, mut i) = (0usize, 0usize);
    while i < body.len() {
        match body[i] {
            b'"' => {
                i += 1;
                // To just past the closing quote; an unterminated string runs to the end.
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]) {
                        None => return n,
                        Some(k) if body[i + k] == b'\\' => i += k + 2,
                        Some(k) => {
                            i += k + 1;
                            break;
                        }
                    }
                }
            }
            b'{' | b'[' | b',' | b':' => {
                n += 1;
                if n > stop_after {
                    return n;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    n
}

/// A party parameter (`receiver`, `sender`): `ura|<URA>` or `agb-z|<AGB>` (also the naming
/// systems' URIs), as the one [`PartyId`]; `allowed` lists the systems (`ura`, `agb-z`) that
/// make sense for the parameter.
pub fn party(param: &str, s: &str, allowed: &[&'static str]) -> Result<PartyId, ApiError> {
    let bad = |m: String| ApiError::bad_request(param, m);
    let example = allowed.first().copied().unwrap_or("ura");
    let Some((system, value)) = s.split_once('|') else {
        return Err(bad(format!("{param} must be written system|value, e.g. {example}|12345678")));
    };
    let p = PartyId::parse(s).map_err(|_| match system.trim() {
        "ura" | "agb-z" | "agb" | uri::URA | uri::AGB => {
            bad(format!("{:?} is not a valid {} number", value.trim(), system.trim()))
        }
        other => bad(format!("unknown identifier system {other:?}; use one of {}", allowed.join(", "))),
    })?;
    if !allowed.contains(&p.code()) {
        return Err(bad(format!("{param} cannot be a {} identifier; use one of {}", p.code(), allowed.join(", "))));
    }
    Ok(p)
}

/// A person named in a request (the `lead-practitioner`): `uzi|<UZI number>` or
/// `big|<11 digits>`, written back as `system|value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonId {
    Uzi(Uzi),
    Big(String),
}

impl PersonId {
    pub fn parse(param: &str, s: &str) -> Result<PersonId, ApiError> {
        let bad = |m: String| ApiError::bad_request(param, m);
        let (system, value) = s
            .split_once('|')
            .ok_or_else(|| bad(format!("{param} must be written system|value, e.g. uzi|900012345")))?;
        let value = value.trim();
        match system.trim() {
            "uzi" | uri::UZI_PERSON => Uzi::parse(value)
                .ok()
                .filter(|u| u.len() <= 12)
                .map(PersonId::Uzi)
                .ok_or_else(|| bad(format!("{value:?} is not a valid uzi number"))),
            "big" | uri::BIG if value.len() == 11 && value.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(PersonId::Big(value.to_owned()))
            }
            "big" | uri::BIG => Err(bad(format!("{value:?} is not a valid big number"))),
            "ura" | "agb-z" | "agb" | uri::URA | uri::AGB => {
                Err(bad(format!("{param} cannot be a {} identifier; use one of uzi, big", system.trim())))
            }
            other => Err(bad(format!("unknown identifier system {other:?}; use one of uzi, big"))),
        }
    }
}

impl std::fmt::Display for PersonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersonId::Uzi(v) => write!(f, "uzi|{v}"),
            PersonId::Big(v) => write!(f, "big|{v}"),
        }
    }
}

/// A handover's `care-form`: one of the codes of [`crate::policy::care_team::CareForm`] (the
/// same codes a care team uses), returned as its code.
pub fn care_form(s: &str) -> Result<String, ApiError> {
    use crate::policy::care_team::CareForm;
    match CareForm::from_code(s) {
        Some(f) => Ok(f.code().to_owned()),
        None => Err(ApiError::bad_request(
            "care-form",
            format!(
                "unknown care form {s:?}; use one of {}",
                CareForm::ALL.iter().map(|f| f.code()).collect::<Vec<_>>().join(", ")
            ),
        )),
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
    let text = plain_text(text);
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Free text from outside made safe to store, log and print: line breaks and tabs become
/// spaces; other control characters (terminal escapes, BEL, C1 controls) and the Unicode
/// direction overrides that reorder what a reader sees are dropped (a reason
/// could rewrite the reviewer's screen).
pub fn plain_text(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\r' | '\n' | '\t' => Some(' '),
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => None,
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// A request id the caller may choose (`X-Request-Id`): 1 to 64 letters, digits and
/// `.`, `_`, `-`, `:`. Anything else is replaced by one of ours, because the id goes into
/// the text log, where spaces and `=` would forge fields.
pub fn is_safe_request_id(v: &[u8]) -> bool {
    (1..=64).contains(&v.len()) && v.iter().all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(b))
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
    fn free_text_loses_control_characters() {
        assert_eq!(plain_text("a\u{1b}[2J\u{1b}[Hb\r\nc\u{7}\u{202E}d\u{9b}"), "a[2J[Hb  cd");
        assert!(is_safe_request_id(b"4f1c-aa_01.x:y"));
        assert!(!is_safe_request_id(b"abc request_id=forged"));
        assert!(!is_safe_request_id(b""));
        assert!(!is_safe_request_id(&[b'a'; 65]));
    }

    /// The count byte by byte, as it was before strings were skipped with `memchr`.
    fn structural_tokens_bytewise(body: &[u8], stop_after: usize) -> usize {
        let xml = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
        let (mut n, mut in_string, mut escaped) = (0usize, false, false);
        for &b in body {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            let counts = match b {
                b'<' => xml,
                b'"' => {
                    in_string = !xml;
                    false
                }
                b'{' | b'[' | b',' | b':' => !xml,
                _ => false,
            };
            if counts {
                n += 1;
                if n > stop_after {
                    break;
                }
            }
        }
        n
    }

    proptest::proptest! {
        /// Any bytes, drawn mostly from the ones that matter, and any limit: the same count.
        #[test]
        fn skipping_strings_counts_as_byte_by_byte(
            body in proptest::collection::vec(proptest::sample::select(b"{}[],:\"\\<ab \n".to_vec()), 0..200),
            stop_after in 0usize..40,
        ) {
            proptest::prop_assert_eq!(structural_tokens(&body, stop_after), structural_tokens_bytewise(&body, stop_after));
        }
    }

    #[test]
    fn work_is_counted_outside_strings() {
        assert_eq!(structural_tokens(br#"{"a": [1, 2, {"b": "x,y:{["}]}"#, 100), 7);
        assert_eq!(structural_tokens(br#"{"a": "x\"#, 100), 2);
        assert_eq!(structural_tokens(br#"{"a": "x\\", "b": 1}"#, 100), 4);
        assert_eq!(structural_tokens(br#"{"a\"{": 1}"#, 100), 2);
        assert_eq!(structural_tokens(b"<a><b x=\"{,\"/></a>", 100), 3);
        assert!(check_work(b"[1,2,3]", 3).is_ok());
        let e = check_work(b"[1,2,3,4]", 3).expect_err("too many");
        assert_eq!(e.status, 422);
    }

    #[test]
    fn parties() {
        let p = party("receiver", "ura|12345678", &["ura"]).expect("ok");
        assert_eq!(p.to_string(), "ura|12345678");
        assert_eq!(party("sender", "agb|01234567", &["agb-z", "ura"]).expect("agb").to_string(), "agb-z|01234567");
        assert!(party("receiver", "agb-z|01234567", &["ura"]).is_err());
        assert!(party("receiver", "ura|1234", &["ura"]).is_err());
        assert!(party("receiver", "12345678", &["ura"]).is_err());
        assert!(party("receiver", "uzi|900012345", &["ura"]).is_err());
        let lead = PersonId::parse("lead-practitioner", "uzi|900099999").expect("uzi");
        assert_eq!(lead.to_string(), "uzi|900099999");
        assert_eq!(PersonId::parse("l", "big|12345678901").expect("big").to_string(), "big|12345678901");
        assert!(PersonId::parse("l", "big|123").is_err() && PersonId::parse("l", "ura|12345678").is_err());
        assert!(PersonId::parse("l", "uzi|1234567890123").is_err(), "at most 12 digits, as before");
    }
}

/// Decodes a query string `a=b&c=d` (percent-decoding, `+` as space), keeping repeats and
/// order.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// The value of `?format=` or `?_format=` (the first given).
pub fn format_param(pairs: &[(String, String)]) -> Option<&str> {
    pairs.iter().find(|(k, _)| k == "format" || k == "_format").map(|(_, v)| v.as_str())
}

/// Whether to answer with an HTML page: `?format=html|json` wins; otherwise HTML when the
/// Accept header asks for `text/html` and does not put JSON first.
pub fn wants_html(headers: &HeaderMap, format: Option<&str>) -> bool {
    match format {
        Some(f) => f == "html" || f == "text/html",
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html") && !a.trim_start().starts_with("application/json")),
    }
}

/// Whether to answer in Dutch: `?lang=` wins; otherwise the first language of Accept-Language.
pub fn wants_dutch(headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    if let Some((_, l)) = pairs.iter().find(|(k, _)| k == "lang") {
        return l.starts_with("nl");
    }
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).is_some_and(|l| l.trim_start().starts_with("nl"))
}

/// A JSON request body (a UTF-8 byte-order mark tolerated): 400 with the line and column of
/// the first error when it is not JSON.
pub fn json_body(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(crate::source::without_bom(body)).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            crate::diagnostics::Issue::error(crate::diagnostics::IssueCode::Structure, format!("not JSON: {e}"))
                .at(format!("line {}, column {}", e.line(), e.column())),
        )
    })
}

#[cfg(test)]
mod query_tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn html_is_chosen_by_parameter_or_accept_header() {
        let mut headers = HeaderMap::new();
        assert!(!wants_html(&headers, None));
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(wants_html(&headers, None));
        assert!(!wants_html(&headers, Some("json")));
        assert!(wants_html(&HeaderMap::new(), Some("html")));
        headers.insert(header::ACCEPT, HeaderValue::from_static(" application/json, text/html"));
        assert!(!wants_html(&headers, None), "JSON first, even after a space");
    }

    #[test]
    fn query_pairs_decode_and_keep_repeats() {
        let p = query_pairs(Some("a=1&b=x+y&a=%7C2&&c"));
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("a".into(), "|2".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(format_param(&query_pairs(Some("_format=html&format=json"))), Some("html"));
    }

    #[test]
    fn not_json_says_where() {
        let e = json_body(b"{\"a\": }").expect_err("not JSON");
        assert!(format!("{e:?}").contains("line 1, column"), "{e:?}");
        assert!(json_body(b"\xef\xbb\xbf{}").is_ok(), "a byte-order mark is fine");
    }
}
