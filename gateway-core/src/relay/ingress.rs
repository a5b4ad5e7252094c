//! Ingress: who is calling (sk- token or login JWT), what they ask for (a peek at the JSON
//! body, without re-serialising it), and whether they may (allow-lists, limits, quota).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::{HeaderMap, header};

use super::OpenAiError;
use crate::auth::{AuthError, hash_key_in};
use crate::snapshot::{OLLAMA_KEYLESS_TOKEN, Snapshot, TokenRt, UserRt};
use crate::state::AppState;
use crate::store::now_secs;
pub use crate::wire::openai::{RequestInfo, peek};

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Option<Arc<TokenRt>>,
    pub user: Arc<UserRt>,
}

impl Caller {
    /// Whether the token's model allow-list admits `model` (empty list: everything).
    pub fn model_allowed(&self, model: &str) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| t.models.is_empty() || t.models.contains(model))
    }

    pub fn user_id(&self) -> &str {
        &self.user.id
    }

    /// The group routing and the group ratio use ([`UserRt::group_for`]), read from the
    /// snapshot's records, not copied per request.
    pub fn group(&self) -> &str {
        self.user.group_for(self.token.as_deref())
    }
}

/// Authenticate `Authorization: Bearer` (or `x-api-key`) against the snapshot.
pub fn authenticate(
    state: &AppState,
    snap: &Snapshot,
    headers: &HeaderMap,
) -> Result<Caller, OpenAiError> {
    let credential = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            OpenAiError::invalid_token("Missing API key: send Authorization: Bearer <sk-token>")
        })?;
    if credential.starts_with("sk-") {
        let mut hashed = [0u8; 64];
        let token = snap
            .tokens
            .get(hash_key_in(credential, &mut hashed))
            .ok_or_else(|| OpenAiError::invalid_token("Invalid API key"))?;
        return token_caller(snap, token);
    }
    let claims = state.jwt.verify(credential).map_err(|e| match e {
        AuthError::Expired => OpenAiError::token_expired(),
        _ => OpenAiError::invalid_token("Invalid API key"),
    })?;
    let user = snap
        .users
        .get(&claims.sub)
        .filter(|u| u.enabled)
        .ok_or_else(|| {
            OpenAiError::invalid_token("Invalid API key: the user no longer exists or is disabled")
        })?;
    if claims.iat < user.password_changed_at {
        return Err(OpenAiError::invalid_token(
            "This login token was issued before a password change: log in again",
        ));
    }
    Ok(Caller {
        token: None,
        user: user.clone(),
    })
}

/// The caller a token stands for: enabled, not expired, with an enabled owner.
pub fn token_caller(snap: &Snapshot, token: &Arc<TokenRt>) -> Result<Caller, OpenAiError> {
    if !token.enabled {
        return Err(OpenAiError::invalid_token("This API key is disabled"));
    }
    if token.expired_time > 0 && token.expired_time <= now_secs() {
        return Err(OpenAiError::token_expired());
    }
    let user = snap
        .users
        .get(&token.user_id)
        .filter(|u| u.enabled)
        .ok_or_else(|| OpenAiError::invalid_token("The owner of this API key is disabled"))?;
    Ok(Caller {
        token: Some(token.clone()),
        user: user.clone(),
    })
}

/// Whether `ip` may use a token with this allow list (exact addresses or IPv4 `a.b.c.d/n`).
pub fn ip_allowed(allow: &[String], ip: IpAddr) -> bool {
    if allow.is_empty() {
        return true;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    allow.iter().any(|entry| match entry.split_once('/') {
        None => entry.parse::<IpAddr>().is_ok_and(|a| a == ip),
        Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u32>(), ip) {
            (Ok(IpAddr::V4(n)), Ok(b), IpAddr::V4(i)) if b <= 32 => {
                let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
                u32::from(n) & mask == u32::from(i) & mask
            }
            _ => false,
        },
    })
}

fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key("x-api-key")
}

/// The caller of an Ollama request: its key, or — with no key, from this machine, when
/// the keyless setting names a token — that token.
pub(super) fn ollama_caller(
    state: &AppState,
    snap: &Snapshot,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Caller, OpenAiError> {
    if !has_credential(headers)
        && peer.ip().is_loopback()
        && let Some(id) = snap.ollama_keyless_token
    {
        let token = snap.tokens.values().find(|t| t.id == id).ok_or_else(|| {
            OpenAiError::invalid_token(format!(
                "The token chosen for keyless requests (id {id}) no longer exists: choose another in the settings ({OLLAMA_KEYLESS_TOKEN})"
            ))
        })?;
        return token_caller(snap, token);
    }
    authenticate(state, snap, headers).map_err(|mut e| {
        if !has_credential(headers) {
            e.message = format!(
                "{}; or let keyless requests from this machine use a key (setting {OLLAMA_KEYLESS_TOKEN})",
                e.message
            );
        }
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_allow_lists() {
        let allow = vec!["127.0.0.1".to_string(), "10.1.0.0/16".to_string()];
        assert!(ip_allowed(&allow, "127.0.0.1".parse().unwrap()));
        assert!(ip_allowed(&allow, "10.1.2.3".parse().unwrap()));
        assert!(!ip_allowed(&allow, "10.2.0.1".parse().unwrap()));
        assert!(ip_allowed(&[], "8.8.8.8".parse().unwrap()));
    }
}
