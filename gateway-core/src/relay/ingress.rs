//! Ingress: who is calling (sk- token or login JWT), what they ask for (a peek at the JSON
//! body, without re-serialising it), and whether they may (allow-lists, limits, quota).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::OpenAiError;
use crate::auth::{AuthError, hash_key};
use crate::snapshot::{OLLAMA_KEYLESS_TOKEN, Snapshot, TokenRt, UserRt};
use crate::state::AppState;
use crate::store::now_secs;

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub token: Option<Arc<TokenRt>>,
    /// The group routing and the group ratio use: a user's own group; for an admin's
    /// token, the token's group (admins may route keys through any group).
    pub group: String,
    pub user: Arc<UserRt>,
}

impl Caller {
    /// Whether the token's model allow-list admits `model` (empty list: everything).
    pub fn model_allowed(&self, model: &str) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| t.models.is_empty() || t.models.contains(model))
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
        let token = snap
            .tokens
            .get(&hash_key(credential))
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
        user_id: user.id.clone(),
        token: None,
        group: user.group.clone(),
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
    // A user moved to another group takes their keys along: only admins' keys pick
    // their own group.
    let group = if user.admin {
        token.group.clone()
    } else {
        user.group.clone()
    };
    Ok(Caller {
        user_id: user.id.clone(),
        token: Some(token.clone()),
        group,
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

/// The fields of a request body the gateway looks at; the rest stays untouched bytes.
#[derive(Deserialize)]
pub struct Peek<'a> {
    #[serde(borrow)]
    pub model: Option<&'a RawValue>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(borrow, default)]
    pub stream_options: Option<&'a RawValue>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
}

/// What ingress learned about a request body.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub model: String,
    pub stream: bool,
    pub max_tokens: Option<i64>,
    /// Byte span of the `model` value (with its quotes).
    model_span: (usize, usize),
    /// Byte span of `stream_options`'s value, if present.
    stream_options_span: Option<(usize, usize)>,
    /// Whether the client itself asked for the usage chunk.
    pub client_wants_usage: bool,
}

fn span_of(body: &[u8], raw: &RawValue) -> (usize, usize) {
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    (start, start + raw.get().len())
}

/// Parse the request body enough to route it.
pub fn peek(body: &Bytes) -> Result<RequestInfo, OpenAiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(OpenAiError::invalid_request(
            "Request body is empty: expected a JSON object",
        ));
    }
    let p: Peek<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            OpenAiError::invalid_request(format!("Invalid request body: {e}"))
        } else {
            OpenAiError::invalid_request(format!("Malformed JSON in request body: {e}"))
        }
    })?;
    let raw_model = p
        .model
        .ok_or_else(|| OpenAiError::invalid_request("Missing required parameter: 'model'"))?;
    let model: String = serde_json::from_str(raw_model.get())
        .map_err(|_| OpenAiError::invalid_request("Invalid type for 'model': expected a string"))?;
    if model.is_empty() {
        return Err(OpenAiError::invalid_request("'model' must not be empty"));
    }
    let client_wants_usage = p
        .stream_options
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .and_then(|v| v.get("include_usage").and_then(|b| b.as_bool()))
        .unwrap_or(false);
    Ok(RequestInfo {
        model,
        stream: p.stream.unwrap_or(false),
        max_tokens: p.max_completion_tokens.or(p.max_tokens).filter(|n| *n > 0),
        model_span: span_of(body, raw_model),
        stream_options_span: p.stream_options.map(|r| span_of(body, r)),
        client_wants_usage,
    })
}

/// The body to send upstream: the client's bytes, edited only where the gateway must
/// (model mapping; `stream_options.include_usage` for streams so they are billed exactly).
pub fn upstream_body(body: &Bytes, info: &RequestInfo, upstream_model: &str) -> Bytes {
    let rename = upstream_model != info.model;
    let add_usage = info.stream && !info.client_wants_usage;
    if !rename && !add_usage {
        return body.clone();
    }
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::with_capacity(2);
    if rename {
        let quoted = serde_json::to_vec(upstream_model).unwrap_or_default();
        edits.push((info.model_span.0, info.model_span.1, quoted));
    }
    if add_usage {
        match info.stream_options_span {
            Some((s, e)) => {
                let mut obj: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(&body[s..e]).unwrap_or_default();
                obj.insert("include_usage".into(), serde_json::Value::Bool(true));
                edits.push((s, e, serde_json::to_vec(&obj).unwrap_or_default()));
            }
            None => {
                let open = body.iter().position(|b| *b == b'{').unwrap_or(0) + 1;
                edits.push((
                    open,
                    open,
                    b"\"stream_options\":{\"include_usage\":true},".to_vec(),
                ));
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(body.len() + 48);
    let mut pos = 0;
    for (s, e, text) in edits {
        out.extend_from_slice(&body[pos..s]);
        out.extend_from_slice(&text);
        pos = e;
    }
    out.extend_from_slice(&body[pos..]);
    Bytes::from(out)
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
    fn untouched_when_nothing_to_edit() {
        let body = Bytes::from_static(
            br#"{"model":"gpt-4o", "messages":[{"role":"user","content":"hi"}]}"#,
        );
        let info = peek(&body).unwrap();
        assert_eq!(upstream_body(&body, &info, "gpt-4o"), body);
    }

    #[test]
    fn renames_model_and_adds_usage_keeping_the_rest() {
        let body = Bytes::from_static(
            br#" {"messages":[], "model" : "a", "stream":true, "x":{"model":"keep"}}"#,
        );
        let info = peek(&body).unwrap();
        let out = upstream_body(&body, &info, "b");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "b");
        assert_eq!(v["x"]["model"], "keep");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(!info.client_wants_usage);
    }

    #[test]
    fn merges_existing_stream_options() {
        let body = Bytes::from_static(
            br#"{"model":"a","stream":true,"stream_options":{"include_usage":false,"other":1}}"#,
        );
        let info = peek(&body).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&upstream_body(&body, &info, "a")).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["other"], 1);
    }

    #[test]
    fn bad_bodies_are_400() {
        for b in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"model": 5}"#,
            br#"{"messages":[]}"#,
            br#"{"model":"a","stream":"yes"}"#,
        ] {
            let e = peek(&Bytes::copy_from_slice(b)).unwrap_err();
            assert_eq!(e.status, 400, "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn ip_allow_lists() {
        let allow = vec!["127.0.0.1".to_string(), "10.1.0.0/16".to_string()];
        assert!(ip_allowed(&allow, "127.0.0.1".parse().unwrap()));
        assert!(ip_allowed(&allow, "10.1.2.3".parse().unwrap()));
        assert!(!ip_allowed(&allow, "10.2.0.1".parse().unwrap()));
        assert!(ip_allowed(&[], "8.8.8.8".parse().unwrap()));
    }
}
