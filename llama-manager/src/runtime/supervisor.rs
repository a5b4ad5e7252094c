//! The one owner of every llama-server child: an actor on its own long-lived thread (so a
//! child's parent-death signal fires only when the process dies, see stack notes). It
//! takes commands (ensure running, reconcile, shutdown) and child events (spawned, ready,
//! health, exited) from channels; no other code touches a child or its state.
//!
//! Desired state lives in the database (`deployments.desired`), so the CLI of another
//! process can start and stop models: the actor reconciles every tick and on every command.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_core::AppState;
use gateway_core::local::{EnsureError, channel_name};
use gateway_core::store::channels::{self, ChannelFields};
use gateway_core::store::{Store, StoreResult, now_ms, now_secs};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::classify::{self, FailureKind};
use super::deploy::{self, Deployment, State, Status};
use super::engine;
use super::ports;
use super::process::{self, PidFiles};
use super::{LogRing, RuntimeOptions};
use crate::fit;
use crate::hardware::{self, Hardware};
use crate::library::Library;

pub(super) enum Cmd {
    Ensure {
        id: i64,
        reply: oneshot::Sender<Result<(), EnsureError>>,
    },
    /// Wait for a deployment to settle (ready, failed or stopped) after a desired change.
    Settled {
        id: i64,
        reply: oneshot::Sender<Status>,
    },
    Reconcile,
    Restart {
        id: i64,
        generation: u64,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

enum Event {
    Spawned {
        id: i64,
        generation: u64,
        pid: u32,
    },
    Ready {
        id: i64,
        generation: u64,
    },
    Health {
        id: i64,
        generation: u64,
        up: bool,
    },
    Exited {
        id: i64,
        generation: u64,
        /// None: it was asked to stop.
        failure: Option<(FailureKind, String)>,
    },
}

#[derive(Default)]
struct Slot {
    generation: u64,
    status: Status,
    stop: Option<oneshot::Sender<()>>,
    stopping: bool,
    waiters: Vec<oneshot::Sender<Result<(), EnsureError>>>,
    settle_waiters: Vec<oneshot::Sender<Status>>,
    crashes: Vec<Instant>,
    ready_at: Option<Instant>,
    /// The running child's `--api-key`.
    api_key: String,
    logs: Arc<LogRing>,
}

pub(super) struct Supervisor {
    gateway: Arc<AppState>,
    store: Store,
    library: Library,
    opts: RuntimeOptions,
    pid_files: PidFiles,
    slots: HashMap<i64, Slot>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    cmds_tx: mpsc::UnboundedSender<Cmd>,
    statuses: watch::Sender<HashMap<i64, Status>>,
    logs: Arc<std::sync::Mutex<HashMap<i64, Arc<LogRing>>>>,
    /// The hardware as seen with an engine (which one).
    hardware: Option<(PathBuf, Hardware)>,
    client: reqwest::Client,
    /// The supervisor lock of this data folder, held from `init` to `shutdown`.
    lock: Option<crate::instance::Lock>,
}

/// `<data dir>/runtime/supervisor.lock`.
pub(super) const SUPERVISOR_LOCK: &str = "supervisor";

impl Supervisor {
    pub(super) fn new(
        gateway: Arc<AppState>,
        opts: RuntimeOptions,
        cmds_tx: mpsc::UnboundedSender<Cmd>,
        statuses: watch::Sender<HashMap<i64, Status>>,
        logs: Arc<std::sync::Mutex<HashMap<i64, Arc<LogRing>>>>,
    ) -> Self {
        let store = gateway.store.clone();
        let library = Library::new(store.clone(), gateway.config.data_dir.join("models"));
        let (events_tx, events) = mpsc::unbounded_channel();
        Supervisor {
            pid_files: PidFiles::new(opts.data_dir.join("runtime")),
            gateway,
            store,
            library,
            opts,
            slots: HashMap::new(),
            events_tx,
            events,
            cmds_tx,
            statuses,
            logs,
            hardware: None,
            lock: None,
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Clean up after a previous run: stop orphans, drop stale channels, reset desired
    /// states (autostart → running). Fails when another live process owns this database.
    pub(super) async fn init(&mut self) -> Result<(), String> {
        // Ownership is an OS file lock, held until shutdown or the process's death (no
        // heartbeat race: two processes cannot both take it).
        match crate::instance::Lock::acquire(&self.opts.data_dir.join("runtime"), SUPERVISOR_LOCK) {
            Ok(lock) => self.lock = Some(lock),
            Err(crate::instance::LockError::Held(o)) => {
                return Err(format!(
                    "another BurnCloud ({}) supervises the local models of this data folder",
                    o.describe()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
        let reaped = self.pid_files.reap_orphans();
        if !reaped.is_empty() {
            tracing::warn!(
                ?reaped,
                "stopped llama-server processes left by a previous run"
            );
        }
        let now = now_ms();
        self.store
            .with(|c| {
                for d in deploy::list(c)? {
                    if let Some(ch) = d.status.channel_id {
                        let _ = channels::delete(c, ch);
                    }
                    deploy::report(
                        c,
                        d.model_id,
                        &Status {
                            restarts: 0,
                            ..Status::default()
                        },
                    )?;
                    c.execute(
                        "UPDATE deployments SET desired = ?1, desired_at = ?2 WHERE model_id = ?3",
                        gateway_core::store::db::params![
                            if d.settings.autostart {
                                "running"
                            } else {
                                "stopped"
                            },
                            now,
                            d.model_id
                        ],
                    )?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        self.gateway.config_changed().await;
        self.reconcile().await;
        Ok(())
    }

    pub(super) async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut tick = tokio::time::interval(self.opts.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Shutdown { reply }) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.command(cmd).await,
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(ev) = self.events.recv() => self.event(ev).await,
                _ = tick.tick() => {
                    let deps = self.reconcile().await;
                    self.unload_idle(&deps);
                }
            }
        }
    }

    async fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Ensure { id, reply } => self.ensure(id, reply).await,
            Cmd::Settled { id, reply } => {
                self.reconcile().await;
                let slot = self.slots.entry(id).or_default();
                match slot.status.state {
                    State::Ready | State::Failed | State::Stopped if !slot.stopping => {
                        let _ = reply.send(slot.status.clone());
                    }
                    _ => slot.settle_waiters.push(reply),
                }
            }
            Cmd::Reconcile => {
                self.reconcile().await;
            }
            Cmd::Restart { id, generation } => {
                let Some(slot) = self.slots.get(&id) else {
                    return;
                };
                if slot.generation != generation || slot.status.state != State::Restarting {
                    return;
                }
                match self.store.with(|c| deploy::get(c, id)) {
                    Ok(Some(d)) if d.desired_running => self.launch(&d).await,
                    _ => self.set_state(id, State::Stopped, None),
                }
            }
            Cmd::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    /// Just-in-time start: one start for every caller.
    async fn ensure(&mut self, id: i64, reply: oneshot::Sender<Result<(), EnsureError>>) {
        let state = self.slots.get(&id).map(|s| s.status.state);
        match state {
            Some(State::Ready) => {
                let _ = reply.send(Ok(()));
                return;
            }
            Some(State::Starting | State::Restarting) => {
                self.slots.entry(id).or_default().waiters.push(reply);
                return;
            }
            _ => {}
        }
        match self.store.with(|c| {
            if deploy::get(c, id)?.is_none() {
                return Ok(false);
            }
            deploy::set_desired(c, id, true)?;
            Ok(true)
        }) {
            Ok(true) => {}
            Ok(false) => {
                let _ = reply.send(Err(EnsureError::Unavailable(format!(
                    "{} is not deployed",
                    channel_name(id)
                ))));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(EnsureError::Failed(e.to_string())));
                return;
            }
        }
        self.slots.entry(id).or_default().waiters.push(reply);
        self.reconcile().await;
    }

    /// Bring children in line with the desired states in the database; the rows read.
    async fn reconcile(&mut self) -> Vec<Deployment> {
        let deps = match self.store.with(|c| deploy::list(c)) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read deployments");
                return Vec::new();
            }
        };
        for d in &deps {
            let slot = self.slots.entry(d.model_id).or_default();
            let state = slot.status.state;
            let changed = d.desired_at != slot.status.acted_at;
            if d.desired_running && !state.active() && changed {
                slot.status.acted_at = d.desired_at;
                slot.crashes.clear();
                slot.status.restarts = 0;
                slot.status.last_error = None;
                self.launch(d).await;
            } else if !d.desired_running && state.active() && !slot.stopping {
                slot.status.acted_at = d.desired_at;
                self.stop_child(d.model_id);
            } else if changed
                && if d.desired_running {
                    state.active() && !slot.stopping
                } else {
                    !state.active()
                }
            {
                // Already as desired: acknowledge, so a waiting CLI returns (a stop still
                // in progress is acted on once it has finished).
                slot.status.acted_at = d.desired_at;
                self.report(d.model_id);
            }
        }
        let gone: Vec<i64> = self
            .slots
            .keys()
            .copied()
            .filter(|id| !deps.iter().any(|d| d.model_id == *id))
            .collect();
        for id in gone {
            if self.slots[&id].status.state.active() {
                self.stop_child(id);
            } else {
                self.slots.remove(&id);
            }
        }
        deps
    }

    /// Stop ready children idle for longer than their TTL.
    fn unload_idle(&mut self, deps: &[Deployment]) {
        let mut idle = Vec::new();
        for d in deps {
            let ttl = d.settings.idle_ttl_secs;
            if ttl == 0 {
                continue;
            }
            let Some(slot) = self.slots.get(&d.model_id) else {
                continue;
            };
            let (Some(ch), Some(ready_at)) = (slot.status.channel_id, slot.ready_at) else {
                continue;
            };
            if slot.status.state != State::Ready || slot.stopping {
                continue;
            }
            if self.gateway.channel_in_flight(ch) > 0 {
                continue;
            }
            let since_ready = ready_at.elapsed().as_millis() as i64;
            let since_use = match self.gateway.channel_last_active_ms(ch) {
                0 => since_ready,
                t => (now_ms() - t).min(since_ready),
            };
            if since_use >= (ttl as i64) * 1000 {
                idle.push((d.model_id, since_use / 1000));
            }
        }
        for (id, secs) in idle {
            tracing::info!(
                model = id,
                idle_secs = secs,
                "unloading an idle local model"
            );
            if let Err(e) = self.store.with(|c| deploy::set_desired(c, id, false)) {
                tracing::warn!(error = %e, "cannot record the idle unload");
            }
            self.stop_child(id);
            if let Some(s) = self.slots.get_mut(&id) {
                s.status.acted_at = self
                    .store
                    .with(|c| deploy::get(c, id))
                    .ok()
                    .flatten()
                    .map_or(s.status.acted_at, |d| d.desired_at);
            }
        }
    }

    fn publish(&self) {
        let map: HashMap<i64, Status> = self
            .slots
            .iter()
            .map(|(id, s)| (*id, s.status.clone()))
            .collect();
        self.statuses.send_replace(map);
    }

    fn report(&self, id: i64) {
        if let Some(s) = self.slots.get(&id)
            && let Err(e) = self.store.with(|c| deploy::report(c, id, &s.status))
        {
            tracing::warn!(error = %e, model = id, "cannot record the runtime state");
        }
        self.publish();
    }

    fn set_state(&mut self, id: i64, state: State, error: Option<String>) {
        let slot = self.slots.entry(id).or_default();
        slot.status.state = state;
        if error.is_some() {
            slot.status.last_error = error.clone();
        }
        if !state.active() {
            slot.status.pid = None;
            slot.ready_at = None;
            slot.stop = None;
            slot.stopping = false;
            let outcome = match (&error, state) {
                (Some(e), _) => Err(EnsureError::Failed(e.clone())),
                (None, _) => Err(EnsureError::Unavailable(format!(
                    "{} was stopped",
                    channel_name(id)
                ))),
            };
            for w in slot.waiters.drain(..) {
                let _ = w.send(outcome.clone());
            }
        }
        if matches!(state, State::Ready | State::Failed | State::Stopped) {
            let s = slot.status.clone();
            for w in slot.settle_waiters.drain(..) {
                let _ = w.send(s.clone());
            }
        }
        self.report(id);
    }

    fn fail(&mut self, id: i64, kind: FailureKind, detail: String) {
        let msg = format!("{}: {detail} — {}", kind.label(), kind.advice());
        tracing::warn!(model = id, "{msg}");
        if let Some(slot) = self.slots.get(&id) {
            slot.logs.push(format!("[burncloud] {msg}"));
        }
        self.set_state(id, State::Failed, Some(msg));
    }

    /// Start a child for deployment `d` (state → starting; the child task reports back).
    async fn launch(&mut self, d: &Deployment) {
        let id = d.model_id;
        let model = match self.library.get(&id.to_string()) {
            Ok(m) => m,
            Err(e) => {
                self.fail(id, FailureKind::BadModel, e.to_string());
                return;
            }
        };
        let eng = match engine::locate_backend(
            &self.opts.data_dir,
            self.opts.engine.as_deref(),
            d.settings.engine,
        ) {
            Ok(e) => e,
            Err(e) => {
                self.fail(id, FailureKind::Spawn, e.to_string());
                return;
            }
        };
        let taken: Vec<u16> = self
            .slots
            .iter()
            .filter(|(other, s)| **other != id && s.status.state.active())
            .filter_map(|(_, s)| s.status.port)
            .collect();
        let port = match d.settings.port {
            Some(p) if taken.contains(&p) || !ports::is_free(p) => {
                let msg = ports::explain_busy(p, &taken);
                self.fail(id, FailureKind::PortInUse, msg);
                return;
            }
            Some(p) => p,
            None => match ports::first_free(self.opts.first_port, &taken) {
                Some(p) => p,
                None => {
                    self.fail(id, FailureKind::PortInUse, "no free port".into());
                    return;
                }
            },
        };
        // The probes plus the engine's own device list (free memory per device), once per
        // engine.
        let hw = match &self.hardware {
            Some((p, hw)) if *p == eng.path => hw.clone(),
            _ => {
                let path = eng.path.clone();
                let hw =
                    tokio::task::spawn_blocking(move || hardware::detect_with_engine(Some(&path)))
                        .await
                        .unwrap_or_else(|_| hardware::detect());
                for w in &hw.warnings {
                    tracing::warn!("{w}");
                }
                self.hardware = Some((eng.path.clone(), hw.clone()));
                hw
            }
        };
        let verdict = fit::fit_with(
            &model.summary,
            model.size,
            &hw,
            fit::KvTypes::from_args(&d.settings.extra_args),
        );
        let ctx = d.settings.ctx_size.unwrap_or(verdict.ctx.max(1));
        let ngl = d
            .settings
            .gpu_layers
            .map(|g| g.arg())
            .unwrap_or_else(|| verdict.gpu_layers.to_string());
        // Settings stored by an older version are checked again before anything runs.
        if let Err(e) = super::args::check(&d.settings.extra_args) {
            self.fail(id, FailureKind::BadArguments, e);
            return;
        }
        let api_key = gateway_core::auth::random_alnum(40);
        let mut args: Vec<String> = vec![
            "-m".into(),
            model.path.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "-c".into(),
            ctx.to_string(),
            "-ngl".into(),
            ngl,
            "--alias".into(),
            channel_name(id),
        ];
        // The API key goes through the environment (LLAMA_API_KEY), never the command
        // line, which every local user can read (`ps`, /proc/PID/cmdline).
        if let Some(mm) = model.mmproj() {
            args.extend(["--mmproj".into(), mm.path.display().to_string()]);
        }
        if let Some(t) = d.settings.threads {
            args.extend(["-t".into(), t.to_string()]);
        }
        if let Some(n) = d.settings.parallel {
            args.extend(["-np".into(), n.to_string()]);
        }
        if let Some(flag) = d.settings.mode.flag() {
            args.push(flag.into());
        }
        // `/v1/embeddings` needs pooled vectors: a model that names no pooling (a chat
        // model) is pooled by mean; embedding models keep their own (CLS, last, mean).
        if d.settings.mode == super::Mode::Embeddings
            && model.summary.pooling_type.is_none_or(|p| p == 0)
            && !d
                .settings
                .extra_args
                .iter()
                .any(|a| a.starts_with("--pooling"))
        {
            args.extend(["--pooling".into(), "mean".into()]);
        }
        args.extend(d.settings.extra_args.iter().cloned());

        let slot = self.slots.entry(id).or_default();
        slot.generation += 1;
        let generation = slot.generation;
        slot.api_key = api_key.clone();
        let logs = slot.logs.clone();
        let (stop_tx, stop_rx) = oneshot::channel();
        slot.stop = Some(stop_tx);
        slot.stopping = false;
        slot.status.port = Some(port);
        slot.status.pid = None;
        slot.status.started_at = Some(now_secs());
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, logs.clone());
        let log_file = self
            .opts
            .data_dir
            .join("logs")
            .join(format!("{}.log", channel_name(id)));
        if let Some(dir) = log_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        logs.attach_file(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_file)
                .ok(),
        );
        logs.push(format!(
            "[burncloud] starting {} {} (API key in {}; {}, fit: {})",
            eng.path.display(),
            shown_args(&args),
            process::API_KEY_ENV,
            eng.source.label(),
            verdict.verdict.label()
        ));
        for w in &hw.warnings {
            logs.push(format!("[burncloud] warning: {w}"));
        }
        self.set_state(id, State::Starting, None);
        let child = ChildTask {
            id,
            generation,
            program: eng.path.clone(),
            args,
            port,
            api_key,
            logs,
            events: self.events_tx.clone(),
            client: self.client.clone(),
            opts: self.opts.clone(),
            pid_files: self.pid_files.clone(),
        };
        tokio::spawn(child.run(stop_rx));
    }

    fn stop_child(&mut self, id: i64) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.stopping = true;
        if let Some(stop) = slot.stop.take() {
            let _ = stop.send(());
            slot.status.state = State::Stopping;
            self.report(id);
        } else if slot.status.state == State::Restarting {
            // Waiting for a backoff: nothing runs.
            self.set_state(id, State::Stopped, None);
        }
    }

    async fn event(&mut self, ev: Event) {
        match ev {
            Event::Spawned {
                id,
                generation,
                pid,
            } => {
                if let Some(s) = self.slots.get_mut(&id)
                    && s.generation == generation
                {
                    s.status.pid = Some(pid);
                    self.report(id);
                }
            }
            Event::Ready { id, generation } => self.ready(id, generation).await,
            Event::Health { id, generation, up } => {
                if let Some(s) = self.slots.get(&id)
                    && s.generation == generation
                    && let Some(ch) = s.status.channel_id
                {
                    self.gateway.report_channel_health(ch, up);
                }
            }
            Event::Exited {
                id,
                generation,
                failure,
            } => self.exited(id, generation, failure).await,
        }
    }

    async fn ready(&mut self, id: i64, generation: u64) {
        let Some(slot) = self.slots.get(&id) else {
            return;
        };
        if slot.generation != generation || slot.stopping {
            return;
        }
        let port = slot.status.port.unwrap_or_default();
        let key = slot.api_key.clone();
        let name = channel_name(id);
        let created = self.store.with(|c| {
            channels::create(
                c,
                ChannelFields {
                    name: Some(name.clone()),
                    channel_type: Some(1),
                    key: Some(key),
                    base_url: Some(format!("http://127.0.0.1:{port}")),
                    models: Some(name.clone()),
                    group: Some("default".into()),
                    weight: Some(1),
                    priority: Some(0),
                    locality: Some("local".into()),
                    ..Default::default()
                },
            )
        });
        match created {
            Ok(ch) => {
                let slot = self.slots.get_mut(&id).expect("slot");
                slot.status.channel_id = Some(ch.id);
                slot.ready_at = Some(Instant::now());
                slot.logs.push(format!(
                    "[burncloud] ready on port {port}: registered channel {name} (id {})",
                    ch.id
                ));
                self.gateway.report_channel_health(ch.id, true);
                // The snapshot must show the channel before any waiter routes to it.
                self.gateway.config_changed().await;
                let slot = self.slots.get_mut(&id).expect("slot");
                for w in slot.waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
                self.set_state(id, State::Ready, None);
            }
            Err(e) => {
                self.stop_child(id);
                self.fail(
                    id,
                    FailureKind::Crashed,
                    format!("cannot register the channel: {e}"),
                );
            }
        }
    }

    fn unregister(&mut self, id: i64) -> bool {
        let Some(slot) = self.slots.get_mut(&id) else {
            return false;
        };
        let Some(ch) = slot.status.channel_id.take() else {
            return false;
        };
        self.gateway.forget_channel_health(ch);
        if let Err(e) = self.store.with(|c| channels::delete(c, ch).or(Ok(()))) as StoreResult<()> {
            tracing::warn!(error = %e, "cannot remove the local channel");
        }
        true
    }

    async fn exited(&mut self, id: i64, generation: u64, failure: Option<(FailureKind, String)>) {
        let Some(slot) = self.slots.get(&id) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        let stopping = slot.stopping;
        if self.unregister(id) {
            self.gateway.config_changed().await;
        }
        let slot = self.slots.get_mut(&id).expect("slot");
        slot.stop = None;
        match failure {
            None => self.set_state(id, State::Stopped, None),
            Some(_) if stopping => self.set_state(id, State::Stopped, None),
            Some((kind, detail)) => {
                let window = self.opts.restart_window;
                slot.crashes.retain(|t| t.elapsed() < window);
                if kind.retryable() && (slot.crashes.len() as u32) < self.opts.max_restarts {
                    slot.crashes.push(Instant::now());
                    slot.status.restarts += 1;
                    let n = slot.crashes.len() as u32;
                    let backoff = self.opts.restart_backoff * 2u32.pow(n - 1);
                    slot.logs.push(format!(
                        "[burncloud] {}: {detail}; restarting in {} ms (attempt {n} of {})",
                        kind.label(),
                        backoff.as_millis(),
                        self.opts.max_restarts
                    ));
                    slot.status.last_error = Some(format!("{}: {detail}", kind.label()));
                    slot.status.state = State::Restarting;
                    slot.status.pid = None;
                    slot.ready_at = None;
                    self.report(id);
                    let tx = self.cmds_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(backoff).await;
                        let _ = tx.send(Cmd::Restart { id, generation });
                    });
                } else {
                    let detail = if kind.retryable() {
                        format!("{detail} (gave up after {} restarts)", slot.crashes.len())
                    } else {
                        detail
                    };
                    self.fail(id, kind, detail);
                }
            }
        }
    }

    /// Stop every child (SIGTERM, wait, SIGKILL), remove their channels, give up ownership.
    async fn shutdown(&mut self) {
        let ids: Vec<i64> = self.slots.keys().copied().collect();
        for id in &ids {
            if self.slots[id].stop.is_some() {
                self.stop_child(*id);
            }
        }
        let deadline = tokio::time::Instant::now() + self.opts.stop_grace + Duration::from_secs(3);
        while self
            .slots
            .values()
            .any(|s| s.status.state.active() && s.status.state != State::Restarting)
        {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.event(ev).await,
                _ => break,
            }
        }
        for id in ids {
            if self.unregister(id) {
                self.set_state(id, State::Stopped, None);
            }
        }
        self.gateway.config_changed().await;
        self.lock = None;
    }
}

/// Arguments as logged: the API key hidden.
fn shown_args(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide = false;
    for a in args {
        out.push(if hide { "****".to_string() } else { a.clone() });
        hide = a == "--api-key";
    }
    out.join(" ")
}

/// One child's life: spawn, watch loading, health-check, stop on request, report exit.
struct ChildTask {
    id: i64,
    generation: u64,
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    api_key: String,
    logs: Arc<LogRing>,
    events: mpsc::UnboundedSender<Event>,
    client: reqwest::Client,
    opts: RuntimeOptions,
    pid_files: PidFiles,
}

impl ChildTask {
    fn send(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    fn exited(&self, failure: Option<(FailureKind, String)>) {
        self.pid_files.remove(self.id);
        self.send(Event::Exited {
            id: self.id,
            generation: self.generation,
            failure,
        });
    }

    async fn health(&self) -> Option<u16> {
        let url = format!("http://127.0.0.1:{}/health", self.port);
        match self
            .client
            .get(&url)
            .bearer_auth(&self.api_key)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) => Some(r.status().as_u16()),
            Err(_) => None,
        }
    }

    /// Whether the server on our port accepts our key (a stranger would answer 401).
    async fn owns_port(&self) -> bool {
        let url = format!("http://127.0.0.1:{}/v1/models", self.port);
        matches!(
            self.client
                .get(&url)
                .bearer_auth(&self.api_key)
                .timeout(Duration::from_secs(2))
                .send()
                .await,
            Ok(r) if r.status().is_success()
        )
    }

    fn failure_from_exit(
        &self,
        status: std::io::Result<std::process::ExitStatus>,
    ) -> (FailureKind, String) {
        let lines = self.logs.tail(200);
        let kind = classify::classify(&lines);
        let how = match status {
            Ok(s) => describe_exit(s),
            Err(e) => format!("wait failed: {e}"),
        };
        let relevant = classify::relevant(&lines, 3).join(" | ");
        (
            kind,
            if relevant.is_empty() {
                how
            } else {
                format!("{how}; log: {relevant}")
            },
        )
    }

    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let mut cmd = process::command(&self.program, &self.args);
        cmd.env(process::API_KEY_ENV, &self.api_key);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.exited(Some((
                    FailureKind::Spawn,
                    format!("cannot run {}: {e}", self.program.display()),
                )));
                return;
            }
        };
        process::adopt(&child);
        let pid = child.id().unwrap_or_default();
        if let Err(e) = self.pid_files.write(self.id, pid, &self.program) {
            tracing::warn!(error = %e, "cannot write the pid file");
        }
        self.send(Event::Spawned {
            id: self.id,
            generation: self.generation,
            pid,
        });
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, self.logs.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, self.logs.clone()));
        }

        // Loading: ready on /health 200; a stall timeout that resets on any output or a
        // change of the health answer. Then: health checks every `health_interval`.
        let mut ready = false;
        let mut progress = self.logs.bytes();
        let mut last_answer: Option<u16> = None;
        let mut stall_deadline = Instant::now() + self.opts.stall_timeout;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                status = child.wait() => {
                    // Let the pumps drain the last lines.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let f = self.failure_from_exit(status);
                    self.exited(Some(f));
                    return;
                }
                _ = &mut stop => {
                    process::terminate(&mut child, self.opts.stop_grace).await;
                    self.exited(None);
                    return;
                }
                _ = poll.tick() => {
                    let answer = self.health().await;
                    if ready {
                        let up = answer == Some(200);
                        self.send(Event::Health { id: self.id, generation: self.generation, up });
                        continue;
                    }
                    // 200 from /health, and our random key accepted: our child, not
                    // another server that holds the port.
                    if answer == Some(200) && self.owns_port().await {
                        ready = true;
                        self.send(Event::Ready { id: self.id, generation: self.generation });
                        poll = tokio::time::interval(self.opts.health_interval);
                        poll.tick().await;
                        continue;
                    }
                    let now_bytes = self.logs.bytes();
                    if now_bytes != progress || answer != last_answer {
                        progress = now_bytes;
                        last_answer = answer;
                        stall_deadline = Instant::now() + self.opts.stall_timeout;
                    } else if Instant::now() >= stall_deadline {
                        process::terminate(&mut child, self.opts.stop_grace).await;
                        self.exited(Some((
                            FailureKind::Stalled,
                            format!(
                                "no loading progress for {} s",
                                self.opts.stall_timeout.as_secs()
                            ),
                        )));
                        return;
                    }
                }
            }
        }
    }
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match s.code() {
        Some(c) => format!("exited with code {c}"),
        None => "exited".into(),
    }
}

/// Copy a child's output into its log ring (and file), line by line, counting bytes.
async fn pump(mut r: impl tokio::io::AsyncRead + Unpin, logs: Arc<LogRing>) {
    let mut buf = vec![0u8; 8192];
    let mut partial = Vec::new();
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                logs.add_bytes(n);
                partial.extend_from_slice(&buf[..n]);
                while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&line);
                    logs.push(text.trim_end().to_string());
                }
                if partial.len() > 64 * 1024 {
                    let text = String::from_utf8_lossy(&partial).to_string();
                    partial.clear();
                    logs.push(text);
                }
            }
        }
    }
    if !partial.is_empty() {
        logs.push(String::from_utf8_lossy(&partial).trim_end().to_string());
    }
}
