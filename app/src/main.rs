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
mod model;
mod operator;
mod price;
mod router;
#[cfg_attr(not(feature = "desktop"), allow(dead_code))]
mod views;

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
    init_logging(quiet);
    let config = match gateway_core::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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

fn init_logging(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The no-argument entry: the desktop app where there is a display, else the router.
fn run_app(config: gateway_core::Config) -> ExitCode {
    #[cfg(feature = "desktop")]
    {
        if desktop::display_available() {
            return desktop::run(config);
        }
        eprintln!(
            "No display found (DISPLAY/WAYLAND_DISPLAY unset): running the headless gateway instead."
        );
    }
    #[cfg(not(feature = "desktop"))]
    eprintln!(
        "This burncloud was built without the desktop feature: running the headless gateway."
    );
    router::run(config)
}
