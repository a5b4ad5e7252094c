//! A fake Anthropic Messages API on loopback. It checks what it receives the way the real
//! API does (x-api-key, anthropic-version, required fields, alternating roles, block
//! types) and answers in the documented shapes: a message, the streaming event sequence
//! (`message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`), tool use, and error bodies
//! (<https://docs.anthropic.com/en/api/messages>, `/en/docs/build-with-claude/streaming`,
//! `/en/api/errors>`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const KEY: &str = "sk-ant-api03-fake-key-0123456789";

#[derive(Debug, Clone)]
pub enum Behavior {
    Ok,
    /// Answer with this status and Anthropic's error body for it.
    Status(u16),
    /// Stream: send this many events, then cut the connection.
    CutAfter(usize),
    /// Bedrock stream: this many events, then an exception frame.
    ExceptionAfter(usize),
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Debug)]
pub struct Fake {
    pub behavior: Mutex<Behavior>,
    pub seen: Mutex<Vec<Seen>>,
    /// Scripted tool calls (tool name, input) for real clients: when set, the fake calls
    /// the first of these tools the request offers only when the last user message
    /// contains [`TOOL_TRIGGER`], and answers a tool result by repeating it.
    pub script: Mutex<Vec<(String, Value)>>,
}

/// The word in a user message that makes a scripted fake call its tool.
pub const TOOL_TRIGGER: &str = "burncloud-tool-test";

/// `--call NAME=JSON` arguments of the fake processes.
pub fn script_from_args(args: &[String]) -> Vec<(String, Value)> {
    args.windows(2)
        .filter(|w| w[0] == "--call")
        .filter_map(|w| w[1].split_once('='))
        .filter_map(|(n, a)| Some((n.to_string(), serde_json::from_str(a).ok()?)))
        .collect()
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake {
            behavior: Mutex::new(Behavior::Ok),
            seen: Mutex::new(Vec::new()),
            script: Mutex::new(Vec::new()),
        })
    }
    pub fn set(&self, b: Behavior) {
        *self.behavior.lock().unwrap() = b;
    }
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }
}

pub async fn start(fake: Arc<Fake>) -> SocketAddr {
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", axum::routing::get(models))
        .route("/model/{id}/invoke", post(bedrock_invoke))
        .route(
            "/model/{id}/invoke-with-response-stream",
            post(bedrock_invoke),
        )
        // Providers take large bodies (long contexts, images); axum's 2 MB default is not theirs.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Anthropic's error body for a status.
pub fn error_body(status: u16, message: &str) -> Value {
    let ty = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": ty, "message": message}})
}

fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(error_body(status, message)),
    )
        .into_response()
}

/// `GET /v1/models` as Anthropic answers it: newest first, paged (`limit`, `after_id`).
async fn models(
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if let Err((status, m)) = validate_headers(&headers) {
        return error(status, &m);
    }
    let all = [
        ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
        ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
        ("claude-opus-4-1-20250805", "Claude Opus 4.1"),
    ];
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    let limit: usize = param("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let start = param("after_id")
        .and_then(|a| all.iter().position(|(id, _)| *id == a).map(|i| i + 1))
        .unwrap_or(0);
    let page: Vec<_> = all.iter().skip(start).take(limit).collect();
    let data: Vec<Value> = page
        .iter()
        .map(|(id, name)| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-08-05T00:00:00Z"}))
        .collect();
    axum::Json(json!({
        "data": data,
        "has_more": start + page.len() < all.len(),
        "first_id": page.first().map(|p| p.0),
        "last_id": page.last().map(|p| p.0),
    }))
    .into_response()
}

/// The checks the real API makes that a converted request could get wrong.
fn validate(headers: &HeaderMap, body: &Value) -> Result<(), (u16, String)> {
    validate_headers(headers)?;
    validate_body(body)
}

/// The key and version headers every call needs.
fn validate_headers(headers: &HeaderMap) -> Result<(), (u16, String)> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return Err((401, "invalid x-api-key".into()));
    }
    if headers.get("authorization").is_some() {
        return Err((
            400,
            "the gateway must not send its own bearer token upstream".into(),
        ));
    }
    if headers.get("anthropic-version").is_none() {
        return Err((400, "anthropic-version: header is required".into()));
    }
    Ok(())
}

pub fn validate_body(body: &Value) -> Result<(), (u16, String)> {
    let bad = |m: &str| Err((400, m.to_string()));
    if !body["model"].is_string() {
        return bad("model: Field required");
    }
    if body["max_tokens"].as_u64().is_none_or(|n| n == 0) {
        return bad("max_tokens: Field required");
    }
    if let Some(t) = body.get("temperature")
        && t.as_f64().is_none_or(|t| !(0.0..=1.0).contains(&t))
    {
        return bad("temperature: Input should be less than or equal to 1");
    }
    let Some(msgs) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return bad("messages: at least one message is required");
    };
    let mut expect = "user";
    for (i, m) in msgs.iter().enumerate() {
        // System messages may stand between the turns (what Claude Code sends).
        if m["role"] == "system" {
            continue;
        }
        if m["role"] != expect {
            return bad(&format!(
                "messages.{i}: roles must alternate between \"user\" and \"assistant\", starting with \"user\""
            ));
        }
        expect = if expect == "user" {
            "assistant"
        } else {
            "user"
        };
        if let Some(blocks) = m["content"].as_array() {
            for (j, b) in blocks.iter().enumerate() {
                let ok = match b["type"].as_str() {
                    Some("text") => b["text"].is_string(),
                    Some("image") => b["source"]["type"].is_string(),
                    Some("tool_use") => {
                        m["role"] == "assistant" && b["id"].is_string() && b["input"].is_object()
                    }
                    Some("tool_result") => m["role"] == "user" && b["tool_use_id"].is_string(),
                    Some("document") => b["source"]["type"].is_string(),
                    Some("thinking" | "redacted_thinking") => m["role"] == "assistant",
                    _ => false,
                };
                if !ok {
                    return bad(&format!("messages.{i}.content.{j}: invalid content block"));
                }
            }
        } else if !m["content"].is_string() {
            return bad(&format!(
                "messages.{i}.content: Input should be a valid list"
            ));
        }
    }
    if let Some(sys) = body.get("system")
        && !(sys.is_string() || sys.is_array())
    {
        return bad("system: Input should be a valid string or list");
    }
    for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
        if !t["name"].is_string() || !t["input_schema"].is_object() {
            return bad(&format!("tools.{i}: name and input_schema are required"));
        }
    }
    Ok(())
}

/// Whether the reply is a tool call: tools offered and the last user turn has no result
/// (when scripted: a scripted tool offered and the trigger word said); (name, input).
fn tool_to_call(fake: &Fake, body: &Value) -> Option<(String, Value)> {
    let name = body["tools"][0]["name"].as_str()?;
    if body["tool_choice"]["type"] == "none" {
        return None;
    }
    // The last turn (system messages may follow it, as Claude Code sends them).
    let last = body["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] != "system")?;
    let has_result = last["content"]
        .as_array()
        .is_some_and(|b| b.iter().any(|x| x["type"] == "tool_result"));
    if has_result {
        return None;
    }
    let script = fake.script.lock().unwrap();
    if script.is_empty() {
        return Some((name.to_string(), json!({"location": "Paris"})));
    }
    if !last["content"].to_string().contains(TOOL_TRIGGER) {
        return None;
    }
    let offered: Vec<&str> = body["tools"]
        .as_array()?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    script
        .iter()
        .find(|(n, _)| offered.contains(&n.as_str()))
        .cloned()
}

/// A scripted fake's answer to a tool result: the result repeated.
fn tool_reply(fake: &Fake, body: &Value) -> Option<String> {
    if fake.script.lock().unwrap().is_empty() {
        return None;
    }
    let last = body["messages"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] != "system")?;
    let result = last["content"]
        .as_array()?
        .iter()
        .find(|b| b["type"] == "tool_result")?;
    let text = match &result["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(format!("The tool said: {text}"))
}

fn usage(body: &Value) -> Value {
    // Cache numbers appear when the request marks a cache breakpoint.
    let cached = body.to_string().contains("cache_control");
    json!({
        "input_tokens": 20,
        "cache_creation_input_tokens": if cached { 50 } else { 0 },
        "cache_read_input_tokens": if cached { 100 } else { 0 },
        "output_tokens": 5,
    })
}

/// Anthropic's token counting: the same checks as a message, `{"input_tokens": N}` back
/// (N: 40 plus the number of messages, so a test sees the upstream's own count).
async fn count_tokens(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        return error(400, "invalid JSON");
    };
    fake.seen.lock().unwrap().push(Seen {
        headers: headers.clone(),
        body: body.clone(),
    });
    if let Err((status, m)) = validate_headers(&headers) {
        return error(status, &m);
    }
    if let Behavior::Status(code) = fake.behavior.lock().unwrap().clone() {
        return error(code, "scripted failure");
    }
    if !body["model"].is_string() {
        return error(400, "model: Field required");
    }
    if body.get("max_tokens").is_some() {
        return error(400, "max_tokens: Extra inputs are not permitted");
    }
    let Some(n) = body["messages"].as_array().map(Vec::len).filter(|n| *n > 0) else {
        return error(400, "messages: at least one message is required");
    };
    axum::Json(json!({"input_tokens": 40 + n})).into_response()
}

async fn messages(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
        return error(
            400,
            "There was an issue with the format of your request: invalid JSON",
        );
    };
    fake.seen.lock().unwrap().push(Seen {
        headers: headers.clone(),
        body: body.clone(),
    });
    if let Err((status, m)) = validate(&headers, &body) {
        return error(status, &m);
    }
    let model = body["model"].clone();
    answer(&fake, &body, model)
}

/// The answer to a checked Messages body for `model` (Vertex AI serves Claude models with
/// the same answers).
pub fn answer(fake: &Fake, body: &Value, model: Value) -> Response {
    let behavior = fake.behavior.lock().unwrap().clone();
    if let Behavior::Status(code) = behavior {
        return error(code, "Overloaded");
    }
    let tool = tool_to_call(fake, body);
    let reply = tool_reply(fake, body);
    if body["stream"] == true {
        return stream(model, tool, reply, usage(body), behavior);
    }
    let content = match &tool {
        Some((name, input)) => {
            json!([{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": input}])
        }
        None => json!([{"type": "text", "text": reply.as_deref().unwrap_or("Hello from claude")}]),
    };
    axum::Json(json!({
        "id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
        "content": content,
        "stop_reason": if tool.is_some() { "tool_use" } else { "end_turn" },
        "stop_sequence": null,
        "usage": usage(body),
    }))
    .into_response()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn stream(
    model: Value,
    tool: Option<(String, Value)>,
    reply: Option<String>,
    usage: Value,
    behavior: Behavior,
) -> Response {
    let events: Vec<String> = stream_events(model, tool, reply, usage)
        .into_iter()
        .map(|(name, data)| event(&name, data))
        .collect();
    byte_stream(
        events.into_iter().map(Bytes::from).collect(),
        behavior,
        "text/event-stream; charset=utf-8",
    )
}

/// The documented event sequence for a reply, as (event name, data).
fn stream_events(
    model: Value,
    tool: Option<(String, Value)>,
    reply: Option<String>,
    usage: Value,
) -> Vec<(String, Value)> {
    let event = |name: &str, data: Value| (name.to_string(), data);
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_fake123", "type": "message", "role": "assistant",
                "content": [], "model": model, "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let text: Vec<&str> = if tool.is_some() {
        vec!["Let me", " check."]
    } else if let Some(r) = &reply {
        vec![r.as_str()]
    } else {
        vec!["Hello", " from", " claude"]
    };
    for t in text {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    if let Some((name, input)) = &tool {
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": {}}}),
        ));
        let default = json!({"location": "Paris"});
        let parts: Vec<String> = if *input == default {
            vec!["".into(), "{\"location\":".into(), " \"Paris\"}".into()]
        } else {
            let s = input.to_string();
            let mut mid = s.len() / 2;
            while !s.is_char_boundary(mid) {
                mid -= 1;
            }
            vec!["".into(), s[..mid].to_string(), s[mid..].to_string()]
        };
        for part in parts {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        events.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": if tool.is_some() { "tool_use" } else { "end_turn" }, "stop_sequence": null},
            "usage": {"output_tokens": usage["output_tokens"]}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    events
}

fn byte_stream(events: Vec<Bytes>, behavior: Behavior, content_type: &str) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    tokio::spawn(async move {
        for (i, e) in events.into_iter().enumerate() {
            if let Behavior::CutAfter(n) = behavior
                && i >= n
            {
                let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                return;
            }
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    });
    let mut rx = rx;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

// ---- AWS Bedrock (Claude on InvokeModel / InvokeModelWithResponseStream) ----

/// The channel key of the fake Bedrock: access key, secret, region.
pub const BEDROCK_KEY: &str = "AKIDFAKEBEDROCK0001|fake/secret+key0123456789|us-east-1";

fn bedrock_error(status: u16, kind: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(
            "x-amzn-errortype",
            format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"message": message}).to_string()))
        .unwrap()
}

fn amz_time(s: &str) -> Option<std::time::SystemTime> {
    let dt = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", s).ok()?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(std::time::SystemTime::from(ts))
}

/// Recompute the SigV4 signature with AWS's signer, as Bedrock does, and compare.
fn verify_sigv4(headers: &HeaderMap, path: &str, body: &[u8]) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("Missing Authentication Token")?;
    let parts: Vec<&str> = BEDROCK_KEY.split('|').collect();
    let scope_prefix = format!("AWS4-HMAC-SHA256 Credential={}/", parts[0]);
    if !auth.starts_with(&scope_prefix) || !auth.contains("/us-east-1/bedrock/aws4_request") {
        return Err("The security token included in the request is invalid.".into());
    }
    let signed: Vec<&str> = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .split(';')
        .collect();
    let date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(amz_time)
        .ok_or("x-amz-date missing or malformed")?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or("Host missing")?;
    let extra: Vec<(String, String)> = signed
        .iter()
        .filter(|h| !["host", "x-amz-date", "x-amz-security-token"].contains(h))
        .map(|h| {
            (
                h.to_string(),
                headers
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let identity =
        aws_credential_types::Credentials::new(parts[0], parts[1], None, None, "fake").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(parts[2])
        .name("bedrock")
        .time(date)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let url = format!("http://{host}{path}");
    let req = SignableRequest::new(
        "POST",
        &url,
        extra.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(req, &params).map_err(|e| e.to_string())?.into_parts();
    let expected = instructions
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    if expected != auth {
        return Err("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into());
    }
    Ok(())
}

async fn bedrock_invoke(
    State(fake): State<Arc<Fake>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Seen {
        headers: headers.clone(),
        body: body.clone(),
    });
    if let Err(m) = verify_sigv4(&headers, uri.path(), &raw) {
        return bedrock_error(403, "UnrecognizedClientException", &m);
    }
    // The inference parameters Bedrock documents for Anthropic's Messages API.
    const KEYS: &[&str] = &[
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
    ];
    if let Some(extra) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !KEYS.contains(&k.as_str())))
    {
        return bedrock_error(
            400,
            "ValidationException",
            &format!(
                "Malformed input request: #: extraneous key [{extra}] is not permitted, please reformat your input and try again."
            ),
        );
    }
    if body["anthropic_version"] != "bedrock-2023-05-31" {
        return bedrock_error(
            400,
            "ValidationException",
            "Malformed input request: #: required key [anthropic_version] not found",
        );
    }
    if let Err((_, m)) = validate_body(&{
        let mut b = body.clone();
        b["model"] = json!("bedrock");
        b
    }) {
        return bedrock_error(400, "ValidationException", &m);
    }
    let behavior = fake.behavior.lock().unwrap().clone();
    if let Behavior::Status(code) = behavior {
        let kind = if code == 429 {
            "ThrottlingException"
        } else {
            "ServiceUnavailableException"
        };
        return bedrock_error(
            code,
            kind,
            "Too many requests, please wait before trying again.",
        );
    }
    let model_id = uri
        .path()
        .split('/')
        .nth(2)
        .map(|m| m.replace("%3A", ":"))
        .unwrap_or_default();
    let model = json!(model_id);
    let tool = tool_to_call(&fake, &body);
    let reply = tool_reply(&fake, &body);
    if uri.path().ends_with("/invoke-with-response-stream") {
        let mut frames: Vec<Bytes> = Vec::new();
        for (i, (_, data)) in stream_events(model, tool, reply, usage(&body))
            .into_iter()
            .enumerate()
        {
            if let Behavior::ExceptionAfter(n) = behavior
                && i == n
            {
                frames.push(Bytes::from(gateway_core::testing::encode_frame(
                    &[
                        (":message-type", "exception"),
                        (":exception-type", "throttlingException"),
                        (":content-type", "application/json"),
                    ],
                    json!({"message": "Too many tokens, please wait before trying again."})
                        .to_string()
                        .as_bytes(),
                )));
                break;
            }
            use base64::Engine;
            let payload = json!({"bytes": base64::engine::general_purpose::STANDARD.encode(data.to_string()), "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"});
            frames.push(Bytes::from(gateway_core::testing::encode_frame(
                &[
                    (":event-type", "chunk"),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                payload.to_string().as_bytes(),
            )));
        }
        let behavior = match behavior {
            Behavior::ExceptionAfter(_) => Behavior::Ok,
            b => b,
        };
        return byte_stream(frames, behavior, "application/vnd.amazon.eventstream");
    }
    let content = match &tool {
        Some((name, input)) => {
            json!([{"type": "tool_use", "id": "toolu_bdrk1", "name": name, "input": input}])
        }
        None => json!([{"type": "text", "text": reply.as_deref().unwrap_or("Hello from bedrock")}]),
    };
    axum::Json(json!({
        "id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": model_id,
        "content": content, "stop_reason": if tool.is_some() { "tool_use" } else { "end_turn" },
        "stop_sequence": null, "usage": usage(&body),
    }))
    .into_response()
}
