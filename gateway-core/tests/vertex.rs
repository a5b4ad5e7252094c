//! Google Vertex AI channels (type 41) against a real gateway: a service-account key, the
//! JWT-bearer token exchange (verified by a fake token endpoint), tokens cached and
//! refreshed, Gemini and Claude models on their Vertex routes through
//! `/v1/chat/completions`, `/v1/messages`, `/v1/responses` (and Ollama's `/api/chat`):
//! chat, streams, tools, errors, failover, usage billed and logged.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestGateway;
use support::fake_anthropic;
use support::fake_gemini;
use support::fake_openai;
use support::fake_vertex::{self, PROJECT, REGION, TestKey, TokenBehavior};

const GEMINI: &str = "gemini-2.5-flash";
const CLAUDE: &str = "claude-sonnet-4@20250514";

struct Setup {
    gw: TestGateway,
    admin: String,
    fake: Arc<fake_vertex::Fake>,
    channel: i64,
}

/// One Vertex channel serving `gemini-v` (→ Gemini) and `claude-v` (→ Claude), its key
/// signed by `key`.
async fn setup_with(key: &TestKey) -> Setup {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let fake = fake_vertex::Fake::new();
    let addr = fake_vertex::start(fake.clone()).await;
    let channel = gw
        .add_channel(
            &admin,
            json!({"name": "vertex", "type": 41, "key": fake.key_json(key), "base_url": format!("http://{addr}"),
                   "models": "gemini-v,claude-v", "model_mapping": {"gemini-v": GEMINI, "claude-v": CLAUDE}}),
        )
        .await;
    Setup {
        gw,
        admin,
        fake,
        channel,
    }
}

async fn setup() -> Setup {
    setup_with(fake_vertex::test_key()).await
}

impl Setup {
    async fn send(&self, path: &str, body: Value) -> (StatusCode, String) {
        let resp = self
            .gw
            .client
            .post(format!("{}{path}", self.gw.base))
            .bearer_auth(&self.admin)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let mut text = String::new();
        let mut s = resp.bytes_stream();
        while let Some(Ok(b)) = s.next().await {
            text.push_str(&String::from_utf8_lossy(&b));
        }
        (status, text)
    }

    async fn json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, text) = self.send(path, body).await;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (s, v)
    }

    async fn chat(&self, body: Value) -> (StatusCode, Value) {
        self.json("/v1/chat/completions", body).await
    }

    /// A streamed chat: the chunks, after checking the stream ends in `[DONE]`.
    async fn chat_stream(&self, body: Value) -> Vec<Value> {
        let (s, text) = self.send("/v1/chat/completions", body).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        text.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    async fn last_log(&self) -> Value {
        self.gw.flush().await;
        let (_, v) = self
            .gw
            .get("/console/api/logs?page_size=1", Some(&self.admin))
            .await;
        v["data"]["items"][0].clone()
    }

    async fn price(&self, model: &str, price: Value) {
        let (s, v) = self
            .gw
            .put(
                &format!("/console/api/prices/{model}"),
                Some(&self.admin),
                price,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// A lower-priority OpenAI-compatible channel serving both models.
    async fn add_backup(&self) {
        let addr = fake_openai::start(fake_openai::Fake::new()).await;
        self.gw
            .add_openai_channel(&self.admin, "backup", addr, "gemini-v,claude-v", -1, 1)
            .await;
    }
}

/// SSE text → (event name, data) pairs.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

fn text_of(ev: &[(String, Value)], name: &str, field: &str) -> String {
    ev.iter()
        .filter(|(n, _)| n == name)
        .filter_map(|(_, d)| d.pointer(field).and_then(Value::as_str))
        .collect()
}

fn weather() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "strict": true,
        "parameters": {"type": "object", "additionalProperties": false, "properties": {"location": {"type": "string"}}}}}])
}

#[tokio::test]
async fn gemini_on_vertex_chat_stream_tools_and_usage() {
    let t = setup().await;
    t.price(
        "gemini-v",
        json!({"input": 1.0, "output": 2.0, "cache_read": 0.1}),
    )
    .await;
    let (s, v) = t
        .chat(json!({"model": "gemini-v", "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from gemini");
    assert_eq!(v["usage"]["prompt_tokens"], 30);
    assert_eq!(v["usage"]["completion_tokens"], 10);
    // The Vertex route for a Google model, with the access token and Gemini's body.
    let seen = t.fake.last().unwrap();
    assert_eq!(
        (
            seen.project.as_str(),
            seen.region.as_str(),
            seen.publisher.as_str(),
            seen.model.as_str(),
            seen.method.as_str()
        ),
        (PROJECT, REGION, "google", GEMINI, "generateContent")
    );
    assert_eq!(seen.headers["authorization"], "Bearer ya29.fake-1");
    assert_eq!(
        seen.body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(seen.body["generationConfig"]["maxOutputTokens"], 50);
    // Logged on the channel and billed: (30 − 10 cached) × 1 + 10 × 0.1 + 10 × 2 = 41 µ$.
    let log = t.last_log().await;
    assert_eq!(log["channel_id"], t.channel);
    assert_eq!(log["upstream"], "gemini");
    assert_eq!(log["prompt_tokens"], 30);
    assert_eq!(log["completion_tokens"], 10);
    assert_eq!(log["cache_read_tokens"], 10);
    assert_eq!(log["cost_nano"], 41_000, "{log}");
    // Streaming: streamGenerateContent?alt=sse, usage in the last chunk.
    let chunks = t
        .chat_stream(
            json!({"model": "gemini-v", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    let seen = t.fake.last().unwrap();
    assert_eq!(seen.method, "streamGenerateContent");
    assert_eq!(seen.query, "alt=sse");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from gemini");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 10);
    assert_eq!(t.last_log().await["completion_tokens"], 10);
    // Tools: a cleaned schema goes out, the call comes back, its result goes back.
    let (s, v) = t
        .chat(
            json!({"model": "gemini-v", "tools": weather(), "tool_choice": "required",
            "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seen = t.fake.last().unwrap();
    assert_eq!(
        seen.body["toolConfig"]["functionCallingConfig"]["mode"],
        "ANY"
    );
    assert!(
        seen.body["tools"][0]["functionDeclarations"][0]["parameters"]
            .get("additionalProperties")
            .is_none()
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "get_weather");
    let (s, v) = t
        .chat(
            json!({"model": "gemini-v", "tools": weather(), "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp\": 18}"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The tool said: {\"temp\":18}"
    );
    // Every request above rode on the one token.
    assert_eq!(t.fake.tokens(), 1);
}

#[tokio::test]
async fn gemini_on_vertex_through_messages_responses_and_ollama() {
    let t = setup().await;
    // Anthropic clients: two conversions, whole and streamed.
    let (s, v) = t
        .json(
            "/v1/messages",
            json!({"model": "gemini-v", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hello from gemini");
    assert_eq!(v["usage"]["output_tokens"], 10);
    let (s, body) = t
        .send(
            "/v1/messages",
            json!({"model": "gemini-v", "max_tokens": 20, "stream": true, "tools": [{"name": "get_weather",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
                "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ev = events(&body);
    assert_eq!(ev.first().unwrap().0, "message_start");
    assert_eq!(ev.last().unwrap().0, "message_stop");
    let tool = ev
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(tool.1["content_block"]["name"], "get_weather");
    assert_eq!(t.fake.last().unwrap().method, "streamGenerateContent");
    let log = t.last_log().await;
    assert_eq!(log["ingress"], "anthropic");
    assert_eq!(log["prompt_tokens"], 30);
    // Responses clients, whole and streamed.
    let (s, v) = t
        .json(
            "/v1/responses",
            json!({"model": "gemini-v", "instructions": "Be brief.", "input": "Hi"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello from gemini");
    assert_eq!(v["usage"]["input_tokens"], 30);
    let (s, body) = t
        .send(
            "/v1/responses",
            json!({"model": "gemini-v", "input": "Hi", "stream": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ev = events(&body);
    assert_eq!(
        text_of(&ev, "response.output_text.delta", "/delta"),
        "Hello from gemini"
    );
    let done = &ev.last().unwrap();
    assert_eq!(done.0, "response.completed");
    assert_eq!(done.1["response"]["usage"]["output_tokens"], 10);
    assert_eq!(t.last_log().await["ingress"], "responses");
    // Ollama's API too.
    let (s, v) = t
        .json(
            "/api/chat",
            json!({"model": "gemini-v", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["content"], "Hello from gemini");
}

#[tokio::test]
async fn claude_on_vertex_chat_stream_tools_and_usage() {
    let t = setup().await;
    t.price("claude-v", json!({"input": 3.0, "output": 15.0}))
        .await;
    let (s, v) = t
        .chat(json!({"model": "claude-v", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from claude");
    assert_eq!(v["usage"]["prompt_tokens"], 20);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    // rawPredict on Anthropic's route: no model in the body, Vertex's anthropic_version.
    let seen = t.fake.last().unwrap();
    assert_eq!(
        (
            seen.project.as_str(),
            seen.region.as_str(),
            seen.publisher.as_str(),
            seen.model.as_str(),
            seen.method.as_str()
        ),
        (PROJECT, REGION, "anthropic", CLAUDE, "rawPredict")
    );
    assert_eq!(seen.headers["authorization"], "Bearer ya29.fake-1");
    assert!(seen.body.get("model").is_none(), "{}", seen.body);
    assert!(seen.body.get("stream").is_none(), "{}", seen.body);
    assert_eq!(seen.body["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(seen.body["system"], "Be brief.");
    // 20 × 3 + 5 × 15 = 135 µ$.
    let log = t.last_log().await;
    assert_eq!(log["channel_id"], t.channel);
    assert_eq!(log["upstream"], "anthropic");
    assert_eq!(log["cost_nano"], 135_000, "{log}");
    // Streamed with tools: streamRawPredict, Anthropic's events → OpenAI chunks.
    let chunks = t
        .chat_stream(
            json!({"model": "claude-v", "stream": true, "stream_options": {"include_usage": true},
            "tools": weather(), "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    let seen = t.fake.last().unwrap();
    assert_eq!(seen.method, "streamRawPredict");
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["tools"][0]["name"], "get_weather");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);
    let log = t.last_log().await;
    assert_eq!(log["completion_tokens"], 5);
    assert_eq!(log["cost_nano"], 135_000);
    // The tool's result goes back as a tool_result block.
    let (s, v) = t
        .chat(json!({"model": "claude-v", "tools": weather(), "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18 C"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sent = &t.fake.last().unwrap().body["messages"];
    assert_eq!(sent[1]["content"][0]["type"], "tool_use");
    assert_eq!(sent[2]["content"][0]["type"], "tool_result");
    assert_eq!(sent[2]["content"][0]["tool_use_id"], "toolu_1");
    assert_eq!(t.fake.tokens(), 1);
}

#[tokio::test]
async fn claude_on_vertex_through_messages_and_responses() {
    let t = setup().await;
    t.price(
        "claude-v",
        json!({"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}),
    )
    .await;
    for stream in [false, true] {
        // The client's own body goes to Vertex: blocks and cache markers kept, the model
        // in the URL, Vertex's anthropic_version.
        let (s, body) = t
            .send(
                "/v1/messages",
                json!({"model": "claude-v", "max_tokens": 32, "stream": stream,
                "system": [{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": "Hi"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let seen = t.fake.last().unwrap();
        assert_eq!(
            seen.method,
            if stream {
                "streamRawPredict"
            } else {
                "rawPredict"
            }
        );
        assert!(seen.body.get("model").is_none());
        assert_eq!(seen.body["anthropic_version"], "vertex-2023-10-16");
        assert_eq!(
            seen.body["system"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        if stream {
            let ev = events(&body);
            assert_eq!(ev.first().unwrap().0, "message_start");
            assert_eq!(
                text_of(&ev, "content_block_delta", "/delta/text"),
                "Hello from claude"
            );
            assert_eq!(ev.last().unwrap().0, "message_stop");
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["content"][0]["text"], "Hello from claude");
            assert_eq!(v["usage"]["cache_read_input_tokens"], 100);
        }
        let log = t.last_log().await;
        assert_eq!(log["ingress"], "anthropic");
        assert_eq!(log["upstream"], "anthropic");
        assert_eq!(log["prompt_tokens"], 170);
        assert_eq!(log["cache_read_tokens"], 100);
        assert_eq!(log["cache_write_tokens"], 50);
        assert_eq!(log["completion_tokens"], 5);
        // 20×3 + 100×0.3 + 50×3.75 + 5×15 = 352.5 µ$.
        assert_eq!(log["cost_nano"], 352_500, "{log}");
    }
    // Tools from an Anthropic client.
    let (s, v) = t
        .json(
            "/v1/messages",
            json!({"model": "claude-v", "max_tokens": 32, "tools": [{"name": "get_weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][1]["input"], json!({"location": "Paris"}));
    // Responses clients, whole and streamed.
    let (s, v) = t
        .json(
            "/v1/responses",
            json!({"model": "claude-v", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 40}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello from claude");
    assert_eq!(v["usage"]["input_tokens"], 20);
    assert_eq!(t.fake.last().unwrap().body["max_tokens"], 40);
    let (s, body) = t
        .send(
            "/v1/responses",
            json!({"model": "claude-v", "input": "Hi", "stream": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ev = events(&body);
    assert_eq!(
        text_of(&ev, "response.output_text.delta", "/delta"),
        "Hello from claude"
    );
    assert_eq!(ev.last().unwrap().0, "response.completed");
    assert_eq!(t.last_log().await["completion_tokens"], 5);
    assert_eq!(t.fake.tokens(), 1);
}

#[tokio::test]
async fn tokens_are_cached_refreshed_before_expiry_and_renewed_when_refused() {
    let t = setup().await;
    let chat = || json!({"model": "gemini-v", "messages": [{"role": "user", "content": "Hi"}]});
    // Eight requests at once: one token request, the others wait for it.
    let answers = futures_util::future::join_all((0..8).map(|_| t.chat(chat()))).await;
    for (s, v) in &answers {
        assert_eq!(*s, StatusCode::OK, "{v}");
    }
    assert_eq!(
        t.fake.tokens(),
        1,
        "refused: {:?}",
        t.fake.refused.lock().unwrap()
    );
    for _ in 0..4 {
        assert_eq!(t.chat(chat()).await.0, StatusCode::OK);
    }
    assert_eq!(t.fake.tokens(), 1);
    let auths: Vec<String> = t
        .fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.headers["authorization"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(auths.len(), 12);
    assert!(auths.iter().all(|a| a == "Bearer ya29.fake-1"), "{auths:?}");
    // Vertex refuses the token (revoked): a failed attempt, the channel stays enabled, and
    // the next request gets a new token.
    t.fake.revoke();
    let (s, v) = t.chat(chat()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(":401"),
        "{v}"
    );
    *t.fake.expires_in.lock().unwrap() = 62;
    let (s, v) = t.chat(chat()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(t.fake.tokens(), 2);
    assert_eq!(
        t.fake.last().unwrap().headers["authorization"],
        "Bearer ya29.fake-2"
    );
    let (_, ch) =
        t.gw.get(
            &format!("/console/api/channel/{}", t.channel),
            Some(&t.admin),
        )
        .await;
    assert_eq!(ch["data"]["status"], 1, "{ch}");
    // That token lives 62 s: kept for the 2 s before the last minute, then refreshed.
    assert_eq!(t.chat(chat()).await.0, StatusCode::OK);
    assert_eq!(t.fake.tokens(), 2);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(t.chat(chat()).await.0, StatusCode::OK);
    assert_eq!(t.fake.tokens(), 3);
    assert_eq!(
        t.fake.last().unwrap().headers["authorization"],
        "Bearer ya29.fake-3"
    );
}

#[tokio::test]
async fn token_endpoint_failures_are_failed_attempts_that_fail_over() {
    // A key the fake does not know: its signature is refused, Vertex is never called.
    let t = setup_with(fake_vertex::other_key()).await;
    let chat = || json!({"model": "claude-v", "messages": [{"role": "user", "content": "Hi"}]});
    let (s, v) = t.chat(chat()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{}:vertex_token: token endpoint answered HTTP 400 invalid_grant: Invalid JWT Signature.",
            t.channel
        )),
        "{message}"
    );
    assert_eq!(t.fake.hits(), 0);
    assert_eq!(
        *t.fake.refused.lock().unwrap(),
        vec!["Invalid JWT Signature.".to_string()]
    );
    // Another channel serving the model takes over; the log keeps the reason.
    t.add_backup().await;
    let (s, v) = t.chat(chat()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from fake");
    let log = t.last_log().await;
    assert!(
        log["failover"]
            .as_str()
            .unwrap()
            .contains(":vertex_token: token endpoint answered HTTP 400"),
        "{log}"
    );
    // The token endpoint down (5xx) and a redirect (never followed): failed attempts too.
    let t = setup().await;
    *t.fake.token_behavior.lock().unwrap() = TokenBehavior::Status(503);
    let (s, v) = t.chat(chat()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token endpoint answered HTTP 503"),
        "{v}"
    );
    *t.fake.token_behavior.lock().unwrap() = TokenBehavior::Redirect;
    let before = t.fake.tokens();
    let (s, v) = t.chat(chat()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token endpoint answered HTTP 307"),
        "{v}"
    );
    assert_eq!(t.fake.tokens(), before + 1, "the redirect was not followed");
    assert_eq!(t.fake.hits(), 0);
    // Back up: served, one new token.
    *t.fake.token_behavior.lock().unwrap() = TokenBehavior::Ok;
    assert_eq!(t.chat(chat()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn vertex_errors_reach_each_ingress_in_its_shape_and_fail_over() {
    let t = setup().await;
    // Vertex's own 404 (Google's shape) for a Claude model …
    *t.fake.vertex_error.lock().unwrap() = Some(404);
    let claude = json!({"model": "claude-v", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    let (s, v) = t.chat(claude.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Publisher Model")
    );
    let (s, v) = t.json("/v1/messages", claude.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "not_found_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Publisher Model")
    );
    let (s, v) = t
        .json("/v1/responses", json!({"model": "claude-v", "input": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    // … and for a Gemini model.
    let gemini = json!({"model": "gemini-v", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    let (s, v) = t.chat(gemini.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    let (s, v) = t.json("/v1/messages", gemini.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["type"], "not_found_error", "{v}");
    *t.fake.vertex_error.lock().unwrap() = None;
    // The models' own errors: Claude's (Anthropic's shape) pass to Anthropic clients as
    // sent; Gemini's INVALID_ARGUMENT maps to invalid_request.
    t.fake.anthropic.set(fake_anthropic::Behavior::Status(400));
    let (s, v) = t.json("/v1/messages", claude.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Overloaded"}})
    );
    let (s, v) = t.chat(claude.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    t.fake.anthropic.set(fake_anthropic::Behavior::Ok);
    t.fake.gemini.set(fake_gemini::Behavior::Status(400));
    let (s, v) = t.chat(gemini.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    let (s, v) = t.json("/v1/messages", gemini.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    t.fake.gemini.set(fake_gemini::Behavior::Ok);
    // Quota (429 RESOURCE_EXHAUSTED) and unavailability (503) fail over.
    *t.fake.vertex_error.lock().unwrap() = Some(429);
    let (s, v) = t.chat(claude.clone()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    t.add_backup().await;
    for (code, model) in [(429, &claude), (503, &gemini)] {
        *t.fake.vertex_error.lock().unwrap() = Some(code);
        let (s, v) = t.chat(model.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello from fake");
        let log = t.last_log().await;
        assert_eq!(log["failover"], format!("{}:{code}", t.channel), "{log}");
    }
}

#[tokio::test]
async fn vertex_keys_are_checked_when_the_channel_is_saved() {
    let t = setup().await;
    let good: Value = serde_json::from_str(&t.fake.key_json(fake_vertex::test_key())).unwrap();
    let without = |field: &str| {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    };
    let mut bad_pem = good.clone();
    bad_pem["private_key"] =
        json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    for (key, needle) in [
        ("AIzaSy-an-api-key-not-a-key-file".to_string(), "not JSON"),
        (without("project_id"), "\"project_id\""),
        (without("client_email"), "\"client_email\""),
        (without("private_key"), "\"private_key\""),
        (
            bad_pem.to_string(),
            "\"private_key\" is not an RSA private key",
        ),
    ] {
        let (s, v) =
            t.gw.post(
                "/console/api/channel",
                Some(&t.admin),
                json!({"name": "bad", "type": 41, "key": key, "models": "m"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle}: {v}");
        assert!(message.contains("service account"), "{message}");
    }
    // A good key without a base URL: us-central1's endpoint; the key is never shown back.
    let id =
        t.gw.add_channel(
            &t.admin,
            json!({"name": "default-region", "type": 41, "key": good.to_string(), "models": "m"}),
        )
        .await;
    let (_, v) =
        t.gw.get(&format!("/console/api/channel/{id}"), Some(&t.admin))
            .await;
    assert_eq!(
        v["data"]["base_url"],
        "https://us-central1-aiplatform.googleapis.com"
    );
    assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");
}

/// The channel Test (the desktop's and the CLI's) on a Vertex channel: the upstream builds
/// the 1-token request in Vertex's format, a fresh access token goes with it, and an
/// upstream refusal comes back as the status it was.
#[tokio::test]
async fn the_channel_test_asks_vertex_itself() {
    use gateway_core::console::channels::test_channel;
    let s = setup().await;
    let admin = gateway_core::http::Session::for_token(s.gw.state(), &s.admin)
        .await
        .unwrap();
    let probe = test_channel(s.gw.state(), &admin, s.channel)
        .await
        .expect("the probe succeeds");
    assert_eq!(probe.model, GEMINI);
    assert_eq!(s.fake.tokens(), 1, "one token fetched for the probe");
    let seen = s.fake.last().expect("Vertex was called");
    assert_eq!(
        (
            seen.publisher.as_str(),
            seen.model.as_str(),
            seen.method.as_str()
        ),
        ("google", GEMINI, "generateContent")
    );
    let auth = seen.headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer "), "{auth}");
    assert_eq!(seen.body["contents"][0]["parts"][0]["text"], "ping");
    assert_eq!(seen.body["generationConfig"]["maxOutputTokens"], 1);

    *s.fake.vertex_error.lock().unwrap() = Some(403);
    let failed = test_channel(s.gw.state(), &admin, s.channel)
        .await
        .expect_err("Vertex refused");
    assert!(
        failed.message.starts_with("the upstream answered 403"),
        "{}",
        failed.message
    );
    assert!(
        failed.fix.is_some_and(|f| f.contains("key")),
        "{:?}",
        failed.fix
    );
}
