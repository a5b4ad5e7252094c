//! The words the rest of the gateway shares, with no knowledge of any of it: usage, prices,
//! the data plane's error shape, time. A leaf: it imports nothing from the crate (checked
//! by `tests/module_graph.rs`), so every layer can use it.

mod error;
mod time;
mod usage;

pub use error::OpenAiError;
pub use time::{now_ms, now_secs, seconds_to_next_minute};
pub(crate) use usage::{RawUsage, WithUsage};
pub use usage::{Usage, usage_from_json, usage_from_value};

/// Prices of one model per 1M tokens, in nano-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    pub input: i64,
    pub output: i64,
    pub cache_read: Option<i64>,
    pub cache_write: Option<i64>,
}

/// The `status` column of channels, users and keys (numbered as New API numbers them, so
/// exported configurations carry over).
pub mod status {
    /// In use.
    pub const ENABLED: i64 = 1;
    /// Switched off, by a person or automatically (a channel whose key was rejected).
    pub const DISABLED: i64 = 2;
}
