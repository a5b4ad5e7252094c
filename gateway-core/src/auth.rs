//! Credentials: argon2 password hashes, HS256 JWTs, `sk-` token keys (stored as SHA-256).

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::users::Role;

/// How long a login JWT is valid.
pub const JWT_TTL_SECS: i64 = 7 * 24 * 3600;

/// Errors from credential handling.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token has expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("cannot read or write the JWT secret at {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
}

/// Hash a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Check a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Hash a password with argon2id into `memory` (reused between calls, so a hashing thread
/// holds one 19 MiB block instead of allocating one per hash). Same PHC string as
/// [`hash_password`].
pub fn hash_password_with(
    password: &str,
    memory: &mut Vec<argon2::Block>,
) -> Result<String, AuthError> {
    use base64::Engine;
    let params = argon2::Params::default();
    let salt: [u8; 16] = rand::random();
    let mut out = [0u8; 32];
    compute(
        password,
        &salt,
        &params,
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        &mut out,
        memory,
    )?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        b64.encode(salt),
        b64.encode(out)
    ))
}

/// Check a password against a stored hash, computing into `memory` (see [`hash_password_with`]).
pub fn verify_password_with(password: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => argon2::Version::try_from(v).ok()?,
            None => argon2::Version::default(),
        };
        let params = argon2::Params::try_from(&parsed).ok()?;
        let mut salt_buf = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
        let expected = parsed.hash?;
        let mut out = vec![0u8; expected.len()];
        compute(
            password, salt, &params, algorithm, version, &mut out, memory,
        )
        .ok()?;
        // `Output` compares in constant time.
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

fn compute(
    password: &str,
    salt: &[u8],
    params: &argon2::Params,
    algorithm: argon2::Algorithm,
    version: argon2::Version,
    out: &mut [u8],
    memory: &mut Vec<argon2::Block>,
) -> Result<(), AuthError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Why a password is refused, or None when it is acceptable.
pub fn password_weakness(password: &str, username: &str) -> Option<&'static str> {
    if password.chars().count() < 8 {
        return Some("password must be at least 8 characters");
    }
    if password.len() > 256 {
        return Some("password must be at most 256 bytes");
    }
    if password.eq_ignore_ascii_case(username) {
        return Some("password must not be the username");
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|b| **b).count() < 2 {
        return Some("password must mix at least two of: lower case, upper case, digits, symbols");
    }
    None
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn hashes_with_reused_memory_interoperate_with_the_crate() {
        let mut mem = Vec::new();
        let ours = hash_password_with("Correct-horse-1", &mut mem).unwrap();
        assert!(verify_password("Correct-horse-1", &ours), "{ours}");
        assert!(!verify_password("wrong", &ours));
        let theirs = hash_password("Correct-horse-1").unwrap();
        assert!(verify_password_with("Correct-horse-1", &theirs, &mut mem));
        assert!(!verify_password_with("Correct-horse-2", &theirs, &mut mem));
        assert!(!verify_password_with("x", "not a hash", &mut mem));
    }
}

/// Claims in a login JWT.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub username: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

/// The HS256 key pair derived from the gateway's secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Issue a token for a user, valid for [`JWT_TTL_SECS`].
    pub fn issue(&self, user_id: &str, username: &str, role: Role, now: i64) -> String {
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_string(),
            role: role.as_str().to_string(),
            iat: now,
            exp: now + JWT_TTL_SECS,
        };
        // HS256 encoding of a serialisable struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Verify signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

/// Load the JWT secret kept in `data_dir`, creating a random one on first start (mode 0600).
pub fn load_or_create_secret(data_dir: &Path) -> Result<String, AuthError> {
    let path = data_dir.join("jwt_secret");
    let io = |source| AuthError::SecretFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let secret = random_alnum(64);
    let tmp = data_dir.join("jwt_secret.tmp");
    crate::secure::write_private(&tmp, secret.as_bytes()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(secret)
}

pub use crate::secure::random_alnum;

/// A freshly generated token key and what is stored about it.
pub struct NewKey {
    /// The full key, shown to the user once.
    pub key: String,
    pub hash: String,
    /// Display form: `sk-abcd...wxyz`.
    pub display: String,
}

/// Generate an `sk-` key.
pub fn new_token_key() -> NewKey {
    let key = format!("sk-{}", random_alnum(48));
    let display = format!("{}...{}", &key[..7], &key[key.len() - 4..]);
    NewKey {
        hash: hash_key(&key),
        key,
        display,
    }
}

/// SHA-256 (hex) of a token key: what the database and the snapshot index by.
pub fn hash_key(key: &str) -> String {
    let mut out = [0u8; 64];
    hash_key_in(key, &mut out).to_string()
}

/// [`hash_key`] written into `out` (the relay's lookup, per request, allocates nothing).
pub fn hash_key_in<'a>(key: &str, out: &'a mut [u8; 64]) -> &'a str {
    // A 32-byte digest is exactly 64 hex digits, always ASCII.
    let _ = hex::encode_to_slice(Sha256::digest(key.as_bytes()), out);
    std::str::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("Secret-123").unwrap();
        assert!(verify_password("Secret-123", &h));
        assert!(!verify_password("secret-123", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn token_keys_hash_to_sha256_hex() {
        // FIPS 180-2's "abc" example.
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash_key("abc"), want);
        let mut out = [0u8; 64];
        assert_eq!(hash_key_in("abc", &mut out), want);
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(password_weakness("", "a").is_some());
        assert!(password_weakness("abcdefgh", "a").is_some());
        assert!(password_weakness("Admin1234", "admin1234").is_some());
        assert!(password_weakness("YourSecurePassword!", "admin").is_none());
    }

    #[test]
    fn jwt_round_trip_expiry_and_forgery() {
        let k = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let now = crate::store::now_secs();
        let t = k.issue("u1", "alice", Role::Admin, now);
        assert_eq!(k.verify(&t).unwrap().sub, "u1");
        let old = k.issue("u1", "alice", Role::Admin, now - JWT_TTL_SECS - 10);
        assert!(matches!(k.verify(&old), Err(AuthError::Expired)));
        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert!(matches!(other.verify(&t), Err(AuthError::Invalid)));
        assert!(matches!(k.verify("garbage"), Err(AuthError::Invalid)));
    }

    #[test]
    fn secrets_persist_and_differ_between_dirs() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let s1 = load_or_create_secret(a.path()).unwrap();
        assert_eq!(s1, load_or_create_secret(a.path()).unwrap());
        assert_ne!(s1, load_or_create_secret(b.path()).unwrap());
    }

    #[test]
    fn token_keys_are_hashed() {
        let k = new_token_key();
        assert!(k.key.starts_with("sk-") && k.key.len() == 51);
        assert_eq!(k.hash, hash_key(&k.key));
        assert!(!k.display.contains(&k.key[7..k.key.len() - 4]));
    }
}
