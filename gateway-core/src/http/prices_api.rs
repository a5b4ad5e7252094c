//! `/console/api/prices`: per-model prices (USD per 1M tokens), the same data as `burncloud price`.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::money::{nano_to_usd, usd_from_f64};
use crate::store::prices::{self, Price, Rates};

#[derive(Deserialize)]
pub struct PriceBody {
    model: Option<String>,
    input: Option<f64>,
    output: Option<f64>,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    alias: Option<String>,
}

/// The client-facing form of a price.
pub fn view(p: &Price) -> Value {
    json!({
        "model": p.model,
        "input": nano_to_usd(p.rates.input),
        "output": nano_to_usd(p.rates.output),
        "cache_read": p.rates.cache_read.map(nano_to_usd),
        "cache_write": p.rates.cache_write.map(nano_to_usd),
        "alias_of": p.alias_of,
        "updated_at": p.updated_at,
    })
}

pub async fn list(State(state): State<Shared>, _session: Session) -> ApiResult {
    let list = state.store.run(|c| prices::list(c)).await?;
    Ok(ok(list.iter().map(view).collect::<Vec<_>>()))
}

pub async fn get_one(
    State(state): State<Shared>,
    _session: Session,
    Path(model): Path<String>,
) -> ApiResult {
    let m = model.clone();
    let p = state
        .store
        .run(move |c| prices::get(c, &m))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no price for {model}")))?;
    Ok(ok(view(&p)))
}

pub async fn put(
    State(state): State<Shared>,
    session: Session,
    Path(model): Path<String>,
    ApiJson(body): ApiJson<PriceBody>,
) -> ApiResult {
    session.require_admin()?;
    if body.model.as_deref().is_some_and(|m| m != model) {
        return Err(ApiError::bad_request(
            "model in the body differs from the model in the path",
        ));
    }
    save(state, model, body).await
}

pub async fn put_body(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<PriceBody>,
) -> ApiResult {
    session.require_admin()?;
    let model = body
        .model
        .clone()
        .ok_or_else(|| ApiError::bad_request("missing field: model"))?;
    save(state, model, body).await
}

async fn save(state: Shared, model: String, body: PriceBody) -> ApiResult {
    let p = if let Some(target) = body.alias {
        if body.input.is_some() || body.output.is_some() {
            return Err(ApiError::bad_request(
                "give either alias or input/output prices, not both",
            ));
        }
        state
            .store
            .run(move |c| prices::set_alias(c, &model, &target))
            .await?
    } else {
        let (Some(input), Some(output)) = (body.input, body.output) else {
            return Err(ApiError::bad_request(
                "missing field(s): input and output (USD per 1M tokens), or alias",
            ));
        };
        let rates = Rates {
            input: usd_from_f64(input)?,
            output: usd_from_f64(output)?,
            cache_read: body.cache_read.map(usd_from_f64).transpose()?,
            cache_write: body.cache_write.map(usd_from_f64).transpose()?,
        };
        state
            .store
            .run(move |c| prices::set(c, &model, rates))
            .await?
    };
    state.config_changed().await;
    Ok(ok(view(&p)))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(model): Path<String>,
) -> ApiResult {
    session.require_admin()?;
    let m = model.clone();
    state.store.run(move |c| prices::delete(c, &m)).await?;
    state.config_changed().await;
    Ok(ok(json!({"model": model})))
}
