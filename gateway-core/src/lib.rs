//! BurnCloud's gateway: everything behind `http://127.0.0.1:3000`, with no GUI and no
//! knowledge of llama.cpp.
//!
//! It is for: storing users, groups, channels, tokens, prices, redemption codes, invitations and logs (SQLite); serving the
//! control plane (`/api/*`, `/console/api/*`) and the data plane (`/v1/*`, OpenAI wire
//! format); routing, failover, billing, limits and metrics. It is not for: windows, trays,
//! model downloads or process supervision (see `llama-manager` and the `burncloud` app).
//!
//! # Layout
//!
//! The modules are layered (see `tests/module_graph.rs`): each imports only modules of
//! lower layers, so there is no import circle.
//!
//! - [`config`]: settings from the environment.
//! - [`store`]: SQLite store, migrations, one module per table family.
//! - [`wire`]: what protocol conversions share (answer stages, endpoints, SSE, error shapes).
//! - [`ingress`]: client protocols (Anthropic Messages, Responses, Ollama) ⇄ OpenAI chat.
//! - [`upstream`]: one file per provider: its requests, answers, key rules.
//! - [`auth`]: passwords, JWTs, `sk-` keys.
//! - [`catalog`]: the price catalog (LiteLLM's format), shipped and synced.
//! - [`secure`]: owner-only files and folders.
//! - [`money`]: integer nano-dollars; prices per 1M tokens.
//! - [`tariff`]: what a request costs: absolute prices or model ratios × group ratio.
//! - [`channel_types`]: the New API channel type table.
//! - [`snapshot`]: the immutable routing snapshot the data plane reads.
//! - [`state`]: shared state handed to handlers.
//! - [`console`]: the console service: control-plane rules for the API and the consoles.
//! - [`http`]: control-plane handlers and the router.
//! - [`burst`]: burst routing policy: sensitivity classifier, load, cloud budget, decision.
//! - [`local`]: the seam to the local runtime (start a local model on demand).
//! - [`probe`]: a channel's 1-token test request.
//! - [`vocab`]: shared words (usage, rates, the data plane's error shape, time); a leaf.
//! - [`throttle`]: login/registration throttling and the argon2 threads.
//! - [`live`]: the data plane's in-memory state (breakers, ledger, limits, metrics, writer).
//! - [`relay`]: the data plane (ingress, routing, forwarding, usage).
//! - [`server`]: open, serve, stop.
//! - [`testing`]: the conversions the golden tests and the fake providers use directly.

pub mod auth;
pub mod burst;
pub mod catalog;
pub mod channel_types;
pub mod config;
pub mod console;
pub mod http;
pub(crate) mod ingress;
pub(crate) mod live;
pub use live::heap::trim as trim_heap;
pub mod local;
pub mod money;
pub(crate) mod probe;
pub(crate) mod relay;
pub mod secure;
pub mod server;
pub(crate) mod snapshot;
pub mod state;
pub mod store;
pub mod tariff;
pub mod testing;
pub(crate) mod throttle;
pub(crate) mod upstream;
pub mod vocab;
pub(crate) mod wire;

pub use config::Config;
pub use server::{Bootstrap, Gateway, ServeHandle, StartError};
pub use state::AppState;

/// The maps read on every request (the routing snapshot's, the ledger's, breakers, rate
/// windows, loads, the connection pool): looked up with keys callers do not insert, so a
/// fast seeded hash (foldhash) serves them instead of SipHash.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
