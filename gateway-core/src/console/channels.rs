//! Channels: the upstreams requests are routed to (admins only). A change reaches the
//! data plane before the call returns; keys never leave the gateway (see
//! `Channel::masked_key`).

use super::{ApiError, Session};
use crate::live::BreakerState;
pub use crate::probe::{Probe, ProbeError, list_models, probe_channel};
use crate::state::Shared;
use crate::store::channels::{self, Channel, ChannelFields};
use crate::vocab::status;

/// Add a channel.
pub async fn create_channel(
    state: &Shared,
    by: &Session,
    fields: ChannelFields,
) -> Result<Channel, ApiError> {
    by.require_admin()?;
    let c = state
        .store
        .run(move |c| channels::create(c, fields))
        .await?;
    tracing::info!(channel = c.id, name = %c.name, by = %by.user.username, "channel created");
    state.config_changed().await;
    Ok(c)
}

/// Change a channel; absent fields stay (an empty key keeps the stored one).
pub async fn update_channel(
    state: &Shared,
    by: &Session,
    id: i64,
    fields: ChannelFields,
) -> Result<Channel, ApiError> {
    by.require_admin()?;
    let c = state
        .store
        .run(move |c| channels::update(c, id, fields))
        .await?;
    state.config_changed().await;
    Ok(c)
}

/// Switch a channel on or off (switching on clears an automatic disable's reason).
pub async fn set_channel_enabled(
    state: &Shared,
    by: &Session,
    id: i64,
    enabled: bool,
) -> Result<(), ApiError> {
    by.require_admin()?;
    let value = if enabled {
        status::ENABLED
    } else {
        status::DISABLED
    };
    state
        .store
        .run(move |c| channels::set_status(c, id, value, None))
        .await?;
    state.config_changed().await;
    Ok(())
}

/// Delete a channel.
pub async fn delete_channel(state: &Shared, by: &Session, id: i64) -> Result<(), ApiError> {
    by.require_admin()?;
    state.store.run(move |c| channels::delete(c, id)).await?;
    state.config_changed().await;
    Ok(())
}

/// Why a channel test (or model list) failed, and what the person can do about it.
#[derive(Debug, Clone)]
pub struct TestFailure {
    /// The API's status for it: 4xx for the request or the channel's setup, 502 when the
    /// upstream could not be reached or refused.
    pub status: u16,
    pub message: String,
    pub fix: Option<&'static str>,
}

impl From<ApiError> for TestFailure {
    fn from(e: ApiError) -> Self {
        TestFailure {
            status: e.status.as_u16(),
            message: e.message,
            fix: None,
        }
    }
}

impl From<ProbeError> for TestFailure {
    fn from(e: ProbeError) -> Self {
        let status = match e {
            ProbeError::Unreachable { .. } | ProbeError::Status { .. } => 502,
            _ => 400,
        };
        TestFailure {
            status,
            message: e.to_string(),
            fix: e.fix(),
        }
    }
}

async fn stored(state: &Shared, by: &Session, id: i64) -> Result<Channel, ApiError> {
    by.require_admin()?;
    state
        .store
        .run(move |c| channels::get(c, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("channel {id} not found")))
}

/// Send one 1-token request to a channel's upstream, in its own format.
pub async fn test_channel(state: &Shared, by: &Session, id: i64) -> Result<Probe, TestFailure> {
    let channel = stored(state, by, id).await?;
    Ok(probe_channel(&channel).await?)
}

/// The models a channel's key may use, as its provider lists them (to fill its models).
pub async fn upstream_models(
    state: &Shared,
    by: &Session,
    id: i64,
) -> Result<Vec<String>, TestFailure> {
    let channel = stored(state, by, id).await?;
    Ok(list_models(&channel).await?)
}

/// Connect a provider in one step (the desktop's first run): ask it which models the key
/// may use, then save a channel of `channel_type` serving all of them, named after the
/// provider. A refused key, an unreachable provider or a type that cannot list its models
/// saves nothing and says why.
pub async fn connect_provider(
    state: &Shared,
    by: &Session,
    channel_type: i64,
    key: &str,
    base_url: &str,
) -> Result<Channel, TestFailure> {
    by.require_admin()?;
    let ty = crate::channel_types::channel_type(channel_type).ok_or_else(|| TestFailure {
        status: 400,
        message: format!("unknown channel type {channel_type}"),
        fix: Some("Pick a provider from the list."),
    })?;
    if key.trim().is_empty() && !ty.local_by_default {
        return Err(TestFailure {
            status: 400,
            message: "the provider's API key is empty".into(),
            fix: Some("Paste the API key from the provider's console."),
        });
    }
    let draft = channels::draft(channel_type, key, base_url);
    let mut models = list_models(&draft).await?;
    models.sort();
    models.dedup();
    if models.is_empty() {
        return Err(TestFailure {
            status: 502,
            message: "the provider listed no model this key may use".into(),
            fix: Some("Check the key's project or permissions in the provider's console."),
        });
    }
    let base = ty
        .name
        .split(['/', ' '])
        .next()
        .unwrap_or("provider")
        .to_lowercase();
    let taken: Vec<String> = state
        .store
        .run(|c| channels::list(c))
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let name = std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base}-{n}")))
        .find(|n| !taken.contains(n))
        .unwrap_or(base);
    let fields = ChannelFields {
        name: Some(name),
        channel_type: Some(channel_type),
        key: Some(key.trim().to_string()),
        base_url: Some(base_url.trim().to_string()),
        models: Some(models.join(",")),
        group: Some("default".into()),
        ..Default::default()
    };
    Ok(create_channel(state, by, fields).await?)
}

/// How a channel is doing in the data plane right now.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelHealth {
    /// `closed` (in use), `open` (failing: skipped) or `half-open` (one probe allowed).
    pub breaker: &'static str,
    /// Recent latency (moving average), once it has answered.
    pub latency_ms: Option<f64>,
    pub in_flight: i64,
    /// Whether the routing snapshot has it (enabled and loaded).
    pub routable: bool,
}

/// A channel's health (no database access: it reads the data plane's counters).
pub fn channel_health(state: &Shared, id: i64) -> ChannelHealth {
    let relay = &state.relay;
    let load = relay.burst.loads.get(id);
    ChannelHealth {
        breaker: match relay.breakers.state(id) {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        },
        latency_ms: load.latency_ms(),
        in_flight: load.in_flight(),
        routable: state.snapshot.load().channels.contains_key(&id),
    }
}
