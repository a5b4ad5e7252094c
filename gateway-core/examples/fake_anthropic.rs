//! The fake Anthropic Messages API as a process, for the Python SDK tests.
//!
//! `fake_anthropic` prints `listening on 127.0.0.1:PORT`; channels must use the key
//! `fake_anthropic::KEY`.

#[path = "../tests/support/fake_anthropic.rs"]
mod fake_anthropic;

#[tokio::main]
async fn main() {
    let addr = fake_anthropic::start(fake_anthropic::Fake::new()).await;
    println!("listening on {addr}");
    let _ = tokio::signal::ctrl_c().await;
}
