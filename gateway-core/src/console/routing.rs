//! What the data plane serves right now, read from the routing snapshot (no database
//! access), for the consoles' pages.

use crate::auth::hash_key;
use crate::state::Shared;

pub use crate::snapshot::OLLAMA_KEYLESS_TOKEN;

/// Whether any group is served `model` (a model or an alias).
pub fn model_exists(state: &Shared, model: &str) -> bool {
    state.snapshot.load().model_exists(model)
}

/// One model the `default` group may use (for the dashboard's examples).
pub fn example_model(state: &Shared) -> Option<String> {
    state
        .snapshot
        .load()
        .group_models
        .get("default")
        .and_then(|m| m.iter().next().cloned())
}

/// The key keyless Ollama requests from this machine use, if the setting names one.
pub fn ollama_keyless_token(state: &Shared) -> Option<i64> {
    state.snapshot.load().ollama_keyless_token
}

/// Whether unpriced cloud models may be used by accounts with a balance.
pub fn allow_unpriced_cloud(state: &Shared) -> bool {
    state.snapshot.load().allow_unpriced_cloud
}

/// Today's cloud spend (nano-USD) as burst routing counts it against the daily budget.
pub fn cloud_spend_today_nano(state: &Shared) -> i64 {
    state.relay.burst.spend.today(crate::vocab::now_ms())
}

/// Whether the data plane accepts an `sk-` key now (it is in the routing snapshot).
pub fn key_accepted(state: &Shared, key: &str) -> bool {
    state.snapshot.load().tokens.contains_key(&hash_key(key))
}

/// Whether the data plane keeps a key's requests on this machine (`None`: unknown key).
pub fn key_local_only(state: &Shared, key: &str) -> Option<bool> {
    let snap = state.snapshot.load();
    snap.tokens.get(&hash_key(key)).map(|t| t.local_only)
}

/// Whether the data plane has a price (or an alias's) for a model.
pub fn priced(state: &Shared, model: &str) -> bool {
    state.snapshot.load().prices.contains_key(model)
}
