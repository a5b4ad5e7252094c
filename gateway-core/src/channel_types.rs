//! Channel types, numbered as New API numbers them so configurations carry over. Each
//! row names the [`Upstream`] that speaks to its provider.

use crate::upstream::Upstream;
use crate::upstream::anthropic::Anthropic;
use crate::upstream::azure::Azure;
use crate::upstream::bedrock::Bedrock;
use crate::upstream::gemini::Gemini;
use crate::upstream::openai::OpenAi;
use crate::upstream::vertex::Vertex;

/// One row of the channel type table.
#[derive(Clone, Copy)]
pub struct ChannelType {
    pub id: i64,
    pub name: &'static str,
    /// How the data plane talks to the provider.
    pub upstream: &'static dyn Upstream,
    /// Base URL used when the channel leaves `base_url` empty (`None`: the user must give one).
    pub default_base_url: Option<&'static str>,
    /// Whether channels of this type are local by default.
    pub local_by_default: bool,
}

const fn t(
    id: i64,
    name: &'static str,
    upstream: &'static dyn Upstream,
    default_base_url: Option<&'static str>,
    local_by_default: bool,
) -> ChannelType {
    ChannelType {
        id,
        name,
        upstream,
        default_base_url,
        local_by_default,
    }
}

impl ChannelType {
    /// Whether its provider lists the models a key may use (the desktop's one-step
    /// connect and the channel's Models button need it).
    pub fn lists_models(&self) -> bool {
        self.upstream.lists_models()
    }
}

impl std::fmt::Debug for ChannelType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelType")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("upstream", &self.upstream)
            .finish()
    }
}

/// Every supported channel type.
pub const CHANNEL_TYPES: &[ChannelType] = &[
    t(
        1,
        "OpenAI / OpenAI-compatible",
        &OpenAi,
        Some("https://api.openai.com"),
        false,
    ),
    t(3, "Azure OpenAI", &Azure, None, false),
    t(4, "Ollama", &OpenAi, Some("http://127.0.0.1:11434"), true),
    t(
        14,
        "Anthropic",
        &Anthropic,
        Some("https://api.anthropic.com"),
        false,
    ),
    t(
        17,
        "Ali / Qwen",
        &OpenAi,
        Some("https://dashscope.aliyuncs.com/compatible-mode"),
        false,
    ),
    t(
        20,
        "OpenRouter",
        &OpenAi,
        Some("https://openrouter.ai/api"),
        false,
    ),
    t(
        24,
        "Google Gemini",
        &Gemini,
        Some("https://generativelanguage.googleapis.com"),
        false,
    ),
    t(33, "AWS Bedrock (Claude)", &Bedrock, None, false),
    t(
        41,
        "Google Vertex AI",
        &Vertex,
        Some("https://us-central1-aiplatform.googleapis.com"),
        false,
    ),
    t(
        42,
        "Mistral",
        &OpenAi,
        Some("https://api.mistral.ai"),
        false,
    ),
    t(
        43,
        "DeepSeek",
        &OpenAi,
        Some("https://api.deepseek.com"),
        false,
    ),
    t(48, "xAI", &OpenAi, Some("https://api.x.ai"), false),
];

/// Look a type up by its number.
pub fn channel_type(id: i64) -> Option<&'static ChannelType> {
    CHANNEL_TYPES.iter().find(|t| t.id == id)
}

/// Normalise a base URL: no trailing slash, no trailing `/v1` (the relay adds the API path).
pub fn normalize_base_url(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/').to_string();
    if let Some(stripped) = u.strip_suffix("/v1") {
        u = stripped.to_string();
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            normalize_base_url("https://api.openai.com/"),
            "https://api.openai.com"
        );
        assert_eq!(
            normalize_base_url("https://openrouter.ai/api/v1"),
            "https://openrouter.ai/api"
        );
        assert_eq!(
            normalize_base_url(" http://127.0.0.1:8080/v1/ "),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn known_types() {
        assert_eq!(channel_type(14).unwrap().upstream.name(), "Anthropic");
        assert!(channel_type(4).unwrap().local_by_default);
        assert!(channel_type(2).is_none());
    }
}
