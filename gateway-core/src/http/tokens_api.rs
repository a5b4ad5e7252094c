//! `/console/api/tokens`: virtual keys. The full key appears once, in the create response.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::channels_api::{ListField, nullable, parse_id};
use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::console::tokens::{create_token, delete_token, update_token};
use crate::money::{nano_to_usd, usd_from_f64};
use crate::store::tokens::{self, Token, TokenFields};

#[derive(Deserialize)]
pub struct TokenBody {
    name: Option<String>,
    status: Option<i64>,
    /// USD; -1 unlimited.
    quota_limit: Option<f64>,
    expired_time: Option<i64>,
    models: Option<ListField>,
    group: Option<String>,
    allow_ips: Option<ListField>,
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    tpm_limit: Option<Option<i64>>,
    /// Never route this key's requests to cloud channels.
    local_only: Option<bool>,
    /// `edge_burst` / `cloud_burst`; null: the global burst mode.
    #[serde(default, deserialize_with = "nullable")]
    burst_mode: Option<Option<String>>,
}

impl TokenBody {
    fn into_fields(self) -> Result<TokenFields, ApiError> {
        let quota_limit_nano = match self.quota_limit {
            None => None,
            Some(-1.0) => Some(-1),
            Some(q) if q < 0.0 => {
                return Err(ApiError::bad_request(
                    "quota_limit must be -1 (unlimited) or 0 and more",
                ));
            }
            Some(q) => Some(usd_from_f64(q)?),
        };
        Ok(TokenFields {
            name: self.name,
            status: self.status,
            quota_limit_nano,
            expired_time: self.expired_time,
            models: self.models.map(|m| match m {
                ListField::Text(s) => s,
                ListField::Items(v) => v.join(","),
            }),
            group: self.group,
            allow_ips: self.allow_ips.map(|m| match m {
                ListField::Text(s) => s,
                ListField::Items(v) => v.join(","),
            }),
            rpm_limit: self.rpm_limit,
            tpm_limit: self.tpm_limit,
            local_only: self.local_only,
            burst_mode: self.burst_mode,
        })
    }
}

/// The client-facing form of a token: never the key itself.
pub fn view(t: &Token) -> Value {
    let limit = if t.quota_limit_nano < 0 {
        json!(-1)
    } else {
        json!(nano_to_usd(t.quota_limit_nano))
    };
    let remaining = if t.quota_limit_nano < 0 {
        json!(-1)
    } else {
        json!(nano_to_usd((t.quota_limit_nano - t.used_quota_nano).max(0)))
    };
    json!({
        "id": t.id,
        "user_id": t.user_id,
        "name": t.name,
        "key": t.key_prefix,
        "status": t.status,
        "quota_limit": limit,
        "used_quota": nano_to_usd(t.used_quota_nano),
        "remaining_quota": remaining,
        "expired_time": t.expired_time,
        "models": t.models.join(","),
        "group": t.group,
        "allow_ips": t.allow_ips.join(","),
        "rpm_limit": t.rpm_limit,
        "tpm_limit": t.tpm_limit,
        "local_only": t.local_only,
        "burst_mode": t.burst_mode,
        "created_at": t.created_at,
    })
}

pub async fn create(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult {
    let (t, key) = create_token(&state, &session, body.into_fields()?).await?;
    let mut v = view(&t);
    v["key"] = json!(key.key);
    v["key_masked"] = json!(t.key_prefix);
    Ok(ok(v))
}

pub async fn list(State(state): State<Shared>, session: Session) -> ApiResult {
    let owner = session.owner_filter();
    let list = state
        .store
        .run(move |c| tokens::list(c, owner.as_deref()))
        .await?;
    Ok(ok(list.iter().map(view).collect::<Vec<_>>()))
}

pub async fn get_one(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let owner = session.owner_filter();
    let t = state
        .store
        .run(move |c| tokens::get(c, id, owner.as_deref()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("token {id} not found")))?;
    Ok(ok(view(&t)))
}

pub async fn update(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult {
    let id = parse_id(&id)?;
    let t = update_token(&state, &session, id, body.into_fields()?).await?;
    Ok(ok(view(&t)))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    delete_token(&state, &session, id).await?;
    Ok(ok(json!({"id": id})))
}
