//! Channels: the list with status, breaker, latency and today's usage; add/edit with the
//! provider presets (a refused Save keeps the form open as typed, every refused field
//! marked); test, enable/disable, delete with confirmation.

use dioxus::prelude::*;

use super::Badge;
use super::data::{Action, ChannelForm, ChannelRow, ChannelTypeOption, Notice};
use super::form::{FieldMessage, TextInput, field_mark, invalid, use_on_success};

/// The id of the channel form in notices (see `Notice::completing`).
pub const CHANNEL_FORM: &str = "channel";

#[component]
pub fn ChannelsPage(
    channels: Vec<ChannelRow>,
    types: Vec<ChannelTypeOption>,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    // The open form, with a serial: each Add or Edit makes a new form.
    let mut editing = use_signal(|| None::<(u64, ChannelForm)>);
    let mut opened = use_signal(|| 0u64);
    // What the open form's last Save sent (its refused fields are marked while they hold it).
    let mut sent = use_signal(|| None::<ChannelForm>);
    let mut open = move |form: ChannelForm| {
        let n = opened() + 1;
        opened.set(n);
        editing.set(Some((n, form)));
        sent.set(None);
    };
    let mut confirm = use_signal(|| None::<i64>);
    // A refused Save keeps the form open as typed; a saved one closes it.
    use_on_success(&notice, CHANNEL_FORM, move || editing.set(None));
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
    let editor = editing().map(|(n, form)| {
        rsx! {
            ChannelEditor {
                key: "{n}",
                form,
                types: types.clone(),
                sent: sent(),
                notice: notice.clone(),
                on_save: move |f: ChannelForm| {
                    sent.set(Some(f.clone()));
                    on_action.call(Action::SaveChannel(f));
                },
                on_cancel: move |_| editing.set(None),
            }
        }
    });
    rsx! {
        div { class: "bc-toolbar",
            button { class: "bc-button bc-button-primary", id: "add-channel", onclick: move |_| open(new_form()), "Add channel" }
        }
        {editor}
        if channels.is_empty() {
            section { class: "bc-card bc-empty",
                p { "No channels yet. A channel is an upstream: a cloud provider account or a local server." }
                p { class: "bc-caption", "Add one to route requests; local models appear here by themselves when they run." }
            }
        } else {
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "channels-table",
                    // Five columns, so the row actions fit the default window (1100 px): the
                    // type, address, key, locality and priority fold into the name's detail
                    // lines, the breaker and latency into the status.
                    thead { tr {
                        th { "Name" } th { "Models" } th { "Status" } th { "Today" } th { "Actions" }
                    } }
                    tbody {
                        for c in channels.clone() {
                            tr { key: "{c.id}",
                                td { class: "bc-cell-wide",
                                    div { "{c.name}" }
                                    div { class: "bc-caption", "{c.type_name} · {c.base_url}" }
                                    div { class: "bc-caption", "{c.masked_key} · {c.locality} · priority {c.priority} / weight {c.weight}" }
                                }
                                td { div { "{c.models}" } if !c.mapping.is_empty() { div { class: "bc-caption", "mapping {c.mapping}" } } }
                                td {
                                    div { class: "bc-badges",
                                        if c.enabled { Badge { kind: "success", text: "enabled".to_string() } } else { Badge { kind: "danger", text: "disabled".to_string() } }
                                        Badge { kind: if c.breaker == "closed" { "neutral" } else { "danger" }, text: format!("breaker {}", c.breaker) }
                                    }
                                    if let Some(r) = &c.disabled_reason { div { class: "bc-caption", "{r}" } }
                                    div { class: "bc-caption",
                                        {c.latency_ms.map(|l| format!("{l:.0} ms")).unwrap_or_else(|| "no latency yet".into())}
                                        if c.in_flight > 0 { " · {c.in_flight} in flight" }
                                    }
                                }
                                td { div { "{c.today_requests} req" } div { class: "bc-caption", "{c.today_tokens} tok · {c.today_cost}" } }
                                td { class: "bc-actions",
                                    if c.testable {
                                        button { class: "bc-button bc-button-small", onclick: move |_| on_action.call(Action::TestChannel(c.id)), "Test" }
                                        button { class: "bc-button bc-button-small", "aria-label": "List the models of {c.name}", onclick: move |_| on_action.call(Action::ListChannelModels(c.id)), "Models" }
                                    }
                                    button { class: "bc-button bc-button-small", onclick: { let f = ChannelForm::from_row(&c); move |_| open(f.clone()) }, "Edit" }
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

/// The add/edit form; choosing a type fills its default base URL and locality. Save keeps
/// it open until the channel is saved; each refused field is marked until it is changed.
#[component]
pub fn ChannelEditor(
    /// The fields when the form opens.
    form: ChannelForm,
    types: Vec<ChannelTypeOption>,
    /// What this form's last Save sent.
    sent: Option<ChannelForm>,
    notice: Option<Notice>,
    on_save: EventHandler<ChannelForm>,
    on_cancel: EventHandler<()>,
) -> Element {
    let mut f = use_signal(|| form.clone());
    let cur = f();
    let last = sent;
    let mark = |field: &str, get: fn(&ChannelForm) -> String| {
        field_mark(
            &notice,
            CHANNEL_FORM,
            field,
            last.as_ref().map(get).as_deref(),
            &get(&cur),
        )
    };
    let m_type = mark("type", |f| f.type_id.to_string());
    let m_name = mark("name", |f| f.name.clone());
    let m_key = mark("key", |f| f.key.clone());
    let m_base = mark("base_url", |f| f.base_url.clone());
    let m_models = mark("models", |f| f.models.clone());
    let m_mapping = mark("model_mapping", |f| f.mapping.clone());
    let m_group = mark("group", |f| f.group.clone());
    let m_priority = mark("priority", |f| f.priority.clone());
    let m_weight = mark("weight", |f| f.weight.clone());
    let m_locality = mark("locality", |f| f.locality.clone());
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
                        "aria-invalid": invalid(&m_type),
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
                    FieldMessage { message: m_type.clone() }
                }
                label { "Name"
                    TextInput { id: "channel-name", value: cur.name.clone(), required: true, aria_invalid: invalid(&m_name), oninput: move |v| f.with_mut(|f| f.name = v) }
                    FieldMessage { message: m_name.clone() }
                }
                label { if cur.id.is_some() { "Key (empty keeps the current key)" } else { "Key" }
                    TextInput { id: "channel-key", r#type: "password", value: cur.key.clone(), autocomplete: "off", aria_invalid: invalid(&m_key), oninput: move |v| f.with_mut(|f| f.key = v) }
                    FieldMessage { message: m_key.clone() }
                }
                label { "Base URL"
                    TextInput { id: "channel-base-url", value: cur.base_url.clone(), placeholder: "{placeholder}", aria_invalid: invalid(&m_base), oninput: move |v| f.with_mut(|f| f.base_url = v) }
                    FieldMessage { message: m_base.clone() }
                }
                label { "Models (comma separated)"
                    TextInput { id: "channel-models", value: cur.models.clone(), placeholder: "gpt-4o-mini,gpt-4o", aria_invalid: invalid(&m_models), oninput: move |v| f.with_mut(|f| f.models = v) }
                    FieldMessage { message: m_models.clone() }
                }
                label { "Model mapping (from=to, …)"
                    TextInput { id: "channel-mapping", value: cur.mapping.clone(), aria_invalid: invalid(&m_mapping), oninput: move |v| f.with_mut(|f| f.mapping = v) }
                    FieldMessage { message: m_mapping.clone() }
                }
                label { "Group(s)"
                    TextInput { id: "channel-group", value: cur.group.clone(), aria_invalid: invalid(&m_group), oninput: move |v| f.with_mut(|f| f.group = v) }
                    FieldMessage { message: m_group.clone() }
                }
                label { "Priority"
                    TextInput { id: "channel-priority", r#type: "number", value: cur.priority.clone(), aria_invalid: invalid(&m_priority), oninput: move |v| f.with_mut(|f| f.priority = v) }
                    FieldMessage { message: m_priority.clone() }
                }
                label { "Weight"
                    TextInput { id: "channel-weight", r#type: "number", value: cur.weight.clone(), aria_invalid: invalid(&m_weight), oninput: move |v| f.with_mut(|f| f.weight = v) }
                    FieldMessage { message: m_weight.clone() }
                }
                label { "Locality"
                    select { "aria-invalid": invalid(&m_locality), onchange: move |e| f.with_mut(|f| f.locality = e.value()),
                        option { value: "cloud", selected: cur.locality != "local", "cloud" }
                        option { value: "local", selected: cur.locality == "local", "local (sensitive requests may go here)" }
                    }
                    FieldMessage { message: m_locality.clone() }
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "save-channel",
                    onclick: move |_| on_save.call(f()),
                    "Save"
                }
                button { class: "bc-button", onclick: move |_| on_cancel.call(()), "Cancel" }
            }
        }
    }
}
