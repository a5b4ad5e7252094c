//! Test support (feature `test-support`): the GGUF writer and the fake hub.

pub mod fake_hub;
pub mod gguf_writer;
