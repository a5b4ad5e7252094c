//! `/console/api/prices`: per-model prices (USD per 1M tokens) and New API style model
//! ratios, the same data as `burncloud price`. A model with both is billed by its price.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::money::{nano_to_usd, usd_from_f64};
use crate::store::prices::{self, Price, Rates};
use crate::store::ratios::{self, ModelRatio};
use crate::tariff::{RATIO_ONE, ratio_from_f64, ratio_to_f64};

#[derive(Deserialize)]
pub struct PriceBody {
    model: Option<String>,
    input: Option<f64>,
    output: Option<f64>,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    alias: Option<String>,
    model_ratio: Option<f64>,
    completion_ratio: Option<f64>,
}

/// The client-facing form of a model's price and/or ratios (`billed_by` names the one
/// that applies: the price wins).
pub fn view(model: &str, p: Option<&Price>, r: Option<&ModelRatio>) -> Value {
    let mut v = json!({
        "model": model,
        "input": p.map(|p| nano_to_usd(p.rates.input)),
        "output": p.map(|p| nano_to_usd(p.rates.output)),
        "cache_read": p.and_then(|p| p.rates.cache_read).map(nano_to_usd),
        "cache_write": p.and_then(|p| p.rates.cache_write).map(nano_to_usd),
        "alias_of": p.and_then(|p| p.alias_of.clone()),
        "model_ratio": r.map(|r| ratio_to_f64(r.model_ratio)),
        "completion_ratio": r.map(|r| ratio_to_f64(r.completion_ratio)),
        "billed_by": if p.is_some() { "price" } else { "ratio" },
        "updated_at": p.map(|p| p.updated_at).max(r.map(|r| r.updated_at)),
    });
    if p.is_none()
        && let Some(r) = r
    {
        // What the ratios come to per 1M tokens, for comparison with absolute prices.
        let t = crate::tariff::Tariff::from_ratios(r.model_ratio, r.completion_ratio);
        let per_m = |completion: bool| nano_to_usd(t.per_million(completion));
        v["input"] = json!(per_m(false));
        v["output"] = json!(per_m(true));
    }
    v
}

async fn load(state: &Shared, model: String) -> Result<Value, ApiError> {
    let m = model.clone();
    let (p, r) = state
        .store
        .run(move |c| Ok((prices::get(c, &m)?, ratios::get(c, &m)?)))
        .await?;
    if p.is_none() && r.is_none() {
        return Err(ApiError::not_found(format!("no price for {model}")));
    }
    Ok(view(&model, p.as_ref(), r.as_ref()))
}

pub async fn list(State(state): State<Shared>, _session: Session) -> ApiResult {
    let (prices, ratios) = state
        .store
        .run(|c| Ok((prices::list(c)?, ratios::list(c)?)))
        .await?;
    let mut models: std::collections::BTreeMap<String, (Option<&Price>, Option<&ModelRatio>)> =
        Default::default();
    for p in &prices {
        models.entry(p.model.clone()).or_default().0 = Some(p);
    }
    for r in &ratios {
        models.entry(r.model.clone()).or_default().1 = Some(r);
    }
    Ok(ok(models
        .iter()
        .map(|(m, (p, r))| view(m, *p, *r))
        .collect::<Vec<_>>()))
}

pub async fn get_one(
    State(state): State<Shared>,
    _session: Session,
    Path(model): Path<String>,
) -> ApiResult {
    Ok(ok(load(&state, model).await?))
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
    let has_price = body.alias.is_some() || body.input.is_some() || body.output.is_some();
    if let Some(mr) = body.model_ratio {
        let mr =
            ratio_from_f64(mr).map_err(|e| ApiError::bad_request(format!("model_ratio: {e}")))?;
        let cr = body
            .completion_ratio
            .map(ratio_from_f64)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("completion_ratio: {e}")))?
            .unwrap_or(RATIO_ONE);
        let m = model.clone();
        state.store.run(move |c| ratios::set(c, &m, mr, cr)).await?;
        if !has_price {
            state.config_changed().await;
            return Ok(ok(load(&state, model).await?));
        }
    } else if body.completion_ratio.is_some() {
        return Err(ApiError::bad_request(
            "completion_ratio needs model_ratio in the same request",
        ));
    }
    let m = model.clone();
    if let Some(target) = body.alias {
        if body.input.is_some() || body.output.is_some() {
            return Err(ApiError::bad_request(
                "give either alias or input/output prices, not both",
            ));
        }
        state
            .store
            .run(move |c| prices::set_alias(c, &m, &target))
            .await?;
    } else {
        let (Some(input), Some(output)) = (body.input, body.output) else {
            return Err(ApiError::bad_request(
                "missing field(s): input and output (USD per 1M tokens), alias, or model_ratio",
            ));
        };
        let rates = Rates {
            input: usd_from_f64(input)?,
            output: usd_from_f64(output)?,
            cache_read: body.cache_read.map(usd_from_f64).transpose()?,
            cache_write: body.cache_write.map(usd_from_f64).transpose()?,
        };
        state.store.run(move |c| prices::set(c, &m, rates)).await?;
    }
    state.config_changed().await;
    Ok(ok(load(&state, model).await?))
}

pub async fn delete(
    State(state): State<Shared>,
    session: Session,
    Path(model): Path<String>,
) -> ApiResult {
    session.require_admin()?;
    let m = model.clone();
    state
        .store
        .run(move |c| prices::delete_pricing(c, &m))
        .await?;
    state.config_changed().await;
    Ok(ok(json!({"model": model})))
}
