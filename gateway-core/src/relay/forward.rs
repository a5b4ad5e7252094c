//! Forwarding: try candidate channels in order, relay the chosen upstream's response as it
//! arrives, and settle the request exactly once (on completion, error or disconnect).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::OpenAiError;
use super::ingress::{self, Caller};
use super::plan::{self, BurstInfo};
use super::usage::{BodyCollector, SseScanner, Usage};
use crate::adapt::conversion::{Conversion, DROPPED_TOOLS_HEADER};
use crate::adapt::{
    Format, Ingress, OpenAiErrorBody, Pipeline, Stage, anthropic, anthropic_up, azure, bedrock,
    gemini, ollama, responses, responses_up, vertex,
};
use crate::burst::{LoadGuard, Side};
use crate::channel_types::Protocol;
use crate::live::ledger::Admission;
use crate::live::metrics::{ChannelLabel, RouteLabel, StatusLabel, TokenLabel};
use crate::snapshot::{ChannelRt, TokenRt};
use crate::state::Shared;
use crate::store::logs::LogRecord;
use crate::store::{channels, now_ms};
use crate::tariff::{Tariff, Tokens};

/// The endpoints the relay serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    /// Rerank (Jina/Cohere shape, as llama-server serves it): OpenAI-format channels only.
    Rerank,
    /// Anthropic Messages, converted to chat for non-Anthropic channels.
    Messages,
    /// OpenAI Responses, converted to chat for every channel.
    Responses,
    /// Ollama's `/api/chat`, `/api/generate`, `/api/embed`, converted for every channel.
    Ollama(ollama::Kind),
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Rerank => "/v1/rerank",
            Endpoint::Messages => "/v1/messages",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Ollama(ollama::Kind::Chat) => "/api/chat",
            Endpoint::Ollama(ollama::Kind::Generate) => "/api/generate",
            Endpoint::Ollama(ollama::Kind::Embed) => "/api/embed",
        }
    }

    /// The OpenAI path a request to this endpoint takes on an OpenAI-format channel.
    fn openai_path(self) -> &'static str {
        match self {
            Endpoint::Messages
            | Endpoint::Responses
            | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate) => {
                "/v1/chat/completions"
            }
            Endpoint::Ollama(ollama::Kind::Embed) => "/v1/embeddings",
            e => e.path(),
        }
    }

    fn ingress(self) -> Ingress {
        match self {
            Endpoint::Messages => Ingress::Anthropic,
            Endpoint::Responses => Ingress::Responses,
            Endpoint::Ollama(_) => Ingress::Ollama,
            _ => Ingress::OpenAi,
        }
    }
}

/// An error in the shape of the client's ingress.
pub(super) fn render_error(ingress: Ingress, e: OpenAiError) -> Response {
    match ingress {
        Ingress::OpenAi | Ingress::Responses => e.into_response(),
        Ingress::Anthropic => {
            let body = anthropic::error_body(e.status.as_u16(), &e.message);
            let mut resp = (e.status, axum::Json(body)).into_response();
            e.add_headers(&mut resp);
            resp
        }
        Ingress::Ollama => {
            let mut resp = (e.status, axum::Json(ollama::error_body(&e.message))).into_response();
            e.add_headers(&mut resp);
            resp
        }
    }
}

pub async fn chat_completions(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(state, Endpoint::Chat, addr, headers, body)).await
}

pub async fn completions(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(state, Endpoint::Completions, addr, headers, body)).await
}

pub async fn embeddings(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(state, Endpoint::Embeddings, addr, headers, body)).await
}

pub async fn rerank(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(state, Endpoint::Rerank, addr, headers, body)).await
}

pub async fn messages(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(state, Endpoint::Messages, addr, headers, body)).await
}

pub async fn responses(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(state, Endpoint::Responses, addr, headers, body)).await
}

/// Run the relay on its own task, so a client that goes away does not cancel it: the
/// upstream is still read and its usage billed (see [`RelayBody`]'s drop). Dropping an
/// undelivered response drains it.
pub(super) async fn detached(
    relay: impl std::future::Future<Output = Response> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(relay.await);
    });
    rx.await.unwrap_or_else(|_| {
        OpenAiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the request failed inside the gateway",
        )
        .into_response()
    })
}

/// Settles one request exactly once: ledger, limits, metrics, log record.
struct Settle {
    state: Shared,
    request_id: String,
    user_id: String,
    token: Option<Arc<TokenRt>>,
    endpoint: &'static str,
    ingress: Ingress,
    /// The wire format of the channel that served.
    upstream: Option<&'static str>,
    model: Option<String>,
    stream: bool,
    channel_id: Option<i64>,
    /// Whether the ledger admitted the request (for `tariff`).
    admitted: bool,
    /// Reserved on the token's quota and on the user's balance.
    reservation: i64,
    user_reservation: i64,
    /// How the served model is billed (None: unpriced), and the caller's group ratio.
    tariff: Option<Tariff>,
    group_ratio: i64,
    t0: Instant,
    ttfb: Option<Duration>,
    trail: Vec<String>,
    prompt_estimate: i64,
    /// Burst routing's decision, where it decided.
    burst: Option<BurstInfo>,
    /// The side of the channel that served.
    side: Option<Side>,
    /// The in-flight slot on the serving channel (released when the request settles).
    load: Option<LoadGuard>,
    done: bool,
}

/// How a request ended, for its record.
struct Outcome {
    status: u16,
    usage: Option<Usage>,
    estimated: bool,
    error: Option<String>,
    flag: Option<&'static str>,
}

impl Outcome {
    fn error(status: u16, error: impl Into<String>) -> Self {
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
    fn new(state: Shared, caller: &Caller, endpoint: Endpoint, t0: Instant) -> Self {
        state.relay.metrics.in_flight.inc();
        let seq = state
            .relay
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Settle {
            request_id: format!("{:x}-{seq:x}", now_ms()),
            state,
            user_id: caller.user_id.clone(),
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
    fn reject(mut self, e: OpenAiError) -> Response {
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

    fn finish(&mut self, o: Outcome) {
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
            (Some(u), Some(t)) => t.cost(
                Tokens {
                    prompt: u.prompt,
                    completion: u.completion,
                    cached: u.cached,
                    cache_write: u.cache_write,
                },
                self.group_ratio,
            ),
            (Some(_), None) => {
                flags.push("unpriced");
                0
            }
            (None, _) => 0,
        };
        relay
            .ledger
            .settle_user(&self.user_id, self.user_reservation, cost);
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
                model: model.clone(),
                channel: id.to_string(),
            },
            _ => RouteLabel {
                model: String::new(),
                channel: String::new(),
            },
        };
        m.requests
            .get_or_create(&StatusLabel {
                status: o.status,
                model: route.model.clone(),
                channel: route.channel.clone(),
            })
            .inc();
        let elapsed = self.t0.elapsed();
        m.latency
            .get_or_create(&route)
            .observe(elapsed.as_secs_f64());
        if self.stream
            && let Some(t) = self.ttfb
        {
            m.ttfb.get_or_create(&route).observe(t.as_secs_f64());
        }
        if let Some(u) = o.usage {
            for (kind, n) in [("prompt", u.prompt), ("completion", u.completion)] {
                m.tokens
                    .get_or_create(&TokenLabel {
                        kind,
                        model: route.model.clone(),
                        channel: route.channel.clone(),
                    })
                    .inc_by(n.max(0) as u64);
            }
        }
        m.cost_nano.inc_by(cost.max(0) as u64);
        if cost > 0 {
            m.cost_usd.get_or_create(&route).inc_by(cost as f64 / 1e9);
        }
        if let Some(id) = self.channel_id
            && (200..300).contains(&o.status)
        {
            let sample = if self.stream { self.ttfb } else { None };
            relay.burst.loads.observe(id, sample.unwrap_or(elapsed));
        }
        if self.side == Some(Side::Cloud) && cost > 0 {
            relay.burst.spend.add(now_ms(), cost);
        }
        relay.writer.send(LogRecord {
            request_id: std::mem::take(&mut self.request_id),
            created_at_ms: now_ms() - elapsed.as_millis() as i64,
            user_id: Some(self.user_id.clone()),
            token_id: self.token.as_ref().map(|t| t.id),
            model: self.model.take(),
            channel_id: self.channel_id,
            endpoint: self.endpoint.to_string(),
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
            locality: self.side.map(|s| s.as_str().to_string()),
            ingress: Some(self.ingress.as_str().to_string()),
            upstream: self.upstream.map(str::to_string),
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

/// Start a just-in-time local model and wait for it, at most `jit_wait`.
async fn jit_start(state: &Shared, id: i64, model: &str) -> Result<(), OpenAiError> {
    let Some(rt) = state.local_runtime() else {
        return Err(OpenAiError::unavailable(format!(
            "The local model '{model}' is stopped and this gateway has no local runtime to start it"
        )));
    };
    let wait = state.relay.settings.jit_wait;
    match tokio::time::timeout(wait, rt.ensure_running(id)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(OpenAiError::unavailable(format!(
            "The local model '{model}' could not be started: {e}"
        ))),
        Err(_) => Err(OpenAiError::unavailable(format!(
            "The local model '{model}' is still loading (waited {} s): retry shortly",
            wait.as_secs()
        ))
        .with_retry_after(5)),
    }
}

/// Reserve on the token's quota and the user's balance, waiting (bounded) while
/// reservations of requests in flight hold what is left.
async fn admit(
    state: &Shared,
    caller: &Caller,
    settle: &mut Settle,
    user_quota: i64,
    estimate: Option<i64>,
) -> Result<(), OpenAiError> {
    let ledger = &state.relay.ledger;
    let wait_until = tokio::time::Instant::now() + state.relay.settings.first_byte_timeout;
    loop {
        let released = match &caller.token {
            Some(t) => ledger.released(t.id),
            None => ledger.user_released(&caller.user_id),
        };
        let notified = released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let user_released = ledger.user_released(&caller.user_id);
        let user_notified = user_released.notified();
        tokio::pin!(user_notified);
        user_notified.as_mut().enable();
        let token_reservation = match &caller.token {
            None => 0,
            Some(t) => match ledger.admit(t.id, t.quota_limit_nano, estimate) {
                Admission::Admitted(r) => r,
                Admission::Exhausted => return Err(OpenAiError::insufficient_quota()),
                Admission::Busy => {
                    if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                        return Err(OpenAiError::rate_limited(
                            "Too many concurrent requests for the quota left on this API key",
                        ));
                    }
                    continue;
                }
            },
        };
        let release_token = || {
            if let Some(t) = &caller.token {
                ledger.settle(t.id, token_reservation, 0);
            }
        };
        match ledger.admit_user(&caller.user_id, user_quota, estimate) {
            Admission::Admitted(r) => {
                settle.reservation = token_reservation;
                settle.user_reservation = r;
                return Ok(());
            }
            Admission::Exhausted => {
                release_token();
                return Err(OpenAiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "insufficient_quota",
                    "Your account balance is used up: redeem a code or ask an admin to top it up",
                ));
            }
            Admission::Busy => {
                release_token();
                if tokio::time::timeout_at(wait_until, user_notified)
                    .await
                    .is_err()
                {
                    return Err(OpenAiError::rate_limited(
                        "Too many concurrent requests for the balance left on this account",
                    ));
                }
            }
        }
    }
}

/// Admit an attempt on a channel of `side` serving `model`: a non-admin may not use an
/// unpriced cloud model (unless the admin allows it); the token quota and the user's
/// balance are reserved for this model's price — again when it differs from the price
/// reserved for an earlier attempt.
async fn admit_attempt(
    state: &Shared,
    caller: &Caller,
    settle: &mut Settle,
    snap: &crate::snapshot::Snapshot,
    side: Side,
    model: &str,
    max_tokens: Option<i64>,
) -> Result<(), OpenAiError> {
    let tariff = snap.tariff(model);
    if side == Side::Cloud && tariff.is_none() && !caller.user.admin && !snap.allow_unpriced_cloud {
        return Err(OpenAiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_quota",
            format!(
                "The cloud model '{model}' has no price, so it cannot be billed: ask an admin to set a price for it"
            ),
        ));
    }
    if settle.admitted && settle.tariff == tariff {
        return Ok(());
    }
    if settle.admitted {
        let ledger = &state.relay.ledger;
        if let Some(t) = &caller.token {
            ledger.settle(t.id, std::mem::take(&mut settle.reservation), 0);
        }
        ledger.settle_user(
            &caller.user_id,
            std::mem::take(&mut settle.user_reservation),
            0,
        );
        settle.admitted = false;
    }
    let estimate = match (max_tokens, &tariff) {
        (Some(max), Some(t)) => Some(t.cost(
            Tokens {
                prompt: settle.prompt_estimate,
                completion: max,
                ..Default::default()
            },
            settle.group_ratio,
        )),
        _ => None,
    };
    // Free requests (unpriced, or priced 0) do not draw on the user's balance.
    let user_quota = if tariff.is_some_and(|t| !t.is_free()) {
        caller.user.quota_nano
    } else {
        -1
    };
    admit(state, caller, settle, user_quota, estimate).await?;
    settle.admitted = true;
    settle.tariff = tariff;
    Ok(())
}

pub(super) async fn relay(
    state: Shared,
    ep: Endpoint,
    addr: SocketAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t0 = Instant::now();
    let snap = state.snapshot.load_full();
    let authenticated = if ep.ingress() == Ingress::Ollama {
        ingress::ollama_caller(&state, &snap, &headers, addr)
    } else {
        ingress::authenticate(&state, &snap, &headers)
    };
    let caller = match authenticated {
        Ok(c) => c,
        Err(e) => {
            state
                .relay
                .metrics
                .requests
                .get_or_create(&StatusLabel {
                    status: e.status.as_u16(),
                    model: String::new(),
                    channel: String::new(),
                })
                .inc();
            return render_error(ep.ingress(), e);
        }
    };
    let mut settle = Settle::new(state.clone(), &caller, ep, t0);
    settle.group_ratio = snap.group_ratio(&caller.group);
    let limit = state.config.max_body_bytes;
    let body = match read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return settle.reject(e),
    };
    // The client's own body, kept for an upstream of the same format (passthrough).
    let mut native: Option<serde_json::Value> = None;
    // What the conversion dropped or renamed (tools), for the answer and its headers.
    let mut conv = Conversion::default();
    // Why the body could not be converted, if it could not (only a passthrough may serve).
    let mut unconvertible: Option<String> = None;
    let body = match ep.ingress() {
        Ingress::OpenAi => body,
        Ingress::Anthropic => {
            let v = match parse_json(&body) {
                Ok(v) => v,
                Err(e) => return settle.reject(e),
            };
            match anthropic::messages_to_chat_with(&v) {
                Ok((chat, c)) => {
                    conv = c;
                    native = Some(v);
                    Bytes::from(serde_json::to_vec(&chat).unwrap_or_default())
                }
                Err(m) => return settle.reject(OpenAiError::invalid_request(m)),
            }
        }
        Ingress::Responses => {
            let v = match parse_json(&body) {
                Ok(v) => v,
                Err(e) => return settle.reject(e),
            };
            match responses::responses_to_chat_with(&v) {
                Ok((chat, c)) => {
                    conv = c;
                    // Kept for upstreams that serve the Responses API themselves.
                    native = Some(v);
                    Bytes::from(serde_json::to_vec(&chat).unwrap_or_default())
                }
                // Not convertible (`previous_response_id`, ...), but an upstream serving
                // Responses itself may take it: the error waits for a converting channel.
                Err(m) => match v.get("model").and_then(|m| m.as_str()) {
                    Some(model) if !model.is_empty() => {
                        let stream = v.get("stream").and_then(|s| s.as_bool()) == Some(true);
                        let stub =
                            serde_json::json!({"model": model, "stream": stream, "messages": []});
                        unconvertible = Some(m);
                        native = Some(v);
                        Bytes::from(serde_json::to_vec(&stub).unwrap_or_default())
                    }
                    _ => return settle.reject(OpenAiError::invalid_request(m)),
                },
            }
        }
        Ingress::Ollama => {
            let v = match parse_json(&body) {
                Ok(v) => v,
                Err(e) => return settle.reject(e),
            };
            let converted = match ep {
                Endpoint::Ollama(ollama::Kind::Embed) => ollama::embed_to_openai(&v),
                Endpoint::Ollama(ollama::Kind::Generate) => ollama::generate_to_openai(&v)
                    .and_then(|g| g.ok_or_else(|| "prompt: required".to_string())),
                _ => ollama::chat_to_openai(&v),
            };
            match converted {
                Ok(req) => Bytes::from(serde_json::to_vec(&req).unwrap_or_default()),
                Err(m) => return settle.reject(OpenAiError::invalid_request(m)),
            }
        }
    };
    let mut info = match ingress::peek(&body) {
        Ok(i) => i,
        Err(e) => return settle.reject(e),
    };
    // A readable local name (`local-<slug>`) or the owner's alias routes as the model's `local-<id>`.
    let asked = info.model.clone();
    info.model = snap.resolve(&asked).to_string();
    settle.model = Some(info.model.clone());
    settle.stream = info.stream;
    settle.prompt_estimate = (body.len() / 4) as i64;

    if let Some(t) = &caller.token {
        if !ingress::ip_allowed(&t.allow_ips, addr.ip()) {
            return settle.reject(OpenAiError::permission_denied(format!(
                "This API key may not be used from {}",
                addr.ip()
            )));
        }
        if !caller.model_allowed(&info.model) && !caller.model_allowed(&asked) {
            return settle.reject(OpenAiError::permission_denied(format!(
                "This API key may not use the model '{}'",
                info.model
            )));
        }
    }
    // A stopped just-in-time local model: start it (one start for all callers) and wait.
    let snap = match snap.jit_models.get(&info.model) {
        Some(&id) if snap.tiers(&caller.group, &info.model).is_none() => {
            match jit_start(&state, id, &info.model).await {
                Ok(()) => state.snapshot.load_full(),
                Err(e) => return settle.reject(e),
            }
        }
        _ => snap,
    };
    let plan = match plan::plan(&state, &snap, &caller, &info, &body, &headers) {
        Ok(p) => p,
        Err(r) => {
            settle.burst = r.burst;
            return settle.reject(r.error);
        }
    };
    settle.burst = plan.burst.clone();
    if let Some(t) = &caller.token {
        if let Some(rpm) = t.rpm_limit
            && !state.relay.limits.token_rpm.try_add(t.id, 1, rpm)
        {
            return settle.reject(OpenAiError::minute_limit(
                "requests",
                rpm,
                format!("Rate limit reached: this API key allows {rpm} requests per minute"),
            ));
        }
        if let Some(tpm) = t.tpm_limit
            && state.relay.limits.token_tpm.at_limit(t.id, tpm)
        {
            return settle.reject(OpenAiError::minute_limit(
                "tokens",
                tpm,
                format!("Rate limit reached: this API key allows {tpm} tokens per minute"),
            ));
        }
    }
    let relay = &state.relay;
    let mut attempts = 0usize;
    let mut rpm_skipped = false;
    for &id in &plan.order {
        if attempts >= relay.settings.max_attempts {
            settle.trail.push("budget_exhausted".into());
            break;
        }
        let Some(ch) = snap.channels.get(&id) else {
            continue;
        };
        let side = Side::of(&ch.locality);
        let model = plan.model_for(side, &info.model);
        let passthrough = ep == Endpoint::Responses
            && ch.protocol == Protocol::OpenAi
            && relay.settings.speaks_responses(&ch.base_url);
        let call = match native.as_ref().filter(|_| passthrough) {
            Some(v) => Ok(Ok(responses_call(ch, v, model))),
            None => match &unconvertible {
                Some(m) => Err(m.clone()),
                None => upstream_call(ch, ep, &body, &info, native.as_ref(), model, &headers),
            },
        };
        let call = match call {
            Ok(Ok(c)) => c,
            Ok(Err(why)) => {
                settle.trail.push(format!("{id}:{why}"));
                continue;
            }
            Err(m) => return settle.reject(OpenAiError::invalid_request(m)),
        };
        if !relay.breakers.allow(id) {
            settle.trail.push(format!("{id}:breaker_open"));
            continue;
        }
        if let Some(cap) = ch.rpm_limit
            && !relay.limits.channel_rpm.try_add(id, 1, cap)
        {
            settle.trail.push(format!("{id}:rpm_cap"));
            rpm_skipped = true;
            continue;
        }
        // Admission on every attempt: this channel's model and price, reserved before it
        // is sent (a failover from a free local model to a priced cloud one is checked).
        if let Err(e) = admit_attempt(
            &state,
            &caller,
            &mut settle,
            &snap,
            side,
            model,
            info.max_tokens,
        )
        .await
        {
            return settle.reject(e);
        }
        attempts += 1;
        let load = relay.burst.loads.begin(id);
        let fail = |settle: &mut Settle, why: String| {
            relay.breakers.record(id, false);
            relay
                .metrics
                .channel_errors
                .get_or_create(&ChannelLabel { channel: id })
                .inc();
            tracing::warn!(request = %settle.request_id, channel = id, reason = %why, "upstream attempt failed");
            settle.trail.push(format!("{id}:{why}"));
            // A request that fails everywhere is logged on the last channel it tried, so
            // filtering the logs by channel finds it.
            settle.channel_id = Some(id);
        };
        // llama-server closes the connection after each streamed answer without saying so:
        // a pooled connection would race that close. Local upstreams get a fresh loopback
        // connection per request (tens of microseconds).
        let client = if ch.locality == "local" {
            &relay.local_client
        } else {
            &relay.client
        };
        let mut rb = client
            .post(call.url)
            .header(header::CONTENT_TYPE, "application/json")
            .headers(call.headers)
            .body(call.body);
        if info.stream && call.format != Format::Bedrock {
            rb = rb.header(header::ACCEPT, "text/event-stream");
        }
        if ch.protocol == Protocol::Vertex {
            let timeout = relay.settings.first_byte_timeout;
            match relay
                .vertex_tokens
                .bearer(&relay.client, id, &ch.key, timeout)
                .await
            {
                Ok(bearer) => rb = rb.header(header::AUTHORIZATION, bearer),
                Err(e) => {
                    fail(
                        &mut settle,
                        format!("vertex_token: {}", e.replace(',', ";")),
                    );
                    continue;
                }
            }
        }
        let t_send = Instant::now();
        let deadline = tokio::time::Instant::from_std(t_send + relay.settings.first_byte_timeout);
        let resp = match tokio::time::timeout_at(deadline, rb.send()).await {
            Err(_) => {
                fail(&mut settle, "timeout".into());
                continue;
            }
            Ok(Err(e)) => {
                fail(
                    &mut settle,
                    if e.is_connect() {
                        "connect_error".into()
                    } else {
                        "error".into()
                    },
                );
                continue;
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            fail(&mut settle, "401".into());
            if ch.protocol == Protocol::Vertex {
                // Vertex refused the access token, not the key: the next attempt gets a new one.
                relay.vertex_tokens.forget(id);
            } else {
                disable_channel(
                    state.clone(),
                    id,
                    "the upstream rejected the channel key (HTTP 401)",
                );
            }
            continue;
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            fail(&mut settle, status.as_u16().to_string());
            continue;
        }
        // Redirects are never followed (the key would go along): a failed attempt that
        // says where it pointed.
        if status.is_redirection() {
            let to = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.parse::<axum::http::Uri>().ok())
                .and_then(|u| u.host().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            fail(&mut settle, format!("redirect({})->{to}", status.as_u16()));
            continue;
        }
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.starts_with("text/event-stream")
                    || v.starts_with("application/vnd.amazon.eventstream")
            });
        let is_json = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let mut pipeline = match (ep, call.format) {
            (Endpoint::Ollama(kind), _) => {
                Some(ollama_pipeline(kind, call.format, is_sse, &info, status))
            }
            (_, Format::OpenAiResponses) => Some(Pipeline::new(vec![Box::new(
                responses_up::ResponsesObserver::new(is_sse),
            )])),
            _ => response_pipeline(ep.ingress(), call.format, is_sse, is_json, &info, status),
        };
        if ch.protocol == Protocol::Vertex
            && call.format == Format::Anthropic
            && !status.is_success()
        {
            let first = Box::new(vertex::GoogleErrorToAnthropic::new(status.as_u16()));
            pipeline = pipeline.map(|p| p.with_first(first));
        }
        if let Some(p) = &mut pipeline {
            p.apply(&conv);
        }
        let content_type = match &pipeline {
            Some(p) => Some(HeaderValue::from_static(p.content_type())),
            None => resp.headers().get(header::CONTENT_TYPE).cloned(),
        };
        // A JSON body passes through unchanged: keep its length so it is not re-chunked.
        let content_length = if is_sse || pipeline.is_some() {
            None
        } else {
            resp.headers().get(header::CONTENT_LENGTH).cloned()
        };
        let mut t_upstream_done = Instant::now();
        let mut upstream = resp.bytes_stream().boxed();
        let mut first = None;
        if is_sse && status.is_success() {
            match tokio::time::timeout_at(deadline, upstream.next()).await {
                Err(_) => {
                    fail(&mut settle, "first_byte_timeout".into());
                    continue;
                }
                Ok(None) => {
                    fail(&mut settle, "empty_stream".into());
                    continue;
                }
                Ok(Some(Err(_))) => {
                    fail(&mut settle, "stream_error".into());
                    continue;
                }
                Ok(Some(Ok(b))) => first = Some(b),
            }
            t_upstream_done = Instant::now();
        }
        relay.breakers.record(id, true);
        settle.channel_id = Some(id);
        settle.side = Some(side);
        settle.upstream = Some(call.format.as_str());
        settle.load = Some(load);
        if model != info.model {
            settle.model = Some(model.to_string());
        }
        settle.ttfb = Some(t_upstream_done.duration_since(t0));
        let overhead = t_send.duration_since(t0) + t_upstream_done.elapsed();
        relay.metrics.overhead.observe(overhead.as_secs_f64());
        let request_id = settle.request_id.clone();
        let filter = is_sse && info.stream && !info.client_wants_usage;
        let body = RelayBody {
            first,
            upstream,
            idle: relay.settings.idle_timeout,
            sleep: Box::pin(tokio::time::sleep(relay.settings.idle_timeout)),
            mode: if let Some(p) = pipeline {
                Mode::Convert(p)
            } else if is_sse {
                Mode::Sse {
                    scanner: SseScanner::default(),
                    filter,
                    queue: Vec::new(),
                }
            } else {
                Mode::Json(BodyCollector::default())
            },
            status: status.as_u16(),
            settle: Some(settle),
            finished: false,
            expected_len: content_length
                .as_ref()
                .and_then(|v| v.to_str().ok()?.parse().ok()),
            received: 0,
            client_gone: false,
            answered: false,
        };
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = status;
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            content_type.unwrap_or_else(|| HeaderValue::from_static("application/json")),
        );
        if is_sse {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        if ep.ingress() == Ingress::Anthropic
            && let Ok(v) = HeaderValue::from_str(&request_id)
        {
            h.insert("request-id", v);
        }
        if let Some(len) = content_length {
            h.insert(header::CONTENT_LENGTH, len);
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
            h.insert("x-burncloud-overhead-ms", v);
        }
        if let Some(b) = &plan.burst {
            burst_headers(h, b, Some(side));
        }
        // Tools the channel cannot run were left out of a converted request (a native
        // Anthropic body keeps them).
        let native_body = call.format == Format::OpenAiResponses
            || (ep == Endpoint::Messages
                && matches!(call.format, Format::Anthropic | Format::Bedrock));
        if !native_body
            && let Some(v) = conv.dropped_header()
            && let Ok(v) = HeaderValue::from_str(&v)
        {
            h.insert(DROPPED_TOOLS_HEADER, v);
        }
        return response;
    }
    let e = if attempts == 0 && rpm_skipped {
        OpenAiError::rate_limited(format!(
            "Every channel serving '{}' is at its requests-per-minute cap",
            info.model
        ))
    } else if settle.trail.is_empty() {
        OpenAiError::unavailable(format!("No channel available for model '{}'", info.model))
    } else {
        OpenAiError::unavailable(format!(
            "No channel could serve model '{}' (tried: {})",
            info.model,
            settle.trail.join(", ")
        ))
    };
    settle.reject(e)
}

/// One attempt's request to a channel, in the channel's format.
struct UpstreamCall {
    url: String,
    headers: HeaderMap,
    body: Bytes,
    format: Format,
}

/// A Responses request to an upstream that serves `/v1/responses` itself: the client's
/// body, the model mapped.
fn responses_call(ch: &ChannelRt, native: &serde_json::Value, model: &str) -> UpstreamCall {
    let mut headers = HeaderMap::new();
    if let Some(h) = &ch.auth_header {
        headers.insert(header::AUTHORIZATION, h.clone());
    }
    let body = responses_up::request(native, ch.upstream_model(model));
    UpstreamCall {
        url: format!("{}/v1/responses", ch.base_url.trim_end_matches("/v1")),
        headers,
        body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        format: Format::OpenAiResponses,
    }
}

/// Parse a body for conversion, with the same messages as the OpenAI peek.
/// The request body, at most `limit` bytes: 413 beyond, 400 when it cannot be read.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, OpenAiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            OpenAiError::too_large(limit)
        } else {
            OpenAiError::invalid_request(format!("Could not read the request body: {e}"))
        }
    })
}

pub(super) fn parse_json(body: &Bytes) -> Result<serde_json::Value, OpenAiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(OpenAiError::invalid_request(
            "Request body is empty: expected a JSON object",
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        OpenAiError::invalid_request(format!("Malformed JSON in request body: {e}"))
    })?;
    if !v.is_object() {
        return Err(OpenAiError::invalid_request(
            "Invalid request body: expected a JSON object",
        ));
    }
    Ok(v)
}

/// The request for channel `ch`: the canonical body as is for OpenAI-format channels, the
/// client's own body for a channel of the client's format, else converted. `Ok(None)`: no
/// adaptor covers this endpoint on this channel type (or the channel is misconfigured;
/// the reason goes to the failover trail); `Err`: the request cannot be expressed in the
/// channel's format (a client error).
fn upstream_call(
    ch: &ChannelRt,
    ep: Endpoint,
    canonical: &Bytes,
    info: &ingress::RequestInfo,
    native: Option<&serde_json::Value>,
    model: &str,
    client: &HeaderMap,
) -> Result<Result<UpstreamCall, &'static str>, String> {
    let upstream_model = ch.upstream_model(model);
    let mut headers = HeaderMap::new();
    match ch.protocol {
        Protocol::OpenAi => {
            if let Some(h) = &ch.auth_header {
                headers.insert(header::AUTHORIZATION, h.clone());
            }
            Ok(Ok(UpstreamCall {
                url: format!("{}{}", ch.base_url, ep.openai_path()),
                headers,
                body: ingress::upstream_body(canonical, info, upstream_model),
                format: Format::OpenAi,
            }))
        }
        Protocol::Anthropic => {
            let body = match (ep, native) {
                (Endpoint::Messages, Some(v)) => {
                    let mut v = v.clone();
                    v["model"] = serde_json::Value::String(upstream_model.to_string());
                    v
                }
                (
                    Endpoint::Chat
                    | Endpoint::Messages
                    | Endpoint::Responses
                    | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate),
                    _,
                ) => {
                    let chat: serde_json::Value =
                        serde_json::from_slice(canonical).map_err(|e| e.to_string())?;
                    anthropic_up::chat_to_messages(&chat, upstream_model)?
                }
                _ => return Ok(Err("no_adaptor")),
            };
            if let Ok(v) = HeaderValue::from_str(&ch.key) {
                headers.insert("x-api-key", v);
            }
            let version = client
                .get("anthropic-version")
                .filter(|_| ep == Endpoint::Messages)
                .cloned()
                .unwrap_or(HeaderValue::from_static(anthropic_up::DEFAULT_VERSION));
            headers.insert("anthropic-version", version);
            if ep == Endpoint::Messages
                && let Some(b) = client.get("anthropic-beta")
            {
                headers.insert("anthropic-beta", b.clone());
            }
            Ok(Ok(UpstreamCall {
                url: format!("{}/v1/messages", ch.base_url),
                headers,
                body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                format: Format::Anthropic,
            }))
        }
        Protocol::Azure => {
            if let Ok(v) = HeaderValue::from_str(&ch.key) {
                headers.insert("api-key", v);
            }
            Ok(Ok(UpstreamCall {
                url: azure::url(&ch.base_url, upstream_model, ep.openai_path()),
                headers,
                body: ingress::upstream_body(canonical, info, upstream_model),
                format: Format::Azure,
            }))
        }
        Protocol::Gemini => {
            if !matches!(
                ep,
                Endpoint::Chat
                    | Endpoint::Messages
                    | Endpoint::Responses
                    | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate)
            ) {
                return Ok(Err("no_adaptor"));
            }
            let chat: serde_json::Value =
                serde_json::from_slice(canonical).map_err(|e| e.to_string())?;
            let body = gemini::chat_to_gemini(&chat)?;
            if let Ok(v) = HeaderValue::from_str(&ch.key) {
                headers.insert("x-goog-api-key", v);
            }
            Ok(Ok(UpstreamCall {
                url: gemini::url(&ch.base_url, upstream_model, info.stream),
                headers,
                body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                format: Format::Gemini,
            }))
        }
        Protocol::Bedrock => {
            let creds = match bedrock::Credentials::parse(&ch.key) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(channel = ch.id, "{e}");
                    return Ok(Err("bad_channel_key"));
                }
            };
            let messages = match (ep, native) {
                (Endpoint::Messages, Some(v)) => v.clone(),
                (
                    Endpoint::Chat
                    | Endpoint::Messages
                    | Endpoint::Responses
                    | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate),
                    _,
                ) => {
                    let chat: serde_json::Value =
                        serde_json::from_slice(canonical).map_err(|e| e.to_string())?;
                    anthropic_up::chat_to_messages(&chat, upstream_model)?
                }
                _ => return Ok(Err("no_adaptor")),
            };
            let body = serde_json::to_vec(&bedrock::body(messages)).unwrap_or_default();
            let url = bedrock::url(&ch.base_url, &creds.region, upstream_model, info.stream);
            let signed = match bedrock::sign(
                &creds,
                &url,
                &[("content-type", "application/json")],
                &body,
                std::time::SystemTime::now(),
            ) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(channel = ch.id, "SigV4 signing failed: {e}");
                    return Ok(Err("signing_failed"));
                }
            };
            for (k, v) in signed {
                if let (Ok(k), Ok(v)) = (
                    header::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    headers.insert(k, v);
                }
            }
            Ok(Ok(UpstreamCall {
                url,
                headers,
                body: Bytes::from(body),
                format: Format::Bedrock,
            }))
        }
        // The access token is added when the attempt is sent (it may need fetching).
        Protocol::Vertex => {
            let sa = match vertex::ServiceAccount::parse(&ch.key) {
                Ok(sa) => sa,
                Err(e) => {
                    tracing::warn!(channel = ch.id, "{e}");
                    return Ok(Err("bad_channel_key"));
                }
            };
            let chat = || serde_json::from_slice::<serde_json::Value>(canonical);
            let converts = matches!(
                ep,
                Endpoint::Chat
                    | Endpoint::Messages
                    | Endpoint::Responses
                    | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate)
            );
            let (body, format) = match (vertex::publisher(upstream_model), ep, native) {
                (vertex::Publisher::Anthropic, Endpoint::Messages, Some(v)) => (
                    vertex::claude_body(v.clone(), info.stream),
                    Format::Anthropic,
                ),
                (vertex::Publisher::Anthropic, _, _) if converts => {
                    let chat = chat().map_err(|e| e.to_string())?;
                    let messages = anthropic_up::chat_to_messages(&chat, upstream_model)?;
                    (
                        vertex::claude_body(messages, info.stream),
                        Format::Anthropic,
                    )
                }
                (vertex::Publisher::Google, _, _) if converts => {
                    let chat = chat().map_err(|e| e.to_string())?;
                    (gemini::chat_to_gemini(&chat)?, Format::Gemini)
                }
                _ => return Ok(Err("no_adaptor")),
            };
            Ok(Ok(UpstreamCall {
                url: vertex::url(&ch.base_url, &sa.project_id, upstream_model, info.stream),
                headers,
                body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                format,
            }))
        }
    }
}

/// How the answer of a channel in `format` reaches a client of `ingress`: `None` is the
/// plain OpenAI relay (scanned, not converted).
fn response_pipeline(
    ingress: Ingress,
    format: Format,
    is_sse: bool,
    is_json: bool,
    info: &ingress::RequestInfo,
    status: StatusCode,
) -> Option<Pipeline> {
    let error = !status.is_success();
    let status = status.as_u16();
    let stages: Vec<Box<dyn Stage>> =
        match (ingress, format) {
            (Ingress::OpenAi, Format::OpenAi | Format::Azure) if error && !is_json => {
                vec![Box::new(OpenAiErrorBody::new(status))]
            }
            (Ingress::OpenAi, Format::OpenAi | Format::Azure) => return None,
            (Ingress::Anthropic, Format::Anthropic) => {
                vec![Box::new(anthropic_up::AnthropicObserver::new(is_sse))]
            }
            (Ingress::OpenAi, Format::Anthropic) => vec![Box::new(
                anthropic_up::FromAnthropic::new(is_sse, status, info.client_wants_usage),
            )],
            (Ingress::OpenAi, Format::Gemini) => vec![Box::new(gemini::FromGemini::new(
                is_sse,
                status,
                &info.model,
                info.client_wants_usage,
            ))],
            (Ingress::Anthropic, Format::Gemini) => vec![
                Box::new(gemini::FromGemini::new(is_sse, status, &info.model, true)),
                Box::new(anthropic::ToAnthropic::new(is_sse, status, &info.model)),
            ],
            (Ingress::Responses, Format::OpenAi | Format::Azure) => {
                vec![Box::new(responses::ToResponses::new(
                    is_sse,
                    status,
                    &info.model,
                ))]
            }
            (Ingress::Responses, Format::Anthropic) => vec![
                Box::new(anthropic_up::FromAnthropic::new(is_sse, status, true)),
                Box::new(responses::ToResponses::new(is_sse, status, &info.model)),
            ],
            (Ingress::Responses, Format::Gemini) => vec![
                Box::new(gemini::FromGemini::new(is_sse, status, &info.model, true)),
                Box::new(responses::ToResponses::new(is_sse, status, &info.model)),
            ],
            (Ingress::OpenAi | Ingress::Responses, Format::Bedrock) => {
                let mut stages: Vec<Box<dyn Stage>> = Vec::new();
                if is_sse {
                    stages.push(Box::new(bedrock::EventStreamToSse::default()));
                }
                let responses = ingress == Ingress::Responses;
                stages.push(Box::new(anthropic_up::FromAnthropic::new(
                    is_sse,
                    status,
                    responses || info.client_wants_usage,
                )));
                if responses {
                    stages.push(Box::new(responses::ToResponses::new(
                        is_sse,
                        status,
                        &info.model,
                    )));
                }
                stages
            }
            (Ingress::Anthropic, Format::Bedrock) if error => {
                vec![Box::new(anthropic::ToAnthropic::new(
                    false,
                    status,
                    &info.model,
                ))]
            }
            (Ingress::Anthropic, Format::Bedrock) if is_sse => vec![
                Box::new(bedrock::EventStreamToSse::default()),
                Box::new(anthropic_up::AnthropicObserver::new(true)),
            ],
            (Ingress::Anthropic, Format::Bedrock) => {
                vec![Box::new(anthropic_up::AnthropicObserver::new(false))]
            }
            // Built by `ollama::pipeline` / a Responses passthrough.
            (Ingress::Ollama, _) | (_, Format::OpenAiResponses) => return None,
            (Ingress::Anthropic, Format::OpenAi | Format::Azure) => {
                vec![Box::new(anthropic::ToAnthropic::new(
                    is_sse,
                    status,
                    &info.model,
                ))]
            }
        };
    Some(Pipeline::new(stages))
}

/// Seed 004's headers: which side served (if any), the mode, why, and the sensitivity.
fn burst_headers(h: &mut HeaderMap, b: &BurstInfo, served: Option<Side>) {
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

/// Disable a channel whose key was rejected, off the request path.
fn disable_channel(state: Shared, id: i64, reason: &'static str) {
    tokio::spawn(async move {
        let why = format!("{reason} at unix time {}", crate::store::now_secs());
        match state
            .store
            .run(move |c| channels::set_status(c, id, 2, Some(&why)))
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

enum Mode {
    Sse {
        scanner: SseScanner,
        filter: bool,
        queue: Vec<Bytes>,
    },
    Json(BodyCollector),
    /// Converted between formats as it passes.
    Convert(Pipeline),
}

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The response body: upstream bytes relayed as they arrive, scanned for usage, settled
/// at the end, on an upstream error, on idle timeout, or when the client goes away.
struct RelayBody {
    first: Option<Bytes>,
    upstream: Upstream,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    mode: Mode,
    status: u16,
    settle: Option<Settle>,
    finished: bool,
    /// Content-Length of a JSON body: once that much has passed, the request is settled
    /// before the last chunk goes out (hyper stops polling at that point).
    expected_len: Option<u64>,
    received: u64,
    /// The client went away: the rest is read only to bill the upstream's real usage.
    client_gone: bool,
    /// The client had been sent the answer's final event when it went away: a complete
    /// answer (Codex closes at `response.completed`), not a disconnect.
    answered: bool,
}

/// How long, and how much, a response is still read after its client went away.
const DRAIN_TIME: Duration = Duration::from_secs(600);
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;

impl Mode {
    /// Whether the client has been sent the answer's final event.
    fn ended(&self) -> bool {
        match self {
            Mode::Json(_) => false,
            Mode::Convert(p) => p.ended(),
            Mode::Sse { scanner, queue, .. } => scanner.done && queue.is_empty(),
        }
    }
}

impl RelayBody {
    /// Feed a chunk to the scanner; returns what to send to the client now.
    fn process(&mut self, chunk: Bytes) -> Option<Bytes> {
        match &mut self.mode {
            Mode::Json(c) => {
                c.feed(&chunk);
                Some(chunk)
            }
            Mode::Convert(p) => {
                let out = p.feed(&chunk);
                (!out.is_empty()).then(|| Bytes::from(out))
            }
            Mode::Sse {
                scanner,
                filter,
                queue,
            } => {
                if *filter {
                    let mut out = Vec::new();
                    scanner.feed(&chunk, true, &mut out);
                    out.reverse();
                    queue.extend(out);
                    queue.pop()
                } else {
                    scanner.feed(&chunk, false, &mut Vec::new());
                    Some(chunk)
                }
            }
        }
    }

    /// Observed usage; `estimated` when it had to be inferred.
    fn observed(&self) -> (Option<Usage>, bool) {
        if !(200..300).contains(&self.status) {
            return (None, false);
        }
        let prompt_estimate = self.settle.as_ref().map(|s| s.prompt_estimate).unwrap_or(0);
        match &self.mode {
            Mode::Json(c) => match c.usage() {
                Some(u) => (Some(u), false),
                None => (
                    Some(Usage {
                        prompt: prompt_estimate,
                        completion: 0,
                        cached: 0,
                        cache_write: 0,
                    }),
                    true,
                ),
            },
            Mode::Convert(p) => match p.usage() {
                Some(u) => (Some(u), false),
                None => (
                    Some(Usage {
                        prompt: prompt_estimate,
                        completion: p.content_events(),
                        cached: 0,
                        cache_write: 0,
                    }),
                    true,
                ),
            },
            Mode::Sse { scanner, .. } => match scanner.usage {
                Some(u) => (Some(u), false),
                None => (
                    Some(Usage {
                        prompt: prompt_estimate,
                        completion: scanner.content_events,
                        cached: 0,
                        cache_write: 0,
                    }),
                    true,
                ),
            },
        }
    }

    fn settle(&mut self, mut error: Option<String>, mut flag: Option<&'static str>) {
        let (usage, estimated) = self.observed();
        let mut status = self.status;
        if self.client_gone && !self.answered {
            status = 499;
            flag = Some("client_disconnected");
            error = Some(match (&error, estimated) {
                (Some(e), _) => format!("client disconnected; then {e}: usage estimated"),
                (None, true) => "client disconnected; usage estimated from the prompt".into(),
                (None, false) => {
                    "client disconnected; the upstream's usage was read to bill it".into()
                }
            });
        }
        if let Some(mut s) = self.settle.take() {
            s.finish(Outcome {
                status,
                usage,
                estimated,
                error,
                flag,
            });
        }
    }
}

impl Stream for RelayBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Mode::Sse { queue, .. } = &mut this.mode
                && let Some(b) = queue.pop()
            {
                return Poll::Ready(Some(Ok(b)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            if let Some(first) = this.first.take() {
                if let Some(out) = this.process(first) {
                    return Poll::Ready(Some(Ok(out)));
                }
                continue;
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.sleep.as_mut().reset(deadline);
                    this.received += chunk.len() as u64;
                    let out = this.process(chunk);
                    if this.expected_len.is_some_and(|n| this.received >= n) {
                        this.finished = true;
                        this.settle(None, None);
                    }
                    if let Some(out) = out {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.settle(
                        Some(format!("upstream failed mid-response: {e}")),
                        Some("upstream_cut"),
                    );
                    // A converted stream ends in its format's error event instead of a cut.
                    if let Mode::Convert(p) = &mut this.mode {
                        let out = p.fail("the upstream failed mid-response");
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Bytes::from(out))));
                        }
                    }
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "upstream failed mid-response",
                    ))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let rest = match &mut this.mode {
                        Mode::Sse {
                            scanner,
                            filter: true,
                            ..
                        } => scanner.remainder(),
                        Mode::Convert(p) => {
                            let out = p.finish();
                            (!out.is_empty()).then(|| Bytes::from(out))
                        }
                        _ => None,
                    };
                    this.settle(None, None);
                    if let Some(rest) = rest {
                        return Poll::Ready(Some(Ok(rest)));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if this.sleep.as_mut().poll(cx).is_ready() {
                        this.finished = true;
                        this.settle(Some("upstream idle timeout".into()), Some("idle_timeout"));
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "upstream idle timeout",
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for RelayBody {
    fn drop(&mut self) {
        if self.settle.is_none() {
            return;
        }
        let answered = self.answered || self.mode.ended();
        // The client left before the end: the upstream is still working (and charging), so
        // read the rest, bounded in time and bytes, for its real usage.
        if !self.client_gone
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let mut rest = RelayBody {
                first: self.first.take(),
                upstream: std::mem::replace(
                    &mut self.upstream,
                    Box::pin(futures_util::stream::empty()),
                ),
                idle: self.idle,
                sleep: Box::pin(tokio::time::sleep(self.idle)),
                mode: std::mem::replace(&mut self.mode, Mode::Json(BodyCollector::default())),
                status: self.status,
                settle: self.settle.take(),
                finished: self.finished,
                expected_len: self.expected_len,
                received: self.received,
                client_gone: true,
                answered,
            };
            handle.spawn(async move {
                let _ = tokio::time::timeout(DRAIN_TIME, async {
                    let mut read = 0u64;
                    while let Some(Ok(b)) = rest.next().await {
                        read += b.len() as u64;
                        if read > DRAIN_BYTES {
                            break;
                        }
                    }
                })
                .await;
                // Still unsettled (a bound was hit): the drop below settles on an estimate.
            });
            return;
        }
        self.client_gone = true;
        self.answered = answered;
        self.settle(None, None);
    }
}

/// How a channel's answer reaches an Ollama client: upstream format → OpenAI (usage
/// included) → Ollama.
fn ollama_pipeline(
    kind: ollama::Kind,
    format: Format,
    is_sse: bool,
    info: &ingress::RequestInfo,
    status: axum::http::StatusCode,
) -> Pipeline {
    let status = status.as_u16();
    let mut stages: Vec<Box<dyn Stage>> = Vec::new();
    match format {
        Format::OpenAi | Format::Azure | Format::OpenAiResponses => {}
        Format::Anthropic => stages.push(Box::new(anthropic_up::FromAnthropic::new(
            is_sse, status, true,
        ))),
        Format::Gemini => stages.push(Box::new(gemini::FromGemini::new(
            is_sse,
            status,
            &info.model,
            true,
        ))),
        Format::Bedrock => {
            if is_sse {
                stages.push(Box::new(bedrock::EventStreamToSse::default()));
            }
            stages.push(Box::new(anthropic_up::FromAnthropic::new(
                is_sse, status, true,
            )));
        }
    }
    stages.push(Box::new(ollama::ToOllama::new(
        kind,
        is_sse,
        status,
        &info.model,
    )));
    Pipeline::new(stages)
}
