//! What the data plane keeps in memory and shares between requests: breakers, the quota
//! ledger, per-minute limits, metrics, the usage writer, the upstream HTTP clients and the
//! burst state. Below `state` (which holds a [`RelayState`]) and `relay` (which uses it).

pub(crate) mod breaker;
pub mod h1;
pub(crate) mod heap;
pub(crate) mod leases;
pub(crate) mod ledger;
mod limits;
pub(crate) mod metrics;
pub mod writer;

use std::sync::atomic::AtomicU64;

pub use breaker::{BreakerState, Breakers};
pub use ledger::Ledger;
pub use limits::Limits;
pub use metrics::Metrics;
pub use writer::UsageWriter;

use crate::burst::BurstState;
use crate::config::RelaySettings;

/// Data-plane runtime state (everything in memory).
#[derive(Debug)]
pub struct RelayState {
    pub client: reqwest::Client,
    /// For local channels: no connection reuse (see `relay::attempt`).
    pub local_client: reqwest::Client,
    /// Plain-`http://` upstreams, read in the relaying task (see [`h1`]).
    pub h1: h1::Client,
    /// Whether plain-HTTP upstreams go through [`h1`]: not when a proxy is set in the
    /// environment (reqwest honours it).
    pub h1_direct: bool,
    pub settings: RelaySettings,
    pub ledger: Ledger,
    pub limits: Limits,
    pub breakers: Breakers,
    pub metrics: Metrics,
    pub writer: UsageWriter,
    /// Round-robin position for weight-0 tiers.
    pub rr: std::sync::atomic::AtomicUsize,
    /// Request id counter (random high half, per-process low half).
    pub seq: AtomicU64,
    /// Burst routing: policy, per-channel load, today's cloud spend.
    pub burst: BurstState,
    /// Google Vertex AI access tokens by channel.
    pub google_tokens: crate::upstream::vertex::Tokens,
    /// Bumped when what the consoles show changes: usage committed, routing reloaded.
    pub changes: tokio::sync::watch::Sender<u64>,
}

impl RelayState {
    /// Build the relay state; `writer` must already run on the gateway's runtime.
    pub fn new(
        settings: RelaySettings,
        burst: BurstState,
        writer: UsageWriter,
        changes: tokio::sync::watch::Sender<u64>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            // A redirect would carry the channel key to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let local_client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let h1_direct = !["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        Ok(RelayState {
            client,
            local_client,
            h1: h1::Client::new(settings.connect_timeout),
            h1_direct,
            breakers: Breakers::new(&settings),
            settings,
            ledger: Ledger::default(),
            limits: Limits::default(),
            metrics: Metrics::default(),
            writer,
            changes,
            rr: Default::default(),
            // Random high bits: request ids stay unique across gateways on one database.
            seq: AtomicU64::new(rand::random::<u64>() << 32),
            burst,
            google_tokens: Default::default(),
        })
    }
}
