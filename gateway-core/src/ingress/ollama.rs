//! Ollama's API ⇄ OpenAI chat / embeddings, so tools that speak only Ollama (Open WebUI,
//! editor plugins, the `ollama` client libraries) reach every channel.
//!
//! Requests: [`chat_to_openai`] (`/api/chat`), [`generate_to_openai`] (`/api/generate`),
//! [`embed_to_openai`] (`/api/embed`). Answers: the [`ToOllama`] stage turns an OpenAI
//! answer (JSON or SSE) into Ollama's JSON or NDJSON stream (`message`/`response` chunks,
//! then a last object with `done: true`, `done_reason` and the token counts). Ollama
//! streams unless the request says `"stream": false`.
//! Format: <https://github.com/ollama/ollama/blob/main/docs/api.md>.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::vocab::Usage;
use crate::wire::conversion::{hoist_system, reasoning_effort};
use crate::wire::{ConvertResult, Stage, sse};

/// The Ollama version `/api/version` reports (the API level this ingress follows).
pub const VERSION: &str = "0.12.0";
pub use crate::wire::OllamaKind as Kind;

/// A model name as Ollama clients write it: `name:latest` is `name`.
pub fn model_name(m: &str) -> &str {
    m.strip_suffix(":latest").unwrap_or(m)
}

fn model_of(obj: &Map<String, Value>) -> ConvertResult<String> {
    obj.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(|m| model_name(m).to_string())
        .ok_or_else(|| "model is required".to_string())
}

/// Whether the request streams (Ollama's default is yes).
fn streams(obj: &Map<String, Value>) -> ConvertResult<bool> {
    match obj.get("stream") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err("stream: must be a boolean".into()),
    }
}

fn image_part(img: &Value, what: &str) -> ConvertResult<Value> {
    let data = img
        .as_str()
        .ok_or_else(|| format!("{what}: images must be base64 strings"))?;
    let url = if data.starts_with("data:") {
        data.to_string()
    } else {
        let mime = match data.as_bytes().first() {
            Some(b'i') => "image/png",
            Some(b'R') => "image/gif",
            Some(b'U') => "image/webp",
            _ => "image/jpeg",
        };
        format!("data:{mime};base64,{data}")
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// User content with Ollama's `images` (base64) as image parts.
fn user_content(text: &str, images: Option<&Value>, what: &str) -> ConvertResult<Value> {
    let imgs = match images {
        None | Some(Value::Null) => return Ok(json!(text)),
        Some(Value::Array(a)) if a.is_empty() => return Ok(json!(text)),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(format!("{what}.images: expected an array")),
    };
    let mut parts = vec![json!({"type": "text", "text": text})];
    for (k, img) in imgs.iter().enumerate() {
        parts.push(image_part(img, &format!("{what}.images.{k}"))?);
    }
    Ok(Value::Array(parts))
}

/// Ollama `options` and `format` onto the chat request.
fn apply_options(obj: &Map<String, Value>, out: &mut Map<String, Value>) -> ConvertResult<()> {
    if let Some(opts) = obj.get("options").filter(|v| !v.is_null()) {
        let opts = opts.as_object().ok_or("options: expected an object")?;
        for (from, to) in [
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("seed", "seed"),
            ("presence_penalty", "presence_penalty"),
            ("frequency_penalty", "frequency_penalty"),
        ] {
            if let Some(v) = opts.get(from).filter(|v| !v.is_null()) {
                if !v.is_number() {
                    return Err(format!("options.{from}: must be a number"));
                }
                out.insert(to.into(), v.clone());
            }
        }
        if let Some(n) = opts.get("num_predict").and_then(Value::as_i64)
            && n > 0
        {
            out.insert("max_tokens".into(), json!(n));
        }
        match opts.get("stop") {
            Some(Value::String(s)) => {
                out.insert("stop".into(), json!([s]));
            }
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                out.insert("stop".into(), json!(a));
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err("options.stop: must be a list of strings".into()),
        }
        // num_ctx, top_k, repeat_penalty, ...: the serving model's own settings.
    }
    match obj.get("format") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "json" => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(Value::String(s)) if s.is_empty() => {}
        Some(schema @ Value::Object(_)) => {
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
            );
        }
        Some(_) => return Err("format: must be \"json\" or a JSON schema".into()),
    }
    // `"low"`/`"medium"`/`"high"`: an effort; `true`/`false`: the model's own default.
    if let Some(e) = obj
        .get("think")
        .and_then(Value::as_str)
        .and_then(reasoning_effort)
    {
        out.insert("reasoning_effort".into(), json!(e));
    }
    Ok(())
}

fn stream_fields(stream: bool, out: &mut Map<String, Value>) {
    if stream {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    } else {
        out.insert("stream".into(), json!(false));
    }
}

/// Convert an `/api/chat` request into a chat completions request.
pub fn chat_to_openai(req: &Value) -> ConvertResult<Value> {
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = model_of(obj)?;
    let msgs = match obj.get("messages") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("messages: expected an array".into()),
    };
    if msgs.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    let mut messages = Vec::with_capacity(msgs.len());
    // Ollama's tool results carry no call id: they answer the open calls in order.
    let mut open_calls: Vec<(String, String)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let what = format!("messages.{i}");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{what}.role: field required"))?;
        let text = match m.get("content") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(format!("{what}.content: must be a string")),
        };
        match role {
            "system" | "developer" => messages.push(json!({"role": "system", "content": text})),
            "user" => messages.push(
                json!({"role": "user", "content": user_content(text, m.get("images"), &what)?}),
            ),
            "assistant" => {
                let mut msg = json!({"role": "assistant", "content": text});
                let mut calls = Vec::new();
                for (k, tc) in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let f = &tc["function"];
                    let name = f["name"].as_str().ok_or_else(|| {
                        format!("{what}.tool_calls.{k}.function.name: field required")
                    })?;
                    let id = tc["id"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("call_{i}_{k}"));
                    let args = match &f["arguments"] {
                        Value::String(s) => s.clone(),
                        Value::Null => "{}".into(),
                        v => v.to_string(),
                    };
                    open_calls.push((id.clone(), name.to_string()));
                    calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}));
                }
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                    if text.is_empty() {
                        msg["content"] = Value::Null;
                    }
                }
                messages.push(msg);
            }
            "tool" => {
                let name = m
                    .get("tool_name")
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str);
                let pos = match (m.get("tool_call_id").and_then(Value::as_str), name) {
                    (Some(id), _) => open_calls.iter().position(|(c, _)| c == id),
                    (None, Some(n)) => open_calls.iter().position(|(_, cn)| cn == n),
                    (None, None) => (!open_calls.is_empty()).then_some(0),
                };
                let id = match pos {
                    Some(p) => open_calls.remove(p).0,
                    None => {
                        return Err(format!(
                            "{what}: a tool result must follow an assistant message calling that tool"
                        ));
                    }
                };
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            other => return Err(format!("{what}.role: '{other}' is not a valid role")),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(hoist_system(messages)));
    stream_fields(streams(obj)?, &mut out);
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        let list = tools.as_array().ok_or("tools: expected an array")?;
        let mut converted = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            let f = t
                .get("function")
                .ok_or_else(|| format!("tools.{i}.function: field required"))?;
            if !f.get("name").is_some_and(Value::is_string) {
                return Err(format!("tools.{i}.function.name: field required"));
            }
            converted.push(json!({"type": "function", "function": f}));
        }
        if !converted.is_empty() {
            out.insert("tools".into(), Value::Array(converted));
        }
    }
    apply_options(obj, &mut out)?;
    Ok(Value::Object(out))
}

/// Convert an `/api/generate` request into a chat completions request (`system`, `prompt`
/// and `images` become the messages; `suffix`, `template`, `raw` and `context` are the
/// serving model's business and ignored). `Ok(None)`: an empty prompt, which Ollama
/// answers by loading the model (`done_reason: "load"`), nothing to send upstream.
pub fn generate_to_openai(req: &Value) -> ConvertResult<Option<Value>> {
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = model_of(obj)?;
    let prompt = match obj.get("prompt") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("prompt: must be a string".into()),
    };
    if prompt.is_empty() && obj.get("images").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let mut messages = Vec::new();
    if let Some(sys) = obj
        .get("system")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        messages.push(json!({"role": "system", "content": sys}));
    }
    messages.push(json!({"role": "user", "content": user_content(prompt, obj.get("images"), "")?}));
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    stream_fields(streams(obj)?, &mut out);
    apply_options(obj, &mut out)?;
    Ok(Some(Value::Object(out)))
}

/// Convert an `/api/embed` request into an embeddings request.
pub fn embed_to_openai(req: &Value) -> ConvertResult<Value> {
    let obj = req
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = model_of(obj)?;
    let input = match obj.get("input") {
        Some(Value::String(s)) => json!([s]),
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => json!(a),
        _ => return Err("input: a string or a non-empty list of strings is required".into()),
    };
    let mut out = json!({"model": model, "input": input});
    if let Some(d) = obj.get("dimensions").and_then(Value::as_u64) {
        out["dimensions"] = json!(d);
    }
    Ok(out)
}

/// Ollama's error body.
pub fn error_body(message: &str) -> Value {
    json!({"error": message})
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

/// The answer to an `/api/generate` with an empty prompt: the model is "loaded".
pub fn load_answer(model: &str) -> Value {
    json!({"model": model, "created_at": now_rfc3339(), "response": "", "done": true, "done_reason": "load"})
}

fn done_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "length",
        _ => "stop",
    }
}

/// A tool call as Ollama writes it (arguments as an object).
fn ollama_call(name: &str, args: &str, index: usize) -> Value {
    let arguments = serde_json::from_str::<Value>(args)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    json!({"function": {"index": index, "name": name, "arguments": arguments}})
}

/// A partially streamed tool call.
#[derive(Default)]
struct Call {
    name: String,
    args: String,
}

/// The stage that turns OpenAI answers into Ollama's.
pub struct ToOllama {
    kind: Kind,
    stream: bool,
    status: u16,
    model: String,
    t0: Instant,
    splitter: sse::Splitter,
    buf: Vec<u8>,
    calls: Vec<Call>,
    finish: Option<String>,
    ended: bool,
    usage: Option<Usage>,
    content_events: i64,
}

impl ToOllama {
    pub fn new(kind: Kind, stream: bool, status: u16, model: &str) -> Self {
        ToOllama {
            kind,
            stream: stream && (200..300).contains(&status),
            status,
            model: model.to_string(),
            t0: Instant::now(),
            splitter: sse::Splitter::default(),
            buf: Vec::new(),
            calls: Vec::new(),
            finish: None,
            ended: false,
            usage: None,
            content_events: 0,
        }
    }

    fn line(out: &mut Vec<u8>, v: &Value) {
        let _ = serde_json::to_writer(&mut *out, v);
        out.push(b'\n');
    }

    /// A chunk of text (or thinking) in this endpoint's field.
    fn piece(&self, text: &str, thinking: bool) -> Value {
        let mut v = json!({"model": self.model, "created_at": now_rfc3339(), "done": false});
        match self.kind {
            Kind::Generate if thinking => v["thinking"] = json!(text),
            Kind::Generate => v["response"] = json!(text),
            _ => {
                let field = if thinking { "thinking" } else { "content" };
                v["message"] = json!({"role": "assistant", "content": ""});
                v["message"][field] = json!(text);
            }
        }
        v
    }

    /// The last object: `done`, `done_reason`, counts and durations.
    fn done(&self, text: Option<&str>, calls: Vec<Value>) -> Value {
        let u = self.usage.unwrap_or_default();
        let nanos = self.t0.elapsed().as_nanos() as u64;
        let mut v = json!({
            "model": self.model, "created_at": now_rfc3339(), "done": true,
            "done_reason": done_reason(self.finish.as_deref()),
            "total_duration": nanos, "load_duration": 0,
            "prompt_eval_count": u.prompt, "prompt_eval_duration": 0,
            "eval_count": u.completion, "eval_duration": nanos,
        });
        match self.kind {
            Kind::Generate => v["response"] = json!(text.unwrap_or_default()),
            _ => {
                v["message"] = json!({"role": "assistant", "content": text.unwrap_or_default()});
                if !calls.is_empty() {
                    v["message"]["tool_calls"] = Value::Array(calls);
                }
            }
        }
        v
    }

    fn flush_calls(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, c)| ollama_call(&c.name, &c.args, i))
            .collect()
    }

    fn end_stream(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let calls = self.flush_calls();
        if !calls.is_empty() {
            // Ollama sends tool calls whole, in a message of their own before the end.
            let mut v = self.piece("", false);
            v["message"]["tool_calls"] = Value::Array(calls);
            Self::line(out, &v);
        }
        let done = self.done(None, Vec::new());
        Self::line(out, &done);
    }

    fn json_answer(&mut self) -> Value {
        if !(200..300).contains(&self.status) {
            let e = crate::wire::errors::openai_error(self.status, &self.buf);
            let m = e["error"]["message"].as_str().unwrap_or("upstream error");
            return error_body(m);
        }
        let Ok(v) = serde_json::from_slice::<Value>(&self.buf) else {
            return error_body("the upstream's answer was not valid JSON");
        };
        self.usage = crate::vocab::usage_from_value(&v);
        if self.kind == Kind::Embed {
            let embeddings: Vec<Value> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["embedding"].clone())
                .collect();
            let u = self.usage.unwrap_or_default();
            return json!({"model": self.model, "embeddings": embeddings,
                "total_duration": self.t0.elapsed().as_nanos() as u64, "load_duration": 0,
                "prompt_eval_count": u.prompt});
        }
        let choice = &v["choices"][0];
        self.finish = choice["finish_reason"].as_str().map(str::to_string);
        let msg = &choice["message"];
        let text = msg["content"].as_str().unwrap_or_default().to_string();
        let calls: Vec<Value> = msg["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, tc)| {
                ollama_call(
                    tc["function"]["name"].as_str().unwrap_or_default(),
                    tc["function"]["arguments"].as_str().unwrap_or_default(),
                    i,
                )
            })
            .collect();
        let mut done = self.done(Some(&text), calls);
        if let Some(t) = msg["reasoning_content"].as_str().filter(|t| !t.is_empty()) {
            if self.kind == Kind::Generate {
                done["thinking"] = json!(t);
            } else {
                done["message"]["thinking"] = json!(t);
            }
        }
        done
    }
}

impl Stage for ToOllama {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if !self.stream {
            if self.buf.len() + chunk.len() <= 64 * 1024 * 1024 {
                self.buf.extend_from_slice(chunk);
            }
            return;
        }
        let mut events = Vec::new();
        self.splitter.feed(chunk, &mut events);
        for e in events {
            if self.ended {
                break;
            }
            if e.data == b"[DONE]" {
                self.end_stream(out);
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&e.data) else {
                continue;
            };
            if let Some(u) = crate::vocab::usage_from_value(&v) {
                self.usage = Some(u);
            }
            if let Some(m) = v.get("error") {
                let m = m["message"].as_str().unwrap_or("upstream error");
                Self::line(out, &error_body(m));
                self.ended = true;
                continue;
            }
            let Some(choice) = v["choices"].get(0) else {
                continue;
            };
            let delta = &choice["delta"];
            if let Some(t) = delta["reasoning_content"]
                .as_str()
                .filter(|t| !t.is_empty())
            {
                self.content_events += 1;
                let p = self.piece(t, true);
                Self::line(out, &p);
            }
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.content_events += 1;
                let p = self.piece(t, false);
                Self::line(out, &p);
            }
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                self.content_events += 1;
                let i = tc["index"].as_u64().unwrap_or(0) as usize;
                if i >= self.calls.len() {
                    self.calls.resize_with(i + 1, Call::default);
                }
                let call = &mut self.calls[i];
                if let Some(n) = tc["function"]["name"].as_str() {
                    call.name.push_str(n);
                }
                if let Some(a) = tc["function"]["arguments"].as_str() {
                    call.args.push_str(a);
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                self.finish = Some(f.to_string());
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.stream {
            self.end_stream(out);
            return;
        }
        let v = self.json_answer();
        let _ = serde_json::to_writer(&mut *out, &v);
        if self.kind != Kind::Embed && (200..300).contains(&self.status) {
            // Ollama ends even a single JSON answer with a newline.
            out.push(b'\n');
        }
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.stream && !self.ended {
            self.ended = true;
            Self::line(out, &error_body(message));
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn content_events(&self) -> i64 {
        self.content_events
    }

    fn content_type(&self) -> &'static str {
        if self.stream {
            "application/x-ndjson"
        } else {
            "application/json; charset=utf-8"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_with_tools_images_and_options() {
        let req = json!({"model": "m:latest", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "look", "images": ["iVBORw0KGgo="]},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "sunny", "tool_name": "get"}],
            "options": {"temperature": 0.2, "num_predict": 7, "stop": ["x"], "num_ctx": 4096},
            "format": "json"});
        let c = chat_to_openai(&req).unwrap();
        assert_eq!(c["model"], "m");
        assert_eq!(c["stream"], true);
        assert_eq!(c["max_tokens"], 7);
        assert_eq!(c["stop"], json!(["x"]));
        assert_eq!(c["response_format"]["type"], "json_object");
        let m = c["messages"].as_array().unwrap();
        assert_eq!(m[0]["role"], "system");
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgo="
        );
        assert_eq!(m[2]["tool_calls"][0]["id"], "call_2_0");
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Paris"}"#
        );
        assert_eq!(m[3]["tool_call_id"], "call_2_0");
        let bad = json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]});
        assert!(chat_to_openai(&bad).unwrap_err().contains("tool result"));
    }

    #[test]
    fn generate_and_embed() {
        let g = generate_to_openai(
            &json!({"model": "m", "prompt": "hi", "system": "s", "stream": false}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(g["messages"][0]["content"], "s");
        assert_eq!(g["messages"][1]["content"], "hi");
        assert_eq!(g["stream"], false);
        assert!(
            generate_to_openai(&json!({"model": "m"}))
                .unwrap()
                .is_none()
        );
        let e = embed_to_openai(&json!({"model": "e", "input": "a"})).unwrap();
        assert_eq!(e["input"], json!(["a"]));
        assert!(embed_to_openai(&json!({"model": "e", "input": []})).is_err());
    }

    #[test]
    fn a_stream_becomes_ndjson_with_a_done_line() {
        let mut s = ToOllama::new(Kind::Chat, true, 200, "m");
        let mut out = Vec::new();
        let sse = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"He\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
            "data: [DONE]\n\n"
        );
        s.feed(sse.as_bytes(), &mut out);
        s.finish(&mut out);
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["message"]["content"], "He");
        assert_eq!(
            lines[1]["message"]["tool_calls"][0]["function"]["name"],
            "f"
        );
        assert_eq!(
            lines[1]["message"]["tool_calls"][0]["function"]["arguments"],
            json!({"a": 1})
        );
        assert_eq!(lines[2]["done"], true);
        assert_eq!(lines[2]["done_reason"], "stop");
        assert_eq!(lines[2]["prompt_eval_count"], 5);
        assert_eq!(lines[2]["eval_count"], 2);
        assert_eq!(s.usage().unwrap().completion, 2);
    }
}
