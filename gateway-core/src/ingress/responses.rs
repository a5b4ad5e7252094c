//! OpenAI Responses ingress (`/v1/responses`, what Codex CLI speaks) ⇄ OpenAI chat.
//!
//! The request becomes a chat request (instructions → system, input items → messages,
//! function tools, `text.format` → `response_format`, `reasoning.effort`); the answer and
//! its stream become a Response object and the Responses event sequence
//! (`response.created`, `response.in_progress`, `response.output_item.added`,
//! `response.content_part.added`, `response.output_text.delta`, …,
//! `response.function_call_arguments.delta/done`, `response.output_item.done`,
//! `response.completed`). Stateless: `previous_response_id` is refused with a clear error.
//! Format: <https://platform.openai.com/docs/api-reference/responses>.

use serde_json::{Map, Value, json};

use crate::vocab::Usage;
use crate::wire::conversion::{Conversion, hoist_system, reasoning_effort};
use crate::wire::{ConvertResult, Stage, sse};

fn content_parts(content: &Value, role: &str, what: &str) -> ConvertResult<Value> {
    match content {
        Value::String(s) => Ok(json!(s)),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                let pw = format!("{what}.content.{j}");
                match p.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text" | "refusal") => {
                        let t = p
                            .get("text")
                            .or_else(|| p.get("refusal"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{pw}.text: field required"))?;
                        out.push(json!({"type": "text", "text": t}));
                    }
                    Some("input_image") if role == "user" => {
                        let url = p.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                            format!("{pw}.image_url: required (file ids are not supported)")
                        })?;
                        let mut img = json!({"url": url});
                        if let Some(d) = p.get("detail").and_then(Value::as_str) {
                            img["detail"] = json!(d);
                        }
                        out.push(json!({"type": "image_url", "image_url": img}));
                    }
                    Some("input_file") if role == "user" => {
                        let data = p.get("file_data").and_then(Value::as_str).ok_or_else(|| {
                            format!("{pw}.file_data: required (file ids and URLs are not stored by this gateway)")
                        })?;
                        let name = p
                            .get("filename")
                            .and_then(Value::as_str)
                            .unwrap_or("document.pdf");
                        out.push(
                            json!({"type": "file", "file": {"filename": name, "file_data": data}}),
                        );
                    }
                    Some(other) => {
                        return Err(format!(
                            "{pw}.type: '{other}' content is not supported in a {role} message"
                        ));
                    }
                    None => return Err(format!("{pw}.type: field required")),
                }
            }
            if role != "user" || out.iter().all(|p| p["type"] == "text") {
                let text: Vec<&str> = out.iter().filter_map(|p| p["text"].as_str()).collect();
                return Ok(json!(text.join("")));
            }
            Ok(Value::Array(out))
        }
        _ => Err(format!("{what}.content: expected a string or an array")),
    }
}

/// One tool call of the input as a chat tool call (parallel calls join one assistant turn).
fn push_call(messages: &mut Vec<Value>, call: Value) {
    let joined = messages.last_mut().is_some_and(|last| {
        last["role"] == "assistant"
            && last["tool_calls"].as_array_mut().is_some_and(|calls| {
                calls.push(call.clone());
                true
            })
    });
    if !joined {
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
    }
}

/// A function tool (Responses' flat shape) as a chat tool, under `name`.
fn function_tool(t: &Value, name: &str) -> Value {
    let mut f = json!({"name": name});
    for k in ["description", "parameters", "strict"] {
        if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
            f[k] = v.clone();
        }
    }
    json!({"type": "function", "function": f})
}

/// Convert a Responses request into a chat completions request, with what the conversion
/// left out or renamed.
///
/// Fields of current clients (Codex CLI) are accepted: `developer` messages (hoisted with
/// the instructions into the system prompt), `namespace` tools (flattened into functions
/// named `<namespace>__<name>`, mapped back in the answer), hosted tools (`web_search`,
/// `file_search`, `code_interpreter`, `image_generation`, `mcp`, ... : no chat upstream
/// runs them, so they are left out and named in [`Conversion::dropped_tools`]), `include`,
/// `store`, `reasoning.summary`, `prompt_cache_key`, `client_metadata` and `text.verbosity`
/// (nothing to keep or summarise: ignored), `parallel_tool_calls`.
pub fn responses_to_chat_with(req: &Value) -> ConvertResult<(Value, Conversion)> {
    let mut conv = Conversion::default();
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or("model: field required (a non-empty string)")?;
    if obj
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err("previous_response_id: responses are not stored by this gateway; send the whole conversation in `input`".into());
    }
    let mut messages: Vec<Value> = Vec::new();
    if let Some(i) = obj.get("instructions").filter(|v| !v.is_null()) {
        let text = i.as_str().ok_or("instructions: must be a string")?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    match obj.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let what = format!("input.{i}");
                let ty = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                match ty {
                    "message" => {
                        let role = item
                            .get("role")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{what}.role: field required"))?;
                        let role = match role {
                            "user" | "assistant" | "system" => role,
                            "developer" => "system",
                            other => {
                                return Err(format!("{what}.role: '{other}' is not a valid role"));
                            }
                        };
                        let content = item
                            .get("content")
                            .ok_or_else(|| format!("{what}.content: field required"))?;
                        let content = content_parts(content, role, &what)?;
                        // Consecutive assistant text after tool calls joins that turn.
                        messages.push(json!({"role": role, "content": content}));
                    }
                    "function_call" => {
                        let call_id = item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{what}.call_id: field required"))?;
                        let name = item
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{what}.name: field required"))?;
                        let name = match item.get("namespace").and_then(Value::as_str) {
                            Some(ns) => conv.flatten(ns, name),
                            None => name.to_string(),
                        };
                        let args =
                            item.get("arguments")
                                .and_then(Value::as_str)
                                .ok_or_else(|| {
                                    format!("{what}.arguments: field required (a string)")
                                })?;
                        push_call(
                            &mut messages,
                            json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}),
                        );
                    }
                    "custom_tool_call" => {
                        let call_id = item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{what}.call_id: field required"))?;
                        let name = item
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{what}.name: field required"))?;
                        let input = item.get("input").and_then(Value::as_str).unwrap_or("");
                        let args = json!({"input": input}).to_string();
                        push_call(
                            &mut messages,
                            json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}),
                        );
                    }
                    "function_call_output" | "custom_tool_call_output" => {
                        let call_id = item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{what}.call_id: field required"))?;
                        let output = match item.get("output") {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Array(parts)) => parts
                                .iter()
                                .filter_map(|p| p["text"].as_str())
                                .collect::<Vec<_>>()
                                .join("\n"),
                            _ => return Err(format!("{what}.output: field required (a string)")),
                        };
                        messages.push(
                            json!({"role": "tool", "tool_call_id": call_id, "content": output}),
                        );
                    }
                    "item_reference" => {
                        return Err(format!(
                            "{what}: item references need stored responses, which this gateway does not keep; send the items themselves"
                        ));
                    }
                    // Reasoning items belong to the model that wrote them; hosted tool
                    // calls ran upstream and their outcome is in the messages around them.
                    _ => {}
                }
            }
        }
        None | Some(Value::Null) => return Err("input: field required".into()),
        Some(_) => return Err("input: expected a string or an array of items".into()),
    }
    let messages = hoist_system(messages);
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(n) = obj.get("max_output_tokens").filter(|v| !v.is_null()) {
        let n = n
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or("max_output_tokens: must be a positive integer")?;
        out.insert("max_tokens".into(), json!(n));
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(format!("{k}: must be a number"));
            }
            out.insert(k.into(), v.clone());
        }
    }
    match obj.get("stream") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("stream".into(), json!(true));
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Some(_) => return Err("stream: must be a boolean".into()),
    }
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        let list = tools.as_array().ok_or("tools: expected an array")?;
        let mut converted = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            match t.get("type").and_then(Value::as_str) {
                Some("function") => {
                    let name = t
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("tools.{i}.name: field required"))?;
                    converted.push(function_tool(t, name));
                }
                Some("namespace") => {
                    let ns = t
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("tools.{i}.name: field required"))?;
                    for (j, inner) in t
                        .get("tools")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        match inner.get("type").and_then(Value::as_str) {
                            Some("function") | None => {
                                let name =
                                    inner.get("name").and_then(Value::as_str).ok_or_else(|| {
                                        format!("tools.{i}.tools.{j}.name: field required")
                                    })?;
                                let flat = conv.flatten(ns, name);
                                converted.push(function_tool(inner, &flat));
                            }
                            Some(other) => conv.drop_tool(other),
                        }
                    }
                }
                // A free-form tool (Codex's apply_patch): a function with one string.
                Some("custom") => {
                    let name = t
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("tools.{i}.name: field required"))?;
                    let mut f = json!({"name": name, "parameters": {"type": "object",
                        "properties": {"input": {"type": "string", "description": "The tool's input, as free text in the format the description gives"}},
                        "required": ["input"]}});
                    if let Some(d) = t.get("description").and_then(Value::as_str) {
                        f["description"] = json!(d);
                    }
                    conv.custom_tools.push(name.to_string());
                    converted.push(json!({"type": "function", "function": f}));
                }
                Some(other) => conv.drop_tool(other),
                None => return Err(format!("tools.{i}.type: field required")),
            }
        }
        if !converted.is_empty() {
            out.insert("tools".into(), Value::Array(converted));
        }
    }
    if out.contains_key("tools") {
        match obj.get("tool_choice") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if ["auto", "required", "none"].contains(&s.as_str()) => {
                out.insert("tool_choice".into(), json!(s));
            }
            Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
                let name = o
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("tool_choice.name: field required")?;
                out.insert(
                    "tool_choice".into(),
                    json!({"type": "function", "function": {"name": name}}),
                );
            }
            // Hosted tools and `allowed_tools` lists: the channel chooses (auto).
            Some(_) => {}
        }
        if let Some(p) = obj.get("parallel_tool_calls").and_then(Value::as_bool) {
            out.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    if let Some(format) = obj.get("text").and_then(|t| t.get("format")) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut js = json!({"name": format.get("name").cloned().unwrap_or(json!("response")),
                                    "schema": format.get("schema").cloned().unwrap_or(json!({}))});
                if let Some(s) = format.get("strict") {
                    js["strict"] = s.clone();
                }
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": js}),
                );
            }
            Some("json_object") => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
    }
    if let Some(effort) = obj
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .and_then(reasoning_effort)
    {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(u) = obj.get("user").and_then(Value::as_str) {
        out.insert("user".into(), json!(u));
    }
    Ok((Value::Object(out), conv))
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt + u.completion,
    })
}

fn response_object(
    id: &str,
    created: i64,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
    incomplete: bool,
) -> Value {
    json!({
        "id": id, "object": "response", "created_at": created, "status": status,
        "error": null,
        "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "model": model, "output": output, "parallel_tool_calls": true,
        "previous_response_id": null, "store": false, "tool_choice": "auto", "tools": [],
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "metadata": {},
        "usage": usage.map(usage_json).unwrap_or(Value::Null),
    })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    args: &str,
    status: &str,
    conv: &Conversion,
) -> Value {
    if conv.is_custom(name) {
        // Arguments `{"input": "..."}` (a model may also answer with bare text).
        let input = serde_json::from_str::<Value>(args)
            .ok()
            .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| args.to_string());
        return json!({"type": "custom_tool_call", "id": id, "call_id": call_id, "name": name,
            "input": input, "status": status});
    }
    let mut item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": args, "status": status});
    // A flattened namespace tool goes back under its own name and namespace.
    if let Some((ns, inner)) = conv.unflatten(name) {
        item["name"] = json!(inner);
        item["namespace"] = json!(ns);
    }
    item
}

/// A whole chat completion as a Response object, mapping flattened tool names back.
pub fn chat_to_response_with(
    chat: &Value,
    model: &str,
    usage: Option<&Usage>,
    conv: &Conversion,
) -> Value {
    let choice = &chat["choices"][0];
    let msg = &choice["message"];
    let mut output = Vec::new();
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        output.push(message_item(&new_id("msg"), t, "completed"));
    }
    for tc in msg["tool_calls"].as_array().into_iter().flatten() {
        output.push(call_item(
            &new_id("fc"),
            tc["id"].as_str().unwrap_or_default(),
            tc["function"]["name"].as_str().unwrap_or_default(),
            tc["function"]["arguments"].as_str().unwrap_or_default(),
            "completed",
            conv,
        ));
    }
    let incomplete = choice["finish_reason"] == "length";
    response_object(
        &new_id("resp"),
        crate::vocab::now_secs(),
        model,
        if incomplete {
            "incomplete"
        } else {
            "completed"
        },
        output,
        usage,
        incomplete,
    )
}

/// An open output item in a stream.
enum Open {
    Text {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        args: String,
        tool_index: u64,
    },
}

struct StreamState {
    splitter: sse::Splitter,
    id: String,
    created: i64,
    seq: u64,
    started: bool,
    ended: bool,
    open: Option<Open>,
    done_items: Vec<Value>,
    incomplete: bool,
    conv: Conversion,
}

enum Kind {
    Stream(Box<StreamState>),
    Json { buf: Vec<u8> },
}

/// The stage that turns OpenAI chat answers into Responses answers.
pub struct ToResponses {
    kind: Kind,
    status: u16,
    model: String,
    usage: Option<Usage>,
    content_events: i64,
    conv: Conversion,
}

impl ToResponses {
    /// Map flattened tool names back as `conv` recorded them.
    pub fn new(stream: bool, status: u16, model: &str) -> Self {
        let kind = if stream && (200..300).contains(&status) {
            Kind::Stream(Box::new(StreamState {
                splitter: sse::Splitter::default(),
                id: new_id("resp"),
                created: crate::vocab::now_secs(),
                seq: 0,
                started: false,
                ended: false,
                open: None,
                done_items: Vec::new(),
                incomplete: false,
                conv: Conversion::default(),
            }))
        } else {
            Kind::Json { buf: Vec::new() }
        };
        ToResponses {
            kind,
            status,
            model: model.to_string(),
            usage: None,
            content_events: 0,
            conv: Conversion::default(),
        }
    }
}

impl StreamState {
    fn emit(&mut self, out: &mut Vec<u8>, ty: &str, mut data: Value) {
        data["type"] = json!(ty);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        sse::write_event(out, ty, &data);
    }

    fn start(&mut self, model: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = response_object(
            &self.id,
            self.created,
            model,
            "in_progress",
            vec![],
            None,
            false,
        );
        self.emit(out, "response.created", json!({"response": r}));
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let index = self.done_items.len();
        match self.open.take() {
            None => {}
            Some(Open::Text { id, text }) => {
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
                );
                let item = message_item(&id, &text, "completed");
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.done_items.push(item);
            }
            Some(Open::Call {
                id,
                call_id,
                name,
                args,
                ..
            }) => {
                let item = call_item(&id, &call_id, &name, &args, "completed", &self.conv);
                if item["type"] == "custom_tool_call" {
                    // The input is known once the arguments object is complete.
                    let input = item["input"].clone();
                    self.emit(
                        out,
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": id, "output_index": index, "delta": input}),
                    );
                    self.emit(
                        out,
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": index, "input": input}),
                    );
                } else {
                    self.emit(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "arguments": args}),
                    );
                }
                self.emit(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.done_items.push(item);
            }
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Text { .. })) {
            self.close(out);
            let id = new_id("msg");
            let index = self.done_items.len();
            self.emit(out, "response.output_item.added", json!({"output_index": index,
                "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}}));
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
            );
            self.open = Some(Open::Text {
                id,
                text: String::new(),
            });
        }
        let index = self.done_items.len();
        if let Some(Open::Text { id, text }) = &mut self.open {
            text.push_str(delta);
            let id = id.clone();
            self.emit(
                out,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta}),
            );
        }
    }

    fn call(&mut self, tc: &Value, out: &mut Vec<u8>) {
        let n = tc["index"].as_u64().unwrap_or(0);
        let same = matches!(&self.open, Some(Open::Call { tool_index, .. }) if *tool_index == n);
        if !same || tc["id"].is_string() {
            self.close(out);
            let id = new_id("fc");
            let call_id = tc["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| new_id("call"));
            let name = tc["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let index = self.done_items.len();
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index,
                "item": call_item(&id, &call_id, &name, "", "in_progress", &self.conv)}),
            );
            self.open = Some(Open::Call {
                id,
                call_id,
                name,
                args: String::new(),
                tool_index: n,
            });
        }
        let index = self.done_items.len();
        if let Some(delta) = tc["function"]["arguments"]
            .as_str()
            .filter(|a| !a.is_empty())
            && let Some(Open::Call { id, args, name, .. }) = &mut self.open
        {
            args.push_str(delta);
            let id = id.clone();
            // A custom tool's input is sent whole when the call closes.
            if !self.conv.is_custom(name) {
                self.emit(
                    out,
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": delta}),
                );
            }
        }
    }

    fn complete(&mut self, model: &str, usage: Option<&Usage>, out: &mut Vec<u8>) {
        self.start(model, out);
        self.close(out);
        self.ended = true;
        let status = if self.incomplete {
            "incomplete"
        } else {
            "completed"
        };
        let r = response_object(
            &self.id,
            self.created,
            model,
            status,
            std::mem::take(&mut self.done_items),
            usage,
            self.incomplete,
        );
        let ty = if self.incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(out, ty, json!({"response": r}));
    }

    fn failed(&mut self, model: &str, message: &str, out: &mut Vec<u8>) {
        self.start(model, out);
        self.ended = true;
        let mut r = response_object(
            &self.id,
            self.created,
            model,
            "failed",
            std::mem::take(&mut self.done_items),
            None,
            false,
        );
        r["error"] = json!({"code": "server_error", "message": message});
        self.emit(out, "response.failed", json!({"response": r}));
    }
}

impl Stage for ToResponses {
    fn ended(&self) -> bool {
        matches!(&self.kind, Kind::Stream(s) if s.ended)
    }

    fn apply(&mut self, conv: &Conversion) {
        if let Kind::Stream(s) = &mut self.kind {
            s.conv = conv.clone();
        }
        self.conv = conv.clone();
    }

    fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::Stream(_) => "text/event-stream",
            Kind::Json { .. } => "application/json",
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn content_events(&self) -> i64 {
        self.content_events
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let s = match &mut self.kind {
            Kind::Json { buf } => {
                if buf.len() + chunk.len() <= 32 * 1024 * 1024 {
                    buf.extend_from_slice(chunk);
                }
                return;
            }
            Kind::Stream(s) => s,
        };
        let mut events = Vec::new();
        s.splitter.feed(chunk, &mut events);
        for e in events {
            if s.ended {
                break;
            }
            if e.data == b"[DONE]" {
                s.complete(&self.model, self.usage.as_ref(), out);
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&e.data) else {
                continue;
            };
            if let Some(u) = crate::vocab::usage_from_value(&v) {
                self.usage = Some(u);
            }
            if v.get("error").is_some() {
                let m = v["error"]["message"].as_str().unwrap_or("upstream error");
                s.failed(&self.model, m, out);
                continue;
            }
            let Some(choice) = v["choices"].get(0) else {
                continue;
            };
            s.start(&self.model, out);
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.content_events += 1;
                s.text(t, out);
            }
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                self.content_events += 1;
                s.call(tc, out);
            }
            if choice["finish_reason"] == "length" {
                s.incomplete = true;
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        match &mut self.kind {
            Kind::Stream(s) => {
                if !s.ended {
                    s.complete(&self.model, self.usage.as_ref(), out);
                }
            }
            Kind::Json { buf } => {
                let body = if (200..300).contains(&self.status) {
                    match serde_json::from_slice::<Value>(buf) {
                        Ok(v) => {
                            self.usage = crate::vocab::usage_from_value(&v);
                            chat_to_response_with(&v, &self.model, self.usage.as_ref(), &self.conv)
                        }
                        Err(_) => crate::wire::errors::openai_error(
                            502,
                            b"the upstream's answer was not valid JSON",
                        ),
                    }
                } else {
                    crate::wire::errors::openai_error(self.status, buf)
                };
                let _ = serde_json::to_writer(&mut *out, &body);
            }
        }
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if let Kind::Stream(s) = &mut self.kind
            && !s.ended
        {
            s.failed(&self.model, message, out);
        }
    }
}
