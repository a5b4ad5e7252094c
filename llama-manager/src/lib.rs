//! BurnCloud's local-model side: model hub and downloads, the model library, hardware
//! detection, and `llama-server` supervision. It depends on `gateway-core` only to
//! register the models it serves as channels.
//!
//! # Layout
//!
//! Nothing is built here yet: the model hub, library and runtime issues fill this crate.
//! The gateway reaches it only through traits gateway-core defines, so the gateway builds
//! and tests without it.
