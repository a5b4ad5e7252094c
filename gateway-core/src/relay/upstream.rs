//! What an attempt sends to a channel and how its answer is turned back: the upstream
//! request per channel protocol ([`upstream_call`], the Responses passthrough
//! [`responses_call`]) and the answer stages per (ingress, upstream format)
//! ([`answer_pipeline`]).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;

use super::endpoint::Endpoint;
use super::ingress;
use crate::adapt::conversion::Conversion;
use crate::adapt::{
    Format, Ingress, OpenAiErrorBody, Pipeline, Stage, anthropic, anthropic_up, azure, bedrock,
    gemini, ollama, responses, responses_up, vertex,
};
use crate::channel_types::Protocol;
use crate::snapshot::ChannelRt;

/// One attempt's request to a channel, in the channel's format.
pub(super) struct UpstreamCall {
    pub(super) url: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) format: Format,
}

/// A Responses request to an upstream that serves `/v1/responses` itself: the client's
/// body, the model mapped.
pub(super) fn responses_call(
    ch: &ChannelRt,
    native: &serde_json::Value,
    model: &str,
) -> UpstreamCall {
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

/// Why a channel cannot take this request.
pub(super) enum CallError {
    /// No adaptor covers this endpoint on this channel type, or the channel is
    /// misconfigured: the next channel is tried; the reason goes to the failover trail.
    Skip(&'static str),
    /// The request cannot be expressed in the channel's format: the client's error.
    Refuse(String),
}

impl From<String> for CallError {
    fn from(m: String) -> Self {
        CallError::Refuse(m)
    }
}

/// The request for channel `ch`: the canonical body as is for OpenAI-format channels, the
/// client's own body for a channel of the client's format, else converted.
pub(super) fn upstream_call(
    ch: &ChannelRt,
    ep: Endpoint,
    canonical: &Bytes,
    info: &ingress::RequestInfo,
    native: Option<&serde_json::Value>,
    model: &str,
    client: &HeaderMap,
) -> Result<UpstreamCall, CallError> {
    let upstream_model = ch.upstream_model(model);
    let mut headers = HeaderMap::new();
    match ch.protocol {
        Protocol::OpenAi => {
            if let Some(h) = &ch.auth_header {
                headers.insert(header::AUTHORIZATION, h.clone());
            }
            Ok(UpstreamCall {
                url: format!("{}{}", ch.base_url, ep.openai_path()),
                headers,
                body: ingress::upstream_body(canonical, info, upstream_model),
                format: Format::OpenAi,
            })
        }
        Protocol::Anthropic => {
            let mut body = messages_body(ep, native, canonical, upstream_model)?;
            body["model"] = serde_json::Value::String(upstream_model.to_string());
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
            Ok(UpstreamCall {
                url: format!("{}/v1/messages", ch.base_url),
                headers,
                body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                format: Format::Anthropic,
            })
        }
        Protocol::Azure => {
            if let Ok(v) = HeaderValue::from_str(&ch.key) {
                headers.insert("api-key", v);
            }
            Ok(UpstreamCall {
                url: azure::url(&ch.base_url, upstream_model, ep.openai_path()),
                headers,
                body: ingress::upstream_body(canonical, info, upstream_model),
                format: Format::Azure,
            })
        }
        Protocol::Gemini => {
            if !ep.is_chat() {
                return Err(CallError::Skip("no_adaptor"));
            }
            let chat: serde_json::Value =
                serde_json::from_slice(canonical).map_err(|e| e.to_string())?;
            let body = gemini::chat_to_gemini(&chat)?;
            if let Ok(v) = HeaderValue::from_str(&ch.key) {
                headers.insert("x-goog-api-key", v);
            }
            Ok(UpstreamCall {
                url: gemini::url(&ch.base_url, upstream_model, info.stream),
                headers,
                body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                format: Format::Gemini,
            })
        }
        Protocol::Bedrock => {
            let creds = match bedrock::Credentials::parse(&ch.key) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(channel = ch.id, "{e}");
                    return Err(CallError::Skip("bad_channel_key"));
                }
            };
            let messages = messages_body(ep, native, canonical, upstream_model)?;
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
                    return Err(CallError::Skip("signing_failed"));
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
            Ok(UpstreamCall {
                url,
                headers,
                body: Bytes::from(body),
                format: Format::Bedrock,
            })
        }
        // The access token is added when the attempt is sent (it may need fetching).
        Protocol::Vertex => {
            let sa = match vertex::ServiceAccount::parse(&ch.key) {
                Ok(sa) => sa,
                Err(e) => {
                    tracing::warn!(channel = ch.id, "{e}");
                    return Err(CallError::Skip("bad_channel_key"));
                }
            };
            let (body, format) = match vertex::publisher(upstream_model) {
                vertex::Publisher::Anthropic => (
                    vertex::claude_body(
                        messages_body(ep, native, canonical, upstream_model)?,
                        info.stream,
                    ),
                    Format::Anthropic,
                ),
                vertex::Publisher::Google if ep.is_chat() => {
                    let chat = serde_json::from_slice::<serde_json::Value>(canonical)
                        .map_err(|e| e.to_string())?;
                    (gemini::chat_to_gemini(&chat)?, Format::Gemini)
                }
                vertex::Publisher::Google => return Err(CallError::Skip("no_adaptor")),
            };
            Ok(UpstreamCall {
                url: vertex::url(&ch.base_url, &sa.project_id, upstream_model, info.stream),
                headers,
                body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                format,
            })
        }
    }
}

/// How the answer of a channel in `format` reaches a client of `ingress`: `None` is the
/// plain OpenAI relay (scanned, not converted).
/// The Anthropic Messages body of an attempt: the client's own for a Messages request,
/// else converted from the canonical chat request.
fn messages_body(
    ep: Endpoint,
    native: Option<&serde_json::Value>,
    canonical: &Bytes,
    upstream_model: &str,
) -> Result<serde_json::Value, CallError> {
    match (ep, native) {
        (Endpoint::Messages, Some(v)) => Ok(v.clone()),
        _ if ep.is_chat() => {
            let chat: serde_json::Value =
                serde_json::from_slice(canonical).map_err(|e| e.to_string())?;
            Ok(anthropic_up::chat_to_messages(&chat, upstream_model)?)
        }
        _ => Err(CallError::Skip("no_adaptor")),
    }
}

/// The stages that turn a channel's answer into what the client's ingress speaks (`None`:
/// relayed as it is), with what the request's conversion dropped or renamed applied.
#[allow(clippy::too_many_arguments)]
pub(super) fn answer_pipeline(
    ep: Endpoint,
    ch: &ChannelRt,
    format: Format,
    is_sse: bool,
    is_json: bool,
    info: &ingress::RequestInfo,
    status: StatusCode,
    conv: &Conversion,
) -> Option<Pipeline> {
    let mut pipeline = match (ep, format) {
        (Endpoint::Ollama(kind), _) => Some(ollama_pipeline(kind, format, is_sse, info, status)),
        (_, Format::OpenAiResponses) => Some(Pipeline::new(vec![Box::new(
            responses_up::ResponsesObserver::new(is_sse),
        )])),
        _ => response_pipeline(ep.ingress(), format, is_sse, is_json, info, status),
    };
    if ch.protocol == Protocol::Vertex && format == Format::Anthropic && !status.is_success() {
        let first = Box::new(vertex::GoogleErrorToAnthropic::new(status.as_u16()));
        pipeline = pipeline.map(|p| p.with_first(first));
    }
    if let Some(p) = &mut pipeline {
        p.apply(conv);
    }
    pipeline
}

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
