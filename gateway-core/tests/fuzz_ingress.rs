//! Generated bad input on every ingress: valid request templates mutated at random (values
//! of the wrong type, fields removed or added, huge arrays, deep nesting), truncated bodies,
//! invalid UTF-8 and raw noise. Every answer must be a 2xx or a 4xx in the ingress's own
//! error shape — never a 5xx, a panic, a hang or a dropped connection. Seeded, so a failure
//! names the case that reproduces it. `FUZZ_CASES` (default 10,000 per ingress).

mod support;

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use support::TestGateway;
use support::{fake_anthropic, fake_openai};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn random_string(r: &mut Rng) -> String {
    const POOL: &[&str] = &[
        "",
        "user",
        "assistant",
        "system",
        "tool",
        "text",
        "image",
        "tool_use",
        "tool_result",
        "function",
        "auto",
        "any",
        "none",
        "gpt-x",
        "claude-x",
        "é漢字🙂",
        "\u{0}",
        "a\"b\\c",
        "data:image/png;base64,AAAA",
        "http://127.0.0.1:1/x.png",
        "{\"x\":",
        "[DONE]",
    ];
    if r.chance(80) {
        POOL[r.below(POOL.len())].to_string()
    } else {
        "x".repeat(r.below(3000))
    }
}

fn random_value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(r.chance(50)),
        2 => match r.below(6) {
            0 => json!(-1),
            1 => json!(0),
            2 => json!(1.5),
            3 => json!(u64::MAX),
            4 => json!(i64::MIN),
            _ => json!(1e308),
        },
        3 | 4 => json!(random_string(r)),
        5 if depth == 0 && r.chance(10) => {
            // A huge array of small values (every element is looked at).
            let filler = random_value(r, 4);
            Value::Array(vec![filler; 5000])
        }
        5 => Value::Array(
            (0..r.below(4))
                .map(|_| random_value(r, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..r.below(4) {
                m.insert(random_string(r), random_value(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// Replace, delete or add somewhere inside `v`.
fn mutate(r: &mut Rng, v: &mut Value, depth: u32) {
    let descend = depth < 6 && r.chance(70);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[r.below(keys.len())];
            if descend {
                mutate(r, m.get_mut(k).unwrap(), depth + 1);
            } else {
                match r.below(3) {
                    0 => {
                        m.remove(k);
                    }
                    1 => {
                        m.insert(k.clone(), random_value(r, depth));
                    }
                    _ => {
                        m.insert(random_string(r), random_value(r, depth));
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = r.below(a.len());
            if descend {
                mutate(r, &mut a[i], depth + 1);
            } else if r.chance(50) {
                a.remove(i);
            } else {
                a[i] = random_value(r, depth);
            }
        }
        _ => *v = random_value(r, depth),
    }
}

/// Builds a valid request body for one ingress.
type Template = fn(&mut Rng) -> Value;

fn chat_template(r: &mut Rng) -> Value {
    let model = if r.chance(50) { "gpt-x" } else { "claude-x" };
    json!({"model": model, "stream": r.chance(30), "max_tokens": 16, "temperature": 0.7,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "stop": ["END"], "response_format": {"type": "json_object"}})
}

fn messages_template(r: &mut Rng) -> Value {
    let model = if r.chance(50) { "gpt-x" } else { "claude-x" };
    json!({"model": model, "max_tokens": 16, "stream": r.chance(30),
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ok"}]}]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"}, "stop_sequences": ["END"], "temperature": 0.5})
}

fn responses_template(r: &mut Rng) -> Value {
    let model = ["gpt-x", "claude-x"][r.below(2)];
    json!({"model": model, "stream": r.chance(30), "instructions": "Be brief.", "max_output_tokens": 16,
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"}, {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": "auto", "text": {"format": {"type": "json_object"}}, "reasoning": {"effort": "low"}})
}

fn ollama_template(r: &mut Rng) -> Value {
    let model = ["gpt-x", "claude-x:latest"][r.below(2)];
    json!({"model": model, "stream": r.chance(30), "options": {"temperature": 0.2, "num_predict": 16, "stop": ["END"]},
        "format": "json",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "images": ["iVBORw0KGgo="]},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
            {"role": "tool", "content": "ok", "tool_name": "f"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
}

fn body(r: &mut Rng, template: Template) -> Vec<u8> {
    if r.chance(3) {
        return (0..r.below(300)).map(|_| r.next() as u8).collect();
    }
    let mut v = template(r);
    for _ in 0..1 + r.below(4) {
        mutate(r, &mut v, 0);
    }
    let mut bytes = serde_json::to_vec(&v).unwrap();
    if r.chance(10) {
        bytes.truncate(r.below(bytes.len() + 1));
    }
    if r.chance(5) {
        let at = r.below(bytes.len() + 1);
        bytes.splice(at..at, [0xff, 0xfe, 0xc3]);
    }
    bytes
}

fn check_shape(path: &str, status: u16, text: &str) -> Result<(), String> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    if !(400..500).contains(&status) {
        let head: String = text.chars().take(300).collect();
        return Err(format!("status {status}: {head}"));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        let head: String = text.chars().take(200).collect();
        format!("{status} error body not JSON ({e}): {head:?}")
    })?;
    let ok = if path == "/v1/messages" {
        v["type"] == "error" && v["error"]["type"].is_string() && v["error"]["message"].is_string()
    } else if path.starts_with("/api/") {
        v["error"].is_string()
    } else {
        v["error"]["message"].is_string() && v["error"]["type"].is_string()
    };
    if ok {
        Ok(())
    } else {
        Err(format!("wrong error shape for {path}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ingress_survives_generated_bad_input() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Timeouts are not under test here: a loaded CI machine must not turn a slow debug
    // build's answer into a 503.
    let gw = Arc::new(
        TestGateway::start_with(|c| {
            c.relay.first_byte_timeout = std::time::Duration::from_secs(20);
            c.relay.idle_timeout = std::time::Duration::from_secs(20);
        })
        .await,
    );
    let admin = gw.register("admin").await;
    let oa = fake_openai::Fake::new();
    oa.record.store(false, std::sync::atomic::Ordering::Relaxed);
    let oa_addr = fake_openai::start(oa).await;
    gw.add_openai_channel(&admin, "oa", oa_addr, "gpt-x", 0, 1)
        .await;
    let an_addr = fake_anthropic::start(fake_anthropic::Fake::new()).await;
    gw.add_channel(
        &admin,
        json!({"name": "an", "type": 14, "key": fake_anthropic::KEY, "base_url": format!("http://{an_addr}"), "models": "claude-x"}),
    )
    .await;
    let ingresses: [(&str, Template); 4] = [
        ("/v1/chat/completions", chat_template),
        ("/v1/messages", messages_template),
        ("/v1/responses", responses_template),
        ("/api/chat", ollama_template),
    ];
    for (path, template) in ingresses {
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        let seeds: Vec<u64> = match std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()) {
            Some(seed) => vec![seed],
            None => (0..cases as u64).collect(),
        };
        let results: Vec<(u64, u16, Result<(), String>)> = futures_util::stream::iter(seeds)
            .map(|seed| {
                let gw = gw.clone();
                let admin = admin.clone();
                async move {
                    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                    let b = body(&mut r, template);
                    let resp = gw
                        .client
                        .post(format!("{}{path}", gw.base))
                        .bearer_auth(&admin)
                        .header("content-type", "application/json")
                        .body(b)
                        .send()
                        .await;
                    match resp {
                        Err(e) => (seed, 0, Err(format!("request failed: {e}"))),
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            match resp.text().await {
                                Ok(text) => {
                                    if std::env::var("FUZZ_SEED").is_ok() {
                                        eprintln!("{status}: {}", &text[..text.len().min(600)]);
                                    }
                                    (seed, status, check_shape(path, status, &text))
                                }
                                Err(e) => (seed, status, Err(format!("body cut: {e}"))),
                            }
                        }
                    }
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut failures = Vec::new();
        for (seed, status, res) in results {
            *statuses.entry(status).or_default() += 1;
            if let Err(e) = res {
                failures.push(format!("seed {seed}: {e}"));
            }
        }
        eprintln!("{path}: {cases} generated bodies, statuses {statuses:?}");
        assert!(
            failures.is_empty(),
            "{path}: {} failures, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        // The mutations must reach deep: both rejections and successes occur.
        assert!(
            statuses.get(&400).copied().unwrap_or(0) > cases / 10,
            "{statuses:?}"
        );
        assert!(
            statuses.get(&200).copied().unwrap_or(0) > cases / 50,
            "{statuses:?}"
        );
    }
    // Still serving normally afterwards.
    let (s, _) = gw
        .post(
            "/v1/chat/completions",
            Some(&admin),
            json!({"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(s, 200);
}
