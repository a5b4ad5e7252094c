//! What the pages show (plain data, filled by `crate::console` from the live gateway and
//! library) and what they ask for (`Action`). No gateway or desktop types here, so the
//! views render the same in the webview, in SSR tests and in a future web console.

mod accounts;
mod chat;
pub use accounts::*;
pub use chat::*;

/// Everything the pages show, loaded in one go by the console service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsoleData {
    pub dashboard: DashboardData,
    pub channels: Vec<ChannelRow>,
    pub channel_types: Vec<ChannelTypeOption>,
    pub tokens: Vec<TokenRow>,
    pub models: ModelsData,
    pub logs: LogsData,
    pub prices: Vec<PriceRow>,
    pub users: UsersData,
    pub settings: SettingsData,
    pub chat: ChatData,
}

/// One minute of traffic (the dashboard's charts).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MinuteStats {
    pub requests: i64,
    pub tokens: i64,
    pub cost_nano: i64,
    pub errors: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DashboardData {
    /// The first-run key, while that token still exists (read from the 0600 key file).
    pub key: Option<String>,
    /// Why there is no key to show (deleted, revoked, or never created here).
    pub key_note: Option<String>,
    /// A model name to put in the snippets (the first routable one, or a placeholder).
    pub example_model: String,
    /// Nothing answers yet (no channel, no library model): the dashboard offers the two
    /// ways to a first answer instead of snippets for a model nothing serves.
    pub get_started: bool,
    /// Providers the one-step connect offers (those that list their models).
    pub providers: Vec<ChannelTypeOption>,
    /// A small model on the hub that fits this machine (first run, the local way).
    pub local_pick: Option<LocalPick>,
    /// Why there is no pick (yet): searching, or none fits, or the hub is unreachable.
    pub local_note: Option<String>,
    /// The last 60 minutes, oldest first (always 60 entries).
    pub minutes: Vec<MinuteStats>,
    pub running: Vec<RunningModel>,
    pub recent: Vec<LogItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunningModel {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelTypeOption {
    pub id: i64,
    pub name: String,
    pub default_base_url: String,
    pub local: bool,
    /// Its provider lists the models a key may use (one-step connect).
    pub lists_models: bool,
}

/// A model the dashboard offers to download and run (first run).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalPick {
    /// `REPO:FILE`.
    pub spec: String,
    pub repo: String,
    pub file: String,
    pub quantization: String,
    pub size: String,
    /// The fit verdict's label.
    pub fit: String,
    /// The context the fit suggests (0: the model's own).
    pub ctx: u64,
    /// Its download, once started, in words.
    pub progress: Option<String>,
}

/// The dashboard's one-step provider connect (first run), as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderForm {
    pub type_id: i64,
    pub key: String,
    /// Empty: the provider's default address.
    pub base_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub type_id: i64,
    pub type_name: String,
    pub base_url: String,
    pub masked_key: String,
    pub models: String,
    /// `from=to` pairs, comma separated.
    pub mapping: String,
    pub group: String,
    pub priority: i64,
    pub weight: i64,
    pub locality: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// `closed`, `open`, `half-open`.
    pub breaker: String,
    pub latency_ms: Option<f64>,
    pub in_flight: i64,
    pub today_requests: i64,
    pub today_tokens: i64,
    pub today_cost: String,
    /// The channel has a known type (every type can be tested).
    pub testable: bool,
}

/// The add/edit channel form (text as typed; the service parses and validates).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelForm {
    pub id: Option<i64>,
    pub type_id: i64,
    pub name: String,
    /// Empty on edit keeps the stored key.
    pub key: String,
    pub base_url: String,
    pub models: String,
    pub mapping: String,
    pub group: String,
    pub priority: String,
    pub weight: String,
    pub locality: String,
}

impl ChannelForm {
    pub fn from_row(c: &ChannelRow) -> Self {
        ChannelForm {
            id: Some(c.id),
            type_id: c.type_id,
            name: c.name.clone(),
            key: String::new(),
            base_url: c.base_url.clone(),
            models: c.models.clone(),
            mapping: c.mapping.clone(),
            group: c.group.clone(),
            priority: c.priority.to_string(),
            weight: c.weight.to_string(),
            locality: c.locality.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub display: String,
    pub enabled: bool,
    pub quota: String,
    pub used: String,
    pub expires: String,
    pub expired: bool,
    pub models: String,
    pub group: String,
    pub local_only: bool,
    pub requests: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenForm {
    pub name: String,
    /// USD; empty = unlimited.
    pub quota_usd: String,
    /// Days from now; empty = never.
    pub expires_days: String,
    pub models: String,
    pub group: String,
    pub local_only: bool,
}

/// The llama-server in use (`path (source)`), or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineStatus {
    Found(String),
    Missing(String),
}

impl Default for EngineStatus {
    fn default() -> Self {
        EngineStatus::Missing(String::new())
    }
}

impl From<Result<String, String>> for EngineStatus {
    fn from(r: Result<String, String>) -> Self {
        match r {
            Ok(s) => EngineStatus::Found(s),
            Err(e) => EngineStatus::Missing(e),
        }
    }
}

impl EngineStatus {
    pub fn as_result(&self) -> Result<String, String> {
        match self {
            EngineStatus::Found(s) => Ok(s.clone()),
            EngineStatus::Missing(e) => Err(e.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelsData {
    /// `path (version)` of the llama-server in use, or why there is none.
    pub engine: EngineStatus,
    pub hardware: String,
    /// A GPU is present that the engine cannot use (a CPU build): what to do.
    pub gpu_warning: Option<String>,
    /// The backends with an engine installed in the runtimes folder (`cuda`, `vulkan`, …).
    pub installed_backends: Vec<String>,
    pub models: Vec<ModelRow>,
    /// Whether a runtime supervises models in this process.
    pub runtime: bool,
    pub hub: HubData,
}

/// The hub search, the files of the repository opened, and this process's downloads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HubData {
    /// The last search (kept by the console).
    pub query: String,
    /// `downloads`, `likes` or `recent`.
    pub sort: String,
    pub results: Vec<HubRepoRow>,
    /// The page of results shown (1 is the first) and whether the hub has another.
    pub page: u32,
    pub has_next: bool,
    pub files: Option<HubFilesData>,
    /// Newest first (finished ones until cleared).
    pub downloads: Vec<DownloadRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubRepoRow {
    pub id: String,
    pub downloads: u64,
    pub likes: u64,
    /// `YYYY-MM-DD`.
    pub updated: String,
    pub gated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubFilesData {
    pub repo: String,
    pub sha: String,
    pub gated: bool,
    pub files: Vec<HubFileRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubFileRow {
    /// The first (or only) weight file.
    pub path: String,
    pub quantization: String,
    /// All shards together.
    pub size: String,
    pub bytes: u64,
    pub shards: u32,
    pub complete: bool,
    /// What `Action::Download` takes: `REPO:FILE`.
    pub spec: String,
    /// Read from the remote header on request.
    pub fit: Option<HubFit>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HubFit {
    pub label: String,
    pub ok: bool,
    pub explain: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DownloadRow {
    pub id: u64,
    pub spec: String,
    /// `queued`, `downloading`, `paused`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// `done / total` of the file in transfer.
    pub bytes: String,
    pub percent: u8,
    pub rate: String,
    pub eta: String,
    pub can_pause: bool,
    pub can_resume: bool,
    pub can_cancel: bool,
    pub error: Option<String>,
    pub fix: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub id: i64,
    pub name: String,
    /// The owner's extra name the gateway also answers to.
    pub alias: Option<String>,
    pub channel: String,
    pub architecture: String,
    pub parameters: String,
    pub quantization: String,
    pub size: String,
    pub context: String,
    pub source: String,
    pub path: String,
    pub fit_label: String,
    pub fit_ok: bool,
    pub fit_explain: String,
    pub fit_ctx: u64,
    pub fit_gpu_layers: u64,
    pub deployment: Option<DeploymentRow>,
    /// The child's last log lines (this run).
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    pub state: String,
    pub active: bool,
    pub desired_running: bool,
    pub port: Option<u16>,
    pub pid: Option<u32>,
    pub memory: Option<String>,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub ctx: Option<u64>,
    /// `all` or a number; None: auto (the fit's).
    pub gpu_layers: Option<String>,
    /// The configured port (None: the first free one).
    pub port_setting: Option<u16>,
    pub threads: Option<u32>,
    pub parallel: Option<u32>,
    /// The engine's backend (None: auto).
    pub engine: Option<String>,
    pub mode: String,
    pub jit: bool,
    pub idle_ttl_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeployForm {
    pub model_id: i64,
    /// Blank: the first free port.
    pub port: String,
    pub ctx: String,
    /// `auto`, `all` (or -1) or a number.
    pub gpu_layers: String,
    /// Blank: llama-server's choice.
    pub threads: String,
    pub parallel: String,
    /// `auto` or an installed backend (cpu, cuda, vulkan, hip, sycl, metal).
    pub engine: String,
    /// `chat`, `embeddings` or `rerank`.
    pub mode: String,
    pub jit: bool,
    pub idle_ttl_secs: String,
    /// Start now (else only save the settings).
    pub start: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogFilter {
    pub model: String,
    /// `""`, `ok` (< 400) or `error` (≥ 400), or an exact status code.
    pub status: String,
    pub channel: String,
    pub page: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogsData {
    pub filter: LogFilter,
    pub total: i64,
    pub page_size: i64,
    pub rows: Vec<LogItem>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogItem {
    pub id: i64,
    pub request_id: String,
    pub time: String,
    pub endpoint: String,
    pub model: String,
    pub channel: String,
    pub status: i64,
    pub latency: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: String,
    pub error: Option<String>,
    /// The failover trail, e.g. `3:502, 5:timeout`.
    pub failover: Option<String>,
    /// `mode, reason, sensitivity`.
    pub burst: Option<String>,
    pub locality: Option<String>,
    pub flags: Option<String>,
    pub stream: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    pub model: String,
    pub input: String,
    pub output: String,
    pub cache_read: String,
    pub cache_write: String,
    pub alias_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceForm {
    pub model: String,
    pub input: String,
    pub output: String,
    pub cache_read: String,
    pub cache_write: String,
    /// Non-empty: make `model` an alias of this model instead.
    pub alias_of: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
    pub fn parse(s: &str) -> Theme {
        match s {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            _ => Theme::System,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BurstForm {
    /// `edge_burst` or `cloud_burst`.
    pub mode: String,
    pub alias: String,
    /// USD per day; `-1` no budget.
    pub daily_budget_usd: String,
    pub local_max_queue: String,
    pub cloud_max_queue: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsData {
    /// The saved listen address (used at the next start of the listener).
    pub host: String,
    pub port: u16,
    /// Where the gateway listens now.
    pub listening: String,
    /// The listen variables set in the environment (`NAME=value`): they win over the saved
    /// address.
    pub env_override: Vec<String>,
    pub burst: BurstForm,
    pub hub_endpoint: String,
    /// Where the hub token comes from, or None.
    pub hub_token: Option<String>,
    pub engine: EngineStatus,
    pub close_to_tray: bool,
    /// Start at login: on/off and where the entry lives; None when it cannot be told.
    pub autostart: Option<(bool, String)>,
    pub theme: Theme,
    pub data_dir: String,
    /// The key keyless Ollama-API requests from this machine use (None: off).
    pub ollama_keyless: Option<i64>,
    /// Enabled keys to choose from: (id, "name (sk-ab…yz)").
    pub keys: Vec<(i64, String)>,
    /// How many days request-log records are kept (0: every record).
    pub log_retention_days: i64,
}

/// What a page asks the service (or the desktop) to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    ToggleGateway,
    /// Chat page: send a message (a new conversation when the form names none).
    ChatSend(ChatForm),
    /// Stop the answer streaming now (what arrived is kept).
    ChatStop,
    /// Open a saved conversation (None: a new chat).
    ChatOpen(Option<i64>),
    ChatRename {
        id: i64,
        title: String,
    },
    ChatDelete(i64),
    /// Attach an image file (picked or dropped; the desktop gives its path) to the next
    /// message.
    ChatAttach(String),
    /// Take the pending image at this index off the next message.
    ChatDetach(usize),
    /// Go to the Chat page with this model picked (from the dashboard and the Models page).
    ChatWith(String),
    /// First run: connect a provider in one step (its models are listed and served).
    ConnectProvider(ProviderForm),
    /// First run: download the offered model (`REPO:FILE`), deploy it, open Chat on it.
    RunLocalPick(String),
    /// Put text on the clipboard (the desktop layer does it).
    Copy(String),
    SaveChannel(ChannelForm),
    SetChannelEnabled(i64, bool),
    DeleteChannel(i64),
    TestChannel(i64),
    /// Ask the channel's provider which models its key may use.
    ListChannelModels(i64),
    CreateToken(TokenForm),
    SetTokenEnabled(i64, bool),
    RevokeToken(i64),
    /// A new dashboard key (when the first-run key is gone).
    NewDashboardKey,
    Deploy(DeployForm),
    /// Install the engine of one backend (`cuda`, `vulkan`, …).
    InstallBackend(String),
    /// A library model's alias (empty: clear it).
    SetModelAlias {
        id: i64,
        alias: String,
    },
    /// Add a GGUF file already on this machine to the library (picked or dropped).
    ImportGguf(String),
    StartModel(i64),
    StopModel(i64),
    FilterLogs(LogFilter),
    SavePrice(PriceForm),
    DeletePrice(String),
    SaveListen {
        host: String,
        port: String,
    },
    SaveBurst(BurstForm),
    InstallEngine,
    /// Search the hub's GGUF repositories (`sort`: `downloads`, `likes`, `recent`).
    HubSearch {
        query: String,
        sort: String,
    },
    /// Another page of the last search (1 is the first).
    HubPage(u32),
    /// List a repository's GGUF files.
    HubFiles(String),
    /// Read a file's header on the hub and tell how it fits this machine.
    HubFit {
        repo: String,
        file: String,
    },
    /// Queue `REPO:FILE` for download.
    Download(String),
    PauseDownload(u64),
    /// Take done, failed and cancelled downloads off the list.
    ClearFinishedDownloads,
    ResumeDownload(u64),
    CancelDownload(u64),
    SetCloseToTray(bool),
    SetAutostart(bool),
    /// Let keyless Ollama-API requests from this machine use this key (None: off).
    SetOllamaKeyless(Option<i64>),
    /// Keep request-log records this many days (the text typed; 0: every record).
    SetLogRetention(String),
    SetTheme(Theme),
    /// Credit a redemption code to the signed-in user (web console).
    Redeem(String),
    /// A single-use invitation link from the signed-in user (web console).
    CreateInvitation,
    DeleteInvitation(String),
    /// End the web console's session.
    Logout,
    /// Take the notice (and a key shown once with it) off the screen.
    DismissNotice,
    /// Users page (admins): make an account.
    CreateUser(NewUserForm),
    SetUserEnabled {
        id: String,
        enabled: bool,
    },
    /// `admin` or `user`.
    SetUserRole {
        id: String,
        role: String,
    },
    SetUserGroup {
        id: String,
        group: String,
    },
    /// Add to, take from or set a user's balance (USD as typed; set `-1`: unlimited).
    ChangeBalance {
        id: String,
        how: BalanceHow,
        amount: String,
    },
    /// Create or change a group and its price ratio.
    SaveGroup(GroupForm),
    DeleteGroup(String),
    /// A batch of redemption codes.
    CreateRedemptions(RedemptionForm),
    /// Revoke (delete) a redemption code.
    DeleteRedemption(i64),
    /// Write the codes as CSV into the data folder's `exports/` (`unused_only`: only the
    /// codes that can still be redeemed).
    ExportRedemptions {
        unused_only: bool,
    },
    /// An invitation from the admin, with its uses and expiry.
    Invite(InvitationForm),
    /// Registration mode, new-user balance, invitation rewards.
    SaveGovernance(GovernanceForm),
}

/// What a plain user sees in the web console: their own balance, keys, requests and
/// invitations, nothing of anyone else's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserData {
    pub username: String,
    /// USD left, or `unlimited`.
    pub balance: String,
    pub used: String,
    pub group: String,
    pub tokens: Vec<TokenRow>,
    pub logs: LogsData,
    pub invitations: Vec<InvitationRow>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvitationRow {
    pub code: String,
    /// Who made it (the admins' list shows every user's).
    pub inviter: String,
    pub link: String,
    /// `2 of 5`, `1 of unlimited`.
    pub uses: String,
    pub expires: String,
}

/// What happens to the notice bar.
#[derive(Debug, Clone, PartialEq)]
pub enum NoticeEvent {
    /// A new message (an action's outcome, a read error, a failed download).
    Shown(Notice),
    /// Another page, a chat opened or sent: the last message is done with.
    MovedOn,
    /// The user pressed Dismiss.
    Dismissed,
}

/// What came of an action, shown where the user is.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
    /// What fixes it (errors), in words.
    pub fix: Option<String>,
    /// A secret shown once (a new token key), with a copy button.
    pub secret: Option<String>,
    /// The form this success completes: the page empties it (a refused form keeps what
    /// was typed).
    pub completed: Option<Completed>,
    /// The fields a refused form must change, each with its message (all of them).
    pub refused: Option<Box<RefusedFields>>,
}

/// A refused form's fields: (field id, message), in the form's order. Field ids are the
/// API's names (`base_url`, `weight`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedFields {
    pub form: String,
    pub fields: Vec<(String, String)>,
}

/// A form completed by a successful action. `serial` tells two equal successes in a row
/// apart, so each empties its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    pub form: String,
    pub serial: u64,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Notice {
            ok: true,
            text: text.into(),
            fix: None,
            secret: None,
            completed: None,
            refused: None,
        }
    }
    /// This success empties `form` (a form id a page chose, e.g. `new-user`).
    pub fn completing(mut self, form: impl Into<String>) -> Self {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.completed = Some(Completed {
            form: form.into(),
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        });
        self
    }
    /// Whether this notice is the success of `form`.
    pub fn completes(&self, form: &str) -> bool {
        self.ok && self.completed.as_ref().is_some_and(|c| c.form == form)
    }
    /// This notice shown in place of `previous`: a key shown once stays on screen with
    /// it (copying it, or any later message, must not take it away).
    pub fn keeping_secret_of(mut self, previous: Option<&Notice>) -> Self {
        if self.secret.is_none() {
            self.secret = previous.and_then(|p| p.secret.clone());
        }
        self
    }
    /// What stays of `previous` when the user moves on (another page, a chat opened or
    /// sent): a key shown once stays until Dismiss, every other message goes.
    pub fn moving_on(previous: Option<&Notice>) -> Option<Notice> {
        let secret = previous?.secret.clone()?;
        let mut n = Notice::ok("Your new key is shown only until you dismiss it: copy it now.");
        n.secret = Some(secret);
        Some(n)
    }
    /// The notice bar after `event`, from `previous` (the desktop and the web console both
    /// go through here, so a key shown once stays until the user presses Dismiss).
    pub fn after(previous: Option<&Notice>, event: NoticeEvent) -> Option<Notice> {
        match event {
            NoticeEvent::Shown(n) => Some(n.keeping_secret_of(previous)),
            NoticeEvent::MovedOn => Notice::moving_on(previous),
            NoticeEvent::Dismissed => None,
        }
    }
    /// A refusal of `form` naming every field to change, each with its message. Empty
    /// `fields`: a plain error.
    pub fn refusing(
        form: impl Into<String>,
        text: impl Into<String>,
        fields: Vec<(String, String)>,
    ) -> Self {
        let mut n = Notice::error(
            text,
            Some("Correct the marked fields and save again: the form keeps what you typed."),
        );
        if !fields.is_empty() {
            n.refused = Some(Box::new(RefusedFields {
                form: form.into(),
                fields,
            }));
        }
        n
    }
    /// The message for `field` of `form`, when this notice refused it.
    pub fn field_error(&self, form: &str, field: &str) -> Option<&str> {
        self.refused
            .as_ref()
            .filter(|r| r.form == form)?
            .fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
    pub fn error(text: impl Into<String>, fix: Option<&str>) -> Self {
        Notice {
            ok: false,
            text: text.into(),
            fix: fix.map(str::to_string),
            secret: None,
            completed: None,
            refused: None,
        }
    }
}
