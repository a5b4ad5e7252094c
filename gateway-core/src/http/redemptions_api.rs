//! `/console/api/redemptions`: admins generate batches of codes and export them.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::channels_api::parse_id;
use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::console::redemptions::{BatchBody, create_redemptions, delete_redemption};
use crate::money::nano_to_usd;
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
