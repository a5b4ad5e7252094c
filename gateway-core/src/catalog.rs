//! The price catalog: what cloud models cost and how long their context is, in LiteLLM's
//! `model_prices_and_context_window.json` format. One ships with the binary
//! (`data/price-catalog.json`, its source and date in the `_burncloud_catalog` entry);
//! `burncloud price sync` reads a newer file of the same format. The owner's own prices and
//! ratios always win over it (see [`crate::snapshot::Snapshot::tariff`]).

use serde_json::Value;

use crate::vocab::Rates;

/// The catalog shipped with this build.
pub const SHIPPED: &str = include_str!("../data/price-catalog.json");

/// One model of the catalog; money in nano-dollars per 1M tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub model: String,
    pub provider: String,
    pub mode: String,
    pub rates: Rates,
    pub context_length: Option<i64>,
    pub max_output_tokens: Option<i64>,
}

/// A parsed catalog file.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Where it came from (the shipped file's own note, or the file/URL synced).
    pub source: String,
    pub entries: Vec<CatalogEntry>,
}

/// USD per token → nano-dollars per 1M tokens (1e6 tokens × 1e9 nano).
fn per_million_nano(v: &Value) -> Option<i64> {
    let usd = v.as_f64()?;
    (usd.is_finite() && usd >= 0.0).then(|| (usd * 1e15).round() as i64)
}

fn count(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64).filter(|n| *n > 0)
}

/// Parse LiteLLM's format: an object of model → `{input_cost_per_token,
/// output_cost_per_token, cache_read_input_token_cost, cache_creation_input_token_cost,
/// max_input_tokens, max_output_tokens, litellm_provider, mode}`. Entries without a
/// numeric input price (LiteLLM's `sample_spec`, image or audio models) are skipped.
pub fn parse(text: &str, source: &str) -> Result<Catalog, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON catalog: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("not a LiteLLM price catalog: expected a JSON object of models")?;
    let mut entries = Vec::new();
    for (model, e) in obj {
        let Some(input) = e.get("input_cost_per_token").and_then(per_million_nano) else {
            continue;
        };
        let mode = e.get("mode").and_then(Value::as_str).unwrap_or("chat");
        if !matches!(mode, "chat" | "completion" | "responses" | "embedding") {
            continue;
        }
        entries.push(CatalogEntry {
            model: model.clone(),
            provider: e
                .get("litellm_provider")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            mode: mode.to_string(),
            rates: Rates {
                input,
                output: e
                    .get("output_cost_per_token")
                    .and_then(per_million_nano)
                    .unwrap_or(0),
                cache_read: e
                    .get("cache_read_input_token_cost")
                    .and_then(per_million_nano),
                cache_write: e
                    .get("cache_creation_input_token_cost")
                    .and_then(per_million_nano),
            },
            context_length: count(e.get("max_input_tokens")).or(count(e.get("max_tokens"))),
            max_output_tokens: count(e.get("max_output_tokens")),
        });
    }
    if entries.is_empty() {
        return Err("the catalog holds no priced model: is it LiteLLM's model_prices_and_context_window.json?".into());
    }
    let source = obj
        .get("_burncloud_catalog")
        .and_then(|m| {
            Some(format!(
                "{} ({})",
                m.get("source")?.as_str()?,
                m.get("date")?.as_str()?
            ))
        })
        .unwrap_or_else(|| source.to_string());
    Ok(Catalog { source, entries })
}

/// The shipped catalog.
pub fn shipped() -> Catalog {
    parse(SHIPPED, "shipped").expect("the shipped catalog parses (checked by a test)")
}

/// Provider prefixes LiteLLM puts before model names (`xai/grok-4`): a channel asks for
/// the bare name, so the bare name finds the entry too.
const PREFIXES: &[&str] = &[
    "openai/",
    "anthropic/",
    "gemini/",
    "vertex_ai/",
    "azure/",
    "bedrock/",
    "deepseek/",
    "mistral/",
    "xai/",
    "groq/",
];

/// The names an entry answers to: its own, and without a provider prefix.
pub fn names(model: &str) -> impl Iterator<Item = &str> {
    let bare = PREFIXES.iter().find_map(|p| model.strip_prefix(p));
    std::iter::once(model).chain(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_covers_every_provider_with_cache_prices_and_windows() {
        let c = shipped();
        assert!(
            c.source.contains("litellm") && c.source.contains("2026"),
            "{}",
            c.source
        );
        let find = |m: &str| c.entries.iter().find(|e| e.model == m).cloned();
        let mini = find("gpt-4o-mini").expect("gpt-4o-mini");
        // $0.15 / $0.60 per 1M tokens, cached input $0.075.
        assert_eq!(mini.rates.input, 150_000_000);
        assert_eq!(mini.rates.output, 600_000_000);
        assert_eq!(mini.rates.cache_read, Some(75_000_000));
        assert_eq!(mini.context_length, Some(128_000));
        let sonnet = find("claude-sonnet-4-5").expect("claude-sonnet-4-5");
        assert_eq!(sonnet.rates.cache_write, Some(3_750_000_000));
        for provider in [
            "openai",
            "anthropic",
            "gemini",
            "azure",
            "bedrock",
            "deepseek",
            "mistral",
            "xai",
            "groq",
        ] {
            assert!(
                c.entries.iter().any(|e| e.provider.starts_with(provider)),
                "no {provider} model"
            );
        }
    }

    #[test]
    fn litellm_entries_that_are_not_text_models_are_skipped() {
        let text = r#"{
            "sample_spec": {"input_cost_per_token": "0.0", "mode": "one of: chat"},
            "dall-e-3": {"input_cost_per_token": 0.0, "mode": "image_generation"},
            "xai/grok-9": {"input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05,
                           "litellm_provider": "xai", "mode": "chat", "max_input_tokens": 256000}
        }"#;
        let c = parse(text, "test.json").unwrap();
        assert_eq!(c.source, "test.json");
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.entries[0].rates.input, 2_000_000_000);
        assert_eq!(
            names("xai/grok-9").collect::<Vec<_>>(),
            ["xai/grok-9", "grok-9"]
        );
        assert!(parse("[]", "x").is_err());
        assert!(parse("{}", "x").unwrap_err().contains("no priced model"));
    }
}
