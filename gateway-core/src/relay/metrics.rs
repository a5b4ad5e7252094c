//! Prometheus metrics of the data plane, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::breaker::Breakers;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Every data-plane metric.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<StatusLabel, Counter>,
    pub latency: Histogram,
    pub overhead: Histogram,
    pub ttfb: Histogram,
    pub tokens: Family<KindLabel, Counter>,
    pub cost_nano: Counter,
    pub in_flight: Gauge,
    pub channel_errors: Family<ChannelLabel, Counter>,
    breaker_state: Family<ChannelLabel, Gauge>,
    burst_decisions: Family<ReasonLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("burncloud");
        let requests = Family::<StatusLabel, Counter>::default();
        // 50 µs .. ~26 s
        let latency = Histogram::new(exponential_buckets(0.00005, 2.0, 20));
        let overhead = Histogram::new(exponential_buckets(0.00001, 2.0, 16));
        let ttfb = Histogram::new(exponential_buckets(0.00005, 2.0, 20));
        let tokens = Family::<KindLabel, Counter>::default();
        let cost_nano = Counter::default();
        let in_flight = Gauge::default();
        let channel_errors = Family::<ChannelLabel, Counter>::default();
        let breaker_state = Family::<ChannelLabel, Gauge>::default();
        let burst_decisions = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "requests",
            "Data-plane requests by HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole request latency",
            latency.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Time spent in the gateway, not upstream",
            overhead.clone(),
        );
        registry.register(
            "time_to_first_byte_seconds",
            "Time to the first upstream byte",
            ttfb.clone(),
        );
        registry.register(
            "tokens",
            "Tokens billed, by kind (prompt, completion)",
            tokens.clone(),
        );
        registry.register(
            "cost_nano_usd",
            "Cost billed in nano-dollars",
            cost_nano.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being served",
            in_flight.clone(),
        );
        registry.register(
            "channel_errors",
            "Failed upstream attempts per channel",
            channel_errors.clone(),
        );
        registry.register(
            "channel_breaker_state",
            "Circuit breaker: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        registry.register(
            "burst_decisions",
            "Burst routing decisions by reason",
            burst_decisions.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            overhead,
            ttfb,
            tokens,
            cost_nano,
            in_flight,
            channel_errors,
            breaker_state,
            burst_decisions,
        }
    }
}

impl Metrics {
    /// Count a burst routing decision.
    pub fn burst_decision(&self, reason: &'static str) {
        self.burst_decisions
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The Prometheus text exposition, breaker states read fresh.
    pub fn render(&self, breakers: &Breakers) -> String {
        for (channel, state) in breakers.states() {
            self.breaker_state
                .get_or_create(&ChannelLabel { channel })
                .set(state.gauge());
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
