//! BurnCloud's local-model side: model hub and downloads, the model library, hardware
//! detection and fit verdicts, and `llama-server` supervision.
//! It depends on `gateway-core` for the database (`Store`); gateway-core never depends
//! on it.
//!
//! # Layout
//!
//! - `gguf` — our own GGUF header parser and the model summary read from it.
//! - `library` — the model library: import in place, list, info, delete (table `models`).
//! - `hardware` — RAM/CPU (`sysinfo`), GPUs (`nvidia-smi`, ROCm sysfs, Apple unified memory).
//! - `fit` — full GPU / partial offload / CPU only / won't fit, with suggested context
//!   and GPU layers, from the header and the hardware.
//! - `hub` — the hub client (search, repo details, tree) against `HF_ENDPOINT`, file
//!   names → quantization/shards/`mmproj`, remote header reads.
//! - `download` — resumable, verified downloads (Range, retry, stall detection, SHA-256).
//! - `queue` — the download queue: at most N downloads at once, the rest in line; pause,
//!   resume, cancel per job; events with the job id.
//! - `instance` — one owner per data folder: an OS file lock and a note of its holder.
//! - `runtime` — llama-server supervision: engine discovery/install, deployments, one
//!   supervisor owning every child, `local-<id>` channel registration, just-in-time start.
//! - `testing` (feature `test-support`) — the GGUF writer and the fake hub.

pub mod download;
pub mod fit;
pub mod gguf;
pub mod hardware;
pub mod hub;
pub mod instance;
pub mod library;
pub mod queue;
pub mod runtime;

#[cfg(feature = "test-support")]
pub mod testing;
