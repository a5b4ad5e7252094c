//! What every protocol conversion shares: the [`Stage`]s an answer flows through
//! (upstream format → OpenAI chat → client format, event by event as the stream arrives,
//! never buffered whole) and their [`Pipeline`]; the endpoints and client protocols; SSE
//! framing; what a conversion dropped or renamed; error bodies in each protocol's shape;
//! OpenAI's chat format (the relay's canonical one). No provider and no client protocol
//! lives here: those are [`crate::ingress`] and [`crate::upstream`].
//!
//! - [`conversion`]: what an ingress conversion dropped or renamed (tools), system hoisting.
//! - [`errors`]: error bodies in OpenAI's and Anthropic's shapes, from any upstream body.
//! - [`openai`]: a peek at an OpenAI body, the gateway's edits to it, usage in its shape.
//! - [`passthrough`]: relaying an answer unchanged to a client of the same protocol.
//! - [`sse`]: server-sent event framing.

pub mod conversion;
pub mod errors;
pub mod openai;
pub mod passthrough;
pub mod sse;

use crate::vocab::Usage;

/// The wire format a client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// OpenAI chat / completions / embeddings.
    OpenAi,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// Ollama's API (`/api/chat`, `/api/generate`, `/api/embed`).
    Ollama,
}

impl Ingress {
    pub fn as_str(self) -> &'static str {
        match self {
            Ingress::OpenAi => "openai",
            Ingress::Anthropic => "anthropic",
            Ingress::Responses => "responses",
            Ingress::Ollama => "ollama",
        }
    }
}

/// A request that cannot be converted: the message names the field.
pub type ConvertResult<T> = Result<T, String>;

/// Which of Ollama's endpoints a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OllamaKind {
    Chat,
    Generate,
    Embed,
}

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
    Ollama(OllamaKind),
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Rerank => "/v1/rerank",
            Endpoint::Messages => "/v1/messages",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Ollama(OllamaKind::Chat) => "/api/chat",
            Endpoint::Ollama(OllamaKind::Generate) => "/api/generate",
            Endpoint::Ollama(OllamaKind::Embed) => "/api/embed",
        }
    }

    /// The OpenAI path a request to this endpoint takes on an OpenAI-format channel.
    pub fn openai_path(self) -> &'static str {
        match self {
            Endpoint::Messages
            | Endpoint::Responses
            | Endpoint::Ollama(OllamaKind::Chat | OllamaKind::Generate) => "/v1/chat/completions",
            Endpoint::Ollama(OllamaKind::Embed) => "/v1/embeddings",
            e => e.path(),
        }
    }

    /// Whether the request is a conversation that converts to a chat-style upstream
    /// (Anthropic Messages, Gemini).
    pub fn is_chat(self) -> bool {
        matches!(
            self,
            Endpoint::Chat
                | Endpoint::Messages
                | Endpoint::Responses
                | Endpoint::Ollama(OllamaKind::Chat | OllamaKind::Generate)
        )
    }

    /// The protocol the client speaks.
    pub fn ingress(self) -> Ingress {
        match self {
            Endpoint::Messages => Ingress::Anthropic,
            Endpoint::Responses => Ingress::Responses,
            Endpoint::Ollama(_) => Ingress::Ollama,
            _ => Ingress::OpenAi,
        }
    }
}

/// One step of answer conversion: bytes of one format in, bytes of another out.
pub trait Stage: Send {
    /// Upstream bytes in; converted bytes appended to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>);
    /// The input ended normally; the rest of the output is appended.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// The input failed mid-answer: end the output in its format's error shape, if the
    /// format has one for streams.
    fn fail(&mut self, message: &str, out: &mut Vec<u8>);
    /// Usage read from the input, once seen.
    fn usage(&self) -> Option<Usage>;
    /// Content events seen (the estimate of completion tokens when usage never arrives).
    fn content_events(&self) -> i64;
    /// The Content-Type of the output.
    fn content_type(&self) -> &'static str;
    /// What the request's conversion renamed (tool names to map back); most stages
    /// have nothing to do with it.
    fn apply(&mut self, _conv: &conversion::Conversion) {}
    /// The output's final event has been written (what the upstream still sends is its
    /// trailer): a client leaving now has had the whole answer.
    fn ended(&self) -> bool {
        false
    }
}

/// Stages run in order; usage is taken from the first stage that read it (the one
/// closest to the upstream sees the provider's own numbers).
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl Pipeline {
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        assert!(!stages.is_empty(), "a pipeline has at least one stage");
        Pipeline { stages }
    }

    fn run_from(&mut self, first: usize, mut data: Vec<u8>) -> Vec<u8> {
        for s in &mut self.stages[first..] {
            let mut out = Vec::with_capacity(data.len() + 64);
            s.feed(&data, &mut out);
            data = out;
        }
        data
    }

    /// Upstream bytes in; bytes for the client out (possibly empty).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        self.stages[0].feed(chunk, &mut out);
        self.run_from(1, out)
    }

    /// The upstream ended: flush every stage in order.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut carry = Vec::new();
        for i in 0..self.stages.len() {
            if i > 0 {
                let mut out = Vec::new();
                self.stages[i].feed(&carry, &mut out);
                carry = out;
            }
            self.stages[i].finish(&mut carry);
        }
        carry
    }

    /// The upstream failed: the client-facing stage ends its output.
    pub fn fail(&mut self, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(last) = self.stages.last_mut() {
            last.fail(message, &mut out);
        }
        out
    }

    pub fn usage(&self) -> Option<Usage> {
        self.stages.iter().find_map(|s| s.usage())
    }

    /// Whether the client has been sent the answer's final event (the last stage writes
    /// what the client reads).
    pub fn ended(&self) -> bool {
        self.stages.last().is_some_and(|s| s.ended())
    }

    /// The same pipeline with `stage` first (nearest the upstream).
    /// Hand the request's conversion facts to every stage.
    pub fn apply(&mut self, conv: &conversion::Conversion) {
        for s in &mut self.stages {
            s.apply(conv);
        }
    }

    pub fn content_events(&self) -> i64 {
        self.stages
            .iter()
            .map(|s| s.content_events())
            .max()
            .unwrap_or(0)
    }

    pub fn content_type(&self) -> &'static str {
        self.stages[self.stages.len() - 1].content_type()
    }
}

/// An upstream error whose body is not JSON (a proxy's HTML page, a plain-text limit
/// message) re-expressed in OpenAI's error shape, so clients always get the documented one.
pub struct OpenAiErrorBody {
    status: u16,
    buf: Vec<u8>,
}

impl OpenAiErrorBody {
    pub fn new(status: u16) -> Self {
        OpenAiErrorBody {
            status,
            buf: Vec::new(),
        }
    }
}

impl Stage for OpenAiErrorBody {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) {
        // Only the start is kept: the message is cut to 500 characters anyway.
        let room = 64 * 1024usize.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    fn finish(&mut self, out: &mut Vec<u8>) {
        let body = errors::openai_error(self.status, &self.buf);
        let _ = serde_json::to_writer(&mut *out, &body);
    }
    fn fail(&mut self, _message: &str, _out: &mut Vec<u8>) {}
    fn usage(&self) -> Option<Usage> {
        None
    }
    fn content_events(&self) -> i64 {
        0
    }
    fn content_type(&self) -> &'static str {
        "application/json"
    }
}
