//! [`Settle`]: what one request owes, settled exactly once whatever happens to it —
//! ledger reservations released or charged, limits, metrics, the log record — by
//! `finish` or, if the request is dropped on the way, by `Drop`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use super::OpenAiError;
use super::endpoint::{Endpoint, render_error};
use super::ingress::Caller;
use super::plan::BurstInfo;
use super::usage::Usage;
use crate::burst::{LoadGuard, Side};
use crate::live::metrics::RouteLabel;
use crate::snapshot::{TokenRt, UserRt};
use crate::state::Shared;
use crate::store::logs::LogRecord;
use crate::store::now_ms;
use crate::tariff::Tariff;
use crate::wire::Ingress;

/// Settles one request exactly once: ledger, limits, metrics, log record.
pub(super) struct Settle {
    pub(super) state: Shared,
    pub(super) request_id: String,
    /// The caller (the snapshot's record, shared).
    pub(super) user: Arc<UserRt>,
    pub(super) token: Option<Arc<TokenRt>>,
    pub(super) endpoint: &'static str,
    pub(super) ingress: Ingress,
    /// The wire format of the channel that served.
    pub(super) upstream: Option<&'static str>,
    /// The model billed (shared with the metrics' labels).
    pub(super) model: Option<Arc<str>>,
    pub(super) stream: bool,
    pub(super) channel_id: Option<i64>,
    /// Whether the ledger admitted the request (for `tariff`).
    pub(super) admitted: bool,
    /// Reserved on the token's quota and on the user's balance.
    pub(super) reservation: i64,
    pub(super) user_reservation: i64,
    /// How the served model is billed (None: unpriced), and the caller's group ratio.
    pub(super) tariff: Option<Tariff>,
    pub(super) group_ratio: i64,
    pub(super) t0: Instant,
    /// Unix milliseconds when the request arrived (its id's and its record's time).
    pub(super) t0_ms: i64,
    pub(super) ttfb: Option<Duration>,
    pub(super) trail: Vec<String>,
    pub(super) prompt_estimate: i64,
    /// Burst routing's decision, where it decided.
    pub(super) burst: Option<BurstInfo>,
    /// The side of the channel that served.
    pub(super) side: Option<Side>,
    /// The in-flight slot on the serving channel (released when the request settles).
    pub(super) load: Option<LoadGuard>,
    pub(super) done: bool,
}

/// How a request ended, for its record.
pub(super) struct Outcome {
    pub(super) status: u16,
    pub(super) usage: Option<Usage>,
    pub(super) estimated: bool,
    pub(super) error: Option<String>,
    pub(super) flag: Option<&'static str>,
}

impl Outcome {
    pub(super) fn error(status: u16, error: impl Into<String>) -> Self {
        Outcome {
            status,
            usage: None,
            estimated: false,
            error: Some(error.into()),
            flag: None,
        }
    }
}

impl Settle {
    pub(super) fn new(state: Shared, caller: &Caller, endpoint: Endpoint, t0: Instant) -> Self {
        state.relay.metrics.in_flight.inc();
        let seq = state
            .relay
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The wall clock is read once per request, here (a clock read is ~25 ns, and a
        // request made ~15 of them).
        let t0_ms = now_ms();
        Settle {
            request_id: request_id(t0_ms, seq),
            state,
            user: caller.user.clone(),
            token: caller.token.clone(),
            endpoint: endpoint.path(),
            ingress: endpoint.ingress(),
            upstream: None,
            model: None,
            stream: false,
            channel_id: None,
            admitted: false,
            reservation: 0,
            user_reservation: 0,
            tariff: None,
            group_ratio: crate::tariff::RATIO_ONE,
            t0,
            t0_ms,
            ttfb: None,
            trail: Vec::new(),
            prompt_estimate: 0,
            burst: None,
            side: None,
            load: None,
            done: false,
        }
    }

    /// Answer with an error and record it.
    pub(super) fn reject(mut self, e: OpenAiError) -> Response {
        self.finish(Outcome::error(e.status.as_u16(), e.message.clone()));
        let mut resp = render_error(self.ingress, e);
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        if let Some(b) = &self.burst {
            burst_headers(resp.headers_mut(), b, None);
        }
        resp
    }

    pub(super) fn finish(&mut self, o: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        let relay = &self.state.relay;
        relay.metrics.in_flight.dec();
        self.load = None;
        let mut flags: Vec<&str> = Vec::new();
        if let Some(f) = o.flag {
            flags.push(f);
        }
        if o.estimated {
            flags.push("usage_estimated");
        }
        let cost = match (o.usage, &self.tariff) {
            (Some(u), Some(t)) => t.cost(u, self.group_ratio),
            (Some(_), None) => {
                flags.push("unpriced");
                0
            }
            (None, _) => 0,
        };
        relay
            .ledger
            .settle_user(&self.user.id, self.user_reservation, cost);
        if let Some(t) = &self.token {
            relay.ledger.settle(t.id, self.reservation, cost);
            if let Some(u) = o.usage {
                relay.limits.token_tpm.add(t.id, u.prompt + u.completion);
            }
        }
        let m = &relay.metrics;
        // Labelled only once a channel was tried: a client's unknown model adds no series.
        let route = match (self.channel_id, &self.model) {
            (Some(id), Some(model)) => RouteLabel {
                model: Some(model.clone()),
                channel: Some(id),
            },
            _ => RouteLabel {
                model: None,
                channel: None,
            },
        };
        let r = m.route(route);
        r.request(m, o.status);
        let elapsed = self.t0.elapsed();
        r.latency(m).observe(elapsed.as_secs_f64());
        if self.stream
            && let Some(t) = self.ttfb
        {
            r.ttfb(m).observe(t.as_secs_f64());
        }
        if let Some(u) = o.usage {
            r.prompt_tokens(m).inc_by(u.prompt.max(0) as u64);
            r.completion_tokens(m).inc_by(u.completion.max(0) as u64);
        }
        m.cost_nano.inc_by(cost.max(0) as u64);
        if cost > 0 {
            r.cost_usd(m).inc_by(cost as f64 / 1e9);
        }
        if let Some(id) = self.channel_id
            && (200..300).contains(&o.status)
        {
            let sample = if self.stream { self.ttfb } else { None };
            relay.burst.loads.observe(id, sample.unwrap_or(elapsed));
        }
        if self.side == Some(Side::Cloud) && cost > 0 {
            relay
                .burst
                .spend
                .add(self.t0_ms + elapsed.as_millis() as i64, cost);
        }
        relay.writer.send(LogRecord {
            request_id: std::mem::take(&mut self.request_id),
            created_at_ms: self.t0_ms,
            user_id: Some(self.user.id.clone()),
            token_id: self.token.as_ref().map(|t| t.id),
            model: self.model.as_deref().map(String::from),
            channel_id: self.channel_id,
            endpoint: self.endpoint.into(),
            status: i64::from(o.status),
            stream: self.stream,
            latency_ms: Some(elapsed.as_millis() as i64),
            ttfb_ms: self.ttfb.map(|d| d.as_millis() as i64),
            prompt_tokens: o.usage.map(|u| u.prompt),
            completion_tokens: o.usage.map(|u| u.completion),
            cost_nano: cost,
            error: o.error,
            failover: (!self.trail.is_empty()).then(|| self.trail.join(",")),
            flags: (!flags.is_empty()).then(|| flags.join(",")),
            locality: self.side.map(|s| s.as_str().into()),
            ingress: Some(self.ingress.as_str().into()),
            upstream: self.upstream.map(Into::into),
            cache_read_tokens: o.usage.map(|u| u.cached).filter(|n| *n > 0),
            cache_write_tokens: o.usage.map(|u| u.cache_write).filter(|n| *n > 0),
            burst: self.burst.as_ref().map(|b| b.record(self.side)),
        });
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        // The handler was cancelled (client went away before a response was chosen).
        self.finish(Outcome {
            flag: Some("client_disconnected"),
            ..Outcome::error(499, "client closed the request")
        });
    }
}

/// A request's id: the time it arrived and its number since start, in hex (written by
/// hand into one allocation: `write!` through `fmt` cost ~600 instructions per request).
fn request_id(ms: i64, seq: u64) -> String {
    let mut id = String::with_capacity(28);
    push_hex(&mut id, ms as u64);
    id.push('-');
    push_hex(&mut id, seq);
    id
}

/// `n` in lowercase hex without leading zeros, as `{:x}` writes it.
fn push_hex(out: &mut String, n: u64) {
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        let d = ((n >> (i * 4)) & 0xf) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

/// Seed 004's headers: which side served (if any), the mode, why, and the sensitivity.
pub(super) fn burst_headers(h: &mut HeaderMap, b: &BurstInfo, served: Option<Side>) {
    if let Some(side) = served {
        h.insert("x-burst-backend", HeaderValue::from_static(side.as_str()));
    }
    h.insert("x-burst-mode", HeaderValue::from_static(b.mode.as_str()));
    h.insert(
        "x-burst-reason",
        HeaderValue::from_static(served.map_or(b.reason, |s| b.reason_for(s))),
    );
    h.insert(
        "x-burst-sensitivity",
        HeaderValue::from_static(b.sensitivity.as_str()),
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_id_is_written_as_format_writes_it() {
        for (ms, seq) in [
            (0, 0),
            (1, 15),
            (16, 16),
            (1_796_390_082_002, 255),
            (i64::MAX, u64::MAX),
            (-1, 0x0123_4567_89ab_cdef),
        ] {
            assert_eq!(super::request_id(ms, seq), format!("{ms:x}-{seq:x}"));
        }
    }
}
