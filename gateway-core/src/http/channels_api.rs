//! `/console/api/channel`: channel CRUD (admin). Keys are masked in every response.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::channel_types::CHANNEL_TYPES;
use crate::console::channels::{create_channel, delete_channel, update_channel, upstream_models};
use crate::store::channels::{self, Channel, ChannelFields};

/// A comma list given either as `"a,b"` or `["a","b"]`.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ListField {
    Text(String),
    Items(Vec<String>),
}

impl ListField {
    fn joined(self) -> String {
        match self {
            ListField::Text(s) => s,
            ListField::Items(v) => v.join(","),
        }
    }
}

/// `model_mapping` as a JSON object or as a string holding one (New API stores it as text).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum MappingField {
    Map(BTreeMap<String, String>),
    Text(String),
}

impl MappingField {
    fn parse(self) -> Result<BTreeMap<String, String>, ApiError> {
        match self {
            MappingField::Map(m) => Ok(m),
            MappingField::Text(t) if t.trim().is_empty() => Ok(BTreeMap::new()),
            MappingField::Text(t) => serde_json::from_str(&t).map_err(|e| {
                ApiError::bad_request(format!(
                    "model_mapping must be a JSON object of model names: {e}"
                ))
            }),
        }
    }
}

#[derive(Deserialize)]
pub struct ChannelBody {
    #[serde(default)]
    id: Option<i64>,
    name: Option<String>,
    #[serde(rename = "type")]
    channel_type: Option<i64>,
    key: Option<String>,
    base_url: Option<String>,
    models: Option<ListField>,
    group: Option<ListField>,
    weight: Option<i64>,
    priority: Option<i64>,
    model_mapping: Option<MappingField>,
    status: Option<i64>,
    locality: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<i64>>,
}

/// Distinguish "absent" (keep) from `null` (clear).
pub fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl ChannelBody {
    fn into_fields(self) -> Result<ChannelFields, ApiError> {
        Ok(ChannelFields {
            name: self.name,
            channel_type: self.channel_type,
            key: self.key,
            base_url: self.base_url,
            models: self.models.map(ListField::joined),
            group: self.group.map(ListField::joined),
            weight: self.weight,
            priority: self.priority,
            model_mapping: self.model_mapping.map(MappingField::parse).transpose()?,
            status: self.status,
            locality: self.locality,
            rpm_limit: self.rpm_limit,
        })
    }
}

/// The client-facing form of a channel: the key masked.
pub fn view(c: &Channel) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "type": c.channel_type,
        "key": c.masked_key(),
        "base_url": c.base_url,
        "models": c.models.join(","),
        "group": c.groups.join(","),
        "weight": c.weight,
        "priority": c.priority,
        "model_mapping": c.model_mapping,
        "status": c.status,
        "locality": c.locality,
        "disabled_reason": c.disabled_reason,
        "rpm_limit": c.rpm_limit,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

pub async fn types(_session: Session) -> ApiResult {
    let list: Vec<Value> = CHANNEL_TYPES
        .iter()
        .map(|t| json!({"type": t.id, "name": t.name, "default_base_url": t.default_base_url}))
        .collect();
    Ok(ok(list))
}

pub async fn list(State(state): State<Shared>, session: Session) -> ApiResult {
    session.require_admin()?;
    let list = state.store.run(|c| channels::list(c)).await?;
    Ok(ok(list.iter().map(view).collect::<Vec<_>>()))
}

pub async fn get_one(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    session.require_admin()?;
    let id = parse_id(&id)?;
    let c = state
        .store
        .run(move |c| channels::get(c, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("channel {id} not found")))?;
    Ok(ok(view(&c)))
}

pub async fn create(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult {
    session.require_admin()?;
    let mut missing = vec![];
    if body.name.is_none() {
        missing.push("name");
    }
    if body.channel_type.is_none() {
        missing.push("type");
    }
    if body.models.is_none() {
        missing.push("models");
    }
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "missing field(s): {}",
            missing.join(", ")
        )));
    }
    let c = create_channel(&state, &session, body.into_fields()?).await?;
    Ok(ok(view(&c)))
}

pub async fn update(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult {
    session.require_admin()?;
    let id = body
        .id
        .ok_or_else(|| ApiError::bad_request("missing field: id"))?;
    let c = update_channel(&state, &session, id, body.into_fields()?).await?;
    Ok(ok(view(&c)))
}

pub async fn update_by_path(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> ApiResult {
    session.require_admin()?;
    let id = parse_id(&id)?;
    if body.id.is_some_and(|b| b != id) {
        return Err(ApiError::bad_request(
            "id in the body differs from the id in the path",
        ));
    }
    let c = update_channel(&state, &session, id, body.into_fields()?).await?;
    Ok(ok(view(&c)))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    session.require_admin()?;
    let id = parse_id(&id)?;
    delete_channel(&state, &session, id).await?;
    Ok(ok(json!({"id": id})))
}

/// `GET /console/api/channel/{id}/models`: what the channel's provider lists for its key.
pub async fn models(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> ApiResult {
    let id = parse_id(&id)?;
    match upstream_models(&state, &session, id).await {
        Ok(list) => Ok(ok(list)),
        Err(f) => {
            let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let message = match f.fix {
                Some(fix) => format!("{} ({fix})", f.message),
                None => f.message,
            };
            Err(ApiError::new(status, message))
        }
    }
}

/// Path ids: a clear 400 instead of axum's plain-text rejection.
pub fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request(format!("'{s}' is not a valid id (expected a number)")))
}
