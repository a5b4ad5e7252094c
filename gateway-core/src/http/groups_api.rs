//! `/console/api/groups`: user groups and their price ratio (admins change them; everyone
//! may read them, since the ratio is part of what they pay).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::store::groups::{self, Group};
use crate::tariff::{ratio_from_f64, ratio_to_f64};

pub fn view(g: &Group) -> Value {
    json!({
        "name": g.name,
        "ratio": ratio_to_f64(g.ratio_micro),
        "description": g.description,
        "users": g.users,
        "updated_at": g.updated_at,
    })
}

pub async fn list(State(state): State<Shared>, _session: Session) -> ApiResult {
    let list = state.store.run(|c| groups::list(c)).await?;
    Ok(ok(list.iter().map(view).collect::<Vec<_>>()))
}

pub async fn get_one(
    State(state): State<Shared>,
    _session: Session,
    Path(name): Path<String>,
) -> ApiResult {
    let n = name.clone();
    let g = state
        .store
        .run(move |c| groups::get(c, &n))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group '{name}'")))?;
    Ok(ok(view(&g)))
}

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

pub async fn put(
    State(state): State<Shared>,
    session: Session,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GroupBody>,
) -> ApiResult {
    let g = set_group(&state, &session, &name, body).await?;
    Ok(ok(view(&g)))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(name): Path<String>,
) -> ApiResult {
    delete_group(&state, &session, &name).await?;
    Ok(ok(json!({"name": name})))
}
