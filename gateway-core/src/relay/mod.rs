//! The data plane: `/v1/*` in the OpenAI wire format, plus `/metrics`.
//!
//! A request's way: [`ingress`] authenticates against the routing snapshot and admits the
//! request (allow-list, rate limits, quota reservation); [`route`] orders the candidate
//! channels; [`forward`] tries them in order (failover before the first byte reaches the
//! client), relays the response as it arrives while scanning it for usage ([`usage`]), and
//! settles exactly once: ledger, metrics, and a record for the background [`writer`].
//! Nothing on this path waits on the database.

pub(crate) mod breaker;
mod error;
mod forward;
mod ingress;
mod ledger;
mod limits;
mod metrics;
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
        })
    }
}

/// The `/v1` routes and `/metrics`.
pub fn routes(_state: Shared) -> Router<Shared> {
    Router::new()
        .route("/v1/chat/completions", post(forward::chat_completions))
        .route("/v1/completions", post(forward::completions))
        .route("/v1/embeddings", post(forward::embeddings))
        .route("/v1/rerank", post(forward::rerank))
        .route("/v1/messages", post(forward::messages))
        .route("/v1/responses", post(forward::responses))
        .route("/v1/models", get(models))
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
    let data: Vec<_> = snap
        .group_models
        .get(&caller.group)
        .into_iter()
        .flatten()
        .chain(snap.jit_models.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|m| caller.model_allowed(m))
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "burncloud"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
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
