//! Channels: the list with status, breaker, latency and today's usage; add/edit with the
//! provider presets; test, enable/disable, delete with confirmation.

use dioxus::prelude::*;

use super::Badge;
use super::data::{Action, ChannelForm, ChannelRow, ChannelTypeOption};

#[component]
pub fn ChannelsPage(
    channels: Vec<ChannelRow>,
    types: Vec<ChannelTypeOption>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut editing = use_signal(|| None::<ChannelForm>);
    let mut confirm = use_signal(|| None::<i64>);
    let new_form = {
        let t = types.first().cloned();
        move || ChannelForm {
            type_id: t.as_ref().map(|t| t.id).unwrap_or(1),
            group: "default".into(),
            priority: "0".into(),
            weight: "1".into(),
            locality: "cloud".into(),
            ..Default::default()
        }
    };
    rsx! {
        div { class: "bc-toolbar",
            button { class: "bc-button bc-button-primary", id: "add-channel", onclick: move |_| editing.set(Some(new_form())), "Add channel" }
        }
        if let Some(form) = editing() {
            ChannelEditor {
                form,
                types: types.clone(),
                on_save: move |f: ChannelForm| { on_action.call(Action::SaveChannel(f)); editing.set(None); },
                on_cancel: move |_| editing.set(None),
            }
        }
        if channels.is_empty() {
            section { class: "bc-card bc-empty",
                p { "No channels yet. A channel is an upstream: a cloud provider account or a local server." }
                p { class: "bc-caption", "Add one to route requests; local models appear here by themselves when they run." }
            }
        } else {
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "channels-table",
                    thead { tr {
                        th { "Name" } th { "Type" } th { "Models" } th { "Status" } th { "Breaker" }
                        th { "Latency" } th { "Today" } th { "Priority / weight" } th { "Actions" }
                    } }
                    tbody {
                        for c in channels.clone() {
                            tr { key: "{c.id}",
                                td { div { "{c.name}" } div { class: "bc-caption", "{c.base_url} · {c.masked_key} · {c.locality}" } }
                                td { "{c.type_name}" }
                                td { div { "{c.models}" } if !c.mapping.is_empty() { div { class: "bc-caption", "mapping {c.mapping}" } } }
                                td {
                                    if c.enabled { Badge { kind: "success", text: "enabled".to_string() } } else { Badge { kind: "danger", text: "disabled".to_string() } }
                                    if let Some(r) = &c.disabled_reason { div { class: "bc-caption", "{r}" } }
                                }
                                td { Badge { kind: if c.breaker == "closed" { "neutral" } else { "danger" }, text: c.breaker.clone() } }
                                td { {c.latency_ms.map(|l| format!("{l:.0} ms")).unwrap_or_else(|| "-".into())} if c.in_flight > 0 { div { class: "bc-caption", "{c.in_flight} in flight" } } }
                                td { div { "{c.today_requests} req" } div { class: "bc-caption", "{c.today_tokens} tok · {c.today_cost}" } }
                                td { "{c.priority} / {c.weight}" }
                                td { class: "bc-actions",
                                    if c.testable {
                                        button { class: "bc-button bc-button-small", onclick: move |_| on_action.call(Action::TestChannel(c.id)), "Test" }
                                    }
                                    button { class: "bc-button bc-button-small", onclick: { let f = ChannelForm::from_row(&c); move |_| editing.set(Some(f.clone())) }, "Edit" }
                                    button { class: "bc-button bc-button-small", onclick: move |_| on_action.call(Action::SetChannelEnabled(c.id, !c.enabled)), if c.enabled { "Disable" } else { "Enable" } }
                                    if confirm() == Some(c.id) {
                                        button { class: "bc-button bc-button-small bc-button-danger", onclick: move |_| { on_action.call(Action::DeleteChannel(c.id)); confirm.set(None); }, "Delete {c.name}?" }
                                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                                    } else {
                                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(Some(c.id)), "Delete" }
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

/// The add/edit form; choosing a type fills its default base URL and locality.
#[component]
fn ChannelEditor(
    form: ChannelForm,
    types: Vec<ChannelTypeOption>,
    on_save: EventHandler<ChannelForm>,
    on_cancel: EventHandler<()>,
) -> Element {
    let mut f = use_signal(|| form.clone());
    let cur = f();
    let preset = types.iter().find(|t| t.id == cur.type_id).cloned();
    let placeholder = preset
        .as_ref()
        .map(|t| t.default_base_url.clone())
        .unwrap_or_default();
    let title = if cur.id.is_some() {
        "Edit channel"
    } else {
        "Add channel"
    };
    let types_for_change = types.clone();
    rsx! {
        section { class: "bc-card bc-form", id: "channel-form", "aria-label": "{title}",
            h2 { "{title}" }
            div { class: "bc-fields",
                label { "Provider"
                    select {
                        onchange: move |e| {
                            let id: i64 = e.value().parse().unwrap_or(1);
                            let t = types_for_change.iter().find(|t| t.id == id).cloned();
                            f.with_mut(|f| {
                                f.type_id = id;
                                if let Some(t) = t { f.locality = if t.local { "local".into() } else { "cloud".into() }; }
                            });
                        },
                        for t in types.clone() {
                            option { key: "{t.id}", value: "{t.id}", selected: t.id == cur.type_id, "{t.name}" }
                        }
                    }
                }
                label { "Name" input { value: "{cur.name}", required: true, oninput: move |e| f.with_mut(|f| f.name = e.value()) } }
                label { if cur.id.is_some() { "Key (empty keeps the current key)" } else { "Key" }
                    input { r#type: "password", value: "{cur.key}", autocomplete: "off", oninput: move |e| f.with_mut(|f| f.key = e.value()) } }
                label { "Base URL" input { value: "{cur.base_url}", placeholder: "{placeholder}", oninput: move |e| f.with_mut(|f| f.base_url = e.value()) } }
                label { "Models (comma separated)" input { value: "{cur.models}", placeholder: "gpt-4o-mini,gpt-4o", oninput: move |e| f.with_mut(|f| f.models = e.value()) } }
                label { "Model mapping (from=to, …)" input { value: "{cur.mapping}", oninput: move |e| f.with_mut(|f| f.mapping = e.value()) } }
                label { "Group(s)" input { value: "{cur.group}", oninput: move |e| f.with_mut(|f| f.group = e.value()) } }
                label { "Priority" input { r#type: "number", value: "{cur.priority}", oninput: move |e| f.with_mut(|f| f.priority = e.value()) } }
                label { "Weight" input { r#type: "number", value: "{cur.weight}", oninput: move |e| f.with_mut(|f| f.weight = e.value()) } }
                label { "Locality"
                    select { onchange: move |e| f.with_mut(|f| f.locality = e.value()),
                        option { value: "cloud", selected: cur.locality != "local", "cloud" }
                        option { value: "local", selected: cur.locality == "local", "local (sensitive requests may go here)" }
                    }
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", onclick: move |_| on_save.call(f()), "Save" }
                button { class: "bc-button", onclick: move |_| on_cancel.call(()), "Cancel" }
            }
        }
    }
}
