//! First run: on a database without any user, create a local admin and a default `sk-`
//! key silently, so the dashboard can show a working base URL + key at once.
//!
//! Token keys are stored only as SHA-256, so the key the dashboard shows is kept in
//! `<data dir>/desktop-credentials.json` (mode 0600), next to the generated JWT secret,
//! together with the admin's random password (for the HTTP console). The dashboard shows
//! the key only while its token still exists and is enabled; otherwise it says so and
//! offers "Create a new key", which replaces the file's key.

use gateway_core::vocab::status;
use std::path::{Path, PathBuf};

use gateway_core::AppState;
use gateway_core::auth::{NewKey, hash_key, hash_password, new_token_key, random_alnum};
use gateway_core::store::{Store, StoreError, StoreResult, tokens, users};
use serde::{Deserialize, Serialize};

pub const CREDENTIALS_FILE: &str = "desktop-credentials.json";
pub const ADMIN_NAME: &str = "admin";
const KEY_NAME: &str = "desktop default";

/// What the credentials file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub key: String,
}

pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

pub fn read_credentials(data_dir: &Path) -> Option<Credentials> {
    let text = std::fs::read_to_string(credentials_path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_credentials(data_dir: &Path, c: &Credentials) -> StoreResult<()> {
    let path = credentials_path(data_dir);
    let text = serde_json::to_string_pretty(c).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let io = |source| StoreError::Open {
        path: path.clone(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Create the admin and the default key when the database has no user. Returns whether
/// it did. The caller reloads the snapshot.
pub fn ensure(state: &AppState) -> StoreResult<bool> {
    let store = &state.store;
    if !store.with(|c| users::list(c))?.is_empty() {
        return Ok(false);
    }
    let password = random_alnum(24);
    let hash = hash_password(&password).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let admin = store.with(|c| users::create(c, ADMIN_NAME, None, &hash))?;
    let key = create_key(store, &admin.id)?;
    write_credentials(
        &state.config.data_dir,
        &Credentials {
            username: ADMIN_NAME.into(),
            password,
            key: key.key,
        },
    )?;
    tracing::info!("first run: created the local admin and a default key");
    Ok(true)
}

/// A new `sk-` key named for the desktop, owned by `user_id`.
fn create_key(store: &Store, user_id: &str) -> StoreResult<NewKey> {
    let key = new_token_key();
    store.with(|c| {
        tokens::create(
            c,
            user_id,
            &key.hash,
            &key.display,
            tokens::TokenFields {
                name: Some(KEY_NAME.into()),
                ..Default::default()
            },
        )
    })?;
    Ok(key)
}

/// The key to show on the dashboard, or why there is none.
pub fn dashboard_key(state: &AppState) -> (Option<String>, Option<String>) {
    let Some(creds) = read_credentials(&state.config.data_dir) else {
        return (
            None,
            Some(
                "No desktop key on this data folder (it was set up before the desktop app).".into(),
            ),
        );
    };
    let hash = hash_key(&creds.key);
    let all = state
        .store
        .with(|c| tokens::list(c, None))
        .unwrap_or_default();
    match all.iter().find(|t| t.key_hash == hash) {
        Some(t) if t.status == status::ENABLED => (Some(creds.key), None),
        Some(_) => (None, Some("The desktop key is disabled.".into())),
        None => (None, Some("The desktop key was revoked.".into())),
    }
}

/// A new desktop key for the first admin (replacing the file's key).
pub fn new_key(state: &AppState) -> StoreResult<String> {
    let store = &state.store;
    let admin = store
        .with(|c| users::list(c))?
        .into_iter()
        .find(|u| u.role == users::Role::Admin && u.status == status::ENABLED)
        .ok_or_else(|| StoreError::NotFound("no enabled admin to own the key".into()))?;
    let key = create_key(store, &admin.id)?;
    let mut creds = read_credentials(&state.config.data_dir).unwrap_or(Credentials {
        username: admin.username.clone(),
        password: String::new(),
        key: String::new(),
    });
    creds.key = key.key.clone();
    write_credentials(&state.config.data_dir, &creds)?;
    Ok(key.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::testing::console;

    #[tokio::test]
    async fn first_run_creates_admin_and_a_working_key_once() {
        let t = console().await;
        let state = &t.console.state;
        assert!(ensure(state).unwrap());
        assert!(!ensure(state).unwrap(), "only on an empty database");
        let creds = read_credentials(t.dir.path()).unwrap();
        assert!(creds.key.starts_with("sk-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(credentials_path(t.dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let users = state.store.with(|c| users::list(c)).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].role, users::Role::Admin);
        assert_eq!(dashboard_key(state).0.as_deref(), Some(creds.key.as_str()));
        // The key authenticates against the snapshot once reloaded.
        state.config_changed().await;
        assert!(gateway_core::console::routing::key_accepted(
            state, &creds.key
        ));
        // Revoked: the dashboard says so; a new key replaces it.
        let tok = state.store.with(|c| tokens::list(c, None)).unwrap();
        state
            .store
            .with(|c| tokens::delete(c, tok[0].id, None))
            .unwrap();
        let (k, note) = dashboard_key(state);
        assert!(k.is_none());
        assert!(note.unwrap().contains("revoked"));
        let fresh = new_key(state).unwrap();
        assert_eq!(dashboard_key(state).0, Some(fresh));
    }

    #[tokio::test]
    async fn an_existing_database_is_left_alone() {
        let t = console().await;
        let state = &t.console.state;
        state
            .store
            .with(|c| users::create(c, "someone", None, "x"))
            .unwrap();
        assert!(!ensure(state).unwrap());
        assert!(read_credentials(t.dir.path()).is_none());
        assert!(dashboard_key(state).1.is_some());
    }
}
