//! OpenAI's chat format, the relay's canonical one: a peek at a request body (without
//! re-serialising it), the edits the gateway makes to it, and usage in OpenAI's shape.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::vocab::{OpenAiError, Usage};

/// The fields of a request body the gateway looks at; the rest stays untouched bytes.
#[derive(Deserialize)]
pub struct Peek<'a> {
    #[serde(borrow)]
    pub model: Option<&'a RawValue>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(borrow, default)]
    pub stream_options: Option<&'a RawValue>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
}

/// What ingress learned about a request body.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub model: String,
    pub stream: bool,
    pub max_tokens: Option<i64>,
    /// Byte span of the `model` value (with its quotes).
    model_span: (usize, usize),
    /// Byte span of `stream_options`'s value, if present.
    stream_options_span: Option<(usize, usize)>,
    /// Whether the client itself asked for the usage chunk.
    pub client_wants_usage: bool,
}

fn span_of(body: &[u8], raw: &RawValue) -> (usize, usize) {
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    (start, start + raw.get().len())
}

/// Parse the request body enough to route it.
pub fn peek(body: &Bytes) -> Result<RequestInfo, OpenAiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(OpenAiError::invalid_request(
            "Request body is empty: expected a JSON object",
        ));
    }
    let p: Peek<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            OpenAiError::invalid_request(format!("Invalid request body: {e}"))
        } else {
            OpenAiError::invalid_request(format!("Malformed JSON in request body: {e}"))
        }
    })?;
    let raw_model = p
        .model
        .ok_or_else(|| OpenAiError::invalid_request("Missing required parameter: 'model'"))?;
    let model: String = serde_json::from_str(raw_model.get())
        .map_err(|_| OpenAiError::invalid_request("Invalid type for 'model': expected a string"))?;
    if model.is_empty() {
        return Err(OpenAiError::invalid_request("'model' must not be empty"));
    }
    let client_wants_usage = p
        .stream_options
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .and_then(|v| v.get("include_usage").and_then(|b| b.as_bool()))
        .unwrap_or(false);
    Ok(RequestInfo {
        model,
        stream: p.stream.unwrap_or(false),
        max_tokens: p.max_completion_tokens.or(p.max_tokens).filter(|n| *n > 0),
        model_span: span_of(body, raw_model),
        stream_options_span: p.stream_options.map(|r| span_of(body, r)),
        client_wants_usage,
    })
}

/// The body to send upstream: the client's bytes, edited only where the gateway must
/// (model mapping; `stream_options.include_usage` for streams so they are billed exactly).
pub fn upstream_body(body: &Bytes, info: &RequestInfo, upstream_model: &str) -> Bytes {
    let rename = upstream_model != info.model;
    let add_usage = info.stream && !info.client_wants_usage;
    if !rename && !add_usage {
        return body.clone();
    }
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::with_capacity(2);
    if rename {
        let quoted = serde_json::to_vec(upstream_model).unwrap_or_default();
        edits.push((info.model_span.0, info.model_span.1, quoted));
    }
    if add_usage {
        match info.stream_options_span {
            Some((s, e)) => {
                let mut obj: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(&body[s..e]).unwrap_or_default();
                obj.insert("include_usage".into(), serde_json::Value::Bool(true));
                edits.push((s, e, serde_json::to_vec(&obj).unwrap_or_default()));
            }
            None => {
                let open = body.iter().position(|b| *b == b'{').unwrap_or(0) + 1;
                edits.push((
                    open,
                    open,
                    b"\"stream_options\":{\"include_usage\":true},".to_vec(),
                ));
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(body.len() + 48);
    let mut pos = 0;
    for (s, e, text) in edits {
        out.extend_from_slice(&body[pos..s]);
        out.extend_from_slice(&text);
        pos = e;
    }
    out.extend_from_slice(&body[pos..]);
    Bytes::from(out)
}

/// Usage in OpenAI's shape (cache writes under `prompt_tokens_details.cache_creation_tokens`).
pub fn openai_usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt,
        "completion_tokens": u.completion,
        "total_tokens": u.prompt + u.completion,
        "prompt_tokens_details": {"cached_tokens": u.cached, "cache_creation_tokens": u.cache_write},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_when_nothing_to_edit() {
        let body = Bytes::from_static(
            br#"{"model":"gpt-4o", "messages":[{"role":"user","content":"hi"}]}"#,
        );
        let info = peek(&body).unwrap();
        assert_eq!(upstream_body(&body, &info, "gpt-4o"), body);
    }

    #[test]
    fn renames_model_and_adds_usage_keeping_the_rest() {
        let body = Bytes::from_static(
            br#" {"messages":[], "model" : "a", "stream":true, "x":{"model":"keep"}}"#,
        );
        let info = peek(&body).unwrap();
        let out = upstream_body(&body, &info, "b");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "b");
        assert_eq!(v["x"]["model"], "keep");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(!info.client_wants_usage);
    }

    #[test]
    fn merges_existing_stream_options() {
        let body = Bytes::from_static(
            br#"{"model":"a","stream":true,"stream_options":{"include_usage":false,"other":1}}"#,
        );
        let info = peek(&body).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&upstream_body(&body, &info, "a")).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["other"], 1);
    }

    #[test]
    fn bad_bodies_are_400() {
        for b in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"model": 5}"#,
            br#"{"messages":[]}"#,
            br#"{"model":"a","stream":"yes"}"#,
        ] {
            let e = peek(&Bytes::copy_from_slice(b)).unwrap_err();
            assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(b));
        }
    }
}
