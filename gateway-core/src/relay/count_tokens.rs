//! `POST /v1/messages/count_tokens`, Anthropic's token counting (Claude Code asks it how
//! full its context is). The first Anthropic channel serving the model counts it upstream;
//! for any other channel, or when that upstream fails, the count is estimated from the
//! request's size and the answer says so (`x-burncloud-estimated: true`). Free, like
//! Anthropic's: not billed, not logged, no quota used.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::endpoint::render_error;
use super::request::{parse_json, read_body};
use super::{OpenAiError, ingress};
use crate::adapt::{Ingress, anthropic_up};
use crate::channel_types::Protocol;
use crate::snapshot::ChannelRt;
use crate::state::Shared;

/// How long an upstream count may take before the estimate answers instead.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn count_tokens(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let err = |e: OpenAiError| render_error(Ingress::Anthropic, e);
    let snap = state.snapshot.load();
    let caller = match ingress::authenticate(&state, &snap, &headers) {
        Ok(c) => c,
        Err(e) => return err(e),
    };
    let limit = state.config.max_body_bytes;
    let body = match read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return err(e),
    };
    let mut v = match parse_json(&body) {
        Ok(v) => v,
        Err(e) => return err(e),
    };
    let Some(asked) = v["model"].as_str().map(str::to_string) else {
        return err(OpenAiError::invalid_request("model: Field required"));
    };
    if !v["messages"].is_array() {
        return err(OpenAiError::invalid_request("messages: Field required"));
    }
    let model = snap.resolve(&asked).to_string();
    if !caller.model_allowed(&model) && !caller.model_allowed(&asked) {
        return err(OpenAiError::permission_denied(format!(
            "This API key may not use the model '{model}'"
        )));
    }
    let tiers = snap.tiers(&caller.group, &model);
    if tiers.is_none() && !snap.jit_models.contains_key(&model) {
        return err(OpenAiError::model_not_found(&asked));
    }
    let anthropic = tiers
        .into_iter()
        .flatten()
        .flat_map(|t| t.members.iter())
        .filter_map(|(id, _)| snap.channels.get(id))
        .find(|c| {
            c.protocol == Protocol::Anthropic
                && state.relay.breakers.state(c.id) != super::BreakerState::Open
        });
    if let Some(ch) = anthropic {
        v["model"] = json!(ch.upstream_model(&model));
        match upstream(&state, ch, &headers, &v).await {
            Ok(resp) => return resp,
            Err(why) => {
                tracing::warn!(channel = ch.id, %why, "count_tokens upstream failed; estimating")
            }
        }
    }
    estimate(&v)
}

/// Ask the Anthropic channel; its answer (count or client error) goes back as it is.
async fn upstream(
    state: &Shared,
    ch: &ChannelRt,
    client: &HeaderMap,
    body: &Value,
) -> Result<Response, String> {
    let version = client
        .get("anthropic-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(anthropic_up::DEFAULT_VERSION));
    let mut rb = state
        .relay
        .client
        .post(format!("{}/v1/messages/count_tokens", ch.base_url))
        .header("x-api-key", &ch.key)
        .header("anthropic-version", version)
        .header(header::CONTENT_TYPE, "application/json")
        .timeout(UPSTREAM_TIMEOUT)
        .body(serde_json::to_vec(body).unwrap_or_default());
    if let Some(b) = client.get("anthropic-beta") {
        rb = rb.header("anthropic-beta", b);
    }
    let resp = rb.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    // The upstream's own failures (5xx, 429) fall back to the estimate; a client error
    // (a bad body) is the client's to see.
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(format!("status {status}"));
    }
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(bytes.to_vec()),
    )
        .into_response())
}

/// About four bytes of JSON per token over what the model reads: system, messages, tools.
fn estimate(v: &Value) -> Response {
    let bytes: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| v.get(*k))
        .map(|x| x.to_string().len())
        .sum();
    let tokens = bytes.div_ceil(4).max(1);
    (
        [("x-burncloud-estimated", "true")],
        axum::Json(json!({"input_tokens": tokens})),
    )
        .into_response()
}
