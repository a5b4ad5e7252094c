//! A fake Gemini API on loopback: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`, checking `x-goog-api-key` and the body the way the
//! real API does (contents with user/model roles, known part kinds, function responses
//! naming their function, no JSON-Schema keywords Gemini rejects), answering in the
//! documented shapes with `usageMetadata`, and Google's error body
//! (<https://ai.google.dev/api/generate-content>).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const KEY: &str = "AIzaSyFake-gemini-key-0123456789";

#[derive(Debug, Clone)]
pub enum Behavior {
    Ok,
    Status(u16),
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Debug)]
pub struct Fake {
    pub behavior: Mutex<Behavior>,
    pub seen: Mutex<Vec<Seen>>,
    /// Scripted tool calls (function name, args) for real clients: when set, the fake
    /// calls the first of these functions the request declares only when the last user
    /// turn contains [`TOOL_TRIGGER`].
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
    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }
}

pub async fn start(fake: Arc<Fake>) -> SocketAddr {
    let app = Router::new()
        .route("/v1beta/models/{action}", post(generate))
        .route("/v1beta/models", axum::routing::get(models))
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

/// `GET /v1beta/models` as Gemini answers it: every model, with the methods it supports.
async fn models(headers: HeaderMap) -> Response {
    if headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(400, "API key not valid. Please pass a valid API key.");
    }
    axum::Json(json!({"models": [
        {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"]},
        {"name": "models/gemini-x", "displayName": "Gemini X", "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/text-embedding-004", "displayName": "Text Embedding 004", "supportedGenerationMethods": ["embedContent"]},
    ]}))
    .into_response()
}

pub fn error(code: u16, message: &str) -> Response {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"error": {"code": code, "message": message, "status": status}})),
    )
        .into_response()
}

fn validate(body: &Value) -> Result<(), String> {
    let contents = body["contents"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    for (i, c) in contents.iter().enumerate() {
        if c["role"] != "user" && c["role"] != "model" {
            return Err(format!(
                "Please use a valid role: user, model. (contents[{i}])"
            ));
        }
        let parts = c["parts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            ))?;
        for p in parts {
            let known = [
                "text",
                "inlineData",
                "fileData",
                "functionCall",
                "functionResponse",
            ];
            if !p
                .as_object()
                .is_some_and(|o| o.keys().any(|k| known.contains(&k.as_str())))
            {
                return Err(format!(
                    "Invalid JSON payload received. Unknown part in contents[{i}]"
                ));
            }
            if let Some(fr) = p.get("functionResponse")
                && (!fr["name"].is_string() || !fr["response"].is_object())
            {
                return Err("functionResponse needs name and an object response".into());
            }
        }
    }
    for (i, f) in body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .enumerate()
    {
        if let Some(bad) = unknown_schema_key(&f["parameters"]) {
            return Err(format!(
                "Invalid JSON payload received. Unknown name \"{bad}\" at 'tools[0].function_declarations[{i}].parameters': Cannot find field."
            ));
        }
    }
    Ok(())
}

/// The fields of Gemini's `Schema` object (ai.google.dev/api/caching#Schema).
const SCHEMA_FIELDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// The first keyword of a schema that Gemini's `Schema` does not have.
fn unknown_schema_key(v: &Value) -> Option<String> {
    let m = v.as_object()?;
    for (k, val) in m {
        if !SCHEMA_FIELDS.contains(&k.as_str()) {
            return Some(k.clone());
        }
        let nested = match k.as_str() {
            "properties" => val
                .as_object()
                .into_iter()
                .flat_map(|p| p.values())
                .find_map(unknown_schema_key),
            "items" => unknown_schema_key(val),
            "anyOf" => val
                .as_array()
                .into_iter()
                .flatten()
                .find_map(unknown_schema_key),
            _ => None,
        };
        if nested.is_some() {
            return nested;
        }
    }
    None
}

fn wants_call(fake: &Fake, body: &Value) -> Option<(String, Value)> {
    let name = body["tools"][0]["functionDeclarations"][0]["name"].as_str()?;
    if body["toolConfig"]["functionCallingConfig"]["mode"] == "NONE" {
        return None;
    }
    let last = body["contents"].as_array()?.last()?;
    let answered = last["parts"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x.get("functionResponse").is_some()));
    if answered {
        return None;
    }
    let script = fake.script.lock().unwrap();
    if script.is_empty() {
        return Some((name.to_string(), json!({"location": "Paris"})));
    }
    if !last["parts"].to_string().contains(TOOL_TRIGGER) {
        return None;
    }
    let offered: Vec<&str> = body["tools"]
        .as_array()?
        .iter()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .filter_map(|f| f["name"].as_str())
        .collect();
    script
        .iter()
        .find(|(n, _)| offered.contains(&n.as_str()))
        .cloned()
}

fn usage() -> Value {
    json!({"promptTokenCount": 30, "candidatesTokenCount": 6, "totalTokenCount": 40, "thoughtsTokenCount": 4, "cachedContentTokenCount": 10})
}

async fn generate(
    State(fake): State<Arc<Fake>>,
    Path(action): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Seen {
        path: format!("/v1beta/models/{action}"),
        query: query.clone().unwrap_or_default(),
        headers: headers.clone(),
        body: body.clone(),
    });
    if headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(400, "API key not valid. Please pass a valid API key.");
    }
    answer(&fake, &action, query, &body)
}

/// The answer to an authenticated `{model}:{method}` call (Vertex AI serves Gemini models
/// with the same bodies and answers).
pub fn answer(fake: &Fake, action: &str, query: Option<String>, body: &Value) -> Response {
    if let Behavior::Status(code) = fake.behavior.lock().unwrap().clone() {
        return error(code, "Resource has been exhausted (e.g. check quota).");
    }
    if let Err(m) = validate(body) {
        return error(400, &m);
    }
    let Some((model, method)) = action.split_once(':') else {
        return error(404, "Method not found.");
    };
    let call = wants_call(fake, body);
    match method {
        "generateContent" => {
            let parts = match &call {
                Some((name, args)) => {
                    json!([{"functionCall": {"name": name, "args": args}}])
                }
                None => {
                    let reply = tool_reply(body).unwrap_or("Hello from gemini".into());
                    json!([{"text": "thinking…", "thought": true}, {"text": reply}])
                }
            };
            axum::Json(json!({
                "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage(), "modelVersion": model, "responseId": "fakeResp1",
            }))
            .into_response()
        }
        "streamGenerateContent" if query.unwrap_or_default().contains("alt=sse") => {
            let mut events = Vec::new();
            match &call {
                Some((name, args)) => events.push(json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": name, "args": args}}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": usage(), "modelVersion": model, "responseId": "fakeResp1"})),
                None => {
                    let reply = tool_reply(body);
                    let pieces: Vec<&str> = match &reply {
                        // "The tool said: …" in three pieces.
                        Some(r) => vec![&r[..4], &r[4..8], &r[8..]],
                        None => vec!["Hello", " from", " gemini"],
                    };
                    for (i, t) in pieces.iter().enumerate() {
                        let mut e = json!({"candidates": [{"content": {"parts": [{"text": t}], "role": "model"}, "index": 0}],
                            "usageMetadata": {"promptTokenCount": 30, "totalTokenCount": 30 + i}, "modelVersion": model, "responseId": "fakeResp1"});
                        if i == 2 {
                            e["candidates"][0]["finishReason"] = json!("STOP");
                            e["usageMetadata"] = usage();
                        }
                        events.push(e);
                    }
                }
            }
            let text: String = events
                .iter()
                .map(|e| format!("data: {e}\r\n\r\n"))
                .collect();
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from(text))
                .unwrap()
        }
        _ => error(404, "Method not found."),
    }
}

fn tool_reply(body: &Value) -> Option<String> {
    let last = body["contents"].as_array()?.last()?;
    let fr = last["parts"]
        .as_array()?
        .iter()
        .find_map(|p| p.get("functionResponse"))?;
    Some(format!("The tool said: {}", fr["response"]))
}
