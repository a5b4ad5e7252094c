//! Planning: which channels a request may try, in which order, and — where burst routing
//! applies (the model is served by local and cloud channels, or it is the burst alias) —
//! which side goes first and why.

use axum::http::HeaderMap;

use super::OpenAiError;
use super::ingress::{Caller, RequestInfo};
use super::route;
use crate::burst::{self, BurstMode, BurstPolicy, Decision, Inputs, Sensitivity, Side, SideState};
use crate::live::BreakerState;
use crate::snapshot::{Snapshot, Tier};
use crate::state::AppState;
use crate::store::now_ms;

/// What burst routing decided for a request.
#[derive(Debug, Clone)]
pub struct BurstInfo {
    pub mode: BurstMode,
    pub reason: &'static str,
    pub sensitivity: Sensitivity,
    /// The side the decision put first.
    pub first: Option<Side>,
}

impl BurstInfo {
    /// The reason as served: a failover to the other side says so.
    pub fn reason_for(&self, served: Side) -> &'static str {
        match (self.first, served) {
            (Some(Side::Local), Side::Cloud) => "local_failed_failover_to_cloud",
            (Some(Side::Cloud), Side::Local) => "cloud_failed_failover_to_local",
            _ => self.reason,
        }
    }

    /// `mode,reason,sensitivity` for the log record.
    pub fn record(&self, served: Option<Side>) -> String {
        let reason = served.map_or(self.reason, |s| self.reason_for(s));
        format!(
            "{},{},{}",
            self.mode.as_str(),
            reason,
            self.sensitivity.as_str()
        )
    }
}

/// The channels to try and what to ask each side for.
#[derive(Debug)]
pub struct Plan {
    pub order: Vec<i64>,
    /// The model to ask local / cloud channels for when it is not the requested one
    /// (the burst alias).
    pub local_model: Option<String>,
    pub cloud_model: Option<String>,
    pub burst: Option<BurstInfo>,
}

impl Plan {
    /// The model name (before the channel's own mapping) to ask a channel of `side` for.
    pub fn model_for<'a>(&'a self, side: Side, requested: &'a str) -> &'a str {
        match side {
            Side::Local => self.local_model.as_deref(),
            Side::Cloud => self.cloud_model.as_deref(),
        }
        .unwrap_or(requested)
    }
}

/// A refusal, with what burst routing knew when it refused.
pub struct Refused {
    pub error: OpenAiError,
    pub burst: Option<BurstInfo>,
}

impl From<OpenAiError> for Refused {
    fn from(error: OpenAiError) -> Self {
        Refused { error, burst: None }
    }
}

fn split(snap: &Snapshot, tiers: &[Tier], side: Side) -> Vec<Tier> {
    tiers
        .iter()
        .filter_map(|t| {
            let members: Vec<(i64, i64)> = t
                .members
                .iter()
                .copied()
                .filter(|(id, _)| {
                    snap.channels
                        .get(id)
                        .is_some_and(|c| Side::of(&c.locality) == side)
                })
                .collect();
            (!members.is_empty()).then_some(Tier {
                priority: t.priority,
                members,
            })
        })
        .collect()
}

/// The first model (by name) of `group` that a channel of `side` serves.
fn first_model_on(snap: &Snapshot, group: &str, side: Side) -> Option<String> {
    let models = snap.group_models.get(group)?;
    models
        .iter()
        .find(|m| {
            snap.tiers(group, m).is_some_and(|tiers| {
                tiers.iter().flat_map(|t| &t.members).any(|(id, _)| {
                    snap.channels
                        .get(id)
                        .is_some_and(|c| Side::of(&c.locality) == side)
                })
            })
        })
        .cloned()
}

fn side_state(state: &AppState, policy: &BurstPolicy, tiers: &[Tier], side: Side) -> SideState {
    let relay = &state.relay;
    let ids = || tiers.iter().flat_map(|t| &t.members).map(|(id, _)| *id);
    let up =
        |id: i64| relay.breakers.state(id) != BreakerState::Open && relay.burst.loads.healthy(id);
    let present = ids().next().is_some();
    let down = present && !ids().any(up);
    let max_queue = policy.max_queue(side);
    let threshold = policy.latency_threshold_ms(side) as f64;
    let overloaded = present
        && !down
        && ids().filter(|id| up(*id)).all(|id| {
            let l = relay.burst.loads.get(id);
            l.in_flight() >= max_queue || l.latency_ms().is_some_and(|ms| ms > threshold)
        });
    SideState {
        present,
        down,
        overloaded,
    }
}

/// Plan a request: candidate channels in order, burst decision where it applies.
pub fn plan(
    state: &AppState,
    snap: &Snapshot,
    caller: &Caller,
    info: &RequestInfo,
    body: &[u8],
    headers: &HeaderMap,
) -> Result<Plan, Refused> {
    let policy = state.relay.burst.policy.load();
    let local_only = caller.token.as_ref().is_some_and(|t| t.local_only);
    let is_alias = info.model == policy.settings.alias;
    let (local, cloud, local_model, cloud_model) = if is_alias {
        let lm = policy
            .settings
            .local_model
            .clone()
            .or_else(|| first_model_on(snap, caller.group(), Side::Local));
        let cm = policy
            .settings
            .cloud_model
            .clone()
            .or_else(|| first_model_on(snap, caller.group(), Side::Cloud));
        let tiers_of = |m: &Option<String>, side| {
            m.as_deref()
                .and_then(|m| snap.tiers(caller.group(), m))
                .map(|t| split(snap, t, side))
                .unwrap_or_default()
        };
        let (l, c) = (tiers_of(&lm, Side::Local), tiers_of(&cm, Side::Cloud));
        if l.is_empty() && c.is_empty() {
            return Err(OpenAiError::unavailable(format!(
                "The burst alias '{}' has no local or cloud model in group '{}': add channels, or set local_model / cloud_model in the burst settings",
                info.model, caller.group()
            ))
            .into());
        }
        (l, c, lm, cm)
    } else {
        let Some(tiers) = snap.tiers(caller.group(), &info.model) else {
            return Err(if snap.model_exists(&info.model) {
                OpenAiError::permission_denied(format!(
                    "The model '{}' is not available to group '{}'",
                    info.model,
                    caller.group()
                ))
            } else {
                OpenAiError::model_not_found(&info.model)
            }
            .into());
        };
        let mixed = {
            let mut sides = tiers
                .iter()
                .flat_map(|t| &t.members)
                .filter_map(|(id, _)| snap.channels.get(id))
                .map(|c| Side::of(&c.locality));
            let first = sides.next();
            sides.any(|s| Some(s) != first)
        };
        if !mixed {
            // Not a burst route: as before, except that local-only keys never reach the cloud.
            let cloud_only = tiers
                .iter()
                .flat_map(|t| &t.members)
                .filter_map(|(id, _)| snap.channels.get(id))
                .all(|c| Side::of(&c.locality) == Side::Cloud);
            if local_only && cloud_only {
                return Err(OpenAiError::permission_denied(format!(
                    "This API key is local-only and the model '{}' is served only by cloud channels",
                    info.model
                ))
                .into());
            }
            return Ok(Plan {
                order: route::order(tiers, &state.relay.rr),
                local_model: None,
                cloud_model: None,
                burst: None,
            });
        }
        (
            split(snap, tiers, Side::Local),
            split(snap, tiers, Side::Cloud),
            None,
            None,
        )
    };

    let mode = match headers.get("x-burst-mode") {
        Some(v) => v.to_str().ok().and_then(BurstMode::parse).ok_or_else(|| {
            OpenAiError::invalid_request(
                "Invalid X-Burst-Mode header: expected edge_burst or cloud_burst",
            )
        })?,
        None => caller
            .token
            .as_ref()
            .and_then(|t| t.burst_mode)
            .unwrap_or(policy.settings.mode),
    };
    let sensitivity = policy.classifier.classify_body(body).level;
    let budget_exhausted = policy
        .budget_nano
        .is_some_and(|b| state.relay.burst.spend.today(now_ms()) >= b);
    let inputs = Inputs {
        mode,
        sensitivity,
        local_only_token: local_only,
        budget_exhausted,
        local: side_state(state, &policy, &local, Side::Local),
        cloud: side_state(state, &policy, &cloud, Side::Cloud),
    };
    let decision = burst::decide(&inputs);
    let reason = match &decision {
        Ok(d) => d.reason,
        Err(r) => r.reason,
    };
    state.relay.metrics.burst_decision(reason);
    let mut info_b = BurstInfo {
        mode,
        reason,
        sensitivity,
        first: None,
    };
    let Decision { sides, .. } = match decision {
        Ok(d) => d,
        Err(r) => {
            return Err(Refused {
                error: OpenAiError::unavailable(r.message),
                burst: Some(info_b),
            });
        }
    };
    info_b.first = sides.first().copied();
    let mut order = Vec::new();
    for side in sides {
        let tiers = if side == Side::Local { &local } else { &cloud };
        order.extend(route::order(tiers, &state.relay.rr));
    }
    Ok(Plan {
        order,
        local_model: if is_alias { local_model } else { None },
        cloud_model: if is_alias { cloud_model } else { None },
        burst: Some(info_b),
    })
}
