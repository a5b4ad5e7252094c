//! A fake Google Vertex AI on loopback, with its OAuth token endpoint.
//!
//! - `POST /token`: the JWT-bearer grant (RFC 7523) as Google's endpoint takes it: a
//!   form with `grant_type` and `assertion`; the assertion's RS256 signature is verified
//!   with the service account's public key, and its `kid`, `iss`, `scope`, `aud`, `iat`
//!   and `exp` (one hour) are checked. It answers `{"access_token", "expires_in",
//!   "token_type": "Bearer"}`, or OAuth's error body (`invalid_grant`).
//!   <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>
//! - `POST /v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}`:
//!   a token it issued (`Authorization: Bearer`), the key's project, region `us-central1`;
//!   Google's models (`generateContent`, `streamGenerateContent?alt=sse`) answer as
//!   [`fake_gemini`] does, Anthropic's (`rawPredict`, `streamRawPredict`: body without
//!   `model`, with `anthropic_version: vertex-2023-10-16`) as [`fake_anthropic`] does.
//!   Vertex's own errors have Google's shape.
//!   <https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude>
//!
//! The service account's RSA key is made when the tests run ([`test_key`]): no key is
//! committed.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::{fake_anthropic, fake_gemini};

pub const PROJECT: &str = "burncloud-test-project";
pub const REGION: &str = "us-central1";
pub const CLIENT_EMAIL: &str = "gateway@burncloud-test-project.iam.gserviceaccount.com";
pub const KEY_ID: &str = "4f1a9c0e2b7d-throwaway";
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A throwaway RSA key pair made once per test binary: the PKCS#8 PEM for key files and
/// the public half the fake token endpoint verifies with.
pub struct TestKey {
    pub pem: String,
    pub public: Vec<u8>,
}

fn make_key() -> TestKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let b64 = STANDARD.encode(pair.as_der().unwrap().as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    TestKey {
        pem: format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ),
        public: pair.public_key().as_ref().to_vec(),
    }
}

/// The service account's key.
pub fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(make_key)
}

/// Another key, unknown to the fake (a deleted or wrong key).
pub fn other_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(make_key)
}

#[derive(Debug, Clone)]
pub enum TokenBehavior {
    Ok,
    /// Answer this status with OAuth's error body.
    Status(u16),
    /// 307 to this same endpoint (a client that follows it would get a token).
    Redirect,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub project: String,
    pub region: String,
    pub publisher: String,
    pub model: String,
    pub method: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

pub struct Fake {
    pub gemini: Arc<fake_gemini::Fake>,
    pub anthropic: Arc<fake_anthropic::Fake>,
    /// Token requests received (valid or not).
    pub token_requests: AtomicUsize,
    /// Access tokens issued and still honoured.
    pub issued: Mutex<Vec<String>>,
    /// Why token requests were refused.
    pub refused: Mutex<Vec<String>>,
    pub expires_in: Mutex<u64>,
    pub token_behavior: Mutex<TokenBehavior>,
    /// Vertex's own error (Google's shape) for every model call.
    pub vertex_error: Mutex<Option<u16>>,
    pub seen: Mutex<Vec<Seen>>,
    addr: OnceLock<SocketAddr>,
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake {
            gemini: fake_gemini::Fake::new(),
            anthropic: fake_anthropic::Fake::new(),
            token_requests: AtomicUsize::new(0),
            issued: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            expires_in: Mutex::new(3599),
            token_behavior: Mutex::new(TokenBehavior::Ok),
            vertex_error: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
            addr: OnceLock::new(),
        })
    }
    pub fn token_uri(&self) -> String {
        format!("http://{}/token", self.addr.get().unwrap())
    }
    /// A service account key file for this fake, signed by `key`.
    pub fn key_json(&self, key: &TestKey) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": KEY_ID,
            "private_key": key.pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }
    pub fn tokens(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }
    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    /// Revoke every token issued (Vertex then answers 401).
    pub fn revoke(&self) {
        self.issued.lock().unwrap().clear();
    }
}

pub async fn start(fake: Arc<Fake>) -> SocketAddr {
    let app = Router::new()
        .route("/token", post(token))
        .route(
            "/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{action}",
            post(predict),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    fake.addr.set(addr).unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Google's checks of a JWT-bearer assertion.
fn verify(fake: &Fake, headers: &HeaderMap, raw: &[u8]) -> Result<(), String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct != "application/x-www-form-urlencoded" {
        return Err(format!("content-type {ct} is not a form"));
    }
    let uri: Uri = format!("/?{}", String::from_utf8_lossy(raw))
        .parse()
        .map_err(|_| "unparseable form")?;
    let Query(form) = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map_err(|e| format!("unparseable form: {e}"))?;
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err("Invalid grant_type".into());
    }
    let jwt = form.get("assertion").ok_or("assertion missing")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err("Invalid JWT: not three parts".into());
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let header = decode(h)?;
    if header != json!({"alg": "RS256", "typ": "JWT", "kid": KEY_ID}) {
        return Err(format!("Invalid JWT header {header}"));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &test_key().public,
    )
    .verify(format!("{h}.{c}").as_bytes(), &sig)
    .map_err(|_| "Invalid JWT Signature.")?;
    let claims = decode(c)?;
    if claims["iss"] != CLIENT_EMAIL {
        return Err("Invalid JWT: iss".into());
    }
    if claims["scope"] != SCOPE {
        return Err("Invalid JWT: scope".into());
    }
    if claims["aud"] != fake.token_uri().as_str() {
        return Err(format!("Invalid JWT: aud {}", claims["aud"]));
    }
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if (iat - now()).abs() > 300 || exp - iat != 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.".into());
    }
    Ok(())
}

async fn token(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let n = fake.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    match fake.token_behavior.lock().unwrap().clone() {
        TokenBehavior::Status(code) => {
            return oauth_error(code, "invalid_grant", "account not found");
        }
        TokenBehavior::Redirect => {
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, fake.token_uri())],
            )
                .into_response();
        }
        TokenBehavior::Ok => {}
    }
    if let Err(why) = verify(&fake, &headers, &raw) {
        fake.refused.lock().unwrap().push(why.clone());
        return oauth_error(400, "invalid_grant", &why);
    }
    let access = format!("ya29.fake-{n}");
    fake.issued.lock().unwrap().push(access.clone());
    let expires_in = *fake.expires_in.lock().unwrap();
    axum::Json(json!({"access_token": access, "expires_in": expires_in, "token_type": "Bearer"}))
        .into_response()
}

async fn predict(
    State(fake): State<Arc<Fake>>,
    Path((project, region, publisher, action)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let (model, method) = action.split_once(':').unwrap_or((&action, ""));
    fake.seen.lock().unwrap().push(Seen {
        project: project.clone(),
        region: region.clone(),
        publisher: publisher.clone(),
        model: model.to_string(),
        method: method.to_string(),
        query: query.clone().unwrap_or_default(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| fake.issued.lock().unwrap().iter().any(|i| i == t)) {
        return fake_gemini::error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
    }
    if headers.contains_key("x-goog-api-key") || headers.contains_key("x-api-key") {
        return fake_gemini::error(400, "API keys are not supported by this API.");
    }
    if project != PROJECT {
        return fake_gemini::error(
            403,
            &format!("Permission denied on resource project {project}."),
        );
    }
    if region != REGION {
        return fake_gemini::error(404, &format!("Location {region} is not served here."));
    }
    if let Some(code) = *fake.vertex_error.lock().unwrap() {
        let message = match code {
            404 => format!(
                "Publisher Model `projects/{project}/locations/{region}/publishers/{publisher}/models/{model}` not found."
            ),
            429 => "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model.".into(),
            _ => "The service is currently unavailable.".into(),
        };
        return fake_gemini::error(code, &message);
    }
    match (publisher.as_str(), method) {
        ("google", "generateContent" | "streamGenerateContent") if !model.starts_with("claude") => {
            fake_gemini::answer(&fake.gemini, &action, query, &body)
        }
        ("anthropic", "rawPredict" | "streamRawPredict") if model.starts_with("claude-") => {
            let bad = |m: &str| {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(fake_anthropic::error_body(400, m)),
                )
                    .into_response()
            };
            if body.get("model").is_some() {
                return bad("model: Extra inputs are not permitted");
            }
            if body["anthropic_version"] != "vertex-2023-10-16" {
                return bad("anthropic_version: vertex-2023-10-16 is required");
            }
            if (method == "streamRawPredict") != (body["stream"] == true) {
                return bad("stream must be true on streamRawPredict only");
            }
            let mut checked = body.clone();
            checked["model"] = json!(model);
            if let Err((_, m)) = fake_anthropic::validate_body(&checked) {
                return bad(&m);
            }
            fake_anthropic::answer(&fake.anthropic, &body, json!(model))
        }
        _ => fake_gemini::error(404, &format!("Method {publisher}/{action} not found.")),
    }
}
