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
    /// Local GGUF models: search the hub, download, import, list, inspect, delete; run
    /// them on llama-server as `local-<id>` channels.
    #[command(subcommand)]
    Model(ModelCommand),
    /// The llama-server engine: where it is, its version; install a llama.cpp release.
    #[command(subcommand)]
    Engine(EngineCommand),
    /// Start BurnCloud at login (off by default): on, off, status.
    #[command(subcommand)]
    Autostart(AutostartCommand),
    /// Users: list, show, change role/status/group/balance; registration settings.
    #[command(subcommand)]
    User(UserCommand),
    /// User groups and their price ratio.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Redemption codes: create batches, export, delete.
    #[command(subcommand)]
    Redemption(RedemptionCommand),
    /// Invitation codes for registration.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Owner's tools on this machine (reset a password).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Upstream channels: add, list, show, set, test, rm (--json on list/show/...).
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Virtual keys (sk-...): create, list, show, set, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
#[command(after_help = "Exit codes: 0 done; 1 refused or failed (reason on stderr); 2 bad usage.")]
pub enum ChannelCommand {
    /// Add a channel (--name, --type and --models are required; the key by --key-stdin
    /// keeps it out of the process list).
    Add {
        #[command(flatten)]
        args: ChannelArgs,
        #[arg(long)]
        json: bool,
    },
    /// List channels (keys masked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one channel.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a channel: only the options given change.
    Set {
        id: String,
        #[command(flatten)]
        args: ChannelArgs,
        #[arg(long)]
        json: bool,
    },
    /// Send one 1-token request to the channel's upstream (exit 1 when it fails).
    Test {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a channel.
    Rm { id: String },
}

#[derive(Args, Debug)]
pub struct ChannelArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// Channel type (New API numbers: 1 OpenAI-compatible, 3 Azure, 14 Anthropic, 24
    /// Gemini, 33 Bedrock, ...).
    #[arg(long = "type", value_name = "N")]
    pub channel_type: Option<i64>,
    /// The provider key (visible to other local users in the process list: prefer --key-stdin).
    #[arg(long)]
    pub key: Option<String>,
    /// Read the provider key from the first line of standard input.
    #[arg(long)]
    pub key_stdin: bool,
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Comma list of model names.
    #[arg(long)]
    pub models: Option<String>,
    /// Comma list of groups (default: default).
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long)]
    pub weight: Option<i64>,
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i64>,
    /// local or cloud.
    #[arg(long)]
    pub locality: Option<String>,
    /// JSON object: requested model → upstream model.
    #[arg(long, value_name = "JSON")]
    pub model_mapping: Option<String>,
    /// Requests per minute sent to this channel (0: no cap).
    #[arg(long, value_name = "N")]
    pub rpm_limit: Option<i64>,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
}

#[derive(Subcommand, Debug)]
#[command(after_help = "Exit codes: 0 done; 1 refused or failed (reason on stderr); 2 bad usage.")]
pub enum TokenCommand {
    /// Create a key (printed once) for the first admin, or for --user.
    Create {
        /// Owner (user name or id); default: the first admin.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        args: TokenArgs,
        #[arg(long)]
        json: bool,
    },
    /// List keys (masked), of everyone or of --user.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a key: only the options given change.
    Set {
        id: String,
        #[command(flatten)]
        args: TokenArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete a key: it stops working within a second.
    Revoke { id: String },
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[arg(long)]
    pub name: Option<String>,
    /// Spending limit in USD, or -1 / unlimited.
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub quota: Option<String>,
    /// Unix seconds when the key stops working, or -1 for never.
    #[arg(long, value_name = "UNIX", allow_hyphen_values = true)]
    pub expires: Option<i64>,
    /// Comma list of allowed models (empty: all).
    #[arg(long)]
    pub models: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    /// Comma list of allowed client addresses (a.b.c.d or a.b.c.d/n).
    #[arg(long, value_name = "IPS")]
    pub allow_ips: Option<String>,
    /// Requests per minute (0: no limit).
    #[arg(long, value_name = "N")]
    pub rpm: Option<i64>,
    /// Tokens per minute (0: no limit).
    #[arg(long, value_name = "N")]
    pub tpm: Option<i64>,
    /// Never route this key to cloud channels: true or false.
    #[arg(long, value_name = "BOOL")]
    pub local_only: Option<bool>,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Set a new password for USER (by name or id); prints a generated one unless
    /// --password-stdin gives it. Old login tokens stop working.
    ResetPassword {
        user: String,
        /// Read the new password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// List users with role, group, status and balance.
    List,
    /// Show one user (by name or id).
    Show { user: String },
    /// Change a user (by name or id).
    Set(UserSet),
    /// Show or change registration and new-user settings.
    Settings(UserSettings),
}

#[derive(Args, Debug)]
pub struct UserSet {
    /// User name or id.
    pub user: String,
    /// admin or user.
    #[arg(long)]
    pub role: Option<String>,
    /// enabled or disabled.
    #[arg(long)]
    pub status: Option<String>,
    /// A group that exists (see `burncloud group list`).
    #[arg(long)]
    pub group: Option<String>,
    /// Set what is left to spend (USD), or -1 / unlimited.
    #[arg(
        long,
        value_name = "USD",
        allow_hyphen_values = true,
        conflicts_with = "add_balance"
    )]
    pub balance: Option<String>,
    /// Add (or, negative, take away) this much (USD).
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub add_balance: Option<String>,
}

#[derive(Args, Debug)]
pub struct UserSettings {
    /// open, invite-only or closed.
    #[arg(long)]
    pub registration: Option<String>,
    /// Balance of newly registered users (USD), or -1 / unlimited.
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub new_user_balance: Option<String>,
    /// Credited to an inviter per registration with their code (USD).
    #[arg(long, value_name = "USD")]
    pub inviter_reward: Option<String>,
    /// Credited to an invited newcomer (USD).
    #[arg(long, value_name = "USD")]
    pub invitee_reward: Option<String>,
    /// Let non-admins use cloud models that have no price (billed $0): on or off.
    #[arg(long, value_name = "on|off")]
    pub allow_unpriced_cloud: Option<String>,
    /// How many registrations one user's invitation code may admit (admins' codes: any).
    #[arg(long, value_name = "N")]
    pub user_invite_max_uses: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List groups with their ratio and number of users.
    List,
    /// Create or change a group.
    Set {
        name: String,
        /// Price multiplier, e.g. 0.8.
        #[arg(long)]
        ratio: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group without users.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum RedemptionCommand {
    /// Create codes; prints one code per line.
    Create {
        /// USD each code credits.
        #[arg(long, value_name = "USD")]
        amount: String,
        #[arg(long, default_value_t = 1)]
        count: i64,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Unix seconds after which the codes are refused (default: never).
        #[arg(long)]
        expires_at: Option<i64>,
    },
    /// List codes (export).
    List {
        /// Only codes that can still be redeemed.
        #[arg(long)]
        unused: bool,
        /// CSV (code,name,amount_usd,state,expires_at,redeemed_by) instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Delete a code by id.
    Delete { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum InviteCommand {
    /// Create an invitation code; prints the code.
    Create {
        /// The inviter (name or id; default: the first admin).
        #[arg(long)]
        user: Option<String>,
        /// 0: unlimited.
        #[arg(long, default_value_t = 1)]
        max_uses: i64,
        /// Unix seconds after which the code is refused (default: never).
        #[arg(long)]
        expires_at: Option<i64>,
    },
    /// List invitation codes.
    List,
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum AutostartCommand {
    /// Start BurnCloud (window and tray) when you log in.
    On,
    /// Do not start at login (removes the entry).
    Off,
    /// Whether it starts at login.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum EngineCommand {
    /// Show the llama-server BurnCloud would use, its version and the devices it sees.
    Show,
    /// List the engines installed in the runtimes folder (one per backend and release).
    List,
    /// Download the official llama.cpp build for this machine (CUDA, Vulkan, HIP, Metal or
    /// CPU, from the GPUs found), check its SHA-256, install it beside the others.
    Install {
        /// Release JSON URL (default: llama.cpp's latest release; BURNCLOUD_ENGINE_RELEASE_URL).
        #[arg(long, env = "BURNCLOUD_ENGINE_RELEASE_URL")]
        url: Option<String>,
        /// cpu, cuda, vulkan, hip, sycl or metal (default: the best for this machine).
        #[arg(long, value_name = "BACKEND")]
        backend: Option<String>,
        /// Install even when the release gives no SHA-256 digest for the archive (a digest
        /// that does not match is always refused).
        #[arg(long)]
        allow_unverified: bool,
    },
}

/// How to deploy a model on llama-server (unset: keep the saved value or the default).
#[derive(Args, Debug, Default)]
pub struct DeployArgs {
    /// Model id or name.
    pub id: String,
    /// Port of the llama-server (default, or 0: first free from 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Context size (default: the fit verdict's).
    #[arg(long)]
    pub ctx: Option<u64>,
    /// Layers on the GPU: auto (the fit verdict's, the default), all (or -1), or N.
    #[arg(long, value_name = "auto|all|-1|N", allow_hyphen_values = true)]
    pub gpu_layers: Option<String>,
    /// CPU threads (default: llama-server's choice).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Parallel slots (-np).
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Start on the first request for local-<id> (just in time).
    #[arg(long)]
    pub jit: Option<bool>,
    /// Stop after this many seconds without requests (0: never).
    #[arg(long, value_name = "SECS")]
    pub idle_ttl: Option<u64>,
    /// Start with the app.
    #[arg(long)]
    pub autostart: Option<bool>,
    /// The engine's backend: cpu, cuda, vulkan, hip, sycl, metal (installed with `engine
    /// install --backend`), or auto (the preferred installed engine, or LLAMA_SERVER).
    #[arg(long, value_name = "BACKEND")]
    pub engine: Option<String>,
    /// What the model serves: chat (default), embeddings (/v1/embeddings) or rerank
    /// (/v1/rerank).
    #[arg(long, value_name = "chat|embeddings|rerank")]
    pub mode: Option<String>,
    /// Extra llama-server tuning arguments (repeat, e.g. --arg=--flash-attn --arg=on); an
    /// allow-list: model, host, port, key, files and logs are BurnCloud's.
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub extra: Vec<String>,
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
    /// Download models: REPO (its Q4_K_M or only variant), REPO:QUANT or REPO:FILE.
    /// Several are queued, --jobs at a time. Interrupted downloads resume where they
    /// stopped; files are SHA-256 verified.
    Download {
        /// REPO, REPO:QUANT (e.g. :Q4_K_M) or REPO:FILE (e.g. :model.Q8_0.gguf), one or more.
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
        /// Downloads at once (default: BURNCLOUD_DOWNLOAD_JOBS, or 2).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=llama_manager::queue::MAX_JOBS as i64))]
        jobs: Option<u16>,
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
    /// Give a model a name of your choice that the gateway also answers to (beside
    /// local-<id> and local-<name>), e.g. the model name a tool insists on sending.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["name", "clear"]))]
    Alias {
        /// Model id or name.
        id: String,
        /// The alias: letters, digits and - . _ : / (at most 64).
        name: Option<String>,
        /// Remove the model's alias.
        #[arg(long)]
        clear: bool,
    },
    /// A model's metadata and how it fits this machine.
    Info {
        /// Model id or name.
        id: String,
    },
    /// Start a model on llama-server in the running BurnCloud; it is served as local-<id>.
    Run {
        #[command(flatten)]
        deploy: DeployArgs,
        /// How long to wait for it to be ready, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Save how a model runs without starting it (e.g. --jit true --idle-ttl 600).
    Deploy {
        #[command(flatten)]
        deploy: DeployArgs,
    },
    /// Stop a running model (its local-<id> channel goes away).
    Stop {
        /// Model id or name.
        id: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Deployed models: state, port, pid, uptime, memory.
    Ps,
    /// A model's llama-server log.
    Logs {
        /// Model id or name.
        id: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines from the end.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
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
    /// Refresh the price catalog (what models cost when you set no price) from a file or
    /// URL in LiteLLM's model_prices_and_context_window.json format; your own prices win.
    Sync {
        /// A file path or an http(s) URL; default: LiteLLM's published file.
        source: Option<String>,
    },
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
        required_unless_present_any = ["alias", "model_ratio"]
    )]
    pub input: Option<String>,
    /// USD per 1M completion tokens.
    #[arg(
        long,
        value_name = "USD",
        conflicts_with = "alias",
        required_unless_present_any = ["alias", "model_ratio"]
    )]
    pub output: Option<String>,
    /// USD per 1M cached prompt tokens (optional).
    #[arg(long, value_name = "USD", conflicts_with = "alias")]
    pub cache_read: Option<String>,
    /// USD per 1M cache-write tokens (optional).
    #[arg(long, value_name = "USD", conflicts_with = "alias")]
    pub cache_write: Option<String>,
    /// Share OTHER's price instead of setting one.
    #[arg(long, value_name = "OTHER", conflicts_with = "model_ratio")]
    pub alias: Option<String>,
    /// Bill by New API ratios instead: prompt tokens at RATIO × $2 / 1M (an absolute price,
    /// if the model has one, still wins).
    #[arg(long, value_name = "RATIO", conflicts_with_all = ["input", "output", "cache_read", "cache_write"])]
    pub model_ratio: Option<String>,
    /// Completion tokens cost this many times prompt tokens (with --model-ratio; default 1).
    #[arg(long, value_name = "RATIO", requires = "model_ratio")]
    pub completion_ratio: Option<String>,
}
