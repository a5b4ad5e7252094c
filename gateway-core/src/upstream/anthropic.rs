//! Anthropic Messages upstreams (channel type 14): the canonical OpenAI chat request is
//! converted into a Messages request, and the answer (JSON or the event stream) back into
//! OpenAI's chat completion / chunk shapes. Formats:
//! <https://docs.anthropic.com/en/api/messages>,
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>,
//! <https://docs.anthropic.com/en/api/errors>.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use super::{Answer, Call, CallError, Decode, Request, Target, Upstream};
use crate::vocab::Usage;
use crate::wire::Endpoint;
use crate::wire::errors::{anthropic_error, openai_error};
use crate::wire::openai::openai_usage;
use crate::wire::passthrough::{Dialect, Observer, Tally};
use crate::wire::{ConvertResult, Stage, sse};

/// `anthropic-version` sent when the client did not choose one.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when an OpenAI client left it out.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

impl Upstream for Anthropic {
    fn name(&self) -> &'static str {
        "Anthropic"
    }

    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError> {
        let (mut body, native) = messages_body(r)?;
        body["model"] = Value::String(r.model.to_string());
        let mut headers = headers(r.client, r.ep == Endpoint::Messages);
        if let Ok(v) = HeaderValue::from_str(t.key) {
            headers.insert("x-api-key", v);
        }
        let url = format!("{}/v1/messages", t.base_url);
        Ok(Call::new(url, headers, Call::json(&body), "anthropic")
            .streaming(r.info.stream)
            .native(native))
    }

    fn answer(&self, a: &Answer<'_>) -> Decode {
        if a.native {
            Decode::Native(vec![Box::new(AnthropicObserver::new(a.is_sse))])
        } else {
            let from = FromAnthropic::new(a.is_sse, a.status, a.usage);
            Decode::ToOpenAi(vec![Box::new(from)])
        }
    }

    /// Up to 1,000 models in one page (the API's largest).
    fn lists_models(&self) -> bool {
        true
    }

    fn models_request(&self, t: &Target<'_>) -> Option<(String, HeaderMap)> {
        let mut headers = headers(&HeaderMap::new(), false);
        if let Ok(v) = HeaderValue::from_str(t.key) {
            headers.insert("x-api-key", v);
        }
        Some((format!("{}/v1/models?limit=1000", t.base_url), headers))
    }

    /// `{"data": [{"type": "model", "id": …}, …], "has_more": …}`.
    fn models_in(&self, answer: &Value) -> Vec<String> {
        super::openai::ids(&answer["data"])
    }

    fn count_tokens(&self, t: &Target<'_>, client: &HeaderMap, body: &Value) -> Option<Call> {
        let mut headers = headers(client, true);
        if let Ok(v) = HeaderValue::from_str(t.key) {
            headers.insert("x-api-key", v);
        }
        let url = format!("{}/v1/messages/count_tokens", t.base_url);
        Some(Call::new(url, headers, Call::json(body), "anthropic"))
    }
}

/// `anthropic-version` (the client's, when it spoke Messages, else ours) and the client's
/// `anthropic-beta` when it spoke Messages.
fn headers(client: &HeaderMap, from_messages_client: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let version = client
        .get("anthropic-version")
        .filter(|_| from_messages_client)
        .cloned()
        .unwrap_or(HeaderValue::from_static(DEFAULT_VERSION));
    headers.insert("anthropic-version", version);
    if from_messages_client && let Some(b) = client.get("anthropic-beta") {
        headers.insert("anthropic-beta", b.clone());
    }
    headers
}

/// The Messages body of an attempt (Anthropic's, and Claude's on Bedrock and Vertex): the
/// client's own for a Messages request (`true`: native), else converted from the chat
/// request.
pub fn messages_body(r: &Request<'_>) -> Result<(Value, bool), CallError> {
    match (r.ep, r.native) {
        (Endpoint::Messages, Some(v)) => Ok((v.clone(), true)),
        (ep, _) if ep.is_chat() => {
            let chat: Value = serde_json::from_slice(r.canonical).map_err(|e| e.to_string())?;
            Ok((chat_to_messages(&chat, r.model)?, false))
        }
        _ => Err(CallError::Skip("no_adaptor")),
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An OpenAI `image_url` part as an Anthropic image block.
fn image_block(part: &Value, what: &str) -> ConvertResult<Value> {
    let url = part
        .get("image_url")
        .and_then(|i| i.get("url").or(Some(i)))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}.image_url.url: field required"))?;
    if let Some(rest) = url.strip_prefix("data:") {
        let (media, data) = rest
            .split_once(";base64,")
            .ok_or_else(|| format!("{what}.image_url.url: a data URL must be base64"))?;
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
        );
    }
    Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
}

fn user_blocks(content: &Value, what: &str) -> ConvertResult<Vec<Value>> {
    match content {
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                let pw = format!("{what}.content.{j}");
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{pw}.text: field required"))?;
                        out.push(json!({"type": "text", "text": t}));
                    }
                    Some("image_url") => out.push(image_block(p, &pw)?),
                    Some(other) => {
                        return Err(format!(
                            "{pw}.type: '{other}' parts cannot be sent to an Anthropic channel"
                        ));
                    }
                    None => return Err(format!("{pw}.type: field required")),
                }
            }
            Ok(out)
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(format!("{what}.content: expected a string or an array")),
    }
}

/// Append a message, merging it into the previous one when the role repeats (Anthropic
/// wants user and assistant turns to alternate; tool results are user turns).
fn push_turn(out: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(arr) = last["content"].as_array_mut()
    {
        arr.extend(blocks);
        return;
    }
    out.push(json!({"role": role, "content": blocks}));
}

/// Reasoning effort → thinking budget.
fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" => Some(16384),
        _ => None,
    }
}

/// Convert a canonical OpenAI chat request into an Anthropic Messages request for
/// `upstream_model`.
pub fn chat_to_messages(req: &Value, upstream_model: &str) -> ConvertResult<Value> {
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err("n: only one choice can be generated by an Anthropic channel".into());
    }
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: field required (an array)")?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let what = format!("messages.{i}");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{what}.role: field required"))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let t = text_of(content);
                if !t.is_empty() {
                    system.push(t);
                }
            }
            "user" => push_turn(&mut turns, "user", user_blocks(content, &what)?),
            "assistant" => {
                let mut blocks = Vec::new();
                let t = text_of(content);
                if !t.is_empty() {
                    blocks.push(json!({"type": "text", "text": t}));
                }
                for (k, tc) in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let tw = format!("{what}.tool_calls.{k}");
                    let id = tc
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{tw}.id: field required"))?;
                    let f = tc
                        .get("function")
                        .ok_or_else(|| format!("{tw}.function: field required"))?;
                    let name = f
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{tw}.function.name: field required"))?;
                    let args = f.get("arguments").and_then(Value::as_str).unwrap_or("");
                    let input = if args.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str::<Value>(args)
                            .ok()
                            .filter(Value::is_object)
                            .ok_or_else(|| {
                                format!("{tw}.function.arguments: must be a JSON object")
                            })?
                    };
                    blocks
                        .push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{what}.tool_call_id: field required"))?;
                push_turn(
                    &mut turns,
                    "user",
                    vec![
                        json!({"type": "tool_result", "tool_use_id": id, "content": text_of(content)}),
                    ],
                );
            }
            other => {
                return Err(format!(
                    "{what}.role: '{other}' cannot be sent to an Anthropic channel"
                ));
            }
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    let mut max_tokens = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(rf) = obj.get("response_format") {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                system.push("Respond with a single valid JSON object and nothing else.".into())
            }
            Some("json_schema") => {
                let schema = rf
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .cloned()
                    .unwrap_or(Value::Null);
                system.push(format!(
                    "Respond with a single valid JSON object matching this JSON schema and nothing else: {schema}"
                ));
            }
            _ => {}
        }
    }
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(turns));
    let thinking = obj
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(thinking_budget);
    if let Some(budget) = thinking {
        // The budget counts against max_tokens; keep the visible answer's allowance.
        max_tokens += budget;
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    } else {
        if let Some(t) = obj.get("temperature").and_then(Value::as_f64) {
            // OpenAI allows 0..2, Anthropic 0..1.
            out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(p) = obj.get("top_p").filter(|v| v.is_number()) {
            out.insert("top_p".into(), p.clone());
        }
    }
    out.insert("max_tokens".into(), json!(max_tokens));
    match obj.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
    }
    let mut has_tools = false;
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let mut list = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            let f = t
                .get("function")
                .ok_or_else(|| format!("tools.{i}.function: field required"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("tools.{i}.function.name: field required"))?;
            let schema = f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            let mut tool = json!({"name": name, "input_schema": schema});
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                tool["description"] = json!(d);
            }
            list.push(tool);
        }
        has_tools = !list.is_empty();
        if has_tools {
            out.insert("tools".into(), Value::Array(list));
        }
    }
    if has_tools {
        let mut choice = match obj.get("tool_choice") {
            Some(Value::String(s)) if s == "required" => json!({"type": "any"}),
            Some(Value::String(s)) if s == "none" => json!({"type": "none"}),
            Some(Value::Object(o)) => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or("tool_choice.function.name: field required")?;
                json!({"type": "tool", "name": name})
            }
            _ => json!({"type": "auto"}),
        };
        if obj.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
            choice["disable_parallel_tool_use"] = json!(true);
        }
        out.insert("tool_choice".into(), choice);
    }
    if let Some(u) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    Ok(Value::Object(out))
}

/// Anthropic stop reason → OpenAI finish reason.
pub fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Usage from an Anthropic `usage` object (prompt counts every input token, cached or not).
pub fn usage_of(u: &Value) -> Option<Usage> {
    let input = u.get("input_tokens")?.as_i64()?;
    let read = u
        .get("cache_read_input_tokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let write = u
        .get("cache_creation_input_tokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some(Usage {
        prompt: input + read + write,
        completion: u.get("output_tokens").and_then(Value::as_i64).unwrap_or(0),
        cached: read,
        cache_write: write,
    })
}

fn chat_id(msg_id: &str) -> String {
    format!("chatcmpl-{}", msg_id.strip_prefix("msg_").unwrap_or(msg_id))
}

/// A whole Anthropic message as an OpenAI chat completion.
pub fn message_to_chat(m: &Value, created: i64) -> (Value, Option<Usage>) {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for b in m["content"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or_default()),
            Some("thinking") => reasoning.push_str(b["thinking"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(json!({
                "id": b["id"], "type": "function",
                "function": {"name": b["name"], "arguments": b["input"].to_string()},
            })),
            _ => {}
        }
    }
    let usage = usage_of(&m["usage"]);
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(text) }});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let mut out = json!({
        "id": chat_id(m["id"].as_str().unwrap_or_default()),
        "object": "chat.completion",
        "created": created,
        "model": m["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(m["stop_reason"].as_str())}],
    });
    if let Some(u) = &usage {
        out["usage"] = openai_usage(u);
    }
    (out, usage)
}

enum Kind {
    Stream {
        splitter: sse::Splitter,
        id: String,
        model: Value,
        /// Anthropic block index → OpenAI tool call index, for the open tool block.
        tool: Option<(u64, u64)>,
        tools_seen: u64,
        done: bool,
    },
    Json {
        buf: Vec<u8>,
    },
}

/// The stage that reads an Anthropic answer and writes OpenAI's.
pub struct FromAnthropic {
    kind: Kind,
    status: u16,
    include_usage: bool,
    created: i64,
    usage: Option<Usage>,
    content_events: i64,
}

impl FromAnthropic {
    /// `stream` when the upstream answered with SSE; `include_usage` when the OpenAI client
    /// asked for the usage chunk.
    pub fn new(stream: bool, status: u16, include_usage: bool) -> Self {
        let kind = if stream && (200..300).contains(&status) {
            Kind::Stream {
                splitter: sse::Splitter::default(),
                id: String::new(),
                model: Value::Null,
                tool: None,
                tools_seen: 0,
                done: false,
            }
        } else {
            Kind::Json { buf: Vec::new() }
        };
        FromAnthropic {
            kind,
            status,
            include_usage,
            created: crate::vocab::now_secs(),
            usage: None,
            content_events: 0,
        }
    }

    fn merge_usage(&mut self, u: &Value) {
        let out = u.get("output_tokens").and_then(Value::as_i64);
        match (usage_of(u), &mut self.usage) {
            (Some(new), _) => {
                let completion = new.completion.max(self.usage.map_or(0, |o| o.completion));
                self.usage = Some(Usage { completion, ..new });
            }
            (None, Some(old)) => {
                if let Some(o) = out {
                    old.completion = o;
                }
            }
            (None, None) => {}
        }
    }
}

fn chunk(id: &str, created: i64, model: &Value, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

impl Stage for FromAnthropic {
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
        let events = match &mut self.kind {
            Kind::Json { buf } => {
                if buf.len() + input.len() <= 32 * 1024 * 1024 {
                    buf.extend_from_slice(input);
                }
                return;
            }
            Kind::Stream { splitter, .. } => {
                let mut ev = Vec::new();
                splitter.feed(input, &mut ev);
                ev
            }
        };
        for e in events {
            let Ok(v) = serde_json::from_slice::<Value>(&e.data) else {
                continue;
            };
            let ty = v["type"].as_str().unwrap_or_default().to_string();
            match ty.as_str() {
                "message_start" => {
                    if let Some(u) = v["message"].get("usage") {
                        self.merge_usage(u);
                    }
                }
                "message_delta" => {
                    if let Some(u) = v.get("usage") {
                        self.merge_usage(u);
                    }
                }
                "content_block_delta" | "content_block_start" => self.content_events += 1,
                _ => {}
            }
            let created = self.created;
            let include_usage = self.include_usage;
            let usage = self.usage;
            let Kind::Stream {
                id,
                model,
                tool,
                tools_seen,
                done,
                ..
            } = &mut self.kind
            else {
                return;
            };
            if *done {
                continue;
            }
            match ty.as_str() {
                "message_start" => {
                    *id = chat_id(v["message"]["id"].as_str().unwrap_or_default());
                    *model = v["message"]["model"].clone();
                    let c = chunk(
                        id,
                        created,
                        model,
                        json!({"role": "assistant", "content": ""}),
                        None,
                    );
                    sse::write_data(out, &c);
                }
                "content_block_start" => {
                    let b = &v["content_block"];
                    if b["type"] == "tool_use" {
                        let k = *tools_seen;
                        *tools_seen += 1;
                        *tool = Some((v["index"].as_u64().unwrap_or(0), k));
                        let d = json!({"tool_calls": [{"index": k, "id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": ""}}]});
                        sse::write_data(out, &chunk(id, created, model, d, None));
                    }
                }
                "content_block_delta" => {
                    let d = &v["delta"];
                    let delta = match d["type"].as_str() {
                        Some("text_delta") => Some(json!({"content": d["text"]})),
                        Some("thinking_delta") => Some(json!({"reasoning_content": d["thinking"]})),
                        Some("input_json_delta") => tool
                            .filter(|(block, _)| Some(*block) == v["index"].as_u64())
                            .map(|(_, k)| json!({"tool_calls": [{"index": k, "function": {"arguments": d["partial_json"]}}]})),
                        _ => None,
                    };
                    if let Some(delta) = delta {
                        sse::write_data(out, &chunk(id, created, model, delta, None));
                    }
                }
                "content_block_stop"
                    if tool.is_some_and(|(block, _)| Some(block) == v["index"].as_u64()) =>
                {
                    *tool = None;
                }
                "message_delta" => {
                    let f = finish_reason(v["delta"]["stop_reason"].as_str());
                    sse::write_data(out, &chunk(id, created, model, json!({}), Some(f)));
                }
                "message_stop" => {
                    *done = true;
                    if include_usage {
                        let u = usage.unwrap_or_default();
                        let c = json!({"id": id, "object": "chat.completion.chunk", "created": created,
                            "model": model, "choices": [], "usage": openai_usage(&u)});
                        sse::write_data(out, &c);
                    }
                    out.extend_from_slice(b"data: [DONE]\n\n");
                }
                "error" => {
                    *done = true;
                    let body = serde_json::to_vec(&v).unwrap_or_default();
                    sse::write_data(out, &openai_error(500, &body));
                }
                _ => {}
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match &mut self.kind {
            Kind::Json { buf } => {
                let body = if (200..300).contains(&self.status) {
                    match serde_json::from_slice::<Value>(buf) {
                        Ok(m) => {
                            let (chat, usage) = message_to_chat(&m, self.created);
                            self.usage = usage;
                            chat
                        }
                        Err(_) => openai_error(502, b"the upstream's answer was not valid JSON"),
                    }
                } else {
                    openai_error(self.status, buf)
                };
                let _ = serde_json::to_writer(&mut *out, &body);
            }
            Kind::Stream { done, .. } => {
                // A stream that ended without message_stop was cut: say so in-band.
                if !*done {
                    *done = true;
                    sse::write_data(
                        out,
                        &json!({"error": {"message": "the upstream stream ended early", "type": "server_error", "code": "server_error"}}),
                    );
                }
            }
        }
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if let Kind::Stream { done, .. } = &mut self.kind
            && !*done
        {
            *done = true;
            sse::write_data(
                out,
                &json!({"error": {"message": message, "type": "server_error", "code": "server_error"}}),
            );
        }
    }
}

/// Passthrough of an Anthropic answer to an Anthropic client, reading usage on the way.
pub type AnthropicObserver = Observer<Anthropic>;

/// Anthropic's API (the upstream), and where its answers keep usage (the dialect).
pub struct Anthropic;

impl Dialect for Anthropic {
    fn event(v: &Value, tally: &mut Tally) {
        match v["type"].as_str() {
            Some("message_start") => tally.usage = usage_of(&v["message"]["usage"]),
            Some("message_delta") => {
                let u = &v["usage"];
                if let Some(new) = usage_of(u) {
                    tally.usage = Some(new);
                } else if let (Some(old), Some(o)) =
                    (tally.usage.as_mut(), u["output_tokens"].as_i64())
                {
                    old.completion = o;
                }
            }
            Some("content_block_delta") => tally.content_events += 1,
            Some("message_stop") => tally.ended = true,
            _ => {}
        }
    }

    fn body_usage(v: &Value) -> Option<Usage> {
        usage_of(&v["usage"])
    }

    fn error_event(message: &str, out: &mut Vec<u8>) {
        sse::write_event(out, "error", &anthropic_error(500, message));
    }
}
