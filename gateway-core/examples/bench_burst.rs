//! What burst routing costs per request: classifying the request body (keywords and every
//! detector) and deciding, on a 4 KB chat prompt (and a 32 KB one for scale).
//! `cargo run --release -p gateway-core --example bench_burst` (also part of `cargo xtask bench`).

use std::hint::black_box;
use std::time::Instant;

use gateway_core::burst::{
    self, BurstMode, BurstPolicy, BurstSettings, Inputs, Sensitivity, SideState,
};

/// A chat request of about `bytes` bytes: a system prompt, turns of ordinary prose with
/// numbers, dates and code in it (look-alikes the detectors must reject), nothing sensitive.
fn body(bytes: usize) -> Vec<u8> {
    let prose = "The quarterly report shows revenue of 1,234,567 units across 12 regions in 2024-05-17; \
                 see section 4.2.1 and ticket #48213. Version 3.14.159 of the parser handles order 12 345 \
                 and the function fn add(a: i32, b: i32) -> i32 { a + b } returns the sum. ";
    let mut messages = vec![
        serde_json::json!({"role": "system", "content": "You are a helpful assistant that answers briefly."}),
    ];
    let mut size = 0;
    let mut i = 0;
    while size < bytes {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        let text = prose.repeat(3);
        size += text.len() + 40;
        messages.push(serde_json::json!({"role": role, "content": text}));
        i += 1;
    }
    serde_json::to_vec(
        &serde_json::json!({"model": "burst-auto", "messages": messages, "stream": true}),
    )
    .expect("serialises")
}

fn measure(policy: &BurstPolicy, body: &[u8], n: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    let up = SideState {
        present: true,
        down: false,
        overloaded: false,
    };
    for _ in 0..n {
        let t = Instant::now();
        let level = policy.classifier.classify_body(black_box(body)).level;
        let d = burst::decide(&Inputs {
            mode: BurstMode::EdgeBurst,
            sensitivity: level,
            local_only_token: false,
            budget_exhausted: false,
            local: up,
            cloud: up,
        });
        black_box(d.ok());
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(level, Sensitivity::Public, "the benchmark prompt is public");
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.99))
}

fn main() {
    if std::env::args().any(|a| a == "--detail") {
        per_detector();
    }
    let policy = BurstPolicy::new(BurstSettings::default()).expect("default settings");
    for kb in [4, 32] {
        let b = body(kb * 1024);
        measure(&policy, &b, 500); // warm up
        let (p50, p99) = measure(&policy, &b, 20_000);
        println!(
            "burst classification + decision, {} byte prompt: p50 {p50:.4} ms, p99 {p99:.4} ms",
            b.len()
        );
    }
}

#[allow(dead_code)]
pub fn per_detector() {
    use gateway_core::burst::{Classifier, Detector};
    let b = body(4096);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let text: String = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string() + "\n")
        .collect();
    let t = Instant::now();
    for _ in 0..2000 {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(&b)).unwrap());
    }
    println!("parse: {:.4} ms", t.elapsed().as_secs_f64() * 1e3 / 2000.0);
    let kw: Vec<String> = burst::classify::DEFAULT_KEYWORDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let c = Classifier::new(&kw, &[], 1);
    let t = Instant::now();
    for _ in 0..2000 {
        black_box(c.classify_text(black_box(&text)));
    }
    println!(
        "keywords: {:.4} ms",
        t.elapsed().as_secs_f64() * 1e3 / 2000.0
    );
    for d in Detector::ALL {
        let c = Classifier::new(&[], &[d], 1);
        let t = Instant::now();
        for _ in 0..2000 {
            black_box(c.classify_text(black_box(&text)));
        }
        println!("{d:?}: {:.4} ms", t.elapsed().as_secs_f64() * 1e3 / 2000.0);
    }
}
