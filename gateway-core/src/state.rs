//! The shared state behind every handler: store, JWT keys, routing snapshot, relay state.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::auth::JwtKeys;
use crate::burst::{self, BURST_SETTINGS_KEY, BurstPolicy};
use crate::config::Config;
use crate::live::RelayState;
use crate::local::LocalRuntime;
use crate::snapshot::Snapshot;
use crate::store::{Store, StoreResult, logs, now_ms, settings};

/// The state as handlers hold it.
pub type Shared = Arc<AppState>;

/// One per gateway instance.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub jwt: JwtKeys,
    pub started_at: Instant,
    /// What the data plane reads: swapped whole when the control plane changes something.
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Data-plane runtime state: HTTP client, breakers, quota ledger, usage writer, metrics.
    pub(crate) relay: RelayState,
    /// The local runtime, when the app wired one in (just-in-time starts).
    local_runtime: std::sync::OnceLock<Arc<dyn LocalRuntime>>,
    /// Login and registration limits, argon2 concurrency.
    pub(crate) auth_throttle: crate::throttle::AuthThrottle,
    /// The one-time setup token while no admin exists (see [`crate::Gateway::bootstrap`]).
    setup_token: std::sync::Mutex<Option<String>>,
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
            local_runtime: std::sync::OnceLock::new(),
            auth_throttle: Default::default(),
            setup_token: Default::default(),
        })
    }

    /// The file the setup token is kept in.
    pub fn setup_token_path(&self) -> std::path::PathBuf {
        self.config.data_dir.join("setup-token")
    }

    pub(crate) fn set_setup_token(&self, token: String) {
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
    }

    /// Whether `offered` is the current setup token (compared in constant time).
    pub fn setup_token_matches(&self, offered: Option<&str>) -> bool {
        let guard = self.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        match (guard.as_deref(), offered.map(str::trim)) {
            (Some(t), Some(o)) if t.len() == o.len() => {
                t.bytes()
                    .zip(o.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            _ => false,
        }
    }

    /// The first admin exists: the setup token is spent.
    pub fn clear_setup_token(&self) {
        let had = self
            .setup_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if had.is_some() {
            let _ = std::fs::remove_file(self.setup_token_path());
        }
    }

    /// Wire in the local runtime (once; later calls are ignored and return false).
    pub fn set_local_runtime(&self, rt: Arc<dyn LocalRuntime>) -> bool {
        self.local_runtime.set(rt).is_ok()
    }

    /// The local runtime, if one is wired in.
    pub fn local_runtime(&self) -> Option<&Arc<dyn LocalRuntime>> {
        self.local_runtime.get()
    }

    /// Requests now in flight on a channel (the local runtime unloads idle models).
    pub fn channel_in_flight(&self, channel: i64) -> i64 {
        self.relay.burst.loads.get(channel).in_flight()
    }

    /// When a request last began or ended on a channel (unix ms; 0: never).
    pub fn channel_last_active_ms(&self, channel: i64) -> i64 {
        self.relay.burst.loads.get(channel).last_active_ms()
    }

    /// A health check's result for a channel, from the local runtime's supervisor: burst
    /// routing treats a channel that is down as busy.
    pub fn report_channel_health(&self, channel: i64, up: bool) {
        self.relay.burst.loads.set_health(channel, up);
    }

    /// Forget a channel's health reports (its model was stopped).
    pub fn forget_channel_health(&self, channel: i64) {
        self.relay.burst.loads.clear_health(channel);
    }

    /// Store every usage record handed to the writer so far (before reading totals that
    /// must include them).
    pub async fn flush_usage(&self) {
        self.relay.writer.flush().await;
    }

    /// Woken when what the consoles show changed: usage records committed, the routing
    /// snapshot reloaded (by this console or another process), or [`Self::announce_change`].
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.relay.changes.subscribe()
    }

    /// Tell the consoles something they show changed (a download's progress, say).
    pub fn announce_change(&self) {
        self.relay.changes.send_modify(|n| *n = n.wrapping_add(1));
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
        let (snap, saved) = self
            .store
            .run(|c| {
                let snap = Snapshot::load(c)?;
                Ok((snap, settings::get(c, BURST_SETTINGS_KEY)?))
            })
            .await?;
        self.relay.ledger.sync(&snap);
        self.snapshot.store(Arc::new(snap));
        self.reload_burst(saved.as_deref()).await;
        self.announce_change();
        Ok(())
    }

    /// Apply saved burst settings (another process, or the console, changed them).
    async fn reload_burst(&self, saved: Option<&str>) {
        let burst = &self.relay.burst;
        let settings = match burst::effective(&burst.base, saved) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "ignoring invalid saved burst settings");
                return;
            }
        };
        let current = burst.policy.load();
        if current.settings == settings {
            return;
        }
        let tz_changed = current.settings.timezone != settings.timezone;
        match BurstPolicy::new(settings) {
            Ok(p) => {
                let tz = p.settings.timezone.clone();
                burst.policy.store(Arc::new(p));
                if tz_changed {
                    self.recount_cloud_spend(&tz).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "ignoring invalid burst settings"),
        }
    }

    /// Restart today's cloud spend from the logs in time zone `tz`.
    pub async fn recount_cloud_spend(&self, tz: &str) {
        let Ok(zone) = burst::spend::zone(tz) else {
            return;
        };
        let now = now_ms();
        let start = burst::spend::day_bounds(now, &zone).0;
        // Records still queued for the writer would be missed: flush them first.
        self.relay.writer.flush().await;
        match self
            .store
            .run(move |c| logs::cloud_spend_since(c, start))
            .await
        {
            Ok(spent) => self.relay.burst.spend.reset(zone, now, spent),
            Err(e) => tracing::error!(error = %e, "could not recount today's cloud spend"),
        }
    }
}
