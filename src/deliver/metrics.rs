//! Delivery metrics for `GET /metrics`: deliveries finished (delivered, dead-letter),
//! attempts retried, time from queue to delivery, and the outbox by state.

use std::collections::HashMap;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::outbox::{DeliveryMetrics, State};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The delivery metrics, registered in the service's registry.
#[derive(Debug)]
pub struct Metrics {
    finished: Family<ResultLabel, Counter>,
    retries: Counter,
    latency: Histogram,
    outbox: Family<StateLabel, Gauge>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            finished: Family::default(),
            retries: Counter::default(),
            latency: Histogram::new([0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0]),
            outbox: Family::default(),
        };
        registry.register("deliveries", "Deliveries finished, by result (delivered, dead-letter)", m.finished.clone());
        registry.register("delivery_retries", "Delivery attempts that failed and will be retried", m.retries.clone());
        registry.register(
            "delivery_latency_seconds",
            "Time from a handover's queuing to its delivery (or dead letter)",
            m.latency.clone(),
        );
        registry.register(
            "outbox",
            "Outbox rows by state (queued, in-flight, retrying, delivered, dead-letter)",
            m.outbox.clone(),
        );
        m
    }
}

impl DeliveryMetrics for Metrics {
    fn finished(&self, result: &'static str, latency: Duration) {
        self.finished.get_or_create(&ResultLabel { result }).inc();
        self.latency.observe(latency.as_secs_f64());
    }

    fn retried(&self) {
        self.retries.inc();
    }

    fn states(&self, counts: &HashMap<State, i64>) {
        for s in State::ALL {
            self.outbox.get_or_create(&StateLabel { state: s.as_str() }).set(counts.get(&s).copied().unwrap_or(0));
        }
    }
}
