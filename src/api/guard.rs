//! Protection of the service from its callers: who may use how much of it at once.
//!
//! The concurrency permit is taken once the caller is known (taken before
//! authentication and body reading, ~260 slow uploads made even `/health/live` answer
//! 503). So: endpoints without a caller (health, metrics, metadata, OpenAPI) need no permit;
//! an authenticated request takes one of `limits.concurrency_limit` permits and one of
//! `limits.per_caller_concurrency` of its organisation (keyed by token issuer and URA), so
//! one organisation cannot take the service from the others; a request without a valid token
//! takes none, but its address is rate limited (`limits.unauthenticated_per_window` per
//! `limits.unauthenticated_window_ms`, then 429).
//!
//! Requests without a valid token are audited (NEN 7513 wants failed access recorded), but
//! not one ~3 KB entry each: per window, the first from each address (up to
//! [`INDIVIDUAL_PER_WINDOW`] addresses) gets its own entry, the rest are counted and recorded
//! as one summary entry when the window closes.
//!
//! Permits live in a [`PermitSlot`] that the outer middleware puts into the request and
//! keeps until the response is made; the `Caller` extractor fills it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::audit::{AuditAction, AuditEntry, AuditOutcome};
use crate::config::Limits;

/// Addresses per window whose first unauthenticated request is audited on its own.
pub const INDIVIDUAL_PER_WINDOW: usize = 16;
/// Distinct addresses tracked per window; beyond it they share one bucket.
const TRACKED_ADDRESSES: usize = 10_000;
/// The bucket of addresses beyond [`TRACKED_ADDRESSES`] and of requests without a peer.
const SHARED_BUCKET: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The permits of one request, held until its response is made and until any blocking
/// work it started has finished (a clone goes with that work).
#[derive(Clone, Default)]
pub struct PermitSlot(Arc<Mutex<Vec<OwnedSemaphorePermit>>>);

impl PermitSlot {
    fn hold(&self, p: OwnedSemaphorePermit) {
        if let Ok(mut v) = self.0.lock() {
            v.push(p);
        }
    }
}

/// What to do with a request that has no valid token.
#[derive(Debug)]
pub enum Unauthenticated {
    /// Answer 401 and record this entry (the first from its address in this window).
    Audit,
    /// Answer 401; counted in the window's summary.
    Counted,
    /// Answer 429: the address sent too many requests without a valid token.
    Limited,
}

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    by_address: HashMap<IpAddr, u32>,
    audited: usize,
    /// 401s not recorded one by one, and 429s.
    counted: u64,
    limited: u64,
}

pub struct Guard {
    global: Arc<Semaphore>,
    /// The memory budget in KiB; a request reserves its estimate before its body is read.
    memory: Arc<Semaphore>,
    memory_kib: u64,
    memory_per_body_byte: u64,
    body_limit: u64,
    per_caller: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_caller_limit: usize,
    window: Mutex<Window>,
    window_length: Duration,
    per_window: u32,
}

impl Guard {
    pub fn new(limits: &Limits) -> Guard {
        let memory_kib = (limits.memory_budget_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS as u64);
        Guard {
            global: Arc::new(Semaphore::new(limits.concurrency_limit.max(1))),
            memory: Arc::new(Semaphore::new(usize::try_from(memory_kib).unwrap_or(Semaphore::MAX_PERMITS))),
            memory_kib,
            memory_per_body_byte: limits.memory_per_body_byte,
            body_limit: u64::try_from(limits.body_limit_bytes).unwrap_or(u64::MAX),
            per_caller: Mutex::new(HashMap::new()),
            per_caller_limit: limits.per_caller_concurrency.max(1),
            window: Mutex::new(Window::default()),
            window_length: Duration::from_millis(limits.unauthenticated_window_ms.max(1)),
            per_window: limits.unauthenticated_per_window,
        }
    }

    pub fn window_length(&self) -> Duration {
        self.window_length
    }

    /// Takes a permit of the service, one of the caller's organisation and the memory a body
    /// of `body` bytes needs (`None`: a body of unknown size, counted at the body limit) into
    /// `slot`, or refuses with 503 at once (no queueing: latency stays bounded).
    pub fn admit(&self, key: &str, body: Option<u64>, slot: Option<&PermitSlot>) -> Result<(), ApiError> {
        let body = body.unwrap_or(self.body_limit).min(self.body_limit);
        let kib = body.saturating_mul(self.memory_per_body_byte).div_ceil(1024);
        if kib > self.memory_kib {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                crate::validate::Issue::error(
                    crate::validate::IssueCode::TooLong,
                    "this body needs more working memory than the server's whole budget (limits.memory_budget_bytes); send a smaller record",
                ),
            ));
        }
        let Ok(global) = self.global.clone().try_acquire_owned() else {
            return Err(ApiError::unavailable("the server is at its concurrency limit; retry shortly"));
        };
        let memory = match u32::try_from(kib) {
            Ok(0) => None,
            Ok(n) => match self.memory.clone().try_acquire_many_owned(n) {
                Ok(p) => Some(p),
                Err(_) => {
                    return Err(ApiError::unavailable(
                        "the server's memory budget is in use by other requests (limits.memory_budget_bytes); retry shortly",
                    ))
                }
            },
            Err(_) => return Err(ApiError::internal("memory estimate out of range")),
        };
        let sem = {
            let Ok(mut map) = self.per_caller.lock() else {
                return Err(ApiError::internal("per-caller limits unavailable"));
            };
            if map.len() > 4096 {
                // Organisations with nothing in progress need no entry.
                let limit = self.per_caller_limit;
                map.retain(|_, s| s.available_permits() < limit);
            }
            map.entry(key.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.per_caller_limit))).clone()
        };
        let Ok(own) = sem.try_acquire_owned() else {
            return Err(ApiError::unavailable(format!(
                "your organisation has {} requests in progress (limits.per_caller_concurrency); retry shortly",
                self.per_caller_limit
            )));
        };
        if let Some(slot) = slot {
            slot.hold(global);
            slot.hold(own);
            if let Some(m) = memory {
                slot.hold(m);
            }
        }
        Ok(())
    }

    /// Counts a request without a valid token from `peer` and says how to answer it. A
    /// summary of the window that just closed, if any, comes with it (to be recorded).
    pub fn unauthenticated(&self, peer: Option<IpAddr>) -> (Unauthenticated, Option<AuditEntry>) {
        let now = Instant::now();
        let Ok(mut w) = self.window.lock() else {
            return (Unauthenticated::Audit, None);
        };
        let closed = self.roll(&mut w, now);
        let tracked = w.by_address.len() < TRACKED_ADDRESSES;
        let addr = peer.filter(|a| tracked || w.by_address.contains_key(a)).unwrap_or(SHARED_BUCKET);
        let n = {
            let n = w.by_address.entry(addr).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let decision = if n > self.per_window {
            w.limited += 1;
            Unauthenticated::Limited
        } else if n == 1 && w.audited < INDIVIDUAL_PER_WINDOW {
            w.audited += 1;
            Unauthenticated::Audit
        } else {
            w.counted += 1;
            Unauthenticated::Counted
        };
        (decision, closed)
    }

    /// The summary of the current window if it is over (or `force`), and a new window.
    pub fn take_summary(&self, force: bool) -> Option<AuditEntry> {
        let Ok(mut w) = self.window.lock() else { return None };
        if force {
            let summary = summary(&w, self.window_length);
            *w = Window::default();
            return summary;
        }
        self.roll(&mut w, Instant::now())
    }

    fn roll(&self, w: &mut Window, now: Instant) -> Option<AuditEntry> {
        match w.started {
            None => {
                w.started = Some(now);
                None
            }
            Some(s) if now.duration_since(s) >= self.window_length => {
                let out = summary(w, self.window_length);
                *w = Window { started: Some(now), ..Window::default() };
                out
            }
            Some(_) => None,
        }
    }
}

/// One entry for the requests of a window that were not recorded one by one.
fn summary(w: &Window, length: Duration) -> Option<AuditEntry> {
    if w.counted == 0 && w.limited == 0 {
        return None;
    }
    let (top, top_n) = w.by_address.iter().max_by_key(|(_, n)| **n).map(|(a, n)| (*a, *n))?;
    let mut e = AuditEntry::new(AuditAction::Denied, AuditOutcome::Denied);
    e.rule = Some(crate::policy::rules::AUTH_BEARER_TOKEN.to_owned());
    let top = if top == SHARED_BUCKET { "addresses not told apart".to_owned() } else { top.to_string() };
    e.client = Some(format!("@ {top}"));
    let secs = w.started.map(|s| s.elapsed()).unwrap_or(length).as_secs().max(length.as_secs());
    e.reason = Some(format!(
        "{} requests without a valid token in about {secs} s not recorded one by one: {} answered 401, {} refused with 429 (rate limit); from {} addresses, most from {top} ({top_n})",
        w.counted + w.limited,
        w.counted,
        w.limited,
        w.by_address.len()
    ));
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_window: u32) -> Limits {
        Limits { unauthenticated_per_window: per_window, unauthenticated_window_ms: 60_000, ..Limits::default() }
    }

    #[test]
    fn first_per_address_audited_the_rest_counted_then_limited() {
        let g = Guard::new(&limits(3));
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        assert!(matches!(g.unauthenticated(a).0, Unauthenticated::Audit));
        assert!(matches!(g.unauthenticated(a).0, Unauthenticated::Counted));
        assert!(matches!(g.unauthenticated(b).0, Unauthenticated::Audit));
        assert!(matches!(g.unauthenticated(a).0, Unauthenticated::Counted));
        assert!(matches!(g.unauthenticated(a).0, Unauthenticated::Limited));
        let s = g.take_summary(true).expect("summary");
        let reason = s.reason.expect("reason");
        assert!(reason.starts_with("3 requests without a valid token"), "{reason}");
        assert!(reason.contains("2 answered 401, 1 refused with 429"), "{reason}");
        assert!(g.take_summary(true).is_none(), "a new window");
    }

    #[test]
    fn per_caller_permits() {
        let l = Limits { per_caller_concurrency: 1, concurrency_limit: 10, ..Limits::default() };
        let g = Guard::new(&l);
        let slot = PermitSlot::default();
        g.admit("a", Some(0), Some(&slot)).expect("first");
        assert_eq!(g.admit("a", Some(0), Some(&PermitSlot::default())).expect_err("second").status, 503);
        g.admit("b", Some(0), Some(&PermitSlot::default())).expect("another organisation");
        drop(slot);
        g.admit("a", Some(0), Some(&PermitSlot::default())).expect("released");
    }

    #[test]
    fn memory_budget() {
        let l = Limits { memory_budget_bytes: 100 * 1024, memory_per_body_byte: 10, ..Limits::default() };
        let g = Guard::new(&l);
        let slot = PermitSlot::default();
        g.admit("a", Some(6 * 1024), Some(&slot)).expect("60 KiB of 100");
        let e = g.admit("b", Some(6 * 1024), Some(&PermitSlot::default())).expect_err("120 > 100");
        assert_eq!(e.status, 503);
        assert_eq!(g.admit("b", Some(11 * 1024), None).expect_err("never fits").status, 413);
        g.admit("b", None, None).expect_err("unknown size counts as the body limit");
        drop(slot);
        g.admit("b", Some(6 * 1024), None).expect("released");
    }
}
