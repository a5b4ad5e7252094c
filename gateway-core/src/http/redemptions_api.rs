//! `/console/api/redemptions`: admins generate batches of codes and export them.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::channels_api::parse_id;
use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::money::{nano_to_usd, usd_from_f64};
use crate::store::now_secs;
use crate::store::redemptions::{self, Redemption};

pub fn view(r: &Redemption, now: i64) -> Value {
    json!({
        "id": r.id,
        "code": r.code,
        "name": r.name,
        "amount_usd": nano_to_usd(r.amount_nano),
        "state": r.state(now),
        "created_by": r.created_by,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "redeemed_by": r.redeemed_by,
        "redeemed_at": r.redeemed_at,
    })
}

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

pub async fn create(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult {
    let batch = create_redemptions(&state, &session, body).await?;
    let now = now_secs();
    Ok(ok(json!({
        "codes": batch.iter().map(|r| r.code.clone()).collect::<Vec<_>>(),
        "items": batch.iter().map(|r| view(r, now)).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// `unused`: only codes that can still be redeemed.
    state: Option<String>,
}

pub async fn list(
    State(state): State<Shared>,
    session: Session,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    session.require_admin()?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let only_unused = match q.state.as_deref() {
        None | Some("") | Some("all") => false,
        Some("unused") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "state must be unused or all, not '{other}'"
            )));
        }
    };
    let list = state
        .store
        .run(move |c| redemptions::list(c, only_unused))
        .await?;
    let now = now_secs();
    Ok(ok(list.iter().map(|r| view(r, now)).collect::<Vec<_>>()))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    session.require_admin()?;
    let id = parse_id(&id)?;
    delete_redemption(&state, &session, id).await?;
    Ok(ok(json!({"id": id})))
}
