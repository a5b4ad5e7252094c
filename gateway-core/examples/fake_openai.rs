//! The fake OpenAI upstream as a process, for the Python SDK tests and the benchmark.
//!
//! `fake_openai [--port N] [--no-record] [--chunk-delay-ms N] [--pieces N]` prints
//! `listening on 127.0.0.1:PORT`. `--pieces N`: streamed answers of N pieces of ~40
//! characters (no pause between chunks unless `--chunk-delay-ms` says one).
//! Requests with `"model": "fail-500"` / `"fail-429"` get those errors.
//! `--call NAME=JSON` (repeatable) scripts tool calls for real clients (see `Fake::script`).

#[path = "../tests/support/fake_openai.rs"]
mod fake_openai;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut fake = fake_openai::Fake::new();
    let number = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(f) = std::sync::Arc::get_mut(&mut fake) {
        if let Some(ms) = number("--chunk-delay-ms") {
            f.chunk_delay = std::time::Duration::from_millis(ms);
        }
        // N pieces of ~40 characters (a chunk of ~170 bytes each), sent back to back
        // unless a delay is given.
        if let Some(n) = number("--pieces") {
            f.pieces = vec!["lorem ipsum dolor sit amet, consectetur "; n as usize];
            if number("--chunk-delay-ms").is_none() {
                f.chunk_delay = std::time::Duration::ZERO;
            }
        }
    }
    if args.iter().any(|a| a == "--no-record") {
        fake.record
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
    *fake.script.lock().unwrap() = fake_openai::script_from_args(&args);
    let addr = fake_openai::start_on(fake, port).await;
    println!("listening on {addr}");
    let _ = tokio::signal::ctrl_c().await;
}
