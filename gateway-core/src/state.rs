//! The shared state behind every handler: store, JWT keys, routing snapshot, relay state.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::relay::RelayState;
use crate::snapshot::Snapshot;
use crate::store::{Store, StoreResult};

/// One per gateway instance.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub jwt: JwtKeys,
    pub started_at: Instant,
    /// What the data plane reads: swapped whole when the control plane changes something.
    pub snapshot: ArcSwap<Snapshot>,
    /// Data-plane runtime state: HTTP client, breakers, quota ledger, usage writer, metrics.
    pub relay: RelayState,
}

impl AppState {
    pub(crate) fn new(
        config: Config,
        store: Store,
        jwt: JwtKeys,
        snapshot: Snapshot,
        relay: RelayState,
    ) -> Arc<Self> {
        Arc::new(AppState {
            config,
            store,
            jwt,
            started_at: Instant::now(),
            snapshot: ArcSwap::from_pointee(snapshot),
            relay,
        })
    }

    /// Rebuild the routing snapshot from the database and publish it.
    /// Control-plane handlers call this after every change so the next request sees it.
    pub async fn config_changed(&self) {
        if let Err(e) = self.reload_snapshot().await {
            tracing::error!(error = %e, "could not rebuild the routing snapshot; keeping the previous one");
        }
    }

    /// Load a fresh snapshot and swap it in.
    pub async fn reload_snapshot(&self) -> StoreResult<()> {
        let snap = self.store.run(Snapshot::load).await?;
        self.relay.ledger.sync(&snap);
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }
}
