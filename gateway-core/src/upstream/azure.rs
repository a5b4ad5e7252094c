//! Azure OpenAI (channel type 3): the OpenAI wire format on deployment URLs
//! (`{resource}/openai/deployments/{deployment}/chat/completions?api-version=…`) with an
//! `api-key` header. <https://learn.microsoft.com/azure/ai-services/openai/reference>.
//!
//! The channel's base URL is either the resource endpoint (`https://NAME.openai.azure.com`;
//! the deployment is then the upstream model name, so model mapping maps models to
//! deployments) or a full deployment URL (`…/openai/deployments/NAME`). An `api-version`
//! query on the base URL wins over [`DEFAULT_API_VERSION`].

use axum::http::{HeaderMap, HeaderValue};

use super::{Answer, Call, CallError, Decode, Request, Target, Upstream};
use crate::wire::openai::upstream_body;

/// Azure OpenAI.
pub struct Azure;

impl Upstream for Azure {
    fn name(&self) -> &'static str {
        "Azure OpenAI"
    }

    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError> {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(t.key) {
            headers.insert("api-key", v);
        }
        let url = url(t.base_url, r.model, r.ep.openai_path());
        let body = upstream_body(r.canonical, r.info, r.model);
        Ok(Call::new(url, headers, body, "azure").streaming(r.info.stream))
    }

    fn answer(&self, _a: &Answer<'_>) -> Decode {
        Decode::OpenAi
    }
}

/// The GA version used when the channel does not name one (supports `stream_options`).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The request URL for an OpenAI path (`/v1/chat/completions`, `/v1/embeddings`, …).
pub fn url(base_url: &str, deployment: &str, openai_path: &str) -> String {
    let (base, query) = base_url.split_once('?').unwrap_or((base_url, ""));
    let base = base.trim_end_matches('/');
    let version = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_API_VERSION);
    let op = openai_path.strip_prefix("/v1/").unwrap_or(openai_path);
    if base.contains("/openai/deployments/") {
        format!("{base}/{op}?api-version={version}")
    } else {
        let deployment: String = url_escape(deployment);
        format!("{base}/openai/deployments/{deployment}/{op}?api-version={version}")
    }
}

/// Deployment names are letters, digits, `-`, `_` and `.`; anything else is escaped.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_and_deployment_urls() {
        assert_eq!(
            url(
                "https://res.openai.azure.com",
                "gpt-4o",
                "/v1/chat/completions"
            ),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            url(
                "https://res.openai.azure.com/openai/deployments/prod-4o?api-version=2025-01-01-preview",
                "ignored",
                "/v1/embeddings"
            ),
            "https://res.openai.azure.com/openai/deployments/prod-4o/embeddings?api-version=2025-01-01-preview"
        );
        assert_eq!(
            url("http://h", "a b/c", "/v1/completions"),
            "http://h/openai/deployments/a%20b%2Fc/completions?api-version=2024-10-21"
        );
    }
}
