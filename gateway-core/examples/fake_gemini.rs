//! The fake Gemini API as a process, for the Python SDK tests.
//!
//! `fake_gemini` prints `listening on 127.0.0.1:PORT`; channels must use `fake_gemini::KEY`.
//! `--call NAME=JSON` (repeatable) scripts tool calls for real clients (see `Fake::script`).

#[path = "../tests/support/fake_gemini.rs"]
mod fake_gemini;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let fake = fake_gemini::Fake::new();
    *fake.script.lock().unwrap() = fake_gemini::script_from_args(&args);
    let addr = fake_gemini::start(fake).await;
    println!("listening on {addr}");
    let _ = tokio::signal::ctrl_c().await;
}
