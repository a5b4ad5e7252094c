//! `GET /console/api/logs`: request logs with paging and filters. Users see their own.

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, Session, Shared, ok};
use crate::money::nano_to_usd;
use crate::store::logs::{self, LogQuery};

#[derive(Deserialize)]
pub struct LogParams {
    page: Option<i64>,
    page_size: Option<i64>,
    model: Option<String>,
    model_prefix: Option<String>,
    channel_id: Option<i64>,
    token_id: Option<i64>,
    status: Option<i64>,
    start: Option<i64>,
    end: Option<i64>,
    user_id: Option<String>,
}

pub async fn list(
    State(state): State<Shared>,
    session: Session,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let user_id = match (session.is_admin(), p.user_id.filter(|s| !s.is_empty())) {
        (true, u) => u,
        (false, Some(u)) if u != session.user.id => {
            return Err(ApiError::forbidden(
                "permission denied: you can only read your own logs",
            ));
        }
        (false, _) => Some(session.user.id.clone()),
    };
    let q = LogQuery {
        user_id,
        request_id: None,
        model: p.model.filter(|s| !s.is_empty()),
        model_prefix: p.model_prefix.filter(|s| !s.is_empty()),
        channel_id: p.channel_id,
        token_id: p.token_id,
        status: p.status,
        failed: None,
        start: p.start,
        end: p.end,
        page: p.page.unwrap_or(1).max(1),
        page_size: p.page_size.unwrap_or(50).clamp(1, 500),
    };
    let (page, page_size) = (q.page, q.page_size);
    let (rows, total) = state.store.run(move |c| logs::query(c, &q)).await?;
    let items: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let cost = r.record.cost_nano;
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            v["cost_usd"] = json!(nano_to_usd(cost));
            v
        })
        .collect();
    Ok(ok(
        json!({"items": items, "total": total, "page": page, "page_size": page_size}),
    ))
}

/// `GET /console/api/settings/logs` (admins): `{"retention_days": N}`, 0 keeping every record.
pub async fn get_settings(State(state): State<Shared>, session: Session) -> ApiResult {
    session.require_admin()?;
    let days = state.store.run(|c| logs::retention_days(c)).await?;
    Ok(ok(json!({"retention_days": days})))
}

/// `PUT /console/api/settings/logs` `{"retention_days": N}` (admins): keep request-log
/// records N days (0: all). Older records go at once and then hourly; the answer says how
/// many went now.
pub async fn put_settings(
    State(state): State<Shared>,
    session: Session,
    super::ApiJson(body): super::ApiJson<serde_json::Value>,
) -> ApiResult {
    session.require_admin()?;
    let days = body
        .get("retention_days")
        .ok_or_else(|| ApiError::bad_request("retention_days: field required"))?
        .as_i64()
        .filter(|d| (0..=logs::MAX_RETENTION_DAYS).contains(d))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "retention_days: a whole number of days from 0 (keep every record) to {}",
                logs::MAX_RETENTION_DAYS
            ))
        })?;
    let deleted = state
        .store
        .run(move |c| {
            crate::store::settings::set(c, logs::RETENTION_KEY, &days.to_string())?;
            logs::apply_retention(c, crate::store::now_ms())
        })
        .await?;
    if deleted > 0 {
        tracing::info!(
            deleted,
            days,
            "request-log records past their retention deleted"
        );
    }
    Ok(ok(json!({"retention_days": days, "deleted": deleted})))
}
