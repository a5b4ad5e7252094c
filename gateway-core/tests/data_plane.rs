//! Data plane against a real gateway and fake upstreams on loopback.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestGateway;
use support::fake_openai::{self, Behavior, Fake};

async fn setup() -> (TestGateway, String, Arc<Fake>, std::net::SocketAddr) {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let fake = Fake::new();
    let addr = fake_openai::start(fake.clone()).await;
    (gw, admin, fake, addr)
}

async fn set_price(gw: &TestGateway, admin: &str, model: &str, input: f64, output: f64) {
    let (s, v) = gw
        .put(
            &format!("/console/api/prices/{model}"),
            Some(admin),
            json!({"input": input, "output": output}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 10})
}

async fn logs(gw: &TestGateway, admin: &str) -> Vec<Value> {
    gw.flush().await;
    let (_, v) = gw.get("/console/api/logs?page_size=500", Some(admin)).await;
    v["data"]["items"].as_array().unwrap().clone()
}

/// A free loopback port with nothing listening.
fn dead_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

#[tokio::test]
async fn seed_000_flow_bills_exactly() {
    let (gw, admin, fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "my-openai-channel", addr, "gpt-4o-mini", 0, 1)
        .await;
    set_price(&gw, &admin, "gpt-4o-mini", 0.15, 0.60).await;
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&admin), chat("gpt-4o-mini"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from fake");
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    // The upstream saw the channel's key, not the caller's JWT.
    assert_eq!(
        fake.last().unwrap().authorization.unwrap(),
        "Bearer sk-upstream-my-openai-channel-0123456789"
    );
    gw.flush().await;
    let (s, v) = gw.get("/api/billing/summary", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    // 12 × $0.15/1M + 3 × $0.60/1M = $0.0000036
    assert_eq!(
        v["data"],
        json!({"period_start": null, "period_end": null, "pre_migration_requests": 0,
               "models": [{"model": "gpt-4o-mini", "requests": 1, "prompt_tokens": 12, "completion_tokens": 3, "cost_usd": 0.0000036}],
               "total_cost_usd": 0.0000036})
    );
    gw.stop().await;
}

#[tokio::test]
async fn request_bytes_are_forwarded_untouched_unless_mapped() {
    let (gw, admin, fake, addr) = setup().await;
    let ch = gw
        .add_openai_channel(&admin, "a", addr, "gpt-4o,alias-model", 0, 1)
        .await;
    let raw = "{ \"model\" : \"gpt-4o\",\n  \"messages\": [{\"role\":\"user\",\"content\":\"h\\u00e9llo\"}], \"temperature\": 0.70000 }";
    let (s, _) = gw
        .send(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some(&admin),
            Some(raw),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        fake.last().unwrap().raw,
        raw.as_bytes(),
        "body forwarded byte for byte"
    );
    let (s, _) = gw
        .put(
            "/console/api/channel",
            Some(&admin),
            json!({"id": ch, "model_mapping": {"alias-model": "real-model"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let raw2 = raw.replace("\"gpt-4o\"", "\"alias-model\"");
    let (s, v) = gw
        .send(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some(&admin),
            Some(&raw2),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let seen = fake.last().unwrap();
    assert_eq!(seen.body["model"], "real-model");
    assert_eq!(
        String::from_utf8(seen.raw.to_vec()).unwrap(),
        raw.replace("\"gpt-4o\"", "\"real-model\"")
    );
    gw.stop().await;
}

async fn read_sse(resp: reqwest::Response) -> String {
    let mut s = resp.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn streams_are_relayed_and_billed_from_the_usage_chunk() {
    let (gw, admin, fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "gpt-4o-mini", 0, 1)
        .await;
    set_price(&gw, &admin, "gpt-4o-mini", 0.15, 0.60).await;
    // The client did not ask for usage: the gateway asks upstream, and strips the usage chunk.
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&admin)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(resp.headers().contains_key("x-burncloud-overhead-ms"));
    let text = read_sse(resp).await;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        !text.contains("prompt_tokens"),
        "usage chunk leaked to a client that did not ask: {text}"
    );
    assert_eq!(
        text.matches("data: ").count(),
        6,
        "role + 3 pieces + finish + DONE: {text}"
    );
    assert_eq!(
        fake.last().unwrap().body["stream_options"]["include_usage"],
        true
    );
    // A client that asks for usage gets the usage chunk.
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&admin)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": true, "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap();
    let text = read_sse(resp).await;
    assert!(text.contains("\"prompt_tokens\":12"), "{text}");
    let logs = logs(&gw, &admin).await;
    assert_eq!(logs.len(), 2);
    for l in &logs {
        assert_eq!(l["status"], 200);
        assert_eq!(l["stream"], true);
        assert_eq!(l["prompt_tokens"], 12);
        assert_eq!(l["completion_tokens"], 3);
        assert_eq!(l["cost_nano"], 3600);
        assert!(l["flags"].is_null(), "{l}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn completions_and_embeddings_are_billed() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(
        &admin,
        "a",
        addr,
        "text-embedding-3-small,house-instruct-model",
        0,
        1,
    )
    .await;
    set_price(&gw, &admin, "text-embedding-3-small", 0.02, 0.0).await;
    let (s, v) = gw
        .post(
            "/v1/embeddings",
            Some(&admin),
            json!({"model": "text-embedding-3-small", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (s, v) = gw
        .post(
            "/v1/completions",
            Some(&admin),
            json!({"model": "house-instruct-model", "prompt": "Say"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let logs = logs(&gw, &admin).await;
    let emb = logs
        .iter()
        .find(|l| l["endpoint"] == "/v1/embeddings")
        .unwrap();
    assert_eq!(emb["prompt_tokens"], 12);
    assert_eq!(emb["completion_tokens"], 0);
    assert_eq!(emb["cost_nano"], 240);
    let cmp = logs
        .iter()
        .find(|l| l["endpoint"] == "/v1/completions")
        .unwrap();
    assert_eq!(cmp["flags"], "unpriced", "no price: billed 0 and flagged");
    gw.stop().await;
}

#[tokio::test]
async fn failover_walks_channels_in_priority_order_without_repeats() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let mut fakes = vec![];
    let behaviors = [
        Behavior::Status(500),
        Behavior::Status(429),
        Behavior::Hang(Duration::from_secs(3)),
        Behavior::Status(503),
        Behavior::Ok,
    ];
    for (i, b) in behaviors.into_iter().enumerate() {
        let f = Fake::new();
        f.set(b);
        let addr = fake_openai::start(f.clone()).await;
        gw.add_openai_channel(&admin, &format!("c{i}"), addr, "m", 100 - i as i64, 1)
            .await;
        fakes.push(f);
    }
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for f in &fakes {
        assert_eq!(f.hits(), 1, "each channel tried exactly once");
    }
    let logs = logs(&gw, &admin).await;
    assert_eq!(logs[0]["failover"], "1:500,2:429,3:timeout,4:503");
    assert_eq!(logs[0]["channel_id"], 5);
    gw.stop().await;
}

#[tokio::test]
async fn refused_and_slow_first_byte_fail_over_and_everything_failing_is_503() {
    let (gw, admin, fake, addr) = setup().await;
    let dead = dead_addr();
    gw.add_openai_channel(&admin, "dead", dead, "m", 10, 1)
        .await;
    let slow = Fake::new();
    slow.set(Behavior::SlowFirstByte(Duration::from_secs(3)));
    let slow_addr = fake_openai::start(slow.clone()).await;
    gw.add_openai_channel(&admin, "slow", slow_addr, "m", 5, 1)
        .await;
    gw.add_openai_channel(&admin, "ok", addr, "m", 0, 1).await;
    let mut body = chat("m");
    body["stream"] = json!(true);
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = read_sse(resp).await;
    assert!(text.contains("Hello") || text.contains(" from"), "{text}");
    assert_eq!(fake.hits(), 1);
    assert_eq!(slow.hits(), 1);
    let l = &logs(&gw, &admin).await[0];
    assert_eq!(l["failover"], "1:connect_error,2:first_byte_timeout");
    // Now every channel fails: 503 with the trail.
    fake.set(Behavior::Status(502));
    slow.set(Behavior::Status(500));
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "service_unavailable");
    assert_eq!(v["error"]["type"], "server_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("3:502"),
        "{v}"
    );
    // Logged on the last channel tried: a channel filter (and failed-only) finds it.
    gw.flush().await;
    let (_, v) = gw
        .get("/console/api/logs?channel_id=3&status=503", Some(&admin))
        .await;
    let items = v["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["failover"], "1:connect_error,2:500,3:502");
    gw.stop().await;
}

#[tokio::test]
async fn upstream_client_errors_are_relayed_not_retried() {
    let (gw, admin, fake, addr) = setup().await;
    let other = Fake::new();
    let other_addr = fake_openai::start(other.clone()).await;
    gw.add_openai_channel(&admin, "a", addr, "m", 10, 1).await;
    gw.add_openai_channel(&admin, "b", other_addr, "m", 0, 1)
        .await;
    fake.set(Behavior::Status(400));
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"]["code"], "empty_array",
        "the upstream's own error body"
    );
    assert_eq!(other.hits(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn breaker_opens_skips_and_recovers() {
    let (gw, admin, fake, addr) = setup().await;
    let backup = Fake::new();
    let backup_addr = fake_openai::start(backup.clone()).await;
    gw.add_openai_channel(&admin, "flaky", addr, "m", 10, 1)
        .await;
    gw.add_openai_channel(&admin, "backup", backup_addr, "m", 0, 1)
        .await;
    fake.set(Behavior::Status(500));
    for _ in 0..3 {
        let (s, _) = gw
            .post("/v1/chat/completions", Some(&admin), chat("m"))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(fake.hits(), 3);
    // Open: the flaky channel is skipped.
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fake.hits(), 3, "breaker open: not called");
    let (_, metrics) = gw.get("/metrics", None).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("burncloud_channel_breaker_state{channel=\"1\"} 1"),
        "{metrics}"
    );
    // The state as a label too: 1 on the current state, 0 on the others.
    for needle in [
        "burncloud_channel_breaker{channel=\"1\",state=\"open\"} 1",
        "burncloud_channel_breaker{channel=\"1\",state=\"closed\"} 0",
        "burncloud_channel_breaker{channel=\"1\",state=\"half_open\"} 0",
    ] {
        assert!(
            metrics.as_str().unwrap().contains(needle),
            "{needle}: {metrics}"
        );
    }
    // After the cooldown one probe goes through; it succeeds and closes the breaker.
    fake.set(Behavior::Ok);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fake.hits(), 4, "half-open probe");
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fake.hits(), 5, "closed again");
    let l = logs(&gw, &admin).await;
    assert_eq!(
        l.iter()
            .find(|l| l["failover"] == "1:breaker_open")
            .map(|l| l["channel_id"].clone()),
        Some(json!(2))
    );
    gw.stop().await;
}

#[tokio::test]
async fn rejected_channel_key_disables_the_channel_with_a_reason() {
    let (gw, admin, fake, addr) = setup().await;
    let backup = Fake::new();
    let backup_addr = fake_openai::start(backup.clone()).await;
    let bad = gw
        .add_openai_channel(&admin, "bad-key", addr, "m", 10, 1)
        .await;
    gw.add_openai_channel(&admin, "backup", backup_addr, "m", 0, 1)
        .await;
    fake.set(Behavior::Status(401));
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK, "served by the backup");
    let mut disabled = json!(null);
    for _ in 0..50 {
        let (_, v) = gw
            .get(&format!("/console/api/channel/{bad}"), Some(&admin))
            .await;
        // Stored first, then the routing snapshot reloads (a few ms later).
        if v["data"]["status"] == 2
            && !gateway_core::console::channels::channel_health(gw.state(), bad).routable
        {
            disabled = v["data"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(disabled["status"], 2, "channel disabled");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("401")
    );
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fake.hits(), 1, "a disabled channel is not tried again");
    gw.stop().await;
}

#[tokio::test]
async fn every_error_code_of_the_contract() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "gpt-4o-mini,gpt-4o", 0, 1)
        .await;
    set_price(&gw, &admin, "gpt-4o-mini", 1000.0, 1000.0).await;
    let check = |s: StatusCode, v: &Value, status: u16, code: &str, ty: &str| {
        assert_eq!(s.as_u16(), status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["error"]["type"], ty, "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    };
    let (s, v) = gw
        .post("/v1/chat/completions", None, chat("gpt-4o-mini"))
        .await;
    check(s, &v, 401, "invalid_token", "invalid_request_error");
    let (s, v) = gw
        .post(
            "/v1/chat/completions",
            Some("sk-not-a-real-key"),
            chat("gpt-4o-mini"),
        )
        .await;
    check(s, &v, 401, "invalid_token", "invalid_request_error");
    let (_, expired) = gw
        .create_token(&admin, json!({"name": "old", "expired_time": 1_000_000}))
        .await;
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&expired), chat("gpt-4o-mini"))
        .await;
    check(s, &v, 401, "token_expired", "invalid_request_error");
    assert_eq!(v["error"]["message"], "Token has expired");
    let (_, broke) = gw
        .create_token(&admin, json!({"name": "broke", "quota_limit": 0}))
        .await;
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&broke), chat("gpt-4o-mini"))
        .await;
    check(s, &v, 402, "insufficient_quota", "insufficient_quota_error");
    let (_, narrow) = gw
        .create_token(&admin, json!({"name": "narrow", "models": "gpt-4o"}))
        .await;
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&narrow), chat("gpt-4o-mini"))
        .await;
    check(s, &v, 403, "permission_denied", "permission_error");
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&admin), chat("no-such-model"))
        .await;
    check(s, &v, 404, "model_not_found", "not_found_error");
    let (_, slow) = gw
        .create_token(&admin, json!({"name": "slow", "rpm_limit": 1}))
        .await;
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&slow), chat("gpt-4o"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&slow)
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    // When to retry, in OpenAI's headers too.
    let retry: u64 = h("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(h("x-ratelimit-limit-requests").as_deref(), Some("1"));
    assert_eq!(h("x-ratelimit-remaining-requests").as_deref(), Some("0"));
    assert_eq!(h("x-ratelimit-reset-requests"), Some(format!("{retry}s")));
    let s = resp.status();
    let v: Value = resp.json().await.unwrap();
    check(s, &v, 429, "rate_limit_exceeded", "rate_limit_error");
    for bad in ["{", "[]", "{\"messages\": []}", "{\"model\": 42}", ""] {
        let (s, v) = gw
            .send(
                reqwest::Method::POST,
                "/v1/chat/completions",
                Some(&admin),
                Some(bad),
            )
            .await;
        check(s, &v, 400, "invalid_request", "invalid_request_error");
    }
    let huge = format!(
        "{{\"model\": \"gpt-4o\", \"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}",
        "x".repeat(33 * 1024 * 1024)
    );
    let (s, v) = gw
        .send(
            reqwest::Method::POST,
            "/v1/chat/completions",
            Some(&admin),
            Some(&huge),
        )
        .await;
    check(s, &v, 413, "invalid_request", "invalid_request_error");
    gw.stop().await;
}

#[tokio::test]
async fn models_list_follows_the_token() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "gpt-4o-mini,gpt-4o,o3", 0, 1)
        .await;
    let (_, narrow) = gw
        .create_token(&admin, json!({"name": "narrow", "models": "gpt-4o,o3"}))
        .await;
    let (s, v) = gw.get("/v1/models", Some(&narrow)).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt-4o", "o3"]);
    assert_eq!(v["object"], "list");
    let (_, v) = gw.get("/v1/models", Some(&admin)).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn quota_race_overspends_by_at_most_one_request() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    // Each request: 12 × $1/1M + 3 × $2/1M = $0.000018; the quota fits 5.5 of them.
    set_price(&gw, &admin, "m", 1.0, 2.0).await;
    let per_request = 18_000i64;
    let limit_nano = 99_000i64;
    let (id, key) = gw
        .create_token(&admin, json!({"name": "small", "quota_limit": 0.000099}))
        .await;
    let mut tasks = vec![];
    for _ in 0..40 {
        let client = gw.client.clone();
        let url = format!("{}/v1/chat/completions", gw.base);
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => {}
            s => panic!("unexpected {s}"),
        }
    }
    gw.flush().await;
    let used: i64 = gw
        .state()
        .store
        .with(|c| {
            Ok(c.query_row(
                "SELECT used_quota_nano FROM tokens WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(used, ok * per_request, "every success billed once");
    assert!(
        used <= limit_nano + per_request,
        "overspent by more than one request: used {used}"
    );
    assert!(
        ok >= 5,
        "the quota should allow at least 5 requests, got {ok}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn cut_stream_and_client_disconnect_are_billed_once_for_what_was_seen() {
    let (gw, admin, fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    set_price(&gw, &admin, "m", 1.0, 1.0).await;
    fake.set(Behavior::CutAfter(2));
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&admin)
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut s = resp.bytes_stream();
    let mut got_error = false;
    while let Some(c) = s.next().await {
        if c.is_err() {
            got_error = true;
        }
    }
    assert!(got_error, "the client learns the stream was cut");
    // A client that goes away mid-stream.
    fake.set(Behavior::SlowFirstByte(Duration::from_millis(1)));
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&admin)
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let mut s = resp.bytes_stream();
    let _ = s.next().await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = logs(&gw, &admin).await;
    assert_eq!(logs.len(), 2, "one record per request: {logs:?}");
    let cut = logs
        .iter()
        .find(|l| l["flags"].as_str().unwrap_or("").contains("upstream_cut"))
        .expect("cut record");
    assert_eq!(
        cut["completion_tokens"], 3,
        "events 0..=2 (role, two pieces) were seen before the cut"
    );
    assert!(cut["flags"].as_str().unwrap().contains("usage_estimated"));
    assert!(cut["cost_nano"].as_i64().unwrap() > 0);
    let gone = logs
        .iter()
        .find(|l| {
            l["flags"]
                .as_str()
                .unwrap_or("")
                .contains("client_disconnected")
        })
        .expect("disconnect record");
    assert!(gone["cost_nano"].as_i64().unwrap() > 0);
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_starts_is_still_billed() {
    let (gw, admin, fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    set_price(&gw, &admin, "m", 1.0, 1.0).await;
    // The upstream takes 400 ms to answer; the client gives up after 100.
    fake.set(Behavior::Delay(Duration::from_millis(400)));
    for stream in [false, true] {
        let sent = gw
            .client
            .post(format!("{}/v1/chat/completions", gw.base))
            .bearer_auth(&admin)
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": stream}))
            .timeout(Duration::from_millis(100))
            .send()
            .await;
        assert!(sent.is_err(), "the client timed out before the answer");
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let logs = logs(&gw, &admin).await;
    assert_eq!(logs.len(), 2, "one record per request: {logs:?}");
    for l in &logs {
        // The relay ran on without the client: the upstream's answer was read and billed.
        assert!(l["cost_nano"].as_i64().unwrap() > 0, "{l}");
        assert!(l["completion_tokens"].as_i64().unwrap() > 0, "{l}");
    }
    gw.stop().await;
}

/// A fake whose streamed answer lasts about 3 s (100 pieces, 30 ms apart).
async fn slow_fake() -> std::net::SocketAddr {
    let fake = Arc::new(Fake {
        pieces: vec![" x"; 100],
        chunk_delay: Duration::from_millis(30),
        ..Arc::try_unwrap(Fake::new()).unwrap()
    });
    fake_openai::start(fake).await
}

#[tokio::test]
async fn a_client_leaving_stops_a_local_engine_at_once_and_a_cloud_answer_is_read_for_usage() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let (cloud, local) = (slow_fake().await, slow_fake().await);
    gw.add_openai_channel(&admin, "cloud", cloud, "c", 0, 1)
        .await;
    gw.add_channel(
        &admin,
        json!({"name": "engine", "type": 1, "key": "sk-local-0123456789", "base_url": format!("http://{local}"), "models": "l", "group": "default", "locality": "local"}),
    )
    .await;
    for model in ["c", "l"] {
        let resp = gw
            .client
            .post(format!("{}/v1/chat/completions", gw.base))
            .bearer_auth(&admin)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": true}))
            .send()
            .await
            .unwrap();
        let mut s = resp.bytes_stream();
        let _ = s.next().await;
        drop(s);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let gone = |logs: &[Value], model: &str| {
        logs.iter().any(|l| {
            l["model"] == model
                && l["flags"]
                    .as_str()
                    .unwrap_or("")
                    .contains("client_disconnected")
        })
    };
    let early = logs(&gw, &admin).await;
    // Local: the upstream connection was dropped with the client's (llama-server stops
    // generating), so the request is settled now.
    assert!(gone(&early, "l"), "{early:?}");
    // Cloud: the rest of the answer is still being read for the provider's usage.
    assert!(!early.iter().any(|l| l["model"] == "c"), "{early:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late = logs(&gw, &admin).await;
    let c = late
        .iter()
        .find(|l| l["model"] == "c")
        .expect("the cloud record");
    assert_eq!(
        c["completion_tokens"], 3,
        "the fake's own usage, read after the client left: {c}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn changes_by_another_process_are_seen_within_a_second() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    // Another connection to the same file, as the CLI does.
    let other = gateway_core::store::Store::connect(gw.state().store.location()).unwrap();
    other
        .with(|c| {
            gateway_core::store::prices::set(
                c,
                "m",
                gateway_core::store::prices::Rates {
                    input: 1_000_000_000,
                    output: 0,
                    cache_read: None,
                    cache_write: None,
                },
            )
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let l = &logs(&gw, &admin).await[0];
    assert_eq!(l["cost_nano"], 12_000, "price set elsewhere applied");
    gw.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_flushes_usage() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    for _ in 0..20 {
        let (s, _) = gw
            .post("/v1/chat/completions", Some(&admin), chat("m"))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let db = gw.state().store.location().clone();
    let _dir = gw.stop().await;
    let store = gateway_core::store::Store::connect(&db).unwrap();
    let n: i64 = store
        .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM logs", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(n, 20);
}

#[tokio::test]
async fn stopping_lets_the_request_in_flight_finish_and_closes_idle_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gw, admin, fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    // A keep-alive connection that asked once and then stays idle.
    let mut idle = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", gw.addr).as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // A request whose upstream answers in 600 ms, still waiting when the server stops.
    fake.set(Behavior::Delay(Duration::from_millis(600)));
    let in_flight = tokio::spawn({
        let (client, url) = (
            gw.client.clone(),
            format!("{}/v1/chat/completions", gw.base),
        );
        async move {
            let resp = client
                .post(url)
                .bearer_auth(admin)
                .json(&chat("m"))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopping = std::time::Instant::now();
    let _dir = gw.stop().await;
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("chat.completion"), "{body}");
    // Every connection closed by itself: the server stopped before the 2 s grace ran out
    // (after it, the test gateway abandons them).
    let took = stopping.elapsed();
    assert!(took < Duration::from_millis(1500), "stopping took {took:?}");
    // The idle connection was closed by the server: the rest of its answer, then EOF.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the idle connection is still open: {read:?}"
    );
}

#[tokio::test]
async fn metrics_and_overhead_header() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    set_price(&gw, &admin, "m", 1.0, 2.0).await;
    let resp = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(&admin)
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    let overhead: f64 = resp.headers()["x-burncloud-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..1000.0).contains(&overhead));
    let _ = resp.text().await;
    // An unknown model: counted without a model label (no series per name a client sends).
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("no-such-model"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = gw.get("/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    for needle in [
        "burncloud_requests_total{status=\"200\",model=\"m\",channel=\"1\"} 1",
        "burncloud_requests_total{status=\"404\",model=\"\",channel=\"\"} 1",
        "burncloud_tokens_total{kind=\"prompt\",model=\"m\",channel=\"1\"} 12",
        "burncloud_tokens_total{kind=\"completion\",model=\"m\",channel=\"1\"} ",
        "burncloud_request_duration_seconds_count{model=\"m\",channel=\"1\"} 1",
        "burncloud_gateway_overhead_seconds_count 1",
        "burncloud_in_flight_requests 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in {text}");
    }
    // Cost in USD by model and channel: at least the 12 prompt tokens at $1 per 1M.
    let cost: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("burncloud_cost_usd_total{model=\"m\",channel=\"1\"} "))
        .unwrap_or_else(|| panic!("no cost line in {text}"))
        .parse()
        .unwrap();
    assert!((0.000012..0.001).contains(&cost), "{cost}");
    gw.stop().await;
}

#[tokio::test]
async fn token_tpm_and_channel_rpm_caps() {
    let (gw, admin, fake, addr) = setup().await;
    let ch = gw
        .add_openai_channel(&admin, "capped", addr, "m", 10, 1)
        .await;
    let backup = Fake::new();
    let backup_addr = fake_openai::start(backup.clone()).await;
    gw.add_openai_channel(&admin, "backup", backup_addr, "m", 0, 1)
        .await;
    // A channel capped at 2 requests per minute: the third goes to the next channel.
    let (s, v) = gw
        .put(
            "/console/api/channel",
            Some(&admin),
            json!({"id": ch, "rpm_limit": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for _ in 0..3 {
        let (s, _) = gw
            .post("/v1/chat/completions", Some(&admin), chat("m"))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(fake.hits(), 2);
    assert_eq!(backup.hits(), 1);
    // Every channel capped: the backup's cap (counted from when it is set) takes one more, then 429.
    gw.put(
        "/console/api/channel",
        Some(&admin),
        json!({"id": ch + 1, "rpm_limit": 1}),
    )
    .await;
    let (s, _) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(backup.hits(), 2);
    let (s, v) = gw
        .post("/v1/chat/completions", Some(&admin), chat("m"))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    // A token allowed 20 tokens per minute: each request uses 15, so the second is refused.
    gw.put(
        "/console/api/channel",
        Some(&admin),
        json!({"id": ch + 1, "rpm_limit": null}),
    )
    .await;
    let (_, key) = gw
        .create_token(&admin, json!({"name": "tpm", "tpm_limit": 20}))
        .await;
    let (s, _) = gw.post("/v1/chat/completions", Some(&key), chat("m")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = gw.post("/v1/chat/completions", Some(&key), chat("m")).await;
    assert_eq!(s, StatusCode::OK, "15 < 20 tokens used so far: {v}");
    let (s, v) = gw.post("/v1/chat/completions", Some(&key), chat("m")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens per minute")
    );
    gw.stop().await;
}

#[tokio::test]
async fn cloud_models_carry_the_catalog_context_window() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "gpt-4o-mini,house-model", 0, 1)
        .await;
    let (s, v) = gw.get("/v1/models/gpt-4o-mini", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["context_length"], 128000, "{v}");
    assert_eq!(v["max_output_tokens"], 16384, "{v}");
    // A model the catalog does not know says nothing rather than guessing.
    let (_, v) = gw.get("/v1/models/house-model", Some(&admin)).await;
    assert!(v["context_length"].is_null(), "{v}");
    gw.stop().await;
}

#[tokio::test]
async fn request_log_retention_deletes_old_records_and_keeps_the_rest() {
    let (gw, admin, _fake, addr) = setup().await;
    gw.add_openai_channel(&admin, "a", addr, "m", 0, 1).await;
    for _ in 0..3 {
        let (s, _) = gw
            .post("/v1/chat/completions", Some(&admin), chat("m"))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(logs(&gw, &admin).await.len(), 3);
    // Two records age by ten days (another connection, as a second process would see them).
    let store = gateway_core::store::Store::connect(gw.state().store.location()).unwrap();
    store
        .with(|c| {
            Ok(c.execute(
                "UPDATE logs SET created_at_ms = created_at_ms - 10 * 86400000 \
                 WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT 2)",
                [],
            )?)
        })
        .unwrap();
    // Off by default: nothing goes.
    let (s, v) = gw.get("/console/api/settings/logs", Some(&admin)).await;
    assert_eq!(
        (s, &v["data"]["retention_days"]),
        (StatusCode::OK, &json!(0))
    );
    // Bad values are refused with the accepted range; nothing is deleted.
    for bad in [json!(-1), json!(1.5), json!("7"), json!(36_501)] {
        let (s, v) = gw
            .put(
                "/console/api/settings/logs",
                Some(&admin),
                json!({"retention_days": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("0 (keep every record)"),
            "{v}"
        );
    }
    assert_eq!(logs(&gw, &admin).await.len(), 3);
    // A user may not change it.
    let bob = gw.register("bob").await;
    let (s, _) = gw
        .put(
            "/console/api/settings/logs",
            Some(&bob),
            json!({"retention_days": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Seven days: the two ten-day-old records go at once, the new one stays.
    let (s, v) = gw
        .put(
            "/console/api/settings/logs",
            Some(&admin),
            json!({"retention_days": 7}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], json!({"retention_days": 7, "deleted": 2}));
    assert_eq!(logs(&gw, &admin).await.len(), 1);
    let (_, v) = gw.get("/console/api/settings/logs", Some(&admin)).await;
    assert_eq!(v["data"]["retention_days"], 7);
    // The start of a model's name, any case, finds it; `model` stays exact.
    for (query, n) in [("model_prefix=M", 1), ("model_prefix=x", 0), ("model=M", 0)] {
        let (_, v) = gw
            .get(&format!("/console/api/logs?{query}"), Some(&admin))
            .await;
        assert_eq!(v["data"]["total"], n, "{query}: {v}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_after_the_final_event_is_not_logged_as_a_disconnect() {
    // Codex reads a Responses stream up to `response.completed` and closes the connection
    // at once, while the upstream's stream still has its `[DONE]` and end to come.
    let (gw, admin, _fake, _) = setup().await;
    let mut slow = Fake::new();
    Arc::get_mut(&mut slow).unwrap().chunk_delay = Duration::from_millis(300);
    let addr = fake_openai::start(slow).await;
    gw.add_openai_channel(&admin, "slow-end", addr, "m", 0, 1)
        .await;
    let mut resp = gw
        .client
        .post(format!("{}/v1/responses", gw.base))
        .bearer_auth(&admin)
        .json(&json!({"model": "m", "input": "Hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut seen = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: response.completed") {
            break;
        }
    }
    assert!(seen.contains("response.completed"), "{seen}");
    drop(resp);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let l = logs(&gw, &admin).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["status"], 200, "{}", l[0]);
    assert_eq!(l[0]["prompt_tokens"], 12, "{}", l[0]);
    assert!(l[0]["error"].is_null(), "{}", l[0]);
}
