//! `GET /api/billing/summary`: per-model usage and cost in seed 000's exact shape.

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, Session, Shared, ok};
use crate::money::nano_to_usd;
use crate::store::logs;

#[derive(Deserialize)]
pub struct SummaryQuery {
    start: Option<String>,
    end: Option<String>,
    user_id: Option<String>,
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<i64>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name} must be a unix time in seconds"))),
    }
}

pub async fn summary(
    State(state): State<Shared>,
    session: Session,
    query: Result<Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let start = time_param("start", q.start)?;
    let end = time_param("end", q.end)?;
    let user_id = match q.user_id.filter(|s| !s.is_empty()) {
        Some(u) if u != session.user.id => {
            session.require_admin()?;
            u
        }
        _ => session.user.id.clone(),
    };
    let (models, without_usage) = state
        .store
        .run(move |c| logs::billing_summary(c, Some(&user_id), start, end))
        .await?;
    let total: i64 = models.iter().map(|m| m.cost_nano).sum();
    let models: Vec<_> = models
        .iter()
        .map(|m| {
            json!({
                "model": m.model,
                "requests": m.requests,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "cost_usd": nano_to_usd(m.cost_nano),
            })
        })
        .collect();
    Ok(ok(json!({
        "period_start": start,
        "period_end": end,
        "pre_migration_requests": without_usage,
        "models": models,
        "total_cost_usd": nano_to_usd(total),
    })))
}
