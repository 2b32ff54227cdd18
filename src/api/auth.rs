//! Authentication: bearer JWTs carrying who acts (UZI), in which role, for which
//! organisation (URA) and why (purpose of use).
//!
//! A token is accepted when its signature verifies with a trusted issuer's key and its
//! `iss`, `aud`, `exp` and `nbf` hold (with a small leeway). Trusted issuers come from the
//! configuration (PEM public keys or JWKS files, or a JWKS URL / OpenID Connect discovery,
//! fetched and cached by [`super::jwks`]). Without any configured issuer the service
//! runs in demo mode: it generates an Ed25519 key pair in the data directory on first start
//! and trusts only that key, and `overdracht token` mints tokens with it. With real issuers
//! configured the demo key is neither trusted nor used for minting.
//!
//! Claims (besides `iss`, `aud`, `exp`, `nbf`, `iat`, `sub`):
//! - `uzi`: the UZI number of the person, or of the server certificate for a machine
//!   client (a HIS); digits.
//! - `uzi_role`: the UZI role code (`01.015` GP, `01.047` SO, ...), `NN.NNN`.
//! - `ura`: the organisation's URA number, 8 digits.
//! - `purpose_of_use`: an HL7 v3 PurposeOfUse code (`TREAT`, `COC`, `ETREAT`, ...).
//!
//! Machine clients are identified the same way: a HIS calling on behalf of a GP practice
//! carries the practice's URA and the UZI number of its server certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::error::ApiError;
use super::state::AppState;
use crate::config::{AuthSettings, Settings, DEMO_ISSUER};
use crate::model::{Ura, Uzi, UziRoleCode};

/// The claims overdracht reads from a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// Serialised when minting; verification reads `aud` itself (string or list).
    #[serde(default, skip_deserializing)]
    pub aud: String,
    pub exp: i64,
    #[serde(default)]
    pub nbf: i64,
    #[serde(default)]
    pub iat: i64,
    pub uzi: String,
    pub uzi_role: String,
    pub ura: String,
    pub purpose_of_use: String,
}

/// Why a token is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("key file {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("tokens can only be minted with the local demo key, and this service is configured with real token issuers ({0}); ask your identity provider for a token")]
    RealIssuers(String),
    #[error("cannot mint: {0}")]
    Mint(String),
    #[error("token issuer {issuer}: {message}")]
    Remote { issuer: String, message: String },
}

/// A verified caller: the token's identity claims, parsed once here into their types.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uzi: Uzi,
    pub uzi_role: UziRoleCode,
    pub ura: Ura,
    pub purpose_of_use: String,
    pub issuer: String,
    /// The network address the request came from (the TCP peer), for the audit trail.
    pub peer: Option<std::net::SocketAddr>,
}

impl Caller {
    /// 403 unless the purpose of use allows handling patient data for care (decided by
    /// [`crate::policy::purpose`], which says why `COC` is one).
    pub fn require_treatment_purpose(&self) -> Result<(), ApiError> {
        let d = crate::policy::purpose::decide_treatment_purpose(&self.purpose_of_use);
        if d.permit {
            Ok(())
        } else {
            Err(ApiError::forbidden(d.reason))
        }
    }
}

/// One key a token may be signed with, and by whom.
pub struct TrustedKey {
    pub(crate) issuer: String,
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
}

/// Verifies tokens against the trusted keys: those of the configuration's files (and the
/// demo key), and those fetched from issuers' JWKS URLs ([`super::jwks`]).
pub struct Verifier {
    keys: Vec<TrustedKey>,
    remote: Vec<super::jwks::RemoteKeys>,
    audience: String,
    leeway: u64,
    /// Tokens verified lately (see [`Verifier::verify`]).
    verified: std::sync::Mutex<std::collections::HashMap<String, Verified>>,
    /// How long a verified token is taken from `verified` at most, in seconds.
    remember_for: i64,
    /// Most tokens in `verified`.
    remember_at_most: usize,
}

/// A token that verified: its caller, and until when (Unix seconds, inclusive) it may be
/// taken as verified again without checking its signature.
struct Verified {
    caller: Caller,
    until: i64,
}

/// Most tokens remembered as verified; when full, the expired ones are dropped, and all of
/// them if none has expired.
const VERIFIED_TOKENS: usize = 4096;

/// How long a verified token is remembered at most: an issuer's key removed from its JWKS
/// (or one of its URL keys refreshed away) stops verifying that key's tokens at most this
/// much later than without the cache.
const REMEMBER_VERIFIED_SECONDS: i64 = 60;

impl Verifier {
    /// The verifier for these settings; in demo mode it creates the demo key if needed.
    pub fn from_settings(settings: &Settings) -> Result<Verifier, AuthError> {
        let auth: &AuthSettings = &settings.auth;
        let mut keys = Vec::new();
        let mut remote = Vec::new();
        if settings.demo_auth() {
            let demo = DemoKey::load_or_create(&settings.data_dir)?;
            keys.push(TrustedKey {
                issuer: DEMO_ISSUER.to_owned(),
                kid: Some(demo.kid.clone()),
                key: demo.decoding_key(),
                algorithms: vec![Algorithm::EdDSA],
            });
        }
        for issuer in &auth.issuers {
            if let Some(p) = &issuer.public_key_file {
                let (key, algorithms) = load_pem_public_key(p)?;
                keys.push(TrustedKey { issuer: issuer.issuer.clone(), kid: None, key, algorithms });
            }
            if let Some(p) = &issuer.jwks_file {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| AuthError::Key { path: p.to_owned(), message: e.to_string() })?;
                keys.extend(
                    parse_jwks(&issuer.issuer, &text)
                        .map_err(|message| AuthError::Key { path: p.to_owned(), message })?,
                );
            }
            remote.extend(super::jwks::RemoteKeys::from_settings(issuer, auth)?);
        }
        Ok(Verifier {
            keys,
            remote,
            audience: auth.audience.clone(),
            leeway: auth.leeway_seconds,
            verified: Default::default(),
            remember_for: REMEMBER_VERIFIED_SECONDS,
            remember_at_most: VERIFIED_TOKENS,
        })
    }

    /// Fetches the keys of the issuers that publish them at a URL (at start). A failure is
    /// logged, not fatal: the fetch is tried again when a token of that issuer arrives.
    pub async fn prefetch(&self) {
        for r in &self.remote {
            r.refresh().await;
        }
    }

    /// The issuers whose keys are fetched from a URL.
    pub fn remote_issuers(&self) -> &[super::jwks::RemoteKeys] {
        &self.remote
    }

    /// Checks a compact JWT and returns the caller, or a 401 error (503 when the keys of the
    /// token's issuer could never be fetched).
    ///
    /// A client sends the same token with every request until it expires; checking its
    /// signature each time was 4 % of the server's CPU under handover load. So a token that
    /// verified is remembered, by its exact text, until it expires (`exp` plus the leeway,
    /// the same bound as the full check) or [`REMEMBER_VERIFIED_SECONDS`] have passed,
    /// whichever is first; a token that differs in any byte is checked in full. Refusals
    /// are not remembered.
    pub async fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        if let Some(caller) = self.remembered(token, now) {
            return Ok(caller);
        }
        let (caller, exp) = self.verify_signed(token).await?;
        let until = exp.saturating_add(i64::try_from(self.leeway).unwrap_or(i64::MAX)).min(now + self.remember_for);
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= self.remember_at_most {
                verified.retain(|_, v| v.until >= now);
                if verified.len() >= self.remember_at_most {
                    verified.clear();
                }
            }
            verified.insert(token.to_owned(), Verified { caller: caller.clone(), until });
        }
        Ok(caller)
    }

    /// The caller of a token verified lately, if it may still be taken as verified at `now`.
    fn remembered(&self, token: &str, now: i64) -> Option<Caller> {
        let verified = self.verified.lock().ok()?;
        verified.get(token).filter(|v| now <= v.until).map(|v| v.caller.clone())
    }

    /// The full check of [`Verifier::verify`]: the caller and the token's `exp`.
    async fn verify_signed(&self, token: &str) -> Result<(Caller, i64), ApiError> {
        let invalid = |m: &str| ApiError::unauthorized(Some("invalid_token"), m);
        refuse_header_parameters(token)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("the bearer token is not a well-formed JWT"))?;
        let matches = |k: &&TrustedKey| {
            k.algorithms.contains(&header.alg)
                && match (&k.kid, &header.kid) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        };
        // The keys of the token's issuer that come from a URL: refreshed when stale, and once
        // more (rate-limited) when the token's kid is not among them.
        let iss = unverified_issuer(token);
        let mut fetched = Vec::new();
        for r in self.remote.iter().filter(|r| iss.as_deref() == Some(r.issuer.as_str())) {
            let mut keys = r.keys().await;
            if header.kid.is_some() && !keys.iter().any(|k| matches(&k)) {
                r.refresh_for_unknown_kid().await;
                keys = r.cached();
            }
            if keys.is_empty() {
                let why = r.last_error().await.unwrap_or_else(|| "not fetched yet".into());
                return Err(ApiError::unavailable(format!(
                    "the keys of token issuer {} could not be fetched ({why}); try again later",
                    r.issuer
                )));
            }
            fetched.push(keys);
        }
        let candidates = self.keys.iter().chain(fetched.iter().flat_map(|k| k.iter())).filter(matches);
        let mut last = None;
        for k in candidates {
            let mut v = Validation::new(header.alg);
            v.set_issuer(&[&k.issuer]);
            v.set_audience(&[&self.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.validate_nbf = true;
            v.leeway = self.leeway;
            match jsonwebtoken::decode::<Claims>(token, &k.key, &v) {
                Ok(data) => {
                    let exp = data.claims.exp;
                    return Ok((caller_from(data.claims)?, exp));
                }
                Err(e) => last = Some(e),
            }
        }
        use jsonwebtoken::errors::ErrorKind as K;
        let message = match last.as_ref().map(|e| e.kind()) {
            None => "the token is not signed by a trusted issuer (unknown key or algorithm)",
            Some(K::ExpiredSignature) => "the token has expired",
            Some(K::ImmatureSignature) => "the token is not valid yet (nbf is in the future)",
            Some(K::InvalidIssuer) => "the token's issuer (iss) is not trusted",
            Some(K::InvalidAudience) => "the token's audience (aud) is not this service",
            Some(K::MissingRequiredClaim(_)) => "the token lacks a required claim (exp, iss, aud)",
            Some(K::InvalidSignature) => "the token's signature does not verify",
            Some(K::Json(_)) => {
                "the token lacks the claims uzi, uzi_role, ura and purpose_of_use, or has the wrong types"
            }
            Some(_) => "the token is not valid",
        };
        Err(invalid(message))
    }
}

/// JOSE header parameters a token may not carry: `crit` names extensions the verifier must
/// understand (we understand none, so RFC 7515 says reject), `b64` changes what is signed
/// (RFC 7797), and `jku`/`jwk`/`x5u`/`x5c` point at or embed a key. Keys come only from the
/// configuration, so these are never used; a token that carries them is refused rather
/// than silently verified against another key than the one it names.
const REFUSED_HEADER_PARAMETERS: &[&str] = &["crit", "b64", "jku", "jwk", "x5u", "x5c"];

fn refuse_header_parameters(token: &str) -> Result<(), ApiError> {
    use base64::Engine as _;
    let invalid = |m: String| ApiError::unauthorized(Some("invalid_token"), m);
    let malformed =
        || invalid("the bearer token is not a well-formed JWT (its header is not base64url JSON)".to_owned());
    let head = token.split('.').next().unwrap_or_default();
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('=')).map_err(|_| malformed())?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    if let Some(p) = REFUSED_HEADER_PARAMETERS.iter().find(|p| header.contains_key(**p)) {
        return Err(invalid(format!(
            "the token's header carries the parameter {p:?}, which this service does not accept (crit, b64, jku, jwk, x5u and x5c are refused; keys come from the configuration)"
        )));
    }
    Ok(())
}

fn caller_from(c: Claims) -> Result<Caller, ApiError> {
    let invalid = |m: &str| ApiError::unauthorized(Some("invalid_token"), m);
    // Exactly as written: a claim with spaces around the number is not one.
    let exact = |s: &str| s.trim() == s;
    let uzi = Uzi::parse(&c.uzi)
        .ok()
        .filter(|_| exact(&c.uzi))
        .ok_or_else(|| invalid("claim uzi must be a UZI number (digits)"))?;
    let ura = Ura::parse(&c.ura)
        .ok()
        .filter(|_| exact(&c.ura))
        .ok_or_else(|| invalid("claim ura must be a URA number (8 digits)"))?;
    let uzi_role = UziRoleCode::parse(&c.uzi_role)
        .ok()
        .filter(|_| exact(&c.uzi_role))
        .ok_or_else(|| invalid("claim uzi_role must be a UZI role code like 01.015"))?;
    if c.purpose_of_use.is_empty() || c.purpose_of_use.len() > 32 {
        return Err(invalid("claim purpose_of_use must be a PurposeOfUse code"));
    }
    Ok(Caller { uzi, uzi_role, ura, purpose_of_use: c.purpose_of_use, issuer: c.iss, peer: None })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// Every endpoint that takes a `Caller` concerns patient data or the audit trail, so a
    /// request refused here (no, malformed, expired or untrusted token) is an access
    /// decision too: it is recorded as a `denied` entry without a user, with the access
    /// point and the path, before the 401 is sent.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
        match authenticate(parts, state).await {
            Ok(mut caller) => {
                caller.peer = peer;
                tracing::Span::current().record("ura", caller.ura.as_str());
                // The permits are taken once the caller is known, before the body is read
                // (see `guard`).
                let key = format!("{}|{}", caller.issuer, caller.ura);
                state.guard.admit(&key, body_size(parts), parts.extensions.get::<super::guard::PermitSlot>())?;
                Ok(caller)
            }
            Err(e) => {
                use super::guard::Unauthenticated;
                let (decision, summary) = state.guard.unauthenticated(peer.map(|p| p.ip()));
                if let Some(s) = summary {
                    crate::audit::record_alone(&state.store, &s).await.map_err(ApiError::internal)?;
                }
                match decision {
                    Unauthenticated::Audit => {
                        let entry =
                            super::audit::unauthenticated(&parts.method, parts.uri.path(), &parts.headers, peer, &e);
                        crate::audit::record_alone(&state.store, &entry).await.map_err(ApiError::internal)?;
                        Err(e)
                    }
                    Unauthenticated::Counted => Err(e),
                    Unauthenticated::Limited => Err(ApiError::too_many_requests(
                        "too many requests without a valid token from this address; retry later",
                        state.guard.window_length().as_secs().max(1),
                    )),
                }
            }
        }
    }
}

/// The size of the request's body as announced: 0 for methods without one, `None` when a
/// body may come without a Content-Length (chunked).
fn body_size(parts: &Parts) -> Option<u64> {
    use axum::http::Method;
    let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    match (&parts.method, length) {
        (_, Some(n)) => Some(n),
        (&Method::GET | &Method::HEAD | &Method::DELETE | &Method::OPTIONS, None) => Some(0),
        _ => None,
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(None, "this endpoint needs a bearer token (Authorization: Bearer <JWT>)"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized(Some("invalid_request"), "the Authorization header must be: Bearer <JWT>")
        })?;
    state.verifier.verify(token).await
}

/// The local Ed25519 demo key, kept as PKCS#8 PEM in `<data_dir>/keys/`.
pub struct DemoKey {
    signing: ed25519_dalek::SigningKey,
    pub kid: String,
}

impl DemoKey {
    const FILE: &'static str = "keys/demo-signing-key.pem";
    const PUBLIC_FILE: &'static str = "keys/demo-public-key.pem";

    /// Loads the key, generating and saving it on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<DemoKey, AuthError> {
        let path = data_dir.join(Self::FILE);
        let key_err = |message: String| AuthError::Key { path: path.clone(), message };
        let signing = if path.exists() {
            let pem = std::fs::read_to_string(&path).map_err(|e| key_err(e.to_string()))?;
            ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|e| key_err(e.to_string()))?
        } else {
            let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
            let pem = key.to_pkcs8_pem(Default::default()).map_err(|e| key_err(e.to_string()))?;
            if let Some(dir) = path.parent() {
                super::startup::private_dir(dir).map_err(|e| key_err(e.to_string()))?;
            }
            write_private(&path, pem.as_bytes()).map_err(|e| key_err(e.to_string()))?;
            let public =
                key.verifying_key().to_public_key_pem(Default::default()).map_err(|e| key_err(e.to_string()))?;
            std::fs::write(data_dir.join(Self::PUBLIC_FILE), public).map_err(|e| key_err(e.to_string()))?;
            tracing::info!(path = %path.display(), "generated the demo signing key");
            key
        };
        let digest = sha2::Sha256::digest(signing.verifying_key().as_bytes());
        let kid = format!("demo-{}", hex::encode(&digest[..6]));
        Ok(DemoKey { signing, kid })
    }

    /// The public key as a JWK (`OKP`/`Ed25519`, with its `kid`), as an identity provider
    /// publishes it in a JWKS.
    pub fn public_jwk(&self) -> serde_json::Value {
        use base64::Engine as _;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes());
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"})
    }

    fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(self.signing.verifying_key().as_bytes())
    }

    /// Signs any claims (tests use this for expired or foreign tokens).
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        let der = self.signing.to_pkcs8_der().map_err(|e| AuthError::Mint(e.to_string()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
            .map_err(|e| AuthError::Mint(e.to_string()))
    }
}

/// What `overdracht token` asks for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub uzi: String,
    pub uzi_role: String,
    pub ura: String,
    pub purpose_of_use: String,
    pub ttl_seconds: i64,
}

/// Mints a demo token; refuses when real issuers are configured.
pub fn mint_demo_token(settings: &Settings, req: &TokenRequest) -> Result<String, AuthError> {
    if !settings.demo_auth() {
        let names: Vec<&str> = settings.auth.issuers.iter().map(|i| i.issuer.as_str()).collect();
        return Err(AuthError::RealIssuers(names.join(", ")));
    }
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: DEMO_ISSUER.to_owned(),
        sub: req.uzi.clone(),
        aud: settings.auth.audience.clone(),
        exp: now + req.ttl_seconds,
        nbf: now,
        iat: now,
        uzi: req.uzi.clone(),
        uzi_role: req.uzi_role.clone(),
        ura: req.ura.clone(),
        purpose_of_use: req.purpose_of_use.clone(),
    };
    caller_from(claims.clone())
        .map_err(|e| AuthError::Mint(e.outcome.issues.first().map(|i| i.diagnostics.clone()).unwrap_or_default()))?;
    DemoKey::load_or_create(&settings.data_dir)?.sign(&claims)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

fn load_pem_public_key(path: &Path) -> Result<(DecodingKey, Vec<Algorithm>), AuthError> {
    let pem = std::fs::read(path).map_err(|e| AuthError::Key { path: path.to_owned(), message: e.to_string() })?;
    use Algorithm::*;
    if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((k, vec![RS256, RS384, RS512, PS256, PS384, PS512]));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
        return Ok((k, vec![ES256, ES384]));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
        return Ok((k, vec![EdDSA]));
    }
    Err(AuthError::Key { path: path.to_owned(), message: "not a PEM public key (RSA, EC or Ed25519)".to_owned() })
}

/// The `iss` of a token, read without verifying it: only to choose whose keys to look at.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["iss"].as_str().map(str::to_owned)
}

/// The usable public keys of a JWKS document (a file or a URL's answer) for `issuer`.
pub(crate) fn parse_jwks(issuer: &str, text: &str) -> Result<Vec<TrustedKey>, String> {
    let err = |message: String| message;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(text).map_err(|e| err(format!("not a JWKS: {e}")))?;
    let mut out = Vec::new();
    for jwk in &set.keys {
        use jsonwebtoken::jwk::AlgorithmParameters as P;
        use Algorithm::*;
        let algorithms = match &jwk.algorithm {
            P::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
            P::EllipticCurve(_) => vec![ES256, ES384],
            P::OctetKeyPair(_) => vec![EdDSA],
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| err(e.to_string()))?;
        out.push(TrustedKey { issuer: issuer.to_owned(), kid: jwk.common.key_id.clone(), key, algorithms });
    }
    if out.is_empty() {
        return Err(err("the JWKS holds no usable public key".to_owned()));
    }
    Ok(out)
}

/// Shared verifier handle.
pub type SharedVerifier = Arc<Verifier>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A demo-key verifier remembering verified tokens for `remember_for` seconds, and the key.
    fn verifier(leeway: u64, remember_for: i64) -> (tempfile::TempDir, Verifier, DemoKey) {
        let dir = tempfile::tempdir().expect("dir");
        let mut settings = Settings { data_dir: dir.path().to_owned(), ..Settings::default() };
        settings.auth.leeway_seconds = leeway;
        let mut v = Verifier::from_settings(&settings).expect("verifier");
        v.remember_for = remember_for;
        let key = DemoKey::load_or_create(dir.path()).expect("key");
        (dir, v, key)
    }

    fn token(key: &DemoKey, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: DEMO_ISSUER.to_owned(),
            sub: "900012345".to_owned(),
            aud: "overdracht".to_owned(),
            exp: now + exp_in,
            nbf: now - 5,
            iat: now,
            uzi: "900012345".to_owned(),
            uzi_role: "01.015".to_owned(),
            ura: "00001234".to_owned(),
            purpose_of_use: "TREAT".to_owned(),
        };
        key.sign(&claims).expect("sign")
    }

    fn message(e: ApiError) -> String {
        format!("{:?}", e)
    }

    #[tokio::test]
    async fn a_remembered_token_expires_as_a_checked_one_does() {
        let (_dir, v, key) = verifier(0, 600);
        let t = token(&key, 1);
        assert_eq!(v.verify(&t).await.expect("valid").ura.as_str(), "00001234");
        assert!(v.remembered(&t, chrono::Utc::now().timestamp()).is_some(), "remembered once verified");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let e = v.verify(&t).await.expect_err("expired, though remembered");
        assert!(message(e).contains("expired"));
    }

    #[tokio::test]
    async fn a_token_is_remembered_for_the_window_at_most_and_only_by_its_exact_text() {
        let (_dir, v, key) = verifier(30, 1);
        let t = token(&key, 3600);
        v.verify(&t).await.expect("valid");
        let now = chrono::Utc::now().timestamp();
        assert!(v.remembered(&t, now).is_some());
        assert!(v.remembered(&t, now + 2).is_none(), "not past the window");
        // One byte of the signature changed: checked in full, and refused.
        let mut forged = t.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert!(v.remembered(&forged, now).is_none());
        assert!(v.verify(&forged).await.is_err(), "a changed token is verified anew");
        // Refusals are not remembered.
        assert!(v.remembered(&forged, now).is_none());
    }

    #[tokio::test]
    async fn the_memory_of_verified_tokens_is_bounded() {
        let (_dir, mut v, key) = verifier(30, 600);
        v.remember_at_most = 8;
        for i in 0..20 {
            // Distinct tokens: the expiry differs by a second each.
            v.verify(&token(&key, 3600 + i)).await.expect("valid");
            assert!(v.verified.lock().expect("lock").len() <= 8);
        }
        assert!(!v.verified.lock().expect("lock").is_empty());
    }
}
