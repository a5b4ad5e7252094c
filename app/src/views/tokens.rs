//! Tokens: create virtual `sk-` keys (quota, expiry, models, group, local-only; the key is
//! shown once), usage per key, enable/disable, revoke with confirmation.

use dioxus::prelude::*;

use super::Badge;
use super::data::{Action, TokenForm, TokenRow};

#[component]
pub fn TokensPage(
    tokens: Vec<TokenRow>,
    on_action: EventHandler<Action>,
    /// The group every key gets (a plain user's own): the Group field is not shown.
    #[props(default)]
    fixed_group: Option<String>,
) -> Element {
    let mut f = use_signal(|| TokenForm {
        group: "default".into(),
        ..Default::default()
    });
    let mut confirm = use_signal(|| None::<i64>);
    let cur = f();
    rsx! {
        section { class: "bc-card bc-form", id: "token-form",
            h2 { "Create a key" }
            div { class: "bc-fields",
                label { "Name" input { value: "{cur.name}", placeholder: "my-ide", oninput: move |e| f.with_mut(|f| f.name = e.value()) } }
                label { "Quota in USD (empty: unlimited)" input { value: "{cur.quota_usd}", inputmode: "decimal", oninput: move |e| f.with_mut(|f| f.quota_usd = e.value()) } }
                label { "Expires in days (empty: never)" input { r#type: "number", value: "{cur.expires_days}", oninput: move |e| f.with_mut(|f| f.expires_days = e.value()) } }
                label { "Models (empty: all)" input { value: "{cur.models}", oninput: move |e| f.with_mut(|f| f.models = e.value()) } }
                if fixed_group.is_none() {
                    label { "Group" input { value: "{cur.group}", oninput: move |e| f.with_mut(|f| f.group = e.value()) } }
                }
                label { class: "bc-check",
                    input { r#type: "checkbox", checked: cur.local_only, onchange: move |e| f.with_mut(|f| f.local_only = e.checked()) }
                    "Local models only (never routed to the cloud)"
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "create-token",
                    onclick: move |_| { on_action.call(Action::CreateToken(f())); f.set(TokenForm { group: "default".into(), ..Default::default() }); },
                    "Create key"
                }
            }
        }
        if tokens.is_empty() {
            section { class: "bc-card bc-empty", p { "No keys yet." } }
        } else {
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "tokens-table",
                    thead { tr { th { "Name" } th { "Key" } th { "Status" } th { "Used / quota" } th { "Requests" } th { "Expires" } th { "Models" } th { "Group" } th { "Actions" } } }
                    tbody {
                        for t in tokens {
                            tr { key: "{t.id}",
                                td { "{t.name}" if t.local_only { " " Badge { kind: "neutral", text: "local only".to_string() } } }
                                td { code { "{t.display}" } }
                                td {
                                    if t.expired { Badge { kind: "danger", text: "expired".to_string() } }
                                    else if t.enabled { Badge { kind: "success", text: "enabled".to_string() } }
                                    else { Badge { kind: "danger", text: "disabled".to_string() } }
                                }
                                td { "{t.used} / {t.quota}" }
                                td { "{t.requests}" }
                                td { "{t.expires}" }
                                td { "{t.models}" }
                                td { "{t.group}" }
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
