//! Protocol adaptors: "all to OpenAI" in both directions. The relay's canonical format is
//! OpenAI chat completions. An ingress in another format is converted into it on the way
//! in; an upstream in another format gets the canonical request converted into its own.
//! Answers flow back through a [`Pipeline`] of [`Stage`]s (upstream format → OpenAI →
//! client format) event by event as the stream arrives, never buffered whole. A client and
//! an upstream that speak the same non-OpenAI format are passed through (observed only).
//!
//! - [`anthropic`]: Anthropic Messages ingress (`/v1/messages`) ⇄ OpenAI chat.
//! - [`anthropic_up`]: Anthropic Messages upstreams (channel type 14) ⇄ OpenAI chat.
//! - [`azure`]: Azure OpenAI deployments (channel type 3): OpenAI's format, Azure's URLs.
//! - [`bedrock`]: AWS Bedrock Claude (channel type 33): SigV4, event-stream frames.
//! - [`conversion`]: what an ingress conversion dropped or renamed (tools), system hoisting.
//! - [`gemini`]: Google Gemini `generateContent` upstreams (channel type 24) ⇄ OpenAI chat.
//! - [`ollama`]: Ollama's API ingress (`/api/chat`, `/api/generate`, `/api/embed`) ⇄ OpenAI.
//! - [`responses`]: OpenAI Responses ingress (`/v1/responses`, Codex CLI) ⇄ OpenAI chat.
//! - [`responses_up`]: Responses passthrough to upstreams that serve `/v1/responses`.
//! - [`sse`]: server-sent event framing.
//! - [`vertex`]: Google Vertex AI (channel type 41): service-account tokens, Gemini and
//!   Claude models in Gemini's and Anthropic's formats.

pub mod anthropic;
pub mod anthropic_up;
pub mod azure;
pub mod bedrock;
pub mod conversion;
pub mod gemini;
pub mod ollama;
pub mod passthrough;
pub mod responses;
pub mod responses_up;
pub mod sse;
pub mod vertex;

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

/// The wire format of an upstream channel (recorded in each log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAi,
    /// An OpenAI-format upstream's own Responses API (passthrough).
    OpenAiResponses,
    Azure,
    Anthropic,
    Gemini,
    Bedrock,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::OpenAiResponses => "openai-responses",
            Format::Azure => "azure",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::Bedrock => "bedrock",
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
    pub fn with_first(mut self, stage: Box<dyn Stage>) -> Self {
        self.stages.insert(0, stage);
        self
    }

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
        let body = anthropic_up::openai_error(self.status, &self.buf);
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
