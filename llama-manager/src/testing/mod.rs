//! Test support (feature `test-support`): the GGUF writer, the fake hub and the fake
//! llama.cpp release server.

pub mod fake_hub;
pub mod fake_release;
pub mod gguf_writer;

/// The real llama-server the tests use: `BURNCLOUD_TEST_LLAMA_SERVER` (set by
/// `cargo xtask test`, which builds the pinned one), else that build's cache path.
/// Panics with what to do when there is none: a missing prerequisite fails, never skips.
pub fn llama_server() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("BURNCLOUD_TEST_LLAMA_SERVER") {
        return p.into();
    }
    let cached = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default()
        .join(".cache/burncloud/llama-server-11434.0.0/llama-server");
    assert!(
        cached.exists(),
        "no llama-server for the tests: run `cargo xtask test` (it builds the pinned one) or set BURNCLOUD_TEST_LLAMA_SERVER"
    );
    cached
}
