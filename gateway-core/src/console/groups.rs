//! User groups and their price ratios.

use serde::Deserialize;

use super::{ApiError, Session};
use crate::state::Shared;
use crate::store::groups::{self, Group};
use crate::tariff::ratio_from_f64;

/// A group's price ratio and description (`PUT /console/api/groups/{name}`).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// Price multiplier, e.g. 1.0 (required).
    pub ratio: Option<f64>,
    /// Absent: keep the current one.
    pub description: Option<String>,
}

/// Create or change the group `name` as the admin `by`. The JSON API and the consoles both
/// save groups through this.
pub async fn set_group(
    state: &Shared,
    by: &Session,
    name: &str,
    body: GroupBody,
) -> Result<Group, ApiError> {
    by.require_admin()?;
    let ratio = body.ratio.ok_or_else(|| {
        ApiError::bad_request("missing field: ratio (price multiplier, e.g. 1.0)")
    })?;
    let ratio = ratio_from_f64(ratio).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let name = name.to_string();
    let g = state
        .store
        .run(move |c| groups::set(c, &name, ratio, body.description.as_deref()))
        .await?;
    state.config_changed().await;
    Ok(g)
}

/// Delete the group `name` as the admin `by`: never `default`, never one that has users.
pub async fn delete_group(state: &Shared, by: &Session, name: &str) -> Result<(), ApiError> {
    by.require_admin()?;
    let n = name.to_string();
    state.store.run(move |c| groups::delete(c, &n)).await?;
    state.config_changed().await;
    Ok(())
}
