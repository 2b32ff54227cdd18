//! Trusted issuers' keys from a JWKS URL (or found by OpenID Connect discovery), cached.
//!
//! A fleet of instances behind a load balancer cannot share key files comfortably, and an
//! identity provider rotates its keys: so an issuer may name a `jwks_url`, or ask for
//! `discovery` (`<issuer>/.well-known/openid-configuration` → `jwks_uri`). The keys are
//! fetched at start and kept in memory:
//!
//! - **refresh**: stale keys are fetched again when a token of that issuer arrives. Keys are
//!   fresh for the JWKS answer's `Cache-Control: max-age` (less its `Age`), bounded by
//!   `auth.jwks_min_refresh_seconds` and `auth.jwks_max_refresh_seconds`; without one, for
//!   `auth.jwks_refresh_seconds`;
//! - **rotation**: a token whose `kid` is not among the cached keys makes one fetch, so a key
//!   the provider has just published is accepted at once;
//! - **rate limit**: at most one fetch per issuer per `auth.jwks_min_refresh_seconds`,
//!   whatever the reason, and one at a time (concurrent requests wait for the fetch in
//!   progress): a flood of tokens with made-up `kid`s cannot hammer the issuer;
//! - **issuer down**: a failed fetch keeps the cached keys, which keep working; a token of an
//!   issuer whose keys were never fetched is refused with 503 and the reason, not as a bad
//!   token.
//!
//! Only `https` URLs are fetched, except on a loopback address (tests, a sidecar). The
//! answer is bounded in size and time. Which keys a token may use is decided by the caller
//! ([`super::auth::Verifier`]); this module only keeps them.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::auth::{parse_jwks, AuthError, TrustedKey};
use crate::config::{AuthSettings, IssuerSettings};

/// The largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 1 << 20;

/// Where an issuer's keys are found.
#[derive(Debug, Clone)]
enum Source {
    Url(reqwest::Url),
    /// `<issuer>/.well-known/openid-configuration`, whose `jwks_uri` is followed.
    Discovery(reqwest::Url),
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    fetched_at: Option<Instant>,
    last_error: Option<String>,
    /// The `jwks_uri` discovery found.
    jwks_uri: Option<reqwest::Url>,
    /// How long the last fetched keys stay fresh, from the answer's `Cache-Control`
    /// (`None`: it had no `max-age`; the configured refresh period applies).
    fresh_for: Option<Duration>,
    fetches: u64,
}

/// The keys of one issuer that publishes them at a URL.
pub struct RemoteKeys {
    pub issuer: String,
    source: Source,
    client: reqwest::Client,
    refresh_after: Duration,
    min_interval: Duration,
    /// The longest a `max-age` keeps keys fresh.
    max_fresh: Duration,
    keys: RwLock<Arc<Vec<TrustedKey>>>,
    state: tokio::sync::Mutex<FetchState>,
}

fn bad_url(issuer: &str, url: &str, why: &str) -> AuthError {
    AuthError::Remote { issuer: issuer.to_owned(), message: format!("{url:?} {why}") }
}

/// Parses a URL to fetch keys from: `https`, or `http` on a loopback address.
fn fetchable(issuer: &str, url: &str) -> Result<reqwest::Url, AuthError> {
    let u = reqwest::Url::parse(url).map_err(|e| bad_url(issuer, url, &format!("is not a URL ({e})")))?;
    let loopback = match u.host_str() {
        Some("localhost") => true,
        Some(h) => {
            h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        }
        None => false,
    };
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err(bad_url(issuer, url, "must be https (http only on a loopback address)")),
    }
}

impl RemoteKeys {
    /// `None` when the issuer names neither `jwks_url` nor `discovery`.
    pub fn from_settings(i: &IssuerSettings, auth: &AuthSettings) -> Result<Option<RemoteKeys>, AuthError> {
        let source = match (&i.jwks_url, i.discovery) {
            (Some(_), true) => {
                return Err(AuthError::Remote {
                    issuer: i.issuer.clone(),
                    message: "name jwks_url or discovery, not both".into(),
                })
            }
            (Some(url), false) => Source::Url(fetchable(&i.issuer, url)?),
            (None, true) => {
                let base = i.issuer.trim_end_matches('/');
                Source::Discovery(fetchable(&i.issuer, &format!("{base}/.well-known/openid-configuration"))?)
            }
            (None, false) => return Ok(None),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(auth.jwks_timeout_seconds.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Remote { issuer: i.issuer.clone(), message: e.to_string() })?;
        Ok(Some(RemoteKeys {
            issuer: i.issuer.clone(),
            source,
            client,
            refresh_after: Duration::from_secs(auth.jwks_refresh_seconds),
            min_interval: Duration::from_secs(auth.jwks_min_refresh_seconds),
            max_fresh: Duration::from_secs(auth.jwks_max_refresh_seconds),
            keys: RwLock::new(Arc::new(Vec::new())),
            state: tokio::sync::Mutex::new(FetchState::default()),
        }))
    }

    /// The cached keys, fetched again first when they are stale (rate-limited; on failure
    /// the cached keys stay).
    pub async fn keys(&self) -> Arc<Vec<TrustedKey>> {
        let stale = {
            let s = self.state.lock().await;
            let fresh_for = match s.fresh_for {
                Some(d) => d.clamp(self.min_interval, self.max_fresh.max(self.min_interval)),
                None => self.refresh_after,
            };
            s.fetched_at.is_none_or(|t| t.elapsed() >= fresh_for)
        };
        if stale {
            self.refresh().await;
        }
        self.cached()
    }

    /// The keys as cached, without fetching.
    pub fn cached(&self) -> Arc<Vec<TrustedKey>> {
        self.keys.read().map(|k| Arc::clone(&k)).unwrap_or_default()
    }

    /// A token named a `kid` that is not cached: fetch again, unless a fetch happened within
    /// the minimum interval.
    pub async fn refresh_for_unknown_kid(&self) {
        self.refresh().await;
    }

    /// Why the last fetch failed, if it did.
    pub async fn last_error(&self) -> Option<String> {
        self.state.lock().await.last_error.clone()
    }

    /// How many fetches were made (the discovery document and the JWKS count as one).
    pub async fn fetches(&self) -> u64 {
        self.state.lock().await.fetches
    }

    /// One fetch, at most one per minimum interval, one at a time.
    pub async fn refresh(&self) {
        let mut s = self.state.lock().await;
        if s.last_attempt.is_some_and(|t| t.elapsed() < self.min_interval) {
            return;
        }
        s.last_attempt = Some(Instant::now());
        s.fetches += 1;
        match self.fetch(&mut s).await {
            Ok((keys, fresh_for)) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), max_age = fresh_for.map(|d| d.as_secs()), "fetched the issuer's keys (JWKS)");
                if let Ok(mut k) = self.keys.write() {
                    *k = Arc::new(keys);
                }
                s.fetched_at = Some(Instant::now());
                s.fresh_for = fresh_for;
                s.last_error = None;
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch the issuer's keys (JWKS); the cached keys stay");
                s.last_error = Some(e);
            }
        }
    }

    /// The keys, and how long the answer says they may be cached.
    async fn fetch(&self, s: &mut FetchState) -> Result<(Vec<TrustedKey>, Option<Duration>), String> {
        let jwks_url = match &self.source {
            Source::Url(u) => u.clone(),
            Source::Discovery(config_url) => match &s.jwks_uri {
                Some(u) => u.clone(),
                None => {
                    let doc: serde_json::Value = serde_json::from_slice(&self.get(config_url).await?.0)
                        .map_err(|e| format!("{config_url}: not JSON ({e})"))?;
                    // OpenID Connect Discovery 1.0, 4.3: the issuer in the document is the one asked for.
                    if doc["issuer"].as_str().map(|i| i.trim_end_matches('/'))
                        != Some(self.issuer.trim_end_matches('/'))
                    {
                        return Err(format!("{config_url}: the document names another issuer ({})", doc["issuer"]));
                    }
                    let uri = doc["jwks_uri"].as_str().ok_or_else(|| format!("{config_url}: no jwks_uri"))?;
                    let u = fetchable(&self.issuer, uri).map_err(|e| e.to_string())?;
                    s.jwks_uri = Some(u.clone());
                    u
                }
            },
        };
        let (body, fresh_for) = self.get(&jwks_url).await?;
        let text = std::str::from_utf8(&body).map_err(|_| format!("{jwks_url}: not UTF-8"))?;
        let keys = parse_jwks(&self.issuer, text).map_err(|e| format!("{jwks_url}: {e}"))?;
        Ok((keys, fresh_for))
    }

    /// The body of a successful answer, and how long it may be cached ([`fresh_for`]).
    async fn get(&self, url: &reqwest::Url) -> Result<(Vec<u8>, Option<Duration>), String> {
        let mut r = self
            .client
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url}: HTTP {}", r.status().as_u16()));
        }
        let fresh_for = fresh_for(r.headers());
        if r.content_length().is_some_and(|n| n > MAX_DOCUMENT as u64) {
            return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
            }
        }
        Ok((body, fresh_for))
    }
}

/// How long an answer may be cached, from its headers (RFC 9111): `Cache-Control: max-age`
/// less `Age`; `no-cache` or `no-store`: not at all. `None` when the answer does not say
/// (or says it in a form not understood).
fn fresh_for(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        for directive in value.to_str().ok()?.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age") {
                max_age = Some(arg?.parse::<u64>().ok()?);
            }
        }
    }
    let age = headers.get(reqwest::header::AGE).and_then(|a| a.to_str().ok()?.trim().parse::<u64>().ok()).unwrap_or(0);
    max_age.map(|m| Duration::from_secs(m.saturating_sub(age)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_says_how_long_keys_stay_fresh() {
        let fresh = |pairs: &[(&str, &str)]| {
            let mut h = reqwest::header::HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                    v.parse().expect("value"),
                );
            }
            fresh_for(&h).map(|d| d.as_secs())
        };
        assert_eq!(fresh(&[]), None);
        assert_eq!(fresh(&[("cache-control", "public, max-age=600")]), Some(600));
        assert_eq!(fresh(&[("cache-control", "Max-Age=\"60\"")]), Some(60));
        assert_eq!(fresh(&[("cache-control", "public"), ("cache-control", "max-age=60")]), Some(60));
        assert_eq!(fresh(&[("cache-control", "max-age=600"), ("age", "100")]), Some(500));
        assert_eq!(fresh(&[("cache-control", "max-age=60"), ("age", "100")]), Some(0));
        assert_eq!(fresh(&[("cache-control", "max-age=600, no-cache")]), Some(0));
        assert_eq!(fresh(&[("cache-control", "no-store")]), Some(0));
        assert_eq!(fresh(&[("cache-control", "max-age=soon")]), None);
        assert_eq!(fresh(&[("cache-control", "max-age")]), None);
    }

    #[test]
    fn keys_are_fetched_over_https_or_from_a_loopback_address() {
        for ok in
            ["https://idp.example/jwks", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]:1/j"]
        {
            assert!(fetchable("i", ok).is_ok(), "{ok}");
        }
        for bad in ["http://idp.example/jwks", "ftp://idp.example/jwks", "file:///etc/jwks.json", "not a url"] {
            assert!(fetchable("i", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_issuer_names_a_url_or_discovery_not_both() {
        let auth = AuthSettings::default();
        let i = |jwks_url: Option<&str>, discovery| IssuerSettings {
            issuer: "https://idp.example".into(),
            public_key_file: None,
            jwks_file: None,
            jwks_url: jwks_url.map(str::to_owned),
            discovery,
        };
        assert!(RemoteKeys::from_settings(&i(None, false), &auth).expect("files only").is_none());
        assert!(RemoteKeys::from_settings(&i(Some("https://idp.example/jwks"), true), &auth).is_err());
        let r = RemoteKeys::from_settings(&i(None, true), &auth).expect("discovery").expect("remote");
        assert!(
            matches!(&r.source, Source::Discovery(u) if u.as_str() == "https://idp.example/.well-known/openid-configuration")
        );
    }
}
