//! The fake Anthropic Messages API as a process, for the Python SDK tests.
//!
//! `fake_anthropic` prints `listening on 127.0.0.1:PORT`; channels must use the key
//! `fake_anthropic::KEY`. `--call NAME=JSON` (repeatable) scripts tool calls for real
//! clients (see `Fake::script`).

#[path = "../tests/support/fake_anthropic.rs"]
mod fake_anthropic;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let fake = fake_anthropic::Fake::new();
    *fake.script.lock().unwrap() = fake_anthropic::script_from_args(&args);
    let addr = fake_anthropic::start(fake).await;
    println!("listening on {addr}");
    let _ = tokio::signal::ctrl_c().await;
}
