//! The app's views, renderer-agnostic: plain Dioxus components fed by props, so the same
//! components render in the desktop webview, in SSR tests, and later in a web console.

use dioxus::prelude::*;

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
    Channels,
    Tokens,
    Models,
    Logs,
    Pricing,
    Settings,
}

impl Page {
    pub const ALL: [Page; 7] = [
        Page::Dashboard,
        Page::Channels,
        Page::Tokens,
        Page::Models,
        Page::Logs,
        Page::Pricing,
        Page::Settings,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Page::Dashboard => "Dashboard",
            Page::Channels => "Channels",
            Page::Tokens => "Tokens",
            Page::Models => "Models",
            Page::Logs => "Logs",
            Page::Pricing => "Pricing",
            Page::Settings => "Settings",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            Page::Dashboard => "◫",
            Page::Channels => "⇄",
            Page::Tokens => "◈",
            Page::Models => "▣",
            Page::Logs => "≣",
            Page::Pricing => "$",
            Page::Settings => "⚙",
        }
    }
}

/// The Fluent stylesheet (tokens + components), embedded at build time.
pub const STYLESHEET: &str = include_str!("../../assets/fluent.css");

/// The whole window: navigation on the left, the current page on the right.
#[component]
pub fn Shell(
    info: GatewayInfo,
    initial_page: Option<Page>,
    on_toggle: Option<EventHandler<()>>,
) -> Element {
    let mut page = use_signal(|| initial_page.unwrap_or(Page::Dashboard));
    let current = page();
    rsx! {
        div { class: "bc-shell",
            nav { class: "bc-nav", "aria-label": "Main navigation",
                div { class: "bc-brand", span { class: "bc-brand-mark", "B" } span { "BurnCloud" } }
                for p in Page::ALL {
                    button {
                        key: "{p.title()}",
                        class: if p == current { "bc-nav-item bc-nav-item-selected" } else { "bc-nav-item" },
                        "aria-current": if p == current { "page" } else { "false" },
                        onclick: move |_| page.set(p),
                        span { class: "bc-nav-icon", "{p.icon()}" }
                        span { "{p.title()}" }
                    }
                }
            }
            main { class: "bc-main",
                h1 { class: "bc-title", "{current.title()}" }
                match current {
                    Page::Dashboard => rsx! { Dashboard { info: info.clone(), on_toggle } },
                    other => rsx! { Upcoming { page: other, url: info.url.clone() } },
                }
            }
        }
    }
}

/// The dashboard: the gateway card.
#[component]
pub fn Dashboard(info: GatewayInfo, on_toggle: Option<EventHandler<()>>) -> Element {
    let (badge_class, badge_text) = match &info.state {
        GatewayState::Starting => ("bc-badge bc-badge-neutral", "Starting"),
        GatewayState::Running => ("bc-badge bc-badge-success", "Running"),
        GatewayState::Stopped => ("bc-badge bc-badge-neutral", "Stopped"),
        GatewayState::Failed(_) => ("bc-badge bc-badge-danger", "Not running"),
    };
    let button_text = if info.state == GatewayState::Running {
        "Stop gateway"
    } else {
        "Start gateway"
    };
    rsx! {
        section { class: "bc-card", id: "gateway-card",
            div { class: "bc-card-header",
                h2 { "Gateway" }
                span { class: "{badge_class}", id: "gateway-state", "{badge_text}" }
            }
            p { class: "bc-caption", "Point any OpenAI-compatible tool at this address:" }
            code { class: "bc-url", id: "gateway-url", "{info.url}/v1" }
            if let GatewayState::Failed(reason) = &info.state {
                p { class: "bc-error", role: "alert", id: "gateway-error", "{reason}" }
            }
            p { class: "bc-caption", "Data folder: {info.data_dir}" }
            if let Some(handler) = on_toggle {
                button { class: "bc-button bc-button-primary", onclick: move |_| handler.call(()), "{button_text}" }
            }
        }
    }
}

/// Pages whose capability is not built yet say so plainly, with what works today.
#[component]
fn Upcoming(page: Page, url: String) -> Element {
    let api = match page {
        Page::Channels => "/console/api/channel",
        Page::Tokens => "/console/api/tokens",
        Page::Logs => "/console/api/logs",
        Page::Pricing => "/console/api/prices (or burncloud price ...)",
        Page::Models => "burncloud model ... (coming with the model hub)",
        _ => "the console API",
    };
    rsx! {
        section { class: "bc-card",
            p { "This page is not built yet." }
            p { class: "bc-caption", "Meanwhile use {api} on {url}." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(info: GatewayInfo, page: Page) -> String {
        let mut dom = VirtualDom::new_with_props(
            move |(info, page): (GatewayInfo, Page)| rsx! { Shell { info, initial_page: page } },
            (info, page),
        );
        dom.rebuild_in_place();
        dioxus_ssr::render(&dom)
    }

    fn info(state: GatewayState) -> GatewayInfo {
        GatewayInfo {
            url: "http://127.0.0.1:3000".into(),
            state,
            data_dir: "/data".into(),
        }
    }

    #[test]
    fn dashboard_shows_url_and_running_state() {
        let html = render(info(GatewayState::Running), Page::Dashboard);
        assert!(html.contains("http://127.0.0.1:3000/v1"), "{html}");
        assert!(html.contains("bc-badge-success"));
        assert!(html.contains(">Running<"));
        assert!(!html.contains("gateway-error"));
        for p in Page::ALL {
            assert!(html.contains(p.title()), "nav lists {}", p.title());
        }
        assert!(html.contains("aria-current=\"page\""));
    }

    #[test]
    fn a_busy_port_is_said_plainly() {
        let msg = "port 3000 on 127.0.0.1 is already in use: stop the other program or choose another port with PORT=<n>";
        let html = render(info(GatewayState::Failed(msg.into())), Page::Dashboard);
        assert!(html.contains("Not running"));
        assert!(html.contains("already in use"), "{html}");
        assert!(html.contains("role=\"alert\""));
    }

    #[test]
    fn unbuilt_pages_say_so() {
        let html = render(info(GatewayState::Stopped), Page::Channels);
        assert!(html.contains("not built yet"));
        assert!(html.contains("/console/api/channel"));
        assert!(!html.contains("gateway-card"));
    }

    #[test]
    fn stylesheet_uses_fluent_tokens_for_light_and_dark() {
        assert!(STYLESHEET.contains("--colorBrandBackground: #0f6cbd"));
        assert!(STYLESHEET.contains("prefers-color-scheme: dark"));
        assert!(STYLESHEET.contains("var(--shadow4)"));
    }
}
