//! Protocol adaptors: "all to OpenAI" in both directions. The relay's canonical format is
//! OpenAI chat completions; an ingress in another format is converted into it on the way
//! in and its answer converted back on the way out (as the stream arrives, event by
//! event, never buffered whole).
//!
//! - [`anthropic`]: Anthropic Messages ⇄ OpenAI chat.
//! - [`sse`]: server-sent event framing.

pub mod anthropic;
pub mod sse;

use serde_json::Value;

use crate::relay::{Usage, usage_from_value};

/// The wire format a client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// OpenAI chat / completions / embeddings.
    OpenAi,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
}

impl Ingress {
    pub fn as_str(self) -> &'static str {
        match self {
            Ingress::OpenAi => "openai",
            Ingress::Anthropic => "anthropic",
        }
    }
}

enum Kind {
    /// OpenAI SSE chunks → Anthropic events.
    AnthropicStream {
        splitter: sse::Splitter,
        encoder: anthropic::MessagesEncoder,
        ended: bool,
    },
    /// A whole OpenAI JSON answer → an Anthropic message (or error).
    AnthropicJson { buf: Vec<u8>, model: String },
}

/// Converts an upstream's OpenAI-format answer into the client's format as it arrives,
/// reading usage on the way.
pub struct ToClient {
    kind: Kind,
    status: u16,
    usage: Option<Usage>,
    content_events: i64,
}

/// Largest non-streamed answer converted (larger ones are refused, not truncated).
const MAX_JSON: usize = 32 * 1024 * 1024;

impl ToClient {
    /// For an Anthropic client: `stream` when the upstream answers with SSE; `model` is the
    /// name the client asked for.
    pub fn anthropic(stream: bool, status: u16, model: &str) -> Self {
        let kind = if stream && (200..300).contains(&status) {
            Kind::AnthropicStream {
                splitter: sse::Splitter::default(),
                encoder: anthropic::MessagesEncoder::new(model),
                ended: false,
            }
        } else {
            Kind::AnthropicJson {
                buf: Vec::new(),
                model: model.to_string(),
            }
        };
        ToClient {
            kind,
            status,
            usage: None,
            content_events: 0,
        }
    }

    /// The Content-Type of what this writes.
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::AnthropicStream { .. } => "text/event-stream",
            Kind::AnthropicJson { .. } => "application/json",
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Content events seen (for estimating usage when the upstream sent none).
    pub fn content_events(&self) -> i64 {
        self.content_events
    }

    /// Upstream bytes in; client bytes appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match &mut self.kind {
            Kind::AnthropicStream {
                splitter,
                encoder,
                ended,
            } => {
                let mut events = Vec::new();
                splitter.feed(chunk, &mut events);
                for e in events {
                    if *ended {
                        break;
                    }
                    if e.data == b"[DONE]" {
                        *ended = true;
                        encoder.finish(self.usage.as_ref(), out);
                        continue;
                    }
                    let Ok(v) = serde_json::from_slice::<Value>(&e.data) else {
                        continue;
                    };
                    if let Some(u) = usage_from_value(&v) {
                        self.usage = Some(u);
                    }
                    if v.get("error").is_some() {
                        let msg = v["error"]["message"].as_str().unwrap_or("upstream error");
                        encoder.error(msg, out);
                        *ended = true;
                        continue;
                    }
                    if v["choices"].as_array().is_some_and(|c| !c.is_empty()) {
                        self.content_events += 1;
                        encoder.chunk(&v, out);
                    }
                }
            }
            Kind::AnthropicJson { buf, .. } => {
                if buf.len() + chunk.len() <= MAX_JSON {
                    buf.extend_from_slice(chunk);
                }
            }
        }
    }

    /// The upstream ended; the rest of the client's answer is appended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match &mut self.kind {
            Kind::AnthropicStream {
                splitter,
                encoder,
                ended,
            } => {
                let mut events = Vec::new();
                splitter.finish(&mut events);
                if !*ended {
                    *ended = true;
                    encoder.finish(self.usage.as_ref(), out);
                }
            }
            Kind::AnthropicJson { buf, model } => {
                let body = if (200..300).contains(&self.status) {
                    match serde_json::from_slice::<Value>(buf) {
                        Ok(v) => {
                            self.usage = usage_from_value(&v);
                            anthropic::chat_to_message(&v, model, self.usage.as_ref())
                        }
                        Err(_) => {
                            anthropic::error_body(502, "the upstream's answer was not valid JSON")
                        }
                    }
                } else {
                    anthropic::convert_error(self.status, buf)
                };
                let _ = serde_json::to_writer(&mut *out, &body);
            }
        }
    }

    /// The upstream failed mid-answer.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if let Kind::AnthropicStream { encoder, ended, .. } = &mut self.kind
            && !*ended
        {
            *ended = true;
            encoder.error(message, out);
        }
    }
}
