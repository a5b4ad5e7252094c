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

/// A model a key may ask for, and whether it is answered on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedModel {
    pub name: String,
    /// Every channel serving it runs on this machine (a library model, or channels marked
    /// `local`).
    pub local: bool,
}

/// The models `key` may use now, as `/v1/models` lists them (empty for an unknown,
/// disabled or expired key), each marked local or cloud.
pub fn served_models(state: &Shared, key: &str) -> Vec<ServedModel> {
    let snap = state.snapshot.load();
    let Some(token) = snap.tokens.get(&hash_key(key)) else {
        return Vec::new();
    };
    let Some(group) = snap.token_group(token) else {
        return Vec::new();
    };
    snap.models_for(group, |m| {
        token.models.is_empty() || token.models.contains(m)
    })
    .into_iter()
    .map(|name| {
        let canonical = snap.aliases.get(&name).unwrap_or(&name);
        let local = snap.jit_models.contains_key(canonical)
            || snap.tiers(group, canonical).is_some_and(|tiers| {
                tiers
                    .iter()
                    .flat_map(|t| &t.members)
                    .all(|(id, _)| snap.channels.get(id).is_some_and(|c| c.locality == "local"))
            });
        ServedModel { name, local }
    })
    .collect()
}

/// The account a key belongs to (None: unknown key).
pub fn key_owner(state: &Shared, key: &str) -> Option<String> {
    state
        .snapshot
        .load()
        .tokens
        .get(&hash_key(key))
        .map(|t| t.user_id.clone())
}
