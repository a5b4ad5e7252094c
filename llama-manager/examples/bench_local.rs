//! Tokens/s and time to first token through the gateway vs directly against the same
//! llama-server, same run, requests interleaved: `bench_local [LLAMA_SERVER] [N] [MAX_TOKENS] [THREADS] [EMBD] [LAYERS]`
//! (LLAMA_SERVER also from BURNCLOUD_TEST_LLAMA_SERVER). Uses the tiny generated model,
//! streaming with `ignore_eos` so every request generates exactly MAX_TOKENS tokens.

use std::time::{Duration, Instant};

use gateway_core::store::channels;
use gateway_core::{Config, Gateway};
use llama_manager::library::Library;
use llama_manager::runtime::deploy::{self, SettingsPatch, State};
use llama_manager::runtime::{Runtime, RuntimeOptions};
use serde_json::{Value, json};

struct Sample {
    ttft: Duration,
    tokens: u64,
    gen_time: Duration,
}

async fn one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    model: &str,
    max_tokens: u64,
) -> Sample {
    let t0 = Instant::now();
    let mut resp = client
        .post(url)
        .bearer_auth(key)
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "Tell me a story"}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": 1,
            "ignore_eos": true,
            "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .send()
        .await
        .expect("request");
    if !resp.status().is_success() {
        let st = resp.status();
        panic!("{url}: {st}: {}", resp.text().await.unwrap_or_default());
    }
    let mut ttft = None;
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        let text = String::from_utf8_lossy(&chunk);
        if ttft.is_none() && text.contains("\"content\"") {
            ttft = Some(t0.elapsed());
        }
        buf.push_str(&text);
    }
    let total = t0.elapsed();
    let tokens = buf
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["usage"]["completion_tokens"].as_u64())
        .next()
        .unwrap_or(0);
    let ttft = ttft.unwrap_or(total);
    Sample {
        ttft,
        tokens,
        gen_time: total - ttft,
    }
}

fn summary(name: &str, s: &[Sample]) -> (f64, f64) {
    let mut ttfts: Vec<f64> = s.iter().map(|x| x.ttft.as_secs_f64() * 1000.0).collect();
    ttfts.sort_by(f64::total_cmp);
    let p50 = ttfts[ttfts.len() / 2];
    let tokens: u64 = s.iter().map(|x| x.tokens).sum();
    let time: f64 = s.iter().map(|x| x.gen_time.as_secs_f64()).sum();
    let tps = tokens as f64 / time;
    println!(
        "{name:<8} requests {:>3}  tokens {:>6}  tokens/s {:>8.1}  TTFT p50 {:>7.3} ms  p90 {:>7.3} ms",
        s.len(),
        tokens,
        tps,
        p50,
        ttfts[ttfts.len() * 9 / 10]
    );
    (tps, p50)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let engine = args
        .next()
        .or_else(|| std::env::var("BURNCLOUD_TEST_LLAMA_SERVER").ok())
        .expect("usage: bench_local LLAMA_SERVER [N] [MAX_TOKENS]");
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let max_tokens: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);
    let threads: Option<u32> = args.next().and_then(|a| a.parse().ok()).or(Some(1));
    // Model size: embedding width and layers (64 and 2: the tiny test model).
    let embd: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let layers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);

    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("logs");
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("{info}");
        for e in std::fs::read_dir(&log_dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "--- {}:\n{}",
                e.path().display(),
                lines[lines.len().saturating_sub(15)..].join("\n")
            );
        }
    }));
    let gateway = Gateway::open(Config::for_data_dir(dir.path(), 0))
        .await
        .unwrap();
    let handle = gateway
        .serve_on("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", handle.local_addr());
    let mut opts = RuntimeOptions::new(dir.path());
    opts.engine = Some(engine.into());
    let rt = Runtime::start(gateway.state().clone(), opts).await.unwrap();
    let model_path = dir.path().join("tiny.gguf");
    let model = llama_manager::testing::gguf_writer::TinyLlama {
        name: "bench".into(),
        embd,
        layers,
        ff: embd * 11 / 4,
        seed: 3,
        ..Default::default()
    };
    std::fs::write(&model_path, model.build()).unwrap();
    let store = gateway.state().store.clone();
    let id = Library::new(store.clone(), dir.path().join("models"))
        .import(&model_path)
        .unwrap()
        .id;
    store
        .with(|c| {
            deploy::save(
                c,
                id,
                SettingsPatch {
                    // One generation thread: on a 2-core machine the gateway and the
                    // client need the other core (llama-server's threads spin).
                    threads: Some(threads),
                    ..Default::default()
                },
                Some(true),
            )
        })
        .unwrap();
    rt.reconcile();
    let st = rt.settled(id).await.unwrap();
    assert_eq!(st.state, State::Ready, "{st:?}");
    let ch = store
        .with(|c| channels::get(c, st.channel_id.unwrap()))
        .unwrap()
        .unwrap();
    // No pooling: llama-server closes each connection after a streamed answer.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let v: Value = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "bench", "password": "YourSecurePassword!", "email": "b@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = v["data"]["token"].as_str().unwrap().to_string();
    let model = format!("local-{id}");
    let direct_url = format!("{}/v1/chat/completions", ch.base_url);
    let gw_url = format!("{base}/v1/chat/completions");
    // Warm up both paths.
    for _ in 0..3 {
        one(&client, &direct_url, &ch.key, &model, 16).await;
        one(&client, &gw_url, &jwt, &model, 16).await;
    }
    let (mut direct, mut via) = (Vec::new(), Vec::new());
    for i in 0..n {
        // Alternate which goes first so neither side always gets the warmer cache.
        if i % 2 == 0 {
            direct.push(one(&client, &direct_url, &ch.key, &model, max_tokens).await);
            via.push(one(&client, &gw_url, &jwt, &model, max_tokens).await);
        } else {
            via.push(one(&client, &gw_url, &jwt, &model, max_tokens).await);
            direct.push(one(&client, &direct_url, &ch.key, &model, max_tokens).await);
        }
    }
    println!(
        "llama-server {model} (embd {embd}, {layers} layers, threads {threads:?}), {n} streamed requests each, {max_tokens} tokens each, interleaved:"
    );
    let (d_tps, d_ttft) = summary("direct", &direct);
    let (g_tps, g_ttft) = summary("gateway", &via);
    println!(
        "gateway / direct tokens/s = {:.3}   TTFT p50 added = {:+.3} ms",
        g_tps / d_tps,
        g_ttft - d_ttft
    );
    rt.shutdown().await;
    handle.stop(Duration::from_secs(2)).await;
    gateway.shutdown().await;
}
