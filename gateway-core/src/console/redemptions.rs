//! Redemption codes: batches made by admins, revoked.

use serde::Deserialize;

use super::{ApiError, Session};
use crate::money::usd_from_f64;
use crate::state::Shared;
use crate::store::redemptions::{self, Redemption};

/// A batch of codes (`POST /console/api/redemptions`).
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub name: Option<String>,
    pub amount_usd: Option<f64>,
    /// Default 1.
    pub count: Option<i64>,
    /// Unix seconds; -1 or absent: never.
    pub expires_at: Option<i64>,
}

/// Generate a batch of codes as the admin `by`. The JSON API and the consoles both create
/// codes through this.
pub async fn create_redemptions(
    state: &Shared,
    by: &Session,
    body: BatchBody,
) -> Result<Vec<Redemption>, ApiError> {
    by.require_admin()?;
    let name = body
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("missing field: name"))?;
    let amount = body
        .amount_usd
        .ok_or_else(|| ApiError::bad_request("missing field: amount_usd"))?;
    if amount <= 0.0 {
        return Err(ApiError::bad_request("amount_usd must be more than 0"));
    }
    let amount = usd_from_f64(amount)?;
    let count = body.count.unwrap_or(1);
    let expires_at = body.expires_at.unwrap_or(-1);
    let id = by.user.id.clone();
    let batch = state
        .store
        .run(move |c| redemptions::create_batch(c, &name, amount, count, expires_at, Some(&id)))
        .await?;
    tracing::info!(count = batch.len(), by = %by.user.username, "redemption codes created");
    Ok(batch)
}

/// Delete (revoke) the code `id` as the admin `by`.
pub async fn delete_redemption(state: &Shared, by: &Session, id: i64) -> Result<(), ApiError> {
    by.require_admin()?;
    state.store.run(move |c| redemptions::delete(c, id)).await?;
    Ok(())
}
