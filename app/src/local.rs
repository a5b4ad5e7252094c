//! `burncloud model run|deploy|stop|ps|logs` and `burncloud engine ...`: wiring and
//! printing. The CLI writes what the user wants into the database; the supervisor of the
//! running BurnCloud (router or desktop app) acts on it within a fraction of a second and
//! reports back through the same rows.

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use gateway_core::Config;
use gateway_core::local::channel_name;
use gateway_core::store::{Store, now_secs};
use llama_manager::library::Library;
use llama_manager::runtime::deploy::{self, Deployment, GpuLayers, Mode, SettingsPatch, State};
use llama_manager::runtime::{engine, log_path, process};

use crate::cli::{DeployArgs, EngineCommand};

fn patch(a: &DeployArgs) -> Result<SettingsPatch, String> {
    let gpu_layers = match &a.gpu_layers {
        Some(t) => Some(GpuLayers::parse(t)?),
        None => None,
    };
    let engine = match a.engine.as_deref() {
        None => None,
        Some("auto") => Some(None),
        Some(b) => Some(Some(engine::Backend::parse(b)?)),
    };
    let mode = a.mode.as_deref().map(Mode::parse).transpose()?;
    Ok(SettingsPatch {
        // --port 0: back to the default (first free port from 8080).
        port: a.port.map(|p| (p != 0).then_some(p)),
        ctx_size: a.ctx.map(Some),
        gpu_layers,
        threads: a.threads.map(Some),
        parallel: a.parallel.map(Some),
        extra_args: (!a.extra.is_empty()).then(|| a.extra.clone()),
        jit: a.jit,
        idle_ttl_secs: a.idle_ttl,
        autostart: a.autostart,
        engine,
        mode,
    })
}

fn model_id(lib: &Library, id: &str) -> Result<(i64, String), String> {
    let m = lib.get(id).map_err(|e| e.to_string())?;
    Ok((m.id, m.name))
}

/// Fails unless a BurnCloud supervises this data folder now (it holds the supervisor lock).
fn require_owner(config: &Config) -> Result<u32, String> {
    match llama_manager::runtime::supervisor_pid(&config.data_dir) {
        Some(pid) => Ok(pid),
        None => Err(
            "BurnCloud is not running on this data folder: start `burncloud router` (or the desktop app) first; the deployment is saved"
                .into(),
        ),
    }
}

/// Poll until the supervisor has acted on `desired_at` and the state settled.
async fn wait_settled(
    store: &Store,
    id: i64,
    desired_at: i64,
    timeout: Duration,
) -> Result<Deployment, String> {
    let deadline = Instant::now() + timeout;
    let mut shown = None;
    loop {
        let d = store
            .with(|c| deploy::get(c, id))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("model {id} is no longer deployed"))?;
        if d.status.acted_at >= desired_at {
            if shown != Some(d.status.state) && d.status.state.active() {
                eprintln!("{}: {}", channel_name(id), d.status.state.as_str());
                shown = Some(d.status.state);
            }
            if matches!(
                d.status.state,
                State::Ready | State::Failed | State::Stopped
            ) {
                return Ok(d);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} is still {} after {} s (see `burncloud model logs {id}`)",
                channel_name(id),
                d.status.state.as_str(),
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn failure_text(config: &Config, d: &Deployment) -> String {
    let mut out = format!(
        "{} failed: {}",
        channel_name(d.model_id),
        d.status.last_error.as_deref().unwrap_or("unknown reason")
    );
    let lines = tail_lines(&log_path(&config.data_dir, d.model_id), 8);
    if !lines.is_empty() {
        out.push_str("\nlast log lines:");
        for l in lines {
            out.push_str(&format!("\n  {l}"));
        }
    }
    out
}

pub async fn run(config: &Config, args: DeployArgs, timeout: u64) -> Result<String, String> {
    let lib = Library::open(config).map_err(|e| e.to_string())?;
    let (id, name) = model_id(&lib, &args.id)?;
    let store = lib.store().clone();
    let p = patch(&args)?;
    let d = store
        .with(move |c| deploy::save(c, id, p, Some(true)))
        .map_err(|e| e.to_string())?;
    require_owner(config)?;
    let d = wait_settled(&store, id, d.desired_at, Duration::from_secs(timeout)).await?;
    match d.status.state {
        State::Ready => Ok(format!(
            "Model {id} ({name}) is running as {ch} on http://127.0.0.1:{port} (pid {pid}).\nCall it through the gateway with model \"{ch}\" at http://{host}:{gport}/v1",
            ch = channel_name(id),
            port = d.status.port.unwrap_or_default(),
            pid = d.status.pid.unwrap_or_default(),
            host = config.host,
            gport = config.port,
        )),
        _ => Err(failure_text(config, &d)),
    }
}

pub fn deploy_only(config: &Config, args: DeployArgs) -> Result<String, String> {
    let lib = Library::open(config).map_err(|e| e.to_string())?;
    let (id, name) = model_id(&lib, &args.id)?;
    let p = patch(&args)?;
    let d = lib
        .store()
        .with(move |c| deploy::save(c, id, p, None))
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "Saved how model {id} ({name}) runs as {}:\n{}",
        channel_name(id),
        settings_text(&d)
    ))
}

fn settings_text(d: &Deployment) -> String {
    let s = &d.settings;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "default".into());
    format!(
        "  mode: {}\n  engine: {}\n  port: {}\n  context: {}\n  GPU layers: {}\n  threads: {}\n  parallel: {}\n  extra arguments: {}\n  just-in-time start: {}\n  idle unload: {}\n  start with the app: {}",
        s.mode.as_str(),
        s.engine
            .map(|b| b.to_string())
            .unwrap_or_else(|| "auto".into()),
        opt(s.port.map(|v| v.to_string())),
        opt(s.ctx_size.map(|v| v.to_string())),
        s.gpu_layers
            .map(|g| g.to_string())
            .unwrap_or_else(|| "auto (from the fit)".into()),
        opt(s.threads.map(|v| v.to_string())),
        opt(s.parallel.map(|v| v.to_string())),
        if s.extra_args.is_empty() {
            "none".into()
        } else {
            s.extra_args.join(" ")
        },
        if s.jit { "yes" } else { "no" },
        if s.idle_ttl_secs == 0 {
            "never".into()
        } else {
            format!("after {} s", s.idle_ttl_secs)
        },
        if s.autostart { "yes" } else { "no" },
    )
}

pub async fn stop(config: &Config, id: &str, timeout: u64) -> Result<String, String> {
    let lib = Library::open(config).map_err(|e| e.to_string())?;
    let (id, name) = model_id(&lib, id)?;
    let store = lib.store().clone();
    let d = store
        .with(|c| {
            deploy::set_desired(c, id, false)?;
            deploy::get(c, id)
        })
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("model {id} is not deployed"))?;
    if require_owner(config).is_err() {
        return Ok(format!(
            "Model {id} ({name}) is not running (no BurnCloud runs on this data folder)"
        ));
    }
    let d = wait_settled(&store, id, d.desired_at, Duration::from_secs(timeout)).await?;
    Ok(format!(
        "Stopped model {id} ({name}); {} is gone from the gateway{}",
        channel_name(id),
        d.status
            .last_error
            .as_deref()
            .filter(|_| d.status.state == State::Failed)
            .map(|e| format!(" (it had failed: {e})"))
            .unwrap_or_default()
    ))
}

fn uptime(started: Option<i64>) -> String {
    let Some(t) = started else {
        return "-".into();
    };
    let s = (now_secs() - t).max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn ps(config: &Config) -> Result<String, String> {
    let lib = Library::open(config).map_err(|e| e.to_string())?;
    let deps = lib
        .store()
        .with(|c| deploy::list(c))
        .map_err(|e| e.to_string())?;
    if deps.is_empty() {
        return Ok("No deployed models. Start one with `burncloud model run ID`.".into());
    }
    let live = llama_manager::runtime::supervisor_pid(&config.data_dir).is_some();
    let mut out = format!(
        "{:>3}  {:<10}  {:<24}  {:<10}  {:>5}  {:>7}  {:>7}  {:>9}  {:<3}  {:<6}",
        "ID", "CHANNEL", "MODEL", "STATE", "PORT", "PID", "UPTIME", "MEMORY", "JIT", "IDLE"
    );
    for d in deps {
        let name = lib
            .get(&d.model_id.to_string())
            .map(|m| m.name)
            .unwrap_or_else(|_| "?".into());
        let state = if live { d.status.state } else { State::Stopped };
        let running = state.active();
        let mem = d
            .status
            .pid
            .filter(|_| running)
            .and_then(process::rss_bytes)
            .map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "\n{:>3}  {:<10}  {:<24}  {:<10}  {:>5}  {:>7}  {:>7}  {:>9}  {:<3}  {:<6}",
            d.model_id,
            channel_name(d.model_id),
            name,
            state.as_str(),
            d.status
                .port
                .filter(|_| running)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            d.status
                .pid
                .filter(|_| running)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            if running {
                uptime(d.status.started_at)
            } else {
                "-".into()
            },
            mem,
            if d.settings.jit { "yes" } else { "no" },
            if d.settings.idle_ttl_secs == 0 {
                "-".into()
            } else {
                format!("{}s", d.settings.idle_ttl_secs)
            },
        ));
        if state == State::Failed
            && let Some(e) = &d.status.last_error
        {
            out.push_str(&format!("\n     failed: {e}"));
        }
    }
    if !live {
        out.push_str("\n(BurnCloud is not running on this data folder: nothing runs)");
    }
    Ok(out)
}

fn tail_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

pub async fn logs(config: &Config, id: &str, follow: bool, n: usize) -> Result<String, String> {
    let lib = Library::open(config).map_err(|e| e.to_string())?;
    let (id, _) = model_id(&lib, id)?;
    let path = log_path(&config.data_dir, id);
    if !path.exists() && !follow {
        return Err(format!(
            "model {id} has no log yet ({} does not exist): it has not been started",
            path.display()
        ));
    }
    for l in tail_lines(&path, n) {
        println!("{l}");
    }
    if !follow {
        return Ok(String::new());
    }
    let mut pos = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut stop = crate::router::Shutdown::listen();
    loop {
        tokio::select! {
            _ = stop.wait() => return Ok(String::new()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < pos {
            pos = 0; // rotated or recreated
        }
        if len > pos && f.seek(SeekFrom::Start(pos)).is_ok() {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            pos += buf.len() as u64;
            print!("{}", String::from_utf8_lossy(&buf));
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
    }
}

/// This machine as the engine BurnCloud would use sees it (its `--list-devices`), with
/// the probes as fallback.
pub fn hardware_here(data_dir: &std::path::Path) -> llama_manager::hardware::Hardware {
    let configured = std::env::var_os("LLAMA_SERVER")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let engine = engine::locate(data_dir, configured.as_deref())
        .ok()
        .map(|e| e.path);
    llama_manager::hardware::detect_with_engine(engine.as_deref())
}

pub async fn engine_cmd(config: &Config, cmd: EngineCommand) -> Result<String, String> {
    let configured = std::env::var_os("LLAMA_SERVER")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let runtimes = engine::runtimes_dir(&config.data_dir);
    match cmd {
        EngineCommand::Show => {
            let e = engine::discover(&config.data_dir, configured.as_deref())
                .map_err(|e| e.to_string())?;
            let hw = tokio::task::spawn_blocking({
                let p = e.path.clone();
                move || llama_manager::hardware::detect_with_engine(Some(&p))
            })
            .await
            .map_err(|e| e.to_string())?;
            Ok(format!(
                "llama-server: {}\n  version: {}\n  {}{}\n{}",
                e.path.display(),
                e.version
                    .as_deref()
                    .unwrap_or("unknown (it did not answer --version)"),
                e.source.label(),
                e.backend
                    .map(|b| format!(", {b} build"))
                    .unwrap_or_default(),
                hw.describe()
            ))
        }
        EngineCommand::List => {
            let all = engine::installed(&runtimes);
            if all.is_empty() {
                return Ok(format!(
                    "No engine installed in {} (install one with `burncloud engine install`).",
                    runtimes.display()
                ));
            }
            let mut out = format!(
                "{:<8}  {:<8}  {:<10}  {:<8}  PATH",
                "BACKEND", "VERSION", "RELEASE", "VERIFIED"
            );
            for i in all {
                out.push_str(&format!(
                    "\n{:<8}  {:<8}  {:<10}  {:<8}  {}",
                    i.backend.as_str(),
                    i.variant.as_deref().unwrap_or("-"),
                    i.tag,
                    if i.verified { "sha256" } else { "no" },
                    i.path.display()
                ));
            }
            Ok(out)
        }
        EngineCommand::Install {
            url,
            backend,
            allow_unverified,
        } => {
            let backend = backend.as_deref().map(engine::Backend::parse).transpose()?;
            let platform = engine::Platform::current().ok_or_else(|| {
                format!(
                    "no official llama.cpp build for {} {}: build llama-server yourself and set LLAMA_SERVER",
                    std::env::consts::OS,
                    std::env::consts::ARCH
                )
            })?;
            // The hardware as the probes and the current engine (if any) see it.
            let current = engine::locate(&config.data_dir, configured.as_deref())
                .ok()
                .map(|e| e.path);
            let hardware = tokio::task::spawn_blocking(move || {
                llama_manager::hardware::detect_with_engine(current.as_deref())
            })
            .await
            .map_err(|e| e.to_string())?;
            let req = engine::InstallRequest {
                release_url: url.unwrap_or_else(|| engine::DEFAULT_RELEASE_URL.to_string()),
                runtimes: runtimes.clone(),
                platform,
                hardware,
                backend,
                allow_unverified,
            };
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let res = engine::install(&client, &req, |got, total| {
                if let Some(t) = total {
                    bar.set_length(t);
                }
                bar.set_position(got);
            })
            .await;
            bar.finish_and_clear();
            let i = res.map_err(|e| e.to_string())?;
            let mut out = format!(
                "Installed the {}{} engine of llama.cpp {} ({}) at {}\n  {}",
                i.backend,
                i.variant
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                i.tag,
                i.reason,
                i.path.display(),
                if i.verified {
                    "SHA-256 checked against the release"
                } else {
                    "NOT verified: the release gave no SHA-256 digest (--allow-unverified)"
                }
            );
            if configured.is_some() {
                out.push_str("\nNote: LLAMA_SERVER is set and wins over the installed engine; unset it to use this one (or deploy with --engine).");
            }
            Ok(out)
        }
    }
}
