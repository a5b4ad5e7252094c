//! Ingresses: the client protocols the gateway speaks besides OpenAI chat (its canonical
//! format), one file each. A request in another protocol is converted into OpenAI chat on
//! the way in; the answer, once in OpenAI chat (see [`crate::upstream`]), goes through the
//! protocol's stage ([`tail`]) on the way out.
//!
//! - [`anthropic`]: Anthropic Messages (`/v1/messages`, Claude Code) ⇄ OpenAI chat.
//! - [`responses`]: OpenAI Responses (`/v1/responses`, Codex CLI) ⇄ OpenAI chat.
//! - [`ollama`]: Ollama's API (`/api/chat`, `/api/generate`, `/api/embed`) ⇄ OpenAI.

pub mod anthropic;
pub mod ollama;
pub mod responses;

use crate::wire::{Endpoint, Stage};

/// The stages that turn an OpenAI chat answer into what a client of `ep` reads (none for
/// an OpenAI client).
pub fn tail(ep: Endpoint, is_sse: bool, status: u16, model: &str) -> Vec<Box<dyn Stage>> {
    match ep {
        Endpoint::Messages => vec![Box::new(anthropic::ToAnthropic::new(is_sse, status, model))],
        Endpoint::Responses => vec![Box::new(responses::ToResponses::new(is_sse, status, model))],
        Endpoint::Ollama(kind) => {
            vec![Box::new(ollama::ToOllama::new(kind, is_sse, status, model))]
        }
        Endpoint::Chat | Endpoint::Completions | Endpoint::Embeddings | Endpoint::Rerank => {
            Vec::new()
        }
    }
}
