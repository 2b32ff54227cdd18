//! What the receiving server's answer means: delivered, try again, or give up.
//!
//! Pure functions over status, headers and body, so that every rule is unit-tested
//! without a server. The rules, in order:
//!
//! | answer | meaning |
//! | --- | --- |
//! | 2xx with a `transaction-response` Bundle, one entry per request entry, every `response.status` 2xx | delivered |
//! | 2xx with a `batch-response` Bundle | per entry: 2xx delivered, 408/429/5xx retry that entry, other statuses rejected |
//! | 2xx with anything else (not JSON, not that Bundle, wrong entry count, a failed entry in a transaction) | **malformed: retry**. Nothing proves the entries were stored, and repeating `PUT Type/id` is harmless; after `max_attempts` the delivery is dead-lettered |
//! | 401 | refresh the OAuth2 token once and repeat at once; otherwise a failed attempt (retried) |
//! | 408, 429, 5xx except 501 | retry, after `Retry-After` (seconds or an HTTP date) when the server gives one |
//! | 405 or 501 to a transaction; any 4xx whose OperationOutcome says `not-supported` or that transactions are not supported | **transaction refused**: send the entries as a batch |
//! | 3xx | rejected: fix `base_url` (a POST is never followed to another address) |
//! | any other 4xx (400, 403, 404, 409, 410, 412, 413, 422, ...) | rejected (dead letter), keeping the server's OperationOutcome and its reason; without an OperationOutcome the status and the start of the body |

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// `Retry-After` values beyond this are taken as this: a delivery is not parked for a day
/// on one header.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Transaction,
    Batch,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Transaction => "transaction",
            Mode::Batch => "batch",
        }
    }
}

/// The meaning of one HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Delivered,
    /// Batch results, one per entry sent, in order.
    Entries(Vec<EntryResult>),
    Unauthorized,
    TransactionRefused(String),
    Retry {
        status: Option<u16>,
        reason: String,
        after: Option<Duration>,
    },
    Reject {
        status: u16,
        reason: String,
        outcome: Option<Value>,
    },
}

/// One entry of a batch response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EntryResult {
    Ok,
    Retry { status: u16, reason: String },
    Reject { status: u16, reason: String, outcome: Option<Value> },
}

/// Classifies a response to `sent` entries sent as `mode`.
pub(crate) fn classify(mode: Mode, sent: usize, status: u16, retry_after: Option<&str>, body: &[u8]) -> Answer {
    let after = retry_after.and_then(|h| parse_retry_after(h, SystemTime::now()));
    match status {
        200..=299 => classify_success(mode, sent, status, body),
        401 => Answer::Unauthorized,
        405 | 501 if mode == Mode::Transaction => {
            Answer::TransactionRefused(format!("HTTP {status}: {}", reason_of(status, body)))
        }
        408 | 429 => Answer::Retry { status: Some(status), reason: format!("HTTP {status}"), after },
        500..=599 if status != 501 => {
            Answer::Retry { status: Some(status), reason: format!("HTTP {status}: {}", reason_of(status, body)), after }
        }
        300..=399 => Answer::Reject {
            status,
            reason: format!("HTTP {status}: the server redirects; set base_url to the address it names"),
            outcome: None,
        },
        _ => {
            let outcome = operation_outcome(body);
            if mode == Mode::Transaction && (400..500).contains(&status) {
                if let Some(o) = &outcome {
                    if says_transactions_unsupported(o) {
                        return Answer::TransactionRefused(format!("HTTP {status}: {}", outcome_reason(o)));
                    }
                }
            }
            Answer::Reject { status, reason: format!("HTTP {status}: {}", reason_of(status, body)), outcome }
        }
    }
}

fn classify_success(mode: Mode, sent: usize, status: u16, body: &[u8]) -> Answer {
    let malformed = |why: &str| Answer::Retry {
        status: Some(status),
        reason: format!("HTTP {status} with a malformed response ({why})"),
        after: None,
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return malformed("not JSON");
    };
    let expected = match mode {
        Mode::Transaction => "transaction-response",
        Mode::Batch => "batch-response",
    };
    if v["resourceType"] != "Bundle" || v["type"] != expected {
        return malformed(&format!("not a {expected} Bundle"));
    }
    let entries = v["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.len() != sent {
        return malformed(&format!("{} response entries for {sent} request entries", entries.len()));
    }
    let results: Vec<EntryResult> = entries.iter().map(entry_result).collect();
    match mode {
        Mode::Transaction if results.iter().all(|r| *r == EntryResult::Ok) => Answer::Delivered,
        // All or nothing: a failed entry in a successful transaction is a contradiction.
        Mode::Transaction => malformed("a transaction-response with a failed entry"),
        Mode::Batch => Answer::Entries(results),
    }
}

fn entry_result(e: &Value) -> EntryResult {
    let response = &e["response"];
    let Some(status) = response["status"].as_str().and_then(status_code) else {
        return EntryResult::Retry { status: 0, reason: "response entry without a status".into() };
    };
    let outcome = response.get("outcome").filter(|o| o["resourceType"] == "OperationOutcome").cloned();
    let reason = || match &outcome {
        Some(o) => format!("HTTP {status}: {}", outcome_reason(o)),
        None => format!("HTTP {status}"),
    };
    match status {
        200..=299 => EntryResult::Ok,
        408 | 429 | 500 | 502..=599 => EntryResult::Retry { status, reason: reason() },
        _ => EntryResult::Reject { status, reason: reason(), outcome },
    }
}

/// `"201 Created"` → 201.
fn status_code(s: &str) -> Option<u16> {
    s.trim().get(..3)?.parse().ok()
}

/// The body as an OperationOutcome, if it is one.
pub(crate) fn operation_outcome(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body).ok().filter(|v| v["resourceType"] == "OperationOutcome")
}

/// The server's reason: its OperationOutcome's issues, else the start of the body.
fn reason_of(status: u16, body: &[u8]) -> String {
    if let Some(o) = operation_outcome(body) {
        return outcome_reason(&o);
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        format!("no OperationOutcome (empty body, status {status})")
    } else {
        format!("no OperationOutcome; body starts: {text}")
    }
}

/// The issues of an OperationOutcome on one line: `error processing: reason; ...`.
pub(crate) fn outcome_reason(o: &Value) -> String {
    let issues = o["issue"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut parts = vec![];
    for i in issues {
        let text = i["diagnostics"].as_str().or_else(|| i["details"]["text"].as_str()).unwrap_or("");
        let sev = i["severity"].as_str().unwrap_or("?");
        let code = i["code"].as_str().unwrap_or("?");
        parts.push(if text.is_empty() { format!("{sev} {code}") } else { format!("{sev} {code}: {text}") });
    }
    let mut s = if parts.is_empty() { "an OperationOutcome without issues".to_owned() } else { parts.join("; ") };
    if s.len() > 1000 {
        let cut = (0..=1000).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn says_transactions_unsupported(o: &Value) -> bool {
    o["issue"].as_array().map(Vec::as_slice).unwrap_or_default().iter().any(|i| {
        if i["code"] == "not-supported" {
            return true;
        }
        let text =
            format!("{} {}", i["diagnostics"].as_str().unwrap_or(""), i["details"]["text"].as_str().unwrap_or(""))
                .to_lowercase();
        text.contains("transaction")
            && ["not supported", "unsupported", "not allowed", "not implemented"].iter().any(|p| text.contains(p))
    })
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at
/// [`MAX_RETRY_AFTER`]; a date in the past means now.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn response(kind: &str, statuses: &[&str]) -> Vec<u8> {
        let entries: Vec<Value> = statuses.iter().map(|s| json!({"response": {"status": s}})).collect();
        body(json!({"resourceType": "Bundle", "type": kind, "entry": entries}))
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn transaction_responses() {
        assert_eq!(
            classify(Mode::Transaction, 2, 200, None, &response("transaction-response", &["201 Created", "200"])),
            Answer::Delivered
        );
        assert!(matches!(
            classify(Mode::Transaction, 3, 200, None, &response("transaction-response", &["201", "200"])),
            Answer::Retry { .. }
        ));
        assert!(matches!(classify(Mode::Transaction, 1, 200, None, b"<html>ok</html>"), Answer::Retry { .. }));
        assert!(matches!(
            classify(Mode::Transaction, 1, 200, None, &response("transaction-response", &["400"])),
            Answer::Retry { .. }
        ));
    }

    #[test]
    fn batch_entries() {
        let a = classify(Mode::Batch, 3, 200, None, &response("batch-response", &["200", "503", "422"]));
        let Answer::Entries(r) = a else { panic!("{a:?}") };
        assert_eq!(r[0], EntryResult::Ok);
        assert!(matches!(r[1], EntryResult::Retry { status: 503, .. }));
        assert!(matches!(r[2], EntryResult::Reject { status: 422, .. }));
    }

    #[test]
    fn errors() {
        let oo = body(
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Patient.birthDate: bad date"}]}),
        );
        match classify(Mode::Transaction, 1, 400, None, &oo) {
            Answer::Reject { status: 400, reason, outcome: Some(_) } => {
                assert!(reason.contains("bad date"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(classify(Mode::Transaction, 1, 401, None, b""), Answer::Unauthorized);
        assert!(matches!(
            classify(Mode::Transaction, 1, 429, Some("7"), b""),
            Answer::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(classify(Mode::Transaction, 1, 503, None, b"busy"), Answer::Retry { .. }));
        assert!(matches!(classify(Mode::Transaction, 1, 501, None, b""), Answer::TransactionRefused(_)));
        assert!(matches!(classify(Mode::Batch, 1, 501, None, b""), Answer::Reject { .. }));
        assert!(matches!(classify(Mode::Transaction, 1, 302, None, b""), Answer::Reject { .. }));
        let unsupported = body(
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": "Transaction bundles are not supported"}]}),
        );
        assert!(matches!(classify(Mode::Transaction, 1, 400, None, &unsupported), Answer::TransactionRefused(_)));
        assert!(matches!(
            classify(Mode::Transaction, 1, 404, None, b"<html>Not Found</html>"),
            Answer::Reject { outcome: None, .. }
        ));
    }
}
