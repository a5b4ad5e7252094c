//! The data plane: `/v1/*` in the OpenAI wire format, plus `/metrics`.
//!
//! A request's way: [`ingress`] authenticates against the routing snapshot and admits the
//! request (allow-list, rate limits, quota reservation); [`route`] orders the candidate
//! channels; [`forward`] tries them in order (failover before the first byte reaches the
//! client), relays the response as it arrives while scanning it for usage ([`usage`]), and
//! settles exactly once: ledger, metrics, and a record for the background [`writer`].
//! Nothing on this path waits on the database.

pub(crate) mod breaker;
mod count_tokens;
mod error;
mod forward;
mod ingress;
mod ledger;
mod limits;
mod metrics;
mod ollama;
mod plan;
mod route;
mod settings;
mod usage;
pub mod writer;

use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use breaker::{BreakerState, Breakers};
pub use error::OpenAiError;
pub(crate) use ingress::authenticate;
pub use ledger::Ledger;
pub use limits::Limits;
pub use metrics::Metrics;
pub use settings::RelaySettings;
pub use usage::{SseScanner, Usage, usage_from_value};
pub use writer::UsageWriter;

use crate::burst::BurstState;
use crate::http::Shared;

/// Data-plane runtime state (everything in memory).
#[derive(Debug)]
pub struct RelayState {
    pub client: reqwest::Client,
    /// For local channels: no connection reuse (see `forward`).
    pub local_client: reqwest::Client,
    pub settings: RelaySettings,
    pub ledger: Ledger,
    pub limits: Limits,
    pub breakers: Breakers,
    pub metrics: Metrics,
    pub writer: UsageWriter,
    /// Round-robin position for weight-0 tiers.
    pub rr: std::sync::atomic::AtomicUsize,
    /// Request id counter.
    pub seq: AtomicU64,
    /// Burst routing: policy, per-channel load, today's cloud spend.
    pub burst: BurstState,
    /// Google Vertex AI access tokens by channel.
    pub vertex_tokens: crate::adapt::vertex::Tokens,
}

impl RelayState {
    /// Build the relay state; `writer` must already run on the gateway's runtime.
    pub fn new(
        settings: RelaySettings,
        burst: BurstState,
        writer: UsageWriter,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            // A redirect would carry the channel key to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let local_client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(RelayState {
            client,
            local_client,
            breakers: Breakers::new(&settings),
            settings,
            ledger: Ledger::default(),
            limits: Limits::default(),
            metrics: Metrics::default(),
            writer,
            rr: Default::default(),
            seq: AtomicU64::new(0),
            burst,
            vertex_tokens: Default::default(),
        })
    }
}

/// Ollama's API on the gateway's port (see [`ollama`]); mounted separately from the
/// control plane's `/api/*` routes.
pub fn ollama_routes() -> Router<Shared> {
    ollama::routes()
}

/// The models a caller may use: served for its group (or started just in time), allowed
/// by its token, with the readable names of local ones, sorted.
pub(crate) fn caller_models(
    snap: &crate::snapshot::Snapshot,
    caller: &ingress::Caller,
) -> Vec<String> {
    let mut names: std::collections::BTreeSet<String> = snap
        .group_models
        .get(&caller.group)
        .into_iter()
        .flatten()
        .chain(snap.jit_models.keys())
        .filter(|m| caller.model_allowed(m))
        .cloned()
        .collect();
    for (alias, canonical) in &snap.aliases {
        if names.contains(canonical) {
            names.insert(alias.clone());
        }
    }
    names.into_iter().collect()
}

/// A `/v1/models` entry, with the context window and longest answer where known.
fn model_entry(snap: &crate::snapshot::Snapshot, id: &str) -> serde_json::Value {
    let mut v = json!({"id": id, "object": "model", "created": 0, "owned_by": "burncloud"});
    let (ctx, out) = snap.model_limits(id);
    if let Some(c) = ctx {
        v["context_length"] = json!(c);
    }
    if let Some(o) = out {
        v["max_output_tokens"] = json!(o);
    }
    v
}

/// The `/v1` routes and `/metrics`.
pub fn routes(_state: Shared) -> Router<Shared> {
    Router::new()
        .route("/v1/chat/completions", post(forward::chat_completions))
        .route("/v1/completions", post(forward::completions))
        .route("/v1/embeddings", post(forward::embeddings))
        .route("/v1/rerank", post(forward::rerank))
        .route("/v1/messages", post(forward::messages))
        .route(
            "/v1/messages/count_tokens",
            post(count_tokens::count_tokens),
        )
        .route("/v1/responses", post(forward::responses))
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(model))
        .route("/metrics", get(metrics))
        // The relay reads bodies itself against `Config::max_body_bytes` (413 in OpenAI shape).
        .layer(DefaultBodyLimit::disable())
}

async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let snap = state.snapshot.load();
    let caller = match ingress::authenticate(&state, &snap, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let data: Vec<_> = caller_models(&snap, &caller)
        .iter()
        .map(|m| model_entry(&snap, m))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1/models/{id}`: one model the caller may use, or 404 `model_not_found`.
async fn model(
    State(state): State<Shared>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let snap = state.snapshot.load();
    let caller = match ingress::authenticate(&state, &snap, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if !caller_models(&snap, &caller).contains(&id) {
        return OpenAiError::model_not_found(&id).into_response();
    }
    axum::Json(model_entry(&snap, &id)).into_response()
}

async fn metrics(
    State(state): State<Shared>,
    listener: Option<axum::Extension<crate::http::guard::Listener>>,
    headers: HeaderMap,
) -> Response {
    if !crate::http::detail_allowed(&state, listener, &headers) {
        return OpenAiError::invalid_token(
            "/metrics on a network listener needs an admin's key: send Authorization: Bearer <admin sk- key>",
        )
        .into_response();
    }
    let body = state.relay.metrics.render(&state.relay.breakers);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
