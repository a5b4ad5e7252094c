//! Burst routing against a real gateway, a "local" and a "cloud" OpenAI-compatible
//! upstream on loopback (the local runtime is not built yet; its channels will be
//! OpenAI-compatible `llama-server`s, which is what the local fake speaks).

mod support;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestGateway;
use support::fake_openai::{self, Behavior, Fake};

struct Burst {
    gw: TestGateway,
    admin: String,
    key: String,
    local: Arc<Fake>,
    cloud: Arc<Fake>,
    local_id: i64,
    cloud_id: i64,
}

/// A gateway where model `m` is served by one local and one cloud channel.
async fn setup() -> Burst {
    setup_with(TestGateway::start().await, None).await
}

async fn setup_with(gw: TestGateway, local_addr: Option<std::net::SocketAddr>) -> Burst {
    let admin = gw.register("admin").await;
    let local = Fake::new();
    let cloud = Fake::new();
    let local_addr = match local_addr {
        Some(a) => a,
        None => fake_openai::start(local.clone()).await,
    };
    let cloud_addr = fake_openai::start(cloud.clone()).await;
    let local_id = gw
        .add_channel(
            &admin,
            json!({"name": "llama", "type": 1, "key": "", "base_url": format!("http://{local_addr}"), "models": "m", "locality": "local"}),
        )
        .await;
    let cloud_id = gw
        .add_channel(
            &admin,
            json!({"name": "cloud", "type": 1, "key": "sk-upstream-cloud-0123456789", "base_url": format!("http://{cloud_addr}"), "models": "m,cloud-only", "locality": "cloud"}),
        )
        .await;
    let (_, key) = gw.create_token(&admin, json!({"name": "k"})).await;
    Burst {
        gw,
        admin,
        key,
        local,
        cloud,
        local_id,
        cloud_id,
    }
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 10})
}

struct Answer {
    status: StatusCode,
    backend: Option<String>,
    mode: Option<String>,
    reason: Option<String>,
    sensitivity: Option<String>,
    body: Value,
}

async fn ask(b: &Burst, body: Value, mode: Option<&str>) -> Answer {
    ask_with(&b.gw, &b.key, body, mode).await
}

async fn ask_with(gw: &TestGateway, key: &str, body: Value, mode: Option<&str>) -> Answer {
    let mut rb = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(key)
        .json(&body);
    if let Some(m) = mode {
        rb = rb.header("X-Burst-Mode", m);
    }
    let resp = rb.send().await.unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, backend, mode, reason, sensitivity) = (
        resp.status(),
        h("x-burst-backend"),
        h("x-burst-mode"),
        h("x-burst-reason"),
        h("x-burst-sensitivity"),
    );
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        backend,
        mode,
        reason,
        sensitivity,
        body,
    }
}

async fn put_settings(b: &Burst, v: Value) -> (StatusCode, Value) {
    b.gw.put("/console/api/settings/burst", Some(&b.admin), v)
        .await
}

async fn settings(b: &Burst, v: Value) {
    let (s, r) = put_settings(b, v).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

fn is(a: &Answer, backend: &str, reason: &str) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.backend.as_deref(), Some(backend), "reason {:?}", a.reason);
    assert_eq!(a.reason.as_deref(), Some(reason));
}

/// Keep `n` slow requests in flight on the busy side; returns their handles.
fn occupy(b: &Burst, n: usize, mode: Option<&'static str>) -> Vec<tokio::task::JoinHandle<Answer>> {
    (0..n)
        .map(|_| {
            let (base, key) = (b.gw.base.clone(), b.key.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut rb = client
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&chat("m", "slow one"));
                if let Some(m) = mode {
                    rb = rb.header("X-Burst-Mode", m);
                }
                let resp = rb.send().await.unwrap();
                let backend = resp
                    .headers()
                    .get("x-burst-backend")
                    .map(|v| v.to_str().unwrap().to_string());
                Answer {
                    status: resp.status(),
                    backend,
                    mode: None,
                    reason: None,
                    sensitivity: None,
                    body: resp.json().await.unwrap_or(Value::Null),
                }
            })
        })
        .collect()
}

async fn wait_in_flight(b: &Burst, channel: i64, n: i64) {
    for _ in 0..200 {
        if b.gw.state().channel_in_flight(channel) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("channel {channel} never reached {n} requests in flight");
}

async fn logs(b: &Burst) -> Vec<Value> {
    b.gw.flush().await;
    let (_, v) =
        b.gw.get("/console/api/logs?page_size=500", Some(&b.admin))
            .await;
    v["data"]["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn edge_burst_prefers_local_and_bursts_to_cloud_when_the_local_queue_is_full() {
    let b = setup().await;
    settings(&b, json!({"local_max_queue": 2})).await;
    let a = ask(&b, chat("m", "Hello!"), None).await;
    is(&a, "local", "local_primary");
    assert_eq!(a.mode.as_deref(), Some("edge_burst"));
    assert_eq!(a.sensitivity.as_deref(), Some("public"));
    assert_eq!((b.local.hits(), b.cloud.hits()), (1, 0));

    b.local.set(Behavior::Delay(Duration::from_millis(500)));
    let slow = occupy(&b, 2, None);
    wait_in_flight(&b, b.local_id, 2).await;
    let (_, health) = b.gw.get("/health", None).await;
    let local = &health["burst"]["backends"][0];
    assert_eq!(local["locality"], "local");
    assert_eq!(local["queue_depth"], 2);
    assert_eq!(local["status"], "overloaded");
    let a = ask(&b, chat("m", "Hello again"), None).await;
    is(&a, "cloud", "local_overloaded_burst_to_cloud");
    assert_eq!(b.cloud.hits(), 1);
    for h in slow {
        let r = h.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.backend.as_deref(), Some("local"));
    }
    // The queue drained: local again.
    b.local.set(Behavior::Ok);
    is(
        &ask(&b, chat("m", "Hi"), None).await,
        "local",
        "local_primary",
    );

    let records = logs(&b).await;
    let burst_cloud = records
        .iter()
        .find(|r| r["burst"] == "edge_burst,local_overloaded_burst_to_cloud,public")
        .expect("the burst is in the log");
    assert_eq!(burst_cloud["locality"], "cloud");
    assert_eq!(burst_cloud["channel_id"], b.cloud_id);
    let (_, metrics) = b.gw.get("/metrics", None).await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(
            "burncloud_burst_decisions_total{reason=\"local_overloaded_burst_to_cloud\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn cloud_burst_prefers_cloud_and_bursts_to_local_when_cloud_is_full() {
    let b = setup().await;
    settings(&b, json!({"mode": "cloud_burst", "cloud_max_queue": 1})).await;
    is(
        &ask(&b, chat("m", "Hello!"), None).await,
        "cloud",
        "cloud_primary",
    );
    b.cloud.set(Behavior::Delay(Duration::from_millis(500)));
    let slow = occupy(&b, 1, None);
    wait_in_flight(&b, b.cloud_id, 1).await;
    let a = ask(&b, chat("m", "Hello again"), None).await;
    is(&a, "local", "cloud_overloaded_burst_to_local");
    assert_eq!(a.mode.as_deref(), Some("cloud_burst"));
    for h in slow {
        assert_eq!(h.await.unwrap().backend.as_deref(), Some("cloud"));
    }
}

#[tokio::test]
async fn slow_primary_by_latency_ewma_bursts_too() {
    let b = setup().await;
    settings(&b, json!({"local_latency_threshold_ms": 100})).await;
    b.local.set(Behavior::Delay(Duration::from_millis(250)));
    is(
        &ask(&b, chat("m", "one"), None).await,
        "local",
        "local_primary",
    );
    let ewma = gateway_core::console::channels::channel_health(b.gw.state(), b.local_id)
        .latency_ms
        .unwrap();
    assert!(ewma >= 250.0, "EWMA {ewma}");
    is(
        &ask(&b, chat("m", "two"), None).await,
        "cloud",
        "local_overloaded_burst_to_cloud",
    );
}

#[tokio::test]
async fn sensitive_prompts_stay_local_even_when_local_is_overloaded() {
    let b = setup().await;
    settings(&b, json!({"local_max_queue": 1})).await;
    b.local.set(Behavior::Delay(Duration::from_millis(600)));
    let slow = occupy(&b, 1, None);
    wait_in_flight(&b, b.local_id, 1).await;
    // A public request in this state goes to the cloud.
    is(
        &ask(&b, chat("m", "What is the capital of France?"), None).await,
        "cloud",
        "local_overloaded_burst_to_cloud",
    );
    // Sensitive ones (sent while local is still busy) queue on local, in either mode.
    let tool = json!({"model": "m", "messages": [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "card on file: 4111 1111 1111 1111"}]});
    let requests = [
        (
            chat("m", "Summarise the complaint from jane.doe@example.com"),
            None,
        ),
        (
            chat("m", "Summarise the complaint from jane.doe@example.com"),
            Some("cloud_burst"),
        ),
        (tool, Some("cloud_burst")),
        (chat("m", "This is CONFIDENTIAL"), Some("cloud_burst")),
    ];
    let answers = futures_util::future::join_all(
        requests.into_iter().map(|(body, mode)| ask(&b, body, mode)),
    )
    .await;
    assert!(
        b.gw.state().channel_in_flight(b.local_id) <= 1,
        "all answered"
    );
    for a in &answers {
        is(a, "local", "sensitive_data_local");
        assert_eq!(a.sensitivity.as_deref(), Some("sensitive"));
    }
    assert_eq!(b.cloud.hits(), 1);
    let seen = b.cloud.last().unwrap();
    assert!(seen.body.to_string().contains("capital of France"));
    for h in slow {
        assert_eq!(h.await.unwrap().backend.as_deref(), Some("local"));
    }
}

#[tokio::test]
async fn local_down_sends_public_to_cloud_and_refuses_sensitive() {
    // The local channel points at a port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let b = setup_with(TestGateway::start().await, Some(dead)).await;
    // Before the breaker knows: the attempt fails and the request fails over to cloud.
    let a = ask(&b, chat("m", "Hello!"), None).await;
    is(&a, "cloud", "local_failed_failover_to_cloud");
    // A sensitive request is never sent on: it fails with a clear 503.
    let a = ask(&b, chat("m", "my SSN is 123-45-6789"), None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "service_unavailable");
    assert_eq!(
        b.cloud.hits(),
        1,
        "the sensitive request never reached the cloud"
    );
    // Open the breaker (3 errors in the test config), then the decision itself knows.
    let _ = ask(&b, chat("m", "Hello!"), None).await;
    let a = ask(&b, chat("m", "Hello!"), None).await;
    is(&a, "cloud", "local_down_burst_to_cloud");
    let a = ask(&b, chat("m", "my SSN is 123-45-6789"), Some("cloud_burst")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.reason.as_deref(), Some("sensitive_data_local"));
    assert_eq!(a.sensitivity.as_deref(), Some("sensitive"));
    assert!(a.backend.is_none());
    let msg = a.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("not sent to the cloud"), "{msg}");
    assert!(
        b.cloud
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| !s.body.to_string().contains("123-45-6789"))
    );
    // A supervisor's failed health check counts as down too.
    let gw2 = setup().await;
    gw2.gw.state().report_channel_health(gw2.local_id, false);
    is(
        &ask(&gw2, chat("m", "Hello!"), None).await,
        "cloud",
        "local_down_burst_to_cloud",
    );
    let (_, health) = gw2.gw.get("/health", None).await;
    assert_eq!(health["burst"]["backends"][0]["status"], "down");
}

#[tokio::test]
async fn exhausted_budget_routes_local_and_survives_a_restart() {
    let b = setup().await;
    let (s, v) =
        b.gw.put(
            "/console/api/prices/m",
            Some(&b.admin),
            json!({"input": 1000.0, "output": 1000.0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // One cloud request costs (12 + 3) tokens x $1000/1M = $0.015.
    settings(
        &b,
        json!({"mode": "cloud_burst", "daily_cloud_budget_usd": 0.02, "timezone": "UTC"}),
    )
    .await;
    is(
        &ask(&b, chat("m", "one"), None).await,
        "cloud",
        "cloud_primary",
    );
    is(
        &ask(&b, chat("m", "two"), None).await,
        "cloud",
        "cloud_primary",
    );
    let a = ask(&b, chat("m", "three"), None).await;
    is(&a, "local", "cloud_budget_exhausted");
    let (_, health) = b.gw.get("/health", None).await;
    assert_eq!(health["burst"]["cloud_spend_today_usd"], 0.03);
    assert_eq!(health["burst"]["cloud_budget_left_usd"], 0.0);
    // Local requests do not count against the budget.
    assert_eq!(
        gateway_core::console::routing::cloud_spend_today_nano(b.gw.state()),
        30_000_000
    );

    // Restart on the same database: the spend is rebuilt from the logs.
    let Burst { gw, key, .. } = b;
    let dir = gw.stop().await;
    let config = support::test_config(dir.path());
    let gw = TestGateway::start_in(dir, config).await;
    let a = ask_with(&gw, &key, chat("m", "four"), None).await;
    assert_eq!(
        a.reason.as_deref(),
        Some("cloud_budget_exhausted"),
        "{}",
        a.body
    );
    let (_, health) = gw.get("/health", None).await;
    assert_eq!(health["burst"]["cloud_spend_today_usd"], 0.03);
}

#[tokio::test]
async fn the_mode_header_is_request_scoped_under_concurrency() {
    let b = setup().await;
    settings(
        &b,
        json!({"local_max_queue": 1000, "cloud_max_queue": 1000}),
    )
    .await;
    b.local.set(Behavior::Delay(Duration::from_millis(20)));
    b.cloud.set(Behavior::Delay(Duration::from_millis(20)));
    let b = Arc::new(b);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                let mode = match i % 3 {
                    0 => Some("cloud_burst"),
                    1 => Some("edge_burst"),
                    _ => None,
                };
                let a = ask(&b, chat("m", &format!("request {i}")), mode).await;
                (mode, a)
            })
        })
        .collect();
    for t in tasks {
        let (mode, a) = t.await.unwrap();
        assert_eq!(a.status, StatusCode::OK);
        let expected = mode.unwrap_or("edge_burst");
        assert_eq!(a.mode.as_deref(), Some(expected));
        let backend = if expected == "cloud_burst" {
            "cloud"
        } else {
            "local"
        };
        assert_eq!(a.backend.as_deref(), Some(backend), "{:?}", a.reason);
    }
    assert_eq!(b.local.hits() + b.cloud.hits(), 100);
    assert_eq!(b.cloud.hits(), 34);
    // The global mode is untouched.
    let (_, v) =
        b.gw.get("/console/api/settings/burst", Some(&b.admin))
            .await;
    assert_eq!(v["data"]["mode"], "edge_burst");
    let bad = ask(&b, chat("m", "x"), Some("sideways")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Burst-Mode")
    );
}

#[tokio::test]
async fn local_only_keys_and_per_key_modes() {
    let b = setup().await;
    let (id, local_key) =
        b.gw.create_token(&b.admin, json!({"name": "private", "local_only": true}))
            .await;
    let a = ask_with(&b.gw, &local_key, chat("m", "Hello!"), Some("cloud_burst")).await;
    is(&a, "local", "token_local_only");
    let a = ask_with(&b.gw, &local_key, chat("cloud-only", "Hello!"), None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("local-only")
    );
    assert_eq!(b.cloud.hits(), 0);
    // The ordinary key may use the cloud-only model (no burst headers: burst did not decide).
    let a = ask(&b, chat("cloud-only", "Hello!"), None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.backend.is_none() && a.reason.is_none());

    let (s, v) =
        b.gw.put(
            &format!("/console/api/tokens/{id}"),
            Some(&b.admin),
            json!({"local_only": false, "burst_mode": "cloud_burst"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["burst_mode"], "cloud_burst");
    is(
        &ask_with(&b.gw, &local_key, chat("m", "Hello!"), None).await,
        "cloud",
        "cloud_primary",
    );
    let (s, v) =
        b.gw.put(
            &format!("/console/api/tokens/{id}"),
            Some(&b.admin),
            json!({"burst_mode": "fast"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("burst_mode"));
}

#[tokio::test]
async fn the_burst_alias_maps_to_a_local_and_a_cloud_model() {
    let gw = TestGateway::start().await;
    let admin = gw.register("admin").await;
    let (local, cloud) = (Fake::new(), Fake::new());
    let (la, ca) = (
        fake_openai::start(local.clone()).await,
        fake_openai::start(cloud.clone()).await,
    );
    gw.add_channel(&admin, json!({"name": "llama", "type": 1, "key": "", "base_url": format!("http://{la}"), "models": "qwen-small", "locality": "local"})).await;
    gw.add_channel(&admin, json!({"name": "cloud", "type": 1, "key": "sk-upstream-cloud-0123456789", "base_url": format!("http://{ca}"), "models": "gpt-big", "locality": "cloud"})).await;
    let (_, key) = gw.create_token(&admin, json!({"name": "k"})).await;
    let a = ask_with(&gw, &key, chat("burst-auto", "Hello!"), None).await;
    assert_eq!(a.backend.as_deref(), Some("local"), "{}", a.body);
    assert_eq!(local.last().unwrap().body["model"], "qwen-small");
    let a = ask_with(&gw, &key, chat("burst-auto", "Hello!"), Some("cloud_burst")).await;
    assert_eq!(a.backend.as_deref(), Some("cloud"));
    assert_eq!(cloud.last().unwrap().body["model"], "gpt-big");
    // A renamed alias.
    let (s, v) = gw
        .put(
            "/console/api/settings/burst",
            Some(&admin),
            json!({"alias": "auto"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = ask_with(&gw, &key, chat("auto", "Hello!"), None).await;
    assert_eq!(a.backend.as_deref(), Some("local"));
    gw.flush().await;
    let (_, v) = gw.get("/console/api/logs?page_size=10", Some(&admin)).await;
    let items = v["data"]["items"].as_array().unwrap();
    assert_eq!(
        items[0]["model"], "qwen-small",
        "the log names the model that ran"
    );
}

#[tokio::test]
async fn settings_are_validated_persisted_and_reset() {
    let b = setup().await;
    for (body, field) in [
        (json!({"mode": "sideways"}), "mode"),
        (json!({"local_max_queue": -1}), "local_max_queue"),
        (json!({"local_max_queue": "five"}), "local_max_queue"),
        (
            json!({"daily_cloud_budget_usd": -3}),
            "daily_cloud_budget_usd",
        ),
        (json!({"timezone": "Mars/Olympus"}), "time zone"),
        (json!({"detectors": ["email", "horoscope"]}), "detectors"),
        (json!({"no_such_setting": 1}), "no_such_setting"),
        (json!([1, 2]), "object"),
    ] {
        let (s, v) = put_settings(&b, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} -> {v}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let user = b.gw.register("someone").await;
    let (s, _) =
        b.gw.put(
            "/console/api/settings/burst",
            Some(&user),
            json!({"mode": "cloud_burst"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Keywords and detectors are settings: "pineapple" becomes sensitive, e-mail does not.
    settings(
        &b,
        json!({"keywords": ["pineapple"], "detectors": ["payment_card"], "mode": "cloud_burst"}),
    )
    .await;
    is(
        &ask(&b, chat("m", "I like PINEAPPLE pizza"), None).await,
        "local",
        "sensitive_data_local",
    );
    is(
        &ask(&b, chat("m", "write to bob@example.com"), None).await,
        "cloud",
        "cloud_primary",
    );

    // Persisted across a restart.
    let Burst { gw, key, admin, .. } = b;
    let dir = gw.stop().await;
    let config = support::test_config(dir.path());
    let gw = TestGateway::start_in(dir, config).await;
    let (_, v) = gw.get("/console/api/settings/burst", Some(&admin)).await;
    assert_eq!(v["data"]["mode"], "cloud_burst");
    assert_eq!(v["data"]["keywords"], json!(["pineapple"]));
    let a = ask_with(&gw, &key, chat("m", "pineapple"), None).await;
    assert_eq!(a.reason.as_deref(), Some("sensitive_data_local"));
    // null returns one field to its default; DELETE returns them all.
    let (_, v) = gw
        .put(
            "/console/api/settings/burst",
            Some(&admin),
            json!({"mode": null}),
        )
        .await;
    assert_eq!(v["data"]["mode"], "edge_burst");
    assert_eq!(v["data"]["keywords"], json!(["pineapple"]));
    let (_, v) = gw.delete("/console/api/settings/burst", Some(&admin)).await;
    assert!(v["data"]["keywords"].as_array().unwrap().len() > 10);
    assert_eq!(v["data"]["overridden"], json!([]));
}
