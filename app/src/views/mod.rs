//! The app's views, renderer-agnostic: plain Dioxus components fed by props (`data`), so
//! the same components render in the desktop webview, in SSR tests, and later in a web
//! console. Actions leave as `data::Action` through `on_action`; nothing here talks to the
//! gateway.
//!
//! # Layout
//!
//! - `Shell`: navigation + the current page + the last notice.
//! - one module per page: `dashboard`, `channels`, `tokens`, `models`, `logs`,
//!   `pricing`, `settings`, `users` (accounts, groups; `users_access`: redemption codes,
//!   invitations, registration); `chart` draws the dashboard's SVG bar charts.
//! - `user`: the plain user's web console (`UserShell`).
//! - `data`: the plain data the pages show and the actions they send.
//! - `form`: what the forms share: `TextInput` (keeps every keystroke), refused fields'
//!   marks, emptying a form after its success.

use dioxus::prelude::*;

pub mod channels;
pub mod chart;
pub mod chat;
pub mod dashboard;
pub mod data;
pub mod form;
pub mod logs;
pub mod markdown;
pub mod models;
pub mod pricing;
pub mod settings;
pub mod tokens;
pub mod user;
pub mod users;
pub mod users_access;

use channels::ChannelsPage;
use chat::ChatPage;
pub use dashboard::Dashboard;
use data::{Action, ConsoleData, Notice};
use logs::LogsPage;
use models::ModelsPage;
use pricing::PricingPage;
use settings::SettingsPage;
use tokens::TokensPage;
use users::UsersPage;

/// What the gateway is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayState {
    Starting,
    Running,
    Stopped,
    Failed(String),
}

/// What the dashboard shows about the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayInfo {
    pub url: String,
    pub state: GatewayState,
    pub data_dir: String,
}

/// The pages of the left navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Dashboard,
    /// The playground: chat with any model the gateway serves (desktop only).
    Chat,
    Channels,
    Tokens,
    Models,
    Logs,
    Pricing,
    Settings,
    /// Accounts, groups, redemption codes, invitations, registration (admins).
    Users,
}

impl Page {
    /// In the navigation's order; Alt+1..9 follow it.
    pub const ALL: [Page; 9] = [
        Page::Dashboard,
        Page::Chat,
        Page::Channels,
        Page::Tokens,
        Page::Models,
        Page::Logs,
        Page::Pricing,
        Page::Settings,
        Page::Users,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Page::Dashboard => "Dashboard",
            Page::Chat => "Chat",
            Page::Channels => "Channels",
            Page::Tokens => "Tokens",
            Page::Models => "Models",
            Page::Logs => "Logs",
            Page::Pricing => "Pricing",
            Page::Settings => "Settings",
            Page::Users => "Users",
        }
    }

    /// The navigation icon: a Fluent UI System Icon (MIT, `assets/icons/fluent/`), as SVG.
    pub fn icon(self) -> &'static str {
        match self {
            Page::Dashboard => icons::HOME,
            Page::Chat => icons::CHAT,
            Page::Channels => icons::PLUG,
            Page::Tokens => icons::KEY,
            Page::Models => icons::CUBE,
            Page::Logs => icons::DOCUMENT,
            Page::Pricing => icons::MONEY,
            Page::Settings => icons::SETTINGS,
            Page::Users => icons::PEOPLE,
        }
    }
}

/// Fluent UI System Icons (20 px, regular), embedded at build time; drawn in the text's
/// colour (`.bc-nav-icon svg { fill: currentColor }`).
pub mod icons {
    pub const HOME: &str = include_str!("../../../assets/icons/fluent/home_20_regular.svg");
    pub const CHAT: &str = include_str!("../../../assets/icons/fluent/chat_20_regular.svg");
    pub const PLUG: &str =
        include_str!("../../../assets/icons/fluent/plug_connected_20_regular.svg");
    pub const KEY: &str = include_str!("../../../assets/icons/fluent/key_20_regular.svg");
    pub const CUBE: &str = include_str!("../../../assets/icons/fluent/cube_20_regular.svg");
    pub const DOCUMENT: &str =
        include_str!("../../../assets/icons/fluent/document_text_20_regular.svg");
    pub const MONEY: &str = include_str!("../../../assets/icons/fluent/money_20_regular.svg");
    pub const SETTINGS: &str = include_str!("../../../assets/icons/fluent/settings_20_regular.svg");
    pub const PEOPLE: &str = include_str!("../../../assets/icons/fluent/people_20_regular.svg");
}

/// The Fluent stylesheet (tokens + components), embedded at build time.
pub const STYLESHEET: &str = include_str!("../../../assets/fluent.css");

/// The whole window: navigation on the left, the current page on the right. Controlled:
/// the page, the data and the last notice come in; navigation and actions go out.
#[component]
pub fn Shell(
    info: GatewayInfo,
    data: ConsoleData,
    page: Page,
    notice: Option<Notice>,
    on_navigate: EventHandler<Page>,
    on_action: EventHandler<Action>,
    /// Who is signed in (the web console shows it with a Log out button).
    #[props(default)]
    account: Option<String>,
) -> Element {
    let theme = data.settings.theme.as_str();
    rsx! {
        div { class: "bc-shell bc-theme-{theme}", "data-page": "{page.title()}",
            nav { class: "bc-nav", "aria-label": "Main navigation",
                div { class: "bc-brand", span { class: "bc-brand-mark", "B" } span { class: "bc-nav-label", "BurnCloud" } }
                // The playground chats with the desktop's key: not in the web console.
                for (i, p) in Page::ALL.into_iter().filter(|p| *p != Page::Chat || account.is_none()).enumerate() {
                    button {
                        key: "{p.title()}",
                        class: if p == page { "bc-nav-item bc-nav-item-selected" } else { "bc-nav-item" },
                        "aria-current": if p == page { "page" } else { "false" },
                        title: "{p.title()} (Alt+{i + 1})",
                        onclick: move |_| on_navigate.call(p),
                        span { class: "bc-nav-icon", "aria-hidden": "true", dangerous_inner_html: p.icon() }
                        span { class: "bc-nav-label", "{p.title()}" }
                    }
                }
                if let Some(name) = account {
                    Account { name, on_action }
                }
            }
            // Keyed by the page: a new page gets a new scrolling area, so it opens at
            // its top (one shared `main` kept the scroll position of the page before).
            for shown in std::iter::once(page) {
                main { key: "{shown.title()}", class: "bc-main", id: "main",
                    h1 { class: "bc-title", "{page.title()}" }
                    if let Some(n) = notice.clone() {
                        NoticeBar { notice: n, on_action }
                    }
                    match page {
                        Page::Dashboard => rsx! { Dashboard { info: info.clone(), data: data.dashboard.clone(), notice: notice.clone(), on_action } },
                        Page::Chat => rsx! { ChatPage { chat: data.chat.clone(), notice: notice.clone(), on_action } },
                        Page::Channels => rsx! { ChannelsPage { channels: data.channels.clone(), types: data.channel_types.clone(), notice: notice.clone(), on_action } },
                        Page::Tokens => rsx! { TokensPage { tokens: data.tokens.clone(), notice: notice.clone(), on_action } },
                        Page::Models => rsx! { ModelsPage { data: data.models.clone(), notice: notice.clone(), on_action } },
                        Page::Logs => rsx! { LogsPage { data: data.logs.clone(), on_action } },
                        Page::Pricing => rsx! { PricingPage { prices: data.prices.clone(), notice: notice.clone(), on_action } },
                        Page::Settings => rsx! { SettingsPage { data: data.settings.clone(), notice: notice.clone(), on_action } },
                        Page::Users => rsx! { UsersPage { data: data.users.clone(), notice: notice.clone(), on_action } },
                    }
                }
            }
        }
    }
}

/// The signed-in account at the foot of the navigation, with Log out (web console).
#[component]
pub fn Account(name: String, on_action: EventHandler<Action>) -> Element {
    rsx! {
        div { class: "bc-account",
            span { class: "bc-caption bc-nav-label", id: "account-name", "Signed in as {name}" }
            button { class: "bc-button bc-button-small", id: "logout", onclick: move |_| on_action.call(Action::Logout), "Log out" }
        }
    }
}

/// The outcome of the last action, where the user is; errors say what fixes them.
#[component]
pub fn NoticeBar(notice: Notice, on_action: EventHandler<Action>) -> Element {
    let class = if notice.ok {
        "bc-notice bc-notice-ok"
    } else {
        "bc-notice bc-error"
    };
    let role = if notice.ok { "status" } else { "alert" };
    rsx! {
        div { class: "{class}", role: "{role}", id: "notice",
            p { class: "bc-notice-text", "{notice.text}" }
            if let Some(fix) = &notice.fix {
                p { class: "bc-notice-fix", strong { "How to fix: " } "{fix}" }
            }
            if let Some(secret) = notice.secret.clone() {
                CopyField { label: "New key".to_string(), value: secret, on_action }
                p { class: "bc-caption", "The key stays here, on every page, until you dismiss it." }
                button { class: "bc-button", id: "dismiss-notice", "aria-label": "Dismiss the new key", onclick: move |_| on_action.call(Action::DismissNotice), "Dismiss" }
            }
        }
    }
}

/// A value in monospace with a copy button.
#[component]
pub fn CopyField(label: String, value: String, on_action: EventHandler<Action>) -> Element {
    let v = value.clone();
    rsx! {
        div { class: "bc-copy",
            span { class: "bc-caption", "{label}" }
            div { class: "bc-copy-row",
                code { class: "bc-url", "{value}" }
                button { class: "bc-button", "aria-label": "Copy {label}", onclick: move |_| on_action.call(Action::Copy(v.clone())), "Copy" }
            }
        }
    }
}

/// A state badge.
#[component]
pub fn Badge(kind: String, text: String) -> Element {
    rsx! { span { class: "bc-badge bc-badge-{kind}", "{text}" } }
}

#[cfg(test)]
mod tests;
