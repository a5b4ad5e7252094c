//! Anthropic Messages ⇄ OpenAI chat completions.
//!
//! Ingress (`/v1/messages` onto OpenAI-format channels): [`messages_to_chat`] converts the
//! request; [`chat_to_message`] and [`MessagesEncoder`] convert the answer and its stream
//! back into Anthropic's shapes and event sequence (`message_start`,
//! `content_block_start/delta/stop`, `message_delta`, `message_stop`).
//! Formats: <https://docs.anthropic.com/en/api/messages> and
//! <https://docs.anthropic.com/en/docs/build-with-claude/streaming>.

use serde_json::{Map, Value, json};

use crate::vocab::Usage;
pub use crate::wire::ConvertResult;
use crate::wire::conversion::{Conversion, hoist_system, reasoning_effort};
pub use crate::wire::errors::{anthropic_error as error_body, to_anthropic_error as convert_error};
use crate::wire::sse;

fn text_of_blocks(v: &Value, what: &str) -> ConvertResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut out = String::new();
            for (i, b) in blocks.iter().enumerate() {
                let text = match b.get("type").and_then(Value::as_str) {
                    Some("text") => b
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{what}.{i}.text: field required (a string)"))?
                        .to_string(),
                    // Images travel separately; a tool reference (tool search) names a
                    // tool now available, which converted requests offer anyway.
                    Some("image" | "tool_reference") => continue,
                    Some("document") => match document_text(b) {
                        Some(t) => t,
                        None => continue,
                    },
                    Some("search_result") => search_result_text(b),
                    Some(other) => {
                        return Err(format!("{what}.{i}.type: '{other}' is not a text block"));
                    }
                    None => return Err(format!("{what}.{i}.type: field required")),
                };
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&text);
            }
            Ok(out)
        }
        Value::Null => Ok(String::new()),
        _ => Err(format!("{what}: expected a string or an array of blocks")),
    }
}

/// A plain-text (or content-block) document's text; `None` for binary sources.
fn document_text(b: &Value) -> Option<String> {
    let src = b.get("source")?;
    match src.get("type").and_then(Value::as_str)? {
        "text" => Some(
            src.get("data")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        "content" => Some(match src.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }),
        _ => None,
    }
}

/// A search result block (RAG citations) as text: title, source, content.
fn search_result_text(b: &Value) -> String {
    let mut out = String::new();
    for k in ["title", "source"] {
        if let Some(t) = b.get(k).and_then(Value::as_str) {
            out.push_str(t);
            out.push('\n');
        }
    }
    for p in b
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            out.push_str(t);
            out.push('\n');
        }
    }
    out.trim_end().to_string()
}

/// A document block for an OpenAI-format upstream: text inline, a base64 PDF as a `file`
/// part (chat completions' file input), a URL as an error (the channel cannot fetch it).
fn document_part(b: &Value, what: &str) -> ConvertResult<Value> {
    if let Some(t) = document_text(b) {
        return Ok(json!({"type": "text", "text": t}));
    }
    let src = b.get("source").unwrap_or(&Value::Null);
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = src
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("application/pdf");
            let data = src
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{what}.source.data: field required"))?;
            let name = b
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("document.pdf");
            Ok(
                json!({"type": "file", "file": {"filename": name, "file_data": format!("data:{media};base64,{data}")}}),
            )
        }
        Some(other) => Err(format!(
            "{what}.source.type: '{other}' documents cannot be passed to this channel (send the document as base64 or text)"
        )),
        None => Err(format!("{what}.source.type: field required")),
    }
}

fn image_part(b: &Value, what: &str) -> ConvertResult<Value> {
    let src = b
        .get("source")
        .ok_or_else(|| format!("{what}.source: field required"))?;
    let url = match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = src
                .get("media_type")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{what}.source.media_type: field required"))?;
            let data = src
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{what}.source.data: field required"))?;
            format!("data:{media};base64,{data}")
        }
        Some("url") => src
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{what}.source.url: field required"))?
            .to_string(),
        other => {
            return Err(format!(
                "{what}.source.type: expected base64 or url, got {}",
                other.unwrap_or("nothing")
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn convert_message(m: &Value, i: usize, out: &mut Vec<Value>) -> ConvertResult<()> {
    let what = format!("messages.{i}");
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}.role: field required"))?;
    if role == "system" {
        // Newer clients (Claude Code) put system messages between the turns.
        let text = text_of_blocks(m.get("content").unwrap_or(&Value::Null), &what)?;
        if !text.is_empty() {
            out.push(json!({"role": "system", "content": text}));
        }
        return Ok(());
    }
    if role != "user" && role != "assistant" {
        return Err(format!(
            "{what}.role: must be user, assistant or system, got '{role}'"
        ));
    }
    let content = m
        .get("content")
        .ok_or_else(|| format!("{what}.content: field required"))?;
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Value::Array(b) => b,
        _ => {
            return Err(format!(
                "{what}.content: expected a string or an array of content blocks"
            ));
        }
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    let mut tool_images: Vec<Value> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bw = format!("{what}.content.{j}");
        let ty = b
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{bw}.type: field required"))?;
        match ty {
            "text" => {
                let t = b
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{bw}.text: field required (a string)"))?;
                parts.push(json!({"type": "text", "text": t}));
            }
            "image" if role == "user" => parts.push(image_part(b, &bw)?),
            "document" => parts.push(document_part(b, &bw)?),
            "search_result" => parts.push(json!({"type": "text", "text": search_result_text(b)})),
            "tool_use" if role == "assistant" => {
                let id = b
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{bw}.id: field required"))?;
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{bw}.name: field required"))?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}));
            }
            "tool_result" if role == "user" => {
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{bw}.tool_use_id: field required"))?;
                let c = b.get("content").unwrap_or(&Value::Null);
                let mut text = text_of_blocks(c, &format!("{bw}.content"))?;
                if let Value::Array(inner) = c {
                    for (k, x) in inner.iter().enumerate() {
                        if x.get("type").and_then(Value::as_str) == Some("image") {
                            tool_images.push(image_part(x, &format!("{bw}.content.{k}"))?);
                        }
                    }
                }
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            // Thinking blocks are the provider's own; other models cannot use them. Server
            // tool calls and their results ran at Anthropic; their outcome is in the text.
            "thinking"
            | "redacted_thinking"
            | "server_tool_use"
            | "web_search_tool_result"
            | "web_fetch_tool_result"
            | "code_execution_tool_result"
            | "bash_code_execution_tool_result"
            | "text_editor_code_execution_tool_result"
            | "tool_search_tool_result"
            | "mcp_tool_use"
            | "mcp_tool_result"
            | "container_upload"
            | "tool_reference" => {}
            other => {
                return Err(format!(
                    "{bw}.type: '{other}' blocks are not supported in a {role} message"
                ));
            }
        }
    }
    parts.extend(tool_images);
    if role == "assistant" {
        let text: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text.join("")) }});
        if !tool_calls.is_empty() {
            msg["tool_calls"] = Value::Array(tool_calls);
        }
        if !text.is_empty() || msg.get("tool_calls").is_some() {
            out.push(msg);
        }
    } else if !parts.is_empty() {
        let all_text = parts.iter().all(|p| p["type"] == "text");
        let content = if all_text {
            Value::String(
                parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        } else {
            Value::Array(parts)
        };
        out.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

fn convert_tools(tools: &Value, conv: &mut Conversion) -> ConvertResult<Value> {
    let list = tools.as_array().ok_or("tools: expected an array")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            // Server tools (web search, code execution, ...) and Anthropic-defined client
            // tools run only on Anthropic channels: left out, named in a response header.
            Some(other) => {
                conv.drop_tool(other);
                continue;
            }
        }
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("tools.{i}.name: field required"))?;
        let schema = t
            .get("input_schema")
            .cloned()
            .ok_or_else(|| format!("tools.{i}.input_schema: field required"))?;
        let mut f = json!({"name": name, "parameters": schema});
        if let Some(d) = t.get("description").and_then(Value::as_str) {
            f["description"] = json!(d);
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(Value::Array(out))
}

/// Convert an Anthropic Messages request into an OpenAI chat completions request.
pub fn messages_to_chat(req: &Value) -> ConvertResult<Value> {
    messages_to_chat_with(req).map(|(chat, _)| chat)
}

/// [`messages_to_chat`], with what the conversion left out or renamed.
///
/// Fields of newer clients are accepted: `system` messages inside `messages` (hoisted into
/// the system prompt), `thinking` (`enabled` → `reasoning_effort` from `output_config.effort`
/// or the budget; `adaptive` and `disabled` leave the upstream's own default),
/// `context_management` (it edits the provider's thinking blocks, which converted requests
/// drop anyway), `metadata`, `cache_control` on any block or tool, document blocks, and
/// server tools (dropped, see [`Conversion`]).
pub fn messages_to_chat_with(req: &Value) -> ConvertResult<(Value, Conversion)> {
    let mut conv = Conversion::default();
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or("model: field required (a non-empty string)")?;
    let max_tokens = match obj.get("max_tokens") {
        None => return Err("max_tokens: field required".into()),
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or("max_tokens: must be a positive integer")?,
    };
    let mut messages = Vec::new();
    if let Some(sys) = obj.get("system") {
        let text = text_of_blocks(sys, "system")?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: field required (an array)")?;
    for (i, m) in msgs.iter().enumerate() {
        convert_message(m, i, &mut messages)?;
    }
    let messages = hoist_system(messages);
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    out.insert("max_tokens".into(), json!(max_tokens));
    for k in ["temperature", "top_p"] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(format!("{k}: must be a number"));
            }
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(s) = obj.get("stop_sequences").filter(|v| !v.is_null()) {
        let ok = s.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err("stop_sequences: must be an array of strings".into());
        }
        out.insert("stop".into(), s.clone());
    }
    match obj.get("stream") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("stream".into(), json!(true));
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Some(_) => return Err("stream: must be a boolean".into()),
    }
    if let Some(t) = obj.get("tools").filter(|v| !v.is_null()) {
        let tools = convert_tools(t, &mut conv)?;
        if tools.as_array().is_some_and(|a| !a.is_empty()) {
            out.insert("tools".into(), tools);
        }
    }
    if let Some(tc) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        let choice = match tc.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                let name = tc
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("tool_choice.name: field required")?;
                json!({"type": "function", "function": {"name": name}})
            }
            _ => return Err("tool_choice.type: must be auto, any, tool or none".into()),
        };
        if out.contains_key("tools") {
            out.insert("tool_choice".into(), choice);
        }
        if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true)
            && out.contains_key("tools")
        {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    if let Some(u) = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), json!(u));
    }
    if let Some(effort) = thinking_effort(obj) {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    Ok((Value::Object(out), conv))
}

/// The reasoning effort a request asks for explicitly: `thinking.type = enabled`, at
/// `output_config.effort` when given, else from `budget_tokens`.
fn thinking_effort(obj: &Map<String, Value>) -> Option<&'static str> {
    let thinking = obj.get("thinking")?;
    if thinking.get("type").and_then(Value::as_str) != Some("enabled") {
        return None;
    }
    if let Some(e) = obj
        .get("output_config")
        .and_then(|c| c.get("effort"))
        .and_then(Value::as_str)
        .and_then(reasoning_effort)
    {
        return Some(e);
    }
    let budget = thinking.get("budget_tokens").and_then(Value::as_u64)?;
    Some(match budget {
        0..=2048 => "low",
        2049..=8192 => "medium",
        _ => "high",
    })
}

/// OpenAI finish reason → Anthropic stop reason.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

fn anthropic_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": (u.prompt - u.cached - u.cache_write).max(0),
        "output_tokens": u.completion,
        "cache_read_input_tokens": u.cached,
        "cache_creation_input_tokens": u.cache_write,
    })
}

fn message_id(openai_id: Option<&str>) -> String {
    let raw = openai_id.unwrap_or_default();
    let tail = raw.strip_prefix("chatcmpl-").unwrap_or(raw);
    if tail.is_empty() {
        format!("msg_{}", uuid::Uuid::new_v4().simple())
    } else {
        format!("msg_{tail}")
    }
}

fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"arguments": arguments}))
}

/// Convert an OpenAI chat completion into an Anthropic message; `usage` is what the relay
/// read from it.
pub fn chat_to_message(resp: &Value, model: &str, usage: Option<&Usage>) -> Value {
    let choice = &resp["choices"][0];
    let msg = &choice["message"];
    let mut content = Vec::new();
    let text = match &msg["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<String>(),
        _ => String::new(),
    };
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    let mut has_tools = false;
    for tc in msg["tool_calls"].as_array().into_iter().flatten() {
        has_tools = true;
        let id = tc["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("toolu_{}", uuid::Uuid::new_v4().simple()));
        content.push(json!({
            "type": "tool_use",
            "id": id,
            "name": tc["function"]["name"].as_str().unwrap_or_default(),
            "input": tool_input(tc["function"]["arguments"].as_str().unwrap_or_default()),
        }));
    }
    let mut reason = stop_reason(choice["finish_reason"].as_str());
    if has_tools && reason == "end_turn" {
        reason = "tool_use";
    }
    json!({
        "id": message_id(resp["id"].as_str()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": anthropic_usage(&usage.copied().unwrap_or_default()),
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Block {
    Text,
    Tool(u64),
}

/// Writes OpenAI chat chunks as Anthropic stream events.
#[derive(Debug)]
pub struct MessagesEncoder {
    model: String,
    started: bool,
    open: Option<(usize, Block)>,
    next_index: usize,
    stop_reason: Option<&'static str>,
    saw_tools: bool,
}

impl MessagesEncoder {
    pub fn new(model: &str) -> Self {
        MessagesEncoder {
            model: model.to_string(),
            started: false,
            open: None,
            next_index: 0,
            stop_reason: None,
            saw_tools: false,
        }
    }

    fn start(&mut self, id: Option<&str>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        sse::write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(id), "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
        sse::write_event(out, "ping", &json!({"type": "ping"}));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            sse::write_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn open_block(&mut self, block: Block, content_block: Value, out: &mut Vec<u8>) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        sse::write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        );
        self.open = Some((index, block));
        index
    }

    /// One OpenAI chunk.
    pub fn chunk(&mut self, c: &Value, out: &mut Vec<u8>) {
        self.start(c["id"].as_str(), out);
        let choice = &c["choices"][0];
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            let index = match &self.open {
                Some((i, Block::Text)) => *i,
                _ => self.open_block(Block::Text, json!({"type": "text", "text": ""}), out),
            };
            sse::write_event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
            );
        }
        for tc in delta["tool_calls"].as_array().into_iter().flatten() {
            self.saw_tools = true;
            let n = tc["index"].as_u64().unwrap_or(0);
            let same = matches!(&self.open, Some((_, Block::Tool(k))) if *k == n);
            let index = if same && tc["id"].is_null() {
                self.open.as_ref().map(|(i, _)| *i).unwrap_or(0)
            } else {
                let id = tc["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("toolu_{}", uuid::Uuid::new_v4().simple()));
                let name = tc["function"]["name"].as_str().unwrap_or_default();
                self.open_block(
                    Block::Tool(n),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                )
            };
            if let Some(args) = tc["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                sse::write_event(
                    out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": args}}),
                );
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.stop_reason = Some(stop_reason(Some(f)));
        }
    }

    /// The stream ended normally.
    pub fn finish(&mut self, usage: Option<&Usage>, out: &mut Vec<u8>) {
        self.start(None, out);
        self.close(out);
        let mut reason = self.stop_reason.unwrap_or("end_turn");
        if self.saw_tools && reason == "end_turn" {
            reason = "tool_use";
        }
        sse::write_event(
            out,
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null},
                    "usage": anthropic_usage(&usage.copied().unwrap_or_default())}),
        );
        sse::write_event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    /// The upstream failed mid-stream.
    pub fn error(&mut self, message: &str, out: &mut Vec<u8>) {
        sse::write_event(out, "error", &error_body(500, message));
    }
}

enum OutKind {
    /// OpenAI SSE chunks → Anthropic events.
    Stream {
        splitter: sse::Splitter,
        encoder: MessagesEncoder,
        ended: bool,
    },
    /// A whole OpenAI JSON answer → an Anthropic message (or error).
    Json { buf: Vec<u8>, overflow: bool },
}

/// Largest non-streamed answer converted (larger ones are refused, not truncated).
const MAX_JSON: usize = 32 * 1024 * 1024;

/// The stage that turns OpenAI chat answers into Anthropic Messages answers for a
/// `/v1/messages` client, reading usage on the way.
pub struct ToAnthropic {
    kind: OutKind,
    status: u16,
    model: String,
    usage: Option<Usage>,
    content_events: i64,
}

impl ToAnthropic {
    /// `stream` when the upstream answers with SSE; `model` is the name the client asked for.
    pub fn new(stream: bool, status: u16, model: &str) -> Self {
        let kind = if stream && (200..300).contains(&status) {
            OutKind::Stream {
                splitter: sse::Splitter::default(),
                encoder: MessagesEncoder::new(model),
                ended: false,
            }
        } else {
            OutKind::Json {
                buf: Vec::new(),
                overflow: false,
            }
        };
        ToAnthropic {
            kind,
            status,
            model: model.to_string(),
            usage: None,
            content_events: 0,
        }
    }
}

impl crate::wire::Stage for ToAnthropic {
    fn ended(&self) -> bool {
        matches!(self.kind, OutKind::Stream { ended: true, .. })
    }

    fn content_type(&self) -> &'static str {
        match self.kind {
            OutKind::Stream { .. } => "text/event-stream",
            OutKind::Json { .. } => "application/json",
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn content_events(&self) -> i64 {
        self.content_events
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match &mut self.kind {
            OutKind::Stream {
                splitter,
                encoder,
                ended,
            } => {
                let mut events = Vec::new();
                splitter.feed(chunk, &mut events);
                for e in events {
                    if *ended {
                        break;
                    }
                    if e.data == b"[DONE]" {
                        *ended = true;
                        encoder.finish(self.usage.as_ref(), out);
                        continue;
                    }
                    let Ok(v) = serde_json::from_slice::<Value>(&e.data) else {
                        continue;
                    };
                    if let Some(u) = crate::vocab::usage_from_value(&v) {
                        self.usage = Some(u);
                    }
                    if v.get("error").is_some() {
                        let msg = v["error"]["message"].as_str().unwrap_or("upstream error");
                        encoder.error(msg, out);
                        *ended = true;
                        continue;
                    }
                    if v["choices"].as_array().is_some_and(|c| !c.is_empty()) {
                        self.content_events += 1;
                        encoder.chunk(&v, out);
                    }
                }
            }
            OutKind::Json { buf, overflow } => {
                if buf.len() + chunk.len() <= MAX_JSON {
                    buf.extend_from_slice(chunk);
                } else {
                    *overflow = true;
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match &mut self.kind {
            OutKind::Stream {
                splitter,
                encoder,
                ended,
            } => {
                let mut events = Vec::new();
                splitter.finish(&mut events);
                if !*ended {
                    *ended = true;
                    encoder.finish(self.usage.as_ref(), out);
                }
            }
            OutKind::Json { buf, overflow } => {
                let body = if *overflow {
                    error_body(502, "the upstream's answer is too large to convert")
                } else if (200..300).contains(&self.status) {
                    match serde_json::from_slice::<Value>(buf) {
                        Ok(v) => {
                            self.usage = crate::vocab::usage_from_value(&v);
                            chat_to_message(&v, &self.model, self.usage.as_ref())
                        }
                        Err(_) => error_body(502, "the upstream's answer was not valid JSON"),
                    }
                } else {
                    convert_error(self.status, buf)
                };
                let _ = serde_json::to_writer(&mut *out, &body);
            }
        }
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if let OutKind::Stream { encoder, ended, .. } = &mut self.kind
            && !*ended
        {
            *ended = true;
            encoder.error(message, out);
        }
    }
}
