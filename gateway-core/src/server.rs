//! Starting and stopping a gateway: open the store, build the state, bind, serve with
//! graceful shutdown, keep the snapshot fresh, flush usage on the way out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, JwtKeys};
use crate::burst::{BURST_SETTINGS_KEY, BurstState};
use crate::config::Config;
use crate::live::writer::WriterThread;
use crate::relay::{RelayState, UsageWriter};
use crate::snapshot::Snapshot;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::store::{logs, now_ms, settings};

/// Why a gateway could not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] auth::AuthError),
    #[error(
        "port {port} on {host} is already in use: stop the other program or choose another port with PORT=<n>"
    )]
    PortInUse { host: String, port: u16 },
    #[error("not allowed to listen on {addr}: choose a port above 1024 with PORT=<n>")]
    PermissionDenied { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("BURNCLOUD_ADMIN_PASSWORD: {0}")]
    AdminPassword(&'static str),
    #[error("cannot secure the data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// How the first admin account comes to be (see [`Gateway::bootstrap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Accounts exist already.
    Ready,
    /// `BURNCLOUD_ADMIN_PASSWORD` created the admin `admin`.
    AdminCreated,
    /// No account yet: the first registration must come from this machine or carry this
    /// token (also written, 0600, to `path`).
    SetupToken {
        token: String,
        path: std::path::PathBuf,
    },
}

/// An opened gateway: state and background tasks, not yet (or no longer) listening.
pub struct Gateway {
    state: Arc<AppState>,
    /// Routes the embedding program serves beside the gateway's (the web console).
    extra: std::sync::Mutex<Option<axum::Router>>,
    writer_thread: WriterThread,
    watcher_task: JoinHandle<()>,
    /// Several gateways on one database: this one's instance id and lease task.
    lease: Option<(String, JoinHandle<()>)>,
}

impl Gateway {
    /// Open the database (migrating it), load or create the JWT secret, start the usage
    /// writer and the config watcher. Must run inside a tokio runtime.
    pub async fn open(config: Config) -> Result<Gateway, StartError> {
        let data_dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || crate::secure::secure_data_dir(&data_dir))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
            .map_err(|source| StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        let location = config.database.clone();
        let store = tokio::task::spawn_blocking(move || Store::connect(&location))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        let secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => {
                let dir = config.data_dir.clone();
                tokio::task::spawn_blocking(move || auth::load_or_create_secret(&dir))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))??
            }
        };
        let snapshot = store.run(Snapshot::load).await?;
        let base = config.burst.clone();
        let burst = store
            .run(move |c| {
                let saved = settings::get(c, BURST_SETTINGS_KEY)?;
                let mut failed = None;
                let burst = BurstState::new(base, saved.as_deref(), now_ms(), |since| {
                    logs::cloud_spend_since(c, since).unwrap_or_else(|e| {
                        failed = Some(e);
                        0
                    })
                });
                match failed {
                    Some(e) => Err(e),
                    None => Ok(burst),
                }
            })
            .await?;
        // On PostgreSQL other gateways may share the database: quotas are spent through
        // leases and per-minute limits are shared (see `store::leases`).
        let instance = matches!(config.database, crate::store::Location::Postgres { .. })
            .then(|| uuid::Uuid::new_v4().simple().to_string());
        let changes = tokio::sync::watch::channel(0u64).0;
        let (writer, writer_thread) =
            UsageWriter::start(store.clone(), instance.clone(), changes.clone())
                .map_err(|e| StoreError::Task(e.to_string()))?;
        let relay = RelayState::new(config.relay.clone(), burst, writer, changes)
            .map_err(|e| StartError::Client(e.to_string()))?;
        relay.ledger.sync(&snapshot);
        if let Some(id) = &instance {
            relay.ledger.use_leases();
            crate::live::leases::heartbeat(&store, id, &relay).await?;
        }
        let state = AppState::new(
            config,
            store,
            JwtKeys::new(secret.as_bytes()),
            snapshot,
            relay,
        );
        let watcher_task = tokio::spawn(watch_config(state.clone()));
        let lease = instance.map(|id| {
            let task = tokio::spawn(lease_task(state.clone(), id.clone()));
            (id, task)
        });
        Ok(Gateway {
            state,
            extra: std::sync::Mutex::new(None),
            writer_thread,
            watcher_task,
            lease,
        })
    }

    /// Make sure an admin can come to be: with no account, create `admin` from
    /// `BURNCLOUD_ADMIN_PASSWORD`, or issue a one-time setup token. The headless router
    /// calls this and prints the outcome; the desktop app creates its own admin instead.
    pub async fn bootstrap(&self) -> Result<Bootstrap, StartError> {
        let state = self.state.clone();
        let has_users = state
            .store
            .run(|c| {
                Ok(c.query_row("SELECT EXISTS(SELECT 1 FROM users)", [], |r| {
                    r.get::<_, bool>(0)
                })?)
            })
            .await?;
        if has_users {
            return Ok(Bootstrap::Ready);
        }
        if let Some(password) = state.config.admin_password.clone() {
            if let Some(why) = auth::password_weakness(&password, "admin") {
                return Err(StartError::AdminPassword(why));
            }
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??;
            state
                .store
                .run(move |c| crate::store::users::create(c, "admin", None, &hash).map(|_| ()))
                .await?;
            state.config_changed().await;
            return Ok(Bootstrap::AdminCreated);
        }
        let token = auth::random_alnum(32);
        let path = state.setup_token_path();
        let (p, t) = (path.clone(), token.clone());
        tokio::task::spawn_blocking(move || crate::secure::write_private(&p, t.as_bytes()))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
            .map_err(|source| StartError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        state.set_setup_token(token.clone());
        Ok(Bootstrap::SetupToken { token, path })
    }

    /// The shared state (the desktop app calls services through it).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serve `routes` beside the gateway's own, behind the same Host/Origin guard, on
    /// every listener started after this call (the web console; replaces earlier ones).
    pub fn mount(&self, routes: axum::Router) {
        *self.extra.lock().unwrap_or_else(|p| p.into_inner()) = Some(routes);
    }

    /// Start listening on the configured `HOST:PORT`.
    pub async fn serve(&self) -> Result<ServeHandle, StartError> {
        let addr = SocketAddr::new(self.state.config.host, self.state.config.port);
        self.serve_on(addr).await
    }

    /// Start listening on `addr` (port 0 picks a free port).
    pub async fn serve_on(&self, addr: SocketAddr) -> Result<ServeHandle, StartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => StartError::PortInUse {
                    host: addr.ip().to_string(),
                    port: addr.port(),
                },
                std::io::ErrorKind::PermissionDenied => StartError::PermissionDenied { addr },
                _ => StartError::Bind { addr, source: e },
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind { addr, source: e })?;
        let extra = self.extra.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let front = crate::http::front(self.state.clone(), local_addr, extra);
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let join = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            crate::http::serve(listener, front, shutdown).await;
        });
        tracing::info!(%local_addr, "gateway listening");
        Ok(ServeHandle {
            local_addr,
            stop_tx,
            join,
        })
    }

    /// Flush usage records and stop background tasks.
    pub async fn shutdown(self) {
        self.state.relay.writer.flush().await;
        self.watcher_task.abort();
        if let Some((id, task)) = &self.lease {
            // Everything spent is stored: give the rest of the leases back at once.
            task.abort();
            let id = id.clone();
            if let Err(e) = self
                .state
                .store
                .run(move |c| crate::store::leases::leave(c, &id))
                .await
            {
                tracing::warn!("could not return the quota leases: {e}");
            }
        }
        // The writer thread ends once the last sender (inside the state) is gone. Other
        // long-lived holders of the state (the desktop's console, the local runtime) keep
        // it: everything queued so far is committed by the flush above, so do not wait.
        if Arc::strong_count(&self.state) > 1 {
            tracing::debug!(
                "the state is still shared; usage flushed, not waiting for the writer thread"
            );
            return;
        }
        drop(self.state);
        let writer = self.writer_thread;
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || writer.join()),
        )
        .await;
    }
}

/// A listening gateway.
pub struct ServeHandle {
    local_addr: SocketAddr,
    stop_tx: watch::Sender<bool>,
    join: JoinHandle<()>,
}

impl ServeHandle {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, let in-flight requests finish (at most `grace`), then return.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop_tx.send(true);
        let mut join = self.join;
        if tokio::time::timeout(grace, &mut join).await.is_err() {
            tracing::warn!("in-flight requests did not finish within {grace:?}; closing them");
            join.abort();
        }
    }
}

/// Several gateways on one database: top up the quota leases the ledger runs low on (at
/// once when a request waits for one, else four times a second) and beat every 2 s.
async fn lease_task(state: Arc<AppState>, instance: String) {
    let mut round = tokio::time::interval(Duration::from_millis(250));
    let mut beat = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = round.tick() => {}
            _ = state.relay.ledger.lease_wanted.notified() => {}
            _ = beat.tick() => {
                if let Err(e) = crate::live::leases::heartbeat(&state.store, &instance, &state.relay).await {
                    tracing::warn!("gateway heartbeat: {e}");
                }
            }
        }
        if let Err(e) = crate::live::leases::top_up(&state.store, &instance, &state.relay).await {
            tracing::warn!("quota leases: {e}");
        }
    }
}

/// Reload the snapshot when another process (the CLI, a second gateway) changed the
/// routing configuration: polls the `config_rev` counter twice a second. Also applies the
/// request-log retention (at start, then hourly).
async fn watch_config(state: Arc<AppState>) {
    let location = state.store.location().clone();
    let conn = match tokio::task::spawn_blocking(move || Store::connection(&location)).await {
        Ok(Ok(c)) => Arc::new(std::sync::Mutex::new(c)),
        _ => {
            tracing::error!(
                "config watcher could not open the database; external changes need a restart"
            );
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    // Request-log retention is applied at start and then hourly (7,200 ticks).
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        if ticks.is_multiple_of(7_200) {
            let pruned = state
                .store
                .run(|c| crate::store::logs::apply_retention(c, crate::store::now_ms()))
                .await;
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deleted = n,
                    "request-log records past their retention deleted"
                ),
                Err(e) => tracing::warn!("request-log retention: {e}"),
            }
        }
        ticks += 1;
        let c = conn.clone();
        let rev = tokio::task::spawn_blocking(move || {
            let guard = c.lock().unwrap_or_else(|p| p.into_inner());
            Store::config_rev(&guard)
        })
        .await;
        if let Ok(Ok(rev)) = rev
            && rev != state.snapshot.load().rev
        {
            tracing::debug!(rev, "configuration changed elsewhere; reloading");
            state.config_changed().await;
        }
    }
}
