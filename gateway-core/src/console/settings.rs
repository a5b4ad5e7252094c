//! Run-time settings the consoles change: burst routing (a patch over the environment's
//! settings, saved in the database).

use serde_json::{Map, Value};

use super::{ApiError, Session};
use crate::burst::{self, BURST_SETTINGS_KEY, BurstSettings};
use crate::state::Shared;
use crate::store::settings;

/// The burst settings in effect.
pub fn burst_settings(state: &Shared) -> BurstSettings {
    state.relay.burst.policy.load().settings.clone()
}

/// The fields the consoles changed (the rest come from the environment or the defaults).
pub async fn saved_burst(state: &Shared) -> Result<Map<String, Value>, ApiError> {
    let raw = state
        .store
        .run(|c| settings::get(c, BURST_SETTINGS_KEY))
        .await?;
    Ok(raw
        .and_then(|r| serde_json::from_str::<Value>(&r).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default())
}

/// Change some burst fields as the admin `by`; `null` returns a field to its environment
/// or default value. The whole result is checked before anything is saved. Returns the
/// saved fields.
pub async fn change_burst(
    state: &Shared,
    by: &Session,
    fields: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    by.require_admin()?;
    let mut patch = saved_burst(state).await?;
    for (k, v) in fields {
        if v.is_null() {
            patch.remove(&k);
        } else {
            patch.insert(k, v);
        }
    }
    let patch = Value::Object(patch);
    burst::apply_patch(&state.relay.burst.base, &patch).map_err(ApiError::bad_request)?;
    let text = patch.to_string();
    state
        .store
        .run(move |c| settings::set(c, BURST_SETTINGS_KEY, &text))
        .await?;
    state.config_changed().await;
    let Value::Object(patch) = patch else {
        unreachable!("built as an object")
    };
    Ok(patch)
}

/// Forget every console change: back to the environment's settings.
pub async fn reset_burst(state: &Shared, by: &Session) -> Result<(), ApiError> {
    by.require_admin()?;
    state
        .store
        .run(|c| settings::set(c, BURST_SETTINGS_KEY, "{}"))
        .await?;
    state.config_changed().await;
    Ok(())
}
