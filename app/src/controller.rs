//! The in-process gateway as the desktop sees it: open once, start/stop listening
//! (tray toggle), and a status the views subscribe to.

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gateway_core::{Config, Gateway, ServeHandle};
use tokio::sync::watch;

use crate::console::{self, Console, first_run};
use crate::views::{GatewayInfo, GatewayState};

/// Owns the gateway for the app's lifetime.
pub struct GatewayController {
    config: Config,
    gateway: tokio::sync::Mutex<Option<Gateway>>,
    runtime: tokio::sync::Mutex<Option<llama_manager::runtime::Runtime>>,
    serving: tokio::sync::Mutex<Option<ServeHandle>>,
    status: watch::Sender<GatewayInfo>,
    last_url: Mutex<String>,
    console: OnceLock<Console>,
}

impl GatewayController {
    pub fn new(config: Config) -> Self {
        let url = format!("http://{}:{}", config.host, config.port);
        let info = GatewayInfo {
            url: url.clone(),
            state: GatewayState::Starting,
            data_dir: config.data_dir.display().to_string(),
        };
        GatewayController {
            config,
            gateway: tokio::sync::Mutex::new(None),
            runtime: tokio::sync::Mutex::new(None),
            serving: tokio::sync::Mutex::new(None),
            status: watch::channel(info).0,
            last_url: Mutex::new(url),
            console: OnceLock::new(),
        }
    }

    /// Current status.
    pub fn status(&self) -> GatewayInfo {
        self.status.borrow().clone()
    }

    /// Changes of the status.
    pub fn subscribe(&self) -> watch::Receiver<GatewayInfo> {
        self.status.subscribe()
    }

    fn publish(&self, state: GatewayState) {
        let url = self
            .last_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.status.send_modify(|i| {
            i.state = state;
            i.url = url;
        });
    }

    /// Open the database (once) and start listening. Failures become a status, not a crash.
    pub async fn start(&self) {
        let mut gw = self.gateway.lock().await;
        if gw.is_none() {
            match Gateway::open(self.config.clone()).await {
                Ok(g) => {
                    // First run: a local admin and a default key, before anything listens.
                    match first_run::ensure(g.state()) {
                        Ok(true) => g.state().config_changed().await,
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "first-run setup failed"),
                    }
                    let rt = crate::router::start_local_runtime(&g, &self.config.data_dir).await;
                    let console = Console::new(g.state().clone(), rt.clone());
                    // Sign-in and invitation pages at `/` (loopback only unless HOST says
                    // otherwise); the window is this process's console (see `web::routes`).
                    g.mount(crate::web::routes(console.clone(), false));
                    let _ = self.console.set(console);
                    *self.runtime.lock().await = rt;
                    *gw = Some(g)
                }
                Err(e) => {
                    self.publish(GatewayState::Failed(e.to_string()));
                    return;
                }
            }
        }
        let Some(gateway) = gw.as_ref() else { return };
        let mut serving = self.serving.lock().await;
        if serving.is_some() {
            return;
        }
        let addr = self.listen_addr(gateway);
        match gateway.serve_on(addr).await {
            Ok(h) => {
                *self.last_url.lock().unwrap_or_else(|p| p.into_inner()) =
                    format!("http://{}", h.local_addr());
                *serving = Some(h);
                self.publish(GatewayState::Running);
            }
            Err(e) => self.publish(GatewayState::Failed(e.to_string())),
        }
    }

    /// The console service (once the database is open).
    pub fn console(&self) -> Option<Console> {
        self.console.get().cloned()
    }

    /// The environment's address when it sets one ([`console::listen_env`]), else the
    /// address saved on the Settings page.
    fn listen_addr(&self, gateway: &Gateway) -> SocketAddr {
        let env = SocketAddr::new(self.config.host, self.config.port);
        if console::env_sets_listen() {
            return env;
        }
        console::saved_listen(gateway.state()).unwrap_or(env)
    }

    /// Stop listening and listen again (after the address changed).
    pub async fn restart(&self) {
        self.stop().await;
        self.start().await;
    }

    /// Stop listening (the state and database stay open).
    pub async fn stop(&self) {
        if let Some(h) = self.serving.lock().await.take() {
            h.stop(Duration::from_secs(5)).await;
        }
        self.publish(GatewayState::Stopped);
    }

    /// Start when stopped or failed, stop when running.
    pub async fn toggle(&self) {
        let running = self.serving.lock().await.is_some();
        if running {
            self.stop().await
        } else {
            self.start().await
        }
    }

    /// Stop every local model, stop listening and flush usage (on quit).
    pub async fn shutdown(&self) {
        if let Some(rt) = self.runtime.lock().await.take() {
            rt.shutdown().await;
        }
        self.stop().await;
        if let Some(g) = self.gateway.lock().await.take() {
            g.shutdown().await;
        }
    }
}
