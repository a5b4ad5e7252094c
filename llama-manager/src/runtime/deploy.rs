//! Deployments (table `deployments`): how a library model runs on llama-server, what the
//! user wants and what the supervisor last reported. The CLI and the UI write `desired`;
//! only the supervisor writes the reported columns.

use gateway_core::store::db::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use gateway_core::store::{StoreError, StoreResult, now_ms, now_secs};

use super::catalog::Backend;

/// How many layers go to the GPU (`-ngl`); unset (`None` in the settings) = `auto`, the
/// fit verdict's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuLayers {
    /// Every layer (`-ngl all`; `-1` and `all` on our command line).
    All,
    /// Exactly this many.
    Count(u64),
}

impl GpuLayers {
    /// `auto` (None), `all`, `-1` (= all) or a number of layers.
    pub fn parse(text: &str) -> Result<Option<GpuLayers>, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "all" | "-1" => Ok(Some(GpuLayers::All)),
            n => n.parse::<u64>().map(|n| Some(GpuLayers::Count(n))).map_err(|_| {
                format!("GPU layers must be auto, all, -1 (= all) or a number of layers, not {text:?}")
            }),
        }
    }

    /// The value of llama-server's `-ngl`.
    pub fn arg(self) -> String {
        match self {
            GpuLayers::All => "all".into(),
            GpuLayers::Count(n) => n.to_string(),
        }
    }

    fn to_db(self) -> i64 {
        match self {
            GpuLayers::All => -1,
            GpuLayers::Count(n) => n as i64,
        }
    }

    fn from_db(v: i64) -> GpuLayers {
        if v < 0 {
            GpuLayers::All
        } else {
            GpuLayers::Count(v as u64)
        }
    }
}

impl std::fmt::Display for GpuLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.arg())
    }
}

/// What a deployment serves: chat (and completions), embeddings (`--embeddings`) or
/// rerank (`--reranking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Chat,
    Embeddings,
    Rerank,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Embeddings => "embeddings",
            Mode::Rerank => "rerank",
        }
    }

    /// `chat`, `embeddings` (or `embedding`) or `rerank` (or `reranking`).
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "chat" => Ok(Mode::Chat),
            "embeddings" | "embedding" => Ok(Mode::Embeddings),
            "rerank" | "reranking" => Ok(Mode::Rerank),
            other => Err(format!(
                "unknown mode {other:?}: use chat, embeddings or rerank"
            )),
        }
    }

    /// llama-server's flag for it.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Mode::Chat => None,
            Mode::Embeddings => Some("--embeddings"),
            Mode::Rerank => Some("--reranking"),
        }
    }
}

/// Deployment settings; `None` = the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeploySettings {
    pub port: Option<u16>,
    pub ctx_size: Option<u64>,
    /// None: auto (from the fit verdict).
    pub gpu_layers: Option<GpuLayers>,
    pub threads: Option<u32>,
    pub parallel: Option<u32>,
    pub extra_args: Vec<String>,
    /// Start on the first request for `local-<id>`.
    pub jit: bool,
    /// Stop after this many idle seconds (0: never).
    pub idle_ttl_secs: u64,
    /// Start when the app starts.
    pub autostart: bool,
    /// The engine's backend (None: the preferred installed engine, or LLAMA_SERVER).
    pub engine: Option<Backend>,
    /// What it serves.
    pub mode: Mode,
}

/// A change of settings: `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub port: Option<Option<u16>>,
    pub ctx_size: Option<Option<u64>>,
    pub gpu_layers: Option<Option<GpuLayers>>,
    pub threads: Option<Option<u32>>,
    pub parallel: Option<Option<u32>>,
    pub extra_args: Option<Vec<String>>,
    pub jit: Option<bool>,
    pub idle_ttl_secs: Option<u64>,
    pub autostart: Option<bool>,
    pub engine: Option<Option<Backend>>,
    pub mode: Option<Mode>,
}

impl SettingsPatch {
    pub fn is_empty(&self) -> bool {
        self.port.is_none()
            && self.ctx_size.is_none()
            && self.gpu_layers.is_none()
            && self.threads.is_none()
            && self.parallel.is_none()
            && self.extra_args.is_none()
            && self.jit.is_none()
            && self.idle_ttl_secs.is_none()
            && self.autostart.is_none()
            && self.engine.is_none()
            && self.mode.is_none()
    }

    fn apply(self, s: &mut DeploySettings) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { s.$f = v; } )* };
        }
        set!(
            port,
            ctx_size,
            gpu_layers,
            threads,
            parallel,
            extra_args,
            jit,
            idle_ttl_secs,
            autostart,
            engine,
            mode
        );
    }
}

/// The lifecycle state the supervisor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Stopped,
    Starting,
    Ready,
    Stopping,
    Restarting,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Stopping => "stopping",
            State::Restarting => "restarting",
            State::Failed => "failed",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "starting" => State::Starting,
            "ready" => State::Ready,
            "stopping" => State::Stopping,
            "restarting" => State::Restarting,
            "failed" => State::Failed,
            _ => State::Stopped,
        }
    }

    /// A process exists (or is about to).
    pub fn active(self) -> bool {
        matches!(
            self,
            State::Starting | State::Ready | State::Stopping | State::Restarting
        )
    }
}

/// What the supervisor reports about a deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    /// Unix seconds.
    pub started_at: Option<i64>,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub channel_id: Option<i64>,
    /// The `desired_at` the supervisor has acted on.
    pub acted_at: i64,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Stopped,
            pid: None,
            port: None,
            started_at: None,
            restarts: 0,
            last_error: None,
            channel_id: None,
            acted_at: 0,
        }
    }
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub model_id: i64,
    pub settings: DeploySettings,
    pub desired_running: bool,
    /// When `desired` was last set (unix ms).
    pub desired_at: i64,
    pub status: Status,
    pub updated_at: i64,
}

const COLS: &str = "model_id, port, ctx_size, gpu_layers, threads, parallel, extra_args, jit, idle_ttl_secs, autostart, desired, desired_at, state, pid, actual_port, started_at, restarts, last_error, channel_id, updated_at, acted_at, engine, mode";

fn from_row(r: &Row<'_>) -> gateway_core::store::db::Result<Deployment> {
    let extra: String = r.get(6)?;
    Ok(Deployment {
        model_id: r.get(0)?,
        settings: DeploySettings {
            port: r.get::<_, Option<i64>>(1)?.map(|p| p as u16),
            ctx_size: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
            gpu_layers: r.get::<_, Option<i64>>(3)?.map(GpuLayers::from_db),
            threads: r.get::<_, Option<i64>>(4)?.map(|v| v as u32),
            parallel: r.get::<_, Option<i64>>(5)?.map(|v| v as u32),
            extra_args: serde_json::from_str(&extra).unwrap_or_default(),
            jit: r.get::<_, i64>(7)? != 0,
            idle_ttl_secs: r.get::<_, i64>(8)?.max(0) as u64,
            autostart: r.get::<_, i64>(9)? != 0,
            engine: r
                .get::<_, Option<String>>(21)?
                .and_then(|b| Backend::parse(&b).ok()),
            mode: Mode::parse(&r.get::<_, String>(22)?).unwrap_or_default(),
        },
        desired_running: r.get::<_, String>(10)? == "running",
        desired_at: r.get(11)?,
        status: Status {
            state: State::parse(&r.get::<_, String>(12)?),
            pid: r.get::<_, Option<i64>>(13)?.map(|v| v as u32),
            port: r.get::<_, Option<i64>>(14)?.map(|v| v as u16),
            started_at: r.get(15)?,
            restarts: r.get::<_, i64>(16)?.max(0) as u32,
            last_error: r.get(17)?,
            channel_id: r.get(18)?,
            acted_at: r.get(20)?,
        },
        updated_at: r.get(19)?,
    })
}

/// Check settings before they are stored.
pub fn validate(s: &DeploySettings) -> StoreResult<()> {
    let bad = |m: String| Err(StoreError::Invalid(m));
    if s.port == Some(0) {
        return bad("port must be between 1 and 65535".into());
    }
    if s.ctx_size == Some(0) {
        return bad("context size must be at least 1 token".into());
    }
    if s.threads == Some(0) || s.parallel == Some(0) {
        return bad("threads and parallel slots must be at least 1".into());
    }
    super::args::check(&s.extra_args).map_err(StoreError::Invalid)?;
    Ok(())
}

/// One deployment.
pub fn get(conn: &Connection, model_id: i64) -> StoreResult<Option<Deployment>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM deployments WHERE model_id = ?1"),
            [model_id],
            from_row,
        )
        .optional()?)
}

/// All deployments, by model id.
pub fn list(conn: &Connection) -> StoreResult<Vec<Deployment>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM deployments ORDER BY model_id"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Create or change a deployment's settings; with `desired` also what the user wants.
pub fn save(
    conn: &mut Connection,
    model_id: i64,
    patch: SettingsPatch,
    desired: Option<bool>,
) -> StoreResult<Deployment> {
    let tx =
        conn.transaction_with_behavior(gateway_core::store::db::TransactionBehavior::Immediate)?;
    let exists: bool = tx
        .query_row("SELECT 1 FROM models WHERE id = ?1", [model_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound(format!(
            "model {model_id} is not in the library (see `burncloud model list`)"
        )));
    }
    let current = tx
        .query_row(
            &format!("SELECT {COLS} FROM deployments WHERE model_id = ?1"),
            [model_id],
            from_row,
        )
        .optional()?;
    let mut settings = current
        .as_ref()
        .map(|d| d.settings.clone())
        .unwrap_or_default();
    patch.apply(&mut settings);
    validate(&settings)?;
    let extra = serde_json::to_string(&settings.extra_args).unwrap_or_else(|_| "[]".into());
    let now = now_secs();
    tx.execute(
        "INSERT INTO deployments (model_id, port, ctx_size, gpu_layers, threads, parallel, extra_args, jit, idle_ttl_secs, autostart, updated_at, engine, mode)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(model_id) DO UPDATE SET port = excluded.port, ctx_size = excluded.ctx_size,
           gpu_layers = excluded.gpu_layers, threads = excluded.threads, parallel = excluded.parallel,
           extra_args = excluded.extra_args, jit = excluded.jit, idle_ttl_secs = excluded.idle_ttl_secs,
           autostart = excluded.autostart, updated_at = excluded.updated_at,
           engine = excluded.engine, mode = excluded.mode",
        params![
            model_id,
            settings.port.map(i64::from),
            settings.ctx_size.map(|v| v as i64),
            settings.gpu_layers.map(GpuLayers::to_db),
            settings.threads.map(i64::from),
            settings.parallel.map(i64::from),
            extra,
            settings.jit as i64,
            settings.idle_ttl_secs as i64,
            settings.autostart as i64,
            now,
            settings.engine.map(|b| b.as_str()),
            settings.mode.as_str()
        ],
    )?;
    if let Some(run) = desired {
        set_desired_tx(&tx, model_id, run)?;
    }
    let d = tx.query_row(
        &format!("SELECT {COLS} FROM deployments WHERE model_id = ?1"),
        [model_id],
        from_row,
    )?;
    tx.commit()?;
    Ok(d)
}

fn set_desired_tx(conn: &Connection, model_id: i64, run: bool) -> StoreResult<()> {
    let n = conn.execute(
        "UPDATE deployments SET desired = ?1, desired_at = ?2, updated_at = ?3 WHERE model_id = ?4",
        params![
            if run { "running" } else { "stopped" },
            now_ms(),
            now_secs(),
            model_id
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "model {model_id} is not deployed"
        )));
    }
    Ok(())
}

/// Say whether the user wants the deployment running.
pub fn set_desired(conn: &Connection, model_id: i64, run: bool) -> StoreResult<()> {
    set_desired_tx(conn, model_id, run)
}

/// The supervisor's report.
pub fn report(conn: &Connection, model_id: i64, s: &Status) -> StoreResult<()> {
    conn.execute(
        "UPDATE deployments SET state = ?1, pid = ?2, actual_port = ?3, started_at = ?4, restarts = ?5,
           last_error = ?6, channel_id = ?7, updated_at = ?8, acted_at = ?10 WHERE model_id = ?9",
        params![
            s.state.as_str(),
            s.pid.map(i64::from),
            s.port.map(i64::from),
            s.started_at,
            s.restarts as i64,
            s.last_error,
            s.channel_id,
            now_secs(),
            model_id,
            s.acted_at
        ],
    )?;
    Ok(())
}

/// Forget a deployment (the model stays in the library).
pub fn remove(conn: &Connection, model_id: i64) -> StoreResult<bool> {
    Ok(conn.execute("DELETE FROM deployments WHERE model_id = ?1", [model_id])? > 0)
}
