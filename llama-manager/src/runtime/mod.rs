//! The local runtime: llama-server children supervised by one owner, registered with the
//! gateway as `local-<id>` channels while ready.
//!
//! - [`engine`] — find the llama-server binary, its version; install a release archive.
//! - [`deploy`] — deployments in the database: settings, desired and reported state.
//! - [`ports`] — free ports, who holds a busy one.
//! - [`process`] — process groups, parent-death signal, SIGTERM → SIGKILL, pid files.
//! - [`args`] — the allow-list of extra llama-server arguments.
//! - [`catalog`] — the llama.cpp release's assets by OS, arch and backend; the best for a machine.
//! - [`classify`] — failure classes from exit and log lines.
//! - `supervisor` — the actor that owns every child.
//!
//! [`Runtime`] is the handle the app keeps; it implements gateway-core's
//! [`LocalRuntime`] so requests for a stopped just-in-time model start it.

pub mod args;
pub mod catalog;
pub mod classify;
pub mod deploy;
pub mod engine;
pub mod ports;
pub mod process;
mod supervisor;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_core::AppState;
use gateway_core::local::{BoxFuture, EnsureError, LocalRuntime};
use tokio::sync::{mpsc, oneshot, watch};

pub use deploy::{DeploySettings, Deployment, GpuLayers, Mode, SettingsPatch, State, Status};

/// Tunables (environment overridable, see [`RuntimeOptions::from_env`]).
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub data_dir: PathBuf,
    /// The configured engine (`LLAMA_SERVER`); None: discover.
    pub engine: Option<PathBuf>,
    /// First port tried when a deployment names none.
    pub first_port: u16,
    /// Loading fails after this long without output or a change of `/health`'s answer.
    pub stall_timeout: Duration,
    /// SIGTERM → SIGKILL.
    pub stop_grace: Duration,
    /// Health checks of a ready child.
    pub health_interval: Duration,
    /// Crash restarts allowed within `restart_window` before the state becomes failed.
    pub max_restarts: u32,
    pub restart_window: Duration,
    /// First restart delay (doubles each time).
    pub restart_backoff: Duration,
    /// How often desired states are re-read from the database.
    pub tick: Duration,
}

impl RuntimeOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeOptions {
            data_dir: data_dir.into(),
            engine: None,
            first_port: ports::FIRST_PORT,
            stall_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
            health_interval: Duration::from_secs(5),
            max_restarts: 3,
            restart_window: Duration::from_secs(300),
            restart_backoff: Duration::from_secs(1),
            tick: Duration::from_millis(500),
        }
    }

    /// Defaults, then `LLAMA_SERVER`, `BURNCLOUD_LOCAL_FIRST_PORT`,
    /// `BURNCLOUD_LOAD_STALL_SECS`, `BURNCLOUD_MAX_RESTARTS`, `BURNCLOUD_RESTART_BACKOFF_MS`,
    /// `BURNCLOUD_HEALTH_INTERVAL_MS`.
    pub fn from_env(data_dir: impl Into<PathBuf>) -> Self {
        let mut o = RuntimeOptions::new(data_dir);
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str| var(k).and_then(|v| v.parse::<u64>().ok());
        o.engine = var("LLAMA_SERVER").map(PathBuf::from);
        if let Some(p) = num("BURNCLOUD_LOCAL_FIRST_PORT") {
            o.first_port = p.clamp(1, 65535) as u16;
        }
        if let Some(s) = num("BURNCLOUD_LOAD_STALL_SECS") {
            o.stall_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = num("BURNCLOUD_MAX_RESTARTS") {
            o.max_restarts = n as u32;
        }
        if let Some(ms) = num("BURNCLOUD_RESTART_BACKOFF_MS") {
            o.restart_backoff = Duration::from_millis(ms);
        }
        if let Some(ms) = num("BURNCLOUD_HEALTH_INTERVAL_MS") {
            o.health_interval = Duration::from_millis(ms.max(50));
        }
        o
    }
}

/// A child's output: the last lines in memory, every line appended to its log file.
#[derive(Debug, Default)]
pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
    file: Mutex<Option<std::fs::File>>,
    bytes: AtomicU64,
}

const RING_LINES: usize = 2000;

/// Lines logged by every child so far: a page showing log tails follows it.
static LOG_LINES: std::sync::LazyLock<watch::Sender<u64>> =
    std::sync::LazyLock::new(|| watch::channel(0).0);

impl LogRing {
    fn push(&self, line: String) {
        LOG_LINES.send_modify(|n| *n += 1);
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            let _ = writeln!(f, "{line}");
        }
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() == RING_LINES {
            l.pop_front();
        }
        l.push_back(line);
    }

    fn attach_file(&self, f: Option<std::fs::File>) {
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }
}

/// The pid of the BurnCloud that supervises the local models of `data_dir` now (it holds
/// `<data dir>/runtime/supervisor.lock`), if any.
pub fn supervisor_pid(data_dir: &Path) -> Option<u32> {
    crate::instance::holder(&data_dir.join("runtime"), supervisor::SUPERVISOR_LOCK).map(|o| o.pid)
}

/// The log file of model `id`'s llama-server.
pub fn log_path(data_dir: &Path, id: i64) -> PathBuf {
    data_dir
        .join("logs")
        .join(format!("{}.log", gateway_core::local::channel_name(id)))
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Init(String),
    #[error("cannot start the runtime thread: {0}")]
    Thread(std::io::Error),
}

struct Inner {
    cmds: mpsc::UnboundedSender<supervisor::Cmd>,
    statuses: watch::Receiver<HashMap<i64, Status>>,
    logs: Arc<Mutex<HashMap<i64, Arc<LogRing>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The handle to the supervisor (cheap to clone).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Start the supervisor on its own thread for `gateway`'s database, clean up what a
    /// previous run left, start the autostart deployments, and wire itself into the
    /// gateway for just-in-time starts.
    pub async fn start(
        gateway: Arc<AppState>,
        opts: RuntimeOptions,
    ) -> Result<Runtime, RuntimeError> {
        let (cmds_tx, cmds_rx) = mpsc::unbounded_channel();
        let (status_tx, statuses) = watch::channel(HashMap::new());
        let logs: Arc<Mutex<HashMap<i64, Arc<LogRing>>>> = Arc::default();
        let (init_tx, init_rx) = oneshot::channel();
        let sup = supervisor::Supervisor::new(
            gateway.clone(),
            opts,
            cmds_tx.clone(),
            status_tx,
            logs.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("burncloud-runtime".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = init_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut sup = sup;
                    match sup.init().await {
                        Ok(()) => {
                            let _ = init_tx.send(Ok(()));
                            sup.run(cmds_rx).await;
                        }
                        Err(e) => {
                            let _ = init_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(RuntimeError::Thread)?;
        match init_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(RuntimeError::Init(e));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(RuntimeError::Init("the runtime thread ended".into()));
            }
        }
        let rt = Runtime {
            inner: Arc::new(Inner {
                cmds: cmds_tx,
                statuses,
                logs,
                thread: Mutex::new(Some(thread)),
            }),
        };
        gateway.set_local_runtime(Arc::new(rt.clone()));
        Ok(rt)
    }

    /// Re-read desired states now (after a change in this process).
    pub fn reconcile(&self) {
        let _ = self.inner.cmds.send(supervisor::Cmd::Reconcile);
    }

    /// Wait until deployment `id` is ready, failed or stopped; its status then.
    pub async fn settled(&self, id: i64) -> Option<Status> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmds
            .send(supervisor::Cmd::Settled { id, reply: tx })
            .ok()?;
        rx.await.ok()
    }

    /// Current statuses of the deployments this runtime has seen.
    pub fn statuses(&self) -> HashMap<i64, Status> {
        self.inner.statuses.borrow().clone()
    }

    /// Changes of the statuses.
    pub fn subscribe(&self) -> watch::Receiver<HashMap<i64, Status>> {
        self.inner.statuses.clone()
    }

    /// Changes whenever a child logs a line (a count of lines; watchers only wake).
    pub fn subscribe_logs(&self) -> watch::Receiver<u64> {
        LOG_LINES.subscribe()
    }

    /// The last `n` log lines of model `id`'s child (this run).
    pub fn logs(&self, id: i64, n: usize) -> Vec<String> {
        self.inner
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|l| l.tail(n))
            .unwrap_or_default()
    }

    /// Stop every child and the supervisor (idempotent).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .cmds
            .send(supervisor::Cmd::Shutdown { reply: tx })
            .is_ok()
        {
            let _ = rx.await;
        }
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl LocalRuntime for Runtime {
    fn ensure_running(&self, model_id: i64) -> BoxFuture<'_, Result<(), EnsureError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.inner
                .cmds
                .send(supervisor::Cmd::Ensure {
                    id: model_id,
                    reply: tx,
                })
                .map_err(|_| EnsureError::Unavailable("the local runtime has stopped".into()))?;
            rx.await
                .map_err(|_| EnsureError::Unavailable("the local runtime has stopped".into()))?
        })
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[tokio::test]
    async fn a_logged_line_wakes_the_log_watchers() {
        let mut rx = LOG_LINES.subscribe();
        rx.mark_unchanged();
        let ring = LogRing::default();
        ring.push("main: server is listening".into());
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
            .await
            .expect("woken by the new line")
            .unwrap();
        assert_eq!(ring.tail(1), ["main: server is listening"]);
    }
}
