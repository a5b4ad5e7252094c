//! Channel types, numbered as New API numbers them so configurations carry over.

/// How the data plane talks to a channel's upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI wire format, forwarded as is ("don't touch the body").
    OpenAi,
    /// Azure OpenAI: deployment URLs, `api-version`, `api-key` header.
    Azure,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
    /// AWS Bedrock (Claude) with SigV4.
    Bedrock,
    /// Google Vertex AI: a service account's OAuth token, Gemini and Claude models.
    Vertex,
}

/// One row of the channel type table.
#[derive(Debug, Clone, Copy)]
pub struct ChannelType {
    pub id: i64,
    pub name: &'static str,
    pub protocol: Protocol,
    /// Base URL used when the channel leaves `base_url` empty (`None`: the user must give one).
    pub default_base_url: Option<&'static str>,
    /// Whether channels of this type are local by default.
    pub local_by_default: bool,
}

const fn t(
    id: i64,
    name: &'static str,
    protocol: Protocol,
    default_base_url: Option<&'static str>,
    local_by_default: bool,
) -> ChannelType {
    ChannelType {
        id,
        name,
        protocol,
        default_base_url,
        local_by_default,
    }
}

/// Every supported channel type.
pub const CHANNEL_TYPES: &[ChannelType] = &[
    t(
        1,
        "OpenAI / OpenAI-compatible",
        Protocol::OpenAi,
        Some("https://api.openai.com"),
        false,
    ),
    t(3, "Azure OpenAI", Protocol::Azure, None, false),
    t(
        4,
        "Ollama",
        Protocol::OpenAi,
        Some("http://127.0.0.1:11434"),
        true,
    ),
    t(
        14,
        "Anthropic",
        Protocol::Anthropic,
        Some("https://api.anthropic.com"),
        false,
    ),
    t(
        17,
        "Ali / Qwen",
        Protocol::OpenAi,
        Some("https://dashscope.aliyuncs.com/compatible-mode"),
        false,
    ),
    t(
        20,
        "OpenRouter",
        Protocol::OpenAi,
        Some("https://openrouter.ai/api"),
        false,
    ),
    t(
        24,
        "Google Gemini",
        Protocol::Gemini,
        Some("https://generativelanguage.googleapis.com"),
        false,
    ),
    t(33, "AWS Bedrock (Claude)", Protocol::Bedrock, None, false),
    t(
        41,
        "Google Vertex AI",
        Protocol::Vertex,
        Some("https://us-central1-aiplatform.googleapis.com"),
        false,
    ),
    t(
        42,
        "Mistral",
        Protocol::OpenAi,
        Some("https://api.mistral.ai"),
        false,
    ),
    t(
        43,
        "DeepSeek",
        Protocol::OpenAi,
        Some("https://api.deepseek.com"),
        false,
    ),
    t(48, "xAI", Protocol::OpenAi, Some("https://api.x.ai"), false),
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
        assert_eq!(channel_type(14).unwrap().protocol, Protocol::Anthropic);
        assert!(channel_type(4).unwrap().local_by_default);
        assert!(channel_type(2).is_none());
    }
}
