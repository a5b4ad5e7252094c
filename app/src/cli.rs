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
