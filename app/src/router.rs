//! `burncloud router`: the headless gateway until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use gateway_core::{Config, Gateway};

/// The multi-thread runtime the gateway runs on (the desktop app shares it); prints why not.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            crate::report_error(format_args!("cannot start the async runtime: {e}"));
            None
        }
    }
}

/// A line for whoever started the router. A closed stdout (the terminal gone, `| head -1`)
/// is no reason to stop serving: write errors are ignored (`println!` would panic).
pub(crate) fn say(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Build the runtime, serve, stop gracefully on a signal.
pub fn run(config: Config) -> ExitCode {
    // One BurnCloud per data folder: a second one is refused before it opens anything.
    let lock = match crate::instance::claim(&config.data_dir) {
        Ok(l) => l,
        Err(refused) => {
            crate::report_error(&refused.message);
            return ExitCode::FAILURE;
        }
    };
    let Some(rt) = crate::router::runtime() else {
        return ExitCode::FAILURE;
    };
    rt.block_on(async move {
        // Caught from here on, so a SIGTERM during start-up stops it once it is up.
        let mut stop = Shutdown::listen();
        let data_dir = config.data_dir.clone();
        let gateway = match Gateway::open(config).await {
            Ok(g) => g,
            Err(e) => {
                crate::report_error(&e);
                return ExitCode::FAILURE;
            }
        };
        let bootstrap = match gateway.bootstrap().await {
            Ok(b) => b,
            Err(e) => {
                crate::report_error(&e);
                gateway.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        let runtime = start_local_runtime(&gateway, &data_dir).await;
        // The web console at `/`, on the same listener and behind the same guard.
        gateway.mount(crate::web::routes(crate::console::Console::new(
            gateway.state().clone(),
            runtime.clone(),
        ), true));
        let handle = match gateway.serve().await {
            Ok(h) => h,
            Err(e) => {
                crate::report_error(&e);
                if let Some(rt) = &runtime {
                    rt.shutdown().await;
                }
                gateway.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        crate::instance::set_port(&lock, &handle.local_addr().to_string());
        say(format_args!(
            "BurnCloud gateway listening on http://{} (data: {})",
            handle.local_addr(),
            data_dir.display()
        ));
        say(format_args!("Web console: http://{}/", handle.local_addr()));
        match bootstrap {
            gateway_core::Bootstrap::Ready => {}
            gateway_core::Bootstrap::AdminCreated => {
                say("Created the admin account 'admin' from BURNCLOUD_ADMIN_PASSWORD.")
            }
            gateway_core::Bootstrap::SetupToken { token, path } => say(format_args!(
                "No admin account yet. Register it from this machine (POST /api/auth/register), or from elsewhere with the one-time setup token:\n  {token}\n(also in {}; send it as \"setup_token\" in the registration body)",
                path.display()
            )),
        }
        // Start-up is over: its code pages and free heap go back (an idle router went
        // from ~25 MB RSS to ~12 MB; see memory.rs).
        let released = crate::memory::release_startup_pages();
        tracing::debug!(?released, "start-up memory handed back");
        stop.wait().await;
        tracing::info!("Stopping: finishing in-flight requests and saving usage...");
        if let Some(rt) = &runtime {
            rt.shutdown().await;
        }
        handle.stop(Duration::from_secs(10)).await;
        gateway.shutdown().await;
        tracing::info!("Stopped.");
        ExitCode::SUCCESS
    })
}

/// Start the supervisor of local models (llama-server children) for this gateway; without
/// one, cloud channels still work and local models cannot start (said on stderr).
pub async fn start_local_runtime(
    gateway: &Gateway,
    data_dir: &std::path::Path,
) -> Option<llama_manager::runtime::Runtime> {
    let opts = llama_manager::runtime::RuntimeOptions::from_env(data_dir);
    match llama_manager::runtime::Runtime::start(gateway.state().clone(), opts).await {
        Ok(rt) => Some(rt),
        Err(e) => {
            tracing::warn!("local models are unavailable: {e}");
            None
        }
    }
}

/// SIGINT/SIGTERM, caught from the moment this is made. Make it before anything is
/// announced: a signal that arrives between "listening on" and the wait must stop the
/// router gracefully, not kill it with the default action (a service manager, or a test,
/// may send SIGTERM as soon as it reads the address).
pub struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    /// Install the handlers now (inside a tokio runtime).
    pub fn listen() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(i), Ok(t)) => Some((i, t)),
                _ => None,
            };
            Shutdown { signals }
        }
        #[cfg(not(unix))]
        Shutdown {}
    }

    /// Resolves on the first SIGINT or SIGTERM since `listen` (Ctrl-C elsewhere).
    pub async fn wait(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.signals {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
