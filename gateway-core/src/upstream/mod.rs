//! Upstreams: one file per provider, each an [`Upstream`] the channel type table names.
//! A provider's whole knowledge lives in its file — its key and base URL rules, the
//! request of an attempt in its format, how its answer is read (into OpenAI chat, or
//! observed when the client speaks the provider's own protocol), and the extras some have
//! (a Responses passthrough, a token count, a model list). The relay knows none of it: it asks the
//! channel's upstream for a [`Call`], sends it, and runs the stages the upstream's
//! [`Decode`] names, followed by the client protocol's (see [`crate::ingress`]).
//!
//! - [`openai`]: OpenAI and every OpenAI-compatible API (and their Responses API).
//! - [`azure`]: Azure OpenAI deployments: OpenAI's format, Azure's URLs and key header.
//! - [`anthropic`]: Anthropic Messages ⇄ OpenAI chat.
//! - [`gemini`]: Google Gemini `generateContent` ⇄ OpenAI chat.
//! - [`bedrock`]: AWS Bedrock (Claude): SigV4, event-stream frames.
//! - [`vertex`]: Google Vertex AI: service-account tokens, Gemini and Claude models.
//!
//! A new provider is one more file here and one row in `channel_types::CHANNEL_TYPES`.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod vertex;

use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use serde_json::Value;

use crate::wire::openai::RequestInfo;
use crate::wire::{Endpoint, Ingress, Stage};

/// The channel an attempt goes to, as its upstream needs it.
pub struct Target<'a> {
    /// The channel's id (named in warnings).
    pub id: i64,
    pub base_url: &'a str,
    /// The channel's key (a provider key, AWS credentials, a service-account JSON).
    pub key: &'a str,
    /// `Authorization: Bearer <key>`, prepared once per routing snapshot.
    pub bearer: Option<&'a HeaderValue>,
}

/// What one attempt asks the upstream to do.
pub struct Request<'a> {
    pub ep: Endpoint,
    /// The request in OpenAI chat format (the client's own bytes for an OpenAI client).
    pub canonical: &'a Bytes,
    pub info: &'a RequestInfo,
    /// The client's own body when it spoke another protocol (Anthropic Messages).
    pub native: Option<&'a Value>,
    /// The model's name upstream (the channel's mapping applied).
    pub model: &'a str,
    /// The client's headers (a few pass on, e.g. `anthropic-beta`).
    pub client: &'a HeaderMap,
}

/// One attempt's HTTP request in the upstream's format (always a JSON POST).
pub struct Call {
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The format the answer comes in, as the logs record it ("openai", "anthropic", …).
    pub wire: &'static str,
    /// The body sent is the client's own: the answer is in the client's protocol.
    pub native: bool,
    /// A Google access token for the channel's service account goes in `Authorization`
    /// when the call is sent (fetched and cached by the caller; see [`vertex::Tokens`]).
    pub google_token: bool,
}

impl Call {
    /// A call to `url` with `body`; a streamed request asks for server-sent events.
    pub fn new(url: String, mut headers: HeaderMap, body: Bytes, wire: &'static str) -> Call {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Call {
            url,
            headers,
            body,
            wire,
            native: false,
            google_token: false,
        }
    }

    /// The same call asking for a server-sent event stream when `stream`.
    pub fn streaming(mut self, stream: bool) -> Call {
        if stream {
            self.headers.insert(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        self
    }

    /// The same call, marked as carrying the client's own body.
    pub fn native(mut self, native: bool) -> Call {
        self.native = native;
        self
    }

    /// The JSON value as a body.
    pub fn json(v: &Value) -> Bytes {
        Bytes::from(serde_json::to_vec(v).unwrap_or_default())
    }
}

/// Why a channel cannot take a request.
#[derive(Debug)]
pub enum CallError {
    /// The upstream cannot serve this endpoint, or the channel is misconfigured: the next
    /// channel is tried; the reason goes to the failover trail.
    Skip(&'static str),
    /// The request cannot be expressed in the upstream's format: the client's error.
    Refuse(String),
}

impl From<String> for CallError {
    fn from(m: String) -> Self {
        CallError::Refuse(m)
    }
}

/// What reading an answer depends on.
pub struct Answer<'a> {
    /// The client's protocol.
    pub ingress: Ingress,
    /// The call carried the client's own body ([`Call::native`]).
    pub native: bool,
    /// The answer is a stream (server-sent events or AWS event-stream frames).
    pub is_sse: bool,
    pub status: u16,
    /// The model the client asked for (named in converted answers).
    pub model: &'a str,
    /// The model's name upstream.
    pub upstream_model: &'a str,
    /// A conversion to OpenAI chat must carry usage (the client asked for it, or the
    /// client protocol's stage needs it).
    pub usage: bool,
}

/// How an upstream's answer is read.
pub enum Decode {
    /// It is OpenAI chat already.
    OpenAi,
    /// These stages turn it into OpenAI chat (then the client protocol's stages run).
    ToOpenAi(Vec<Box<dyn Stage>>),
    /// It is in the client's own protocol: these stages only observe (or frame) it.
    Native(Vec<Box<dyn Stage>>),
}

/// One provider.
pub trait Upstream: Sync {
    /// Its name in messages ("Anthropic", "AWS Bedrock", …).
    fn name(&self) -> &'static str;

    /// Check a channel's key as it is saved. A base URL that follows from the key
    /// (Bedrock's region) is filled in when `base_url` is empty.
    fn check_key(&self, _key: &str, _base_url: &mut String) -> Result<(), String> {
        Ok(())
    }

    /// The request of one attempt.
    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError>;

    /// How its answer to a call is read.
    fn answer(&self, a: &Answer<'_>) -> Decode;

    /// A Responses request passed through as the client sent it (the model mapped), for
    /// upstreams that serve `/v1/responses` themselves.
    fn responses(&self, _t: &Target<'_>, _native: &Value, _model: &str) -> Option<Call> {
        None
    }

    /// Whether the provider lists the models a key may use ([`Upstream::models_request`]).
    fn lists_models(&self) -> bool {
        false
    }

    /// The `GET` that lists the models the channel's key may use (its URL and headers),
    /// where the provider has one.
    fn models_request(&self, _t: &Target<'_>) -> Option<(String, HeaderMap)> {
        None
    }

    /// The model names in the answer to [`Upstream::models_request`]: those the gateway
    /// can serve through this provider.
    fn models_in(&self, _answer: &Value) -> Vec<String> {
        Vec::new()
    }

    /// An exact token count (Anthropic's `count_tokens`), where the provider has one.
    fn count_tokens(&self, _t: &Target<'_>, _client: &HeaderMap, _body: &Value) -> Option<Call> {
        None
    }
}

impl std::fmt::Debug for dyn Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
