//! Prometheus metrics: request counts and latencies per route, handover outcomes.
//!
//! `prometheus-client` keeps this lean (no HTTP listener of its own); `GET /metrics`
//! renders the registry in the OpenMetrics text format. Labels are routes as declared
//! (`/handovers/{id}`), never concrete URIs, so cardinality stays bounded.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    pub handovers: Family<ResultLabels, Counter>,
    /// Deliveries to the receivers, updated by the outbox worker.
    pub delivery: Arc<crate::deliver::metrics::Metrics>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("overdracht");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0])
        });
        let handovers = Family::<ResultLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer an HTTP request", duration.clone());
        registry.register(
            "handovers",
            "Handovers received, by result (created, duplicate, rejected)",
            handovers.clone(),
        );
        let delivery = Arc::new(crate::deliver::metrics::Metrics::new(&mut registry));
        Arc::new(Metrics { registry, requests, duration, handovers, delivery })
    }

    pub fn handover(&self, result: &'static str) {
        self.handovers.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Middleware counting and timing every request by matched route.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    let m = &state.metrics;
    m.requests.get_or_create(&RequestLabels { method, route: route.clone(), status: res.status().as_u16() }).inc();
    m.duration.get_or_create(&RouteLabels { route }).observe(start.elapsed().as_secs_f64());
    res
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(body) => {
            ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
                .into_response()
        }
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}
