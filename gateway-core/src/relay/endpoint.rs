//! The endpoints the relay serves, and errors in the shape of each client's protocol.

use axum::response::{IntoResponse, Response};

use super::OpenAiError;
use crate::adapt::{Ingress, anthropic, ollama};

/// The endpoints the relay serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    /// Rerank (Jina/Cohere shape, as llama-server serves it): OpenAI-format channels only.
    Rerank,
    /// Anthropic Messages, converted to chat for non-Anthropic channels.
    Messages,
    /// OpenAI Responses, converted to chat for every channel.
    Responses,
    /// Ollama's `/api/chat`, `/api/generate`, `/api/embed`, converted for every channel.
    Ollama(ollama::Kind),
}

impl Endpoint {
    pub(super) fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Rerank => "/v1/rerank",
            Endpoint::Messages => "/v1/messages",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Ollama(ollama::Kind::Chat) => "/api/chat",
            Endpoint::Ollama(ollama::Kind::Generate) => "/api/generate",
            Endpoint::Ollama(ollama::Kind::Embed) => "/api/embed",
        }
    }

    /// The OpenAI path a request to this endpoint takes on an OpenAI-format channel.
    pub(super) fn openai_path(self) -> &'static str {
        match self {
            Endpoint::Messages
            | Endpoint::Responses
            | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate) => {
                "/v1/chat/completions"
            }
            Endpoint::Ollama(ollama::Kind::Embed) => "/v1/embeddings",
            e => e.path(),
        }
    }

    /// Whether the request is a conversation that converts to a chat-style upstream
    /// (Anthropic Messages, Gemini).
    pub(super) fn is_chat(self) -> bool {
        matches!(
            self,
            Endpoint::Chat
                | Endpoint::Messages
                | Endpoint::Responses
                | Endpoint::Ollama(ollama::Kind::Chat | ollama::Kind::Generate)
        )
    }

    pub(super) fn ingress(self) -> Ingress {
        match self {
            Endpoint::Messages => Ingress::Anthropic,
            Endpoint::Responses => Ingress::Responses,
            Endpoint::Ollama(_) => Ingress::Ollama,
            _ => Ingress::OpenAi,
        }
    }
}

/// An error in the shape of the client's ingress.
pub(super) fn render_error(ingress: Ingress, e: OpenAiError) -> Response {
    match ingress {
        Ingress::OpenAi | Ingress::Responses => e.into_response(),
        Ingress::Anthropic => {
            let body = anthropic::error_body(e.status.as_u16(), &e.message);
            let mut resp = (e.status, axum::Json(body)).into_response();
            e.add_headers(&mut resp);
            resp
        }
        Ingress::Ollama => {
            let mut resp = (e.status, axum::Json(ollama::error_body(&e.message))).into_response();
            e.add_headers(&mut resp);
            resp
        }
    }
}
