//! `burncloud`: the desktop app (window + tray + gateway in-process) and, with a
//! subcommand, the headless gateway and the command-line tools.
//!
//! On Windows the desktop build is a GUI program (no console window opens with it); run
//! from a terminal, it attaches to that terminal's console so the CLI still prints.
//!
//! This crate only wires things together: business rules live in `gateway-core`
//! (gateway) and `llama-manager` (local models).

#![cfg_attr(all(windows, feature = "desktop"), windows_subsystem = "windows")]

mod autostart;
mod cli;
#[cfg_attr(not(feature = "desktop"), allow(dead_code))]
mod console;
// The headless build (`--no-default-features`) compiles the views and the controller
// (their tests run there too) but only the desktop layer uses them.
#[cfg_attr(not(feature = "desktop"), allow(dead_code))]
mod controller;
mod governance;
// The wake-up line is the desktop's (the headless build only takes the lock).
#[cfg_attr(not(feature = "desktop"), allow(dead_code))]
mod instance;
mod local;
mod memory;
mod model;
mod operator;
mod price;
mod router;
#[cfg_attr(not(feature = "desktop"), allow(dead_code))]
mod views;
mod web;

#[cfg(feature = "desktop")]
mod desktop;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// When the process started (the desktop logs how long the first frame took).
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    let _ = STARTED.set(std::time::Instant::now());
    #[cfg(all(windows, feature = "desktop"))]
    // SAFETY: a plain Win32 call; failing (no parent console) is fine.
    unsafe {
        windows_sys::Win32::System::Console::AttachConsole(
            windows_sys::Win32::System::Console::ATTACH_PARENT_PROCESS,
        );
    }
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Some(
            Command::Price(_)
                | Command::Model(_)
                | Command::Engine(_)
                | Command::Autostart(_)
                | Command::User(_)
                | Command::Group(_)
                | Command::Redemption(_)
                | Command::Invite(_)
                | Command::Admin(_)
                | Command::Channel(_)
                | Command::Token(_)
        )
    );
    let config = match gateway_core::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The desktop also keeps its own log file (nobody reads a GUI program's stderr).
    let log_file = (cli.command.is_none() && opens_a_window()).then(|| {
        // Private before the first line is written (the desktop reports a failure later).
        let logs = config.data_dir.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        let _ = gateway_core::secure::secure_data_dir(&config.data_dir);
        logs
    });
    let _log_guard = match init_logging(quiet, log_file.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    match cli.command {
        Some(Command::Router) => router::run(config),
        Some(Command::Price(cmd)) => price::run(&config, cmd),
        Some(Command::Model(cmd)) => model::run(&config, cmd),
        Some(Command::Engine(cmd)) => model::block_on(local::engine_cmd(&config, cmd)),
        Some(Command::Autostart(cmd)) => model::block_on(async move { autostart::run(cmd) }),
        Some(Command::User(cmd)) => governance::run(&config, governance::Cmd::User(cmd)),
        Some(Command::Group(cmd)) => governance::run(&config, governance::Cmd::Group(cmd)),
        Some(Command::Redemption(cmd)) => {
            governance::run(&config, governance::Cmd::Redemption(cmd))
        }
        Some(Command::Invite(cmd)) => governance::run(&config, governance::Cmd::Invite(cmd)),
        Some(Command::Admin(cmd)) => governance::run(&config, governance::Cmd::Admin(cmd)),
        Some(Command::Channel(cmd)) => operator::channel(&config, cmd),
        Some(Command::Token(cmd)) => operator::token(&config, cmd),
        None => run_app(config),
    }
}

/// Whether log lines are JSON (`BURNCLOUD_LOG_FORMAT=json`).
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A fatal error for the person at the terminal (`error: ...` on stderr) or, with JSON
/// logs, for the log collector (an `ERROR` event).
pub fn report_error(msg: impl std::fmt::Display) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::error!("{msg}");
    } else {
        eprintln!("error: {msg}");
    }
}

/// Whether the no-argument entry will open the window (else it runs the router).
fn opens_a_window() -> bool {
    #[cfg(feature = "desktop")]
    {
        desktop::display_available()
    }
    #[cfg(not(feature = "desktop"))]
    {
        false
    }
}

/// Log to stderr as text or, with `BURNCLOUD_LOG_FORMAT=json`, one JSON object per line;
/// with `file_dir`, also to `<file_dir>/burncloud.log.<date>` (rotated daily, a week
/// kept). The guard flushes the file when dropped.
fn init_logging(
    quiet: bool,
    file_dir: Option<&std::path::Path>,
) -> Result<Option<tracing_appender::non_blocking::WorkerGuard>, String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let json = match std::env::var("BURNCLOUD_LOG_FORMAT")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        None | Some("") | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(format!(
                "BURNCLOUD_LOG_FORMAT must be text or json, not {other:?}"
            ));
        }
    };
    JSON_LOGS.store(json, std::sync::atomic::Ordering::Relaxed);
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    let fmt = tracing_subscriber::fmt::layer;
    let mut layers: Vec<Boxed> = vec![if json {
        Box::new(fmt().json().with_writer(std::io::stderr))
    } else {
        Box::new(fmt().with_writer(std::io::stderr))
    }];
    let mut guard = None;
    if let Some(dir) = file_dir {
        match tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("burncloud")
            .filename_suffix("log")
            .max_log_files(7)
            .build(dir)
        {
            Ok(appender) => {
                let (writer, g) = tracing_appender::non_blocking(appender);
                guard = Some(g);
                layers.push(if json {
                    Box::new(fmt().json().with_writer(writer))
                } else {
                    Box::new(fmt().with_ansi(false).with_writer(writer))
                });
            }
            // Not fatal: the window still runs, logging to stderr.
            Err(e) => eprintln!("warning: no log file in {}: {e}", dir.display()),
        }
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
    Ok(guard)
}

/// The no-argument entry: the desktop app where there is a display, else the router.
fn run_app(config: gateway_core::Config) -> ExitCode {
    #[cfg(feature = "desktop")]
    {
        if desktop::display_available() {
            return desktop::run(config);
        }
        tracing::info!(
            "No display found (DISPLAY/WAYLAND_DISPLAY unset): running the headless gateway instead."
        );
    }
    #[cfg(not(feature = "desktop"))]
    tracing::info!(
        "This burncloud was built without the desktop feature: running the headless gateway."
    );
    router::run(config)
}
