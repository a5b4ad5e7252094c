//! What storing one request's log record costs the usage writer on SQLite: batches of
//! records shaped like the benchmark's (a priced chat request of a key and its user)
//! committed through `logs::commit_usage`, as the writer thread does under load.
//! `cargo run --release -p gateway-core --example bench_usage_writer -- [DIR] [BATCHES] [BATCH]`
//! (defaults: a temporary directory, 200 batches of 256). Under
//! `valgrind --tool=callgrind` it gives instructions per record, whatever the host does.

use std::time::Instant;

use gateway_core::store::Store;
use gateway_core::store::logs::{self, LogRecord};

fn record(i: usize, t0: i64) -> LogRecord {
    LogRecord {
        request_id: format!("{:x}-{:x}", t0 + i as i64, i),
        created_at_ms: t0 + i as i64,
        user_id: Some("3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b".into()),
        token_id: Some(1),
        model: Some("bench-model".into()),
        channel_id: Some(1),
        endpoint: "/v1/chat/completions".into(),
        status: 200,
        stream: false,
        latency_ms: Some(1),
        ttfb_ms: Some(1),
        prompt_tokens: Some(12),
        completion_tokens: Some(9),
        cost_nano: 7_200,
        locality: Some("cloud".into()),
        ingress: Some("openai".into()),
        upstream: Some("openai".into()),
        ..Default::default()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let batches: usize = args.next().map_or(200, |a| a.parse().expect("BATCHES"));
    let size: usize = args.next().map_or(256, |a| a.parse().expect("BATCH"));
    std::fs::create_dir_all(&dir).expect("the data directory");
    let store = Store::open(&dir.join("bench.db")).expect("the database");
    let t0 = 1_764_547_200_000;
    // Made before the clock starts: only the commits are timed.
    let all: Vec<Vec<LogRecord>> = (0..batches)
        .map(|b| (b * size..(b + 1) * size).map(|i| record(i, t0)).collect())
        .collect();
    let n = batches * size;
    let started = Instant::now();
    for batch in &all {
        store
            .with(|c| logs::commit_usage(c, batch, None))
            .expect("the batch is stored");
    }
    let took = started.elapsed();
    println!(
        "{n} records in {batches} batches of {size}: {:.2} µs per record",
        took.as_secs_f64() * 1e6 / n as f64
    );
}
