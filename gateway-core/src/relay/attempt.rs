//! The attempt loop: the plan's channels in order until one answers — each attempt
//! prepared (request in the channel's format, breaker, channel cap), admitted (quota and
//! balance at this channel's price), sent, and either relayed ([`Attempts::respond`]) or
//! recorded as failed and the next one tried. Failover happens only before the first byte
//! reaches the client.

use crate::vocab::status;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use super::OpenAiError;
use super::admission::admit_attempt;
use super::answer::{Received, answer_pipeline};
use super::body::{Mode, RelayBody, Upstream};
use super::endpoint::Endpoint;
use super::ingress::Caller;
use super::plan::Plan;
use super::request::Inbound;
use super::settle::{Settle, burst_headers};
use crate::burst::{LoadGuard, Side};
use crate::live::metrics::ChannelLabel;
use crate::live::{RelayState, h1};
use crate::snapshot::{ChannelRt, Snapshot};
use crate::state::Shared;
use crate::store::channels;
use crate::upstream::{Call, CallError, Request};
use crate::wire::Ingress;
use crate::wire::conversion::DROPPED_TOOLS_HEADER;

// Names of the headers every answer carries, made once: a name given as `&str` is
// parsed and checked on every insert (~600 instructions each, callgrind).
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const OVERHEAD_MS: HeaderName = HeaderName::from_static("x-burncloud-overhead-ms");

/// One request's attempts, with what they share.
pub(super) struct Attempts<'a> {
    pub(super) state: &'a Shared,
    pub(super) snap: &'a Snapshot,
    pub(super) ep: Endpoint,
    pub(super) caller: &'a Caller,
    pub(super) inbound: &'a Inbound,
    pub(super) plan: &'a Plan,
    /// The client's headers (some are passed on, e.g. `anthropic-beta`).
    pub(super) headers: &'a HeaderMap,
    /// When the request arrived.
    pub(super) t0: Instant,
}

/// An upstream answer worth relaying: its status and headers read, and for a successful
/// stream its first chunk.
struct Sent {
    status: StatusCode,
    /// The format the answer came in (for the log), and whether it is the client's own.
    wire: &'static str,
    native: bool,
    is_sse: bool,
    is_json: bool,
    content_type: Option<HeaderValue>,
    content_length: Option<HeaderValue>,
    upstream: Upstream,
    first: Option<Bytes>,
    /// When the request went out, and when the answer (its first chunk) was in.
    t_send: Instant,
    t_done: Instant,
}

impl Attempts<'_> {
    /// Try the plan's channels in order; the first answer is relayed, else the request
    /// fails with what each channel said.
    pub(super) async fn run(&self, mut settle: Settle) -> Response {
        let relay = &self.state.relay;
        let mut attempts = 0usize;
        let mut rpm_skipped = false;
        for &id in &self.plan.order {
            if attempts >= relay.settings.max_attempts {
                settle.trail.push("budget_exhausted".into());
                break;
            }
            let Some(ch) = self.snap.channels.get(&id) else {
                continue;
            };
            let side = Side::of(&ch.locality);
            let model = self.plan.model_for(side, &self.inbound.info.model);
            let call = match self.prepare(id, ch, model) {
                Ok(call) => call,
                Err(CallError::Skip(why)) => {
                    rpm_skipped |= why == "rpm_cap";
                    settle.trail.push(format!("{id}:{why}"));
                    continue;
                }
                Err(CallError::Refuse(m)) => {
                    return settle.reject(OpenAiError::invalid_request(m));
                }
            };
            // Admission on every attempt: this channel's model and price, reserved before
            // it is sent (a failover from a free local model to a priced cloud one is
            // checked).
            let max_tokens = self.inbound.info.max_tokens;
            let admitted = admit_attempt(
                self.state,
                self.caller,
                &mut settle,
                self.snap,
                side,
                model,
                max_tokens,
            )
            .await;
            if let Err(e) = admitted {
                return settle.reject(e);
            }
            attempts += 1;
            let load = relay.burst.loads.begin(id);
            match self.send(id, ch, call).await {
                Ok(sent) => return self.respond(id, ch, side, model, sent, load, settle),
                Err(why) => failed(relay, &mut settle, id, why),
            }
        }
        self.exhausted(settle, attempts, rpm_skipped)
    }

    /// The request for this channel, if the channel may take it now.
    fn prepare(&self, id: i64, ch: &ChannelRt, model: &str) -> Result<Call, CallError> {
        let relay = &self.state.relay;
        let inbound = self.inbound;
        let target = ch.target();
        let upstream_model = ch.upstream_model(model);
        // A Responses request goes as it is to an upstream that serves the Responses API.
        let passthrough = inbound
            .native
            .as_ref()
            .filter(|_| {
                self.ep == Endpoint::Responses && relay.settings.speaks_responses(&ch.base_url)
            })
            .and_then(|native| ch.upstream.responses(&target, native, upstream_model));
        let call = match (passthrough, &inbound.unconvertible) {
            (Some(call), _) => call,
            (None, Some(m)) => return Err(CallError::Refuse(m.clone())),
            (None, None) => ch.upstream.call(
                &target,
                &Request {
                    ep: self.ep,
                    canonical: &inbound.body,
                    info: &inbound.info,
                    native: inbound.native.as_ref(),
                    model: upstream_model,
                    client: self.headers,
                },
            )?,
        };
        if !relay.breakers.allow(id) {
            return Err(CallError::Skip("breaker_open"));
        }
        if let Some(cap) = ch.rpm_limit
            && !relay
                .limits
                .channel_rpm
                .try_add(id, 1, relay.limits.share(cap))
        {
            return Err(CallError::Skip("rpm_cap"));
        }
        Ok(call)
    }

    /// Send one attempt: an answer worth relaying, or why this channel failed.
    async fn send(&self, id: i64, ch: &ChannelRt, call: Call) -> Result<Sent, String> {
        let relay = &self.state.relay;
        let (wire, native, google_token) = (call.wire, call.native, call.google_token);
        // llama-server closes the connection after each streamed answer without saying
        // so: a pooled connection would race that close. Local upstreams get a fresh
        // loopback connection per request (tens of microseconds).
        let reuse = ch.locality != "local";
        let timeout = relay.settings.first_byte_timeout;
        let direct = (relay.h1_direct && !google_token)
            .then(|| h1::Target::parse(&call.url))
            .flatten();
        // Why a send that got no answer failed, for the failover trail.
        let failed = |connect: bool| if connect { "connect_error" } else { "error" }.to_string();
        let t_send;
        let deadline;
        let (head, mut upstream): (h1::Head, Upstream) = if let Some(target) = direct {
            // Plain HTTP: read by this task, chunks coalesced (see `live::h1`).
            t_send = Instant::now();
            deadline = tokio::time::Instant::from_std(t_send + timeout);
            let sent = relay.h1.post(&target, &call.headers, &call.body, reuse);
            match tokio::time::timeout_at(deadline, sent).await {
                Err(_) => return Err("timeout".into()),
                Ok(Err(e)) => return Err(failed(e.is_connect())),
                Ok(Ok(r)) => (
                    r.head,
                    r.body.into_stream().map_err(std::io::Error::other).boxed(),
                ),
            }
        } else {
            let client = if reuse {
                &relay.client
            } else {
                &relay.local_client
            };
            let mut rb = client.post(call.url).headers(call.headers).body(call.body);
            if google_token {
                // Boxed: Vertex's token fetch (~1.2 KB of future) would otherwise be
                // part of every request's relay future.
                let bearer = Box::pin(relay.google_tokens.bearer(
                    &relay.client,
                    id,
                    &ch.key,
                    timeout,
                ))
                .await
                .map_err(|e| format!("vertex_token: {}", e.replace(',', ";")))?;
                rb = rb.header(header::AUTHORIZATION, bearer);
            }
            t_send = Instant::now();
            deadline = tokio::time::Instant::from_std(t_send + timeout);
            let resp = match tokio::time::timeout_at(deadline, rb.send()).await {
                Err(_) => return Err("timeout".into()),
                Ok(Err(e)) => return Err(failed(e.is_connect())),
                Ok(Ok(r)) => r,
            };
            let h = resp.headers();
            let head = h1::Head {
                status: resp.status(),
                content_type: h.get(header::CONTENT_TYPE).cloned(),
                content_length: h.get(header::CONTENT_LENGTH).cloned(),
                location: h.get(header::LOCATION).cloned(),
            };
            (
                head,
                resp.bytes_stream().map_err(std::io::Error::other).boxed(),
            )
        };
        let status = head.status;
        if status == StatusCode::UNAUTHORIZED {
            if google_token {
                // Google refused the access token, not the key: the next attempt gets a
                // new one.
                relay.google_tokens.forget(id);
            } else {
                disable_channel(
                    self.state.clone(),
                    id,
                    "the upstream rejected the channel key (HTTP 401)",
                );
            }
            return Err("401".into());
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(status.as_u16().to_string());
        }
        // Redirects are never followed (the key would go along): a failed attempt that
        // says where it pointed.
        if status.is_redirection() {
            let to = head
                .location
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.parse::<axum::http::Uri>().ok())
                .and_then(|u| u.host().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            return Err(format!("redirect({})->{to}", status.as_u16()));
        }
        let content_type = head.content_type;
        let type_is = |f: &dyn Fn(&str) -> bool| {
            content_type
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .is_some_and(f)
        };
        let is_sse = type_is(&|v| {
            v.starts_with("text/event-stream")
                || v.starts_with("application/vnd.amazon.eventstream")
        });
        let is_json = type_is(&|v| v.contains("json"));
        let content_length = head.content_length;
        let mut first = None;
        if is_sse && status.is_success() {
            match tokio::time::timeout_at(deadline, upstream.next()).await {
                Err(_) => return Err("first_byte_timeout".into()),
                Ok(None) => return Err("empty_stream".into()),
                Ok(Some(Err(_))) => return Err("stream_error".into()),
                Ok(Some(Ok(b))) => first = Some(b),
            }
        }
        Ok(Sent {
            status,
            wire,
            native,
            is_sse,
            is_json,
            content_type,
            content_length,
            upstream,
            first,
            t_send,
            t_done: Instant::now(),
        })
    }

    /// Relay a channel's answer: the request is settled by the body when it ends.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        id: i64,
        ch: &ChannelRt,
        side: Side,
        model: &str,
        sent: Sent,
        load: LoadGuard,
        mut settle: Settle,
    ) -> Response {
        let relay = &self.state.relay;
        let info = &self.inbound.info;
        relay.breakers.record_at(id, true, sent.t_done);
        settle.channel_id = Some(id);
        settle.side = Some(side);
        settle.upstream = Some(sent.wire);
        settle.load = Some(load);
        if model != info.model {
            settle.model = Some(model.into());
        }
        settle.ttfb = Some(sent.t_done.duration_since(self.t0));
        let overhead = sent.t_send.duration_since(self.t0) + sent.t_done.elapsed();
        relay.metrics.overhead.observe(overhead.as_secs_f64());
        let received = Received {
            native: sent.native,
            is_sse: sent.is_sse,
            is_json: sent.is_json,
            status: sent.status,
            upstream_model: ch.upstream_model(model),
        };
        let pipeline = answer_pipeline(self.ep, ch.upstream, &received, info, &self.inbound.conv);
        let content_type = match &pipeline {
            Some(p) => Some(HeaderValue::from_static(p.content_type())),
            None => sent.content_type,
        };
        // A JSON body passes through unchanged: keep its length so it is not re-chunked.
        let content_length = if sent.is_sse || pipeline.is_some() {
            None
        } else {
            sent.content_length
        };
        // Made before the settle moves into the body: the id is copied once, into the header.
        let request_id = HeaderValue::from_str(&settle.request_id).ok();
        let filter = sent.is_sse && info.stream && !info.client_wants_usage;
        let body = RelayBody::new(
            sent.first,
            sent.upstream,
            Mode::for_answer(pipeline, sent.is_sse, filter),
            sent.status.as_u16(),
            settle,
            relay.settings.idle_timeout,
            content_length
                .as_ref()
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        );
        // A stopped answer stops the local engine too (it is not billed by the token).
        let body = if ch.locality == "local" {
            body.without_drain()
        } else {
            body
        };
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = sent.status;
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            content_type.unwrap_or_else(|| HeaderValue::from_static("application/json")),
        );
        if sent.is_sse {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        if let Some(len) = content_length {
            h.insert(header::CONTENT_LENGTH, len);
        }
        if let Some(v) = request_id {
            if self.ep.ingress() == Ingress::Anthropic {
                h.insert(REQUEST_ID, v.clone());
            }
            h.insert(X_REQUEST_ID, v);
        }
        if let Some(v) = millis_header(overhead) {
            h.insert(OVERHEAD_MS, v);
        }
        if let Some(b) = &self.plan.burst {
            burst_headers(h, b, Some(side));
        }
        // Tools the channel cannot run were left out of a converted request (the client's
        // own body, sent as it is, keeps them).
        if !sent.native
            && let Some(v) = self.inbound.conv.dropped_header()
            && let Ok(v) = HeaderValue::from_str(&v)
        {
            h.insert(DROPPED_TOOLS_HEADER, v);
        }
        response
    }

    /// No channel answered: why, in the client's words.
    fn exhausted(&self, settle: Settle, attempts: usize, rpm_skipped: bool) -> Response {
        let model = &self.inbound.info.model;
        let e = if attempts == 0 && rpm_skipped {
            OpenAiError::rate_limited(format!(
                "Every channel serving '{model}' is at its requests-per-minute cap"
            ))
        } else if settle.trail.is_empty() {
            OpenAiError::unavailable(format!("No channel available for model '{model}'"))
        } else {
            OpenAiError::unavailable(format!(
                "No channel could serve model '{model}' (tried: {})",
                settle.trail.join(", ")
            ))
        };
        settle.reject(e)
    }
}

/// A failed attempt: the breaker and the channel's error count learn of it, and the
/// failover trail says why. A request that fails everywhere is logged on the last channel
/// it tried, so filtering the logs by channel finds it.
fn failed(relay: &RelayState, settle: &mut Settle, id: i64, why: String) {
    relay.breakers.record(id, false);
    relay
        .metrics
        .channel_errors
        .get_or_create(&ChannelLabel { channel: id })
        .inc();
    tracing::warn!(request = %settle.request_id, channel = id, reason = %why, "upstream attempt failed");
    settle.trail.push(format!("{id}:{why}"));
    settle.channel_id = Some(id);
}

/// Disable a channel whose key was rejected, off the request path.
fn disable_channel(state: Shared, id: i64, reason: &'static str) {
    tokio::spawn(async move {
        let why = format!("{reason} at unix time {}", crate::store::now_secs());
        match state
            .store
            .run(move |c| channels::set_status(c, id, status::DISABLED, Some(&why)))
            .await
        {
            Ok(()) => {
                tracing::warn!(channel = id, "channel disabled automatically: {reason}");
                state.config_changed().await;
            }
            Err(e) => tracing::error!(channel = id, error = %e, "could not disable channel"),
        }
    });
}

/// `d` in milliseconds with three decimals (`0.123`), formatted on the stack.
fn millis_header(d: std::time::Duration) -> Option<HeaderValue> {
    let micros = (d.as_nanos() + 500) / 1000;
    // Written by hand: `write!` through `fmt` cost ~900 instructions per request.
    let mut buf = [0u8; 48];
    let mut at = buf.len();
    for (i, digit) in digits(micros).enumerate() {
        if i == 3 {
            at -= 1;
            buf[at] = b'.';
        }
        at -= 1;
        buf[at] = digit;
    }
    HeaderValue::from_bytes(&buf[at..]).ok()
}

/// The decimal digits of `n`, last first, at least four (so a millisecond count with three
/// decimals always has its leading `0.`).
fn digits(mut n: u128) -> impl Iterator<Item = u8> {
    let mut count = 0;
    std::iter::from_fn(move || {
        if n == 0 && count >= 4 {
            return None;
        }
        count += 1;
        let d = (n % 10) as u8;
        n /= 10;
        Some(b'0' + d)
    })
}

#[cfg(test)]
mod tests {
    use super::millis_header;
    use std::time::Duration;

    #[test]
    fn overhead_is_written_in_milliseconds_with_three_decimals() {
        for (d, want) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_micros(123), "0.123"),
            (Duration::from_nanos(1_234_567), "1.235"),
            (Duration::from_millis(12_345), "12345.000"),
            (Duration::from_micros(10), "0.010"),
            (Duration::from_nanos(999_500), "1.000"),
            (Duration::from_millis(1), "1.000"),
            (Duration::MAX, "18446744073709551616000.000"),
        ] {
            assert_eq!(millis_header(d).unwrap(), want);
        }
    }
}
