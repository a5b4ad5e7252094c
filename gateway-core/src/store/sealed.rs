//! Provider keys at rest: sealed with AES-256-GCM (aws-lc-rs, already linked for TLS) under
//! a key kept outside the database, in `provider-keys.key` (0600) beside it. A database
//! copied elsewhere holds no readable provider key. Stored form: `enc:v1:<base64(nonce ‖
//! ciphertext ‖ tag)>`; rows from before sealing are sealed when the store opens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::store::db::Connection;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::{StoreError, StoreResult};

const PREFIX: &str = "enc:v1:";
const AAD: &[u8] = b"burncloud channel key";

/// The key file next to a database file.
pub fn key_file(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("provider-keys.key")
}

/// Seals and opens provider keys of one database.
pub struct Sealer(RandomizedNonceKey);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    fn new(bytes: &[u8; 32]) -> Self {
        Sealer(RandomizedNonceKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"))
    }

    /// The sealed form of `plain` (empty stays empty: local channels have no key).
    pub fn seal(&self, plain: &str) -> String {
        if plain.is_empty() || plain.starts_with(PREFIX) {
            return plain.to_string();
        }
        let mut buf = plain.as_bytes().to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(AAD), &mut buf)
            .expect("AES-GCM sealing of a short key cannot fail");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// The plain key; `None` when it was sealed under another key (a copied database).
    pub fn open(&self, stored: &str) -> Option<String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Some(stored.to_string());
        };
        let raw = STANDARD.decode(b64).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (n, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).ok()?;
        let mut buf = rest.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(AAD), &mut buf).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<Sealer>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Sealer>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The sealer of the database `conn` is connected to. SQLite: the key file beside it
/// (created on first use, 0600); an in-memory database gets a key for this process only.
/// PostgreSQL: a key derived from the secret every gateway on that database shares, so
/// each of them opens what another sealed.
pub fn for_conn(conn: &Connection) -> StoreResult<Arc<Sealer>> {
    let (cache_key, derived) = match conn.shared_secret() {
        Some(secret) => {
            let mut h = Sha256::new();
            h.update(b"burncloud provider keys\0");
            h.update(secret.as_bytes());
            let key: [u8; 32] = h.finalize().into();
            (
                PathBuf::from(format!("postgres:{}", hex::encode(&key[..8]))),
                Some(key),
            )
        }
        None => (
            conn.path()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_default(),
            None,
        ),
    };
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = cache.get(&cache_key) {
        return Ok(s.clone());
    }
    let bytes = match derived {
        Some(key) => key,
        None if cache_key.as_os_str().is_empty() => rand::random(),
        None => load_or_create(&key_file(&cache_key))?,
    };
    let sealer = Arc::new(Sealer::new(&bytes));
    cache.insert(cache_key, sealer.clone());
    Ok(sealer)
}

fn load_or_create(file: &Path) -> StoreResult<[u8; 32]> {
    let fail = |e: std::io::Error| StoreError::Open {
        path: file.to_path_buf(),
        source: e,
    };
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let mut key = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
                StoreError::Invalid(format!(
                    "{} is not a provider-key file (64 hex digits): restore it from a backup, or remove it and enter the channel keys again",
                    file.display()
                ))
            })?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            crate::secure::write_private(file, hex::encode(key).as_bytes()).map_err(fail)?;
            Ok(key)
        }
        Err(e) => Err(fail(e)),
    }
}

/// Seal every channel key still stored in plain text (databases from before sealing).
pub fn seal_plain_keys(conn: &mut Connection) -> StoreResult<usize> {
    let sealer = for_conn(conn)?;
    let tx = conn.transaction()?;
    let plain: Vec<(i64, String)> = {
        let mut stmt =
            tx.prepare("SELECT id, key FROM channels WHERE key != '' AND key NOT LIKE 'enc:v1:%'")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (id, key) in &plain {
        tx.execute(
            "UPDATE channels SET key = ?1 WHERE id = ?2",
            crate::store::db::params![sealer.seal(key), id],
        )?;
    }
    tx.commit()?;
    Ok(plain.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key() {
        let a = Sealer::new(&[7; 32]);
        let b = Sealer::new(&[8; 32]);
        let s = a.seal("sk-upstream-secret");
        assert!(s.starts_with(PREFIX) && !s.contains("sk-upstream"));
        assert_ne!(s, a.seal("sk-upstream-secret"), "a fresh nonce each time");
        assert_eq!(a.open(&s).as_deref(), Some("sk-upstream-secret"));
        assert_eq!(b.open(&s), None);
        assert_eq!(a.open("enc:v1:!!"), None);
        assert_eq!(a.seal(""), "");
        assert_eq!(a.open("legacy-plain").as_deref(), Some("legacy-plain"));
    }
}
