//! Error bodies in each client protocol's shape, read from whatever an upstream sent
//! (a provider's JSON error, a proxy's HTML page, plain text).

use serde_json::{Value, json};

/// The message of an upstream's error body `body` (parsed as `v`): Anthropic's and OpenAI's
/// `error.message`, Bedrock's top-level `message`, llama-server's and Ollama's plain
/// `error` string; else the body's text (cut to 500 characters), or the status.
fn error_message(status: u16, body: &[u8], v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .or_else(|| v["message"].as_str())
        .or_else(|| v["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("upstream error (HTTP {status})")
            } else {
                text.chars().take(500).collect()
            }
        })
}

/// Anthropic error type → the contract's OpenAI `code`.
fn openai_code(status: u16, kind: &str) -> &'static str {
    match (status, kind) {
        (_, "authentication_error") => "invalid_token",
        (_, "permission_error") => "permission_denied",
        (_, "not_found_error") => "model_not_found",
        (_, "rate_limit_error") => "rate_limit_exceeded",
        (_, "overloaded_error") => "service_unavailable",
        (400..=499, _) => "invalid_request",
        _ => "server_error",
    }
}

/// An upstream's error body (any shape) in OpenAI's error shape.
pub fn openai_error(status: u16, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = v["error"]["type"].as_str().unwrap_or("");
    let message = error_message(status, body, &v);
    let code = openai_code(status, kind);
    let ty = match code {
        "invalid_token" | "invalid_request" => "invalid_request_error",
        "permission_denied" => "permission_error",
        "model_not_found" => "not_found_error",
        "rate_limit_exceeded" => "rate_limit_error",
        _ => "server_error",
    };
    json!({"error": {"message": message, "type": ty, "code": code}})
}

/// Anthropic's error type for an HTTP status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"}}`.
pub fn anthropic_error(status: u16, message: &str) -> Value {
    json!({"type": "error", "error": {"type": anthropic_error_type(status), "message": message}})
}

/// An upstream's error body (any shape) re-expressed in Anthropic's.
pub fn to_anthropic_error(status: u16, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = error_message(status, body, &v);
    anthropic_error(status, &message)
}
