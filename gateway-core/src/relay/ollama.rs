//! Ollama's API on the gateway's port (`/api/version`, `/api/tags`, `/api/show`, `/api/ps`,
//! `/api/chat`, `/api/generate`, `/api/embed`): the same keys, routing, billing and logs as
//! `/v1`, every channel type behind it (conversion in [`crate::ingress::ollama`]).
//!
//! Mounted on its own ([`routes`]) so the HTTP layer can treat these `/api/*` paths apart
//! from the control plane's. Ollama clients often send no key: the setting
//! [`crate::snapshot::OLLAMA_KEYLESS_TOKEN`] (off by default) names the token that keyless requests from a
//! loopback peer use.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::OpenAiError;
use super::endpoint::Endpoint;
use super::forward::{detached, relay};
use super::ingress::Caller;
use crate::ingress::ollama::{self, Kind};
use crate::snapshot::Snapshot;
use crate::state::Shared;

/// The Ollama routes.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/show", post(show))
        .route("/api/ps", get(ps))
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .route("/api/embed", post(embed))
        // The relay reads bodies itself against `Config::max_body_bytes`.
        .layer(DefaultBodyLimit::disable())
}

fn error(e: OpenAiError) -> Response {
    let mut resp = (e.status, axum::Json(ollama::error_body(&e.message))).into_response();
    e.add_headers(&mut resp);
    resp
}

async fn version() -> Response {
    axum::Json(json!({"version": ollama::VERSION})).into_response()
}

/// A model's entry as `/api/tags` and `/api/ps` list it.
fn entry(snap: &Snapshot, caller: &Caller, model: &str) -> Value {
    let local = is_local(snap, caller, model);
    let digest = hex::encode(sha2::Digest::finalize(
        <sha2::Sha256 as sha2::Digest>::new_with_prefix(model.as_bytes()),
    ));
    json!({
        "name": model, "model": model, "modified_at": "1970-01-01T00:00:00Z", "size": 0,
        "digest": digest,
        "details": {"parent_model": "", "format": if local { "gguf" } else { "api" },
            "family": "", "families": null, "parameter_size": "", "quantization_level": ""},
    })
}

/// Whether `model` runs on this machine for the caller (loaded, or started on demand).
fn is_local(snap: &Snapshot, caller: &Caller, model: &str) -> bool {
    snap.jit_models.contains_key(snap.resolve(model)) || is_running_locally(snap, caller, model)
}

/// Whether a live local channel (a running llama-server) serves `model` for the caller.
fn is_running_locally(snap: &Snapshot, caller: &Caller, model: &str) -> bool {
    snap.tiers(caller.group(), snap.resolve(model))
        .into_iter()
        .flatten()
        .flat_map(|t| t.members.iter())
        .any(|(id, _)| snap.channels.get(id).is_some_and(|c| c.locality == "local"))
}

fn caller_of(
    state: &Shared,
    snap: &Snapshot,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Caller, Box<Response>> {
    super::ingress::ollama_caller(state, snap, headers, peer).map_err(|e| Box::new(error(e)))
}

async fn tags(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let snap = state.snapshot.load();
    let caller = match caller_of(&state, &snap, &headers, peer) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let models: Vec<Value> = super::caller_models(&snap, &caller)
        .iter()
        .map(|m| entry(&snap, &caller, m))
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

async fn ps(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let snap = state.snapshot.load();
    let caller = match caller_of(&state, &snap, &headers, peer) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    // Running: local models with a live channel (a stopped just-in-time one has none).
    let models: Vec<Value> = super::caller_models(&snap, &caller)
        .iter()
        .filter(|m| is_running_locally(&snap, &caller, m))
        .map(|m| {
            let mut e = entry(&snap, &caller, m);
            e["expires_at"] = json!("2999-01-01T00:00:00Z");
            e["size_vram"] = json!(0);
            if let (Some(ctx), _) = snap.model_limits(m) {
                e["context_length"] = json!(ctx);
            }
            e
        })
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

async fn show(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let snap = state.snapshot.load();
    let caller = match caller_of(&state, &snap, &headers, peer) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(name) = req
        .get("model")
        .or_else(|| req.get("name"))
        .and_then(Value::as_str)
        .map(ollama::model_name)
    else {
        return error(OpenAiError::invalid_request("model is required"));
    };
    if !super::caller_models(&snap, &caller)
        .iter()
        .any(|m| m == name)
    {
        return error(OpenAiError::model_not_found(name));
    }
    let e = entry(&snap, &caller, name);
    let mut info = json!({"general.architecture": "", "general.basename": name});
    if let (Some(ctx), _) = snap.model_limits(name) {
        // Clients read `<architecture>.context_length`; the architecture is not exposed.
        info["general.context_length"] = json!(ctx);
        info[".context_length"] = json!(ctx);
    }
    axum::Json(json!({
        "modelfile": "", "parameters": "", "template": "", "license": "",
        "details": e["details"], "modified_at": e["modified_at"],
        "model_info": info,
        "capabilities": ["completion", "tools"],
    }))
    .into_response()
}

async fn chat(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(
        state,
        Endpoint::Ollama(Kind::Chat),
        addr,
        headers,
        body,
    ))
    .await
}

async fn embed(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    detached(relay(
        state,
        Endpoint::Ollama(Kind::Embed),
        addr,
        headers,
        body,
    ))
    .await
}

/// `/api/generate`; an empty prompt only "loads" the model, answered here.
async fn generate(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.config.max_body_bytes;
    let bytes = match super::request::read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    if let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        && let Ok(None) = ollama::generate_to_openai(&v)
    {
        let snap = state.snapshot.load();
        let caller = match caller_of(&state, &snap, &headers, addr) {
            Ok(c) => c,
            Err(r) => return *r,
        };
        let model = v["model"].as_str().map(ollama::model_name).unwrap_or("");
        if !super::caller_models(&snap, &caller)
            .iter()
            .any(|m| m == model)
        {
            return error(OpenAiError::model_not_found(model));
        }
        return axum::Json(ollama::load_answer(model)).into_response();
    }
    relay(
        state,
        Endpoint::Ollama(Kind::Generate),
        addr,
        headers,
        Body::from(bytes),
    )
    .await
}
