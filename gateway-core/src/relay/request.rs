//! Reading a request: its body (bounded), converted from the client's protocol to the
//! canonical OpenAI request, peeked for what routing needs, the model name resolved.

use axum::body::Body;
use bytes::Bytes;
use serde_json::Value;

use super::OpenAiError;
use super::endpoint::Endpoint;
use super::ingress::{self, RequestInfo};
use crate::ingress::{anthropic, ollama, responses};
use crate::snapshot::Snapshot;
use crate::wire::Ingress;
use crate::wire::conversion::Conversion;

/// A request as the relay routes it.
pub(super) struct Inbound {
    /// The canonical body: OpenAI chat (or completions, embeddings, rerank).
    pub(super) body: Bytes,
    /// What routing and billing need from it; `model` resolved (aliases, readable local
    /// names → `local-<id>`).
    pub(super) info: RequestInfo,
    /// The model as the client named it.
    pub(super) asked: String,
    /// The client's own body, kept for an upstream of the same format (passthrough).
    pub(super) native: Option<Value>,
    /// What the conversion dropped or renamed (tools), for the answer and its headers.
    pub(super) conv: Conversion,
    /// Why the body could not be converted, if it could not (only a passthrough may
    /// serve it).
    pub(super) unconvertible: Option<String>,
}

/// Read the body (at most `limit` bytes), convert it to the canonical request and peek it.
pub(super) async fn read(
    ep: Endpoint,
    body: Body,
    limit: usize,
    snap: &Snapshot,
) -> Result<Inbound, OpenAiError> {
    let bytes = read_body(body, limit).await?;
    let mut inbound = to_canonical(ep, bytes)?;
    inbound.asked = inbound.info.model.clone();
    inbound.info.model = snap.resolve(&inbound.asked).to_string();
    Ok(inbound)
}

/// The client's protocol → the canonical OpenAI request.
fn to_canonical(ep: Endpoint, body: Bytes) -> Result<Inbound, OpenAiError> {
    let mut native = None;
    let mut conv = Conversion::default();
    let mut unconvertible = None;
    let body = match ep.ingress() {
        Ingress::OpenAi => body,
        Ingress::Anthropic => {
            let v = parse_json(&body)?;
            let (chat, c) =
                anthropic::messages_to_chat_with(&v).map_err(OpenAiError::invalid_request)?;
            conv = c;
            native = Some(v);
            to_bytes(&chat)
        }
        Ingress::Responses => {
            let v = parse_json(&body)?;
            match responses::responses_to_chat_with(&v) {
                Ok((chat, c)) => {
                    conv = c;
                    // Kept for upstreams that serve the Responses API themselves.
                    native = Some(v);
                    to_bytes(&chat)
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
                        to_bytes(&stub)
                    }
                    _ => return Err(OpenAiError::invalid_request(m)),
                },
            }
        }
        Ingress::Ollama => {
            let v = parse_json(&body)?;
            let converted = match ep {
                Endpoint::Ollama(ollama::Kind::Embed) => ollama::embed_to_openai(&v),
                Endpoint::Ollama(ollama::Kind::Generate) => ollama::generate_to_openai(&v)
                    .and_then(|g| g.ok_or_else(|| "prompt: required".to_string())),
                _ => ollama::chat_to_openai(&v),
            };
            to_bytes(&converted.map_err(OpenAiError::invalid_request)?)
        }
    };
    let info = ingress::peek(&body)?;
    Ok(Inbound {
        body,
        asked: String::new(),
        info,
        native,
        conv,
        unconvertible,
    })
}

fn to_bytes(v: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Bodies up to this size are copied out of the connection's read buffer.
const OWN_COPY: usize = 64 * 1024;

/// The request body, at most `limit` bytes: 413 beyond, 400 when it cannot be read.
///
/// A body that arrived in one read is a view into the server connection's 8 KB read
/// buffer; kept for the whole answer (a stream, failover), it pins that buffer, and the
/// connection allocates a new 16 KB one to read the next request. A small body is copied
/// into its own allocation instead (bigger ones arrive in several reads and are gathered
/// into one of their own anyway).
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, OpenAiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            OpenAiError::too_large(limit)
        } else {
            OpenAiError::invalid_request(format!("Could not read the request body: {e}"))
        }
    })?;
    Ok(if bytes.len() <= OWN_COPY {
        Bytes::copy_from_slice(&bytes)
    } else {
        bytes
    })
}

/// Parse a body for conversion, with the same messages as the OpenAI peek.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A small body read in one piece must not keep the buffer it was read into alive.
    #[tokio::test]
    async fn a_small_body_does_not_pin_the_read_buffer() {
        let buffer = Bytes::from(vec![b' '; 8192]);
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        let body = read_body(Body::from(buffer.slice(0..300)), 1 << 20)
            .await
            .unwrap();
        assert_eq!(body.len(), 300);
        assert!(
            !range.contains(&(body.as_ptr() as usize)),
            "the body is still a view into the 8 KB buffer"
        );
    }
}
