//! Google Vertex AI (channel type 41): Gemini and Claude models in a Google Cloud project,
//! reached with a service account's OAuth access token.
//!
//! - The channel key is the service account's JSON key file ([`ServiceAccount`]). An
//!   access token comes from its `token_uri` by the JWT-bearer grant (RFC 7523): a JWT
//!   signed RS256 with the account's `private_key`, claims `iss`, `scope`
//!   (`cloud-platform`), `aud`, `iat`, `exp` (one hour). [`Tokens`] keeps one per channel
//!   until a minute before it expires, one refresh at a time.
//!   <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>.
//! - The region is the base URL's: `https://{region}-aiplatform.googleapis.com` (the
//!   default base URL is `us-central1`'s); any other base URL (a proxy, a test's fake) is
//!   used as is with region [`DEFAULT_REGION`].
//! - The upstream model name picks the publisher: `claude-*` is Anthropic's, anything else
//!   Google's. Gemini models take the Gemini API's bodies and answers ([`super::gemini`])
//!   on `…/publishers/google/models/{model}:generateContent` (`:streamGenerateContent?alt=sse`);
//!   Claude models take the Anthropic Messages body without `model`, with
//!   `anthropic_version: vertex-2023-10-16` ([`claude_body`]) on `:rawPredict`
//!   (`:streamRawPredict`) and answer as Anthropic does ([`super::anthropic`]).
//!   <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference>,
//!   <https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude>.
//! - Vertex's own errors (quota, permission, unknown model) are Google's shape
//!   (`{"error": {"code", "message", "status"}}`); for Claude models
//!   [`GoogleErrorToAnthropic`] turns them into Anthropic's before the Anthropic stages.
//!
//! The JWT is written here (a header, claims and an RSA signature by aws-lc-rs):
//! `jsonwebtoken`, also linked, takes only PKCS#1 RSA keys without its PEM feature, and
//! Google's keys are PKCS#8.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use axum::http::HeaderMap;

use super::anthropic::{Anthropic, messages_body};
use super::gemini::{Gemini, request_body};
use super::{Answer, Call, CallError, Decode, Request, Target, Upstream};
use crate::vocab::Usage;
use crate::wire::Stage;

/// The `anthropic_version` Vertex takes in Claude bodies.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
/// The region of a base URL that names none.
pub const DEFAULT_REGION: &str = "us-central1";
/// Where a key without `token_uri` gets its tokens.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth scope asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The grant type of a signed-JWT token request.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an assertion asks its token to live (Google's maximum), in seconds.
pub const ASSERTION_LIFETIME: u64 = 3600;
/// A token is refreshed this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

const KEY_FILE: &str = "a Google Vertex AI channel key must be a service account's JSON key file";

/// The fields of a service account key that the channel uses.
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key_id: Option<String>,
    pub token_uri: String,
    /// `private_key` without its PEM armour (PKCS#8 DER).
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Read a key file: JSON, `type` `service_account`, `project_id`, `client_email`, a
    /// PEM `private_key`, an optional http(s) `token_uri`. The RSA key itself is checked
    /// by [`ServiceAccount::validate`].
    pub fn parse(key: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(key.trim())
            .map_err(|e| format!("{KEY_FILE}: the key is not JSON ({e})"))?;
        if !v.is_object() {
            return Err(format!("{KEY_FILE}: the key is not a JSON object"));
        }
        let field = |name: &str| -> Result<String, String> {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{KEY_FILE}: \"{name}\" is missing or empty"))
        };
        let ty = field("type")?;
        if ty != "service_account" {
            return Err(format!(
                "{KEY_FILE}: \"type\" is \"{ty}\", not \"service_account\" (create a key under IAM → Service accounts → Keys)"
            ));
        }
        let project_id = field("project_id")?;
        let client_email = field("client_email")?;
        let pkcs8 = pem_pkcs8(&field("private_key")?)
            .map_err(|e| format!("{KEY_FILE}: \"private_key\" {e}"))?;
        let token_uri = match v.get("token_uri") {
            None | Some(Value::Null) => DEFAULT_TOKEN_URI.to_string(),
            Some(_) => field("token_uri")?,
        };
        if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
            return Err(format!("{KEY_FILE}: \"token_uri\" must be an http(s) URL"));
        }
        Ok(ServiceAccount {
            project_id,
            client_email,
            private_key_id: v
                .get("private_key_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            token_uri,
            pkcs8,
        })
    }

    /// [`ServiceAccount::parse`] and the RSA key read: what saving a channel checks.
    pub fn validate(key: &str) -> Result<Self, String> {
        let sa = Self::parse(key)?;
        sa.signer().map_err(|e| format!("{KEY_FILE}: {e}"))?;
        Ok(sa)
    }

    fn signer(&self) -> Result<RsaKeyPair, String> {
        RsaKeyPair::from_pkcs8(&self.pkcs8)
            .map_err(|e| format!("\"private_key\" is not an RSA private key ({e})"))
    }

    /// The signed JWT that asks `token_uri` for an access token, issued at `now` (seconds
    /// since the Unix epoch).
    pub fn assertion(&self, now: u64) -> Result<String, String> {
        let key = self.signer()?;
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| "RS256 signing with \"private_key\" failed".to_string())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// `-----BEGIN PRIVATE KEY-----` … `-----END PRIVATE KEY-----` → DER. A key pasted with
/// its JSON escapes left in (`\n` as two characters) is read too.
fn pem_pkcs8(pem: &str) -> Result<Vec<u8>, String> {
    let pem = pem.replace("\\n", "\n");
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")
        .and_then(|r| r.strip_suffix("-----END PRIVATE KEY-----"))
        .ok_or(
            "is not a PEM PKCS#8 key (-----BEGIN PRIVATE KEY----- … -----END PRIVATE KEY-----)",
        )?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map_err(|e| format!("is not valid base64 inside its PEM armour ({e})"))
}

/// Google Vertex AI: Gemini models in Gemini's format, Claude models in Anthropic's.
pub struct Vertex;

impl Upstream for Vertex {
    fn name(&self) -> &'static str {
        "Google Vertex AI"
    }

    fn check_key(&self, key: &str, _base_url: &mut String) -> Result<(), String> {
        ServiceAccount::validate(key).map(|_| ())
    }

    /// The access token is added when the call is sent (it may need fetching).
    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError> {
        let sa = ServiceAccount::parse(t.key).map_err(|e| {
            tracing::warn!(channel = t.id, "{e}");
            CallError::Skip("bad_channel_key")
        })?;
        let (body, wire, native) = match publisher(r.model) {
            Publisher::Anthropic => {
                let (messages, native) = messages_body(r)?;
                (claude_body(messages, r.info.stream), "anthropic", native)
            }
            Publisher::Google => (request_body(r)?, "gemini", false),
        };
        let url = url(t.base_url, &sa.project_id, r.model, r.info.stream);
        let mut call = Call::new(url, HeaderMap::new(), Call::json(&body), wire)
            .streaming(r.info.stream)
            .native(native);
        call.google_token = true;
        Ok(call)
    }

    fn answer(&self, a: &Answer<'_>) -> Decode {
        match publisher(a.upstream_model) {
            Publisher::Google => Gemini.answer(a),
            // Vertex's own errors (before Claude is reached) are Google's shape.
            Publisher::Anthropic if a.status >= 400 => {
                let first: Box<dyn Stage> = Box::new(GoogleErrorToAnthropic::new(a.status));
                let after = |mut stages: Vec<Box<dyn Stage>>| {
                    stages.insert(0, first);
                    stages
                };
                match Anthropic.answer(a) {
                    Decode::Native(s) => Decode::Native(after(s)),
                    Decode::ToOpenAi(s) => Decode::ToOpenAi(after(s)),
                    Decode::OpenAi => Decode::ToOpenAi(after(Vec::new())),
                }
            }
            Publisher::Anthropic => Anthropic.answer(a),
        }
    }
}

/// Who publishes a model on Vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    Google,
    Anthropic,
}

/// `claude-*` models are Anthropic's; every other model is Google's.
pub fn publisher(model: &str) -> Publisher {
    if model.starts_with("claude-") {
        Publisher::Anthropic
    } else {
        Publisher::Google
    }
}

/// The region of a base URL `https://{region}-aiplatform.googleapis.com`, else
/// [`DEFAULT_REGION`].
pub fn region(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', ':', '?']).next().unwrap_or_default();
    host.strip_suffix("-aiplatform.googleapis.com")
        .filter(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .unwrap_or(DEFAULT_REGION)
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        // Claude's model ids carry their version after `@`, which paths allow.
        if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request URL for `model` in `project`, streaming or not.
pub fn url(base_url: &str, project: &str, model: &str, stream: bool) -> String {
    let base = base_url.trim().trim_end_matches('/');
    let base = if base.is_empty() {
        format!("https://{DEFAULT_REGION}-aiplatform.googleapis.com")
    } else {
        base.to_string()
    };
    let (publisher, method) = match (publisher(model), stream) {
        (Publisher::Google, false) => ("google", "generateContent"),
        (Publisher::Google, true) => ("google", "streamGenerateContent?alt=sse"),
        (Publisher::Anthropic, false) => ("anthropic", "rawPredict"),
        (Publisher::Anthropic, true) => ("anthropic", "streamRawPredict"),
    };
    format!(
        "{base}/v1/projects/{}/locations/{}/publishers/{publisher}/models/{}:{method}",
        encode_segment(project),
        region(&base),
        encode_segment(model)
    )
}

/// An Anthropic Messages body as Vertex wants it: no `model` (it is in the URL), Vertex's
/// `anthropic_version`, `stream` only when streaming.
pub fn claude_body(mut messages: Value, stream: bool) -> Value {
    if let Some(o) = messages.as_object_mut() {
        o.remove("model");
        o.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
        if stream {
            o.insert("stream".into(), json!(true));
        } else {
            o.remove("stream");
        }
    }
    messages
}

struct Cached {
    /// SHA-256 of the key the token was made with: a changed key gets a new token.
    key_hash: [u8; 32],
    bearer: HeaderValue,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Access tokens by channel id, kept until [`REFRESH_MARGIN`] before they expire. A
/// channel's requests wait for its one refresh in progress rather than each asking.
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<i64, Slot>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// `Bearer <access token>` for the channel with this key: the kept one, or a new one
    /// from the key's `token_uri` (the exchange bounded by `timeout`). Redirects are not
    /// followed (the client's policy); the error says what failed, for the failover trail.
    pub async fn bearer(
        &self,
        client: &reqwest::Client,
        channel: i64,
        key: &str,
        timeout: Duration,
    ) -> Result<HeaderValue, String> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(channel)
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        let key_hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(c) = cached.as_ref()
            && c.key_hash == key_hash
            && Instant::now() < c.refresh_at
        {
            return Ok(c.bearer.clone());
        }
        *cached = None;
        let (bearer, lifetime) = fetch(client, key, timeout).await?;
        *cached = Some(Cached {
            key_hash,
            bearer: bearer.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        });
        Ok(bearer)
    }

    /// Drop a channel's token (Vertex refused it): the next request gets a new one.
    pub fn forget(&self, channel: i64) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&channel);
    }
}

async fn fetch(
    client: &reqwest::Client,
    key: &str,
    timeout: Duration,
) -> Result<(HeaderValue, Duration), String> {
    let sa = ServiceAccount::parse(key)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let form = format!(
        "grant_type={}&assertion={}",
        JWT_BEARER.replace(':', "%3A"),
        sa.assertion(now)?
    );
    let exchange = async {
        let resp = client
            .post(&sa.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable ({e})"))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("token endpoint answer unreadable ({e})"))?;
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("token endpoint timed out ({} ms)", timeout.as_millis()))??;
    token_answer(status, &body)
}

/// The token endpoint's answer: `Bearer <access_token>` and how long it lives, or what
/// went wrong (OAuth's `error` and `error_description`, RFC 6749 §5.2).
pub fn token_answer(status: u16, body: &[u8]) -> Result<(HeaderValue, Duration), String> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let why = match (v["error"].as_str(), v["error_description"].as_str()) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            (Some(e), None) => e.to_string(),
            _ => String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        };
        return Err(format!("token endpoint answered HTTP {status} {why}")
            .trim_end()
            .to_string());
    }
    let token = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("token endpoint answered without an access_token")?;
    if let Some(t) = v["token_type"].as_str()
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(format!(
            "token endpoint answered a {t} token, not a Bearer one"
        ));
    }
    let lifetime = v["expires_in"].as_u64().unwrap_or(ASSERTION_LIFETIME);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "token endpoint answered an access_token unfit for a header")?;
    bearer.set_sensitive(true);
    Ok((bearer, Duration::from_secs(lifetime)))
}

/// Google's error status → Anthropic's error type.
fn anthropic_error_type(status: u16, google: &str) -> &'static str {
    match google {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => "invalid_request_error",
        "UNAUTHENTICATED" => "authentication_error",
        "PERMISSION_DENIED" => "permission_error",
        "NOT_FOUND" => "not_found_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        "UNAVAILABLE" => "overloaded_error",
        _ if (400..500).contains(&status) => "invalid_request_error",
        _ => "api_error",
    }
}

/// A Google-shaped error body (also wrapped in a one-element array) in Anthropic's shape;
/// `None` for anything else.
pub fn anthropic_error(status: u16, body: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = if v.is_array() {
        &v[0]["error"]
    } else {
        &v["error"]
    };
    let message = e["message"].as_str()?;
    // Anthropic's own errors carry `type`; Google's carry `status` and a numeric `code`.
    if e.get("type").is_some() || !(e["status"].is_string() || e["code"].is_number()) {
        return None;
    }
    let kind = anthropic_error_type(status, e["status"].as_str().unwrap_or_default());
    Some(json!({"type": "error", "error": {"type": kind, "message": message}}))
}

/// The first stage of a Claude model's error answer: Vertex's own (Google-shaped) errors
/// become Anthropic's, so the Anthropic stages and clients read them; the model's own
/// Anthropic-shaped errors pass unchanged.
pub struct GoogleErrorToAnthropic {
    status: u16,
    buf: Vec<u8>,
}

impl GoogleErrorToAnthropic {
    pub fn new(status: u16) -> Self {
        GoogleErrorToAnthropic {
            status,
            buf: Vec::new(),
        }
    }
}

impl Stage for GoogleErrorToAnthropic {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) {
        // Error bodies are small; only their start is kept.
        let room = (64 * 1024usize).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    fn finish(&mut self, out: &mut Vec<u8>) {
        match anthropic_error(self.status, &self.buf) {
            Some(v) => {
                let _ = serde_json::to_writer(&mut *out, &v);
            }
            None => out.append(&mut self.buf),
        }
    }
    fn fail(&mut self, _message: &str, _out: &mut Vec<u8>) {}
    fn usage(&self) -> Option<Usage> {
        None
    }
    fn content_events(&self) -> i64 {
        0
    }
    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    fn key_file(pkcs8: &[u8]) -> Value {
        let b64 = STANDARD.encode(pkcs8);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        json!({"type": "service_account", "project_id": "proj-1", "private_key_id": "kid-1",
               "private_key": pem, "client_email": "sa@proj-1.iam.gserviceaccount.com",
               "token_uri": "https://oauth2.googleapis.com/token"})
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_with_googles_claims() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let sa = ServiceAccount::validate(&key_file(der.as_ref()).to_string()).unwrap();
        let jwt = sa.assertion(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
        };
        assert_eq!(
            decode(parts[0]),
            json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
        );
        assert_eq!(
            decode(parts[1]),
            json!({"iss": "sa@proj-1.iam.gserviceaccount.com", "scope": SCOPE,
                   "aud": "https://oauth2.googleapis.com/token", "iat": 1_700_000_000u64, "exp": 1_700_003_600u64})
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let public =
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"other", &sig).is_err());
    }

    #[test]
    fn bad_keys_are_refused_naming_the_field() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let good = key_file(pair.as_der().unwrap().as_ref());
        let refused = |v: &Value| ServiceAccount::validate(&v.to_string()).unwrap_err();
        assert!(
            ServiceAccount::validate("AIzaSy-not-json")
                .unwrap_err()
                .contains("not JSON")
        );
        for field in ["type", "project_id", "client_email", "private_key"] {
            let mut v = good.clone();
            v.as_object_mut().unwrap().remove(field);
            assert!(refused(&v).contains(&format!("\"{field}\"")), "{field}");
        }
        let mut v = good.clone();
        v["type"] = json!("authorized_user");
        assert!(refused(&v).contains("service_account"));
        v = good.clone();
        v["private_key"] =
            json!("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----");
        assert!(refused(&v).contains("\"private_key\" is not a PEM PKCS#8 key"));
        v["private_key"] = json!("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----");
        assert!(refused(&v).contains("base64"));
        v["private_key"] = json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
        assert!(refused(&v).contains("not an RSA private key"));
        v = good.clone();
        v["token_uri"] = json!("file:///etc/passwd");
        assert!(refused(&v).contains("\"token_uri\""));
        // Optional fields: token_uri defaults to Google's, private_key_id may be absent.
        v = good.clone();
        v.as_object_mut().unwrap().remove("token_uri");
        v.as_object_mut().unwrap().remove("private_key_id");
        let sa = ServiceAccount::validate(&v.to_string()).unwrap();
        assert_eq!(sa.token_uri, DEFAULT_TOKEN_URI);
        // A private key whose newlines were left as JSON escapes still reads.
        v["private_key"] = json!(good["private_key"].as_str().unwrap().replace('\n', "\\n"));
        assert!(ServiceAccount::validate(&v.to_string()).is_ok());
    }

    #[test]
    fn regions_publishers_and_urls() {
        assert_eq!(
            region("https://europe-west4-aiplatform.googleapis.com"),
            "europe-west4"
        );
        assert_eq!(
            region("https://us-central1-aiplatform.googleapis.com/"),
            "us-central1"
        );
        assert_eq!(region("http://127.0.0.1:9000"), DEFAULT_REGION);
        assert_eq!(region("https://aiplatform.googleapis.com"), DEFAULT_REGION);
        assert_eq!(publisher("claude-sonnet-4@20250514"), Publisher::Anthropic);
        assert_eq!(publisher("gemini-2.5-flash"), Publisher::Google);
        assert_eq!(
            url(
                "https://europe-west4-aiplatform.googleapis.com",
                "p-1",
                "gemini-2.5-flash",
                false
            ),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/p-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            url("", "p-1", "gemini-2.5-flash", true),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            url(
                "http://127.0.0.1:9/",
                "p-1",
                "claude-sonnet-4@20250514",
                true
            ),
            "http://127.0.0.1:9/v1/projects/p-1/locations/us-central1/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        assert!(url("http://h", "p", "claude-x/y", false).ends_with("/claude-x%2Fy:rawPredict"));
        let body = claude_body(
            json!({"model": "claude-x", "stream": false, "max_tokens": 5, "messages": []}),
            false,
        );
        assert_eq!(
            body,
            json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 5, "messages": []})
        );
        assert_eq!(claude_body(json!({"model": "m"}), true)["stream"], true);
    }

    #[test]
    fn token_answers_and_errors() {
        let (h, life) = token_answer(
            200,
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer ya29.x");
        assert!(h.is_sensitive());
        assert_eq!(life, Duration::from_secs(3599));
        let e = token_answer(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "token endpoint answered HTTP 400 invalid_grant: Invalid JWT Signature."
        );
        assert!(token_answer(302, b"").unwrap_err().contains("HTTP 302"));
        assert!(
            token_answer(200, b"{}")
                .unwrap_err()
                .contains("access_token")
        );
    }

    #[test]
    fn google_errors_become_anthropic_errors() {
        let google = br#"{"error":{"code":404,"message":"Publisher Model not found.","status":"NOT_FOUND"}}"#;
        assert_eq!(
            anthropic_error(404, google).unwrap(),
            json!({"type": "error", "error": {"type": "not_found_error", "message": "Publisher Model not found."}})
        );
        let wrapped = br#"[{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED"}}]"#;
        assert_eq!(
            anthropic_error(429, wrapped).unwrap()["error"]["type"],
            "rate_limit_error"
        );
        let own = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#;
        assert!(anthropic_error(400, own).is_none());
        let mut stage = GoogleErrorToAnthropic::new(400);
        let mut out = Vec::new();
        stage.feed(own, &mut out);
        assert!(out.is_empty());
        stage.finish(&mut out);
        assert_eq!(out, own);
    }
}
