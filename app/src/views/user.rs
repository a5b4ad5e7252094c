//! The web console of a plain user: an overview of their balance, their keys, their
//! requests, and their invitations and redemption codes. Same controlled style as
//! `Shell`: data in, navigation and actions out.

use dioxus::prelude::*;

use super::form::TextInput;

use super::data::{Action, Notice, UserData};
use super::logs::LogsPage;
use super::tokens::TokensPage;
use super::{Account, CopyField, NoticeBar};

/// The pages a plain user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserPage {
    Overview,
    Keys,
    Logs,
    Invitations,
}

impl UserPage {
    pub const ALL: [UserPage; 4] = [
        UserPage::Overview,
        UserPage::Keys,
        UserPage::Logs,
        UserPage::Invitations,
    ];

    pub fn title(self) -> &'static str {
        match self {
            UserPage::Overview => "Overview",
            UserPage::Keys => "Keys",
            UserPage::Logs => "Logs",
            UserPage::Invitations => "Balance & invitations",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            UserPage::Overview => super::icons::HOME,
            UserPage::Keys => super::icons::KEY,
            UserPage::Logs => super::icons::DOCUMENT,
            UserPage::Invitations => super::icons::PEOPLE,
        }
    }
}

#[component]
pub fn UserShell(
    data: UserData,
    page: UserPage,
    notice: Option<Notice>,
    /// The gateway's address as the browser reached it (`http://host:port`).
    base_url: String,
    on_navigate: EventHandler<UserPage>,
    on_action: EventHandler<Action>,
) -> Element {
    rsx! {
        div { class: "bc-shell bc-theme-system", "data-page": "{page.title()}",
            nav { class: "bc-nav", "aria-label": "Main navigation",
                div { class: "bc-brand", span { class: "bc-brand-mark", "B" } span { class: "bc-nav-label", "BurnCloud" } }
                for p in UserPage::ALL {
                    button {
                        key: "{p.title()}",
                        class: if p == page { "bc-nav-item bc-nav-item-selected" } else { "bc-nav-item" },
                        "aria-current": if p == page { "page" } else { "false" },
                        onclick: move |_| on_navigate.call(p),
                        span { class: "bc-nav-icon", "aria-hidden": "true", dangerous_inner_html: p.icon() }
                        span { class: "bc-nav-label", "{p.title()}" }
                    }
                }
                Account { name: data.username.clone(), on_action }
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
                        UserPage::Overview => rsx! { Overview { data: data.clone(), base_url: base_url.clone(), on_action } },
                        UserPage::Keys => rsx! { TokensPage { tokens: data.tokens.clone(), notice: notice.clone(), on_action, fixed_group: Some(data.group.clone()) } },
                        UserPage::Logs => rsx! { LogsPage { data: data.logs.clone(), on_action } },
                        UserPage::Invitations => rsx! { Invitations { data: data.clone(), on_action } },
                    }
                }
            }
        }
    }
}

#[component]
fn Overview(data: UserData, base_url: String, on_action: EventHandler<Action>) -> Element {
    let requests = data.logs.total;
    rsx! {
        section { class: "bc-card", id: "balance",
            h2 { "Balance" }
            p { class: "bc-metric", id: "balance-left", "{data.balance}" }
            p { class: "bc-caption", "Spent so far: {data.used} · {requests} request(s) · group {data.group}" }
        }
        section { class: "bc-card",
            h2 { "Use this gateway" }
            CopyField { label: "Base URL".to_string(), value: format!("{base_url}/v1"), on_action }
            p { class: "bc-caption", "Create a key on the Keys page and send it as the API key of any OpenAI or Anthropic client." }
        }
    }
}

#[component]
fn Invitations(data: UserData, on_action: EventHandler<Action>) -> Element {
    let mut code = use_signal(String::new);
    rsx! {
        section { class: "bc-card bc-form", id: "redeem-form",
            h2 { "Redeem a code" }
            p { class: "bc-caption", "Balance: {data.balance}" }
            div { class: "bc-fields bc-fields-inline",
                label { "Code" TextInput { id: "redeem-code", value: code(), oninput: move |v: String| code.set(v) } }
                button { class: "bc-button bc-button-primary", id: "redeem",
                    onclick: move |_| { on_action.call(Action::Redeem(code())); code.set(String::new()); },
                    "Redeem"
                }
            }
        }
        section { class: "bc-card", id: "invitations",
            div { class: "bc-card-header",
                h2 { "Invitations" }
                button { class: "bc-button", id: "create-invitation", onclick: move |_| on_action.call(Action::CreateInvitation), "New invitation link" }
            }
            if data.invitations.is_empty() {
                p { "No invitations yet." }
            } else {
                table { class: "bc-table", id: "invitations-table",
                    thead { tr { th { "Link" } th { "Used" } th { "Expires" } th { "Actions" } } }
                    tbody {
                        for i in data.invitations {
                            tr { key: "{i.code}",
                                td { code { "{i.link}" } }
                                td { "{i.uses}" }
                                td { "{i.expires}" }
                                td { class: "bc-actions",
                                    button { class: "bc-button bc-button-small", onclick: {
                                        let link = i.link.clone();
                                        move |_| on_action.call(Action::Copy(link.clone()))
                                    }, "Copy" }
                                    button { class: "bc-button bc-button-small", onclick: {
                                        let c = i.code.clone();
                                        move |_| on_action.call(Action::DeleteInvitation(c.clone()))
                                    }, "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
