//! The fake Gemini API as a process, for the Python SDK tests.
//!
//! `fake_gemini` prints `listening on 127.0.0.1:PORT`; channels must use `fake_gemini::KEY`.

#[path = "../tests/support/fake_gemini.rs"]
mod fake_gemini;

#[tokio::main]
async fn main() {
    let addr = fake_gemini::start(fake_gemini::Fake::new()).await;
    println!("listening on {addr}");
    let _ = tokio::signal::ctrl_c().await;
}
