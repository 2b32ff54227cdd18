//! The `Authorization` header of a target: nothing, a fixed bearer token, or an OAuth2
//! access token from the client credentials grant.
//!
//! OAuth2 tokens are cached and shared by every delivery to the target; one task fetches
//! while the others wait, so a burst of deliveries costs one token request. A token is
//! renewed shortly before it expires, and once more when the FHIR server answers 401
//! (a token can be revoked before its `expires_in`): [`TokenSource::refresh`] is told which
//! token failed, so that many deliveries seeing the same 401 still cause a single fetch.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::target::{Auth, ClientAuth};
use super::DeliverError;

/// Renew a token this long before the server says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// When the token response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(crate) enum TokenSource {
    None,
    Static(String),
    OAuth2(OAuth2),
}

#[derive(Debug)]
pub(crate) struct OAuth2 {
    token_url: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    client_auth: ClientAuth,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Why no token could be had. Transient by nature: the token endpoint may be down, or the
/// credentials about to be fixed; the delivery is retried like any other failed attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("token endpoint: {0}")]
pub struct TokenError(pub String);

fn secret(inline: &Option<String>, env: &Option<String>, what: &str) -> Result<String, DeliverError> {
    if let Some(s) = inline {
        return Ok(s.clone());
    }
    match env {
        Some(var) => std::env::var(var)
            .map_err(|_| DeliverError::Config(format!("{what}: environment variable {var} is not set"))),
        None => Err(DeliverError::Config(format!("{what}: give it inline or name an environment variable (…_env)"))),
    }
}

impl TokenSource {
    pub(crate) fn new(auth: &Auth) -> Result<TokenSource, DeliverError> {
        Ok(match auth {
            Auth::None => TokenSource::None,
            Auth::Bearer { token, token_env } => TokenSource::Static(secret(token, token_env, "bearer token")?),
            Auth::Oauth2 { token_url, client_id, client_secret, client_secret_env, scope, client_auth } => {
                TokenSource::OAuth2(OAuth2 {
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: secret(client_secret, client_secret_env, "OAuth2 client secret")?,
                    scope: scope.clone(),
                    client_auth: *client_auth,
                    cached: Mutex::new(None),
                })
            }
        })
    }

    /// Whether a 401 can be cured by fetching a new token.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self, TokenSource::OAuth2(_))
    }

    /// The token to send, fetching one if there is none or it is about to expire.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<Option<String>, TokenError> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Static(t) => Ok(Some(t.clone())),
            TokenSource::OAuth2(o) => {
                let mut cached = o.cached.lock().await;
                if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
                    return Ok(Some(c.token.clone()));
                }
                let fresh = o.fetch(http).await?;
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(Some(token))
            }
        }
    }

    /// A new token after the server refused `failed`; unless another delivery already
    /// replaced it, in which case that newer token is returned.
    pub(crate) async fn refresh(
        &self,
        http: &reqwest::Client,
        failed: Option<&str>,
    ) -> Result<Option<String>, TokenError> {
        match self {
            TokenSource::OAuth2(o) => {
                let mut cached = o.cached.lock().await;
                if let Some(c) = cached.as_ref().filter(|c| Some(c.token.as_str()) != failed) {
                    return Ok(Some(c.token.clone()));
                }
                let fresh = o.fetch(http).await?;
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(Some(token))
            }
            other => other.token(http).await,
        }
    }
}

impl OAuth2 {
    async fn fetch(&self, http: &reqwest::Client) -> Result<Cached, TokenError> {
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        let mut req = http.post(&self.token_url).header(reqwest::header::ACCEPT, "application/json");
        req = match self.client_auth {
            ClientAuth::Basic => req.basic_auth(&self.client_id, Some(&self.client_secret)),
            ClientAuth::Post => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.client_secret));
                req
            }
        };
        let started = Instant::now();
        let resp = req.form(&form).send().await.map_err(|e| TokenError(super::client::transport_reason(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| TokenError(super::client::transport_reason(&e)))?;
        if !status.is_success() {
            // The body of an OAuth2 error is {"error": "...", "error_description": "..."}: no
            // patient data, safe to report.
            let detail = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(TokenError(format!("{status}: {detail}")));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenError(format!("{status} with an unreadable token response: {e}")))?;
        let lifetime = t.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME);
        tracing::debug!(token_url = %self.token_url, lifetime_s = lifetime.as_secs(), "fetched an OAuth2 access token");
        Ok(Cached { token: t.access_token, renew_at: started + lifetime.saturating_sub(EXPIRY_MARGIN) })
    }
}
