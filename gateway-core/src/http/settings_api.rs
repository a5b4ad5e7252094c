//! `/console/api/settings/burst`: burst routing settings at run time (admins), and the
//! burst section of `/health`.

use axum::extract::State;
use serde_json::{Map, Value, json};

use super::{ApiError, ApiJson, ApiResult, Session, Shared, ok};
use crate::burst::Side;
use crate::console::settings::{burst_settings, change_burst, reset_burst, saved_burst};
use crate::live::BreakerState;
use crate::money::nano_to_usd;
use crate::store::now_ms;

fn view(state: &Shared, saved: &Map<String, Value>) -> Value {
    let mut v = serde_json::to_value(burst_settings(state)).unwrap_or_default();
    v["overridden"] = json!(saved.keys().collect::<Vec<_>>());
    v
}

/// The settings in effect, and which fields the console changed (the rest come from the
/// environment or the defaults).
pub async fn get_burst(State(state): State<Shared>, session: Session) -> ApiResult {
    session.require_admin()?;
    let saved = saved_burst(&state).await?;
    Ok(ok(view(&state, &saved)))
}

/// Change some fields; `null` returns a field to its environment/default value.
pub async fn put_burst(
    State(state): State<Shared>,
    session: Session,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    let Value::Object(fields) = body else {
        session.require_admin()?;
        return Err(ApiError::bad_request(
            "expected a JSON object of burst settings",
        ));
    };
    let saved = change_burst(&state, &session, fields).await?;
    Ok(ok(view(&state, &saved)))
}

/// Forget every console change: back to the environment's settings.
pub async fn delete_burst(State(state): State<Shared>, session: Session) -> ApiResult {
    reset_burst(&state, &session).await?;
    Ok(ok(view(&state, &Map::new())))
}

/// `/health`'s burst section: every channel's side, status, queue depth and latency, and
/// today's cloud spend against the budget.
pub fn burst_health(state: &Shared) -> Value {
    let relay = &state.relay;
    let policy = relay.burst.policy.load();
    let snap = state.snapshot.load();
    let mut channels: Vec<_> = snap.channels.values().collect();
    channels.sort_by_key(|c| c.id);
    let backends: Vec<Value> = channels
        .iter()
        .map(|c| {
            let load = relay.burst.loads.get(c.id);
            let side = Side::of(&c.locality);
            let status = if !relay.burst.loads.healthy(c.id) {
                "down"
            } else {
                match relay.breakers.state(c.id) {
                    BreakerState::Open => "down",
                    BreakerState::HalfOpen => "recovering",
                    BreakerState::Closed => {
                        let busy = load.in_flight() >= policy.max_queue(side)
                            || load
                                .latency_ms()
                                .is_some_and(|ms| ms > policy.latency_threshold_ms(side) as f64);
                        if busy { "overloaded" } else { "up" }
                    }
                }
            };
            json!({
                "channel_id": c.id,
                "name": c.name,
                "locality": side.as_str(),
                "status": status,
                "queue_depth": load.in_flight(),
                "max_queue": policy.max_queue(side),
                "latency_ewma_ms": load.latency_ms().map(|ms| (ms * 10.0).round() / 10.0),
            })
        })
        .collect();
    let spent = relay.burst.spend.today(now_ms());
    json!({
        "mode": policy.settings.mode.as_str(),
        "alias": policy.settings.alias,
        "backends": backends,
        "cloud_spend_today_usd": nano_to_usd(spent),
        "daily_cloud_budget_usd": policy.budget_nano.map(nano_to_usd),
        "cloud_budget_left_usd": policy.budget_nano.map(|b| nano_to_usd((b - spent).max(0))),
    })
}
