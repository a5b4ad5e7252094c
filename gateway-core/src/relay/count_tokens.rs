//! `POST /v1/messages/count_tokens`, Anthropic's token counting (Claude Code asks it how
//! full its context is). The first channel serving the model whose provider counts tokens
//! (Anthropic) counts it upstream; for any other channel, or when that upstream fails, the count is estimated from the
//! request's size and the answer says so (`x-burncloud-estimated: true`). Free, like
//! Anthropic's: not billed, not logged, no quota used.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::endpoint::render_error;
use super::request::{parse_json, read_body};
use super::{OpenAiError, ingress};
use crate::state::Shared;
use crate::upstream::Call;
use crate::wire::Ingress;

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
    let v = match parse_json(&body) {
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
    let tiers = snap.tiers(caller.group(), &model);
    if tiers.is_none() && !snap.jit_models.contains_key(&model) {
        return err(OpenAiError::model_not_found(&asked));
    }
    let counted = tiers
        .into_iter()
        .flatten()
        .flat_map(|t| t.members.iter())
        .filter_map(|(id, _)| snap.channels.get(id))
        .filter(|c| state.relay.breakers.state(c.id) != super::BreakerState::Open)
        .find_map(|c| {
            let mut body = v.clone();
            body["model"] = json!(c.upstream_model(&model));
            let call = c.upstream.count_tokens(&c.target(), &headers, &body)?;
            Some((c.id, call))
        });
    if let Some((id, call)) = counted {
        match upstream(&state, call).await {
            Ok(resp) => return resp,
            Err(why) => {
                tracing::warn!(channel = id, %why, "count_tokens upstream failed; estimating")
            }
        }
    }
    estimate(&v)
}

/// Ask the channel; its answer (count or client error) goes back as it is.
async fn upstream(state: &Shared, call: Call) -> Result<Response, String> {
    let rb = state
        .relay
        .client
        .post(call.url)
        .headers(call.headers)
        .timeout(UPSTREAM_TIMEOUT)
        .body(call.body);
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
