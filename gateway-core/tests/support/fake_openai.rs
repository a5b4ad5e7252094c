//! A fake OpenAI-compatible upstream on loopback, speaking the documented wire format
//! (chat completions, completions, embeddings, SSE with `[DONE]`, usage chunk when
//! `stream_options.include_usage`, OpenAI error bodies), with injectable faults.
//! Used by integration tests, the Python SDK tests and the benchmark.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake does with the next requests.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answer normally.
    Ok,
    /// Answer with this status and an OpenAI error body.
    Status(u16),
    /// Accept the connection, never answer headers for this long.
    Hang(Duration),
    /// Stream: wait this long before the first chunk.
    SlowFirstByte(Duration),
    /// Stream: send this many content chunks, then cut the connection.
    CutAfter(usize),
    /// Answer normally after this long (a busy server).
    Delay(Duration),
    /// Answer `307 Temporary Redirect` to this URL (a moved or hostile endpoint).
    Redirect(String),
}

/// A request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub raw: Bytes,
}

/// Shared fake state.
#[derive(Debug)]
pub struct Fake {
    pub behavior: Mutex<Behavior>,
    pub seen: Mutex<Vec<Seen>>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Content pieces of a streamed answer (each one chunk).
    pub pieces: Vec<&'static str>,
    /// Keep every request for assertions (off for benchmarks).
    pub record: std::sync::atomic::AtomicBool,
    /// Pause between streamed chunks.
    pub chunk_delay: Duration,
    /// Scripted tool calls (tool name, arguments JSON) for real clients: when set, the
    /// fake calls the first of these tools the request offers, only when the last user
    /// message contains [`TOOL_TRIGGER`]; otherwise it answers with text.
    pub script: Mutex<Vec<(String, String)>>,
}

/// The word in a user message that makes a scripted fake call its tool.
pub const TOOL_TRIGGER: &str = "burncloud-tool-test";

/// `--call NAME=JSON` arguments of the fake processes.
pub fn script_from_args(args: &[String]) -> Vec<(String, String)> {
    args.windows(2)
        .filter(|w| w[0] == "--call")
        .filter_map(|w| w[1].split_once('='))
        .map(|(n, a)| (n.to_string(), a.to_string()))
        .collect()
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake {
            behavior: Mutex::new(Behavior::Ok),
            seen: Mutex::new(Vec::new()),
            prompt_tokens: 12,
            completion_tokens: 3,
            pieces: vec!["Hello", " from", " fake"],
            record: std::sync::atomic::AtomicBool::new(true),
            chunk_delay: Duration::from_millis(2),
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

/// Start a fake on 127.0.0.1 with a free port.
pub async fn start(fake: Arc<Fake>) -> SocketAddr {
    start_on(fake, 0).await
}

/// Start a fake on 127.0.0.1:`port`.
pub async fn start_on(fake: Arc<Fake>, port: u16) -> SocketAddr {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/responses", post(responses))
        .route("/v1/models", axum::routing::get(models))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure_chat),
        )
        // Providers take large bodies (long contexts, images); axum's 2 MB default is not theirs.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `GET /v1/models` as OpenAI answers it (a bearer key required).
async fn models(headers: HeaderMap) -> Response {
    if !headers.contains_key(header::AUTHORIZATION) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error", "param": null, "code": null}})),
        )
            .into_response();
    }
    axum::Json(json!({"object": "list", "data": [
        {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
        {"id": "gpt-x", "object": "model", "created": 1715367049, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
    ]}))
    .into_response()
}

/// The Azure OpenAI key the fake accepts.
pub const AZURE_KEY: &str = "azure-key-0123456789abcdef";

/// Azure OpenAI's chat route: `api-key` header and `api-version` query required, then the
/// same OpenAI answers (Azure's error bodies are OpenAI-shaped with string codes).
async fn azure_chat(
    State(fake): State<Arc<Fake>>,
    axum::extract::Path(deployment): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    if headers.get("api-key").and_then(|v| v.to_str().ok()) != Some(AZURE_KEY)
        || headers.contains_key(header::AUTHORIZATION)
    {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}))).into_response();
    }
    if !query.unwrap_or_default().contains("api-version=") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "404", "message": "Resource not found"}})),
        )
            .into_response();
    }
    let mut r = chat(State(fake.clone()), headers, raw).await;
    if let Some(last) = fake.seen.lock().unwrap().last_mut() {
        last.path = format!("/openai/deployments/{deployment}/chat/completions");
    }
    r.headers_mut()
        .insert("apim-request-id", "fake-apim".parse().unwrap());
    r
}

fn record(fake: &Fake, path: &str, headers: &HeaderMap, raw: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    if !fake.record.load(std::sync::atomic::Ordering::Relaxed) {
        return body;
    }
    fake.seen.lock().unwrap().push(Seen {
        path: path.to_string(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: body.clone(),
        raw: raw.clone(),
    });
    body
}

/// The OpenAI error body for a status.
pub fn error_body(status: u16) -> Value {
    match status {
        401 => {
            json!({"error": {"message": "Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
        }
        429 => {
            json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        }
        400 => {
            json!({"error": {"message": "Invalid 'messages': empty array.", "type": "invalid_request_error", "param": "messages", "code": "empty_array"}})
        }
        _ => {
            json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}})
        }
    }
}

async fn fault(fake: &Fake, body: &Value) -> Option<Response> {
    // A model named `fail-<status>` always gets that error (for process-level tests).
    if let Some(code) = body["model"]
        .as_str()
        .and_then(|m| m.strip_prefix("fail-"))
        .and_then(|c| c.parse::<u16>().ok())
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some((status, axum::Json(error_body(code))).into_response());
    }
    let b = fake.behavior.lock().unwrap().clone();
    match b {
        Behavior::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            Some((status, axum::Json(error_body(code))).into_response())
        }
        Behavior::Hang(d) => {
            tokio::time::sleep(d).await;
            Some(StatusCode::GATEWAY_TIMEOUT.into_response())
        }
        Behavior::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Behavior::Redirect(to) => Some(
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, to)],
                "moved",
            )
                .into_response(),
        ),
        _ => None,
    }
}

fn usage(fake: &Fake) -> Value {
    json!({"prompt_tokens": fake.prompt_tokens, "completion_tokens": fake.completion_tokens, "total_tokens": fake.prompt_tokens + fake.completion_tokens})
}

async fn chat(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let body = record(&fake, "/v1/chat/completions", &headers, &raw);
    if let Some(r) = fault(&fake, &body).await {
        return r;
    }
    if let Some(r) = invalid_chat(&body) {
        return r;
    }
    let model = body["model"].as_str().unwrap_or("unknown").to_string();
    let tool = wants_tool(&fake, &body);
    if body["stream"].as_bool() == Some(true) {
        let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        return stream_chat(fake.clone(), model, include_usage, tool, tool_reply(&body));
    }
    if let Some((name, args)) = tool {
        return axum::Json(json!({
            "id": "chatcmpl-fake123", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": "call_fake1", "type": "function", "function": {"name": name, "arguments": args}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": usage(&fake),
        }))
        .into_response();
    }
    let reply = tool_reply(&body).unwrap_or_else(|| fake.pieces.concat());
    axum::Json(json!({
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(&fake),
    }))
    .into_response()
}

fn chunk(model: &str, delta: Value, finish: Value, include_usage: bool) -> String {
    let mut c = json!({
        "id": "chatcmpl-fake123", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    if include_usage {
        c["usage"] = Value::Null;
    }
    format!("data: {c}\n\n")
}

/// The arguments of the fake's tool calls.
pub const TOOL_ARGS: &str = r#"{"location": "Paris"}"#;

/// OpenAI's own checks on a chat body, as a 400 in its error shape.
fn invalid_chat(body: &Value) -> Option<Response> {
    let bad = |msg: &str, param: &str| {
        Some(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {"message": msg, "type": "invalid_request_error", "param": param, "code": null}})),
            )
                .into_response(),
        )
    };
    let Some(msgs) = body["messages"].as_array() else {
        return bad("Missing required parameter: 'messages'.", "messages");
    };
    if msgs.is_empty() {
        return bad("Invalid 'messages': empty array.", "messages");
    }
    for (i, m) in msgs.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
            return bad(
                &format!("Invalid value for 'messages[{i}].role'."),
                "messages",
            );
        }
        if role == "tool" && !m["tool_call_id"].is_string() {
            return bad(
                &format!("Missing 'messages[{i}].tool_call_id'."),
                "messages",
            );
        }
    }
    None
}

/// With tools offered and no tool result yet, the fake calls the first tool (or, when
/// scripted, the scripted tool on the trigger word); returns (name, arguments).
fn wants_tool(fake: &Fake, body: &Value) -> Option<(String, String)> {
    let name = body["tools"][0]["function"]["name"].as_str()?;
    if body["tool_choice"] == "none" {
        return None;
    }
    let msgs = body["messages"].as_array()?;
    if last_tool_result(msgs).is_some() {
        return None;
    }
    let script = fake.script.lock().unwrap();
    if script.is_empty() {
        return Some((name.to_string(), TOOL_ARGS.to_string()));
    }
    let last_user = msgs.iter().rev().find(|m| m["role"] == "user")?;
    if !last_user["content"].to_string().contains(TOOL_TRIGGER) {
        return None;
    }
    let offered: Vec<&str> = body["tools"]
        .as_array()?
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    script
        .iter()
        .find(|(n, _)| offered.contains(&n.as_str()))
        .cloned()
}

/// A tool result after the last assistant turn (clients may add user text after it).
fn last_tool_result(msgs: &[Value]) -> Option<&Value> {
    msgs.iter()
        .rev()
        .take_while(|m| m["role"] != "assistant")
        .find(|m| m["role"] == "tool")
}

/// After a tool result, the fake repeats it.
fn tool_reply(body: &Value) -> Option<String> {
    let result = last_tool_result(body["messages"].as_array()?)?;
    Some(format!(
        "The tool said: {}",
        result["content"].as_str().unwrap_or_default()
    ))
}

fn stream_chat(
    fake: Arc<Fake>,
    model: String,
    include_usage: bool,
    tool: Option<(String, String)>,
    reply: Option<String>,
) -> Response {
    let behavior = fake.behavior.lock().unwrap().clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        if let Behavior::SlowFirstByte(d) = behavior {
            tokio::time::sleep(d).await;
        }
        let mut events = vec![chunk(
            &model,
            json!({"role": "assistant", "content": ""}),
            Value::Null,
            include_usage,
        )];
        let finish = if let Some((name, args)) = &tool {
            // As OpenAI streams a call: id and name first, then argument fragments.
            events.push(chunk(
                &model,
                json!({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
                include_usage,
            ));
            let mut mid = args.len().min(12);
            while !args.is_char_boundary(mid) {
                mid -= 1;
            }
            let (a, b) = args.split_at(mid);
            for part in [a, b] {
                events.push(chunk(
                    &model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                    include_usage,
                ));
            }
            "tool_calls"
        } else {
            let pieces: Vec<&str> = match &reply {
                Some(r) => vec![r.as_str()],
                None => fake.pieces.clone(),
            };
            for p in pieces {
                events.push(chunk(
                    &model,
                    json!({"content": p}),
                    Value::Null,
                    include_usage,
                ));
            }
            "stop"
        };
        events.push(chunk(&model, json!({}), json!(finish), include_usage));
        if include_usage {
            let u = json!({"id": "chatcmpl-fake123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "system_fingerprint": "fp_fake", "choices": [], "usage": usage(&fake)});
            events.push(format!("data: {u}\n\n"));
        }
        events.push("data: [DONE]\n\n".to_string());
        for (i, e) in events.into_iter().enumerate() {
            if let Behavior::CutAfter(n) = behavior
                && i > n
            {
                let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                return;
            }
            if tx.send(Ok(Bytes::from(e))).await.is_err() {
                return;
            }
            if !fake.chunk_delay.is_zero() {
                tokio::time::sleep(fake.chunk_delay).await;
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn completions(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let body = record(&fake, "/v1/completions", &headers, &raw);
    if let Some(r) = fault(&fake, &body).await {
        return r;
    }
    axum::Json(json!({
        "id": "cmpl-fake", "object": "text_completion", "created": 1_700_000_000,
        "model": body["model"], "system_fingerprint": "fp_fake",
        "choices": [{"text": fake.pieces.concat(), "index": 0, "logprobs": null, "finish_reason": "length"}],
        "usage": usage(&fake),
    }))
    .into_response()
}

async fn embeddings(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let body = record(&fake, "/v1/embeddings", &headers, &raw);
    if let Some(r) = fault(&fake, &body).await {
        return r;
    }
    let inputs = match &body["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..inputs)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.0023064255, -0.009327292, 0.015797347]}))
        .collect();
    axum::Json(json!({
        "object": "list", "data": data, "model": body["model"],
        "usage": {"prompt_tokens": fake.prompt_tokens, "total_tokens": fake.prompt_tokens},
    }))
    .into_response()
}

/// OpenAI's own Responses API (for passthrough): a text answer, as JSON or the documented
/// event sequence, with `usage` in the Response object.
async fn responses(State(fake): State<Arc<Fake>>, headers: HeaderMap, raw: Bytes) -> Response {
    let body = record(&fake, "/v1/responses", &headers, &raw);
    if let Some(r) = fault(&fake, &body).await {
        return r;
    }
    if !body["model"].is_string() || body.get("input").is_none() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "Missing required parameter: 'input'.", "type": "invalid_request_error", "param": "input", "code": "missing_required_parameter"}})),
        )
            .into_response();
    }
    let text = "Hello from responses";
    let usage = json!({"input_tokens": 21, "input_tokens_details": {"cached_tokens": 5},
        "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 25});
    let item = json!({"type": "message", "id": "msg_fake1", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]});
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": "resp_fake1", "object": "response", "created_at": 1_700_000_000, "status": status,
            "error": null, "incomplete_details": null, "model": body["model"], "output": output,
            "parallel_tool_calls": true, "previous_response_id": body.get("previous_response_id").cloned().unwrap_or(Value::Null),
            "store": true, "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}},
            "truncation": "disabled", "metadata": {}, "usage": usage})
    };
    if body["stream"] != true {
        return axum::Json(response("completed", json!([item]), usage)).into_response();
    }
    let mut events = vec![
        (
            "response.created",
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        (
            "response.output_item.added",
            json!({"output_index": 0, "item": {"type": "message", "id": "msg_fake1", "status": "in_progress", "role": "assistant", "content": []}}),
        ),
    ];
    for d in ["Hello from", " responses"] {
        events.push((
            "response.output_text.delta",
            json!({"item_id": "msg_fake1", "output_index": 0, "content_index": 0, "delta": d}),
        ));
    }
    events.push((
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    ));
    events.push((
        "response.completed",
        json!({"response": response("completed", json!([item]), usage)}),
    ));
    let text: String = events
        .into_iter()
        .enumerate()
        .map(|(i, (name, mut data))| {
            data["type"] = json!(name);
            data["sequence_number"] = json!(i);
            format!("event: {name}\ndata: {data}\n\n")
        })
        .collect();
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .body(Body::from(text))
        .unwrap()
}
