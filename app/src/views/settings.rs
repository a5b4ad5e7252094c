//! Settings: listen address (with a LAN warning), burst routing, model hub, engine,
//! window behaviour and theme, start with the system, data folder (accounts: the Users page).

use dioxus::prelude::*;

use super::form::{FieldMessage, TextInput, field_mark, invalid};

use super::Badge;
use super::data::{Action, BurstForm, Notice, SettingsData, Theme};

/// Form ids of the Settings page's refusals (each refused field is marked under it).
pub const LISTEN_FORM: &str = "listen";
pub const BURST_FORM: &str = "burst";
pub const RETENTION_FORM: &str = "log-retention";

#[component]
pub fn SettingsPage(
    data: SettingsData,
    #[props(default)] notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut host = use_signal(|| data.host.clone());
    let mut port = use_signal(|| data.port.to_string());
    let mut burst = use_signal(|| data.burst.clone());
    let mut retention = use_signal(|| data.log_retention_days.to_string());
    // What each form's last Save sent: its refused fields are marked while they hold it.
    let mut sent_listen = use_signal(|| None::<(String, String)>);
    let mut sent_burst = use_signal(|| None::<BurstForm>);
    let mut sent_days = use_signal(|| None::<String>);
    let lan = !matches!(host().trim(), "127.0.0.1" | "::1" | "localhost");
    let b: BurstForm = burst();
    let listen_sent = sent_listen();
    let m_host = field_mark(
        &notice,
        LISTEN_FORM,
        "host",
        listen_sent.as_ref().map(|s| s.0.as_str()),
        &host(),
    );
    let m_port = field_mark(
        &notice,
        LISTEN_FORM,
        "port",
        listen_sent.as_ref().map(|s| s.1.as_str()),
        &port(),
    );
    let burst_sent = sent_burst();
    let burst_mark = |field: &str, get: fn(&BurstForm) -> &str| {
        field_mark(
            &notice,
            BURST_FORM,
            field,
            burst_sent.as_ref().map(get),
            get(&b),
        )
    };
    let m_mode = burst_mark("mode", |f| &f.mode);
    let m_alias = burst_mark("alias", |f| &f.alias);
    let m_budget = burst_mark("daily_budget_usd", |f| &f.daily_budget_usd);
    let m_lq = burst_mark("local_max_queue", |f| &f.local_max_queue);
    let m_cq = burst_mark("cloud_max_queue", |f| &f.cloud_max_queue);
    let m_days = field_mark(
        &notice,
        RETENTION_FORM,
        "days",
        sent_days().as_deref(),
        &retention(),
    );
    let env_text = data.env_override.join(" and ");
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "listen",
            h2 { "Gateway address" }
            p { class: "bc-caption", "Listening now: {data.listening}" }
            div { class: "bc-fields bc-fields-inline",
                label { "Listen address"
                    TextInput { value: host(), aria_invalid: invalid(&m_host), oninput: move |v: String| host.set(v) }
                    FieldMessage { message: m_host.clone() }
                }
                label { "Port"
                    TextInput { r#type: "number", value: port(), aria_invalid: invalid(&m_port), oninput: move |v: String| port.set(v) }
                    FieldMessage { message: m_port.clone() }
                }
                button { class: "bc-button bc-button-primary", onclick: move |_| { sent_listen.set(Some((host(), port()))); on_action.call(Action::SaveListen { host: host(), port: port() }) }, "Save and restart the gateway" }
            }
            if lan {
                div { class: "bc-warning", role: "alert", id: "lan-warning",
                    "{host} makes the gateway reachable from other computers on your network. Anyone there with a key can spend your providers' credit. Keep 127.0.0.1 unless you mean it."
                }
            }
            if !data.env_override.is_empty() {
                p { class: "bc-caption", id: "listen-env", "{env_text} in the environment decides the address: it wins over this setting until BurnCloud is started without it." }
            }
        }
        section { class: "bc-card bc-form bc-wide", id: "burst",
            h2 { "Burst routing" }
            div { class: "bc-fields",
                label { "Mode"
                    select { "aria-invalid": invalid(&m_mode), onchange: move |e| burst.with_mut(|b| b.mode = e.value()),
                        option { value: "edge_burst", selected: b.mode == "edge_burst", "edge burst: local first, cloud overflow" }
                        option { value: "cloud_burst", selected: b.mode == "cloud_burst", "cloud burst: cloud first, local for sensitive requests" }
                    }
                }
                label { "Alias model name"
                    TextInput { value: b.alias.clone(), aria_invalid: invalid(&m_alias), oninput: move |v: String| burst.with_mut(|b| b.alias = v) }
                    FieldMessage { message: m_alias.clone() }
                }
                label { "Daily cloud budget, USD (-1: none)"
                    TextInput { value: b.daily_budget_usd.clone(), aria_invalid: invalid(&m_budget), oninput: move |v: String| burst.with_mut(|b| b.daily_budget_usd = v) }
                    FieldMessage { message: m_budget.clone() }
                }
                label { "Local queue limit"
                    TextInput { r#type: "number", value: b.local_max_queue.clone(), aria_invalid: invalid(&m_lq), oninput: move |v: String| burst.with_mut(|b| b.local_max_queue = v) }
                    FieldMessage { message: m_lq.clone() }
                }
                label { "Cloud queue limit"
                    TextInput { r#type: "number", value: b.cloud_max_queue.clone(), aria_invalid: invalid(&m_cq), oninput: move |v: String| burst.with_mut(|b| b.cloud_max_queue = v) }
                    FieldMessage { message: m_cq.clone() }
                }
            }
            FieldMessage { message: m_mode.clone() }
            div { class: "bc-toolbar", button { class: "bc-button bc-button-primary", onclick: move |_| { sent_burst.set(Some(burst())); on_action.call(Action::SaveBurst(burst())) }, "Save burst settings" } }
        }
        section { class: "bc-card bc-wide", id: "ollama-keyless",
            h2 { "Ollama API" }
            p { class: "bc-caption", "Tools that speak Ollama's API (Open WebUI, editor plugins) use this port too, and often cannot send a key. Off by default: every request needs a key." }
            label { "Requests from this machine without a key use "
                select { onchange: move |e| on_action.call(Action::SetOllamaKeyless(e.value().parse().ok())),
                    option { value: "off", selected: data.ollama_keyless.is_none(), "nothing (off: a key is required)" }
                    for (id, name) in data.keys.clone() {
                        option { key: "{id}", value: "{id}", selected: data.ollama_keyless == Some(id), "{name}" }
                    }
                }
            }
        }
        section { class: "bc-card bc-form bc-wide", id: "log-retention",
            h2 { "Request logs" }
            p { class: "bc-caption", "Every request is recorded (model, tokens, cost, errors). Records older than this are deleted every hour; 0 keeps every record." }
            div { class: "bc-fields bc-fields-inline",
                label { "Days to keep request logs"
                    TextInput { r#type: "number", min: "0", value: retention(), aria_invalid: invalid(&m_days), oninput: move |v: String| retention.set(v) }
                    FieldMessage { message: m_days.clone() }
                }
                button { class: "bc-button", onclick: move |_| { sent_days.set(Some(retention())); on_action.call(Action::SetLogRetention(retention())) }, "Save" }
            }
        }
        section { class: "bc-card bc-wide", id: "hub",
            h2 { "Model hub" }
            p { "Endpoint: " code { "{data.hub_endpoint}" } }
            p { "Token: " {data.hub_token.clone().unwrap_or_else(|| "none (public models only)".into())} }
            p { class: "bc-caption", "For a mirror, set HF_ENDPOINT; for gated models, set HF_TOKEN to a Hugging Face access token (from your account's settings on huggingface.co). Then restart BurnCloud." }
        }
        section { class: "bc-card bc-wide", id: "engine-settings",
            h2 { "Engine" }
            match data.engine.as_result() {
                Ok(e) => rsx! { p { Badge { kind: "success", text: "found".to_string() } " {e}" } },
                Err(e) => rsx! { div { class: "bc-error", role: "alert", p { "{e}" } } },
            }
            button { class: "bc-button", onclick: move |_| on_action.call(Action::InstallEngine), "Install the official llama.cpp build" }
        }
        section { class: "bc-card bc-wide", id: "window",
            h2 { "Window" }
            // One control per line (they ran into one line outside a field grid).
            div { class: "bc-stack",
                label { class: "bc-check",
                    input { r#type: "checkbox", checked: data.close_to_tray, onchange: move |e| on_action.call(Action::SetCloseToTray(e.checked())) }
                    "Closing the window keeps BurnCloud running in the tray"
                }
                label { "Theme "
                    select { onchange: move |e| on_action.call(Action::SetTheme(Theme::parse(&e.value()))),
                        option { value: "system", selected: data.theme == Theme::System, "follow the system" }
                        option { value: "light", selected: data.theme == Theme::Light, "light" }
                        option { value: "dark", selected: data.theme == Theme::Dark, "dark" }
                    }
                }
                match data.autostart.clone() {
                    Some((on, place)) => rsx! {
                        label { class: "bc-check", id: "autostart",
                            input { r#type: "checkbox", checked: on, onchange: move |e| on_action.call(Action::SetAutostart(e.checked())) }
                            "Start with the system (when you log in)"
                        }
                        p { class: "bc-caption", if on { "On: {place}" } else { "Off (the default)." } }
                    },
                    None => rsx! {
                        div { class: "bc-row", id: "autostart",
                            span { "Start with the system" }
                            span { class: "bc-caption", "unavailable: the home folder is unknown" }
                        }
                    },
                }
            }
        }
        section { class: "bc-card bc-wide", id: "data-folder",
            h2 { "Data folder" }
            code { class: "bc-url", "{data.data_dir}" }
            p { class: "bc-caption", "Database, keys, models and logs live here. The local admin's password (for the HTTP console) is in desktop-credentials.json (readable only by you)." }
        }
        section { class: "bc-card bc-wide", id: "accounts",
            h2 { "Accounts" }
            p { "Users, groups and their price ratios, redemption codes, invitations and who may register: on the Users page (Alt+9)." }
        }
    }
}
