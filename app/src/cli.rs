//! Command-line interface definition.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "burncloud",
    version,
    about = "BurnCloud: one OpenAI-compatible door to your cloud providers and local GGUF models",
    long_about = "BurnCloud: one OpenAI-compatible door (http://127.0.0.1:3000/v1) to your cloud providers and local models.\n\nWithout a command it opens the desktop app with the gateway running inside it."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the headless gateway on HOST:PORT (default 127.0.0.1:3000) until SIGINT/SIGTERM.
    #[command(alias = "serve")]
    Router,
    /// Model prices (USD per 1M tokens), as the gateway bills them.
    #[command(subcommand)]
    Price(PriceCommand),
    /// Local GGUF models: search the hub, download, import, list, inspect, delete.
    #[command(subcommand)]
    Model(ModelCommand),
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Search GGUF repositories on the hub (HF_ENDPOINT, default huggingface.co).
    Search(ModelSearch),
    /// A hub repository's GGUF files: quantizations, sizes, shards, projectors, fit.
    Show {
        /// Repository, e.g. TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF.
        repo: String,
    },
    /// Download a model: REPO (its Q4_K_M or only variant), REPO:QUANT or REPO:FILE.
    /// Interrupted downloads resume where they stopped; files are SHA-256 verified.
    Download {
        /// REPO, REPO:QUANT (e.g. :Q4_K_M) or REPO:FILE (e.g. :model.Q8_0.gguf).
        spec: String,
    },
    /// List the models in the library.
    List,
    /// Register an existing .gguf file in place (no copy).
    Import { path: std::path::PathBuf },
    /// Remove a model from the library (downloaded files are deleted, imported ones kept).
    Rm {
        /// Model id or name.
        id: String,
    },
    /// A model's metadata and how it fits this machine.
    Info {
        /// Model id or name.
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct ModelSearch {
    /// Text to search for.
    pub query: String,
    /// Sort order.
    #[arg(long, value_enum, default_value = "downloads")]
    pub sort: SearchSort,
    /// Results per page.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Page number (1 = first).
    #[arg(long, default_value_t = 1)]
    pub page: u32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SearchSort {
    Downloads,
    Likes,
    Recent,
}

#[derive(Subcommand, Debug)]
pub enum PriceCommand {
    /// List every price.
    List,
    /// Set a model's price per 1M tokens, or make it an alias of another model's price.
    Set(PriceSet),
    /// Show one model's price.
    Get { model: String },
    /// Delete a model's price.
    Delete { model: String },
}

#[derive(Args, Debug)]
pub struct PriceSet {
    /// The model name as clients send it.
    pub model: String,
    /// USD per 1M prompt tokens.
    #[arg(
        long,
        value_name = "USD",
        conflicts_with = "alias",
        required_unless_present = "alias"
    )]
    pub input: Option<String>,
    /// USD per 1M completion tokens.
    #[arg(
        long,
        value_name = "USD",
        conflicts_with = "alias",
        required_unless_present = "alias"
    )]
    pub output: Option<String>,
    /// USD per 1M cached prompt tokens (optional).
    #[arg(long, value_name = "USD", conflicts_with = "alias")]
    pub cache_read: Option<String>,
    /// USD per 1M cache-write tokens (optional).
    #[arg(long, value_name = "USD", conflicts_with = "alias")]
    pub cache_write: Option<String>,
    /// Share OTHER's price instead of setting one.
    #[arg(long, value_name = "OTHER")]
    pub alias: Option<String>,
}
