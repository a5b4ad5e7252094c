//! Token usage of one request, and reading it from OpenAI-shaped JSON (`usage` objects).

use serde::Deserialize;

/// Token usage of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: i64,
    pub completion: i64,
    /// Prompt tokens served from the provider's cache (billed at `cache_read` when priced).
    pub cached: i64,
    /// Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens).
    pub cache_write: i64,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<i64>,
    /// Written by the gateway's own adaptors (Anthropic's cache_creation_input_tokens).
    #[serde(default)]
    cache_creation_tokens: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<i64>,
    #[serde(default)]
    completion_tokens: Option<i64>,
    #[serde(default)]
    total_tokens: Option<i64>,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
}

impl RawUsage {
    pub(crate) fn into_usage(self) -> Option<Usage> {
        let prompt = self.prompt_tokens?;
        let completion = self
            .completion_tokens
            .or_else(|| self.total_tokens.map(|t| (t - prompt).max(0)))
            .unwrap_or(0);
        let details = self.prompt_tokens_details;
        Some(Usage {
            prompt,
            completion,
            cached: details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write: details
                .as_ref()
                .and_then(|d| d.cache_creation_tokens)
                .unwrap_or(0),
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct WithUsage {
    #[serde(default)]
    pub(crate) usage: Option<RawUsage>,
    #[serde(default)]
    pub(crate) choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// Usage from a parsed chunk or response (`usage` object in OpenAI's shape).
pub fn usage_from_value(v: &serde_json::Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    serde_json::from_value::<RawUsage>(u.clone())
        .ok()?
        .into_usage()
}

/// Usage from a complete OpenAI JSON body (chat, completions, embeddings).
pub fn usage_from_json(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage?
        .into_usage()
}
