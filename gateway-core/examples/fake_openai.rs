//! The fake OpenAI upstream as a process, for the Python SDK tests and the benchmark.
//!
//! `fake_openai [--port N] [--no-record] [--chunk-delay-ms N] [--pieces N]` prints
//! `listening on 127.0.0.1:PORT`.
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
    let fake = fake_openai::Fake::new();
    if args.iter().any(|a| a == "--no-record") {
        fake.record
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }
    *fake.script.lock().unwrap() = fake_openai::script_from_args(&args);
    let addr = fake_openai::start_on(fake, port).await;
    println!("listening on {addr}");
    let _ = tokio::signal::ctrl_c().await;
}
