//! Google Gemini upstreams (channel type 24): the canonical OpenAI chat request becomes a
//! `generateContent` / `streamGenerateContent?alt=sse` request, and Gemini's answers become
//! OpenAI chat completions and chunks. Formats:
//! <https://ai.google.dev/api/generate-content>, <https://ai.google.dev/gemini-api/docs/function-calling>,
//! errors <https://ai.google.dev/gemini-api/docs/troubleshooting>.
//!
//! Gemini function calls carry no ids; the converter names them `call_<n>` and, for tool
//! results, finds the function name from the assistant turn that made the call.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use axum::http::{HeaderMap, HeaderValue};

use super::{Answer, Call, CallError, Decode, Request, Target, Upstream};
use crate::vocab::Usage;
use crate::wire::openai::openai_usage;
use crate::wire::{ConvertResult, Stage, sse};
/// Google Gemini's API.
pub struct Gemini;

impl Upstream for Gemini {
    fn name(&self) -> &'static str {
        "Google Gemini"
    }

    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError> {
        let body = request_body(r)?;
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(t.key) {
            headers.insert("x-goog-api-key", v);
        }
        let url = url(t.base_url, r.model, r.info.stream);
        Ok(Call::new(url, headers, Call::json(&body), "gemini").streaming(r.info.stream))
    }

    fn lists_models(&self) -> bool {
        true
    }

    fn models_request(&self, t: &Target<'_>) -> Option<(String, HeaderMap)> {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(t.key) {
            headers.insert("x-goog-api-key", v);
        }
        let url = format!("{}/v1beta/models?pageSize=1000", t.base_url);
        Some((url, headers))
    }

    /// `{"models": [{"name": "models/…", "supportedGenerationMethods": […]}, …]}`: the
    /// models that generate content (this gateway sends Gemini channels conversations only).
    fn models_in(&self, answer: &Value) -> Vec<String> {
        let generates = |m: &Value| {
            m["supportedGenerationMethods"]
                .as_array()
                .is_some_and(|ms| ms.iter().any(|x| x == "generateContent"))
        };
        answer["models"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| generates(m))
            .filter_map(|m| m["name"].as_str())
            .map(|n| n.strip_prefix("models/").unwrap_or(n).to_string())
            .collect()
    }

    fn answer(&self, a: &Answer<'_>) -> Decode {
        let from = FromGemini::new(a.is_sse, a.status, a.model, a.usage);
        Decode::ToOpenAi(vec![Box::new(from)])
    }
}

/// A conversation's `generateContent` body (Gemini has no other endpoint here).
pub fn request_body(r: &Request<'_>) -> Result<Value, CallError> {
    if !r.ep.is_chat() {
        return Err(CallError::Skip("no_adaptor"));
    }
    let chat: Value = serde_json::from_slice(r.canonical).map_err(|e| e.to_string())?;
    Ok(chat_to_gemini(&chat)?)
}

/// The request URL for `model`, streaming or not.
pub fn url(base_url: &str, model: &str, stream: bool) -> String {
    let base = base_url.trim_end_matches('/');
    let base = base.strip_suffix("/v1beta").unwrap_or(base);
    if stream {
        format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/v1beta/models/{model}:generateContent")
    }
}

/// The keywords of Gemini's OpenAPI-subset `Schema` (ai.google.dev/api/caching#Schema);
/// anything else in a JSON Schema (`$schema`, `additionalProperties`, `exclusiveMinimum`,
/// `$defs`, ...) is refused by the API with "Unknown name".
pub const SCHEMA_KEYS: &[&str] = &[
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

/// A JSON Schema in Gemini's subset: unknown keywords left out, `type: [T, "null"]` as
/// `type: T, nullable: true`, `const` as a one-value `enum`, exclusive bounds as bounds.
fn clean_schema(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, val) in m {
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = val {
                    let props = props
                        .iter()
                        .map(|(n, s)| (n.clone(), clean_schema(s)))
                        .collect();
                    out.insert(k.clone(), Value::Object(props));
                }
            }
            "items" => {
                out.insert(k.clone(), clean_schema(val));
            }
            "anyOf" => {
                if let Value::Array(a) = val {
                    out.insert(k.clone(), a.iter().map(clean_schema).collect());
                }
            }
            "type" if val.is_array() => {
                let types: Vec<&str> = val
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if let Some(t) = types.iter().find(|t| **t != "null") {
                    out.insert("type".into(), json!(t));
                }
                if types.contains(&"null") {
                    out.insert("nullable".into(), json!(true));
                }
            }
            "const" => {
                out.entry("enum").or_insert_with(|| json!([val]));
            }
            "exclusiveMinimum" if val.is_number() => {
                out.entry("minimum").or_insert_with(|| val.clone());
            }
            "exclusiveMaximum" if val.is_number() => {
                out.entry("maximum").or_insert_with(|| val.clone());
            }
            k if SCHEMA_KEYS.contains(&k) => {
                out.insert(k.to_string(), val.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn mime_from_url(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        _ => "image/jpeg",
    }
}

fn parts_of(content: &Value, what: &str) -> ConvertResult<Vec<Value>> {
    match content {
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (j, p) in items.iter().enumerate() {
                let pw = format!("{what}.content.{j}");
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{pw}.text: field required"))?;
                        out.push(json!({"text": t}));
                    }
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{pw}.image_url.url: field required"))?;
                        if let Some(rest) = url.strip_prefix("data:") {
                            let (mime, data) = rest.split_once(";base64,").ok_or_else(|| {
                                format!("{pw}.image_url.url: a data URL must be base64")
                            })?;
                            out.push(json!({"inlineData": {"mimeType": mime, "data": data}}));
                        } else {
                            out.push(json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}}));
                        }
                    }
                    Some(other) => {
                        return Err(format!(
                            "{pw}.type: '{other}' parts cannot be sent to a Gemini channel"
                        ));
                    }
                    None => return Err(format!("{pw}.type: field required")),
                }
            }
            Ok(out)
        }
        _ => Err(format!("{what}.content: expected a string or an array")),
    }
}

fn push_turn(out: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(arr) = last["parts"].as_array_mut()
    {
        arr.extend(parts);
        return;
    }
    out.push(json!({"role": role, "parts": parts}));
}

/// Convert a canonical OpenAI chat request into a Gemini `generateContent` body.
pub fn chat_to_gemini(req: &Value) -> ConvertResult<Value> {
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: field required (an array)")?;
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // tool_call_id → function name, for tool results.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in msgs.iter().enumerate() {
        let what = format!("messages.{i}");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{what}.role: field required"))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(parts_of(content, &what)?),
            "user" => push_turn(&mut contents, "user", parts_of(content, &what)?),
            "assistant" => {
                let mut parts = parts_of(content, &what)?;
                for (k, tc) in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let tw = format!("{what}.tool_calls.{k}");
                    let name = tc["function"]["name"]
                        .as_str()
                        .ok_or_else(|| format!("{tw}.function.name: field required"))?;
                    let args = tc["function"]["arguments"].as_str().unwrap_or("");
                    let args = if args.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str::<Value>(args)
                            .ok()
                            .filter(Value::is_object)
                            .ok_or_else(|| {
                                format!("{tw}.function.arguments: must be a JSON object")
                            })?
                    };
                    if let Some(id) = tc["id"].as_str() {
                        call_names.insert(id.to_string(), name.to_string());
                    }
                    parts.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                push_turn(&mut contents, "model", parts);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{what}.tool_call_id: field required"))?;
                let name = call_names.get(id).ok_or_else(|| {
                    format!("{what}.tool_call_id: no earlier assistant tool call has id '{id}'")
                })?;
                let text = match content {
                    Value::String(s) => s.clone(),
                    Value::Array(p) => p
                        .iter()
                        .filter_map(|x| x["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => String::new(),
                };
                let response = serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({"content": text}));
                push_turn(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            other => {
                return Err(format!(
                    "{what}.role: '{other}' cannot be sent to a Gemini channel"
                ));
            }
        }
    }
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut gen_cfg = Map::new();
    if let Some(t) = obj.get("temperature").filter(|v| v.is_number()) {
        gen_cfg.insert("temperature".into(), t.clone());
    }
    if let Some(p) = obj.get("top_p").filter(|v| v.is_number()) {
        gen_cfg.insert("topP".into(), p.clone());
    }
    if let Some(n) = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64)
    {
        gen_cfg.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(n) = obj.get("n").and_then(Value::as_u64) {
        gen_cfg.insert("candidateCount".into(), json!(n));
    }
    match obj.get("stop") {
        Some(Value::String(s)) => {
            gen_cfg.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            gen_cfg.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    match obj
        .get("response_format")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => {
            gen_cfg.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            gen_cfg.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = obj["response_format"]["json_schema"].get("schema") {
                gen_cfg.insert("responseSchema".into(), clean_schema(schema));
            }
        }
        _ => {}
    }
    if let Some(effort) = obj.get("reasoning_effort").and_then(Value::as_str) {
        let budget = match effort {
            "minimal" | "none" => 0,
            "low" => 1024,
            "medium" => 8192,
            _ => 24576,
        };
        gen_cfg.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
    }
    if !gen_cfg.is_empty() {
        out.insert("generationConfig".into(), Value::Object(gen_cfg));
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let mut decls = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            let f = t
                .get("function")
                .ok_or_else(|| format!("tools.{i}.function: field required"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("tools.{i}.function.name: field required"))?;
            let mut d = json!({"name": name});
            if let Some(desc) = f.get("description").and_then(Value::as_str) {
                d["description"] = json!(desc);
            }
            if let Some(p) = f.get("parameters").filter(|p| p.is_object()) {
                d["parameters"] = clean_schema(p);
            }
            decls.push(d);
        }
        if !decls.is_empty() {
            out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
            let cfg = match obj.get("tool_choice") {
                Some(Value::String(s)) if s == "required" => json!({"mode": "ANY"}),
                Some(Value::String(s)) if s == "none" => json!({"mode": "NONE"}),
                Some(Value::Object(o)) => {
                    let name = o
                        .get("function")
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        .ok_or("tool_choice.function.name: field required")?;
                    json!({"mode": "ANY", "allowedFunctionNames": [name]})
                }
                _ => json!({"mode": "AUTO"}),
            };
            out.insert("toolConfig".into(), json!({"functionCallingConfig": cfg}));
        }
    }
    Ok(Value::Object(out))
}

/// Gemini finish reason → OpenAI finish reason.
pub fn finish_reason(reason: &str, called: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// Usage from `usageMetadata` (thinking tokens are billed as output).
pub fn usage_of(meta: &Value) -> Option<Usage> {
    let prompt = meta.get("promptTokenCount")?.as_i64()?;
    let out = meta
        .get("candidatesTokenCount")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        + meta
            .get("thoughtsTokenCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
    Some(Usage {
        prompt,
        completion: out,
        cached: meta
            .get("cachedContentTokenCount")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        cache_write: 0,
    })
}

/// A Gemini error body in OpenAI's shape.
pub fn openai_error(status: u16, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // Gemini sometimes wraps the error in a one-element array.
    let e = if v.is_array() {
        &v[0]["error"]
    } else {
        &v["error"]
    };
    let Some(message) = e["message"].as_str() else {
        return crate::wire::errors::openai_error(status, body);
    };
    let (ty, code) = match e["status"].as_str().unwrap_or_default() {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            ("invalid_request_error", "invalid_request")
        }
        "UNAUTHENTICATED" => ("invalid_request_error", "invalid_token"),
        "PERMISSION_DENIED" => ("permission_error", "permission_denied"),
        "NOT_FOUND" => ("not_found_error", "model_not_found"),
        "RESOURCE_EXHAUSTED" => ("rate_limit_error", "rate_limit_exceeded"),
        "UNAVAILABLE" => ("server_error", "service_unavailable"),
        _ if (400..500).contains(&status) => ("invalid_request_error", "invalid_request"),
        _ => ("server_error", "server_error"),
    };
    json!({"error": {"message": message, "type": ty, "code": code}})
}

/// One candidate's parts as an OpenAI delta or message fields: (text, reasoning, calls).
fn read_parts(cand: &Value, next_call: &mut u64) -> (String, String, Vec<Value>) {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for p in cand["content"]["parts"].as_array().into_iter().flatten() {
        if let Some(t) = p["text"].as_str() {
            if p["thought"] == true {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        } else if let Some(fc) = p.get("functionCall") {
            let n = *next_call;
            *next_call += 1;
            let id = fc["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{n}"));
            calls.push(json!({"index": n, "id": id, "type": "function",
                "function": {"name": fc["name"], "arguments": fc.get("args").cloned().unwrap_or(json!({})).to_string()}}));
        }
    }
    (text, reasoning, calls)
}

/// A whole `generateContent` answer as an OpenAI chat completion.
pub fn response_to_chat(r: &Value, model: &str, created: i64) -> (Value, Option<Usage>) {
    let mut choices = Vec::new();
    for (i, cand) in r["candidates"].as_array().into_iter().flatten().enumerate() {
        let mut n = 0;
        let (text, reasoning, calls) = read_parts(cand, &mut n);
        let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
        if !calls.is_empty() {
            let calls: Vec<Value> = calls
                .into_iter()
                .map(|mut c| {
                    c.as_object_mut().map(|o| o.remove("index"));
                    c
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        if !reasoning.is_empty() {
            message["reasoning_content"] = json!(reasoning);
        }
        let called = message.get("tool_calls").is_some();
        choices.push(json!({"index": cand["index"].as_u64().unwrap_or(i as u64), "message": message,
            "finish_reason": finish_reason(cand["finishReason"].as_str().unwrap_or("STOP"), called)}));
    }
    let usage = usage_of(&r["usageMetadata"]);
    let mut out = json!({
        "id": format!("chatcmpl-{}", r["responseId"].as_str().unwrap_or("gemini")),
        "object": "chat.completion",
        "created": created,
        "model": r["modelVersion"].as_str().unwrap_or(model),
        "choices": choices,
    });
    if let Some(u) = &usage {
        out["usage"] = openai_usage(u);
    }
    (out, usage)
}

enum Kind {
    Stream {
        splitter: sse::Splitter,
        started: bool,
        calls: u64,
        finished: bool,
        id: String,
    },
    Json {
        buf: Vec<u8>,
    },
}

/// The stage that reads Gemini answers and writes OpenAI's.
pub struct FromGemini {
    kind: Kind,
    status: u16,
    model: String,
    include_usage: bool,
    created: i64,
    usage: Option<Usage>,
    content_events: i64,
}

impl FromGemini {
    pub fn new(stream: bool, status: u16, model: &str, include_usage: bool) -> Self {
        let kind = if stream && (200..300).contains(&status) {
            Kind::Stream {
                splitter: sse::Splitter::default(),
                started: false,
                calls: 0,
                finished: false,
                id: String::new(),
            }
        } else {
            Kind::Json { buf: Vec::new() }
        };
        FromGemini {
            kind,
            status,
            model: model.to_string(),
            include_usage,
            created: crate::vocab::now_secs(),
            usage: None,
            content_events: 0,
        }
    }
}

impl Stage for FromGemini {
    fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::Stream { .. } => "text/event-stream",
            Kind::Json { .. } => "application/json",
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn content_events(&self) -> i64 {
        self.content_events
    }

    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let Kind::Stream {
            splitter,
            started,
            calls,
            finished,
            id,
        } = &mut self.kind
        else {
            if let Kind::Json { buf } = &mut self.kind
                && buf.len() + input.len() <= 32 * 1024 * 1024
            {
                buf.extend_from_slice(input);
            }
            return;
        };
        let mut events = Vec::new();
        splitter.feed(input, &mut events);
        for e in events {
            let Ok(v) = serde_json::from_slice::<Value>(&e.data) else {
                continue;
            };
            if v.get("error").is_some() {
                let body = serde_json::to_vec(&v).unwrap_or_default();
                sse::write_data(out, &openai_error(500, &body));
                *finished = true;
                continue;
            }
            if let Some(u) = usage_of(&v["usageMetadata"]) {
                self.usage = Some(u);
            }
            if id.is_empty() {
                *id = format!("chatcmpl-{}", v["responseId"].as_str().unwrap_or("gemini"));
            }
            let model = v["modelVersion"]
                .as_str()
                .unwrap_or(&self.model)
                .to_string();
            let chunk = |delta: Value, finish: Option<&str>| {
                json!({"id": id, "object": "chat.completion.chunk", "created": self.created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            let Some(cand) = v["candidates"].get(0) else {
                continue;
            };
            let mut w = Vec::new();
            if !*started {
                *started = true;
                sse::write_data(
                    &mut w,
                    &chunk(json!({"role": "assistant", "content": ""}), None),
                );
            }
            let before = *calls;
            let (text, reasoning, tool_calls) = read_parts(cand, calls);
            if !text.is_empty() {
                self.content_events += 1;
                sse::write_data(&mut w, &chunk(json!({"content": text}), None));
            }
            if !reasoning.is_empty() {
                sse::write_data(
                    &mut w,
                    &chunk(json!({"reasoning_content": reasoning}), None),
                );
            }
            if !tool_calls.is_empty() {
                self.content_events += 1;
                sse::write_data(&mut w, &chunk(json!({"tool_calls": tool_calls}), None));
            }
            if let Some(reason) = cand["finishReason"].as_str() {
                let called = *calls > 0 || before > 0;
                sse::write_data(
                    &mut w,
                    &chunk(json!({}), Some(finish_reason(reason, called))),
                );
            }
            out.extend_from_slice(&w);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match &mut self.kind {
            Kind::Json { buf } => {
                let body = if (200..300).contains(&self.status) {
                    match serde_json::from_slice::<Value>(buf) {
                        Ok(r) => {
                            let (chat, usage) = response_to_chat(&r, &self.model, self.created);
                            self.usage = usage;
                            chat
                        }
                        Err(_) => crate::wire::errors::openai_error(
                            502,
                            b"the upstream's answer was not valid JSON",
                        ),
                    }
                } else {
                    openai_error(self.status, buf)
                };
                let _ = serde_json::to_writer(&mut *out, &body);
            }
            Kind::Stream { finished, id, .. } => {
                // Gemini's stream has no end marker: its end is the connection's.
                if *finished {
                    return;
                }
                *finished = true;
                if self.include_usage {
                    let u = self.usage.unwrap_or_default();
                    sse::write_data(
                        out,
                        &json!({"id": id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": openai_usage(&u)}),
                    );
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
        }
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if let Kind::Stream { finished, .. } = &mut self.kind
            && !*finished
        {
            *finished = true;
            sse::write_data(
                out,
                &json!({"error": {"message": message, "type": "server_error", "code": "server_error"}}),
            );
        }
    }
}
