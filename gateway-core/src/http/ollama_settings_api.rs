//! `/console/api/settings/ollama` (admins): the token that keyless Ollama-API requests
//! from this machine use. Off (`null`) by default: without it every `/api/chat` etc. needs
//! a key like `/v1`.

use axum::extract::State;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::snapshot::OLLAMA_KEYLESS_TOKEN;
use crate::store::{settings, tokens};

async fn current(state: &Shared) -> Result<Option<i64>, ApiError> {
    let raw = state
        .store
        .run(|c| settings::get(c, OLLAMA_KEYLESS_TOKEN))
        .await?;
    Ok(raw.and_then(|v| v.trim().parse().ok()))
}

pub async fn get(State(state): State<Shared>, session: Session) -> ApiResult {
    session.require_admin()?;
    Ok(ok(json!({"keyless_token_id": current(&state).await?})))
}

/// `{"keyless_token_id": ID}` turns keyless loopback requests on with that token,
/// `{"keyless_token_id": null}` turns them off.
pub async fn put(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    session.require_admin()?;
    let id = match body.get("keyless_token_id") {
        Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::bad_request("keyless_token_id: a token id (integer) or null")
        })?),
        None => return Err(ApiError::bad_request("keyless_token_id: field required")),
    };
    if let Some(id) = id {
        let found = state.store.run(move |c| tokens::get(c, id, None)).await?;
        if found.is_none() {
            return Err(ApiError::not_found(format!("token {id} not found")));
        }
    }
    let value = id.map(|i| i.to_string()).unwrap_or_default();
    state
        .store
        .run(move |c| settings::set(c, OLLAMA_KEYLESS_TOKEN, &value))
        .await?;
    state.config_changed().await;
    Ok(ok(json!({"keyless_token_id": id})))
}
