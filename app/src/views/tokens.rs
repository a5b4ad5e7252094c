//! Tokens: create virtual `sk-` keys (quota, expiry, models, group, local-only; the key is
//! shown once; a refused Create keeps the form as typed, every refused field marked),
//! usage per key, enable/disable, revoke with confirmation.

use dioxus::prelude::*;

use super::Badge;
use super::data::{Action, Notice, TokenForm, TokenRow};
use super::form::{FieldMessage, TextInput, field_mark, invalid, use_on_success};

/// The id of the key form in notices (see `Notice::completing`).
pub const TOKEN_FORM: &str = "token";

#[component]
pub fn TokensPage(
    tokens: Vec<TokenRow>,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
    /// The group every key gets (a plain user's own): the Group field is not shown.
    #[props(default)]
    fixed_group: Option<String>,
) -> Element {
    let empty = || TokenForm {
        group: "default".into(),
        ..Default::default()
    };
    let mut f = use_signal(empty);
    // What the last Create sent (its refused fields are marked while they hold it).
    let mut sent = use_signal(|| None::<TokenForm>);
    use_on_success(&notice, TOKEN_FORM, move || {
        f.set(empty());
        sent.set(None);
    });
    let mut confirm = use_signal(|| None::<i64>);
    let cur = f();
    let last = sent();
    let mark = |field: &str, get: fn(&TokenForm) -> String| {
        field_mark(
            &notice,
            TOKEN_FORM,
            field,
            last.as_ref().map(get).as_deref(),
            &get(&cur),
        )
    };
    let m_name = mark("name", |f| f.name.clone());
    let m_quota = mark("quota_limit", |f| f.quota_usd.clone());
    let m_expires = mark("expired_time", |f| f.expires_days.clone());
    let m_models = mark("models", |f| f.models.clone());
    let m_group = mark("group", |f| f.group.clone());
    rsx! {
        section { class: "bc-card bc-form", id: "token-form",
            h2 { "Create a key" }
            div { class: "bc-fields",
                label { "Name"
                    TextInput { id: "token-name", value: cur.name.clone(), placeholder: "my-ide", aria_invalid: invalid(&m_name), oninput: move |v| f.with_mut(|f| f.name = v) }
                    FieldMessage { message: m_name.clone() }
                }
                label { "Quota in USD (empty: unlimited)"
                    TextInput { id: "token-quota", value: cur.quota_usd.clone(), inputmode: "decimal", aria_invalid: invalid(&m_quota), oninput: move |v| f.with_mut(|f| f.quota_usd = v) }
                    FieldMessage { message: m_quota.clone() }
                }
                label { "Expires in days (empty: never)"
                    TextInput { id: "token-expires", r#type: "number", value: cur.expires_days.clone(), aria_invalid: invalid(&m_expires), oninput: move |v| f.with_mut(|f| f.expires_days = v) }
                    FieldMessage { message: m_expires.clone() }
                }
                label { "Models (empty: all)"
                    TextInput { id: "token-models", value: cur.models.clone(), aria_invalid: invalid(&m_models), oninput: move |v| f.with_mut(|f| f.models = v) }
                    FieldMessage { message: m_models.clone() }
                }
                if fixed_group.is_none() {
                    label { "Group"
                        TextInput { id: "token-group", value: cur.group.clone(), aria_invalid: invalid(&m_group), oninput: move |v| f.with_mut(|f| f.group = v) }
                        FieldMessage { message: m_group.clone() }
                    }
                }
                label { class: "bc-check",
                    input { r#type: "checkbox", checked: cur.local_only, onchange: move |e| f.with_mut(|f| f.local_only = e.checked()) }
                    "Local models only (never routed to the cloud)"
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "create-token",
                    onclick: move |_| { sent.set(Some(f())); on_action.call(Action::CreateToken(f())); },
                    "Create key"
                }
            }
        }
        if tokens.is_empty() {
            section { class: "bc-card bc-empty", p { "No keys yet." } }
        } else {
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "tokens-table",
                    // Five columns, so the row actions fit the default window: the key folds
                    // under the name, the request count under the spending, the limits into one.
                    thead { tr { th { "Name" } th { "Status" } th { "Used / quota" } th { "Limits" } th { "Actions" } } }
                    tbody {
                        for t in tokens {
                            tr { key: "{t.id}",
                                td { class: "bc-cell-wide",
                                    div { "{t.name}" if t.local_only { " " Badge { kind: "neutral", text: "local only".to_string() } } }
                                    div { class: "bc-caption", code { "{t.display}" } }
                                }
                                td {
                                    if t.expired { Badge { kind: "danger", text: "expired".to_string() } }
                                    else if t.enabled { Badge { kind: "success", text: "enabled".to_string() } }
                                    else { Badge { kind: "danger", text: "disabled".to_string() } }
                                }
                                td { div { "{t.used} / {t.quota}" } div { class: "bc-caption", "{t.requests} requests" } }
                                td {
                                    div { "models: {t.models}" }
                                    div { class: "bc-caption", "group {t.group} · expires {t.expires}" }
                                }
                                td { class: "bc-actions",
                                    button { class: "bc-button bc-button-small", onclick: move |_| on_action.call(Action::SetTokenEnabled(t.id, !t.enabled)), if t.enabled { "Disable" } else { "Enable" } }
                                    if confirm() == Some(t.id) {
                                        button { class: "bc-button bc-button-small bc-button-danger", onclick: move |_| { on_action.call(Action::RevokeToken(t.id)); confirm.set(None); }, "Revoke {t.name}?" }
                                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                                    } else {
                                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(Some(t.id)), "Revoke" }
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
