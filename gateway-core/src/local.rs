//! The seam to the local runtime: gateway-core knows that some channels are local models
//! a supervisor can start on demand, not how (llama-manager implements [`LocalRuntime`],
//! the app wires it in with [`crate::AppState::set_local_runtime`]).

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The channel (and model) name of library model `id` while it is deployed.
pub fn channel_name(model_id: i64) -> String {
    format!("local-{model_id}")
}

/// The stable readable name a library model also answers to: `local-<slug of its name>`
/// (seed 003's `local-Qwen2.5-7B-Instruct`): letters, digits, `.`, `_` and `-` kept, other
/// runs of characters become one `-`. `None` when nothing is left or it would look like
/// a `local-<id>` name.
pub fn readable_name(model_name: &str) -> Option<String> {
    let mut slug = String::with_capacity(model_name.len());
    for ch in model_name.chars() {
        if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-') {
            slug.push(ch);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() || slug.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!("local-{slug}"))
}

/// Why a local model could not be made ready.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnsureError {
    /// It failed to start; the message says why (port busy, out of memory, ...).
    #[error("{0}")]
    Failed(String),
    /// The deployment is unknown or not startable on demand.
    #[error("{0}")]
    Unavailable(String),
}

/// What the data plane needs from the local runtime.
pub trait LocalRuntime: Send + Sync + 'static {
    /// Start library model `model_id`'s deployment unless it runs, and resolve once its
    /// `local-<id>` channel is registered and in the routing snapshot. Concurrent callers
    /// share one start. Dropping the future does not cancel the start.
    fn ensure_running(&self, model_id: i64) -> BoxFuture<'_, Result<(), EnsureError>>;
}

#[cfg(test)]
mod readable_name_tests {
    use super::readable_name;

    #[test]
    fn slugs() {
        assert_eq!(
            readable_name("Qwen2.5-7B-Instruct").as_deref(),
            Some("local-Qwen2.5-7B-Instruct")
        );
        assert_eq!(readable_name("tiny sdk").as_deref(), Some("local-tiny-sdk"));
        assert_eq!(readable_name("a / b??").as_deref(), Some("local-a-b"));
        assert_eq!(readable_name("42"), None);
        assert_eq!(readable_name("  "), None);
    }
}
