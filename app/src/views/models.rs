//! Models: the engine, hub search (repositories → GGUF files with quantization, size and
//! a fit read from the remote header), downloads (progress, pause/resume/cancel), the
//! library with metadata and fit verdicts, deploy (prefilled from the fit), start/stop,
//! running state, memory and live logs, JIT/idle settings.

use dioxus::html::HasFileData;
use dioxus::prelude::*;

use super::form::{FieldMessage, TextInput, field_mark, invalid, use_on_success};

use super::Badge;
use super::data::{Action, DeployForm, DownloadRow, HubData, ModelRow, ModelsData, Notice};

/// The id of model `id`'s alias form in notices (see `Notice::completing`).
pub fn alias_form(id: i64) -> String {
    format!("model-alias-{id}")
}

/// The id of model `id`'s Deploy dialog in notices: a refusal marks its fields, a success
/// closes it.
pub fn deploy_form(id: i64) -> String {
    format!("deploy-{id}")
}

#[component]
pub fn ModelsPage(
    data: ModelsData,
    #[props(default)] notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut dialog = use_signal(|| None::<DeployForm>);
    rsx! {
        section { class: "bc-card bc-wide", id: "engine",
            // A GGUF dropped here is imported (the desktop gives the file's path).
            ondragover: move |e: DragEvent| e.prevent_default(),
            ondrop: move |e: DragEvent| {
                e.prevent_default();
                for f in e.files() {
                    on_action.call(Action::ImportGguf(f.path().display().to_string()));
                }
            },
            div { class: "bc-card-header", h2 { "Engine (llama-server)" }
                match data.engine.as_result() {
                    Ok(_) => rsx! { Badge { kind: "success", text: "found".to_string() } },
                    Err(_) => rsx! { Badge { kind: "danger", text: "missing".to_string() } },
                }
            }
            match data.engine.as_result() {
                Ok(e) => rsx! { p { class: "bc-caption", "{e}" } },
                Err(e) => rsx! {
                    div { class: "bc-error", role: "alert",
                        p { "{e}" }
                        p { class: "bc-notice-fix", strong { "How to fix: " } "install the official llama.cpp build, or set LLAMA_SERVER to your own llama-server." }
                        button { class: "bc-button", onclick: move |_| on_action.call(Action::InstallEngine), "Install engine" }
                    }
                },
            }
            p { class: "bc-caption", "This machine: {data.hardware}" }
            if let Some(w) = data.gpu_warning.clone() {
                div { class: "bc-error", role: "alert", id: "gpu-warning",
                    p { "{w}" }
                    button { class: "bc-button bc-button-primary", onclick: move |_| on_action.call(Action::InstallEngine), "Install the GPU engine" }
                }
            }
            p { class: "bc-caption", "Find and download models below, or import a GGUF file you already have: pick it, or drop it on this card; they appear in the library." }
            label { class: "bc-button", id: "import-gguf", "Import GGUF…"
                input { r#type: "file", accept: ".gguf", multiple: true, class: "bc-file-input", "aria-label": "Import GGUF files",
                    onchange: move |e: FormEvent| {
                        for f in e.files() {
                            on_action.call(Action::ImportGguf(f.path().display().to_string()));
                        }
                    }
                }
            }
        }
        HubSection { hub: data.hub.clone(), on_action }
        if !data.hub.downloads.is_empty() {
            section { class: "bc-card bc-wide", id: "downloads",
                div { class: "bc-card-header",
                    h2 { "Downloads" }
                    if data.hub.downloads.iter().any(|d| matches!(d.state.as_str(), "done" | "failed" | "cancelled")) {
                        button { class: "bc-button", id: "clear-downloads", onclick: move |_| on_action.call(Action::ClearFinishedDownloads), "Clear finished" }
                    }
                }
                div { class: "bc-table-wrap",
                    table { class: "bc-table", id: "downloads-table",
                        thead { tr { th { "Model" } th { "State" } th { "Bytes" } th { "Rate" } th { "ETA" } th { "" } } }
                        tbody {
                            for d in data.hub.downloads.clone() {
                                DownloadLine { key: "{d.id}", d: d.clone(), on_action }
                            }
                        }
                    }
                }
            }
        }
        if let Some(form) = dialog() {
            DeployDialog { form, installed: data.installed_backends.clone(), notice: notice.clone(), on_install: move |b| on_action.call(Action::InstallBackend(b)), on_submit: move |f: DeployForm| on_action.call(Action::Deploy(f)), on_done: move |_| dialog.set(None), on_cancel: move |_| dialog.set(None) }
        }
        if data.models.is_empty() {
            section { class: "bc-card bc-empty", p { "The library is empty." } }
        }
        for m in data.models.clone() {
            ModelCard { key: "{m.id}", model: m.clone(), notice: notice.clone(), on_action, on_deploy: move |f| dialog.set(Some(f)) }
        }
    }
}

#[component]
fn ModelCard(
    model: ModelRow,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
    on_deploy: EventHandler<DeployForm>,
) -> Element {
    let m = model;
    // What the last alias Save sent (its refusal marks the field while it holds it).
    let mut sent = use_signal(|| None::<String>);
    let form = alias_form(m.id);
    use_on_success(&notice, &form, move || sent.set(None));
    let id = m.id;
    let d = m.deployment.clone();
    let active = d.as_ref().is_some_and(|d| d.active);
    let state = d
        .as_ref()
        .map(|d| d.state.clone())
        .unwrap_or_else(|| "not deployed".into());
    let state_kind = match state.as_str() {
        "ready" => "success",
        "failed" => "danger",
        _ => "neutral",
    };
    let opt = |v: Option<String>| v.unwrap_or_default();
    let prefill = DeployForm {
        model_id: m.id,
        port: opt(d
            .as_ref()
            .and_then(|d| d.port_setting)
            .map(|p| p.to_string())),
        threads: opt(d.as_ref().and_then(|d| d.threads).map(|p| p.to_string())),
        parallel: opt(d.as_ref().and_then(|d| d.parallel).map(|p| p.to_string())),
        engine: d
            .as_ref()
            .and_then(|d| d.engine.clone())
            .unwrap_or_else(|| "auto".into()),
        mode: d
            .as_ref()
            .map(|d| d.mode.clone())
            .unwrap_or_else(|| "chat".into()),
        ctx: d
            .as_ref()
            .and_then(|d| d.ctx)
            .unwrap_or(m.fit_ctx)
            .to_string(),
        gpu_layers: d
            .as_ref()
            .and_then(|d| d.gpu_layers.clone())
            .unwrap_or_else(|| m.fit_gpu_layers.to_string()),
        jit: d.as_ref().is_some_and(|d| d.jit),
        idle_ttl_secs: d.as_ref().map(|d| d.idle_ttl_secs).unwrap_or(0).to_string(),
        start: true,
    };
    rsx! {
        section { class: "bc-card bc-wide bc-model", id: "model-{m.id}",
            div { class: "bc-card-header",
                h2 { "{m.name}" }
                span { Badge { kind: if m.fit_ok { "success" } else { "danger" }, text: m.fit_label.clone() } " " Badge { kind: state_kind, text: state.clone() } }
            }
            p { class: "bc-caption", id: "model-{m.id}-names",
                "Answers as {m.channel}"
                if let Some(a) = &m.alias { " and as " strong { "{a}" } }
            }
            AliasEditor { model_id: m.id, value: m.alias.clone().unwrap_or_default(), sent: sent(), notice: notice.clone(),
                on_save: move |v: String| { sent.set(Some(v.clone())); on_action.call(Action::SetModelAlias { id, alias: v }); }
            }
            p { class: "bc-caption", "{m.architecture} · {m.parameters} parameters · {m.quantization} · {m.size} · context {m.context} · {m.source} · channel {m.channel}" }
            p { class: "bc-caption", "{m.fit_explain}" }
            if let Some(d) = &d {
                p { class: "bc-caption",
                    {d.port.map(|p| format!("port {p} · ")).unwrap_or_default()}
                    {d.pid.map(|p| format!("pid {p} · ")).unwrap_or_default()}
                    {d.memory.clone().map(|m| format!("memory {m} · ")).unwrap_or_default()}
                    {format!("restarts {} · JIT {} · idle stop ", d.restarts, if d.jit { "on" } else { "off" })}
                    {if d.idle_ttl_secs == 0 { "never".to_string() } else { format!("{}s", d.idle_ttl_secs) }}
                }
                if let (Some(e), "failed") = (&d.last_error, d.state.as_str()) {
                    div { class: "bc-error", role: "alert", p { "{e}" } p { class: "bc-notice-fix", strong { "How to fix: " } "lower the context or GPU layers in Deploy…, or check the engine on the Settings page." } }
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", onclick: move |_| on_deploy.call(prefill.clone()), "Deploy…" }
                if d.is_some() {
                    button { class: "bc-button", "aria-label": "Chat with {m.name}",
                        onclick: { let c = m.channel.clone(); move |_| on_action.call(Action::ChatWith(c.clone())) },
                        "Chat"
                    }
                }
                if active {
                    button { class: "bc-button", onclick: move |_| on_action.call(Action::StopModel(m.id)), "Stop" }
                } else if d.is_some() {
                    button { class: "bc-button", onclick: move |_| on_action.call(Action::StartModel(m.id)), "Start" }
                }
            }
            if !m.log_tail.is_empty() {
                details { open: active,
                    summary { "Engine log" }
                    pre { class: "bc-pre bc-log", {m.log_tail.join("\n")} }
                }
            }
        }
    }
}

/// A model's alias: the name typed, Save, and Clear when it has one; a refusal marks the
/// field until it is changed.
#[component]
pub fn AliasEditor(
    model_id: i64,
    /// The saved alias (empty: none).
    value: String,
    sent: Option<String>,
    notice: Option<Notice>,
    on_save: EventHandler<String>,
) -> Element {
    let mut typed = use_signal(|| value.clone());
    let mark = field_mark(
        &notice,
        &alias_form(model_id),
        "alias",
        sent.as_deref(),
        &typed(),
    );
    let has = !value.is_empty();
    rsx! {
        form { class: "bc-toolbar", id: "model-{model_id}-alias",
            onsubmit: move |e| { e.prevent_default(); on_save.call(typed()); },
            label { "Alias"
                TextInput { value: typed(), placeholder: "another name, e.g. my-llama", aria_invalid: invalid(&mark), oninput: move |v: String| typed.set(v) }
                FieldMessage { message: mark.clone() }
            }
            button { class: "bc-button", r#type: "submit", "Save alias" }
            if has {
                button { class: "bc-button", r#type: "button", onclick: move |_| { typed.set(String::new()); on_save.call(String::new()); }, "Clear alias" }
            }
        }
    }
}

/// The engines a deployment can use: auto, then every backend, those without an installed
/// engine marked; choosing one of those offers to install it.
#[component]
pub fn DeployDialog(
    form: DeployForm,
    /// Backends with an installed engine.
    installed: Vec<String>,
    #[props(default)] notice: Option<Notice>,
    on_install: EventHandler<String>,
    on_submit: EventHandler<DeployForm>,
    /// The deployment was saved: the dialog closes (a refusal keeps it open, marked).
    #[props(default)]
    on_done: EventHandler<()>,
    on_cancel: EventHandler<()>,
) -> Element {
    let mut f = use_signal(|| form.clone());
    let mut sent = use_signal(|| None::<DeployForm>);
    let id = deploy_form(form.model_id);
    use_on_success(&notice, &id, move || on_done.call(()));
    let cur = f();
    let last = sent();
    let mark = |field: &str, get: fn(&DeployForm) -> &str| {
        field_mark(&notice, &id, field, last.as_ref().map(get), get(&cur))
    };
    let m_port = mark("port", |f| &f.port);
    let m_ctx = mark("ctx", |f| &f.ctx);
    let m_ngl = mark("gpu_layers", |f| &f.gpu_layers);
    let m_threads = mark("threads", |f| &f.threads);
    let m_parallel = mark("parallel", |f| &f.parallel);
    let m_engine = mark("engine", |f| &f.engine);
    let m_mode = mark("mode", |f| &f.mode);
    let m_idle = mark("idle_ttl_secs", |f| &f.idle_ttl_secs);
    let missing = !matches!(cur.engine.as_str(), "" | "auto") && !installed.contains(&cur.engine);
    rsx! {
        section { class: "bc-card bc-wide bc-form", id: "deploy-dialog", role: "dialog", "aria-label": "Deploy model",
            h2 { "Deploy" }
            p { class: "bc-caption", "Prefilled from how the model fits this machine." }
            div { class: "bc-fields",
                label { "Port (blank: first free)"
                    TextInput { r#type: "number", value: cur.port.clone(), aria_invalid: invalid(&m_port), oninput: move |v: String| f.with_mut(|f| f.port = v) }
                    FieldMessage { message: m_port.clone() }
                }
                label { "Context size (-c)"
                    TextInput { r#type: "number", value: cur.ctx.clone(), aria_invalid: invalid(&m_ctx), oninput: move |v: String| f.with_mut(|f| f.ctx = v) }
                    FieldMessage { message: m_ctx.clone() }
                }
                label { "GPU layers (-ngl: auto, all or a number)"
                    TextInput { r#type: "text", value: cur.gpu_layers.clone(), aria_invalid: invalid(&m_ngl), oninput: move |v: String| f.with_mut(|f| f.gpu_layers = v) }
                    FieldMessage { message: m_ngl.clone() }
                }
                label { "Threads (blank: llama-server's choice)"
                    TextInput { r#type: "number", value: cur.threads.clone(), aria_invalid: invalid(&m_threads), oninput: move |v: String| f.with_mut(|f| f.threads = v) }
                    FieldMessage { message: m_threads.clone() }
                }
                label { "Parallel slots"
                    TextInput { r#type: "number", value: cur.parallel.clone(), aria_invalid: invalid(&m_parallel), oninput: move |v: String| f.with_mut(|f| f.parallel = v) }
                    FieldMessage { message: m_parallel.clone() }
                }
                label { "Engine"
                    FieldMessage { message: m_engine.clone() }
                    select { value: "{cur.engine}", onchange: move |e| f.with_mut(|f| f.engine = e.value()),
                        option { value: "auto", selected: cur.engine == "auto" || cur.engine.is_empty(), "auto (the installed engine that fits best)" }
                        for b in llama_manager::runtime::engine::Backend::ALL.map(|b| b.to_string()) {
                            option { value: "{b}", selected: cur.engine == b,
                                if installed.contains(&b) { "{b}" } else { "{b} (not installed)" }
                            }
                        }
                    }
                }
                if missing {
                    div { class: "bc-warning", role: "alert", id: "engine-missing",
                        "No {cur.engine} engine is installed: the model cannot start with it. "
                        button { class: "bc-button", r#type: "button", onclick: { let b = cur.engine.clone(); move |_| on_install.call(b.clone()) }, "Install this engine" }
                    }
                }
                label { "Serves"
                    FieldMessage { message: m_mode.clone() }
                    select { value: "{cur.mode}", onchange: move |e| f.with_mut(|f| f.mode = e.value()),
                        for m in ["chat", "embeddings", "rerank"] {
                            option { value: m, selected: cur.mode == m, "{m}" }
                        }
                    }
                }
                label { "Stop after idle seconds (0: never)"
                    TextInput { r#type: "number", value: cur.idle_ttl_secs.clone(), aria_invalid: invalid(&m_idle), oninput: move |v: String| f.with_mut(|f| f.idle_ttl_secs = v) }
                    FieldMessage { message: m_idle.clone() }
                }
                label { class: "bc-check", input { r#type: "checkbox", checked: cur.jit, onchange: move |e| f.with_mut(|f| f.jit = e.checked()) } "Start on the first request (JIT)" }
                label { class: "bc-check", input { r#type: "checkbox", checked: cur.start, onchange: move |e| f.with_mut(|f| f.start = e.checked()) } "Start now" }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", onclick: move |_| { sent.set(Some(f())); on_submit.call(f()) }, if cur.start { "Deploy and start" } else { "Save settings" } }
                button { class: "bc-button", onclick: move |_| on_cancel.call(()), "Cancel" }
            }
        }
    }
}

#[component]
fn HubSection(hub: HubData, on_action: EventHandler<Action>) -> Element {
    let mut query = use_signal(|| hub.query.clone());
    let mut sort = use_signal(|| hub.sort.clone());
    rsx! {
        section { class: "bc-card bc-wide", id: "hub",
            div { class: "bc-card-header", h2 { "Find models on the hub" } }
            form { class: "bc-toolbar", role: "search",
                onsubmit: move |e| { e.prevent_default(); on_action.call(Action::HubSearch { query: query(), sort: sort() }); },
                TextInput { r#type: "search", placeholder: "Search GGUF models", aria_label: "Search the hub", value: query(), oninput: move |v: String| query.set(v) }
                select { "aria-label": "Sort by", value: "{sort}", onchange: move |e| sort.set(e.value()),
                    option { value: "downloads", selected: sort() == "downloads", "Most downloads" }
                    option { value: "likes", selected: sort() == "likes", "Most likes" }
                    option { value: "recent", selected: sort() == "recent", "Recently updated" }
                }
                button { class: "bc-button bc-button-primary", r#type: "submit", "Search" }
            }
            if !hub.results.is_empty() {
                div { class: "bc-table-wrap",
                    table { class: "bc-table", id: "hub-results",
                        thead { tr { th { "Repository" } th { "Downloads" } th { "Likes" } th { "Updated" } th { "" } } }
                        tbody {
                            for r in hub.results.clone() {
                                tr { key: "{r.id}",
                                    td { "{r.id}" if r.gated { " " Badge { kind: "neutral", text: "gated".to_string() } } }
                                    td { "{r.downloads}" }
                                    td { "{r.likes}" }
                                    td { "{r.updated}" }
                                    td { button { class: "bc-button", "aria-label": "Files of {r.id}", onclick: { let id = r.id.clone(); move |_| on_action.call(Action::HubFiles(id.clone())) }, "Files" } }
                                }
                            }
                        }
                    }
                }
                div { class: "bc-toolbar", id: "hub-pages",
                    button { class: "bc-button", disabled: hub.page <= 1, onclick: { let p = hub.page; move |_| on_action.call(Action::HubPage(p.saturating_sub(1))) }, "Previous page" }
                    span { class: "bc-caption", "Page {hub.page}" }
                    button { class: "bc-button", disabled: !hub.has_next, onclick: { let p = hub.page; move |_| on_action.call(Action::HubPage(p + 1)) }, "Next page" }
                }
            }
            if let Some(f) = hub.files.clone() {
                div { id: "hub-files",
                    h3 { "{f.repo}" }
                    if f.gated { p { class: "bc-caption", "Gated: accept its terms on the hub and set HF_TOKEN before downloading." } }
                    if f.files.is_empty() { p { class: "bc-caption", "No GGUF model files in this repository." } }
                    div { class: "bc-table-wrap",
                        table { class: "bc-table",
                            thead { tr { th { "File" } th { "Quantization" } th { "Size" } th { "Fit" } th { "" } } }
                            tbody {
                                for x in f.files.clone() {
                                    tr { key: "{x.path}",
                                        td { "{x.path}" if x.shards > 1 { " ({x.shards} shards)" } }
                                        td { "{x.quantization}" }
                                        td { "{x.size}" }
                                        td {
                                            match x.fit.clone() {
                                                Some(fit) => rsx! { span { title: "{fit.explain}", Badge { kind: if fit.ok { "success" } else { "danger" }, text: fit.label.clone() } } },
                                                None => rsx! { button { class: "bc-button", onclick: { let (repo, file) = (f.repo.clone(), x.path.clone()); move |_| on_action.call(Action::HubFit { repo: repo.clone(), file: file.clone() }) }, "Check fit" } },
                                            }
                                        }
                                        td { button { class: "bc-button bc-button-primary", disabled: !x.complete, onclick: { let spec = x.spec.clone(); move |_| on_action.call(Action::Download(spec.clone())) }, "Download" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[component]
fn DownloadLine(d: DownloadRow, on_action: EventHandler<Action>) -> Element {
    let id = d.id;
    let kind = match d.state.as_str() {
        "done" => "success",
        "failed" => "danger",
        _ => "neutral",
    };
    rsx! {
        tr { id: "download-{id}",
            td { "{d.spec}"
                if let Some(e) = &d.error {
                    div { class: "bc-error", role: "alert", p { "{e}" }
                        if let Some(fix) = &d.fix { p { class: "bc-notice-fix", strong { "How to fix: " } "{fix}" } }
                    }
                }
            }
            td { Badge { kind, text: d.state.clone() } }
            td { progress { max: "100", value: "{d.percent}" } " {d.bytes}" }
            td { "{d.rate}" }
            td { "{d.eta}" }
            td {
                if d.can_pause { button { class: "bc-button", onclick: move |_| on_action.call(Action::PauseDownload(id)), "Pause" } }
                if d.can_resume { button { class: "bc-button", onclick: move |_| on_action.call(Action::ResumeDownload(id)), "Resume" } }
                if d.can_cancel { button { class: "bc-button", onclick: move |_| on_action.call(Action::CancelDownload(id)), "Cancel" } }
            }
        }
    }
}
