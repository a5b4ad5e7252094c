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
