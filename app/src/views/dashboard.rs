//! The dashboard: gateway state, base URL and key with copy buttons and snippets, live
//! charts of the last 60 minutes, running local models, recent requests.

use dioxus::prelude::*;

use super::chart::BarChart;
use super::data::{
    Action, ChannelTypeOption, DashboardData, LocalPick, LogItem, Notice, ProviderForm,
};
use super::form::{TextInput, use_on_success};
use super::{Badge, CopyField, GatewayInfo, GatewayState};
use gateway_core::money::format_usd;

fn snippets(base: &str, key: &str, model: &str) -> [(&'static str, String); 3] {
    [
        (
            "curl",
            format!(
                "curl {base}/chat/completions \\\n  -H \"Authorization: Bearer {key}\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'"
            ),
        ),
        (
            "Python",
            format!(
                "from openai import OpenAI\nclient = OpenAI(base_url=\"{base}\", api_key=\"{key}\")\nr = client.chat.completions.create(model=\"{model}\", messages=[{{\"role\": \"user\", \"content\": \"Hello!\"}}])\nprint(r.choices[0].message.content)"
            ),
        ),
        (
            "IDE (Continue config.yaml)",
            format!(
                "models:\n  - name: BurnCloud\n    provider: openai\n    model: {model}\n    apiBase: {base}\n    apiKey: {key}"
            ),
        ),
    ]
}

#[component]
pub fn Dashboard(
    info: GatewayInfo,
    data: DashboardData,
    #[props(default)] notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let (badge_kind, badge_text) = match &info.state {
        GatewayState::Starting => ("neutral", "Starting"),
        GatewayState::Running => ("success", "Running"),
        GatewayState::Stopped => ("neutral", "Stopped"),
        GatewayState::Failed(_) => ("danger", "Not running"),
    };
    let button_text = if info.state == GatewayState::Running {
        "Stop gateway"
    } else {
        "Start gateway"
    };
    let base = format!("{}/v1", info.url);
    let key_for_snippets = data.key.clone().unwrap_or_else(|| "sk-YOUR-KEY".into());
    let m = &data.minutes;
    let series =
        |f: &dyn Fn(&super::data::MinuteStats) -> f64| m.iter().map(f).collect::<Vec<f64>>();
    let req: i64 = m.iter().map(|x| x.requests).sum();
    let tok: i64 = m.iter().map(|x| x.tokens).sum();
    let cost: i64 = m.iter().map(|x| x.cost_nano).sum();
    let err: i64 = m.iter().map(|x| x.errors).sum();
    let err_rate = if req > 0 {
        err as f64 * 100.0 / req as f64
    } else {
        0.0
    };
    rsx! {
        div { class: "bc-grid",
            section { class: "bc-card", id: "gateway-card",
                div { class: "bc-card-header",
                    h2 { "Gateway" }
                    span { class: "bc-badge bc-badge-{badge_kind}", id: "gateway-state", "{badge_text}" }
                }
                if let GatewayState::Failed(reason) = &info.state {
                    div { class: "bc-error", role: "alert", id: "gateway-error",
                        p { "{reason}" }
                        p { class: "bc-notice-fix", strong { "How to fix: " } "stop the other program, or choose another port on the Settings page." }
                    }
                }
                CopyField { label: "Base URL (OpenAI-compatible)".to_string(), value: base.clone(), on_action }
                if let Some(key) = data.key.clone() {
                    CopyField { label: "Default key".to_string(), value: key, on_action }
                } else {
                    div { class: "bc-copy", id: "key-missing",
                        p { class: "bc-caption", {data.key_note.clone().unwrap_or_default()} }
                        button { class: "bc-button", onclick: move |_| on_action.call(Action::NewDashboardKey), "Create a new key" }
                    }
                }
                p { class: "bc-caption", "Data folder: {info.data_dir}" }
                button { class: "bc-button bc-button-primary", onclick: move |_| on_action.call(Action::ToggleGateway), "{button_text}" }
            }
            if data.get_started {
                GetStarted { providers: data.providers.clone(), local_pick: data.local_pick.clone(), local_note: data.local_note.clone(), notice: notice.clone(), on_action }
            } else {
            section { class: "bc-card", id: "snippets",
                div { class: "bc-card-header",
                    h2 { "Use it from your tools" }
                    button { class: "bc-button", id: "dashboard-chat", "aria-label": "Chat with {data.example_model}",
                        onclick: { let m = data.example_model.clone(); move |_| on_action.call(Action::ChatWith(m.clone())) },
                        "Try it in Chat"
                    }
                }
                for (name, text) in snippets(&base, &key_for_snippets, &data.example_model) {
                    div { class: "bc-snippet", key: "{name}",
                        div { class: "bc-card-header",
                            span { class: "bc-caption", "{name}" }
                            button { class: "bc-button bc-button-small", "aria-label": "Copy the {name} snippet", onclick: { let t = text.clone(); move |_| on_action.call(Action::Copy(t.clone())) }, "Copy" }
                        }
                        pre { class: "bc-pre", "{text}" }
                    }
                }
            }
            }
        }
        section { class: "bc-card bc-wide", id: "charts",
            h2 { "Last 60 minutes" }
            div { class: "bc-charts",
                BarChart { title: "Requests / min".to_string(), values: series(&|x| x.requests as f64), summary: format!("{req} requests"), danger: false }
                BarChart { title: "Tokens / min".to_string(), values: series(&|x| x.tokens as f64), summary: format!("{tok} tokens"), danger: false }
                BarChart { title: "Cost / min".to_string(), values: series(&|x| x.cost_nano as f64), summary: format!("${}", format_usd(cost)), danger: false }
                BarChart { title: "Errors / min".to_string(), values: series(&|x| x.errors as f64), summary: format!("{err_rate:.1}% errors"), danger: true }
            }
        }
        div { class: "bc-grid",
            section { class: "bc-card", id: "running-models",
                h2 { "Running local models" }
                if data.running.is_empty() {
                    p { class: "bc-caption", "No local model is running. Start one on the Models page." }
                }
                for r in data.running.clone() {
                    div { class: "bc-row", key: "{r.id}",
                        span { "{r.name}" }
                        Badge { kind: if r.state == "ready" { "success" } else { "neutral" }, text: r.state.clone() }
                        span { class: "bc-caption", {r.port.map(|p| format!("port {p}")).unwrap_or_default()} }
                        button { class: "bc-button bc-button-small", onclick: move |_| on_action.call(Action::StopModel(r.id)), "Stop" }
                    }
                }
            }
            section { class: "bc-card", id: "recent",
                h2 { "Recent requests" }
                if data.recent.is_empty() {
                    p { class: "bc-caption", "No requests yet. Try the curl snippet above." }
                } else {
                    RecentTable { rows: data.recent.clone() }
                }
            }
        }
    }
}

#[component]
fn RecentTable(rows: Vec<LogItem>) -> Element {
    rsx! {
        div { class: "bc-table-wrap",
            table { class: "bc-table",
                thead { tr { th { "Time" } th { "Model" } th { "Status" } th { "Latency" } th { "Cost" } } }
                tbody {
                    for r in rows {
                        tr { key: "{r.id}",
                            td { "{r.time}" }
                            td { "{r.model}" }
                            td { span { class: if r.status >= 400 { "bc-status-bad" } else { "bc-status-ok" }, "{r.status}" } }
                            td { "{r.latency}" }
                            td { "{r.cost}" }
                        }
                    }
                }
            }
        }
    }
}

/// The id of the one-step provider form in notices (the console's `PROVIDER_FORM`).
pub const PROVIDER_FORM: &str = "provider";

/// First run (nothing answers yet): the two ways to a first answer.
#[component]
fn GetStarted(
    providers: Vec<ChannelTypeOption>,
    local_pick: Option<LocalPick>,
    local_note: Option<String>,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let first = providers.first().map(|p| p.id).unwrap_or(1);
    let mut f = use_signal(|| ProviderForm {
        type_id: first,
        ..Default::default()
    });
    use_on_success(&notice, PROVIDER_FORM, move || {
        f.with_mut(|f| {
            f.key.clear();
            f.base_url.clear();
        })
    });
    let cur = f();
    let placeholder = providers
        .iter()
        .find(|p| p.id == cur.type_id)
        .map(|p| p.default_base_url.clone())
        .unwrap_or_default();
    rsx! {
        section { class: "bc-card", id: "get-started",
            h2 { "Get a first answer" }
            p { class: "bc-caption", "Nothing answers yet. Connect a provider you have a key for, or run a model on this machine." }
            div { class: "bc-form", id: "connect-provider",
                h3 { class: "bc-subtitle", "Use a provider" }
                div { class: "bc-fields",
                    label { "Provider"
                        // The focus starts here (a drop-down: no blinking caret, which
                        // costs a software-rendered window ~8 % of a core while idle).
                        select { id: "provider-type",
                            onmounted: move |e: MountedEvent| async move {
                                let _ = e.set_focus(true).await;
                            },
                            onchange: move |e| {
                                if let Ok(id) = e.value().parse() {
                                    f.with_mut(|f| f.type_id = id);
                                }
                            },
                            for p in providers.clone() {
                                option { key: "{p.id}", value: "{p.id}", selected: p.id == cur.type_id, "{p.name}" }
                            }
                        }
                    }
                    label { "API key"
                        TextInput { id: "provider-key", r#type: "password", autocomplete: "off", value: cur.key.clone(), placeholder: "paste the key", oninput: move |v| f.with_mut(|f| f.key = v) }
                    }
                    label { "Base URL (empty: the provider's)"
                        TextInput { id: "provider-base-url", value: cur.base_url.clone(), placeholder: "{placeholder}", oninput: move |v| f.with_mut(|f| f.base_url = v) }
                    }
                }
                button { class: "bc-button bc-button-primary", id: "provider-connect",
                    onclick: move |_| on_action.call(Action::ConnectProvider(f())),
                    "Connect"
                }
                p { class: "bc-caption", "Connect asks the provider which models the key may use and serves them all; a refused key saves nothing." }
            }
            div { id: "run-local",
                h3 { class: "bc-subtitle", "Run a model on this machine" }
                if let Some(p) = local_pick.clone() {
                    p { id: "local-pick",
                        strong { "{p.repo}" } " · {p.file} · {p.quantization} · {p.size} · "
                        span { class: "bc-badge bc-badge-success", "{p.fit}" }
                    }
                    if let Some(progress) = p.progress.clone() {
                        p { id: "local-pick-progress", role: "status", "Downloading: {progress}" }
                    } else {
                        button { class: "bc-button bc-button-primary", id: "local-pick-run",
                            onclick: move |_| on_action.call(Action::RunLocalPick(p.spec.clone())),
                            "Download and run"
                        }
                        p { class: "bc-caption", "Downloaded into the library, started on the first request, then the Chat page opens on it." }
                    }
                } else if let Some(note) = local_note.clone() {
                    p { class: "bc-caption", id: "local-pick-note", "{note}" }
                }
                p { class: "bc-caption", "Or choose yourself: Models → Find models on the hub." }
            }
        }
    }
}
