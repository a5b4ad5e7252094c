//! Prometheus metrics of the data plane, served as text at `/metrics`.

use std::sync::{Arc, OnceLock, RwLock};

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
    /// Each route's handles, taken out of the families once ([`Metrics::route`]).
    routes: RwLock<crate::Map<RouteLabel, Arc<RouteMetrics>>>,
}

/// A route's (model and channel's) series, cloned out of their families the first time
/// each is used: the handles share the families' values, so a request updates them
/// without hashing its labels (with the families' SipHash) five times. Each series is
/// still created only when first used, as through the families.
pub struct RouteMetrics {
    label: RouteLabel,
    ok: OnceLock<Counter>,
    latency: OnceLock<Histogram>,
    ttfb: OnceLock<Histogram>,
    prompt: OnceLock<Counter>,
    completion: OnceLock<Counter>,
    cost_usd: OnceLock<Counter<f64>>,
}

impl RouteMetrics {
    /// Count a request that ended with `status`.
    pub fn request(&self, m: &Metrics, status: u16) {
        let label = || StatusLabel {
            status,
            model: self.label.model.clone(),
            channel: self.label.channel,
        };
        if status == 200 {
            self.ok
                .get_or_init(|| m.requests.get_or_create(&label()).clone())
                .inc();
        } else {
            m.requests.get_or_create(&label()).inc();
        }
    }

    pub fn latency(&self, m: &Metrics) -> &Histogram {
        self.latency
            .get_or_init(|| m.latency.get_or_create(&self.label).clone())
    }

    pub fn ttfb(&self, m: &Metrics) -> &Histogram {
        self.ttfb
            .get_or_init(|| m.ttfb.get_or_create(&self.label).clone())
    }

    pub fn prompt_tokens(&self, m: &Metrics) -> &Counter {
        self.token_series(m, &self.prompt, "prompt")
    }

    pub fn completion_tokens(&self, m: &Metrics) -> &Counter {
        self.token_series(m, &self.completion, "completion")
    }

    fn token_series<'a>(
        &self,
        m: &Metrics,
        cell: &'a OnceLock<Counter>,
        kind: &'static str,
    ) -> &'a Counter {
        cell.get_or_init(|| {
            m.tokens
                .get_or_create(&TokenLabel {
                    kind,
                    model: self.label.model.clone(),
                    channel: self.label.channel,
                })
                .clone()
        })
    }

    pub fn cost_usd(&self, m: &Metrics) -> &Counter<f64> {
        self.cost_usd
            .get_or_init(|| m.cost_usd.get_or_create(&self.label).clone())
    }
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
            routes: RwLock::default(),
        }
    }
}

impl Metrics {
    /// The series of requests served by `label`'s model and channel.
    pub fn route(&self, label: RouteLabel) -> Arc<RouteMetrics> {
        let read = self.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = read.get(&label) {
            return Arc::clone(r);
        }
        drop(read);
        let mut write = self.routes.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(write.entry(label.clone()).or_insert_with(|| {
            Arc::new(RouteMetrics {
                label,
                ok: OnceLock::new(),
                latency: OnceLock::new(),
                ttfb: OnceLock::new(),
                prompt: OnceLock::new(),
                completion: OnceLock::new(),
                cost_usd: OnceLock::new(),
            })
        }))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, start: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(start))
    }

    #[test]
    fn a_routes_handles_count_into_the_exposed_series_and_unused_ones_stay_absent() {
        let m = Metrics::default();
        let label = RouteLabel {
            model: Some("gpt-x".into()),
            channel: Some(7),
        };
        let r = m.route(label.clone());
        assert!(Arc::ptr_eq(&r, &m.route(label)), "one entry per route");
        for _ in 0..3 {
            m.route(r.label.clone()).request(&m, 200);
        }
        r.request(&m, 429);
        r.latency(&m).observe(0.002);
        r.prompt_tokens(&m).inc_by(11);
        r.completion_tokens(&m).inc_by(5);
        // Through the family as before: the same series.
        m.requests
            .get_or_create(&StatusLabel {
                status: 200,
                model: Some("gpt-x".into()),
                channel: Some(7),
            })
            .inc();
        let text = m.render(&Breakers::new(&crate::config::RelaySettings::default()));
        let ok = r#"burncloud_requests_total{status="200",model="gpt-x",channel="7"} "#;
        assert_eq!(line(&text, ok), Some(&*format!("{ok}4")), "{text}");
        let limited = r#"burncloud_requests_total{status="429",model="gpt-x",channel="7"} "#;
        assert_eq!(line(&text, limited), Some(&*format!("{limited}1")));
        let prompt = r#"burncloud_tokens_total{kind="prompt",model="gpt-x",channel="7"} "#;
        assert_eq!(line(&text, prompt), Some(&*format!("{prompt}11")));
        let completion = r#"burncloud_tokens_total{kind="completion",model="gpt-x",channel="7"} "#;
        assert_eq!(line(&text, completion), Some(&*format!("{completion}5")));
        let count = r#"burncloud_request_duration_seconds_count{model="gpt-x",channel="7"} "#;
        assert_eq!(line(&text, count), Some(&*format!("{count}1")));
        // Never streamed, never billed: no series of either.
        assert!(
            !text.contains("burncloud_time_to_first_byte_seconds_count{"),
            "{text}"
        );
        assert!(!text.contains("burncloud_cost_usd_total{"), "{text}");
    }
}
