//! The desktop's service layer: reads the live state the pages show and carries out their
//! actions, by calling gateway-core's store and state and llama-manager's library and
//! deployments directly (same process, no HTTP). Thin: parsing of form text, store calls,
//! `config_changed()` after routing changes, messages for people. No business rules.
//!
//! # Layout
//!
//! - [`load`]: `ConsoleData` for every page from the database, relay and runtime.
//! - [`actions`]: `Action` → store/runtime calls → `Notice`.
//! - [`admin`]: the Users page (accounts, groups, redemption codes, invitations,
//!   registration) through gateway-core's functions that the console API's handlers use.
//! - [`chat`]: the Chat page (playground): conversations, and answers streamed from the
//!   gateway's own `/v1` with the desktop key.
//! - [`hub`]: hub search, remote fit, and the download queue with its progress.
//! - [`first_run`]: the silent local admin and default key on an empty database.
//! - [`starter`]: first run, the local way: a small model that fits, one click to download,
//!   deploy and chat.
//! - [`user`]: what a plain user of the web console sees and may do (their own data).

pub mod actions;
pub mod admin;
pub mod chat;
pub mod first_run;
pub mod hub;
pub mod load;
pub mod starter;
pub mod user;
pub mod words;

use std::path::PathBuf;
use std::sync::Arc;

use gateway_core::AppState;
use gateway_core::store::{StoreResult, settings};
use llama_manager::library::Library;
use llama_manager::runtime::Runtime;

/// Settings-table keys the desktop owns.
pub const LISTEN_KEY: &str = "desktop.listen";
pub const CLOSE_TO_TRAY_KEY: &str = "desktop.close_to_tray";
pub const THEME_KEY: &str = "desktop.theme";

/// The service behind the pages; cheap to clone.
#[derive(Clone)]
pub struct Console {
    pub state: Arc<AppState>,
    pub runtime: Option<Runtime>,
    pub data_dir: PathBuf,
    pub library: Library,
    /// This user's start-at-login entry (None: the home folder is unknown).
    pub autostart: Option<crate::autostart::Entry>,
    /// The hub and this process's one download queue (created on the first download).
    pub hub: Arc<hub::Hub>,
    /// The admin signed in to the web console (owns the keys made there); None on the
    /// desktop, where keys belong to the first enabled admin.
    pub acting: Option<String>,
    /// The Chat page's open conversation and streaming answer.
    pub chat: Arc<chat::ChatHub>,
    /// The dashboard's first-run local model (pick, download, deploy).
    pub starter: Arc<starter::Starter>,
}

impl Console {
    pub fn new(state: Arc<AppState>, runtime: Option<Runtime>) -> Self {
        let data_dir = state.config.data_dir.clone();
        let library = Library::new(state.store.clone(), data_dir.join("models"));
        let autostart = std::env::current_exe()
            .ok()
            .zip(crate::autostart::user_dirs().ok())
            .map(|(exe, (home, config))| crate::autostart::entry(&exe, &home, &config));
        Console {
            state,
            runtime,
            data_dir,
            library,
            autostart,
            hub: Arc::new(hub::Hub::from_env()),
            acting: None,
            chat: Arc::default(),
            starter: Arc::default(),
        }
    }

    /// A desktop setting (`desktop.*`).
    pub fn setting(&self, key: &str) -> Option<String> {
        self.state
            .store
            .with(|c| settings::get(c, key))
            .ok()
            .flatten()
    }

    pub fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.state.store.with(|c| settings::set(c, key, value))
    }
}

/// The listen address saved from the Settings page, when the environment does not say
/// otherwise ([`listen_env`]).
pub fn saved_listen(state: &AppState) -> Option<std::net::SocketAddr> {
    state
        .store
        .with(|c| settings::get(c, LISTEN_KEY))
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
}

/// The listen-address variables set in the environment, as `NAME=value` (the gateway's
/// own list: `BURNCLOUD_HOST`/`HOST`, `BURNCLOUD_PORT`/`PORT`); any of them wins over the
/// saved address.
pub fn listen_env() -> Vec<String> {
    use gateway_core::config::{HOST_VARS, PORT_VARS};
    HOST_VARS
        .iter()
        .chain(PORT_VARS.iter())
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={v}"))
        })
        .collect()
}

/// Whether the environment sets the listen address (it wins over the saved one).
pub fn env_sets_listen() -> bool {
    !listen_env().is_empty()
}

#[cfg(test)]
pub mod testing {
    //! A real gateway on a temporary data folder (not listening) for page tests.
    use super::*;
    use gateway_core::{Config, Gateway};

    pub struct TestConsole {
        pub dir: tempfile::TempDir,
        /// Kept open for the test's length (its usage writer and watcher).
        #[allow(dead_code)]
        pub gateway: Gateway,
        pub console: Console,
    }

    pub async fn console() -> TestConsole {
        let dir = tempfile::tempdir().unwrap();
        let gateway = Gateway::open(Config::for_data_dir(dir.path(), 0))
            .await
            .unwrap();
        let mut console = Console::new(gateway.state().clone(), None);
        // Never the real user's autostart entry: one under the test's folder.
        console.autostart = Some(crate::autostart::entry(
            std::path::Path::new("/usr/bin/burncloud"),
            dir.path(),
            &dir.path().join("config"),
        ));
        TestConsole {
            dir,
            gateway,
            console,
        }
    }
}
