//! Building and running the service: settings in, a bound listener and a router out.
//!
//! [`Application::build`] does everything that can fail at start (database, migrations,
//! keys, binding the port) so that `serve` reports it before accepting a request; tests
//! build it on port 0 and read the port back. The layers, from the outside in: request id,
//! tracing span, request-id echo, metrics, OperationOutcome for bare errors, panic catcher,
//! overload/timeout guard, body limit, handler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::auth::{AuthError, Verifier};
use super::error::{outcome_for_bare_errors, ApiError};
use super::guard::{Guard, PermitSlot};
use super::metrics::{self, Metrics};
use super::state::AppState;
use super::{audit, care_team, facade, fhir, handovers, health, openapi, report, validate};
use crate::config::{Limits, Settings};
use crate::store::{Store, StoreError};
use crate::validate::{Issue, IssueCode};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("no token issuer is configured (auth.issuers), so only the local demo key in the data directory would be trusted, and anyone who can read it could mint tokens for any organisation. Configure auth.issuers, or start a demonstration with `serve --demo` (or --insecure-trust-demo-key / auth.insecure_trust_demo_key = true)")]
    NoIssuers,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Access(#[from] crate::policy::loaded::SetupError),
    #[error("demo data: {0}")]
    Demo(String),
    #[error("{0}")]
    Agreements(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("delivery: {0}")]
    Delivery(#[from] crate::deliver::DeliverError),
    #[error("building the embedded conversion tables failed (a build defect): {0}")]
    Prepare(String),
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    state: AppState,
    grace: Duration,
    /// Time between the shutdown signal and closing the listener, while `/health/ready`
    /// already says `draining` (so that load balancers stop sending first).
    drain: Duration,
    /// Time a client has to send a request's headers.
    header_read_timeout: Duration,
    /// Delivers the outbox in the background while the service runs.
    worker: crate::deliver::outbox::Worker,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Application, StartupError> {
        if settings.demo_auth() && !settings.auth.insecure_trust_demo_key {
            return Err(StartupError::NoIssuers);
        }
        if settings.demo_auth() {
            tracing::warn!("INSECURE: no token issuer configured; trusting the local demo key (demonstration only)");
        }
        private_dir(&settings.data_dir)
            .map_err(|source| StartupError::DataDir { path: settings.data_dir.clone(), source })?;
        // The conversion's tables are built while the database opens, not on the first handover.
        let prepared = tokio::task::spawn_blocking(crate::convert::prepare);
        let store = Store::open_with(&settings.database_url(), settings.database_pool()).await?;
        tracing::info!(database = store.backend().name(), "database ready");
        let verifier = Arc::new(Verifier::from_settings(settings)?);
        // Issuers that publish their keys at a URL: fetched now; a failure is logged and the
        // fetch tried again when a token of that issuer arrives (api::jwks).
        verifier.prefetch().await;
        let access = super::access_control::AccessControl::from_settings(&settings.policy)?;
        tracing::info!(
            agreements = access.agreements.len(),
            policy = access.engine.path().evaluator(),
            "access control ready"
        );
        if access.engine.path() == crate::policy::PolicyPath::Proving {
            // An adapted access-config.json with the shipped Rego: the Rego decides until the
            // native engine is proven on the decision table (seconds; logged when done).
            let engine = access.engine.clone();
            tokio::task::spawn_blocking(move || engine.prove());
        }
        let source = match &settings.policy.agreements_dir {
            Some(dir) => format!("policy.agreements_dir {}", dir.display()),
            None if settings.policy.demo_examples => "the built-in example agreements (serve --demo)".to_owned(),
            None => "none configured".to_owned(),
        };
        let changed = access.record_agreement_changes(&store, &source).await.map_err(StartupError::Agreements)?;
        if changed > 0 {
            tracing::info!(changed, "agreement changes recorded in the audit trail");
        }
        if settings.policy.demo_examples {
            super::demo::seed(&store).await.map_err(StartupError::Demo)?;
        }
        let state = AppState {
            store,
            verifier,
            metrics: Metrics::new(),
            validator: validate::configured_validator(&settings.validation),
            access,
            audit: Arc::new(settings.audit.clone()),
            limits: Arc::new(settings.limits.clone()),
            guard: Arc::new(Guard::new(&settings.limits)),
            draining: Arc::default(),
        };
        prepared.await.map_err(|e| StartupError::Prepare(e.to_string()))?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartupError::Bind { addr: settings.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.listen, source })?;
        let worker = crate::deliver::outbox::Worker::new(
            state.store.clone(),
            settings.delivery.clone(),
            state.metrics.delivery.clone(),
        )?
        .with_shutdown_grace(Duration::from_secs(settings.limits.shutdown_grace_seconds));
        Ok(Application {
            listener,
            addr,
            router: router(state.clone(), &settings.limits),
            state,
            grace: Duration::from_secs(settings.limits.shutdown_grace_seconds),
            drain: Duration::from_secs(settings.limits.shutdown_drain_seconds),
            header_read_timeout: settings.limits.header_read_timeout(),
            worker,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Serves until `shutdown` completes. Then: `/health/ready` answers 503 `draining`; the
    /// outbox worker claims nothing more, gives its deliveries in flight the grace period and
    /// releases the rest ([`crate::deliver::outbox::Worker::run`]); after the drain period
    /// the listener is closed and in-flight requests get the grace period to finish.
    pub async fn run_until_stopped<F>(self, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
        let draining = self.state.draining.clone();
        tokio::spawn(async move {
            shutdown.await;
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = stopping_tx.send(true);
        });
        let signalled = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            // A dropped sender means the signal task ended, which it does only after sending.
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let drain = self.drain;
        let server = serve(self.listener, self.router, self.header_read_timeout, {
            let stopped = signalled(stopping.clone());
            async move {
                stopped.await;
                if !drain.is_zero() {
                    tracing::info!(
                        seconds = drain.as_secs(),
                        "draining: /health/ready says so before the listener closes"
                    );
                    tokio::time::sleep(drain).await;
                }
            }
        });
        // Requests without a valid token are summarised per window (see `guard`): the
        // summary of a quiet window is written here, the last one at shutdown.
        let guard = self.state.guard.clone();
        let summaries_store = self.state.store.clone();
        let summaries = tokio::spawn(async move {
            // A window is summarised at most a quarter window after it closed.
            let mut tick = tokio::time::interval((guard.window_length() / 4).max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                if let Some(e) = guard.take_summary(false) {
                    if let Err(err) = crate::audit::record_alone(&summaries_store, &e).await {
                        tracing::error!(error = %err, "cannot record the summary of unauthenticated requests");
                    }
                }
            }
        });
        let grace = self.grace;
        let store = self.state.store.clone();
        let worker = tokio::spawn(self.worker.run(signalled(stopping.clone())));
        let mut server = std::pin::pin!(std::future::IntoFuture::into_future(server));
        let stopped = signalled(stopping);
        let result = tokio::select! {
            r = &mut server => r,
            _ = async { stopped.await; tokio::time::sleep(drain + grace).await } => {
                tracing::warn!("in-flight requests did not finish within the shutdown grace period");
                Ok(())
            }
        };
        let _ = worker.await;
        summaries.abort();
        if let Some(e) = self.state.guard.take_summary(true) {
            if let Err(err) = crate::audit::record_alone(&store, &e).await {
                tracing::error!(error = %err, "cannot record the summary of unauthenticated requests");
            }
        }
        store.close().await;
        result
    }
}

/// Creates the data directory (and missing parents) with mode 0700, and narrows an existing
/// one to 0700: it holds the database and the demo key. Explicit modes, so the
/// umask cannot widen them.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "narrowing the data directory to mode 0700");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Accepts connections and serves them over HTTP/1.1 until `shutdown` completes, then
/// lets open connections finish their requests. Instead of `axum::serve` because that
/// cannot set hyper's header-read timeout: a client that trickles its headers (slowloris)
/// is cut off after `header_read_timeout`. The peer address is given to each
/// request as `ConnectInfo` (the audit trail's access point, NEN 7513 "toegangspunt").
async fn serve<F>(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let router = router.clone();
        let service =
            TowerToHyperService::new(tower::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            }));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(stop);
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    // Every connection task holds a receiver: closed when the last one has finished.
    stop_tx.closed().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Timeout and the permits' lifetime: a request that takes longer than the timeout is
/// answered with 408; the permits its caller takes once authenticated (see `guard`) are
/// held in the request's [`PermitSlot`] until its response is made. Overload is refused at
/// once (503, Retry-After) rather than queued, so latency stays bounded.
async fn guard(State(timeout): State<Duration>, mut req: Request, next: Next) -> Response {
    let slot = PermitSlot::default();
    req.extensions_mut().insert(slot.clone());
    let answer = tokio::time::timeout(timeout, next.run(req)).await;
    drop(slot);
    match answer {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            Issue::error(
                IssueCode::Timeout,
                "the request took longer than the server's limit (limits.request_timeout_ms)",
            ),
        )
        .into_response(),
    }
}

/// A caller's `X-Request-Id` is kept only when it is a plain token; otherwise it is removed
/// and the request gets one of ours (it goes into the text log and the audit trail).
async fn unsafe_request_id_replaced(mut req: Request, next: Next) -> Response {
    let unsafe_id = req.headers().get("x-request-id").is_some_and(|v| !super::input::is_safe_request_id(v.as_bytes()));
    if unsafe_id {
        req.headers_mut().remove("x-request-id");
    }
    next.run(req).await
}

fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload may quote data from the request; it is not logged.
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        Issue::error(
            IssueCode::Exception,
            "internal error; the request id in the x-request-id header finds it in the log",
        ),
    )
    .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

/// The routes and layers.
pub fn router(state: AppState, limits: &Limits) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            let id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|r| r.header_value().to_str().ok())
                .unwrap_or("-")
                .to_owned();
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "unmatched".to_owned());
            tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route, ura = tracing::field::Empty)
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    Router::new()
        .route("/handovers", post(handovers::create))
        .route("/handovers/{id}", get(handovers::get))
        .route("/fhir/$convert", post(fhir::convert))
        .route("/fhir/$validate", post(fhir::validate))
        .route("/fhir/metadata", get(fhir::metadata))
        .route("/fhir/AuditEvent", get(audit::search))
        .route("/patients/{bsn}/access-log", get(audit::access_log))
        .route("/audit/flagged", get(audit::flagged))
        .route("/audit/reviews", post(audit::create_review))
        .route("/report", get(report::report))
        .route("/fhir/CareTeam", get(care_team::search_teams))
        .route("/fhir/CareTeam/{id}", put(care_team::put_team).get(care_team::get_team))
        .route("/fhir/Consent/{id}", put(care_team::put_consent).get(care_team::get_consent))
        .route("/fhir/Patient/{id}/$everything", get(facade::everything))
        .route("/fhir/{type}", get(facade::search))
        .route("/fhir/{type}/{id}", get(facade::read))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(middleware::from_fn_with_state(limits.request_timeout(), guard))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(outcome_for_bare_errors))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(unsafe_request_id_replaced))
        .with_state(state)
}
