//! Upstreams that serve OpenAI's Responses API themselves (OpenAI's own endpoint, or base
//! URLs listed in `BURNCLOUD_RESPONSES_UPSTREAMS`): a Responses client's request passes
//! through with only the model mapped, so `previous_response_id`, reasoning items and
//! hosted tools work there. [`ResponsesObserver`] relays the answer unchanged and reads
//! its usage (`response.completed` / `response.incomplete` / `response.failed` events, or
//! the JSON object's `usage`).

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use super::{Answer, Call, CallError, Decode, Request, Target, Upstream};
use crate::vocab::Usage;
use crate::wire::openai::upstream_body;
use crate::wire::passthrough::{Dialect, Observer, Tally};
use crate::wire::sse;

/// OpenAI, and every API that speaks its format (OpenRouter, DeepSeek, llama-server, …).
pub struct OpenAi;

/// `Authorization: Bearer <key>`, when the channel has a key.
fn bearer(t: &Target<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(h) = t.bearer {
        headers.insert(header::AUTHORIZATION, h.clone());
    }
    headers
}

impl Upstream for OpenAi {
    fn name(&self) -> &'static str {
        "OpenAI"
    }

    /// The client's bytes, edited only where the gateway must (model, usage for streams).
    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError> {
        // Concatenated, not `format!`ed (~900 instructions per request through `fmt`).
        let url = [t.base_url, r.ep.openai_path()].concat();
        let body = upstream_body(r.canonical, r.info, r.model);
        Ok(Call::new(url, bearer(t), body, "openai").streaming(r.info.stream))
    }

    fn answer(&self, a: &Answer<'_>) -> Decode {
        if a.native {
            // A Responses passthrough: relayed as it is, its usage read on the way.
            Decode::Native(vec![Box::new(ResponsesObserver::new(a.is_sse))])
        } else {
            Decode::OpenAi
        }
    }

    fn lists_models(&self) -> bool {
        true
    }

    fn models_request(&self, t: &Target<'_>) -> Option<(String, HeaderMap)> {
        Some((format!("{}/v1/models", t.base_url), bearer(t)))
    }

    /// `{"object": "list", "data": [{"id": …}, …]}`.
    fn models_in(&self, answer: &Value) -> Vec<String> {
        ids(&answer["data"])
    }

    fn responses(&self, t: &Target<'_>, native: &Value, model: &str) -> Option<Call> {
        let url = format!("{}/v1/responses", t.base_url.trim_end_matches("/v1"));
        let stream = native["stream"].as_bool() == Some(true);
        let body = Call::json(&request(native, model));
        Some(
            Call::new(url, bearer(t), body, "openai-responses")
                .streaming(stream)
                .native(true),
        )
    }
}

/// The `id`s of a list of model objects (OpenAI's and Anthropic's shape).
pub(super) fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect()
}

/// A Responses `usage` object as the relay's usage.
fn usage_of(u: &Value) -> Option<Usage> {
    let prompt = u.get("input_tokens")?.as_i64()?;
    Some(Usage {
        prompt,
        completion: u["output_tokens"].as_i64().unwrap_or(0),
        cached: u["input_tokens_details"]["cached_tokens"]
            .as_i64()
            .unwrap_or(0),
        cache_write: 0,
    })
}

/// The client's Responses body for the upstream: the model mapped, the rest as sent.
pub fn request(native: &Value, upstream_model: &str) -> Value {
    let mut v = native.clone();
    v["model"] = json!(upstream_model);
    v
}

/// Passthrough of a Responses answer, reading usage on the way.
pub type ResponsesObserver = Observer<Responses>;

/// Where a Responses answer keeps its usage.
pub struct Responses;

impl Dialect for Responses {
    fn event(v: &Value, tally: &mut Tally) {
        match v["type"].as_str() {
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                tally.ended = true;
                if let Some(u) = usage_of(&v["response"]["usage"]) {
                    tally.usage = Some(u);
                }
            }
            Some(t) if t.ends_with(".delta") => tally.content_events += 1,
            _ => {}
        }
    }

    fn body_usage(v: &Value) -> Option<Usage> {
        usage_of(&v["usage"])
    }

    fn error_event(message: &str, out: &mut Vec<u8>) {
        sse::write_event(
            out,
            "error",
            &json!({"type": "error", "code": "server_error", "message": message, "param": null}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Stage;

    #[test]
    fn usage_from_the_completed_event_bytes_unchanged() {
        let sse = concat!(
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":2,\"total_tokens\":11}}}\n\n"
        );
        let mut o = ResponsesObserver::new(true);
        let mut out = Vec::new();
        for piece in sse.as_bytes().chunks(5) {
            o.feed(piece, &mut out);
        }
        o.finish(&mut out);
        assert_eq!(out, sse.as_bytes());
        let u = o.usage().unwrap();
        assert_eq!((u.prompt, u.completion, u.cached), (9, 2, 4));
        assert_eq!(o.content_events(), 1);
    }
}
