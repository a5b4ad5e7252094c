//! Prometheus metrics of the data plane, served as text at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::breaker::Breakers;

/// A request's outcome: status, and the model and channel where routing got that far
/// (empty otherwise, so unknown model names sent by clients add no series).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
    pub model: Option<Arc<str>>,
    pub channel: Option<i64>,
}

/// The model and channel that served a request (both empty before routing got that far).
/// Shared, not owned: a request's labels are looked up without copying a string.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub model: Option<Arc<str>>,
    pub channel: Option<i64>,
}

/// Tokens by kind, model and channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabel {
    pub kind: &'static str,
    pub model: Option<Arc<str>>,
    pub channel: Option<i64>,
}

/// A channel's breaker in one of its states (1 for the current state, 0 for the others).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabel {
    pub channel: i64,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Every data-plane metric.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<StatusLabel, Counter>,
    pub latency: Family<RouteLabel, Histogram, Buckets>,
    pub overhead: Histogram,
    pub ttfb: Family<RouteLabel, Histogram, Buckets>,
    pub tokens: Family<TokenLabel, Counter>,
    pub cost_nano: Counter,
    pub cost_usd: Family<RouteLabel, Counter<f64>>,
    pub in_flight: Gauge,
    pub channel_errors: Family<ChannelLabel, Counter>,
    breaker_state: Family<ChannelLabel, Gauge>,
    breaker: Family<BreakerLabel, Gauge>,
    burst_decisions: Family<ReasonLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

/// Latency buckets of the labelled histograms: 50 µs .. ~26 s.
#[derive(Clone, Copy, Debug)]
pub struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.00005, 2.0, 20))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("burncloud");
        let requests = Family::<StatusLabel, Counter>::default();
        let latency = Family::new_with_constructor(Buckets);
        let overhead = Histogram::new(exponential_buckets(0.00001, 2.0, 16));
        let ttfb = Family::new_with_constructor(Buckets);
        let tokens = Family::<TokenLabel, Counter>::default();
        let cost_nano = Counter::default();
        let cost_usd = Family::<RouteLabel, Counter<f64>>::default();
        let in_flight = Gauge::default();
        let channel_errors = Family::<ChannelLabel, Counter>::default();
        let breaker_state = Family::<ChannelLabel, Gauge>::default();
        let breaker = Family::<BreakerLabel, Gauge>::default();
        let burst_decisions = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "requests",
            "Data-plane requests by HTTP status, model and channel",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Whole request latency by model and channel",
            latency.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Time spent in the gateway, not upstream",
            overhead.clone(),
        );
        registry.register(
            "time_to_first_byte_seconds",
            "Time to the first upstream byte (streams) by model and channel",
            ttfb.clone(),
        );
        registry.register(
            "tokens",
            "Tokens billed by kind (prompt, completion), model and channel",
            tokens.clone(),
        );
        registry.register(
            "cost_nano_usd",
            "Cost billed in nano-dollars",
            cost_nano.clone(),
        );
        registry.register(
            "cost_usd",
            "Cost billed in USD by model and channel",
            cost_usd.clone(),
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
            "channel_breaker",
            "Circuit breaker per channel: 1 for its current state (closed, open, half_open)",
            breaker.clone(),
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
            cost_usd,
            in_flight,
            channel_errors,
            breaker_state,
            breaker,
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
            for (name, gauge) in [("closed", 0), ("open", 1), ("half_open", 2)] {
                self.breaker
                    .get_or_create(&BreakerLabel {
                        channel,
                        state: name,
                    })
                    .set(i64::from(state.gauge() == gauge));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
