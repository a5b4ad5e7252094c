//! `/console/api/groups`: user groups and their price ratio (admins change them; everyone
//! may read them, since the ratio is part of what they pay).

use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::console::groups::{GroupBody, delete_group, set_group};
use crate::store::groups::{self, Group};
use crate::tariff::ratio_to_f64;

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
