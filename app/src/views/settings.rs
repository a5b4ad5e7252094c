//! Settings: listen address (with a LAN warning), burst routing, model hub, engine,
//! window behaviour and theme, start with the system, data folder (accounts: the Users page).

use dioxus::prelude::*;

use super::form::TextInput;

use super::Badge;
use super::data::{Action, BurstForm, SettingsData, Theme};

#[component]
pub fn SettingsPage(data: SettingsData, on_action: EventHandler<Action>) -> Element {
    let mut host = use_signal(|| data.host.clone());
    let mut port = use_signal(|| data.port.to_string());
    let mut burst = use_signal(|| data.burst.clone());
    let mut retention = use_signal(|| data.log_retention_days.to_string());
    let lan = !matches!(host().trim(), "127.0.0.1" | "::1" | "localhost");
    let b: BurstForm = burst();
    let env_text = data.env_override.join(" and ");
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "listen",
            h2 { "Gateway address" }
            p { class: "bc-caption", "Listening now: {data.listening}" }
            div { class: "bc-fields bc-fields-inline",
                label { "Listen address" TextInput { value: host(), oninput: move |v: String| host.set(v) } }
                label { "Port" TextInput { r#type: "number", value: port(), oninput: move |v: String| port.set(v) } }
                button { class: "bc-button bc-button-primary", onclick: move |_| on_action.call(Action::SaveListen { host: host(), port: port() }), "Save and restart the gateway" }
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
                    select { onchange: move |e| burst.with_mut(|b| b.mode = e.value()),
                        option { value: "edge_burst", selected: b.mode == "edge_burst", "edge burst: local first, cloud overflow" }
                        option { value: "cloud_burst", selected: b.mode == "cloud_burst", "cloud burst: cloud first, local for sensitive requests" }
                    }
                }
                label { "Alias model name" TextInput { value: b.alias.clone(), oninput: move |v: String| burst.with_mut(|b| b.alias = v) } }
                label { "Daily cloud budget, USD (-1: none)" TextInput { value: b.daily_budget_usd.clone(), oninput: move |v: String| burst.with_mut(|b| b.daily_budget_usd = v) } }
                label { "Local queue limit" TextInput { r#type: "number", value: b.local_max_queue.clone(), oninput: move |v: String| burst.with_mut(|b| b.local_max_queue = v) } }
                label { "Cloud queue limit" TextInput { r#type: "number", value: b.cloud_max_queue.clone(), oninput: move |v: String| burst.with_mut(|b| b.cloud_max_queue = v) } }
            }
            div { class: "bc-toolbar", button { class: "bc-button bc-button-primary", onclick: move |_| on_action.call(Action::SaveBurst(burst())), "Save burst settings" } }
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
                label { "Days to keep request logs" TextInput { r#type: "number", min: "0", value: retention(), oninput: move |v: String| retention.set(v) } }
                button { class: "bc-button", onclick: move |_| on_action.call(Action::SetLogRetention(retention())), "Save" }
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
