//! Protocol adaptors against a real gateway: Anthropic-format clients onto OpenAI-format
//! channels, OpenAI clients onto Anthropic channels, Anthropic passthrough, streaming,
//! tools, errors, failover and cache-token billing. The upstreams are loopback fakes that
//! check what they receive.

mod support;

use std::sync::Arc;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestGateway;
use support::fake_anthropic;
use support::fake_openai;

struct Setup {
    gw: TestGateway,
    admin: String,
    openai: Arc<fake_openai::Fake>,
    anthropic: Arc<fake_anthropic::Fake>,
}

/// Model `gpt-x` on an OpenAI channel, `claude-x` on an Anthropic channel.
async fn setup() -> Setup {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let openai = fake_openai::Fake::new();
    let oa = fake_openai::start(openai.clone()).await;
    gw.add_openai_channel(&admin, "oa", oa, "gpt-x", 0, 1).await;
    let anthropic = fake_anthropic::Fake::new();
    let an = fake_anthropic::start(anthropic.clone()).await;
    gw.add_channel(
        &admin,
        json!({"name": "an", "type": 14, "key": fake_anthropic::KEY, "base_url": format!("http://{an}"), "models": "claude-x"}),
    )
    .await;
    Setup {
        gw,
        admin,
        openai,
        anthropic,
    }
}

impl Setup {
    async fn messages(&self, body: Value) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let resp = self
            .gw
            .client
            .post(format!("{}/v1/messages", self.gw.base))
            .header("x-api-key", &self.admin)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    async fn chat_stream(&self, body: Value) -> Vec<Value> {
        let resp = self
            .gw
            .client
            .post(format!("{}/v1/chat/completions", self.gw.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut text = String::new();
        let mut s = resp.bytes_stream();
        while let Some(Ok(b)) = s.next().await {
            text.push_str(&String::from_utf8_lossy(&b));
        }
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
            assert_eq!(data["type"], name.as_str(), "event name matches its type");
            (name, data)
        })
        .collect()
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}})
}

#[tokio::test]
async fn messages_onto_an_openai_channel() {
    let t = setup().await;
    let (s, h, body) = t
        .messages(json!({"model": "gpt-x", "max_tokens": 64,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "temperature": 0.5, "stop_sequences": ["END"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(h.get("request-id").is_some());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt-x");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        v["content"][0],
        json!({"type": "text", "text": "Hello from fake"})
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["output_tokens"], 3);
    // What the OpenAI upstream received.
    let seen = t.openai.last().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(seen.body["max_tokens"], 64);
    assert_eq!(seen.body["stop"], json!(["END"]));
    assert_eq!(seen.body["temperature"], 0.5);
    let log = t.last_log().await;
    assert_eq!(log["endpoint"], "/v1/messages");
    assert_eq!(log["ingress"], "anthropic");
    assert_eq!(log["upstream"], "openai");
    assert_eq!(log["prompt_tokens"], 12);
    assert_eq!(log["completion_tokens"], 3);
}

#[tokio::test]
async fn messages_stream_onto_an_openai_channel_has_anthropics_event_sequence() {
    let t = setup().await;
    let (s, h, body) = t
        .messages(json!({"model": "gpt-x", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let ev = events(&body);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "Hello from fake");
    let delta = &ev[7].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert_eq!(delta["usage"]["input_tokens"], 12);
    // The gateway asked the upstream for usage, so billing is exact.
    assert_eq!(
        t.openai.last().unwrap().body["stream_options"]["include_usage"],
        true
    );
    let log = t.last_log().await;
    assert_eq!(log["prompt_tokens"], 12);
    assert_eq!(log["flags"], "unpriced", "usage read, not estimated: {log}");
}

#[tokio::test]
async fn messages_tool_use_round_trip_onto_an_openai_channel() {
    let t = setup().await;
    for stream in [false, true] {
        let (s, _, body) = t
            .messages(json!({"model": "gpt-x", "max_tokens": 64, "stream": stream, "tools": [weather_tool()],
                "tool_choice": {"type": "auto"},
                "messages": [{"role": "user", "content": "Weather in Paris?"}]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let seen = t.openai.last().unwrap().body;
        assert_eq!(seen["tools"][0]["type"], "function");
        assert_eq!(seen["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(
            seen["tools"][0]["function"]["parameters"]["required"],
            json!(["location"])
        );
        assert_eq!(seen["tool_choice"], "auto");
        let (id, input) = if stream {
            let ev = events(&body);
            let start = ev
                .iter()
                .find(|(n, d)| {
                    n == "content_block_start" && d["content_block"]["type"] == "tool_use"
                })
                .expect("a tool_use block");
            let index = start.1["index"].clone();
            let json: String = ev
                .iter()
                .filter(|(n, d)| n == "content_block_delta" && d["index"] == index)
                .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_string())
                .collect();
            let stop = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
            assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
            (
                start.1["content_block"]["id"].as_str().unwrap().to_string(),
                serde_json::from_str::<Value>(&json).unwrap(),
            )
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["stop_reason"], "tool_use");
            let block = &v["content"][0];
            assert_eq!(block["type"], "tool_use");
            assert_eq!(block["name"], "get_weather");
            (
                block["id"].as_str().unwrap().to_string(),
                block["input"].clone(),
            )
        };
        assert_eq!(id, "call_fake1");
        assert_eq!(input, json!({"location": "Paris"}));
        // The tool result goes back as a tool message.
        let (s, _, body) = t
            .messages(json!({"model": "gpt-x", "max_tokens": 64, "tools": [weather_tool()],
                "messages": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "get_weather", "input": input}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "18C"}]}]}
                ]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let msgs = t.openai.last().unwrap().body["messages"].clone();
        assert_eq!(msgs[1]["tool_calls"][0]["id"], "call_fake1");
        assert_eq!(
            msgs[1]["tool_calls"][0]["function"]["arguments"],
            json!({"location": "Paris"}).to_string()
        );
        assert_eq!(
            msgs[2],
            json!({"role": "tool", "tool_call_id": "call_fake1", "content": "18C"})
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["content"][0]["text"], "The tool said: 18C");
    }
}

#[tokio::test]
async fn chat_onto_an_anthropic_channel() {
    let t = setup().await;
    let (s, v) = t
        .gw
        .post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "claude-x", "temperature": 1.5, "stop": "END", "user": "u-1",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                             {"role": "assistant", "content": "Hello"}, {"role": "user", "content": [{"type": "text", "text": "Again"},
                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "chatcmpl-fake123");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from claude");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 20);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let seen = t.anthropic.last().unwrap();
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    let b = &seen.body;
    assert_eq!(b["system"], "Be brief.");
    assert_eq!(b["max_tokens"], 4096);
    assert_eq!(b["temperature"], 1.0, "clamped to Anthropic's range");
    assert_eq!(b["stop_sequences"], json!(["END"]));
    assert_eq!(b["metadata"]["user_id"], "u-1");
    assert_eq!(
        b["messages"][2]["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
    );
    let log = t.last_log().await;
    assert_eq!(log["ingress"], "openai");
    assert_eq!(log["upstream"], "anthropic");
    assert_eq!(log["prompt_tokens"], 20);
}

#[tokio::test]
async fn chat_stream_with_tools_onto_an_anthropic_channel() {
    let t = setup().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
    let chunks = t
        .chat_stream(
            json!({"model": "claude-x", "stream": true, "stream_options": {"include_usage": true},
            "tools": tools, "tool_choice": "required", "parallel_tool_calls": false,
            "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    let seen = t.anthropic.last().unwrap().body;
    assert_eq!(
        seen["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(seen["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "toolu_fake1");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 20);
    assert_eq!(last["usage"]["completion_tokens"], 5);
    // Without include_usage the client gets no usage chunk, yet the request is billed.
    let chunks = t
        .chat_stream(json!({"model": "claude-x", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "{chunks:?}"
    );
    let log = t.last_log().await;
    assert_eq!(log["completion_tokens"], 5);
    assert_eq!(log["flags"], "unpriced", "usage read, not estimated: {log}");
}

#[tokio::test]
async fn messages_pass_through_to_an_anthropic_channel_and_cache_tokens_are_priced() {
    let t = setup().await;
    let (s, v) =
        t.gw.put(
            "/console/api/prices/claude-x",
            Some(&t.admin),
            json!({"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for stream in [false, true] {
        let resp = t
            .gw
            .client
            .post(format!("{}/v1/messages", t.gw.base))
            .bearer_auth(&t.admin)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "prompt-caching-2024-07-31")
            .json(&json!({"model": "claude-x", "max_tokens": 32, "stream": stream,
                "system": [{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.text().await.unwrap();
        let seen = t.anthropic.last().unwrap();
        // Passed through: the client's blocks and cache markers reach the provider as sent.
        assert_eq!(
            seen.body["system"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(seen.headers["anthropic-beta"], "prompt-caching-2024-07-31");
        if stream {
            let ev = events(&body);
            assert_eq!(ev.first().unwrap().0, "message_start");
            assert_eq!(ev.last().unwrap().0, "message_stop");
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["usage"]["cache_read_input_tokens"], 100);
        }
        let log = t.last_log().await;
        assert_eq!(log["ingress"], "anthropic");
        assert_eq!(log["upstream"], "anthropic");
        // 20 uncached + 100 read + 50 written.
        assert_eq!(log["prompt_tokens"], 170);
        assert_eq!(log["cache_read_tokens"], 100);
        assert_eq!(log["cache_write_tokens"], 50);
        assert_eq!(log["completion_tokens"], 5);
        // 20×3 + 100×0.3 + 50×3.75 + 5×15 = 352.5 µ$ = 352,500 nano-dollars.
        assert_eq!(log["cost_nano"], 352_500, "{log}");
    }
}

#[tokio::test]
async fn errors_come_back_in_the_ingress_shape() {
    let t = setup().await;
    let cases = [
        ("{", "Malformed JSON"),
        ("[1]", "JSON object"),
        (r#"{"model":"gpt-x","messages":[]}"#, "max_tokens"),
        (
            r#"{"model":"gpt-x","max_tokens":5,"messages":[{"role":"tool","content":"x"}]}"#,
            "messages.0.role",
        ),
        (
            r#"{"model":"gpt-x","max_tokens":5,"messages":[{"role":"user","content":5}]}"#,
            "messages.0.content",
        ),
    ];
    for (body, needle) in cases {
        let resp =
            t.gw.client
                .post(format!("{}/v1/messages", t.gw.base))
                .header("x-api-key", &t.admin)
                .body(body)
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    let resp =
        t.gw.client
            .post(format!("{}/v1/messages", t.gw.base))
            .json(&json!({"model": "gpt-x", "max_tokens": 5, "messages": []}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    let (s, _, body) = t
        .messages(json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "not_found_error"
    );
    // An upstream's own 4xx, re-expressed: Anthropic → OpenAI shape …
    t.anthropic.set(fake_anthropic::Behavior::Status(400));
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "claude-x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert_eq!(v["error"]["code"], "invalid_request");
    // … and OpenAI → Anthropic shape.
    t.openai.set(fake_openai::Behavior::Status(400));
    let (s, _, body) = t
        .messages(json!({"model": "gpt-x", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["message"], "Invalid 'messages': empty array.");
}

#[tokio::test]
async fn an_overloaded_anthropic_channel_fails_over() {
    let t = setup().await;
    // A second channel for claude-x: OpenAI-compatible, lower priority.
    let oa2 = fake_openai::Fake::new();
    let addr = fake_openai::start(oa2.clone()).await;
    t.gw.add_openai_channel(&t.admin, "backup", addr, "claude-x", -1, 1)
        .await;
    t.anthropic.set(fake_anthropic::Behavior::Status(529));
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "claude-x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from fake");
    assert_eq!(t.anthropic.hits(), 1);
    let log = t.last_log().await;
    assert!(log["failover"].as_str().unwrap().ends_with(":529"), "{log}");
    assert_eq!(log["upstream"], "openai");
}

#[tokio::test]
async fn a_cut_anthropic_stream_ends_in_an_error_chunk_and_is_billed() {
    let t = setup().await;
    t.anthropic.set(fake_anthropic::Behavior::CutAfter(5));
    let resp = t
        .gw
        .client
        .post(format!("{}/v1/chat/completions", t.gw.base))
        .bearer_auth(&t.admin)
        .json(&json!({"model": "claude-x", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains("\"error\""), "{text}");
    assert!(text.contains("Hello"), "{text}");
    let log = t.last_log().await;
    assert_eq!(log["flags"], "upstream_cut,unpriced", "{log}");
    assert_eq!(
        log["prompt_tokens"], 20,
        "input tokens known from message_start"
    );
}

#[tokio::test]
async fn a_non_json_upstream_error_reaches_the_client_in_the_documented_shape() {
    let t = setup().await;
    // An upstream behind a proxy that answers with an HTML page.
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                [("content-type", "text/html")],
                "<html><body><h1>413 Request Entity Too Large</h1></body></html>",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    t.gw.add_openai_channel(&t.admin, "proxy", addr, "html-model", 0, 1)
        .await;
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "html-model", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("413 Request Entity Too Large")
    );
    let (s, _, body) = t
        .messages(json!({"model": "html-model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "request_too_large", "{v}");
}

#[tokio::test]
async fn azure_deployments_with_api_key_and_version() {
    let t = setup().await;
    let fake = fake_openai::Fake::new();
    let addr = fake_openai::start(fake.clone()).await;
    // Resource endpoint: the deployment comes from model mapping.
    t.gw.add_channel(
        &t.admin,
        json!({"name": "az", "type": 3, "key": fake_openai::AZURE_KEY, "base_url": format!("http://{addr}"),
               "models": "gpt-4o-az", "model_mapping": {"gpt-4o-az": "prod-4o"}}),
    )
    .await;
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "gpt-4o-az", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from fake");
    let seen = fake.last().unwrap();
    assert_eq!(seen.path, "/openai/deployments/prod-4o/chat/completions");
    assert!(seen.authorization.is_none());
    // Anthropic clients reach Azure too, streaming.
    let (s, _, body) = t
        .messages(json!({"model": "gpt-4o-az", "max_tokens": 8, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(events(&body).last().unwrap().0, "message_stop");
    let log = t.last_log().await;
    assert_eq!(log["upstream"], "azure");
    assert_eq!(log["prompt_tokens"], 12);
    // A full deployment URL with its own api-version.
    t.gw.add_channel(
        &t.admin,
        json!({"name": "az2", "type": 3, "key": fake_openai::AZURE_KEY,
               "base_url": format!("http://{addr}/openai/deployments/dep-2?api-version=2025-01-01-preview"), "models": "dep-model"}),
    )
    .await;
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "dep-model", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        fake.last().unwrap().path,
        "/openai/deployments/dep-2/chat/completions"
    );
}

async fn gemini_setup(t: &Setup) -> Arc<support::fake_gemini::Fake> {
    let fake = support::fake_gemini::Fake::new();
    let addr = support::fake_gemini::start(fake.clone()).await;
    t.gw.add_channel(
        &t.admin,
        json!({"name": "gem", "type": 24, "key": support::fake_gemini::KEY, "base_url": format!("http://{addr}"), "models": "gemini-x"}),
    )
    .await;
    fake
}

#[tokio::test]
async fn chat_onto_a_gemini_channel() {
    let t = setup().await;
    let gem = gemini_setup(&t).await;
    let (s, v) = t
        .gw
        .post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "gemini-x", "max_tokens": 50, "temperature": 0.3, "stop": ["X"],
                "response_format": {"type": "json_object"},
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from gemini");
    assert_eq!(v["choices"][0]["message"]["reasoning_content"], "thinking…");
    assert_eq!(v["usage"]["prompt_tokens"], 30);
    assert_eq!(
        v["usage"]["completion_tokens"], 10,
        "thoughts are billed as output"
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 10);
    let seen = gem.last().unwrap();
    assert_eq!(seen.path, "/v1beta/models/gemini-x:generateContent");
    assert_eq!(
        seen.body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        seen.body["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})
    );
    let cfg = &seen.body["generationConfig"];
    assert_eq!(cfg["maxOutputTokens"], 50);
    assert_eq!(cfg["stopSequences"], json!(["X"]));
    assert_eq!(cfg["responseMimeType"], "application/json");
    let log = t.last_log().await;
    assert_eq!(log["upstream"], "gemini");
    assert_eq!(log["cache_read_tokens"], 10);
}

#[tokio::test]
async fn streams_and_tools_onto_a_gemini_channel() {
    let t = setup().await;
    let gem = gemini_setup(&t).await;
    let chunks = t
        .chat_stream(
            json!({"model": "gemini-x", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(gem.last().unwrap().query, "alt=sse");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from gemini");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 10);
    // Tools: schemas cleaned of keywords Gemini rejects; the call comes back with an id,
    // and its result goes back as a functionResponse naming the function.
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "strict": true,
        "parameters": {"type": "object", "additionalProperties": false, "properties": {"location": {"type": "string"}}}}}]);
    let (s, v) = t
        .gw
        .post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "gemini-x", "tools": tools, "tool_choice": "required", "messages": [{"role": "user", "content": "Weather?"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        gem.last().unwrap().body["toolConfig"]["functionCallingConfig"]["mode"],
        "ANY"
    );
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(call["function"]["name"], "get_weather");
    let id = call["id"].as_str().unwrap();
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "gemini-x", "tools": tools, "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": id, "content": "{\"temp\": 18}"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The tool said: {\"temp\":18}"
    );
    // An Anthropic client on a Gemini channel, streaming: two conversions in a row.
    let (s, _, body) = t
        .messages(json!({"model": "gemini-x", "max_tokens": 20, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ev = events(&body);
    let text: String = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from gemini");
    assert_eq!(ev.last().unwrap().0, "message_stop");
    let delta = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["usage"]["output_tokens"], 10);
}

#[tokio::test]
async fn gemini_errors_map_and_fail_over() {
    let t = setup().await;
    let gem = gemini_setup(&t).await;
    gem.set(support::fake_gemini::Behavior::Status(400));
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "gemini-x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    let (s, _, body) = t
        .messages(json!({"model": "gemini-x", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    // 429 RESOURCE_EXHAUSTED fails over to another channel serving the model.
    let oa = fake_openai::Fake::new();
    let addr = fake_openai::start(oa).await;
    t.gw.add_openai_channel(&t.admin, "backup", addr, "gemini-x", -1, 1)
        .await;
    gem.set(support::fake_gemini::Behavior::Status(429));
    let (s, v) =
        t.gw.post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "gemini-x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        t.last_log().await["failover"]
            .as_str()
            .unwrap()
            .ends_with(":429")
    );
}

impl Setup {
    async fn responses(&self, body: Value) -> (StatusCode, String) {
        let resp = self
            .gw
            .client
            .post(format!("{}/v1/responses", self.gw.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = resp.status();
        (s, resp.text().await.unwrap())
    }
}

#[tokio::test]
async fn responses_onto_every_channel_type() {
    let t = setup().await;
    gemini_setup(&t).await;
    for (model, text, input_tokens) in [
        ("gpt-x", "Hello from fake", 12),
        ("claude-x", "Hello from claude", 20),
        ("gemini-x", "Hello from gemini", 30),
    ] {
        let (s, body) = t
            .responses(json!({"model": model, "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 40}))
            .await;
        assert_eq!(s, StatusCode::OK, "{model}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"][0]["type"], "message");
        assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
        assert_eq!(v["output"][0]["content"][0]["text"], text, "{model}");
        assert_eq!(v["usage"]["input_tokens"], input_tokens, "{model}");
        let log = t.last_log().await;
        assert_eq!(log["ingress"], "responses");
        assert_eq!(log["endpoint"], "/v1/responses");
        // Streaming: the Responses event sequence, numbered.
        let (s, body) = t
            .responses(json!({"model": model, "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}], "stream": true}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let ev = events(&body);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..4],
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added"
            ],
            "{model}"
        );
        assert_eq!(
            names[names.len() - 4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ],
            "{model}"
        );
        for (i, (_, d)) in ev.iter().enumerate() {
            assert_eq!(d["sequence_number"], i as u64);
        }
        let deltas: String = ev
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(deltas, text);
        let done = &ev.last().unwrap().1["response"];
        assert_eq!(done["output"][0]["content"][0]["text"], text);
        assert_eq!(done["usage"]["input_tokens"], input_tokens);
    }
}

#[tokio::test]
async fn responses_function_calls_round_trip() {
    let t = setup().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]);
    let (s, body) = t
        .responses(
            json!({"model": "gpt-x", "input": "Weather in Paris?", "tools": tools, "stream": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ev = events(&body);
    let added = ev
        .iter()
        .find(|(n, d)| n == "response.output_item.added" && d["item"]["type"] == "function_call")
        .expect("a function_call item");
    assert_eq!(added.1["item"]["name"], "get_weather");
    assert_eq!(added.1["item"]["call_id"], "call_fake1");
    let args_done = ev
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args_done.1["arguments"].as_str().unwrap()).unwrap(),
        json!({"location": "Paris"})
    );
    let seen = t.openai.last().unwrap().body;
    assert_eq!(seen["tools"][0]["function"]["name"], "get_weather");
    // The call and its output go back as input items.
    let (s, body) = t
        .responses(json!({"model": "gpt-x", "tools": tools, "input": [
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "call_fake1", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_fake1", "output": "18C"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let msgs = t.openai.last().unwrap().body["messages"].clone();
    assert_eq!(msgs[1]["tool_calls"][0]["id"], "call_fake1");
    assert_eq!(
        msgs[2],
        json!({"role": "tool", "tool_call_id": "call_fake1", "content": "18C"})
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "The tool said: 18C");
    // Errors keep OpenAI's shape on this ingress.
    let (s, body) = t
        .responses(json!({"model": "gpt-x", "input": "x", "previous_response_id": "resp_1"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("previous_response_id")
    );
}

/// Codex CLI's tools: a `namespace` of functions is offered flattened (`ns__name`) and the
/// call comes back under its own name and namespace, streamed or not; hosted tools the
/// channel cannot run are left out and named in `x-burncloud-dropped-tools`.
#[tokio::test]
async fn responses_namespace_tools_flattened_and_hosted_tools_dropped() {
    let t = setup().await;
    let tools = json!([
        {"type": "namespace", "name": "agents", "description": "Sub-agents", "tools": [
            {"type": "function", "name": "spawn", "description": "Spawn one", "strict": false,
             "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]},
        {"type": "web_search", "external_web_access": false},
        {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]);
    for stream in [false, true] {
        let resp = t
            .gw
            .client
            .post(format!("{}/v1/responses", t.gw.base))
            .bearer_auth(&t.admin)
            .json(&json!({"model": "gpt-x", "stream": stream, "tools": tools, "store": false,
                "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"},
                "prompt_cache_key": "k", "client_metadata": {"a": "b"}, "parallel_tool_calls": true,
                "input": [{"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
                          {"role": "user", "content": "Spawn an agent"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-burncloud-dropped-tools"], "web_search");
        let body = resp.text().await.unwrap();
        let call = if stream {
            body.split("\n\n")
                .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
                .map(|d| serde_json::from_str::<Value>(d).unwrap())
                .find(|e| e["type"] == "response.output_item.done")
                .unwrap()["item"]
                .clone()
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            v["output"][0].clone()
        };
        assert_eq!(call["type"], "function_call", "{body}");
        assert_eq!(call["name"], "spawn");
        assert_eq!(call["namespace"], "agents");
        let seen = t.openai.last().unwrap().body;
        let names: Vec<&str> = seen["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["agents__spawn", "get_weather"]);
        assert_eq!(
            seen["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        for k in [
            "store",
            "include",
            "prompt_cache_key",
            "client_metadata",
            "reasoning",
        ] {
            assert!(seen.get(k).is_none(), "{k} sent upstream");
        }
    }
    // Converted for an Anthropic channel too: the hosted tool is named as dropped there.
    let resp =
        t.gw.client
            .post(format!("{}/v1/responses", t.gw.base))
            .bearer_auth(&t.admin)
            .json(&json!({"model": "claude-x", "tools": tools, "input": "Spawn an agent"}))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-burncloud-dropped-tools"], "web_search");
    let v: Value = resp.json().await.unwrap();
    let call = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(
        (&call["name"], &call["namespace"]),
        (&json!("spawn"), &json!("agents"))
    );
    // The call and its result go back with the namespace: flattened again.
    let (s, body) = t
        .responses(json!({"model": "gpt-x", "tools": tools, "input": [
            {"role": "user", "content": "Spawn an agent"},
            {"type": "function_call", "call_id": "c1", "name": "spawn", "namespace": "agents", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "spawned"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let seen = t.openai.last().unwrap().body;
    assert_eq!(
        seen["messages"][1]["tool_calls"][0]["function"]["name"],
        "agents__spawn"
    );
}

/// Codex's free-form tools (`custom`, e.g. apply_patch) are offered as functions taking
/// `{"input": string}` and their calls come back as `custom_tool_call`s, streamed or not;
/// a custom call and its output in the history go back as a function call and result.
#[tokio::test]
async fn responses_custom_tools_round_trip() {
    let t = setup().await;
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Patch files",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]);
    for stream in [false, true] {
        let resp = t
            .gw
            .client
            .post(format!("{}/v1/responses", t.gw.base))
            .bearer_auth(&t.admin)
            .json(&json!({"model": "gpt-x", "stream": stream, "tools": tools, "input": "Fix it"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get("x-burncloud-dropped-tools").is_none());
        let body = resp.text().await.unwrap();
        let item = if stream {
            let evs = events(&body);
            let done = evs
                .iter()
                .find(|(n, _)| n == "response.custom_tool_call_input.done")
                .unwrap_or_else(|| panic!("{body}"));
            assert_eq!(done.1["input"], fake_openai::TOOL_ARGS);
            evs.iter()
                .find(|(n, _)| n == "response.output_item.done")
                .unwrap()
                .1["item"]
                .clone()
        } else {
            serde_json::from_str::<Value>(&body).unwrap()["output"][0].clone()
        };
        assert_eq!(item["type"], "custom_tool_call", "{body}");
        assert_eq!(item["name"], "apply_patch");
        // The fake's arguments have no "input": the raw text is the input.
        assert_eq!(item["input"], fake_openai::TOOL_ARGS);
        let seen = t.openai.last().unwrap().body;
        assert_eq!(seen["tools"][0]["function"]["name"], "apply_patch");
        assert_eq!(
            seen["tools"][0]["function"]["parameters"]["required"],
            json!(["input"])
        );
    }
    let (s, body) = t
        .responses(json!({"model": "gpt-x", "tools": tools, "input": [
            {"role": "user", "content": "Fix it"},
            {"type": "custom_tool_call", "call_id": "c9", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "c9", "output": "Done!"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let msgs = t.openai.last().unwrap().body["messages"].clone();
    assert_eq!(
        msgs[1]["tool_calls"][0]["function"]["arguments"],
        r#"{"input":"*** Begin Patch"}"#
    );
    assert_eq!(msgs[2]["content"], "Done!");
}

/// Claude Code's request shape onto an OpenAI channel: a system message inside `messages`,
/// thinking, output_config, context_management, metadata, cache_control on tools, a
/// document, and a server tool (dropped, named in the header).
#[tokio::test]
async fn messages_from_current_claude_code_onto_an_openai_channel() {
    let t = setup().await;
    let resp = t
        .gw
        .client
        .post(format!("{}/v1/messages?beta=true", t.gw.base))
        .bearer_auth(&t.admin)
        .header("anthropic-beta", "claude-code-20250219,context-management-2025-06-27")
        .json(&json!({"model": "gpt-x", "max_tokens": 32000, "stream": false,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc text"}}]},
                {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "Hello"}]},
                {"role": "user", "content": "Again"}],
            "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"},
                       "cache_control": {"type": "ephemeral"}, "defer_loading": true},
                      {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            "tool_choice": {"type": "none"},
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "output_config": {"effort": "max"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "metadata": {"user_id": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["x-burncloud-dropped-tools"],
        "web_search_20250305"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Hello from fake");
    let seen = t.openai.last().unwrap().body;
    assert_eq!(
        seen["messages"][0],
        json!({"role": "system", "content": "You are Claude Code.\n\n# Environment"})
    );
    assert_eq!(seen["messages"][1]["content"], "Hi\ndoc text");
    assert_eq!(
        seen["messages"][2],
        json!({"role": "assistant", "content": "Hello"})
    );
    assert_eq!(seen["reasoning_effort"], "high");
    assert_eq!(seen["tools"].as_array().unwrap().len(), 1);
    for k in [
        "thinking",
        "output_config",
        "context_management",
        "metadata",
    ] {
        assert!(seen.get(k).is_none(), "{k} sent upstream");
    }
}

async fn bedrock_setup(t: &Setup, key: &str) -> Arc<fake_anthropic::Fake> {
    let fake = fake_anthropic::Fake::new();
    let addr = fake_anthropic::start(fake.clone()).await;
    t.gw.add_channel(
        &t.admin,
        json!({"name": "bdrk", "type": 33, "key": key, "base_url": format!("http://{addr}"),
               "models": "claude-bedrock", "model_mapping": {"claude-bedrock": "anthropic.claude-3-5-sonnet-20241022-v2:0"}}),
    )
    .await;
    fake
}

#[tokio::test]
async fn bedrock_claude_signed_with_sigv4() {
    let t = setup().await;
    let fake = bedrock_setup(&t, fake_anthropic::BEDROCK_KEY).await;
    let (s, v) = t
        .gw
        .post(
            "/v1/chat/completions",
            Some(&t.admin),
            json!({"model": "claude-bedrock", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from bedrock");
    assert_eq!(v["usage"]["prompt_tokens"], 20);
    let seen = fake.last().unwrap();
    assert!(
        seen.headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDFAKEBEDROCK0001/")
    );
    assert_eq!(seen.body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(seen.body["system"], "Be brief.");
    // Streaming with tools: event-stream frames → Anthropic events → OpenAI chunks.
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
    let chunks = t
        .chat_stream(json!({"model": "claude-bedrock", "stream": true, "stream_options": {"include_usage": true},
            "tools": tools, "messages": [{"role": "user", "content": "Weather?"}]}))
        .await;
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 5);
    let log = t.last_log().await;
    assert_eq!(log["upstream"], "bedrock");
    assert_eq!(log["completion_tokens"], 5);
    // Anthropic clients: the native body goes to Bedrock, events come back as SSE.
    let (s, _, body) = t
        .messages(
            json!({"model": "claude-bedrock", "max_tokens": 16, "stream": true,
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ev = events(&body);
    assert_eq!(ev.first().unwrap().0, "message_start");
    assert_eq!(ev.last().unwrap().0, "message_stop");
    assert!(fake.last().unwrap().body.get("model").is_none());
    let log = t.last_log().await;
    assert_eq!(log["cache_write_tokens"], 50);
    // Responses clients too.
    let (s, body) = t
        .responses(json!({"model": "claude-bedrock", "input": "Hi"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "Hello from bedrock");
}

#[tokio::test]
async fn bedrock_errors_exceptions_and_bad_signatures() {
    let t = setup().await;
    let fake = bedrock_setup(&t, fake_anthropic::BEDROCK_KEY).await;
    // An exception frame mid-stream ends the converted stream with an error.
    fake.set(fake_anthropic::Behavior::ExceptionAfter(4));
    let resp = t
        .gw
        .client
        .post(format!("{}/v1/chat/completions", t.gw.base))
        .bearer_auth(&t.admin)
        .json(&json!({"model": "claude-bedrock", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    assert!(text.contains("Too many tokens"), "{text}");
    // ThrottlingException (429) is answered in the client's shape (no other channel).
    fake.set(fake_anthropic::Behavior::Status(429));
    let (s, _, body) = t
        .messages(json!({"model": "claude-bedrock", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // A wrong secret: the fake recomputes the signature and refuses it.
    let t2 = setup().await;
    let wrong = fake_anthropic::BEDROCK_KEY.replace("fake/secret", "fake/SECRET");
    bedrock_setup(&t2, &wrong).await;
    let (s, v) = t2
        .gw
        .post(
            "/v1/chat/completions",
            Some(&t2.admin),
            json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature we calculated does not match"),
        "{v}"
    );
    // A malformed key is refused when the channel is saved.
    let (s, v) =
        t.gw.post(
            "/console/api/channel",
            Some(&t.admin),
            json!({"name": "bad", "type": 33, "key": "only-a-key", "models": "m"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// An upstream that serves the Responses API itself gets the client's body as sent (model
/// mapped): previous_response_id and hosted tools reach it; usage comes from the Response
/// (streamed: `response.completed`); nothing is dropped.
#[tokio::test]
async fn responses_pass_through_to_an_upstream_that_serves_them() {
    let fake = fake_openai::Fake::new();
    let addr = fake_openai::start(fake.clone()).await;
    let base = format!("http://{addr}");
    let upstream = base.clone();
    let gw = TestGateway::start_with(move |c| c.relay.responses_upstreams.push(upstream)).await;
    let admin = gw.register("admin").await;
    gw.add_channel(
        &admin,
        json!({"name": "oai", "type": 1, "key": "sk-up", "base_url": base, "models": "gpt-r",
               "model_mapping": {"gpt-r": "gpt-5"}}),
    )
    .await;
    let req = json!({"model": "gpt-r", "input": "Hi", "previous_response_id": "resp_prev",
        "tools": [{"type": "web_search"}], "include": ["reasoning.encrypted_content"], "store": true});
    for stream in [false, true] {
        let mut body = req.clone();
        body["stream"] = json!(stream);
        let resp = gw
            .client
            .post(format!("{}/v1/responses", gw.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get("x-burncloud-dropped-tools").is_none());
        let text = resp.text().await.unwrap();
        assert!(text.contains("resp_prev"), "{text}");
        let seen = fake.last().unwrap();
        assert_eq!(seen.path, "/v1/responses");
        assert_eq!(seen.body["model"], "gpt-5");
        assert_eq!(seen.body["previous_response_id"], "resp_prev");
        assert_eq!(seen.body["tools"], json!([{"type": "web_search"}]));
        assert_eq!(seen.authorization.as_deref(), Some("Bearer sk-up"));
    }
    gw.flush().await;
    let (_, v) = gw.get("/console/api/logs?page_size=2", Some(&admin)).await;
    let logs = v["data"]["items"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 2);
    for rec in logs {
        assert_eq!(rec["upstream"], "openai-responses");
        assert_eq!(rec["ingress"], "responses");
        assert_eq!(rec["prompt_tokens"], 21);
        assert_eq!(rec["completion_tokens"], 4);
        assert_eq!(rec["cache_read_tokens"], 5);
    }
}

#[tokio::test]
async fn count_tokens_asks_an_anthropic_upstream_and_estimates_elsewhere() {
    let t = setup().await;
    let count = |body: Value, key: Option<String>| {
        let req =
            t.gw.client
                .post(format!("{}/v1/messages/count_tokens?beta=true", t.gw.base))
                .header("anthropic-version", "2023-06-01")
                .header("anthropic-beta", "token-counting-2024-11-01")
                .json(&body);
        let req = match key {
            Some(k) => req.header("x-api-key", k),
            None => req,
        };
        async move {
            let resp = req.send().await.unwrap();
            let s = resp.status();
            let estimated = resp.headers().contains_key("x-burncloud-estimated");
            (s, estimated, resp.json::<Value>().await.unwrap())
        }
    };
    let admin = Some(t.admin.clone());
    let msgs = json!([{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Count me"}]);
    // An Anthropic channel: the upstream's own count, with the key and headers it needs.
    let (s, est, v) = count(
        json!({"model": "claude-x", "system": "Be brief.", "messages": msgs}),
        admin.clone(),
    )
    .await;
    assert_eq!((s, est), (StatusCode::OK, false), "{v}");
    assert_eq!(v["input_tokens"], 43, "{v}");
    let seen = t.anthropic.last().unwrap();
    assert_eq!(seen.body["model"], "claude-x");
    assert_eq!(seen.headers["anthropic-beta"], "token-counting-2024-11-01");
    assert_eq!(seen.headers["x-api-key"], fake_anthropic::KEY);
    // Another channel type: an estimate, said so.
    let (s, est, v) = count(json!({"model": "gpt-x", "messages": msgs}), admin.clone()).await;
    assert_eq!((s, est), (StatusCode::OK, true), "{v}");
    let n = v["input_tokens"].as_i64().unwrap();
    assert!((5..40).contains(&n), "{v}");
    // The upstream failing: the estimate answers.
    t.anthropic.set(fake_anthropic::Behavior::Status(529));
    let (s, est, v) = count(
        json!({"model": "claude-x", "messages": msgs}),
        admin.clone(),
    )
    .await;
    assert_eq!((s, est), (StatusCode::OK, true), "{v}");
    t.anthropic.set(fake_anthropic::Behavior::Ok);
    // Errors in Anthropic's shape: unknown model, no key, bad body.
    let (s, _, v) = count(json!({"model": "nope", "messages": msgs}), admin.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error", "{v}");
    let (s, _, v) = count(json!({"model": "claude-x", "messages": msgs}), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["type"], "authentication_error", "{v}");
    let (s, _, v) = count(json!({"model": "claude-x"}), admin).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    // Free: nothing is logged or billed.
    t.gw.flush().await;
    let (_, logs) = t.gw.get("/console/api/logs", Some(&t.admin)).await;
    assert_eq!(logs["data"]["total"], 0, "{logs}");
}

/// The channel Test (the consoles' and the CLI's) on the first channel of type `ty`.
async fn channel_test(
    t: &Setup,
    ty: i64,
) -> Result<gateway_core::console::channels::Probe, gateway_core::console::channels::TestFailure> {
    let (_, list) = t.gw.get("/console/api/channel", Some(&t.admin)).await;
    let id = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == ty)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let admin = gateway_core::http::Session::for_token(t.gw.state(), &t.admin)
        .await
        .unwrap();
    gateway_core::console::channels::test_channel(t.gw.state(), &admin, id).await
}

/// The channel Test on a Gemini channel sends Gemini's own request with the channel's key.
#[tokio::test]
async fn the_channel_test_speaks_gemini() {
    let t = setup().await;
    let fake = gemini_setup(&t).await;
    let probe = channel_test(&t, 24).await.expect("the probe succeeds");
    assert_eq!(probe.model, "gemini-x");
    let seen = fake.last().expect("Gemini was called");
    assert!(
        seen.path.ends_with("/models/gemini-x:generateContent"),
        "{}",
        seen.path
    );
    assert_eq!(seen.headers["x-goog-api-key"], support::fake_gemini::KEY);
    assert_eq!(seen.body["contents"][0]["parts"][0]["text"], "ping");
}

/// The channel Test on Azure (deployment URL, `api-key`) and on Bedrock (SigV4, checked by
/// the fake; Bedrock's Messages body) goes out in each provider's own request.
#[tokio::test]
async fn the_channel_test_speaks_azure_and_bedrock() {
    let t = setup().await;
    let fake = fake_openai::Fake::new();
    let addr = fake_openai::start(fake.clone()).await;
    t.gw.add_channel(
        &t.admin,
        json!({"name": "az", "type": 3, "key": fake_openai::AZURE_KEY, "base_url": format!("http://{addr}"),
               "models": "gpt-4o-az", "model_mapping": {"gpt-4o-az": "prod-4o"}}),
    )
    .await;
    let probe = channel_test(&t, 3).await.expect("the Azure probe succeeds");
    assert_eq!(probe.model, "prod-4o");
    let seen = fake.last().expect("Azure was called");
    assert_eq!(seen.path, "/openai/deployments/prod-4o/chat/completions");
    assert!(
        seen.authorization.is_none(),
        "Azure takes api-key, not a bearer"
    );

    let bedrock = bedrock_setup(&t, fake_anthropic::BEDROCK_KEY).await;
    let probe = channel_test(&t, 33)
        .await
        .expect("the Bedrock probe succeeds");
    assert_eq!(probe.model, "anthropic.claude-3-5-sonnet-20241022-v2:0");
    let seen = bedrock.last().expect("Bedrock was called");
    assert_eq!(seen.body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(seen.body["max_tokens"], 1);
    assert!(seen.body.get("model").is_none(), "{}", seen.body);
}

/// `GET /console/api/channel/{id}/models`: each provider's own model list, read with the
/// channel's key (OpenAI's and Anthropic's ids, Gemini's content models without
/// `models/`); a provider without one, and a refused key, answer in the API's shape.
#[tokio::test]
async fn each_provider_lists_its_models_for_the_channel() {
    let t = setup().await;
    gemini_setup(&t).await;
    let (_, list) = t.gw.get("/console/api/channel", Some(&t.admin)).await;
    let id_of = |ty: i64| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == ty)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let models = |id: i64| {
        let gw = &t.gw;
        let admin = t.admin.clone();
        async move {
            gw.get(&format!("/console/api/channel/{id}/models"), Some(&admin))
                .await
        }
    };
    let (s, v) = models(id_of(1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!(["gpt-4o-mini", "gpt-x", "text-embedding-3-small"])
    );
    let (s, v) = models(id_of(14)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!([
            "claude-sonnet-4-5-20250929",
            "claude-haiku-4-5-20251001",
            "claude-opus-4-1-20250805"
        ])
    );
    let (s, v) = models(id_of(24)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], json!(["gemini-2.5-flash", "gemini-x"]));

    // Bedrock lists its models on another AWS service: the person types them.
    let bedrock =
        t.gw.add_channel(
            &t.admin,
            json!({"name": "br", "type": 33, "key": fake_anthropic::BEDROCK_KEY,
                   "base_url": "http://127.0.0.1:9", "models": "anthropic.claude-x"}),
        )
        .await;
    let (s, v) = models(bedrock).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("has no model list"),
        "{v}"
    );

    // A refused key: the upstream's answer, as a bad gateway.
    let (s, v) =
        t.gw.put(
            &format!("/console/api/channel/{}", id_of(14)),
            Some(&t.admin),
            json!({"key": "sk-ant-wrong"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = models(id_of(14)).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("401") && m.contains("invalid x-api-key"), "{m}");

    // Admins only.
    let user = t.gw.register("someone").await;
    let (s, _) =
        t.gw.get(
            &format!("/console/api/channel/{}/models", id_of(1)),
            Some(&user),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
