//! The data plane: `/v1/*` in the OpenAI wire format.
//!
//! A request's way: [`ingress`] authenticates against the routing snapshot and admits the
//! request (allow-list, rate limits, quota reservation); [`route`] orders the candidate
//! channels; [`forward`] tries them in order (failover before the first byte reaches the
//! client), relays the response as it arrives while scanning it for usage ([`usage`]), and
//! settles exactly once: ledger, metrics, and a record for the background [`writer`].
//! Nothing on this path waits on the database.

mod admission;
mod answer;
mod attempt;
mod body;
mod count_tokens;
mod endpoint;
mod forward;
mod ingress;
mod ollama;
mod plan;
mod request;
mod route;
mod settle;
mod usage;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use crate::live::{BreakerState, RelayState, UsageWriter};
pub use crate::vocab::OpenAiError;
pub(crate) use forward::{Detached, endpoint_of, relay_direct};
pub(crate) use ingress::authenticate;

use crate::state::Shared;

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
    snap.models_for(caller.group(), |m| caller.model_allowed(m))
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
